import ArgumentParser
import ConclaveCrypto
import ConclavePKI

struct CertShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show", abstract: "Print the active certificate: subject, SANs, issuer, dates, days left, fingerprint.")

    @OptionGroup var options: PKIStateOptions
    @Flag(help: "JSON instead of text.") var json = false
    @Flag(help: "Show the previous certificate (the rollback target) instead.") var previous = false

    func run() throws {
        let store = options.store
        guard let active = try previous ? store.previousCertificate() : store.active() else {
            throw previous ? CertificateStoreError.nothingToRollBackTo : CertificateStoreError.noActiveCertificate
        }
        let summary = CertificateSummary(certificate: active.certificate)
        CommandOutput.line(json ? summary.json : summary.text)
    }
}
