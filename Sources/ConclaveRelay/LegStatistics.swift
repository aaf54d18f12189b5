/// Per-stream receive state for loss and interarrival jitter (RFC 3550 A.1, A.3, A.8).
struct StreamReception {
    var ssrc: UInt32 = 0
    var isActive = false
    var clockRate: Double = 90_000
    private var baseSequence: UInt32 = 0
    private var highestSequence: UInt32 = 0   // extended: cycles in the upper 16 bits
    private(set) var received: UInt64 = 0
    private var lastTransit: Int64 = 0
    /// Interarrival jitter in RTP timestamp units, scaled by 16 as RFC 3550 A.8 keeps it.
    private var jitterScaled: Int64 = 0

    init() {}

    init(ssrc: UInt32, sequence: UInt16, clockRate: Double) {
        self.ssrc = ssrc
        self.clockRate = clockRate
        isActive = true
        baseSequence = UInt32(sequence)
        highestSequence = UInt32(sequence)
    }

    var expected: UInt64 { UInt64(highestSequence &- baseSequence) + 1 }
    var lost: UInt64 { expected > received ? expected - received : 0 }
    var jitter: UInt32 { UInt32(clamping: jitterScaled >> 4) }
    var jitterSeconds: Double { isActive ? Double(jitter) / clockRate : 0 }

    /// Records one authenticated packet. `arrival` is in the stream's RTP clock units.
    mutating func record(sequence: UInt16, timestamp: UInt32, arrival: Int64) {
        received += 1
        let highLow = UInt16(truncatingIfNeeded: highestSequence)
        let delta = sequence &- highLow
        if delta != 0 && delta < 0x8000 {
            if sequence < highLow { highestSequence &+= 0x10000 }  // sequence wrapped
            highestSequence = (highestSequence & 0xFFFF_0000) | UInt32(sequence)
        }
        let transit = arrival &- Int64(timestamp)
        if received > 1 {
            let difference = abs(transit &- lastTransit)
            jitterScaled &+= difference &- ((jitterScaled &+ 8) >> 4)
        }
        lastTransit = transit
    }
}

/// What the relay counts for one leg.
public struct LegStatistics: Sendable, Equatable, Codable {
    public var packetsIn: UInt64 = 0
    public var bytesIn: UInt64 = 0
    public var packetsOut: UInt64 = 0
    public var bytesOut: UInt64 = 0
    /// Packets missing from the sequence numbers this leg sent (all its streams).
    public var lost: UInt64 = 0
    /// Largest interarrival jitter of this leg's streams, in milliseconds.
    public var jitterMilliseconds: Double = 0
    /// Fraction lost the participant reported in its last RTCP receiver report (0…1).
    public var reportedLossFraction: Double = 0
    /// Round-trip time between the relay and the participant from RTCP SR/RR, in milliseconds.
    public var roundTripMilliseconds: Double?
    public var authenticationFailures: UInt64 = 0
    public var replays: UInt64 = 0
    /// Datagrams this leg could not be sent (kernel refused or batch overflow).
    public var sendDrops: UInt64 = 0
    public var audioPackets: UInt64 = 0
    public var videoPackets: UInt64 = 0

    public init() {}
}

/// A point-in-time copy of one leg, for stats queries.
public struct LegSnapshot: Sendable, Equatable, Codable {
    public let leg: UInt32
    public let meeting: UInt32
    public let transport: String
    public let remote: String?
    /// The latched remote port; 0 while unlatched.
    public var remotePort: UInt16 = 0
    public let statistics: LegStatistics
}
