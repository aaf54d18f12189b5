import ArgumentParser
import ConclaveCrypto
import ConclavePKI

struct CertCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Expiry of the active certificate: ok, warn-30, warn-7, warn-1 or expired.",
        discussion: "Exit status: 0 ok, 3 warn-30, 4 warn-7, 5 warn-1, 6 expired, 2 no certificate.")

    @OptionGroup var options: PKIStateOptions
    @Flag(help: "JSON instead of text.") var json = false

    func run() throws {
        guard let active = try options.store.active() else {
            CommandOutput.line(json ? #"{"status":"none"}"# : "none")
            throw ExitCode(2)
        }
        let summary = CertificateSummary(certificate: active.certificate)
        let status = ExpiryStatus(rawValue: summary.status) ?? .expired
        if json {
            CommandOutput.line(#"{"daysLeft":\#(summary.daysLeft),"notAfter":"\#(summary.notAfter)","status":"\#(summary.status)"}"#)
        } else {
            CommandOutput.line("\(summary.status) (\(summary.daysLeft) days left, not after \(summary.notAfter))")
        }
        if status != .ok { throw ExitCode(status.exitCode) }
    }
}
