import FoundationEssentials
import SystemPackage
import Testing
@testable import ConclaveSystem

@Suite struct ConfigurationDocumentTests {
    func temporaryDirectory() throws -> FilePath {
        let path = FilePath("/tmp/conclave-configuration-\(UInt32.random(in: 0...UInt32.max))")
        try path.makeDirectory()
        return path
    }

    @Test func networkSectionRoundTrips() throws {
        var network = NetworkConfiguration()
        network.hostname = "relay1"
        network.dns = [InterfaceAddress(cidr: "192.0.2.53")!, InterfaceAddress(cidr: "2001:db8::53")!]
        var eth0 = NetworkConfiguration.Interface()
        eth0.addresses = [InterfaceAddress(cidr: "192.0.2.10/24")!]
        eth0.gateway = InterfaceAddress(cidr: "192.0.2.1")
        eth0.routes = [.init(destination: InterfaceAddress(cidr: "198.51.100.0/24")!, gateway: InterfaceAddress(cidr: "192.0.2.254"))]
        var eth1 = NetworkConfiguration.Interface()
        eth1.dhcp = true
        network.interfaces = ["eth0": eth0, "eth1": eth1]
        #expect(try NetworkConfiguration.parse(network.jsonValue, source: "test") == network)
    }

    @Test func updateKeepsOtherKeysAndWritesAtomically() throws {
        let directory = try temporaryDirectory()
        let path = directory.appending("conclave.json")
        try Files.writeAtomically(Array(#"{"fqdn": "conclave.test", "legsFile": "legs.json"}"#.utf8), to: path, permissions: .ownerReadWrite)
        let document = ConfigurationDocument(stateDirectory: directory)
        let configuration = try document.update { $0["securityMode"] = .string("secured") }
        #expect(configuration.securityMode == "secured" && configuration.fqdn == "conclave.test" && configuration.legsFile == "legs.json")
        let written = try DaemonConfiguration.load(stateDirectory: directory)
        #expect(written == configuration)
        #expect(try document.object()["version"] == .number(1))
        #expect(try directory.directoryEntries() == ["conclave.json"])
    }

    @Test func aRefusedChangeWritesNothing() throws {
        let directory = try temporaryDirectory()
        let document = ConfigurationDocument(stateDirectory: directory)
        try document.update { $0["role"] = .string("room") }
        let before = try Files.read(directory.appending("conclave.json"))
        #expect(throws: ConfigurationFileError.self) { try document.update { $0["securityMode"] = .string("open") } }
        #expect(throws: ConfigurationFileError.self) {
            try document.update { $0["network"] = .object(["interfaces": .object(["eth0": .object(["addresses": .array([.string("192.0.2.1/33")])])])]) }
        }
        #expect(try Files.read(directory.appending("conclave.json")) == before)
    }
}
