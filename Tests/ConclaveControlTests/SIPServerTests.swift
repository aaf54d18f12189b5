import ConclaveControl
import ConclaveSIP
import NIOCore
import NIOEmbedded
import Testing

@Suite struct SIPServerTests {
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

    func makeServer(_ admission: FakeAdmission, clock: FakeClock, loop: EmbeddedEventLoop) -> SIPServer {
        let origin = SDPOrigin(username: "conclave", sessionID: "1", sessionVersion: 1, addressType: "IP4", address: "198.51.100.1")
        let engine = SIPServerEngine(
            core: CallCore(
                configuration: .init(
                    contact: "sip:198.51.100.1:5060", origin: origin, connection: SDPConnection(addressType: "IP4", address: "198.51.100.1"),
                    allowsPlainRTP: true)))
        return SIPServer(eventLoop: loop, engine: engine, admission: admission, clock: { clock.now })
    }

    func text(_ lines: [String], body: String = "") -> String {
        lines.joined(separator: "\r\n") + "\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body
    }

    func request(_ method: String, branch: String, cseq: Int = 1, toTag: String? = nil, transport: String = "UDP") -> [String] {
        [
            "\(method) sip:standup@conclave.example SIP/2.0", "Via: SIP/2.0/\(transport) 192.0.2.10:5062;branch=\(branch)",
            "From: <sip:room4@example.org>;tag=c1", "To: <sip:standup@conclave.example>" + (toTag.map { ";tag=\($0)" } ?? ""),
            "Call-ID: sip-call", "CSeq: \(cseq) \(method)",
        ]
    }

    func datagramAnswers(_ channel: EmbeddedChannel) throws -> [SIPMessage] {
        var messages: [SIPMessage] = []
        while let envelope = try channel.readOutbound(as: AddressedEnvelope<ByteBuffer>.self) {
            #expect(envelope.remoteAddress == caller)
            messages.append(try SIPMessage(parsing: Array(envelope.data.readableBytesView)))
        }
        return messages
    }

    func streamAnswers(_ channel: EmbeddedChannel) throws -> [SIPMessage] {
        var framer = SIPStreamFramer()
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { framer.append(buffer.readableBytesView) }
        var messages: [SIPMessage] = []
        while let frame = try framer.nextMessage() { messages.append(try SIPMessage(parsing: frame)) }
        return messages
    }

    @Test func udpCallIsAdmittedRetransmittedOnTheLoopsTimerAndReleased() throws {
        let admission = FakeAdmission()
        let clock = FakeClock()
        let loop = EmbeddedEventLoop()
        let server = makeServer(admission, clock: clock, loop: loop)
        let channel = EmbeddedChannel(handler: SIPDatagramHandler(server: server), loop: loop)
        func send(_ lines: [String], body: String = "") throws {
            try channel.writeInbound(AddressedEnvelope(remoteAddress: caller, data: ByteBuffer(string: text(lines, body: body))))
        }
        try send(request("OPTIONS", branch: "z9hG4bKo"))
        #expect(try datagramAnswers(channel).map(\.status) == [200])
        try send(request("INVITE", branch: "z9hG4bKi") + ["Content-Type: application/sdp"], body: offer)
        let first = try datagramAnswers(channel)
        #expect(first.map(\.status) == [100, 200])
        #expect(admission.admitted.map(\.meeting) == ["standup"])
        let ok = try #require(first.last)
        #expect(try SessionDescription(parsing: ok.body).media.first?.port == 40000)
        let to = try SIPNameAddress(parsing: ok["To"] ?? "")
        let toTag = try #require(to.parameter("tag"))
        #expect(toTag.count == 16)
        // No ACK yet: T1 later the 2xx goes out again, from the event loop's timer.
        clock.now += .milliseconds(500)
        loop.advanceTime(by: .milliseconds(500))
        #expect(try datagramAnswers(channel).map(\.status) == [200])
        try send(request("ACK", branch: "z9hG4bKa", toTag: toTag))
        clock.now += .seconds(5)
        loop.advanceTime(by: .seconds(5))
        #expect(try datagramAnswers(channel).isEmpty)
        try send(request("BYE", branch: "z9hG4bKb", cseq: 2, toTag: toTag))
        #expect(try datagramAnswers(channel).map(\.status) == [200])
        #expect(admission.released.map(\.1) == ["the caller hung up"])
        clock.now += .seconds(60)
        loop.advanceTime(by: .seconds(60))
        #expect(server.transactionCount == 0)
    }

    @Test func refusalFromTheControlPlaneIsSent() throws {
        let admission = FakeAdmission()
        admission.outcome = .refused(status: 480, reason: "Temporarily Unavailable", warning: "meeting 'standup' is locked", headers: [])
        let loop = EmbeddedEventLoop()
        let channel = EmbeddedChannel(handler: SIPDatagramHandler(server: makeServer(admission, clock: FakeClock(), loop: loop)), loop: loop)
        try channel.writeInbound(
            AddressedEnvelope(
                remoteAddress: caller,
                data: ByteBuffer(string: text(request("INVITE", branch: "z9hG4bKi") + ["Content-Type: application/sdp"], body: offer))))
        let sent = try datagramAnswers(channel)
        #expect(sent.map(\.status) == [100, 480])
        #expect(sent.last?["Warning"] == "399 conclave \"meeting 'standup' is locked\"")
    }

    @Test func streamMessagesAreFramedAcrossReadsAndAClosedConnectionEndsItsTransactions() throws {
        let admission = FakeAdmission()
        let loop = EmbeddedEventLoop()
        let server = makeServer(admission, clock: FakeClock(), loop: loop)
        let channel = EmbeddedChannel(handler: SIPStreamHandler(server: server, transport: .tcp), loop: loop)
        try channel.connect(to: caller).wait()
        let bytes = Array((text(request("OPTIONS", branch: "z9hG4bKo", transport: "TCP"))
            + text(request("INVITE", branch: "z9hG4bKi", transport: "TCP") + ["Content-Type: application/sdp"], body: offer)).utf8)
        try channel.writeInbound(ByteBuffer(bytes: bytes.prefix(100)))
        #expect(try streamAnswers(channel).isEmpty)
        try channel.writeInbound(ByteBuffer(bytes: bytes.dropFirst(100)))
        #expect(try streamAnswers(channel).map(\.status) == [200, 100, 200])
        #expect(server.transactionCount == 2)
        _ = try channel.finish()
        #expect(server.transactionCount == 0)
    }

    @Test func streamWithoutContentLengthIsAnsweredAndClosed() throws {
        let loop = EmbeddedEventLoop()
        let channel = EmbeddedChannel(
            handler: SIPStreamHandler(server: makeServer(FakeAdmission(), clock: FakeClock(), loop: loop), transport: .tcp), loop: loop)
        try channel.connect(to: caller).wait()
        try channel.writeInbound(ByteBuffer(string: request("OPTIONS", branch: "z9hG4bKo", transport: "TCP").joined(separator: "\r\n") + "\r\n\r\n"))
        #expect(try streamAnswers(channel).map(\.status) == [400])
        #expect(!channel.isActive)
    }
}
