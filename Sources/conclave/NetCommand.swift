import ArgumentParser
import ConclaveSystem
import SystemPackage

/// `conclave net …`: network configuration and NIC tuning through netlink (docs/network.md,
/// docs/tuning.md). Run at boot by `conclave boot`, by the console, and by udhcpc's hook.
struct NetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "net", abstract: "Show, plan and apply network configuration and NIC tuning.",
        subcommands: [NetShowCommand.self, NetApplyCommand.self, NetDiffCommand.self, NetDHCPEventCommand.self])
}

/// Where the target comes from, shared by `apply` and `diff`.
struct NetTargetOptions: ParsableArguments {
    static let boardProfile = "/etc/conclave/tuning.json"

    @Option(help: "Tuning profile (default: the board's, \(NetTargetOptions.boardProfile), if present).") var profile: String?
    @Option(help: "State directory: the \"network\" and \"tuning\" sections of DIR/conclave.json.") var state = "/data/conclave"
    @Option(help: "Where DNS servers are written (a link is followed).") var resolvConf = "/etc/resolv.conf"

    func target(insideNamespace: Bool) throws -> NetworkTarget {
        var tuning = TuningProfile()
        if let profile {
            tuning = try TuningProfile.load(profile)
        } else if FilePath(Self.boardProfile).exists {
            tuning = try TuningProfile.load(Self.boardProfile)
        }
        let (network, overrides) = try NetworkConfiguration.load(stateDirectory: FilePath(state))
        return NetworkTarget(
            tuning: tuning.merged(with: overrides), network: network, resolvConfPath: resolvConf, setsHostname: !insideNamespace)
    }
}

/// `--netns NAME`, entered before any socket is opened (and before any thread starts).
struct NetNamespaceOption: ParsableArguments {
    @Option(help: "Work inside the named network namespace (/var/run/netns/NAME).") var netns: String?

    func enter() throws {
        if let netns { try NetworkNamespace.enter(named: netns) }
    }
}

enum NetOutput {
    static func print(_ plan: NetworkPlan, changePrefix: String) {
        for change in plan.changes { CommandOutput.line("\(changePrefix) \(change)") }
        for note in plan.notes { CommandOutput.line("note: \(note)") }
        for failure in plan.failures { CommandOutput.line("cannot: \(failure)") }
    }
}
