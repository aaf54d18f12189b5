import ArgumentParser
import ConclaveUpdate

struct UpdateMarkGoodCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mark-good",
        abstract: "After the health check: give the booted slot its tries back and record the update's outcome.")

    @OptionGroup var system: UpdateSystemOptions

    func run() throws {
        let state = try UpdateInstaller(environment: system.environment()).markGood()
        for line in state.summaryLines { CommandOutput.line(line) }
    }
}
