public import ConclaveCrypto
public import SystemPackage
import ConclaveSystem
import Glibc

/// Makes a RAUC plain bundle the way `rauc bundle` 1.8 does: a squashfs (`mksquashfs`, gzip,
/// all files owned by root, no xattrs) of `manifest.raucm` and the image, then a detached CMS
/// signature over it (our own OpenSSL code) and its size as a big-endian u64.
/// `mksquashfs` runs on the build host only; the device reads bundles with `SquashfsImage`.
public struct BundleBuilder {
    public var compatible: String
    public var version: String
    public var description: String?
    public var build: String?
    public var slotClass = "rootfs"
    public var imagePath: String
    /// The image's name inside the bundle; the image file's own name when nil.
    public var imageName: String?
    public var signer: X509Certificate
    public var key: PrivateKey
    /// Intermediate certificates carried in the signature (the keyring holds anchors only).
    public var intermediates: [X509Certificate] = []

    public init(compatible: String, version: String, imagePath: String, signer: X509Certificate, key: PrivateKey) {
        self.compatible = compatible
        self.version = version
        self.imagePath = imagePath
        self.signer = signer
        self.key = key
    }

    /// Writes the bundle to `output` (temp file, then rename); returns its manifest.
    public func write(to output: String) throws(UpdateError) -> Manifest {
        guard SemanticVersion(version) != nil else { throw .invalidVersion(version) }
        guard !compatible.isEmpty, !compatible.contains("\n") else { throw .malformedManifest("empty or multi-line compatible") }
        for text in [description, build].compactMap({ $0 }) where text.contains("\n") {
            throw .malformedManifest("description and build must be one line")
        }
        guard signer.matches(key) else { throw .configuration("the signing key does not belong to the signing certificate") }
        let name = imageName ?? String(imagePath.split(separator: "/").last ?? "rootfs.img")
        guard !name.isEmpty, !name.contains("/"), name != Manifest.filename else { throw .malformedManifest("image name '\(name)'") }

        let work = FilePath(output + ".work")
        let content = work.appending("content")
        try? content.removeFlatDirectory()
        do {
            try work.makeDirectory()
            try content.makeDirectory()
        } catch { throw .io("creating \(content): \(error)") }
        defer {
            try? content.removeFlatDirectory()
            _ = work.withPlatformString { rmdir($0) }
        }

        // The image: copied while hashed (mksquashfs reads the copy, so both see the same bytes).
        let copy = content.appending(name).string
        let (sha256, size) = try copyHashing(from: imagePath, to: copy)
        let image = Manifest.Image(slotClass: slotClass, filename: name, sha256: sha256, size: size)
        let manifestText = Manifest.text(compatible: compatible, version: version, description: description, build: build, image: image)
        do {
            try Files.writeAtomically(Array(manifestText.utf8), to: content.appending(Manifest.filename), permissions: [.ownerReadWrite, .groupRead, .otherRead])
        } catch { throw .io("writing the manifest: \(error)") }

        try Self.pack(content: content, to: output, signer: signer, key: key, intermediates: intermediates)
        return try Manifest(parsing: Array(manifestText.utf8))
    }

    /// `rauc bundle CONTENT OUTPUT`: packs a content directory (manifest and images, as they
    /// are: nothing is checked or filled in) into a squashfs, signs it, appends the signature
    /// and its size.
    public static func pack(
        content: FilePath, to output: String, signer: X509Certificate, key: PrivateKey, intermediates: [X509Certificate] = []
    ) throws(UpdateError) {
        let payload = output + ".payload"
        _ = payload.withCString { unlink($0) }
        defer { _ = payload.withCString { unlink($0) } }
        try run(mksquashfs(), [content.string, payload, "-all-root", "-noappend", "-no-progress", "-no-xattrs", "-quiet"])
        let signature: [UInt8]
        do {
            signature = try CMS.signDetached(contentFile: payload, signer: signer, key: key, chain: intermediates)
        } catch { throw .malformedSignature("signing failed: \(error)") }
        let temporary = output + ".tmp"
        _ = temporary.withCString { unlink($0) }
        try appendFile(payload, to: temporary, truncate: true)
        let trailer = (0..<8).map { UInt8(truncatingIfNeeded: UInt64(signature.count) >> (56 - 8 * $0)) }
        try appendBytes(signature + trailer, to: temporary)
        do { try FilePath(temporary).rename(to: FilePath(output)) } catch { throw .io("renaming to \(output): \(error)") }
    }

    static func mksquashfs() throws(UpdateError) -> String {
        for directory in ["/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin"] where access(directory + "/mksquashfs", X_OK) == 0 {
            return directory + "/mksquashfs"
        }
        throw .configuration("mksquashfs not found (Debian package squashfs-tools; bundles are built on the build host)")
    }

    private static func run(_ executable: String, _ arguments: [String]) throws(UpdateError) {
        let pid: pid_t
        do { pid = try ProcessSpawner.spawn(executable, arguments: [executable] + arguments, descriptors: []) } catch {
            throw .io("starting \(executable): \(error)")
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        guard status & 0x7F == 0, (status >> 8) & 0xFF == 0 else { throw .io("\(executable) failed (wait status \(status))") }
    }

    private func copyHashing(from source: String, to target: String) throws(UpdateError) -> ([UInt8], UInt64) {
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw .io("cannot open image \(source): \(String(cString: strerror(errno)))") }
        defer { close(input) }
        let output = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard output >= 0 else { throw .io("cannot create \(target): \(String(cString: strerror(errno)))") }
        defer { close(output) }
        let hasher: SHA256Hasher
        do { hasher = try SHA256Hasher() } catch { throw .io("\(error)") }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var size: UInt64 = 0
        while true {
            let count = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { throw .io("reading \(source): \(String(cString: strerror(errno)))") }
            if count == 0 { break }
            hasher.update(buffer[..<count])
            try Self.writeAll(output, buffer[..<count], target)
            size += UInt64(count)
        }
        do { return (try hasher.finish(), size) } catch { throw .io("\(error)") }
    }

    private static func appendFile(_ source: String, to target: String, truncate: Bool) throws(UpdateError) {
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw .io("cannot open \(source): \(String(cString: strerror(errno)))") }
        defer { close(input) }
        let output = open(target, O_WRONLY | O_CREAT | O_CLOEXEC | (truncate ? O_TRUNC : O_APPEND), 0o644)
        guard output >= 0 else { throw .io("cannot create \(target): \(String(cString: strerror(errno)))") }
        defer { close(output) }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { throw .io("reading \(source): \(String(cString: strerror(errno)))") }
            if count == 0 { break }
            try writeAll(output, buffer[..<count], target)
        }
        guard fsync(output) == 0 else { throw .io("fsync \(target): \(String(cString: strerror(errno)))") }
    }

    private static func appendBytes(_ bytes: [UInt8], to target: String) throws(UpdateError) {
        let output = open(target, O_WRONLY | O_APPEND | O_CLOEXEC)
        guard output >= 0 else { throw .io("cannot open \(target): \(String(cString: strerror(errno)))") }
        defer { close(output) }
        try writeAll(output, bytes[...], target)
        guard fsync(output) == 0 else { throw .io("fsync \(target): \(String(cString: strerror(errno)))") }
    }

    private static func writeAll(_ descriptor: Int32, _ bytes: ArraySlice<UInt8>, _ path: String) throws(UpdateError) {
        var done = 0
        while done < bytes.count {
            let result = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress! + done, $0.count - done) }
            if result < 0 && errno == EINTR { continue }
            guard result > 0 else { throw .io("writing \(path): \(String(cString: strerror(errno)))") }
            done += result
        }
    }
}
