import Testing
@testable import ConclaveSIP

@Suite struct DigestAuthenticationTests {
    /// RFC 7616 §3.9.1: the same request answered with SHA-256 and with MD5.
    static let vectors: [(DigestAlgorithm, String)] = [
        (.sha256, "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
        (.md5, "8ca523f5e9506fed4657c9700eebdbec"),
    ]

    @Test(arguments: 0..<vectors.count) func matchesRFC7616Vectors(index: Int) throws {
        let (algorithm, response) = DigestAuthenticationTests.vectors[index]
        let credentials = try DigestCredentials(parsing: """
            Digest username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html", algorithm=\(algorithm.rawValue), \
            nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", nc=00000001, \
            cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", qop=auth, response="\(response)", \
            opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
            """)
        let ha1 = DigestCredentials.ha1(username: "Mufasa", realm: "http-auth@example.org", password: "Circle of Life", algorithm: algorithm)
        #expect(credentials.expectedResponse(method: SIPMethod(rawValue: "GET"), ha1: ha1) == response)
        #expect(credentials.isValid(method: SIPMethod(rawValue: "GET"), ha1: ha1))
        #expect(!credentials.isValid(method: .invite, ha1: ha1))
        let wrong = DigestCredentials.ha1(username: "Mufasa", realm: "http-auth@example.org", password: "circle of life", algorithm: algorithm)
        #expect(!credentials.isValid(method: SIPMethod(rawValue: "GET"), ha1: wrong))
    }

    @Test func challengeNamesAlgorithmAndQop() {
        let challenge = DigestChallenge(realm: "conclave", nonce: "abc", algorithm: .sha256, isStale: true)
        #expect(challenge.headerValue == "Digest realm=\"conclave\", nonce=\"abc\", algorithm=SHA-256, qop=\"auth\", stale=TRUE")
    }

    static let malformed = [
        "Basic dXNlcjpwYXNz",
        "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"sip:x\"",
        "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"sip:x\", response=\"0\", algorithm=SHA-512",
        "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"sip:x\", response=\"0\", qop=auth",
        "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"sip:x\", response=\"0\", qop=auth-int, nc=00000001, cnonce=\"c\"",
        "Digest username=\"a\", username=\"b\", realm=\"r\", nonce=\"n\", uri=\"sip:x\", response=\"0\"",
        "Digest username=\"a, realm=\"r\"",
    ]

    @Test(arguments: malformed) func refusesMalformedCredentials(value: String) {
        #expect(throws: SIPParseError.self) { try DigestCredentials(parsing: value) }
    }

    @Test func nonceBookRefusesReplaysUnknownAndExpiredNonces() throws {
        let start = ContinuousClock.now
        var book = DigestNonceBook(lifetime: .seconds(60), capacity: 2)
        let nonce = book.issue(random: Array(repeating: 7, count: 16), now: start)
        func credentials(_ nonce: String, nc: String?) throws -> DigestCredentials {
            let count = nc.map { ", qop=auth, nc=\($0), cnonce=\"c\"" } ?? ""
            return try DigestCredentials(parsing: "Digest username=\"u\", realm=\"r\", nonce=\"\(nonce)\", uri=\"sip:m@h\", response=\"0\"\(count)")
        }
        #expect(book.admit(try credentials(nonce, nc: "00000001"), now: start) == .valid)
        #expect(book.admit(try credentials(nonce, nc: "00000001"), now: start) == .invalid)  // replayed
        #expect(book.admit(try credentials(nonce, nc: "00000002"), now: start + .seconds(1)) == .valid)
        #expect(book.admit(try credentials(nonce, nc: nil), now: start) == .valid)
        #expect(book.admit(try credentials(nonce, nc: nil), now: start) == .invalid)
        #expect(book.admit(try credentials("forged", nc: "00000001"), now: start) == .invalid)
        #expect(book.admit(try credentials(nonce, nc: "00000009"), now: start + .seconds(61)) == .stale)
        _ = book.issue(random: Array(repeating: 8, count: 16), now: start)
        _ = book.issue(random: Array(repeating: 9, count: 16), now: start)
        #expect(book.count == 2)
        #expect(book.admit(try credentials(nonce, nc: "0000000a"), now: start) == .invalid)  // forgotten, oldest first
    }
}
