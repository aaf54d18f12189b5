public import ConclaveCrypto
public import FoundationEssentials
import ConclaveSystem

public enum JoinTokenError: Error, CustomStringConvertible, Equatable, Sendable {
    /// Not a JWS compact serialisation, or a header or claim of the wrong shape.
    case malformed(String)
    /// The signature does not verify with the configured key (or was made for another key type).
    case badSignature
    case expired(at: Date)
    case notYetValid(until: Date)
    case wrongAudience(String)
    /// The token names another meeting than the one being joined.
    case wrongMeeting(String)
    /// `alg` is not ES256 or EdDSA ("none" and HMAC are never accepted).
    case unsupportedAlgorithm(String)

    public var description: String {
        switch self {
        case .malformed(let reason): "join token is malformed: \(reason)"
        case .badSignature: "join token signature does not verify with the configured management key"
        case .expired(let at): "join token expired at \(at.formatted(.iso8601))"
        case .notYetValid(let until): "join token is not valid before \(until.formatted(.iso8601))"
        case .wrongAudience(let audience): "join token is for \"\(audience)\", not this appliance"
        case .wrongMeeting(let meeting): "join token is for meeting \"\(meeting)\", not this one"
        case .unsupportedAlgorithm(let algorithm): "join token algorithm \"\(algorithm)\" is not accepted (ES256 or EdDSA only)"
        }
    }

    /// A short stable code for protocol answers and logs.
    public var code: String {
        switch self {
        case .malformed: "token-malformed"
        case .badSignature: "token-bad-signature"
        case .expired: "token-expired"
        case .notYetValid: "token-not-yet-valid"
        case .wrongAudience: "token-wrong-audience"
        case .wrongMeeting: "token-wrong-meeting"
        case .unsupportedAlgorithm: "token-unsupported-algorithm"
        }
    }
}

/// Single sign-on join tokens issued by the management server: JWTs (RFC 7519) in JWS compact
/// form (RFC 7515), signed ES256 (ECDSA P-256, raw r‖s, RFC 7518 §3.4) or EdDSA (Ed25519,
/// RFC 8037). The appliance holds only the public key (`ssoKey`). See docs/identity.md.
public enum JoinToken {
    /// Longer tokens are refused before any parsing.
    public static let maximumLength = 8192
    /// Clock difference tolerated on `exp` and `nbf` (RFC 7519 §4.1.4 allows "a small leeway").
    public static let defaultLeeway: Duration = .seconds(30)

    public struct Claims: Sendable, Equatable {
        /// `iss`: who issued it (the management server's name).
        public var issuer: String
        /// `sub`: the user's email, normalised.
        public var subject: String
        /// `aud`: the appliance FQDN.
        public var audience: String
        /// `exp`, required.
        public var expires: Date
        public var notBefore: Date?
        public var issuedAt: Date?
        /// When present, the token admits only to this meeting.
        public var meeting: String?
        /// Display name.
        public var name: String?

        public init(
            issuer: String, subject: String, audience: String, expires: Date, notBefore: Date? = nil, issuedAt: Date? = nil,
            meeting: String? = nil, name: String? = nil
        ) {
            self.issuer = issuer
            self.subject = subject
            self.audience = audience
            self.expires = expires
            self.notBefore = notBefore
            self.issuedAt = issuedAt
            self.meeting = meeting
            self.name = name
        }
    }

    /// Verifies the signature with `publicKeyPEM` ("PUBLIC KEY" or a certificate), then `exp`,
    /// `nbf`, `aud` (must equal `audience`, case-insensitively as a host name) and `meeting`.
    public static func verify(
        _ token: String, publicKeyPEM: [UInt8], audience: String, meeting: String, now: Date, leeway: Duration = defaultLeeway
    ) throws(JoinTokenError) -> Claims {
        let key: PublicKey
        do { key = try PublicKey(pemEncoded: publicKeyPEM) } catch {
            // A configuration fault, not the client's; still no token passes.
            throw .malformed("the configured verification key is unusable: \(error)")
        }
        return try verify(token, key: key, audience: audience, meeting: meeting, now: now, leeway: leeway)
    }

    /// As above, with a key read once (the control worker keeps it between joins).
    public static func verify(
        _ token: String, key: PublicKey, audience: String, meeting: String, now: Date, leeway: Duration = defaultLeeway
    ) throws(JoinTokenError) -> Claims {
        guard token.utf8.count <= maximumLength else { throw .malformed("longer than \(maximumLength) bytes") }
        let parts = token.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw .malformed("expected three dot-separated parts, got \(parts.count)") }
        guard let headerBytes = Base64URL.decode(parts[0]) else { throw .malformed("the header is not base64url") }
        guard let payloadBytes = Base64URL.decode(parts[1]) else { throw .malformed("the payload is not base64url") }
        guard let signature = Base64URL.decode(parts[2]) else { throw .malformed("the signature is not base64url") }

        let header = try object(headerBytes, part: "header")
        guard case .string(let name)? = header["alg"] else { throw .malformed("the header has no \"alg\"") }
        guard let algorithm = SignatureAlgorithm(rawValue: name) else { throw .unsupportedAlgorithm(name) }
        if let type = header["typ"] {
            guard case .string(let text) = type, text.uppercased() == "JWT" else { throw .malformed("\"typ\" must be \"JWT\"") }
        }
        // RFC 7515 §4.1.11: extensions we do not understand make the token invalid.
        guard header["crit"] == nil else { throw .malformed("\"crit\" header extensions are not supported") }

        // The algorithm must be the key's own: a header cannot choose how the key is used.
        let signingInput = Array(parts[0]) + [UInt8(ascii: ".")] + Array(parts[1])
        guard algorithm == SignatureAlgorithm(key: key.keyDescription),
            key.isValidSignature(signature, of: signingInput, algorithm: algorithm)
        else { throw .badSignature }

        let claims = try self.claims(from: object(payloadBytes, part: "payload"))
        let tolerance = leeway.seconds
        guard now.timeIntervalSince1970 < claims.expires.timeIntervalSince1970 + tolerance else { throw .expired(at: claims.expires) }
        if let notBefore = claims.notBefore, now.timeIntervalSince1970 + tolerance < notBefore.timeIntervalSince1970 {
            throw .notYetValid(until: notBefore)
        }
        guard claims.audience.lowercased() == audience.lowercased() else { throw .wrongAudience(claims.audience) }
        if let tokenMeeting = claims.meeting, tokenMeeting != meeting { throw .wrongMeeting(tokenMeeting) }
        return claims
    }

    /// Signs `claims` with a P-256 (ES256) or Ed25519 (EdDSA) private key in PEM: what a
    /// management server does, and the reference `conclave token sign` prints.
    public static func sign(_ claims: Claims, privateKeyPEM: [UInt8]) throws -> String {
        try sign(claims, key: PrivateKey(encoded: privateKeyPEM))
    }

    public static func sign(_ claims: Claims, key: PrivateKey) throws -> String {
        guard key.signatureAlgorithm != nil else { throw UnsuitableSigningKey(key: "\(key.keyDescription)") }
        let subject = try IdentityStore.normalisedEmail(claims.subject)
        var payload: [String: JSONValue] = [
            "iss": .string(claims.issuer), "sub": .string(subject), "aud": .string(claims.audience),
            "exp": .number(claims.expires.timeIntervalSince1970.rounded(.down)),
        ]
        if let notBefore = claims.notBefore { payload["nbf"] = .number(notBefore.timeIntervalSince1970.rounded(.down)) }
        if let issuedAt = claims.issuedAt { payload["iat"] = .number(issuedAt.timeIntervalSince1970.rounded(.down)) }
        if let meeting = claims.meeting { payload["meeting"] = .string(meeting) }
        if let name = claims.name { payload["name"] = .string(name) }
        let header: [String: JSONValue] = ["alg": .string(key.signatureAlgorithm!.rawValue), "typ": .string("JWT")]
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let signingInput =
            Base64URL.encode(Array(try encoder.encode(header))) + "." + Base64URL.encode(Array(try encoder.encode(payload)))
        let signature = try key.sign(Array(signingInput.utf8))
        return signingInput + "." + Base64URL.encode(signature)
    }

    // MARK: Parsing

    private static func object(_ bytes: [UInt8], part: String) throws(JoinTokenError) -> [String: JSONValue] {
        do { return try JSONDecoder().decode([String: JSONValue].self, from: Data(bytes)) } catch {
            throw .malformed("the \(part) is not a JSON object")
        }
    }

    private static func claims(from payload: [String: JSONValue]) throws(JoinTokenError) -> Claims {
        func string(_ name: String, required: Bool) throws(JoinTokenError) -> String? {
            switch payload[name] {
            case nil, .null?:
                if required { throw .malformed("the \"\(name)\" claim is missing") }
                return nil
            case .string(let text)?:
                guard !text.isEmpty, text.utf8.count <= 1024 else { throw .malformed("the \"\(name)\" claim must be 1 to 1024 bytes") }
                return text
            default: throw .malformed("the \"\(name)\" claim must be a string")
            }
        }
        func date(_ name: String, required: Bool) throws(JoinTokenError) -> Date? {
            switch payload[name] {
            case nil, .null?:
                if required { throw .malformed("the \"\(name)\" claim is missing") }
                return nil
            case .number(let seconds)?:
                guard seconds.isFinite, seconds >= 0, seconds < 1e11 else { throw .malformed("the \"\(name)\" claim is out of range") }
                return Date(timeIntervalSince1970: seconds)
            default: throw .malformed("the \"\(name)\" claim must be a NumericDate (seconds since 1970)")
            }
        }
        // RFC 7519 §4.1.3: "aud" is a string or an array of strings; one array entry must match.
        let audience: String
        switch payload["aud"] {
        case .string(let text)?: audience = text
        case .array(let entries)? where entries.count == 1:
            guard case .string(let text) = entries[0] else { throw .malformed("the \"aud\" claim must hold strings") }
            audience = text
        case .array?: throw .malformed("the \"aud\" claim must name exactly one appliance")
        case nil, .null?: throw .malformed("the \"aud\" claim is missing")
        default: throw .malformed("the \"aud\" claim must be a string")
        }
        let subject: String
        do { subject = try IdentityStore.normalisedEmail(try string("sub", required: true)!) } catch let error as IdentityError {
            throw .malformed("the \"sub\" claim is not an email: \(error)")
        } catch let error as JoinTokenError { throw error } catch { throw .malformed("\(error)") }
        return Claims(
            issuer: try string("iss", required: true)!, subject: subject, audience: audience,
            expires: try date("exp", required: true)!, notBefore: try date("nbf", required: false),
            issuedAt: try date("iat", required: false), meeting: try string("meeting", required: false),
            name: try string("name", required: false))
    }
}

/// `JoinToken.sign` with a key that has no JWS algorithm here.
public struct UnsuitableSigningKey: Error, CustomStringConvertible {
    public let key: String
    public var description: String { "\(key) keys cannot sign join tokens: use an EC P-256 (ES256) or Ed25519 (EdDSA) key" }
}

/// Base64 with the URL-safe alphabet and no padding (RFC 7515 §2, RFC 4648 §5).
enum Base64URL {
    static func encode(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
            .replacing("+", with: "-").replacing("/", with: "_").replacing("=", with: "")
    }

    /// Nil for any character outside the URL-safe alphabet, padding included.
    static func decode(_ text: some Collection<UInt8>) -> [UInt8]? {
        var standard = [UInt8]()
        standard.reserveCapacity(text.count + 3)
        for byte in text {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                standard.append(byte)
            case UInt8(ascii: "-"): standard.append(UInt8(ascii: "+"))
            case UInt8(ascii: "_"): standard.append(UInt8(ascii: "/"))
            default: return nil
            }
        }
        guard standard.count % 4 != 1 else { return nil }
        while standard.count % 4 != 0 { standard.append(UInt8(ascii: "=")) }
        return Data(base64Encoded: Data(standard)).map { Array($0) }
    }
}
