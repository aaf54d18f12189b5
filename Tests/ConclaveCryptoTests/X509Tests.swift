import FoundationEssentials
import Glibc
import Testing
@testable import ConclaveCrypto

@Suite struct KeyTests {
    @Test(arguments: [(KeyAlgorithm.ecP256, "EC", 256), (.ecP384, "EC", 384), (.rsa(bits: 2048), "RSA", 2048)])
    func generatesAndRoundTripsKeys(algorithm: KeyAlgorithm, family: String, bits: Int) throws {
        let key = try PrivateKey.generate(algorithm)
        #expect(key.keyDescription.family.rawValue == family)
        #expect(key.keyDescription.bits == bits)
        let reread = try PrivateKey(encoded: Array(key.pemEncoded.utf8))
        #expect(reread.pemEncoded == key.pemEncoded)
        #expect(key.pemEncoded.hasPrefix("-----BEGIN PRIVATE KEY-----"))
    }

    @Test func namesCurves() throws {
        #expect(try PrivateKey.generate(.ecP256).keyDescription.curve == "P-256")
        #expect(try PrivateKey.generate(.ecP384).keyDescription.curve == "P-384")
        #expect(KeyAlgorithm(name: "rsa3072") == .rsa(bits: 3072))
        #expect(KeyAlgorithm(name: "dsa") == nil)
    }

    @Test func refusesGarbageKey() {
        #expect(throws: OpenSSLError.self) { try PrivateKey(encoded: Array("not a key".utf8)) }
        #expect(throws: OpenSSLError.self) { try PrivateKey(encoded: Array("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".utf8)) }
    }
}

@Suite struct CertificateTests {
    @Test func csrCarriesSubjectSANsAndVerifies() throws {
        let key = try PrivateKey.generate()
        let request = try CertificateSigningRequest(
            commonName: "conclave.example", subjectAlternativeNames: [.dns("conclave.example"), .ip("192.0.2.7"), .ip("2001:db8::1")],
            key: key)
        let reread = try CertificateSigningRequest(encoded: Array(request.pemEncoded.utf8))
        #expect(reread.subjectCommonName == "conclave.example")
        #expect(reread.subjectAlternativeNames == [.dns("conclave.example"), .ip("192.0.2.7"), .ip("2001:db8::1")])
        #expect(reread.isSignatureValid)
        #expect(reread.matches(key))
        #expect(try !reread.matches(PrivateKey.generate()))
    }

    @Test func rejectsMalformedSANs() {
        #expect(SubjectAlternativeName(parsing: "DNS:a,IP:1.2.3.4") == nil)
        #expect(SubjectAlternativeName(parsing: "IP:300.1.1.1") == nil)
        #expect(SubjectAlternativeName(parsing: "10.0.0.1") == .ip("10.0.0.1"))
        #expect(SubjectAlternativeName(parsing: "host.example") == .dns("host.example"))
    }

    @Test func selfSignedCertificateIsInspectable() throws {
        let key = try PrivateKey.generate(.ecP384)
        let start = Date(timeIntervalSince1970: 1_700_000_000)
        let certificate = try CertificateBuilder.selfSigned(
            commonName: "room.example", subjectAlternativeNames: [.dns("room.example")], key: key,
            options: .init(notBefore: start, validForDays: 10))
        #expect(certificate.subject == "CN=room.example")
        #expect(certificate.issuer == "CN=room.example")
        #expect(certificate.subjectCommonName == "room.example")
        #expect(certificate.subjectAlternativeNames == [.dns("room.example")])
        #expect(certificate.notValidBefore == start)
        #expect(certificate.notValidAfter == start.addingTimeInterval(10 * 86_400))
        #expect(certificate.publicKey.description == "EC P-384 (384 bits)")
        #expect(certificate.signatureAlgorithm == "ecdsa-with-SHA384")
        #expect(certificate.signatureDigest == "SHA384")
        #expect(certificate.extendedKeyUsages == ["serverAuth"])
        #expect(certificate.basicConstraints == .init(isCertificateAuthority: false, pathLength: nil))
        #expect(certificate.sha256Fingerprint == (try Digest.sha256(certificate.derEncoded)))
        #expect(certificate.sha256FingerprintText.count == 32 * 3 - 1)
        #expect(certificate.matches(key))
        #expect(certificate.isSelfIssued)
        #expect(certificate.matches(hostname: "room.example"))
        #expect(!certificate.matches(hostname: "other.example"))
        #expect(try X509Certificate(derEncoded: certificate.derEncoded) == certificate)
        #expect(try CertificateFile.certificates(from: Array(certificate.pemEncoded.utf8)) == [certificate])
        #expect(try CertificateFile.certificates(from: certificate.derEncoded) == [certificate])
    }

    @Test func sha1AndRSAAreReported() throws {
        let key = try PrivateKey.generate(.rsa(bits: 2048))
        var options = CertificateBuilder.Options(validForDays: 1)
        options.useSHA1 = true
        let certificate = try CertificateBuilder.selfSigned(commonName: "old", key: key, options: options)
        #expect(certificate.signatureDigest == "SHA1")
        #expect(certificate.signatureAlgorithm == "sha1WithRSAEncryption")
        #expect(certificate.publicKey.description == "RSA 2048 bits")
    }

    @Test func refusesNonCertificates() {
        #expect(throws: OpenSSLError.self) { try CertificateFile.certificates(from: Array("hello".utf8)) }
        #expect(throws: OpenSSLError.self) { try CertificateFile.certificates(from: [0x30, 0x03, 0x02, 0x01, 0x01]) }
        #expect(throws: OpenSSLError.self) {
            try CertificateFile.certificates(from: Array("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".utf8))
        }
    }
}

@Suite struct ChainTests {
    let root: LocalCertificateAuthority
    let intermediate: LocalCertificateAuthority
    let leaf: X509Certificate
    let leafKey: PrivateKey

    init() throws {
        root = try LocalCertificateAuthority(commonName: "Conclave Test Root")
        intermediate = try root.issueIntermediate(commonName: "Conclave Test Intermediate")
        (leaf, leafKey) = try intermediate.issueLeaf(commonName: "conclave.example", subjectAlternativeNames: [.dns("conclave.example")])
    }

    @Test func buildsChainToAnchor() throws {
        let chain = try ChainVerifier.verify(
            leaf, intermediates: [intermediate.certificate], trustStore: TrustStore(anchors: [root.certificate]),
            purpose: .serverAuthentication, hostname: "conclave.example")
        #expect(chain == [leaf, intermediate.certificate, root.certificate])
        #expect(root.certificate.basicConstraints?.isCertificateAuthority == true)
        #expect(intermediate.certificate.basicConstraints == .init(isCertificateAuthority: true, pathLength: 0))
        #expect(leaf.isIssued(by: intermediate.certificate))
        #expect(!leaf.isIssued(by: root.certificate))
    }

    @Test func failsWithoutIntermediateOrWithOtherAnchor() throws {
        let other = try LocalCertificateAuthority(commonName: "Other Root")
        #expect(throws: OpenSSLError.self) {
            try ChainVerifier.verify(leaf, trustStore: TrustStore(anchors: [root.certificate]))
        }
        let error = #expect(throws: OpenSSLError.self) {
            try ChainVerifier.verify(leaf, intermediates: [intermediate.certificate], trustStore: TrustStore(anchors: [other.certificate]))
        }
        #expect(error?.reasons.first?.contains("unable to get") == true)
    }

    @Test func checksTimeHostnameAndPurpose() throws {
        let store = try TrustStore(anchors: [root.certificate])
        let expired = #expect(throws: OpenSSLError.self) {
            try ChainVerifier.verify(leaf, intermediates: [intermediate.certificate], trustStore: store, at: Date().addingTimeInterval(400 * 86_400))
        }
        #expect(expired?.reasons.first?.contains("expired") == true)
        #expect(throws: OpenSSLError.self) {
            try ChainVerifier.verify(leaf, intermediates: [intermediate.certificate], trustStore: store, hostname: "evil.example")
        }
        #expect(throws: OpenSSLError.self) {
            try ChainVerifier.verify(leaf, intermediates: [intermediate.certificate], trustStore: store, purpose: .clientAuthentication)
        }
    }

    @Test func signsCSRs() throws {
        let key = try PrivateKey.generate(.rsa(bits: 2048))
        let request = try CertificateSigningRequest(commonName: "api-client", subjectAlternativeNames: [.dns("mgmt.example")], key: key)
        let certificate = try root.sign(request, usage: .client)
        #expect(certificate.subjectCommonName == "api-client")
        #expect(certificate.subjectAlternativeNames == [.dns("mgmt.example")])
        #expect(certificate.matches(key))
        #expect(certificate.extendedKeyUsages == ["clientAuth"])
        _ = try ChainVerifier.verify(certificate, trustStore: TrustStore(anchors: [root.certificate]), purpose: .clientAuthentication)
    }

    @Test func pkcs7RoundTrip() throws {
        let der = try CertificateFile.pkcs7(certificates: [leaf, intermediate.certificate])
        #expect(try CertificateFile.certificates(from: der) == [leaf, intermediate.certificate])
    }

    @Test func pkcs12RoundTripAndWrongPassword() throws {
        let p12 = try CertificateFile.pkcs12(key: leafKey, certificate: leaf, chain: [intermediate.certificate], password: "s3cret")
        let contents = try CertificateFile.pkcs12(p12, password: "s3cret")
        #expect(contents.certificate == leaf)
        #expect(contents.key.matches(leaf))
        #expect(contents.chain == [intermediate.certificate])
        let error = #expect(throws: OpenSSLError.self) { try CertificateFile.pkcs12(p12, password: "wrong") }
        #expect(error?.reasons == ["wrong password (MAC does not verify)"])
    }
}

@Suite struct CMSTests {
    @Test func verifiesDetachedSignatureAgainstKeyring() throws {
        let root = try LocalCertificateAuthority(commonName: "Update Root")
        let (signer, key) = try root.issueLeaf(commonName: "Update Signer", usage: .codeSigning)
        let content = Array("bundle image bytes".utf8)
        let signature = try CMS.signDetached(content: content, signer: signer, key: key)
        let keyring = try TrustStore(anchors: [root.certificate])
        #expect(try CMS.verifyDetached(signature: signature, content: content, keyring: keyring) == [signer])

        var tampered = content
        tampered[0] ^= 1
        #expect(throws: OpenSSLError.self) { try CMS.verifyDetached(signature: signature, content: tampered, keyring: keyring) }
        let otherRoot = try LocalCertificateAuthority(commonName: "Other Root")
        #expect(throws: OpenSSLError.self) {
            try CMS.verifyDetached(signature: signature, content: content, keyring: TrustStore(anchors: [otherRoot.certificate]))
        }
        #expect(throws: OpenSSLError.self) { try CMS.verifyDetached(signature: [1, 2, 3], content: content, keyring: keyring) }
    }
}

@Suite struct CMSFileRangeTests {
    /// A RAUC bundle: signed bytes, then the signature, in one file; only the range is verified.
    @Test func verifiesARangeOfAFileAndSaysWhyItFails() throws {
        let root = try LocalCertificateAuthority(commonName: "Update Root")
        let (signer, key) = try root.issueLeaf(commonName: "Update Signer", usage: .bundleSigning)
        let content = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let signature = try CMS.signDetached(content: content, signer: signer, key: key)
        let path = "/tmp/conclave-cms-range-\(getpid())"
        defer { unlink(path) }
        let keyring = try TrustStore(anchors: [root.certificate])

        func verify(_ bytes: [UInt8], keyring: TrustStore, purpose: CertificatePurpose = .smimeSigning) throws -> [X509Certificate] {
            let file = fopen(path, "wb")!
            _ = (bytes + signature).withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
            fclose(file)
            let descriptor = open(path, O_RDONLY)
            defer { close(descriptor) }
            return try CMS.verifyDetached(
                signature: signature, fileDescriptor: descriptor, range: 0..<UInt64(bytes.count), keyring: keyring, purpose: purpose)
        }
        #expect(try verify(content, keyring: keyring) == [signer])

        var tampered = content
        tampered[150_000] ^= 1
        do { _ = try verify(tampered, keyring: keyring); Issue.record("a tampered byte verified") } catch let failure as CMSVerificationFailure {
            #expect(failure.kind == .contentMismatch)
        }
        let other = try TrustStore(anchors: [LocalCertificateAuthority(commonName: "Other Root").certificate])
        do { _ = try verify(content, keyring: other); Issue.record("verified against the wrong keyring") } catch let failure as CMSVerificationFailure {
            #expect(failure.kind == .untrustedSigner)
        }

        let (codeSigner, codeKey) = try root.issueLeaf(commonName: "Code Signer", usage: .codeSigning)
        let codeSignature = try CMS.signDetached(content: content, signer: codeSigner, key: codeKey)
        let file = fopen(path, "wb")!
        _ = (content + codeSignature).withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
        fclose(file)
        let descriptor = open(path, O_RDONLY)
        defer { close(descriptor) }
        do {
            _ = try CMS.verifyDetached(
                signature: codeSignature, fileDescriptor: descriptor, range: 0..<UInt64(content.count), keyring: keyring,
                purpose: .smimeSigning)
            Issue.record("a codeSigning-only signer passed the smimesign purpose")
        } catch let failure as CMSVerificationFailure {
            #expect(failure.kind == .unsuitableSigner)
        }
    }
}
