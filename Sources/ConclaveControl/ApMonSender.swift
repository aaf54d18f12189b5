import ConclaveSystem
import ConclaveWire
import FoundationEssentials
import Glibc
import Logging
import NIOCore
import NIOPosix
import SystemPackage

/// Sends the ApMon reports to every configured MonALISA destination (docs/monitoring.md,
/// ../shared/protocols/apmon.md), on the control plane's event loop:
///
/// - every `intervalSeconds`, and soon after a meeting starts or stops or a participant joins or
///   leaves (at most one such extra report every `immediateGap` seconds);
/// - one random 31-bit instance id per process, one sequence per destination, taken when a
///   report is actually sent (a dropped report takes no number);
/// - at most 10 datagrams per second per destination: reports wait in a queue that keeps only
///   the newest report of each (cluster, node) and drops whole reports beyond what one interval
///   can carry;
/// - names are resolved through the system resolver on the blocking pool, never on the loop;
///   a name that does not resolve is retried and reported, and its reports wait or drop;
/// - sends never block (non-blocking sockets); a failed send drops that report and nothing else.
public final class ApMonSender {
    public struct DestinationStatus: Sendable, Equatable {
        public var name: String
        public var resolved: Bool
        public var datagramsSent: UInt64
        public var reportsDropped: UInt64
        public var lastError: String?
    }

    final class Destination {
        let configured: MonitoringConfiguration.Destination
        var address: [UInt8]?
        var family: Int32 = AF_INET
        var sequence = ApMon.Sequence()
        var queue: [ApMonReports.Report] = []
        var tokens = ApMonSender.datagramsPerSecond
        var resolving = false
        var nextResolution = 0.0
        var resolutionFailures = 0
        var datagramsSent: UInt64 = 0
        var reportsDropped: UInt64 = 0
        var lastError: String?
        var lastErrorLogged = -Double.infinity

        init(_ configured: MonitoringConfiguration.Destination) { self.configured = configured }
    }

    public static let datagramsPerSecond = 10.0
    public static let immediateGap = 2.0
    /// Resolved names are looked up again this often (DNS may move them).
    static let refreshSeconds = 300.0

    public let instanceID = Int32.random(in: 0...Int32.max)
    private let eventLoop: EventLoop
    /// Its own thread: a resolver waiting on an unreachable name server must not hold up the
    /// control plane's blocking pool (password checks).
    private let resolver = NIOThreadPool(numberOfThreads: 1)
    private let log: Logger
    private let reports: () -> [ApMonReports.Report]
    private var destinations: [Destination] = []
    private var interval = 30
    private var sockets: [Int32: Int32] = [:]
    private var periodic: RepeatedTask?
    private var pacer: RepeatedTask?
    private var lastImmediate = -Double.infinity
    private var immediatePending: Scheduled<Void>?

    /// `reports` makes the current reports; it runs on `eventLoop`.
    public init(eventLoop: EventLoop, log: Logger, reports: @escaping () -> [ApMonReports.Report]) {
        self.eventLoop = eventLoop
        resolver.start()
        self.log = log
        self.reports = reports
    }

    deinit {
        for socket in sockets.values { close(socket) }
    }

    /// Starts, or applies a changed configuration: destinations that stay keep their sequence
    /// and queue; an interval change restarts the timer.
    public func apply(_ configuration: MonitoringConfiguration) {
        eventLoop.preconditionInEventLoop()
        let old = Dictionary(destinations.map { ($0.configured, $0) }, uniquingKeysWith: { first, _ in first })
        destinations = configuration.destinations.map { old[$0] ?? Destination($0) }
        for destination in destinations where destination.address == nil && !destination.resolving { resolve(destination) }
        if configuration.intervalSeconds != interval || periodic == nil {
            interval = configuration.intervalSeconds
            periodic?.cancel()
            periodic = destinations.isEmpty && configuration.destinations.isEmpty ? nil
                : eventLoop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(Int64(interval))) { [weak self] _ in self?.report() }
        }
        if destinations.isEmpty {
            periodic?.cancel()
            periodic = nil
            pacer?.cancel()
            pacer = nil
        } else if pacer == nil {
            pacer = eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(100), delay: .milliseconds(100)) { [weak self] _ in self?.pace() }
        }
        if !destinations.isEmpty {
            log.info("ApMon: instance \(instanceID), every \(interval) s to \(destinations.map(\.configured.description).joined(separator: ", "))")
        }
    }

    public func stop() {
        periodic?.cancel()
        pacer?.cancel()
        immediatePending?.cancel()
        periodic = nil
        pacer = nil
        resolver.shutdownGracefully { _ in }
    }

    /// A meeting or participant changed: report soon, at most once every `immediateGap` seconds.
    public func reportSoon() {
        guard !destinations.isEmpty, immediatePending == nil else { return }
        let now = Self.monotonic()
        let wait = max(0, lastImmediate + Self.immediateGap - now)
        immediatePending = eventLoop.scheduleTask(in: .milliseconds(Int64(wait * 1000) + 200)) { [weak self] in
            guard let self else { return }
            self.immediatePending = nil
            self.lastImmediate = Self.monotonic()
            self.report()
        }
    }

    public func status() -> [DestinationStatus] {
        destinations.map {
            DestinationStatus(
                name: $0.configured.description, resolved: $0.address != nil, datagramsSent: $0.datagramsSent,
                reportsDropped: $0.reportsDropped, lastError: $0.lastError)
        }
    }

    /// Queues the current reports for every destination.
    func report() {
        guard !destinations.isEmpty else { return }
        let current = reports()
        let capacity = Int(Self.datagramsPerSecond) * interval
        for destination in destinations {
            var queue = destination.queue.filter { old in !current.contains { $0.cluster == old.cluster && $0.node == old.node } }
            queue += current
            if queue.count > capacity {
                // Whole reports go, the oldest first; the relay's and the meetings' come first in `current`.
                destination.reportsDropped += UInt64(queue.count - capacity)
                queue.removeFirst(queue.count - capacity)
            }
            destination.queue = queue
        }
    }

    /// Every 100 ms: one more datagram allowed per destination (10 per second, burst of 10).
    private func pace() {
        let now = Self.monotonic()
        for destination in destinations {
            destination.tokens = min(Self.datagramsPerSecond, destination.tokens + Self.datagramsPerSecond / 10)
            if destination.address == nil {
                if !destination.resolving, now >= destination.nextResolution { resolve(destination) }
                continue
            }
            if now >= destination.nextResolution, !destination.resolving { resolve(destination) }
            while let report = destination.queue.first {
                var sequence = destination.sequence
                let encoded: ApMon.Report
                do {
                    encoded = try ApMon.encode(
                        cluster: report.cluster, node: report.node, parameters: report.parameters, password: destination.configured.password,
                        instanceID: instanceID, sequence: &sequence)
                } catch {
                    destination.queue.removeFirst()
                    destination.reportsDropped += 1
                    note(destination, "report \(report.cluster)/\(report.node) not encodable: \(error)", now: now)
                    continue
                }
                guard Double(encoded.datagrams.count) <= destination.tokens || encoded.datagrams.count > Int(Self.datagramsPerSecond) && destination.tokens == Self.datagramsPerSecond else { break }
                destination.queue.removeFirst()
                if !encoded.dropped.isEmpty { log.warning("ApMon: \(encoded.dropped) too large for one datagram, left out") }
                var failed = false
                for datagram in encoded.datagrams {
                    if let error = send(datagram, to: destination) {
                        failed = true
                        note(destination, "send to \(destination.configured): \(error)", now: now)
                        break
                    }
                    destination.datagramsSent += 1
                }
                // Numbers are taken only for what was sent; a failed report is dropped whole.
                if failed {
                    destination.reportsDropped += 1
                } else {
                    destination.sequence = sequence
                    destination.lastError = nil
                }
                destination.tokens -= Double(encoded.datagrams.count)
            }
        }
    }

    private func note(_ destination: Destination, _ message: String, now: Double) {
        destination.lastError = message
        if now - destination.lastErrorLogged >= 60 {
            destination.lastErrorLogged = now
            log.warning("ApMon: \(message)")
        }
    }

    private func send(_ datagram: [UInt8], to destination: Destination) -> Errno? {
        guard let address = destination.address else { return Errno(rawValue: EDESTADDRREQ) }
        let socket: Int32
        if let existing = sockets[destination.family] {
            socket = existing
        } else {
            socket = Glibc.socket(destination.family, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard socket >= 0 else { return Errno(rawValue: errno) }
            sockets[destination.family] = socket
        }
        let sent = datagram.withUnsafeBytes { bytes in
            address.withUnsafeBytes { raw in
                sendto(socket, bytes.baseAddress, bytes.count, Int32(MSG_DONTWAIT), raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(raw.count))
            }
        }
        return sent == datagram.count ? nil : Errno(rawValue: errno)
    }

    /// getaddrinfo on the blocking pool; the answer comes back to the loop.
    private func resolve(_ destination: Destination) {
        destination.resolving = true
        let host = destination.configured.host, port = destination.configured.port
        resolver.runIfActive(eventLoop: eventLoop) { () -> Result<(Int32, [UInt8]), ResolutionError> in
            Self.lookUp(host: host, port: port)
        }.whenComplete { [weak self] outcome in
            guard let self else { return }
            destination.resolving = false
            let now = Self.monotonic()
            switch outcome {
            case .success(.success(let (family, address))):
                if destination.address == nil || destination.resolutionFailures > 0 {
                    self.log.info("ApMon: \(destination.configured) resolved")
                }
                destination.address = address
                destination.family = family
                destination.resolutionFailures = 0
                destination.nextResolution = now + Self.refreshSeconds
            case .success(.failure(let error)):
                destination.resolutionFailures += 1
                // Keep a previous address while the name server is away; retry sooner and sooner less often.
                destination.nextResolution = now + min(Double(self.interval), 5 * Double(destination.resolutionFailures))
                destination.lastError = "\(destination.configured.host) does not resolve: \(error)"
                if destination.resolutionFailures == 1 || destination.resolutionFailures % 20 == 0 {
                    self.log.warning("ApMon: \(destination.configured.host) does not resolve (\(error)); retrying")
                }
            case .failure(let error):
                destination.nextResolution = now + 5
                destination.lastError = "resolution not run: \(error)"
            }
        }
    }

    struct ResolutionError: Error, CustomStringConvertible {
        let description: String
    }

    /// The first address `host` resolves to (IPv4 preferred), as a sockaddr with `port`.
    static func lookUp(host: String, port: UInt16) -> Result<(Int32, [UInt8]), ResolutionError> {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_DGRAM.rawValue)
        hints.ai_family = AF_UNSPEC
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let list else { return .failure(ResolutionError(description: String(cString: gai_strerror(status)))) }
        defer { freeaddrinfo(list) }
        var found: (Int32, [UInt8])?
        var cursor: UnsafeMutablePointer<addrinfo>? = list
        while let entry = cursor {
            if let address = entry.pointee.ai_addr, entry.pointee.ai_family == AF_INET || entry.pointee.ai_family == AF_INET6 {
                let bytes = Array(UnsafeRawBufferPointer(start: address, count: Int(entry.pointee.ai_addrlen)))
                if entry.pointee.ai_family == AF_INET { return .success((AF_INET, bytes)) }
                if found == nil { found = (AF_INET6, bytes) }
            }
            cursor = entry.pointee.ai_next
        }
        return found.map { .success($0) } ?? .failure(ResolutionError(description: "no IPv4 or IPv6 address"))
    }

    static func monotonic() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }
}
