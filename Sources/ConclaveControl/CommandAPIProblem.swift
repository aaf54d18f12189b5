import ConclaveIdentity
import ConclaveSystem
import FoundationEssentials

/// An error answer of the command API: RFC 9457 problem details (`application/problem+json`).
/// `type` is `urn:conclave:problem:<code>` with the stable codes of ControlRefusal (and a few of
/// the API's own); `code` repeats it for scripts; `field` names the request field at fault.
public struct APIProblem: Error, Equatable, Sendable {
    public var status: Int
    public var code: String
    public var title: String
    public var detail: String
    public var field: String?
    public var retryAfterSeconds: Int?

    public init(status: Int, code: String, title: String, detail: String, field: String? = nil, retryAfterSeconds: Int? = nil) {
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.field = field
        self.retryAfterSeconds = retryAfterSeconds
    }

    public static let typePrefix = "urn:conclave:problem:"

    public var json: String {
        var object: [String: JSONValue] = [
            "type": .string(Self.typePrefix + code), "title": .string(title), "status": .number(Double(status)),
            "detail": .string(detail), "code": .string(code),
        ]
        if let field { object["field"] = .string(field) }
        return JSONText.encode(object)
    }

    // MARK: The API's own problems

    public static func invalid(field: String, _ reason: String) -> APIProblem {
        APIProblem(status: 400, code: "invalid-settings", title: "Invalid request field", detail: "\(field): \(reason)", field: field)
    }

    public static func malformed(_ reason: String) -> APIProblem {
        APIProblem(status: 400, code: "bad-message", title: "Malformed request", detail: reason)
    }

    public static let notFound = APIProblem(status: 404, code: "not-found", title: "Not found", detail: "no such resource (see /v1/openapi.yaml)")

    public static func methodNotAllowed(_ allowed: [String]) -> APIProblem {
        APIProblem(status: 405, code: "method-not-allowed", title: "Method not allowed", detail: "allowed: \(allowed.joined(separator: ", "))")
    }

    public static func payloadTooLarge(limit: Int) -> APIProblem {
        APIProblem(status: 413, code: "payload-too-large", title: "Request body too large", detail: "request bodies are limited to \(limit) bytes")
    }

    public static func unsupportedMediaType(_ got: String?) -> APIProblem {
        APIProblem(
            status: 415, code: "unsupported-media-type", title: "Unsupported media type",
            detail: "request bodies must be application/json, got \(got.map { "\"\($0)\"" } ?? "no Content-Type")")
    }

    public static func rateLimited(retryAfterSeconds: Int) -> APIProblem {
        APIProblem(
            status: 429, code: "rate-limited", title: "Too many requests",
            detail: "this client certificate sent too many requests; retry in \(retryAfterSeconds) s", retryAfterSeconds: retryAfterSeconds)
    }

    public static let requestTimeout = APIProblem(
        status: 408, code: "request-timeout", title: "Request timeout", detail: "the request did not arrive complete in time")

    public static func unavailable(_ reason: String) -> APIProblem {
        APIProblem(status: 503, code: "service-unavailable", title: "Service unavailable", detail: reason)
    }

    // MARK: Refusals of the control plane and the identity store

    public init(_ refusal: ControlRefusal) {
        let status: Int
        var field: String?
        var retry: Int?
        switch refusal {
        case .unknownMeeting, .meetingEnded: status = 404
        case .meetingExists, .meetingLocked, .meetingFull, .refusedBySecurityMode, .alreadyJoined: status = 409
        case .invalidSettings(let name, _):
            status = 400
            field = name
        case .rateLimited(let seconds):
            status = 429
            retry = seconds
        case .serviceUnavailable: status = 503
        case .badMessage, .notHello, .wrongPasscode, .badCredentials, .tokenInvalid, .guestsNotAllowed: status = 400
        }
        self.init(status: status, code: refusal.code, title: Self.title(of: status), detail: refusal.description, field: field, retryAfterSeconds: retry)
    }

    public init(_ error: IdentityError) {
        switch error {
        case .userExists: self.init(status: 409, code: "user-exists", title: Self.title(of: 409), detail: error.description)
        case .noSuchUser: self.init(status: 404, code: "unknown-user", title: Self.title(of: 404), detail: error.description)
        case .invalidEmail: self = .invalid(field: "email", error.description)
        case .invalidDisplayName: self = .invalid(field: "name", error.description)
        case .weakPassword: self = .invalid(field: "password", error.description)
        case .invalidField(let name, _): self = .invalid(field: name, error.description)
        case .storage: self = .unavailable(error.description)
        }
    }

    static func title(of status: Int) -> String {
        switch status {
        case 400: "Invalid request"
        case 404: "Not found"
        case 409: "Conflict"
        case 429: "Too many requests"
        case 503: "Service unavailable"
        default: "Error"
        }
    }
}

/// A JSON request body as an object whose fields are read one by one, each error naming its
/// field; `finish()` refuses fields nobody read (a typo would otherwise be silently ignored).
struct APIBody {
    private let object: [String: JSONValue]
    private var read: Set<String> = []

    init(_ bytes: [UInt8]) throws(APIProblem) {
        guard !bytes.isEmpty else { throw .malformed("a JSON object body is required") }
        let value: JSONValue
        do { value = try JSONDecoder().decode(JSONValue.self, from: Data(bytes)) } catch {
            throw .malformed("the body is not valid JSON")
        }
        guard case .object(let object) = value else { throw .malformed("the body must be a JSON object") }
        self.object = object
    }

    /// Whether the body has `key` (null counts as present).
    func has(_ key: String) -> Bool { object[key] != nil }

    mutating func string(_ key: String, required: Bool = false) throws(APIProblem) -> String? {
        read.insert(key)
        switch object[key] {
        case nil: if required { throw .invalid(field: key, "required") } else { return nil }
        case .string(let text)?: return text
        default: throw .invalid(field: key, "expected a string")
        }
    }

    /// A string, or null (returned as `.some(nil)`), or absent (`nil`).
    mutating func nullableString(_ key: String) throws(APIProblem) -> String?? {
        read.insert(key)
        switch object[key] {
        case nil: return nil
        case .null?: return .some(nil)
        case .string(let text)?: return .some(text)
        default: throw .invalid(field: key, "expected a string or null")
        }
    }

    mutating func strings(_ key: String, maximumCount: Int) throws(APIProblem) -> [String]? {
        read.insert(key)
        switch object[key] {
        case nil: return nil
        case .array(let items)?:
            guard items.count <= maximumCount else { throw .invalid(field: key, "at most \(maximumCount) items") }
            return try items.map { item throws(APIProblem) in
                guard case .string(let text) = item else { throw .invalid(field: key, "expected an array of strings") }
                return text
            }
        default: throw .invalid(field: key, "expected an array of strings")
        }
    }

    mutating func integer(_ key: String, in range: ClosedRange<Int>) throws(APIProblem) -> Int? {
        read.insert(key)
        switch object[key] {
        case nil: return nil
        case .number(let number)?:
            guard number == number.rounded(), let value = Int(exactly: number), range.contains(value) else {
                throw .invalid(field: key, "expected an integer in \(range.lowerBound)…\(range.upperBound)")
            }
            return value
        default: throw .invalid(field: key, "expected an integer")
        }
    }

    mutating func bool(_ key: String) throws(APIProblem) -> Bool? {
        read.insert(key)
        switch object[key] {
        case nil: return nil
        case .bool(let value)?: return value
        default: throw .invalid(field: key, "expected true or false")
        }
    }

    mutating func choice<T: RawRepresentable<String> & CaseIterable>(_ key: String, as type: T.Type, required: Bool = false) throws(APIProblem) -> T? {
        guard let text = try string(key, required: required) else { return nil }
        guard let value = T(rawValue: text) else {
            throw .invalid(field: key, "expected one of \(T.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))")
        }
        return value
    }

    func finish() throws(APIProblem) {
        for key in object.keys.sorted() where !read.contains(key) { throw .invalid(field: key, "unknown field") }
    }
}

/// Requests allowed per client certificate: a token bucket per SHA-256 fingerprint (`burst`
/// requests at once, `perSecond` after that). Confined to the control plane's event loop.
struct APIRateLimiter {
    var burst: Double = 60
    var perSecond: Double = 30
    private var buckets: [String: (tokens: Double, at: Double)] = [:]

    init(burst: Double = 60, perSecond: Double = 30) {
        self.burst = burst
        self.perSecond = perSecond
    }

    /// nil when the request may go on, else the seconds to wait.
    mutating func admit(_ client: String, now: Double) -> Int? {
        var bucket = buckets[client] ?? (burst, now)
        bucket.tokens = min(burst, bucket.tokens + (now - bucket.at) * perSecond)
        bucket.at = now
        defer {
            buckets[client] = bucket
            if buckets.count > 4096 { buckets = buckets.filter { now - $0.value.at < 60 } }  // forget idle clients
        }
        guard bucket.tokens >= 1 else { return max(1, Int(((1 - bucket.tokens) / perSecond).rounded(.up))) }
        bucket.tokens -= 1
        return nil
    }
}
