import ArgumentParser
import ConclaveCrypto
import ConclavePKI
import Glibc

/// `conclave cert …`: what the console's certificate menu calls.
struct CertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cert", abstract: "Generate, import, activate and inspect the appliance certificate.",
        subcommands: [
            CertRequestCommand.self, CertImportCommand.self, CertImportP12Command.self, CertSelfSignedCommand.self,
            CertShowCommand.self, CertRollbackCommand.self, CertTrustCommand.self, CertAPICACommand.self, CertCheckCommand.self,
        ])
}

/// `--state DIR`, shared by every `cert` and `tls` subcommand.
struct PKIStateOptions: ParsableArguments {
    @Option(help: "State directory; the certificate store is DIR/pki.") var state = "/data/conclave"

    var store: CertificateStore { CertificateStore(stateDirectory: state) }
}

/// Line output that reaches a pipe at once (tests and the console read it as it comes).
/// Unbuffered write(2), so it is also safe from event-loop threads.
enum CommandOutput {
    static func line(_ text: String, terminator: String = "\n") { write(text + terminator, to: STDOUT_FILENO) }

    static func error(_ text: String) { write(text + "\n", to: STDERR_FILENO) }

    private static func write(_ text: String, to descriptor: Int32) {
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { return }
            offset += written
        }
    }
}

extension KeyAlgorithm: ExpressibleByArgument {
    public init?(argument: String) { self.init(name: argument) }
    public static var allValueStrings: [String] { ["ec256", "ec384", "rsa2048", "rsa3072", "rsa4096"] }
}

extension SubjectAlternativeName: ExpressibleByArgument {
    public init?(argument: String) { self.init(parsing: argument) }
}
