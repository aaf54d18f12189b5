import Testing
@testable import ConclaveWire

@Suite struct RTPHeaderTests {
    /// Runs `body` on a view of `bytes`, which the view borrows.
    private func withView<Result>(_ bytes: [UInt8], _ body: (RTPHeaderView) -> Result) throws -> Result {
        try bytes.withUnsafeBytes { body(try RTPHeaderView($0)) }
    }

    @Test func readsEveryFieldOfAFullPacket() throws {
        let packet = [UInt8](hex:
            "b2" + "ef"           // V=2, P, X, CC=2; M, PT 111
            + "1234"              // sequence number
            + "deadbeef"          // timestamp
            + "01020304"          // SSRC
            + "0a0a0a0a 0b0b0b0b" // 2 CSRCs
            + "bede 0001"         // extension profile, 1 word
            + "10aa0000"          // extension
            + "616263"            // payload
            + "000000 04")        // padding, its count last
        try withView(packet) { view in
            #expect(view.marker)
            #expect(view.payloadType == 111)
            #expect(view.sequenceNumber == 0x1234)
            #expect(view.timestamp == 0xdead_beef)
            #expect(view.ssrc == 0x0102_0304)
            #expect(view.headerLength == 28)
            #expect(view.payloadLength == 3)
            #expect(Array(view.payload) == Array("abc".utf8))
        }
    }

    @Test func readsAMinimalPacket() throws {
        let packet = [UInt8](hex: "80" + "08" + "0001" + "00000002" + "00000003")  // PCMA, no payload
        try withView(packet) { view in
            #expect(!view.marker)
            #expect(view.payloadType == 8)
            #expect(view.headerLength == 12)
            #expect(view.payloadLength == 0)
        }
    }

    @Test func paddingMayTakeEveryByteAfterTheHeader() throws {
        let packet = [UInt8](hex: "a0" + "60" + "0001" + "00000002" + "00000003" + "0000 0003")
        #expect(try withView(packet) { $0.payloadLength } == 1)
    }

    @Test(arguments: [
        ("80600001000000020000", WireError.truncated(needed: 12, got: 10)),
        ("40600001000000020000000300", .badVersion(1)),
        ("00600001000000020000000300", .badVersion(0)),
        ("8260000100000002000000030a0a0a0a", .truncated(needed: 20, got: 16)),      // 2 CSRCs, room for 1
        ("9060000100000002000000030000", .truncated(needed: 16, got: 14)),           // no room for the extension header
        ("906000010000000200000003bede0002aaaaaaaa", .truncated(needed: 24, got: 20)),  // 2 extension words, 1 sent
        ("a06000010000000200000003aa00", .malformed("RTP padding of 0 bytes after a 12-byte header in 14 bytes")),
        ("a06000010000000200000003aa03", .malformed("RTP padding of 3 bytes after a 12-byte header in 14 bytes")),
        ("a0600001000000020000000300", .malformed("RTP padding of 0 bytes after a 12-byte header in 13 bytes")),
    ])
    func rejects(hex: String, error: WireError) {
        #expect(throws: error) { try withView([UInt8](hex: hex)) { _ in } }
    }

    @Test(arguments: [(200, true), (201, true), (192, true), (223, true), (191, false), (224, false),
                      (0x80 | 111, false), (96, false)])
    func demultiplexesRTCP(secondByte: UInt8, isRTCP: Bool) {
        #expect([0x80, secondByte].withUnsafeBytes { RTPHeaderView.isRTCP($0) } == isRTCP)
    }

    @Test func aPacketTooShortToTellIsNotRTCP() {
        #expect(![0x80].withUnsafeBytes { RTPHeaderView.isRTCP($0) })
    }
}
