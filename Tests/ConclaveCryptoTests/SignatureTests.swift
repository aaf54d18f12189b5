import Testing
@testable import ConclaveCrypto

@Suite struct SignatureTests {
    @Test func p256SignaturesAreRawAndVerify() throws {
        let key = try PrivateKey.generate(.ecP256)
        let message = Array("header.payload".utf8)
        let signature = try key.sign(message)
        #expect(signature.count == 64)
        let publicKey = try PublicKey(of: key)
        #expect(publicKey.isValidSignature(signature, of: message, algorithm: .es256))
        #expect(!publicKey.isValidSignature(signature, of: message + [0], algorithm: .es256))
        #expect(!publicKey.isValidSignature(signature, of: message, algorithm: .ed25519))
        #expect(!publicKey.isValidSignature(Array(signature.prefix(63)), of: message, algorithm: .es256))
    }

    @Test func ed25519SignaturesVerify() throws {
        let key = try PrivateKey.generateEd25519()
        #expect(key.keyDescription.family == .ed25519 && key.signatureAlgorithm == .ed25519)
        let signature = try key.sign([])
        let publicKey = try PublicKey(pemEncoded: Array(key.publicKeyPEM.utf8))
        #expect(publicKey.isValidSignature(signature, of: [], algorithm: .ed25519))
        #expect(!publicKey.isValidSignature(signature, of: [1], algorithm: .ed25519))
    }

    @Test func derAndRawConvertBothWays() {
        // SEQUENCE { INTEGER 1, INTEGER 0x80 (needs a leading zero in DER) }
        let der: [UInt8] = [0x30, 0x07, 0x02, 0x01, 0x01, 0x02, 0x02, 0x00, 0x80]
        let raw = ECDSASignature.raw(fromDER: der)
        #expect(raw == [UInt8](repeating: 0, count: 31) + [1] + [UInt8](repeating: 0, count: 31) + [0x80])
        #expect(ECDSASignature.der(fromRaw: raw!) == der)
        #expect(ECDSASignature.raw(fromDER: [0x30, 0x00, 0x01]) == nil)
        #expect(ECDSASignature.der(fromRaw: [1, 2, 3]) == nil)
    }

    @Test func rsaAndP384KeysCannotSignTokens() throws {
        #expect(try PrivateKey.generate(.ecP384).signatureAlgorithm == nil)
        #expect(throws: OpenSSLError.self) { try PrivateKey.generate(.ecP384).sign([1]) }
        #expect(throws: OpenSSLError.self) { try PublicKey(pemEncoded: Array("garbage".utf8)) }
    }
}
