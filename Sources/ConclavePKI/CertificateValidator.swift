public import ConclaveCrypto
#if canImport(Glibc)
import Glibc
#endif
public import FoundationEssentials

/// Why a certificate is refused. Each description is one line a console user can act on.
public enum CertificateRefusal: Error, Equatable, CustomStringConvertible, Sendable {
    case unreadable(what: String, reason: String)
    case notACertificate(what: String)
    case keyMismatch
    case chainDoesNotBuild(reason: String)
    case fqdnNotInSubjectAlternativeNames(fqdn: String, names: [String])
    case noFQDNConfigured
    case expired(notAfter: Date)
    case notYetValid(notBefore: Date)
    case weakRSAKey(bits: Int)
    case sha1Signature(subject: String)
    case isCertificateAuthority
    case noPendingKey

    public var description: String {
        switch self {
        case .unreadable(let what, let reason): "\(what) is unreadable: \(reason)"
        case .notACertificate(let what): "\(what) is not a certificate (expected PEM, DER, PKCS#7 or PKCS#12)"
        case .keyMismatch: "the private key does not match the certificate"
        case .chainDoesNotBuild(let reason): "the chain does not build to a supplied or stored trust anchor: \(reason)"
        case .fqdnNotInSubjectAlternativeNames(let fqdn, let names):
            "the appliance FQDN \(fqdn) is not in the certificate's SANs (\(names.isEmpty ? "none" : names.joined(separator: ", ")))"
        case .noFQDNConfigured: "no appliance FQDN is configured: pass --fqdn or run 'conclave cert request --fqdn F' first"
        case .expired(let date): "the certificate expired on \(Timestamp.text(date))"
        case .notYetValid(let date): "the certificate is not valid before \(Timestamp.text(date))"
        case .weakRSAKey(let bits): "the RSA key has \(bits) bits; at least 2048 are required"
        case .sha1Signature(let subject): "\(subject) is signed with SHA-1, which is refused"
        case .isCertificateAuthority: "the certificate is a CA certificate (basicConstraints CA:TRUE), not a server certificate"
        case .noPendingKey: "no key given and no pending key: pass --key or run 'conclave cert request' first"
        }
    }
}

/// The rules a server certificate must pass before activation. Pure: the caller supplies the
/// clock, the configured FQDN and the stored anchors.
public struct CertificateValidator: Sendable {
    public var fqdn: String
    public var now: Date
    /// Stored trust anchors (`trust/`); self-signed certificates in the supplied chain count too.
    public var storedAnchors: [X509Certificate]

    public init(fqdn: String, now: Date = Date(), storedAnchors: [X509Certificate] = []) {
        self.fqdn = fqdn
        self.now = now
        self.storedAnchors = storedAnchors
    }

    /// Checks every rule and returns the chain as built (leaf first, anchor last), or throws
    /// the first refusal.
    @discardableResult
    public func validate(certificate: X509Certificate, chain: [X509Certificate], key: PrivateKey) throws(CertificateRefusal) -> [X509Certificate] {
        if certificate.isCertificateAuthority { throw .isCertificateAuthority }
        guard certificate.matches(key) else { throw .keyMismatch }
        if now < certificate.notValidBefore { throw .notYetValid(notBefore: certificate.notValidBefore) }
        if now > certificate.notValidAfter { throw .expired(notAfter: certificate.notValidAfter) }
        let keyInfo = certificate.publicKey
        if keyInfo.family == .rsa && keyInfo.bits < 2048 { throw .weakRSAKey(bits: keyInfo.bits) }
        // The anchor's own signature does not matter (it is trusted as is); every other does.
        for member in [certificate] + chain where !member.isSelfIssued || member == certificate {
            if member.signatureDigest?.uppercased() == "SHA1" { throw .sha1Signature(subject: member.subject) }
        }
        guard certificate.matches(hostname: fqdn) else {
            throw .fqdnNotInSubjectAlternativeNames(fqdn: fqdn, names: certificate.subjectAlternativeNames.map(\.description))
        }
        let suppliedAnchors = ([certificate] + chain).filter(\.isSelfIssued)
        let intermediates = chain.filter { !$0.isSelfIssued }
        do {
            let store = try TrustStore(anchors: storedAnchors + suppliedAnchors)
            return try ChainVerifier.verify(
                certificate, intermediates: intermediates, trustStore: store, at: now, purpose: .serverAuthentication)
        } catch let error as OpenSSLError {
            throw .chainDoesNotBuild(reason: error.reasons.first ?? error.description)
        } catch {
            throw .chainDoesNotBuild(reason: "\(error)")
        }
    }
}

/// UTC timestamps as text ("2026-11-23T15:18:26Z").
public enum Timestamp {
    public static func text(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))Z"
    }
}

/// Where a certificate stands against its expiry (surfaced at 30, 7 and 1 days).
public enum ExpiryStatus: String, Sendable, CaseIterable {
    case ok
    case warn30 = "warn-30"
    case warn7 = "warn-7"
    case warn1 = "warn-1"
    case expired

    public init(notAfter: Date, now: Date) {
        let remaining = notAfter.timeIntervalSince(now)
        self = switch remaining {
        case ..<0: .expired
        case ..<86_400: .warn1
        case ..<(7 * 86_400): .warn7
        case ..<(30 * 86_400): .warn30
        default: .ok
        }
    }

    /// `conclave cert check` exits with this: 0 ok, 3 warn-30, 4 warn-7, 5 warn-1, 6 expired
    /// (2 means no certificate; 1 is left for usage errors).
    public var exitCode: Int32 {
        switch self {
        case .ok: 0
        case .warn30: 3
        case .warn7: 4
        case .warn1: 5
        case .expired: 6
        }
    }
}
