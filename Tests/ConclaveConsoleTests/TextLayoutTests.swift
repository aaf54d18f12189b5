import Testing
@testable import ConclaveConsole

@Suite struct TextLayoutTests {
    @Test func wrapsAtSpacesAndHardWhenThereAreNone() {
        let long = String(repeating: "word ", count: 40)
        for line in TextLayout.wrap(long) { #expect(line.count <= 80) }
        let fingerprint = String(repeating: "AB:", count: 40)
        let lines = TextLayout.wrap(fingerprint, indent: 4)
        #expect(lines.allSatisfy { $0.count <= 80 })
        #expect(lines.joined().filter { $0 != " " } == fingerprint)
        #expect(TextLayout.wrap("short") == ["short"])
        #expect(TextLayout.wrap("a\nb") == ["a", "b"])
    }

    @Test func mainMenuFitsEightyColumnsAndTwentyFourRows() {
        let lines = TextLayout.menu(title: "Conclave 0.1.0 (v0.1-123-gabcdef0) - main menu", items: ConsoleSession.mainItems, hint: "Number and Enter; Ctrl-D logs out.")
        #expect(lines.allSatisfy { $0.count <= 80 })
        #expect(lines.count + 1 <= 24)
        #expect(lines.contains("  1  Status"))
        #expect(lines.contains(" 10  Diagnostics"))
        #expect(lines.contains("  6  Monitoring targets and privacy mode"))
        // The software update has no console item yet: left out, the other numbers kept.
        #expect(!lines.contains { $0.hasPrefix("  9 ") })
    }

    @Test func tableAlignsAndWraps() {
        let lines = TextLayout.table([("a", "1"), ("longer", String(repeating: "x ", count: 60))])
        #expect(lines[0] == "a:      1")
        #expect(lines.allSatisfy { $0.count <= 80 })
    }

    @Test func statusScreenStaysInsideEightyColumns() {
        var snapshot = StatusSnapshot()
        snapshot.hostname = String(repeating: "h", count: 63)
        snapshot.fqdn = String(repeating: "a", count: 60) + ".example.org"
        snapshot.addresses = (0..<6).map { "eth\($0) 2001:db8:1234:5678:9abc:def0:1234:567\($0)" }
        snapshot.certificateSubject = "CN=" + String(repeating: "c", count: 90)
        snapshot.certificateDaysLeft = 3
        snapshot.configurationProblem = String(repeating: "p", count: 200)
        let lines = snapshot.lines
        #expect(lines.allSatisfy { $0.count <= 80 })
        #expect(lines.first?.contains("expires in 3 days") == true)
    }
}
