import FoundationEssentials

/// Messages of the control protocol (`wss://<fqdn>/v1/session`, docs/control-protocol.md): one
/// JSON object per WebSocket text frame, with the protocol version `v` and a `type`.
public enum ControlMessage: Equatable, Sendable {
    // Client → server
    case hello(Hello)
    case join(Join)
    case leave
    case heartbeat(sequence: UInt32)
    // Server → client
    case welcome(Welcome)
    case joined(Joined)
    case participantJoined(Participant)
    case participantLeft(leg: UInt32)
    case meetingEdited(MeetingState)
    case meetingEnded(reason: String)
    case kicked(reason: String)
    case heartbeatAck(sequence: UInt32)
    case error(ControlError)

    public static let version = 1
    /// Larger frames are refused before they are parsed.
    public static let maximumSize = 16 * 1024

    public struct Hello: Codable, Equatable, Sendable {
        public var clientName: String
        public var clientVersion: String
        public var os: String
        /// Transports the client can use, most preferred first: "udp", "tcp".
        public var transports: [String]

        public init(clientName: String, clientVersion: String, os: String, transports: [String]) {
            self.clientName = clientName
            self.clientVersion = clientVersion
            self.os = os
            self.transports = transports
        }
    }

    /// Exactly one of `nickname` (guest), `email` + `password` (registered user) or `token`
    /// (single sign-on, signed by the management server).
    public struct Join: Codable, Equatable, Sendable {
        public var meeting: String
        public var passcode: String?
        public var nickname: String?
        public var email: String?
        public var password: String?
        public var token: String?
        /// What the client reports of its network, for monitoring (privacy mode applies).
        public var mac: String?
        /// RTP payload types the client sends as audio and as video (the relay marks DSCP by
        /// them: EF for audio, AF41 for video); defaults apply when absent.
        public var audioPayloadTypes: [UInt8]?
        public var videoPayloadTypes: [UInt8]?

        public init(
            meeting: String, passcode: String? = nil, nickname: String? = nil, email: String? = nil, password: String? = nil,
            token: String? = nil, mac: String? = nil, audioPayloadTypes: [UInt8]? = nil, videoPayloadTypes: [UInt8]? = nil
        ) {
            self.meeting = meeting
            self.passcode = passcode
            self.nickname = nickname
            self.email = email
            self.password = password
            self.token = token
            self.mac = mac
            self.audioPayloadTypes = audioPayloadTypes
            self.videoPayloadTypes = videoPayloadTypes
        }
    }

    public struct Welcome: Codable, Equatable, Sendable {
        public var serverVersion: String
        public var heartbeatSeconds: Int
        public var securityMode: String

        public init(serverVersion: String, heartbeatSeconds: Int, securityMode: String) {
            self.serverVersion = serverVersion
            self.heartbeatSeconds = heartbeatSeconds
            self.securityMode = securityMode
        }
    }

    public struct Participant: Codable, Equatable, Sendable {
        public var leg: UInt32
        public var name: String

        public init(leg: UInt32, name: String) {
            self.leg = leg
            self.name = name
        }
    }

    /// The media leg: the keys are not here; both ends derive them with the TLS exporter.
    public struct Joined: Codable, Equatable, Sendable {
        public var leg: UInt32
        /// 16 hex digits: the leg token every CMF frame of the leg carries.
        public var legToken: String
        public var relayHost: String
        public var udpPort: UInt16
        /// 0 when the appliance offers no TCP fallback.
        public var tcpPort: UInt16
        /// "AEAD_AES_128_GCM", "AES_CM_128_HMAC_SHA1_80" or "encapsulated".
        public var profile: String
        public var participants: [Participant]

        public init(
            leg: UInt32, legToken: String, relayHost: String, udpPort: UInt16, tcpPort: UInt16, profile: String,
            participants: [Participant]
        ) {
            self.leg = leg
            self.legToken = legToken
            self.relayHost = relayHost
            self.udpPort = udpPort
            self.tcpPort = tcpPort
            self.profile = profile
            self.participants = participants
        }
    }

    public struct MeetingState: Codable, Equatable, Sendable {
        public var name: String
        public var locked: Bool
        public var limit: Int

        public init(name: String, locked: Bool, limit: Int) {
            self.name = name
            self.locked = locked
            self.limit = limit
        }
    }

    public struct ControlError: Codable, Equatable, Sendable {
        /// A stable code from docs/control-protocol.md, e.g. "meeting-locked".
        public var code: String
        public var message: String

        public init(code: String, message: String) {
            self.code = code
            self.message = message
        }
    }

    // MARK: Coding

    private enum Key: String, CodingKey {
        case v, type, sequence, reason, leg
    }

    private var typeName: String {
        switch self {
        case .hello: "hello"
        case .join: "join"
        case .leave: "leave"
        case .heartbeat: "heartbeat"
        case .welcome: "welcome"
        case .joined: "joined"
        case .participantJoined: "participant-joined"
        case .participantLeft: "participant-left"
        case .meetingEdited: "meeting-edited"
        case .meetingEnded: "meeting-ended"
        case .kicked: "kicked"
        case .heartbeatAck: "heartbeat-ack"
        case .error: "error"
        }
    }

    /// The JSON text of one frame.
    public func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // Every payload is plain strings and numbers: encoding cannot fail.
        return Array(try! encoder.encode(Envelope(self)))
    }

    /// Parses one frame; refuses oversized input, another version, an unknown type, a missing
    /// or mistyped field, and a join that does not name exactly one way to authenticate.
    public init(decoding bytes: [UInt8]) throws(WireError) {
        guard bytes.count <= Self.maximumSize else { throw .oversized(limit: Self.maximumSize, got: bytes.count) }
        do {
            self = try JSONDecoder().decode(Envelope.self, from: Data(bytes)).message
        } catch let error as WireError {
            throw error
        } catch {
            throw .malformed("not a control message: \(Self.reason(error))")
        }
    }

    private static func reason(_ error: Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, _): "missing field '\(key.stringValue)'"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            "field '\(context.codingPath.map(\.stringValue).joined(separator: "."))' has the wrong type"
        case DecodingError.dataCorrupted: "invalid JSON"
        default: "\(error)"
        }
    }

    /// The object on the wire: the message's own fields plus `v` and `type`.
    private struct Envelope: Codable {
        let message: ControlMessage

        init(_ message: ControlMessage) { self.message = message }

        init(from decoder: Decoder) throws {
            let container = try decoder.container(keyedBy: Key.self)
            let version = try container.decode(Int.self, forKey: .v)
            guard version == ControlMessage.version else { throw WireError.badVersion(UInt8(clamping: version)) }
            let type = try container.decode(String.self, forKey: .type)
            switch type {
            case "hello": message = .hello(try Hello(from: decoder))
            case "join":
                let join = try Join(from: decoder)
                let ways = [join.nickname != nil, join.email != nil || join.password != nil, join.token != nil].filter { $0 }.count
                guard ways == 1, (join.email == nil) == (join.password == nil) else {
                    throw WireError.malformed("a join names exactly one of nickname, email and password, or token")
                }
                message = .join(join)
            case "leave": message = .leave
            case "heartbeat": message = .heartbeat(sequence: try container.decode(UInt32.self, forKey: .sequence))
            case "welcome": message = .welcome(try Welcome(from: decoder))
            case "joined": message = .joined(try Joined(from: decoder))
            case "participant-joined": message = .participantJoined(try Participant(from: decoder))
            case "participant-left": message = .participantLeft(leg: try container.decode(UInt32.self, forKey: .leg))
            case "meeting-edited": message = .meetingEdited(try MeetingState(from: decoder))
            case "meeting-ended": message = .meetingEnded(reason: try container.decode(String.self, forKey: .reason))
            case "kicked": message = .kicked(reason: try container.decode(String.self, forKey: .reason))
            case "heartbeat-ack": message = .heartbeatAck(sequence: try container.decode(UInt32.self, forKey: .sequence))
            case "error": message = .error(try ControlError(from: decoder))
            default: throw WireError.malformed("unknown message type '\(type)'")
            }
        }

        func encode(to encoder: Encoder) throws {
            var container = encoder.container(keyedBy: Key.self)
            try container.encode(ControlMessage.version, forKey: .v)
            try container.encode(message.typeName, forKey: .type)
            switch message {
            case .hello(let hello): try hello.encode(to: encoder)
            case .join(let join): try join.encode(to: encoder)
            case .leave: break
            case .heartbeat(let sequence), .heartbeatAck(let sequence): try container.encode(sequence, forKey: .sequence)
            case .welcome(let welcome): try welcome.encode(to: encoder)
            case .joined(let joined): try joined.encode(to: encoder)
            case .participantJoined(let participant): try participant.encode(to: encoder)
            case .participantLeft(let leg): try container.encode(leg, forKey: .leg)
            case .meetingEdited(let state): try state.encode(to: encoder)
            case .meetingEnded(let reason), .kicked(let reason): try container.encode(reason, forKey: .reason)
            case .error(let error): try error.encode(to: encoder)
            }
        }
    }
}

extension ControlMessage: CustomStringConvertible {
    /// Never shows a password or a token: control messages are logged.
    public var description: String {
        switch self {
        case .join(let join):
            let how = join.nickname.map { "guest \($0)" } ?? join.email.map { "user \($0)" } ?? "token"
            return "join(meeting \(join.meeting), \(how))"
        case .joined(let joined): return "joined(leg \(joined.leg), \(joined.profile), \(joined.participants.count) others)"
        default: return typeName
        }
    }
}
