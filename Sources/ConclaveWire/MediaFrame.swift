/// What a Conclave Media Frame carries (ARCHITECTURE.md "Media").
public enum MediaFrameType: UInt8, Sendable, CaseIterable {
    case srtp = 0
    case srtcp = 1
    case scrambledRTP = 2
    case scrambledRTCP = 3
    case keepalive = 4

    /// RTCP rides on the same leg as RTP but is protected with the SRTCP transform.
    public var isControl: Bool { self == .srtcp || self == .scrambledRTCP }
}

/// The 16-byte header every media datagram starts with, in network byte order:
///
///     0      1      2      4            8                    16
///     | 0xC1 | type | flags| leg id u32 | leg token u64      | payload …
public struct MediaFrameHeader: Equatable, Sendable {
    public static let magic: UInt8 = 0xC1
    public static let size = 16
    /// Largest frame the relay accepts: a 1500-byte MTU payload, the header and an SRTP trailer.
    public static let maximumFrameSize = 1600

    /// `flags` bit: a keepalive that asks the relay to echo it back (RTT probe).
    public static let flagEchoRequest: UInt16 = 0x0001

    public var type: MediaFrameType
    public var flags: UInt16
    public var legID: UInt32
    public var token: UInt64

    public init(type: MediaFrameType, flags: UInt16 = 0, legID: UInt32, token: UInt64) {
        self.type = type
        self.flags = flags
        self.legID = legID
        self.token = token
    }

    /// Decodes the header at the start of `frame`; the payload follows at `size`.
    public init(parsing frame: UnsafeRawBufferPointer) throws(WireError) {
        guard frame.count >= Self.size else { throw .truncated(needed: Self.size, got: frame.count) }
        guard frame.count <= Self.maximumFrameSize else {
            throw .oversized(limit: Self.maximumFrameSize, got: frame.count)
        }
        guard frame[0] == Self.magic else { throw .badMagic(frame[0]) }
        guard let type = MediaFrameType(rawValue: frame[1]) else { throw .unknownType(frame[1]) }
        self.type = type
        flags = UInt16(bigEndian: frame.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
        legID = UInt32(bigEndian: frame.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
        token = UInt64(bigEndian: frame.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
    }

    /// Writes the 16 header bytes at `destination`.
    public func write(to destination: UnsafeMutableRawPointer) {
        destination.storeBytes(of: Self.magic, as: UInt8.self)
        destination.storeBytes(of: type.rawValue, toByteOffset: 1, as: UInt8.self)
        destination.storeBytes(of: flags.bigEndian, toByteOffset: 2, as: UInt16.self)
        destination.storeBytes(of: legID.bigEndian, toByteOffset: 4, as: UInt32.self)
        destination.storeBytes(of: token.bigEndian, toByteOffset: 8, as: UInt64.self)
    }

    /// The header as bytes (for tests and the non-hot paths).
    public var bytes: [UInt8] {
        [UInt8](unsafeUninitializedCapacity: Self.size) { buffer, count in
            write(to: UnsafeMutableRawPointer(buffer.baseAddress!))
            count = Self.size
        }
    }
}
