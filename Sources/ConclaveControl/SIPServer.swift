import ConclaveCrypto
import ConclaveSIP
import NIOCore

/// What the SIP server asks of the control plane, on the server's event loop: admit a call (its
/// leg built on the relay) or refuse it, follow a re-INVITE, drop a call's leg.
public protocol SIPCallAdmission: AnyObject {
    func admit(_ call: CallRequest) -> SIPAdmissionOutcome
    func updateMedia(_ call: CallKey, _ decisions: [StreamDecision])
    func release(_ call: CallKey, reason: String)
}

public enum SIPAdmissionOutcome: Sendable, Hashable {
    /// Our side of each accepted stream (relay port, our SDES key).
    case admitted([Int: LocalStream])
    case refused(status: Int, reason: String, warning: String?, headers: [SIPHeaderField])
}

/// One `SIPServerEngine` for every SIP transport (UDP datagrams, TCP and TLS streams), confined
/// to one event loop: the handlers below feed it and it answers through the route each peer came
/// in on. Its transaction timers are one scheduled task at the engine's earliest deadline.
/// Not wired into the control worker yet (docs/sip.md): nothing binds 5060/5061 or implements
/// `SIPCallAdmission` against the meetings.
public final class SIPServer {
    public let eventLoop: EventLoop
    private var engine: SIPServerEngine
    private let admission: SIPCallAdmission
    private let clock: () -> ContinuousClock.Instant
    private var timer: Scheduled<Void>?
    private var timerDeadline: ContinuousClock.Instant?
    /// How to reach each peer: the UDP socket and address, or the stream connection.
    private var routes: [SIPPeer: Route] = [:]
    private var nextConnection: UInt64 = 1

    struct Route {
        var send: ([UInt8]) -> Void
        var close: () -> Void
    }

    public init(
        eventLoop: EventLoop, engine: SIPServerEngine, admission: SIPCallAdmission, clock: @escaping () -> ContinuousClock.Instant = { .now }
    ) {
        self.eventLoop = eventLoop
        self.engine = engine
        self.admission = admission
        self.clock = clock
    }

    public var transactionCount: Int { engine.transactionCount }

    /// Follows the system security mode (`secured` → false); applies to the next INVITE.
    public func setAllowsPlainRTP(_ allowed: Bool) {
        eventLoop.preconditionInEventLoop()
        engine.setAllowsPlainRTP(allowed)
    }

    func connectionID() -> UInt64 {
        defer { nextConnection += 1 }
        return nextConnection
    }

    func receive(_ bytes: [UInt8], from peer: SIPPeer, route: Route) {
        eventLoop.preconditionInEventLoop()
        routes[peer] = route
        perform(engine.receive(bytes, from: peer, now: clock(), newTag: Self.randomTag()))
        if peer.transport == .udp, routes.count > 4096 { routes = routes.filter { $0.key.transport != .udp || $0.key == peer } }
    }

    func connectionClosed(_ peer: SIPPeer) {
        eventLoop.preconditionInEventLoop()
        routes[peer] = nil
        perform(engine.connectionFailed(peer, now: clock()))
    }

    public func shutdown() {
        timer?.cancel()
        timer = nil
    }

    private func perform(_ outputs: [SIPServerOutput]) {
        var pending = outputs[...]
        while let output = pending.popFirst() {
            switch output {
            case .send(let bytes, let peer):
                routes[peer]?.send(bytes)
            case .close(let peer):
                routes.removeValue(forKey: peer)?.close()
            case .call(.admit(let call)):
                switch admission.admit(call) {
                case .admitted(let local):
                    pending += engine.admitted(call.key, local: local, now: clock()) ?? []
                case .refused(let status, let reason, let warning, let headers):
                    pending += engine.refused(call.key, status: status, reason: reason, warning: warning, extraHeaders: headers, now: clock())
                }
            case .call(.updateMedia(let key, let decisions)):
                admission.updateMedia(key, decisions)
            case .call(.release(let key, let reason)):
                admission.release(key, reason: reason)
            case .call(.respond):
                break  // the engine routes answers itself
            }
        }
        scheduleTimer()
    }

    private func scheduleTimer() {
        guard let deadline = engine.nextDeadline else {
            timer?.cancel()
            timer = nil
            timerDeadline = nil
            return
        }
        if timer != nil, timerDeadline == deadline { return }
        timer?.cancel()
        timerDeadline = deadline
        let delay = max(.zero, deadline - clock())
        let nanoseconds = delay.components.seconds * 1_000_000_000 + delay.components.attoseconds / 1_000_000_000
        timer = eventLoop.scheduleTask(in: .nanoseconds(nanoseconds)) { [weak self] in
            guard let self else { return }
            self.timer = nil
            self.timerDeadline = nil
            self.perform(self.engine.tick(now: self.clock()))
        }
    }

    /// 64 random bits for a To tag (RFC 3261 §19.3 asks for at least 32).
    static func randomTag() -> String {
        let digits = Array("0123456789abcdef")
        return String(SecureRandom.bytes(count: 8).flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 0x0f)]] })
    }
}

/// SIP over UDP: each datagram is one message; answers go back to its source address and port.
public final class SIPDatagramHandler: ChannelInboundHandler {
    public typealias InboundIn = AddressedEnvelope<ByteBuffer>
    public typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    private let server: SIPServer

    public init(server: SIPServer) { self.server = server }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        guard let address = envelope.remoteAddress.ipAddress, let port = envelope.remoteAddress.port else { return }
        let channel = context.channel
        let remote = envelope.remoteAddress
        let route = SIPServer.Route(
            send: { bytes in
                channel.writeAndFlush(AddressedEnvelope(remoteAddress: remote, data: channel.allocator.buffer(bytes: bytes)), promise: nil)
            },
            close: {})
        server.receive(
            Array(envelope.data.readableBytesView), from: SIPPeer(transport: .udp, address: address, port: port), route: route)
    }
}

/// SIP over a TCP or TLS stream (TLS: put our `TLSHandler` before this one): messages are cut
/// by Content-Length (§18.3); a framing error is answered when possible and closes the connection.
public final class SIPStreamHandler: ChannelInboundHandler {
    public typealias InboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private let server: SIPServer
    private let transport: SIPTransport
    private var framer = SIPStreamFramer()
    private var peer: SIPPeer?

    public init(server: SIPServer, transport: SIPTransport) {
        precondition(transport != .udp, "streams are TCP or TLS")
        self.server = server
        self.transport = transport
    }

    public func channelActive(context: ChannelHandlerContext) {
        peer = SIPPeer(
            transport: transport, address: context.remoteAddress?.ipAddress ?? "?", port: context.remoteAddress?.port ?? 0,
            connection: server.connectionID())
        context.fireChannelActive()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let peer else { return }
        framer.append(unwrapInboundIn(data).readableBytesView)
        let channel = context.channel
        let route = SIPServer.Route(
            send: { bytes in channel.writeAndFlush(channel.allocator.buffer(bytes: bytes), promise: nil) },
            close: { channel.close(promise: nil) })
        while true {
            let frame: [UInt8]?
            do throws(SIPParseError) {
                frame = try framer.nextMessage()
            } catch {
                // Nothing after a framing error can be trusted to start a message.
                if let answer = SIPMessage.errorResponse(to: framer.pendingBytes, error) { route.send(answer.serialized()) }
                context.close(promise: nil)
                return
            }
            guard let frame else { return }
            server.receive(frame, from: peer, route: route)
        }
    }

    public func channelInactive(context: ChannelHandlerContext) {
        if let peer { server.connectionClosed(peer) }
        context.fireChannelInactive()
    }
}
