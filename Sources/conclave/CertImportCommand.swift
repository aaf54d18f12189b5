import ArgumentParser
import ConclaveCrypto
import ConclavePKI

struct CertImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Validate and activate a certificate (PEM, DER or P7B); the key defaults to the pending one.")

    @OptionGroup var options: PKIStateOptions
    @Argument(help: "Certificate file; it may carry the chain as well.") var certificate: String
    @Option(help: "Chain file (intermediates, optionally the root).") var chain: String?
    @Option(help: "Private key (PEM or DER, mode 0600). Default: pki/pending/key.pem.") var key: String?
    @Option(help: "Appliance FQDN to adopt if none is configured yet.") var fqdn: String?

    func run() throws {
        if let key, CommandLineFiles.isReadableByOthers(key) {
            throw CertificateStoreError.keyFileReadableByOthers(path: key)
        }
        let active = try options.store.importCertificate(
            certificate: CommandLineFiles.read(certificate), chain: chain.map { try CommandLineFiles.read($0) },
            key: key.map { try CommandLineFiles.read($0) }, fqdn: fqdn)
        CommandOutput.line("cert: activated\n" + CertificateSummary(certificate: active.certificate).text)
    }
}

struct CertImportP12Command: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import-p12", abstract: "Validate and activate the key, certificate and chain of a PKCS#12 file.")

    @OptionGroup var options: PKIStateOptions
    @Argument(help: "PKCS#12 file (.p12, .pfx).") var file: String
    @Option(help: "File holding the password (first line).") var passwordFile: String
    @Option(help: "Appliance FQDN to adopt if none is configured yet.") var fqdn: String?

    func run() throws {
        let passwordBytes = try CommandLineFiles.read(passwordFile)
        let password = String(decoding: passwordBytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).first.map {
            String($0.hasSuffix("\r") ? $0.dropLast() : $0)
        } ?? ""
        let active = try options.store.importPKCS12(CommandLineFiles.read(file), password: password, fqdn: fqdn)
        CommandOutput.line("cert: activated\n" + CertificateSummary(certificate: active.certificate).text)
    }
}
