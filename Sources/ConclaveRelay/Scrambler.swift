import ConclaveCrypto

/// The per-direction key of an encapsulated leg: AES-128 key and 14-byte salt.
public struct ScramblingKey: Sendable, Equatable {
    public static let keyLength = 16
    public static let saltLength = 14
    public let key: [UInt8]
    public let salt: [UInt8]

    public init(key: [UInt8], salt: [UInt8]) throws(RelayError) {
        guard key.count == Self.keyLength, salt.count == Self.saltLength else {
            throw .invalidLegsFile("an encapsulated key is 16 bytes and its salt 14 bytes")
        }
        self.key = key
        self.salt = salt
    }
}

/// Encapsulated mode (the Vibe default, kept for low-power clients): the RTP or RTCP header
/// stays in clear, the rest is XORed with an AES-128-CTR keystream. This hides the payload
/// from the path; it is obfuscation, not security — no integrity, and the leg token is the
/// only authentication. The counter block follows RFC 3711 §4.1.1 with the packet's SSRC and
/// sequence number (RTP) or SSRC and a per-packet field (RTCP: the SR/RR header's length and
/// packet type, so that control packets use a keystream distinct from media).
final class Scrambler {
    private let cipher: AESCTR
    private let saltHigh: UInt64
    private let saltLow: UInt64
    private var counterBlock = (UInt64(0), UInt64(0))

    init(key: ScramblingKey) throws {
        cipher = try AESCTR(key: key.key)
        // Salt occupies counter-block bytes 0…13; bytes 14…15 are the block counter.
        let salt = key.salt + [0, 0]
        saltHigh = salt[0..<8].reduce(0) { $0 << 8 | UInt64($1) }
        saltLow = salt[8..<16].reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// Scrambles (or unscrambles: it is its own inverse) the packet in place.
    /// Returns false for a packet too short to carry its header.
    @inline(__always)
    func apply(_ packet: UnsafeMutableRawPointer, length: Int, isControl: Bool) -> Bool {
        let headerLength = isControl ? 8 : 12
        guard length >= headerLength else { return false }
        let ssrc = UInt32(bigEndian: packet.loadUnaligned(fromByteOffset: isControl ? 4 : 8, as: UInt32.self))
        let index = isControl
            ? UInt64(UInt32(bigEndian: packet.loadUnaligned(fromByteOffset: 0, as: UInt32.self))) | 1 << 47
            : UInt64(UInt16(bigEndian: packet.loadUnaligned(fromByteOffset: 2, as: UInt16.self)))
        // IV = salt ⊕ (SSRC · 2^64) ⊕ (index · 2^16), as 16 big-endian bytes.
        counterBlock = ((saltHigh ^ UInt64(ssrc)).bigEndian, (saltLow ^ (index << 16)).bigEndian)
        withUnsafeBytes(of: &counterBlock) { iv in
            cipher.apply(iv: iv, to: UnsafeMutableRawBufferPointer(start: packet + headerLength, count: length - headerLength))
        }
        return true
    }
}
