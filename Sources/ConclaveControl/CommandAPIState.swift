import ConclaveCrypto
import ConclaveSystem
import FoundationEssentials
import Logging
import NIOCore

/// The command API's part of the control plane, confined to the plane's event loop: its TLS
/// context (the appliance certificate, client certificates required to chain to the API CA),
/// the pinned client fingerprints, the per-client rate limit and the requests waiting for the
/// supervisor.
public final class CommandAPIState {
    /// nil until both a server certificate and an API client CA are loaded: connections are refused.
    public private(set) var tlsContext: TLSContext?
    public private(set) var clientCA: [X509Certificate] = []
    /// SHA-256 fingerprints (lowercase hex) allowed; empty: any certificate of the CA.
    public internal(set) var pinnedFingerprints: Set<String> = []
    var limiter = APIRateLimiter()
    private var serverChain: [X509Certificate] = []
    /// The appliance certificate the API presents (its expiry is in the status).
    public var serverCertificate: X509Certificate? { serverChain.first }
    private var serverKey: PrivateKey?
    /// Sends a `supervisorRequest` (set by the worker; nil in tests: such requests answer 503).
    public var sendToSupervisor: ((String) throws -> Void)?
    private var pending: [Int: EventLoopPromise<[String: JSONValue]>] = [:]
    private var nextRequest = 1
    /// Seconds the supervisor has to answer.
    static let supervisorTimeout: Int64 = 5

    public init() {}

    func serverCredentials(chain: [X509Certificate], key: PrivateKey, log: Logger) {
        serverChain = chain
        serverKey = key
        rebuildContext(log: log)
    }

    /// A new API client CA bundle (PEM; empty: none imported).
    public func loadClientCA(pem: [UInt8], log: Logger) {
        do {
            clientCA = pem.isEmpty ? [] : try X509Certificate.certificates(pemEncoded: pem)
        } catch {
            log.error("api-ca.pem not loaded, the command API refuses every client: \(error)")
            clientCA = []
        }
        rebuildContext(log: log)
    }

    private func rebuildContext(log: Logger) {
        guard let serverKey, !serverChain.isEmpty, !clientCA.isEmpty else {
            if tlsContext != nil || !clientCA.isEmpty || !serverChain.isEmpty {
                log.warning("command API: \(serverChain.isEmpty ? "no active certificate" : "no API client CA (conclave cert api-ca import)"): refusing connections")
            }
            tlsContext = nil
            return
        }
        do {
            tlsContext = try TLSContext(configuration: .server(
                certificateChain: serverChain, privateKey: serverKey, clientCertificateRoots: clientCA, applicationProtocols: ["http/1.1"]))
        } catch {
            log.error("command API TLS context not built, keeping the previous one: \(error)")
        }
    }

    // MARK: Requests to the supervisor

    /// Sends `request` (an object; `id` is added) and completes with the reply object, or fails
    /// with a 503 problem when the supervisor does not take it or answer in time.
    func askSupervisor(_ request: [String: JSONValue], on eventLoop: EventLoop) -> EventLoopFuture<[String: JSONValue]> {
        guard let sendToSupervisor else {
            return eventLoop.makeFailedFuture(APIProblem.unavailable("no supervisor to write the configuration"))
        }
        let id = nextRequest
        nextRequest += 1
        var request = request
        request["id"] = .number(Double(id))
        let promise = eventLoop.makePromise(of: [String: JSONValue].self)
        do { try sendToSupervisor(JSONText.encode(request)) } catch {
            promise.fail(APIProblem.unavailable("the supervisor did not take the request: \(error)"))
            return promise.futureResult
        }
        pending[id] = promise
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        eventLoop.scheduleTask(in: .seconds(Self.supervisorTimeout)) {
            bound.value.pending.removeValue(forKey: id)?.fail(APIProblem.unavailable("the supervisor did not answer in time"))
        }
        return promise.futureResult
    }

    /// The supervisor's `supervisorReply`; a reply nobody waits for (timed out) is dropped.
    public func supervisorReplied(_ json: String) {
        guard let object = try? JSONDecoder().decode([String: JSONValue].self, from: Data(json.utf8)),
            case .number(let number)? = object["id"], let id = Int(exactly: number), let promise = pending.removeValue(forKey: id)
        else { return }
        promise.succeed(object)
    }
}
