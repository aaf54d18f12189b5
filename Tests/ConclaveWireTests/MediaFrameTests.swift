import Testing
@testable import ConclaveWire

@Suite struct MediaFrameTests {
    @Test func encodesGoldenBytes() {
        let header = MediaFrameHeader(type: .srtcp, flags: 0x0102, legID: 0x0a0b0c0d, token: 0x1122334455667788)
        #expect(header.bytes == [
            0xc1, 0x01,              // magic, type SRTCP
            0x01, 0x02,              // flags
            0x0a, 0x0b, 0x0c, 0x0d,  // leg id
            0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,  // token
        ])
    }

    @Test(arguments: MediaFrameType.allCases)
    func roundTrips(type: MediaFrameType) throws {
        let header = MediaFrameHeader(type: type, flags: 1, legID: 7, token: .max)
        let bytes = header.bytes + [1, 2, 3]
        let parsed = try bytes.withUnsafeBytes { try MediaFrameHeader(parsing: $0) }
        #expect(parsed == header)
    }

    @Test func rejectsTruncatedGarbageAndOversized() {
        let good = MediaFrameHeader(type: .srtp, legID: 1, token: 2).bytes
        #expect(throws: WireError.truncated(needed: 16, got: 15)) {
            try Array(good.prefix(15)).withUnsafeBytes { _ = try MediaFrameHeader(parsing: $0) }
        }
        var badMagic = good
        badMagic[0] = 0x80  // a plain RTP packet is not a frame
        #expect(throws: WireError.badMagic(0x80)) {
            try badMagic.withUnsafeBytes { _ = try MediaFrameHeader(parsing: $0) }
        }
        var badType = good
        badType[1] = 5
        #expect(throws: WireError.unknownType(5)) {
            try badType.withUnsafeBytes { _ = try MediaFrameHeader(parsing: $0) }
        }
        let huge = good + [UInt8](repeating: 0, count: 1600)
        #expect(throws: WireError.oversized(limit: 1600, got: 1616)) {
            try huge.withUnsafeBytes { _ = try MediaFrameHeader(parsing: $0) }
        }
    }
}
