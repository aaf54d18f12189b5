import ConclaveCrypto
import ConclaveIdentity
import ConclavePKI
import ConclaveRelay
import ConclaveSystem
import ConclaveWire
import FoundationEssentials
import Logging
import NIOCore
import NIOPosix
import SystemPackage

/// Where the relay worker listens, as the supervisor bound it.
public struct MediaPorts: Sendable, Equatable {
    /// Relay thread i serves UDP port `udpPort + i`.
    public var udpPort: UInt16
    /// 0: no TCP fallback.
    public var tcpPort: UInt16
    public var threads: Int

    public init(udpPort: UInt16, tcpPort: UInt16, threads: Int) {
        self.udpPort = udpPort
        self.tcpPort = tcpPort
        self.threads = max(1, threads)
    }

    /// The relay UDP port that serves a meeting (meetings are sharded over relay threads).
    public func udpPort(forMeeting number: UInt32) -> UInt16 { udpPort + UInt16(number % UInt32(threads)) }
}

/// What the control plane takes from the configuration; replaced as a whole on reload.
public struct ControlSettings: Sendable, Equatable {
    public var securityMode: SecurityMode
    public var fqdn: String?
    public var media: MediaPorts
    /// How often clients send `heartbeat`; three missed intervals end the session.
    public var heartbeatSeconds: Int

    public init(securityMode: SecurityMode, fqdn: String?, media: MediaPorts, heartbeatSeconds: Int = 3) {
        self.securityMode = securityMode
        self.fqdn = fqdn
        self.media = media
        self.heartbeatSeconds = heartbeatSeconds
    }

    public init(configuration: DaemonConfiguration, media: MediaPorts) {
        self.init(securityMode: SecurityMode(rawValue: configuration.securityMode) ?? .secured, fqdn: configuration.fqdn, media: media)
    }
}

/// The control worker's state, confined to its one event loop: meetings, the relay link, the
/// settings, the identity store and the certificate the control server presents. Sessions,
/// the admin requests, the command API and monitoring all act through it.
public final class ControlPlane {
    public let eventLoop: EventLoop
    public let relay: RelayLink
    public private(set) lazy var registry = MeetingRegistry(relay: relay, clock: { Date().timeIntervalSince1970 })
    public private(set) var settings: ControlSettings
    /// nil when the store could not be opened: guests still join, registered users are refused.
    public let identity: IdentityStore?
    /// The server's TLS context; nil until a certificate is active.
    public internal(set) var tlsContext: TLSContext?
    /// The management server's join-token verification key (PEM), if one is configured.
    public internal(set) var ssoKeyPEM: [UInt8]?
    /// The command API's TLS context, pins, rate limits and supervisor requests (docs/api.md).
    public let api = CommandAPIState()
    var throttle = LoginThrottle()
    let log: Logger
    /// Password checks (scrypt) run here, off the event loop.
    let blockingPool: NIOThreadPool
    /// What `welcome` reports.
    public let serverVersion: String
    /// Privacy mode, join latency, relay process and certificate figures, the ApMon sender (docs/monitoring.md).
    public let monitoring = MonitoringState()

    public init(
        eventLoop: EventLoop, relay: RelayLink, settings: ControlSettings, identity: IdentityStore?, blockingPool: NIOThreadPool,
        serverVersion: String, log: Logger
    ) {
        self.eventLoop = eventLoop
        self.serverVersion = serverVersion
        self.relay = relay
        self.settings = settings
        self.identity = identity
        self.blockingPool = blockingPool
        self.log = log
    }

    /// New settings from a reload; a security mode change is audited and applies to new legs at once.
    public func apply(_ new: ControlSettings) {
        if new.securityMode != settings.securityMode {
            log.notice("security mode \(settings.securityMode.rawValue) → \(new.securityMode.rawValue)")
            audit(actor: "control", action: "security-mode", detail: "\(settings.securityMode.rawValue) → \(new.securityMode.rawValue)")
        }
        settings = new
    }

    /// A new certificate (PEM chain and key, from the supervisor) for new connections;
    /// connections already open keep theirs. A bad one is reported and the previous one kept.
    public func loadCredentials(chain: [UInt8], key: [UInt8], ssoKey: [UInt8]) {
        ssoKeyPEM = ssoKey.isEmpty ? nil : ssoKey
        guard !chain.isEmpty else {
            log.warning("no active certificate: the control server refuses connections until one is activated")
            return
        }
        do {
            let certificates = try X509Certificate.certificates(pemEncoded: chain)
            guard !certificates.isEmpty else { throw ControlRefusal.invalidSettings(field: "certificate", "no certificate in the chain") }
            let privateKey = try PrivateKey(encoded: key)
            tlsContext = try TLSContext(configuration: .server(
                certificateChain: certificates, privateKey: privateKey, applicationProtocols: ["http/1.1"]))
            api.serverCredentials(chain: certificates, key: privateKey, log: log)
            monitoring.certificateNotAfter = certificates[0].notValidAfter
            log.info("control server certificate: \(certificates[0].subject)")
        } catch {
            log.error("certificate not loaded, keeping the previous one: \(error)")
        }
    }

    func audit(actor: String, action: String, detail: String, subject: String? = nil) {
        guard let identity else { return }
        do { try identity.audit(actor: actor, action: action, detail: detail, subject: subject) } catch {
            log.error("audit log: \(error)")
        }
    }

    // MARK: Meetings, as the admin socket and the command API ask for them

    public struct MeetingSummary: Codable, Equatable, Sendable {
        public struct Participant: Codable, Equatable, Sendable {
            public var leg: UInt32
            public var name: String
            public var kind: String
            public var os: String
            public var clientVersion: String
            public var profile: String
            public var joinedAt: Double
        }

        public var id: String
        public var name: String
        public var mode: MediaMode
        public var limit: Int
        public var locked: Bool
        public var guestsAllowed: Bool
        public var hasPasscode: Bool
        public var startedAt: Double
        public var participants: [Participant]

        init(_ meeting: MeetingRegistry.Meeting) {
            id = meeting.id
            name = meeting.settings.name
            mode = meeting.settings.mode
            limit = meeting.settings.limit
            locked = meeting.settings.locked
            guestsAllowed = meeting.settings.guestsAllowed
            hasPasscode = meeting.settings.passcode != nil
            startedAt = meeting.startedAt
            participants = meeting.participants.values.map(\.info).sorted { $0.leg < $1.leg }.map {
                .init(leg: $0.leg, name: $0.name, kind: $0.kind.rawValue, os: $0.os, clientVersion: $0.clientVersion, profile: $0.profile, joinedAt: $0.joinedAt)
            }
        }
    }

    public func startMeeting(id: String, settings meetingSettings: MeetingSettings, actor: String) throws(ControlRefusal) -> (MeetingSummary, created: Bool) {
        switch try registry.start(id: id, settings: meetingSettings, securityMode: settings.securityMode) {
        case .started(let meeting):
            audit(actor: actor, action: "meeting-start", detail: "\(id) (\(meetingSettings.mode.rawValue), limit \(meetingSettings.limit))")
            return (MeetingSummary(meeting), true)
        case .alreadyRunning(let meeting):
            return (MeetingSummary(meeting), false)
        }
    }

    public func editMeeting(id: String, _ edit: MeetingSettings.Edit, actor: String) throws(ControlRefusal) -> MeetingSummary {
        let meeting = try registry.edit(id: id, edit, securityMode: settings.securityMode)
        let changed = [
            edit.name.map { _ in "name" }, edit.passcode.map { _ in "passcode" }, edit.clearPasscode.map { _ in "passcode" },
            edit.mode.map { "mode=\($0.rawValue)" }, edit.limit.map { "limit=\($0)" }, edit.locked.map { "locked=\($0)" },
            edit.guestsAllowed.map { "guestsAllowed=\($0)" },
        ].compactMap { $0 }
        audit(actor: actor, action: "meeting-edit", detail: "\(id): \(changed.joined(separator: ", "))")
        return MeetingSummary(meeting)
    }

    public func stopMeeting(id: String, actor: String) throws(ControlRefusal) -> MeetingSummary {
        let meeting = try registry.stop(id: id, reason: "stopped by the operator")
        audit(actor: actor, action: "meeting-stop", detail: id)
        return MeetingSummary(meeting)
    }

    public func kick(meeting id: String, leg: UInt32, actor: String) throws(ControlRefusal) {
        let info = try registry.kick(meeting: id, leg: leg, reason: "removed by the operator")
        audit(actor: actor, action: "participant-kick", detail: "\(id): leg \(leg)", subject: info.email)
    }

    public func meetingSummaries() -> [MeetingSummary] {
        registry.meetings.values.map(MeetingSummary.init).sorted { $0.id < $1.id }
    }

    public var statusJSON: String {
        let error = relay.lastError.map { ",\"lastError\":\(JSONText.quoted($0))" } ?? ""
        return "{\"legs\":\(relay.legCount),\"meetings\":\(relay.meetingCount),\"participants\":\(registry.participantCount),"
            + "\"securityMode\":\"\(settings.securityMode.rawValue)\",\"serving\":\(tlsContext != nil),\"relayConnected\":\(relay.isConnected)\(error)}"
    }
}

enum JSONText {
    static func quoted(_ text: String) -> String {
        (try? String(decoding: JSONEncoder().encode(text), as: UTF8.self)) ?? "\"\""
    }

    static func encode<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? String(decoding: encoder.encode(value), as: UTF8.self)) ?? "null"
    }
}
