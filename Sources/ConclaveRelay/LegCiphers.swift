import ConclaveSRTP
import ConclaveWire

/// A leg's packet transforms as one end of it sees them: what arrives is unprotected with the
/// other end's sending keys, what leaves is protected with this end's. The relay and the load
/// generator (a participant) are the two ends.
struct LegCiphers {
    enum End { case relay, participant }

    enum Unprotected {
        case plain(length: Int)
        case replayed
        /// Failed authentication, or a frame type this leg's mode does not carry.
        case rejected
    }

    private let receivingSRTP: SRTPContext?
    private let sendingSRTP: SRTPContext?
    private let receivingScrambler: Scrambler?
    private let sendingScrambler: Scrambler?

    init(_ protection: LegProtection, at end: End) throws {
        switch protection {
        case .srtp(let profile, let clientToRelay, let relayToClient):
            let (received, sent) = end == .relay ? (clientToRelay, relayToClient) : (relayToClient, clientToRelay)
            receivingSRTP = try SRTPContext(profile: profile, keys: received, direction: .inbound)
            sendingSRTP = try SRTPContext(profile: profile, keys: sent, direction: .outbound)
            receivingScrambler = nil
            sendingScrambler = nil
        case .encapsulated(let clientToRelay, let relayToClient):
            let (received, sent) = end == .relay ? (clientToRelay, relayToClient) : (relayToClient, clientToRelay)
            receivingSRTP = nil
            sendingSRTP = nil
            receivingScrambler = try Scrambler(key: received)
            sendingScrambler = try Scrambler(key: sent)
        }
    }

    /// The frame type this leg sends media (or control) in.
    func frameType(isControl: Bool) -> MediaFrameType {
        sendingSRTP != nil ? (isControl ? .srtcp : .srtp) : (isControl ? .scrambledRTCP : .scrambledRTP)
    }

    /// Authenticates and decrypts (or unmasks) the payload of a `type` frame in place.
    @inline(__always)
    func unprotect(_ payload: UnsafeMutableRawPointer, length: Int, type: MediaFrameType) -> Unprotected {
        switch type {
        case .srtp, .srtcp:
            guard let context = receivingSRTP else { return .rejected }  // SRTP on an encapsulated leg
            do {
                return .plain(length: type == .srtp
                    ? try context.unprotect(payload, length: length)
                    : try context.unprotectRTCP(payload, length: length))
            } catch .replayed, .tooOld {
                return .replayed
            } catch {
                return .rejected
            }
        case .scrambledRTP, .scrambledRTCP:
            // Plain (masked) media on an SRTP leg is refused: secured legs stay secured.
            guard let scrambler = receivingScrambler, scrambler.apply(payload, length: length, isControl: type.isControl) else {
                return .rejected
            }
            return .plain(length: length)
        case .keepalive:
            return .rejected
        }
    }

    /// Protects (or masks) a packet in place for a `type` frame; nil if this leg cannot.
    @inline(__always)
    func protect(_ packet: UnsafeMutableRawPointer, length: Int, capacity: Int, type: MediaFrameType) -> Int? {
        switch type {
        case .srtp: return try? sendingSRTP?.protect(packet, length: length, capacity: capacity)
        case .srtcp: return try? sendingSRTP?.protectRTCP(packet, length: length, capacity: capacity)
        case .scrambledRTP, .scrambledRTCP:
            guard let scrambler = sendingScrambler, scrambler.apply(packet, length: length, isControl: type.isControl) else {
                return nil
            }
            return length
        case .keepalive: return nil
        }
    }
}
