import ArgumentParser
import ConclaveIdentity
import ConclaveSystem
import FoundationEssentials
import SystemPackage

struct TokenVerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify", abstract: "Check a join token as the control server does and print its claims.",
        discussion: "Exit status 1 with the reason when the token is refused.")

    @Option(help: "PEM public key (or certificate) of the management server.") var key: String
    @Option(help: "This appliance's FQDN.") var audience: String
    @Option(help: "The meeting being joined.") var meeting: String
    @Option(help: "Read the token from this file (default: the argument).") var tokenFile: String?
    @Argument(help: "The token.") var token: String?

    func run() throws {
        var text: String
        if let tokenFile {
            text = String(decoding: try Files.read(FilePath(tokenFile)), as: UTF8.self)
        } else if let token {
            text = token
        } else {
            throw UsersCommandError("give the token as an argument or with --token-file")
        }
        text = String(text.filter { !$0.isWhitespace })
        let claims = try JoinToken.verify(
            text, publicKeyPEM: try Files.read(FilePath(key)), audience: audience, meeting: meeting, now: Date())
        CommandOutput.line("""
            valid: \(claims.subject) for \(claims.audience), issued by \(claims.issuer)\
            \(claims.meeting.map { ", meeting \($0)" } ?? ""), expires \(claims.expires.formatted(.iso8601))
            """)
    }
}
