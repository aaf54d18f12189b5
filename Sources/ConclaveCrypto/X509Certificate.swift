internal import COpenSSL
internal import CConclaveOpenSSLShims
public import FoundationEssentials
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One subjectAltName entry.
public enum SubjectAlternativeName: Sendable, Hashable, CustomStringConvertible {
    case dns(String)
    case ip(String)
    case email(String)
    case uri(String)

    /// Parses `DNS:name` or `IP:address`; a bare name is DNS, a bare address is IP.
    public init?(parsing text: String) {
        if text.hasPrefix("DNS:") { self = .dns(String(text.dropFirst(4))) }
        else if text.hasPrefix("IP:") { self = .ip(String(text.dropFirst(3))) }
        else if IPAddress.bytes(of: text) != nil { self = .ip(text) }
        else { self = .dns(text) }
        guard isWellFormed else { return nil }
    }

    public var description: String {
        switch self {
        case .dns(let name): "DNS:\(name)"
        case .ip(let address): "IP:\(address)"
        case .email(let address): "email:\(address)"
        case .uri(let uri): "URI:\(uri)"
        }
    }

    /// Whether it can go into an OpenSSL configuration string: no separators, valid syntax.
    var isWellFormed: Bool {
        switch self {
        case .dns(let name):
            return !name.isEmpty && name.count <= 253
                && name.utf8.allSatisfy { $0 == 0x2E || $0 == 0x2D || $0 == 0x2A || (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) }
        case .ip(let address): return IPAddress.bytes(of: address) != nil
        case .email(let address): return !address.isEmpty && !address.contains(",") && !address.contains("\n")
        case .uri(let uri): return !uri.isEmpty && !uri.contains(",") && !uri.contains("\n")
        }
    }
}

enum IPAddress {
    /// 4 or 16 bytes for a textual IPv4/IPv6 address (`inet_pton`), nil otherwise.
    static func bytes(of text: String) -> [UInt8]? {
        var v4 = [UInt8](repeating: 0, count: 4)
        if inet_pton(AF_INET, text, &v4) == 1 { return v4 }
        var v6 = [UInt8](repeating: 0, count: 16)
        if inet_pton(AF_INET6, text, &v6) == 1 { return v6 }
        return nil
    }

    static func text(of bytes: [UInt8]) -> String {
        var output = [CChar](repeating: 0, count: 64)
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        guard bytes.count == 4 || bytes.count == 16, inet_ntop(family, bytes, &output, 64) != nil else {
            return bytes.map { String($0) }.joined(separator: ".")
        }
        return String(cString: output)
    }
}

/// An OpenSSL `X509`. Owns the pointer and frees it in `deinit`. Immutable once built, so it
/// is shared freely between threads (OpenSSL reference-counts and locks its caches).
public final class X509Certificate: @unchecked Sendable, Hashable, CustomStringConvertible {
    let pointer: OpaquePointer

    /// The caller hands over ownership and must not free `pointer`.
    init(takingOwnership pointer: OpaquePointer) { self.pointer = pointer }

    /// Takes a new reference on a pointer that someone else owns (`X509_up_ref`).
    init(borrowing pointer: OpaquePointer) {
        X509_up_ref(pointer)
        self.pointer = pointer
    }

    deinit { X509_free(pointer) }

    public convenience init(derEncoded der: [UInt8]) throws {
        guard let parsed = decodeDER(der, { d2i_X509(nil, $0, $1) }) else {
            throw OpenSSLError(operation: "d2i_X509", reason: "not a DER certificate")
        }
        self.init(takingOwnership: parsed)
    }

    /// Every `CERTIFICATE` block of a PEM text, in order (`PEM_read_bio_X509`).
    public static func certificates(pemEncoded bytes: [UInt8]) throws -> [X509Certificate] {
        let bio = MemoryBIO(bytes)
        defer { withExtendedLifetime(bio) {} }  // keeps the C object alive for every call below
        var certificates: [X509Certificate] = []
        while let certificate = PEM_read_bio_X509(bio.pointer, nil, nil, nil) {
            certificates.append(X509Certificate(takingOwnership: certificate))
        }
        // The loop ends on "no start line"; anything else is a damaged block.
        let lastError = ERR_peek_last_error()
        if lastError != 0 && ERR_GET_REASON(lastError) != PEM_R_NO_START_LINE {
            throw OpenSSLError.drainQueue(after: "PEM_read_bio_X509")
        }
        OpenSSLError.clearQueue()
        return certificates
    }

    public func withUnsafeX509<Result>(_ body: (OpaquePointer) throws -> Result) rethrows -> Result {
        try body(pointer)
    }

    public var derEncoded: [UInt8] {
        (try? encodeDER("i2d_X509") { i2d_X509(pointer, $0) }) ?? []
    }

    public var pemEncoded: String {
        let bio = MemoryBIO()
        precondition(PEM_write_bio_X509(bio.pointer, pointer) == 1, "PEM_write_bio_X509 failed")
        return bio.string
    }

    // MARK: Names

    /// The subject as RFC 2253 text ("CN=conclave.example,O=Example").
    public var subject: String { Self.text(of: X509_get_subject_name(pointer)) }
    public var issuer: String { Self.text(of: X509_get_issuer_name(pointer)) }
    public var subjectCommonName: String? { Self.commonName(of: X509_get_subject_name(pointer)) }

    static func text(of name: OpaquePointer?) -> String {
        guard let name else { return "" }
        let bio = MemoryBIO()
        _ = conclave_ssl_name_print_rfc2253(bio.pointer, name)
        return bio.string
    }

    static func commonName(of name: OpaquePointer?) -> String? {
        guard let name else { return nil }
        let index = X509_NAME_get_index_by_NID(name, NID_commonName, -1)
        guard index >= 0, let entry = X509_NAME_get_entry(name, index),
            let data = X509_NAME_ENTRY_get_data(entry)
        else { return nil }
        var utf8: UnsafeMutablePointer<UInt8>? = nil
        let length = ASN1_STRING_to_UTF8(&utf8, data)
        guard length >= 0, let utf8 else { return nil }
        defer { CRYPTO_free(utf8, #fileID, #line) }
        return String(decoding: UnsafeBufferPointer(start: utf8, count: Int(length)), as: UTF8.self)
    }

    /// Hex serial number, as `openssl x509 -serial` prints it.
    public var serialNumber: String {
        guard let serial = X509_get0_serialNumber(pointer), let number = ASN1_INTEGER_to_BN(serial, nil) else { return "" }
        defer { BN_free(number) }
        guard let hex = BN_bn2hex(number) else { return "" }
        defer { CRYPTO_free(hex, #fileID, #line) }
        return String(cString: hex)
    }

    // MARK: Extensions

    public var subjectAlternativeNames: [SubjectAlternativeName] {
        guard let names = X509_get_ext_d2i(pointer, NID_subject_alt_name, nil, nil) else { return [] }
        let stack = OpaquePointer(names)
        defer { GENERAL_NAMES_free(stack) }
        return Self.alternativeNames(in: stack)
    }

    /// Reads a `GENERAL_NAMES` stack (borrowed).
    static func alternativeNames(in stack: OpaquePointer) -> [SubjectAlternativeName] {
        var result: [SubjectAlternativeName] = []
        for index in 0..<OPENSSL_sk_num(stack) {
            guard let raw = OPENSSL_sk_value(stack, index) else { continue }
            let name = raw.assumingMemoryBound(to: GENERAL_NAME.self).pointee
            func bytes(_ string: UnsafeMutablePointer<ASN1_STRING>?) -> [UInt8] {
                guard let string, let data = ASN1_STRING_get0_data(string) else { return [] }
                return Array(UnsafeBufferPointer(start: data, count: Int(ASN1_STRING_length(string))))
            }
            switch name.type {
            case GEN_DNS: result.append(.dns(String(decoding: bytes(name.d.dNSName), as: UTF8.self)))
            case GEN_IPADD: result.append(.ip(IPAddress.text(of: bytes(name.d.iPAddress))))
            case GEN_EMAIL: result.append(.email(String(decoding: bytes(name.d.rfc822Name), as: UTF8.self)))
            case GEN_URI: result.append(.uri(String(decoding: bytes(name.d.uniformResourceIdentifier), as: UTF8.self)))
            default: continue
            }
        }
        return result
    }

    /// Short names of the extended key usages ("serverAuth", "clientAuth", "codeSigning", or
    /// the dotted OID); empty when the extension is absent.
    public var extendedKeyUsages: [String] {
        guard let usages = X509_get_ext_d2i(pointer, NID_ext_key_usage, nil, nil) else { return [] }
        let stack = OpaquePointer(usages)
        defer { EXTENDED_KEY_USAGE_free(stack) }
        var result: [String] = []
        for index in 0..<OPENSSL_sk_num(stack) {
            guard let raw = OPENSSL_sk_value(stack, index) else { continue }
            let object = OpaquePointer(raw)
            let nid = OBJ_obj2nid(object)
            if nid != NID_undef, let name = OBJ_nid2sn(nid) {
                result.append(String(cString: name))
            } else {
                var text = [CChar](repeating: 0, count: 128)
                _ = OBJ_obj2txt(&text, Int32(text.count), object, 1)
                result.append(String(cString: text))
            }
        }
        return result
    }

    public struct BasicConstraints: Sendable, Hashable {
        public let isCertificateAuthority: Bool
        public let pathLength: Int?
    }

    /// The basicConstraints extension, nil when absent.
    public var basicConstraints: BasicConstraints? {
        guard let raw = X509_get_ext_d2i(pointer, NID_basic_constraints, nil, nil) else { return nil }
        let constraints = raw.assumingMemoryBound(to: BASIC_CONSTRAINTS.self)
        defer { BASIC_CONSTRAINTS_free(constraints) }
        let pathLength = constraints.pointee.pathlen.map { Int(ASN1_INTEGER_get($0)) }
        return BasicConstraints(isCertificateAuthority: constraints.pointee.ca != 0, pathLength: pathLength)
    }

    /// True when basicConstraints says CA (what a server certificate must not say).
    public var isCertificateAuthority: Bool { basicConstraints?.isCertificateAuthority ?? false }

    // MARK: Validity, key, signature

    public var notValidBefore: Date { Self.date(of: X509_get0_notBefore(pointer)) }
    public var notValidAfter: Date { Self.date(of: X509_get0_notAfter(pointer)) }

    static func date(of time: UnsafePointer<ASN1_TIME>?) -> Date {
        guard let time else { return Date(timeIntervalSince1970: 0) }
        var parts = tm()
        guard ASN1_TIME_to_tm(time, &parts) == 1 else { return Date(timeIntervalSince1970: 0) }
        return Date(timeIntervalSince1970: TimeInterval(timegm(&parts)))
    }

    public var publicKey: KeyDescription {
        guard let key = X509_get0_pubkey(pointer) else {
            return KeyDescription(key: pointer)  // unreachable for a parsed certificate
        }
        return KeyDescription(key: key)
    }

    /// OpenSSL's long name of the signature algorithm ("ecdsa-with-SHA256", "sha256WithRSAEncryption").
    public var signatureAlgorithm: String {
        let nid = X509_get_signature_nid(pointer)
        return OBJ_nid2ln(nid).map { String(cString: $0) } ?? "unknown"
    }

    /// The digest inside the signature algorithm ("SHA256", "SHA1"), nil when it has none (Ed25519).
    public var signatureDigest: String? {
        var digest: Int32 = 0
        var publicKey: Int32 = 0
        guard OBJ_find_sigid_algs(X509_get_signature_nid(pointer), &digest, &publicKey) == 1, digest != NID_undef else {
            return nil
        }
        return OBJ_nid2sn(digest).map { String(cString: $0) }
    }

    /// SHA-256 over the DER encoding (`X509_digest`).
    public var sha256Fingerprint: [UInt8] {
        var output = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        guard X509_digest(pointer, EVP_sha256(), &output, &length) == 1 else { return [] }
        return Array(output.prefix(Int(length)))
    }

    /// "AB:CD:…", as `openssl x509 -fingerprint -sha256` prints it.
    public var sha256FingerprintText: String { Self.colonHex(sha256Fingerprint) }

    static func colonHex(_ bytes: [UInt8]) -> String {
        bytes.map { byte in
            let hex = String(byte, radix: 16, uppercase: true)
            return hex.count == 1 ? "0" + hex : hex
        }.joined(separator: ":")
    }

    // MARK: Relations

    /// Whether `key` is the private half of this certificate's public key.
    public func matches(_ key: PrivateKey) -> Bool {
        guard let publicKey = X509_get0_pubkey(pointer) else { return false }
        return EVP_PKEY_eq(publicKey, key.pointer) == 1
    }

    /// Whether `issuer`'s subject and key issued this certificate: our issuer name is its
    /// subject and its key verifies our signature (`X509_NAME_cmp`, `X509_verify`). Key usage is
    /// not consulted, so a self-signed leaf counts as self-issued.
    public func isIssued(by issuer: X509Certificate) -> Bool {
        guard X509_NAME_cmp(X509_get_issuer_name(pointer), X509_get_subject_name(issuer.pointer)) == 0,
            let key = X509_get0_pubkey(issuer.pointer)
        else { return false }
        let verified = X509_verify(pointer, key) == 1
        OpenSSLError.clearQueue()
        return verified
    }

    public var isSelfIssued: Bool { isIssued(by: self) }

    /// RFC 6125 matching of a DNS name or an IP address against the SANs
    /// (`X509_check_host` / `X509_check_ip_asc`; the CN is not consulted).
    public func matches(hostname: String) -> Bool {
        if IPAddress.bytes(of: hostname) != nil {
            return X509_check_ip_asc(pointer, hostname, 0) == 1
        }
        return X509_check_host(pointer, hostname, hostname.utf8.count, UInt32(X509_CHECK_FLAG_NEVER_CHECK_SUBJECT), nil) == 1
    }

    // MARK: Hashable

    public static func == (lhs: X509Certificate, rhs: X509Certificate) -> Bool {
        X509_cmp(lhs.pointer, rhs.pointer) == 0
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(sha256Fingerprint) }

    public var description: String { "X509Certificate(\(subject), \(sha256FingerprintText.prefix(23))…)" }
}
