internal import COpenSSL

/// HKDF with SHA-256 (RFC 5869), through `EVP_PKEY_derive` on an `EVP_PKEY_HKDF` context.
public enum HKDF {
    public static func sha256(
        inputKeyMaterial: some Collection<UInt8>, salt: some Collection<UInt8>, info: some Collection<UInt8>,
        outputLength: Int
    ) throws -> [UInt8] {
        precondition(outputLength > 0 && outputLength <= 255 * 32, "HKDF-SHA256 output length out of range")
        let key = Array(inputKeyMaterial), saltBytes = Array(salt), infoBytes = Array(info)
        guard let context = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, nil) else {
            throw OpenSSLError.drainQueue(after: "EVP_PKEY_CTX_new_id(HKDF)")
        }
        defer { EVP_PKEY_CTX_free(context) }
        guard EVP_PKEY_derive_init(context) == 1, EVP_PKEY_CTX_set_hkdf_md(context, EVP_sha256()) == 1 else {
            throw OpenSSLError.drainQueue(after: "EVP_PKEY_derive_init(HKDF)")
        }
        // OpenSSL copies each input; an empty salt means "HashLen zeros" (RFC 5869 §2.2).
        let configured = withNonNullBytes(key) { k, kCount in
            withNonNullBytes(saltBytes) { s, sCount in
                withNonNullBytes(infoBytes) { i, iCount in
                    EVP_PKEY_CTX_set1_hkdf_key(context, k, Int32(kCount)) == 1
                        && (sCount == 0 || EVP_PKEY_CTX_set1_hkdf_salt(context, s, Int32(sCount)) == 1)
                        && (iCount == 0 || EVP_PKEY_CTX_add1_hkdf_info(context, i, Int32(iCount)) == 1)
                }
            }
        }
        guard configured else { throw OpenSSLError.drainQueue(after: "EVP_PKEY_CTX_set1_hkdf_*") }
        var output = [UInt8](repeating: 0, count: outputLength)
        var length = outputLength
        let ok = output.withUnsafeMutableBufferPointer { EVP_PKEY_derive(context, $0.baseAddress, &length) }
        guard ok == 1, length == outputLength else { throw OpenSSLError.drainQueue(after: "EVP_PKEY_derive(HKDF)") }
        return output
    }
}


/// scrypt (RFC 7914) through `EVP_PBE_scrypt`, for password hashes.
public enum Scrypt {
    public struct Parameters: Sendable, Equatable {
        public var cost: UInt64  // N, a power of two
        public var blockSize: UInt64  // r
        public var parallelism: UInt64  // p
        public init(cost: UInt64, blockSize: UInt64, parallelism: UInt64) {
            self.cost = cost
            self.blockSize = blockSize
            self.parallelism = parallelism
        }
        /// N = 2^15, r = 8, p = 1: about 32 MiB and 0.1 s on the appliance's class of CPU.
        public static let interactive = Parameters(cost: 1 << 15, blockSize: 8, parallelism: 1)
    }

    public static func derive(
        password: some Collection<UInt8>, salt: some Collection<UInt8>, parameters: Parameters = .interactive,
        outputLength: Int = 32
    ) throws -> [UInt8] {
        let passwordBytes = Array(password), saltBytes = Array(salt)
        var output = [UInt8](repeating: 0, count: outputLength)
        // Memory needed is 128 * r * (N + p) bytes; allow that plus slack.
        let memory = 128 * parameters.blockSize * (parameters.cost + parameters.parallelism) + (1 << 20)
        let ok = withNonNullBytes(passwordBytes) { p, pCount in
            withNonNullBytes(saltBytes) { s, sCount in
                output.withUnsafeMutableBufferPointer { o in
                    EVP_PBE_scrypt(
                        UnsafeRawPointer(p).assumingMemoryBound(to: CChar.self), pCount, s, sCount,
                        parameters.cost, parameters.blockSize, parameters.parallelism, memory,
                        o.baseAddress, o.count)
                }
            }
        }
        guard ok == 1 else { throw OpenSSLError.drainQueue(after: "EVP_PBE_scrypt") }
        return output
    }
}
