import ConclaveCrypto
import Glibc
import SystemPackage
import Testing
@testable import ConclaveUpdate

/// A bundle made by the real `rauc bundle` 1.8, and bundles made by our builder, through every
/// check; each refusal has its own reason.
@Suite struct BundleVerifierTests {
    let policy: UpdatePolicy

    init() throws {
        policy = UpdatePolicy(keyring: try Fixture.keyring(), compatible: "conclave-test-board", runningVersion: "1.0.0")
    }

    @Test func readsABundleMadeByRealRauc() throws {
        let bundle = try BundleFile(path: Fixture.path("rauc-2.0.0.raucb"))
        #expect(bundle.fileSize == 144_713)
        #expect(bundle.payloadSize % 4096 == 0)  // mksquashfs pads; we do not depend on it
        let payload = try bundle.payload()
        #expect(try payload.rootFiles().map(\.name).sorted() == ["manifest.raucm", "rootfs.img"])
        let verified = try BundleVerifier.verify(bundle, policy: policy)
        #expect(verified.manifest.compatible == "conclave-test-board")
        #expect(verified.manifest.version == "2.0.0")
        #expect(verified.manifest.description == "made by rauc bundle 1.8")
        #expect(verified.manifest.format == "plain")  // rauc 1.8 leaves [bundle] out
        #expect(hex(verified.image.sha256) == Fixture.imageSHA256)
        #expect(verified.image.size == Fixture.imageSize)
        #expect(verified.signers.map(\.subject) == ["CN=Conclave Test Signer"])
        // The streamed image: one stored block, one compressed block, and the fragment tail.
        var chunks: [Int] = []
        let hasher = try SHA256Hasher()
        try payload.read(verified.imageFile) { chunk throws(UpdateError) in
            chunks.append(chunk.count)
            hasher.update(chunk)
        }
        #expect(chunks == [131_072, 243_072 - 131_072])
        #expect(hex(try hasher.finish()) == Fixture.imageSHA256)
    }

    @Test func ourBundleRoundTrips() throws {
        let scratch = ScratchDirectory()
        let image = testImage(size: 300_000)
        let path = try makeBundle(in: scratch, image: image)
        let bundle = try BundleFile(path: path)
        let verified = try BundleVerifier.verify(bundle, policy: policy)
        #expect(verified.image.size == 300_000)
        #expect(verified.manifest.format == "plain")
        var read: [UInt8] = []
        try verified.payload.read(verified.imageFile) { chunk throws(UpdateError) in read += chunk }
        #expect(read == image)
    }

    @Test func refusesABadSignature() throws {
        let scratch = ScratchDirectory()
        var bytes = try Fixture.bytes("rauc-2.0.0.raucb")
        bytes[20_000] ^= 0x01  // inside the image's stored block: the squashfs still reads
        try scratch.write("bad.raucb", bytes)
        try expectRefusal(scratch.file("bad.raucb")) { if case .badSignature = $0 { true } else { false } }
    }

    @Test func refusesASignerNotInTheKeyring() throws {
        var other = policy
        other.keyring = try Fixture.keyring("other-ca.pem")
        try expectRefusal(Fixture.path("rauc-2.0.0.raucb"), policy: other) { if case .untrustedSigner = $0 { true } else { false } }
    }

    @Test func refusesAnEmptyKeyring() throws {
        let scratch = ScratchDirectory()
        try scratch.write("keyring.pem", text: "no anchors in here\n")
        #expect(throws: UpdateError.emptyKeyring(scratch.file("keyring.pem"))) { try UpdatePolicy.keyring(at: scratch.file("keyring.pem")) }
    }

    @Test func refusesTheWrongCompatible() throws {
        var other = policy
        other.compatible = "conclave-room-system"
        try expectRefusal(Fixture.path("rauc-2.0.0.raucb"), policy: other) {
            $0 == .incompatible(bundle: "conclave-test-board", device: "conclave-room-system")
        }
    }

    @Test func refusesOlderAndEqualVersionsUnlessForced() throws {
        var running = policy
        running.runningVersion = "2.1.0"
        try expectRefusal(Fixture.path("rauc-2.0.0.raucb"), policy: running) { $0 == .downgrade(bundle: "2.0.0", running: "2.1.0") }
        running.runningVersion = "2.0.0"
        try expectRefusal(Fixture.path("rauc-2.0.0.raucb"), policy: running) { $0 == .sameVersion("2.0.0") }
        running.allowDowngrade = true
        _ = try BundleVerifier.verify(BundleFile(path: Fixture.path("rauc-2.0.0.raucb")), policy: running)
        running.runningVersion = "2.0.0-rc.1"  // a pre-release of the same version is older
        running.allowDowngrade = false
        _ = try BundleVerifier.verify(BundleFile(path: Fixture.path("rauc-2.0.0.raucb")), policy: running)
        running.runningVersion = "deadbeef-modified"  // a development build: any release is newer
        _ = try BundleVerifier.verify(BundleFile(path: Fixture.path("rauc-2.0.0.raucb")), policy: running)
    }

    @Test func refusesATamperedImageByteUnderAValidSignature() throws {
        // The signer signed a manifest whose hash does not match the image (a build-side bug or
        // a manipulated build input): the signature verifies, the image hash does not.
        let scratch = ScratchDirectory()
        let image = testImage(size: 70_000)
        var tampered = image
        tampered[12_345] ^= 0x80
        try packLying(scratch, manifestImage: image, actualImage: tampered, to: "tampered.raucb")
        try expectRefusal(scratch.file("tampered.raucb")) { $0 == .imageHashMismatch(name: "rootfs.img") }
    }

    @Test func refusesAnImageOfTheWrongSizeOrAMissingImage() throws {
        let scratch = ScratchDirectory()
        let image = testImage(size: 50_000)
        try packLying(scratch, manifestImage: image, actualImage: image + [0], to: "longer.raucb")
        try expectRefusal(scratch.file("longer.raucb")) { $0 == .imageSizeMismatch(name: "rootfs.img", manifest: 50_000, actual: 50_001) }
        try packLying(scratch, manifestImage: image, actualImage: nil, to: "missing.raucb")
        try expectRefusal(scratch.file("missing.raucb")) { $0 == .missingImage("rootfs.img") }
    }

    @Test func refusesATruncatedBundle() throws {
        let scratch = ScratchDirectory()
        let bytes = try Fixture.bytes("rauc-2.0.0.raucb")
        // Cut out the middle of the payload, keeping the signature and the trailer: the
        // squashfs no longer fits.
        try scratch.write("cut.raucb", Array(bytes[..<50_000]) + Array(bytes[(bytes.count - 8 - 1_500)...]))
        try expectRefusal(scratch.file("cut.raucb")) { if case .truncated = $0 { true } else { false } }
        // Cut at the end: what remains before the "trailer" is not a size that fits.
        try scratch.write("tail.raucb", Array(bytes[..<100_000]))
        try expectRefusal(scratch.file("tail.raucb")) { error in
            switch error {
            case .sizeFieldOutOfRange, .signatureTooLarge, .truncated, .malformedSignature: true
            default: false
            }
        }
        try scratch.write("tiny.raucb", Array(bytes[..<64]))
        try expectRefusal(scratch.file("tiny.raucb")) { if case .truncated = $0 { true } else { false } }
    }

    @Test func refusesAnOversizedSizeField() throws {
        let scratch = ScratchDirectory()
        var bytes = try Fixture.bytes("rauc-2.0.0.raucb")
        for index in bytes.count - 8..<bytes.count { bytes[index] = 0xFF }
        try scratch.write("huge.raucb", bytes)
        try expectRefusal(scratch.file("huge.raucb")) {
            $0 == .sizeFieldOutOfRange(signatureSize: UInt64.max, fileSize: UInt64(bytes.count))
        }
        let size = UInt64(bytes.count - 8)  // exactly the rest of the file: no payload left
        for index in 0..<8 { bytes[bytes.count - 8 + index] = UInt8(truncatingIfNeeded: size >> (56 - 8 * UInt64(index))) }
        try scratch.write("whole.raucb", bytes)
        try expectRefusal(scratch.file("whole.raucb")) { $0 == .sizeFieldOutOfRange(signatureSize: size, fileSize: UInt64(bytes.count)) }
        let large: UInt64 = 100_000  // fits the file, but no signature is that large
        for index in 0..<8 { bytes[bytes.count - 8 + index] = UInt8(truncatingIfNeeded: large >> (56 - 8 * UInt64(index))) }
        try scratch.write("large.raucb", bytes)
        try expectRefusal(scratch.file("large.raucb")) { $0 == .signatureTooLarge(size: large, limit: BundleFile.signatureLimit) }
    }

    @Test func refusesGarbage() throws {
        let scratch = ScratchDirectory()
        var garbage = testImage(size: 8_192, seed: 7)
        try scratch.write("garbage.raucb", garbage)
        try expectRefusal(scratch.file("garbage.raucb")) { if case .sizeFieldOutOfRange = $0 { true } else { false } }
        // A plausible trailer in front of garbage: no squashfs.
        for index in 0..<8 { garbage[garbage.count - 8 + index] = index == 7 ? 100 : 0 }
        try scratch.write("garbage2.raucb", garbage)
        try expectRefusal(scratch.file("garbage2.raucb")) { if case .notABundle = $0 { true } else { false } }
        // A real payload with garbage where the signature belongs.
        var bytes = try Fixture.bytes("rauc-2.0.0.raucb")
        let signatureStart = bytes.count - 8 - 1_400
        for index in signatureStart..<bytes.count - 8 { bytes[index] = 0x30 }
        try scratch.write("badcms.raucb", bytes)
        try expectRefusal(scratch.file("badcms.raucb")) { if case .malformedSignature = $0 { true } else { false } }
    }

    @Test func refusesADirectoryAndAMissingFile() throws {
        #expect(throws: UpdateError.self) { try BundleFile(path: "/tmp") }
        #expect(throws: UpdateError.self) { try BundleFile(path: "/nonexistent/bundle.raucb") }
    }

    private func expectRefusal(
        _ path: String, policy: UpdatePolicy? = nil, sourceLocation: SourceLocation = #_sourceLocation, _ matches: (UpdateError) -> Bool
    ) throws {
        do {
            let bundle = try BundleFile(path: path)
            _ = try BundleVerifier.verify(bundle, policy: policy ?? self.policy)
            Issue.record("the bundle was accepted", sourceLocation: sourceLocation)
        } catch {
            #expect(matches(error), "refused for another reason: \(error)", sourceLocation: sourceLocation)
        }
    }

    /// A correctly signed bundle whose manifest describes `manifestImage` but holds `actualImage`.
    private func packLying(_ scratch: ScratchDirectory, manifestImage: [UInt8], actualImage: [UInt8]?, to name: String) throws {
        let content = scratch.file("content-\(name)")
        _ = mkdir(content, 0o755)
        let entry = Manifest.Image(slotClass: "rootfs", filename: "rootfs.img", sha256: try Digest.sha256(manifestImage), size: UInt64(manifestImage.count))
        let manifest = Manifest.text(compatible: "conclave-test-board", version: "2.0.0", description: nil, build: nil, image: entry)
        try scratch.write("content-\(name)/manifest.raucm", text: manifest)
        if let actualImage { try scratch.write("content-\(name)/rootfs.img", actualImage) }
        let (signer, key) = try Fixture.signer()
        try BundleBuilder.pack(content: FilePath(content), to: scratch.file(name), signer: signer, key: key)
    }
}
