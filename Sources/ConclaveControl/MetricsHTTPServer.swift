import NIOCore
import NIOHTTP1
import NIOPosix

/// The optional plain-HTTP `/metrics` listener for a local Prometheus scraper
/// (`monitoring.metricsListen`; the supervisor binds the socket). Read-only: `GET /metrics`
/// and nothing else, one response per connection. Runs on the control plane's event loop.
public enum MetricsHTTPServer {
    public static let path = "/metrics"

    public static func start(listeningSocket: Int32, plane: ControlPlane) -> EventLoopFuture<Channel> {
        let bound = NIOLoopBound(plane, eventLoop: plane.eventLoop)
        return ServerBootstrap(group: plane.eventLoop)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.configureHTTPServerPipeline(withErrorHandling: true)
                    try sync.addHandler(MetricsResponder(plane: bound.value))
                }
            }
            .withBoundSocket(listeningSocket)
    }
}

final class MetricsResponder: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let plane: ControlPlane

    init(plane: ControlPlane) { self.plane = plane }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let head) = unwrapInboundIn(data) else { return }
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        let (status, type, text): (HTTPResponseStatus, String, String) =
            switch (head.method, path) {
            case (.GET, MetricsHTTPServer.path): (.ok, PrometheusText.contentType, plane.metricsExposition())
            case (_, MetricsHTTPServer.path): (.methodNotAllowed, "text/plain; charset=utf-8", "only GET\n")
            default: (.notFound, "text/plain; charset=utf-8", "only \(MetricsHTTPServer.path) is served here\n")
            }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: type)
        headers.add(name: "Content-Length", value: "\(text.utf8.count)")
        headers.add(name: "Connection", value: "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }
}
