import ConclaveWire
import Testing
@testable import ConclaveRelay

@Suite struct RelayIPCServerTests {
    static func relay() throws -> Relay {
        try Relay(configuration: .init(listen: "127.0.0.1", basePort: 0, threads: 1, securityMode: .secured))
    }

    @Test func legDescriptionsSurviveTheWireFormat() throws {
        for profile in ["AEAD_AES_128_GCM", "AES_CM_128_HMAC_SHA1_80", "encapsulated"] {
            let leg = try LegsFile.generate(meetings: 1, participants: 1, profile: profile).legs[0]
            let decoded = try RelayMessageDecoder.decodeOne(RelayMessage.addLeg(leg.setup).encoded())
            guard case .addLeg(let setup) = decoded else { Issue.record("not addLeg"); continue }
            #expect(try LegDescription(setup) == leg)
        }
    }

    @Test func acknowledgesAResentLegButRefusesADifferentOne() throws {
        let relay = try Self.relay()
        defer { relay.shutdown() }
        let server = RelayIPCServer(relay: relay)
        var legs = try LegsFile.generate(meetings: 1, participants: 2, profile: "AEAD_AES_128_GCM").legs
        #expect(server.respond(to: .startMeeting(meetingID: 1, mode: .srtp)) == .ack(.startMeeting))
        #expect(server.respond(to: .addLeg(legs[0].setup)) == .ack(.addLeg))
        #expect(server.respond(to: .addLeg(legs[0].setup)) == .ack(.addLeg))  // a restarted control worker
        legs[1] = LegDescription(
            leg: legs[0].leg, token: legs[1].token, meeting: 1, protection: legs[1].protection,
            audioPayloadTypes: [], videoPayloadTypes: [])
        guard case .error(let code, _) = server.respond(to: .addLeg(legs[1].setup)) else {
            Issue.record("a different leg under a used id was accepted")
            return
        }
        #expect(code == RelayIPCServer.ErrorCode.duplicateLeg.rawValue)
        guard case .statsReply(7, let stats) = server.respond(to: .statsQuery(requestID: 7)) else {
            Issue.record("no stats reply")
            return
        }
        #expect(stats.map(\.legID) == [legs[0].leg])
    }

    @Test func refusesWhatTheSecurityModeForbidsAndWhatIsNotARequest() throws {
        let relay = try Self.relay()
        defer { relay.shutdown() }
        let server = RelayIPCServer(relay: relay)
        let scrambled = try LegsFile.generate(meetings: 1, participants: 1, profile: "encapsulated").legs[0]
        guard case .error(let code, let message) = server.respond(to: .addLeg(scrambled.setup)) else {
            Issue.record("secured mode accepted an encapsulated leg")
            return
        }
        #expect(code == RelayIPCServer.ErrorCode.refusedBySecurityMode.rawValue)
        #expect(message.contains("secured"))
        guard case .error(let notRequest, _) = server.respond(to: .ack(.addLeg)) else {
            Issue.record("an ack was taken as a request")
            return
        }
        #expect(notRequest == RelayIPCServer.ErrorCode.badRequest.rawValue)
        guard case .error(let unknown, _) = server.respond(to: .removeLeg(legID: 42)) else {
            Issue.record("removing an unknown leg succeeded")
            return
        }
        #expect(unknown == RelayIPCServer.ErrorCode.unknownLeg.rawValue)
    }
}

extension RelayMessageDecoder {
    static func decodeOne(_ bytes: [UInt8]) throws -> RelayMessage {
        var decoder = RelayMessageDecoder()
        decoder.append(bytes)
        return try #require(try decoder.next())
    }
}
