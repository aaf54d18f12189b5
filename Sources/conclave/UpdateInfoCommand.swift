import ArgumentParser
import ConclaveCrypto
import ConclaveUpdate

struct UpdateInfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info", abstract: "Verify a bundle's signature, manifest and image hashes, and print them.")

    @Argument(help: "The bundle (.raucb).") var bundle: String
    @Option(help: "Keyring of trusted anchors (PEM).") var keyring = "/etc/conclave/keyring.pem"

    func run() throws {
        let file = try BundleFile(path: bundle)
        let (manifest, signers) = try BundleVerifier.inspect(file, keyring: UpdatePolicy.keyring(at: keyring))
        for signer in signers { CommandOutput.line("Verified detached signature by '\(signer.subject)'") }
        CommandOutput.line("Compatible:  \(manifest.compatible)")
        CommandOutput.line("Version:     \(manifest.version)")
        if let description = manifest.description { CommandOutput.line("Description: \(description)") }
        if let build = manifest.build { CommandOutput.line("Build:       \(build)") }
        CommandOutput.line("Format:      \(manifest.format)")
        CommandOutput.line("Signed:      \(file.payloadSize) bytes, signature \(file.signature.count) bytes")
        for image in manifest.images {
            CommandOutput.line("Image [\(image.slotClass)]: \(image.filename), \(image.size) bytes, sha256 \(hex(image.sha256)) (checked)")
        }
    }
}
