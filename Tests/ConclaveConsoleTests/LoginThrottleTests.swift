import Testing
@testable import ConclaveConsole

@Suite struct LoginThrottleTests {
    @Test func fiveFailuresLockForOneMinuteThenTwoThenFour() {
        var throttle = LoginThrottle()
        var now = 1_000.0
        for _ in 0..<4 { #expect(throttle.recordFailure(now: now) == nil) }
        #expect(throttle.remainingLock(now: now) == nil)
        #expect(throttle.recordFailure(now: now) == 60)
        #expect(throttle.remainingLock(now: now + 30) == 30)
        #expect(throttle.remainingLock(now: now + 60) == nil)
        now += 61
        for _ in 0..<4 { #expect(throttle.recordFailure(now: now) == nil) }
        #expect(throttle.recordFailure(now: now) == 120)
        now += 121
        for _ in 0..<4 { _ = throttle.recordFailure(now: now) }
        #expect(throttle.recordFailure(now: now) == 240)
    }

    @Test func successResetsTheCountAndTheDoubling() {
        var throttle = LoginThrottle()
        for _ in 0..<5 { _ = throttle.recordFailure(now: 0) }
        throttle.recordSuccess()
        #expect(throttle == LoginThrottle())
        for _ in 0..<4 { _ = throttle.recordFailure(now: 100) }
        #expect(throttle.recordFailure(now: 100) == 60)
    }

    @Test func theLockIsCappedAtADay() {
        var throttle = LoginThrottle()
        var last: Double?
        for round in 0..<30 {
            for _ in 0..<5 { last = throttle.recordFailure(now: Double(round) * 100_000) ?? last }
        }
        #expect(last == LoginThrottle.longestLock)
    }
}
