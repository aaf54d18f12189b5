import ConclaveSystem
import ConclaveWire
import Glibc
import NIOCore
import NIOPosix
import Synchronization

/// The media relay: N forwarding threads, each with its own UDP port and its own meetings,
/// plus the TCP fallback listener. Meetings are sharded by id: meeting `m` lives on thread
/// `m % threads`, whose UDP port is `basePort + m % threads`.
public final class Relay: @unchecked Sendable {
    public struct Configuration: Sendable {
        public var listen: String
        public var basePort: UInt16
        public var threads: Int
        /// 0 disables the TCP fallback.
        public var tcpPort: UInt16
        public var securityMode: SecurityMode
        /// Socket buffer size asked for each UDP socket (forced when the process may).
        public var socketBufferBytes: Int
        /// Stamp every datagram on receive and report the relay's residence time (benchmarks).
        public var measureResidence = false

        public init(
            listen: String = "0.0.0.0", basePort: UInt16 = 3478, threads: Int = Relay.defaultThreadCount,
            tcpPort: UInt16 = 0, securityMode: SecurityMode = .mixed, socketBufferBytes: Int = 8 << 20
        ) {
            self.listen = listen
            self.basePort = basePort
            self.threads = threads
            self.tcpPort = tcpPort
            self.securityMode = securityMode
            self.socketBufferBytes = socketBufferBytes
        }
    }

    /// One per core less one (the control plane and the kernel get the rest), at least one.
    public static var defaultThreadCount: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))) - 1) }

    public let configuration: Configuration
    private let threads: [RelayThread]
    public var threadCount: Int { threads.count }
    private let registry = Mutex(Registry())
    /// The system security mode now (it starts as `configuration.securityMode`; a reload may change it).
    private let mode: Mutex<SecurityMode>
    private var tcpGroup: MultiThreadedEventLoopGroup?
    private var tcpChannel: Channel?

    /// Which leg and meeting exist and where: checked before any command reaches a thread.
    private struct Registry {
        var legMeeting: [UInt32: UInt32] = [:]
        var meetingMode: [UInt32: MediaMode] = [:]
        var meetingLegs: [UInt32: Int] = [:]
    }

    /// Binds the UDP sockets (`basePort …`) and the TCP listener, and starts the threads.
    public convenience init(configuration: Configuration) throws {
        var sockets: [Int32] = []
        do {
            for index in 0..<configuration.threads {
                let port = UInt16(Int(configuration.basePort) + index)
                sockets.append(try SocketBinding.udp(configuration.listen, port, bufferBytes: configuration.socketBufferBytes))
            }
        } catch {
            for socket in sockets { close(socket) }
            throw error
        }
        try self.init(configuration: configuration, udpSockets: sockets, tcpListener: nil)
    }

    /// Serves on sockets bound by someone else (the supervisor): one UDP socket per thread, and
    /// a listening TCP socket for the fallback (or nil: bind `configuration.tcpPort` if not 0).
    /// The relay owns the descriptors from here on.
    public init(configuration: Configuration, udpSockets: [Int32], tcpListener: Int32?) throws {
        precondition(!udpSockets.isEmpty)
        self.configuration = configuration
        mode = Mutex(configuration.securityMode)
        threads = try udpSockets.enumerated().map {
            try RelayThread(index: $0.offset, socket: $0.element, measureResidence: configuration.measureResidence)
        }
        for thread in threads { try thread.start() }
        if tcpListener != nil || configuration.tcpPort != 0 { try startTCP(adopting: tcpListener) }
    }

    /// How many meetings and legs the relay holds.
    public var counts: (meetings: Int, legs: Int) {
        registry.withLock { ($0.meetingMode.count, $0.legMeeting.count) }
    }

    /// Stops the TCP listener and every thread, and closes the sockets.
    public func shutdown() {
        try? tcpChannel?.close().wait()
        try? tcpGroup?.syncShutdownGracefully()
        tcpChannel = nil
        tcpGroup = nil
        for thread in threads {
            thread.stop()
            close(thread.socket)
        }
    }

    public var tcpPort: Int? { tcpChannel?.localAddress?.port }

    public var securityMode: SecurityMode { mode.withLock { $0 } }

    /// Applies to legs and meetings added from now on; running ones are not touched.
    public func setSecurityMode(_ new: SecurityMode) { mode.withLock { $0 = new } }

    private func thread(forMeeting meeting: UInt32) -> RelayThread { threads[Int(meeting % UInt32(threads.count))] }

    // MARK: Legs and meetings

    /// Creates the leg's SRTP contexts here, then hands the leg to its meeting's thread.
    public func addLeg(_ description: LegDescription) throws {
        let mode = description.protection.mode
        if securityMode == .secured && mode != .srtp {
            throw RelayError.refusedBySecurityMode(leg: description.leg)
        }
        let leg = try MediaLeg(description)
        try registry.withLock { registry throws(RelayError) in
            guard registry.legMeeting[description.leg] == nil else { throw .duplicateLeg(description.leg) }
            if let existing = registry.meetingMode[description.meeting], existing != mode {
                throw .modeMismatch(leg: description.leg, meeting: description.meeting)
            }
            registry.legMeeting[description.leg] = description.meeting
            registry.meetingMode[description.meeting] = mode
            registry.meetingLegs[description.meeting, default: 0] += 1
        }
        thread(forMeeting: description.meeting).send(.addLeg(leg))
    }

    public func removeLeg(_ id: UInt32) throws {
        let meeting = try registry.withLock { registry throws(RelayError) -> UInt32 in
            guard let meeting = registry.legMeeting.removeValue(forKey: id) else { throw .unknownLeg(id) }
            registry.meetingLegs[meeting, default: 1] -= 1
            return meeting
        }
        thread(forMeeting: meeting).send(.removeLeg(id))
    }

    /// Starts an empty meeting with its mode (legs may also create it implicitly).
    public func startMeeting(_ id: UInt32, mode: MediaMode) throws {
        if securityMode == .secured && mode != .srtp {
            throw RelayError.refusedBySecurityMode(leg: 0)
        }
        try registry.withLock { registry throws(RelayError) in
            if let existing = registry.meetingMode[id], existing != mode { throw .modeMismatch(leg: 0, meeting: id) }
            registry.meetingMode[id] = mode
        }
        thread(forMeeting: id).send(.addMeeting(id, mode))
    }

    /// Changes a meeting's mode; only an empty meeting can change (its legs hold keys of one kind).
    public func editMeeting(_ id: UInt32, mode: MediaMode) throws {
        if securityMode == .secured && mode != .srtp {
            throw RelayError.refusedBySecurityMode(leg: 0)
        }
        try registry.withLock { registry throws(RelayError) in
            guard let existing = registry.meetingMode[id] else { throw .unknownMeeting(id) }
            guard existing == mode || registry.meetingLegs[id, default: 0] == 0 else { throw .modeMismatch(leg: 0, meeting: id) }
            registry.meetingMode[id] = mode
        }
        thread(forMeeting: id).send(.removeMeeting(id))
        thread(forMeeting: id).send(.addMeeting(id, mode))
    }

    /// Stops a meeting: its legs are removed at once; other meetings are not touched.
    public func stopMeeting(_ id: UInt32) throws {
        try registry.withLock { registry throws(RelayError) in
            guard registry.meetingMode.removeValue(forKey: id) != nil else { throw .unknownMeeting(id) }
            registry.legMeeting = registry.legMeeting.filter { $0.value != id }
            registry.meetingLegs[id] = nil
        }
        thread(forMeeting: id).send(.removeMeeting(id))
    }

    /// A copy of every leg's statistics and the relay's own counters, from every thread.
    public func snapshot() -> (legs: [LegSnapshot], counters: RelayCounters) {
        let results = Mutex<([LegSnapshot], RelayCounters, [UInt32]?, Int)>(([], RelayCounters(), nil, 0))
        for thread in threads {
            thread.send(.snapshot { legs, counters, residence in
                results.withLock { result in
                    result.0 += legs
                    result.1 = result.1 + counters
                    if let residence {
                        result.2 = result.2.map { zip($0, residence).map { $0 &+ $1 } } ?? residence
                    }
                    result.3 += 1
                }
            })
        }
        // Threads answer within one batch; wait a bounded time so a wedged thread cannot hang us.
        let deadline = monotonicSeconds() + 2
        while results.withLock({ $0.3 }) < threads.count && monotonicSeconds() < deadline { usleep(1000) }
        var (legs, counters, residence, _) = results.withLock { $0 }
        if let residence {
            let total = residence.reduce(UInt64(0)) { $0 + UInt64($1) }
            func percentile(_ fraction: Double) -> Int {
                let rank = UInt64((Double(total) * fraction).rounded(.up))
                var seen: UInt64 = 0
                for (microseconds, count) in residence.enumerated() {
                    seen += UInt64(count)
                    if seen >= rank { return microseconds }
                }
                return residence.count - 1
            }
            counters.residenceSamples = total
            if total > 0 {
                counters.residenceP50Microseconds = percentile(0.5)
                counters.residenceP99Microseconds = percentile(0.99)
                counters.residenceP999Microseconds = percentile(0.999)
            }
        }
        legs.sort { $0.leg < $1.leg }
        return (legs, counters)
    }

    // MARK: TCP fallback

    func deliverTCPFrame(_ frame: [UInt8], from connection: TCPMediaConnection) {
        guard frame.count >= MediaFrameHeader.size else { return }
        let legID = UInt32(frame[4]) << 24 | UInt32(frame[5]) << 16 | UInt32(frame[6]) << 8 | UInt32(frame[7])
        guard let meeting = registry.withLock({ $0.legMeeting[legID] }) else { return }
        thread(forMeeting: meeting).send(.tcpFrame(frame, connection))
    }

    func tcpConnectionClosed(_ connection: TCPMediaConnection) {
        for thread in threads { thread.send(.tcpClosed(connection)) }
    }

    private func startTCP(adopting listener: Int32?) throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(
                .writeBufferWaterMark,
                value: .init(low: TCPMediaConnection.highWaterMark / 2, high: TCPMediaConnection.highWaterMark))
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(MediaFrameDecoder()))
                    try channel.pipeline.syncOperations.addHandler(TCPMediaHandler(relay: self))
                }
            }
        do {
            tcpChannel = try (listener.map { bootstrap.withBoundSocket($0) }
                ?? bootstrap.bind(host: configuration.listen, port: Int(configuration.tcpPort))).wait()
            tcpGroup = group
        } catch {
            try? group.syncShutdownGracefully()
            throw error
        }
    }
}
