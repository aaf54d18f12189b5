/// Typed views of the headers a UAS reads: URIs, name-addr (From/To/Contact/Record-Route), Via, CSeq.

/// `;name=value` parameters in order; names compare case-insensitively.
public struct SIPParameters: Sendable, Hashable {
    public var items: [(name: String, value: String?)] {
        get { zip(names, storedValues).map { ($0, $1) } }
        set {
            names = newValue.map(\.name)
            storedValues = newValue.map(\.value)
        }
    }
    private var names: [String] = []
    private var storedValues: [String?] = []

    public init() {}

    /// Parses `;a=b;c` (the text after the first `;`, or with it).
    init(parsing text: Substring) throws(SIPParseError) {
        guard !text.isEmpty else { return }
        for part in text.split(separator: ";", omittingEmptySubsequences: false).dropFirst(text.first == ";" ? 1 : 0) {
            let trimmed = part.trimmingSIPWhitespace()
            guard !trimmed.isEmpty else { throw .bad("empty parameter") }
            if let equals = trimmed.firstIndex(of: "=") {
                let name = String(trimmed[..<equals]).trimmingSIPWhitespace()
                guard !name.isEmpty else { throw .bad("parameter without a name") }
                names.append(name)
                storedValues.append(String(trimmed[trimmed.index(after: equals)...]).trimmingSIPWhitespace())
            } else {
                names.append(trimmed)
                storedValues.append(nil)
            }
        }
    }

    public subscript(name: String) -> String?? {
        let lower = name.lowercased()
        guard let index = names.firstIndex(where: { $0.lowercased() == lower }) else { return nil }
        return .some(storedValues[index])
    }

    public func contains(_ name: String) -> Bool { self[name] != nil }

    public mutating func set(_ name: String, _ value: String?) {
        let lower = name.lowercased()
        if let index = names.firstIndex(where: { $0.lowercased() == lower }) {
            storedValues[index] = value
        } else {
            names.append(name)
            storedValues.append(value)
        }
    }

    var serialized: String {
        zip(names, storedValues).map { name, value in value.map { ";\(name)=\($0)" } ?? ";\(name)" }.joined()
    }

    public static func == (lhs: SIPParameters, rhs: SIPParameters) -> Bool {
        lhs.names == rhs.names && lhs.storedValues == rhs.storedValues
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(names)
        hasher.combine(storedValues)
    }
}

/// A `sip:` or `sips:` URI (§19.1): `sip:user:password@host:port;params?headers`.
public struct SIPURI: Sendable, Hashable, CustomStringConvertible {
    public var isSecure: Bool
    public var user: String?
    public var host: String
    public var port: Int?
    public var parameters: SIPParameters
    public var headers: String?

    public init(isSecure: Bool = false, user: String?, host: String, port: Int? = nil, parameters: SIPParameters = SIPParameters()) {
        self.isSecure = isSecure
        self.user = user
        self.host = host
        self.port = port
        self.parameters = parameters
        self.headers = nil
    }

    public init(parsing text: String) throws(SIPParseError) {
        let lower = text.lowercased()
        let rest: Substring
        if lower.hasPrefix("sips:") {
            isSecure = true
            rest = text.dropFirst(5)
        } else if lower.hasPrefix("sip:") {
            isSecure = false
            rest = text.dropFirst(4)
        } else {
            throw SIPParseError(status: 416, "only sip: and sips: URIs are supported")
        }
        var main = rest
        if let question = main.firstIndex(of: "?") {
            headers = String(main[main.index(after: question)...])
            main = main[..<question]
        } else {
            headers = nil
        }
        var hostPart = main
        if let at = main.lastIndex(of: "@") {
            var userInfo = main[..<at]
            if let colon = userInfo.firstIndex(of: ":") { userInfo = userInfo[..<colon] }  // a password is ignored
            guard !userInfo.isEmpty else { throw .bad("empty user in URI") }
            user = SIPURI.percentDecoded(userInfo)
            hostPart = main[main.index(after: at)...]
        } else {
            user = nil
        }
        if let semicolon = hostPart.firstIndex(of: ";") {
            parameters = try SIPParameters(parsing: hostPart[semicolon...])
            hostPart = hostPart[..<semicolon]
        } else {
            parameters = SIPParameters()
        }
        (host, port) = try SIPURI.hostPort(hostPart)
    }

    /// `host[:port]`, an IPv6 reference in brackets.
    static func hostPort(_ text: Substring) throws(SIPParseError) -> (String, Int?) {
        var hostText = text
        var port: Int?
        if text.first == "[" {
            guard let close = text.firstIndex(of: "]") else { throw .bad("unterminated IPv6 reference") }
            hostText = text[...close]
            let after = text[text.index(after: close)...]
            if !after.isEmpty {
                guard after.first == ":" else { throw .bad("junk after IPv6 reference") }
                port = try portNumber(after.dropFirst())
            }
        } else if let colon = text.firstIndex(of: ":") {
            hostText = text[..<colon]
            port = try portNumber(text[text.index(after: colon)...])
        }
        guard !hostText.isEmpty,
            hostText.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == ":" || $0 == "[" || $0 == "]" }),
            hostText.allSatisfy(\.isASCII)
        else { throw .bad("malformed host") }
        return (String(hostText), port)
    }

    static func portNumber(_ text: Substring) throws(SIPParseError) -> Int {
        guard !text.isEmpty, text.count <= 5, text.allSatisfy({ $0.isASCII && $0.isNumber }), let port = Int(text),
            (1...65535).contains(port)
        else { throw .bad("malformed port") }
        return port
    }

    static func percentDecoded(_ text: Substring) -> String {
        var bytes: [UInt8] = []
        var utf8 = Array(text.utf8)[...]
        while let byte = utf8.popFirst() {
            if byte == UInt8(ascii: "%"), utf8.count >= 2,
                let value = UInt8(String(decoding: utf8.prefix(2), as: UTF8.self), radix: 16)
            {
                bytes.append(value)
                utf8 = utf8.dropFirst(2)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    public var description: String {
        var text = isSecure ? "sips:" : "sip:"
        if let user { text += user + "@" }
        text += host
        if let port { text += ":\(port)" }
        text += parameters.serialized
        if let headers { text += "?" + headers }
        return text
    }
}

/// `"Display" <uri>;params` or `uri;params` (§20.10, §20.20, §20.39): From, To, Contact, Record-Route.
public struct SIPNameAddress: Sendable, Hashable, CustomStringConvertible {
    public var displayName: String?
    public var uri: String
    public var parameters: SIPParameters

    public init(displayName: String? = nil, uri: String, parameters: SIPParameters = SIPParameters()) {
        self.displayName = displayName
        self.uri = uri
        self.parameters = parameters
    }

    public init(parsing text: String) throws(SIPParseError) {
        let trimmed = text.trimmingSIPWhitespace()
        if trimmed == "*" {  // Contact: * (REGISTER only, but parseable)
            displayName = nil
            uri = "*"
            parameters = SIPParameters()
            return
        }
        if let open = trimmed.firstIndex(of: "<") {
            guard let close = trimmed[open...].firstIndex(of: ">") else { throw .bad("unterminated <URI>") }
            var display = trimmed[..<open].trimmingSIPWhitespace()
            if display.hasPrefix("\"") {
                guard display.count >= 2, display.hasSuffix("\"") else { throw .bad("unterminated display name") }
                display = String(display.dropFirst().dropLast())
            }
            displayName = display.isEmpty ? nil : display
            uri = String(trimmed[trimmed.index(after: open)..<close])
            let after = trimmed[trimmed.index(after: close)...].trimmingSIPWhitespace()
            guard after.isEmpty || after.hasPrefix(";") else { throw .bad("junk after <URI>") }
            parameters = try SIPParameters(parsing: Substring(after))
        } else {
            // §20: without angle brackets, parameters after the URI belong to the header.
            displayName = nil
            if let semicolon = trimmed.firstIndex(of: ";") {
                uri = String(trimmed[..<semicolon])
                parameters = try SIPParameters(parsing: trimmed[semicolon...])
            } else {
                uri = trimmed
                parameters = SIPParameters()
            }
        }
        guard !uri.isEmpty, uri.contains(":") else { throw .bad("malformed URI in name-addr") }
    }

    public func parameter(_ name: String) -> String? { parameters[name] ?? nil }

    public var description: String {
        let display = displayName.map { "\"\($0)\" " } ?? ""
        return "\(display)<\(uri)>\(parameters.serialized)"
    }
}

/// One Via value (§20.42): `SIP/2.0/UDP host:port;branch=…;received=…;rport`.
public struct SIPVia: Sendable, Hashable, CustomStringConvertible {
    public var transport: String
    public var host: String
    public var port: Int?
    public var parameters: SIPParameters

    /// RFC 3261 branches start with this cookie; older ones need RFC 2543 matching, which we refuse.
    public static let magicCookie = "z9hG4bK"

    public init(transport: String, host: String, port: Int?, branch: String) {
        self.transport = transport
        self.host = host
        self.port = port
        parameters = SIPParameters()
        parameters.set("branch", branch)
    }

    public init(parsing text: String) throws(SIPParseError) {
        let trimmed = text.trimmingSIPWhitespace()
        guard let space = trimmed.firstIndex(where: { $0 == " " || $0 == "\t" }) else { throw .bad("malformed Via") }
        let protocolParts = trimmed[..<space].split(separator: "/").map { $0.trimmingSIPWhitespace() }
        guard protocolParts.count == 3, protocolParts[0].uppercased() == "SIP", protocolParts[1] == "2.0",
            !protocolParts[2].isEmpty
        else { throw .bad("malformed Via protocol") }
        transport = protocolParts[2].uppercased()
        var sentBy = Substring(trimmed[space...].trimmingSIPWhitespace())
        if let semicolon = sentBy.firstIndex(of: ";") {
            parameters = try SIPParameters(parsing: sentBy[semicolon...])
            sentBy = sentBy[..<semicolon]
        } else {
            parameters = SIPParameters()
        }
        (host, port) = try SIPURI.hostPort(Substring(sentBy.trimmingSIPWhitespace()))
    }

    public var branch: String? { parameters["branch"] ?? nil }

    /// The sent-by the transaction is keyed on (§17.2.3).
    public var sentBy: String { port.map { "\(host):\($0)" } ?? host }

    public var description: String { "SIP/2.0/\(transport) \(sentBy)\(parameters.serialized)" }
}

/// `CSeq: 314159 INVITE` (§20.16).
public struct SIPCSeq: Sendable, Hashable, CustomStringConvertible {
    public var sequence: UInt32
    public var method: SIPMethod

    public init(sequence: UInt32, method: SIPMethod) {
        self.sequence = sequence
        self.method = method
    }

    public init?(parsing text: String) {
        let parts = text.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard parts.count == 2, parts[0].count <= 10, parts[0].allSatisfy({ $0.isASCII && $0.isNumber }),
            let sequence = UInt32(parts[0]), sequence < 1 << 31, parts[1].utf8.allSatisfy(SIPMessage.isTokenByte)
        else { return nil }
        self.sequence = sequence
        method = SIPMethod(rawValue: String(parts[1]))
    }

    public var description: String { "\(sequence) \(method.rawValue)" }
}
