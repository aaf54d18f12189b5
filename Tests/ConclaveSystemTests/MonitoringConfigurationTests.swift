import Testing
@testable import ConclaveSystem

@Suite struct MonitoringConfigurationTests {
    private func parse(_ json: String) throws -> DaemonConfiguration {
        try DaemonConfiguration.parse(Array(json.utf8), source: "test")
    }

    @Test func defaults() throws {
        let monitoring = try parse("{}").monitoring
        #expect(monitoring.destinations.isEmpty)
        #expect(monitoring.intervalSeconds == 30)
        #expect(monitoring.privacy == .pseudonymous)
        #expect(monitoring.metricsListen == nil)
    }

    @Test func readsDestinationsWithPortsAndPasswords() throws {
        let monitoring = try parse("""
            {"monitoring": {"destinations": ["monalisa.example.org", "10.0.0.5:9000 s3cret", "[2001:db8::1]:8885"],
             "intervalSeconds": 10, "privacy": "full", "metricsListen": "127.0.0.1:9464"}}
            """).monitoring
        #expect(monitoring.destinations == [
            .init(host: "monalisa.example.org"), .init(host: "10.0.0.5", port: 9000, password: "s3cret"), .init(host: "2001:db8::1", port: 8885),
        ])
        #expect(monitoring.destinations.map(\.text) == ["monalisa.example.org:8884", "10.0.0.5:9000 s3cret", "[2001:db8::1]:8885"])
        #expect(monitoring.destinations[1].description == "10.0.0.5:9000")  // no password in logs
        #expect(monitoring.intervalSeconds == 10)
        #expect(monitoring.privacy == .full)
        #expect(monitoring.metricsListen?.host == "127.0.0.1" && monitoring.metricsListen?.port == 9464)
        let document = try ConfigurationDocument.encode(["version": .number(1), "monitoring": monitoring.jsonValue])
        let again = try DaemonConfiguration.parse(document, source: "rewritten")
        #expect(again.monitoring == monitoring)
    }

    @Test(arguments: [
        ("{\"monitoring\": {\"destinations\": [\"a b c\"]}}", "monitoring.destinations"),
        ("{\"monitoring\": {\"destinations\": [\"host:0\"]}}", "monitoring.destinations"),
        ("{\"monitoring\": {\"destinations\": [\"host:99999\"]}}", "monitoring.destinations"),
        ("{\"monitoring\": {\"destinations\": [\"bad/host\"]}}", "monitoring.destinations"),
        ("{\"monitoring\": {\"destinations\": [\"\"]}}", "monitoring.destinations"),
        ("{\"monitoring\": {\"destinations\": [7]}}", "monitoring.destinations"),
        ("{\"monitoring\": {\"intervalSeconds\": 1}}", "monitoring.intervalSeconds"),
        ("{\"monitoring\": {\"privacy\": \"some\"}}", "monitoring.privacy"),
        ("{\"monitoring\": {\"metricsListen\": \"localhost:9464\"}}", "monitoring.metricsListen"),
        ("{\"monitoring\": {\"metricsListen\": \"127.0.0.1\"}}", "monitoring.metricsListen"),
        ("{\"monitoring\": {\"destination\": []}}", "monitoring.destination"),
        ("{\"monitoring\": []}", "monitoring"),
    ])
    func refusesWithTheFieldName(json: String, field: String) {
        #expect {
            try parse(json)
        } throws: { error in
            guard case ConfigurationFileError.invalid(_, let named, _) = error else { return false }
            return named == field
        }
    }
}
