/// Brute-force brake for password logins: failures are counted per account and per source
/// address separately. After `maximumFailures` failures within `window`, the key is locked for
/// `firstLockout`, doubling with each further lockout up to `longestLockout`. A success resets
/// the account's count (not the address's: one valid account must not launder guesses at others).
/// A pure value: the caller owns it (behind its own lock) and injects the clock.
public struct LoginThrottle: Sendable {
    public struct Policy: Sendable, Equatable {
        public var maximumFailures = 5
        public var window: Duration = .seconds(15 * 60)
        public var firstLockout: Duration = .seconds(60)
        public var longestLockout: Duration = .seconds(60 * 60)
        /// A key with no failure for this long is forgotten, lockout level included.
        public var forgetAfter: Duration = .seconds(24 * 60 * 60)
        /// Bound on remembered keys, so that a scan from many addresses cannot grow memory.
        public var maximumKeys = 10_000

        public init() {}
    }

    public enum Key: Hashable, Sendable, CustomStringConvertible {
        case account(String)
        case address(String)

        public var description: String {
            switch self {
            case .account(let email): "account \(email)"
            case .address(let address): "address \(address)"
            }
        }
    }

    public enum Decision: Equatable, Sendable {
        case allowed
        /// Refuse without checking the password; tell the client when to retry.
        case locked(Key, retryAfter: Duration)
    }

    private struct Entry {
        /// Failures since the window or the last lockout started.
        var failures: [ContinuousClock.Instant] = []
        /// How many lockouts so far: each doubles the next.
        var lockouts = 0
        var lockedUntil: ContinuousClock.Instant?
        var lastFailure: ContinuousClock.Instant
    }

    public let policy: Policy
    private let now: @Sendable () -> ContinuousClock.Instant
    private var entries: [Key: Entry] = [:]

    public init(policy: Policy = Policy(), clock: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now }) {
        precondition(policy.maximumFailures > 0 && policy.firstLockout > .zero && policy.longestLockout >= policy.firstLockout)
        self.policy = policy
        self.now = clock
    }

    /// Whether a login for `account` from `address` may be tried now. The account lock is
    /// reported first when both are locked.
    public func check(account: String, address: String) -> Decision {
        let instant = now()
        for key in keys(account: account, address: address) {
            if let until = entries[key]?.lockedUntil, until > instant { return .locked(key, retryAfter: instant.duration(to: until)) }
        }
        return .allowed
    }

    /// Counts a failed login against both keys; returns the decision for the next attempt.
    @discardableResult
    public mutating func recordFailure(account: String, address: String) -> Decision {
        let instant = now()
        for key in keys(account: account, address: address) {
            var entry = entries[key] ?? Entry(lastFailure: instant)
            if let until = entry.lockedUntil, until <= instant { entry.lockedUntil = nil }
            if instant - entry.lastFailure > policy.forgetAfter { entry = Entry(lastFailure: instant) }
            entry.failures.removeAll { instant - $0 > policy.window }
            entry.failures.append(instant)
            entry.lastFailure = instant
            if entry.failures.count >= policy.maximumFailures && entry.lockedUntil == nil {
                entry.lockedUntil = instant + lockoutDuration(after: entry.lockouts)
                entry.lockouts += 1
                entry.failures.removeAll()
            }
            entries[key] = entry
        }
        if entries.count > policy.maximumKeys { prune(at: instant) }
        return check(account: account, address: address)
    }

    /// A good password: the account starts afresh. The address keeps its count.
    public mutating func recordSuccess(account: String, address: String) {
        entries[.account(Self.normalised(account))] = nil
    }

    /// The lock that follows `lockouts` earlier ones: first, doubled each time, capped.
    func lockoutDuration(after lockouts: Int) -> Duration {
        var duration = policy.firstLockout
        for _ in 0..<min(lockouts, 32) where duration < policy.longestLockout { duration *= 2 }
        return min(duration, policy.longestLockout)
    }

    private func keys(account: String, address: String) -> [Key] {
        [.account(Self.normalised(account)), .address(address)]
    }

    private static func normalised(_ account: String) -> String { String(account.trimmingWhitespace()).lowercased() }

    /// Drops forgotten keys, then (still too many) the unlocked ones that failed longest ago.
    private mutating func prune(at instant: ContinuousClock.Instant) {
        entries = entries.filter { instant - $0.value.lastFailure <= policy.forgetAfter }
        guard entries.count > policy.maximumKeys else { return }
        let unlocked = entries.filter { ($0.value.lockedUntil ?? instant) <= instant }.sorted { $0.value.lastFailure < $1.value.lastFailure }
        for (key, _) in unlocked.prefix(entries.count - policy.maximumKeys) { entries[key] = nil }
    }

    /// Keys remembered now (for tests and metrics).
    public var rememberedKeys: Int { entries.count }
}
