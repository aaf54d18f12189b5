import ArgumentParser
import ConclaveCrypto
import ConclavePKI

struct CertSelfSignedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "self-signed", abstract: "Generate and activate a self-signed certificate (first boot, lab use).")

    @OptionGroup var options: PKIStateOptions
    @Option(help: "Appliance FQDN; set in conclave.json if none is set.") var fqdn: String
    @Option(help: "Validity in days.") var days = 365
    @Option(name: .customLong("san"), help: "Extra SAN, DNS:name or IP:address (repeatable).") var extraNames: [SubjectAlternativeName] = []
    @Option(name: .customLong("key"), help: "Key type: ec256 (default), ec384, rsa2048, rsa3072, rsa4096.") var algorithm: KeyAlgorithm = .ecP256
    @Flag(help: "Change an FQDN that is already configured.") var replaceFqdn = false

    func validate() throws {
        guard (1...3650).contains(days) else { throw ValidationError("--days must be 1…3650") }
    }

    func run() throws {
        let active = try options.store.installSelfSigned(
            fqdn: fqdn, days: days, extraNames: extraNames, algorithm: algorithm, replaceFQDN: replaceFqdn)
        CommandOutput.line("cert: activated\n" + CertificateSummary(certificate: active.certificate).text)
    }
}
