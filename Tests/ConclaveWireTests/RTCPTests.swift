import Testing
@testable import ConclaveWire

@Suite struct RTCPTests {
    private let block = RTCPReportBlock(
        ssrc: 0x5566_7788, fractionLost: 5, cumulativeLost: -2, extendedHighestSequenceNumber: 0x0001_0203,
        jitter: 32, lastSenderReport: 0xa1b2_8000, delaySinceLastSenderReport: 0x0001_8000)
    private let blockHex =
        "55667788"    // SSRC
        + "05"        // fraction lost
        + "fffffe"    // cumulative lost, -2
        + "00010203"  // extended highest sequence number
        + "00000020"  // jitter
        + "a1b28000"  // LSR
        + "00018000"  // DLSR, 1.5 s

    private func parse(_ bytes: [UInt8]) throws -> [RTCPPacket] {
        try bytes.withUnsafeBytes { try RTCPPacket.parseCompound($0) }
    }

    @Test func encodesASenderReport() {
        let report = RTCPSenderReport(
            ssrc: 0x1122_3344, ntpTimestamp: 0xe8f0_a1b2_8000_0000, rtpTimestamp: 123_456, packetCount: 100,
            octetCount: 16000, reportBlocks: [block])
        #expect(report.encoded().hex ==
            "81" + "c8" + "000c"       // V=2, 1 block; SR; 13 words - 1
            + "11223344"               // SSRC
            + "e8f0a1b2" + "80000000"  // NTP timestamp
            + "0001e240"               // RTP timestamp
            + "00000064"               // packet count
            + "00003e80"               // octet count
            + blockHex)
        #expect(report.compactNTPTimestamp == 0xa1b2_8000)
    }

    @Test func encodesAReceiverReport() {
        #expect(RTCPReceiverReport(ssrc: 0x1122_3344).encoded().hex ==
            "80" + "c9" + "0001"  // V=2, no blocks; RR; 2 words - 1
            + "11223344")         // SSRC
        #expect(RTCPReceiverReport(ssrc: 1, reportBlocks: [block]).encoded().hex ==
            "81" + "c9" + "0007" + "00000001" + blockHex)
    }

    @Test func walksACompoundAndSkipsWhatItDoesNotDecode() throws {
        let senderReport = RTCPSenderReport(ssrc: 1, ntpTimestamp: 2, rtpTimestamp: 3, packetCount: 4, octetCount: 5)
        let receiverReport = RTCPReceiverReport(ssrc: 6, reportBlocks: [block, block])
        let compound = senderReport.encoded()
            + [UInt8](hex: "81ca0002" + "00000001" + "01000000")  // SDES: SSRC, an empty CNAME, end
            + receiverReport.encoded()
            + [UInt8](hex: "a1cd0003" + "00000001" + "00000002" + "00000004")  // PLI, padded: its last byte counts 4
        #expect(try parse(compound) == [
            .senderReport(senderReport), .other(packetType: 202), .receiverReport(receiverReport),
            .other(packetType: 205),
        ])
    }

    @Test func decodesAPaddedReportAndSkipsProfileExtensions() throws {
        let bytes = [UInt8](hex:
            "a1" + "c9" + "0009"   // V=2, P, 1 block; RR; 10 words - 1
            + "00000001" + blockHex
            + "eeeeeeee"           // profile-specific extension
            + "00000004")          // padding
        #expect(try parse(bytes) == [.receiverReport(RTCPReceiverReport(ssrc: 1, reportBlocks: [block]))])
    }

    @Test func roundTripsThirtyOneBlocksAndClampsTheLossCount() throws {
        var blocks = (0..<31).map { index in
            RTCPReportBlock(
                ssrc: UInt32(index), fractionLost: UInt8(index), cumulativeLost: Int32(index) - 15,
                extendedHighestSequenceNumber: .max, jitter: 7, lastSenderReport: 8, delaySinceLastSenderReport: 9)
        }
        blocks[0].cumulativeLost = 0x7f_ffff
        blocks[1].cumulativeLost = -0x80_0000
        let senderReport = RTCPSenderReport(
            ssrc: .max, ntpTimestamp: .max, rtpTimestamp: .max, packetCount: .max, octetCount: .max,
            reportBlocks: blocks)
        #expect(try parse(senderReport.encoded()) == [.senderReport(senderReport)])

        var clamped = RTCPReceiverReport(ssrc: 1, reportBlocks: [block, block])
        clamped.reportBlocks[0].cumulativeLost = 9_000_000
        clamped.reportBlocks[1].cumulativeLost = -9_000_000
        let decoded = try parse(clamped.encoded())
        clamped.reportBlocks[0].cumulativeLost = 0x7f_ffff
        clamped.reportBlocks[1].cumulativeLost = -0x80_0000
        #expect(decoded == [.receiverReport(clamped)])
    }

    @Test func computesTheRoundTripTime() {
        var answer = block  // LSR 0xa1b28000, DLSR 1.5 s
        #expect(answer.roundTripTime(arrival: 0xa1b2_8000 + 0x0001_8000 + 0x8000) == 0.5)
        #expect(answer.roundTripTime(arrival: 0xa1b2_8000 + 0x0001_8000) == 0)
        #expect(answer.roundTripTime(arrival: 0xa1b2_8000 + 0x0001_0000) == nil)  // DLSR longer than the wait
        answer.lastSenderReport = 0xffff_0000
        answer.delaySinceLastSenderReport = 0x0001_0000
        #expect(answer.roundTripTime(arrival: 0x0001_8000) == 1.5)  // across the wrap of compact NTP
        answer.lastSenderReport = 0
        #expect(answer.roundTripTime(arrival: 0x0001_8000) == nil)  // no SR seen yet
    }

    @Test(arguments: [
        ("", WireError.truncated(needed: 4, got: 0)),
        ("80c900", .truncated(needed: 4, got: 3)),
        ("80c9000100000001" + "80ca", .truncated(needed: 12, got: 10)),           // bytes after the last packet
        ("40c9000100000001", .badVersion(1)),
        ("8060000100000001", .unknownType(96)),                                    // RTP, not RTCP
        ("80e0000100000001", .unknownType(224)),
        ("80c9000200000001", .truncated(needed: 12, got: 8)),                      // length beyond the bytes
        ("81c9000100000001", .malformed("RTCP type 201 with report count 1 needs 28 bytes, has 4")),
        ("80c8000200000001aaaaaaaa", .malformed("RTCP type 200 with report count 0 needs 24 bytes, has 8")),
        ("a0c9000100000001" + "80ca0000", .malformed("RTCP padding before the end of the compound")),
        ("a0c9000100000000", .malformed("RTCP padding of 0 bytes in a 8-byte packet")),
        ("a0c9000100000005", .malformed("RTCP padding of 5 bytes in a 8-byte packet")),
        ("a1c9000100000004", .malformed("RTCP type 201 with report count 1 needs 28 bytes, has 0")),
    ])
    func rejects(hex: String, error: WireError) {
        #expect(throws: error) { try parse([UInt8](hex: hex)) }
    }
}
