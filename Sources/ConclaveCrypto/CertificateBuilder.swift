internal import COpenSSL
public import FoundationEssentials

/// What a certificate is for; sets basicConstraints, keyUsage and extendedKeyUsage.
public enum CertificateUsage: Sendable, Hashable {
    /// A CA that signs certificates (basicConstraints critical CA:TRUE, keyCertSign, cRLSign).
    case certificateAuthority(pathLength: Int?)
    case server
    case client
    case serverAndClient
    case codeSigning
    /// An update bundle signer as RAUC checks it by default (OpenSSL's `smimesign` purpose):
    /// digitalSignature and no extendedKeyUsage (codeSigning would fail that check).
    case bundleSigning
}

/// Builds and signs X.509 v3 certificates: self-signed ones, and ones issued by a local CA.
public enum CertificateBuilder {
    public struct Options: Sendable {
        public var notBefore: Date
        public var notAfter: Date
        /// Only to build test certificates the validator must refuse; SHA-256 otherwise.
        public var useSHA1: Bool = false

        public init(notBefore: Date = Date(timeIntervalSinceNow: -300), validForDays days: Int) {
            self.notBefore = notBefore
            self.notAfter = notBefore.addingTimeInterval(TimeInterval(days) * 86_400)
        }

        public init(notBefore: Date, notAfter: Date) {
            self.notBefore = notBefore
            self.notAfter = notAfter
        }
    }

    /// A certificate for `key` signed by `key` itself.
    public static func selfSigned(
        commonName: String, subjectAlternativeNames: [SubjectAlternativeName] = [], key: PrivateKey,
        usage: CertificateUsage = .server, options: Options = Options(validForDays: 365)
    ) throws -> X509Certificate {
        try build(
            commonName: commonName, subjectName: nil, subjectAlternativeNames: subjectAlternativeNames,
            publicKey: key.pointer, usage: usage, options: options, issuer: nil, issuerKey: key)
    }

    /// A certificate for `publicKeyOf` (a key whose public half goes in), signed by `issuer`.
    public static func issue(
        commonName: String, subjectAlternativeNames: [SubjectAlternativeName] = [], publicKeyOf subjectKey: PrivateKey,
        usage: CertificateUsage, options: Options = Options(validForDays: 365),
        issuer: X509Certificate, issuerKey: PrivateKey
    ) throws -> X509Certificate {
        try build(
            commonName: commonName, subjectName: nil, subjectAlternativeNames: subjectAlternativeNames,
            publicKey: subjectKey.pointer, usage: usage, options: options, issuer: issuer, issuerKey: issuerKey)
    }

    /// A certificate for a CSR: its subject, its key and its requested SANs (only SANs are
    /// copied from the request; usages are ours to choose).
    public static func issue(
        request: CertificateSigningRequest, usage: CertificateUsage, options: Options = Options(validForDays: 365),
        issuer: X509Certificate, issuerKey: PrivateKey
    ) throws -> X509Certificate {
        guard request.isSignatureValid else {
            throw OpenSSLError(operation: "issue certificate", reason: "the request's signature does not verify")
        }
        guard let publicKey = X509_REQ_get0_pubkey(request.pointer) else {
            throw OpenSSLError.drainQueue(after: "X509_REQ_get0_pubkey")
        }
        return try build(
            commonName: nil, subjectName: X509_REQ_get_subject_name(request.pointer),
            subjectAlternativeNames: request.subjectAlternativeNames, publicKey: publicKey, usage: usage,
            options: options, issuer: issuer, issuerKey: issuerKey)
    }

    private static func build(
        commonName: String?, subjectName: OpaquePointer?, subjectAlternativeNames: [SubjectAlternativeName],
        publicKey: OpaquePointer, usage: CertificateUsage, options: Options,
        issuer: X509Certificate?, issuerKey: PrivateKey
    ) throws -> X509Certificate {
        guard let raw = X509_new() else { throw OpenSSLError.drainQueue(after: "X509_new") }
        let certificate = X509Certificate(takingOwnership: raw)

        // Serial: 159 random bits, positive (RFC 5280 §4.1.2.2 allows up to 20 octets).
        guard let serial = BN_new() else { throw OpenSSLError.drainQueue(after: "BN_new") }
        defer { BN_free(serial) }
        guard X509_set_version(raw, 2) == 1,
            BN_rand(serial, 159, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1,
            BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(raw)) != nil
        else { throw OpenSSLError.drainQueue(after: "X509 version and serial") }

        guard let subject = X509_get_subject_name(raw) else { throw OpenSSLError.drainQueue(after: "X509_get_subject_name") }
        if let subjectName {
            guard X509_set_subject_name(raw, subjectName) == 1 else { throw OpenSSLError.drainQueue(after: "X509_set_subject_name") }
        } else if let commonName {
            guard addCommonName(commonName, to: subject) else { throw OpenSSLError.drainQueue(after: "subject CN") }
        }
        let issuerName = issuer.map { X509_get_subject_name($0.pointer) } ?? X509_get_subject_name(raw)
        guard X509_set_issuer_name(raw, issuerName) == 1,
            ASN1_TIME_set(X509_getm_notBefore(raw), time_t(options.notBefore.timeIntervalSince1970)) != nil,
            ASN1_TIME_set(X509_getm_notAfter(raw), time_t(options.notAfter.timeIntervalSince1970)) != nil,
            X509_set_pubkey(raw, publicKey) == 1
        else { throw OpenSSLError.drainQueue(after: "X509 issuer, validity and key") }

        var context = X509V3_CTX()
        X509V3_set_ctx(&context, issuer?.pointer ?? raw, raw, nil, nil, 0)
        var extensions: [(Int32, String)] = []
        switch usage {
        case .certificateAuthority(let pathLength):
            extensions.append((NID_basic_constraints, "critical,CA:TRUE" + (pathLength.map { ",pathlen:\($0)" } ?? "")))
            extensions.append((NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature"))
        case .server, .client, .serverAndClient, .codeSigning:
            extensions.append((NID_basic_constraints, "critical,CA:FALSE"))
            extensions.append((NID_key_usage, "critical,digitalSignature,keyEncipherment"))
            let usages = switch usage {
            case .server: "serverAuth"
            case .client: "clientAuth"
            case .codeSigning: "codeSigning"
            default: "serverAuth,clientAuth"
            }
            extensions.append((NID_ext_key_usage, usages))
        case .bundleSigning:
            extensions.append((NID_basic_constraints, "critical,CA:FALSE"))
            extensions.append((NID_key_usage, "critical,digitalSignature"))
        }
        extensions.append((NID_subject_key_identifier, "hash"))
        if issuer != nil { extensions.append((NID_authority_key_identifier, "keyid:always")) }
        if !subjectAlternativeNames.isEmpty {
            extensions.append((NID_subject_alt_name, alternativeNamesText(subjectAlternativeNames)))
        }
        for (nid, value) in extensions {
            let made = try extensionValue(nid: nid, value: value, context: &context)
            defer { X509_EXTENSION_free(made) }
            guard X509_add_ext(raw, made, -1) == 1 else { throw OpenSSLError.drainQueue(after: "X509_add_ext") }
        }

        let digest = options.useSHA1 ? EVP_sha1() : issuerKey.signingDigest
        guard X509_sign(raw, issuerKey.pointer, digest) > 0 else { throw OpenSSLError.drainQueue(after: "X509_sign") }
        return certificate
    }

    static func addCommonName(_ commonName: String, to name: OpaquePointer) -> Bool {
        let bytes = Array(commonName.utf8)
        return X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8, bytes, Int32(bytes.count), -1, 0) == 1
    }

    static func alternativeNamesText(_ names: [SubjectAlternativeName]) -> String {
        names.map(\.description).joined(separator: ",")
    }

    /// One extension from OpenSSL's configuration syntax (`X509V3_EXT_conf_nid`). The caller frees it.
    static func extensionValue(nid: Int32, value: String, context: UnsafeMutablePointer<X509V3_CTX>?) throws -> OpaquePointer {
        guard let made = X509V3_EXT_conf_nid(nil, context, nid, value) else {
            throw OpenSSLError.drainQueue(after: "X509V3_EXT_conf_nid(\(String(cString: OBJ_nid2sn(nid))), \(value))")
        }
        return made
    }
}

/// A tiny certificate authority: a self-signed CA certificate and its key, for test set-ups,
/// first boot and the lab.
public struct LocalCertificateAuthority: Sendable {
    public let certificate: X509Certificate
    public let key: PrivateKey

    public init(certificate: X509Certificate, key: PrivateKey) {
        self.certificate = certificate
        self.key = key
    }

    /// A new CA with a fresh key.
    public init(commonName: String, algorithm: KeyAlgorithm = .ecP256, validForDays days: Int = 3650) throws {
        let key = try PrivateKey.generate(algorithm)
        let certificate = try CertificateBuilder.selfSigned(
            commonName: commonName, key: key, usage: .certificateAuthority(pathLength: nil),
            options: .init(validForDays: days))
        self.init(certificate: certificate, key: key)
    }

    /// An intermediate CA under this one.
    public func issueIntermediate(commonName: String, algorithm: KeyAlgorithm = .ecP256, validForDays days: Int = 1825) throws -> LocalCertificateAuthority {
        let key = try PrivateKey.generate(algorithm)
        let certificate = try CertificateBuilder.issue(
            commonName: commonName, publicKeyOf: key, usage: .certificateAuthority(pathLength: 0),
            options: .init(validForDays: days), issuer: self.certificate, issuerKey: self.key)
        return LocalCertificateAuthority(certificate: certificate, key: key)
    }

    /// A leaf certificate and its new key.
    public func issueLeaf(
        commonName: String, subjectAlternativeNames: [SubjectAlternativeName] = [], usage: CertificateUsage = .server,
        algorithm: KeyAlgorithm = .ecP256, options: CertificateBuilder.Options = .init(validForDays: 365)
    ) throws -> (certificate: X509Certificate, key: PrivateKey) {
        let key = try PrivateKey.generate(algorithm)
        let certificate = try CertificateBuilder.issue(
            commonName: commonName, subjectAlternativeNames: subjectAlternativeNames, publicKeyOf: key, usage: usage,
            options: options, issuer: self.certificate, issuerKey: self.key)
        return (certificate, key)
    }

    /// Signs a CSR.
    public func sign(_ request: CertificateSigningRequest, usage: CertificateUsage = .server, validForDays days: Int = 365) throws -> X509Certificate {
        try CertificateBuilder.issue(
            request: request, usage: usage, options: .init(validForDays: days), issuer: certificate, issuerKey: key)
    }
}
