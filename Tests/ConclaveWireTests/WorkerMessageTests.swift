import Testing
@testable import ConclaveWire

@Suite struct WorkerMessageTests {
    static let golden: [(WorkerMessage, String)] = [
        (.ready, "0101"),             // version 1, type 1
        (.reload, "0102"),
        (.stop, "0103"),
        (.statusRequest, "0104"),
        (.status(json: "{}"), "01057b7d"),    // type 5, then the UTF-8 JSON
        (.peerChannel, "0106"),
        (.adminRequest(json: "{}"), "01077b7d"),
        (.adminReply(json: "{}"), "01087b7d"),
        (.credentials(chain: [0x41], key: [0x42], ssoKey: [0x43]), "010941004200" + "43"),  // chain, NUL, key, NUL, SSO key
        (.apiClientCA(pem: [0x41, 0x42]), "010a" + "4142"),  // the PEM bundle as is
        (.apiClientCA(pem: []), "010a"),  // no API CA imported
        (.supervisorRequest(json: "{}"), "010b7b7d"),
        (.supervisorReply(json: "{}"), "010c7b7d"),
    ]

    @Test(arguments: golden)
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
        #expect(throws: WireError.unknownType(13)) { try decode([1, 13]) }
        #expect(throws: WireError.malformed("credentials without their two separators")) { try decode([1, 9, 0x41, 0, 0x42]) }
        #expect(throws: WireError.malformed("1 bytes after a message that has none")) { try decode([1, 3, 0]) }
        #expect(throws: WireError.malformed("a JSON payload that is not UTF-8")) { try decode([1, 5, 0xff]) }
        #expect(throws: WireError.oversized(limit: 65536, got: 65537)) { try decode([1, 5] + Array(repeating: 0x20, count: 65535)) }
    }
}

@Suite struct WorkerMessageDescriptionTests {
    @Test func credentialsNeverShowTheKey() {
        let text = "\(WorkerMessage.credentials(chain: Array("CHAIN".utf8), key: Array("SECRET-KEY".utf8), ssoKey: []))"
        #expect(!text.contains("SECRET") && !text.contains("83"))  // neither the text nor its bytes
    }
}
