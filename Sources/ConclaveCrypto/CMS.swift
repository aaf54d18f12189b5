internal import COpenSSL
public import FoundationEssentials

/// CMS (RFC 5652) detached signatures, as RAUC bundles carry them: the signature covers bytes
/// stored elsewhere, and the signer must chain to a keyring.
public enum CMS {
    /// Verifies a detached CMS SignedData (`CMS_verify` with `CMS_BINARY`) over `content`
    /// against the anchors in `keyring`; returns the signer certificates. `signature` is DER
    /// or PEM. The signer's EKU is not restricted (`X509_PURPOSE_ANY`), as in RAUC.
    public static func verifyDetached(
        signature: [UInt8], content: [UInt8], keyring: TrustStore, at time: Date? = nil
    ) throws -> [X509Certificate] {
        let bio = MemoryBIO(content)
        return try withExtendedLifetime(bio) {
            try verifyDetached(signature: signature, contentBIO: bio.pointer, keyring: keyring, at: time)
        }
    }

    /// Like `verifyDetached(signature:content:…)`, streaming the content from a file (an update
    /// image is far larger than memory should hold).
    public static func verifyDetached(
        signature: [UInt8], contentFile path: String, keyring: TrustStore, at time: Date? = nil
    ) throws -> [X509Certificate] {
        guard let file = BIO_new_file(path, "rb") else { throw OpenSSLError.drainQueue(after: "BIO_new_file(\(path))") }
        defer { BIO_free(file) }
        return try verifyDetached(signature: signature, contentBIO: file, keyring: keyring, at: time)
    }

    private static func verifyDetached(
        signature: [UInt8], contentBIO: OpaquePointer, keyring: TrustStore, at time: Date?
    ) throws -> [X509Certificate] {
        let cms = try parse(signature)
        defer { CMS_ContentInfo_free(cms) }
        guard CMS_is_detached(cms) == 1 else {
            throw OpenSSLError(operation: "CMS verify", reason: "the signature is not detached")
        }
        // Verification parameters live in the store; a copy keeps the shared keyring untouched.
        guard let store = X509_STORE_new() else { throw OpenSSLError.drainQueue(after: "X509_STORE_new") }
        defer { X509_STORE_free(store) }
        for anchor in keyring.anchors { X509_STORE_add_cert(store, anchor.pointer) }
        X509_STORE_set_purpose(store, X509_PURPOSE_ANY)
        if let time, let parameters = X509_STORE_get0_param(store) {
            X509_VERIFY_PARAM_set_time(parameters, time_t(time.timeIntervalSince1970))
        }
        guard CMS_verify(cms, nil, store, contentBIO, nil, UInt32(CMS_BINARY)) == 1 else {
            throw OpenSSLError.drainQueue(after: "CMS_verify")
        }
        guard let signers = CMS_get0_signers(cms) else { return [] }
        defer { OPENSSL_sk_free(signers) }
        return X509Stack.borrowedCertificates(signers)
    }

    private static func parse(_ signature: [UInt8]) throws -> OpaquePointer {
        if String.isPEM(signature) {
            let bio = MemoryBIO(signature)
            defer { withExtendedLifetime(bio) {} }  // keeps the C object alive for every call below
            guard let cms = PEM_read_bio_CMS(bio.pointer, nil, nil, nil) else {
                throw OpenSSLError.drainQueue(after: "PEM_read_bio_CMS")
            }
            return cms
        }
        guard let cms = decodeDER(signature, { d2i_CMS_ContentInfo(nil, $0, $1) }) else {
            throw OpenSSLError(operation: "CMS verify", reason: "not a DER or PEM CMS structure")
        }
        return cms
    }

    /// Makes a detached CMS SignedData over `content` (`CMS_sign` with `CMS_DETACHED | CMS_BINARY`),
    /// DER. For building signed bundles and tests.
    public static func signDetached(
        content: [UInt8], signer: X509Certificate, key: PrivateKey, chain: [X509Certificate] = []
    ) throws -> [UInt8] {
        let stack = try X509Stack(chain)
        defer { withExtendedLifetime(stack) {} }  // keeps the C object alive for every call below
        let data = MemoryBIO(content)
        defer { withExtendedLifetime(data) {} }  // keeps the C object alive for every call below
        let signed = withExtendedLifetime(data) {
            CMS_sign(signer.pointer, key.pointer, stack.pointer, data.pointer, UInt32(CMS_DETACHED | CMS_BINARY))
        }
        guard let cms = signed else {
            throw OpenSSLError.drainQueue(after: "CMS_sign")
        }
        defer { CMS_ContentInfo_free(cms) }
        return try encodeDER("i2d_CMS_ContentInfo") { i2d_CMS_ContentInfo(cms, $0) }
    }
}
