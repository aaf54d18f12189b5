import ArgumentParser
import ConclaveIdentity

struct UsersAddCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add", abstract: "Register a user: email, display name and a password of at least 10 characters.")

    @OptionGroup var options: IdentityStateOptions
    @OptionGroup var password: PasswordOptions
    @Option(help: "Display name shown to other participants.") var name: String
    @Argument(help: "The user's email (stored lowercase).") var email: String

    func run() throws {
        let store = try options.store()
        let user = try store.addUser(email: email, displayName: name, password: try password.read(confirm: true))
        try store.audit(actor: IdentityStateOptions.actor, action: "user.add", detail: "display name \"\(user.displayName)\"", subject: user.email)
        CommandOutput.line("users: added \(user)")
    }
}
