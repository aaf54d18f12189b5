import ArgumentParser
import ConclaveCrypto
import ConclavePKI
import NIOCore
import NIOPosix

struct TLSConnectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "connect",
        abstract: "Connect, verify the server (chain and name), print what was negotiated, send standard input, print replies.")

    @OptionGroup var options: PKIStateOptions
    @Argument(help: "Server address, HOST:PORT.") var address: HostAndPort
    @Option(help: "Name sent as SNI and checked against the certificate (default: HOST).") var servername: String?
    @Option(help: "Trust anchors (PEM, DER, P7B). Default: pki/trust/, else the system's CA paths.") var ca: String?
    @Option(help: "Client certificate (mutual TLS).") var cert: String?
    @Option(help: "Client private key (mutual TLS).") var key: String?
    @Option(help: "Print the TLS exporter value for LABEL:LEN (no context) after the handshake.") var export: ExporterRequest?
    @Option(help: "ALPN protocol to offer (repeatable).") var alpn: [String] = []
    @Option(help: "Seconds to wait for replies after standard input ends.") var linger = 1

    func validate() throws {
        guard (cert == nil) == (key == nil) else { throw ValidationError("--cert and --key go together") }
    }

    func run() throws {
        var roots: [X509Certificate]? = nil
        if let ca {
            roots = try CertificateFile.certificates(from: CommandLineFiles.read(ca))
        } else {
            let stored = try options.store.trustAnchors()
            if !stored.isEmpty { roots = stored }
        }
        var chain: [X509Certificate] = []
        var privateKey: PrivateKey? = nil
        if let cert, let key {
            chain = try CertificateFile.certificates(from: CommandLineFiles.read(cert))
            privateKey = try PrivateKey(encoded: CommandLineFiles.read(key))
        }
        let context = try TLSContext(configuration: .client(
            trustRoots: roots, certificateChain: chain, privateKey: privateKey, applicationProtocols: alpn))
        let serverName = servername ?? address.host

        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let handshake = group.next().makePromise(of: Void.self)
        let closed = group.next().makePromise(of: Void.self)
        let exporter = export
        let channel = try ClientBootstrap(group: group)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([
                        TLSHandler(context: context, serverHostname: serverName),
                        TLSDiagnosticHandler(mode: .print, exporter: exporter, handshake: handshake, closed: closed),
                    ])
                }
            }
            .connect(host: address.host, port: address.port).wait()
        try handshake.futureResult.wait()

        while let line = readLine(strippingNewline: false), channel.isActive {
            try? channel.writeAndFlush(ByteBuffer(string: line)).wait()
        }
        // Replies and a late alert (TLS 1.3 reports a refused client certificate after the
        // client's handshake has finished) arrive within the linger time.
        channel.eventLoop.scheduleTask(in: .seconds(Int64(linger))) { channel.close(promise: nil) }
        do {
            try closed.futureResult.wait()
        } catch {
            throw ValidationErrorLike(message: "tls: \(error)")
        }
    }
}

/// An error whose text ArgumentParser prints as is, with exit status 1.
struct ValidationErrorLike: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
