import Testing
@testable import ConclaveUpdate

@Suite struct ManifestTests {
    @Test func parsesTheManifestRauc18Writes() throws {
        // rauc 1.8 rewrites the manifest: sha256 and size added, [bundle] dropped.
        let manifest = try Manifest(parsing: Array("""
            [update]
            compatible=conclave-qemu-x86_64
            version=1.2.3
            description=spring release

            [image.rootfs]
            sha256=bf65c382e6e54a07ab505d56a8a466b55ba21e15ae9ac8706c973d014275161b
            size=236000
            filename=rootfs.img

            """.utf8))
        #expect(manifest.compatible == "conclave-qemu-x86_64")
        #expect(manifest.version == "1.2.3")
        #expect(manifest.description == "spring release")
        #expect(manifest.build == nil)
        #expect(manifest.format == "plain")
        #expect(manifest.images == [Manifest.Image(
            slotClass: "rootfs", filename: "rootfs.img",
            sha256: Manifest.hexBytes("bf65c382e6e54a07ab505d56a8a466b55ba21e15ae9ac8706c973d014275161b")!, size: 236_000)])
    }

    @Test func ourManifestTextParsesBack() throws {
        let image = Manifest.Image(slotClass: "rootfs", filename: "rootfs.squashfs", sha256: [UInt8](repeating: 0xAB, count: 32), size: 42)
        let text = Manifest.text(compatible: "conclave-room-system", version: "2.0.0-rc.1", description: "d", build: "abc123", image: image)
        #expect(text.contains("[bundle]\nformat=plain\n"))
        let parsed = try Manifest(parsing: Array(text.utf8))
        #expect(parsed.images == [image])
        #expect(parsed.build == "abc123")
        #expect(parsed.format == "plain")
    }

    @Test(arguments: [
        ("[update]\nversion=1.0.0\n[image.rootfs]\nfilename=a\nsha256=\(String(repeating: "0", count: 64))\nsize=1\n", "compatible is missing"),
        ("[update]\ncompatible=c\n[image.rootfs]\nfilename=a\nsha256=\(String(repeating: "0", count: 64))\nsize=1\n", "version is missing"),
        ("[update]\ncompatible=c\nversion=1.0.0\n", "no [image"),
        ("[update]\ncompatible=c\nversion=1.0.0\n[image.rootfs]\nfilename=a\nsha256=xyz\nsize=1\n", "sha256"),
        ("[update]\ncompatible=c\nversion=1.0.0\n[image.rootfs]\nfilename=a\nsha256=\(String(repeating: "0", count: 64))\nsize=-1\n", "size"),
        ("[update]\ncompatible=c\nversion=1.0.0\n[image.rootfs]\nfilename=../a\nsha256=\(String(repeating: "0", count: 64))\nsize=1\n", "root"),
        ("[update]\ncompatible=c\ncompatible=d\nversion=1.0.0\n", "twice"),
        ("[update]\ncompatible=c\nversion=1.0.0\n[update]\n", "twice"),
        ("compatible=c\n", "outside a section"),
        ("[update\ncompatible=c\n", "section header"),
        ("[update]\ncompatible=c\nversion=1.0.0\n[hooks]\nfilename=h\n", "hooks"),
    ])
    func refusesMalformedManifests(text: String, reason: String) throws {
        do {
            _ = try Manifest(parsing: Array(text.utf8))
            Issue.record("accepted: \(text)")
        } catch {
            guard case .malformedManifest(let why) = error else { Issue.record("\(error)"); return }
            #expect(why.contains(reason), "\(why)")
        }
    }

    @Test func refusesAVersionThatIsNotSemVer() {
        let text = "[update]\ncompatible=c\nversion=2024.1\n[image.rootfs]\nfilename=a\nsha256=\(String(repeating: "0", count: 64))\nsize=1\n"
        #expect(throws: UpdateError.invalidVersion("2024.1")) { try Manifest(parsing: Array(text.utf8)) }
    }

    @Test func refusesNonUTF8AndOversizedManifests() {
        #expect(throws: UpdateError.self) { try Manifest(parsing: [0x5B, 0xFF, 0xFE, 0x5D]) }
        #expect(throws: UpdateError.self) { try Manifest(parsing: [UInt8](repeating: 0x23, count: 70_000)) }
    }
}

@Suite struct SemanticVersionTests {
    @Test func ordersAsSemVerSays() throws {
        let ordered = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11",
                       "1.0.0-rc.1", "1.0.0", "1.0.1", "1.2.0", "1.10.0", "2.0.0"]
        let versions = try ordered.map { try #require(SemanticVersion($0)) }
        for (lower, higher) in zip(versions, versions.dropFirst()) {
            #expect(lower < higher, "\(lower) < \(higher)")
            #expect(!(higher < lower))
        }
        #expect(SemanticVersion("1.0.0+build.5")! == SemanticVersion("1.0.0")!)
    }

    @Test(arguments: ["", "1", "1.0", "1.0.0.0", "01.0.0", "1.0.0-", "1.0.0-01", "v1.0.0", "1.0.0+", "a.b.c", "1.0.0-al pha"])
    func refusesWhatIsNotSemVer(text: String) { #expect(SemanticVersion(text) == nil) }
}

@Suite struct BootStateTests {
    @Test func parsesAndWritesTheSelectorsFormat() {
        let state = BootState(parsing: "BOOT_ORDER=\"B A\"\nBOOT_A_LEFT=0\nBOOT_B_LEFT=2\n")
        #expect(state.order == ["B", "A"])
        #expect(state.triesLeft == ["A": 0, "B": 2])
        #expect(state.text == "BOOT_ORDER=\"B A\"\nBOOT_A_LEFT=0\nBOOT_B_LEFT=2\n")
    }

    @Test func damagedFieldsCountAsTheSelectorCountsThem() {
        let state = BootState(parsing: "BOOT_ORDER=\"C D\"\nBOOT_A_LEFT=$(reboot)\nBOOT_B_LEFT=\n")
        #expect(state.order == ["A", "B"])
        #expect(state.triesLeft == ["A": 0, "B": 0])
        #expect(BootState(parsing: "") == BootState())
    }

    @Test func rausVerbs() {
        var state = BootState()
        state.setState("B", good: false)
        #expect(!state.isGood("B"))
        state.setPrimary("B")
        #expect(state.text == "BOOT_ORDER=\"B A\"\nBOOT_A_LEFT=3\nBOOT_B_LEFT=3\n")
    }
}
