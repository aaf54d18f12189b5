import ConclaveRelay
import ConclaveSystem
import ConclaveWire
import FoundationEssentials
import Glibc
import Logging
import SystemPackage

/// `conclave worker control` after its privilege drop. It holds the meetings and legs and hands
/// each leg, with its keys, to the relay worker over the relay IPC. Until joins exist (the
/// control server), the legs come from the legs file the configuration names; a reload
/// re-reads it and sends only the difference, and a restarted relay worker gets them all again.
public final class ControlWorker {
    private let stateDirectory: FilePath
    private let supervisor: WorkerChannel
    private let log: Logger
    private var relay: RelayIPCClient?
    /// What the relay worker has acknowledged.
    private var sent: [UInt32: LegDescription] = [:]
    private var meetings: [UInt32: MediaMode] = [:]
    private var lastError: String?

    public init(stateDirectory: FilePath, supervisor: WorkerChannel, relayIPC: Int32, log: Logger) {
        self.stateDirectory = stateDirectory
        self.supervisor = supervisor
        self.log = log
        relay = RelayIPCClient(socket: relayIPC)
    }

    public func run() throws -> Int32 {
        synchronize()
        try supervisor.send(.ready)
        while true {
            var descriptors = [pollfd(fd: supervisor.descriptor, events: Int16(POLLIN), revents: 0)]
            if let relay { descriptors.append(pollfd(fd: relay.socket, events: Int16(POLLIN), revents: 0)) }
            guard poll(&descriptors, nfds_t(descriptors.count), -1) > 0 else { continue }
            if descriptors.count > 1, descriptors[1].revents != 0 {
                // The relay IPC is request/reply: readable between requests means it closed.
                log.warning("relay worker closed the relay IPC; waiting for the supervisor to restart it")
                relay = nil
                sent = [:]
            }
            guard descriptors[0].revents != 0 else { continue }
            switch try supervisor.receive() {
            case .closed:
                log.info("supervisor gone: stopping")
                return 0
            case .message(.stop, _):
                log.info("stopping")
                return 0
            case .message(.reload, _):
                log.info("reload")
                synchronize()
            case .message(.statusRequest, _):
                let legs = sent.count, meetingCount = Set(sent.values.map(\.meeting)).count
                let error = lastError.map { ",\"lastError\":\(Self.quoted($0))" } ?? ""
                try supervisor.send(.status(json: "{\"legs\":\(legs),\"meetings\":\(meetingCount),\"relayConnected\":\(relay != nil)\(error)}"))
            case .message(.peerChannel, let descriptor?):
                log.info("relay worker restarted: sending every leg again")
                relay = RelayIPCClient(socket: descriptor)
                sent = [:]
                meetings = [:]
                synchronize()
            case .message(let message, let descriptor):
                if let descriptor { close(descriptor) }
                log.critical("supervisor sent \(message), which a control worker does not take")
                return 70
            }
        }
    }

    /// Brings the relay to the legs the legs file names: removes what is gone, adds what is new
    /// or changed. A bad file is reported and changes nothing.
    private func synchronize() {
        let wanted: [UInt32: LegDescription]
        do { wanted = try loadLegs() } catch {
            lastError = "\(error)"
            log.error("legs not loaded: \(error)")
            return
        }
        lastError = nil
        guard let relay else { return }
        do {
            for (id, leg) in sent where wanted[id] != leg {
                try expectAck(relay.request(.removeLeg(legID: id)), "remove leg \(id)")
                sent[id] = nil
            }
            for leg in wanted.values.sorted(by: { $0.leg < $1.leg }) where sent[leg.leg] == nil {
                if meetings[leg.meeting] != leg.protection.mode {
                    try expectAck(relay.request(.startMeeting(meetingID: leg.meeting, mode: leg.protection.mode.wire)), "start meeting \(leg.meeting)")
                    meetings[leg.meeting] = leg.protection.mode
                }
                try expectAck(relay.request(.addLeg(leg.setup)), "add leg \(leg.leg)")
                sent[leg.leg] = leg
            }
            log.info("relay holds \(sent.count) legs in \(Set(sent.values.map(\.meeting)).count) meetings")
        } catch {
            lastError = "\(error)"
            log.error("relay IPC: \(error)")
        }
    }

    private struct Refused: Error, CustomStringConvertible {
        let description: String
    }

    private func expectAck(_ reply: RelayMessage, _ what: String) throws {
        switch reply {
        case .ack: return
        case .error(let code, let message):
            // A relay that kept its legs across our restart already has them: that is fine.
            if code == RelayIPCServer.ErrorCode.duplicateLeg.rawValue { return }
            throw Refused(description: "\(what): relay refused (\(code)): \(message)")
        default: throw Refused(description: "\(what): unexpected reply \(reply)")
        }
    }

    private func loadLegs() throws -> [UInt32: LegDescription] {
        let configuration = try DaemonConfiguration.load(stateDirectory: stateDirectory)
        guard let name = configuration.legsFile else { return [:] }
        let path = name.hasPrefix("/") ? FilePath(name) : stateDirectory.appending(name)
        let file = try LegsFile(parsing: Data(try Files.read(path)))
        return Dictionary(uniqueKeysWithValues: file.legs.map { ($0.leg, $0) })
    }

    private static func quoted(_ text: String) -> String {
        let encoder = JSONEncoder()
        return (try? String(decoding: encoder.encode(text), as: UTF8.self)) ?? "\"\""
    }
}
