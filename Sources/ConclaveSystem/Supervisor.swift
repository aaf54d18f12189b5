internal import CConclaveSystemShims
import ConclaveWire
import FoundationEssentials
import Logging
import Glibc
import SystemPackage

/// The root process of the daemon (ARCHITECTURE.md "Processes"): binds every listening socket,
/// starts the relay and control workers by re-executing this binary with the sockets as
/// inherited descriptors, restarts a worker that exits, forwards reloads, stops the workers in
/// order, and serves the admin socket. After start-up it keeps only the capabilities it needs to
/// start workers again and to signal them.
public final class Supervisor {
    public enum Role: String, CaseIterable, Codable, Sendable { case relay, control }

    public struct Options: Sendable {
        public var stateDirectory: FilePath
        public var runDirectory = FilePath("/run/conclave")
        public var executable = "/proc/self/exe"
        /// Seconds to stop both workers on SIGTERM before they are killed.
        public var stopDeadline = 10.0
        /// Reads the active certificate chain and key (PEM, empty when none is active) and the
        /// join-token key for the control worker, which cannot read the PKI directory itself.
        public var controlCredentials: @Sendable () -> (chain: [UInt8], key: [UInt8], ssoKey: [UInt8]) = { ([], [], []) }
        /// Reads the command API's client CA bundle (`pki/api-ca.pem`, PEM; empty when none).
        public var apiClientCA: @Sendable () -> [UInt8] = { [] }
        /// Answers a `supervisorRequest` of the control worker (a change it cannot write itself,
        /// docs/api.md); `status` gives this supervisor's status report when the request needs it.
        /// Returns the reply (JSON) and whether the workers reload before it is sent.
        public var controlRequest: @Sendable (_ json: String, _ status: () -> String) -> (reply: String, reload: Bool) = { _, _ in
            (#"{"ok":false,"code":"service-unavailable","error":"this supervisor takes no requests"}"#, false)
        }

        public init(stateDirectory: FilePath) { self.stateDirectory = stateDirectory }
    }

    /// What the supervisor keeps after start-up, and why: it re-executes workers as root, and a
    /// worker needs SETPCAP (clear its bounding set), SETGID and SETUID (become its account)
    /// before it drops everything; KILL stops a worker that ignores `stop` (another uid).
    public static let keptCapabilities: Set<Capability> = [.setpcap, .setgid, .setuid, .kill]

    /// Descriptor layout of a worker (3 = its supervisor channel, 4 = relay IPC, then sockets).
    public enum Descriptors {
        public static let supervisor: Int32 = 3
        public static let relayIPC: Int32 = 4
        public static let firstSocket: Int32 = 5
    }

    private final class Worker {
        let role: Role
        var pid: pid_t?
        var channel: WorkerChannel?
        var started = 0.0
        var restarts = 0
        var policy = RestartPolicy()
        var restartAt: Double?
        var lastStatus: String?
        var lastAdminReply: String?

        init(role: Role) { self.role = role }
    }

    public let configuration: DaemonConfiguration
    private let options: Options
    private let log: Logger
    private let sockets: ListeningSockets
    private var workers: [Role: Worker] = [:]
    /// The relay IPC end kept for a worker that is not running yet (its peer got the other end).
    private var pendingPeerEnd: [Role: Int32] = [:]
    private var adminListener: Int32 = -1
    private var signals: Int32 = -1
    private let startTime = Supervisor.now()

    /// Binds every socket the workers need. Needs root (ports below 1024, forced buffers).
    public init(configuration: DaemonConfiguration, options: Options, log: Logger) throws {
        self.configuration = configuration
        self.options = options
        self.log = log
        sockets = try ListeningSockets(configuration)
        for role in Role.allCases { workers[role] = Worker(role: role) }
    }

    deinit {
        if adminListener >= 0 { close(adminListener) }
        if signals >= 0 { close(signals) }
        for end in pendingPeerEnd.values { close(end) }
    }

    // MARK: Running

    /// Runs until SIGTERM/SIGINT or an admin `stop`; returns the exit status (0 after a clean stop).
    public func run() throws -> Int32 {
        try openAdminSocket()
        var set = sigset_t()
        sigemptyset(&set)
        for signal in [SIGCHLD, SIGHUP, SIGTERM, SIGINT] { sigaddset(&set, signal) }
        sigprocmask(SIG_BLOCK, &set, nil)
        Glibc.signal(SIGPIPE, SIG_IGN)
        signals = conclave_sys_signalfd(&set)
        guard signals >= 0 else { throw Errno(rawValue: errno) }

        try start(.relay)
        try start(.control)
        try Privileges.restrict(to: Self.keptCapabilities)
        log.info("kept capabilities: \(Self.keptCapabilities.map { "\($0)" }.sorted().joined(separator: ", "))")

        while true {
            let now = Self.now()
            var timeout = 1.0
            for worker in workers.values { if let at = worker.restartAt { timeout = min(timeout, max(0, at - now)) } }
            var descriptors = [pollfd(fd: signals, events: Int16(POLLIN), revents: 0),
                               pollfd(fd: adminListener, events: Int16(POLLIN), revents: 0)]
            let channelRoles = Role.allCases.filter { workers[$0]?.channel != nil }
            for role in channelRoles { descriptors.append(pollfd(fd: workers[role]!.channel!.descriptor, events: Int16(POLLIN), revents: 0)) }
            _ = poll(&descriptors, nfds_t(descriptors.count), Int32(timeout * 1000))

            if descriptors[0].revents != 0 {
                while case let signal = conclave_sys_read_signal(signals), signal != 0 {
                    switch signal {
                    case SIGCHLD: reapWorkers()
                    case SIGHUP: reload()
                    default:
                        log.info("signal \(signal): stopping")
                        stop()
                        return 0
                    }
                }
            }
            if descriptors[1].revents != 0, serveAdminConnection() == .stop {
                stop()
                return 0
            }
            for (index, role) in channelRoles.enumerated() where descriptors[2 + index].revents != 0 {
                readChannel(of: role)
            }
            let later = Self.now()
            for worker in workers.values {
                if let at = worker.restartAt, at <= later {
                    worker.restartAt = nil
                    do { try start(worker.role) } catch {
                        log.error("\(worker.role) worker did not start: \(error)")
                        worker.restartAt = later + worker.policy.delayAfterExit(lifetime: 0)
                    }
                }
            }
        }
    }

    private func start(_ role: Role) throws {
        let worker = workers[role]!
        let peer = role == .relay ? Role.control : Role.relay
        // This worker's end of the relay IPC: kept for it, or a new pair whose other end goes
        // to the peer now (or waits for it if the peer is down too).
        let ownEnd: Int32
        if let kept = pendingPeerEnd.removeValue(forKey: role) {
            ownEnd = kept
        } else {
            let (mine, theirs) = try ProcessSpawner.socketPair()
            ownEnd = mine
            if let channel = workers[peer]?.channel, workers[peer]?.pid != nil {
                do { try channel.send(.peerChannel, passing: theirs) } catch { log.warning("could not hand the new relay IPC to \(peer): \(error)") }
                close(theirs)
            } else {
                if let stale = pendingPeerEnd.updateValue(theirs, forKey: peer) { close(stale) }
            }
        }
        defer { close(ownEnd) }
        let (supervisorEnd, workerEnd) = try ProcessSpawner.socketPair()
        defer { close(workerEnd) }
        let account = role == .relay ? configuration.relayAccount : configuration.controlAccount
        var arguments = [
            "conclave", "worker", role.rawValue, "--state", options.stateDirectory.string,
            "--user", account.user, "--uid", String(account.uid), "--gid", String(account.gid),
        ]
        var descriptors = [workerEnd, ownEnd]
        switch role {
        case .relay:
            arguments += ["--udp-sockets", String(sockets.media.count), "--tcp-listener", sockets.mediaTCP == nil ? "0" : "1",
                          "--security-mode", configuration.securityMode]
            descriptors += sockets.media + (sockets.mediaTCP.map { [$0] } ?? [])
        case .control:
            // The media ports as bound (flags may override the file): `joined` names them.
            arguments += ["--media-port", String(configuration.mediaPort), "--media-tcp-port", String(sockets.mediaTCP == nil ? 0 : configuration.mediaTCPPort),
                          "--relay-threads", String(sockets.media.count)]
            descriptors += [sockets.control, sockets.api]
            // The plain-HTTP metrics listener, when configured, comes next (descriptor 7).
            if let metrics = sockets.metrics {
                arguments += ["--metrics-listener"]
                descriptors.append(metrics)
            }
        }
        let pid: pid_t
        do { pid = try ProcessSpawner.spawn(options.executable, arguments: arguments, descriptors: descriptors) } catch {
            close(supervisorEnd)
            throw error
        }
        worker.pid = pid
        worker.channel = WorkerChannel(adopting: supervisorEnd)
        worker.started = Self.now()
        log.info("\(role) worker started: pid \(pid), account \(account.user) (\(account.uid):\(account.gid))")
    }

    private func reapWorkers() {
        while true {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            guard pid > 0 else { return }
            guard let worker = workers.values.first(where: { $0.pid == pid }) else { continue }
            let lifetime = Self.now() - worker.started
            worker.pid = nil
            worker.channel = nil
            worker.restarts += 1
            let delay = worker.policy.delayAfterExit(lifetime: lifetime)
            worker.restartAt = Self.now() + delay
            log.warning("\(worker.role) worker \(pid) \(Self.describe(status)) after \(String(format1: lifetime)) s; restart #\(worker.restarts) in \(String(format1: delay)) s")
        }
    }

    private func reload() {
        log.info("reload")
        sendCredentials()
        for worker in workers.values {
            try? worker.channel?.send(.reload)
        }
    }

    /// Control first (no new joins, no new keys), then the relay, each within half the deadline.
    private func stop() {
        for role in [Role.control, .relay] {
            guard let worker = workers[role], let pid = worker.pid else { continue }
            worker.restartAt = nil
            try? worker.channel?.send(.stop)
            let deadline = Self.now() + options.stopDeadline / 2
            var status: Int32 = 0
            while Self.now() < deadline, waitpid(pid, &status, WNOHANG) == 0 { usleep(10_000) }
            if waitpid(pid, &status, WNOHANG) == 0 {
                log.warning("\(role) worker \(pid) did not stop in time: killing it")
                kill(pid, SIGKILL)
                waitpid(pid, &status, 0)
            }
            worker.pid = nil
            worker.channel = nil
            log.info("\(role) worker stopped")
        }
        unlink(adminPath)
    }

    private func readChannel(of role: Role) {
        guard let worker = workers[role], let channel = worker.channel else { return }
        do {
            switch try channel.receive() {
            case .closed:
                worker.channel = nil  // the exit itself arrives as SIGCHLD
            case .message(.ready, _):
                log.info("\(role) worker ready")
                if role == .control { sendCredentials() }
            case .message(.status(let json), _):
                worker.lastStatus = json
            case .message(.adminReply(let json), _) where role == .control:
                worker.lastAdminReply = json
            case .message(.supervisorRequest(let json), _) where role == .control:
                let (reply, reload) = options.controlRequest(json, { self.statusJSON() })
                // The reload goes first: the worker has the new settings when the reply reaches it.
                if reload { self.reload() }
                do { try workers[.control]?.channel?.send(.supervisorReply(json: reply)) } catch {
                    log.warning("could not answer the control worker's request: \(error)")
                }
            case .message(let message, let descriptor):
                if let descriptor { close(descriptor) }
                throw WireError.malformed("\(message) is not a worker's message")
            }
        } catch {
            // An unknown message means a broken or compromised worker: end it; it is restarted.
            log.error("\(role) worker sent garbage (\(error)): killing it")
            if let pid = worker.pid { kill(pid, SIGKILL) }
            worker.channel = nil
        }
    }

    // MARK: Admin socket

    private var adminPath: String { options.runDirectory.appending("admin.sock").string }

    private func openAdminSocket() throws {
        try options.runDirectory.makeDirectory(permissions: FilePermissions(rawValue: 0o700))
        guard chmod(options.runDirectory.string, 0o700) == 0 else { throw Errno(rawValue: errno) }
        unlink(adminPath)
        adminListener = try UnixSocket.listen(path: adminPath, permissions: 0o600)
    }

    private enum AdminOutcome { case served, stop }

    private func serveAdminConnection() -> AdminOutcome {
        let client = accept(adminListener, nil, nil)
        guard client >= 0 else { return .served }
        _ = fcntl(client, F_SETFD, FD_CLOEXEC)  // single-threaded: no spawn can come in between
        defer { close(client) }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let request = UnixSocket.readLine(client, limit: 16_384)
        let reply: String
        var outcome = AdminOutcome.served
        switch request {
        case let line? where line.hasPrefix("meeting "): reply = forwardToControl(String(line.dropFirst("meeting ".count)))
        case "status": reply = statusJSON()
        case "reload":
            reload()
            reply = #"{"ok":true}"#
        case "stop":
            reply = #"{"ok":true}"#
            outcome = .stop
        default:
            reply = #"{"ok":false,"error":"unknown request; expected status, reload, stop or meeting JSON"}"#
        }
        UnixSocket.writeAll(client, reply + "\n")
        return outcome
    }

    private func sendCredentials() {
        guard let channel = workers[.control]?.channel else { return }
        let credentials = options.controlCredentials()
        do {
            try channel.send(.credentials(chain: credentials.chain, key: credentials.key, ssoKey: credentials.ssoKey))
            var clientCA = options.apiClientCA()
            if clientCA.count > WorkerMessage.maximumSize - 2 {
                log.error("pki/api-ca.pem is larger than a worker message (\(clientCA.count) bytes): the command API refuses every client")
                clientCA = []
            }
            try channel.send(.apiClientCA(pem: clientCA))
        } catch {
            log.error("could not hand the certificate to the control worker: \(error)")
        }
    }

    /// Hands a meeting request to the control worker and waits (briefly) for its answer.
    private func forwardToControl(_ json: String) -> String {
        guard let worker = workers[.control], let channel = worker.channel else {
            return #"{"ok":false,"code":"service-unavailable","error":"the control worker is not running"}"#
        }
        worker.lastAdminReply = nil
        do { try channel.send(.adminRequest(json: json)) } catch {
            return #"{"ok":false,"code":"service-unavailable","error":"the control worker did not take the request"}"#
        }
        let deadline = Self.now() + 3
        while worker.lastAdminReply == nil, worker.channel != nil, Self.now() < deadline {
            if worker.channel!.waitReadable(timeout: max(0, deadline - Self.now())) { readChannel(of: .control) }
        }
        return worker.lastAdminReply ?? #"{"ok":false,"code":"service-unavailable","error":"the control worker did not answer in time"}"#
    }

    public struct WorkerReport: Codable, Sendable {
        public var role: Role
        public var pid: Int32?
        public var uptimeSeconds: Double?
        public var restarts: Int
        public var process: ProcessStatus?
        /// The worker's own figures (the relay: meetings, legs, packets).
        public var status: [String: JSONValue]?
    }

    public struct StatusReport: Codable, Sendable {
        public var role: String
        public var supervisorPid: Int32
        public var uptimeSeconds: Double
        public var workers: [WorkerReport]
    }

    private func statusJSON() -> String {
        for worker in workers.values {
            worker.lastStatus = nil
            try? worker.channel?.send(.statusRequest)
        }
        let deadline = Self.now() + 1
        for worker in workers.values {
            while worker.lastStatus == nil, worker.channel != nil, Self.now() < deadline {
                if worker.channel!.waitReadable(timeout: max(0, deadline - Self.now())) { readChannel(of: worker.role) }
            }
        }
        let now = Self.now()
        let report = StatusReport(
            role: configuration.role.rawValue, supervisorPid: getpid(), uptimeSeconds: now - startTime,
            workers: Role.allCases.map { role in
                let worker = workers[role]!
                return WorkerReport(
                    role: role, pid: worker.pid, uptimeSeconds: worker.pid.map { _ in now - worker.started },
                    restarts: worker.restarts, process: worker.pid.flatMap { try? ProcessStatus(pid: $0) },
                    status: worker.lastStatus.flatMap { try? JSONDecoder().decode([String: JSONValue].self, from: Data($0.utf8)) })
            })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? String(decoding: encoder.encode(report), as: UTF8.self)) ?? #"{"ok":false}"#
    }

    // MARK: Helpers

    static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }

    static func describe(_ status: Int32) -> String {
        let signal = status & 0x7f
        return signal == 0 ? "exited with status \((status >> 8) & 0xff)" : "was killed by signal \(signal)"
    }
}

extension String {
    init(format1 value: Double) {
        let tenths = Int((value * 10).rounded())
        self = "\(tenths / 10).\(abs(tenths % 10))"
    }
}

/// Every socket the workers serve on, bound once by the supervisor and kept for restarts.
struct ListeningSockets {
    let control: Int32
    let api: Int32
    let media: [Int32]
    let mediaTCP: Int32?
    /// `monitoring.metricsListen`: plain-HTTP `/metrics` for a local scraper (changes need a restart).
    let metrics: Int32?

    init(_ configuration: DaemonConfiguration) throws {
        var opened: [Int32] = []
        do {
            control = try SocketBinding.tcp(configuration.listen, configuration.controlPort)
            opened.append(control)
            api = try SocketBinding.tcp(configuration.listen, configuration.apiPort)
            opened.append(api)
            var media: [Int32] = []
            for index in 0..<configuration.relayThreads {
                let socket = try SocketBinding.udp(
                    configuration.listen, UInt16(Int(configuration.mediaPort) + index), bufferBytes: configuration.socketBufferBytes)
                media.append(socket)
                opened.append(socket)
            }
            self.media = media
            mediaTCP = configuration.mediaTCPPort == 0 ? nil : try SocketBinding.tcp(configuration.listen, configuration.mediaTCPPort)
            if let mediaTCP { opened.append(mediaTCP) }
            metrics = try configuration.monitoring.metricsListen.map { try SocketBinding.tcp($0.host, $0.port, backlog: 16) }
        } catch {
            for socket in opened { close(socket) }
            throw error
        }
    }
}
