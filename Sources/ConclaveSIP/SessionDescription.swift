/// SDP (RFC 8866) parsed from untrusted bytes and serialized back: the session and media lines an
/// offer/answer exchange (RFC 3264) needs. Unknown lines and attributes are kept, not interpreted.

public struct SDPError: Error, Sendable, Hashable, CustomStringConvertible {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// `c=IN IP4 192.0.2.1` (RFC 8866 §5.7).
public struct SDPConnection: Sendable, Hashable {
    public var addressType: String  // IP4 or IP6
    public var address: String

    public init(addressType: String, address: String) {
        self.addressType = addressType
        self.address = address
    }

    init(parsing value: Substring) throws(SDPError) {
        let parts = value.split(separator: " ")
        guard parts.count == 3, parts[0] == "IN", parts[1] == "IP4" || parts[1] == "IP6", !parts[2].isEmpty else {
            throw SDPError("malformed c= line")
        }
        // A multicast TTL/count suffix is not ours to serve.
        guard !parts[2].contains("/") else { throw SDPError("multicast connection addresses are not supported") }
        addressType = String(parts[1])
        address = String(parts[2])
    }

    var serialized: String { "IN \(addressType) \(address)" }
}

/// `o=username sess-id sess-version IN IP4 address` (§5.2).
public struct SDPOrigin: Sendable, Hashable {
    public var username: String
    public var sessionID: String
    public var sessionVersion: UInt64
    public var addressType: String
    public var address: String

    public init(username: String, sessionID: String, sessionVersion: UInt64, addressType: String, address: String) {
        self.username = username
        self.sessionID = sessionID
        self.sessionVersion = sessionVersion
        self.addressType = addressType
        self.address = address
    }

    init(parsing value: Substring) throws(SDPError) {
        let parts = value.split(separator: " ")
        guard parts.count == 6, parts[3] == "IN", let version = UInt64(parts[2]), parts[1].allSatisfy(\.isNumber) else {
            throw SDPError("malformed o= line")
        }
        username = String(parts[0])
        sessionID = String(parts[1])
        sessionVersion = version
        addressType = String(parts[4])
        address = String(parts[5])
    }

    var serialized: String { "\(username) \(sessionID) \(sessionVersion) IN \(addressType) \(address)" }
}

/// `a=name` or `a=name:value`.
public struct SDPAttribute: Sendable, Hashable {
    public var name: String
    public var value: String?

    public init(_ name: String, _ value: String? = nil) {
        self.name = name
        self.value = value
    }

    var serialized: String { value.map { "\(name):\($0)" } ?? name }
}

/// RFC 3264 §5.1 / RFC 8866 §6.7: who sends. Absent means sendrecv.
public enum SDPDirection: String, Sendable, Hashable, CaseIterable {
    case sendrecv, sendonly, recvonly, inactive

    /// The direction an answer takes to an offer in this direction (§6.1).
    public var answered: SDPDirection {
        switch self {
        case .sendrecv: .sendrecv
        case .sendonly: .recvonly
        case .recvonly: .sendonly
        case .inactive: .inactive
        }
    }
}

/// One `m=` section with its lines.
public struct SDPMedia: Sendable, Hashable {
    public var type: String  // audio, video, …
    public var port: Int
    public var portCount: Int?
    public var transport: String  // RTP/AVP, RTP/SAVP, …
    public var formats: [String]
    public var connection: SDPConnection?
    public var bandwidths: [String]
    public var attributes: [SDPAttribute]

    public init(
        type: String, port: Int, transport: String, formats: [String], connection: SDPConnection? = nil,
        attributes: [SDPAttribute] = []
    ) {
        self.type = type
        self.port = port
        self.portCount = nil
        self.transport = transport
        self.formats = formats
        self.connection = connection
        self.bandwidths = []
        self.attributes = attributes
    }

    init(parsing value: Substring) throws(SDPError) {
        let parts = value.split(separator: " ")
        guard parts.count >= 4 else { throw SDPError("malformed m= line") }
        type = String(parts[0])
        let portParts = parts[1].split(separator: "/", omittingEmptySubsequences: false)
        guard let port = Int(portParts[0]), (0...65535).contains(port), portParts[0].allSatisfy(\.isNumber) else {
            throw SDPError("malformed m= port")
        }
        self.port = port
        if portParts.count == 2 {
            guard let count = Int(portParts[1]), count >= 1, count <= 65535 else { throw SDPError("malformed m= port count") }
            portCount = count
        } else if portParts.count > 2 {
            throw SDPError("malformed m= port")
        } else {
            portCount = nil
        }
        transport = String(parts[2])
        formats = parts[3...].map(String.init)
        connection = nil
        bandwidths = []
        attributes = []
    }

    public func attributes(named name: String) -> [String] {
        attributes.filter { $0.name == name }.map { $0.value ?? "" }
    }

    public func hasAttribute(_ name: String) -> Bool { attributes.contains { $0.name == name } }

    public var direction: SDPDirection {
        attributes.lazy.compactMap { SDPDirection(rawValue: $0.name) }.first ?? .sendrecv
    }

    var serialized: String {
        var text = "m=\(type) \(port)\(portCount.map { "/\($0)" } ?? "") \(transport) \(formats.joined(separator: " "))\r\n"
        if let connection { text += "c=\(connection.serialized)\r\n" }
        for bandwidth in bandwidths { text += "b=\(bandwidth)\r\n" }
        for attribute in attributes { text += "a=\(attribute.serialized)\r\n" }
        return text
    }
}

public struct SessionDescription: Sendable, Hashable {
    public var origin: SDPOrigin
    public var sessionName: String
    public var connection: SDPConnection?
    public var bandwidths: [String]
    public var timing: String
    public var attributes: [SDPAttribute]
    public var media: [SDPMedia]

    /// Bodies larger than this are refused before parsing (an SDP for a few streams is ~1 kB).
    public static let maximumSize = 16_384
    public static let maximumMediaCount = 16
    public static let maximumLineCount = 512

    public init(
        origin: SDPOrigin, sessionName: String = "-", connection: SDPConnection? = nil, attributes: [SDPAttribute] = [],
        media: [SDPMedia]
    ) {
        self.origin = origin
        self.sessionName = sessionName
        self.connection = connection
        self.bandwidths = []
        self.timing = "0 0"
        self.attributes = attributes
        self.media = media
    }

    /// Parses a body. Lines are `x=value` in RFC 8866 §5's order for the ones we read (v, o, s,
    /// then c, b, t before the first m=); other session lines (i, u, e, p, z, k, r) are skipped.
    public init(parsing bytes: some Collection<UInt8>) throws(SDPError) {
        guard bytes.count <= SessionDescription.maximumSize else {
            throw SDPError("SDP larger than \(SessionDescription.maximumSize) bytes")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else { throw SDPError("SDP is not UTF-8") }
        let lines = text.split(omittingEmptySubsequences: true, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
            .map { $0.hasSuffix("\r") ? $0.dropLast() : $0 }
            .filter { !$0.isEmpty }
        guard lines.count <= SessionDescription.maximumLineCount else { throw SDPError("too many SDP lines") }
        guard lines.first == "v=0" else { throw SDPError("SDP must start with v=0") }
        var origin: SDPOrigin?
        var sessionName: String?
        var connection: SDPConnection?
        var bandwidths: [String] = []
        var timing: String?
        var attributes: [SDPAttribute] = []
        var media: [SDPMedia] = []
        for line in lines.dropFirst() {
            guard line.count >= 2, line[line.index(after: line.startIndex)] == "=" else {
                throw SDPError("malformed SDP line")
            }
            let type = line.first!
            let value = line.dropFirst(2)
            // RFC 8866 §9: values never hold NUL, CR or LF (a bare CR would not survive a round trip).
            guard !value.contains("\0"), !value.contains("\r") else { throw SDPError("NUL or bare CR in SDP") }
            if type == "m" {
                guard media.count < SessionDescription.maximumMediaCount else { throw SDPError("too many m= lines") }
                media.append(try SDPMedia(parsing: value))
                continue
            }
            if media.isEmpty {
                switch type {
                case "v": throw SDPError("repeated v= line")
                case "o":
                    guard origin == nil else { throw SDPError("repeated o= line") }
                    origin = try SDPOrigin(parsing: value)
                case "s":
                    guard sessionName == nil else { throw SDPError("repeated s= line") }
                    sessionName = String(value)
                case "c":
                    guard connection == nil else { throw SDPError("repeated session c= line") }
                    connection = try SDPConnection(parsing: value)
                case "b": bandwidths.append(String(value))
                case "t": timing = timing ?? String(value)
                case "a": attributes.append(SessionDescription.attribute(value))
                case "i", "u", "e", "p", "z", "k", "r": break
                default: throw SDPError("unknown SDP line type \(type)")
                }
            } else {
                let index = media.count - 1
                switch type {
                case "c":
                    guard media[index].connection == nil else { throw SDPError("repeated media c= line") }
                    media[index].connection = try SDPConnection(parsing: value)
                case "b": media[index].bandwidths.append(String(value))
                case "a": media[index].attributes.append(SessionDescription.attribute(value))
                case "i", "k": break
                default: throw SDPError("SDP line \(type)= is not allowed in a media section")
                }
            }
        }
        guard let origin else { throw SDPError("missing o= line") }
        guard let sessionName else { throw SDPError("missing s= line") }
        guard let timing else { throw SDPError("missing t= line") }
        for entry in media where connection == nil && entry.connection == nil && entry.port != 0 {
            throw SDPError("\(entry.type) stream has no c= line")
        }
        self.origin = origin
        self.sessionName = sessionName
        self.connection = connection
        self.bandwidths = bandwidths
        self.timing = timing
        self.attributes = attributes
        self.media = media
    }

    static func attribute(_ value: Substring) -> SDPAttribute {
        guard let colon = value.firstIndex(of: ":") else { return SDPAttribute(String(value)) }
        return SDPAttribute(String(value[..<colon]), String(value[value.index(after: colon)...]))
    }

    /// The connection address in effect for `media` (its own c= line, else the session's).
    public func connection(for media: SDPMedia) -> SDPConnection? { media.connection ?? connection }

    public func serialized() -> [UInt8] {
        var text = "v=0\r\no=\(origin.serialized)\r\ns=\(sessionName)\r\n"
        if let connection { text += "c=\(connection.serialized)\r\n" }
        for bandwidth in bandwidths { text += "b=\(bandwidth)\r\n" }
        text += "t=\(timing)\r\n"
        for attribute in attributes { text += "a=\(attribute.serialized)\r\n" }
        for entry in media { text += entry.serialized }
        return Array(text.utf8)
    }
}
