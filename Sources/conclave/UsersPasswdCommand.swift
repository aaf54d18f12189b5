import ArgumentParser
import ConclaveIdentity

struct UsersPasswdCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "passwd", abstract: "Set a registered user's password.")

    @OptionGroup var options: IdentityStateOptions
    @OptionGroup var password: PasswordOptions
    @Argument(help: "The user's email.") var email: String

    func run() throws {
        let store = try options.store()
        guard let user = try store.user(email: email) else { throw IdentityError.noSuchUser(email) }
        try store.setPassword(email: user.email, password: try password.read(confirm: true))
        try store.audit(actor: IdentityStateOptions.actor, action: "user.password-set", detail: "password changed", subject: user.email)
        CommandOutput.line("users: password set for \(user.email)")
    }
}
