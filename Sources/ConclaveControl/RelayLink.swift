import ConclaveRelay
import ConclaveWire
import Logging

/// The control worker's view of the relay worker: what the relay should hold (meetings and
/// legs from joins, plus those of the legs file) and the relay IPC that puts it there. When the
/// relay worker restarts, the supervisor hands over a new socket and everything is sent again,
/// so a relay crash costs media for a moment, never a meeting.
public final class RelayLink {
    public enum Failure: Error, CustomStringConvertible {
        case notConnected
        case refused(String)

        public var description: String {
            switch self {
            case .notConnected: "the relay worker is not connected (it is being restarted)"
            case .refused(let reason): reason
            }
        }
    }

    private var client: RelayIPCClient?
    private let log: Logger
    private var meetings: [UInt32: MediaMode] = [:]
    private var legs: [UInt32: LegDescription] = [:]
    /// The legs (and their meetings) that came from the legs file, so a reload replaces only those.
    private var fileLegs: Set<UInt32> = []
    private var fileMeetings: Set<UInt32> = []
    public private(set) var lastError: String?

    public init(socket: Int32?, log: Logger) {
        client = socket.map(RelayIPCClient.init(socket:))
        self.log = log
    }

    public var isConnected: Bool { client != nil }
    public var legCount: Int { legs.count }
    public var meetingCount: Int { meetings.count }

    public func meetingNumberInUse(_ number: UInt32) -> Bool { meetings[number] != nil }
    public func legInUse(_ leg: UInt32) -> Bool { legs[leg] != nil }

    /// A new relay IPC socket (the relay worker was restarted): replays every meeting and leg.
    public func reconnect(socket: Int32) {
        client = RelayIPCClient(socket: socket)
        do {
            for (number, mode) in meetings.sorted(by: { $0.key < $1.key }) {
                try send(.startMeeting(meetingID: number, mode: mode.wire), "start meeting \(number)")
            }
            for leg in legs.values.sorted(by: { $0.leg < $1.leg }) {
                try send(.addLeg(leg.setup), "add leg \(leg.leg)", tolerating: .duplicateLeg)
            }
            lastError = nil
            log.info("relay worker holds \(legs.count) legs in \(meetings.count) meetings again")
        } catch {
            record(error)
        }
    }

    public func startMeeting(_ number: UInt32, mode: MediaMode) throws(Failure) {
        try send(.startMeeting(meetingID: number, mode: mode.wire), "start meeting \(number)")
        meetings[number] = mode
    }

    public func editMeeting(_ number: UInt32, mode: MediaMode) throws(Failure) {
        try send(.editMeeting(meetingID: number, mode: mode.wire), "edit meeting \(number)")
        meetings[number] = mode
    }

    /// Stopping never fails for the caller: the meeting is forgotten here, and a relay that
    /// missed the request loses it on its next restart at the latest.
    public func stopMeeting(_ number: UInt32) {
        meetings[number] = nil
        do { try send(.stopMeeting(meetingID: number), "stop meeting \(number)", tolerating: .unknownMeeting) } catch { record(error) }
    }

    public func addLeg(_ leg: LegDescription) throws(Failure) {
        try send(.addLeg(leg.setup), "add leg \(leg.leg)")
        legs[leg.leg] = leg
    }

    public func removeLeg(_ id: UInt32) {
        legs[id] = nil
        do { try send(.removeLeg(legID: id), "remove leg \(id)", tolerating: .unknownLeg) } catch { record(error) }
    }

    /// Brings the legs-file part of the relay to `wanted`: removes what is gone, adds what is
    /// new or changed, and leaves joined legs alone.
    public func synchronizeFileLegs(_ wanted: [LegDescription]) throws(Failure) {
        let wantedByID = Dictionary(wanted.map { ($0.leg, $0) }, uniquingKeysWith: { first, _ in first })
        for id in fileLegs.sorted() where wantedByID[id] != legs[id] {
            removeLeg(id)
            fileLegs.remove(id)
        }
        let wantedMeetings = Set(wanted.map(\.meeting))
        for number in fileMeetings.subtracting(wantedMeetings).sorted() {
            stopMeeting(number)
            fileMeetings.remove(number)
        }
        for leg in wanted.sorted(by: { $0.leg < $1.leg }) where legs[leg.leg] == nil {
            if meetings[leg.meeting] != leg.protection.mode {
                try startMeeting(leg.meeting, mode: leg.protection.mode)
                fileMeetings.insert(leg.meeting)
            }
            try addLeg(leg)
            fileLegs.insert(leg.leg)
        }
    }

    /// Per-leg counters from the relay (nil while it is not connected).
    public func statistics() -> [RelayMessage.LegStats]? {
        guard let client else { return nil }
        do {
            let id = UInt32.random(in: 1...UInt32.max)
            guard case .statsReply(id, let stats) = try client.request(.statsQuery(requestID: id)) else { return nil }
            return stats
        } catch {
            record(error)
            return nil
        }
    }

    private func send(_ message: RelayMessage, _ what: String, tolerating tolerated: RelayIPCServer.ErrorCode? = nil) throws(Failure) {
        guard let client else { throw .notConnected }
        let reply: RelayMessage
        do { reply = try client.request(message) } catch {
            // The relay worker died or hung: forget the socket; the supervisor sends a new one.
            self.client = nil
            throw .refused("\(what): \(error)")
        }
        switch reply {
        case .ack: return
        case .error(let code, _) where code == tolerated?.rawValue: return
        case .error(let code, let message): throw .refused("\(what): relay refused (\(code)): \(message)")
        default: throw .refused("\(what): unexpected reply \(reply)")
        }
    }

    private func record(_ error: Error) {
        lastError = "\(error)"
        log.error("relay IPC: \(error)")
    }
}
