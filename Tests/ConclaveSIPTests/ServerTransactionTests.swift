import Testing
@testable import ConclaveSIP

@Suite struct ServerTransactionTests {
    let invite = try! SIPMessage(parsing: sipText(inviteLines))
    let ack = try! SIPMessage(parsing: sipText([
        "ACK sip:standup@conclave.example SIP/2.0", "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds",
        "To: <sip:standup@conclave.example>;tag=srv", "From: <sip:room4@example.org>;tag=1928301774",
        "Call-ID: a84b4c76e66710@192.0.2.10", "CSeq: 314159 ACK",
    ]))

    func timerStarts(_ actions: [TransactionAction]) -> [String] {
        actions.compactMap { action -> String? in
            guard case .startTimer(let timer, let delay) = action else { return nil }
            return "\(timer.rawValue)@\(delay)"
        }
    }

    func sentStatuses(_ actions: [TransactionAction]) -> [Int] {
        actions.compactMap { action -> Int? in
            guard case .send(let message) = action else { return nil }
            return message.status
        }
    }

    @Test func failureOverUDPIsRetransmittedUntilTheACK() {
        var transaction = InviteServerTransaction(invite: invite, isReliable: false)
        #expect(transaction.trying.status == 100)
        #expect(sentStatuses(transaction.handle(.inviteRetransmitted)) == [100])
        let busy = SIPMessage.response(to: invite, status: 486, reason: "Busy Here", toTag: "srv")
        let actions = transaction.handle(.respond(busy))
        #expect(sentStatuses(actions) == [486])
        #expect(timerStarts(actions) == ["G@0.5 seconds", "H@32.0 seconds"])
        #expect(transaction.state == .completed)
        // G doubles up to T2 (4 s): 1, 2, 4, 4.
        var intervals: [String] = []
        for _ in 0..<4 {
            let retransmit = transaction.handle(.timerFired(.g))
            #expect(sentStatuses(retransmit) == [486])
            intervals += timerStarts(retransmit)
        }
        #expect(intervals == ["G@1.0 seconds", "G@2.0 seconds", "G@4.0 seconds", "G@4.0 seconds"])
        #expect(sentStatuses(transaction.handle(.inviteRetransmitted)) == [486])
        let confirmed = transaction.handle(.ack(ack))
        #expect(transaction.state == .confirmed)
        #expect(confirmed.contains(.cancelTimer(.g)) && confirmed.contains(.cancelTimer(.h)))
        #expect(timerStarts(confirmed) == ["I@5.0 seconds"])
        #expect(transaction.handle(.ack(ack)).isEmpty)
        #expect(transaction.handle(.timerFired(.i)) == [.terminated(.completed)])
        #expect(transaction.state == .terminated)
    }

    @Test func failureWithoutACKEndsAtTimerH() {
        var transaction = InviteServerTransaction(invite: invite, isReliable: true)
        let actions = transaction.handle(.respond(SIPMessage.response(to: invite, status: 404, reason: "Not Found", toTag: "s")))
        #expect(timerStarts(actions) == ["H@32.0 seconds"])  // no G over a reliable transport
        #expect(transaction.handle(.timerFired(.h)).last == .terminated(.noAckForFailure))
    }

    @Test func answerIsRetransmittedUntilTheACKAndInviteRetransmissionsAbsorbed() {
        var transaction = InviteServerTransaction(invite: invite, isReliable: false)
        _ = transaction.handle(.respond(SIPMessage.response(to: invite, status: 180, reason: "Ringing", toTag: "srv")))
        #expect(sentStatuses(transaction.handle(.inviteRetransmitted)) == [180])
        let ok = SIPMessage.response(to: invite, status: 200, reason: "OK", toTag: "srv")
        let accepted = transaction.handle(.respond(ok))
        #expect(transaction.state == .accepted)
        #expect(timerStarts(accepted) == ["2xx@0.5 seconds", "L@32.0 seconds"])
        #expect(transaction.handle(.inviteRetransmitted).isEmpty)
        let again = transaction.handle(.timerFired(.answerRetransmit))
        #expect(sentStatuses(again) == [200])
        #expect(timerStarts(again) == ["2xx@1.0 seconds"])
        #expect(transaction.handle(.ack(ack)) == [.cancelTimer(.answerRetransmit), .passToCallLayer(ack)])
        #expect(transaction.handle(.timerFired(.answerRetransmit)).isEmpty)
        #expect(transaction.handle(.timerFired(.l)).last == .terminated(.completed))
    }

    @Test func answerWithoutACKTellsTheCallLayerToHangUp() {
        var transaction = InviteServerTransaction(invite: invite, isReliable: true)
        _ = transaction.handle(.respond(SIPMessage.response(to: invite, status: 200, reason: "OK", toTag: "srv")))
        #expect(transaction.handle(.timerFired(.l)).last == .terminated(.noAckForAnswer))
    }

    @Test func nonInviteAbsorbsRetransmissionsThenRepeatsTheAnswer() {
        var transaction = NonInviteServerTransaction(isReliable: false)
        #expect(transaction.handle(.requestRetransmitted).isEmpty)
        let ok = SIPMessage.response(to: invite, status: 200, reason: "OK")
        let actions = transaction.handle(.respond(ok))
        #expect(timerStarts(actions) == ["J@32.0 seconds"])
        #expect(sentStatuses(transaction.handle(.requestRetransmitted)) == [200])
        #expect(transaction.handle(.timerFired(.j)) == [.terminated(.completed)])
        var reliable = NonInviteServerTransaction(isReliable: true)
        #expect(timerStarts(reliable.handle(.respond(ok))) == ["J@0.0 seconds"])
    }

    @Test func transportErrorTerminates() {
        var transaction = InviteServerTransaction(invite: invite, isReliable: false)
        #expect(transaction.handle(.transportError).last == .terminated(.transportError))
        #expect(transaction.handle(.inviteRetransmitted).isEmpty)
    }

    @Test func keysMatchACKToInviteAndCancelToItsInvite() throws {
        let inviteKey = try #require(ServerTransactionKey(request: invite))
        #expect(ServerTransactionKey(request: ack) == inviteKey)
        let cancel = try SIPMessage(parsing: sipText([
            "CANCEL sip:standup@conclave.example SIP/2.0", "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds",
            "To: <sip:standup@conclave.example>", "From: <sip:room4@example.org>;tag=1928301774",
            "Call-ID: a84b4c76e66710@192.0.2.10", "CSeq: 314159 CANCEL",
        ]))
        let cancelKey = try #require(ServerTransactionKey(request: cancel))
        #expect(cancelKey != inviteKey)
        #expect(cancelKey.cancelled == inviteKey)
        let old = try SIPMessage(parsing: sipText(inviteLines.map { $0.hasPrefix("Via") ? "Via: SIP/2.0/UDP 192.0.2.10;branch=1" : $0 }))
        #expect(ServerTransactionKey(request: old) == nil)  // RFC 2543 branch: refused by the server
    }

    @Test func timersFireInDeadlineOrderOnAnInjectedClock() {
        let start = ContinuousClock.now
        var timers = TransactionTimers<String>()
        timers.apply([.startTimer(.h, after: .seconds(32)), .startTimer(.g, after: .milliseconds(500))], for: "a", now: start)
        timers.apply([.startTimer(.j, after: .seconds(1))], for: "b", now: start)
        #expect(timers.due(at: start + .milliseconds(499)).isEmpty)
        #expect(timers.nextDeadline == start + .milliseconds(500))
        let due = timers.due(at: start + .seconds(2))
        #expect(due.map(\.key) == ["a", "b"])
        #expect(due.map(\.timer) == [.g, .j])
        timers.apply([.cancelTimer(.h)], for: "a", now: start)
        #expect(timers.count == 0)
        timers.apply([.startTimer(.h, after: .seconds(32)), .startTimer(.g, after: .seconds(1))], for: "c", now: start)
        timers.apply([.terminated(.completed)], for: "c", now: start)
        #expect(timers.count == 0)
    }
}
