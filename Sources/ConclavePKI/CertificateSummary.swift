public import ConclaveCrypto
public import FoundationEssentials
import SystemPackage
import ConclaveSystem

/// What `conclave cert show` and the console print about a certificate.
public struct CertificateSummary: Codable, Sendable, Equatable {
    public let subject: String
    public let issuer: String
    public let subjectAlternativeNames: [String]
    public let notBefore: String
    public let notAfter: String
    public let daysLeft: Int
    public let status: String
    public let key: String
    public let signatureAlgorithm: String
    public let serialNumber: String
    public let sha256Fingerprint: String
    public let selfSigned: Bool

    public init(certificate: X509Certificate, now: Date = Date()) {
        subject = certificate.subject
        issuer = certificate.issuer
        subjectAlternativeNames = certificate.subjectAlternativeNames.map(\.description)
        notBefore = Timestamp.text(certificate.notValidBefore)
        notAfter = Timestamp.text(certificate.notValidAfter)
        daysLeft = Int((certificate.notValidAfter.timeIntervalSince(now) / 86_400).rounded(.down))
        status = ExpiryStatus(notAfter: certificate.notValidAfter, now: now).rawValue
        key = certificate.publicKey.description
        signatureAlgorithm = certificate.signatureAlgorithm
        serialNumber = certificate.serialNumber
        sha256Fingerprint = certificate.sha256FingerprintText
        selfSigned = certificate.isSelfIssued
    }

    public var text: String {
        """
        subject:     \(subject)
        issuer:      \(issuer)\(selfSigned ? " (self-signed)" : "")
        SANs:        \(subjectAlternativeNames.isEmpty ? "none" : subjectAlternativeNames.joined(separator: ", "))
        not before:  \(notBefore)
        not after:   \(notAfter)
        days left:   \(daysLeft) (\(status))
        key:         \(key)
        signature:   \(signatureAlgorithm)
        serial:      \(serialNumber)
        SHA-256:     \(sha256Fingerprint)
        """
    }

    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }
}

/// Files named on the command line: read whole, written plainly, checked for permissions.
public enum CommandLineFiles {
    /// The bytes of `path`, or a one-line refusal that names the file and the reason.
    public static func read(_ path: String) throws(CertificateRefusal) -> [UInt8] {
        do {
            return try Files.read(FilePath(path))
        } catch let error as Errno {
            throw .unreadable(what: path, reason: error.description)
        } catch {
            throw .unreadable(what: path, reason: "\(error)")
        }
    }

    /// Writes `bytes` to `path` atomically with the given mode.
    public static func write(_ bytes: [UInt8], to path: String, mode: UInt32 = 0o644) throws {
        try Files.writeAtomically(bytes, to: FilePath(path), permissions: FilePermissions(rawValue: mode), faults: .none)
    }

    /// Whether group or others may read the file (a private key must not be).
    public static func isReadableByOthers(_ path: String) -> Bool {
        guard let permissions = FilePath(path).permissions else { return false }
        return permissions.rawValue & 0o044 != 0
    }
}

extension CertificateStore {
    /// For command-line callers that hold the directory as text.
    public init(stateDirectory path: String) { self.init(stateDirectory: FilePath(path)) }
}
