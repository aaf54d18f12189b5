internal import CConclaveSocket
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
    private let registry = Mutex(Registry())
    private var tcpGroup: MultiThreadedEventLoopGroup?
    private var tcpChannel: Channel?

    /// Which leg and meeting exist and where: checked before any command reaches a thread.
    private struct Registry {
        var legMeeting: [UInt32: UInt32] = [:]
        var meetingMode: [UInt32: MediaMode] = [:]
        var meetingLegs: [UInt32: Int] = [:]
    }

    /// Binds the UDP sockets (`basePort …`) and the TCP listener, and starts the threads.
    public init(configuration: Configuration) throws {
        self.configuration = configuration
        precondition(configuration.threads > 0)
        var threads: [RelayThread] = []
        for index in 0..<configuration.threads {
            let port = UInt16(Int(configuration.basePort) + index)
            let socket = try Self.bindUDP(host: configuration.listen, port: port, bufferBytes: configuration.socketBufferBytes)
            threads.append(try RelayThread(index: index, socket: socket))
        }
        self.threads = threads
        for thread in threads { try thread.start() }
        if configuration.tcpPort != 0 { try startTCP() }
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

    /// The UDP port that serves `meeting`.
    public func port(forMeeting meeting: UInt32) -> UInt16 {
        UInt16(Int(configuration.basePort) + Int(meeting % UInt32(threads.count)))
    }

    public var tcpPort: Int? { tcpChannel?.localAddress?.port }

    private func thread(forMeeting meeting: UInt32) -> RelayThread { threads[Int(meeting % UInt32(threads.count))] }

    // MARK: Legs and meetings

    /// Creates the leg's SRTP contexts here, then hands the leg to its meeting's thread.
    public func addLeg(_ description: LegDescription) throws {
        let mode = description.protection.mode
        if configuration.securityMode == .secured && mode != .srtp {
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
        if configuration.securityMode == .secured && mode != .srtp {
            throw RelayError.refusedBySecurityMode(leg: 0)
        }
        try registry.withLock { registry throws(RelayError) in
            if let existing = registry.meetingMode[id], existing != mode { throw .modeMismatch(leg: 0, meeting: id) }
            registry.meetingMode[id] = mode
        }
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
        let results = Mutex<([LegSnapshot], RelayCounters, Int)>(([], RelayCounters(), 0))
        for thread in threads {
            thread.send(.snapshot { legs, counters in
                results.withLock { $0.0 += legs; $0.1 = $0.1 + counters; $0.2 += 1 }
            })
        }
        // Threads answer within one batch; wait a bounded time so a wedged thread cannot hang us.
        let deadline = monotonicSeconds() + 2
        while results.withLock({ $0.2 }) < threads.count && monotonicSeconds() < deadline { usleep(1000) }
        let (legs, counters, _) = results.withLock { $0 }
        return (legs.sorted { $0.leg < $1.leg }, counters)
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

    private func startTCP() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
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
            tcpChannel = try bootstrap.bind(host: configuration.listen, port: Int(configuration.tcpPort)).wait()
            tcpGroup = group
        } catch {
            try? group.syncShutdownGracefully()
            throw error
        }
    }

    // MARK: Sockets

    /// A UDP socket bound to `host:port` with large buffers. `SO_RCVBUFFORCE` passes the
    /// `rmem_max` cap when the process holds CAP_NET_ADMIN; otherwise the plain option is used.
    static func bindUDP(host: String, port: UInt16, bufferBytes: Int) throws(RelayError) -> Int32 {
        let address = try PeerAddress(parsing: host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)")
        let socket = Glibc.socket(Int32(address.family), Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard socket >= 0 else { throw .system("socket", errno) }
        var size = Int32(clamping: bufferBytes)
        for (forced, plain) in [(SO_RCVBUFFORCE, SO_RCVBUF), (SO_SNDBUFFORCE, SO_SNDBUF)] {
            if setsockopt(socket, SOL_SOCKET, forced, &size, 4) != 0 {
                _ = setsockopt(socket, SOL_SOCKET, plain, &size, 4)
            }
        }
        var storage = sockaddr_in6()
        let length = withUnsafeMutableBytes(of: &storage) { address.write(to: $0.baseAddress!) }
        let bound = withUnsafeBytes(of: &storage) {
            bind(socket, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), length)
        }
        guard bound == 0 else {
            let code = errno
            close(socket)
            throw .system("bind \(address)", code)
        }
        return socket
    }
}
