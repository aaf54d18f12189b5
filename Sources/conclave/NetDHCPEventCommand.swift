import ArgumentParser
import ConclaveSystem
import Glibc

/// Called by udhcpc's hook script (rootfs/usr/share/udhcpc/default.script) as
/// `conclave net dhcp-event "$1"`, with the lease in the environment.
struct NetDHCPEventCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dhcp-event", abstract: "Apply a udhcpc event (deconfig, bound, renew, leasefail, nak) from its environment.")

    @Argument(help: "The event udhcpc passes as $1.") var event: String
    @Option(help: "Where DNS servers are written (a link is followed).") var resolvConf = "/etc/resolv.conf"
    @OptionGroup var namespace: NetNamespaceOption

    static let variables = ["interface", "ip", "mask", "subnet", "router", "staticroutes", "dns", "domain", "mtu", "ntpsrv", "lease", "hostname"]

    func run() throws {
        guard let kind = DHCPLease.Event(rawValue: event) else {
            throw ValidationError("unknown event \"\(event)\"; udhcpc sends \(DHCPLease.Event.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        var environment: [String: String] = [:]
        for name in Self.variables {
            if let value = getenv(name) { environment[name] = String(cString: value) }
        }
        let lease = try DHCPLease(event: kind, environment: environment)
        try namespace.enter()
        let system = try NetworkSystem.kernel()
        let plan = try NetworkPlanner(system: system).plan(lease: lease, resolvConfPath: resolvConf)
        do {
            let outcome = try NetworkApplier(system: system).apply(plan) { CommandOutput.line("changed \($0)") }
            if outcome.applied.isEmpty { CommandOutput.line("dhcp \(event) on \(lease.interface): no change") }
        } catch {
            CommandOutput.error("net dhcp-event: \(error)")
            throw ExitCode.failure
        }
    }
}
