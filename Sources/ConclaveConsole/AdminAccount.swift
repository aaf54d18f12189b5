import ConclaveCrypto
import ConclaveSystem
import FoundationEssentials
public import SystemPackage

/// Five failed logins lock the console for 1 minute, the next five for 2, then 4, 8 … up to
/// a day; a good password resets everything. A pure value: the caller passes the clock.
public struct LoginThrottle: Codable, Equatable, Sendable {
    public static let failuresPerLock = 5
    public static let longestLock: Double = 86_400

    /// Failures since the last lock (or success).
    public var failures = 0
    /// Locks since the last success: the next lock lasts 2^locks minutes.
    public var locks = 0
    /// Wall-clock seconds (since 1970) until which logins are refused.
    public var lockedUntil: Double?

    public init() {}

    /// Seconds the console stays locked, nil when a login may be tried now.
    public func remainingLock(now: Double) -> Double? {
        guard let lockedUntil, lockedUntil > now else { return nil }
        return lockedUntil - now
    }

    /// Counts a failure; returns the length of the lock it starts, if any.
    public mutating func recordFailure(now: Double) -> Double? {
        failures += 1
        guard failures >= Self.failuresPerLock else { return nil }
        let duration = min(Self.longestLock, 60 * Double(1 << min(locks, 20)))
        failures = 0
        locks += 1
        lockedUntil = now + duration
        return duration
    }

    public mutating func recordSuccess() { self = LoginThrottle() }
}

public enum AdminAccountError: Error, CustomStringConvertible, Equatable {
    case tooShort(minimum: Int)
    case tooLong(maximum: Int)
    case sameAsHostname
    case mismatch
    case malformedRecord(String)

    public var description: String {
        switch self {
        case .tooShort(let minimum): "the password needs at least \(minimum) characters"
        case .tooLong(let maximum): "the password may have at most \(maximum) characters"
        case .sameAsHostname: "the password must not be the host name or the FQDN"
        case .mismatch: "the two passwords differ"
        case .malformedRecord(let path): "\(path) is damaged; use password recovery at the console"
        }
    }
}

/// The console admin account (Vidyo's "System Console account"): one password, stored as
/// an scrypt hash in `DIR/console/admin-password` (0600), and the login throttle in
/// `DIR/console/login-throttle.json` (0600, so a respawned console keeps the lock).
public struct AdminAccount: Sendable {
    public static let minimumLength = 8
    public static let maximumLength = 128

    public let directory: FilePath
    let parameters: Scrypt.Parameters

    public init(stateDirectory: FilePath, parameters: Scrypt.Parameters = .interactive) {
        directory = stateDirectory.appending("console")
        self.parameters = parameters
    }

    public var passwordPath: FilePath { directory.appending("admin-password") }
    var throttlePath: FilePath { directory.appending("login-throttle.json") }

    public var exists: Bool { passwordPath.exists }

    /// Checks a new password before it is stored.
    public static func validate(_ password: String, confirmation: String, hostnames: [String]) throws(AdminAccountError) {
        guard password.count >= minimumLength else { throw .tooShort(minimum: minimumLength) }
        guard password.count <= maximumLength else { throw .tooLong(maximum: maximumLength) }
        let lowered = password.lowercased()
        for name in hostnames where !name.isEmpty {
            if lowered == name.lowercased() || lowered == name.lowercased().split(separator: ".").first.map(String.init) {
                throw .sameAsHostname
            }
        }
        guard password == confirmation else { throw .mismatch }
    }

    /// Stores the hash: `scrypt$N$r$p$<salt hex>$<hash hex>`, temp → fsync → rename.
    public func setPassword(_ password: String) throws {
        let salt = SecureRandom.bytes(count: 16)
        let hash = try Scrypt.derive(password: Array(password.utf8), salt: salt, parameters: parameters)
        let record = "scrypt$\(parameters.cost)$\(parameters.blockSize)$\(parameters.parallelism)$\(Self.hex(salt))$\(Self.hex(hash))\n"
        try directory.makeDirectory(permissions: FilePermissions(rawValue: 0o700))
        try Files.writeAtomically(Array(record.utf8), to: passwordPath, permissions: .ownerReadWrite)
    }

    /// Whether `password` is the admin password (constant-time comparison of the hashes).
    public func verify(_ password: String) throws -> Bool {
        let text = String(decoding: try Files.read(passwordPath), as: UTF8.self).trimmedLine
        let fields = text.split(separator: "$").map(String.init)
        guard fields.count == 6, fields[0] == "scrypt", let cost = UInt64(fields[1]), let blockSize = UInt64(fields[2]),
            let parallelism = UInt64(fields[3]), cost.nonzeroBitCount == 1, cost <= 1 << 20, blockSize <= 32, parallelism <= 4,
            let salt = Self.bytes(hex: fields[4]), let expected = Self.bytes(hex: fields[5]), !expected.isEmpty
        else { throw AdminAccountError.malformedRecord(passwordPath.string) }
        let hash = try Scrypt.derive(
            password: Array(password.utf8), salt: salt,
            parameters: .init(cost: cost, blockSize: blockSize, parallelism: parallelism), outputLength: expected.count)
        return ConstantTime.equals(hash, expected)
    }

    public func throttle() -> LoginThrottle {
        guard let bytes = try? Files.read(throttlePath),
            let throttle = try? JSONDecoder().decode(LoginThrottle.self, from: Data(bytes))
        else { return LoginThrottle() }
        return throttle
    }

    public func saveThrottle(_ throttle: LoginThrottle) throws {
        try directory.makeDirectory(permissions: FilePermissions(rawValue: 0o700))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try Files.writeAtomically(Array(try encoder.encode(throttle)) + [0x0a], to: throttlePath, permissions: .ownerReadWrite)
    }

    /// Forgets the password (recovery and factory reset at the physical console).
    public func remove() throws {
        try passwordPath.removeIfPresent()
        try throttlePath.removeIfPresent()
    }

    static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    static func bytes(hex text: String) -> [UInt8]? {
        guard text.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        var index = text.startIndex
        while index < text.endIndex {
            let next = text.index(index, offsetBy: 2)
            guard let byte = UInt8(text[index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        return bytes
    }
}
