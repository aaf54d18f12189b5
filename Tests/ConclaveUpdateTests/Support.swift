import ConclaveCrypto
import Glibc
import SystemPackage
@testable import ConclaveUpdate

/// Fixtures next to this file (see Fixtures/README.md) and scratch directories for bundles and slots.
enum Fixture {
    static let directory: String = {
        let file = "\(#filePath)"
        return String(file[..<file.lastIndex(of: "/")!]) + "/Fixtures"
    }()

    static func path(_ name: String) -> String { directory + "/" + name }

    static func bytes(_ name: String) throws -> [UInt8] { try readWholeFile(path(name), limit: 1 << 24) }

    static func keyring(_ name: String = "ca.pem") throws -> TrustStore { try UpdatePolicy.keyring(at: path(name)) }

    static func signer() throws -> (X509Certificate, PrivateKey) {
        (try X509Certificate.certificates(pemEncoded: bytes("signer.pem"))[0], try PrivateKey(encoded: bytes("signer.key")))
    }

    /// The image inside rauc-2.0.0.raucb, rebuilt the same way (128 KiB random, then text lines).
    static let imageSHA256 = "5387d04bd1937811d8a9a7643f14c27e8257b7344dd86fdfc1907e08e1897f06"
    static let imageSize: UInt64 = 243_072
}

/// A fresh directory under /tmp, removed (files only, one level deep or two) by `remove()`.
final class ScratchDirectory {
    let path: String

    init() {
        var template = Array("/tmp/conclave-update-test-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(made != nil, "mkdtemp failed")
        path = String(cString: made!)
    }

    func file(_ name: String) -> String { path + "/" + name }

    func write(_ name: String, _ bytes: [UInt8]) throws {
        let descriptor = open(file(name), O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        precondition(descriptor >= 0)
        defer { close(descriptor) }
        var done = 0
        while done < bytes.count {
            let count = bytes[done...].withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            precondition(count > 0)
            done += count
        }
    }

    func write(_ name: String, text: String) throws { try write(name, Array(text.utf8)) }

    func read(_ name: String) throws -> [UInt8] { try readWholeFile(file(name), limit: 1 << 26) }

    /// A slot standing in for a partition: `size` bytes of 0xEE.
    func makeSlot(_ name: String, size: Int) throws { try write(name, [UInt8](repeating: 0xEE, count: size)) }

    deinit { removeTree(path) }

    private func removeTree(_ directory: String) {
        for name in (try? FilePath(directory).directoryEntries()) ?? [] {
            let child = directory + "/" + name
            var status = stat()
            if lstat(child, &status) == 0, status.st_mode & S_IFMT == S_IFDIR { removeTree(child) } else { unlink(child) }
        }
        rmdir(directory)
    }
}

/// A bundle built with our own builder from `image` bytes, signed by the fixture signer.
func makeBundle(
    in scratch: ScratchDirectory, name: String = "test.raucb", version: String = "2.0.0",
    compatible: String = "conclave-test-board", image: [UInt8]
) throws -> String {
    try scratch.write("image-\(name).img", image)
    let (signer, key) = try Fixture.signer()
    var builder = BundleBuilder(
        compatible: compatible, version: version, imagePath: scratch.file("image-\(name).img"), signer: signer, key: key)
    builder.imageName = "rootfs.img"
    _ = try builder.write(to: scratch.file(name))
    return scratch.file(name)
}

func testImage(size: Int, seed: UInt64 = 1) -> [UInt8] {
    var state = seed
    return (0..<size).map { index in
        if index % 3 == 0 { return UInt8(truncatingIfNeeded: index / 97) }  // some compressible structure
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return UInt8(truncatingIfNeeded: state >> 33)
    }
}
