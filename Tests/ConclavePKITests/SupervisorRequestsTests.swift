import ConclaveCrypto
import ConclaveSystem
import FoundationEssentials
import SystemPackage
import Testing
@testable import ConclavePKI

/// What the supervisor writes for the command API: checked again, written atomically, a refusal
/// writes nothing.
@Suite struct SupervisorRequestsTests {
    let state = temporaryStateDirectory()
    var requests: SupervisorRequests { SupervisorRequests(stateDirectory: state, bootFacts: { ["slot": .string("A")] }) }

    func reply(_ json: String) throws -> (object: [String: JSONValue], reload: Bool) {
        let (text, reload) = requests.handle(json, status: { #"{"role":"server","workers":[]}"# })
        return (try JSONDecoder().decode([String: JSONValue].self, from: Data(text.utf8)), reload)
    }

    @Test func securityModeIsWrittenAndReloaded() throws {
        let (answer, reload) = try reply(#"{"id":7,"op":"set-security-mode","mode":"secured"}"#)
        #expect(answer["ok"] == .bool(true) && answer["id"] == .number(7) && reload)
        #expect(try DaemonConfiguration.load(stateDirectory: state).securityMode == "secured")
        let (refused, again) = try reply(#"{"id":8,"op":"set-security-mode","mode":"open"}"#)
        #expect(refused["ok"] == .bool(false) && refused["field"] == .string("mode") && !again)
        #expect(try DaemonConfiguration.load(stateDirectory: state).securityMode == "secured")
    }

    @Test func ssoKeyMustVerifyJoinTokens() throws {
        let key = try PrivateKey.generate(.ecP256)
        let (answer, reload) = try reply(JSONTextForTests.object(["id": .number(1), "op": .string("set-sso-key"), "pem": .string(key.publicKeyPEM)]))
        #expect(answer["ok"] == .bool(true) && reload)
        #expect(try Files.read(state.appending("pki/sso-key.pem")) == Array(key.publicKeyPEM.utf8))
        let rsa = try PrivateKey.generate(.rsa(bits: 2048))
        let (refused, _) = try reply(JSONTextForTests.object(["id": .number(2), "op": .string("set-sso-key"), "pem": .string(rsa.publicKeyPEM)]))
        #expect(refused["ok"] == .bool(false) && refused["field"] == .string("pem"))
        #expect(try Files.read(state.appending("pki/sso-key.pem")) == Array(key.publicKeyPEM.utf8))  // unchanged
    }

    @Test func monitoringIsCheckedByTheConfigurationReader() throws {
        let (answer, _) = try reply(#"{"id":1,"op":"set-monitoring","monitoring":{"privacy":"off","intervalSeconds":10}}"#)
        #expect(answer["ok"] == .bool(true))
        #expect(try DaemonConfiguration.load(stateDirectory: state).monitoring.privacy == .off)
        let (refused, reload) = try reply(#"{"id":2,"op":"set-monitoring","monitoring":{"intervalSeconds":1}}"#)
        #expect(refused["field"] == .string("intervalSeconds") && !reload)
        #expect(try DaemonConfiguration.load(stateDirectory: state).monitoring.intervalSeconds == 10)
    }

    @Test func statusCarriesTheSupervisorAndTheBoot() throws {
        let (answer, reload) = try reply(#"{"id":3,"op":"status"}"#)
        #expect(answer["boot"] == .object(["slot": .string("A")]) && !reload)
        #expect(answer["supervisor"] == .object(["role": .string("server"), "workers": .array([])]))
        #expect(try reply(#"{"id":4,"op":"reboot"}"#).object["code"] == .string("bad-message"))
        #expect(try reply("not json").object["ok"] == .bool(false))
    }
}

enum JSONTextForTests {
    static func object(_ object: [String: JSONValue]) -> String {
        String(decoding: try! JSONEncoder().encode(object), as: UTF8.self)
    }
}
