import ArgumentParser
import ConclaveCrypto
import ConclavePKI

struct CertTrustCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trust", abstract: "Trust anchors: export this server's for room systems, import a server's on a room system.",
        subcommands: [Export.self, Import.self, List.self])

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write the anchor of the active chain (PEM) for room systems.")
        @OptionGroup var options: PKIStateOptions
        @Option(help: "Output file.") var out: String

        func run() throws {
            let bundle = try options.store.trustBundleForRoomSystems()
            try CommandLineFiles.write(Array(CertificateFile.pem(bundle).utf8), to: out)
            for certificate in bundle { CommandOutput.line("\(certificate.subject)  SHA-256 \(certificate.sha256FingerprintText)") }
        }
    }

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add the certificates of a bundle (PEM, DER, P7B) to pki/trust/.")
        @OptionGroup var options: PKIStateOptions
        @Argument(help: "Bundle file.") var file: String
        @Option(help: "Refuse unless a certificate has this SHA-256 fingerprint (hex, colons optional).") var fingerprint: String?

        func run() throws {
            let bytes = try CommandLineFiles.read(file)
            if let fingerprint {
                let wanted = fingerprint.uppercased().filter { $0 != ":" }
                let certificates = try CertificateFile.certificates(from: bytes)
                guard certificates.contains(where: { $0.sha256FingerprintText.filter { $0 != ":" } == wanted }) else {
                    throw ValidationError("no certificate in \(file) has SHA-256 fingerprint \(fingerprint)")
                }
            }
            for certificate in try options.store.importTrust(bytes) {
                CommandOutput.line("trusted: \(certificate.subject)  SHA-256 \(certificate.sha256FingerprintText)")
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the trust anchors.")
        @OptionGroup var options: PKIStateOptions

        func run() throws {
            for certificate in try options.store.trustAnchors() {
                CommandOutput.line("\(certificate.subject)  not after \(Timestamp.text(certificate.notValidAfter))  SHA-256 \(certificate.sha256FingerprintText)")
            }
        }
    }
}
