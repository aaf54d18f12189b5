internal import COpenSSL

/// Keyed message authentication through OpenSSL's EVP_MAC interface.
public enum HMAC {
    /// HMAC-SHA256 of `message` under `key` (RFC 2104; `EVP_Q_mac` with "HMAC" and "SHA256").
    public static func sha256(key: [UInt8], message: some Collection<UInt8>) throws -> [UInt8] {
        precondition(!key.isEmpty, "an HMAC key is never empty")
        let input = Array(message)
        var output = [UInt8](repeating: 0, count: 32)
        var length = 0
        let result = key.withUnsafeBytes { keyBuffer in
            input.withUnsafeBytes { inputBuffer in
                output.withUnsafeMutableBufferPointer { outputBuffer in
                    EVP_Q_mac(
                        nil, "HMAC", nil, "SHA256", nil, keyBuffer.baseAddress, keyBuffer.count,
                        inputBuffer.baseAddress?.assumingMemoryBound(to: UInt8.self), inputBuffer.count, outputBuffer.baseAddress,
                        outputBuffer.count, &length)
                }
            }
        }
        guard result != nil, length == 32 else { throw OpenSSLError.drainQueue(after: "EVP_Q_mac(HMAC-SHA256)") }
        return output
    }
}
