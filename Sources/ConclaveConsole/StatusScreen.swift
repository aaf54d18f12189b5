import ConclaveCrypto
public import ConclavePKI
public import ConclaveSystem
public import FoundationEssentials
import Glibc
public import SystemPackage

/// The daemon's admin socket (`RUN/admin.sock`): one request line, one JSON reply line.
public struct DaemonLink: Sendable {
    public let runDirectory: String

    public init(runDirectory: String) { self.runDirectory = runDirectory }

    /// The reply, or nil when the daemon is not running (no socket, or nobody answers).
    public func request(_ line: String) -> String? {
        guard let socket = try? UnixSocket.connect(path: runDirectory + "/admin.sock") else { return nil }
        defer { close(socket) }
        var timeout = timeval(tv_sec: 3, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        UnixSocket.writeAll(socket, line + "\n")
        return UnixSocket.readLine(socket, limit: 1 << 20)
    }

    public func status() -> Supervisor.StatusReport? {
        guard let line = request("status") else { return nil }
        return try? JSONDecoder().decode(Supervisor.StatusReport.self, from: Data(line.utf8))
    }

    /// Asks both workers to reload; false when the daemon is not running.
    public func reload() -> Bool { request("reload")?.contains("\"ok\":true") ?? false }
}

/// What the status screen shows, gathered fresh on every Enter.
public struct StatusSnapshot: Sendable {
    public var hostname = ""
    public var fqdn: String?
    public var addresses: [String] = []
    public var role = "server"
    public var version = ""
    public var slot: String?
    public var securityMode = "mixed"
    public var certificateSubject: String?
    public var certificateDaysLeft: Int?
    public var meetings: Int?
    public var participants: Int?
    public var lastUpdate: String?
    public var daemonRunning = false
    public var configurationProblem: String?

    public init() {}

    public static func gather(
        stateDirectory: FilePath, daemon: DaemonLink, version: String, lastUpdate: () -> String? = { nil }, now: Date = Date()
    ) -> StatusSnapshot {
        var snapshot = StatusSnapshot()
        snapshot.version = version
        snapshot.lastUpdate = lastUpdate()
        var name = [CChar](repeating: 0, count: 256)
        if gethostname(&name, name.count - 1) == 0 {
            snapshot.hostname = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        do {
            let configuration = try DaemonConfiguration.load(stateDirectory: stateDirectory)
            snapshot.fqdn = configuration.fqdn
            snapshot.role = configuration.role.rawValue
            snapshot.securityMode = configuration.securityMode
        } catch {
            snapshot.configurationProblem = "\(error)"
        }
        snapshot.addresses = Self.addresses()
        if let slot = try? Files.read(FilePath("/run/boot-slot")) {
            snapshot.slot = String(decoding: slot, as: UTF8.self).trimmedLine
        }
        if let active = try? CertificateStore(stateDirectory: stateDirectory).active() {
            let summary = CertificateSummary(certificate: active.certificate, now: now)
            snapshot.certificateSubject = summary.subject
            snapshot.certificateDaysLeft = summary.daysLeft
        }
        if let report = daemon.status() {
            snapshot.daemonRunning = true
            for worker in report.workers where worker.role.rawValue == "relay" {
                if case .number(let meetings)? = worker.status?["meetings"] { snapshot.meetings = Int(meetings) }
                if case .number(let legs)? = worker.status?["legs"] { snapshot.participants = Int(legs) }
            }
        }
        return snapshot
    }

    /// Up interfaces' addresses other than loopback (`getifaddrs`).
    static func addresses() -> [String] {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return [] }
        defer { freeifaddrs(list) }
        var result: [String] = []
        var cursor: UnsafeMutablePointer<ifaddrs>? = first
        while let entry = cursor {
            defer { cursor = entry.pointee.ifa_next }
            guard let address = entry.pointee.ifa_addr, entry.pointee.ifa_flags & UInt32(IFF_LOOPBACK) == 0 else { continue }
            let family = Int32(address.pointee.sa_family)
            guard family == AF_INET || family == AF_INET6 else { continue }
            var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            if family == AF_INET {
                address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { var a = $0.pointee.sin_addr; _ = inet_ntop(AF_INET, &a, &text, socklen_t(text.count)) }
            } else {
                address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { var a = $0.pointee.sin6_addr; _ = inet_ntop(AF_INET6, &a, &text, socklen_t(text.count)) }
            }
            let name = String(cString: entry.pointee.ifa_name)
            let value = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if value.hasPrefix("fe80:") { continue }
            result.append("\(name) \(value)")
        }
        return result
    }

    /// The screen: at most 80 columns, fits in 24 rows with the prompt.
    public var lines: [String] {
        var lines: [String] = []
        if let days = certificateDaysLeft, days <= 30 {
            lines += TextLayout.wrap(days < 0
                ? "!!! THE CERTIFICATE HAS EXPIRED: clients cannot connect. Replace it (menu 4). !!!"
                : "!!! The certificate expires in \(days) day\(days == 1 ? "" : "s"): replace it (menu 4). !!!")
        }
        if let configurationProblem { lines += TextLayout.wrap("!!! configuration refused: \(configurationProblem)") }
        lines.append("Conclave \(version) - \(role == "room" ? "room system" : "server appliance")")
        var rows: [(String, String)] = [
            ("host name", hostname.isEmpty ? "-" : hostname),
            ("FQDN", fqdn ?? "not set"),
            ("addresses", addresses.isEmpty ? "none" : addresses.joined(separator: ", ")),
            ("slot", slot ?? "-"),
            ("security mode", securityMode),
        ]
        if let certificateSubject, let certificateDaysLeft {
            rows.append(("certificate", "\(certificateSubject), \(certificateDaysLeft) days left"))
        } else {
            rows.append(("certificate", "none"))
        }
        if let lastUpdate { rows.append(("last update", lastUpdate)) }
        if daemonRunning {
            rows.append(("now", "\(meetings ?? 0) meetings, \(participants ?? 0) participants"))
        } else {
            rows.append(("daemon", "not running"))
        }
        lines += TextLayout.table(rows)
        return lines
    }
}
