import ConclaveCrypto

/// The hashing half of digest authentication, apart from the parsing so the parsers can be fuzzed
/// without OpenSSL.

extension DigestAlgorithm {
    func hash(_ text: String) -> String {
        // Both digests are always available in the OpenSSL we link; a failure is a broken build.
        let bytes = try! (self == .sha256 ? Digest.sha256(Array(text.utf8)) : Digest.md5(Array(text.utf8)))
        let digits = Array("0123456789abcdef")
        return String(bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 0x0f)]] })
    }
}

extension DigestCredentials {
    /// H(username:realm:password), what a server may store instead of the password.
    public static func ha1(username: String, realm: String, password: String, algorithm: DigestAlgorithm) -> String {
        algorithm.hash("\(username):\(realm):\(password)")
    }

    /// The response the client should have sent for `method` given `ha1` (RFC 7616 §3.4.1).
    public func expectedResponse(method: SIPMethod, ha1: String) -> String {
        let ha2 = algorithm.hash("\(method.rawValue):\(uri)")
        if let qop, let cnonce, let nonceCount {
            let count = String(nonceCount, radix: 16)
            let padded = String(repeating: "0", count: 8 - count.count) + count
            return algorithm.hash("\(ha1):\(nonce):\(padded):\(cnonce):\(qop):\(ha2)")
        }
        return algorithm.hash("\(ha1):\(nonce):\(ha2)")  // RFC 2069 compatibility, as RFC 3261 §22.4 allows
    }

    /// Compares in constant time, so the response cannot be guessed byte by byte from timing.
    public func isValid(method: SIPMethod, ha1: String) -> Bool {
        ConstantTime.equals(Array(expectedResponse(method: method, ha1: ha1).utf8), Array(response.utf8))
    }
}
