import ArgumentParser
import ConclaveCrypto
import ConclavePKI

struct CertRequestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "request", abstract: "Generate a key and a CSR for the appliance FQDN (kept in pki/pending/).")

    @OptionGroup var options: PKIStateOptions
    @Option(help: "Appliance FQDN: the CN and first SAN; set in conclave.json if none is set.") var fqdn: String
    @Option(name: .customLong("san"), help: "Extra SAN, DNS:name or IP:address (repeatable).") var extraNames: [SubjectAlternativeName] = []
    @Option(name: .customLong("key"), help: "Key type: ec256 (default), ec384, rsa2048, rsa3072, rsa4096.") var algorithm: KeyAlgorithm = .ecP256
    @Option(help: "Write the CSR here instead of standard output.") var out: String?
    @Flag(help: "Change an FQDN that is already configured.") var replaceFqdn = false

    func run() throws {
        let request = try options.store.createRequest(fqdn: fqdn, extraNames: extraNames, algorithm: algorithm, replaceFQDN: replaceFqdn)
        if let out {
            try CommandLineFiles.write(Array(request.pemEncoded.utf8), to: out)
            CommandOutput.line("cert: CSR for \(request.subject) written to \(out)")
        } else {
            CommandOutput.line(request.pemEncoded, terminator: "")
        }
        CommandOutput.error("cert: key kept in \(options.state)/pki/pending/key.pem; import the signed certificate with 'conclave cert import'")
    }
}
