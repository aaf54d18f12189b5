import ConclaveCrypto
import FoundationEssentials
import Testing
@testable import ConclaveIdentity

/// Tokens made outside this code base: Python's `cryptography` 48 (ES256 with raw r‖s, EdDSA),
/// and RFC 8037 appendix A.4. The claims expire in 2100.
enum ThirdPartyTokens {
    static let ecPublicKey = """
        -----BEGIN PUBLIC KEY-----
        MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE4CogV4/nlJa10TnEqGDPHDcTzX5N
        0oK34MD90R3XrbDFRkxLWv1mo4d6bXYbqkQMfxQmmx4YBEl29TRWptdxoA==
        -----END PUBLIC KEY-----
        """
    static let es256 = """
        eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJtZ210LmV4YW1wbGUub3JnIiwic3ViIjoiQWxpY2VARXhhbXBsZS5vcmciLCJhdWQiOiJjb25jbGF2ZS5leGFtcGxlLm9yZyIsImV4cCI6NDEwMjQ0NDgwMCwiaWF0IjoxNzAwMDAwMDAwLCJtZWV0aW5nIjoiYm9hcmQiLCJuYW1lIjoiQWxpY2UifQ.9xNb9uaJxuqPmBpF3du42nGIeGMctVc1z-p7kO13Tv0gA6fM91v8-dC4veCJ44jSZF6H0FjoWH7FzETGll4WMA
        """
    static let edPublicKey = """
        -----BEGIN PUBLIC KEY-----
        MCowBQYDK2VwAyEA8gDNHWrTUyfQ31GBq6sPeIkrVUGvg6tFM1CMGUdXxJk=
        -----END PUBLIC KEY-----
        """
    static let edDSA = """
        eyJhbGciOiJFZERTQSJ9.eyJpc3MiOiJtZ210LmV4YW1wbGUub3JnIiwic3ViIjoiQWxpY2VARXhhbXBsZS5vcmciLCJhdWQiOiJjb25jbGF2ZS5leGFtcGxlLm9yZyIsImV4cCI6NDEwMjQ0NDgwMCwiaWF0IjoxNzAwMDAwMDAwLCJtZWV0aW5nIjoiYm9hcmQiLCJuYW1lIjoiQWxpY2UifQ.wDy-Sco7qkBdOJwg4aFmXJTJbG-D6ZmlAeQwAB8WK4DrL35K9hStk_oN83TGPcV6_E7TiKFaHC0SNOtuJqk9DA
        """
    /// RFC 8037 A.4: a JWS whose payload is the text "Example of Ed25519 signing", not claims.
    static let rfc8037PublicKey = """
        -----BEGIN PUBLIC KEY-----
        MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=
        -----END PUBLIC KEY-----
        """
    static let rfc8037 =
        "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
}

let fqdn = "conclave.example.org"
let now = Date(timeIntervalSince1970: 1_800_000_000)

func verify(_ token: String, key: String, audience: String = fqdn, meeting: String = "board", at time: Date = now) throws(JoinTokenError) -> JoinToken.Claims {
    try JoinToken.verify(token, publicKeyPEM: Array(key.utf8), audience: audience, meeting: meeting, now: time)
}

/// `token` with one part replaced by base64url of `bytes`.
func replacing(part index: Int, of token: String, with text: String) -> String {
    var parts = token.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
    parts[index] = Base64URL.encode(Array(text.utf8))
    return parts.joined(separator: ".")
}

@Suite struct JoinTokenTests {
    @Test(arguments: [(ThirdPartyTokens.es256, ThirdPartyTokens.ecPublicKey), (ThirdPartyTokens.edDSA, ThirdPartyTokens.edPublicKey)])
    func verifiesThirdPartyTokens(token: String, key: String) throws {
        let claims = try verify(token, key: key)
        #expect(claims == JoinToken.Claims(
            issuer: "mgmt.example.org", subject: "alice@example.org", audience: fqdn, expires: Date(timeIntervalSince1970: 4_102_444_800),
            issuedAt: Date(timeIntervalSince1970: 1_700_000_000), meeting: "board", name: "Alice"))
        #expect(throws: JoinTokenError.wrongMeeting("board")) { try verify(token, key: key, meeting: "other") }
        #expect(throws: JoinTokenError.wrongAudience(fqdn)) { try verify(token, key: key, audience: "other.example.org") }
        #expect(throws: JoinTokenError.expired(at: Date(timeIntervalSince1970: 4_102_444_800))) {
            try verify(token, key: key, at: Date(timeIntervalSince1970: 4_102_444_900))
        }
        #expect(try verify(token, key: key, audience: "CONCLAVE.example.org").subject == "alice@example.org")
    }

    @Test func rfc8037VectorVerifiesThenFailsAsClaims() {
        // The signature is good, so the refusal is about the payload, not the signature.
        #expect(throws: JoinTokenError.malformed("the payload is not a JSON object")) {
            try verify(ThirdPartyTokens.rfc8037, key: ThirdPartyTokens.rfc8037PublicKey)
        }
        let tampered = ThirdPartyTokens.rfc8037.replacing("hgyY0il", with: "hgyY0iL")
        #expect(throws: JoinTokenError.badSignature) { try verify(tampered, key: ThirdPartyTokens.rfc8037PublicKey) }
    }

    @Test func refusesTamperedTokens() throws {
        let token = ThirdPartyTokens.es256
        let payload = #"{"iss":"mgmt.example.org","sub":"mallory@example.org","aud":"conclave.example.org","exp":4102444800}"#
        #expect(throws: JoinTokenError.badSignature) { try verify(replacing(part: 1, of: token, with: payload), key: ThirdPartyTokens.ecPublicKey) }
        var signature = Array(Base64URL.decode(token.split(separator: ".")[2].utf8)!)
        signature[10] ^= 1
        let flipped = token.split(separator: ".")[0...1].joined(separator: ".") + "." + Base64URL.encode(signature)
        #expect(throws: JoinTokenError.badSignature) { try verify(flipped, key: ThirdPartyTokens.ecPublicKey) }
        // Another key of the same type, and a key of the other type.
        #expect(throws: JoinTokenError.badSignature) { try verify(token, key: try PrivateKey.generate().publicKeyPEM) }
        #expect(throws: JoinTokenError.badSignature) { try verify(ThirdPartyTokens.edDSA, key: ThirdPartyTokens.ecPublicKey) }
        // Header says EdDSA over an ES256 signature: the key decides, not the header.
        let relabelled = replacing(part: 0, of: token, with: #"{"alg":"EdDSA"}"#)
        #expect(throws: JoinTokenError.badSignature) { try verify(relabelled, key: ThirdPartyTokens.ecPublicKey) }
    }

    @Test func refusesNoneAndHMAC() {
        let payload = #"{"iss":"x","sub":"alice@example.org","aud":"conclave.example.org","exp":4102444800}"#
        let none = Base64URL.encode(Array(#"{"alg":"none"}"#.utf8)) + "." + Base64URL.encode(Array(payload.utf8)) + "."
        #expect(throws: JoinTokenError.unsupportedAlgorithm("none")) { try verify(none, key: ThirdPartyTokens.ecPublicKey) }
        // HS256 "keyed" with the public key PEM: the classic confusion attack.
        let hmac = replacing(part: 0, of: ThirdPartyTokens.es256, with: #"{"alg":"HS256","typ":"JWT"}"#)
        #expect(throws: JoinTokenError.unsupportedAlgorithm("HS256")) { try verify(hmac, key: ThirdPartyTokens.ecPublicKey) }
    }

    @Test(arguments: ["", "a.b", "a.b.c.d", "!!.e30.AA", "e30.e30.AA=", String(repeating: "A", count: 9000)])
    func refusesMalformedTokens(token: String) {
        #expect {
            try verify(token, key: ThirdPartyTokens.ecPublicKey)
        } throws: { error in
            guard case JoinTokenError.malformed = error else { return false }
            return true
        }
    }

    @Test(arguments: [PrivateKeyKind.p256, .ed25519])
    func signsAndVerifiesItsOwnTokens(kind: PrivateKeyKind) throws {
        let key = try kind.generate()
        let claims = JoinToken.Claims(
            issuer: "mgmt", subject: "Bob@Example.org", audience: fqdn, expires: now.addingTimeInterval(300),
            notBefore: now.addingTimeInterval(-10), issuedAt: now, meeting: nil, name: "Bob")
        let token = try JoinToken.sign(claims, privateKeyPEM: Array(key.pemEncoded.utf8))
        let header = String(decoding: Base64URL.decode(token.split(separator: ".")[0].utf8)!, as: UTF8.self)
        #expect(header == #"{"alg":"\#(kind == .p256 ? "ES256" : "EdDSA")","typ":"JWT"}"#)
        let publicKey = key.publicKeyPEM
        let verified = try verify(token, key: publicKey, meeting: "any meeting")
        #expect(verified.subject == "bob@example.org" && verified.meeting == nil && verified.name == "Bob")
        #expect(throws: JoinTokenError.expired(at: now.addingTimeInterval(300))) {
            try verify(token, key: publicKey, at: now.addingTimeInterval(331))
        }
        #expect(try verify(token, key: publicKey, at: now.addingTimeInterval(320)).subject == "bob@example.org")  // within the leeway
        #expect(throws: JoinTokenError.notYetValid(until: now.addingTimeInterval(-10))) {
            try verify(token, key: publicKey, at: now.addingTimeInterval(-100))
        }
    }

    @Test func refusesMissingOrMistypedClaims() throws {
        let key = try PrivateKey.generateEd25519()
        func token(_ payload: String) throws -> String {
            let input = Base64URL.encode(Array(#"{"alg":"EdDSA"}"#.utf8)) + "." + Base64URL.encode(Array(payload.utf8))
            return input + "." + Base64URL.encode(try key.sign(Array(input.utf8)))
        }
        let cases: [(String, String)] = [
            (#"{"sub":"a@example.org","aud":"conclave.example.org","exp":4102444800}"#, #"the "iss" claim is missing"#),
            (#"{"iss":"m","aud":"conclave.example.org","exp":4102444800}"#, #"the "sub" claim is missing"#),
            (#"{"iss":"m","sub":"a@example.org","aud":"conclave.example.org"}"#, #"the "exp" claim is missing"#),
            (#"{"iss":"m","sub":"a@example.org","aud":"conclave.example.org","exp":"tomorrow"}"#, #"the "exp" claim must be a NumericDate (seconds since 1970)"#),
            (#"{"iss":"m","sub":"not-an-email","aud":"conclave.example.org","exp":4102444800}"#, #"the "sub" claim is not an email: invalid email "not-an-email": expected exactly one @"#),
            (#"{"iss":"m","sub":"a@example.org","exp":4102444800}"#, #"the "aud" claim is missing"#),
        ]
        for (payload, reason) in cases {
            #expect(throws: JoinTokenError.malformed(reason)) { try verify(try token(payload), key: key.publicKeyPEM) }
        }
        let array = try token(#"{"iss":"m","sub":"a@example.org","aud":["conclave.example.org"],"exp":4102444800}"#)
        #expect(try verify(array, key: key.publicKeyPEM).audience == fqdn)
    }

    @Test func refusesKeysThatCannotSign() throws {
        let rsa = try PrivateKey.generate(.rsa(bits: 2048))
        let claims = JoinToken.Claims(issuer: "m", subject: "a@example.org", audience: fqdn, expires: now)
        #expect(throws: (any Error).self) { try JoinToken.sign(claims, privateKeyPEM: Array(rsa.pemEncoded.utf8)) }
        #expect(throws: JoinTokenError.self) { try verify(ThirdPartyTokens.es256, key: "not a key") }
    }
}

enum PrivateKeyKind: CustomTestStringConvertible {
    case p256, ed25519
    func generate() throws -> PrivateKey { self == .p256 ? try PrivateKey.generate(.ecP256) : try PrivateKey.generateEd25519() }
    var testDescription: String { self == .p256 ? "ES256" : "EdDSA" }
}
