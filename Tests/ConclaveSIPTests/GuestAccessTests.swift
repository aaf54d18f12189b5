import Testing
@testable import ConclaveSIP

@Suite struct GuestAccessTests {
    let start = ContinuousClock.now
    let random = Array(repeating: UInt8(3), count: 16)

    func invite(authorization: String? = nil) -> SIPMessage {
        var lines = inviteLines
        if let authorization { lines.append("Authorization: \(authorization)") }
        return try! SIPMessage(parsing: sipText(lines))
    }

    /// What a client computes from a challenge (RFC 7616 §3.4.1), written out independently of
    /// `DigestCredentials.expectedResponse`.
    func answer(nonce: String, password: String, algorithm: DigestAlgorithm, count: String = "00000001") -> String {
        let uri = "sip:standup@conclave.example"
        let ha1 = algorithm.hash("room4:conclave:\(password)")
        let ha2 = algorithm.hash("INVITE:\(uri)")
        let response = algorithm.hash("\(ha1):\(nonce):\(count):abc:auth:\(ha2)")
        return "Digest username=\"room4\", realm=\"conclave\", nonce=\"\(nonce)\", uri=\"\(uri)\", response=\"\(response)\", "
            + "algorithm=\(algorithm.rawValue), qop=auth, nc=\(count), cnonce=\"abc\""
    }

    func challengedNonce(of decision: SIPGuestAccess.Decision) -> String? {
        guard case .challenge(let headers) = decision, let first = headers.first?.value,
            let start = first.firstRange(of: "nonce=\"")?.upperBound, let end = first[start...].firstIndex(of: "\"")
        else { return nil }
        return String(first[start..<end])
    }

    @Test func meetingsWithoutGuestsRefuseAndOpenMeetingsAdmit() {
        var access = SIPGuestAccess(realm: "conclave")
        guard case .refuse(403, _, let warning) = access.decide(invite: invite(), guestsAllowed: false, passcode: nil, random: random, now: start) else {
            Issue.record("not refused")
            return
        }
        #expect(warning.contains("registered users only"))
        #expect(access.decide(invite: invite(), guestsAllowed: true, passcode: nil, random: random, now: start) == .admit)
    }

    @Test(arguments: DigestAlgorithm.allCases) func passcodeMeetingsChallengeThenAdmitTheRightPasscodeOnce(algorithm: DigestAlgorithm) throws {
        var access = SIPGuestAccess(realm: "conclave")
        let first = access.decide(invite: invite(), guestsAllowed: true, passcode: "2468", random: random, now: start)
        guard case .challenge(let headers) = first else { Issue.record("no challenge: \(first)"); return }
        #expect(headers.map { $0.value.contains("algorithm=SHA-256") } == [true, false])
        let nonce = try #require(challengedNonce(of: first))
        let wrong = access.decide(
            invite: invite(authorization: answer(nonce: nonce, password: "1357", algorithm: algorithm)), guestsAllowed: true, passcode: "2468",
            random: random, now: start)
        guard case .refuse(403, _, _) = wrong else { Issue.record("wrong passcode not refused: \(wrong)"); return }
        let right = invite(authorization: answer(nonce: nonce, password: "2468", algorithm: algorithm))
        #expect(access.decide(invite: right, guestsAllowed: true, passcode: "2468", random: random, now: start) == .admit)
        // The same Authorization again is a replay: challenged, not admitted.
        #expect(challengedNonce(of: access.decide(invite: right, guestsAllowed: true, passcode: "2468", random: random, now: start)) != nil)
    }

    @Test func expiredNoncesAreChallengedAsStale() throws {
        var access = SIPGuestAccess(realm: "conclave", nonces: DigestNonceBook(lifetime: .seconds(10)))
        let nonce = try #require(challengedNonce(of: access.decide(invite: invite(), guestsAllowed: true, passcode: "2468", random: random, now: start)))
        let late = access.decide(
            invite: invite(authorization: answer(nonce: nonce, password: "2468", algorithm: .sha256)), guestsAllowed: true, passcode: "2468",
            random: Array(repeating: 4, count: 16), now: start + .seconds(11))
        guard case .challenge(let headers) = late else { Issue.record("\(late)"); return }
        #expect(headers.allSatisfy { $0.value.hasSuffix("stale=TRUE") })
    }
}
