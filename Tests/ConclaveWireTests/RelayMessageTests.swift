import Testing
@testable import ConclaveWire

@Suite struct RelayMessageTests {
    private static let leg = RelayMessage.LegSetup(
        legID: 7, token: 0x1122_3344_5566_7788, meetingID: 3, profile: .aeadAES128GCM,
        inboundKey: .init([UInt8](repeating: 0xab, count: 28)), outboundKey: .init([UInt8](repeating: 0xcd, count: 28)),
        audioPayloadTypes: [111, 0], videoPayloadTypes: [96, 97])

    /// Decodes `bytes` fed in one piece and expects exactly one message.
    private func decodeOne(_ bytes: [UInt8]) throws -> RelayMessage? {
        var decoder = RelayMessageDecoder()
        decoder.append(bytes)
        let message = try decoder.next()
        #expect(try decoder.next() == nil)
        return message
    }

    static let golden: [(message: RelayMessage, hex: String)] = [
        (.addLeg(leg),
         "00000053" + "01" + "01"                       // length, version, addLeg
         + "00000007" + "1122334455667788" + "00000003"  // leg id, token, meeting id
         + "00"                                          // profile AEAD_AES_128_GCM
         + "1c" + String(repeating: "ab", count: 28)     // inbound key and salt
         + "1c" + String(repeating: "cd", count: 28)     // outbound key and salt
         + "02" + "6f00"                                 // audio payload types 111, 0
         + "02" + "6061"),                               // video payload types 96, 97
        (.removeLeg(legID: 7), "00000006" + "01" + "02" + "00000007"),                  // leg id
        (.startMeeting(meetingID: 3, mode: .encapsulated), "00000007" + "01" + "03" + "00000003" + "01"),  // id, mode
        (.stopMeeting(meetingID: 3), "00000006" + "01" + "04" + "00000003"),            // meeting id
        (.editMeeting(meetingID: 3, mode: .srtp), "00000007" + "01" + "05" + "00000003" + "00"),  // meeting id, mode
        (.statsQuery(requestID: 9), "00000006" + "01" + "06" + "00000009"),             // request id
        (.statsReply(requestID: 9, legs: [.init(
            legID: 7, packetsIn: 1, packetsOut: 2, bytesIn: 3, bytesOut: 4, lost: 5, jitter: 6, authFailures: 7,
            replays: 8, transport: .tcp, remotePort: 0x1234, reportedLoss: 64, roundTripMicroseconds: 25_000, audioPackets: 9,
            videoPackets: 10, sendDrops: 11)]),
         "00000068" + "01" + "07" + "00000009" + "0001"  // length, version, statsReply, request id, 1 leg
         + "00000007"                                    // leg id
         + "0000000000000001" + "0000000000000002"       // packets in, out
         + "0000000000000003" + "0000000000000004"       // bytes in, out
         + "0000000000000005" + "00000006"               // lost, jitter
         + "0000000000000007" + "0000000000000008"       // authentication failures, replays
         + "02" + "1234" + "40"                          // transport tcp, remote port, reported loss 64/256
         + "000061a8"                                    // round trip 25 000 µs
         + "0000000000000009" + "000000000000000a"       // audio, video packets
         + "000000000000000b"),                          // send drops
        (.statsReply(requestID: 10, legs: [.init(legID: 8)]),
         "00000068" + "01" + "07" + "0000000a" + "0001"  // a leg with nothing measured yet
         + "00000008" + String(repeating: "0", count: 120)  // leg id, counters 0
         + "00" + "0000" + "00" + "ffffffff"             // transport none, port 0, loss 0, round trip unmeasured
         + String(repeating: "0", count: 48)),           // audio, video packets, send drops
        (.ack(.addLeg), "00000003" + "01" + "08" + "01"),                               // acknowledged type
        (.error(code: 0x0102, message: "bad"), "00000009" + "01" + "09" + "0102" + "0003" + "626164"),  // code, text
    ]

    @Test(arguments: golden)
    func encodesGoldenBytes(message: RelayMessage, hex: String) throws {
        #expect(message.encoded().hex == hex)
        #expect(try decodeOne([UInt8](hex: hex)) == message)
    }

    static let everyShape: [RelayMessage] = RelayMessage.LegProfile.allCases.map { profile in
        let length = profile.keyMaterialLength
        return .addLeg(.init(
            legID: .max, token: .max, meetingID: .max, profile: profile,
            inboundKey: .init(Array(0..<UInt8(length))), outboundKey: .init(Array(repeating: 0xff, count: length)),
            audioPayloadTypes: [], videoPayloadTypes: Array(0...127)))
    } + [
        .statsReply(requestID: 1, legs: []),
        .statsReply(requestID: 2, legs: (0..<UInt32(RelayMessage.maximumLegStatsPerReply)).map {
            .init(legID: $0, packetsIn: .max, replays: UInt64($0))
        }),
        .ack(.error),
        .error(code: .max, message: ""),
        .error(code: 1, message: "clé refusée"),
        .error(code: 2, message: String(repeating: "x", count: RelayMessage.maximumBodyLength - 6)),
    ]

    @Test(arguments: everyShape)
    func roundTrips(message: RelayMessage) throws {
        #expect(try decodeOne(message.encoded()) == message)
    }

    @Test func decodesAStreamFedOneByteAtATime() throws {
        let messages = Self.everyShape + [.removeLeg(legID: 1), .stopMeeting(meetingID: 2)]
        var decoder = RelayMessageDecoder()
        var decoded: [RelayMessage] = []
        for byte in messages.flatMap({ $0.encoded() }) {
            decoder.append(CollectionOfOne(byte))
            while let message = try decoder.next() { decoded.append(message) }
        }
        #expect(decoded == messages)
    }

    @Test func waitsForTheWholeMessage() throws {
        let bytes = RelayMessage.removeLeg(legID: 7).encoded()
        var decoder = RelayMessageDecoder()
        decoder.append(bytes.dropLast())
        #expect(try decoder.next() == nil)
        decoder.append(bytes.suffix(1) + bytes.prefix(5))
        #expect(try decoder.next() == .removeLeg(legID: 7))
        #expect(try decoder.next() == nil)
    }

    @Test func refusesAnOversizedBodyFromItsPrefixAndStaysFailed() throws {
        var decoder = RelayMessageDecoder()
        decoder.append([0x00, 0x01, 0x00, 0x01])  // 65537 bytes announced, none sent
        let oversized = WireError.oversized(limit: 65536, got: 65537)
        #expect(throws: oversized) { try decoder.next() }
        decoder.append(RelayMessage.removeLeg(legID: 1).encoded())  // no resynchronizing after an error
        #expect(throws: oversized) { try decoder.next() }

        var largest = RelayMessageDecoder()
        largest.append([0x00, 0x01, 0x00, 0x00] + [0x01, 0x09])
        #expect(try largest.next() == nil)  // 65536 bytes announced: the limit itself is allowed
    }

    static let garbage: [(hex: String, error: WireError)] = [
        ("00000000", .truncated(needed: 1, got: 0)),
        ("00000001" + "01", .truncated(needed: 2, got: 1)),
        ("00000002" + "02" + "02", .badVersion(2)),
        ("00000002" + "01" + "00", .unknownType(0)),
        ("00000002" + "01" + "0a", .unknownType(10)),
        ("00000004" + "01" + "02" + "0000", .truncated(needed: 6, got: 4)),
        ("00000007" + "01" + "02" + "00000007" + "00", .malformed("1 bytes after a removeLeg message")),
        ("00000007" + "01" + "03" + "00000003" + "02", .malformed("unknown meeting mode 2")),
        ("00000003" + "01" + "08" + "0a", .unknownType(10)),
        ("00000009" + "01" + "09" + "0001" + "0003" + "61ff62", .malformed("error message is not UTF-8")),
        ("00000008" + "01" + "09" + "0001" + "0003" + "6162", .truncated(needed: 9, got: 8)),
        ("00000008" + "01" + "07" + "00000009" + "0001", .truncated(needed: 12, got: 8)),  // 1 leg announced, none sent
    ]

    @Test(arguments: garbage)
    func rejects(hex: String, error: WireError) {
        #expect(throws: error) { try decodeOne([UInt8](hex: hex)) }
    }

    /// The golden addLeg with the body byte at `offset` (after the length prefix) replaced.
    private func addLeg(patching offset: Int, with byte: UInt8) -> [UInt8] {
        var bytes = RelayMessage.addLeg(Self.leg).encoded()
        bytes[4 + offset] = byte
        return bytes
    }

    @Test func refusesBadLegSetups() {
        // Body offsets: profile at 18, inbound key length at 19.
        #expect(throws: WireError.malformed("unknown profile 3")) { try decodeOne(addLeg(patching: 18, with: 3)) }
        #expect(throws: WireError.malformed("a 30-byte key for AEAD_AES_128_GCM, which takes 28")) {
            try decodeOne(addLeg(patching: 19, with: 30))
        }
        #expect(throws: WireError.malformed("a 28-byte key for AES_CM_128_HMAC_SHA1_80, which takes 30")) {
            try decodeOne(addLeg(patching: 18, with: 1))
        }
        #expect(throws: WireError.malformed("a 28-byte key for encapsulated, which takes 30")) {
            try decodeOne(addLeg(patching: 18, with: 2))
        }
        let body = RelayMessage.addLeg(Self.leg).encoded().count - 4
        #expect(throws: WireError.malformed("RTP payload type 128 is not 0–127")) {
            try decodeOne(addLeg(patching: body - 1, with: 128))
        }
    }

    @Test func keepsKeysAndTokenOutOfEveryDescription() {
        let message = RelayMessage.addLeg(Self.leg)
        #expect(message.description ==
            "addLeg(leg 7 in meeting 3, AEAD_AES_128_GCM, keys redacted, audio [111, 0], video [96, 97])")
        var dumped = ""
        dump(message, to: &dumped)
        let descriptions = [
            message.description, String(reflecting: message), "\(Self.leg)", String(reflecting: Self.leg),
        ]
        for text in descriptions + [dumped] {
            #expect(!text.contains("171") && !text.contains("205"), "key bytes 0xab or 0xcd in \(text)")
        }
        for text in descriptions {
            #expect(!text.contains(String(Self.leg.token)), "token in \(text)")
        }
    }
}
