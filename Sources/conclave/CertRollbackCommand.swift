import ArgumentParser
import ConclaveCrypto
import ConclavePKI

struct CertRollbackCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollback", abstract: "Make the previous certificate active again.")

    @OptionGroup var options: PKIStateOptions

    func run() throws {
        let active = try options.store.rollback()
        CommandOutput.line("cert: rolled back\n" + CertificateSummary(certificate: active.certificate).text)
    }
}
