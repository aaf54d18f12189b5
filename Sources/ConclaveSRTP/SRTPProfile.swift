/// The SRTP protection profiles the relay speaks (RFC 7714 and RFC 3711 names).
public enum SRTPProfile: String, Sendable, CaseIterable, Codable {
    /// AES-128 in Galois/Counter mode with a 16-byte tag (RFC 7714): the default.
    case aeadAES128GCM = "AEAD_AES_128_GCM"
    /// AES-128 counter mode with an 80-bit HMAC-SHA1 tag (RFC 3711).
    case aesCM128HMACSHA1_80 = "AES_CM_128_HMAC_SHA1_80"

    /// Master key length in bytes.
    public var keyLength: Int { 16 }

    /// Master salt length in bytes (RFC 7714 §12 uses a 96-bit salt for GCM).
    public var saltLength: Int {
        switch self {
        case .aeadAES128GCM: 12
        case .aesCM128HMACSHA1_80: 14
        }
    }

    /// Bytes SRTP protection adds to an RTP packet.
    public var rtpOverhead: Int {
        switch self {
        case .aeadAES128GCM: 16
        case .aesCM128HMACSHA1_80: 10
        }
    }

    /// Bytes SRTCP protection adds to an RTCP packet (tag plus the 4-byte SRTCP index).
    public var rtcpOverhead: Int { rtpOverhead + 4 }
}

/// A master key and salt for one direction of one leg.
public struct SRTPKeyMaterial: Sendable, Equatable {
    public let key: [UInt8]
    public let salt: [UInt8]

    public init(key: [UInt8], salt: [UInt8], profile: SRTPProfile) throws(SRTPError) {
        guard key.count == profile.keyLength else {
            throw .badKeyLength(expected: profile.keyLength, got: key.count)
        }
        guard salt.count == profile.saltLength else {
            throw .badKeyLength(expected: profile.saltLength, got: salt.count)
        }
        self.key = key
        self.salt = salt
    }
}
