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
    /// Supervisor → control worker: a request from the admin socket (`conclave meeting …`), JSON.
    case adminRequest(json: String)
    /// Control worker → supervisor: the answer to `adminRequest`, JSON.
    case adminReply(json: String)
    /// Supervisor → control worker: the active certificate chain and its private key (PEM), and
    /// the join-token verification key (PEM, may be empty), read by the supervisor, which alone
    /// can read the PKI directory (as relayd's parent does).
    case credentials(chain: [UInt8], key: [UInt8], ssoKey: [UInt8])
    /// Supervisor → control worker: the command API's client CA bundle (PEM, `pki/api-ca.pem`;
    /// empty when none is imported: the API then refuses every connection).
    case apiClientCA(pem: [UInt8])
    /// Control worker → supervisor: a change the worker may not make itself (it cannot write
    /// `conclave.json` or `pki/`), asked for by the command API, JSON (docs/api.md).
    case supervisorRequest(json: String)
    /// Supervisor → control worker: the answer to `supervisorRequest`, JSON.
    case supervisorReply(json: String)

    public static let version: UInt8 = 1
    public static let maximumSize = 65536

    private var type: UInt8 {
        switch self {
        case .ready: 1
        case .reload: 2
        case .stop: 3
        case .statusRequest: 4
        case .status: 5
        case .peerChannel: 6
        case .adminRequest: 7
        case .adminReply: 8
        case .credentials: 9
        case .apiClientCA: 10
        case .supervisorRequest: 11
        case .supervisorReply: 12
        }
    }

    public func encoded() -> [UInt8] {
        var bytes = [Self.version, type]
        switch self {
        case .status(let json), .adminRequest(let json), .adminReply(let json), .supervisorRequest(let json), .supervisorReply(let json):
            bytes += json.utf8
        case .apiClientCA(let pem): bytes += pem
        case .credentials(let chain, let key, let ssoKey):
            precondition(!chain.contains(0) && !key.contains(0), "PEM with a NUL byte")
            bytes += chain + [0] + key + [0] + ssoKey
        default: break
        }
        precondition(bytes.count <= Self.maximumSize, "a payload larger than a worker message")
        return bytes
    }

    public init(decoding bytes: UnsafeRawBufferPointer) throws(WireError) {
        guard bytes.count >= 2 else { throw .truncated(needed: 2, got: bytes.count) }
        guard bytes.count <= Self.maximumSize else { throw .oversized(limit: Self.maximumSize, got: bytes.count) }
        guard bytes[0] == Self.version else { throw .badVersion(bytes[0]) }
        let payload = UnsafeRawBufferPointer(rebasing: bytes[2...])
        switch bytes[1] {
        case 5, 7, 8, 11, 12:
            guard let text = String(validating: payload, as: UTF8.self) else { throw .malformed("a JSON payload that is not UTF-8") }
            switch bytes[1] {
            case 5: self = .status(json: text)
            case 7: self = .adminRequest(json: text)
            case 8: self = .adminReply(json: text)
            case 11: self = .supervisorRequest(json: text)
            default: self = .supervisorReply(json: text)
            }
            return
        case 10:
            self = .apiClientCA(pem: Array(payload))
            return
        case 9:
            let parts = payload.split(separator: 0, maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { throw .malformed("credentials without their two separators") }
            self = .credentials(chain: Array(parts[0]), key: Array(parts[1]), ssoKey: Array(parts[2]))
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

extension WorkerMessage: CustomStringConvertible {
    /// Never shows key material: worker messages are logged.
    public var description: String {
        switch self {
        case .ready: "ready"
        case .reload: "reload"
        case .stop: "stop"
        case .statusRequest: "statusRequest"
        case .status: "status"
        case .peerChannel: "peerChannel"
        case .adminRequest: "adminRequest"
        case .adminReply: "adminReply"
        case .credentials(let chain, _, _): "credentials(\(chain.count)-byte chain, keys withheld)"
        case .apiClientCA(let pem): "apiClientCA(\(pem.count) bytes)"
        case .supervisorRequest: "supervisorRequest"
        case .supervisorReply: "supervisorReply"
        }
    }
}
