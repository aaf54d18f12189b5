import Testing
@testable import ConclaveSIP

func sdp(_ lines: [String]) -> [UInt8] { Array((lines.joined(separator: "\r\n") + "\r\n").utf8) }

/// RFC 4568 §8.1's example key (30 bytes for AES_CM_128_HMAC_SHA1_80).
let exampleInlineKey = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"

let sessionLines = ["v=0", "o=room4 2890844526 2890844526 IN IP4 192.0.2.10", "s=-", "c=IN IP4 192.0.2.10", "t=0 0"]

let ourOrigin = SDPOrigin(username: "conclave", sessionID: "1", sessionVersion: 1, addressType: "IP4", address: "198.51.100.1")
let ourConnection = SDPConnection(addressType: "IP4", address: "198.51.100.1")

@Suite struct SessionDescriptionTests {
    @Test func parsesSessionAndMediaSections() throws {
        let description = try SessionDescription(parsing: sdp(sessionLines + [
            "m=audio 49170 RTP/AVP 0 8 101", "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-15", "a=sendrecv",
            "m=video 51372 RTP/SAVP 96", "c=IN IP4 192.0.2.11", "b=AS:2000", "a=rtpmap:96 H264/90000",
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:\(exampleInlineKey)|2^20",
        ]))
        #expect(description.origin.sessionID == "2890844526")
        #expect(description.media.count == 2)
        #expect(description.media[0].formats == ["0", "8", "101"])
        #expect(description.media[0].direction == .sendrecv)
        #expect(description.connection(for: description.media[0])?.address == "192.0.2.10")
        #expect(description.connection(for: description.media[1])?.address == "192.0.2.11")
        #expect(description.media[1].bandwidths == ["AS:2000"])
        let reparsed = try SessionDescription(parsing: description.serialized())
        #expect(reparsed == description)
    }

    static let malformed: [(String, [String])] = [
        ("no v=", ["o=a 1 1 IN IP4 h", "s=-", "t=0 0"]),
        ("no o=", ["v=0", "s=-", "t=0 0"]),
        ("no t=", ["v=0", "o=a 1 1 IN IP4 h", "s=-"]),
        ("bad port", sessionLines + ["m=audio 70000 RTP/AVP 0"]),
        ("short m=", sessionLines + ["m=audio 4000 RTP/AVP"]),
        ("no c= anywhere", ["v=0", "o=a 1 1 IN IP4 h", "s=-", "t=0 0", "m=audio 4000 RTP/AVP 0"]),
        ("multicast c=", sessionLines + ["m=audio 4000 RTP/AVP 0", "c=IN IP4 224.2.1.1/127"]),
        ("line without =", sessionLines + ["garbage"]),
        ("session line in media", sessionLines + ["m=audio 4000 RTP/AVP 0", "s=again"]),
        // Found by fuzz-sip: "0\r " before the LF kept a CR in a format, which serialized as a line break.
        ("bare CR in a media line", sessionLines + ["m=audio 4000 RTP/AVP 0\r "]),
    ]

    @Test(arguments: 0..<malformed.count) func refusesMalformedDescriptions(index: Int) {
        let (name, lines) = SessionDescriptionTests.malformed[index]
        #expect(throws: SDPError.self, "\(name)") { try SessionDescription(parsing: sdp(lines)) }
    }

    @Test func refusesOversizedDescriptions() {
        let lines = sessionLines + Array(repeating: "a=x:" + String(repeating: "y", count: 100), count: 200)
        #expect(throws: SDPError.self) { try SessionDescription(parsing: sdp(lines)) }
    }
}

@Suite struct SDESCryptoTests {
    @Test func parsesTheRFC4568Example() throws {
        let crypto = try SDESCrypto(parsing: "1 AES_CM_128_HMAC_SHA1_80 inline:\(exampleInlineKey)|2^31")
        #expect(crypto.tag == 1)
        #expect(crypto.suite == .aesCM128HMACSHA1_80)
        #expect(crypto.keyMaterial.count == 30)
        #expect(crypto.keyMaterial.prefix(4) == [0x3d, 0x2d, 0x6e, 0x40])  // "PS1u" → 3d 2d 6e, "QCVe" → 40…
        #expect(crypto.attributeValue == "1 AES_CM_128_HMAC_SHA1_80 inline:\(exampleInlineKey)")
        #expect(!crypto.description.contains(exampleInlineKey))
    }

    @Test func gcmKeysAreTwentyEightBytes() throws {
        let key = Base64.encode(Array(0..<28))
        let crypto = try SDESCrypto(parsing: "7 AEAD_AES_128_GCM inline:\(key)")
        #expect(crypto.suite == .aeadAES128GCM)
        #expect(crypto.keyMaterial == Array(0..<28))
        #expect(throws: SDESCrypto.Refusal.self) { try SDESCrypto(parsing: "7 AEAD_AES_128_GCM inline:\(exampleInlineKey)") }
    }

    static let refused: [String] = [
        "1 AES_CM_128_HMAC_SHA1_32 inline:\(exampleInlineKey)",
        "1 AES_CM_128_HMAC_SHA1_80 inline:\(exampleInlineKey)|2^20|1:4",
        "1 AES_CM_128_HMAC_SHA1_80 inline:\(exampleInlineKey)|2^20",
        "1 AES_CM_128_HMAC_SHA1_80 inline:\(exampleInlineKey) UNENCRYPTED_SRTP",
        "1 AES_CM_128_HMAC_SHA1_80 inline:\(exampleInlineKey);inline:\(exampleInlineKey)",
        "x AES_CM_128_HMAC_SHA1_80 inline:\(exampleInlineKey)",
        "1 AES_CM_128_HMAC_SHA1_80 inline:not*base64",
        "1 AES_CM_128_HMAC_SHA1_80 uri:http://x",
    ]

    @Test(arguments: refused) func refusesWhatWeCannotHonour(value: String) {
        #expect(throws: SDESCrypto.Refusal.self) { try SDESCrypto(parsing: value) }
    }

    @Test func base64RoundTripsEveryLength() {
        for length in 0..<40 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 * 37 + 11) }
            #expect(Base64.decode(Base64.encode(bytes)) == bytes)
        }
        #expect(Base64.encode(Array("foobar".utf8)) == "Zm9vYmFy")
        #expect(Base64.encode(Array("fo".utf8)) == "Zm8=")
        #expect(Base64.decode("Zm8=x===") == nil)
        #expect(Base64.decode("Zm8") == nil)
    }
}

@Suite struct OfferAnswerTests {
    let mixed = OfferAnswerPolicy(allowsPlainRTP: true)
    let secured = OfferAnswerPolicy(allowsPlainRTP: false)

    @Test func acceptsPlainAudioAsOfferedInMixedMode() throws {
        let offer = try SessionDescription(parsing: sdp(sessionLines + [
            "m=audio 49170 RTP/AVP 0 8 18 101", "a=rtpmap:18 G729/8000", "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 0-15",
        ]))
        let decisions = try OfferAnswer.negotiate(offer: offer, policy: mixed)
        guard case .accepted(let stream) = decisions[0] else { Issue.record("refused: \(decisions)"); return }
        #expect(stream.formats.map(\.payloadType) == [0, 8, 101])  // G.729 would need transcoding
        #expect(stream.security == .plainRTP)
        #expect(stream.remoteAddress == "192.0.2.10")
        #expect(stream.remotePort == 49170)
        #expect(stream.remoteRTCPPort == 49171)
        #expect(!stream.isOnHold)
        let answer = OfferAnswer.answer(
            offer: offer, decisions: decisions, local: [0: LocalStream(port: 40000)], origin: ourOrigin, connection: ourConnection)
        #expect(String(decoding: answer.serialized(), as: UTF8.self) == [
            "v=0", "o=conclave 1 1 IN IP4 198.51.100.1", "s=-", "c=IN IP4 198.51.100.1", "t=0 0",
            "m=audio 40000 RTP/AVP 0 8 101", "a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000",
            "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-15", "a=rtcp:40000", "a=sendrecv", "",
        ].joined(separator: "\r\n"))
    }

    @Test func acceptsSDESWithOpusAndVideoAndAnswersWithOurKey() throws {
        let offer = try SessionDescription(parsing: sdp(sessionLines + [
            "m=audio 49170 RTP/SAVP 111", "a=rtpmap:111 opus/48000/2", "a=fmtp:111 useinbandfec=1",
            "a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:\(exampleInlineKey)",
            "a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:\(exampleInlineKey)", "a=rtcp-mux",
            "m=video 49172 RTP/SAVP 96 97", "a=rtpmap:96 VP8/90000", "a=rtpmap:97 H264/90000",
            "a=fmtp:97 profile-level-id=42e01f;packetization-mode=1",
            "a=crypto:3 AEAD_AES_128_GCM inline:\(Base64.encode(Array(repeating: 9, count: 28)))",
            "m=application 5000 UDP/BFCP *",
        ]))
        let decisions = try OfferAnswer.negotiate(offer: offer, policy: secured)
        guard case .accepted(let audio) = decisions[0], case .accepted(let video) = decisions[1] else {
            Issue.record("refused: \(decisions)")
            return
        }
        guard case .rejected = decisions[2] else { Issue.record("BFCP accepted"); return }
        #expect(audio.security == .sdes(remote: try SDESCrypto(parsing: "2 AES_CM_128_HMAC_SHA1_80 inline:\(exampleInlineKey)")))
        #expect(audio.rtcpMux)
        #expect(audio.remoteRTCPPort == 49170)
        #expect(video.formats.map(\.encoding) == ["VP8", "H264"])
        #expect(video.formats[1].parameters == "profile-level-id=42e01f;packetization-mode=1")
        let audioKey = Array(repeating: UInt8(1), count: 30)
        let videoKey = Array(repeating: UInt8(2), count: 28)
        let answer = OfferAnswer.answer(
            offer: offer, decisions: decisions,
            local: [0: LocalStream(port: 40000, keyMaterial: audioKey), 1: LocalStream(port: 40002, keyMaterial: videoKey)],
            origin: ourOrigin, connection: ourConnection)
        #expect(answer.media.count == 3)
        #expect(answer.media[0].attributes(named: "crypto") == ["2 AES_CM_128_HMAC_SHA1_80 inline:\(Base64.encode(audioKey))"])
        #expect(answer.media[0].hasAttribute("rtcp-mux"))
        #expect(answer.media[1].attributes(named: "crypto") == ["3 AEAD_AES_128_GCM inline:\(Base64.encode(videoKey))"])
        #expect(answer.media[1].formats == ["96", "97"])
        #expect(answer.media[2].port == 0)
        #expect(answer.media[2].formats == ["*"])
        #expect(try SessionDescription(parsing: answer.serialized()) == answer)
    }

    @Test func securedModeRefusesPlainOffersWithAReason() throws {
        let offer = try SessionDescription(parsing: sdp(sessionLines + ["m=audio 49170 RTP/AVP 0"]))
        #expect(throws: OfferRefusal.self) { try OfferAnswer.negotiate(offer: offer, policy: secured) }
        do {
            _ = try OfferAnswer.negotiate(offer: offer, policy: secured)
        } catch {
            #expect(error.reason.contains("secured mode"))
        }
        #expect(throws: Never.self) { try OfferAnswer.negotiate(offer: offer, policy: mixed) }
    }

    @Test func refusesOffersWithNothingWeCanForward() throws {
        let cases = [
            ["m=audio 49170 RTP/AVP 18", "a=rtpmap:18 G729/8000"],
            ["m=audio 49170 RTP/AVP 101", "a=rtpmap:101 telephone-event/8000"],
            ["m=audio 49170 RTP/SAVP 0"],
            ["m=audio 49170 UDP/TLS/RTP/SAVP 0"],
            ["m=audio 0 RTP/AVP 0"],
            ["m=text 49170 RTP/AVP 98", "a=rtpmap:98 t140/1000"],
        ]
        for lines in cases {
            let offer = try SessionDescription(parsing: sdp(sessionLines + lines))
            #expect(throws: OfferRefusal.self, "\(lines)") { try OfferAnswer.negotiate(offer: offer, policy: mixed) }
        }
    }

    @Test func holdIsAnsweredWithTheMatchingDirection() throws {
        let cases: [([String], SDPDirection)] = [
            (["a=sendonly", "m=audio 49170 RTP/AVP 0"], .recvonly),
            (["m=audio 49170 RTP/AVP 0", "a=inactive"], .inactive),
            (["m=audio 49170 RTP/AVP 0", "a=recvonly"], .sendonly),
        ]
        for (lines, expected) in cases {
            let offer = try SessionDescription(parsing: sdp(sessionLines + lines))
            guard case .accepted(let stream) = try OfferAnswer.negotiate(offer: offer, policy: mixed)[0] else {
                Issue.record("refused \(lines)")
                continue
            }
            #expect(stream.direction == expected)
            #expect(stream.isOnHold == (expected != .sendonly))
        }
        var old = sessionLines
        old[3] = "c=IN IP4 0.0.0.0"
        let offer = try SessionDescription(parsing: sdp(old + ["m=audio 49170 RTP/AVP 0"]))
        guard case .accepted(let stream) = try OfferAnswer.negotiate(offer: offer, policy: mixed)[0] else {
            Issue.record("refused RFC 2543 hold")
            return
        }
        #expect(stream.isOnHold)
        #expect(stream.direction == .inactive)
    }
}
