import FoundationEssentials

/// The `"monitoring"` section of `conclave.json` (docs/monitoring.md): where ApMon datagrams go,
/// how often, how much personal data they carry, and an optional plain-HTTP address for a local
/// Prometheus scraper.
///
/// ```json
/// "monitoring": {"destinations": ["monalisa.example.org:8884 secret"], "intervalSeconds": 30,
///                "privacy": "pseudonymous", "metricsListen": "127.0.0.1:9464"}
/// ```
public struct MonitoringConfiguration: Sendable, Equatable {
    /// How the personal fields (nickname, IP address, MAC address, meeting id in user records) leave the box.
    public enum Privacy: String, Sendable, CaseIterable {
        /// As they are (the Vibe seed's behaviour).
        case full
        /// A truncated keyed HMAC-SHA256 of each value, with a per-installation secret.
        case pseudonymous
        /// Left out.
        case off
    }

    /// One ApMon receiver: `host[:port] [password]`, port 8884 by default.
    public struct Destination: Sendable, Hashable, CustomStringConvertible {
        public var host: String
        public var port: UInt16
        public var password: String

        public static let defaultPort: UInt16 = 8884

        public init(host: String, port: UInt16 = Self.defaultPort, password: String = "") {
            self.host = host
            self.port = port
            self.password = password
        }

        /// Parses `host[:port] [password]`; an IPv6 literal is written in brackets (`[::1]:8884`).
        public init(parsing text: String) throws(ConfigurationFileError) {
            let words = text.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard (1...2).contains(words.count) else {
                throw .invalid("monitoring", field: "destinations", "expected \"host[:port] [password]\", got \"\(text)\"")
            }
            let endpoint = words[0]
            password = words.count == 2 ? words[1] : ""
            guard password.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f }), password.utf8.count <= 256 else {
                throw .invalid("monitoring", field: "destinations", "a password is printable ASCII without spaces (at most 256 bytes)")
            }
            var hostPart = Substring(endpoint)
            var portPart: Substring?
            if endpoint.hasPrefix("[") {
                guard let close = endpoint.firstIndex(of: "]") else {
                    throw .invalid("monitoring", field: "destinations", "unclosed '[' in \"\(endpoint)\"")
                }
                hostPart = endpoint[endpoint.index(after: endpoint.startIndex)..<close]
                let rest = endpoint[endpoint.index(after: close)...]
                if !rest.isEmpty {
                    guard rest.hasPrefix(":") else { throw .invalid("monitoring", field: "destinations", "expected ':port' after ']' in \"\(endpoint)\"") }
                    portPart = rest.dropFirst()
                }
            } else if let colon = endpoint.firstIndex(of: ":") {
                hostPart = endpoint[..<colon]
                portPart = endpoint[endpoint.index(after: colon)...]
            }
            let allowed = { (byte: UInt8) -> Bool in
                (byte >= 0x30 && byte <= 0x39) || (byte | 0x20 >= 0x61 && byte | 0x20 <= 0x7A) || byte == 0x2E || byte == 0x2D || byte == 0x3A
                    || byte == 0x5F
            }
            guard (1...253).contains(hostPart.utf8.count), hostPart.utf8.allSatisfy(allowed) else {
                throw .invalid("monitoring", field: "destinations", "\"\(hostPart)\" is not a host name or address")
            }
            host = String(hostPart)
            if let portPart {
                guard let value = UInt16(portPart), value > 0 else {
                    throw .invalid("monitoring", field: "destinations", "port must be 1…65535, got \"\(portPart)\"")
                }
                port = value
            } else {
                port = Self.defaultPort
            }
        }

        /// As written in the configuration (the password included).
        public var text: String {
            let endpoint = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
            return password.isEmpty ? endpoint : "\(endpoint) \(password)"
        }

        /// Without the password, for logs and status.
        public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    public var destinations: [Destination] = []
    public var intervalSeconds = 30
    public var privacy = Privacy.pseudonymous
    /// `address:port` of the plain-HTTP `/metrics` listener; nil: none (the API port serves it over mutual TLS).
    public var metricsListen: (host: String, port: UInt16)? {
        get { metricsListenText.flatMap(Self.splitHostPort) }
    }
    public var metricsListenText: String?

    public static let maximumDestinations = 16

    public init() {}

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.destinations == rhs.destinations && lhs.intervalSeconds == rhs.intervalSeconds && lhs.privacy == rhs.privacy
            && lhs.metricsListenText == rhs.metricsListenText
    }

    static let knownKeys: Set<String> = ["destinations", "intervalSeconds", "privacy", "metricsListen"]

    static func parse(_ value: JSONValue, source: String) throws(ConfigurationFileError) -> MonitoringConfiguration {
        guard case .object(let object) = value else { throw .invalid(source, field: "monitoring", "expected an object") }
        for key in object.keys.sorted() where !knownKeys.contains(key) {
            throw .invalid(source, field: "monitoring.\(key)", "unknown field")
        }
        var configuration = MonitoringConfiguration()
        switch object["destinations"] {
        case nil, .null?: break
        case .array(let items)?:
            guard items.count <= maximumDestinations else {
                throw .invalid(source, field: "monitoring.destinations", "at most \(maximumDestinations) destinations")
            }
            for item in items {
                guard case .string(let text) = item else {
                    throw .invalid(source, field: "monitoring.destinations", "expected strings \"host[:port] [password]\"")
                }
                do { configuration.destinations.append(try Destination(parsing: text)) } catch {
                    guard case .invalid(_, _, let reason) = error else { throw error }
                    throw .invalid(source, field: "monitoring.destinations", reason)
                }
            }
        default: throw .invalid(source, field: "monitoring.destinations", "expected an array of strings")
        }
        switch object["intervalSeconds"] {
        case nil, .null?: break
        case .number(let number)?:
            guard number == number.rounded(), let seconds = Int(exactly: number), (5...3600).contains(seconds) else {
                throw .invalid(source, field: "monitoring.intervalSeconds", "expected an integer in 5…3600, got \(number)")
            }
            configuration.intervalSeconds = seconds
        default: throw .invalid(source, field: "monitoring.intervalSeconds", "expected an integer")
        }
        switch object["privacy"] {
        case nil, .null?: break
        case .string(let text)?:
            guard let privacy = Privacy(rawValue: text) else {
                throw .invalid(source, field: "monitoring.privacy", "expected \"full\", \"pseudonymous\" or \"off\", got \"\(text)\"")
            }
            configuration.privacy = privacy
        default: throw .invalid(source, field: "monitoring.privacy", "expected \"full\", \"pseudonymous\" or \"off\"")
        }
        switch object["metricsListen"] {
        case nil, .null?: break
        case .string(let text)?:
            guard splitHostPort(text) != nil else {
                throw .invalid(source, field: "monitoring.metricsListen", "expected \"address:port\" (IPv6 in brackets), got \"\(text)\"")
            }
            configuration.metricsListenText = text
        default: throw .invalid(source, field: "monitoring.metricsListen", "expected \"address:port\"")
        }
        return configuration
    }

    /// The section as `parse` reads it back, for writers of `conclave.json` (console, command API).
    public var jsonValue: JSONValue {
        var object: [String: JSONValue] = [
            "destinations": .array(destinations.map { .string($0.text) }),
            "intervalSeconds": .number(Double(intervalSeconds)),
            "privacy": .string(privacy.rawValue),
        ]
        if let metricsListenText { object["metricsListen"] = .string(metricsListenText) }
        return .object(object)
    }

    /// `a.b.c.d:port` or `[v6]:port` with a numeric address.
    static func splitHostPort(_ text: String) -> (host: String, port: UInt16)? {
        let host: Substring, port: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            port = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = text[..<colon]
            port = text[text.index(after: colon)...]
            guard !host.contains(":") else { return nil }
        }
        guard !host.isEmpty, host.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2E || $0 == 0x3A || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x66) }),
            let value = UInt16(port), value > 0
        else { return nil }
        return (String(host), value)
    }
}
