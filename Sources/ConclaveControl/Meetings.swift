import ConclaveRelay
import ConclaveWire

/// Why the control plane refuses a request. Each case has the stable code documented in
/// docs/control-protocol.md; the command API and the admin socket use the same codes.
public enum ControlRefusal: Error, Equatable, Sendable, CustomStringConvertible {
    case badMessage(String)
    case notHello
    case alreadyJoined
    case unknownMeeting(String)
    case meetingEnded(String)
    case meetingLocked(String)
    case meetingFull(String, limit: Int)
    case wrongPasscode
    case badCredentials
    case tokenInvalid(String)
    case rateLimited(retryAfterSeconds: Int)
    case guestsNotAllowed
    case refusedBySecurityMode(String)
    case meetingExists(String)
    case invalidSettings(field: String, String)
    case serviceUnavailable(String)

    public var code: String {
        switch self {
        case .badMessage: "bad-message"
        case .notHello: "not-hello"
        case .alreadyJoined: "already-joined"
        case .unknownMeeting: "unknown-meeting"
        case .meetingEnded: "meeting-ended"
        case .meetingLocked: "meeting-locked"
        case .meetingFull: "meeting-full"
        case .wrongPasscode: "wrong-passcode"
        case .badCredentials: "bad-credentials"
        case .tokenInvalid: "token-invalid"
        case .rateLimited: "rate-limited"
        case .guestsNotAllowed: "guests-not-allowed"
        case .refusedBySecurityMode: "refused-by-security-mode"
        case .meetingExists: "meeting-exists"
        case .invalidSettings: "invalid-settings"
        case .serviceUnavailable: "service-unavailable"
        }
    }

    public var description: String {
        switch self {
        case .badMessage(let reason): "not a valid control message: \(reason)"
        case .notHello: "the first message must be hello"
        case .alreadyJoined: "this connection has already joined a meeting"
        case .unknownMeeting(let id): "no meeting '\(id)' is running"
        case .meetingEnded(let id): "meeting '\(id)' has ended"
        case .meetingLocked(let id): "meeting '\(id)' is locked"
        case .meetingFull(let id, let limit): "meeting '\(id)' is full (\(limit) participants)"
        case .wrongPasscode: "wrong passcode"
        case .badCredentials: "unknown email or wrong password"
        case .tokenInvalid(let reason): "join token refused: \(reason)"
        case .rateLimited(let seconds): "too many failed attempts; retry in \(seconds) s"
        case .guestsNotAllowed: "this meeting takes registered users only"
        case .refusedBySecurityMode(let reason): "refused by the system security mode: \(reason)"
        case .meetingExists(let id): "meeting '\(id)' is already running with other settings"
        case .invalidSettings(let field, let reason): "\(field): \(reason)"
        case .serviceUnavailable(let reason): "temporarily unavailable: \(reason)"
        }
    }

    public var message: ControlMessage { .error(.init(code: code, message: description)) }
}

/// What a meeting is started with; every field is checked by `validate`.
public struct MeetingSettings: Codable, Equatable, Sendable {
    public var name: String
    public var passcode: String?
    public var mode: MediaMode
    public var limit: Int
    public var locked: Bool
    public var guestsAllowed: Bool

    public static let maximumLimit = 1000

    public init(name: String, passcode: String? = nil, mode: MediaMode = .srtp, limit: Int = 100, locked: Bool = false, guestsAllowed: Bool = true) {
        self.name = name
        self.passcode = passcode
        self.mode = mode
        self.limit = limit
        self.locked = locked
        self.guestsAllowed = guestsAllowed
    }

    /// A change to a running meeting: only the fields given change.
    public struct Edit: Codable, Equatable, Sendable {
        public var name: String?
        public var passcode: String?
        /// True removes the passcode (JSON has no way to say "set to null" through an optional).
        public var clearPasscode: Bool?
        public var mode: MediaMode?
        public var limit: Int?
        public var locked: Bool?
        public var guestsAllowed: Bool?

        public init(
            name: String? = nil, passcode: String? = nil, clearPasscode: Bool? = nil, mode: MediaMode? = nil, limit: Int? = nil,
            locked: Bool? = nil, guestsAllowed: Bool? = nil
        ) {
            self.name = name
            self.passcode = passcode
            self.clearPasscode = clearPasscode
            self.mode = mode
            self.limit = limit
            self.locked = locked
            self.guestsAllowed = guestsAllowed
        }
    }

    public func applying(_ edit: Edit) -> MeetingSettings {
        var result = self
        if let name = edit.name { result.name = name }
        if edit.clearPasscode == true { result.passcode = nil }
        if let passcode = edit.passcode { result.passcode = passcode }
        if let mode = edit.mode { result.mode = mode }
        if let limit = edit.limit { result.limit = limit }
        if let locked = edit.locked { result.locked = locked }
        if let guestsAllowed = edit.guestsAllowed { result.guestsAllowed = guestsAllowed }
        return result
    }

    public func validate(securityMode: SecurityMode) throws(ControlRefusal) {
        guard (1...128).contains(name.utf8.count), !name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw .invalidSettings(field: "name", "1 to 128 bytes, no control characters")
        }
        if let passcode, !(4...64).contains(passcode.utf8.count) {
            throw .invalidSettings(field: "passcode", "4 to 64 bytes")
        }
        guard (2...Self.maximumLimit).contains(limit) else {
            throw .invalidSettings(field: "limit", "2 to \(Self.maximumLimit) participants")
        }
        if securityMode == .secured, mode != .srtp {
            throw .refusedBySecurityMode("the system is secured: meetings must use srtp media")
        }
    }

    /// Meeting ids name meetings in URLs, SIP URIs and logs: 1–64 of [A-Za-z0-9._-].
    public static func validate(id: String) throws(ControlRefusal) {
        guard (1...64).contains(id.utf8.count),
            id.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) || $0 == 0x2E || $0 == 0x5F || $0 == 0x2D })
        else { throw .invalidSettings(field: "id", "1 to 64 characters of A-Z a-z 0-9 . _ -") }
    }
}

/// Who a participant is, as the control plane knows them. The personal fields (nickname,
/// address, MAC, email) leave the box only as the privacy mode allows (Step 7).
public struct ParticipantInfo: Sendable, Equatable {
    public enum Kind: String, Sendable { case guest, user }

    public var leg: UInt32
    public var name: String
    public var kind: Kind
    public var email: String?
    public var address: String
    public var mac: String?
    public var clientName: String
    public var clientVersion: String
    public var os: String
    public var transports: [String]
    public var profile: String
    public var joinedAt: Double

    public init(
        leg: UInt32, name: String, kind: Kind, email: String?, address: String, mac: String?, clientName: String,
        clientVersion: String, os: String, transports: [String], profile: String, joinedAt: Double
    ) {
        self.leg = leg
        self.name = name
        self.kind = kind
        self.email = email
        self.address = address
        self.mac = mac
        self.clientName = clientName
        self.clientVersion = clientVersion
        self.os = os
        self.transports = transports
        self.profile = profile
        self.joinedAt = joinedAt
    }
}

/// Where a participant's events go (its control session), and how it is told to leave.
public protocol ParticipantChannel: AnyObject {
    func deliver(_ message: ControlMessage)
    /// The participant was removed by the server (meeting ended, kicked): send `message` and
    /// close the session. Its leg is already gone from the relay.
    func end(with message: ControlMessage)
}

/// The running meetings and their participants. Confined to the control worker's event loop;
/// every change to the relay goes through `RelayLink`, so what the relay holds follows this.
public final class MeetingRegistry {
    public final class Meeting {
        public let id: String
        /// The meeting's number on the relay (the relay IPC and CMF use 32-bit ids).
        public let number: UInt32
        public internal(set) var settings: MeetingSettings
        public let startedAt: Double
        public internal(set) var participants: [UInt32: (info: ParticipantInfo, channel: ParticipantChannel)] = [:]

        init(id: String, number: UInt32, settings: MeetingSettings, startedAt: Double) {
            self.id = id
            self.number = number
            self.settings = settings
            self.startedAt = startedAt
        }

        public var others: [ControlMessage.Participant] {
            participants.values.map { .init(leg: $0.info.leg, name: $0.info.name) }.sorted { $0.leg < $1.leg }
        }

        var state: ControlMessage.MeetingState { .init(name: settings.name, locked: settings.locked, limit: settings.limit) }
    }

    public private(set) var meetings: [String: Meeting] = [:]
    private var legMeeting: [UInt32: String] = [:]
    /// Recently stopped meetings, so a late joiner hears "ended" rather than "unknown".
    private var ended: [String] = []
    private static let endedMemory = 1000
    private let relay: RelayLink
    private let clock: () -> Double
    /// Called after a meeting starts or stops and a participant joins or leaves (monitoring reports it).
    public var onChange: (() -> Void)?

    public init(relay: RelayLink, clock: @escaping () -> Double) {
        self.relay = relay
        self.clock = clock
    }

    public var participantCount: Int { legMeeting.count }

    public func meeting(_ id: String) -> Meeting? { meetings[id] }

    public func meeting(ofLeg leg: UInt32) -> Meeting? { legMeeting[leg].flatMap { meetings[$0] } }

    public enum StartOutcome { case started(Meeting), alreadyRunning(Meeting) }

    /// Starts a meeting. Starting one that runs with the same settings is not an error (the
    /// command API's `POST` is idempotent); with other settings it is.
    @discardableResult
    public func start(id: String, settings: MeetingSettings, securityMode: SecurityMode) throws(ControlRefusal) -> StartOutcome {
        try MeetingSettings.validate(id: id)
        try settings.validate(securityMode: securityMode)
        if let running = meetings[id] {
            guard running.settings == settings else { throw .meetingExists(id) }
            return .alreadyRunning(running)
        }
        var number: UInt32
        repeat { number = UInt32.random(in: 1...UInt32.max) } while relay.meetingNumberInUse(number)
        do { try relay.startMeeting(number, mode: settings.mode) } catch { throw .serviceUnavailable("\(error)") }
        let meeting = Meeting(id: id, number: number, settings: settings, startedAt: clock())
        meetings[id] = meeting
        ended.removeAll { $0 == id }
        onChange?()
        return .started(meeting)
    }

    /// Changes a running meeting's settings; its participants hear `meeting-edited`. A mode
    /// change applies to legs that join afterwards (the relay re-keys nothing in flight).
    public func edit(id: String, _ edit: MeetingSettings.Edit, securityMode: SecurityMode) throws(ControlRefusal) -> Meeting {
        guard let meeting = meetings[id] else { throw .unknownMeeting(id) }
        let updated = meeting.settings.applying(edit)
        try updated.validate(securityMode: securityMode)
        guard updated.limit >= meeting.participants.count else {
            throw .invalidSettings(field: "limit", "\(meeting.participants.count) participants are already in the meeting")
        }
        if updated.mode != meeting.settings.mode {
            guard meeting.participants.isEmpty else {
                throw .invalidSettings(field: "mode", "the media mode changes only while the meeting is empty")
            }
            do { try relay.editMeeting(meeting.number, mode: updated.mode) } catch { throw .serviceUnavailable("\(error)") }
        }
        meeting.settings = updated
        for participant in meeting.participants.values { participant.channel.deliver(.meetingEdited(meeting.state)) }
        return meeting
    }

    /// Stops a meeting: every participant hears `meeting-ended` and its leg leaves the relay.
    @discardableResult
    public func stop(id: String, reason: String) throws(ControlRefusal) -> Meeting {
        guard let meeting = meetings.removeValue(forKey: id) else { throw .unknownMeeting(id) }
        for (leg, participant) in meeting.participants {
            legMeeting[leg] = nil
            relay.removeLeg(leg)
            participant.channel.end(with: .meetingEnded(reason: reason))
        }
        meeting.participants = [:]
        relay.stopMeeting(meeting.number)
        ended.append(id)
        if ended.count > Self.endedMemory { ended.removeFirst(ended.count - Self.endedMemory) }
        onChange?()
        return meeting
    }

    /// The checks a join passes before anyone is authenticated against the store.
    public func admissible(meeting id: String, passcode: String?, asGuest: Bool, securityMode: SecurityMode) throws(ControlRefusal) -> Meeting {
        guard let meeting = meetings[id] else {
            throw ended.contains(id) ? .meetingEnded(id) : .unknownMeeting(id)
        }
        if securityMode == .secured, meeting.settings.mode != .srtp {
            throw .refusedBySecurityMode("the system is secured and meeting '\(id)' does not use srtp media")
        }
        guard !meeting.settings.locked else { throw .meetingLocked(id) }
        guard meeting.participants.count < meeting.settings.limit else { throw .meetingFull(id, limit: meeting.settings.limit) }
        if let expected = meeting.settings.passcode {
            guard let passcode, Self.constantTimeEqual(Array(passcode.utf8), Array(expected.utf8)) else { throw .wrongPasscode }
        }
        if asGuest, !meeting.settings.guestsAllowed { throw .guestsNotAllowed }
        return meeting
    }

    /// A fresh leg id and token, unused by any leg the relay holds.
    public func allocateLeg() -> (leg: UInt32, token: UInt64) {
        var leg: UInt32
        repeat { leg = UInt32.random(in: 1...UInt32.max) } while relay.legInUse(leg)
        return (leg, UInt64.random(in: 1...UInt64.max))
    }

    /// Adds an authenticated participant: re-checks admission (the meeting may have changed
    /// while the password was checked), installs the leg on the relay, tells the others.
    public func join(
        meeting id: String, passcode: String?, asGuest: Bool, securityMode: SecurityMode, leg: LegDescription, info: ParticipantInfo,
        channel: ParticipantChannel
    ) throws(ControlRefusal) -> Meeting {
        let meeting = try admissible(meeting: id, passcode: passcode, asGuest: asGuest, securityMode: securityMode)
        precondition(leg.meeting == meeting.number && leg.protection.mode == meeting.settings.mode, "a leg built for another meeting")
        do { try relay.addLeg(leg) } catch { throw .serviceUnavailable("\(error)") }
        for participant in meeting.participants.values { participant.channel.deliver(.participantJoined(.init(leg: info.leg, name: info.name))) }
        meeting.participants[info.leg] = (info, channel)
        legMeeting[info.leg] = id
        onChange?()
        return meeting
    }

    /// Removes a participant who left or whose session died; the others hear `participant-left`.
    public func leave(leg: UInt32) {
        guard let id = legMeeting.removeValue(forKey: leg), let meeting = meetings[id] else { return }
        meeting.participants[leg] = nil
        relay.removeLeg(leg)
        for participant in meeting.participants.values { participant.channel.deliver(.participantLeft(leg: leg)) }
        onChange?()
    }

    /// Removes one participant on the operator's request: it hears `kicked`, the others `participant-left`.
    public func kick(meeting id: String, leg: UInt32, reason: String) throws(ControlRefusal) -> ParticipantInfo {
        guard let meeting = meetings[id] else { throw .unknownMeeting(id) }
        guard let participant = meeting.participants[leg] else { throw .invalidSettings(field: "leg", "no participant \(leg) in meeting '\(id)'") }
        leave(leg: leg)
        participant.channel.end(with: .kicked(reason: reason))
        return participant.info
    }

    private static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}
