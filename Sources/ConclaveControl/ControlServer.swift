import ConclaveCrypto
import ConclaveWire
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

/// The control server (`wss://<fqdn>/v1/session`, docs/control-protocol.md): TLS with the
/// active certificate, HTTP/1.1 upgraded to WebSocket on `/v1/session`, one `ControlSession`
/// per connection. Everything runs on the control plane's event loop.
public enum ControlServer {
    public static let path = "/v1/session"

    /// Accepts on `listeningSocket` (bound and listening, from the supervisor).
    public static func start(listeningSocket: Int32, plane: ControlPlane) -> EventLoopFuture<Channel> {
        let bound = NIOLoopBound(plane, eventLoop: plane.eventLoop)
        return ServerBootstrap(group: plane.eventLoop)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let plane = bound.value
                    do {
                    guard let context = plane.tlsContext else { throw ControlServerError.noCertificate }
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(TLSHandler(context: context))
                    let upgrader = NIOWebSocketServerUpgrader(
                        maxFrameSize: ControlMessage.maximumSize,
                        shouldUpgrade: { channel, head in
                            channel.eventLoop.makeSucceededFuture(head.uri == path ? HTTPHeaders() : nil)
                        },
                        upgradePipelineHandler: { channel, _ in
                            channel.pipeline.removeHandler(name: PlainHTTPResponder.name).flatMapThrowing {
                                try channel.pipeline.syncOperations.addHandlers([
                                    NIOWebSocketFrameAggregator(
                                        minNonFinalFragmentSize: 1, maxAccumulatedFrameCount: 64,
                                        maxAccumulatedFrameSize: ControlMessage.maximumSize),
                                    ControlSession(plane: bound.value),
                                ])
                            }
                        })
                    try sync.configureHTTPServerPipeline(withServerUpgrade: (upgraders: [upgrader], completionHandler: { _ in }))
                    try sync.addHandler(PlainHTTPResponder(), name: PlainHTTPResponder.name)
                    } catch {
                        plane.log.warning("control connection from \(plane.monitoring.privacy.logged(channel.remoteAddress?.ipAddress ?? "?", .address)) refused: \(error)")
                        throw error
                    }
                }
            }
            .withBoundSocket(listeningSocket)
    }
}

enum ControlServerError: Error, CustomStringConvertible {
    case noCertificate

    var description: String { "no active certificate: connection refused" }
}

/// Answers HTTP requests that are not a WebSocket upgrade to `/v1/session`: 404 elsewhere,
/// 426 on the session path without the upgrade, then closes.
final class PlainHTTPResponder: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    static let name = "conclave-http-responder"

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let head) = unwrapInboundIn(data) else { return }
        let (status, text): (HTTPResponseStatus, String) =
            head.uri == ControlServer.path
            ? (.upgradeRequired, "this endpoint speaks WebSocket only (docs/control-protocol.md)\n")
            : (.notFound, "not found: the control server serves \(ControlServer.path) only\n")
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
        headers.add(name: "Content-Length", value: "\(text.utf8.count)")
        headers.add(name: "Connection", value: "close")
        if status == .upgradeRequired { headers.add(name: "Upgrade", value: "websocket") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }
}
