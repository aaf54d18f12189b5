import FoundationEssentials

/// The `"room"` section of `conclave.json`: what a room system joins when `conclave supervise`
/// runs with role `room` (docs/room-system.md). Exactly one way to authenticate; secrets live in
/// files named here, relative to the state directory unless absolute.
public struct RoomConfiguration: Sendable, Equatable, Codable {
    /// The server appliance, `FQDN[:PORT]`.
    public var server: String
    public var meeting: String
    public var nickname: String?
    public var email: String?
    public var passwordFile: String?
    public var tokenFile: String?
    public var passcodeFile: String?
    public var rtpIn = "127.0.0.1:5004"
    public var rtpOut = "127.0.0.1:5006"
    public var tcp = false

    public init(server: String, meeting: String, nickname: String? = nil) {
        self.server = server
        self.meeting = meeting
        self.nickname = nickname
    }

    static let knownKeys: Set<String> = [
        "server", "meeting", "nickname", "email", "passwordFile", "tokenFile", "passcodeFile", "rtpIn", "rtpOut", "tcp",
    ]

    static func parse(_ value: JSONValue, source: String) throws(ConfigurationFileError) -> RoomConfiguration {
        guard case .object(let object) = value else { throw .invalid(source, field: "room", "expected an object") }
        for key in object.keys.sorted() where !knownKeys.contains(key) { throw .invalid(source, field: "room.\(key)", "unknown field") }
        func string(_ key: String) throws(ConfigurationFileError) -> String? {
            switch object[key] {
            case nil, .null?: return nil
            case .string(let text)? where !text.isEmpty && !text.utf8.contains(0): return text
            default: throw .invalid(source, field: "room.\(key)", "expected a non-empty string")
            }
        }
        guard let server = try string("server"), let meeting = try string("meeting") else {
            throw .invalid(source, field: "room", "server and meeting are required")
        }
        var room = RoomConfiguration(server: server, meeting: meeting, nickname: try string("nickname"))
        room.email = try string("email")
        room.passwordFile = try string("passwordFile")
        room.tokenFile = try string("tokenFile")
        room.passcodeFile = try string("passcodeFile")
        room.rtpIn = try string("rtpIn") ?? room.rtpIn
        room.rtpOut = try string("rtpOut") ?? room.rtpOut
        switch object["tcp"] {
        case nil, .null?: break
        case .bool(let flag)?: room.tcp = flag
        default: throw .invalid(source, field: "room.tcp", "expected true or false")
        }
        let ways = [room.nickname != nil, room.email != nil, room.tokenFile != nil].filter { $0 }.count
        guard ways == 1, (room.email == nil) == (room.passwordFile == nil) else {
            throw .invalid(source, field: "room", "give exactly one of nickname, email with passwordFile, or tokenFile")
        }
        return room
    }
}
