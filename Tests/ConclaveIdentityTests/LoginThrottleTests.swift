import Synchronization
import Testing
@testable import ConclaveIdentity

/// A clock the test moves by hand.
final class FakeClock: Sendable {
    private let instant = Mutex(ContinuousClock.now)
    var now: ContinuousClock.Instant { instant.withLock { $0 } }
    func advance(_ duration: Duration) { instant.withLock { $0 += duration } }
}

@Suite struct LoginThrottleTests {
    let clock = FakeClock()
    func throttle() -> LoginThrottle { LoginThrottle(clock: { [clock] in clock.now }) }

    @Test func locksAfterFiveFailuresAndGrowsTheLock() {
        var throttle = throttle()
        for _ in 1...4 { #expect(throttle.recordFailure(account: "alice@example.org", address: "192.0.2.1") == .allowed) }
        #expect(throttle.recordFailure(account: "Alice@example.org", address: "192.0.2.1")
            == .locked(.account("alice@example.org"), retryAfter: .seconds(60)))
        clock.advance(.seconds(59))
        #expect(throttle.check(account: "alice@example.org", address: "192.0.2.9") == .locked(.account("alice@example.org"), retryAfter: .seconds(1)))
        // The address is locked too, for any account.
        #expect(throttle.check(account: "bob@example.org", address: "192.0.2.1") == .locked(.address("192.0.2.1"), retryAfter: .seconds(1)))
        clock.advance(.seconds(1))
        #expect(throttle.check(account: "alice@example.org", address: "192.0.2.1") == .allowed)
        // Second lockout: 2 minutes, then 4, 8 … capped at an hour.
        var expected: [Duration] = []
        var observed: [Duration] = []
        for lock in 1...8 {
            for _ in 1...4 { _ = throttle.recordFailure(account: "alice@example.org", address: "198.51.100.\(lock)") }
            if case .locked(_, let retry) = throttle.recordFailure(account: "alice@example.org", address: "198.51.100.\(lock)") {
                observed.append(retry)
                clock.advance(retry)
            }
            expected.append(min(.seconds(60 << lock), .seconds(3600)))
        }
        #expect(observed == expected)
    }

    @Test func failuresOutsideTheWindowDoNotCount() {
        var throttle = throttle()
        for _ in 1...4 { throttle.recordFailure(account: "a@example.org", address: "192.0.2.1") }
        clock.advance(.seconds(15 * 60 + 1))
        #expect(throttle.recordFailure(account: "a@example.org", address: "192.0.2.1") == .allowed)
    }

    @Test func successResetsTheAccountButNotTheAddress() {
        var throttle = throttle()
        for _ in 1...4 { throttle.recordFailure(account: "a@example.org", address: "192.0.2.1") }
        throttle.recordSuccess(account: "a@example.org", address: "192.0.2.1")
        #expect(throttle.recordFailure(account: "a@example.org", address: "192.0.2.2") == .allowed)
        // The address had four failures: one more (for any account) locks it.
        #expect(throttle.recordFailure(account: "b@example.org", address: "192.0.2.1") == .locked(.address("192.0.2.1"), retryAfter: .seconds(60)))
        #expect(throttle.check(account: "a@example.org", address: "192.0.2.2") == .allowed)
    }

    @Test func manyAddressesStayBounded() {
        var policy = LoginThrottle.Policy()
        policy.maximumKeys = 100
        var throttle = LoginThrottle(policy: policy, clock: { [clock] in clock.now })
        for index in 0..<1000 {
            throttle.recordFailure(account: "a@example.org", address: "10.0.\(index / 256).\(index % 256)")
            clock.advance(.milliseconds(1))
        }
        #expect(throttle.rememberedKeys <= 100)
        // The account (locked) is kept.
        if case .locked(let key, _) = throttle.check(account: "a@example.org", address: "192.0.2.1") {
            #expect(key == .account("a@example.org"))
        } else {
            Issue.record("the account should be locked")
        }
    }

    @Test func aKeyIsForgottenAfterADay() {
        var throttle = throttle()
        for _ in 1...5 { throttle.recordFailure(account: "a@example.org", address: "192.0.2.1") }
        clock.advance(.seconds(25 * 3600))
        for _ in 1...4 { throttle.recordFailure(account: "a@example.org", address: "192.0.2.1") }
        // First lockout again (60 s), not the second (120 s).
        #expect(throttle.recordFailure(account: "a@example.org", address: "192.0.2.1") == .locked(.account("a@example.org"), retryAfter: .seconds(60)))
    }
}
