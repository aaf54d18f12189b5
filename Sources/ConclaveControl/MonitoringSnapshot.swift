import ConclaveSystem
import ConclaveWire
import FoundationEssentials
import Glibc

/// One set of figures, taken on the control plane's event loop, from which both the ApMon
/// reports and the Prometheus exposition are made (docs/monitoring.md).
public struct MonitoringSnapshot: Sendable {
    public struct Relay: Sendable, Equatable {
        public var connected = false
        public var legs = 0
        public var participants = 0
        /// Legs that have sent audio (video) since they joined.
        public var audioChannels = 0
        public var videoChannels = 0
        public var meetings = 0
        public var packetsIn: UInt64 = 0
        public var packetsOut: UInt64 = 0
        public var bytesIn: UInt64 = 0
        public var bytesOut: UInt64 = 0
        public var packetsLost: UInt64 = 0
        public var authFailures: UInt64 = 0
        public var replays: UInt64 = 0
        public var sendDrops: UInt64 = 0
        /// The relay worker's CPU use since the previous snapshot, percent of one core.
        public var cpuPercent: Double?
        public var cpuSeconds: Double?
        public var residentBytes: Int64?

        public init() {}
    }

    public struct Meeting: Sendable, Equatable {
        public var id: String
        public var participants: Int
        public var audioChannels: Int
        public var videoChannels: Int
        public var startedAt: Double
    }

    public struct Participant: Sendable, Equatable {
        public var info: ParticipantInfo
        public var meetingID: String
        /// nil while the relay has not answered (it is restarting).
        public var stats: RelayMessage.LegStats?

        /// Inbound packets lost over packets expected, 0…1 (relay-measured, RFC 3550 A.3).
        public var lossRatio: Double {
            guard let stats else { return 0 }
            let received = stats.audioPackets + stats.videoPackets
            let expected = received + stats.lost
            return expected == 0 ? 0 : Double(stats.lost) / Double(expected)
        }

        /// Interarrival jitter in milliseconds (the relay reports 90 kHz units).
        public var jitterMilliseconds: Double { Double(stats?.jitter ?? 0) / 90 }

        public var roundTripMilliseconds: Double? { stats?.roundTripMicroseconds.map { Double($0) / 1000 } }

        /// "UDP", "TCP", or "none" before the first authenticated packet.
        public var connectionType: String {
            switch stats?.transport {
            case .udp?: "UDP"
            case .tcp?: "TCP"
            case .none?, nil: "none"
            }
        }
    }

    /// The appliance's name: the configured FQDN, else the host name.
    public var node: String
    public var time: Double
    public var relay = Relay()
    public var meetings: [Meeting] = []
    public var participants: [Participant] = []
    public var certificateDaysLeft: Double?

    public init(node: String, time: Double) {
        self.node = node
        self.time = time
    }

    /// Fills the relay, meeting and participant figures from the registry and per-leg stats.
    public init(
        node: String, time: Double, meetings registry: [MeetingRegistry.Meeting], legStats: [RelayMessage.LegStats]?, relayLegs: Int,
        relayMeetings: Int
    ) {
        self.init(node: node, time: time)
        let statsByLeg = Dictionary((legStats ?? []).map { ($0.legID, $0) }, uniquingKeysWith: { first, _ in first })
        relay.connected = legStats != nil
        relay.legs = relayLegs
        relay.meetings = relayMeetings
        for stats in legStats ?? [] {
            relay.packetsIn &+= stats.packetsIn
            relay.packetsOut &+= stats.packetsOut
            relay.bytesIn &+= stats.bytesIn
            relay.bytesOut &+= stats.bytesOut
            relay.packetsLost &+= stats.lost
            relay.authFailures &+= stats.authFailures
            relay.replays &+= stats.replays
            relay.sendDrops &+= stats.sendDrops
            if stats.audioPackets > 0 { relay.audioChannels += 1 }
            if stats.videoPackets > 0 { relay.videoChannels += 1 }
        }
        for meeting in registry.sorted(by: { $0.id < $1.id }) {
            var audio = 0, video = 0
            for (leg, participant) in meeting.participants.sorted(by: { $0.key < $1.key }) {
                let stats = statsByLeg[leg]
                if let stats, stats.audioPackets > 0 { audio += 1 }
                if let stats, stats.videoPackets > 0 { video += 1 }
                participants.append(Participant(info: participant.info, meetingID: meeting.id, stats: stats))
            }
            meetings.append(Meeting(
                id: meeting.id, participants: meeting.participants.count, audioChannels: audio, videoChannels: video,
                startedAt: meeting.startedAt))
        }
        relay.participants = participants.count
    }
}

extension ControlPlane {
    /// The current figures; asks the relay worker for its per-leg counters (a local IPC round
    /// trip) and reads its CPU and memory from /proc.
    public func monitoringSnapshot() -> MonitoringSnapshot {
        let now = Date().timeIntervalSince1970
        var snapshot = MonitoringSnapshot(
            node: settings.fqdn ?? Self.hostName(), time: now, meetings: Array(registry.meetings.values), legStats: relay.statistics(),
            relayLegs: relay.legCount, relayMeetings: relay.meetingCount)
        if let pid = monitoring.relayPID ?? ProcessUsage.relayWorkerPID() {
            if let usage = ProcessUsage.read(pid: pid) {
                monitoring.relayPID = pid
                snapshot.relay.cpuSeconds = usage.cpuSeconds
                snapshot.relay.residentBytes = usage.residentBytes
                snapshot.relay.cpuPercent = monitoring.cpuMeter.sample(pid: pid, usage: usage, at: now)
            } else {
                monitoring.relayPID = nil  // restarted: look it up again next time
            }
        }
        if let notAfter = monitoring.certificateNotAfter {
            snapshot.certificateDaysLeft = (notAfter.timeIntervalSince1970 - now) / 86400
        }
        return snapshot
    }

    static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        let name = String(cString: buffer)
        return name.isEmpty ? "localhost" : name
    }
}
