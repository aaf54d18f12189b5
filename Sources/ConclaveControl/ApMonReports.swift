import ConclaveSystem
import ConclaveWire

/// What the appliance tells MonALISA, as (cluster, node, parameters) sets made from one
/// `MonitoringSnapshot`. Every name and type is listed in docs/monitoring.md; personal values
/// pass through the privacy filter and nothing else is personal.
public enum ApMonReports {
    public struct Report: Equatable, Sendable {
        public var cluster: String
        public var node: String
        public var parameters: [ApMon.Parameter]
    }

    public static let relayCluster = "Conclave_Relay"
    public static let meetingsCluster = "Conclave_Meetings"
    public static let usersCluster = "Conclave_Users"

    public static func reports(_ snapshot: MonitoringSnapshot, privacy: PrivacyFilter) -> [Report] {
        let legsByMeeting = Dictionary(grouping: snapshot.participants, by: \.meetingID)
        return [relay(snapshot)] + snapshot.meetings.map { meeting($0, legs: legsByMeeting[$0.id] ?? []) }
            + snapshot.participants.map { participant($0, privacy: privacy) }
    }

    /// Cluster `Conclave_Relay`, node = the appliance's FQDN.
    static func relay(_ snapshot: MonitoringSnapshot) -> Report {
        let relay = snapshot.relay
        var parameters: [ApMon.Parameter] = [
            .init("participants", .int32(Int32(clamping: relay.participants))),
            .init("audio_channels", .int32(Int32(clamping: relay.audioChannels))),
            .init("video_channels", .int32(Int32(clamping: relay.videoChannels))),
            .init("meetings", .int32(Int32(clamping: snapshot.meetings.count))),
            .init("legs", .int32(Int32(clamping: relay.legs))),
            .init("relay_connected", .int32(relay.connected ? 1 : 0)),
            .init("packets_in", counter(relay.packetsIn)),
            .init("packets_out", counter(relay.packetsOut)),
            .init("bytes_in", counter(relay.bytesIn)),
            .init("bytes_out", counter(relay.bytesOut)),
            .init("packets_lost", counter(relay.packetsLost)),
            .init("auth_failures", counter(relay.authFailures)),
            .init("replays", counter(relay.replays)),
            .init("send_drops", counter(relay.sendDrops)),
        ]
        if let cpu = relay.cpuPercent { parameters.append(.init("cpu_percent", .double(cpu))) }
        if let resident = relay.residentBytes { parameters.append(.init("memory_kb", .int32(Int32(clamping: resident / 1024)))) }
        if let days = snapshot.certificateDaysLeft { parameters.append(.init("certificate_days_left", .double(days))) }
        return Report(cluster: relayCluster, node: snapshot.node, parameters: parameters)
    }

    /// Cluster `Conclave_Meetings`, node = the meeting id: counts, and each leg's loss and
    /// jitter as per-instance series (`leg_<id>_loss_percent`), so one chart shows a meeting's
    /// legs. A large meeting splits into several datagrams.
    static func meeting(_ meeting: MonitoringSnapshot.Meeting, legs: [MonitoringSnapshot.Participant]) -> Report {
        var parameters: [ApMon.Parameter] = [
            .init("participants", .int32(Int32(clamping: meeting.participants))),
            .init("audio_channels", .int32(Int32(clamping: meeting.audioChannels))),
            .init("video_channels", .int32(Int32(clamping: meeting.videoChannels))),
        ]
        for leg in legs.sorted(by: { $0.info.leg < $1.info.leg }) {
            parameters.append(.init("leg_\(leg.info.leg)_loss_percent", .double(leg.lossRatio * 100)))
            parameters.append(.init("leg_\(leg.info.leg)_jitter_ms", .double(leg.jitterMilliseconds)))
        }
        return Report(cluster: meetingsCluster, node: meeting.id, parameters: parameters)
    }

    /// Cluster `Conclave_Users`, node = the leg id: technical, personal (as the privacy mode
    /// allows) and quality figures.
    static func participant(_ participant: MonitoringSnapshot.Participant, privacy: PrivacyFilter) -> Report {
        let info = participant.info
        var parameters: [ApMon.Parameter] = []
        func text(_ name: String, _ value: String?) {
            guard let value, let clean = cleaned(value) else { return }
            parameters.append(.init(name, .string(clean)))
        }
        text("os", info.os)
        text("client_name", info.clientName)
        text("client_version", info.clientVersion)
        text("participant_kind", info.kind.rawValue)
        text("connection_type", participant.connectionType)
        if let port = participant.stats?.remotePort, port != 0 { parameters.append(.init("port", .int32(Int32(port)))) }
        text("srtp_profile", info.profile)
        text("nickname", privacy.personal(info.name, .nickname))
        text("ip", privacy.personal(info.address, .address))
        text("meeting_id", privacy.personal(participant.meetingID, .meeting))
        if let mac = info.mac, ParticipantInfo.isMACAddress(mac) { text("mac", privacy.personal(mac, .mac)) }
        parameters.append(.init("loss_percent", .double(participant.lossRatio * 100)))
        parameters.append(.init("jitter_ms", .double(participant.jitterMilliseconds)))
        if let roundTrip = participant.roundTripMilliseconds { parameters.append(.init("rtt_ms", .double(roundTrip))) }
        if let stats = participant.stats {
            parameters.append(.init("reported_loss_percent", .double(Double(stats.reportedLoss) / 256 * 100)))
            parameters.append(.init("packets_lost", counter(stats.lost)))
            parameters.append(.init("packets_in", counter(stats.packetsIn)))
            parameters.append(.init("packets_out", counter(stats.packetsOut)))
        }
        return Report(cluster: usersCluster, node: String(info.leg), parameters: parameters)
    }

    /// int32 while the value fits (type 2, which every receiver reads), int64 beyond (type 3,
    /// apmon.md §5), never a float.
    static func counter(_ value: UInt64) -> ApMon.Value {
        value <= UInt64(Int32.max) ? .int32(Int32(value)) : .int64(Int64(clamping: value))
    }

    /// The receiver trims string values and ignores empty ones; the encoder refuses them.
    static func cleaned(_ value: String) -> String? {
        let trimmed = value.unicodeScalars.drop(while: { $0 == " " || $0 == "\t" }).reversed().drop(while: { $0 == " " || $0 == "\t" })
        let text = String(String.UnicodeScalarView(trimmed.reversed()))
        guard !text.isEmpty, text.utf8.count <= 1024 else { return nil }
        return text
    }
}

extension ParticipantInfo {
    /// Six hex pairs separated by ':' (what monitoring passes on as a MAC address; a client's
    /// `join` may carry anything).
    public static func isMACAddress(_ text: String) -> Bool {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        return parts.count == 6 && parts.allSatisfy { $0.utf8.count == 2 && $0.allSatisfy(\.isHexDigit) }
    }
}
