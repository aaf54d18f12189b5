import ArgumentParser
import ConclaveSystem
import FoundationEssentials

/// `conclave ctl users add|show|erase|passwd`.
struct CtlUsersCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "users", abstract: "Register, show and erase users on the appliance.", subcommands: [Add.self, Show.self, Erase.self, Passwd.self])

    static func line(_ user: [String: JSONValue]) -> String { "\(text(user["email"]))  \"\(text(user["name"]))\"" }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Register a user.")
        @OptionGroup var options: CtlOptions
        @Argument var email: String
        @Option(help: "Display name.") var name: String
        @Option(help: "File holding the password (10 characters at least).") var passwordFile: String

        func run() throws {
            let body: JSONValue = .object(["email": .string(email), "name": .string(name), "password": .string(try RoomJoinCommand.secret(passwordFile))])
            options.show(try options.call("POST", "/v1/users", body: body)) { ["added: " + CtlUsersCommand.line($0)] }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a registered user.")
        @OptionGroup var options: CtlOptions
        @Argument var email: String

        func run() throws {
            options.show(try options.call("GET", "/v1/users/\(CtlPath.escape(email))")) { [CtlUsersCommand.line($0)] }
        }
    }

    struct Erase: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Erase a user and every row that names them.")
        @OptionGroup var options: CtlOptions
        @Argument var email: String

        func run() throws {
            options.show(try options.call("DELETE", "/v1/users/\(CtlPath.escape(email))")) { erasure in
                ["erased \(text(erasure["erased"])): \(text(erasure["visits"])) visits, \(text(erasure["auditEntries"])) audit entries"]
            }
        }
    }

    struct Passwd: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set a user's password.")
        @OptionGroup var options: CtlOptions
        @Argument var email: String
        @Option(help: "File holding the new password.") var passwordFile: String

        func run() throws {
            _ = try options.call("PUT", "/v1/users/\(CtlPath.escape(email))/password", body: .object(["password": .string(try RoomJoinCommand.secret(passwordFile))]))
            if !options.json { CommandOutput.line("password changed for \(email)") }
        }
    }
}
