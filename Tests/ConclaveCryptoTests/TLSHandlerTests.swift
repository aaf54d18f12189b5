import NIOCore
import NIOEmbedded
import NIOPosix
import Testing
@testable import ConclaveCrypto

/// Records what reaches the top of a TLS pipeline.
final class RecordingHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    var received: [UInt8] = []
    var events: [TLSEvent] = []
    var errors: [Error] = []
    var sessionInfo: TLSSessionInfo? {
        for case .handshakeCompleted(let info) in events { return info }
        return nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received += Array(buffer: unwrapInboundIn(data))
    }
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSEvent { events.append(event) }
    }
    func errorCaught(context: ChannelHandlerContext, error: Error) { errors.append(error) }
}

/// A CA, a server certificate for "conclave.example" and a client CA, made once per test.
struct TLSFixture {
    let serverCA: LocalCertificateAuthority
    let serverChain: [X509Certificate]
    let serverKey: PrivateKey
    let clientCA: LocalCertificateAuthority

    init() throws {
        serverCA = try LocalCertificateAuthority(commonName: "Server Root")
        let intermediate = try serverCA.issueIntermediate(commonName: "Server Intermediate")
        let (leaf, key) = try intermediate.issueLeaf(
            commonName: "conclave.example", subjectAlternativeNames: [.dns("conclave.example"), .ip("127.0.0.1")])
        serverChain = [leaf, intermediate.certificate]
        serverKey = key
        clientCA = try LocalCertificateAuthority(commonName: "API Client CA")
    }

    func serverContext(requireClientCertificate: Bool = false, alpn: [String] = []) throws -> TLSContext {
        try TLSContext(configuration: .server(
            certificateChain: serverChain, privateKey: serverKey,
            clientCertificateRoots: requireClientCertificate ? [clientCA.certificate] : nil, applicationProtocols: alpn))
    }

    func clientContext(clientCertificateFrom ca: LocalCertificateAuthority? = nil, alpn: [String] = []) throws -> TLSContext {
        var chain: [X509Certificate] = []
        var key: PrivateKey? = nil
        if let ca {
            let issued = try ca.issueLeaf(commonName: "management", usage: .client)
            chain = [issued.certificate]
            key = issued.key
        }
        return try TLSContext(configuration: .client(
            trustRoots: [serverCA.certificate], certificateChain: chain, privateKey: key, applicationProtocols: alpn))
    }
}

/// Two EmbeddedChannels joined by moving their outbound bytes across by hand.
struct EmbeddedPair {
    let client = EmbeddedChannel()
    let server = EmbeddedChannel()
    let clientRecorder = RecordingHandler()
    let serverRecorder = RecordingHandler()

    init(client clientHandler: TLSHandler, server serverHandler: TLSHandler) throws {
        try client.pipeline.syncOperations.addHandlers([clientHandler, clientRecorder])
        try server.pipeline.syncOperations.addHandlers([serverHandler, serverRecorder])
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: 4433)
        try server.connect(to: address).wait()
        try client.connect(to: address).wait()
        try run()
    }

    /// Moves bytes both ways until neither side has anything to send.
    func run() throws {
        for _ in 0..<50 {
            var moved = false
            while let bytes = try client.readOutbound(as: ByteBuffer.self) {
                moved = true
                if server.isActive { try server.writeInbound(bytes) }
            }
            while let bytes = try server.readOutbound(as: ByteBuffer.self) {
                moved = true
                if client.isActive { try client.writeInbound(bytes) }
            }
            if !moved { return }
        }
        Issue.record("the TLS exchange did not settle")
    }
}

@Suite struct TLSHandlerTests {
    let fixture: TLSFixture
    init() throws { fixture = try TLSFixture() }

    @Test func handshakeExchangesDataAndAgreesOnExporter() throws {
        let serverHandler = try TLSHandler(context: fixture.serverContext(alpn: ["conclave/1", "http/1.1"]))
        let clientHandler = try TLSHandler(context: fixture.clientContext(alpn: ["http/1.1"]), serverHostname: "conclave.example")
        let pair = try EmbeddedPair(client: clientHandler, server: serverHandler)

        let clientInfo = try #require(pair.clientRecorder.sessionInfo)
        let serverInfo = try #require(pair.serverRecorder.sessionInfo)
        #expect(clientInfo.version == "TLSv1.3")
        #expect(clientInfo.applicationProtocol == "http/1.1")
        #expect(serverInfo.applicationProtocol == "http/1.1")
        #expect(serverInfo.serverName == "conclave.example")
        #expect(clientInfo.peerCertificate == fixture.serverChain[0])
        #expect(serverInfo.peerCertificate == nil)

        try pair.client.writeAndFlush(ByteBuffer(string: "hello server")).wait()
        try pair.run()
        #expect(pair.serverRecorder.received == Array("hello server".utf8))
        try pair.server.writeAndFlush(ByteBuffer(string: "hello client")).wait()
        try pair.run()
        #expect(pair.clientRecorder.received == Array("hello client".utf8))

        let clientKey = try clientHandler.exportKeyingMaterial(label: "EXPORTER-conclave-media", context: [0, 0, 0, 7], length: 60)
        let serverKey = try serverHandler.exportKeyingMaterial(label: "EXPORTER-conclave-media", context: [0, 0, 0, 7], length: 60)
        #expect(clientKey == serverKey)
        #expect(try clientHandler.exportKeyingMaterial(label: "EXPORTER-conclave-media", context: [0, 0, 0, 8], length: 60) != clientKey)
    }

    @Test func writesBeforeHandshakeAreSentAfterIt() throws {
        let client = EmbeddedChannel()
        let server = EmbeddedChannel()
        let serverRecorder = RecordingHandler()
        try client.pipeline.syncOperations.addHandler(TLSHandler(context: fixture.clientContext(), serverHostname: "conclave.example"))
        try server.pipeline.syncOperations.addHandlers([TLSHandler(context: fixture.serverContext()), serverRecorder])
        let written = client.writeAndFlush(ByteBuffer(string: "early"))
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: 4433)
        try server.connect(to: address).wait()
        try client.connect(to: address).wait()
        for _ in 0..<10 {
            while let bytes = try client.readOutbound(as: ByteBuffer.self) { try server.writeInbound(bytes) }
            while let bytes = try server.readOutbound(as: ByteBuffer.self) { try client.writeInbound(bytes) }
        }
        try written.wait()
        #expect(serverRecorder.received == Array("early".utf8))
    }

    @Test func clientRefusesWrongHostname() throws {
        let pair = try EmbeddedPair(
            client: TLSHandler(context: fixture.clientContext(), serverHostname: "other.example"),
            server: TLSHandler(context: fixture.serverContext()))
        let error = try #require(pair.clientRecorder.errors.first as? OpenSSLError)
        #expect(error.reasons.first?.contains("hostname mismatch") == true)
        #expect(pair.clientRecorder.sessionInfo == nil)
        #expect(!pair.client.isActive)
    }

    @Test func clientRefusesUnknownCA() throws {
        let stranger = try LocalCertificateAuthority(commonName: "Stranger")
        let context = try TLSContext(configuration: .client(trustRoots: [stranger.certificate]))
        let pair = try EmbeddedPair(
            client: TLSHandler(context: context, serverHostname: "conclave.example"), server: TLSHandler(context: fixture.serverContext()))
        let error = try #require(pair.clientRecorder.errors.first as? OpenSSLError)
        #expect(error.reasons.first?.contains("unable to get local issuer certificate") == true)
    }

    @Test func mutualTLSExposesVerifiedClientCertificate() throws {
        let pair = try EmbeddedPair(
            client: TLSHandler(context: fixture.clientContext(clientCertificateFrom: fixture.clientCA), serverHostname: "conclave.example"),
            server: TLSHandler(context: fixture.serverContext(requireClientCertificate: true)))
        let info = try #require(pair.serverRecorder.sessionInfo)
        #expect(info.peerCertificate?.subjectCommonName == "management")
        #expect(pair.serverRecorder.errors.isEmpty)
    }

    @Test(arguments: [false, true])
    func mutualTLSRefusesMissingOrForeignClientCertificate(foreign: Bool) throws {
        let other = try LocalCertificateAuthority(commonName: "Other CA")
        let pair = try EmbeddedPair(
            client: TLSHandler(context: fixture.clientContext(clientCertificateFrom: foreign ? other : nil), serverHostname: "conclave.example"),
            server: TLSHandler(context: fixture.serverContext(requireClientCertificate: true)))
        #expect(pair.serverRecorder.sessionInfo == nil)
        #expect(pair.serverRecorder.errors.first is OpenSSLError)
        #expect(!pair.server.isActive)
        // In TLS 1.3 the client finishes its side first, then learns of the refusal from the
        // server's alert and closes.
        let clientError = try #require(pair.clientRecorder.errors.first as? OpenSSLError)
        #expect(clientError.reasons.contains { $0.contains("alert") })
        #expect(!pair.client.isActive)
    }

    @Test func alpnWithoutOverlapFails() throws {
        let pair = try EmbeddedPair(
            client: TLSHandler(context: fixture.clientContext(alpn: ["h2"]), serverHostname: "conclave.example"),
            server: TLSHandler(context: fixture.serverContext(alpn: ["http/1.1"])))
        #expect(pair.serverRecorder.sessionInfo == nil)
        #expect(!pair.serverRecorder.errors.isEmpty)
    }

    @Test func closeSendsCloseNotifyAndPeerAnswers() throws {
        let pair = try EmbeddedPair(
            client: TLSHandler(context: fixture.clientContext(), serverHostname: "conclave.example"),
            server: TLSHandler(context: fixture.serverContext()))
        let closed = pair.client.close()
        try pair.run()
        try closed.wait()
        #expect(pair.serverRecorder.events.contains { if case .closeNotifyReceived = $0 { true } else { false } })
        #expect(!pair.server.isActive)
        #expect(pair.serverRecorder.errors.isEmpty)
        #expect(pair.clientRecorder.errors.isEmpty)
    }

    @Test func transportCloseWithoutCloseNotifyIsReported() throws {
        let pair = try EmbeddedPair(
            client: TLSHandler(context: fixture.clientContext(), serverHostname: "conclave.example"),
            server: TLSHandler(context: fixture.serverContext()))
        pair.server.pipeline.fireChannelInactive()
        #expect(pair.serverRecorder.errors.first as? TLSError == .uncleanShutdown)
    }

    @Test func handshakeTimesOut() throws {
        let server = EmbeddedChannel()
        let recorder = RecordingHandler()
        try server.pipeline.syncOperations.addHandlers([
            TLSHandler(context: fixture.serverContext(), handshakeTimeout: .seconds(5)), recorder,
        ])
        try server.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 4433)).wait()
        server.embeddedEventLoop.advanceTime(by: .seconds(6))
        #expect(recorder.errors.first as? TLSError == .handshakeTimeout)
        #expect(!server.isActive)
    }

    @Test func swappedContextServesNewCertificateToNewConnectionsOnly() throws {
        let reloadable = ReloadableTLSContext(try fixture.serverContext())
        let first = try EmbeddedPair(
            client: TLSHandler(context: fixture.clientContext(), serverHostname: "conclave.example"),
            server: TLSHandler(context: reloadable.current))

        let (renewed, renewedKey) = try fixture.serverCA.issueLeaf(commonName: "renewed", subjectAlternativeNames: [.dns("conclave.example")])
        reloadable.replace(with: try TLSContext(configuration: .server(certificateChain: [renewed], privateKey: renewedKey)))
        let second = try EmbeddedPair(
            client: TLSHandler(context: fixture.clientContext(), serverHostname: "conclave.example"),
            server: TLSHandler(context: reloadable.current))
        #expect(second.clientRecorder.sessionInfo?.peerCertificate == renewed)

        // The first connection still works on its old context.
        try first.client.writeAndFlush(ByteBuffer(string: "still here")).wait()
        try first.run()
        #expect(first.serverRecorder.received == Array("still here".utf8))
        #expect(first.clientRecorder.sessionInfo?.peerCertificate == fixture.serverChain[0])
    }

    @Test func tls12OnlyPeerNegotiatesTLS12() throws {
        // A client that caps at 1.2 is served 1.2 with an ECDHE-AEAD suite; exporter still agrees.
        var configuration = TLSConfiguration.client(trustRoots: [fixture.serverCA.certificate])
        configuration.minimumVersion = .tls12
        let clientConnection = try TLSConnection(context: TLSContext(configuration: configuration), serverHostname: "conclave.example")
        try TLSTestHooks.capAtTLS12(clientConnection)
        let clientHandler = TLSHandler(connection: clientConnection)
        let serverHandler = try TLSHandler(context: fixture.serverContext())
        let pair = try EmbeddedPair(client: clientHandler, server: serverHandler)
        let info = try #require(pair.clientRecorder.sessionInfo)
        #expect(info.version == "TLSv1.2")
        #expect(info.cipher.hasPrefix("ECDHE-"))
        #expect(try clientHandler.exportKeyingMaterial(label: "EXPORTER-test", length: 32)
            == serverHandler.exportKeyingMaterial(label: "EXPORTER-test", length: 32))
    }
}

@Suite struct TLSLoopbackTests {
    /// Echo server and client over real sockets on 127.0.0.1, with mutual TLS and the exporter.
    @Test func echoOverLoopbackWithMutualTLS() async throws {
        let fixture = try TLSFixture()
        let serverContext = try fixture.serverContext(requireClientCertificate: true)
        let clientContext = try fixture.clientContext(clientCertificateFrom: fixture.clientCA)
        let group = MultiThreadedEventLoopGroup.singleton

        let server = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([TLSHandler(context: serverContext), EchoHandler()])
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()

        let result = group.next().makePromise(of: [UInt8].self)
        let client = try await ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([
                        TLSHandler(context: clientContext, serverHostname: "127.0.0.1"), CollectHandler(expected: 5, promise: result),
                    ])
                }
            }
            .connect(host: "127.0.0.1", port: server.localAddress!.port!).get()
        try await client.writeAndFlush(ByteBuffer(string: "hello"))
        let echoed = try await result.futureResult.get()
        #expect(echoed == Array("hello".utf8))
        try await client.close()
        try await server.close()
    }
}

final class EchoHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.writeAndFlush(data, promise: nil)
    }
}

final class CollectHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let expected: Int
    let promise: EventLoopPromise<[UInt8]>
    var bytes: [UInt8] = []
    init(expected: Int, promise: EventLoopPromise<[UInt8]>) {
        self.expected = expected
        self.promise = promise
    }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        bytes += Array(buffer: unwrapInboundIn(data))
        if bytes.count >= expected { promise.succeed(bytes) }
    }
    func errorCaught(context: ChannelHandlerContext, error: Error) { promise.fail(error) }
}
