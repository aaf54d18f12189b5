import ConclaveCrypto

/// A scrypt password hash with its own salt and parameters, as one `user` row keeps it: raising
/// the default cost later leaves older rows verifiable.
struct PasswordHash {
    static let saltLength = 16
    static let hashLength = 32

    let hash: [UInt8]
    let salt: [UInt8]
    let parameters: Scrypt.Parameters

    /// A fresh random salt per call, so two users with one password get different hashes.
    static func make(password: String, parameters: Scrypt.Parameters) throws -> PasswordHash {
        let salt = SecureRandom.bytes(count: saltLength)
        let hash = try Scrypt.derive(password: Array(password.utf8), salt: salt, parameters: parameters, outputLength: hashLength)
        return PasswordHash(hash: hash, salt: salt, parameters: parameters)
    }

    func matches(password: String) throws -> Bool {
        let candidate = try Scrypt.derive(password: Array(password.utf8), salt: salt, parameters: parameters, outputLength: hash.count)
        return ConstantTime.equals(candidate, hash)
    }
}
