import Testing
@testable import ConclaveWire

@Suite struct ControlMessageTests {
    static func decode(_ text: String) throws -> ControlMessage { try ControlMessage(decoding: Array(text.utf8)) }

    @Test func encodesGoldenJSON() {
        #expect(String(decoding: ControlMessage.heartbeat(sequence: 7).encoded(), as: UTF8.self)
            == #"{"sequence":7,"type":"heartbeat","v":1}"#)
        #expect(String(decoding: ControlMessage.join(.init(meeting: "m1", nickname: "Ann")).encoded(), as: UTF8.self)
            == #"{"meeting":"m1","nickname":"Ann","type":"join","v":1}"#)
        #expect(String(decoding: ControlMessage.participantLeft(leg: 1002).encoded(), as: UTF8.self)
            == #"{"leg":1002,"type":"participant-left","v":1}"#)
    }

    @Test(arguments: [
        ControlMessage.hello(.init(clientName: "room", clientVersion: "0.1.0", os: "Linux", transports: ["udp", "tcp"])),
        .join(.init(meeting: "m1", passcode: "1234", email: "a@example.org", password: "secret")),
        .join(.init(meeting: "m1", token: "eyJ.sig")),
        .leave,
        .welcome(.init(serverVersion: "0.1.0", heartbeatSeconds: 5, securityMode: "secured")),
        .joined(.init(leg: 1001, legToken: "00112233445566ff", relayHost: "relay.example.org", udpPort: 3478, tcpPort: 4443,
                      profile: "AEAD_AES_128_GCM", participants: [.init(leg: 1002, name: "Ann")])),
        .participantJoined(.init(leg: 1003, name: "Bob")),
        .meetingEdited(.init(name: "Weekly", locked: true, limit: 10)),
        .meetingEnded(reason: "stopped by the management server"),
        .kicked(reason: "removed by the host"),
        .heartbeatAck(sequence: 9),
        .error(.init(code: "meeting-locked", message: "the meeting is locked")),
    ])
    func roundTrips(message: ControlMessage) throws {
        #expect(try ControlMessage(decoding: message.encoded()) == message)
    }

    @Test(arguments: [
        (#"{"v":2,"type":"leave"}"#, "unsupported version 2"),
        (#"{"v":1,"type":"dance"}"#, "unknown message type 'dance'"),
        (#"{"v":1,"type":"heartbeat"}"#, "missing field 'sequence'"),
        (#"{"v":1,"type":"heartbeat","sequence":"x"}"#, "field 'sequence' has the wrong type"),
        (#"{"v":1,"type":"join","meeting":"m"}"#, "exactly one of nickname"),
        (#"{"v":1,"type":"join","meeting":"m","nickname":"a","token":"t"}"#, "exactly one of nickname"),
        (#"{"v":1,"type":"join","meeting":"m","email":"a@b"}"#, "exactly one of nickname"),
        (#"{"v":1,"#, "invalid JSON"),
        ("[]", "not a control message"),
    ])
    func refusesWithAReason(text: String, reason: String) {
        #expect {
            _ = try Self.decode(text)
        } throws: { error in
            "\(error)".contains(reason)
        }
    }

    @Test func refusesOversizedFramesBeforeParsing() {
        let huge = [UInt8](repeating: 0x20, count: ControlMessage.maximumSize + 1)
        #expect(throws: WireError.oversized(limit: ControlMessage.maximumSize, got: huge.count)) {
            try ControlMessage(decoding: huge)
        }
    }

    @Test func descriptionNeverShowsSecrets() {
        let join = ControlMessage.join(.init(meeting: "m1", email: "a@example.org", password: "hunter2"))
        #expect(!join.description.contains("hunter2"))
        #expect(!ControlMessage.join(.init(meeting: "m1", token: "secret-token")).description.contains("secret-token"))
    }
}
