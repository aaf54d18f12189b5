import ArgumentParser
import ConclaveSystem
import FoundationEssentials

struct NetShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show", abstract: "Links, addresses, routes, rings, coalescing, channels, features, queue masks and sysctls.")

    @Flag(help: "Print JSON.") var json = false
    @Option(help: "State directory (its \"tuning\" sysctls are shown too).") var state = "/data/conclave"
    @OptionGroup var namespace: NetNamespaceOption

    func run() throws {
        try namespace.enter()
        let extra = (try? NetworkConfiguration.load(stateDirectory: .init(state)).tuning.sysctl.keys.sorted()) ?? []
        let report = try NetworkReport.gather(from: try .kernel(), extraSysctls: extra)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
            CommandOutput.line(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            CommandOutput.line(report.text)
        }
    }
}
