/// An RTP packet (RFC 3550 §5.1) read in place. It runs once per packet on the relay's hot path,
/// so it copies nothing and allocates nothing. It borrows `bytes`: use it only while they live.
///
///     0                   1                   2                   3
///     |V=2|P|X|  CC   |M|     PT      |       sequence number         |
///     |                           timestamp                           |
///     |                             SSRC                              |
///     |                 CSRC list (CC × 4 bytes) …                    |
///     |   extension profile   |  extension length (32-bit words)      |  if X
///     |                    extension … , payload … , padding (P)      |
public struct RTPHeaderView {
    public static let fixedHeaderSize = 12

    public let bytes: UnsafeRawBufferPointer
    /// The fixed header, the CSRC list and the header extension.
    public let headerLength: Int
    /// The bytes between the header and the padding.
    public let payloadLength: Int

    /// Checks the version, and that the CSRC list, the extension and the padding fit in `bytes`.
    public init(_ bytes: UnsafeRawBufferPointer) throws(WireError) {
        guard bytes.count >= Self.fixedHeaderSize else {
            throw .truncated(needed: Self.fixedHeaderSize, got: bytes.count)
        }
        let first = bytes[0]
        guard first >> 6 == 2 else { throw .badVersion(first >> 6) }
        var headerLength = Self.fixedHeaderSize + 4 * Int(first & 0x0f)
        if first & 0x10 != 0 {
            guard bytes.count >= headerLength + 4 else { throw .truncated(needed: headerLength + 4, got: bytes.count) }
            let words = UInt16(bigEndian: bytes.loadUnaligned(fromByteOffset: headerLength + 2, as: UInt16.self))
            headerLength += 4 + 4 * Int(words)
        }
        guard bytes.count >= headerLength else { throw .truncated(needed: headerLength, got: bytes.count) }
        var padding = 0
        if first & 0x20 != 0 {
            // The last byte counts the padding, itself included (RFC 3550 §5.1).
            padding = Int(bytes[bytes.count - 1])
            guard padding >= 1, padding <= bytes.count - headerLength else {
                throw .malformed(
                    "RTP padding of \(padding) bytes after a \(headerLength)-byte header in \(bytes.count) bytes")
            }
        }
        self.bytes = bytes
        self.headerLength = headerLength
        payloadLength = bytes.count - headerLength - padding
    }

    public var marker: Bool { bytes[1] & 0x80 != 0 }
    public var payloadType: UInt8 { bytes[1] & 0x7f }
    public var sequenceNumber: UInt16 { UInt16(bigEndian: bytes.loadUnaligned(fromByteOffset: 2, as: UInt16.self)) }
    public var timestamp: UInt32 { UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: 4, as: UInt32.self)) }
    public var ssrc: UInt32 { UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt32.self)) }

    public var payload: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[headerLength..<headerLength + payloadLength])
    }

    /// RFC 5761 §4: with RTP and RTCP on one port, a second byte of 192–223 is an RTCP packet type.
    /// (It would be RTP payload types 64–95 with the marker set, which is why those may not be used.)
    public static func isRTCP(_ packet: UnsafeRawBufferPointer) -> Bool {
        packet.count >= 2 && (192...223).contains(packet[1])
    }
}
