import ConclaveSRTP
import ConclaveWire

/// How a meeting's media is protected on the wire.
public enum MediaMode: String, Sendable, Codable, CaseIterable {
    /// SRTP end to end of each hop (AEAD_AES_128_GCM or AES_CM_128_HMAC_SHA1_80).
    case srtp
    /// RTP payloads masked with a per-leg AES-128-CTR keystream: obfuscation, not security.
    case encapsulated
}

/// The system-wide rule for which legs may join (ARCHITECTURE.md "System security mode").
public enum SecurityMode: String, Sendable, Codable, CaseIterable {
    /// Every leg must be SRTP.
    case secured
    /// Each meeting chooses `srtp` or `encapsulated`.
    case mixed
}

/// The keys of a leg: SRTP master key + salt per direction, or the scrambling keys.
public enum LegProtection: Sendable, Equatable {
    case srtp(SRTPProfile, clientToRelay: SRTPKeyMaterial, relayToClient: SRTPKeyMaterial)
    case encapsulated(clientToRelay: ScramblingKey, relayToClient: ScramblingKey)

    public var mode: MediaMode {
        switch self {
        case .srtp: .srtp
        case .encapsulated: .encapsulated
        }
    }
}

/// Everything needed to add a leg to the relay (from the control worker or a legs file).
public struct LegDescription: Sendable, Equatable {
    public let leg: UInt32
    public let token: UInt64
    public let meeting: UInt32
    public let protection: LegProtection
    public let audioPayloadTypes: [UInt8]
    public let videoPayloadTypes: [UInt8]

    public init(
        leg: UInt32, token: UInt64, meeting: UInt32, protection: LegProtection,
        audioPayloadTypes: [UInt8], videoPayloadTypes: [UInt8]
    ) {
        self.leg = leg
        self.token = token
        self.meeting = meeting
        self.protection = protection
        self.audioPayloadTypes = audioPayloadTypes
        self.videoPayloadTypes = videoPayloadTypes
    }
}

/// What kind of media a payload type carries: decides DSCP and the RTP clock rate.
enum MediaKind {
    case audio, video, other

    /// RFC 4594 classes: EF for voice, AF41 for interactive video, best effort otherwise.
    var dscp: UInt8 {
        switch self {
        case .audio: 46
        case .video: 34
        case .other: 0
        }
    }

    /// RTP clock rate used for jitter: Opus runs at 48 kHz (RFC 7587), video at 90 kHz.
    var clockRate: Double {
        switch self {
        case .audio: 48_000
        case .video, .other: 90_000
        }
    }
}

/// Where a leg's media goes: nowhere until a packet authenticates, then the latched peer.
enum LegTransport {
    case unlatched
    case udp(PeerAddress)
    case tcp(TCPMediaConnection)
}

/// One participant's media leg, owned by exactly one relay thread.
final class MediaLeg {
    let id: UInt32
    let token: UInt64
    let meetingID: UInt32
    let mode: MediaMode
    let ciphers: LegCiphers
    private var audioTypes: (UInt64, UInt64) = (0, 0)  // bit set over payload types 0…127
    private var videoTypes: (UInt64, UInt64) = (0, 0)
    var transport = LegTransport.unlatched
    var statistics = LegStatistics()
    var streams = (StreamReception(), StreamReception())
    /// The last sender report this leg sent: its NTP middle 32 bits and when the relay got it,
    /// so a receiver's RR (LSR, DLSR) yields the relay ↔ receiver round trip (RFC 3550 §6.4.1).
    var lastSenderReport: (ssrc: UInt32, ntpMiddle: UInt32, arrival: Double)?

    init(_ description: LegDescription) throws {
        id = description.leg
        token = description.token
        meetingID = description.meeting
        mode = description.protection.mode
        ciphers = try LegCiphers(description.protection, at: .relay)
        for type in description.audioPayloadTypes where type < 128 { Self.insert(type, into: &audioTypes) }
        for type in description.videoPayloadTypes where type < 128 { Self.insert(type, into: &videoTypes) }
    }

    private static func insert(_ type: UInt8, into set: inout (UInt64, UInt64)) {
        if type < 64 { set.0 |= 1 << UInt64(type) } else { set.1 |= 1 << UInt64(type - 64) }
    }

    private static func contains(_ type: UInt8, _ set: (UInt64, UInt64)) -> Bool {
        type < 64 ? set.0 & (1 << UInt64(type)) != 0 : set.1 & (1 << UInt64(type & 63)) != 0
    }

    @inline(__always) func kind(ofPayloadType type: UInt8) -> MediaKind {
        if Self.contains(type, audioTypes) { return .audio }
        if Self.contains(type, videoTypes) { return .video }
        return .other
    }

    /// Records an authenticated RTP packet for loss and jitter. `now` is monotonic seconds.
    @inline(__always) func recordReception(_ header: RTPHeaderView, kind: MediaKind, now: Double) {
        let arrival = Int64(now * kind.clockRate)
        if streams.0.ssrc == header.ssrc && streams.0.isActive {
            streams.0.record(sequence: header.sequenceNumber, timestamp: header.timestamp, arrival: arrival)
        } else if streams.1.ssrc == header.ssrc && streams.1.isActive {
            streams.1.record(sequence: header.sequenceNumber, timestamp: header.timestamp, arrival: arrival)
        } else {
            // A new SSRC takes a free slot, else replaces the second (a camera switch, say).
            let fresh = StreamReception(ssrc: header.ssrc, sequence: header.sequenceNumber, clockRate: kind.clockRate)
            if !streams.0.isActive { streams.0 = fresh } else { streams.1 = fresh }
            recordReception(header, kind: kind, now: now)
            return
        }
        switch kind {
        case .audio: statistics.audioPackets += 1
        case .video: statistics.videoPackets += 1
        case .other: break
        }
    }

    /// Folds stream state into the counters a snapshot shows.
    func snapshot() -> LegSnapshot {
        var statistics = self.statistics
        statistics.lost = streams.0.lost + streams.1.lost
        statistics.jitterMilliseconds = max(streams.0.jitterSeconds, streams.1.jitterSeconds) * 1000
        let (transportName, remote, port): (String, String?, UInt16) = switch transport {
        case .unlatched: ("none", nil, 0)
        case .udp(let address): ("udp", address.description, address.port)
        case .tcp(let connection): ("tcp", connection.remoteDescription, connection.remotePort)
        }
        return LegSnapshot(leg: id, meeting: meetingID, transport: transportName, remote: remote, remotePort: port, statistics: statistics)
    }
}

/// A meeting: its mode and its legs, owned by one relay thread.
final class Meeting {
    let id: UInt32
    let mode: MediaMode
    var legs: [MediaLeg] = []

    init(id: UInt32, mode: MediaMode) {
        self.id = id
        self.mode = mode
    }
}
