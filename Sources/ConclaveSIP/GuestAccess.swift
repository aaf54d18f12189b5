/// Who may call into a meeting over SIP. Registered users' passwords are stored as scrypt hashes,
/// which SIP digest cannot use, so every SIP caller is a guest: refused when the meeting takes
/// registered users only, challenged when it has a passcode (the digest password is the passcode,
/// the digest user name only a display name), admitted otherwise. See docs/sip.md.
public struct SIPGuestAccess: Sendable {
    public enum Decision: Sendable, Hashable {
        case admit
        /// Answer 401 with these WWW-Authenticate headers (SHA-256 first, then MD5, RFC 8760 §2.4).
        case challenge([SIPHeaderField])
        case refuse(status: Int, reason: String, warning: String)
    }

    public let realm: String
    private var nonces: DigestNonceBook

    public init(realm: String, nonces: DigestNonceBook = DigestNonceBook()) {
        self.realm = realm
        self.nonces = nonces
    }

    /// Decides on one INVITE. `random` is 16 fresh random bytes for a nonce, used if a challenge
    /// is needed. Compares the response before it consumes the nonce count.
    public mutating func decide(
        invite: SIPMessage, guestsAllowed: Bool, passcode: String?, random: [UInt8], now: ContinuousClock.Instant
    ) -> Decision {
        guard guestsAllowed else {
            return .refuse(
                status: 403, reason: "Forbidden",
                warning: "this meeting takes registered users only, and SIP callers join as guests")
        }
        guard let passcode else { return .admit }
        guard let header = invite["Authorization"] else { return challenge(random: random, now: now, stale: false) }
        let credentials: DigestCredentials
        do throws(SIPParseError) {
            credentials = try DigestCredentials(parsing: header)
        } catch {
            return .refuse(status: 400, reason: "Bad Request", warning: "Authorization: \(error.reason)")
        }
        guard credentials.realm == realm else { return challenge(random: random, now: now, stale: false) }
        guard credentials.uri == invite.requestURI else {
            return .refuse(status: 400, reason: "Bad Request", warning: "the digest uri differs from the Request-URI")
        }
        let ha1 = DigestCredentials.ha1(username: credentials.username, realm: realm, password: passcode, algorithm: credentials.algorithm)
        guard credentials.isValid(method: invite.method ?? .invite, ha1: ha1) else {
            return .refuse(status: 403, reason: "Forbidden", warning: "wrong meeting passcode")
        }
        switch nonces.admit(credentials, now: now) {
        case .valid: return .admit
        case .stale: return challenge(random: random, now: now, stale: true)
        case .invalid: return challenge(random: random, now: now, stale: false)
        }
    }

    private mutating func challenge(random: [UInt8], now: ContinuousClock.Instant, stale: Bool) -> Decision {
        let nonce = nonces.issue(random: random, now: now)
        return .challenge(
            DigestAlgorithm.allCases.map { algorithm in
                SIPHeaderField(
                    "WWW-Authenticate", DigestChallenge(realm: realm, nonce: nonce, algorithm: algorithm, isStale: stale).headerValue)
            })
    }
}
