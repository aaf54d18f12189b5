/// A message between the control worker and the relay worker over their socketpair
/// (ARCHITECTURE.md "Processes"). Each is a 4-byte big-endian body length, then the body:
///
///     u8 version (1) | u8 type | fields, big-endian
///
///     1 addLeg        leg id u32, token u64, meeting id u32, profile u8,
///                     inbound key u8 length + bytes, outbound key u8 length + bytes,
///                     audio payload types u8 count + u8 each, video payload types u8 count + u8 each
///     2 removeLeg     leg id u32
///     3 startMeeting  meeting id u32, mode u8
///     4 stopMeeting   meeting id u32
///     5 editMeeting   meeting id u32, mode u8
///     6 statsQuery    request id u32
///     7 statsReply    request id u32, leg count u16, per leg (64 bytes): leg id u32, packets in u64,
///                     packets out u64, bytes in u64, bytes out u64, lost u64, jitter u32,
///                     authentication failures u64, replays u64
///     8 ack           type u8 of the message it acknowledges
///     9 error         code u16, message u16 length + UTF-8
///
/// As in relayd, the receiver treats a message it cannot decode as fatal, so encoding a message
/// the decoder would refuse is a programmer error and traps.
public enum RelayMessage: Equatable, Sendable {
    case addLeg(LegSetup)
    case removeLeg(legID: UInt32)
    case startMeeting(meetingID: UInt32, mode: MeetingMode)
    case stopMeeting(meetingID: UInt32)
    case editMeeting(meetingID: UInt32, mode: MeetingMode)
    case statsQuery(requestID: UInt32)
    case statsReply(requestID: UInt32, legs: [LegStats])
    /// Requests are answered in order, so an ack names only the type it answers.
    case ack(Kind)
    case error(code: UInt16, message: String)

    public static let version: UInt8 = 1
    public static let maximumBodyLength = 64 * 1024
    /// The most leg records one `statsReply` can carry within `maximumBodyLength`.
    public static let maximumLegStatsPerReply = (maximumBodyLength - 8) / LegStats.size

    public enum Kind: UInt8, Sendable, CaseIterable {
        case addLeg = 1, removeLeg, startMeeting, stopMeeting, editMeeting, statsQuery, statsReply, ack, error
    }

    /// How a leg's media is protected (ARCHITECTURE.md "Media").
    public enum LegProfile: UInt8, Sendable, CaseIterable, CustomStringConvertible {
        case aeadAES128GCM = 0
        case aesCM128HMACSHA1_80 = 1
        /// AES-128-CTR masking (obfuscation, not security): a 16-byte key and a 14-byte salt that
        /// builds the per-packet counter block as RFC 3711 §4.1.1 does (docs/legs-file.md).
        case encapsulated = 2

        public var keyLength: Int { 16 }
        /// The master salt: 12 bytes for GCM (RFC 7714), 14 for AES-CM (RFC 3711) and the masking.
        public var saltLength: Int {
            switch self {
            case .aeadAES128GCM: 12
            case .aesCM128HMACSHA1_80, .encapsulated: 14
            }
        }

        /// The key followed by the salt, as `addLeg` carries them.
        public var keyMaterialLength: Int { keyLength + saltLength }

        public var description: String {
            switch self {
            case .aeadAES128GCM: "AEAD_AES_128_GCM"
            case .aesCM128HMACSHA1_80: "AES_CM_128_HMAC_SHA1_80"
            case .encapsulated: "encapsulated"
            }
        }
    }

    public enum MeetingMode: UInt8, Sendable, CaseIterable {
        case srtp = 0
        case encapsulated = 1
    }

    /// A master key followed by its salt. Every description of it is redacted.
    public struct KeyMaterial: Equatable, Sendable, CustomStringConvertible, CustomDebugStringConvertible,
        CustomReflectable
    {
        public let bytes: [UInt8]

        public init(_ bytes: [UInt8]) { self.bytes = bytes }

        public var description: String { "<\(bytes.count)-byte key redacted>" }
        public var debugDescription: String { description }
        public var customMirror: Mirror { Mirror(self, children: [:]) }
    }

    public struct LegSetup: Equatable, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
        public var legID: UInt32
        public var token: UInt64
        public var meetingID: UInt32
        public var profile: LegProfile
        /// `profile.keyMaterialLength` bytes each.
        public var inboundKey: KeyMaterial
        public var outboundKey: KeyMaterial
        /// RTP payload types (0–127) sent with DSCP EF and AF41 respectively.
        public var audioPayloadTypes: [UInt8]
        public var videoPayloadTypes: [UInt8]

        public init(
            legID: UInt32, token: UInt64, meetingID: UInt32, profile: LegProfile,
            inboundKey: KeyMaterial, outboundKey: KeyMaterial, audioPayloadTypes: [UInt8], videoPayloadTypes: [UInt8]
        ) {
            self.legID = legID
            self.token = token
            self.meetingID = meetingID
            self.profile = profile
            self.inboundKey = inboundKey
            self.outboundKey = outboundKey
            self.audioPayloadTypes = audioPayloadTypes
            self.videoPayloadTypes = videoPayloadTypes
        }

        /// Leaves out the token too: it authenticates encapsulated packets.
        public var description: String {
            "leg \(legID) in meeting \(meetingID), \(profile), keys redacted, "
                + "audio \(audioPayloadTypes), video \(videoPayloadTypes)"
        }
        public var debugDescription: String { description }

        init(reading reader: inout ByteReader) throws(WireError) {
            legID = try reader.read()
            token = try reader.read()
            meetingID = try reader.read()
            let rawProfile: UInt8 = try reader.read()
            guard let profile = LegProfile(rawValue: rawProfile) else {
                throw .malformed("unknown profile \(rawProfile)")
            }
            self.profile = profile
            inboundKey = try Self.readKey(for: profile, from: &reader)
            outboundKey = try Self.readKey(for: profile, from: &reader)
            audioPayloadTypes = try Self.readPayloadTypes(from: &reader)
            videoPayloadTypes = try Self.readPayloadTypes(from: &reader)
        }

        private static func readKey(
            for profile: LegProfile, from reader: inout ByteReader
        ) throws(WireError) -> KeyMaterial {
            let length = Int(try reader.read(UInt8.self))
            guard length == profile.keyMaterialLength else {
                throw .malformed("a \(length)-byte key for \(profile), which takes \(profile.keyMaterialLength)")
            }
            return KeyMaterial(try reader.readBytes(length))
        }

        private static func readPayloadTypes(from reader: inout ByteReader) throws(WireError) -> [UInt8] {
            let types = try reader.readBytes(Int(try reader.read(UInt8.self)))
            if let bad = types.first(where: { $0 > 127 }) { throw .malformed("RTP payload type \(bad) is not 0–127") }
            return types
        }

        func append(to bytes: inout [UInt8]) {
            bytes.appendBigEndian(legID)
            bytes.appendBigEndian(token)
            bytes.appendBigEndian(meetingID)
            bytes.append(profile.rawValue)
            for key in [inboundKey, outboundKey] {
                precondition(key.bytes.count == profile.keyMaterialLength, "wrong key length for \(profile)")
                bytes.append(UInt8(key.bytes.count))
                bytes += key.bytes
            }
            for types in [audioPayloadTypes, videoPayloadTypes] {
                precondition(types.count <= 255 && types.allSatisfy { $0 <= 127 }, "bad RTP payload types \(types)")
                bytes.append(UInt8(types.count))
                bytes += types
            }
        }
    }

    /// One leg's counters in a `statsReply`.
    public struct LegStats: Equatable, Sendable {
        /// How the leg's media reaches the relay: nothing latched yet, UDP or the TCP fallback.
        public enum Transport: UInt8, Sendable, CaseIterable {
            case none = 0, udp = 1, tcp = 2
        }

        public var legID: UInt32
        public var packetsIn: UInt64
        public var packetsOut: UInt64
        public var bytesIn: UInt64
        public var bytesOut: UInt64
        public var lost: UInt64
        /// Interarrival jitter in RTP timestamp units.
        public var jitter: UInt32
        public var authFailures: UInt64
        public var replays: UInt64
        public var transport: Transport
        /// The latched remote port (0 while unlatched).
        public var remotePort: UInt16
        /// Fraction lost the participant reported in its last RTCP receiver report, in 1/256.
        public var reportedLoss: UInt8
        /// Relay ↔ participant round trip from RTCP SR/RR in microseconds; nil: not measured yet.
        public var roundTripMicroseconds: UInt32?
        public var audioPackets: UInt64
        public var videoPackets: UInt64
        /// Datagrams to this leg the relay could not send.
        public var sendDrops: UInt64

        public init(
            legID: UInt32, packetsIn: UInt64 = 0, packetsOut: UInt64 = 0, bytesIn: UInt64 = 0, bytesOut: UInt64 = 0,
            lost: UInt64 = 0, jitter: UInt32 = 0, authFailures: UInt64 = 0, replays: UInt64 = 0, transport: Transport = .none,
            remotePort: UInt16 = 0, reportedLoss: UInt8 = 0, roundTripMicroseconds: UInt32? = nil, audioPackets: UInt64 = 0,
            videoPackets: UInt64 = 0, sendDrops: UInt64 = 0
        ) {
            self.legID = legID
            self.packetsIn = packetsIn
            self.packetsOut = packetsOut
            self.bytesIn = bytesIn
            self.bytesOut = bytesOut
            self.lost = lost
            self.jitter = jitter
            self.authFailures = authFailures
            self.replays = replays
            self.transport = transport
            self.remotePort = remotePort
            self.reportedLoss = reportedLoss
            self.roundTripMicroseconds = roundTripMicroseconds
            self.audioPackets = audioPackets
            self.videoPackets = videoPackets
            self.sendDrops = sendDrops
        }

        static let size = 96
        /// `roundTripMicroseconds` on the wire when nothing was measured.
        static let unmeasured = UInt32.max

        init(reading reader: inout ByteReader) throws(WireError) {
            legID = try reader.read()
            packetsIn = try reader.read()
            packetsOut = try reader.read()
            bytesIn = try reader.read()
            bytesOut = try reader.read()
            lost = try reader.read()
            jitter = try reader.read()
            authFailures = try reader.read()
            replays = try reader.read()
            let transportCode: UInt8 = try reader.read()
            guard let transport = Transport(rawValue: transportCode) else { throw .malformed("unknown leg transport \(transportCode)") }
            self.transport = transport
            remotePort = try reader.read()
            reportedLoss = try reader.read()
            let roundTrip: UInt32 = try reader.read()
            roundTripMicroseconds = roundTrip == Self.unmeasured ? nil : roundTrip
            audioPackets = try reader.read()
            videoPackets = try reader.read()
            sendDrops = try reader.read()
        }

        func append(to bytes: inout [UInt8]) {
            precondition(roundTripMicroseconds != Self.unmeasured, "UInt32.max means unmeasured")
            bytes.appendBigEndian(legID)
            bytes.appendBigEndian(packetsIn)
            bytes.appendBigEndian(packetsOut)
            bytes.appendBigEndian(bytesIn)
            bytes.appendBigEndian(bytesOut)
            bytes.appendBigEndian(lost)
            bytes.appendBigEndian(jitter)
            bytes.appendBigEndian(authFailures)
            bytes.appendBigEndian(replays)
            bytes.append(transport.rawValue)
            bytes.appendBigEndian(remotePort)
            bytes.append(reportedLoss)
            bytes.appendBigEndian(roundTripMicroseconds ?? Self.unmeasured)
            bytes.appendBigEndian(audioPackets)
            bytes.appendBigEndian(videoPackets)
            bytes.appendBigEndian(sendDrops)
        }
    }

    public var kind: Kind {
        switch self {
        case .addLeg: .addLeg
        case .removeLeg: .removeLeg
        case .startMeeting: .startMeeting
        case .stopMeeting: .stopMeeting
        case .editMeeting: .editMeeting
        case .statsQuery: .statsQuery
        case .statsReply: .statsReply
        case .ack: .ack
        case .error: .error
        }
    }

    /// The whole message: length prefix and body.
    public func encoded() -> [UInt8] {
        var body: [UInt8] = [Self.version, kind.rawValue]
        switch self {
        case .addLeg(let leg):
            leg.append(to: &body)
        case .removeLeg(let id), .stopMeeting(let id), .statsQuery(let id):
            body.appendBigEndian(id)
        case .startMeeting(let meetingID, let mode), .editMeeting(let meetingID, let mode):
            body.appendBigEndian(meetingID)
            body.append(mode.rawValue)
        case .statsReply(let requestID, let legs):
            precondition(legs.count <= Self.maximumLegStatsPerReply, "\(legs.count) legs do not fit in one stats reply")
            body.appendBigEndian(requestID)
            body.appendBigEndian(UInt16(legs.count))
            for leg in legs { leg.append(to: &body) }
        case .ack(let acknowledged):
            body.append(acknowledged.rawValue)
        case .error(let code, let message):
            let text = Array(message.utf8)
            precondition(text.count <= Self.maximumBodyLength - 6, "a \(text.count)-byte error message is too long")
            body.appendBigEndian(code)
            body.appendBigEndian(UInt16(text.count))
            body += text
        }
        var framed: [UInt8] = []
        framed.reserveCapacity(4 + body.count)
        framed.appendBigEndian(UInt32(body.count))
        framed += body
        return framed
    }

    /// Decodes one body: version, type and fields, with nothing left over.
    init(body: UnsafeRawBufferPointer) throws(WireError) {
        var reader = ByteReader(body)
        let version: UInt8 = try reader.read()
        guard version == Self.version else { throw .badVersion(version) }
        let type: UInt8 = try reader.read()
        guard let kind = Kind(rawValue: type) else { throw .unknownType(type) }
        switch kind {
        case .addLeg:
            self = .addLeg(try LegSetup(reading: &reader))
        case .removeLeg:
            self = .removeLeg(legID: try reader.read())
        case .startMeeting:
            self = .startMeeting(meetingID: try reader.read(), mode: try Self.readMode(from: &reader))
        case .stopMeeting:
            self = .stopMeeting(meetingID: try reader.read())
        case .editMeeting:
            self = .editMeeting(meetingID: try reader.read(), mode: try Self.readMode(from: &reader))
        case .statsQuery:
            self = .statsQuery(requestID: try reader.read())
        case .statsReply:
            let requestID: UInt32 = try reader.read()
            let count: UInt16 = try reader.read()
            var legs: [LegStats] = []
            for _ in 0..<count { legs.append(try LegStats(reading: &reader)) }
            self = .statsReply(requestID: requestID, legs: legs)
        case .ack:
            let acknowledged: UInt8 = try reader.read()
            guard let acknowledgedKind = Kind(rawValue: acknowledged) else { throw .unknownType(acknowledged) }
            self = .ack(acknowledgedKind)
        case .error:
            let code: UInt16 = try reader.read()
            let text = try reader.readBytes(Int(try reader.read(UInt16.self)))
            guard let message = String(validating: text, as: UTF8.self) else {
                throw .malformed("error message is not UTF-8")
            }
            self = .error(code: code, message: message)
        }
        guard reader.remaining == 0 else { throw .malformed("\(reader.remaining) bytes after a \(kind) message") }
    }

    private static func readMode(from reader: inout ByteReader) throws(WireError) -> MeetingMode {
        let raw: UInt8 = try reader.read()
        guard let mode = MeetingMode(rawValue: raw) else { throw .malformed("unknown meeting mode \(raw)") }
        return mode
    }
}

extension RelayMessage: CustomStringConvertible {
    /// Safe to log: no key material, no leg token.
    public var description: String {
        switch self {
        case .addLeg(let leg): "addLeg(\(leg))"
        case .removeLeg(let legID): "removeLeg(leg \(legID))"
        case .startMeeting(let meetingID, let mode): "startMeeting(meeting \(meetingID), \(mode))"
        case .stopMeeting(let meetingID): "stopMeeting(meeting \(meetingID))"
        case .editMeeting(let meetingID, let mode): "editMeeting(meeting \(meetingID), \(mode))"
        case .statsQuery(let requestID): "statsQuery(request \(requestID))"
        case .statsReply(let requestID, let legs): "statsReply(request \(requestID), \(legs.count) legs)"
        case .ack(let acknowledged): "ack(\(acknowledged))"
        case .error(let code, let message): "error(\(code): \(message))"
        }
    }
}

/// Cuts a byte stream into relay messages. It reads the length prefix first and refuses a body
/// over `RelayMessage.maximumBodyLength` before buffering it. After an error the stream cannot
/// be resynchronized: the decoder drops what it holds, ignores further bytes and throws again.
public struct RelayMessageDecoder: Sendable {
    private var buffer: [UInt8] = []
    private var start = 0  // the first byte not yet decoded
    private var failure: WireError?

    public init() {}

    public mutating func append(_ bytes: some Sequence<UInt8>) {
        guard failure == nil else { return }
        buffer.append(contentsOf: bytes)
        _ = try? pendingBodyLength()  // fails now if the prefix that just arrived claims too much
    }

    /// The next whole message, or nil until all of its bytes have arrived.
    public mutating func next() throws(WireError) -> RelayMessage? {
        guard let bodyLength = try pendingBodyLength(), buffer.count - start - 4 >= bodyLength else { return nil }
        let body = start + 4..<start + 4 + bodyLength
        start = body.upperBound
        let message: RelayMessage
        do throws(WireError) {
            message = try buffer.withUnsafeBufferPointer { (all) throws(WireError) in
                try RelayMessage(body: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: all[body])))
            }
        } catch {
            throw fail(error)
        }
        if start * 2 >= buffer.count {  // drop decoded bytes once they are half the buffer
            buffer.removeFirst(start)
            start = 0
        }
        return message
    }

    /// The body length of the message at `start`, once its prefix has arrived.
    private mutating func pendingBodyLength() throws(WireError) -> Int? {
        if let failure { throw failure }
        guard buffer.count - start >= 4 else { return nil }
        let length = buffer[start..<start + 4].reduce(0) { $0 << 8 | Int($1) }
        guard length <= RelayMessage.maximumBodyLength else {
            throw fail(.oversized(limit: RelayMessage.maximumBodyLength, got: length))
        }
        return length
    }

    private mutating func fail(_ error: WireError) -> WireError {
        failure = error
        buffer = []
        start = 0
        return error
    }
}
