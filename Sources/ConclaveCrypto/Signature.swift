internal import COpenSSL

/// The signature schemes of JSON Web Signatures (RFC 7518 §3.4, RFC 8037) that Conclave signs
/// and verifies: ECDSA P-256 with SHA-256 and Ed25519.
public enum SignatureAlgorithm: String, Sendable, CaseIterable {
    /// ECDSA P-256 + SHA-256; signatures are raw r‖s, 32 bytes each (not DER).
    case es256 = "ES256"
    /// Ed25519 (PureEdDSA); 64-byte signatures.
    case ed25519 = "EdDSA"

    /// The algorithm a key signs with, nil for other keys (RSA, P-384, Ed448).
    public init?(key description: KeyDescription) {
        switch (description.family, description.curve) {
        case (.ec, "P-256"?): self = .es256
        case (.ed25519, _): self = .ed25519
        default: return nil
        }
    }

    /// Length of the raw signature.
    public var signatureLength: Int { 64 }
}

/// An OpenSSL `EVP_PKEY` holding only a public key. Owns the pointer and frees it in `deinit`.
/// Immutable after creation, so it can be shared between threads.
public final class PublicKey: @unchecked Sendable {
    let pointer: OpaquePointer

    /// The caller hands over ownership and must not free `pointer`.
    init(takingOwnership pointer: OpaquePointer) { self.pointer = pointer }

    deinit { EVP_PKEY_free(pointer) }

    /// Reads a SubjectPublicKeyInfo PEM ("PUBLIC KEY", `PEM_read_bio_PUBKEY`), or takes the key of
    /// a PEM certificate ("CERTIFICATE", `X509_get_pubkey`).
    public convenience init(pemEncoded bytes: [UInt8]) throws {
        let text = String(decoding: bytes, as: UTF8.self)
        if text.contains("-----BEGIN CERTIFICATE-----") {
            guard let certificate = try X509Certificate.certificates(pemEncoded: bytes).first else {
                throw OpenSSLError(operation: "read public key", reason: "no certificate in the PEM")
            }
            guard let key = certificate.withUnsafeX509({ X509_get_pubkey($0) }) else {
                throw OpenSSLError.drainQueue(after: "X509_get_pubkey")
            }
            self.init(takingOwnership: key)
            return
        }
        guard text.contains("-----BEGIN PUBLIC KEY-----") else {
            throw OpenSSLError(operation: "read public key", reason: "expected a PEM \"PUBLIC KEY\" or \"CERTIFICATE\"")
        }
        let bio = MemoryBIO(bytes)
        defer { withExtendedLifetime(bio) {} }  // keeps the C object alive for the call below
        guard let key = PEM_read_bio_PUBKEY(bio.pointer, nil, nil, nil) else {
            throw OpenSSLError.drainQueue(after: "PEM_read_bio_PUBKEY")
        }
        self.init(takingOwnership: key)
    }

    /// The public half of `privateKey` (SubjectPublicKeyInfo round trip).
    public convenience init(of privateKey: PrivateKey) throws {
        try self.init(pemEncoded: Array(privateKey.publicKeyPEM.utf8))
    }

    public var keyDescription: KeyDescription { KeyDescription(key: pointer) }

    /// SubjectPublicKeyInfo PEM (`PEM_write_bio_PUBKEY`).
    public var pemEncoded: String {
        let bio = MemoryBIO()
        precondition(PEM_write_bio_PUBKEY(bio.pointer, pointer) == 1, "PEM_write_bio_PUBKEY failed")
        return bio.string
    }

    /// Whether `signature` (raw r‖s for ES256) is `algorithm`'s signature of `message` by this key
    /// (`EVP_DigestVerify`). False for a key of another type, a wrong length, or a bad signature.
    public func isValidSignature(_ signature: [UInt8], of message: [UInt8], algorithm: SignatureAlgorithm) -> Bool {
        guard SignatureAlgorithm(key: keyDescription) == algorithm, signature.count == algorithm.signatureLength else {
            return false
        }
        let encoded: [UInt8]
        switch algorithm {
        case .es256:
            guard let der = ECDSASignature.der(fromRaw: signature) else { return false }
            encoded = der
        case .ed25519:
            encoded = signature
        }
        guard let context = EVP_MD_CTX_new() else { OpenSSLError.clearQueue(); return false }
        defer { EVP_MD_CTX_free(context) }
        let digest = algorithm == .es256 ? EVP_sha256() : nil  // Ed25519 hashes internally
        guard EVP_DigestVerifyInit(context, nil, digest, nil, pointer) == 1 else { OpenSSLError.clearQueue(); return false }
        let result = encoded.withUnsafeBufferPointer { signatureBuffer in
            message.withNonNullPointer { messagePointer, messageCount in
                EVP_DigestVerify(context, signatureBuffer.baseAddress, signatureBuffer.count, messagePointer, messageCount)
            }
        }
        OpenSSLError.clearQueue()  // a bad signature leaves reasons behind; it is an answer, not an error
        return result == 1
    }
}

extension PrivateKey {
    /// A new Ed25519 key (`EVP_PKEY_generate` on an "ED25519" context).
    public static func generateEd25519() throws -> PrivateKey {
        guard let context = EVP_PKEY_CTX_new_from_name(nil, "ED25519", nil) else {
            throw OpenSSLError.drainQueue(after: "EVP_PKEY_CTX_new_from_name(ED25519)")
        }
        defer { EVP_PKEY_CTX_free(context) }
        guard EVP_PKEY_keygen_init(context) == 1 else { throw OpenSSLError.drainQueue(after: "EVP_PKEY_keygen_init") }
        var key: OpaquePointer? = nil
        guard EVP_PKEY_generate(context, &key) == 1, let key else { throw OpenSSLError.drainQueue(after: "EVP_PKEY_generate(ED25519)") }
        return PrivateKey(takingOwnership: key)
    }

    /// The JWS algorithm this key signs with, nil when it has none (RSA, P-384, …).
    public var signatureAlgorithm: SignatureAlgorithm? { SignatureAlgorithm(key: keyDescription) }

    /// Signs `message` (`EVP_DigestSign`): ES256 as raw r‖s (64 bytes), Ed25519 as 64 bytes.
    public func sign(_ message: [UInt8]) throws -> [UInt8] {
        guard let algorithm = signatureAlgorithm else {
            throw OpenSSLError(operation: "sign", reason: "\(keyDescription) keys cannot sign join tokens (use EC P-256 or Ed25519)")
        }
        guard let context = EVP_MD_CTX_new() else { throw OpenSSLError.drainQueue(after: "EVP_MD_CTX_new") }
        defer { EVP_MD_CTX_free(context) }
        let digest = algorithm == .es256 ? EVP_sha256() : nil
        guard EVP_DigestSignInit(context, nil, digest, nil, pointer) == 1 else {
            throw OpenSSLError.drainQueue(after: "EVP_DigestSignInit")
        }
        var length = 0
        let sized = message.withNonNullPointer { EVP_DigestSign(context, nil, &length, $0, $1) }
        guard sized == 1 else { throw OpenSSLError.drainQueue(after: "EVP_DigestSign(size)") }
        var signature = [UInt8](repeating: 0, count: length)
        let signed = signature.withUnsafeMutableBufferPointer { output in
            message.withNonNullPointer { EVP_DigestSign(context, output.baseAddress, &length, $0, $1) }
        }
        guard signed == 1 else { throw OpenSSLError.drainQueue(after: "EVP_DigestSign") }
        signature.removeSubrange(length...)
        switch algorithm {
        case .ed25519: return signature
        case .es256:
            guard let raw = ECDSASignature.raw(fromDER: signature) else {
                throw OpenSSLError(operation: "sign", reason: "OpenSSL returned an ECDSA signature that does not parse")
            }
            return raw
        }
    }
}

/// DER `ECDSA-Sig-Value` ↔ the fixed-size r‖s of JWS (RFC 7518 §3.4), through `ECDSA_SIG`.
public enum ECDSASignature {
    static let scalarLength = 32  // P-256

    /// r‖s, each left-padded to 32 bytes; nil when `der` is not one P-256 signature.
    public static func raw(fromDER der: [UInt8]) -> [UInt8]? {
        let parsed: OpaquePointer? = der.withUnsafeBufferPointer { buffer in
            var cursor = buffer.baseAddress
            return d2i_ECDSA_SIG(nil, &cursor, buffer.count)
        }
        guard let signature = parsed else { OpenSSLError.clearQueue(); return nil }
        defer { ECDSA_SIG_free(signature) }
        var output = [UInt8](repeating: 0, count: 2 * scalarLength)
        let ok = output.withUnsafeMutableBufferPointer { buffer in
            BN_bn2binpad(ECDSA_SIG_get0_r(signature), buffer.baseAddress, Int32(scalarLength)) == Int32(scalarLength)
                && BN_bn2binpad(ECDSA_SIG_get0_s(signature), buffer.baseAddress! + scalarLength, Int32(scalarLength)) == Int32(scalarLength)
        }
        OpenSSLError.clearQueue()
        return ok ? output : nil
    }

    /// DER of r‖s; nil when `raw` is not 64 bytes.
    public static func der(fromRaw raw: [UInt8]) -> [UInt8]? {
        guard raw.count == 2 * scalarLength, let signature = ECDSA_SIG_new() else { return nil }
        defer { ECDSA_SIG_free(signature) }  // owns r and s once set0 succeeds
        let r = raw.withUnsafeBufferPointer { BN_bin2bn($0.baseAddress, Int32(scalarLength), nil) }
        let s = raw.withUnsafeBufferPointer { BN_bin2bn($0.baseAddress! + scalarLength, Int32(scalarLength), nil) }
        guard let r, let s, ECDSA_SIG_set0(signature, r, s) == 1 else {
            BN_free(r)
            BN_free(s)
            OpenSSLError.clearQueue()
            return nil
        }
        let length = i2d_ECDSA_SIG(signature, nil)
        guard length > 0 else { OpenSSLError.clearQueue(); return nil }
        var output = [UInt8](repeating: 0, count: Int(length))
        let written = output.withUnsafeMutableBufferPointer { buffer -> Int32 in
            var cursor = buffer.baseAddress
            return i2d_ECDSA_SIG(signature, &cursor)
        }
        return written == length ? output : nil
    }
}

extension Array where Element == UInt8 {
    /// Calls `body` with a non-null pointer even for an empty array (OpenSSL may refuse NULL
    /// with a zero length), and the true count.
    fileprivate func withNonNullPointer<Result>(_ body: (UnsafePointer<UInt8>, Int) -> Result) -> Result {
        if isEmpty { return [0].withUnsafeBufferPointer { body($0.baseAddress!, 0) } }
        return withUnsafeBufferPointer { body($0.baseAddress!, $0.count) }
    }
}
