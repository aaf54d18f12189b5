import Glibc

/// A RAUC plain bundle file (protocols/rauc-bundle.md §2): squashfs ‖ CMS ‖ CMS size (u64 BE).
/// Opening checks the structure only; `BundleVerifier` decides whether to trust it.
/// Owns the descriptor and closes it in `deinit`.
public final class BundleFile {
    public let path: String
    public let fileSize: UInt64
    /// S: the squashfs payload, bytes [0, S), which the signature covers.
    public let payloadSize: UInt64
    /// The CMS SignedData, DER, bytes [S, S+N).
    public let signature: [UInt8]
    let descriptor: Int32
    /// Change time and modification time at opening: a bundle that changes while it is checked
    /// or installed is refused (RAUC takes a lease for the same reason).
    private let identity: FileIdentity

    /// RAUC's own bound is 64 KiB for plain-bundle signatures; certificate chains stay far below.
    public static let signatureLimit: UInt64 = 65_536
    public static let sizeLimit: UInt64 = 1 << 32
    static let minimumPayload: UInt64 = 96  // a squashfs superblock

    public init(path: String) throws(UpdateError) {
        self.path = path
        let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard descriptor >= 0 else { throw .io("cannot open \(path): \(String(cString: strerror(errno)))") }
        self.descriptor = descriptor
        do throws(UpdateError) {
            identity = try FileIdentity(descriptor: descriptor)
            guard identity.isRegular else { throw .notABundle("\(path) is not a regular file") }
            fileSize = identity.size
            guard fileSize <= Self.sizeLimit else { throw .bundleTooLarge(size: fileSize, limit: Self.sizeLimit) }
            guard fileSize >= 8 + 1 + Self.minimumPayload else {
                throw .truncated("\(fileSize) bytes: shorter than the smallest bundle")
            }
            let source = FileByteSource(descriptor: descriptor, size: fileSize)
            let trailer = try source.read(at: fileSize - 8, count: 8)
            let signatureSize = trailer.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            guard signatureSize > 0, signatureSize < fileSize - 8 else {
                throw .sizeFieldOutOfRange(signatureSize: signatureSize, fileSize: fileSize)
            }
            guard signatureSize <= Self.signatureLimit else {
                throw .signatureTooLarge(size: signatureSize, limit: Self.signatureLimit)
            }
            payloadSize = fileSize - 8 - signatureSize
            guard payloadSize >= Self.minimumPayload else {
                throw .truncated("the payload is \(payloadSize) bytes: shorter than a squashfs superblock")
            }
            // The payload must be a whole squashfs image: its superblock's size fits the payload.
            let superblock = try source.read(at: 0, count: 48)
            guard superblock[0..<4].elementsEqual([0x68, 0x73, 0x71, 0x73]) else {
                throw .notABundle("no squashfs image at the start of the file")
            }
            let bytesUsed = superblock[40..<48].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            guard bytesUsed <= payloadSize else {
                throw .truncated("the squashfs image needs \(bytesUsed) bytes, the bundle holds \(payloadSize) before its signature")
            }
            signature = try source.read(at: payloadSize, count: Int(signatureSize))
            guard signature.first == 0x30 else {
                throw .malformedSignature("the \(signatureSize) bytes before the size trailer are not DER")
            }
        } catch {
            close(descriptor)
            throw error
        }
    }

    deinit { close(descriptor) }

    /// The squashfs payload, read in place.
    public func payload() throws(UpdateError) -> SquashfsImage {
        try SquashfsImage(source: FileByteSource(descriptor: descriptor, size: payloadSize))
    }

    /// Throws when the file was written to (or replaced in place) since it was opened.
    public func checkUnchanged() throws(UpdateError) {
        guard try FileIdentity(descriptor: descriptor) == identity else {
            throw .io("\(path) changed while it was being checked; refused")
        }
    }
}

struct FileIdentity: Equatable {
    let size: UInt64
    let modified: timespec
    let changed: timespec
    let isRegular: Bool

    init(descriptor: Int32) throws(UpdateError) {
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw .io("fstat: \(String(cString: strerror(errno)))") }
        size = UInt64(status.st_size)
        modified = status.st_mtim
        changed = status.st_ctim
        isRegular = status.st_mode & S_IFMT == S_IFREG
    }

    static func == (lhs: FileIdentity, rhs: FileIdentity) -> Bool {
        lhs.size == rhs.size && lhs.isRegular == rhs.isRegular
            && lhs.modified.tv_sec == rhs.modified.tv_sec && lhs.modified.tv_nsec == rhs.modified.tv_nsec
            && lhs.changed.tv_sec == rhs.changed.tv_sec && lhs.changed.tv_nsec == rhs.changed.tv_nsec
    }
}
