internal import COpenSSL

/// One-shot message digests through OpenSSL's EVP interface.
public enum Digest {
    /// SHA-256 of `bytes` (`EVP_Digest` with `EVP_sha256`).
    public static func sha256(_ bytes: some Collection<UInt8>) throws -> [UInt8] {
        try digest(bytes, EVP_sha256(), name: "SHA-256")
    }

    /// MD5 of `bytes` (`EVP_Digest` with `EVP_md5`), only for protocols that still name it, such as
    /// SIP digest authentication (RFC 8760 keeps MD5 for old user agents); never for new designs.
    public static func md5(_ bytes: some Collection<UInt8>) throws -> [UInt8] {
        try digest(bytes, EVP_md5(), name: "MD5")
    }

    private static func digest(_ bytes: some Collection<UInt8>, _ algorithm: OpaquePointer?, name: String) throws -> [UInt8] {
        let input = Array(bytes)
        var output = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let ok = input.withUnsafeBytes { inputBuffer in
            output.withUnsafeMutableBufferPointer { outputBuffer in
                EVP_Digest(inputBuffer.baseAddress, inputBuffer.count, outputBuffer.baseAddress, &length, algorithm, nil)
            }
        }
        guard ok == 1 else { throw OpenSSLError.drainQueue(after: "EVP_Digest(\(name))") }
        return Array(output.prefix(Int(length)))
    }
}

/// Incremental SHA-256 (`EVP_DigestInit_ex`/`Update`/`Final_ex`), for data streamed in chunks
/// (an update image is hashed as it is read). Owns the `EVP_MD_CTX` and frees it in `deinit`.
public final class SHA256Hasher {
    private let context: OpaquePointer

    public init() throws {
        guard let context = EVP_MD_CTX_new() else { throw OpenSSLError.drainQueue(after: "EVP_MD_CTX_new") }
        self.context = context
        guard EVP_DigestInit_ex(context, EVP_sha256(), nil) == 1 else { throw OpenSSLError.drainQueue(after: "EVP_DigestInit_ex") }
    }

    deinit { EVP_MD_CTX_free(context) }

    public func update(_ bytes: ArraySlice<UInt8>) {
        let ok = bytes.withUnsafeBytes { EVP_DigestUpdate(context, $0.baseAddress, $0.count) }
        precondition(ok == 1, "EVP_DigestUpdate(SHA-256) failed")
    }

    public func update(_ bytes: [UInt8]) { update(bytes[...]) }

    /// The digest; the hasher must not be used afterwards.
    public func finish() throws -> [UInt8] {
        var output = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        guard EVP_DigestFinal_ex(context, &output, &length) == 1 else { throw OpenSSLError.drainQueue(after: "EVP_DigestFinal_ex") }
        return Array(output.prefix(Int(length)))
    }
}
