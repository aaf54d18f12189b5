internal import COpenSSL
internal import CConclaveOpenSSLShims
public import FoundationEssentials

/// An OpenSSL `X509_STORE` of trust anchors. Owns the pointer and frees it in `deinit`.
/// Read-only once built, so one store can serve many verifications.
public final class TrustStore: @unchecked Sendable {
    let pointer: OpaquePointer
    public let anchors: [X509Certificate]

    public init(anchors: [X509Certificate]) throws {
        guard let store = X509_STORE_new() else { throw OpenSSLError.drainQueue(after: "X509_STORE_new") }
        pointer = store
        self.anchors = anchors
        for anchor in anchors {
            // A duplicate anchor is harmless; OpenSSL 3 accepts it silently.
            guard X509_STORE_add_cert(store, anchor.pointer) == 1 else {
                throw OpenSSLError.drainQueue(after: "X509_STORE_add_cert")
            }
        }
    }

    deinit { X509_STORE_free(pointer) }
}

/// What a chain is checked for.
public enum CertificatePurpose: Sendable {
    case serverAuthentication
    case clientAuthentication
    /// Any purpose: signed update bundles carry codeSigning or no EKU at all.
    case any
    /// S/MIME signing (`smimesign`): RAUC's default check for bundle signers. Key usage, when
    /// present, must allow digital signatures; an EKU, when present, must allow email protection.
    case smimeSigning

    var openSSLPurpose: Int32 {
        switch self {
        case .serverAuthentication: X509_PURPOSE_SSL_SERVER
        case .clientAuthentication: X509_PURPOSE_SSL_CLIENT
        case .any: X509_PURPOSE_ANY
        case .smimeSigning: X509_PURPOSE_SMIME_SIGN
        }
    }
}

/// Builds and verifies certificate chains (`X509_verify_cert`).
public enum ChainVerifier {
    /// Builds a chain from `leaf` through `intermediates` to one of `trustStore`'s anchors,
    /// checking signatures, validity at `time`, CA constraints and `purpose`; and, when given,
    /// that `hostname` matches the leaf's SANs. Returns the chain leaf first, anchor last;
    /// throws with OpenSSL's reason ("certificate has expired", "unable to get local issuer
    /// certificate", …) otherwise.
    public static func verify(
        _ leaf: X509Certificate, intermediates: [X509Certificate] = [], trustStore: TrustStore,
        at time: Date = Date(), purpose: CertificatePurpose = .any, hostname: String? = nil
    ) throws -> [X509Certificate] {
        let untrusted = try X509Stack(intermediates)
        defer { withExtendedLifetime(untrusted) {} }  // keeps the C object alive for every call below
        guard let context = X509_STORE_CTX_new() else { throw OpenSSLError.drainQueue(after: "X509_STORE_CTX_new") }
        defer { X509_STORE_CTX_free(context) }
        guard X509_STORE_CTX_init(context, trustStore.pointer, leaf.pointer, untrusted.pointer) == 1 else {
            throw OpenSSLError.drainQueue(after: "X509_STORE_CTX_init")
        }
        X509_STORE_CTX_set_time(context, 0, time_t(time.timeIntervalSince1970))
        guard X509_STORE_CTX_set_purpose(context, purpose.openSSLPurpose) == 1 else {
            throw OpenSSLError.drainQueue(after: "X509_STORE_CTX_set_purpose")
        }
        if let hostname, let parameters = X509_STORE_CTX_get0_param(context) {
            let set = IPAddress.bytes(of: hostname) != nil
                ? X509_VERIFY_PARAM_set1_ip_asc(parameters, hostname)
                : X509_VERIFY_PARAM_set1_host(parameters, hostname, hostname.utf8.count)
            guard set == 1 else { throw OpenSSLError.drainQueue(after: "X509_VERIFY_PARAM_set1_host") }
        }
        let result = X509_verify_cert(context)
        guard result == 1 else {
            let code = X509_STORE_CTX_get_error(context)
            let depth = X509_STORE_CTX_get_error_depth(context)
            OpenSSLError.clearQueue()
            let reason = String(cString: X509_verify_cert_error_string(Int(code)))
            throw OpenSSLError(operation: "verify certificate chain", reason: depth > 0 ? "\(reason) (at depth \(depth))" : reason)
        }
        guard let chain = X509_STORE_CTX_get1_chain(context) else { return [leaf] }
        defer { conclave_ssl_x509_stack_free(chain) }
        return X509Stack.borrowedCertificates(chain)
    }
}
