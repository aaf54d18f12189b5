public import ConclaveCrypto
public import FoundationEssentials
import Glibc

/// What the device checks before it touches anything (protocols/rauc-bundle.md §4), in order:
/// structure and sizes (`BundleFile`), the CMS signature over the whole payload against the
/// keyring of the running rootfs (signer chain, validity, key usage), the manifest, the
/// compatible string, the format, the version (anti-rollback), and the image's size and SHA-256.
public struct UpdatePolicy: Sendable {
    public var keyring: TrustStore
    /// This board's `[system] compatible`.
    public var compatible: String
    /// The running system's version; nil or not SemVer: a development build, older than any release.
    public var runningVersion: String?
    /// Install an equal or older version. Only the physical console may set this, after a
    /// typed confirmation; the API never does.
    public var allowDowngrade: Bool
    /// The slot class this device installs (`[image.<class>]`).
    public var slotClass: String
    public var time: Date?

    public init(
        keyring: TrustStore, compatible: String, runningVersion: String?, allowDowngrade: Bool = false,
        slotClass: String = "rootfs", time: Date? = nil
    ) {
        self.keyring = keyring
        self.compatible = compatible
        self.runningVersion = runningVersion
        self.allowDowngrade = allowDowngrade
        self.slotClass = slotClass
        self.time = time
    }

    /// The anchors of a PEM keyring file (text outside the blocks is ignored); none → refused.
    public static func keyring(at path: String) throws(UpdateError) -> TrustStore {
        let bytes: [UInt8]
        do { bytes = try readWholeFile(path, limit: 1 << 20) } catch { throw .configuration("keyring \(path): \(error)") }
        do {
            let anchors = try X509Certificate.certificates(pemEncoded: bytes)
            guard !anchors.isEmpty else { throw UpdateError.emptyKeyring(path) }
            return try TrustStore(anchors: anchors)
        } catch let error as UpdateError {
            throw error
        } catch {
            throw .configuration("keyring \(path): \(error)")
        }
    }
}

/// A bundle whose signature and manifest were checked.
public struct VerifiedBundle {
    public let bundle: BundleFile
    public let payload: SquashfsImage
    public let manifest: Manifest
    public let signers: [X509Certificate]
    /// The image for this device's slot class, and where it is in the payload.
    public let image: Manifest.Image
    public let imageFile: SquashfsImage.File
}

public enum BundleVerifier {
    /// Signature, manifest and every image's size and hash — what `update info` shows, with no
    /// device policy (it also runs on the build host).
    public static func inspect(_ bundle: BundleFile, keyring: TrustStore, time: Date? = nil) throws(UpdateError) -> (
        manifest: Manifest, signers: [X509Certificate]
    ) {
        let signers = try checkSignature(bundle, keyring: keyring, time: time)
        let payload = try bundle.payload()
        let manifest = try readManifest(payload)
        for image in manifest.images { _ = try checkImage(image, in: payload) }
        try bundle.checkUnchanged()
        return (manifest, signers)
    }

    /// Every check, in the order of protocols/rauc-bundle.md §4; throws the first refusal.
    public static func verify(_ bundle: BundleFile, policy: UpdatePolicy) throws(UpdateError) -> VerifiedBundle {
        let signers = try checkSignature(bundle, keyring: policy.keyring, time: policy.time)
        let payload = try bundle.payload()
        let manifest = try readManifest(payload)
        guard manifest.compatible == policy.compatible else {
            throw .incompatible(bundle: manifest.compatible, device: policy.compatible)
        }
        guard manifest.format == "plain" else { throw .unsupportedFormat(manifest.format) }
        try checkVersion(manifest.version, running: policy.runningVersion, allowDowngrade: policy.allowDowngrade)
        let matching = manifest.images.filter { $0.slotClass == policy.slotClass }
        guard matching.count == 1, manifest.images.count == 1, let image = matching.first else {
            throw .malformedManifest(
                "this device installs exactly one [image.\(policy.slotClass)]; the bundle has "
                    + manifest.images.map { "[image.\($0.slotClass)]" }.joined(separator: ", "))
        }
        let file = try checkImage(image, in: payload)
        try bundle.checkUnchanged()
        return VerifiedBundle(bundle: bundle, payload: payload, manifest: manifest, signers: signers, image: image, imageFile: file)
    }

    /// Anti-rollback (§7): strictly newer, unless forced at the console.
    public static func checkVersion(_ version: String, running: String?, allowDowngrade: Bool) throws(UpdateError) {
        guard let bundleVersion = SemanticVersion(version) else { throw .invalidVersion(version) }
        guard let running, let runningVersion = SemanticVersion(running) else { return }
        guard !allowDowngrade else { return }
        if bundleVersion == runningVersion { throw .sameVersion(version) }
        if bundleVersion < runningVersion { throw .downgrade(bundle: version, running: running) }
    }

    static func checkSignature(_ bundle: BundleFile, keyring: TrustStore, time: Date?) throws(UpdateError) -> [X509Certificate] {
        do {
            return try CMS.verifyDetached(
                signature: bundle.signature, fileDescriptor: bundle.descriptor, range: 0..<bundle.payloadSize,
                keyring: keyring, purpose: .smimeSigning, at: time)
        } catch let failure as CMSVerificationFailure {
            switch failure.kind {
            case .malformed: throw .malformedSignature(failure.detail)
            case .untrustedSigner: throw .untrustedSigner(failure.detail)
            case .unsuitableSigner: throw .unsuitableSigner(failure.detail)
            case .contentMismatch: throw .badSignature(failure.detail)
            }
        } catch {
            throw .malformedSignature("\(error)")
        }
    }

    static func readManifest(_ payload: SquashfsImage) throws(UpdateError) -> Manifest {
        guard let file = try payload.file(named: Manifest.filename) else {
            throw .malformedManifest("the bundle has no \(Manifest.filename)")
        }
        guard file.size <= 65_536 else { throw .malformedManifest("\(Manifest.filename) is \(file.size) bytes") }
        var bytes: [UInt8] = []
        try payload.read(file) { chunk throws(UpdateError) in bytes += chunk }
        return try Manifest(parsing: bytes)
    }

    /// The image exists, has the manifest's size, and hashes to the manifest's SHA-256 (one pass).
    static func checkImage(_ image: Manifest.Image, in payload: SquashfsImage) throws(UpdateError) -> SquashfsImage.File {
        guard let file = try payload.file(named: image.filename) else { throw .missingImage(image.filename) }
        guard file.size == image.size else {
            throw .imageSizeMismatch(name: image.filename, manifest: image.size, actual: file.size)
        }
        let hasher: SHA256Hasher
        do { hasher = try SHA256Hasher() } catch { throw .io("\(error)") }
        try payload.read(file) { chunk throws(UpdateError) in hasher.update(chunk) }
        let digest: [UInt8]
        do { digest = try hasher.finish() } catch { throw .io("\(error)") }
        guard digest == image.sha256 else { throw .imageHashMismatch(name: image.filename) }
        return file
    }
}

/// A small file, whole; larger than `limit` → refused.
func readWholeFile(_ path: String, limit: Int) throws(UpdateError) -> [UInt8] {
    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else { throw .io("cannot open \(path): \(String(cString: strerror(errno)))") }
    defer { close(descriptor) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65_536)
    while true {
        let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        if count < 0 && errno == EINTR { continue }
        guard count >= 0 else { throw .io("read \(path): \(String(cString: strerror(errno)))") }
        if count == 0 { return bytes }
        bytes += chunk[..<count]
        guard bytes.count <= limit else { throw .io("\(path) is larger than \(limit) bytes") }
    }
}
