import Testing
@testable import ConclaveRelay

@Suite struct PeerAddressTests {
    @Test(arguments: ["127.0.0.1:3478", "[::1]:40000", "[2001:db8::5]:5004"])
    func parsesAndPrintsBack(text: String) throws {
        #expect(try PeerAddress(parsing: text).description == text)
    }

    @Test(arguments: ["127.0.0.1", "localhost:80", "1.2.3.4:70000", "[::1:80", ""])
    func refusesWhatIsNotANumericAddressAndPort(text: String) {
        #expect(throws: RelayError.invalidAddress(text)) { try PeerAddress(parsing: text) }
    }

    @Test func equalityIsByAddressAndPort() throws {
        let address = try PeerAddress(parsing: "10.0.0.1:5000")
        #expect(address == (try PeerAddress(parsing: "10.0.0.1:5000")))
        #expect(address != (try PeerAddress(parsing: "10.0.0.1:5001")))
        #expect(address.withPort(5001) == (try PeerAddress(parsing: "10.0.0.1:5001")))
    }
}
