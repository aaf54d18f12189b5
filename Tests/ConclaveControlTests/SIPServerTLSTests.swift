import ConclaveControl
import ConclaveCrypto
import ConclaveSIP
import NIOCore
import NIOPosix
import Testing

/// SIP over TLS on a real loopback socket: our TLSHandler in front of SIPStreamHandler, a client
/// with our TLSHandler too, the system in secured mode.
@Suite struct SIPServerTLSTests {
    final class Admission: SIPCallAdmission {
        var calls: [CallRequest] = []
        func admit(_ call: CallRequest) -> SIPAdmissionOutcome {
            calls.append(call)
            var local: [Int: LocalStream] = [:]
            for case .accepted(let stream) in call.decisions {
                guard case .sdes(let remote) = stream.security else { continue }
                local[stream.mediaIndex] = LocalStream(port: 41000, keyMaterial: SecureRandom.bytes(count: remote.suite.keyMaterialLength))
            }
            return .admitted(local)
        }
        func updateMedia(_ call: CallKey, _ decisions: [StreamDecision]) {}
        func release(_ call: CallKey, reason: String) {}
    }

    /// Collects what the client receives and hands over whole messages.
    final class Collector: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        var framer = SIPStreamFramer()
        var messages: [SIPMessage] = []
        let promise: EventLoopPromise<[SIPMessage]>
        let expected: Int

        init(expected: Int, promise: EventLoopPromise<[SIPMessage]>) {
            self.expected = expected
            self.promise = promise
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            framer.append(unwrapInboundIn(data).readableBytesView)
            while let frame = try? framer.nextMessage(), let message = try? SIPMessage(parsing: frame) {
                messages.append(message)
                if messages.count == expected { promise.succeed(messages) }
            }
        }
    }

    @Test func sdesCallOverTLSIsAnsweredWithOurKeyInSecuredMode() async throws {
        let ca = try LocalCertificateAuthority(commonName: "Test Root")
        let (leaf, key) = try ca.issueLeaf(commonName: "conclave.example", subjectAlternativeNames: [.dns("conclave.example")])
        let serverContext = try TLSContext(configuration: .server(certificateChain: [leaf], privateKey: key))
        let clientContext = try TLSContext(configuration: .client(trustRoots: [ca.certificate]))
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let admission = Admission()
        let origin = SDPOrigin(username: "conclave", sessionID: "1", sessionVersion: 1, addressType: "IP4", address: "127.0.0.1")
        let server = try await loop.submit {
            SIPServer(
                eventLoop: loop,
                engine: SIPServerEngine(
                    core: CallCore(
                        configuration: .init(
                            contact: "sips:127.0.0.1:5061", origin: origin, connection: SDPConnection(addressType: "IP4", address: "127.0.0.1"),
                            allowsPlainRTP: false))),
                admission: admission)
        }.get()
        let listener = try await ServerBootstrap(group: loop)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([
                        try TLSHandler(context: serverContext), SIPStreamHandler(server: server, transport: .tls),
                    ])
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let promise = loop.makePromise(of: [SIPMessage].self)
        let client = try await ClientBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([
                        try TLSHandler(context: clientContext, serverHostname: "conclave.example"), Collector(expected: 2, promise: promise),
                    ])
                }
            }
            .connect(to: listener.localAddress!).get()
        let key64 = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"
        let body = [
            "v=0", "o=room 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0", "m=audio 49170 RTP/SAVP 0",
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:\(key64)", "",
        ].joined(separator: "\r\n")
        let invite = [
            "INVITE sips:standup@conclave.example SIP/2.0", "Via: SIP/2.0/TLS 127.0.0.1:5099;branch=z9hG4bKtls",
            "From: <sips:room4@example.org>;tag=c1", "To: <sips:standup@conclave.example>", "Call-ID: tls-call", "CSeq: 1 INVITE",
            "Content-Type: application/sdp", "Content-Length: \(body.utf8.count)", "", body,
        ].joined(separator: "\r\n")
        try await client.writeAndFlush(ByteBuffer(string: invite)).get()
        let answers = try await withThrowingTaskGroup(of: [SIPMessage].self) { tasks in
            tasks.addTask { try await promise.futureResult.get() }
            tasks.addTask {
                try await Task.sleep(for: .seconds(10))
                throw CancellationError()
            }
            defer { tasks.cancelAll() }
            return try await tasks.next()!
        }
        #expect(answers.map(\.status) == [100, 200])
        let answer = try SessionDescription(parsing: answers[1].body)
        let crypto = try #require(answer.media.first?.attributes(named: "crypto").first)
        #expect(crypto.hasPrefix("1 AES_CM_128_HMAC_SHA1_80 inline:"))
        #expect(!crypto.contains(key64))  // our key, not the caller's echoed back
        #expect(answer.media.first?.port == 41000)
        let calls = try await loop.submit { admission.calls }.get()
        #expect(calls.map(\.transport) == [.tls])
        try await client.close()
        try await listener.close()
        try await loop.submit { server.shutdown() }.get()
        try await group.shutdownGracefully()
    }
}
