import ArgumentParser
import ConclaveIdentity
import FoundationEssentials

struct UsersShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Print one registered user (never the password hash).")

    @OptionGroup var options: IdentityStateOptions
    @Argument(help: "The user's email.") var email: String

    func run() throws {
        guard let user = try options.store().user(email: email) else { throw IdentityError.noSuchUser(email) }
        CommandOutput.line("""
            email: \(user.email)
            name: \(user.displayName)
            created: \(user.created.formatted(.iso8601))
            password changed: \(user.passwordChanged.formatted(.iso8601))
            """)
    }
}
