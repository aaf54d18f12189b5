import ConclaveCrypto
import ConclaveIdentity
import ConclaveRelay
import ConclaveSystem
import FoundationEssentials
import Glibc
import NIOCore
import NIOPosix

/// Who called: the verified client certificate of the connection.
public struct APIClient: Sendable, Equatable {
    public var subject: String
    /// SHA-256 of the certificate (DER), lowercase hex.
    public var fingerprint: String

    public init(subject: String, fingerprint: String) {
        self.subject = subject
        self.fingerprint = fingerprint
    }

    /// How the audit log names the caller.
    public var actor: String { "api \(subject) sha256:\(fingerprint)" }
}

public struct APIRequest: Sendable {
    public var method: String
    public var target: String
    public var contentType: String?
    public var body: [UInt8]

    public init(method: String, target: String, contentType: String? = nil, body: [UInt8] = []) {
        self.method = method
        self.target = target
        self.contentType = contentType
        self.body = body
    }
}

public struct APIResponse: Sendable, Equatable {
    public var status: Int
    public var contentType: String
    public var body: String
    public var headers: [(String, String)] = []

    public init(status: Int, contentType: String = "application/json", body: String, headers: [(String, String)] = []) {
        self.status = status
        self.contentType = contentType
        self.body = body
        self.headers = headers
    }

    public init(_ problem: APIProblem) {
        self.init(status: problem.status, contentType: "application/problem+json", body: problem.json)
        if let seconds = problem.retryAfterSeconds { headers.append(("Retry-After", "\(seconds)")) }
    }

    static func json<T: Encodable>(_ value: T, status: Int = 200) -> APIResponse { APIResponse(status: status, body: JSONText.encode(value)) }

    public static func == (lhs: APIResponse, rhs: APIResponse) -> Bool {
        lhs.status == rhs.status && lhs.contentType == rhs.contentType && lhs.body == rhs.body
            && lhs.headers.map { "\($0.0):\($0.1)" } == rhs.headers.map { "\($0.0):\($0.1)" }
    }
}

/// The command API (docs/api.md, docs/api/openapi.yaml): one request in, one response out, on
/// the control plane's event loop. Meetings go through the same ControlPlane calls as the
/// admin socket; users through the identity store (scrypt off the loop); configuration the
/// worker cannot write through the supervisor. Every state-changing call is audited with the
/// client certificate's subject and fingerprint.
public enum CommandAPI {
    /// Request bodies larger than this are refused with 413 (docs/api.md).
    public static let bodyLimit = 65_536

    public static func respond(to request: APIRequest, client: APIClient, plane: ControlPlane) -> EventLoopFuture<APIResponse> {
        let eventLoop = plane.eventLoop
        if let wait = plane.api.limiter.admit(client.fingerprint, now: monotonicSeconds()) {
            return eventLoop.makeSucceededFuture(APIResponse(.rateLimited(retryAfterSeconds: wait)))
        }
        let route: CommandAPIRoute
        switch CommandAPIRoute.match(method: request.method, path: request.target) {
        case .notFound: return eventLoop.makeSucceededFuture(APIResponse(.notFound))
        case .methodNotAllowed(let allowed):
            var response = APIResponse(.methodNotAllowed(allowed))
            response.headers.append(("Allow", allowed.joined(separator: ", ")))
            return eventLoop.makeSucceededFuture(response)
        case .route(let matched): route = matched
        }
        if route.takesBody {
            let mediaType = request.contentType?.split(separator: ";").first.map { String($0.filter { $0 != " " && $0 != "\t" }).lowercased() }
            guard mediaType == "application/json" else { return eventLoop.makeSucceededFuture(APIResponse(.unsupportedMediaType(request.contentType))) }
        }
        guard request.body.count <= bodyLimit else { return eventLoop.makeSucceededFuture(APIResponse(.payloadTooLarge(limit: bodyLimit))) }
        let future: EventLoopFuture<APIResponse>
        do { future = try handle(route, request: request, client: client, plane: plane) } catch {
            return eventLoop.makeSucceededFuture(APIResponse(error))
        }
        let confined = LoopConfined(plane)
        return future.flatMapErrorThrowing { error in
            let plane = confined.value
            if let problem = error as? APIProblem { return APIResponse(problem) }
            if let refusal = error as? ControlRefusal { return APIResponse(APIProblem(refusal)) }
            if let identity = error as? IdentityError { return APIResponse(APIProblem(identity)) }
            plane.log.error("command API: \(request.method) \(request.target): \(error)")
            return APIResponse(.unavailable("\(error)"))
        }
    }

    private static func handle(_ route: CommandAPIRoute, request: APIRequest, client: APIClient, plane: ControlPlane) throws(APIProblem) -> EventLoopFuture<APIResponse> {
        let eventLoop = plane.eventLoop
        let confined = LoopConfined(plane)
        func done(_ response: APIResponse) -> EventLoopFuture<APIResponse> { eventLoop.makeSucceededFuture(response) }
        func refusal<T>(_ body: () throws(ControlRefusal) -> T) throws(APIProblem) -> T {
            do { return try body() } catch { throw APIProblem(error) }
        }
        switch route {
        case .openAPI:
            return done(APIResponse(status: 200, contentType: "application/yaml", body: OpenAPIDocument.text))

        case .status:
            return status(plane: plane)

        case .securityGet:
            return done(.json(SecurityBody(mode: plane.settings.securityMode.rawValue)))

        case .securityPut:
            var body = try APIBody(request.body)
            let mode = try body.choice("mode", as: SecurityMode.self, required: true)!
            try body.finish()
            let previous = plane.settings.securityMode
            return plane.api.askSupervisor(["op": .string("set-security-mode"), "mode": .string(mode.rawValue)], on: eventLoop)
                .flatMapThrowing { reply in
                    let plane = confined.value
                    try checkSupervisor(reply)
                    plane.audit(actor: client.actor, action: "security-mode", detail: "\(previous.rawValue) → \(mode.rawValue)")
                    // The reload that carries the mode has reached the plane before this reply.
                    return .json(SecurityBody(mode: plane.settings.securityMode.rawValue))
                }

        case .ssoKeyGet:
            return done(.json(ssoKeyBody(plane)))

        case .ssoKeyPut:
            var body = try APIBody(request.body)
            let pem = try body.string("pem", required: true)!
            try body.finish()
            let bytes = Array(pem.utf8)
            guard bytes.count <= 16_384, !bytes.contains(0), let key = try? PublicKey(pemEncoded: bytes),
                let algorithm = SignatureAlgorithm(key: key.keyDescription)
            else { throw .invalid(field: "pem", "expected an ES256 (P-256) or EdDSA (Ed25519) public key or certificate, PEM") }
            return plane.api.askSupervisor(["op": .string("set-sso-key"), "pem": .string(pem)], on: eventLoop)
                .flatMapThrowing { reply in
                    let plane = confined.value
                    try checkSupervisor(reply)
                    plane.audit(actor: client.actor, action: "sso-key", detail: "join-token key replaced (\(algorithm.rawValue))")
                    return .json(ssoKeyBody(plane))
                }

        case .metrics:
            return done(APIResponse(status: 200, contentType: PrometheusText.contentType, body: plane.metricsExposition()))

        case .monitoringGet:
            return done(.json(MonitoringBody(plane.monitoring.configuration)))

        case .monitoringPut:
            var body = try APIBody(request.body)
            var section: [String: JSONValue] = [:]
            if let destinations = try body.strings("destinations", maximumCount: MonitoringConfiguration.maximumDestinations) {
                section["destinations"] = .array(destinations.map { .string($0) })
            }
            if let interval = try body.integer("intervalSeconds", in: 5...3600) { section["intervalSeconds"] = .number(Double(interval)) }
            if let privacy = try body.choice("privacy", as: MonitoringConfiguration.Privacy.self) { section["privacy"] = .string(privacy.rawValue) }
            if case .some(.some(let listen)) = try body.nullableString("metricsListen") { section["metricsListen"] = .string(listen) }
            try body.finish()
            // The supervisor checks the section with the configuration reader and names a wrong field.
            return plane.api.askSupervisor(["op": .string("set-monitoring"), "monitoring": .object(section)], on: eventLoop)
                .flatMapThrowing { reply in
                    let plane = confined.value
                    try checkSupervisor(reply)
                    let configuration = plane.monitoring.configuration
                    plane.audit(
                        actor: client.actor, action: "monitoring",
                        detail: "\(configuration.destinations.count) destinations, every \(configuration.intervalSeconds) s, privacy \(configuration.privacy.rawValue)")
                    return .json(MonitoringBody(configuration))
                }

        case .meetingsList:
            return done(.json(MeetingList(meetings: plane.meetingSummaries())))

        case .meetingsCreate:
            var body = try APIBody(request.body)
            let id = try body.string("id", required: true)!
            let name = try body.string("name", required: true)!
            let passcode = try body.string("passcode")
            let mode = try body.choice("mode", as: MediaMode.self) ?? .srtp
            let limit = try body.integer("limit", in: 2...MeetingSettings.maximumLimit) ?? 100
            let locked = try body.bool("locked") ?? false
            let guestsAllowed = try body.bool("guestsAllowed") ?? true
            try body.finish()
            let settings = MeetingSettings(name: name, passcode: passcode, mode: mode, limit: limit, locked: locked, guestsAllowed: guestsAllowed)
            let (summary, created) = try refusal { () throws(ControlRefusal) in try plane.startMeeting(id: id, settings: settings, actor: client.actor) }
            return done(.json(summary, status: created ? 201 : 200).with(("Location", "/v1/meetings/\(id)")))

        case .meetingGet(let id):
            guard let summary = plane.meetingSummaries().first(where: { $0.id == id }) else { throw APIProblem(ControlRefusal.unknownMeeting(id)) }
            return done(.json(summary))

        case .meetingEdit(let id):
            var body = try APIBody(request.body)
            var edit = MeetingSettings.Edit()
            edit.name = try body.string("name")
            switch try body.nullableString("passcode") {
            case .some(.some(let passcode)): edit.passcode = passcode
            case .some(.none): edit.clearPasscode = true
            case .none: break
            }
            edit.mode = try body.choice("mode", as: MediaMode.self)
            edit.limit = try body.integer("limit", in: 2...MeetingSettings.maximumLimit)
            edit.locked = try body.bool("locked")
            edit.guestsAllowed = try body.bool("guestsAllowed")
            try body.finish()
            guard edit != MeetingSettings.Edit() else { throw .invalid(field: "(body)", "name at least one field to change") }
            return done(.json(try refusal { () throws(ControlRefusal) in try plane.editMeeting(id: id, edit, actor: client.actor) }))

        case .meetingStop(let id):
            let participants = plane.meetingSummaries().first(where: { $0.id == id })?.participants.count ?? 0
            var summary = try refusal { () throws(ControlRefusal) in try plane.stopMeeting(id: id, actor: client.actor) }
            summary.participants = []
            return done(.json(StoppedMeeting(meeting: summary, participantsRemoved: participants)))

        case .participantsList(let id):
            guard let summary = plane.meetingSummaries().first(where: { $0.id == id }) else { throw APIProblem(ControlRefusal.unknownMeeting(id)) }
            return done(.json(ParticipantList(participants: summary.participants)))

        case .participantKick(let id, let legText):
            guard let leg = UInt32(legText) else { throw .invalid(field: "leg", "expected a leg number (0…4294967295)") }
            if let meeting = plane.registry.meeting(id), meeting.participants[leg] == nil {
                throw APIProblem(status: 404, code: "unknown-participant", title: "Not found", detail: "no participant \(leg) in meeting '\(id)'")
            }
            try refusal { () throws(ControlRefusal) in try plane.kick(meeting: id, leg: leg, actor: client.actor) }
            return done(APIResponse(status: 204, body: ""))

        case .userCreate:
            var body = try APIBody(request.body)
            let email = try body.string("email", required: true)!
            let name = try body.string("name", required: true)!
            let password = try body.string("password", required: true)!
            try body.finish()
            return try onIdentity(plane) { store in
                let user = try store.addUser(email: email, displayName: name, password: password)
                try store.audit(actor: client.actor, action: "user.add", detail: "display name \"\(user.displayName)\"", subject: user.email)
                return APIResponse.json(UserBody(user), status: 201).with(("Location", "/v1/users/\(user.email)"))
            }

        case .userGet(let email):
            return try onIdentity(plane) { store in
                guard let user = try store.user(email: email) else { throw IdentityError.noSuchUser(email) }
                return .json(UserBody(user))
            }

        case .userErase(let email):
            return try onIdentity(plane) { store in
                guard let erasure = try store.erase(email: email, auditActor: client.actor) else { throw IdentityError.noSuchUser(email) }
                return .json(ErasureBody(erased: erasure.email, visits: erasure.visits, auditEntries: erasure.auditEntries))
            }

        case .userPassword(let email):
            var body = try APIBody(request.body)
            let password = try body.string("password", required: true)!
            try body.finish()
            return try onIdentity(plane) { store in
                try store.setPassword(email: email, password: password)
                let normalised = (try? IdentityStore.normalisedEmail(email)) ?? email
                try store.audit(actor: client.actor, action: "user.password-set", detail: "password changed", subject: normalised)
                return APIResponse(status: 204, body: "")
            }
        }
    }

    /// Runs `body` on the blocking pool (scrypt, SQLite), completing on the plane's loop.
    private static func onIdentity(_ plane: ControlPlane, _ body: @escaping @Sendable (IdentityStore) throws -> APIResponse) throws(APIProblem) -> EventLoopFuture<APIResponse> {
        guard let store = plane.identity else { throw .unavailable("the identity store is not open") }
        return plane.blockingPool.runIfActive(eventLoop: plane.eventLoop) { try body(store) }
    }

    private static func checkSupervisor(_ reply: [String: JSONValue]) throws {
        guard reply["ok"] != .bool(true) else { return }
        let code = { if case .string(let text)? = reply["code"] { text } else { "service-unavailable" } }()
        let error = { if case .string(let text)? = reply["error"] { text } else { "refused" } }()
        if case .string(let field)? = reply["field"] { throw APIProblem.invalid(field: field, error) }
        throw code == "invalid-settings" ? APIProblem.invalid(field: "(body)", error) : APIProblem.unavailable(error)
    }

    // MARK: Status

    struct StatusBody: Encodable {
        struct Certificate: Encodable {
            var subject: String
            var notAfter: Double
            var daysLeft: Int
        }
        struct Worker: Encodable {
            var role: String
            var pid: Int?
            var uptimeSeconds: Double?
            var restarts: Int?
        }
        var version: String
        var role: String
        var slot: String?
        var bootOrder: [String]?
        var uptimeSeconds: Double?
        var securityMode: String
        var certificate: Certificate?
        var workers: [Worker]
        var load: [Double]
        var meetings: Int
        var participants: Int
        var legs: Int
        var relayConnected: Bool
    }

    private static func status(plane: ControlPlane) -> EventLoopFuture<APIResponse> {
        let certificate = plane.api.serverCertificate.map { certificate in
            let notAfter = certificate.notValidAfter.timeIntervalSince1970
            return StatusBody.Certificate(
                subject: certificate.subject, notAfter: notAfter, daysLeft: Int(((notAfter - Date().timeIntervalSince1970) / 86400).rounded(.down)))
        }
        let base = StatusBody(
            version: plane.serverVersion, role: "server", securityMode: plane.settings.securityMode.rawValue, certificate: certificate,
            workers: [], load: loadAverages(), meetings: plane.registry.meetings.count, participants: plane.registry.participantCount,
            legs: plane.relay.legCount, relayConnected: plane.relay.isConnected)
        return plane.api.askSupervisor(["op": .string("status")], on: plane.eventLoop).map { reply in
            var body = base
            if case .object(let supervisor)? = reply["supervisor"] {
                if case .string(let role)? = supervisor["role"] { body.role = role }
                if case .number(let uptime)? = supervisor["uptimeSeconds"] { body.uptimeSeconds = uptime }
                if case .array(let workers)? = supervisor["workers"] {
                    body.workers = workers.compactMap { worker in
                        guard case .object(let fields) = worker, case .string(let role)? = fields["role"] else { return nil }
                        func number(_ key: String) -> Double? { if case .number(let value)? = fields[key] { value } else { nil } }
                        return StatusBody.Worker(role: role, pid: number("pid").map { Int($0) }, uptimeSeconds: number("uptimeSeconds"), restarts: number("restarts").map { Int($0) })
                    }
                }
            }
            if case .object(let boot)? = reply["boot"] {
                if case .string(let slot)? = boot["slot"] { body.slot = slot }
                if case .array(let order)? = boot["bootOrder"] { body.bootOrder = order.compactMap { if case .string(let s) = $0 { s } else { nil } } }
            }
            return .json(body)
        }.flatMapErrorThrowing { _ in .json(base) }  // the plane's own figures when the supervisor is away
    }

    /// `/proc/loadavg`: the 1, 5 and 15 minute load averages.
    static func loadAverages() -> [Double] {
        guard let bytes = try? Files.read("/proc/loadavg") else { return [] }
        return String(decoding: bytes, as: UTF8.self).split(separator: " ").prefix(3).compactMap { Double($0) }
    }

    static func monotonicSeconds() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }

    // MARK: Bodies

    struct SecurityBody: Encodable { var mode: String }

    struct SSOKeyBody: Encodable {
        var configured: Bool
        var algorithm: String?
        var pem: String?
    }

    private static func ssoKeyBody(_ plane: ControlPlane) -> SSOKeyBody {
        guard let pem = plane.ssoKeyPEM else { return SSOKeyBody(configured: false) }
        let algorithm = (try? PublicKey(pemEncoded: pem)).flatMap { SignatureAlgorithm(key: $0.keyDescription) }
        return SSOKeyBody(configured: true, algorithm: algorithm?.rawValue, pem: String(decoding: pem, as: UTF8.self))
    }

    /// The monitoring section without the ApMon passwords (a GET must not hand them out).
    struct MonitoringBody: Encodable {
        var destinations: [String]
        var intervalSeconds: Int
        var privacy: String
        var metricsListen: String?

        init(_ configuration: MonitoringConfiguration) {
            destinations = configuration.destinations.map(\.description)
            intervalSeconds = configuration.intervalSeconds
            privacy = configuration.privacy.rawValue
            metricsListen = configuration.metricsListenText
        }
    }

    struct MeetingList: Encodable { var meetings: [ControlPlane.MeetingSummary] }
    struct ParticipantList: Encodable { var participants: [ControlPlane.MeetingSummary.Participant] }
    struct StoppedMeeting: Encodable {
        var meeting: ControlPlane.MeetingSummary
        var participantsRemoved: Int
    }

    struct UserBody: Encodable {
        var email: String
        var name: String
        var created: Double
        var passwordChanged: Double
        init(_ user: User) {
            email = user.email
            name = user.displayName
            created = user.created.timeIntervalSince1970
            passwordChanged = user.passwordChanged.timeIntervalSince1970
        }
    }

    struct ErasureBody: Encodable {
        var erased: String
        var visits: Int
        var auditEntries: Int
    }
}

extension APIResponse {
    func with(_ header: (String, String)) -> APIResponse {
        var response = self
        response.headers.append(header)
        return response
    }
}
