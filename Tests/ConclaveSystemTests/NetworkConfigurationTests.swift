import FoundationEssentials
import Testing
@testable import ConclaveSystem

@Suite struct NetworkConfigurationTests {
    static func parse(_ json: String) throws(ConfigurationFileError) -> NetworkConfiguration {
        let value = try! JSONDecoder().decode(JSONValue.self, from: Data(json.utf8))
        return try NetworkConfiguration.parse(value, source: "conclave.json")
    }

    @Test func staticConfigurationParses() throws {
        let network = try Self.parse(#"""
            {"hostname": "relay1", "dns": ["192.0.2.53", "2001:db8::53"], "search": ["example.org"], "ntp": ["192.0.2.123"],
             "interfaces": {"eth0": {"addresses": ["192.0.2.10/24", "2001:DB8::10/64"], "gateway": "192.0.2.1", "gateway6": "2001:db8::1",
                                     "routes": [{"to": "198.51.100.0/24", "via": "192.0.2.254"}]},
                            "eth1": {"dhcp": true}}}
            """#)
        #expect(network.hostname == "relay1")
        #expect(network.dns.map(\.address) == ["192.0.2.53", "2001:db8::53"])
        let eth0 = try #require(network.interfaces["eth0"])
        #expect(eth0.addresses.map(\.cidr) == ["192.0.2.10/24", "2001:db8::10/64"])
        #expect(eth0.gateway?.address == "192.0.2.1" && eth0.gateway6?.address == "2001:db8::1")
        #expect(eth0.routes.first?.destination.cidr == "198.51.100.0/24")
        #expect(network.interfaces["eth1"]?.dhcp == true)
    }

    @Test(arguments: [
        (#"{"hostname": "bad_name"}"#, "network.hostname"),
        (#"{"dns": ["192.0.2.0/24"]}"#, "network.dns[0]"),
        (#"{"interfaces": {"eth0": {"addresses": ["192.0.2.10"]}}}"#, "network.interfaces.eth0.addresses[0]"),
        (#"{"interfaces": {"eth0": {"gateway": "2001:db8::1"}}}"#, "network.interfaces.eth0.gateway"),
        (#"{"interfaces": {"eth0": {"dhcp": true, "addresses": ["192.0.2.10/24"]}}}"#, "network.interfaces.eth0.addresses"),
        (#"{"interfaces": {"eth0": {"routes": [{"to": "x"}]}}}"#, "network.interfaces.eth0.routes[0].to"),
        (#"{"interface": {}}"#, "network.interface"),
    ])
    func errorsNameTheField(json: String, field: String) {
        do {
            _ = try Self.parse(json)
            Issue.record("accepted \(json)")
        } catch {
            guard case .invalid(_, let named, _) = error else { Issue.record("\(error)"); return }
            #expect(named == field)
        }
    }

    @Test func daemonConfigurationAcceptsTheNetworkSections() throws {
        let json = #"{"role": "server", "network": {"hostname": "relay1"}, "tuning": {"sysctl": {"net.core.rmem_max": "33554432"}}}"#
        let configuration = try DaemonConfiguration.parse(Array(json.utf8), source: "conclave.json")
        #expect(configuration.network.hostname == "relay1")
        #expect(configuration.tuning.sysctl == ["net.core.rmem_max": "33554432"])
        #expect(throws: ConfigurationFileError.invalid("conclave.json", field: "tuning.links.eth0.mtu", "expected an integer")) {
            try DaemonConfiguration.parse(Array(#"{"tuning": {"links": {"eth0": {"mtu": "x"}}}}"#.utf8), source: "conclave.json")
        }
    }
}
