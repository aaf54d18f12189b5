import Testing
@testable import ConclaveRelay

@Suite struct RelayTests {
    static func relay(_ mode: SecurityMode) throws -> Relay {
        try Relay(configuration: .init(listen: "127.0.0.1", basePort: 0, threads: 1, securityMode: mode))
    }

    @Test func refusesDuplicateLegsAndMixedMeetingsAndRemovesCleanly() throws {
        let relay = try Self.relay(.mixed)
        defer { relay.shutdown() }
        let srtp = try LegsFile.generate(meetings: 1, participants: 2, profile: "AEAD_AES_128_GCM").legs
        let scrambled = try LegsFile.generate(meetings: 1, participants: 1, profile: "encapsulated").legs[0]
        for leg in srtp { try relay.addLeg(leg) }
        #expect(throws: RelayError.duplicateLeg(srtp[0].leg)) { try relay.addLeg(srtp[0]) }
        let intruder = LegDescription(
            leg: 99, token: 1, meeting: srtp[0].meeting, protection: scrambled.protection,
            audioPayloadTypes: [], videoPayloadTypes: [])
        #expect(throws: RelayError.modeMismatch(leg: 99, meeting: srtp[0].meeting)) { try relay.addLeg(intruder) }
        #expect(relay.snapshot().legs.map(\.leg) == srtp.map(\.leg))
        try relay.removeLeg(srtp[0].leg)
        #expect(throws: RelayError.unknownLeg(srtp[0].leg)) { try relay.removeLeg(srtp[0].leg) }
        #expect(relay.snapshot().legs.map(\.leg) == [srtp[1].leg])
        try relay.stopMeeting(srtp[0].meeting)
        #expect(relay.snapshot().legs.isEmpty)
        #expect(throws: RelayError.unknownMeeting(srtp[0].meeting)) { try relay.stopMeeting(srtp[0].meeting) }
    }

    @Test func aSecurityModeChangeAppliesToWhatIsAddedNext() throws {
        let relay = try Self.relay(.secured)
        defer { relay.shutdown() }
        #expect(throws: RelayError.self) { try relay.startMeeting(7, mode: .encapsulated) }
        relay.setSecurityMode(.mixed)
        try relay.startMeeting(7, mode: .encapsulated)
        let masked = try LegsFile.generate(meetings: 1, participants: 1, profile: "encapsulated").legs[0]
        relay.setSecurityMode(.secured)
        #expect(throws: RelayError.self) { try relay.addLeg(masked) }
    }

    @Test func securedModeRefusesEncapsulatedLegs() throws {
        let relay = try Self.relay(.secured)
        defer { relay.shutdown() }
        let leg = try LegsFile.generate(meetings: 1, participants: 1, profile: "encapsulated").legs[0]
        #expect(throws: RelayError.refusedBySecurityMode(leg: leg.leg)) { try relay.addLeg(leg) }
        #expect(throws: RelayError.refusedBySecurityMode(leg: 0)) { try relay.startMeeting(7, mode: .encapsulated) }
        try relay.startMeeting(7, mode: .srtp)
    }
}
