import FoundationEssentials

/// The command API's routes (docs/api/openapi.yaml is their specification; a unit test keeps the
/// two equal). Pure: a method and a path in, a route or the reason there is none out.
public enum CommandAPIRoute: Equatable, Sendable {
    case openAPI
    case status
    case securityGet, securityPut
    case ssoKeyGet, ssoKeyPut
    case monitoringGet, monitoringPut
    case metrics
    case meetingsList, meetingsCreate
    case meetingGet(String), meetingEdit(String), meetingStop(String)
    case participantsList(String), participantKick(meeting: String, leg: String)
    case userCreate, userGet(String), userErase(String), userPassword(String)

    /// Every route as the spec writes it: method (lowercase, as OpenAPI keys it) and path template.
    public static let table: [(method: String, template: String)] = [
        ("get", "/v1/openapi.yaml"),
        ("get", "/v1/status"),
        ("get", "/v1/system/security"), ("put", "/v1/system/security"),
        ("get", "/v1/system/sso-key"), ("put", "/v1/system/sso-key"),
        ("get", "/v1/system/monitoring"), ("put", "/v1/system/monitoring"),
        ("get", "/metrics"),
        ("get", "/v1/meetings"), ("post", "/v1/meetings"),
        ("get", "/v1/meetings/{id}"), ("patch", "/v1/meetings/{id}"), ("delete", "/v1/meetings/{id}"),
        ("get", "/v1/meetings/{id}/participants"), ("delete", "/v1/meetings/{id}/participants/{leg}"),
        ("post", "/v1/users"), ("get", "/v1/users/{email}"), ("delete", "/v1/users/{email}"),
        ("put", "/v1/users/{email}/password"),
    ]

    public enum Match: Equatable, Sendable {
        case route(CommandAPIRoute)
        case methodNotAllowed(allowed: [String])
        case notFound
    }

    /// `path` is the request target; a query string is ignored, segments are percent-decoded.
    public static func match(method: String, path target: String) -> Match {
        let path = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        guard path.hasPrefix("/") else { return .notFound }
        let rawSegments = path.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
        var segments: [String] = []
        for raw in rawSegments {
            guard let decoded = percentDecoded(raw), !decoded.isEmpty else { return .notFound }
            segments.append(decoded)
        }
        var allowed: [String] = []
        for (routeMethod, template) in table {
            let parts = template.dropFirst().split(separator: "/")
            guard parts.count == segments.count else { continue }
            var parameters: [String] = []
            var matches = true
            for (part, segment) in zip(parts, segments) {
                if part.hasPrefix("{") { parameters.append(segment) } else if part != segment { matches = false; break }
            }
            guard matches else { continue }
            guard routeMethod == method.lowercased() else {
                allowed.append(routeMethod.uppercased())
                continue
            }
            return .route(route(method: routeMethod, template: template, parameters: parameters))
        }
        return allowed.isEmpty ? .notFound : .methodNotAllowed(allowed: allowed)
    }

    private static func route(method: String, template: String, parameters p: [String]) -> CommandAPIRoute {
        switch (method, template) {
        case ("get", "/v1/openapi.yaml"): .openAPI
        case ("get", "/v1/status"): .status
        case ("get", "/v1/system/security"): .securityGet
        case ("put", "/v1/system/security"): .securityPut
        case ("get", "/v1/system/sso-key"): .ssoKeyGet
        case ("put", "/v1/system/sso-key"): .ssoKeyPut
        case ("get", "/v1/system/monitoring"): .monitoringGet
        case ("put", "/v1/system/monitoring"): .monitoringPut
        case ("get", "/metrics"): .metrics
        case ("get", "/v1/meetings"): .meetingsList
        case ("post", "/v1/meetings"): .meetingsCreate
        case ("get", "/v1/meetings/{id}"): .meetingGet(p[0])
        case ("patch", "/v1/meetings/{id}"): .meetingEdit(p[0])
        case ("delete", "/v1/meetings/{id}"): .meetingStop(p[0])
        case ("get", "/v1/meetings/{id}/participants"): .participantsList(p[0])
        case ("delete", "/v1/meetings/{id}/participants/{leg}"): .participantKick(meeting: p[0], leg: p[1])
        case ("post", "/v1/users"): .userCreate
        case ("get", "/v1/users/{email}"): .userGet(p[0])
        case ("delete", "/v1/users/{email}"): .userErase(p[0])
        case ("put", "/v1/users/{email}/password"): .userPassword(p[0])
        default: preconditionFailure("route table entry \(method) \(template) has no case")
        }
    }

    /// Whether the route changes state (and so is audited and takes a JSON body or none).
    public var isStateChanging: Bool {
        switch self {
        case .openAPI, .status, .securityGet, .ssoKeyGet, .monitoringGet, .metrics, .meetingsList, .meetingGet, .participantsList, .userGet: false
        default: true
        }
    }

    /// Whether the route reads a JSON request body.
    public var takesBody: Bool {
        switch self {
        case .securityPut, .ssoKeyPut, .monitoringPut, .meetingsCreate, .meetingEdit, .userCreate, .userPassword: true
        default: false
        }
    }

    /// RFC 3986 percent-decoding of one path segment; nil for a bad escape or bytes that are not UTF-8.
    static func percentDecoded(_ segment: Substring) -> String? {
        var bytes: [UInt8] = []
        var iterator = segment.utf8.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else { return nil }
                bytes.append(high << 4 | low)
            } else {
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
