/// HTTP digest authentication as SIP uses it (RFC 3261 §22.4, RFC 7616, RFC 8760): challenges,
/// credentials parsing, response checking, and a nonce book that refuses replays and stale nonces.

public enum DigestAlgorithm: String, Sendable, Hashable, CaseIterable {
    case sha256 = "SHA-256"
    case md5 = "MD5"
}

/// `WWW-Authenticate: Digest realm="…", nonce="…", …`.
public struct DigestChallenge: Sendable, Hashable {
    public var realm: String
    public var nonce: String
    public var opaque: String?
    public var algorithm: DigestAlgorithm
    public var isStale: Bool

    public init(realm: String, nonce: String, opaque: String? = nil, algorithm: DigestAlgorithm, isStale: Bool = false) {
        self.realm = realm
        self.nonce = nonce
        self.opaque = opaque
        self.algorithm = algorithm
        self.isStale = isStale
    }

    /// The header value; qop is always `auth` (auth-int would hash bodies for no gain here).
    public var headerValue: String {
        var text = "Digest realm=\"\(realm)\", nonce=\"\(nonce)\", algorithm=\(algorithm.rawValue), qop=\"auth\""
        if let opaque { text += ", opaque=\"\(opaque)\"" }
        if isStale { text += ", stale=TRUE" }
        return text
    }
}

/// `Authorization: Digest username="…", realm="…", nonce="…", uri="…", response="…", …`.
public struct DigestCredentials: Sendable, Hashable {
    public var username: String
    public var realm: String
    public var nonce: String
    public var uri: String
    public var response: String
    public var algorithm: DigestAlgorithm
    public var cnonce: String?
    public var nonceCount: UInt32?
    public var qop: String?
    public var opaque: String?

    public init(parsing value: String) throws(SIPParseError) {
        let trimmed = value.trimmingSIPWhitespace()
        guard trimmed.lowercased().hasPrefix("digest "), trimmed.count < 4096 else {
            throw .bad("Authorization is not Digest")
        }
        var fields: [String: String] = [:]
        for item in SIPMessage.splitList(String(trimmed.dropFirst(7))) {
            guard let equals = item.firstIndex(of: "=") else { throw .bad("malformed Authorization parameter") }
            let name = item[..<equals].trimmingSIPWhitespace().lowercased()
            var fieldValue = item[item.index(after: equals)...].trimmingSIPWhitespace()
            if fieldValue.hasPrefix("\"") {
                guard fieldValue.count >= 2, fieldValue.hasSuffix("\"") else { throw .bad("unterminated quoted string") }
                fieldValue = String(fieldValue.dropFirst().dropLast()).replacing("\\\"", with: "\"").replacing("\\\\", with: "\\")
            }
            guard fields[name] == nil else { throw .bad("repeated Authorization parameter \(name)") }
            fields[name] = fieldValue
        }
        guard let username = fields["username"], let realm = fields["realm"], let nonce = fields["nonce"],
            let uri = fields["uri"], let response = fields["response"]
        else { throw .bad("Authorization lacks username, realm, nonce, uri or response") }
        self.username = username
        self.realm = realm
        self.nonce = nonce
        self.uri = uri
        self.response = response.lowercased()
        if let name = fields["algorithm"] {
            guard let algorithm = DigestAlgorithm.allCases.first(where: { $0.rawValue.lowercased() == name.lowercased() }) else {
                throw SIPParseError(status: 400, "digest algorithm \(name) is not supported")
            }
            self.algorithm = algorithm
        } else {
            algorithm = .md5  // RFC 2617 §3.2.1: absent means MD5
        }
        qop = fields["qop"]
        cnonce = fields["cnonce"]
        opaque = fields["opaque"]
        if let count = fields["nc"] {
            guard count.count == 8, let parsed = UInt32(count, radix: 16) else { throw .bad("malformed nc") }
            nonceCount = parsed
        } else {
            nonceCount = nil
        }
        if let qop {
            guard qop == "auth" else { throw .bad("only qop=auth is supported") }
            guard cnonce != nil, nonceCount != nil else { throw .bad("qop=auth needs cnonce and nc") }
        }
    }
}

/// Nonces we issued, each valid for `lifetime` and each nonce count usable once, so a captured
/// Authorization cannot be replayed. Bounded: the oldest nonce is forgotten first.
public struct DigestNonceBook: Sendable {
    public enum Verdict: Sendable, Hashable {
        case valid
        /// Issued by us but expired: challenge again with stale=TRUE (the password was right).
        case stale
        /// Unknown, or its nonce count was already used: an attacker or a confused client.
        case invalid
    }

    private struct Entry: Sendable {
        var issued: ContinuousClock.Instant
        var highestCount: UInt32
        var usedWithoutCount: Bool
    }

    private var entries: [String: Entry] = [:]
    private var order: [String] = []
    public let lifetime: Duration
    public let capacity: Int

    public init(lifetime: Duration = .seconds(300), capacity: Int = 4096) {
        self.lifetime = lifetime
        self.capacity = capacity
    }

    /// Records `random` (16+ bytes from SecureRandom) as a nonce issued at `now`, and returns its text.
    public mutating func issue(random: [UInt8], now: ContinuousClock.Instant) -> String {
        precondition(random.count >= 16, "a nonce needs at least 128 random bits")
        let nonce = Base64.encode(random)
        if order.count >= capacity {
            entries[order.removeFirst()] = nil
        }
        entries[nonce] = Entry(issued: now, highestCount: 0, usedWithoutCount: false)
        order.append(nonce)
        return nonce
    }

    /// Checks and consumes `credentials`' nonce and count. Call only after the response matched.
    public mutating func admit(_ credentials: DigestCredentials, now: ContinuousClock.Instant) -> Verdict {
        guard var entry = entries[credentials.nonce] else { return .invalid }
        guard now - entry.issued <= lifetime else { return .stale }
        if let count = credentials.nonceCount {
            guard count > entry.highestCount else { return .invalid }
            entry.highestCount = count
        } else {
            guard !entry.usedWithoutCount else { return .invalid }
            entry.usedWithoutCount = true
        }
        entries[credentials.nonce] = entry
        return .valid
    }

    public var count: Int { entries.count }
}
