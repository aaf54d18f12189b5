internal import COpenSSL

/// The key algorithms Conclave generates: EC P-256 (default), P-384, RSA.
public enum KeyAlgorithm: Sendable, Hashable, CustomStringConvertible {
    case ecP256
    case ecP384
    case rsa(bits: Int)

    /// Parses the command-line names `ec256`, `ec384`, `rsa2048`, `rsa3072`, `rsa4096`.
    public init?(name: String) {
        switch name.lowercased() {
        case "ec256", "p256", "p-256": self = .ecP256
        case "ec384", "p384", "p-384": self = .ecP384
        case "rsa2048": self = .rsa(bits: 2048)
        case "rsa3072": self = .rsa(bits: 3072)
        case "rsa4096": self = .rsa(bits: 4096)
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .ecP256: "ec256"
        case .ecP384: "ec384"
        case .rsa(let bits): "rsa\(bits)"
        }
    }
}

/// What a public key is: algorithm, size and (EC) curve.
public struct KeyDescription: Sendable, Hashable, CustomStringConvertible {
    public enum Family: String, Sendable { case ec = "EC", rsa = "RSA", ed25519 = "Ed25519", ed448 = "Ed448", other = "other" }
    public let family: Family
    public let bits: Int
    /// NIST name when known ("P-256"), else OpenSSL's group name.
    public let curve: String?

    public var description: String {
        switch family {
        case .ec: "EC \(curve ?? "?") (\(bits) bits)"
        default: "\(family.rawValue) \(bits) bits"
        }
    }

    /// Reads an `EVP_PKEY` (public or private).
    init(key: OpaquePointer) {
        bits = Int(EVP_PKEY_get_bits(key))
        switch EVP_PKEY_get_base_id(key) {
        case EVP_PKEY_EC:
            family = .ec
            var name = [CChar](repeating: 0, count: 80)
            var length = 0
            if EVP_PKEY_get_group_name(key, &name, name.count, &length) == 1 {
                let group = String(decoding: name.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
                curve = ["prime256v1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"][group] ?? group
            } else {
                OpenSSLError.clearQueue()
                curve = nil
            }
        case EVP_PKEY_RSA, EVP_PKEY_RSA_PSS: family = .rsa; curve = nil
        case EVP_PKEY_ED25519: family = .ed25519; curve = nil
        case EVP_PKEY_ED448: family = .ed448; curve = nil
        default: family = .other; curve = nil
        }
    }
}

/// An OpenSSL `EVP_PKEY` holding a private key. Owns the pointer and frees it in `deinit`.
/// Immutable after creation, so it can be shared between threads.
public final class PrivateKey: @unchecked Sendable {
    let pointer: OpaquePointer

    /// The caller hands over ownership and must not free `pointer`.
    init(takingOwnership pointer: OpaquePointer) { self.pointer = pointer }

    deinit { EVP_PKEY_free(pointer) }

    /// Generates a new key (`EVP_PKEY_generate`).
    public static func generate(_ algorithm: KeyAlgorithm = .ecP256) throws -> PrivateKey {
        let name = switch algorithm {
        case .ecP256, .ecP384: "EC"
        case .rsa: "RSA"
        }
        guard let context = EVP_PKEY_CTX_new_from_name(nil, name, nil) else {
            throw OpenSSLError.drainQueue(after: "EVP_PKEY_CTX_new_from_name(\(name))")
        }
        defer { EVP_PKEY_CTX_free(context) }
        guard EVP_PKEY_keygen_init(context) == 1 else { throw OpenSSLError.drainQueue(after: "EVP_PKEY_keygen_init") }
        let configured = switch algorithm {
        case .ecP256: EVP_PKEY_CTX_set_group_name(context, "P-256") == 1
        case .ecP384: EVP_PKEY_CTX_set_group_name(context, "P-384") == 1
        case .rsa(let bits): EVP_PKEY_CTX_set_rsa_keygen_bits(context, Int32(bits)) == 1
        }
        guard configured else { throw OpenSSLError.drainQueue(after: "configure \(algorithm) key generation") }
        var key: OpaquePointer? = nil
        guard EVP_PKEY_generate(context, &key) == 1, let key else {
            throw OpenSSLError.drainQueue(after: "EVP_PKEY_generate(\(algorithm))")
        }
        return PrivateKey(takingOwnership: key)
    }

    /// Reads a PEM private key (PKCS#8, traditional EC or RSA; `PEM_read_bio_PrivateKey`) or a
    /// DER one (`d2i_AutoPrivateKey`). Encrypted PEM needs `password`.
    public convenience init(encoded bytes: [UInt8], password: String? = nil) throws {
        if String.isPEM(bytes) {
            let bio = MemoryBIO(bytes)
            defer { withExtendedLifetime(bio) {} }  // keeps the C object alive for every call below
            let key: OpaquePointer?
            if let password {
                key = password.withCString { PEM_read_bio_PrivateKey(bio.pointer, nil, nil, UnsafeMutableRawPointer(mutating: $0)) }
            } else {
                // An empty passphrase, so that an encrypted key fails instead of prompting on the TTY.
                key = "".withCString { PEM_read_bio_PrivateKey(bio.pointer, nil, nil, UnsafeMutableRawPointer(mutating: $0)) }
            }
            guard let key else { throw OpenSSLError.drainQueue(after: "PEM_read_bio_PrivateKey") }
            self.init(takingOwnership: key)
        } else {
            guard let key = decodeDER(bytes, { d2i_AutoPrivateKey(nil, $0, $1) }) else {
                throw OpenSSLError(operation: "read private key", reason: "not a PEM or DER private key")
            }
            self.init(takingOwnership: key)
        }
    }

    /// Unencrypted PKCS#8 PEM (`PEM_write_bio_PrivateKey`). A secret: write it 0600.
    public var pemEncoded: String {
        let bio = MemoryBIO()
        precondition(PEM_write_bio_PrivateKey(bio.pointer, pointer, nil, nil, 0, nil, nil) == 1, "PEM_write_bio_PrivateKey failed")
        return bio.string
    }

    /// The public half as SubjectPublicKeyInfo PEM (`PEM_write_bio_PUBKEY`).
    public var publicKeyPEM: String {
        let bio = MemoryBIO()
        precondition(PEM_write_bio_PUBKEY(bio.pointer, pointer) == 1, "PEM_write_bio_PUBKEY failed")
        return bio.string
    }

    public var keyDescription: KeyDescription { KeyDescription(key: pointer) }

    /// Whether `certificate` carries this key's public half (`X509_check_private_key`).
    public func matches(_ certificate: X509Certificate) -> Bool {
        certificate.matches(self)
    }

    /// The digest to sign certificates with: SHA-384 for P-384, SHA-256 otherwise.
    var signingDigest: OpaquePointer? {
        keyDescription.curve == "P-384" ? EVP_sha384() : EVP_sha256()
    }
}
