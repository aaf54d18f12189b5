import ArgumentParser
import ConclaveSystem

struct NetApplyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Apply the tuning profile and the network configuration; on a hard failure, undo this run's changes.")

    @OptionGroup var target: NetTargetOptions
    @OptionGroup var namespace: NetNamespaceOption
    @Flag(help: "Print what would change, change nothing.") var dryRun = false

    func run() throws {
        try namespace.enter()
        let system = try NetworkSystem.kernel()
        let plan = try NetworkPlanner(system: system).plan(try target.target(insideNamespace: namespace.netns != nil))
        if dryRun {
            NetOutput.print(plan, changePrefix: "would change")
            if plan.changes.isEmpty { CommandOutput.line("no change needed") }
            return
        }
        do {
            let outcome = try NetworkApplier(system: system).apply(plan) { CommandOutput.line("changed \($0)") }
            for note in outcome.notes { CommandOutput.line("note: \(note)") }
            if outcome.applied.isEmpty { CommandOutput.line("no change: already as configured") }
        } catch {
            CommandOutput.error("net apply: \(error)")
            throw ExitCode.failure
        }
    }
}
