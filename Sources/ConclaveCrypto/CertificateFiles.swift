internal import COpenSSL
internal import CConclaveOpenSSLShims

/// Reading and writing the certificate file formats an administrator brings: PEM, DER,
/// PKCS#7 (`.p7b`, certificates only) and PKCS#12 (key, certificate and chain, with password).
public enum CertificateFile {
    /// Certificates from PEM (one or more blocks, `CERTIFICATE` or `PKCS7`), DER X.509, or DER PKCS#7.
    public static func certificates(from bytes: [UInt8]) throws -> [X509Certificate] {
        if String.isPEM(bytes) {
            let text = String(decoding: bytes, as: UTF8.self)
            if text.contains("-----BEGIN PKCS7-----") {
                let bio = MemoryBIO(bytes)
                defer { withExtendedLifetime(bio) {} }  // keeps the C object alive for every call below
                guard let p7 = PEM_read_bio_PKCS7(bio.pointer, nil, nil, nil) else {
                    throw OpenSSLError.drainQueue(after: "PEM_read_bio_PKCS7")
                }
                return try certificates(inPKCS7: p7)
            }
            let certificates = try X509Certificate.certificates(pemEncoded: bytes)
            guard !certificates.isEmpty else {
                throw OpenSSLError(operation: "read certificates", reason: "no CERTIFICATE block in the PEM text")
            }
            return certificates
        }
        if let certificate = decodeDER(bytes, { d2i_X509(nil, $0, $1) }) {
            return [X509Certificate(takingOwnership: certificate)]
        }
        if let p7 = decodeDER(bytes, { d2i_PKCS7(nil, $0, $1) }) {
            return try certificates(inPKCS7: p7)
        }
        throw OpenSSLError(operation: "read certificates", reason: "not a certificate (PEM, DER or PKCS#7)")
    }

    /// Takes ownership of `p7` and frees it.
    private static func certificates(inPKCS7 p7: UnsafeMutablePointer<PKCS7>) throws -> [X509Certificate] {
        defer { PKCS7_free(p7) }
        guard let stack = conclave_ssl_pkcs7_certificates(p7) else {
            throw OpenSSLError(operation: "read PKCS#7", reason: "not a PKCS#7 SignedData with certificates")
        }
        let certificates = X509Stack.borrowedCertificates(stack)
        guard !certificates.isEmpty else {
            throw OpenSSLError(operation: "read PKCS#7", reason: "the PKCS#7 file holds no certificate")
        }
        return certificates
    }

    /// A degenerate PKCS#7 SignedData carrying `certificates` (what `openssl crl2pkcs7 -nocrl` makes), DER.
    public static func pkcs7(certificates: [X509Certificate]) throws -> [UInt8] {
        guard let p7 = PKCS7_new() else { throw OpenSSLError.drainQueue(after: "PKCS7_new") }
        defer { PKCS7_free(p7) }
        guard PKCS7_set_type(p7, NID_pkcs7_signed) == 1, PKCS7_content_new(p7, NID_pkcs7_data) == 1 else {
            throw OpenSSLError.drainQueue(after: "PKCS7_set_type")
        }
        for certificate in certificates {
            guard PKCS7_add_certificate(p7, certificate.pointer) == 1 else {
                throw OpenSSLError.drainQueue(after: "PKCS7_add_certificate")
            }
        }
        return try encodeDER("i2d_PKCS7") { i2d_PKCS7(p7, $0) }
    }

    /// The content of a PKCS#12 file.
    public struct PKCS12Contents: Sendable {
        public let key: PrivateKey
        public let certificate: X509Certificate
        public let chain: [X509Certificate]
    }

    /// Opens a PKCS#12 file (`PKCS12_parse`; MAC checked with `password`).
    public static func pkcs12(_ bytes: [UInt8], password: String) throws -> PKCS12Contents {
        guard let p12 = decodeDER(bytes, { d2i_PKCS12(nil, $0, $1) }) else {
            throw OpenSSLError(operation: "read PKCS#12", reason: "not a PKCS#12 file")
        }
        defer { PKCS12_free(p12) }
        guard PKCS12_verify_mac(p12, password, -1) == 1 else {
            OpenSSLError.clearQueue()
            throw OpenSSLError(operation: "read PKCS#12", reason: "wrong password (MAC does not verify)")
        }
        var key: OpaquePointer? = nil
        var certificate: OpaquePointer? = nil
        var chain: OpaquePointer? = nil
        guard PKCS12_parse(p12, password, &key, &certificate, &chain) == 1 else {
            throw OpenSSLError.drainQueue(after: "PKCS12_parse")
        }
        let ownedKey = key.map { PrivateKey(takingOwnership: $0) }
        let ownedCertificate = certificate.map { X509Certificate(takingOwnership: $0) }
        var ownedChain: [X509Certificate] = []
        if let chain {
            ownedChain = X509Stack.borrowedCertificates(chain)
            conclave_ssl_x509_stack_free(chain)
        }
        guard let ownedKey, let ownedCertificate else {
            throw OpenSSLError(operation: "read PKCS#12", reason: "the file lacks a private key or its certificate")
        }
        return PKCS12Contents(key: ownedKey, certificate: ownedCertificate, chain: ownedChain)
    }

    /// Makes a PKCS#12 file (`PKCS12_create` with OpenSSL 3's defaults: AES-256-CBC, PBKDF2, SHA-256 MAC).
    public static func pkcs12(
        key: PrivateKey, certificate: X509Certificate, chain: [X509Certificate], password: String, friendlyName: String? = nil
    ) throws -> [UInt8] {
        let stack = try X509Stack(chain)
        defer { withExtendedLifetime(stack) {} }  // keeps the C object alive for every call below
        guard let p12 = PKCS12_create(password, friendlyName, key.pointer, certificate.pointer, stack.pointer, 0, 0, 0, 0, 0) else {
            throw OpenSSLError.drainQueue(after: "PKCS12_create")
        }
        defer { PKCS12_free(p12) }
        return try encodeDER("i2d_PKCS12") { i2d_PKCS12(p12, $0) }
    }

    /// Certificates as concatenated PEM blocks.
    public static func pem(_ certificates: [X509Certificate]) -> String {
        certificates.map(\.pemEncoded).joined()
    }
}

/// A `STACK_OF(X509)` that borrows its certificates: the Swift array keeps them alive.
final class X509Stack {
    let pointer: OpaquePointer
    private let certificates: [X509Certificate]

    init(_ certificates: [X509Certificate]) throws {
        guard let stack = OPENSSL_sk_new_null() else { throw OpenSSLError.drainQueue(after: "OPENSSL_sk_new_null") }
        pointer = stack
        self.certificates = certificates
        for certificate in certificates {
            guard OPENSSL_sk_push(stack, UnsafeRawPointer(certificate.pointer)) > 0 else {
                throw OpenSSLError.drainQueue(after: "OPENSSL_sk_push")
            }
        }
    }

    deinit { OPENSSL_sk_free(pointer) }

    /// New Swift owners (up-referenced) for each certificate of a stack someone else owns.
    static func borrowedCertificates(_ stack: OpaquePointer) -> [X509Certificate] {
        (0..<OPENSSL_sk_num(stack)).compactMap { index in
            OPENSSL_sk_value(stack, index).map { X509Certificate(borrowing: OpaquePointer($0)) }
        }
    }
}
