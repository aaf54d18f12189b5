import Testing
@testable import ConclaveSIP

@Suite struct ServerEngineTests {
    let peer = SIPPeer(transport: .udp, address: "203.0.113.7", port: 40123)
    let start = ContinuousClock.now

    func engine() -> SIPServerEngine {
        SIPServerEngine(
            core: CallCore(
                configuration: .init(contact: "sip:198.51.100.1:5060", origin: ourOrigin, connection: ourConnection, allowsPlainRTP: true)))
    }

    func bytes(_ method: String, branch: String, cseq: UInt32 = 1, toTag: String? = nil, body: String = "", extra: [String] = []) -> [UInt8] {
        var lines = [
            "\(method) sip:standup@conclave.example SIP/2.0", "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=\(branch);rport",
            "From: <sip:room4@example.org>;tag=caller", "To: <sip:standup@conclave.example>" + (toTag.map { ";tag=\($0)" } ?? ""),
            "Call-ID: call-9", "CSeq: \(cseq) \(method)",
        ] + extra
        if !body.isEmpty { lines.append("Content-Type: application/sdp") }
        lines.append("Content-Length: \(body.utf8.count)")
        return sipText(lines, body: body)
    }

    /// Status codes of the messages sent, in order.
    func sent(_ outputs: [SIPServerOutput]) -> [Int] {
        outputs.compactMap { output -> Int? in
            guard case .send(let bytes, _) = output else { return nil }
            return try? SIPMessage(parsing: bytes).status
        }
    }

    func admission(_ outputs: [SIPServerOutput]) -> CallRequest? {
        for case .call(.admit(let request)) in outputs { return request }
        return nil
    }

    @Test func callSetupRetransmitsTheAnswerUntilTheACKThenHangsUp() throws {
        var engine = engine()
        let invite = engine.receive(bytes("INVITE", branch: "z9hG4bKinv", body: CallCoreTests.offerBody), from: peer, now: start, newTag: "srv")
        #expect(sent(invite) == [100])
        guard case .send(let trying, let destination) = invite[0] else { Issue.record("no 100"); return }
        #expect(destination == peer)
        // §18.2.1 and RFC 3581: the source address and port are stamped into the top Via.
        #expect(try SIPMessage(parsing: trying)["Via"] == "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKinv;rport=40123;received=203.0.113.7")
        let call = try #require(admission(invite))
        // A retransmitted INVITE gets the 100 again and does not reach the control plane twice.
        let again = engine.receive(bytes("INVITE", branch: "z9hG4bKinv", body: CallCoreTests.offerBody), from: peer, now: start, newTag: "x")
        #expect(sent(again) == [100])
        #expect(admission(again) == nil)
        let admitted = engine.admitted(call.key, local: [0: LocalStream(port: 40000)], now: start)
        let answered = try #require(admitted)
        #expect(sent(answered) == [200])
        #expect(sent(engine.tick(now: start + .milliseconds(499))) == [])
        #expect(sent(engine.tick(now: start + .milliseconds(500))) == [200])
        #expect(sent(engine.tick(now: start + .milliseconds(1500))) == [200])
        // The ACK for a 2xx has its own branch; it still stops the retransmissions.
        #expect(engine.receive(bytes("ACK", branch: "z9hG4bKack", toTag: "srv"), from: peer, now: start + .seconds(2), newTag: "x").isEmpty)
        #expect(sent(engine.tick(now: start + .seconds(10))) == [])
        let bye = engine.receive(bytes("BYE", branch: "z9hG4bKbye", cseq: 2, toTag: "srv"), from: peer, now: start + .seconds(11), newTag: "x")
        #expect(sent(bye) == [200])
        #expect(bye.contains(.call(.release(call.key, reason: "the caller hung up"))))
        // A retransmitted BYE is answered from its transaction, not released twice.
        let byeAgain = engine.receive(bytes("BYE", branch: "z9hG4bKbye", cseq: 2, toTag: "srv"), from: peer, now: start + .seconds(12), newTag: "x")
        #expect(sent(byeAgain) == [200])
        #expect(byeAgain.count == 1)
        _ = engine.tick(now: start + .seconds(100))
        #expect(engine.transactionCount == 0)
        #expect(engine.core.callCount == 0)
    }

    @Test func answerWithoutACKReleasesTheCall() throws {
        var engine = engine()
        let invite = engine.receive(bytes("INVITE", branch: "z9hG4bKinv", body: CallCoreTests.offerBody), from: peer, now: start, newTag: "srv")
        let call = try #require(admission(invite))
        _ = engine.admitted(call.key, local: [0: LocalStream(port: 40000)], now: start)
        let outputs = engine.tick(now: start + .seconds(40))
        #expect(outputs.contains(.call(.release(call.key, reason: "no ACK for the answer"))))
        #expect(engine.transactionCount == 0)
        #expect(engine.core.callCount == 0)
    }

    @Test func cancelWhileAdmittingAnswers487AndTheLateAdmissionIsDropped() throws {
        var engine = engine()
        let invite = engine.receive(bytes("INVITE", branch: "z9hG4bKinv", body: CallCoreTests.offerBody), from: peer, now: start, newTag: "srv")
        let call = try #require(admission(invite))
        let cancel = engine.receive(bytes("CANCEL", branch: "z9hG4bKinv"), from: peer, now: start, newTag: "x")
        #expect(sent(cancel) == [200, 487])
        #expect(cancel.contains(.call(.release(call.key, reason: "the caller cancelled"))))
        #expect(engine.admitted(call.key, local: [0: LocalStream(port: 40000)], now: start) == nil)
        // The ACK for the 487 matches the INVITE transaction by branch.
        #expect(engine.receive(bytes("ACK", branch: "z9hG4bKinv", toTag: "srv"), from: peer, now: start, newTag: "x").isEmpty)
        _ = engine.tick(now: start + .seconds(40))
        #expect(engine.transactionCount == 0)
    }

    @Test func malformedRequestsAreAnsweredWhenTheyCanBe() throws {
        var engine = engine()
        let badLength = engine.receive(
            bytes("OPTIONS", branch: "z9hG4bKo", extra: ["Content-Length: 99"]), from: peer, now: start, newTag: "x")
        #expect(sent(badLength) == [400])
        guard case .send(let answer, _) = badLength.first else { return }
        #expect(try SIPMessage(parsing: answer)["Warning"]?.contains("Content-Length") == true)
        var huge = bytes("OPTIONS", branch: "z9hG4bKh")
        huge += Array(repeating: UInt8(ascii: "x"), count: 70_000)
        #expect(sent(engine.receive(huge, from: peer, now: start, newTag: "x")) == [513])
        #expect(engine.receive(Array("garbage\r\n\r\n".utf8), from: peer, now: start, newTag: "x").isEmpty)
        let oldBranch = engine.receive(bytes("OPTIONS", branch: "1234"), from: peer, now: start, newTag: "x")
        #expect(sent(oldBranch) == [400])
        #expect(sent(engine.receive(bytes("OPTIONS", branch: "z9hG4bKok"), from: peer, now: start, newTag: "x")) == [200])
        #expect(engine.transactionCount == 1)
    }

    @Test func securityModeChangesApplyToTheNextInvite() throws {
        var engine = engine()
        engine.setAllowsPlainRTP(false)
        let refused = engine.receive(bytes("INVITE", branch: "z9hG4bKs", body: CallCoreTests.offerBody), from: peer, now: start, newTag: "t")
        #expect(sent(refused) == [100, 488])
        engine.setAllowsPlainRTP(true)
        let admitted = engine.receive(bytes("INVITE", branch: "z9hG4bKm", body: CallCoreTests.offerBody), from: peer, now: start, newTag: "u")
        #expect(admission(admitted) != nil)
    }

    @Test func streamFailureEndsItsTransactions() throws {
        var engine = engine()
        let tcp = SIPPeer(transport: .tcp, address: "203.0.113.7", port: 50000, connection: 7)
        let invite = engine.receive(bytes("INVITE", branch: "z9hG4bKinv", body: CallCoreTests.offerBody), from: tcp, now: start, newTag: "srv")
        #expect(admission(invite) != nil)
        _ = engine.connectionFailed(tcp, now: start)
        #expect(engine.transactionCount == 0)
    }
}
