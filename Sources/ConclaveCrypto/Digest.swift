internal import COpenSSL

/// One-shot message digests through OpenSSL's EVP interface.
public enum Digest {
    /// SHA-256 of `bytes` (`EVP_Digest` with `EVP_sha256`).
    public static func sha256(_ bytes: some Collection<UInt8>) throws -> [UInt8] {
        let input = Array(bytes)
        var output = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let ok = input.withUnsafeBytes { inputBuffer in
            output.withUnsafeMutableBufferPointer { outputBuffer in
                EVP_Digest(inputBuffer.baseAddress, inputBuffer.count, outputBuffer.baseAddress, &length, EVP_sha256(), nil)
            }
        }
        guard ok == 1 else { throw OpenSSLError.drainQueue(after: "EVP_Digest(SHA-256)") }
        return Array(output.prefix(Int(length)))
    }
}
