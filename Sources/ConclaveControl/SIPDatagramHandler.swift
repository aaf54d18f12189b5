import ConclaveCrypto
import ConclaveSIP
import NIOCore

/// What the SIP server asks of the control plane, on the channel's event loop: admit a call (its
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

/// SIP over UDP: each datagram goes through `SIPServerEngine`; its answers go back to the
/// sender; its transaction timers run on the event loop. Not wired into the control worker yet
/// (docs/sip.md): nothing binds 5060 or implements `SIPCallAdmission` against the meetings.
public final class SIPDatagramHandler: ChannelInboundHandler {
    public typealias InboundIn = AddressedEnvelope<ByteBuffer>
    public typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    private var engine: SIPServerEngine
    private let admission: SIPCallAdmission
    private let clock: () -> ContinuousClock.Instant
    private var timer: Scheduled<Void>?
    private var timerDeadline: ContinuousClock.Instant?
    /// The socket address of each peer an answer may go to, as it was received.
    private var addresses: [SIPPeer: SocketAddress] = [:]

    public init(engine: SIPServerEngine, admission: SIPCallAdmission, clock: @escaping () -> ContinuousClock.Instant = { .now }) {
        self.engine = engine
        self.admission = admission
        self.clock = clock
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        guard let address = envelope.remoteAddress.ipAddress, let port = envelope.remoteAddress.port else { return }
        let peer = SIPPeer(transport: .udp, address: address, port: port)
        addresses[peer] = envelope.remoteAddress
        let bytes = Array(envelope.data.readableBytesView)
        perform(engine.receive(bytes, from: peer, now: clock(), newTag: Self.randomTag()), context: context)
        if addresses.count > 4096 { addresses = [peer: envelope.remoteAddress] }  // bound: only live peers matter
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    private func perform(_ outputs: [SIPServerOutput], context: ChannelHandlerContext) {
        var pending = outputs[...]
        var wrote = false
        while let output = pending.popFirst() {
            switch output {
            case .send(let bytes, let peer):
                guard let address = addresses[peer] else { continue }
                let buffer = context.channel.allocator.buffer(bytes: bytes)
                context.write(wrapOutboundOut(AddressedEnvelope(remoteAddress: address, data: buffer)), promise: nil)
                wrote = true
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
            case .call(.respond), .close:
                break  // the engine routes answers itself; datagrams have no connection to close
            }
        }
        if wrote { context.flush() }
        scheduleTimer(context: context)
    }

    /// One scheduled task, for the engine's earliest deadline.
    private func scheduleTimer(context: ChannelHandlerContext) {
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
        timer = context.eventLoop.scheduleTask(in: .nanoseconds(nanoseconds)) { [weak self] in
            guard let self else { return }
            self.timer = nil
            self.timerDeadline = nil
            self.perform(self.engine.tick(now: self.clock()), context: context)
        }
    }

    /// 64 random bits for a To tag (RFC 3261 §19.3 asks for at least 32).
    static func randomTag() -> String {
        let digits = Array("0123456789abcdef")
        return String(SecureRandom.bytes(count: 8).flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 0x0f)]] })
    }
}
