import ConclaveControl
import ConclaveSIP
import NIOCore
import NIOEmbedded
import Testing

@Suite struct SIPDatagramHandlerTests {
    final class FakeAdmission: SIPCallAdmission {
        var outcome: SIPAdmissionOutcome = .admitted([0: LocalStream(port: 40000)])
        var admitted: [CallRequest] = []
        var released: [(CallKey, String)] = []

        func admit(_ call: CallRequest) -> SIPAdmissionOutcome {
            admitted.append(call)
            return outcome
        }
        func updateMedia(_ call: CallKey, _ decisions: [StreamDecision]) {}
        func release(_ call: CallKey, reason: String) { released.append((call, reason)) }
    }

    final class FakeClock: @unchecked Sendable {
        var now = ContinuousClock.now
    }

    let caller = try! SocketAddress(ipAddress: "192.0.2.10", port: 5062)
    let offer = "v=0\r\no=r 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0\r\n"

    func makeChannel(_ admission: FakeAdmission, clock: FakeClock) -> EmbeddedChannel {
        let origin = SDPOrigin(username: "conclave", sessionID: "1", sessionVersion: 1, addressType: "IP4", address: "198.51.100.1")
        let engine = SIPServerEngine(
            core: CallCore(
                configuration: .init(
                    contact: "sip:198.51.100.1:5060", origin: origin, connection: SDPConnection(addressType: "IP4", address: "198.51.100.1"),
                    allowsPlainRTP: true)))
        return EmbeddedChannel(handler: SIPDatagramHandler(engine: engine, admission: admission, clock: { clock.now }))
    }

    func send(_ channel: EmbeddedChannel, _ lines: [String], body: String = "") throws {
        let text = lines.joined(separator: "\r\n") + "\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body
        try channel.writeInbound(AddressedEnvelope(remoteAddress: caller, data: ByteBuffer(string: text)))
    }

    /// The messages written back, each checked to go to the caller.
    func answers(_ channel: EmbeddedChannel) throws -> [SIPMessage] {
        var messages: [SIPMessage] = []
        while let envelope = try channel.readOutbound(as: AddressedEnvelope<ByteBuffer>.self) {
            #expect(envelope.remoteAddress == caller)
            messages.append(try SIPMessage(parsing: Array(envelope.data.readableBytesView)))
        }
        return messages
    }

    func request(_ method: String, branch: String, cseq: Int = 1, toTag: String? = nil) -> [String] {
        [
            "\(method) sip:standup@conclave.example SIP/2.0", "Via: SIP/2.0/UDP 192.0.2.10:5062;branch=\(branch)",
            "From: <sip:room4@example.org>;tag=c1", "To: <sip:standup@conclave.example>" + (toTag.map { ";tag=\($0)" } ?? ""),
            "Call-ID: udp-call", "CSeq: \(cseq) \(method)",
        ]
    }

    @Test func optionsIsAnsweredToTheSender() throws {
        let channel = makeChannel(FakeAdmission(), clock: FakeClock())
        try send(channel, request("OPTIONS", branch: "z9hG4bKo"))
        #expect(try answers(channel).map(\.status) == [200])
    }

    @Test func callIsAdmittedRetransmittedOnTheLoopsTimerAndReleased() throws {
        let admission = FakeAdmission()
        let clock = FakeClock()
        let channel = makeChannel(admission, clock: clock)
        try send(channel, request("INVITE", branch: "z9hG4bKi") + ["Content-Type: application/sdp"], body: offer)
        let first = try answers(channel)
        #expect(first.map(\.status) == [100, 200])
        #expect(admission.admitted.map(\.meeting) == ["standup"])
        let ok = try #require(first.last)
        #expect(try SessionDescription(parsing: ok.body).media.first?.port == 40000)
        let to = try SIPNameAddress(parsing: ok["To"] ?? "")
        let toTag = try #require(to.parameter("tag"))
        #expect(toTag.count == 16)
        // No ACK yet: T1 later the 2xx goes out again, from the event loop's timer.
        clock.now += .milliseconds(500)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(500))
        #expect(try answers(channel).map(\.status) == [200])
        try send(channel, request("ACK", branch: "z9hG4bKa", toTag: toTag))
        clock.now += .seconds(5)
        channel.embeddedEventLoop.advanceTime(by: .seconds(5))
        #expect(try answers(channel).isEmpty)
        try send(channel, request("BYE", branch: "z9hG4bKb", cseq: 2, toTag: toTag))
        #expect(try answers(channel).map(\.status) == [200])
        #expect(admission.released.map(\.1) == ["the caller hung up"])
    }

    @Test func refusalFromTheControlPlaneIsSent() throws {
        let admission = FakeAdmission()
        admission.outcome = .refused(status: 480, reason: "Temporarily Unavailable", warning: "meeting 'standup' is locked", headers: [])
        let channel = makeChannel(admission, clock: FakeClock())
        try send(channel, request("INVITE", branch: "z9hG4bKi") + ["Content-Type: application/sdp"], body: offer)
        let sent = try answers(channel)
        #expect(sent.map(\.status) == [100, 480])
        #expect(sent.last?["Warning"] == "399 conclave \"meeting 'standup' is locked\"")
    }
}
