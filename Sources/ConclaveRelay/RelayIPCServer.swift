internal import CConclaveSocket
import ConclaveSRTP
import ConclaveWire
import Glibc
import Synchronization

extension LegDescription {
    /// A leg as the relay IPC carries it (key material = master key followed by salt).
    public init(_ setup: RelayMessage.LegSetup) throws(RelayError) {
        let inbound = setup.inboundKey.bytes, outbound = setup.outboundKey.bytes
        let protection: LegProtection
        do {
            switch setup.profile {
            case .aeadAES128GCM, .aesCM128HMACSHA1_80:
                let profile: SRTPProfile = setup.profile == .aeadAES128GCM ? .aeadAES128GCM : .aesCM128HMACSHA1_80
                protection = .srtp(
                    profile,
                    clientToRelay: try SRTPKeyMaterial(key: Array(inbound.prefix(16)), salt: Array(inbound.dropFirst(16)), profile: profile),
                    relayToClient: try SRTPKeyMaterial(key: Array(outbound.prefix(16)), salt: Array(outbound.dropFirst(16)), profile: profile))
            case .encapsulated:
                protection = .encapsulated(
                    clientToRelay: try ScramblingKey(key: Array(inbound.prefix(16)), salt: Array(inbound.dropFirst(16))),
                    relayToClient: try ScramblingKey(key: Array(outbound.prefix(16)), salt: Array(outbound.dropFirst(16))))
            }
        } catch let error as RelayError {
            throw error
        } catch {
            throw .invalidLegsFile("leg \(setup.legID): \(error)")
        }
        self.init(
            leg: setup.legID, token: setup.token, meeting: setup.meetingID, protection: protection,
            audioPayloadTypes: setup.audioPayloadTypes, videoPayloadTypes: setup.videoPayloadTypes)
    }

    /// This leg as an `addLeg` message of the relay IPC.
    public var setup: RelayMessage.LegSetup {
        let (profile, inbound, outbound): (RelayMessage.LegProfile, [UInt8], [UInt8]) = switch protection {
        case .srtp(let profile, let clientToRelay, let relayToClient):
            (profile == .aeadAES128GCM ? .aeadAES128GCM : .aesCM128HMACSHA1_80,
             clientToRelay.key + clientToRelay.salt, relayToClient.key + relayToClient.salt)
        case .encapsulated(let clientToRelay, let relayToClient):
            (.encapsulated, clientToRelay.key + clientToRelay.salt, relayToClient.key + relayToClient.salt)
        }
        return RelayMessage.LegSetup(
            legID: leg, token: token, meetingID: meeting, profile: profile, inboundKey: .init(inbound),
            outboundKey: .init(outbound), audioPayloadTypes: audioPayloadTypes, videoPayloadTypes: videoPayloadTypes)
    }
}

extension MediaMode {
    public init(_ mode: RelayMessage.MeetingMode) { self = mode == .srtp ? .srtp : .encapsulated }
    public var wire: RelayMessage.MeetingMode { self == .srtp ? .srtp : .encapsulated }
}

/// The relay worker's end of the relay IPC: applies the control worker's requests to the
/// relay and answers each in order with `ack`, `error` or `statsReply`.
public final class RelayIPCServer: @unchecked Sendable {
    /// Error codes of `RelayMessage.error`, documented in docs/relay-ipc.md.
    public enum ErrorCode: UInt16 {
        case badRequest = 1, duplicateLeg, unknownLeg, unknownMeeting, modeMismatch, refusedBySecurityMode, invalidKeys, failed
    }

    private let relay: Relay
    /// Serializes requests: a restarted control worker's channel may open before the old one ends.
    private let lock = Mutex(())
    /// Legs as added, so that a control worker that restarted can send its legs again: the same
    /// leg with the same keys is acknowledged without touching the running one.
    private var legs: [UInt32: LegDescription] = [:]

    public init(relay: Relay) { self.relay = relay }

    public func respond(to message: RelayMessage) -> RelayMessage {
        lock.withLock { _ in respondLocked(to: message) }
    }

    private func respondLocked(to message: RelayMessage) -> RelayMessage {
        do {
            switch message {
            case .addLeg(let setup):
                let leg = try LegDescription(setup)
                if let existing = legs[leg.leg], existing == leg { return .ack(.addLeg) }
                try relay.addLeg(leg)
                legs[leg.leg] = leg
            case .removeLeg(let id):
                try relay.removeLeg(id)
                legs[id] = nil
            case .startMeeting(let id, let mode):
                try relay.startMeeting(id, mode: MediaMode(mode))
            case .stopMeeting(let id):
                try relay.stopMeeting(id)
                legs = legs.filter { $0.value.meeting != id }
            case .editMeeting(let id, let mode):
                try relay.editMeeting(id, mode: MediaMode(mode))
            case .statsQuery(let requestID):
                let snapshot = relay.snapshot().legs.prefix(RelayMessage.maximumLegStatsPerReply)
                return .statsReply(requestID: requestID, legs: snapshot.map { leg in
                    let statistics = leg.statistics
                    return .init(
                        legID: leg.leg, packetsIn: statistics.packetsIn, packetsOut: statistics.packetsOut,
                        bytesIn: statistics.bytesIn, bytesOut: statistics.bytesOut, lost: statistics.lost,
                        jitter: UInt32(min(statistics.jitterMilliseconds * 90, Double(UInt32.max))),
                        authFailures: statistics.authenticationFailures, replays: statistics.replays,
                        transport: leg.transport == "udp" ? .udp : leg.transport == "tcp" ? .tcp : .none, remotePort: leg.remotePort,
                        reportedLoss: UInt8(min(255, (statistics.reportedLossFraction * 256).rounded())),
                        roundTripMicroseconds: statistics.roundTripMilliseconds.map { UInt32(min(max(0, $0 * 1000), Double(UInt32.max - 1))) },
                        audioPackets: statistics.audioPackets, videoPackets: statistics.videoPackets, sendDrops: statistics.sendDrops)
                })
            case .statsReply, .ack, .error:
                return .error(code: ErrorCode.badRequest.rawValue, message: "\(message.kind) is not a request")
            }
            return .ack(message.kind)
        } catch let error as RelayError {
            return .error(code: Self.code(for: error).rawValue, message: error.description)
        } catch {
            return .error(code: ErrorCode.failed.rawValue, message: "\(error)")
        }
    }

    private static func code(for error: RelayError) -> ErrorCode {
        switch error {
        case .duplicateLeg: .duplicateLeg
        case .unknownLeg: .unknownLeg
        case .unknownMeeting: .unknownMeeting
        case .modeMismatch: .modeMismatch
        case .refusedBySecurityMode: .refusedBySecurityMode
        case .invalidLegsFile: .invalidKeys
        case .invalidAddress, .system: .failed
        }
    }

    /// Serves requests from `socket` until the peer closes it (returns normally) or sends bytes
    /// that are not the relay IPC (throws: an unknown message is fatal, as in relayd).
    public func serve(socket: Int32) throws(WireError) {
        var decoder = RelayMessageDecoder()
        var buffer = [UInt8](repeating: 0, count: RelayMessage.maximumBodyLength + 4)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return }
            decoder.append(buffer[0..<count])
            while let message = try decoder.next() {
                let reply = respond(to: message).encoded()
                _ = reply.withUnsafeBytes { send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            }
        }
    }
}
