import ConclaveSystem
import ConclaveWire

/// The Prometheus text exposition (format 0.0.4) of a `MonitoringSnapshot`: the same figures
/// as the ApMon reports, with per-leg series bounded to the worst `legLimit` legs by loss so a
/// large meeting cannot explode cardinality. Personal labels obey the privacy mode.
public struct PrometheusText {
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"
    public static let legLimit = 50

    private var output = ""
    private var declared: Set<String> = []

    public init() {}

    public var text: String { output }

    /// `# HELP` and `# TYPE` once per family, then the sample.
    public mutating func sample(
        _ name: String, _ type: String, _ help: String, _ value: Double, labels: [(String, String)] = []
    ) {
        if declared.insert(name).inserted {
            output += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
        }
        output += name + Self.labelText(labels) + " " + Self.number(value) + "\n"
    }

    public mutating func histogram(_ name: String, _ help: String, _ histogram: Histogram) {
        output += "# HELP \(name) \(help)\n# TYPE \(name) histogram\n"
        for (bound, count) in zip(histogram.bounds, histogram.counts) {
            output += "\(name)_bucket{le=\"\(Self.number(bound))\"} \(count)\n"
        }
        output += "\(name)_bucket{le=\"+Inf\"} \(histogram.count)\n"
        output += "\(name)_sum \(Self.number(histogram.sum))\n\(name)_count \(histogram.count)\n"
    }

    static func labelText(_ labels: [(String, String)]) -> String {
        guard !labels.isEmpty else { return "" }
        return "{" + labels.map { "\($0.0)=\"\(escaped($0.1))\"" }.joined(separator: ",") + "}"
    }

    /// Label values escape backslash, double quote and line feed.
    static func escaped(_ value: String) -> String {
        var result = ""
        for character in value.unicodeScalars {
            switch character {
            case "\\": result += "\\\\"
            case "\"": result += "\\\""
            case "\n": result += "\\n"
            default: result.unicodeScalars.append(character)
            }
        }
        return result
    }

    static func number(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }

    /// Every family from `snapshot`; `extra` adds the sender's and the process's own figures.
    public static func render(
        _ snapshot: MonitoringSnapshot, privacy: PrivacyFilter, joinLatency: Histogram, destinations: [ApMonSender.DestinationStatus] = []
    ) -> String {
        var text = PrometheusText()
        let relay = snapshot.relay
        text.sample("conclave_relay_connected", "gauge", "1 while the relay worker answers the control worker.", relay.connected ? 1 : 0)
        text.sample("conclave_participants", "gauge", "Participants in meetings.", Double(relay.participants))
        text.sample("conclave_audio_channels", "gauge", "Legs that have sent audio.", Double(relay.audioChannels))
        text.sample("conclave_video_channels", "gauge", "Legs that have sent video.", Double(relay.videoChannels))
        text.sample("conclave_meetings", "gauge", "Running meetings.", Double(snapshot.meetings.count))
        text.sample("conclave_relay_legs", "gauge", "Legs the relay holds (joins and the legs file).", Double(relay.legs))
        text.sample("conclave_relay_packets_in", "gauge", "Media datagrams received by the relay (sum over current legs; falls when a leg leaves).", Double(relay.packetsIn))
        text.sample("conclave_relay_packets_out", "gauge", "Media datagrams sent by the relay (sum over current legs; falls when a leg leaves).", Double(relay.packetsOut))
        text.sample("conclave_relay_bytes_in", "gauge", "Media bytes received by the relay (sum over current legs; falls when a leg leaves).", Double(relay.bytesIn))
        text.sample("conclave_relay_bytes_out", "gauge", "Media bytes sent by the relay (sum over current legs; falls when a leg leaves).", Double(relay.bytesOut))
        text.sample("conclave_relay_packets_lost", "gauge", "RTP packets missing from what the legs sent.", Double(relay.packetsLost))
        text.sample("conclave_relay_auth_failures", "gauge", "Datagrams that did not authenticate.", Double(relay.authFailures))
        text.sample("conclave_relay_replays", "gauge", "Replayed datagrams refused.", Double(relay.replays))
        text.sample("conclave_relay_send_drops", "gauge", "Datagrams the relay could not send.", Double(relay.sendDrops))
        if let seconds = relay.cpuSeconds {
            text.sample("conclave_relay_cpu_seconds_total", "counter", "CPU time of the relay worker process.", seconds)
        }
        if let bytes = relay.residentBytes {
            text.sample("conclave_relay_resident_memory_bytes", "gauge", "Resident memory of the relay worker process.", Double(bytes))
        }
        if let days = snapshot.certificateDaysLeft {
            text.sample("conclave_certificate_days_left", "gauge", "Days until the active server certificate expires.", days)
        }
        for meeting in snapshot.meetings {
            text.sample("conclave_meeting_participants", "gauge", "Participants per meeting.", Double(meeting.participants), labels: [("meeting", meeting.id)])
        }
        for meeting in snapshot.meetings {
            text.sample("conclave_meeting_audio_channels", "gauge", "Legs that have sent audio, per meeting.", Double(meeting.audioChannels), labels: [("meeting", meeting.id)])
        }
        for meeting in snapshot.meetings {
            text.sample("conclave_meeting_video_channels", "gauge", "Legs that have sent video, per meeting.", Double(meeting.videoChannels), labels: [("meeting", meeting.id)])
        }
        let worst = worstLegs(snapshot.participants)
        let labels = worst.map { legLabels($0, privacy: privacy) }
        let families: [(String, String, String, (MonitoringSnapshot.Participant) -> Double?)] = [
            ("conclave_leg_loss_ratio", "gauge", "Inbound packets lost over expected, per leg (worst \(legLimit) by loss).", { $0.lossRatio }),
            ("conclave_leg_jitter_seconds", "gauge", "Interarrival jitter per leg (worst \(legLimit) by loss).", { $0.jitterMilliseconds / 1000 }),
            ("conclave_leg_rtt_seconds", "gauge", "Relay to participant round trip from RTCP, per leg (worst \(legLimit) by loss).", { $0.roundTripMilliseconds.map { $0 / 1000 } }),
            ("conclave_leg_packets_lost_total", "counter", "Packets lost per leg (worst \(legLimit) by loss).", { $0.stats.map { Double($0.lost) } }),
            ("conclave_leg_packets_in_total", "counter", "Datagrams received per leg (worst \(legLimit) by loss).", { $0.stats.map { Double($0.packetsIn) } }),
            ("conclave_leg_packets_out_total", "counter", "Datagrams sent per leg (worst \(legLimit) by loss).", { $0.stats.map { Double($0.packetsOut) } }),
        ]
        for (name, type, help, value) in families {
            for (participant, labels) in zip(worst, labels) {
                guard let figure = value(participant) else { continue }
                text.sample(name, type, help, figure, labels: labels)
            }
        }
        text.histogram("conclave_join_latency_seconds", "Time from a join request to the joined answer.", joinLatency)
        for destination in destinations {
            let label = [("destination", destination.name)]
            text.sample("conclave_apmon_datagrams_sent_total", "counter", "ApMon datagrams sent per destination.", Double(destination.datagramsSent), labels: label)
        }
        for destination in destinations {
            let label = [("destination", destination.name)]
            text.sample("conclave_apmon_reports_dropped_total", "counter", "ApMon reports dropped (rate limit, send error, unresolved).", Double(destination.reportsDropped), labels: label)
        }
        for destination in destinations {
            let label = [("destination", destination.name)]
            text.sample("conclave_apmon_destination_resolved", "gauge", "1 while the destination's name resolves.", destination.resolved ? 1 : 0, labels: label)
        }
        return text.text
    }

    /// The `legLimit` legs with the highest loss ratio (ties: lower leg id first).
    static func worstLegs(_ participants: [MonitoringSnapshot.Participant]) -> [MonitoringSnapshot.Participant] {
        Array(participants.sorted {
            $0.lossRatio != $1.lossRatio ? $0.lossRatio > $1.lossRatio : $0.info.leg < $1.info.leg
        }.prefix(legLimit))
    }

    static func legLabels(_ participant: MonitoringSnapshot.Participant, privacy: PrivacyFilter) -> [(String, String)] {
        var labels = [("leg", String(participant.info.leg)), ("transport", participant.connectionType)]
        if let meeting = privacy.personal(participant.meetingID, .meeting) { labels.append(("meeting", meeting)) }
        if let nickname = privacy.personal(participant.info.name, .nickname) { labels.append(("nickname", nickname)) }
        if let address = privacy.personal(participant.info.address, .address) { labels.append(("ip", address)) }
        if let mac = participant.info.mac, ParticipantInfo.isMACAddress(mac), let value = privacy.personal(mac, .mac) { labels.append(("mac", value)) }
        return labels
    }
}

extension ControlPlane {
    /// `GET /metrics`: the Prometheus text exposition of the current figures (served on the
    /// command API's mutual-TLS port and, when configured, on the plain-HTTP metrics port).
    public func metricsExposition() -> String {
        PrometheusText.render(
            monitoringSnapshot(), privacy: monitoring.privacy, joinLatency: monitoring.joinLatency,
            destinations: monitoring.sender?.status() ?? [])
    }
}
