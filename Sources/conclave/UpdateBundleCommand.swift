import ArgumentParser
import ConclaveCrypto
import ConclaveSystem
import ConclaveUpdate
import SystemPackage

struct UpdateBundleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bundle", abstract: "Build a signed RAUC plain bundle from a rootfs image (on the build host; needs mksquashfs).")

    @Option(name: .customLong("manifest-version"), help: "Bundle version (SemVer).") var version: String
    @Option(help: "Compatible string of the target board (conclave-<board>).") var compatible: String
    @Option(help: "The slot image (the rootfs squashfs).") var image: String
    @Option(help: "Name of the image inside the bundle (default: the image file's name).") var imageName: String?
    @Option(help: "Signing certificate (PEM).") var cert: String
    @Option(help: "Signing key (PEM).") var key: String
    @Option(help: "Intermediate certificates to embed (PEM).") var intermediate: String?
    @Option(help: "Verify the finished bundle against this keyring (PEM anchors).") var keyring: String?
    @Option(help: "Manifest description.") var description: String?
    @Option(name: .customLong("build-id"), help: "Manifest build id.") var buildID: String?
    @Option(name: .shortAndLong, help: "Output bundle (.raucb).") var output: String

    func run() throws {
        guard let signer = try X509Certificate.certificates(pemEncoded: Files.read(FilePath(cert))).first else {
            throw ValidationError("\(cert) holds no certificate")
        }
        let privateKey = try PrivateKey(encoded: Files.read(FilePath(key)))
        var builder = BundleBuilder(compatible: compatible, version: version, imagePath: image, signer: signer, key: privateKey)
        builder.imageName = imageName
        builder.description = description
        builder.build = buildID
        if let intermediate { builder.intermediates = try X509Certificate.certificates(pemEncoded: Files.read(FilePath(intermediate))) }
        let manifest = try builder.write(to: output)
        if let keyring {
            let bundle = try BundleFile(path: output)
            _ = try BundleVerifier.inspect(bundle, keyring: UpdatePolicy.keyring(at: keyring))
            CommandOutput.line("verified against \(keyring)")
        }
        CommandOutput.line("bundle \(output): \(manifest.compatible) \(manifest.version), image \(manifest.images[0].filename) "
            + "\(manifest.images[0].size) bytes sha256 \(hex(manifest.images[0].sha256))")
    }
}
