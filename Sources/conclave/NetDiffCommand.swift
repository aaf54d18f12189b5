import ArgumentParser
import ConclaveSystem

struct NetDiffCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff", abstract: "What `net apply` would change (\"change …\"), what it skips (\"note: …\") and what it would refuse (\"cannot: …\").")

    @OptionGroup var target: NetTargetOptions
    @OptionGroup var namespace: NetNamespaceOption

    func run() throws {
        try namespace.enter()
        let plan = try NetworkPlanner(system: try .kernel()).plan(try target.target(insideNamespace: namespace.netns != nil))
        NetOutput.print(plan, changePrefix: "change")
    }
}
