/// Why an update was refused or failed. Each case names one reason, so the console, the API
/// and the audit log can say what went wrong; a refusal never changes anything stored.
public enum UpdateError: Error, Equatable, CustomStringConvertible, Sendable {
    // Structure of the bundle file (protocols/rauc-bundle.md §2).
    case notABundle(String)
    case truncated(String)
    case sizeFieldOutOfRange(signatureSize: UInt64, fileSize: UInt64)
    case signatureTooLarge(size: UInt64, limit: UInt64)
    case bundleTooLarge(size: UInt64, limit: UInt64)
    case malformedPayload(String)
    case unsupportedCompression(String)
    // Signature.
    case malformedSignature(String)
    case badSignature(String)
    case untrustedSigner(String)
    case unsuitableSigner(String)
    case emptyKeyring(String)
    // Manifest and policy.
    case malformedManifest(String)
    case incompatible(bundle: String, device: String)
    case unsupportedFormat(String)
    case invalidVersion(String)
    case downgrade(bundle: String, running: String)
    case sameVersion(String)
    case missingImage(String)
    case imageSizeMismatch(name: String, manifest: UInt64, actual: UInt64)
    case imageHashMismatch(name: String)
    // Installation.
    case installInProgress(String)
    case noInactiveSlot(String)
    case slotTooSmall(image: UInt64, slot: UInt64)
    case readBackMismatch(slot: String)
    case configuration(String)
    case io(String)

    public var description: String {
        switch self {
        case .notABundle(let why): "not a RAUC bundle: \(why)"
        case .truncated(let why): "truncated bundle: \(why)"
        case .sizeFieldOutOfRange(let size, let fileSize):
            "bundle size field out of range: the trailer gives a \(size)-byte signature in a \(fileSize)-byte file"
        case .signatureTooLarge(let size, let limit): "bundle signature too large: \(size) bytes (limit \(limit))"
        case .bundleTooLarge(let size, let limit): "bundle too large: \(size) bytes (limit \(limit))"
        case .malformedPayload(let why): "malformed bundle payload (squashfs): \(why)"
        case .unsupportedCompression(let name): "unsupported squashfs compression '\(name)' (supported: gzip, uncompressed)"
        case .malformedSignature(let why): "malformed bundle signature: \(why)"
        case .badSignature(let why): "bad signature: the bundle does not match its signature (\(why))"
        case .untrustedSigner(let why): "signer not trusted: it does not chain to the update keyring (\(why))"
        case .unsuitableSigner(let why): "signer certificate not allowed to sign updates (\(why))"
        case .emptyKeyring(let path): "the update keyring \(path) holds no certificate: no bundle can be accepted"
        case .malformedManifest(let why): "malformed manifest: \(why)"
        case .incompatible(let bundle, let device): "wrong compatible: bundle is for '\(bundle)', this device is '\(device)'"
        case .unsupportedFormat(let format): "unsupported bundle format '\(format)' (only plain)"
        case .invalidVersion(let version): "invalid version '\(version)' (SemVer MAJOR.MINOR.PATCH expected)"
        case .downgrade(let bundle, let running): "downgrade refused: bundle version \(bundle) is older than the running \(running)"
        case .sameVersion(let version): "version \(version) is already running (a reinstall counts as a downgrade)"
        case .missingImage(let name): "image '\(name)' named by the manifest is not in the bundle"
        case .imageSizeMismatch(let name, let manifest, let actual):
            "image '\(name)' is \(actual) bytes, the manifest says \(manifest)"
        case .imageHashMismatch(let name): "image '\(name)' does not match the manifest's sha256"
        case .installInProgress(let state): "an installation is in progress (state \(state))"
        case .noInactiveSlot(let why): "no inactive slot to install into: \(why)"
        case .slotTooSmall(let image, let slot): "the image (\(image) bytes) does not fit the slot (\(slot) bytes)"
        case .readBackMismatch(let slot): "slot \(slot) read back differs from the image: the write failed"
        case .configuration(let why): "update configuration: \(why)"
        case .io(let why): "I/O error: \(why)"
        }
    }
}
