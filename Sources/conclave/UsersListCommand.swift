import ArgumentParser
import ConclaveIdentity

struct UsersListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "One line per registered user: email, tab, display name.")

    @OptionGroup var options: IdentityStateOptions

    func run() throws {
        for user in try options.store().users() { CommandOutput.line("\(user.email)\t\(user.displayName)") }
    }
}
