import ArgumentParser
import ConclaveCrypto
import ConclavePKI
import NIOCore
import NIOPosix

struct TLSServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Accept TLS with the active certificate, print what each handshake negotiated, echo data.")

    @OptionGroup var options: PKIStateOptions
    @Option(help: "Address to listen on, HOST:PORT.") var listen: HostAndPort
    @Flag(help: "Require a client certificate that chains to pki/api-ca.pem (mutual TLS).") var requireClientCert = false
    @Option(help: "Print the TLS exporter value for LABEL:LEN (no context) after each handshake.") var export: ExporterRequest?
    @Option(help: "ALPN protocol to accept (repeatable, most preferred first).") var alpn: [String] = []
    @Flag(help: "Exit after the first connection closes.") var once = false

    func run() throws {
        let store = options.store
        guard let active = try store.active() else { throw CertificateStoreError.noActiveCertificate }
        var clientRoots: [X509Certificate]? = nil
        if requireClientCert {
            let roots = try store.apiCA()
            guard !roots.isEmpty else { throw CertificateStoreError.noAPICA }
            clientRoots = roots
        }
        let context = try TLSContext(configuration: .server(
            certificateChain: [active.certificate] + active.intermediates, privateKey: active.key,
            clientCertificateRoots: clientRoots, applicationProtocols: alpn))

        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let firstClosed = group.next().makePromise(of: Void.self)
        let exporter = export
        let server = try ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let closed = channel.eventLoop.makePromise(of: Void.self)
                    closed.futureResult.whenComplete { _ in firstClosed.succeed(()) }
                    try channel.pipeline.syncOperations.addHandlers([
                        TLSHandler(context: context), TLSDiagnosticHandler(mode: .echo, exporter: exporter, closed: closed),
                    ])
                }
            }
            .bind(host: listen.host, port: listen.port).wait()
        CommandOutput.line("tls: listening on \(server.localAddress.map { "\($0)" } ?? "?") with \(active.certificate.subject)")
        if once {
            try? firstClosed.futureResult.wait()
            try server.close().wait()
        } else {
            try server.closeFuture.wait()
        }
    }
}
