import ConclaveCrypto
import ConclavePKI
import ConclaveSystem
import FoundationEssentials
import Testing
@testable import ConclaveConsole

@Suite struct WizardTests {
    /// Answers a fresh wizard with `inputs` and returns the last action.
    func run(_ inputs: [String], role: DaemonConfiguration.Role = .server, anchors: [X509Certificate] = []) -> (FirstBootWizard, FirstBootWizard.Action?) {
        var wizard = FirstBootWizard(defaultRole: role, storedAnchors: anchors)
        var last: FirstBootWizard.Action?
        for input in inputs { last = wizard.handle(input) }
        return (wizard, last)
    }

    func refusal(_ action: FirstBootWizard.Action?) -> String? {
        if case .refused(let reason, _)? = action { return reason }
        return nil
    }

    @Test func serverSelfSignedPathProducesThePlan() throws {
        let (_, action) = run(["correct horse", "correct horse", "1", "2", "192.0.2.10/24", "192.0.2.1", "192.0.2.53 2001:db8::53",
                               "relay1", "Conclave.Test", "1", "1", "1"])
        guard case .finished(let plan)? = action else { Issue.record("not finished: \(String(describing: action))"); return }
        #expect(plan.password == "correct horse" && plan.role == .server && plan.hostname == "relay1" && plan.fqdn == "conclave.test")
        #expect(plan.network == .manual(address: InterfaceAddress(cidr: "192.0.2.10/24")!, gateway: InterfaceAddress(cidr: "192.0.2.1"),
                                         dns: [InterfaceAddress(cidr: "192.0.2.53")!, InterfaceAddress(cidr: "2001:db8::53")!]))
        #expect(plan.securityMode == "secured")
        #expect(plan.summary.allSatisfy { !$0.1.contains("correct horse") })
    }

    @Test(arguments: [
        ("192.0.2.10", "is not ADDRESS/PREFIX"),
        ("192.0.2.10/33", "prefix \"33\" is out of range: 1…32 for IPv4"),
        ("300.0.2.10/24", "is not ADDRESS/PREFIX"),
        ("2001:db8::1/129", "out of range: 1…128 for IPv6"),
    ])
    func badAddressesAreRefusedWithTheReason(input: String, reason: String) {
        let (wizard, action) = run(["correct horse", "correct horse", "1", "2", input])
        #expect(refusal(action)?.contains(reason) == true)
        #expect(wizard.step == .address)
    }

    @Test func gatewayMustBeInTheSubnet() {
        #expect(refusal(run(["correct horse", "correct horse", "1", "2", "192.0.2.10/24", "198.51.100.1"]).1)?.contains("not in 192.0.2.10/24's subnet") == true)
        #expect(refusal(run(["correct horse", "correct horse", "1", "2", "192.0.2.10/24", "2001:db8::1"]).1)?.contains("IPv4") == true)
    }

    @Test func fqdnWithASpaceAndBadHostnamesAreRefused() {
        let base = ["correct horse", "correct horse", "1", "1"]
        #expect(refusal(run(base + ["bad name"]).1)?.contains("not a host name") == true)
        #expect(refusal(run(base + ["relay1", "conclave .test"]).1) == "an FQDN has no spaces")
        #expect(refusal(run(base + ["relay1", "localhost"]).1)?.contains("is not an FQDN") == true)
    }

    @Test func passwordRulesAndMismatch() {
        #expect(refusal(run(["short"]).1) == AdminAccountError.tooShort(minimum: 8).description)
        let (wizard, action) = run(["correct horse", "correct hose"])
        #expect(refusal(action) == AdminAccountError.mismatch.description)
        #expect(wizard.step == .password)
        #expect(refusal(run(["relay1relay1", "relay1relay1", "1", "1", "relay1relay1"]).1) == AdminAccountError.sameAsHostname.description)
    }

    @Test func backGoesToThePreviousStepAndLeavesFromTheFirst() {
        var (wizard, _) = run(["correct horse", "correct horse", "2", "1"])
        #expect(wizard.step == .hostname)
        _ = wizard.handle("<")
        #expect(wizard.step == .networkMode)
        _ = wizard.back()
        #expect(wizard.step == .role)
        var fresh = FirstBootWizard(defaultRole: .server)
        guard case .leave = fresh.back() else { Issue.record("back from the first step must leave"); return }
    }

    @Test func csrPathChecksKeyAndFQDNOfThePastedCertificate() throws {
        var wizard = FirstBootWizard(defaultRole: .server)
        for input in ["correct horse", "correct horse", "1", "1", "relay1", "conclave.test"] { _ = wizard.handle(input) }
        guard case .ask(let prompt) = wizard.handle("2") else { Issue.record("no CSR prompt"); return }
        #expect(prompt.text.contains("-----BEGIN CERTIFICATE REQUEST-----"))
        #expect(prompt.text.allSatisfy { $0.count <= 80 })
        // A certificate for the right name but another key.
        let otherKey = try PrivateKey.generate(.ecP256)
        let other = try CertificateBuilder.selfSigned(commonName: "conclave.test", subjectAlternativeNames: [.dns("conclave.test")], key: otherKey, usage: .server)
        #expect(refusal(wizard.handle(other.pemEncoded)) == CertificateRefusal.keyMismatch.description)
        #expect(wizard.step == .signedCertificate)
        #expect(refusal(wizard.handle("garbage")) == CertificateRefusal.notACertificate(what: "the pasted certificate").description)
    }

    @Test func pastedKeyAndCertificateForAnotherFQDNIsRefused() throws {
        var wizard = FirstBootWizard(defaultRole: .server)
        for input in ["correct horse", "correct horse", "1", "1", "relay1", "conclave.test", "3"] { _ = wizard.handle(input) }
        #expect(wizard.step == .pastedKey)
        let key = try PrivateKey.generate(.ecP256)
        _ = wizard.handle(key.pemEncoded)
        #expect(wizard.step == .pastedCertificate)
        let certificate = try CertificateBuilder.selfSigned(commonName: "other.test", subjectAlternativeNames: [.dns("other.test")], key: key, usage: .server)
        #expect(refusal(wizard.handle(certificate.pemEncoded))?.contains("conclave.test is not in the certificate's SANs (DNS:other.test)") == true)
    }

    @Test func roomTrustNeedsTheMatchingFingerprint() throws {
        let key = try PrivateKey.generate(.ecP256)
        let anchor = try CertificateBuilder.selfSigned(commonName: "Server CA", subjectAlternativeNames: [], key: key, usage: .certificateAuthority(pathLength: nil))
        var (wizard, _) = run(["correct horse", "correct horse", "2", "1", "room1", "room1.example.org", "1"], role: .server)
        #expect(wizard.step == .trustBundle)
        _ = wizard.handle(anchor.pemEncoded)
        #expect(wizard.step == .trustFingerprint)
        #expect(refusal(wizard.handle("AB:CD"))?.contains("does not match") == true)
        _ = wizard.handle(anchor.sha256FingerprintText.lowercased())
        #expect(wizard.step == .securityMode)
        _ = wizard.handle("2")
        guard case .finished(let plan) = wizard.handle("1") else { Issue.record("not finished"); return }
        #expect(plan.role == .room && plan.trust == [anchor] && plan.securityMode == "mixed")
    }
}
