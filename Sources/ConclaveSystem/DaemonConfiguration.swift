import FoundationEssentials
import SystemPackage

/// `DIR/conclave.json`: what the daemon listens on, who its workers run as, and what the other
/// modules keep there. Schema version 1. A missing file means first-boot defaults; a field of
/// the wrong type or out of range is refused with its name, and an unknown field too (a typo
/// would otherwise silently fall back to a default).
public struct DaemonConfiguration: Sendable, Equatable {
    public static let schemaVersion = 1

    public enum Role: String, Sendable, CaseIterable { case server, room }

    public struct Account: Sendable, Equatable {
        public var user: String
        /// Used when `user` is not in /etc/passwd (tests, development machines).
        public var uid: UInt32
        public var gid: UInt32
    }

    public var role = Role.server
    public var fqdn: String?
    public var listen = "0.0.0.0"
    public var controlPort: UInt16 = 443
    public var apiPort: UInt16 = 8443
    /// First relay UDP port; relay thread i listens on `mediaPort + i`.
    public var mediaPort: UInt16 = 3478
    /// TCP fallback for media (RFC 4571 framing); 0 disables it.
    public var mediaTCPPort: UInt16 = 4443
    public var relayThreads = 1
    public var socketBufferBytes = 8 << 20
    public var securityMode = "mixed"
    public var controlAccount = Account(user: "conclave", uid: 990, gid: 990)
    public var relayAccount = Account(user: "conclave-media", uid: 991, gid: 991)
    /// Meetings and legs loaded by the control worker until joins exist (docs/legs-file.md),
    /// relative to the state directory unless absolute.
    public var legsFile: String?
    /// Addresses, routes, DNS, host name (docs/network.md), applied by `conclave net apply`.
    public var network = NetworkConfiguration()
    /// Overrides of the board's tuning profile (docs/tuning.md).
    public var tuning = TuningProfile()
    /// Days a guest visit (nickname, address, MAC) is kept in the identity store (docs/identity.md).
    public var guestRetentionDays = 30
    /// PEM public key that verifies join tokens from the management server (docs/identity.md),
    /// relative to the state directory unless absolute.
    public var ssoKey = "pki/sso-key.pem"
    /// What a room system joins (role `room`; docs/room-system.md).
    public var room: RoomConfiguration?
    /// Command API client certificates allowed, as SHA-256 fingerprints (64 hex digits, stored
    /// lowercase without colons); empty: any certificate that chains to `pki/api-ca.pem` (docs/api.md).
    public var apiClientFingerprints: [String] = []
    /// ApMon destinations, interval, privacy mode, plain-HTTP metrics address (docs/monitoring.md).
    public var monitoring = MonitoringConfiguration()

    public init() {}

    /// The keys this schema knows; other modules add theirs here as they land.
    static let knownKeys: Set<String> = [
        "version", "role", "fqdn", "listen", "controlPort", "apiPort", "mediaPort", "mediaTCPPort", "relayThreads",
        "socketBufferBytes", "securityMode", "controlAccount", "relayAccount", "legsFile", "network", "tuning",
        "guestRetentionDays", "ssoKey", "room", "apiClientFingerprints", "monitoring",
    ]

    public static func load(stateDirectory: FilePath) throws(ConfigurationFileError) -> DaemonConfiguration {
        let path = stateDirectory.appending("conclave.json")
        guard path.exists else { return DaemonConfiguration() }
        let bytes: [UInt8]
        do { bytes = try Files.read(path) } catch { throw .unreadable(path.string, "\(error)") }
        return try parse(bytes, source: path.string)
    }

    public static func parse(_ bytes: [UInt8], source: String) throws(ConfigurationFileError) -> DaemonConfiguration {
        let object: [String: JSONValue]
        do { object = try JSONDecoder().decode([String: JSONValue].self, from: Data(bytes)) } catch {
            throw .invalid(source, field: "(document)", "not a JSON object")
        }
        var reader = FieldReader(object: object, source: source)
        // Files written by `conclave cert` before anything else may lack the version: that is 1.
        let version = try reader.integer("version", in: 1...Int.max) ?? schemaVersion
        guard version == schemaVersion else {
            throw .invalid(source, field: "version", "schema \(version) is not supported (this build reads \(schemaVersion))")
        }
        for key in object.keys.sorted() where !knownKeys.contains(key) {
            throw .invalid(source, field: key, "unknown field")
        }
        var configuration = DaemonConfiguration()
        if let role = try reader.string("role") {
            guard let parsed = Role(rawValue: role) else {
                throw .invalid(source, field: "role", "expected one of \(Role.allCases.map(\.rawValue)), got \"\(role)\"")
            }
            configuration.role = parsed
        }
        configuration.fqdn = try reader.string("fqdn")
        configuration.listen = try reader.string("listen") ?? configuration.listen
        configuration.controlPort = try reader.port("controlPort") ?? configuration.controlPort
        configuration.apiPort = try reader.port("apiPort") ?? configuration.apiPort
        configuration.mediaPort = try reader.port("mediaPort") ?? configuration.mediaPort
        configuration.mediaTCPPort = try reader.port("mediaTCPPort", allowZero: true) ?? configuration.mediaTCPPort
        configuration.relayThreads = try reader.integer("relayThreads", in: 1...64) ?? configuration.relayThreads
        configuration.socketBufferBytes =
            try reader.integer("socketBufferBytes", in: 65_536...(256 << 20)) ?? configuration.socketBufferBytes
        if let mode = try reader.string("securityMode") {
            guard ["secured", "mixed"].contains(mode) else {
                throw .invalid(source, field: "securityMode", "expected \"secured\" or \"mixed\", got \"\(mode)\"")
            }
            configuration.securityMode = mode
        }
        configuration.controlAccount = try reader.account("controlAccount") ?? configuration.controlAccount
        configuration.relayAccount = try reader.account("relayAccount") ?? configuration.relayAccount
        configuration.legsFile = try reader.string("legsFile")
        configuration.guestRetentionDays = try reader.integer("guestRetentionDays", in: 1...3650) ?? configuration.guestRetentionDays
        if let ssoKey = try reader.string("ssoKey") {
            guard !ssoKey.isEmpty, !ssoKey.utf8.contains(0) else { throw .invalid(source, field: "ssoKey", "expected a file path") }
            configuration.ssoKey = ssoKey
        }
        switch object["apiClientFingerprints"] {
        case nil, .null?: break
        case .array(let items)?:
            configuration.apiClientFingerprints = try items.enumerated().map { index, item throws(ConfigurationFileError) in
                guard case .string(let text) = item, let fingerprint = Self.normalisedFingerprint(text) else {
                    throw .invalid(source, field: "apiClientFingerprints[\(index)]", "expected a SHA-256 fingerprint (64 hex digits, colons allowed)")
                }
                return fingerprint
            }
        default: throw .invalid(source, field: "apiClientFingerprints", "expected an array of SHA-256 fingerprints")
        }
        if let network = object["network"], network != .null {
            configuration.network = try NetworkConfiguration.parse(network, source: source)
        }
        if let tuning = object["tuning"], tuning != .null {
            configuration.tuning = try TuningProfile.parse(tuning, source: source, field: "tuning.")
        }
        if let room = object["room"], room != .null {
            configuration.room = try RoomConfiguration.parse(room, source: source)
        }
        if let monitoring = object["monitoring"], monitoring != .null {
            configuration.monitoring = try MonitoringConfiguration.parse(monitoring, source: source)
        }
        guard Int(configuration.mediaPort) + configuration.relayThreads - 1 <= 65535 else {
            throw .invalid(source, field: "mediaPort", "mediaPort + relayThreads exceeds 65535")
        }
        return configuration
    }
}

extension DaemonConfiguration {
    /// `ssoKey` resolved against the state directory.
    public func ssoKeyPath(stateDirectory: FilePath) -> FilePath {
        let path = FilePath(ssoKey)
        return path.isAbsolute ? path : stateDirectory.pushing(path)
    }

    /// A SHA-256 fingerprint as 64 lowercase hex digits; colons between pairs are allowed in.
    public static func normalisedFingerprint(_ text: String) -> String? {
        let digits = text.lowercased().filter { $0 != ":" }
        guard digits.count == 64, digits.allSatisfy(\.isHexDigit) else { return nil }
        return digits
    }

    /// `guestRetentionDays` as a duration.
    public var guestRetention: Duration { .seconds(guestRetentionDays * 86400) }
}

public enum ConfigurationFileError: Error, CustomStringConvertible, Equatable {
    case unreadable(String, String)
    case invalid(String, field: String, String)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason): "\(path): cannot read: \(reason)"
        case .invalid(let path, let field, let reason): "\(path): \(field): \(reason)"
        }
    }
}

/// Typed access to a JSON object's fields, each error naming the field.
private struct FieldReader {
    let object: [String: JSONValue]
    let source: String

    func string(_ key: String, prefix: String = "") throws(ConfigurationFileError) -> String? {
        try string(object[key], field: prefix + key)
    }

    private func string(_ value: JSONValue?, field: String) throws(ConfigurationFileError) -> String? {
        switch value {
        case nil, .null?: return nil
        case .string(let text)?: return text
        default: throw .invalid(source, field: field, "expected a string")
        }
    }

    func integer(_ key: String, in range: ClosedRange<Int>, prefix: String = "", from object: [String: JSONValue]? = nil)
        throws(ConfigurationFileError) -> Int?
    {
        switch (object ?? self.object)[key] {
        case nil, .null?: return nil
        case .number(let number)?:
            guard number == number.rounded(), let value = Int(exactly: number), range.contains(value) else {
                throw .invalid(source, field: prefix + key, "expected an integer in \(range.lowerBound)…\(range.upperBound), got \(number)")
            }
            return value
        default: throw .invalid(source, field: prefix + key, "expected an integer")
        }
    }

    func port(_ key: String, allowZero: Bool = false) throws(ConfigurationFileError) -> UInt16? {
        try integer(key, in: (allowZero ? 0 : 1)...65535).map { UInt16($0) }
    }

    func account(_ key: String) throws(ConfigurationFileError) -> DaemonConfiguration.Account? {
        switch object[key] {
        case nil, .null?: return nil
        case .object(let fields)?:
            for name in fields.keys.sorted() where !["user", "uid", "gid"].contains(name) {
                throw .invalid(source, field: "\(key).\(name)", "unknown field")
            }
            guard let user = try string(fields["user"], field: "\(key).user"), !user.isEmpty,
                let uid = try integer("uid", in: 1...65534, prefix: "\(key).", from: fields),
                let gid = try integer("gid", in: 1...65534, prefix: "\(key).", from: fields)
            else { throw .invalid(source, field: key, "needs user, uid and gid (uid and gid 1…65534, never root)") }
            return .init(user: user, uid: UInt32(uid), gid: UInt32(gid))
        default: throw .invalid(source, field: key, "expected an object with user, uid and gid")
        }
    }
}
