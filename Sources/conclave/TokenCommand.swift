import ArgumentParser

/// `conclave token …`: the management side of single sign-on join tokens (docs/identity.md).
struct TokenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token", abstract: "Sign and check single sign-on join tokens (the reference for management servers).",
        subcommands: [TokenSignCommand.self, TokenVerifyCommand.self])
}
