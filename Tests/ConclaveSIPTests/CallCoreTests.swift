import Testing
@testable import ConclaveSIP

@Suite struct CallCoreTests {
    static let offerBody = String(decoding: sdp(sessionLines + ["m=audio 49170 RTP/AVP 0 101", "a=rtpmap:101 telephone-event/8000"]), as: UTF8.self)

    func core(secured: Bool = false) -> CallCore {
        CallCore(
            configuration: .init(
                contact: "sip:198.51.100.1:5060", origin: ourOrigin, connection: ourConnection, allowsPlainRTP: !secured))
    }

    func request(
        _ method: String, uri: String = "sip:standup@conclave.example", cseq: UInt32 = 1, toTag: String? = nil,
        body: String = "", contentType: String? = "application/sdp", branch: String = "z9hG4bKa"
    ) -> SIPMessage {
        var lines = [
            "\(method) \(uri) SIP/2.0", "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=\(branch)",
            "From: \"Room 4\" <sip:room4@example.org>;tag=caller", "To: <sip:standup@conclave.example>" + (toTag.map { ";tag=\($0)" } ?? ""),
            "Call-ID: call-1", "CSeq: \(cseq) \(method)", "Max-Forwards: 70",
        ]
        if let contentType, !body.isEmpty { lines.append("Content-Type: \(contentType)") }
        lines.append("Content-Length: \(body.utf8.count)")
        return try! SIPMessage(parsing: sipText(lines, body: body))
    }

    func responses(_ actions: [CallAction]) -> [SIPMessage] {
        actions.compactMap { action -> SIPMessage? in
            guard case .respond(_, let response) = action else { return nil }
            return response
        }
    }

    @Test func optionsAndUnknownMethodsAdvertiseWhatWeImplement() {
        var core = core()
        let options = responses(core.handle(request("OPTIONS"), transport: .udp, newTag: "t"))
        #expect(options.map(\.status) == [200])
        #expect(options[0]["Allow"] == "INVITE, ACK, BYE, CANCEL, OPTIONS")
        let refer = responses(core.handle(request("REFER"), transport: .udp, newTag: "t"))
        #expect(refer.map(\.status) == [501])
        #expect(refer[0]["Allow"] != nil)
    }

    @Test func unsupportedSchemesAndRequiredExtensionsAreRefused() {
        var core = core()
        let tel = responses(core.handle(request("INVITE", uri: "tel:+15551234", body: CallCoreTests.offerBody), transport: .udp, newTag: "t"))
        #expect(tel.map(\.status) == [416])
        var lines = inviteLines
        lines.append("Require: 100rel, timer")
        let invite = try! SIPMessage(parsing: sipText(lines))
        let refused = responses(core.handle(invite, transport: .udp, newTag: "t"))
        #expect(refused.map(\.status) == [420])
        #expect(refused.first?["Unsupported"] == "100rel, timer")
        #expect(core.callCount == 0)
    }

    @Test func inviteIsAdmittedAnsweredAndHungUp() throws {
        var core = core()
        let invite = request("INVITE", body: CallCoreTests.offerBody)
        let actions = core.handle(invite, transport: .udp, newTag: "srv")
        guard case .admit(let call) = actions.first, actions.count == 1 else {
            Issue.record("expected admit, got \(actions)")
            return
        }
        #expect(call.meeting == "standup")
        #expect(call.callerName == "Room 4")
        #expect(call.key == CallKey(callID: "call-1", remoteTag: "caller"))
        let admission = core.admitted(call.key, local: [0: LocalStream(port: 40000)])
        let answered = try #require(admission)
        let ok = responses(answered)
        #expect(ok.map(\.status) == [200])
        #expect(ok[0]["To"] == "<sip:standup@conclave.example>;tag=srv")
        #expect(ok[0]["Contact"] == "<sip:198.51.100.1:5060>")
        let answer = try SessionDescription(parsing: ok[0].body)
        #expect(answer.media[0].port == 40000)
        #expect(answer.media[0].formats == ["0", "101"])
        #expect(core.handle(request("ACK", toTag: "srv"), transport: .udp, newTag: "x").isEmpty)
        // §9.2: a CANCEL after the answer is acknowledged and ends nothing.
        let lateCancel = core.handle(request("CANCEL"), transport: .udp, newTag: "x")
        #expect(responses(lateCancel).map(\.status) == [200])
        #expect(lateCancel.count == 1)
        #expect(core.callCount == 1)
        // A BYE with the wrong To tag belongs to no dialog of ours.
        #expect(responses(core.handle(request("BYE", cseq: 2, toTag: "other"), transport: .udp, newTag: "x")).map(\.status) == [481])
        let bye = core.handle(request("BYE", cseq: 2, toTag: "srv"), transport: .udp, newTag: "x")
        #expect(responses(bye).map(\.status) == [200])
        #expect(bye.contains(.release(call.key, reason: "the caller hung up")))
        #expect(core.callCount == 0)
    }

    @Test func cancelBeforeTheAnswerEndsTheInviteWith487() {
        var core = core()
        let invite = request("INVITE", body: CallCoreTests.offerBody)
        _ = core.handle(invite, transport: .udp, newTag: "srv")
        let cancel = core.handle(request("CANCEL"), transport: .udp, newTag: "x")
        #expect(responses(cancel).map(\.status) == [200, 487])
        #expect(cancel.contains(.release(CallKey(callID: "call-1", remoteTag: "caller"), reason: "the caller cancelled")))
        #expect(core.admitted(CallKey(callID: "call-1", remoteTag: "caller"), local: [0: LocalStream(port: 1)]) == nil)
        #expect(responses(core.handle(request("CANCEL"), transport: .udp, newTag: "x")).map(\.status) == [481])
    }

    @Test func refusalsBeforeAdmission() {
        var mixed = core()
        let cases: [(SIPMessage, SIPTransport, Int)] = [
            (request("INVITE", uri: "sip:conclave.example", body: CallCoreTests.offerBody), .udp, 404),
            (request("INVITE", uri: "sip:bad%2Fid@conclave.example", body: CallCoreTests.offerBody), .udp, 404),
            (request("INVITE", body: CallCoreTests.offerBody, contentType: "text/plain"), .udp, 415),
            (request("INVITE"), .udp, 488),
            (request("INVITE", body: "v=0\r\nbroken\r\n"), .udp, 400),
            (request("INVITE", body: String(decoding: sdp(sessionLines + ["m=audio 4000 RTP/AVP 18"]), as: UTF8.self)), .udp, 488),
        ]
        for (invite, transport, status) in cases {
            #expect(responses(mixed.handle(invite, transport: transport, newTag: "t")).map(\.status) == [status], "\(invite.requestURI!)")
        }
        #expect(mixed.callCount == 0)
    }

    @Test func securedModeWantsTLSAndSDES() throws {
        var secured = core(secured: true)
        let overUDP = responses(secured.handle(request("INVITE", body: CallCoreTests.offerBody), transport: .udp, newTag: "t"))
        #expect(overUDP.map(\.status) == [488])
        #expect(overUDP[0]["Warning"]?.contains("secured mode") == true)
        let plainOverTLS = responses(secured.handle(request("INVITE", body: CallCoreTests.offerBody), transport: .tls, newTag: "t"))
        #expect(plainOverTLS.map(\.status) == [488])
        #expect(plainOverTLS[0]["Warning"]?.contains("plain RTP is refused") == true)
        let sdes = String(decoding: sdp(sessionLines + [
            "m=audio 49170 RTP/SAVP 0", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:\(exampleInlineKey)",
        ]), as: UTF8.self)
        let actions = secured.handle(request("INVITE", body: sdes), transport: .tls, newTag: "t")
        guard case .admit(let call) = actions.first else { Issue.record("\(actions)"); return }
        let key = Array(repeating: UInt8(5), count: 30)
        let admission = secured.admitted(call.key, local: [0: LocalStream(port: 40000, keyMaterial: key)])
        let ok = responses(try #require(admission))
        #expect(try SessionDescription(parsing: ok[0].body).media[0].attributes(named: "crypto")
            == ["1 AES_CM_128_HMAC_SHA1_80 inline:\(Base64.encode(key))"])
    }

    @Test func controlPlaneRefusalCarriesItsStatusAndHeaders() {
        var core = core()
        guard case .admit(let call) = core.handle(request("INVITE", body: CallCoreTests.offerBody), transport: .udp, newTag: "srv").first else {
            Issue.record("no admit")
            return
        }
        let challenge = SIPHeaderField("WWW-Authenticate", DigestChallenge(realm: "conclave", nonce: "n", algorithm: .sha256).headerValue)
        let refused = responses(core.refused(call.key, status: 401, reason: "Unauthorized", warning: nil, extraHeaders: [challenge]))
        #expect(refused.map(\.status) == [401])
        #expect(refused[0]["WWW-Authenticate"]?.hasPrefix("Digest realm=\"conclave\"") == true)
        #expect(refused[0]["To"] == "<sip:standup@conclave.example>;tag=srv")
        #expect(core.callCount == 0)
    }

    @Test func reInviteHoldsAndKeepsPortsAndRefusesNewStreams() throws {
        var core = core()
        guard case .admit(let call) = core.handle(request("INVITE", body: CallCoreTests.offerBody), transport: .udp, newTag: "srv").first else {
            Issue.record("no admit")
            return
        }
        _ = core.admitted(call.key, local: [0: LocalStream(port: 40000)])
        let hold = String(decoding: sdp(sessionLines + ["m=audio 49170 RTP/AVP 0", "a=sendonly", "m=video 49172 RTP/AVP 96", "a=rtpmap:96 VP8/90000"]), as: UTF8.self)
        let actions = core.handle(request("INVITE", cseq: 2, toTag: "srv", body: hold, branch: "z9hG4bKb"), transport: .udp, newTag: "x")
        guard case .updateMedia(let key, let decisions) = actions.first else { Issue.record("\(actions)"); return }
        #expect(key == call.key)
        guard case .accepted(let audio) = decisions[0], case .rejected = decisions[1] else { Issue.record("\(decisions)"); return }
        #expect(audio.isOnHold)
        let ok = responses(actions)
        #expect(ok.map(\.status) == [200])
        let answer = try SessionDescription(parsing: ok[0].body)
        #expect(answer.origin.sessionVersion == ourOrigin.sessionVersion + 1)
        #expect(answer.media.map(\.port) == [40000, 0])
        #expect(answer.media[0].direction == .recvonly)
        let stale = core.handle(request("INVITE", cseq: 2, toTag: "srv", body: hold, branch: "z9hG4bKc"), transport: .udp, newTag: "x")
        #expect(responses(stale).map(\.status) == [500])
    }
}
