import Testing
@testable import ConclaveWire

@Suite struct WorkerMessageTests {
    @Test(arguments: [
        (WorkerMessage.ready, "0101"),             // version 1, type 1
        (.reload, "0102"),
        (.stop, "0103"),
        (.statusRequest, "0104"),
        (.status(json: "{}"), "0105" + "7b7d"),    // type 5, then the UTF-8 JSON
        (.peerChannel, "0106"),
    ])
    func encodesGoldenBytesAndRoundTrips(message: WorkerMessage, hex: String) throws {
        #expect(message.encoded().hex == hex)
        let decoded = try message.encoded().withUnsafeBytes { try WorkerMessage(decoding: $0) }
        #expect(decoded == message)
    }

    @Test func refusesTruncatedUnknownTrailingAndOversized() {
        func decode(_ bytes: [UInt8]) throws -> WorkerMessage {
            try bytes.withUnsafeBytes { try WorkerMessage(decoding: $0) }
        }
        #expect(throws: WireError.truncated(needed: 2, got: 1)) { try decode([1]) }
        #expect(throws: WireError.badVersion(2)) { try decode([2, 1]) }
        #expect(throws: WireError.unknownType(9)) { try decode([1, 9]) }
        #expect(throws: WireError.malformed("1 bytes after a message that has none")) { try decode([1, 3, 0]) }
        #expect(throws: WireError.malformed("status is not UTF-8")) { try decode([1, 5, 0xff]) }
        #expect(throws: WireError.oversized(limit: 8192, got: 8193)) { try decode([1, 5] + Array(repeating: 0x20, count: 8191)) }
    }
}
