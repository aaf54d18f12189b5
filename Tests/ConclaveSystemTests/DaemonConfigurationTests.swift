import Testing
@testable import ConclaveSystem

@Suite struct DaemonConfigurationTests {
    func parse(_ json: String) throws(ConfigurationFileError) -> DaemonConfiguration {
        try DaemonConfiguration.parse(Array(json.utf8), source: "conclave.json")
    }

    @Test func emptyObjectMeansDefaults() throws {
        #expect(try parse("{}") == DaemonConfiguration())
    }

    @Test func readsEveryField() throws {
        let configuration = try parse("""
            {"version": 1, "role": "room", "fqdn": "relay.example.org", "listen": "127.0.0.1", "controlPort": 1443,
             "apiPort": 18443, "mediaPort": 40000, "mediaTCPPort": 0, "relayThreads": 2, "socketBufferBytes": 1048576,
             "securityMode": "secured", "controlAccount": {"user": "c", "uid": 5000, "gid": 5001},
             "relayAccount": {"user": "r", "uid": 5002, "gid": 5003}, "legsFile": "legs.json"}
            """)
        #expect(configuration.role == .room)
        #expect(configuration.listen == "127.0.0.1" && configuration.controlPort == 1443 && configuration.apiPort == 18443)
        #expect(configuration.mediaPort == 40000 && configuration.mediaTCPPort == 0 && configuration.relayThreads == 2)
        #expect(configuration.securityMode == "secured" && configuration.legsFile == "legs.json")
        #expect(configuration.relayAccount == .init(user: "r", uid: 5002, gid: 5003))
    }

    @Test func readsIdentityFields() throws {
        #expect(DaemonConfiguration().guestRetentionDays == 30 && DaemonConfiguration().ssoKey == "pki/sso-key.pem")
        let configuration = try parse(#"{"guestRetentionDays": 7, "ssoKey": "/etc/conclave/sso.pem"}"#)
        #expect(configuration.guestRetentionDays == 7 && configuration.guestRetention == .seconds(7 * 86400))
        #expect(configuration.ssoKeyPath(stateDirectory: "/data/conclave") == "/etc/conclave/sso.pem")
        #expect(DaemonConfiguration().ssoKeyPath(stateDirectory: "/data/conclave") == "/data/conclave/pki/sso-key.pem")
    }

    @Test func readsAPIClientFingerprints() throws {
        #expect(DaemonConfiguration().apiClientFingerprints.isEmpty)
        let colons = (0..<32).map { _ in "AB" }.joined(separator: ":")
        let configuration = try parse(#"{"apiClientFingerprints": ["\#(colons)", "\#(String(repeating: "0f", count: 32))"]}"#)
        #expect(configuration.apiClientFingerprints == [String(repeating: "ab", count: 32), String(repeating: "0f", count: 32)])
    }

    @Test(arguments: [
        (#"{"apiClientFingerprints": "ab"}"#, "conclave.json: apiClientFingerprints: expected an array"),
        (#"{"apiClientFingerprints": ["abcd"]}"#, "conclave.json: apiClientFingerprints[0]: expected a SHA-256 fingerprint"),
        (#"{"controlPort": "443"}"#, "conclave.json: controlPort: expected an integer"),
        (#"{"controlPort": 70000}"#, "conclave.json: controlPort: expected an integer in 1…65535, got 70000.0"),
        (#"{"relayThreads": 0}"#, "conclave.json: relayThreads: expected an integer in 1…64"),
        (#"{"securityMode": "open"}"#, #"conclave.json: securityMode: expected "secured" or "mixed", got "open""#),
        (#"{"role": "router"}"#, "conclave.json: role: expected one of"),
        (#"{"mediaPrt": 1}"#, "conclave.json: mediaPrt: unknown field"),
        (#"{"version": 2}"#, "conclave.json: version: schema 2 is not supported"),
        (#"{"relayAccount": {"user": "r", "uid": 0, "gid": 1}}"#, "conclave.json: relayAccount.uid: expected an integer in 1…65534"),
        (#"{"relayAccount": {"user": "r", "uid": 5, "gid": 5, "home": "/"}}"#, "conclave.json: relayAccount.home: unknown field"),
        (#"{"mediaPort": 65535, "relayThreads": 2}"#, "conclave.json: mediaPort: mediaPort + relayThreads exceeds 65535"),
        ("[1, 2]", "conclave.json: (document): not a JSON object"),
        (#"{"guestRetentionDays": 0}"#, "conclave.json: guestRetentionDays: expected an integer in 1…3650"),
        (#"{"guestRetentionDays": 3651}"#, "conclave.json: guestRetentionDays: expected an integer in 1…3650"),
        (#"{"ssoKey": 5}"#, "conclave.json: ssoKey: expected a string"),
        (#"{"ssoKey": ""}"#, "conclave.json: ssoKey: expected a file path"),
    ])
    func refusesNamingTheField(json: String, message: String) {
        #expect {
            _ = try parse(json)
        } throws: { error in
            "\(error)".hasPrefix(message)
        }
    }
}

@Suite struct RestartPolicyTests {
    @Test func restartsAtOnceThenBacksOffThenForgives() {
        var policy = RestartPolicy()
        #expect(policy.delayAfterExit(lifetime: 100) == 0)
        #expect(policy.delayAfterExit(lifetime: 1) == 0.5)
        #expect(policy.delayAfterExit(lifetime: 1) == 1)
        #expect(policy.delayAfterExit(lifetime: 1) == 2)
        for _ in 0..<10 { _ = policy.delayAfterExit(lifetime: 1) }
        #expect(policy.delayAfterExit(lifetime: 1) == 30)
        #expect(policy.delayAfterExit(lifetime: 31) == 0)  // ran long enough: healthy again
    }
}
