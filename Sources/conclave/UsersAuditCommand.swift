import ArgumentParser
import ConclaveIdentity

struct UsersAuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "audit", abstract: "Print the newest audit log entries, newest first.")

    @OptionGroup var options: IdentityStateOptions
    @Option(help: "How many entries.") var limit = 50

    func validate() throws {
        guard (1...100_000).contains(limit) else { throw ValidationError("--limit must be 1…100000") }
    }

    func run() throws {
        for entry in try options.store().auditEntries(limit: limit) { CommandOutput.line("\(entry)") }
    }
}
