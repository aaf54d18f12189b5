import Testing
@testable import ConclaveCrypto

@Suite struct DigestTests {
    // FIPS 180-2 appendix B.1 ("abc") and the empty message.
    @Test(arguments: [
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    ])
    func sha256KnownVectors(message: String, expected: String) throws {
        let digest = try Digest.sha256(Array(message.utf8))
        #expect(digest.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined() == expected)
    }

    @Test func versionNamesOpenSSL3() {
        #expect(OpenSSLLibrary.version.hasPrefix("OpenSSL 3."))
    }
}
