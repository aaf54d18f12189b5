/// Messages between the supervisor and a worker over their `SOCK_SEQPACKET` socket pair, one
/// message per packet: version (1), type, then the type's payload. An unknown message is a
/// broken peer, and the receiver treats it as fatal (as relayd does).
public enum WorkerMessage: Equatable, Sendable {
    /// Worker → supervisor: privileges dropped, serving.
    case ready
    /// Supervisor → worker: re-read the configuration and certificates, keep every meeting.
    case reload
    /// Supervisor → worker: finish and exit 0.
    case stop
    /// Supervisor → worker: answer with `status`.
    case statusRequest
    /// Worker → supervisor: the worker's own figures as a JSON object (UTF-8).
    case status(json: String)
    /// Supervisor → worker: this packet carries (SCM_RIGHTS) a new relay IPC socket, because
    /// the worker at the other end was restarted.
    case peerChannel

    public static let version: UInt8 = 1
    public static let maximumSize = 8192

    private var type: UInt8 {
        switch self {
        case .ready: 1
        case .reload: 2
        case .stop: 3
        case .statusRequest: 4
        case .status: 5
        case .peerChannel: 6
        }
    }

    public func encoded() -> [UInt8] {
        var bytes = [Self.version, type]
        if case .status(let json) = self { bytes += json.utf8 }
        precondition(bytes.count <= Self.maximumSize, "a status larger than a worker message")
        return bytes
    }

    public init(decoding bytes: UnsafeRawBufferPointer) throws(WireError) {
        guard bytes.count >= 2 else { throw .truncated(needed: 2, got: bytes.count) }
        guard bytes.count <= Self.maximumSize else { throw .oversized(limit: Self.maximumSize, got: bytes.count) }
        guard bytes[0] == Self.version else { throw .badVersion(bytes[0]) }
        let payload = UnsafeRawBufferPointer(rebasing: bytes[2...])
        switch bytes[1] {
        case 5:
            guard let text = String(validating: payload, as: UTF8.self) else { throw .malformed("status is not UTF-8") }
            self = .status(json: text)
            return
        case 1: self = .ready
        case 2: self = .reload
        case 3: self = .stop
        case 4: self = .statusRequest
        case 6: self = .peerChannel
        default: throw .unknownType(bytes[1])
        }
        guard payload.isEmpty else { throw .malformed("\(bytes.count - 2) bytes after a message that has none") }
    }
}
