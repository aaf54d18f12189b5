import Testing
@testable import ConclaveSystem

@Suite struct RoomConfigurationTests {
    private func parse(_ text: String) throws -> DaemonConfiguration {
        try DaemonConfiguration.parse(Array(text.utf8), source: "conclave.json")
    }

    @Test func readsTheRoomSectionWithDefaults() throws {
        let configuration = try parse(#"{"role": "room", "room": {"server": "conclave.test:8443", "meeting": "m1", "nickname": "Room 1"}}"#)
        #expect(configuration.role == .room)
        #expect(configuration.room == RoomConfiguration(server: "conclave.test:8443", meeting: "m1", nickname: "Room 1"))
        #expect(configuration.room?.rtpIn == "127.0.0.1:5004" && configuration.room?.tcp == false)
    }

    @Test func refusesAmbiguousOrMissingCredentialsAndUnknownFields() {
        let refused = [
            #"{"room": {"server": "s", "meeting": "m"}}"#,
            #"{"room": {"server": "s", "meeting": "m", "nickname": "a", "tokenFile": "t"}}"#,
            #"{"room": {"server": "s", "meeting": "m", "email": "a@b.c"}}"#,
            #"{"room": {"server": "s", "nickname": "a"}}"#,
            #"{"room": {"server": "s", "meeting": "m", "nickname": "a", "colour": "red"}}"#,
            #"{"room": {"server": "s", "meeting": "m", "nickname": "a", "tcp": "yes"}}"#,
            #"{"room": "s"}"#,
        ]
        for text in refused {
            #expect(throws: ConfigurationFileError.self, "\(text)") { try parse(text) }
        }
    }

    @Test func aRoomWithoutItsSectionIsFirstBootNotAnError() throws {
        #expect(try parse(#"{"role": "room"}"#).room == nil)
    }
}
