/// Server transactions (RFC 3261 §17.2, with RFC 6026's Accepted state) as plain values: each takes
/// an event and returns actions; the caller sends, schedules timers and reports to the call layer.
/// Timers are durations the caller arms on its clock (`TransactionTimers` in tests and the server).

public struct SIPTimerValues: Sendable, Hashable {
    /// RTT estimate (§17.1.1.1).
    public var t1: Duration
    /// Longest retransmit interval for non-INVITE requests and INVITE responses.
    public var t2: Duration
    /// Longest time a message may stay in the network.
    public var t4: Duration

    public init(t1: Duration = .milliseconds(500), t2: Duration = .seconds(4), t4: Duration = .seconds(5)) {
        self.t1 = t1
        self.t2 = t2
        self.t4 = t4
    }
}

public enum SIPTransactionTimer: String, Sendable, Hashable {
    /// INVITE final response (3xx–6xx) retransmission, unreliable transports.
    case g = "G"
    /// Wait for the ACK to a 3xx–6xx.
    case h = "H"
    /// Absorb ACK retransmissions after the ACK.
    case i = "I"
    /// Absorb non-INVITE request retransmissions after the final response.
    case j = "J"
    /// RFC 6026: absorb INVITE retransmissions after a 2xx.
    case l = "L"
    /// §13.3.1.4: the UAS core retransmits a 2xx until the ACK arrives (held here with Timer L).
    case answerRetransmit = "2xx"
}

public enum TransactionAction: Sendable, Hashable {
    case send(SIPMessage)
    /// Hand the message to the call layer (the ACK for a 2xx, in the Accepted state).
    case passToCallLayer(SIPMessage)
    case startTimer(SIPTransactionTimer, after: Duration)
    case cancelTimer(SIPTransactionTimer)
    case terminated(TransactionEnd)
}

public enum TransactionEnd: Sendable, Hashable {
    case completed
    /// Timer H: no ACK for a 3xx–6xx answer to an INVITE.
    case noAckForFailure
    /// Timer L passed without an ACK for a 2xx: the call layer must end the dialog with a BYE (§13.3.1.4).
    case noAckForAnswer
    case transportError
}

/// RFC 3261 §17.2.1 with RFC 6026 §7.1.
public struct InviteServerTransaction: Sendable {
    public enum State: Sendable, Hashable { case proceeding, accepted, completed, confirmed, terminated }

    public enum Event: Sendable, Hashable {
        /// The INVITE again (same branch).
        case inviteRetransmitted
        /// An ACK matching this transaction (3xx–6xx) or its dialog (2xx).
        case ack(SIPMessage)
        /// The call layer answers.
        case respond(SIPMessage)
        case timerFired(SIPTransactionTimer)
        case transportError
    }

    public private(set) var state = State.proceeding
    public let isReliable: Bool
    public let timers: SIPTimerValues
    private var lastResponse: SIPMessage?
    private var retransmitInterval: Duration
    private var acknowledged = false

    /// Created when an INVITE arrives; the caller passes it to the call layer and sends the first
    /// action's 100 Trying at once (§17.2.1: we never make the client wait 200 ms for it).
    public init(invite: SIPMessage, isReliable: Bool, timers: SIPTimerValues = SIPTimerValues()) {
        self.isReliable = isReliable
        self.timers = timers
        retransmitInterval = timers.t1
        lastResponse = SIPMessage.response(to: invite, status: 100, reason: "Trying")
    }

    /// The 100 Trying to send right away.
    public var trying: SIPMessage { lastResponse! }

    public mutating func handle(_ event: Event) -> [TransactionAction] {
        switch (state, event) {
        case (.proceeding, .inviteRetransmitted):
            return lastResponse.map { [.send($0)] } ?? []
        case (.proceeding, .respond(let response)):
            let status = response.status ?? 0
            lastResponse = response
            if status < 200 { return [.send(response)] }
            if status < 300 {
                state = .accepted
                return [
                    .send(response), .startTimer(.answerRetransmit, after: timers.t1), .startTimer(.l, after: timers.t1 * 64),
                ]
            }
            state = .completed
            var actions: [TransactionAction] = [.send(response)]
            if !isReliable { actions.append(.startTimer(.g, after: timers.t1)) }
            actions.append(.startTimer(.h, after: timers.t1 * 64))
            return actions
        case (.accepted, .inviteRetransmitted):
            return []  // RFC 6026 §7.1: absorbed; the 2xx is retransmitted on its own timer
        case (.accepted, .respond(let response)) where (response.status ?? 0) / 100 == 2:
            lastResponse = response
            return [.send(response)]
        case (.accepted, .ack(let ack)):
            var actions: [TransactionAction] = []
            if !acknowledged {
                acknowledged = true
                actions.append(.cancelTimer(.answerRetransmit))
            }
            actions.append(.passToCallLayer(ack))
            return actions
        case (.accepted, .timerFired(.answerRetransmit)):
            guard !acknowledged, let lastResponse else { return [] }
            retransmitInterval = min(retransmitInterval * 2, timers.t2)
            return [.send(lastResponse), .startTimer(.answerRetransmit, after: retransmitInterval)]
        case (.accepted, .timerFired(.l)):
            state = .terminated
            return [.cancelTimer(.answerRetransmit), .terminated(acknowledged ? .completed : .noAckForAnswer)]
        case (.completed, .inviteRetransmitted):
            return lastResponse.map { [.send($0)] } ?? []
        case (.completed, .timerFired(.g)):
            guard let lastResponse else { return [] }
            retransmitInterval = min(retransmitInterval * 2, timers.t2)
            return [.send(lastResponse), .startTimer(.g, after: retransmitInterval)]
        case (.completed, .timerFired(.h)):
            state = .terminated
            return [.cancelTimer(.g), .terminated(.noAckForFailure)]
        case (.completed, .ack):
            state = .confirmed
            let wait: Duration = isReliable ? .zero : timers.t4
            return [.cancelTimer(.g), .cancelTimer(.h), .startTimer(.i, after: wait)]
        case (.confirmed, .ack), (.confirmed, .inviteRetransmitted):
            return []
        case (.confirmed, .timerFired(.i)):
            state = .terminated
            return [.terminated(.completed)]
        case (.terminated, _):
            return []
        case (_, .transportError):
            state = .terminated
            return [.cancelTimer(.g), .cancelTimer(.h), .cancelTimer(.answerRetransmit), .terminated(.transportError)]
        case (_, .timerFired):
            return []  // a timer cancelled too late: harmless
        case (.proceeding, .ack):
            return []  // an ACK before any final answer matches nothing (§17.2.3); dropped
        case (_, .respond):
            preconditionFailure("the call layer answered an INVITE transaction in state \(state)")
        }
    }
}

/// RFC 3261 §17.2.2.
public struct NonInviteServerTransaction: Sendable {
    public enum State: Sendable, Hashable { case trying, proceeding, completed, terminated }

    public enum Event: Sendable, Hashable {
        case requestRetransmitted
        case respond(SIPMessage)
        case timerFired(SIPTransactionTimer)
        case transportError
    }

    public private(set) var state = State.trying
    public let isReliable: Bool
    public let timers: SIPTimerValues
    private var lastResponse: SIPMessage?

    public init(isReliable: Bool, timers: SIPTimerValues = SIPTimerValues()) {
        self.isReliable = isReliable
        self.timers = timers
    }

    public mutating func handle(_ event: Event) -> [TransactionAction] {
        switch (state, event) {
        case (.trying, .requestRetransmitted):
            return []
        case (.trying, .respond(let response)), (.proceeding, .respond(let response)):
            lastResponse = response
            if (response.status ?? 0) < 200 {
                state = .proceeding
                return [.send(response)]
            }
            state = .completed
            return [.send(response), .startTimer(.j, after: isReliable ? .zero : timers.t1 * 64)]
        case (.proceeding, .requestRetransmitted), (.completed, .requestRetransmitted):
            return lastResponse.map { [.send($0)] } ?? []
        case (.completed, .timerFired(.j)):
            state = .terminated
            return [.terminated(.completed)]
        case (.terminated, _), (_, .timerFired):
            return []
        case (_, .transportError):
            state = .terminated
            return [.cancelTimer(.j), .terminated(.transportError)]
        case (.completed, .respond):
            preconditionFailure("the call layer answered a completed transaction twice")
        }
    }
}

/// What identifies a server transaction (§17.2.3): the top Via's branch and sent-by, and the
/// method, with ACK matching its INVITE. CANCEL has its own transaction with the INVITE's branch.
public struct ServerTransactionKey: Sendable, Hashable {
    public var branch: String
    public var sentBy: String
    public var method: SIPMethod

    public init?(request: SIPMessage) {
        guard let method = request.method, let top = request.values("Via").first, let via = try? SIPVia(parsing: top),
            let branch = via.branch, branch.hasPrefix(SIPVia.magicCookie)
        else { return nil }
        self.branch = branch
        self.sentBy = via.sentBy.lowercased()
        self.method = method == .ack ? .invite : method
    }

    /// The INVITE transaction a CANCEL targets (§9.2).
    public var cancelled: ServerTransactionKey {
        var key = self
        key.method = .invite
        return key
    }
}

/// Deadlines for transaction timers, against whatever clock the caller reads: the server uses
/// `ContinuousClock.now`, tests a fixed start plus offsets.
public struct TransactionTimers<Key: Hashable & Sendable>: Sendable {
    private var deadlines: [TimerID: ContinuousClock.Instant] = [:]

    private struct TimerID: Hashable, Sendable {
        var key: Key
        var timer: SIPTransactionTimer
    }

    public init() {}

    /// Applies the timer actions among `actions` for `key`, relative to `now`.
    public mutating func apply(_ actions: [TransactionAction], for key: Key, now: ContinuousClock.Instant) {
        for action in actions {
            switch action {
            case .startTimer(let timer, let delay): deadlines[TimerID(key: key, timer: timer)] = now + delay
            case .cancelTimer(let timer): deadlines[TimerID(key: key, timer: timer)] = nil
            case .terminated: deadlines = deadlines.filter { $0.key.key != key }
            case .send, .passToCallLayer: break
            }
        }
    }

    /// Timers due at `now`, earliest first, removed from the schedule.
    public mutating func due(at now: ContinuousClock.Instant) -> [(key: Key, timer: SIPTransactionTimer)] {
        let fired = deadlines.filter { $0.value <= now }.sorted { $0.value < $1.value }
        for entry in fired { deadlines[entry.key] = nil }
        return fired.map { ($0.key.key, $0.key.timer) }
    }

    public var nextDeadline: ContinuousClock.Instant? { deadlines.values.min() }
    public var count: Int { deadlines.count }
}
