public import ConclaveSystem
import Glibc
public import SystemPackage

/// Applies the configured network and tuning the way `conclave net apply` does (the same
/// planner and applier), and keeps busybox udhcpc running exactly on the DHCP interfaces.
/// Used by the console after a change and by `conclave boot`.
public struct ApplianceNetwork: Sendable {
    public static let boardProfile = "/etc/conclave/tuning.json"
    public static let udhcpcHook = "/usr/share/udhcpc/default.script"

    public let stateDirectory: FilePath
    public var boardProfilePath = ApplianceNetwork.boardProfile
    public var resolvConfPath = "/etc/resolv.conf"

    public init(stateDirectory: FilePath) { self.stateDirectory = stateDirectory }

    /// The target `net apply` works towards: the board's profile with the file's overrides.
    public func target() throws -> NetworkTarget {
        var tuning = TuningProfile()
        if FilePath(boardProfilePath).exists { tuning = try TuningProfile.load(boardProfilePath) }
        var (network, overrides) = try NetworkConfiguration.load(stateDirectory: stateDirectory)
        if network.interfaces["lo"] == nil { network.interfaces["lo"] = NetworkConfiguration.Interface() }  // up
        return NetworkTarget(tuning: tuning.merged(with: overrides), network: network, resolvConfPath: resolvConfPath, setsHostname: true)
    }

    /// What would change, as `net diff` prints it.
    public func plan() throws -> NetworkPlan {
        try NetworkPlanner(system: try .kernel()).plan(try target())
    }

    /// Applies the plan; returns one line per change and note. A hard failure has already been
    /// rolled back when it is thrown.
    public func apply() throws -> [String] {
        let system = try NetworkSystem.kernel()
        let plan = try NetworkPlanner(system: system).plan(try target())
        var lines: [String] = []
        let outcome = try NetworkApplier(system: system).apply(plan) { lines.append("changed \($0)") }
        lines += outcome.notes.map { "note: \($0)" }
        if outcome.applied.isEmpty { lines.append("no change: already as configured") }
        return lines
    }

    /// Interfaces that should run udhcpc: those set to DHCP, or eth0 when nothing is
    /// configured yet (first boot: reachable before the wizard has run).
    public func dhcpInterfaces() throws -> [String] {
        let (network, _) = try NetworkConfiguration.load(stateDirectory: stateDirectory)
        if network.interfaces.isEmpty { return FilePath("/sys/class/net/eth0").exists ? ["eth0"] : [] }
        return network.interfaces.filter { $0.value.dhcp && $0.value.isUp }.keys.sorted()
    }

    /// Starts udhcpc on each DHCP interface that has none, stops it on the others (SIGTERM:
    /// the lease's address stays until the static plan replaces it). Returns what it did.
    public func reconcileDHCPClients(hostname: String?) throws -> [String] {
        let wanted = Set(try dhcpInterfaces())
        var running: [String: pid_t] = [:]
        for (pid, arguments) in Self.processes() where arguments.first.map({ $0.hasSuffix("udhcpc") }) ?? false {
            if let flag = arguments.firstIndex(of: "-i"), flag + 1 < arguments.count { running[arguments[flag + 1]] = pid }
        }
        var lines: [String] = []
        for (interface, pid) in running.sorted(by: { $0.key < $1.key }) where !wanted.contains(interface) {
            kill(pid, SIGTERM)
            lines.append("stopped the DHCP client on \(interface)")
        }
        for interface in wanted.sorted() where running[interface] == nil {
            var arguments = ["udhcpc", "-i", interface, "-s", Self.udhcpcHook, "-b", "-t", "3", "-T", "1", "-S"]
            if let hostname, !hostname.isEmpty { arguments += ["-x", "hostname:\(hostname)"] }
            let path = ["/sbin/udhcpc", "/usr/sbin/udhcpc", "/bin/udhcpc"].first { FilePath($0).exists }
            guard let path else {
                lines.append("note: no udhcpc here; \(interface) gets no DHCP lease")
                continue
            }
            _ = try ProcessSpawner.spawn(path, arguments: arguments, descriptors: [])
            lines.append("started the DHCP client on \(interface)")
        }
        return lines
    }

    /// Every process's pid and argument vector, from /proc.
    static func processes() -> [(pid_t, [String])] {
        let entries = (try? FilePath("/proc").directoryEntries()) ?? []
        return entries.compactMap { name in
            guard let pid = pid_t(name), let bytes = try? Files.read(FilePath("/proc/\(name)/cmdline")), !bytes.isEmpty else { return nil }
            return (pid, bytes.split(separator: 0, omittingEmptySubsequences: false).dropLast().map { String(decoding: $0, as: UTF8.self) })
        }
    }
}
