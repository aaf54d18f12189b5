import ConclaveCrypto
import FoundationEssentials
import NIOCore
import NIOHTTP1
import NIOPosix

/// The command API server (HTTPS on the API socket, TCP 8443 by default): our TLS handler with
/// a client certificate required (it must chain to `pki/api-ca.pem`, else the handshake fails),
/// an optional fingerprint pin checked right after the handshake, then HTTP/1.1 (NIOHTTP1)
/// and `CommandAPI`. Everything runs on the control plane's event loop.
public enum CommandAPIServer {
    /// A request must arrive complete (head and body) this soon after the connection opens or
    /// the previous response; slow senders (slowloris) are cut off after it.
    public static let requestTimeout = TimeAmount.seconds(10)

    public static func start(listeningSocket: Int32, plane: ControlPlane) -> EventLoopFuture<Channel> {
        let bound = NIOLoopBound(plane, eventLoop: plane.eventLoop)
        return ServerBootstrap(group: plane.eventLoop)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let plane = bound.value
                    guard let context = plane.api.tlsContext else {
                        plane.log.warning("command API connection from \(channel.remoteAddress.map { "\($0)" } ?? "?") refused: no certificate or no API client CA")
                        throw CommandAPIServerError.notConfigured
                    }
                    let sync = channel.pipeline.syncOperations
                    let gate = ClientCertificateGate(plane: plane)
                    try sync.addHandler(TLSHandler(context: context, handshakeTimeout: .seconds(10)))
                    try sync.addHandler(gate)
                    try sync.configureHTTPServerPipeline(withPipeliningAssistance: true, withErrorHandling: true)
                    try sync.addHandler(CommandAPIHandler(plane: plane, gate: gate))
                }
            }
            .withBoundSocket(listeningSocket)
    }
}

enum CommandAPIServerError: Error, CustomStringConvertible {
    case notConfigured

    var description: String { "the command API has no certificate or no client CA: connection refused" }
}

/// Learns who the client is once the TLS handshake completes, and closes the connection when
/// fingerprints are pinned and the certificate is not one of them.
final class ClientCertificateGate: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let plane: ControlPlane
    private(set) var client: APIClient?

    init(plane: ControlPlane) { self.plane = plane }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSEvent.handshakeCompleted(let info)? = event as? TLSEvent {
            guard let certificate = info.peerCertificate else {
                // The context requires a certificate; this cannot pass the handshake.
                context.close(promise: nil)
                return
            }
            let fingerprint = certificate.sha256Fingerprint.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
            let pins = plane.api.pinnedFingerprints
            guard pins.isEmpty || pins.contains(fingerprint) else {
                plane.log.warning("command API: client \(certificate.subject) (sha256 \(fingerprint)) is not pinned: closing")
                context.close(promise: nil)
                return
            }
            client = APIClient(subject: certificate.subject, fingerprint: fingerprint)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard client != nil else { return }  // nothing before the client is known
        context.fireChannelRead(data)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        plane.log.info("command API connection from \(context.remoteAddress.map { "\($0)" } ?? "?"): \(error)")
        context.close(promise: nil)
    }
}

/// One HTTP/1.1 connection: aggregates each request (bounded by `CommandAPI.bodyLimit` and
/// `CommandAPIServer.requestTimeout`), answers it through `CommandAPI`, one at a time.
final class CommandAPIHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        case idle
        case receiving(HTTPRequestHead, ByteBuffer)
        /// The request was refused before its body ended (413): the rest is read and dropped (a
        /// client still sending would otherwise get a reset instead of the answer), then closed.
        case discarding
        case responding
    }

    private let plane: ControlPlane
    private let gate: ClientCertificateGate
    private var state = State.idle
    private var timer: Scheduled<Void>?
    private var requestStarted = false

    init(plane: ControlPlane, gate: ClientCertificateGate) {
        self.plane = plane
        self.gate = gate
    }

    func handlerAdded(context: ChannelHandlerContext) { armTimer(context: context) }

    func handlerRemoved(context: ChannelHandlerContext) { timer?.cancel() }

    private func armTimer(context: ChannelHandlerContext) {
        timer?.cancel()
        requestStarted = false
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: CommandAPIServer.requestTimeout) {
            let (handler, context) = bound.value
            handler.timedOut(context: context)
        }
    }

    private func timedOut(context: ChannelHandlerContext) {
        switch state {
        case .receiving:
            state = .responding
            send(APIResponse(.requestTimeout), keepAlive: false, context: context)
        case .idle, .discarding:
            // Nothing (or not even a whole head) arrived in time: an idle or slowloris connection.
            context.close(promise: nil)
        case .responding:
            break
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch (unwrapInboundIn(data), state) {
        case (.head(let head), .idle):
            if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > CommandAPI.bodyLimit {
                state = .discarding
                send(APIResponse(.payloadTooLarge(limit: CommandAPI.bodyLimit)), keepAlive: false, context: context)
                return
            }
            state = .receiving(head, context.channel.allocator.buffer(capacity: 0))
        case (.body(var chunk), .receiving(let head, var body)):
            guard body.readableBytes + chunk.readableBytes <= CommandAPI.bodyLimit else {
                state = .discarding
                send(APIResponse(.payloadTooLarge(limit: CommandAPI.bodyLimit)), keepAlive: false, context: context)
                return
            }
            state = .idle  // drop the buffer's second reference before writing into it
            body.writeBuffer(&chunk)
            state = .receiving(head, body)
        case (.end(_), .receiving(let head, var body)):
            state = .responding
            timer?.cancel()
            respond(to: head, body: body.readBytes(length: body.readableBytes) ?? [], context: context)
        case (.end(_), .discarding):
            context.close(promise: nil)
        case (_, .discarding), (_, .responding):
            break
        default:
            state = .discarding
            send(APIResponse(.malformed("unexpected HTTP message part")), keepAlive: false, context: context)
        }
    }

    private func respond(to head: HTTPRequestHead, body: [UInt8], context: ChannelHandlerContext) {
        guard let client = gate.client else {
            context.close(promise: nil)
            return
        }
        let request = APIRequest(method: head.method.rawValue, target: head.uri, contentType: head.headers.first(name: "content-type"), body: body)
        let keepAlive = head.isKeepAlive
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        CommandAPI.respond(to: request, client: client, plane: plane).whenComplete { result in
            let (handler, context) = bound.value
            let response = (try? result.get()) ?? APIResponse(.unavailable("no answer"))
            handler.plane.log.info("command API: \(client.subject): \(head.method.rawValue) \(head.uri) → \(response.status)")
            handler.send(response, keepAlive: keepAlive, context: context)
        }
    }

    private func send(_ response: APIResponse, keepAlive: Bool, context: ChannelHandlerContext) {
        guard context.channel.isActive else { return }
        var headers = HTTPHeaders()
        if response.status != 204 {
            headers.add(name: "Content-Type", value: response.contentType)
            headers.add(name: "Content-Length", value: "\(response.body.utf8.count)")
        }
        for (name, value) in response.headers { headers.add(name: name, value: value) }
        headers.add(name: "Cache-Control", value: "no-store")
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        let head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: response.status), headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if response.status != 204 {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: response.body)))), promise: nil)
        }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            let (handler, context) = bound.value
            if keepAlive, case .responding = handler.state {
                handler.state = .idle
                handler.armTimer(context: context)
            } else if case .discarding = handler.state {
                // closed when the refused body ends, or by the request timer
            } else {
                context.close(promise: nil)
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        plane.log.info("command API connection: \(error)")
        context.close(promise: nil)
    }
}
