/// The SIP server between the sockets and the call core, still without I/O: bytes in from a
/// peer, bytes out to a peer, timers on an injected clock. It parses (answering malformed requests
/// when it can), stamps the top Via (RFC 3261 §18.2.1, RFC 3581 rport), matches requests to server
/// transactions (retransmissions never reach the call core), routes the core's answers through
/// their transactions, and maps the ACK for a 2xx to its INVITE transaction through the dialog.

/// Where a message came from and where its answers go. Over UDP answers go back to the source
/// address and port (symmetric response routing, as RFC 3581 asks with rport and as NATs need).
public struct SIPPeer: Sendable, Hashable, CustomStringConvertible {
    public var transport: SIPTransport
    public var address: String
    public var port: Int
    /// The TCP/TLS connection the message arrived on (answers go back on it); 0 for UDP.
    public var connection: UInt64

    public init(transport: SIPTransport, address: String, port: Int, connection: UInt64 = 0) {
        self.transport = transport
        self.address = address
        self.port = port
        self.connection = connection
    }

    public var description: String { "\(transport.rawValue) \(address):\(port)" }
}

public enum SIPServerOutput: Sendable, Hashable {
    case send([UInt8], to: SIPPeer)
    /// A decision for the control plane: `.admit`, `.updateMedia` or `.release` (never `.respond`).
    case call(CallAction)
    /// A stream sent something that cannot be framed: close it.
    case close(SIPPeer)
}

public struct SIPServerEngine: Sendable {
    private struct InviteEntry: Sendable {
        var transaction: InviteServerTransaction
        var peer: SIPPeer
        var call: CallKey?
        var cseq: UInt32
    }

    private struct NonInviteEntry: Sendable {
        var transaction: NonInviteServerTransaction
        var peer: SIPPeer
    }

    public private(set) var core: CallCore
    public let limits: SIPLimits
    private var invites: [ServerTransactionKey: InviteEntry] = [:]
    private var others: [ServerTransactionKey: NonInviteEntry] = [:]
    private var timers = TransactionTimers<ServerTransactionKey>()
    public let timerValues: SIPTimerValues

    public init(core: CallCore, limits: SIPLimits = SIPLimits(), timers: SIPTimerValues = SIPTimerValues()) {
        self.core = core
        self.limits = limits
        self.timerValues = timers
    }

    public var transactionCount: Int { invites.count + others.count }

    /// The system security mode changed: new calls (and re-INVITEs) follow it at once; calls
    /// already up keep their media until they end.
    public mutating func setAllowsPlainRTP(_ allowed: Bool) { core.configuration.allowsPlainRTP = allowed }
    public var nextDeadline: ContinuousClock.Instant? { timers.nextDeadline }

    /// One datagram, or one frame cut by `SIPStreamFramer`. `newTag` is fresh randomness for a To
    /// tag, used only if this message starts a dialog.
    public mutating func receive(_ bytes: [UInt8], from peer: SIPPeer, now: ContinuousClock.Instant, newTag: String) -> [SIPServerOutput] {
        var request: SIPMessage
        do throws(SIPParseError) {
            request = try SIPMessage(parsing: bytes, limits: limits)
        } catch {
            guard let answer = SIPMessage.errorResponse(to: bytes, error) else { return [] }
            return [.send(answer.serialized(), to: peer)]
        }
        guard let method = request.method else { return [] }  // a response: we send no requests yet
        stampVia(&request, peer: peer)
        guard let key = ServerTransactionKey(request: request) else {
            if method == .ack { return [] }
            let answer = SIPMessage.response(
                to: request, status: 400, reason: "Bad Request",
                extraHeaders: [SIPHeaderField("Warning", "399 conclave \"the Via branch must start with z9hG4bK (RFC 3261)\"")])
            return [.send(answer.serialized(), to: peer)]
        }
        if method == .ack {
            return acknowledge(request, key: key, now: now)
        }
        if method == .invite {
            if var entry = invites[key] {
                let actions = entry.transaction.handle(.inviteRetransmitted)
                invites[key] = entry
                return perform(actions, key: key, now: now)
            }
            let transaction = InviteServerTransaction(invite: request, isReliable: peer.transport.isReliable, timers: timerValues)
            invites[key] = InviteEntry(
                transaction: transaction, peer: peer, call: nil, cseq: SIPCSeq(parsing: request["CSeq"]!)?.sequence ?? 0)
            var outputs: [SIPServerOutput] = [.send(transaction.trying.serialized(), to: peer)]
            outputs += route(core.handle(request, transport: peer.transport, newTag: newTag), now: now)
            return outputs
        }
        if var entry = others[key] {
            let actions = entry.transaction.handle(.requestRetransmitted)
            others[key] = entry
            return perform(actions, key: key, now: now)
        }
        others[key] = NonInviteEntry(transaction: NonInviteServerTransaction(isReliable: peer.transport.isReliable, timers: timerValues), peer: peer)
        return route(core.handle(request, transport: peer.transport, newTag: newTag), now: now)
    }

    /// The control plane built the call's leg.
    public mutating func admitted(_ call: CallKey, local: [Int: LocalStream], now: ContinuousClock.Instant) -> [SIPServerOutput]? {
        guard let actions = core.admitted(call, local: local) else { return nil }
        return route(actions, now: now)
    }

    /// The control plane refused the call.
    public mutating func refused(
        _ call: CallKey, status: Int, reason: String, warning: String?, extraHeaders: [SIPHeaderField] = [], now: ContinuousClock.Instant
    ) -> [SIPServerOutput] {
        route(core.refused(call, status: status, reason: reason, warning: warning, extraHeaders: extraHeaders), now: now)
    }

    /// Fires the timers due at `now`.
    public mutating func tick(now: ContinuousClock.Instant) -> [SIPServerOutput] {
        var outputs: [SIPServerOutput] = []
        for (key, timer) in timers.due(at: now) {
            if var entry = invites[key] {
                let actions = entry.transaction.handle(.timerFired(timer))
                invites[key] = entry
                outputs += perform(actions, key: key, now: now)
            } else if var entry = others[key] {
                let actions = entry.transaction.handle(.timerFired(timer))
                others[key] = entry
                outputs += perform(actions, key: key, now: now)
            }
        }
        return outputs
    }

    /// A stream connection closed or failed: its transactions end (§17.2.4).
    public mutating func connectionFailed(_ peer: SIPPeer, now: ContinuousClock.Instant) -> [SIPServerOutput] {
        var outputs: [SIPServerOutput] = []
        for (key, entry) in invites where entry.peer == peer {
            var transaction = entry.transaction
            let actions = transaction.handle(.transportError)
            invites[key]?.transaction = transaction
            outputs += perform(actions, key: key, now: now)
        }
        for (key, entry) in others where entry.peer == peer {
            var transaction = entry.transaction
            let actions = transaction.handle(.transportError)
            others[key]?.transaction = transaction
            outputs += perform(actions, key: key, now: now)
        }
        return outputs
    }

    // MARK: - Internals

    /// §18.2.1: `received` when the sent-by host is not the source address; RFC 3581 `rport`
    /// filled in when the client asked for it.
    private func stampVia(_ request: inout SIPMessage, peer: SIPPeer) {
        guard let index = request.headers.firstIndex(where: { $0.name == "Via" }) else { return }
        let values = SIPMessage.splitList(request.headers[index].value)
        guard let first = values.first, var via = try? SIPVia(parsing: first) else { return }
        if via.host != peer.address { via.parameters.set("received", peer.address) }
        if via.parameters.contains("rport") { via.parameters.set("rport", String(peer.port)) }
        request.headers[index].value = ([via.description] + values.dropFirst()).joined(separator: ", ")
    }

    /// ACK for a 3xx–6xx matches the INVITE transaction by branch; ACK for a 2xx is its own
    /// transaction and finds the INVITE through the dialog and CSeq number (RFC 6026 §7.1).
    private mutating func acknowledge(_ ack: SIPMessage, key: ServerTransactionKey, now: ContinuousClock.Instant) -> [SIPServerOutput] {
        var target = invites[key] == nil ? nil : key
        if target == nil, let callID = ack["Call-ID"], let from = try? SIPNameAddress(parsing: ack["From"] ?? ""),
            let tag = from.parameter("tag"), let cseq = SIPCSeq(parsing: ack["CSeq"] ?? "")
        {
            let call = CallKey(callID: callID, remoteTag: tag)
            target = invites.first { $0.value.call == call && $0.value.cseq == cseq.sequence }?.key
        }
        guard let target, var entry = invites[target] else { return [] }
        let actions = entry.transaction.handle(.ack(ack))
        invites[target] = entry
        var outputs = perform(actions, key: target, now: now)
        if actions.contains(where: { if case .passToCallLayer = $0 { true } else { false } }) {
            outputs += route(core.handle(ack, transport: entry.peer.transport, newTag: ""), now: now)
        }
        return outputs
    }

    /// Sends the core's answers through their transactions; passes its decisions up.
    private mutating func route(_ actions: [CallAction], now: ContinuousClock.Instant) -> [SIPServerOutput] {
        var outputs: [SIPServerOutput] = []
        for action in actions {
            guard case .respond(let request, let response) = action else {
                if case .admit(let call) = action, let key = ServerTransactionKey(request: call.invite) { invites[key]?.call = call.key }
                outputs.append(.call(action))
                continue
            }
            guard let key = ServerTransactionKey(request: request) else { continue }
            if request.method == .invite, var entry = invites[key] {
                if entry.call == nil, let callID = request["Call-ID"],
                    let tag = (try? SIPNameAddress(parsing: request["From"] ?? ""))?.parameter("tag")
                {
                    entry.call = CallKey(callID: callID, remoteTag: tag)
                }
                guard entry.transaction.state == .proceeding
                    || (entry.transaction.state == .accepted && (response.status ?? 0) / 100 == 2)
                else { continue }  // the INVITE was already answered (a CANCEL raced the admission)
                let transactionActions = entry.transaction.handle(.respond(response))
                invites[key] = entry
                outputs += perform(transactionActions, key: key, now: now)
            } else if var entry = others[key] {
                guard entry.transaction.state == .trying || entry.transaction.state == .proceeding else { continue }
                let transactionActions = entry.transaction.handle(.respond(response))
                others[key] = entry
                outputs += perform(transactionActions, key: key, now: now)
            }
        }
        return outputs
    }

    private mutating func perform(_ actions: [TransactionAction], key: ServerTransactionKey, now: ContinuousClock.Instant) -> [SIPServerOutput] {
        timers.apply(actions, for: key, now: now)
        let peer = invites[key]?.peer ?? others[key]?.peer
        var outputs: [SIPServerOutput] = []
        for action in actions {
            switch action {
            case .send(let message):
                if let peer { outputs.append(.send(message.serialized(), to: peer)) }
            case .terminated(let end):
                let call = invites[key]?.call
                invites[key] = nil
                others[key] = nil
                if end == .noAckForAnswer, let call { outputs += route(core.ackTimedOut(call), now: now) }
            case .passToCallLayer, .startTimer, .cancelTimer:
                break
            }
        }
        return outputs
    }
}

extension SIPMessage {
    /// The answer to a request the parser refused, built from its raw header lines when Via,
    /// From, To, Call-ID and CSeq can be found (§8.2: a server must answer what it can). Nil for
    /// a response, an ACK, or bytes too broken to answer.
    public static func errorResponse(to bytes: [UInt8], _ error: SIPParseError) -> SIPMessage? {
        let head = bytes.prefix(SIPLimits().maximumMessageSize)
        let end = SIPMessage.endOfHeaders(Array(head), from: 0)?.headers ?? head.count
        guard let lines = try? SIPMessage.lines(head.prefix(end)), let first = lines.first else { return nil }
        let method = first.split(separator: " ", maxSplits: 1).first.map(String.init) ?? ""
        guard !method.hasPrefix("SIP/"), method != "ACK", !method.isEmpty, method.utf8.allSatisfy(isTokenByte) else { return nil }
        var fields: [SIPHeaderField] = []
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = SIPHeaderField.canonicalName(String(line[..<colon]).trimmingSIPWhitespace())
            guard ["Via", "From", "To", "Call-ID", "CSeq"].contains(name) else { continue }
            fields.append(SIPHeaderField(name, String(line[line.index(after: colon)...]).trimmingSIPWhitespace()))
        }
        for name in ["Via", "From", "To", "Call-ID", "CSeq"] where !fields.contains(where: { $0.name == name }) { return nil }
        guard (try? SIPVia(parsing: SIPMessage.splitList(fields.first { $0.name == "Via" }!.value).first ?? "")) != nil else { return nil }
        let request = SIPMessage(startLine: .request(method: SIPMethod(rawValue: method), uri: "sip:invalid"), headers: fields)
        let reasons = [400: "Bad Request", 413: "Request Entity Too Large", 416: "Unsupported URI Scheme", 505: "Version Not Supported", 513: "Message Too Large"]
        let warning = String(error.reason.unicodeScalars.filter { $0 != "\"" && $0 != "\\" && $0.value >= 0x20 }.prefix(200).map(Character.init))
        return SIPMessage.response(
            to: request, status: error.status, reason: reasons[error.status] ?? "Bad Request",
            extraHeaders: [SIPHeaderField("Warning", "399 conclave \"\(warning)\"")])
    }
}
