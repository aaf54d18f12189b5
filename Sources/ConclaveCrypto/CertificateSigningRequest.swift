internal import COpenSSL
internal import CConclaveOpenSSLShims

/// An OpenSSL `X509_REQ` (PKCS#10). Owns the pointer and frees it in `deinit`.
public final class CertificateSigningRequest: @unchecked Sendable {
    let pointer: OpaquePointer

    init(takingOwnership pointer: OpaquePointer) { self.pointer = pointer }

    deinit { X509_REQ_free(pointer) }

    /// A request for `commonName` with the SANs as a requested extension, signed by `key`.
    public convenience init(
        commonName: String, subjectAlternativeNames: [SubjectAlternativeName], key: PrivateKey
    ) throws {
        guard let request = X509_REQ_new() else { throw OpenSSLError.drainQueue(after: "X509_REQ_new") }
        self.init(takingOwnership: request)
        guard X509_REQ_set_version(request, 0) == 1,  // v1, the only version (RFC 2986)
            let name = X509_REQ_get_subject_name(request),
            CertificateBuilder.addCommonName(commonName, to: name),
            X509_REQ_set_pubkey(request, key.pointer) == 1
        else { throw OpenSSLError.drainQueue(after: "X509_REQ subject and key") }
        if !subjectAlternativeNames.isEmpty {
            let extensionValue = try CertificateBuilder.extensionValue(
                nid: NID_subject_alt_name, value: CertificateBuilder.alternativeNamesText(subjectAlternativeNames), context: nil)
            guard let stack = OPENSSL_sk_new_null() else { throw OpenSSLError.drainQueue(after: "OPENSSL_sk_new_null") }
            defer { conclave_ssl_extension_stack_free(stack) }
            guard OPENSSL_sk_push(stack, UnsafeRawPointer(extensionValue)) > 0,
                X509_REQ_add_extensions(request, stack) == 1
            else { throw OpenSSLError.drainQueue(after: "X509_REQ_add_extensions") }
        }
        guard X509_REQ_sign(request, key.pointer, key.signingDigest) > 0 else {
            throw OpenSSLError.drainQueue(after: "X509_REQ_sign")
        }
    }

    /// Reads a PEM (`CERTIFICATE REQUEST`) or DER request.
    public convenience init(encoded bytes: [UInt8]) throws {
        if String.isPEM(bytes) {
            let bio = MemoryBIO(bytes)
            defer { withExtendedLifetime(bio) {} }  // keeps the C object alive for every call below
            guard let request = PEM_read_bio_X509_REQ(bio.pointer, nil, nil, nil) else {
                throw OpenSSLError.drainQueue(after: "PEM_read_bio_X509_REQ")
            }
            self.init(takingOwnership: request)
        } else {
            guard let request = decodeDER(bytes, { d2i_X509_REQ(nil, $0, $1) }) else {
                throw OpenSSLError(operation: "read certificate request", reason: "not a PEM or DER CSR")
            }
            self.init(takingOwnership: request)
        }
    }

    public var pemEncoded: String {
        let bio = MemoryBIO()
        precondition(PEM_write_bio_X509_REQ(bio.pointer, pointer) == 1, "PEM_write_bio_X509_REQ failed")
        return bio.string
    }

    public var subject: String { X509Certificate.text(of: X509_REQ_get_subject_name(pointer)) }
    public var subjectCommonName: String? { X509Certificate.commonName(of: X509_REQ_get_subject_name(pointer)) }

    public var subjectAlternativeNames: [SubjectAlternativeName] {
        guard let extensions = X509_REQ_get_extensions(pointer) else { return [] }
        defer { conclave_ssl_extension_stack_free(extensions) }
        guard let names = X509V3_get_d2i(extensions, NID_subject_alt_name, nil, nil) else { return [] }
        let stack = OpaquePointer(names)
        defer { GENERAL_NAMES_free(stack) }
        return X509Certificate.alternativeNames(in: stack)
    }

    public var publicKey: KeyDescription {
        KeyDescription(key: X509_REQ_get0_pubkey(pointer))
    }

    /// Whether the request is signed by the key it carries (`X509_REQ_verify`).
    public var isSignatureValid: Bool {
        guard let key = X509_REQ_get0_pubkey(pointer) else { return false }
        let valid = X509_REQ_verify(pointer, key) == 1
        OpenSSLError.clearQueue()
        return valid
    }

    /// Whether `key` is the private half of the requested public key.
    public func matches(_ key: PrivateKey) -> Bool {
        guard let publicKey = X509_REQ_get0_pubkey(pointer) else { return false }
        return EVP_PKEY_eq(publicKey, key.pointer) == 1
    }
}
