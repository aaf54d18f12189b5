/// SIP messages (RFC 3261 §7): start line, headers and body, parsed from untrusted bytes and
/// serialized back. Pure values; no I/O.

/// Limits a parser applies before it trusts anything in a message.
public struct SIPLimits: Sendable, Hashable {
    /// Whole message, start line to the end of the body. Larger → 513 Message Too Large.
    public var maximumMessageSize: Int
    /// Header fields after unfolding. More → 400.
    public var maximumHeaderCount: Int
    /// One header line (after unfolding). Longer → 400.
    public var maximumHeaderLength: Int

    public init(maximumMessageSize: Int = 65_535, maximumHeaderCount: Int = 100, maximumHeaderLength: Int = 8_192) {
        self.maximumMessageSize = maximumMessageSize
        self.maximumHeaderCount = maximumHeaderCount
        self.maximumHeaderLength = maximumHeaderLength
    }
}

/// Why a message was refused, with the status a server answers it with (when it can answer: a
/// request whose Via, From, To, Call-ID and CSeq were readable).
public struct SIPParseError: Error, Sendable, Hashable, CustomStringConvertible {
    public let status: Int
    public let reason: String

    public init(status: Int, _ reason: String) {
        self.status = status
        self.reason = reason
    }

    public var description: String { "\(status) \(reason)" }

    static func bad(_ reason: String) -> SIPParseError { SIPParseError(status: 400, reason) }
}

/// A method token (RFC 3261 §25.1 `Method`). Unknown methods parse; the UAS answers them 501.
public struct SIPMethod: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    public static let invite = SIPMethod(rawValue: "INVITE")
    public static let ack = SIPMethod(rawValue: "ACK")
    public static let bye = SIPMethod(rawValue: "BYE")
    public static let cancel = SIPMethod(rawValue: "CANCEL")
    public static let options = SIPMethod(rawValue: "OPTIONS")
    public static let register = SIPMethod(rawValue: "REGISTER")
    public static let update = SIPMethod(rawValue: "UPDATE")
    public static let info = SIPMethod(rawValue: "INFO")

    /// Methods this server implements (the `Allow` header of its answers).
    public static let implemented: [SIPMethod] = [.invite, .ack, .bye, .cancel, .options]

    public var description: String { rawValue }
}

public enum SIPStartLine: Sendable, Hashable {
    case request(method: SIPMethod, uri: String)
    case response(status: Int, reason: String)
}

/// One header field as received (name in its canonical long form) or to be sent.
public struct SIPHeaderField: Sendable, Hashable {
    public var name: String
    public var value: String

    public init(_ name: String, _ value: String) {
        self.name = SIPHeaderField.canonicalName(name)
        self.value = value
    }

    /// RFC 3261 §7.3.3 compact forms and the ones registered since (RFC 3265, 3515, 3841, 4028).
    static let compactForms: [Character: String] = [
        "i": "Call-ID", "m": "Contact", "e": "Content-Encoding", "l": "Content-Length", "c": "Content-Type",
        "f": "From", "s": "Subject", "k": "Supported", "t": "To", "v": "Via", "o": "Event", "r": "Refer-To",
        "u": "Allow-Events", "x": "Session-Expires", "a": "Accept-Contact", "j": "Reject-Contact",
        "d": "Request-Disposition", "b": "Referred-By",
    ]

    /// Spellings RFC 3261 uses where simple capitalisation would differ.
    static let irregularNames: [String: String] = [
        "call-id": "Call-ID", "cseq": "CSeq", "www-authenticate": "WWW-Authenticate", "mime-version": "MIME-Version",
    ]

    /// Names compare case-insensitively (§7.3.1); keep one spelling so lookups are plain equality.
    public static func canonicalName(_ name: String) -> String {
        if name.count == 1, let long = compactForms[Character(name.lowercased())] { return long }
        let lower = name.lowercased()
        if let irregular = irregularNames[lower] { return irregular }
        return lower.split(separator: "-", omittingEmptySubsequences: false)
            .map { $0.prefix(1).uppercased() + $0.dropFirst() }
            .joined(separator: "-")
    }
}

public struct SIPMessage: Sendable, Hashable {
    public var startLine: SIPStartLine
    public var headers: [SIPHeaderField]
    public var body: [UInt8]

    public init(startLine: SIPStartLine, headers: [SIPHeaderField], body: [UInt8] = []) {
        self.startLine = startLine
        self.headers = headers
        self.body = body
    }

    public var method: SIPMethod? {
        if case .request(let method, _) = startLine { return method }
        return nil
    }

    public var requestURI: String? {
        if case .request(_, let uri) = startLine { return uri }
        return nil
    }

    public var status: Int? {
        if case .response(let status, _) = startLine { return status }
        return nil
    }

    /// The first value of `name` (any spelling, compact or long).
    public subscript(name: String) -> String? {
        let canonical = SIPHeaderField.canonicalName(name)
        return headers.first { $0.name == canonical }?.value
    }

    /// Every value of `name`, with comma-separated lists split (§7.3.1), in order.
    public func values(_ name: String) -> [String] {
        let canonical = SIPHeaderField.canonicalName(name)
        return headers.filter { $0.name == canonical }.flatMap { SIPMessage.splitList($0.value) }
    }

    public mutating func setHeader(_ name: String, _ value: String) {
        let canonical = SIPHeaderField.canonicalName(name)
        if let index = headers.firstIndex(where: { $0.name == canonical }) {
            headers[index].value = value
            headers = headers.enumerated().filter { $0.offset <= index || $0.element.name != canonical }.map(\.element)
        } else {
            headers.append(SIPHeaderField(canonical, value))
        }
    }

    /// Splits a header value at commas outside quoted strings and `<…>` (URIs may hold commas).
    static func splitList(_ value: String) -> [String] {
        var parts: [String] = []
        var current = ""
        var quoted = false
        var escaped = false
        var angle = false
        for character in value {
            if escaped {
                escaped = false
            } else if quoted && character == "\\" {
                escaped = true
            } else if character == "\"" {
                quoted.toggle()
            } else if !quoted && character == "<" {
                angle = true
            } else if !quoted && character == ">" {
                angle = false
            } else if !quoted && !angle && character == "," {
                parts.append(current.trimmingSIPWhitespace())
                current = ""
                continue
            }
            current.append(character)
        }
        let last = current.trimmingSIPWhitespace()
        if !last.isEmpty || !parts.isEmpty { parts.append(last) }
        return parts.filter { !$0.isEmpty }
    }
}

// MARK: - Parsing

extension SIPMessage {
    /// Parses one whole message (a UDP datagram, or a frame cut by `SIPStreamFramer`). A body
    /// longer than Content-Length is cut to it; a shorter one is refused. Without Content-Length
    /// the body runs to the end (allowed over UDP only, §18.3; the framer requires it).
    public init(parsing bytes: some Collection<UInt8>, limits: SIPLimits = SIPLimits()) throws(SIPParseError) {
        let bytes = Array(bytes)
        guard bytes.count <= limits.maximumMessageSize else {
            throw SIPParseError(status: 513, "message larger than \(limits.maximumMessageSize) bytes")
        }
        var start = 0
        // §7.5: CRLFs before the start line are ignored (keep-alives over streams).
        while start + 1 < bytes.count, bytes[start] == 0x0D, bytes[start + 1] == 0x0A { start += 2 }
        guard let headerEnd = SIPMessage.endOfHeaders(bytes, from: start) else {
            throw .bad("no empty line after the headers")
        }
        let lines = try SIPMessage.lines(bytes[start..<headerEnd.headers])
        guard let first = lines.first else { throw .bad("empty message") }
        let startLine = try SIPMessage.parseStartLine(first)
        var headers: [SIPHeaderField] = []
        for line in lines.dropFirst() {
            if line.first == " " || line.first == "\t" {
                // §7.3.1 folding: the continuation joins the previous value with one space.
                guard let last = headers.indices.last else { throw .bad("continuation line before any header") }
                let continuation = line.trimmingSIPWhitespace()
                if headers[last].value.isEmpty {
                    headers[last].value = continuation
                } else if !continuation.isEmpty {
                    headers[last].value += " " + continuation
                }
                guard headers[last].value.utf8.count <= limits.maximumHeaderLength else {
                    throw .bad("header \(headers[last].name) longer than \(limits.maximumHeaderLength) bytes")
                }
                continue
            }
            guard let colon = line.firstIndex(of: ":") else { throw .bad("header line without a colon") }
            let name = String(line[..<colon]).trimmingSIPWhitespace()
            guard !name.isEmpty, name.utf8.allSatisfy(SIPMessage.isTokenByte) else {
                throw .bad("malformed header name")
            }
            guard line.utf8.count <= limits.maximumHeaderLength else {
                throw .bad("header \(name) longer than \(limits.maximumHeaderLength) bytes")
            }
            headers.append(SIPHeaderField(name, String(line[line.index(after: colon)...]).trimmingSIPWhitespace()))
            guard headers.count <= limits.maximumHeaderCount else {
                throw .bad("more than \(limits.maximumHeaderCount) header fields")
            }
        }
        var body = Array(bytes[headerEnd.body...])
        let lengths = headers.filter { $0.name == "Content-Length" }.map(\.value)
        if let declared = lengths.first {
            guard lengths.allSatisfy({ $0 == declared }) else { throw .bad("conflicting Content-Length headers") }
            guard let length = SIPMessage.contentLength(declared) else { throw .bad("Content-Length is not a number") }
            guard length <= body.count else {
                throw .bad("Content-Length \(length) exceeds the \(body.count) bytes received")
            }
            body.removeLast(body.count - length)
        }
        self.init(startLine: startLine, headers: headers, body: body)
        if case .request(let method, _) = startLine {
            try validateRequest(method: method)
        }
    }

    /// §8.2.1 and §20: the headers every request must carry, each readable, so an answer can be built.
    private func validateRequest(method: SIPMethod) throws(SIPParseError) {
        for name in ["Via", "From", "To", "Call-ID", "CSeq"] where self[name] == nil {
            throw .bad("missing \(name) header")
        }
        guard let cseq = SIPCSeq(parsing: self["CSeq"]!) else { throw .bad("malformed CSeq") }
        guard cseq.method == method else { throw .bad("CSeq method \(cseq.method) differs from \(method)") }
        guard (try? SIPVia(parsing: values("Via")[0])) != nil else { throw .bad("malformed top Via") }
        guard (try? SIPNameAddress(parsing: self["From"]!)) != nil else { throw .bad("malformed From") }
        guard (try? SIPNameAddress(parsing: self["To"]!)) != nil else { throw .bad("malformed To") }
        if let forwards = self["Max-Forwards"] {
            guard let hops = Int(forwards), hops >= 0, hops <= 255 else { throw .bad("malformed Max-Forwards") }
        }
    }

    static func contentLength(_ value: String) -> Int? {
        guard !value.isEmpty, value.count <= 9, value.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Int(value)
    }

    /// Offsets of the CRLF CRLF that ends the headers: where the header block ends and the body starts.
    static func endOfHeaders(_ bytes: [UInt8], from start: Int) -> (headers: Int, body: Int)? {
        var index = start
        while index + 3 < bytes.count {
            if bytes[index] == 0x0D && bytes[index + 1] == 0x0A && bytes[index + 2] == 0x0D && bytes[index + 3] == 0x0A {
                return (index, index + 4)
            }
            index += 1
        }
        return nil
    }

    /// Header lines split at CRLF (a bare LF is accepted too, as RFC 3261 §7.5 suggests tolerance).
    static func lines(_ bytes: ArraySlice<UInt8>) throws(SIPParseError) -> [String] {
        var lines: [String] = []
        var current: [UInt8] = []
        for byte in bytes {
            if byte == 0x0A {
                if current.last == 0x0D { current.removeLast() }
                lines.append(try text(current))
                current = []
            } else if byte == 0 {
                throw .bad("NUL byte in the headers")
            } else {
                current.append(byte)
            }
        }
        lines.append(try text(current))
        return lines
    }

    private static func text(_ bytes: [UInt8]) throws(SIPParseError) -> String {
        guard let string = String(validating: bytes, as: UTF8.self) else { throw .bad("headers are not UTF-8") }
        guard !string.contains("\r") else { throw .bad("bare CR in the headers") }
        return string
    }

    static func parseStartLine(_ line: String) throws(SIPParseError) -> SIPStartLine {
        let parts = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty else { throw .bad("malformed start line") }
        if parts[0].hasPrefix("SIP/") {
            guard parts[0] == "SIP/2.0" else { throw SIPParseError(status: 505, "only SIP/2.0 is supported") }
            guard parts[1].count == 3, let status = Int(parts[1]), (100...699).contains(status) else {
                throw .bad("malformed status code")
            }
            return .response(status: status, reason: String(parts[2]))
        }
        guard parts[0].utf8.allSatisfy(isTokenByte) else { throw .bad("malformed method") }
        guard parts[2].hasPrefix("SIP/") else { throw .bad("malformed start line") }
        guard parts[2] == "SIP/2.0" else { throw SIPParseError(status: 505, "only SIP/2.0 is supported") }
        guard !parts[1].contains(where: { $0 == " " || $0 == "\t" }), parts[1].contains(":") else {
            throw .bad("malformed Request-URI")
        }
        return .request(method: SIPMethod(rawValue: String(parts[0])), uri: String(parts[1]))
    }

    /// RFC 3261 §25.1 `token`.
    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: return true
        case UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "!"), UInt8(ascii: "%"), UInt8(ascii: "*"),
            UInt8(ascii: "_"), UInt8(ascii: "+"), UInt8(ascii: "`"), UInt8(ascii: "'"), UInt8(ascii: "~"):
            return true
        default: return false
        }
    }
}

// MARK: - Serializing

extension SIPMessage {
    /// The wire form, with Content-Length always set to the body's length (required over streams).
    public func serialized() -> [UInt8] {
        var text: String
        switch startLine {
        case .request(let method, let uri): text = "\(method.rawValue) \(uri) SIP/2.0\r\n"
        case .response(let status, let reason): text = "SIP/2.0 \(status) \(reason)\r\n"
        }
        for field in headers where field.name != "Content-Length" {
            text += "\(field.name): \(field.value)\r\n"
        }
        text += "Content-Length: \(body.count)\r\n\r\n"
        return Array(text.utf8) + body
    }

    /// A response to `request` (§8.2.6): Via, From, Call-ID and CSeq copied, To copied with
    /// `toTag` added when it has none, Record-Route copied for dialog-creating answers (§12.1.1).
    public static func response(
        to request: SIPMessage, status: Int, reason: String, toTag: String? = nil, extraHeaders: [SIPHeaderField] = [],
        body: [UInt8] = []
    ) -> SIPMessage {
        var headers: [SIPHeaderField] = []
        for field in request.headers where field.name == "Via" { headers.append(field) }
        if let from = request["From"] { headers.append(SIPHeaderField("From", from)) }
        if var to = request["To"] {
            if let toTag, (try? SIPNameAddress(parsing: to))?.parameter("tag") == nil, status != 100 {
                to += ";tag=\(toTag)"
            }
            headers.append(SIPHeaderField("To", to))
        }
        if let callID = request["Call-ID"] { headers.append(SIPHeaderField("Call-ID", callID)) }
        if let cseq = request["CSeq"] { headers.append(SIPHeaderField("CSeq", cseq)) }
        if status > 100 && status < 300 {
            for field in request.headers where field.name == "Record-Route" { headers.append(field) }
        }
        headers += extraHeaders
        return SIPMessage(startLine: .response(status: status, reason: reason), headers: headers, body: body)
    }
}

// MARK: - Stream framing

/// Cuts messages out of a TCP or TLS byte stream (§18.3): headers up to CRLF CRLF, then exactly
/// Content-Length bytes, which streams must carry.
public struct SIPStreamFramer: Sendable {
    private var buffer: [UInt8] = []
    public let limits: SIPLimits

    public init(limits: SIPLimits = SIPLimits()) { self.limits = limits }

    public mutating func append(_ bytes: some Collection<UInt8>) { buffer.append(contentsOf: bytes) }

    /// Bytes received and not yet cut into a message (after a framing error: the bad message).
    public var pendingBytes: [UInt8] { buffer }

    /// The next whole message's bytes, nil when more are needed. A framing error is fatal for the
    /// connection: nothing after it can be trusted to start a message.
    public mutating func nextMessage() throws(SIPParseError) -> [UInt8]? {
        var start = 0
        while start + 1 < buffer.count, buffer[start] == 0x0D, buffer[start + 1] == 0x0A { start += 2 }
        if start > 0 { buffer.removeFirst(start) }
        guard let end = SIPMessage.endOfHeaders(buffer, from: 0) else {
            guard buffer.count <= limits.maximumMessageSize else {
                throw SIPParseError(status: 513, "headers larger than \(limits.maximumMessageSize) bytes")
            }
            return nil
        }
        let lines = try SIPMessage.lines(buffer[..<end.headers])
        let lengths = lines.dropFirst().compactMap { line -> String? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            let name = SIPHeaderField.canonicalName(String(line[..<colon]).trimmingSIPWhitespace())
            return name == "Content-Length" ? String(line[line.index(after: colon)...]).trimmingSIPWhitespace() : nil
        }
        guard let declared = lengths.first else { throw .bad("missing Content-Length on a stream transport") }
        guard lengths.allSatisfy({ $0 == declared }), let length = SIPMessage.contentLength(declared) else {
            throw .bad("malformed Content-Length")
        }
        guard end.body + length <= limits.maximumMessageSize else {
            throw SIPParseError(status: 513, "message larger than \(limits.maximumMessageSize) bytes")
        }
        guard buffer.count >= end.body + length else { return nil }
        let message = Array(buffer[..<(end.body + length)])
        buffer.removeFirst(end.body + length)
        return message
    }
}

extension StringProtocol {
    /// Without leading and trailing spaces and tabs (SIP's LWS once unfolded).
    func trimmingSIPWhitespace() -> String {
        var slice = Substring(self)
        while let first = slice.first, first == " " || first == "\t" { slice = slice.dropFirst() }
        while let last = slice.last, last == " " || last == "\t" { slice = slice.dropLast() }
        return String(slice)
    }
}
