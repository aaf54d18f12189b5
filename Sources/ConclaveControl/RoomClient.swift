import ConclaveCrypto
import ConclaveRelay
import ConclaveWire
import FoundationEssentials
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

/// A room system's side of a meeting (`conclave room join`): the control session over
/// `wss://<server>/v1/session` — server certificate verified against the room's trust anchors
/// with a hostname check, never unverified — and, once joined, the media bridge between the
/// room's plain RTP on loopback and its protected leg on the relay.
public final class RoomClient: Sendable {
    public enum Credentials: Sendable {
        case guest(nickname: String)
        case user(email: String, password: String)
        case token(String)
    }

    public struct Options: Sendable {
        public var server: String
        public var port: Int
        public var meeting: String
        public var passcode: String?
        public var credentials: Credentials
        public var trustAnchors: [X509Certificate]
        public var rtpIn: PeerAddress
        public var rtpOut: PeerAddress
        public var preferTCP: Bool
        public var clientVersion: String
        /// How often a `quality` event is reported.
        public var qualityInterval: TimeAmount = .seconds(2)
        /// The room system's MAC address, reported in `join` (monitoring shows it as the privacy mode allows).
        public var mac: String?

        public init(
            server: String, port: Int, meeting: String, passcode: String?, credentials: Credentials, trustAnchors: [X509Certificate],
            rtpIn: PeerAddress, rtpOut: PeerAddress, preferTCP: Bool, clientVersion: String
        ) {
            self.server = server
            self.port = port
            self.meeting = meeting
            self.passcode = passcode
            self.credentials = credentials
            self.trustAnchors = trustAnchors
            self.rtpIn = rtpIn
            self.rtpOut = rtpOut
            self.preferTCP = preferTCP
            self.clientVersion = clientVersion
        }
    }

    /// What the room reports as it goes (`--json-events` prints each as one JSON line).
    public enum Event: Sendable {
        case connected(serverVersion: String, securityMode: String)
        case joined(ControlMessage.Joined)
        case participantJoined(ControlMessage.Participant)
        case participantLeft(leg: UInt32)
        case meetingEdited(ControlMessage.MeetingState)
        case quality(RoomMediaBridge.Quality)
        case refused(code: String, message: String)
        case ended(reason: String)
        case kicked(reason: String)
        case disconnected(String)
    }

    /// How the session ended, as the command's exit status.
    public enum Outcome: Sendable {
        case left, ended, refused, kicked, lost

        public var exitStatus: Int32 {
            switch self {
            case .left, .ended: 0
            case .refused: 2
            case .kicked: 3
            case .lost: 4
            }
        }
    }

    private let options: Options
    private let group: EventLoopGroup
    private let events: @Sendable (Event) -> Void

    public init(options: Options, group: EventLoopGroup, events: @escaping @Sendable (Event) -> Void) {
        self.options = options
        self.group = group
        self.events = events
    }

    /// Connects and runs the session; the future completes when it ends. `leave()` on the
    /// returned handle ends it from outside (a signal).
    public func run() -> EventLoopFuture<(RoomSession, EventLoopFuture<Outcome>)> {
        let options = options, events = events
        let context: TLSContext
        do { context = try TLSContext(configuration: .client(trustRoots: options.trustAnchors, applicationProtocols: ["http/1.1"])) } catch {
            return group.next().makeFailedFuture(error)
        }
        let loop = group.next()
        let outcome = loop.makePromise(of: Outcome.self)
        let sessionPromise = loop.makePromise(of: RoomSession.self)
        let slot = NIOLoopBoundBox.makeEmptyBox(valueType: RoomSession.self, eventLoop: loop)
        return ClientBootstrap(group: loop)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(TLSHandler(context: context, serverHostname: options.server))
                    let upgrader = NIOWebSocketClientUpgrader(maxFrameSize: ControlMessage.maximumSize) { channel, _ in
                        channel.pipeline.removeHandler(name: UpgradeRequester.name).flatMapThrowing {
                            let session = RoomSession(options: options, events: events)
                            slot.value = session
                            try channel.pipeline.syncOperations.addHandlers([
                                NIOWebSocketFrameAggregator(
                                    minNonFinalFragmentSize: 1, maxAccumulatedFrameCount: 64, maxAccumulatedFrameSize: ControlMessage.maximumSize),
                                session,
                            ])
                            sessionPromise.succeed(session)
                        }
                    }
                    try sync.addHTTPClientHandlers(withClientUpgrade: (upgraders: [upgrader], completionHandler: { _ in }))
                    try sync.addHandler(UpgradeRequester(host: options.server), name: UpgradeRequester.name)
                }
            }
            .connect(host: options.server, port: options.port)
            .flatMap { channel in
                channel.closeFuture.whenComplete { _ in
                    if let session = slot.value {
                        outcome.succeed(session.result)
                    } else {
                        sessionPromise.fail(RoomClientError.notUpgraded)
                        outcome.succeed(.lost)
                    }
                }
                return sessionPromise.futureResult.map { ($0, outcome.futureResult) }
            }
    }
}

public enum RoomClientError: Error, CustomStringConvertible {
    case notUpgraded

    public var description: String { "the server did not accept the WebSocket session (wrong port or not a Conclave control server)" }
}

/// Sends the upgrade request once the channel is up (the TLS handler holds it until the
/// handshake completes) and reports a refused upgrade.
private final class UpgradeRequester: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart
    static let name = "conclave-upgrade-requester"
    let host: String

    init(host: String) { self.host = host }

    func channelActive(context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: host)
        headers.add(name: "Content-Length", value: "0")
        context.write(wrapOutboundOut(.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: ControlServer.path, headers: headers))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Only reached when the server answered without upgrading.
        if case .end = unwrapInboundIn(data) { context.close(promise: nil) }
    }
}

/// The joined session: events in, heartbeats and `leave` out; owns the media bridge.
public final class RoomSession: ChannelInboundHandler, @unchecked Sendable {
    public typealias InboundIn = WebSocketFrame
    public typealias OutboundOut = WebSocketFrame

    private let options: RoomClient.Options
    private let events: @Sendable (RoomClient.Event) -> Void
    private var context: ChannelHandlerContext?
    private var bridge: RoomMediaBridge?
    private var timers: [RepeatedTask] = []
    private var heartbeat: UInt32 = 0
    fileprivate var result = RoomClient.Outcome.lost

    init(options: RoomClient.Options, events: @escaping @Sendable (RoomClient.Event) -> Void) {
        self.options = options
        self.events = events
    }

    /// Leaves the meeting and closes the session (from any thread).
    public func leave() {
        guard let loop = context?.eventLoop else { return }
        let confined = LoopConfined(self)
        loop.execute {
            let session = confined.value
            session.result = .left
            session.send(.leave)
            session.context?.close(promise: nil)
        }
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let transports = options.preferTCP ? ["tcp", "udp"] : ["udp", "tcp"]
        send(.hello(.init(clientName: "conclave-room", clientVersion: options.clientVersion, os: Self.operatingSystem, transports: transports)))
    }

    public func channelInactive(context: ChannelHandlerContext) {
        for timer in timers { timer.cancel() }
        bridge?.stop()
        bridge = nil
        if result == .lost { events(.disconnected("the control connection closed")) }
        context.fireChannelInactive()
    }

    public func errorCaught(context: ChannelHandlerContext, error: Error) {
        events(.disconnected("\(error)"))
        context.close(promise: nil)
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text:
            var data = frame.unmaskedData
            guard let message = try? ControlMessage(decoding: data.readBytes(length: data.readableBytes) ?? []) else {
                events(.disconnected("the server sent a frame that is not a control message"))
                return context.close(promise: nil)
            }
            handle(message, context: context)
        case .connectionClose:
            context.close(promise: nil)
        case .ping:
            var payload = frame.unmaskedData
            let pong = WebSocketFrame(fin: true, opcode: .pong, maskKey: .random(), data: payload.readSlice(length: payload.readableBytes) ?? ByteBuffer())
            context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
        default:
            break
        }
    }

    private func handle(_ message: ControlMessage, context: ChannelHandlerContext) {
        switch message {
        case .welcome(let welcome):
            events(.connected(serverVersion: welcome.serverVersion, securityMode: welcome.securityMode))
            let interval = TimeAmount.seconds(Int64(max(1, welcome.heartbeatSeconds)))
            let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
            timers.append(context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
                let session = bound.value
                session.heartbeat &+= 1
                session.send(.heartbeat(sequence: session.heartbeat))
            })
            var join = ControlMessage.Join(meeting: options.meeting, passcode: options.passcode)
            join.mac = options.mac
            switch options.credentials {
            case .guest(let nickname): join.nickname = nickname
            case .user(let email, let password): (join.email, join.password) = (email, password)
            case .token(let token): join.token = token
            }
            send(.join(join))
        case .joined(let joined):
            do {
                try startMedia(joined, context: context)
                events(.joined(joined))
            } catch {
                events(.disconnected("media not started: \(error)"))
                result = .lost
                context.close(promise: nil)
            }
        case .participantJoined(let participant): events(.participantJoined(participant))
        case .participantLeft(let leg): events(.participantLeft(leg: leg))
        case .meetingEdited(let state): events(.meetingEdited(state))
        case .meetingEnded(let reason):
            result = .ended
            events(.ended(reason: reason))
            context.close(promise: nil)
        case .kicked(let reason):
            result = .kicked
            events(.kicked(reason: reason))
            context.close(promise: nil)
        case .error(let error):
            events(.refused(code: error.code, message: error.message))
            if bridge == nil {
                result = .refused
                context.close(promise: nil)
            }
        case .heartbeatAck:
            break
        default:
            events(.disconnected("the server sent \(message), which a client does not take"))
            context.close(promise: nil)
        }
    }

    /// Derives the leg's keys from this connection's exporter and starts the bridge.
    private func startMedia(_ joined: ControlMessage.Joined, context: ChannelHandlerContext) throws {
        let profile: MediaKeyDerivation.Profile = switch joined.profile {
        case "AEAD_AES_128_GCM": .srtp(.aeadAES128GCM)
        case "AES_CM_128_HMAC_SHA1_80": .srtp(.aesCM128HMACSHA1_80)
        case "encapsulated": .encapsulated
        default: throw RoomClientError.notUpgraded
        }
        guard let token = UInt64(joined.legToken, radix: 16) else { throw RoomClientError.notUpgraded }
        let tls = try context.pipeline.syncOperations.handler(type: TLSHandler.self)
        let exported = try tls.exportKeyingMaterial(
            label: MediaKeyDerivation.label, context: MediaKeyDerivation.context(leg: joined.leg), length: MediaKeyDerivation.length(for: profile))
        let leg = LegDescription(
            leg: joined.leg, token: token, meeting: 0, protection: try MediaKeyDerivation.protection(exporterOutput: exported, profile: profile),
            audioPayloadTypes: ControlSession.defaultAudioPayloadTypes, videoPayloadTypes: ControlSession.defaultVideoPayloadTypes)
        let host = joined.relayHost.contains(":") ? "[\(joined.relayHost)]" : joined.relayHost
        let bridge = RoomMediaBridge(.init(
            leg: leg, relayUDP: try PeerAddress(parsing: "\(host):\(joined.udpPort)"),
            relayTCP: joined.tcpPort == 0 ? nil : try PeerAddress(parsing: "\(host):\(joined.tcpPort)"), rtpIn: options.rtpIn,
            rtpOut: options.rtpOut, preferTCP: options.preferTCP))
        try bridge.start()
        self.bridge = bridge
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        timers.append(context.eventLoop.scheduleRepeatedTask(initialDelay: options.qualityInterval, delay: options.qualityInterval) { _ in
            if let quality = bound.value.bridge?.quality { bound.value.events(.quality(quality)) }
        })
    }

    private func send(_ message: ControlMessage) {
        guard let context, context.channel.isActive else { return }
        // Client frames are masked (RFC 6455 §5.3).
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .text, maskKey: .random(), data: ByteBuffer(bytes: message.encoded()))), promise: nil)
    }

    private static var operatingSystem: String {
        var name = utsname()
        uname(&name)
        let release = withUnsafeBytes(of: &name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return "Linux \(release)".prefix(64).description
    }
}
