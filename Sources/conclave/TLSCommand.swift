import ArgumentParser
import ConclaveCrypto
import NIOCore

/// `conclave tls …`: field diagnostics, like `openssl s_server` / `s_client`.
struct TLSCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tls", abstract: "TLS diagnostics: serve with the active certificate, or connect and verify a server.",
        subcommands: [TLSServeCommand.self, TLSConnectCommand.self])
}

/// `--export LABEL:LEN`.
struct ExporterRequest: ExpressibleByArgument, Sendable {
    let label: String
    let length: Int

    init?(argument: String) {
        guard let colon = argument.lastIndex(of: ":"), let length = Int(argument[argument.index(after: colon)...]),
            (1...1024).contains(length), colon != argument.startIndex
        else { return nil }
        label = String(argument[..<colon])
        self.length = length
    }
}

/// HOST:PORT or [IPv6]:PORT.
struct HostAndPort: ExpressibleByArgument, Sendable {
    let host: String
    let port: Int

    init?(argument: String) {
        guard let colon = argument.lastIndex(of: ":"), let port = Int(argument[argument.index(after: colon)...]),
            (0...65_535).contains(port)
        else { return nil }
        var host = String(argument[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { return nil }
        self.host = host
        self.port = port
    }
}

/// Prints what the handshake negotiated and, optionally, echoes or prints the data.
final class TLSDiagnosticHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Mode { case echo, print }

    private let mode: Mode
    private let exporter: ExporterRequest?
    private let handshake: EventLoopPromise<Void>?
    private let closed: EventLoopPromise<Void>?
    private(set) var failed = false

    init(mode: Mode, exporter: ExporterRequest?, handshake: EventLoopPromise<Void>? = nil, closed: EventLoopPromise<Void>? = nil) {
        self.mode = mode
        self.exporter = exporter
        self.handshake = handshake
        self.closed = closed
    }

    func channelActive(context: ChannelHandlerContext) {
        if mode == .echo { CommandOutput.line("tls: connection from \(context.remoteAddress.map { "\($0)" } ?? "?")") }
        context.fireChannelActive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case .handshakeCompleted(let info)? = event as? TLSEvent else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        var lines = [
            "version: \(info.version)",
            "cipher: \(info.cipher)",
            "alpn: \(info.applicationProtocol ?? "none")",
            "peer: \(info.peerCertificate?.subject ?? "none")",
        ]
        if mode == .echo { lines.append("sni: \(info.serverName ?? "none")") }
        if let exporter {
            do {
                let handler = try context.pipeline.syncOperations.handler(type: TLSHandler.self)
                let value = try handler.exportKeyingMaterial(label: exporter.label, length: exporter.length)
                lines.append("export \(exporter.label): " + value.map { ($0 < 16 ? "0" : "") + String($0, radix: 16, uppercase: true) }.joined())
            } catch {
                lines.append("export failed: \(error)")
            }
        }
        CommandOutput.line(lines.joined(separator: "\n"))
        handshake?.succeed(())
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch mode {
        case .echo:
            context.writeAndFlush(data, promise: nil)
        case .print:
            let buffer = unwrapInboundIn(data)
            CommandOutput.line(String(decoding: buffer.readableBytesView, as: UTF8.self), terminator: "")
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        failed = true
        if mode == .echo { CommandOutput.error("tls: \(context.remoteAddress.map { "\($0)" } ?? "?"): \(error)") }
        handshake?.fail(error)
        closed?.fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if mode == .echo { CommandOutput.line("tls: connection closed") }
        handshake?.fail(TLSError.closedDuringHandshake)
        closed?.succeed(())
        context.fireChannelInactive()
    }
}
