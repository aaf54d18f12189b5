import ArgumentParser
import ConclaveUpdate

/// `conclave update …`: signed RAUC bundles, the A/B installer and the boot-side mark-good.
struct UpdateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "update", abstract: "Build, inspect and install signed update bundles; show and confirm A/B slots.",
        subcommands: [
            UpdateBundleCommand.self, UpdateInfoCommand.self, UpdateInstallCommand.self, UpdateStatusCommand.self,
            UpdateMarkGoodCommand.self,
        ])
}

/// Where the running system's update files are; the defaults are the appliance's, tests point
/// them at temporary files.
struct UpdateSystemOptions: ParsableArguments {
    @Option(help: "RAUC-style system configuration (compatible, keyring, slots, data directory).")
    var systemConf = SystemConfiguration.defaultPath
    @Option(help: "Board file whose VERSION= is the running version.") var boardFile = SystemConfiguration.boardPath
    @Option(help: "A/B boot state file.") var bootstate = "/data/bootstate"
    @Option(help: "File naming the booted slot (written by the slot selector).") var bootSlotFile = "/run/boot-slot"

    func environment() throws -> UpdateEnvironment {
        try UpdateEnvironment.system(
            configurationPath: systemConf, boardFile: boardFile, bootStatePath: bootstate, bootedSlotFile: bootSlotFile)
    }
}

extension UpdateState {
    /// The lines `update status`, `install` and `mark-good` print.
    var summaryLines: [String] {
        var lines = ["state: \(phase.rawValue)"]
        if let version { lines.append("bundle version: \(version)") }
        if let targetSlot { lines.append("target slot: \(targetSlot)") }
        if phase == .writing, let progress, let imageSize, imageSize > 0 {
            lines.append("progress: \(progress) of \(imageSize) bytes (\(progress * 100 / imageSize)%)")
        }
        if let lastResult { lines.append("last result: \(lastResult)") }
        if let rollback { lines.append("ROLLBACK: \(rollback)") }
        return lines
    }
}
