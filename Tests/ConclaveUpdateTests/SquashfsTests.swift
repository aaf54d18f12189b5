import ConclaveCrypto
import Testing
@testable import ConclaveUpdate

@Suite struct SquashfsTests {
    /// The squashfs payload of the rauc-made fixture.
    let payload: [UInt8]

    init() throws {
        let bundle = try BundleFile(path: Fixture.path("rauc-2.0.0.raucb"))
        payload = Array(try Fixture.bytes("rauc-2.0.0.raucb")[..<Int(bundle.payloadSize)])
    }

    @Test func readsTheManifestAndStreamsTheImage() throws {
        let image = try SquashfsImage(source: MemoryByteSource(payload))
        #expect(image.superblock.compression == 1)  // gzip: what rauc 1.8 / mksquashfs use
        #expect(image.superblock.blockSize == 131_072)
        #expect(image.superblock.fragmentCount == 1)
        let manifestFile = try #require(try image.file(named: "manifest.raucm"))
        var manifest: [UInt8] = []
        try image.read(manifestFile) { chunk throws(UpdateError) in manifest += chunk }
        #expect(String(decoding: manifest, as: UTF8.self).contains("sha256=\(Fixture.imageSHA256)"))
        #expect(try image.file(named: "missing") == nil)
    }

    @Test func refusesOtherCompressorsByName() throws {
        for (id, name) in [(2, "lzma"), (3, "lzo"), (4, "xz"), (5, "lz4"), (6, "zstd")] as [(UInt8, String)] {
            var bytes = payload
            bytes[20] = id
            #expect(throws: UpdateError.unsupportedCompression(name)) { try SquashfsImage(source: MemoryByteSource(bytes)) }
        }
    }

    @Test func refusesAnImageLargerThanThePayload() throws {
        #expect(throws: UpdateError.self) { try SquashfsImage(source: MemoryByteSource(Array(payload.prefix(50_000)))) }
        var bytes = payload
        bytes[28] = 3  // version 3.x
        #expect(throws: UpdateError.malformedPayload("squashfs version 3.0, not 4.0")) { try SquashfsImage(source: MemoryByteSource(bytes)) }
    }

    /// Damage in the superblock and the tables (the signature is bypassed here) is refused or
    /// read; it never traps or reads outside the payload.
    @Test func survivesDamagedTables() throws {
        let clean = try SquashfsImage(source: MemoryByteSource(payload))
        let tables = Int(clean.superblock.inodeTableStart)..<Int(clean.superblock.bytesUsed)
        var random: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> Int {
            random ^= random << 13; random ^= random >> 7; random ^= random << 17
            return Int(truncatingIfNeeded: random & 0x7FFF_FFFF)
        }
        var refused = 0
        for round in 0..<3_000 {
            var bytes = payload
            for _ in 0..<(1 + next() % 4) {
                let position = round % 3 == 0 ? next() % 96 : tables.lowerBound + next() % tables.count
                bytes[position] = UInt8(truncatingIfNeeded: next())
            }
            do {
                let image = try SquashfsImage(source: MemoryByteSource(bytes))
                for file in try image.rootFiles() { try image.read(file) { _ throws(UpdateError) in } }
            } catch {
                refused += 1
            }
        }
        #expect(refused > 500)
    }
}
