import ConclaveCrypto
import FoundationEssentials
import SystemPackage
import ConclaveSystem
import Testing
@testable import ConclavePKI
#if canImport(Glibc)
import Glibc
#endif

/// A fresh state directory per test.
func temporaryStateDirectory() -> FilePath {
    var template = Array("/tmp/conclave-pki-XXXXXX".utf8CString)
    let path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    return FilePath(path)
}

func snapshot(_ directory: FilePath) throws -> [String: [UInt8]] {
    var result: [String: [UInt8]] = [:]
    for name in ["cert.pem", "chain.pem", "key.pem"] {
        result[name] = try Files.read(directory.appending(name))
    }
    return result
}

@Suite struct CertificateValidatorTests {
    let ca: LocalCertificateAuthority
    init() throws { ca = try LocalCertificateAuthority(commonName: "Validator CA") }

    func validator(_ fqdn: String = "conclave.example") -> CertificateValidator {
        CertificateValidator(fqdn: fqdn, storedAnchors: [ca.certificate])
    }

    @Test func acceptsGoodCertificate() throws {
        let (certificate, key) = try ca.issueLeaf(commonName: "conclave.example", subjectAlternativeNames: [.dns("conclave.example")])
        let chain = try validator().validate(certificate: certificate, chain: [], key: key)
        #expect(chain == [certificate, ca.certificate])
    }

    @Test func refusesMismatchedKey() throws {
        let (certificate, _) = try ca.issueLeaf(commonName: "c", subjectAlternativeNames: [.dns("conclave.example")])
        #expect(throws: CertificateRefusal.keyMismatch) { try validator().validate(certificate: certificate, chain: [], key: PrivateKey.generate()) }
    }

    @Test func refusesMissingFQDN() throws {
        let (certificate, key) = try ca.issueLeaf(commonName: "conclave.example", subjectAlternativeNames: [.dns("other.example")])
        #expect(throws: CertificateRefusal.fqdnNotInSubjectAlternativeNames(fqdn: "conclave.example", names: ["DNS:other.example"])) {
            try validator().validate(certificate: certificate, chain: [], key: key)
        }
    }

    @Test func refusesUnanchoredChain() throws {
        let stranger = try LocalCertificateAuthority(commonName: "Stranger")
        let (certificate, key) = try stranger.issueLeaf(commonName: "c", subjectAlternativeNames: [.dns("conclave.example")])
        do {
            try validator().validate(certificate: certificate, chain: [], key: key)
            Issue.record("accepted")
        } catch {
            guard case .chainDoesNotBuild(let reason) = error else { Issue.record("\(error)"); return }
            #expect(reason.contains("unable to get local issuer"))
        }
        // The same chain passes when the anchor is supplied with it.
        try validator().validate(certificate: certificate, chain: [stranger.certificate], key: key)
    }

    @Test func refusesExpiredAndNotYetValid() throws {
        let past = Date(timeIntervalSinceNow: -10 * 86_400)
        let (old, oldKey) = try ca.issueLeaf(
            commonName: "c", subjectAlternativeNames: [.dns("conclave.example")], options: .init(notBefore: past, validForDays: 2))
        #expect(throws: CertificateRefusal.expired(notAfter: old.notValidAfter)) { try validator().validate(certificate: old, chain: [], key: oldKey) }
        let (future, futureKey) = try ca.issueLeaf(
            commonName: "c", subjectAlternativeNames: [.dns("conclave.example")],
            options: .init(notBefore: Date(timeIntervalSinceNow: 86_400), validForDays: 2))
        #expect(throws: CertificateRefusal.notYetValid(notBefore: future.notValidBefore)) {
            try validator().validate(certificate: future, chain: [], key: futureKey)
        }
    }

    @Test func refusesWeakRSA() throws {
        let key = try PrivateKey.generate(.rsa(bits: 1024))
        let certificate = try CertificateBuilder.issue(
            commonName: "c", subjectAlternativeNames: [.dns("conclave.example")], publicKeyOf: key, usage: .server,
            issuer: ca.certificate, issuerKey: ca.key)
        #expect(throws: CertificateRefusal.weakRSAKey(bits: 1024)) { try validator().validate(certificate: certificate, chain: [], key: key) }
    }

    @Test func refusesSHA1() throws {
        let key = try PrivateKey.generate()
        var options = CertificateBuilder.Options(validForDays: 30)
        options.useSHA1 = true
        let certificate = try CertificateBuilder.issue(
            commonName: "c", subjectAlternativeNames: [.dns("conclave.example")], publicKeyOf: key, usage: .server, options: options,
            issuer: ca.certificate, issuerKey: ca.key)
        #expect(throws: CertificateRefusal.sha1Signature(subject: "CN=c")) { try validator().validate(certificate: certificate, chain: [], key: key) }
    }

    @Test func refusesCACertificate() throws {
        #expect(throws: CertificateRefusal.isCertificateAuthority) {
            try validator("validator-ca").validate(certificate: ca.certificate, chain: [], key: ca.key)
        }
    }

    @Test func reasonsAreOneLine() {
        let refusals: [CertificateRefusal] = [
            .keyMismatch, .chainDoesNotBuild(reason: "x"), .fqdnNotInSubjectAlternativeNames(fqdn: "a", names: []),
            .expired(notAfter: Date()), .notYetValid(notBefore: Date()), .weakRSAKey(bits: 1024), .sha1Signature(subject: "CN=x"),
            .isCertificateAuthority, .unreadable(what: "f", reason: "r"), .notACertificate(what: "f"), .noPendingKey, .noFQDNConfigured,
        ]
        for refusal in refusals { #expect(!refusal.description.contains("\n")) }
    }

    @Test func expiryStatusThresholds() {
        let now = Date()
        #expect(ExpiryStatus(notAfter: now.addingTimeInterval(31 * 86_400), now: now) == .ok)
        #expect(ExpiryStatus(notAfter: now.addingTimeInterval(29 * 86_400), now: now) == .warn30)
        #expect(ExpiryStatus(notAfter: now.addingTimeInterval(6 * 86_400), now: now) == .warn7)
        #expect(ExpiryStatus(notAfter: now.addingTimeInterval(3_600), now: now) == .warn1)
        #expect(ExpiryStatus(notAfter: now.addingTimeInterval(-1), now: now) == .expired)
    }
}

@Suite struct CertificateStoreTests {
    let state = temporaryStateDirectory()
    var store: CertificateStore { CertificateStore(stateDirectory: state, faults: .none) }

    @Test func requestThenImportSignedCertificate() throws {
        let ca = try LocalCertificateAuthority(commonName: "Site CA")
        let request = try store.createRequest(fqdn: "Conclave.Example", extraNames: [.ip("192.0.2.1")])
        #expect(try store.configuration.fqdn() == "conclave.example")
        #expect(request.subjectAlternativeNames == [.dns("conclave.example"), .ip("192.0.2.1")])
        #expect(state.appending("pki/pending/key.pem").permissions?.rawValue == 0o600)

        let certificate = try ca.sign(request)
        let active = try store.importCertificate(
            certificate: Array(certificate.pemEncoded.utf8), chain: Array(ca.certificate.pemEncoded.utf8))
        #expect(active.certificate == certificate)
        #expect(active.chain == [ca.certificate])
        #expect(!state.appending("pki/pending").exists)
        #expect(state.appending("pki/current/key.pem").permissions?.rawValue == 0o600)
        #expect(try store.trustBundleForRoomSystems() == [ca.certificate])
    }

    @Test func fqdnIsKeptUnlessReplaced() throws {
        _ = try store.createRequest(fqdn: "a.example")
        #expect(throws: ConfigurationError.fqdnAlreadySet(current: "a.example", requested: "b.example")) {
            try store.createRequest(fqdn: "b.example")
        }
        _ = try store.createRequest(fqdn: "b.example", replaceFQDN: true)
        #expect(try store.configuration.fqdn() == "b.example")
    }

    @Test func configurationKeepsOtherKeys() throws {
        try state.makeDirectory()
        try Files.writeAtomically(Array(#"{"securityMode":"secured","monitoring":{"targets":[1,2]}}"#.utf8),
            to: state.appending("conclave.json"), permissions: FilePermissions(rawValue: 0o644), faults: .none)
        try store.configuration.adoptFQDN("x.example", replace: false)
        let text = String(decoding: try Files.read(state.appending("conclave.json")), as: UTF8.self)
        #expect(text.contains("\"securityMode\" : \"secured\""))
        #expect(text.contains("\"fqdn\" : \"x.example\""))
        #expect(text.contains("\"targets\""))
    }

    @Test func refusedImportsLeaveCurrentByteIdentical() throws {
        try store.installSelfSigned(fqdn: "conclave.example")
        let before = try snapshot(state.appending("pki/current"))
        let target = try state.appending("pki/current").symbolicLinkTarget()
        let ca = try LocalCertificateAuthority(commonName: "CA")
        let (wrongName, wrongNameKey) = try ca.issueLeaf(commonName: "x", subjectAlternativeNames: [.dns("x.example")])
        let (good, _) = try ca.issueLeaf(commonName: "c", subjectAlternativeNames: [.dns("conclave.example")])

        #expect(throws: CertificateRefusal.notACertificate(what: "the certificate file")) {
            try store.importCertificate(certificate: Array("garbage".utf8), key: Array(wrongNameKey.pemEncoded.utf8))
        }
        #expect(throws: CertificateRefusal.self) {
            try store.importCertificate(certificate: Array(wrongName.pemEncoded.utf8), chain: Array(ca.certificate.pemEncoded.utf8), key: Array(wrongNameKey.pemEncoded.utf8))
        }
        #expect(throws: CertificateRefusal.keyMismatch) {
            try store.importCertificate(certificate: Array(good.pemEncoded.utf8), key: Array(wrongNameKey.pemEncoded.utf8))
        }
        #expect(throws: CertificateRefusal.noPendingKey) { try store.importCertificate(certificate: Array(good.pemEncoded.utf8)) }
        #expect(try snapshot(state.appending("pki/current")) == before)
        #expect(try state.appending("pki/current").symbolicLinkTarget() == target)
        #expect(try state.appending("pki/sets").directoryEntries().count == 1)
    }

    @Test func activationKeepsPreviousAndRollsBack() throws {
        let first = try store.installSelfSigned(fqdn: "conclave.example")
        let second = try store.installSelfSigned(fqdn: "conclave.example")
        #expect(try store.active()?.certificate == second.certificate)
        #expect(try store.previousCertificate()?.certificate == first.certificate)
        let third = try store.installSelfSigned(fqdn: "conclave.example")
        #expect(try state.appending("pki/sets").directoryEntries().count == 2)  // first one collected
        try store.rollback()
        #expect(try store.active()?.certificate == second.certificate)
        #expect(try store.previousCertificate()?.certificate == third.certificate)
        try store.rollback()
        #expect(try store.active()?.certificate == third.certificate)
    }

    @Test func rollbackWithoutPreviousIsRefused() throws {
        #expect(throws: CertificateStoreError.nothingToRollBackTo) { try store.rollback() }
    }

    @Test func pkcs12ImportAndWrongPassword() throws {
        try store.configuration.adoptFQDN("conclave.example", replace: false)
        let ca = try LocalCertificateAuthority(commonName: "CA")
        let (certificate, key) = try ca.issueLeaf(commonName: "c", subjectAlternativeNames: [.dns("conclave.example")])
        let p12 = try CertificateFile.pkcs12(key: key, certificate: certificate, chain: [ca.certificate], password: "pw")
        #expect(throws: CertificateRefusal.unreadable(what: "the PKCS#12 file", reason: "wrong password (MAC does not verify)")) {
            try store.importPKCS12(p12, password: "nope")
        }
        #expect(try store.importPKCS12(p12, password: "pw").certificate == certificate)
    }

    @Test func trustAndAPICA() throws {
        let ca = try LocalCertificateAuthority(commonName: "Room Trust")
        try store.importTrust(Array(ca.certificate.pemEncoded.utf8))
        #expect(try store.trustAnchors() == [ca.certificate])
        let (leaf, _) = try ca.issueLeaf(commonName: "leaf")
        #expect(throws: CertificateStoreError.notACA(subject: "CN=leaf")) { try store.importAPICA(Array(leaf.pemEncoded.utf8)) }
        try store.importAPICA(ca.certificate.derEncoded)
        #expect(try store.apiCA() == [ca.certificate])
    }
}
