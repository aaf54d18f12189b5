import ConclaveCrypto
import ConclaveSystem
import Glibc
import SystemPackage

/// The per-installation key of the pseudonymous privacy mode: 32 random bytes in
/// `DIR/db/monitoring-secret` (0600, owned like `DIR/db`, which the control worker owns). It
/// survives restarts, so pseudonyms stay stable; `rotate` replaces it, after which no pseudonym
/// sent before can be linked to one sent after.
public enum MonitoringSecret {
    public static let fileName = "monitoring-secret"
    public static let length = 32

    public enum Failure: Error, CustomStringConvertible {
        case unusable(String)

        public var description: String {
            switch self {
            case .unusable(let reason): "monitoring secret: \(reason)"
            }
        }
    }

    /// The secret, created on first use.
    public static func loadOrCreate(databaseDirectory: FilePath) throws -> [UInt8] {
        let path = databaseDirectory.appending(fileName)
        guard path.exists else { return try rotate(databaseDirectory: databaseDirectory) }
        var status = stat()
        guard path.withPlatformString({ stat($0, &status) }) == 0 else { throw Failure.unusable("cannot stat \(path): \(Errno(rawValue: errno))") }
        guard status.st_mode & 0o077 == 0 else { throw Failure.unusable("\(path) is readable by others (mode \(String(status.st_mode & 0o777, radix: 8))); refused") }
        let bytes = try Files.read(path)
        guard bytes.count == length else { throw Failure.unusable("\(path) holds \(bytes.count) bytes, expected \(length)") }
        return bytes
    }

    /// A new secret, written atomically; as root the file is given to the owner of `databaseDirectory`.
    @discardableResult
    public static func rotate(databaseDirectory: FilePath) throws -> [UInt8] {
        var directoryStatus = stat()
        guard databaseDirectory.withPlatformString({ stat($0, &directoryStatus) }) == 0, directoryStatus.st_mode & S_IFMT == S_IFDIR else {
            throw Failure.unusable("\(databaseDirectory) is not a directory")
        }
        let secret = SecureRandom.bytes(count: length)
        let path = databaseDirectory.appending(fileName)
        try Files.writeAtomically(secret, to: path, permissions: .ownerReadWrite)
        if geteuid() == 0, directoryStatus.st_uid != 0 {
            guard chown(path.string, directoryStatus.st_uid, directoryStatus.st_gid) == 0 else {
                throw Failure.unusable("cannot give \(path) to uid \(directoryStatus.st_uid): \(Errno(rawValue: errno))")
            }
        }
        return secret
    }
}
