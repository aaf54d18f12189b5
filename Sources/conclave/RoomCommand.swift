import ArgumentParser
import ConclaveControl
import ConclaveCrypto
import ConclavePKI
import ConclaveRelay
import ConclaveSystem
import ConclaveWire
import FoundationEssentials
import Glibc
import NIOCore
import NIOPosix
import SystemPackage

struct RoomCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "room", abstract: "The room system: join a meeting on a server appliance.", subcommands: [RoomJoinCommand.self])
}

struct RoomJoinCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "join",
        abstract: "Join a meeting and bridge the room's plain RTP on loopback to the encrypted relay.",
        discussion: """
            The server's certificate is verified against --trust (a PEM file or a directory of them;
            default: the room's trust store, STATE/pki/trust) with a hostname check. The room's
            pipeline sends RTP to --rtp-in and receives the meeting's media on --rtp-out. Exit
            status: 0 left or meeting ended, 2 refused, 3 kicked, 4 connection lost.
            """)

    @Option(help: "The server appliance, FQDN[:PORT] (port 443 by default).") var server: String
    @Option(help: "Meeting id.") var meeting: String
    @Option(help: "Join as a guest with this nickname.") var nickname: String?
    @Option(help: "Join as this registered user (with --password-file).") var email: String?
    @Option(help: "File holding the user's password.") var passwordFile: String?
    @Option(help: "File holding a join token from the management server.") var tokenFile: String?
    @Option(help: "File holding the meeting's passcode.") var passcodeFile: String?
    @Option(help: "Trust anchors: a PEM file or a directory of PEM files.") var trust: String?
    @Option(help: "State directory (the room's trust store).") var state = "/data/conclave"
    @Option(help: "Where the room's pipeline sends RTP, HOST:PORT.") var rtpIn = "127.0.0.1:5004"
    @Option(help: "Where the meeting's media is delivered, HOST:PORT.") var rtpOut = "127.0.0.1:5006"
    @Flag(help: "Use the TCP fallback from the start.") var tcp = false
    @Option(help: "MAC address to report in the join (aa:bb:cc:dd:ee:ff).") var mac: String?
    @Flag(help: "Print events as JSON lines.") var jsonEvents = false

    func validate() throws {
        let ways = [nickname != nil, email != nil, tokenFile != nil].filter { $0 }.count
        guard ways == 1 else { throw ValidationError("give exactly one of --nickname, --email (with --password-file) or --token-file") }
        guard (email == nil) == (passwordFile == nil) else { throw ValidationError("--email and --password-file go together") }
        if let mac, !ParticipantInfo.isMACAddress(mac) { throw ValidationError("--mac: expected six hex pairs separated by ':', got \(mac)") }
    }

    func run() throws {
        let (host, port) = try Self.split(server)
        let credentials: RoomClient.Credentials
        if let nickname {
            credentials = .guest(nickname: nickname)
        } else if let email, let passwordFile {
            credentials = .user(email: email, password: try Self.secret(passwordFile))
        } else {
            credentials = .token(try Self.secret(tokenFile!))
        }
        let anchors = try trustAnchors()
        guard !anchors.isEmpty else { throw ValidationError("no trust anchors: import the server's bundle (conclave cert trust) or pass --trust") }
        var options = RoomClient.Options(
            server: host, port: port, meeting: meeting, passcode: try passcodeFile.map(Self.secret), credentials: credentials,
            trustAnchors: anchors, rtpIn: try PeerAddress(parsing: rtpIn), rtpOut: try PeerAddress(parsing: rtpOut), preferTCP: tcp,
            clientVersion: VersionReport.conclaveVersion)
        options.mac = mac

        // SIGINT/SIGTERM leave the meeting cleanly: blocked here (every thread inherits the
        // mask) and taken by one thread that asks the session to leave.
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGINT)
        sigaddset(&signals, SIGTERM)
        pthread_sigmask(SIG_BLOCK, &signals, nil)

        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let json = jsonEvents
        let client = RoomClient(options: options, group: group) { event in CommandOutput.line(RoomEventText.render(event, json: json)) }
        let (session, outcome): (RoomSession, EventLoopFuture<RoomClient.Outcome>)
        do { (session, outcome) = try client.run().wait() } catch {
            CommandOutput.line(RoomEventText.render(.disconnected("\(error)"), json: json))
            throw ExitCode(RoomClient.Outcome.lost.exitStatus)
        }
        let blocked = signals
        try startDetachedThread {
            var set = blocked
            var received: Int32 = 0
            sigwait(&set, &received)
            session.leave()
        }
        throw ExitCode(try outcome.wait().exitStatus)
    }

    private func trustAnchors() throws -> [X509Certificate] {
        guard let trust else { return try CertificateStore(stateDirectory: state).trustAnchors() }
        let path = FilePath(trust)
        if let entries = try? path.directoryEntries() {
            return try entries.filter { $0.hasSuffix(".pem") }.sorted().flatMap { try X509Certificate.certificates(pemEncoded: Files.read(path.appending($0))) }
        }
        return try X509Certificate.certificates(pemEncoded: Files.read(path))
    }

    static func secret(_ path: String) throws -> String {
        let bytes = try Files.read(FilePath(path))
        guard bytes.count <= 8192 else { throw ValidationError("\(path): larger than 8 KiB") }
        var text = String(decoding: bytes, as: UTF8.self)
        while text.hasSuffix("\n") || text.hasSuffix("\r") { text.removeLast() }
        guard !text.isEmpty else { throw ValidationError("\(path) is empty") }
        return text
    }

    static func split(_ server: String) throws -> (String, Int) {
        if let colon = server.lastIndex(of: ":"), !server.hasSuffix("]") {
            guard let port = Int(server[server.index(after: colon)...]), (1...65535).contains(port) else {
                throw ValidationError("--server \(server): the port must be 1–65535")
            }
            var host = String(server[..<colon])
            if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            return (host, port)
        }
        return (server, 443)
    }
}

/// One line per room event: JSON for scripts, text for people.
enum RoomEventText {
    struct Line: Encodable {
        var event: String
        var serverVersion: String?
        var securityMode: String?
        var leg: UInt32?
        var name: String?
        var profile: String?
        var relay: String?
        var participants: [ControlMessage.Participant]?
        var locked: Bool?
        var limit: Int?
        var transport: String?
        var packetsSent: UInt64?
        var packetsReceived: UInt64?
        var lost: Int64?
        var lossPercent: Double?
        var jitterMs: Double?
        var rttMs: Double?
        var authFailures: UInt64?
        var code: String?
        var reason: String?
    }

    static func render(_ event: RoomClient.Event, json: Bool) -> String {
        var line = Line(event: "")
        let text: String
        switch event {
        case .connected(let version, let mode):
            (line.event, line.serverVersion, line.securityMode) = ("connected", version, mode)
            text = "connected: server \(version), security mode \(mode)"
        case .joined(let joined):
            (line.event, line.leg, line.profile, line.relay, line.participants) =
                ("joined", joined.leg, joined.profile, "\(joined.relayHost):\(joined.udpPort)", joined.participants)
            text = "joined as leg \(joined.leg) (\(joined.profile)), relay \(joined.relayHost):\(joined.udpPort); others: "
                + (joined.participants.isEmpty ? "none" : joined.participants.map { "\($0.name) (\($0.leg))" }.joined(separator: ", "))
        case .participantJoined(let participant):
            (line.event, line.leg, line.name) = ("participant-joined", participant.leg, participant.name)
            text = "\(participant.name) joined (leg \(participant.leg))"
        case .participantLeft(let leg):
            (line.event, line.leg) = ("participant-left", leg)
            text = "leg \(leg) left"
        case .meetingEdited(let state):
            (line.event, line.name, line.locked, line.limit) = ("meeting-edited", state.name, state.locked, state.limit)
            text = "meeting edited: \(state.name), \(state.locked ? "locked" : "open"), limit \(state.limit)"
        case .quality(let quality):
            line.event = "quality"
            line.transport = quality.transport
            line.packetsSent = quality.packetsSent
            line.packetsReceived = quality.packetsReceived
            line.lost = quality.lost
            line.lossPercent = quality.lossPercent
            line.jitterMs = quality.jitterMilliseconds
            line.rttMs = quality.rttMilliseconds
            line.authFailures = quality.authenticationFailures
            text = "quality: \(quality.transport), sent \(quality.packetsSent), received \(quality.packetsReceived), lost \(quality.lost), "
                + "jitter \(Int(quality.jitterMilliseconds)) ms" + (quality.rttMilliseconds.map { ", rtt \(Int($0)) ms" } ?? "")
        case .refused(let code, let message):
            (line.event, line.code, line.reason) = ("refused", code, message)
            text = "refused (\(code)): \(message)"
        case .ended(let reason):
            (line.event, line.reason) = ("meeting-ended", reason)
            text = "meeting ended: \(reason)"
        case .kicked(let reason):
            (line.event, line.reason) = ("kicked", reason)
            text = "removed from the meeting: \(reason)"
        case .disconnected(let reason):
            (line.event, line.reason) = ("disconnected", reason)
            text = "disconnected: \(reason)"
        }
        guard json else { return text }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? String(decoding: encoder.encode(line), as: UTF8.self)) ?? "{}"
    }
}
