import ConclaveRelay
import ConclaveSRTP
import ConclaveSystem
import ConclaveWire
import Glibc
import Logging
import Testing
@testable import ConclaveControl

/// A relay serving the relay IPC on a socket pair, as the relay worker does.
private final class RelayFixture {
    let relay: Relay
    let link: RelayLink

    init(mode: SecurityMode = .mixed) throws {
        relay = try Relay(configuration: .init(listen: "127.0.0.1", basePort: 0, threads: 1, securityMode: mode))
        let (ours, theirs) = try ProcessSpawner.socketPair()
        let server = RelayIPCServer(relay: relay)
        try startDetachedThread {
            try? server.serve(socket: theirs)
            close(theirs)
        }
        link = RelayLink(socket: ours, log: Logger(label: "test"))
    }

    deinit { relay.shutdown() }
}

private final class RecordingChannel: ParticipantChannel {
    var delivered: [ControlMessage] = []
    var ended: ControlMessage?
    func deliver(_ message: ControlMessage) { delivered.append(message) }
    func end(with message: ControlMessage) { ended = message }
}

@Suite struct MeetingRegistryTests {
    private func leg(_ registry: MeetingRegistry, meeting: MeetingRegistry.Meeting) throws -> LegDescription {
        let (id, token) = registry.allocateLeg()
        let key = try SRTPKeyMaterial(key: Array(repeating: 1, count: 16), salt: Array(repeating: 2, count: 12), profile: .aeadAES128GCM)
        return LegDescription(
            leg: id, token: token, meeting: meeting.number, protection: .srtp(.aeadAES128GCM, clientToRelay: key, relayToClient: key),
            audioPayloadTypes: [111], videoPayloadTypes: [96])
    }

    private func info(_ leg: UInt32, _ name: String) -> ParticipantInfo {
        ParticipantInfo(
            leg: leg, name: name, kind: .guest, email: nil, address: "192.0.2.1", mac: nil, clientName: "test", clientVersion: "1",
            os: "Linux", transports: ["udp"], profile: "AEAD_AES_128_GCM", joinedAt: 0)
    }

    @Test func startIsIdempotentButNotWithOtherSettings() throws {
        let fixture = try RelayFixture()
        let registry = MeetingRegistry(relay: fixture.link, clock: { 0 })
        let settings = MeetingSettings(name: "Board")
        guard case .started(let meeting) = try registry.start(id: "m1", settings: settings, securityMode: .mixed) else {
            Issue.record("not started")
            return
        }
        guard case .alreadyRunning(let again) = try registry.start(id: "m1", settings: settings, securityMode: .mixed) else {
            Issue.record("a second start with the same settings was not idempotent")
            return
        }
        #expect(again === meeting)
        #expect(throws: ControlRefusal.meetingExists("m1")) {
            try registry.start(id: "m1", settings: MeetingSettings(name: "Other"), securityMode: .mixed)
        }
        #expect(fixture.link.meetingNumberInUse(meeting.number))
    }

    @Test func settingsAndIdsAreValidated() throws {
        let fixture = try RelayFixture()
        let registry = MeetingRegistry(relay: fixture.link, clock: { 0 })
        #expect(throws: ControlRefusal.self) { try registry.start(id: "has space", settings: .init(name: "x"), securityMode: .mixed) }
        #expect(throws: ControlRefusal.self) { try registry.start(id: "m", settings: .init(name: "x", limit: 1), securityMode: .mixed) }
        #expect(throws: ControlRefusal.self) { try registry.start(id: "m", settings: .init(name: "x", passcode: "12"), securityMode: .mixed) }
        #expect(throws: ControlRefusal.refusedBySecurityMode("the system is secured: meetings must use srtp media")) {
            try registry.start(id: "m", settings: .init(name: "x", mode: .encapsulated), securityMode: .secured)
        }
        #expect(registry.meetings.isEmpty)
    }

    @Test func admissionRefusesEachCaseWithItsCode() throws {
        let fixture = try RelayFixture()
        let registry = MeetingRegistry(relay: fixture.link, clock: { 0 })
        try registry.start(id: "m", settings: .init(name: "x", passcode: "secret", limit: 2, guestsAllowed: false), securityMode: .mixed)
        try registry.start(id: "enc", settings: .init(name: "x", mode: .encapsulated), securityMode: .mixed)
        func code(_ id: String, passcode: String? = "secret", guest: Bool = false, mode: SecurityMode = .mixed) -> String? {
            do {
                _ = try registry.admissible(meeting: id, passcode: passcode, asGuest: guest, securityMode: mode)
                return nil
            } catch { return error.code }
        }
        #expect(code("nosuch") == "unknown-meeting")
        #expect(code("m", passcode: "wrong") == "wrong-passcode")
        #expect(code("m", passcode: nil) == "wrong-passcode")
        #expect(code("m", guest: true) == "guests-not-allowed")
        #expect(code("m") == nil)
        #expect(code("enc", mode: .secured) == "refused-by-security-mode")
        _ = try registry.edit(id: "m", .init(locked: true), securityMode: .mixed)
        #expect(code("m") == "meeting-locked")
        try registry.stop(id: "m", reason: "done")
        #expect(code("m") == "meeting-ended")
    }

    @Test func joinsLeavesKicksAndStopReachEveryone() throws {
        let fixture = try RelayFixture()
        let registry = MeetingRegistry(relay: fixture.link, clock: { 0 })
        guard case .started(let meeting) = try registry.start(id: "m", settings: .init(name: "x", limit: 3), securityMode: .mixed) else { return }
        let channels = (0..<3).map { _ in RecordingChannel() }
        var legs: [UInt32] = []
        for (index, channel) in channels.enumerated() {
            let description = try leg(registry, meeting: meeting)
            _ = try registry.join(
                meeting: "m", passcode: nil, asGuest: true, securityMode: .mixed, leg: description, info: info(description.leg, "p\(index)"),
                channel: channel)
            legs.append(description.leg)
        }
        #expect(fixture.link.legCount == 3)
        #expect(channels[0].delivered.filter { if case .participantJoined = $0 { true } else { false } }.count == 2)
        #expect(throws: ControlRefusal.meetingFull("m", limit: 3)) {
            _ = try registry.admissible(meeting: "m", passcode: nil, asGuest: true, securityMode: .mixed)
        }
        _ = try registry.kick(meeting: "m", leg: legs[2], reason: "bye")
        #expect(channels[2].ended == .kicked(reason: "bye"))
        #expect(channels[0].delivered.last == .participantLeft(leg: legs[2]))
        #expect(fixture.link.legCount == 2)
        registry.leave(leg: legs[1])
        #expect(channels[0].delivered.last == .participantLeft(leg: legs[1]))
        try registry.stop(id: "m", reason: "over")
        #expect(channels[0].ended == .meetingEnded(reason: "over"))
        #expect(fixture.link.legCount == 0 && fixture.link.meetingCount == 0)
        #expect(registry.participantCount == 0)
    }

    @Test func theLimitCannotFallBelowTheParticipantsAndModeChangesOnlyWhenEmpty() throws {
        let fixture = try RelayFixture()
        let registry = MeetingRegistry(relay: fixture.link, clock: { 0 })
        guard case .started(let meeting) = try registry.start(id: "m", settings: .init(name: "x", limit: 3), securityMode: .mixed) else { return }
        let description = try leg(registry, meeting: meeting)
        _ = try registry.join(
            meeting: "m", passcode: nil, asGuest: true, securityMode: .mixed, leg: description, info: info(description.leg, "a"),
            channel: RecordingChannel())
        #expect(throws: ControlRefusal.self) { _ = try registry.edit(id: "m", .init(mode: .encapsulated), securityMode: .mixed) }
        #expect(meeting.settings.mode == .srtp)
        registry.leave(leg: description.leg)
        _ = try registry.edit(id: "m", .init(mode: .encapsulated), securityMode: .mixed)
        #expect(meeting.settings.mode == .encapsulated)
    }

    @Test func aRestartedRelayGetsEveryMeetingAndLegAgain() throws {
        let fixture = try RelayFixture()
        let registry = MeetingRegistry(relay: fixture.link, clock: { 0 })
        guard case .started(let meeting) = try registry.start(id: "m", settings: .init(name: "x"), securityMode: .mixed) else { return }
        let description = try leg(registry, meeting: meeting)
        _ = try registry.join(
            meeting: "m", passcode: nil, asGuest: true, securityMode: .mixed, leg: description, info: info(description.leg, "a"),
            channel: RecordingChannel())
        let fresh = try RelayFixture()
        let (ours, theirs) = try ProcessSpawner.socketPair()
        let server = RelayIPCServer(relay: fresh.relay)
        try startDetachedThread {
            try? server.serve(socket: theirs)
            close(theirs)
        }
        fixture.link.reconnect(socket: ours)
        #expect(fixture.link.lastError == nil)
        #expect(fresh.relay.snapshot().legs.map(\.leg) == [description.leg])
    }
}
