import ArgumentParser
import ConclaveIdentity
import ConclaveSystem
import FoundationEssentials
import SystemPackage

struct TokenSignCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sign", abstract: "Print a join token signed with an EC P-256 (ES256) or Ed25519 (EdDSA) private key.")

    @Option(help: "PEM private key of the management server.") var key: String
    @Option(help: "The appliance FQDN the token is for (aud).") var audience: String
    @Option(help: "The registered user's email (sub).") var email: String
    @Option(help: "Admit to this meeting only.") var meeting: String?
    @Option(help: "Display name.") var name: String?
    @Option(help: "Issuer name (iss).") var issuer = "management"
    @Option(help: "Seconds until the token expires (1…2592000).") var ttl = 300

    func validate() throws {
        guard (1...2_592_000).contains(ttl) else { throw ValidationError("--ttl must be 1…2592000 seconds") }
        guard !audience.isEmpty, !issuer.isEmpty else { throw ValidationError("--audience and --issuer must not be empty") }
    }

    func run() throws {
        let now = Date()
        let issuedAt = Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down))
        let claims = JoinToken.Claims(
            issuer: issuer, subject: email, audience: audience, expires: issuedAt.addingTimeInterval(Double(ttl)),
            issuedAt: issuedAt, meeting: meeting, name: name)
        CommandOutput.line(try JoinToken.sign(claims, privateKeyPEM: try Files.read(FilePath(key))))
    }
}
