internal import COpenSSL

/// An AES-128-CTR keystream for one key (`EVP_CIPHER_CTX`). The context is keyed once; each
/// call only sets the 16-byte initial counter block and XORs in place, so the media relay can
/// call it per packet without allocating.
///
/// Not safe for concurrent use: hand it to the thread that uses it, don't share it.
public final class AESCTR: @unchecked Sendable {
    private let context: OpaquePointer

    public static let keyLength = 16
    public static let ivLength = 16

    public init(key: some Collection<UInt8>) throws {
        let keyBytes = Array(key)
        guard keyBytes.count == Self.keyLength else {
            throw OpenSSLError(operation: "AESCTR", reason: "key must be 16 bytes, got \(keyBytes.count)")
        }
        guard let context = EVP_CIPHER_CTX_new() else { throw OpenSSLError.drainQueue(after: "EVP_CIPHER_CTX_new") }
        self.context = context
        guard EVP_EncryptInit_ex(context, EVP_aes_128_ctr(), nil, keyBytes, nil) == 1 else {
            throw OpenSSLError.drainQueue(after: "EVP_EncryptInit_ex(AES-128-CTR)")
        }
    }

    deinit { EVP_CIPHER_CTX_free(context) }

    /// XORs `buffer` with the keystream that starts at counter block `iv` (16 bytes). Applying
    /// it twice with the same `iv` gives back the input.
    public func apply(iv: UnsafeRawBufferPointer, to buffer: UnsafeMutableRawBufferPointer) {
        precondition(iv.count == Self.ivLength, "AES-128-CTR needs a 16-byte IV")
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        let bytes = base.assumingMemoryBound(to: UInt8.self)
        var written: Int32 = 0
        // Re-initialising with only an IV keeps the key schedule (no allocation, no key setup).
        let ok = EVP_EncryptInit_ex(context, nil, nil, nil, iv.baseAddress!.assumingMemoryBound(to: UInt8.self)) == 1
            && EVP_EncryptUpdate(context, bytes, &written, bytes, Int32(buffer.count)) == 1
        precondition(ok && Int(written) == buffer.count, "AES-128-CTR failed on a keyed context")
    }

    /// Convenience for tests and cold paths.
    public func apply(iv: [UInt8], to bytes: inout [UInt8]) {
        iv.withUnsafeBytes { ivBuffer in bytes.withUnsafeMutableBytes { apply(iv: ivBuffer, to: $0) } }
    }
}

/// AES-128-GCM with a 12-byte nonce and a 16-byte tag, keyed once (`EVP_CIPHER_CTX`).
/// Not safe for concurrent use.
public final class AESGCM: @unchecked Sendable {
    private let context: OpaquePointer

    public static let keyLength = 16
    public static let nonceLength = 12
    public static let tagLength = 16

    public init(key: some Collection<UInt8>) throws {
        let keyBytes = Array(key)
        guard keyBytes.count == Self.keyLength else {
            throw OpenSSLError(operation: "AESGCM", reason: "key must be 16 bytes, got \(keyBytes.count)")
        }
        guard let context = EVP_CIPHER_CTX_new() else { throw OpenSSLError.drainQueue(after: "EVP_CIPHER_CTX_new") }
        self.context = context
        guard EVP_CipherInit_ex(context, EVP_aes_128_gcm(), nil, keyBytes, nil, 1) == 1 else {
            throw OpenSSLError.drainQueue(after: "EVP_CipherInit_ex(AES-128-GCM)")
        }
    }

    deinit { EVP_CIPHER_CTX_free(context) }

    /// Encrypts `buffer` in place and writes the tag to `tag` (16 bytes).
    public func seal(
        nonce: UnsafeRawBufferPointer, authenticating aad: UnsafeRawBufferPointer,
        inPlace buffer: UnsafeMutableRawBufferPointer, tag: UnsafeMutableRawBufferPointer
    ) throws {
        precondition(nonce.count == Self.nonceLength && tag.count == Self.tagLength)
        try begin(encrypting: true, nonce: nonce, aad: aad, buffer: buffer)
        var written: Int32 = 0
        var scratch = (UInt64(0), UInt64(0))
        let finished = withUnsafeMutableBytes(of: &scratch) {
            EVP_CipherFinal_ex(context, $0.baseAddress!.assumingMemoryBound(to: UInt8.self), &written)
        }
        guard finished == 1,
            EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_GET_TAG, Int32(Self.tagLength), tag.baseAddress) == 1
        else { throw OpenSSLError.drainQueue(after: "EVP_CipherFinal_ex(AES-128-GCM seal)") }
    }

    /// Decrypts `buffer` in place if `tag` authenticates it and `aad`; throws otherwise. On a
    /// throw, `buffer` holds unauthenticated bytes that must not be used.
    public func open(
        nonce: UnsafeRawBufferPointer, authenticating aad: UnsafeRawBufferPointer,
        inPlace buffer: UnsafeMutableRawBufferPointer, tag: UnsafeRawBufferPointer
    ) throws {
        precondition(nonce.count == Self.nonceLength && tag.count == Self.tagLength)
        try begin(encrypting: false, nonce: nonce, aad: aad, buffer: buffer)
        guard EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_SET_TAG, Int32(Self.tagLength), UnsafeMutableRawPointer(mutating: tag.baseAddress)) == 1 else {
            throw OpenSSLError.drainQueue(after: "EVP_CIPHER_CTX_ctrl(GCM_SET_TAG)")
        }
        var written: Int32 = 0
        var scratch = (UInt64(0), UInt64(0))
        let finished = withUnsafeMutableBytes(of: &scratch) {
            EVP_CipherFinal_ex(context, $0.baseAddress!.assumingMemoryBound(to: UInt8.self), &written)
        }
        guard finished == 1 else {
            OpenSSLError.clearQueue()
            throw OpenSSLError(operation: "AES-128-GCM open", reason: "authentication tag mismatch")
        }
    }

    private func begin(
        encrypting: Bool, nonce: UnsafeRawBufferPointer, aad: UnsafeRawBufferPointer,
        buffer: UnsafeMutableRawBufferPointer
    ) throws {
        var written: Int32 = 0
        guard EVP_CipherInit_ex(context, nil, nil, nil, nonce.baseAddress!.assumingMemoryBound(to: UInt8.self), encrypting ? 1 : 0) == 1 else {
            throw OpenSSLError.drainQueue(after: "EVP_CipherInit_ex(AES-128-GCM nonce)")
        }
        if let aadBase = aad.baseAddress, aad.count > 0 {
            guard EVP_CipherUpdate(context, nil, &written, aadBase.assumingMemoryBound(to: UInt8.self), Int32(aad.count)) == 1 else {
                throw OpenSSLError.drainQueue(after: "EVP_CipherUpdate(AES-128-GCM AAD)")
            }
        }
        if let base = buffer.baseAddress, buffer.count > 0 {
            let bytes = base.assumingMemoryBound(to: UInt8.self)
            guard EVP_CipherUpdate(context, bytes, &written, bytes, Int32(buffer.count)) == 1 else {
                throw OpenSSLError.drainQueue(after: "EVP_CipherUpdate(AES-128-GCM)")
            }
        }
    }

    /// Returns ciphertext followed by the 16-byte tag.
    public func seal(nonce: [UInt8], plaintext: [UInt8], authenticating aad: [UInt8] = []) throws -> [UInt8] {
        var output = plaintext + [UInt8](repeating: 0, count: Self.tagLength)
        try nonce.withUnsafeBytes { n in
            try aad.withUnsafeBytes { a in
                try output.withUnsafeMutableBytes { o in
                    let split = o.count - Self.tagLength
                    try seal(
                        nonce: n, authenticating: a, inPlace: UnsafeMutableRawBufferPointer(rebasing: o[..<split]),
                        tag: UnsafeMutableRawBufferPointer(rebasing: o[split...]))
                }
            }
        }
        return output
    }

    /// Takes ciphertext followed by the tag; returns the plaintext or throws.
    public func open(nonce: [UInt8], sealed: [UInt8], authenticating aad: [UInt8] = []) throws -> [UInt8] {
        guard sealed.count >= Self.tagLength else {
            throw OpenSSLError(operation: "AES-128-GCM open", reason: "input shorter than the tag")
        }
        var plaintext = Array(sealed.dropLast(Self.tagLength))
        let tag = Array(sealed.suffix(Self.tagLength))
        try nonce.withUnsafeBytes { n in
            try aad.withUnsafeBytes { a in
                try tag.withUnsafeBytes { t in
                    try plaintext.withUnsafeMutableBytes { try open(nonce: n, authenticating: a, inPlace: $0, tag: t) }
                }
            }
        }
        return plaintext
    }
}
