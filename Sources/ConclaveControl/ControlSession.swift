import ConclaveCrypto
import ConclaveIdentity
import ConclaveRelay
import ConclaveSRTP
import ConclaveWire
import FoundationEssentials
import NIOCore
import NIOWebSocket

/// One client's control connection, after the WebSocket upgrade: `hello`, then `join`, then
/// events until `leave`, a server-side end (meeting stopped, kicked) or silence. The media
/// keys of its leg come from this connection's TLS exporter (docs/control-protocol.md).
final class ControlSession: ChannelInboundHandler, ParticipantChannel {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private enum State {
        case awaitingHello
        case greeted(ControlMessage.Hello)
        /// A password is being checked off the event loop.
        case authenticating(ControlMessage.Hello)
        case joined(leg: UInt32)
        case closed
    }

    /// Who a join authenticated as.
    private enum Identity {
        case guest(nickname: String)
        case user(email: String, name: String)
    }

    private let plane: ControlPlane
    private var state = State.awaitingHello
    private var context: ChannelHandlerContext?
    private var lastHeard = NIODeadline.now()
    private var watchdog: RepeatedTask?
    /// When the pending join arrived, for the join-latency histogram.
    private var joinStarted: NIODeadline?
    /// A client must say hello this soon after the upgrade.
    private static let helloTimeout = TimeAmount.seconds(10)

    init(plane: ControlPlane) { self.plane = plane }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        lastHeard = .now()
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        watchdog = context.eventLoop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
            loopBound.value.checkLiveness()
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        watchdog?.cancel()
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        watchdog?.cancel()
        if case .joined(let leg) = state {
            plane.log.info("leg \(leg): connection closed")
            plane.registry.leave(leg: leg)
        }
        state = .closed
        context.fireChannelInactive()
    }

    private func checkLiveness() {
        let silence: TimeAmount
        switch state {
        case .awaitingHello: silence = Self.helloTimeout
        case .closed: return
        default: silence = .seconds(Int64(3 * plane.settings.heartbeatSeconds))
        }
        guard NIODeadline.now() - lastHeard > silence else { return }
        plane.log.info("control session silent for \(silence.nanoseconds / 1_000_000_000) s: closing")
        closeSession(code: .goingAway)
    }

    // MARK: Frames

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        lastHeard = .now()
        switch frame.opcode {
        case .text:
            var data = frame.unmaskedData
            let bytes = data.readBytes(length: data.readableBytes) ?? []
            do {
                handle(try ControlMessage(decoding: bytes))
            } catch {
                refuse(.badMessage("\(error)"), close: true)
            }
        case .ping:
            var payload = frame.unmaskedData
            send(WebSocketFrame(fin: true, opcode: .pong, data: payload.readSlice(length: payload.readableBytes) ?? ByteBuffer()))
        case .pong:
            break
        case .connectionClose:
            closeSession(code: .normalClosure)
        default:
            refuse(.badMessage("only text frames carry control messages"), close: true)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        plane.log.info("control session: \(error)")
        context.close(promise: nil)
    }

    private func handle(_ message: ControlMessage) {
        switch (state, message) {
        case (.awaitingHello, .hello(let hello)):
            guard Self.isReasonable(hello) else { return refuse(.badMessage("hello fields must be 1–64 printable characters"), close: true) }
            state = .greeted(hello)
            let settings = plane.settings
            send(.welcome(.init(serverVersion: plane.serverVersion, heartbeatSeconds: settings.heartbeatSeconds, securityMode: settings.securityMode.rawValue)))
        case (.awaitingHello, _):
            refuse(.notHello, close: true)
        case (.greeted(let hello), .join(let join)):
            joinStarted = .now()
            begin(join, hello: hello)
        case (.authenticating, .join), (.joined, .join):
            refuse(.alreadyJoined, close: false)
        case (_, .heartbeat(let sequence)):
            send(.heartbeatAck(sequence: sequence))
        case (.joined(let leg), .leave):
            plane.log.info("leg \(leg) left")
            plane.registry.leave(leg: leg)
            state = .closed
            closeSession(code: .normalClosure)
        case (_, .leave):
            closeSession(code: .normalClosure)
        case (_, .hello):
            refuse(.badMessage("hello was already sent"), close: false)
        default:
            refuse(.badMessage("\(message) is not a client message"), close: true)
        }
    }

    // MARK: Joining

    private func begin(_ join: ControlMessage.Join, hello: ControlMessage.Hello) {
        let settings = plane.settings
        let address = context?.remoteAddress?.ipAddress ?? "unknown"
        let now = Date()
        do {
            // Meeting checks first: a locked meeting need not cost a password check.
            _ = try plane.registry.admissible(meeting: join.meeting, passcode: join.passcode, asGuest: join.nickname != nil, securityMode: settings.securityMode)
            if let nickname = join.nickname {
                guard Self.isName(nickname) else { throw ControlRefusal.badMessage("nickname must be 1–64 printable characters") }
                return complete(join, hello: hello, as: .guest(nickname: nickname))
            }
            if let token = join.token {
                try checkThrottle(account: "token@" + address, address: address)
                guard let key = plane.ssoKeyPEM, let audience = settings.fqdn else {
                    throw ControlRefusal.tokenInvalid("single sign-on is not configured on this appliance")
                }
                do {
                    let claims = try JoinToken.verify(token, publicKeyPEM: key, audience: audience, meeting: join.meeting, now: now)
                    return complete(join, hello: hello, as: .user(email: claims.subject, name: claims.name ?? claims.subject))
                } catch {
                    plane.throttle.recordFailure(account: "token@" + address, address: address)
                    plane.audit(actor: "control", action: "join-refused", detail: "token from \(address): \(error)")
                    throw ControlRefusal.tokenInvalid("\(error)")
                }
            }
            guard let email = join.email, let password = join.password else { throw ControlRefusal.badMessage("no credentials") }
            try checkThrottle(account: email, address: address)
            guard let identity = plane.identity else { throw ControlRefusal.serviceUnavailable("the identity store is not available") }
            state = .authenticating(hello)
            let loopBound = NIOLoopBound(self, eventLoop: plane.eventLoop)
            plane.blockingPool.runIfActive(eventLoop: plane.eventLoop) {
                try identity.authenticate(email: email, password: password)
            }.whenComplete { result in
                loopBound.value.finishPasswordCheck(result, join: join, hello: hello, email: email, address: address)
            }
        } catch let refusal as ControlRefusal {
            refuse(refusal, close: false)
        } catch {
            refuse(.serviceUnavailable("\(error)"), close: false)
        }
    }

    private func checkThrottle(account: String, address: String) throws(ControlRefusal) {
        if case .locked(_, let retryAfter) = plane.throttle.check(account: account, address: address) {
            throw .rateLimited(retryAfterSeconds: Int(retryAfter.components.seconds) + 1)
        }
    }

    private func finishPasswordCheck(
        _ result: Result<User?, Error>, join: ControlMessage.Join, hello: ControlMessage.Hello, email: String, address: String
    ) {
        guard case .authenticating = state else { return }  // the connection went away meanwhile
        state = .greeted(hello)
        switch result {
        case .success(let user?):
            plane.throttle.recordSuccess(account: email, address: address)
            complete(join, hello: hello, as: .user(email: user.email, name: user.displayName))
        case .success(nil):
            plane.throttle.recordFailure(account: email, address: address)
            plane.audit(actor: "control", action: "join-refused", detail: "bad credentials from \(address)", subject: email.lowercased())
            refuse(.badCredentials, close: false)
        case .failure(let error):
            refuse(.serviceUnavailable("\(error)"), close: false)
        }
    }

    /// Authenticated: allocates the leg, derives its keys from this connection's exporter,
    /// installs it on the relay and answers `joined`.
    private func complete(_ join: ControlMessage.Join, hello: ControlMessage.Hello, as identity: Identity) {
        guard let context, case .greeted = state else { return }
        let settings = plane.settings
        do {
            guard let meeting = plane.registry.meeting(join.meeting) else { throw ControlRefusal.unknownMeeting(join.meeting) }
            let (leg, token) = plane.registry.allocateLeg()
            let profile: MediaKeyDerivation.Profile = meeting.settings.mode == .srtp ? .srtp(.aeadAES128GCM) : .encapsulated
            let tls = try context.pipeline.syncOperations.handler(type: TLSHandler.self)
            let exported = try tls.exportKeyingMaterial(
                label: MediaKeyDerivation.label, context: MediaKeyDerivation.context(leg: leg), length: MediaKeyDerivation.length(for: profile))
            let description = LegDescription(
                leg: leg, token: token, meeting: meeting.number,
                protection: try MediaKeyDerivation.protection(exporterOutput: exported, profile: profile),
                audioPayloadTypes: join.audioPayloadTypes ?? Self.defaultAudioPayloadTypes,
                videoPayloadTypes: join.videoPayloadTypes ?? Self.defaultVideoPayloadTypes)
            let (name, kind, email): (String, ParticipantInfo.Kind, String?) = switch identity {
            case .guest(let nickname): (nickname, .guest, nil)
            case .user(let email, let name): (name, .user, email)
            }
            let address = context.remoteAddress?.ipAddress ?? "unknown"
            let profileName = MediaKeyDerivation.name(of: profile)
            let info = ParticipantInfo(
                leg: leg, name: name, kind: kind, email: email, address: address, mac: join.mac, clientName: hello.clientName,
                clientVersion: hello.clientVersion, os: hello.os, transports: hello.transports, profile: profileName,
                joinedAt: Date().timeIntervalSince1970)
            let others = meeting.others
            _ = try plane.registry.join(
                meeting: join.meeting, passcode: join.passcode, asGuest: kind == .guest, securityMode: settings.securityMode, leg: description,
                info: info, channel: self)
            state = .joined(leg: leg)
            let relayHost = context.localAddress?.ipAddress ?? settings.fqdn ?? "localhost"
            send(.joined(.init(
                leg: leg, legToken: String(token, radix: 16).leftPadded(to: 16), relayHost: relayHost,
                udpPort: settings.media.udpPort(forMeeting: meeting.number), tcpPort: settings.media.tcpPort, profile: profileName,
                participants: others)))
            if let joinStarted { plane.monitoring.recordJoin(latencySeconds: Double((NIODeadline.now() - joinStarted).nanoseconds) / 1e9) }
            let privacy = plane.monitoring.privacy
            plane.log.info("leg \(leg) joined meeting \(join.meeting) as \(kind.rawValue) (\(profileName)): \(privacy.logged(name, .nickname)) from \(privacy.logged(address, .address))")
            switch identity {
            case .guest(let nickname):
                do {
                    try plane.identity?.recordVisit(nickname: nickname, address: address, mac: join.mac, meeting: join.meeting, at: Date())
                } catch { plane.log.error("guest visit not recorded: \(error)") }
            case .user(let email, _):
                plane.audit(actor: "control", action: "join", detail: "meeting \(join.meeting), leg \(leg)", subject: email)
            }
        } catch let refusal as ControlRefusal {
            refuse(refusal, close: false)
        } catch {
            refuse(.serviceUnavailable("\(error)"), close: false)
        }
    }

    static let defaultAudioPayloadTypes: [UInt8] = [0, 8, 9, 10, 11, 13, 101, 111]
    static let defaultVideoPayloadTypes: [UInt8] = [96, 97, 98, 102, 103]

    // MARK: ParticipantChannel

    func deliver(_ message: ControlMessage) { send(message) }

    func end(with message: ControlMessage) {
        state = .closed
        send(message)
        closeSession(code: .normalClosure)
    }

    // MARK: Sending

    private func refuse(_ refusal: ControlRefusal, close: Bool) {
        plane.log.info("control session refused: \(refusal.code): \(refusal)")
        send(refusal.message)
        if close { closeSession(code: .policyViolation) }
    }

    private func send(_ message: ControlMessage) {
        send(WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(bytes: message.encoded())))
    }

    private func send(_ frame: WebSocketFrame) {
        guard let context, context.channel.isActive else { return }
        context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
    }

    private func closeSession(code: WebSocketErrorCode) {
        guard let context else { return }
        if case .joined(let leg) = state { plane.registry.leave(leg: leg) }
        state = .closed
        var data = context.channel.allocator.buffer(capacity: 2)
        data.write(webSocketErrorCode: code)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: data))).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    // MARK: Validation

    private static func isName(_ text: String) -> Bool {
        (1...64).contains(text.count) && !text.unicodeScalars.contains { $0.properties.generalCategory == .control }
    }

    private static func isReasonable(_ hello: ControlMessage.Hello) -> Bool {
        [hello.clientName, hello.clientVersion, hello.os].allSatisfy(isName)
            && hello.transports.count <= 4 && hello.transports.allSatisfy { ["udp", "tcp"].contains($0) }
    }
}

extension String {
    func leftPadded(to width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}

extension MediaKeyDerivation {
    static func name(of profile: Profile) -> String {
        switch profile {
        case .srtp(let srtp): srtp == .aeadAES128GCM ? "AEAD_AES_128_GCM" : "AES_CM_128_HMAC_SHA1_80"
        case .encapsulated: "encapsulated"
        }
    }
}
