internal import CConclaveSocket
import ConclaveSystem
import ConclaveWire
import FoundationEssentials
import Glibc
import Logging

/// The relay IPC from the control worker's side: one request, one reply, in order.
public final class RelayIPCClient {
    public let socket: Int32
    private var decoder = RelayMessageDecoder()

    /// Takes ownership of `socket`.
    public init(socket: Int32) { self.socket = socket }

    deinit { close(socket) }

    public enum Failure: Error, CustomStringConvertible {
        case closed, timedOut, wire(WireError)
        public var description: String {
            switch self {
            case .closed: "the relay worker closed the relay IPC"
            case .timedOut: "the relay worker did not answer in time"
            case .wire(let error): "the relay worker sent bytes that are not the relay IPC: \(error)"
            }
        }
    }

    public func request(_ message: RelayMessage, timeout: Double = 2) throws(Failure) -> RelayMessage {
        let bytes = message.encoded()
        let sent = bytes.withUnsafeBytes { send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard sent == bytes.count else { throw .closed }
        var buffer = [UInt8](repeating: 0, count: RelayMessage.maximumBodyLength + 4)
        let deadline = monotonicSeconds() + timeout
        while true {
            do {
                if let reply = try decoder.next() { return reply }
            } catch { throw .wire(error) }
            var entry = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
            let left = deadline - monotonicSeconds()
            guard left > 0, poll(&entry, 1, Int32(left * 1000) + 1) > 0 else { throw .timedOut }
            let count = buffer.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { throw .closed }
            decoder.append(buffer[0..<count])
        }
    }
}

/// `conclave worker relay` after its privilege drop: runs the relay on the sockets the
/// supervisor bound, serves the relay IPC, and answers the supervisor.
public enum RelayWorker {
    /// `securityMode` reads the system security mode again on reload (nil: keep the current one).
    public static func run(
        relay: Relay, supervisor: WorkerChannel, initialIPC: Int32, log: Logger, securityMode: () -> SecurityMode? = { nil }
    ) throws -> Int32 {
        let server = RelayIPCServer(relay: relay)
        func serve(_ socket: Int32) throws {
            try startDetachedThread {
                defer { close(socket) }
                do {
                    try server.serve(socket: socket)
                    log.info("relay IPC closed by the control worker; legs kept, waiting for a new channel")
                } catch {
                    // An unknown message is fatal, as in relayd: the supervisor restarts us.
                    log.critical("relay IPC: \(error)")
                    exit(70)
                }
            }
        }
        try serve(initialIPC)
        try supervisor.send(.ready)
        while true {
            switch try supervisor.receive() {
            case .closed:
                log.info("supervisor gone: stopping")
                relay.shutdown()
                return 0
            case .message(.stop, _):
                log.info("stopping")
                relay.shutdown()
                return 0
            case .message(.reload, _):
                // Legs come from the control worker; only the security mode is the relay's own.
                if let mode = securityMode(), mode != relay.securityMode {
                    log.notice("security mode \(relay.securityMode.rawValue) → \(mode.rawValue) for legs added from now on")
                    relay.setSecurityMode(mode)
                }
            case .message(.statusRequest, _):
                let counts = relay.counts
                let (legs, counters) = relay.snapshot()
                // A channel is a leg's audio or video that has carried packets.
                let audio = legs.filter { $0.statistics.audioPackets > 0 }.count
                let video = legs.filter { $0.statistics.videoPackets > 0 }.count
                try supervisor.send(.status(json: """
                    {"meetings":\(counts.meetings),"legs":\(counts.legs),"threads":\(relay.threadCount),\
                    "audioChannels":\(audio),"videoChannels":\(video),\
                    "received":\(counters.received),"forwarded":\(counters.forwarded),\
                    "malformed":\(counters.malformed),"unknownLeg":\(counters.unknownLeg)}
                    """))
            case .message(.peerChannel, let descriptor?):
                log.info("new relay IPC channel from the supervisor")
                try serve(descriptor)
            case .message(let message, let descriptor):
                if let descriptor { close(descriptor) }
                log.critical("supervisor sent \(message), which a relay worker does not take")
                return 70
            }
        }
    }
}
