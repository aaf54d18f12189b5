import ArgumentParser
import ConclaveIdentity

struct UsersEraseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "erase",
        abstract: "Remove a user and every row naming them (visits, audit entries), and print what went.",
        discussion: "The audit log records the erasure with counts only, never the erased email.")

    @OptionGroup var options: IdentityStateOptions
    @Argument(help: "The user's email.") var email: String

    func run() throws {
        guard let erasure = try options.store().erase(email: email, auditActor: IdentityStateOptions.actor) else {
            throw IdentityError.noSuchUser(email)
        }
        CommandOutput.line("users: \(erasure)")
    }
}
