import ArgumentParser
import ConclaveUpdate
import FoundationEssentials

struct UpdateStatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show the installer state, the last result (and any rollback), and the A/B slots.")

    @OptionGroup var system: UpdateSystemOptions
    @Flag(help: "Print the update state as JSON.") var json = false

    func run() throws {
        let environment = try system.environment()
        let state = try UpdateInstaller(environment: environment).status()
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            CommandOutput.line(String(decoding: try encoder.encode(state), as: UTF8.self))
            return
        }
        CommandOutput.line("running version: \(environment.runningVersion ?? "unknown"), booted slot: \(environment.bootedSlot ?? "unknown")")
        for line in state.summaryLines { CommandOutput.line(line) }
        let boot = try environment.bootState.load()
        CommandOutput.line("boot order: \(boot.order.joined(separator: " "))")
        for slot in environment.configuration.slots {
            let tries = boot.triesLeft[slot.bootname] ?? 0
            let marks = [slot.bootname == environment.bootedSlot ? "booted" : nil, boot.primary == slot.bootname ? "primary" : nil]
                .compactMap { $0 }
            CommandOutput.line("slot \(slot.bootname): \(slot.device), \(boot.isGood(slot.bootname) ? "good" : "bad"), "
                + "\(tries) tries left\(marks.isEmpty ? "" : " (" + marks.joined(separator: ", ") + ")")")
        }
    }
}
