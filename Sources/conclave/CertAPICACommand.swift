import ArgumentParser
import ConclaveCrypto
import ConclavePKI

struct CertAPICACommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "api-ca", abstract: "The CA whose client certificates may call the command API.",
        subcommands: [Import.self, Show.self])

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Replace pki/api-ca.pem with the CA certificates of FILE.")
        @OptionGroup var options: PKIStateOptions
        @Argument(help: "CA certificate file (PEM, DER, P7B).") var file: String

        func run() throws {
            for certificate in try options.store.importAPICA(CommandLineFiles.read(file)) {
                CommandOutput.line("api-ca: \(certificate.subject)  SHA-256 \(certificate.sha256FingerprintText)")
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the API client CA.")
        @OptionGroup var options: PKIStateOptions

        func run() throws {
            let certificates = try options.store.apiCA()
            guard !certificates.isEmpty else { throw CertificateStoreError.noAPICA }
            for certificate in certificates { CommandOutput.line(CertificateSummary(certificate: certificate).text) }
        }
    }
}
