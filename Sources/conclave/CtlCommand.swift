import ArgumentParser
import ConclaveCrypto
import ConclavePKI
import ConclaveSystem
import FoundationEssentials
import Glibc
import NIOCore
import NIOPosix
import SystemPackage

/// `conclave ctl`: the management side of the command API (docs/api.md), over mutual TLS.
struct CtlCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ctl",
        abstract: "Drive an appliance's command API (mutual TLS): meetings, status, security mode, users.",
        discussion: """
            The API address, client certificate, key and CA come from the flags, else from the
            environment (CONCLAVE_API, CONCLAVE_API_CERT, CONCLAVE_API_KEY, CONCLAVE_API_CA), else
            from the file CONCLAVE_CTL_CONFIG (default ~/.config/conclave/ctl.conf) with lines
            `api = HOST:PORT`, `cert = FILE`, `key = FILE`, `ca = FILE`. A refused request exits 2
            with the API's problem; a connection failure exits 1.
            """,
        subcommands: [CtlMeetingCommand.self, CtlStatusCommand.self, CtlSecurityCommand.self, CtlUsersCommand.self, CtlMetricsCommand.self, CtlRequestCommand.self])
}

struct CtlOptions: ParsableArguments {
    @Option(help: "Command API address, HOST:PORT (default port 8443).") var api: String?
    @Option(help: "Client certificate (PEM).") var cert: String?
    @Option(help: "Client private key (PEM).") var key: String?
    @Option(help: "CA that issued the appliance's certificate (PEM); default: the system's CA paths.") var ca: String?
    @Option(help: "Name checked against the appliance's certificate (default: HOST).") var servername: String?
    @Flag(help: "Print the API's JSON answer.") var json = false

    struct Settings {
        var host: String
        var port: Int
        var cert: String
        var key: String
        var ca: String?
    }

    /// Flags, then environment, then the config file.
    func settings() throws -> Settings {
        let environment = ProcessInfoLite.environment
        let file = try Self.configFile(environment)
        func pick(_ flag: String?, _ variable: String, _ key: String) -> String? { flag ?? environment[variable] ?? file[key] }
        guard let address = pick(api, "CONCLAVE_API", "api") else { throw ValidationError("no API address: --api, CONCLAVE_API or `api =` in the config file") }
        guard let cert = pick(cert, "CONCLAVE_API_CERT", "cert"), let key = pick(key, "CONCLAVE_API_KEY", "key") else {
            throw ValidationError("the command API takes mutual TLS only: give --cert and --key (or CONCLAVE_API_CERT/KEY, or the config file)")
        }
        let (host, port): (String, Int)
        if let parsed = HostAndPort(argument: address) { (host, port) = (parsed.host, parsed.port) } else if !address.contains(":") {
            (host, port) = (address, 8443)
        } else {
            throw ValidationError("--api: expected HOST:PORT, got \"\(address)\"")
        }
        return Settings(host: host, port: port, cert: cert, key: key, ca: pick(ca, "CONCLAVE_API_CA", "ca"))
    }

    static func configFile(_ environment: [String: String]) throws -> [String: String] {
        let path = environment["CONCLAVE_CTL_CONFIG"] ?? environment["HOME"].map { $0 + "/.config/conclave/ctl.conf" }
        guard let path, FilePath(path).exists else {
            if let explicit = environment["CONCLAVE_CTL_CONFIG"] { throw ValidationError("CONCLAVE_CTL_CONFIG: \(explicit) does not exist") }
            return [:]
        }
        var values: [String: String] = [:]
        for (number, line) in String(decoding: try Files.read(FilePath(path)), as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let text = line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            guard !text.allSatisfy({ $0.isWhitespace }) else { continue }
            let parts = text.split(separator: "=", maxSplits: 1).map { String($0.filter { !$0.isWhitespace }) }
            guard parts.count == 2, ["api", "cert", "key", "ca"].contains(parts[0]), !parts[1].isEmpty else {
                throw ValidationError("\(path):\(number + 1): expected `api|cert|key|ca = VALUE`")
            }
            values[parts[0]] = parts[1]
        }
        return values
    }

    /// Sends one request and returns the answer; a problem answer exits 2 with its detail.
    func call(_ method: String, _ path: String, body: JSONValue? = nil) throws -> CtlResponse {
        let settings = try settings()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let bodyBytes = try body.map { Array(try encoder.encode($0)) } ?? []
        let response = try CtlClient.send(
            method: method, path: path, body: bodyBytes, settings: settings, serverName: servername ?? settings.host)
        guard (200..<300).contains(response.status) else {
            let problem = try? JSONDecoder().decode([String: JSONValue].self, from: Data(response.body))
            if json { CommandOutput.line(String(decoding: response.body, as: UTF8.self)) }
            if case .string(let code)? = problem?["code"], case .string(let detail)? = problem?["detail"] {
                CommandOutput.error("conclave ctl: \(response.status) \(code): \(detail)")
            } else {
                CommandOutput.error("conclave ctl: HTTP \(response.status): \(String(decoding: response.body.prefix(500), as: UTF8.self))")
            }
            throw ExitCode(2)
        }
        return response
    }

    /// Prints the JSON answer (--json) or `human(object)`.
    func show(_ response: CtlResponse, human: ([String: JSONValue]) -> [String]) {
        if json || response.body.isEmpty {
            if !response.body.isEmpty { CommandOutput.line(String(decoding: response.body, as: UTF8.self)) }
            return
        }
        let object = (try? JSONDecoder().decode([String: JSONValue].self, from: Data(response.body))) ?? [:]
        for line in human(object) { CommandOutput.line(line) }
    }
}

/// The environment without the full Foundation.
enum ProcessInfoLite {
    static var environment: [String: String] {
        var values: [String: String] = [:]
        var cursor = environ
        while let entry = cursor.pointee {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") { values[String(text[..<equals])] = String(text[text.index(after: equals)...]) }
            cursor += 1
        }
        return values
    }
}

struct CtlResponse {
    var status: Int
    var headers: [String: String]
    var body: [UInt8]
}

/// One HTTP/1.1 request over our TLS (mutual), `Connection: close`, answer read to the end.
enum CtlClient {
    static let maximumResponse = 16 << 20

    static func send(method: String, path: String, body: [UInt8], settings: CtlOptions.Settings, serverName: String) throws -> CtlResponse {
        let roots = try settings.ca.map { try CertificateFile.certificates(from: CommandLineFiles.read($0)) }
        let chain = try CertificateFile.certificates(from: CommandLineFiles.read(settings.cert))
        let key = try PrivateKey(encoded: CommandLineFiles.read(settings.key))
        let context = try TLSContext(configuration: .client(trustRoots: roots, certificateChain: chain, privateKey: key, applicationProtocols: ["http/1.1"]))
        var request = "\(method) \(path) HTTP/1.1\r\nHost: \(serverName)\r\nConnection: close\r\nAccept: application/json\r\n"
        if !body.isEmpty || ["POST", "PUT", "PATCH"].contains(method) {
            request += "Content-Type: application/json\r\nContent-Length: \(body.count)\r\n"
        }
        let bytes = Array((request + "\r\n").utf8) + body

        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let done = group.next().makePromise(of: [UInt8].self)
        let channel: Channel
        do {
            channel = try ClientBootstrap(group: group)
                .connectTimeout(.seconds(10))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandlers([
                            TLSHandler(context: context, serverHostname: serverName), ResponseCollector(request: bytes, done: done),
                        ])
                    }
                }
                .connect(host: settings.host, port: settings.port).wait()
        } catch {
            throw ValidationErrorLike(message: "conclave ctl: cannot connect to \(settings.host):\(settings.port): \(error)")
        }
        channel.eventLoop.scheduleTask(in: .seconds(30)) { channel.close(promise: nil) }
        let raw: [UInt8]
        do { raw = try done.futureResult.wait() } catch {
            throw ValidationErrorLike(message: "conclave ctl: \(settings.host):\(settings.port): \(error)")
        }
        return try parse(raw)
    }

    static func parse(_ raw: [UInt8]) throws -> CtlResponse {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let end = (0..<max(0, raw.count - 3)).first(where: { raw[$0..<($0 + 4)].elementsEqual(separator) }) else {
            throw ValidationErrorLike(message: "conclave ctl: the API closed the connection without a whole answer (refused client certificate?)")
        }
        let lines = String(decoding: raw[..<end], as: UTF8.self).split(separator: "\r\n", omittingEmptySubsequences: false).map(String.init)
        let statusParts = lines[0].split(separator: " ")
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else { throw ValidationErrorLike(message: "conclave ctl: not an HTTP answer") }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = String(line[line.index(after: colon)...].drop(while: { $0 == " " }))
        }
        var body = Array(raw[(end + 4)...])
        if let length = headers["content-length"].flatMap(Int.init), length <= body.count { body = Array(body[..<length]) }
        return CtlResponse(status: status, headers: headers, body: body)
    }
}

/// Sends the request once TLS is up; gathers every byte until the server closes.
private final class ResponseCollector: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let request: [UInt8]
    private let done: EventLoopPromise<[UInt8]>
    private var received: [UInt8] = []

    init(request: [UInt8], done: EventLoopPromise<[UInt8]>) {
        self.request = request
        self.done = done
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: request)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        received += buffer.readBytes(length: buffer.readableBytes) ?? []
        if received.count > CtlClient.maximumResponse {
            done.fail(ValidationErrorLike(message: "answer larger than \(CtlClient.maximumResponse) bytes"))
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        done.succeed(received)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // The server's close_notify-less close after a complete answer is not a failure.
        if case TLSError.uncleanShutdown? = error as? TLSError, !received.isEmpty { return }
        done.fail(error)
        context.close(promise: nil)
    }
}
