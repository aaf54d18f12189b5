import Testing
@testable import ConclaveCrypto

@Suite struct AESTests {
    // NIST SP 800-38A F.5.1 (CTR-AES128.Encrypt), first two blocks.
    @Test func ctrMatchesNISTVector() throws {
        let ctr = try AESCTR(key: [UInt8](hex: "2b7e151628aed2a6abf7158809cf4f3c"))
        let iv = [UInt8](hex: "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")
        var bytes = [UInt8](hex: "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51")
        ctr.apply(iv: iv, to: &bytes)
        #expect(bytes.hex == "874d6191b620e3261bef6864990db6ce9806f66b7970fdff8617187bb9fffdff")
        // The same context, reused with the same IV, undoes it: the keystream restarts per call.
        ctr.apply(iv: iv, to: &bytes)
        #expect(bytes.hex == "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51")
    }

    @Test func ctrInPlaceOnRawBufferHandlesOddLengths() throws {
        let ctr = try AESCTR(key: [UInt8](repeating: 7, count: 16))
        let iv = [UInt8](repeating: 1, count: 16)
        var whole = [UInt8](repeating: 0, count: 37)
        ctr.apply(iv: iv, to: &whole)
        var part = [UInt8](repeating: 0, count: 5)
        iv.withUnsafeBytes { ivBuffer in part.withUnsafeMutableBytes { ctr.apply(iv: ivBuffer, to: $0) } }
        #expect(Array(whole.prefix(5)) == part)
    }

    @Test func ctrRejectsWrongKeyLength() {
        #expect(throws: OpenSSLError.self) { try AESCTR(key: [UInt8](repeating: 0, count: 15)) }
    }

    // The GCM specification (McGrew & Viega), test case 4: AES-128 with AAD.
    @Test func gcmMatchesSpecificationVector() throws {
        let gcm = try AESGCM(key: [UInt8](hex: "feffe9928665731c6d6a8f9467308308"))
        let nonce = [UInt8](hex: "cafebabefacedbaddecaf888")
        let aad = [UInt8](hex: "feedfacedeadbeeffeedfacedeadbeefabaddad2")
        let plaintext = [UInt8](hex: "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39")
        let sealed = try gcm.seal(nonce: nonce, plaintext: plaintext, authenticating: aad)
        #expect(sealed.hex == "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091"
            + "5bc94fbc3221a5db94fae95ae7121a47")
        #expect(try gcm.open(nonce: nonce, sealed: sealed, authenticating: aad) == plaintext)
        // Seal and open alternate on one context.
        #expect(try gcm.open(nonce: nonce, sealed: gcm.seal(nonce: nonce, plaintext: [1, 2, 3]), authenticating: []) == [1, 2, 3])
    }

    @Test func gcmRefusesTamperedInput() throws {
        let gcm = try AESGCM(key: [UInt8](repeating: 9, count: 16))
        let nonce = [UInt8](repeating: 3, count: 12)
        var sealed = try gcm.seal(nonce: nonce, plaintext: Array("hello".utf8), authenticating: [1])
        #expect(throws: OpenSSLError.self) { try gcm.open(nonce: nonce, sealed: sealed, authenticating: [2]) }
        sealed[0] ^= 1
        #expect(throws: OpenSSLError.self) { try gcm.open(nonce: nonce, sealed: sealed, authenticating: [1]) }
    }
}

@Suite struct KeyDerivationTests {
    // RFC 5869 appendix A.1.
    @Test func hkdfMatchesRFC5869() throws {
        let output = try HKDF.sha256(
            inputKeyMaterial: [UInt8](repeating: 0x0b, count: 22), salt: [UInt8](hex: "000102030405060708090a0b0c"),
            info: [UInt8](hex: "f0f1f2f3f4f5f6f7f8f9"), outputLength: 42)
        #expect(output.hex == "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")
    }

    // RFC 5869 appendix A.3: empty salt and info.
    @Test func hkdfWithEmptySaltAndInfo() throws {
        let output = try HKDF.sha256(
            inputKeyMaterial: [UInt8](repeating: 0x0b, count: 22), salt: [UInt8](), info: [UInt8](), outputLength: 42)
        #expect(output.hex == "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8")
    }

    // RFC 7914 §12, second vector.
    @Test func scryptMatchesRFC7914() throws {
        let output = try Scrypt.derive(
            password: Array("password".utf8), salt: Array("NaCl".utf8),
            parameters: .init(cost: 1024, blockSize: 8, parallelism: 16), outputLength: 64)
        #expect(output.hex == "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b3731622eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640")
    }
}

@Suite struct RandomAndCompareTests {
    @Test func randomBytesDiffer() {
        #expect(SecureRandom.bytes(count: 32) != SecureRandom.bytes(count: 32))
        #expect(SecureRandom.bytes(count: 0).isEmpty)
    }

    @Test func constantTimeEquality() {
        #expect(ConstantTime.equals([1, 2, 3], [1, 2, 3]))
        #expect(!ConstantTime.equals([1, 2, 3], [1, 2, 4]))
        #expect(!ConstantTime.equals([1, 2, 3], [1, 2]))
        #expect(ConstantTime.equals([UInt8](), [UInt8]()))
    }
}
