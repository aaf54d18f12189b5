import ConclaveRelay
import ConclaveSRTP

/// Media keys derived on both ends of the control connection with the TLS exporter (RFC 8446
/// §7.5; RFC 5705 for TLS 1.2): no key ever travels as a message (ARCHITECTURE.md "Control").
public enum MediaKeyDerivation {
    public static let label = "EXPORTER-conclave-media"

    /// The exporter context: the leg id, 4 bytes big-endian, so each leg gets its own keys.
    public static func context(leg: UInt32) -> [UInt8] {
        [UInt8(leg >> 24), UInt8(truncatingIfNeeded: leg >> 16), UInt8(truncatingIfNeeded: leg >> 8), UInt8(truncatingIfNeeded: leg)]
    }

    public enum Profile: Sendable, Equatable {
        case srtp(SRTPProfile)
        case encapsulated

        var keyLength: Int { 16 }
        var saltLength: Int {
            switch self {
            case .srtp(let profile): profile.saltLength
            case .encapsulated: ScramblingKey.saltLength
            }
        }
    }

    /// Exporter bytes to ask for: a key and salt per direction.
    public static func length(for profile: Profile) -> Int { 2 * (profile.keyLength + profile.saltLength) }

    /// Splits the exporter output: client→relay key, client→relay salt, relay→client key,
    /// relay→client salt, in that order.
    public static func protection(exporterOutput bytes: [UInt8], profile: Profile) throws -> LegProtection {
        precondition(bytes.count == length(for: profile), "exporter output of the wrong length")
        let half = profile.keyLength + profile.saltLength
        let clientToRelay = Array(bytes[0..<half]), relayToClient = Array(bytes[half...])
        func split(_ material: [UInt8]) -> (key: [UInt8], salt: [UInt8]) {
            (Array(material.prefix(profile.keyLength)), Array(material.dropFirst(profile.keyLength)))
        }
        let (upKey, upSalt) = split(clientToRelay), (downKey, downSalt) = split(relayToClient)
        switch profile {
        case .srtp(let srtp):
            return .srtp(
                srtp, clientToRelay: try SRTPKeyMaterial(key: upKey, salt: upSalt, profile: srtp),
                relayToClient: try SRTPKeyMaterial(key: downKey, salt: downSalt, profile: srtp))
        case .encapsulated:
            return .encapsulated(
                clientToRelay: try ScramblingKey(key: upKey, salt: upSalt),
                relayToClient: try ScramblingKey(key: downKey, salt: downSalt))
        }
    }
}
