/// One reception report block of an SR or RR (RFC 3550 §6.4.1), 24 bytes on the wire.
public struct RTCPReportBlock: Equatable, Sendable {
    /// The source this block reports on.
    public var ssrc: UInt32
    /// Packets lost since the previous report, in 1/256.
    public var fractionLost: UInt8
    /// 24-bit signed on the wire (duplicates can make it negative); encoding clamps it to that range.
    public var cumulativeLost: Int32
    public var extendedHighestSequenceNumber: UInt32
    /// Interarrival jitter in RTP timestamp units.
    public var jitter: UInt32
    /// LSR: the middle 32 bits of the NTP timestamp of the last SR received from `ssrc`, 0 if none.
    public var lastSenderReport: UInt32
    /// DLSR: the delay between receiving that SR and sending this block, in 1/65536 s.
    public var delaySinceLastSenderReport: UInt32

    public init(
        ssrc: UInt32, fractionLost: UInt8, cumulativeLost: Int32, extendedHighestSequenceNumber: UInt32,
        jitter: UInt32, lastSenderReport: UInt32, delaySinceLastSenderReport: UInt32
    ) {
        self.ssrc = ssrc
        self.fractionLost = fractionLost
        self.cumulativeLost = cumulativeLost
        self.extendedHighestSequenceNumber = extendedHighestSequenceNumber
        self.jitter = jitter
        self.lastSenderReport = lastSenderReport
        self.delaySinceLastSenderReport = delaySinceLastSenderReport
    }

    static let size = 24

    /// The round-trip time in seconds, from a block that answers one of our SRs (RFC 3550 §6.4.1):
    /// `arrival − LSR − DLSR`, where `arrival` is the middle 32 bits of the NTP time this block
    /// arrived at. Nil before the peer has seen an SR (LSR 0) or when DLSR exceeds the elapsed time.
    public func roundTripTime(arrival: UInt32) -> Double? {
        guard lastSenderReport != 0 else { return nil }
        let sinceSenderReport = arrival &- lastSenderReport  // compact NTP wraps every 18 hours
        guard sinceSenderReport >= delaySinceLastSenderReport else { return nil }
        return Double(sinceSenderReport - delaySinceLastSenderReport) / 65536
    }

    init(reading reader: inout ByteReader) throws(WireError) {
        ssrc = try reader.read()
        let loss: UInt32 = try reader.read()
        fractionLost = UInt8(loss >> 24)
        cumulativeLost = Int32(bitPattern: loss << 8) >> 8  // sign-extends the 24-bit field
        extendedHighestSequenceNumber = try reader.read()
        jitter = try reader.read()
        lastSenderReport = try reader.read()
        delaySinceLastSenderReport = try reader.read()
    }

    func append(to bytes: inout [UInt8]) {
        let lost = min(max(cumulativeLost, -0x80_0000), 0x7f_ffff)  // RFC 3550 A.3 clamps
        bytes.appendBigEndian(ssrc)
        bytes.appendBigEndian(UInt32(fractionLost) << 24 | UInt32(bitPattern: lost) & 0xff_ffff)
        bytes.appendBigEndian(extendedHighestSequenceNumber)
        bytes.appendBigEndian(jitter)
        bytes.appendBigEndian(lastSenderReport)
        bytes.appendBigEndian(delaySinceLastSenderReport)
    }
}

/// An RTCP sender report (SR, packet type 200).
public struct RTCPSenderReport: Equatable, Sendable {
    public var ssrc: UInt32
    /// 64-bit NTP time: seconds since 1900 in the high half, the fraction in the low half.
    public var ntpTimestamp: UInt64
    public var rtpTimestamp: UInt32
    public var packetCount: UInt32
    public var octetCount: UInt32
    public var reportBlocks: [RTCPReportBlock]

    public init(
        ssrc: UInt32, ntpTimestamp: UInt64, rtpTimestamp: UInt32, packetCount: UInt32, octetCount: UInt32,
        reportBlocks: [RTCPReportBlock] = []
    ) {
        self.ssrc = ssrc
        self.ntpTimestamp = ntpTimestamp
        self.rtpTimestamp = rtpTimestamp
        self.packetCount = packetCount
        self.octetCount = octetCount
        self.reportBlocks = reportBlocks
    }

    static let packetType: UInt8 = 200

    /// The middle 32 bits of `ntpTimestamp`: what a receiver echoes as LSR.
    public var compactNTPTimestamp: UInt32 { UInt32(truncatingIfNeeded: ntpTimestamp >> 16) }

    /// The packet with its RTCP header; at most 31 report blocks fit.
    public func encoded() -> [UInt8] {
        var bytes = RTCPPacket.header(type: Self.packetType, count: reportBlocks.count, bodyLength: 24)
        bytes.appendBigEndian(ssrc)
        bytes.appendBigEndian(ntpTimestamp)
        bytes.appendBigEndian(rtpTimestamp)
        bytes.appendBigEndian(packetCount)
        bytes.appendBigEndian(octetCount)
        for block in reportBlocks { block.append(to: &bytes) }
        return bytes
    }
}

/// An RTCP receiver report (RR, packet type 201).
public struct RTCPReceiverReport: Equatable, Sendable {
    public var ssrc: UInt32
    public var reportBlocks: [RTCPReportBlock]

    public init(ssrc: UInt32, reportBlocks: [RTCPReportBlock] = []) {
        self.ssrc = ssrc
        self.reportBlocks = reportBlocks
    }

    static let packetType: UInt8 = 201

    /// The packet with its RTCP header; at most 31 report blocks fit.
    public func encoded() -> [UInt8] {
        var bytes = RTCPPacket.header(type: Self.packetType, count: reportBlocks.count, bodyLength: 4)
        bytes.appendBigEndian(ssrc)
        for block in reportBlocks { block.append(to: &bytes) }
        return bytes
    }
}

/// One packet of an RTCP compound packet (RFC 3550 §6.1). A compound is its packets' bytes
/// concatenated, so the encoders above build one by appending.
public enum RTCPPacket: Equatable, Sendable {
    case senderReport(RTCPSenderReport)
    case receiverReport(RTCPReceiverReport)
    /// SDES, BYE, APP, feedback (RFC 4585) or another type: its length is checked, its content skipped.
    case other(packetType: UInt8)

    /// Walks a compound packet, checking each packet's version and length, and decodes its SRs and RRs.
    ///
    /// It does not insist that the compound start with an SR or RR (RFC 3550 §6.1), because
    /// reduced-size RTCP (RFC 5506) sends feedback packets alone.
    public static func parseCompound(_ bytes: UnsafeRawBufferPointer) throws(WireError) -> [RTCPPacket] {
        guard !bytes.isEmpty else { throw .truncated(needed: 4, got: 0) }
        var packets: [RTCPPacket] = []
        var offset = 0
        while offset < bytes.count {
            guard bytes.count - offset >= 4 else { throw .truncated(needed: offset + 4, got: bytes.count) }
            let first = bytes[offset]
            guard first >> 6 == 2 else { throw .badVersion(first >> 6) }
            let packetType = bytes[offset + 1]
            guard (192...223).contains(packetType) else { throw .unknownType(packetType) }  // RFC 5761 §4
            let words = UInt16(bigEndian: bytes.loadUnaligned(fromByteOffset: offset + 2, as: UInt16.self))
            let end = offset + 4 * (Int(words) + 1)
            guard end <= bytes.count else { throw .truncated(needed: end, got: bytes.count) }
            var contentEnd = end
            if first & 0x20 != 0 {
                // Only the last packet of a compound may be padded; its last byte counts the padding.
                guard end == bytes.count else { throw .malformed("RTCP padding before the end of the compound") }
                let padding = Int(bytes[end - 1])
                guard padding >= 1, padding <= end - offset - 4 else {
                    throw .malformed("RTCP padding of \(padding) bytes in a \(end - offset)-byte packet")
                }
                contentEnd -= padding
            }
            var content = ByteReader(UnsafeRawBufferPointer(rebasing: bytes[offset + 4..<contentEnd]))
            let reportCount = Int(first & 0x1f)
            switch packetType {
            case RTCPSenderReport.packetType:
                try requireReports(reportCount, after: 24, in: content, packetType: packetType)
                var report = RTCPSenderReport(
                    ssrc: try content.read(), ntpTimestamp: try content.read(), rtpTimestamp: try content.read(),
                    packetCount: try content.read(), octetCount: try content.read())
                report.reportBlocks = try readReportBlocks(reportCount, from: &content)
                packets.append(.senderReport(report))
            case RTCPReceiverReport.packetType:
                try requireReports(reportCount, after: 4, in: content, packetType: packetType)
                var report = RTCPReceiverReport(ssrc: try content.read())
                report.reportBlocks = try readReportBlocks(reportCount, from: &content)
                packets.append(.receiverReport(report))
            default:
                packets.append(.other(packetType: packetType))
            }
            offset = end
        }
        return packets
    }

    /// An SR or RR whose length is too short for its report count is malformed, not truncated:
    /// the bytes are all there, the header contradicts itself. Profile extensions may follow.
    private static func requireReports(
        _ count: Int, after fixedLength: Int, in content: ByteReader, packetType: UInt8
    ) throws(WireError) {
        let needed = fixedLength + count * RTCPReportBlock.size
        guard content.remaining >= needed else {
            throw .malformed(
                "RTCP type \(packetType) with report count \(count) needs \(needed) bytes, has \(content.remaining)")
        }
    }

    private static func readReportBlocks(
        _ count: Int, from reader: inout ByteReader
    ) throws(WireError) -> [RTCPReportBlock] {
        var blocks: [RTCPReportBlock] = []
        blocks.reserveCapacity(count)
        for _ in 0..<count { blocks.append(try RTCPReportBlock(reading: &reader)) }
        return blocks
    }

    /// The 4-byte header of an SR or RR with `count` report blocks after a `bodyLength`-byte body.
    static func header(type: UInt8, count: Int, bodyLength: Int) -> [UInt8] {
        precondition(count <= 31, "an RTCP report carries at most 31 report blocks, not \(count)")
        let length = 4 + bodyLength + count * RTCPReportBlock.size
        var bytes: [UInt8] = [0x80 | UInt8(count), type]
        bytes.reserveCapacity(length)
        bytes.appendBigEndian(UInt16(length / 4 - 1))  // in 32-bit words minus one
        return bytes
    }
}
