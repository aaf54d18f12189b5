import ConclaveRelay
import ConclaveSystem
import FoundationEssentials
import Glibc
import Logging
import NIOCore
import NIOPosix
import SystemPackage
import Testing
@testable import ConclaveControl

@Suite struct CommandAPIRouteTests {
    @Test(arguments: [
        ("GET", "/v1/meetings/m1", CommandAPIRoute.meetingGet("m1")),
        ("PATCH", "/v1/meetings/m1?x=1", .meetingEdit("m1")),
        ("DELETE", "/v1/meetings/m%2D1/participants/42", .participantKick(meeting: "m-1", leg: "42")),
        ("GET", "/v1/users/a%40b.test", .userGet("a@b.test")),
        ("PUT", "/v1/users/a@b.test/password", .userPassword("a@b.test")),
        ("post", "/v1/meetings", .meetingsCreate),
        ("GET", "/v1/openapi.yaml", .openAPI),
    ])
    func matchesRoutes(method: String, path: String, route: CommandAPIRoute) {
        #expect(CommandAPIRoute.match(method: method, path: path) == .route(route))
    }

    @Test func refusesWhatIsNotARoute() {
        #expect(CommandAPIRoute.match(method: "GET", path: "/v1/nothing") == .notFound)
        #expect(CommandAPIRoute.match(method: "GET", path: "/v1/meetings/") == .notFound)  // empty id
        #expect(CommandAPIRoute.match(method: "GET", path: "/v1/meetings/%zz") == .notFound)  // bad escape
        #expect(CommandAPIRoute.match(method: "GET", path: "v1/status") == .notFound)
        #expect(CommandAPIRoute.match(method: "PUT", path: "/v1/meetings/m1") == .methodNotAllowed(allowed: ["GET", "PATCH", "DELETE"]))
        #expect(CommandAPIRoute.match(method: "DELETE", path: "/v1/status") == .methodNotAllowed(allowed: ["GET"]))
    }
}

/// docs/api/openapi.yaml is the single source of truth: its operations are exactly the routes,
/// and the binary serves it byte for byte.
@Suite struct CommandAPISpecTests {
    static let specPath = URLPath.repositoryRoot + "/docs/api/openapi.yaml"

    static func specText() throws -> String { String(decoding: try Files.read(FilePath(specPath)), as: UTF8.self) }

    /// (method, path) of every operation under `paths:` (two-space paths, four-space methods).
    static func specOperations(_ text: String) -> Set<String> {
        var operations: Set<String> = []
        var inPaths = false
        var path: String?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if !line.hasPrefix(" ") { inPaths = line == "paths:"; path = nil; continue }
            guard inPaths else { continue }
            if line.hasPrefix("  /"), line.hasSuffix(":"), !line.hasPrefix("   ") { path = String(line.dropFirst(2).dropLast()); continue }
            let trimmed = line.drop { $0 == " " }
            if let path, line.hasPrefix("    "), !line.hasPrefix("     "),
                ["get:", "put:", "post:", "patch:", "delete:"].contains(String(trimmed))
            {
                operations.insert("\(trimmed.dropLast()) \(path)")
            }
        }
        return operations
    }

    @Test func specAndRoutesMatch() throws {
        let spec = Self.specOperations(try Self.specText())
        let routes = Set(CommandAPIRoute.table.map { "\($0.method) \($0.template)" })
        #expect(!spec.isEmpty)
        #expect(spec.subtracting(routes).isEmpty, "in the spec, not routed: \(spec.subtracting(routes).sorted())")
        #expect(routes.subtracting(spec).isEmpty, "routed, not in the spec: \(routes.subtracting(spec).sorted())")
    }

    @Test func theOperationParserSeesAMissingRoute() {
        let spec = "paths:\n  /v1/a:\n    get:\n      x: 1\n    post:\n  /v1/b/{id}:\n    delete:\ncomponents:\n  /v1/c:\n    get:\n"
        #expect(Self.specOperations(spec) == ["get /v1/a", "post /v1/a", "delete /v1/b/{id}"])
    }

    @Test func embeddedDocumentIsTheSpec() throws {
        #expect(OpenAPIDocument.text + "\n" == (try Self.specText()), "run scripts/embed-openapi")
    }
}

enum URLPath {
    /// The repository, from this file's path (Tests/ConclaveControlTests/…).
    static let repositoryRoot: String = {
        var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)
        return parts.joined(separator: "/")
    }()
}

@Suite struct CommandAPIProblemTests {
    @Test func problemsAreRFC9457WithAStableType() throws {
        let problem = APIProblem(ControlRefusal.invalidSettings(field: "limit", "2 to 1000 participants"))
        let object = try JSONDecoder().decode([String: JSONValue].self, from: Data(problem.json.utf8))
        #expect(object["type"] == .string("urn:conclave:problem:invalid-settings"))
        #expect(object["status"] == .number(400) && object["field"] == .string("limit") && object["code"] == .string("invalid-settings"))
        #expect(APIProblem(ControlRefusal.unknownMeeting("x")).status == 404)
        #expect(APIProblem(ControlRefusal.meetingExists("x")).status == 409)
        #expect(APIProblem(ControlRefusal.serviceUnavailable("x")).status == 503)
        #expect(APIResponse(APIProblem.rateLimited(retryAfterSeconds: 3)).headers.contains { $0 == ("Retry-After", "3") })
    }

    @Test func bodyReaderNamesTheField() {
        func problem(_ json: String, _ read: (inout APIBody) throws(APIProblem) -> Void) -> APIProblem? {
            do {
                var body = try APIBody(Array(json.utf8))
                try read(&body)
                try body.finish()
                return nil
            } catch { return error }
        }
        #expect(problem("{", { _ in })?.code == "bad-message")
        #expect(problem("[1]", { _ in })?.code == "bad-message")
        #expect(problem("", { _ in })?.code == "bad-message")
        #expect(problem(#"{"limit":"9"}"#, { body throws(APIProblem) in _ = try body.integer("limit", in: 2...10) })?.field == "limit")
        #expect(problem(#"{"limit":11}"#, { body throws(APIProblem) in _ = try body.integer("limit", in: 2...10) })?.field == "limit")
        #expect(problem(#"{"limit":3,"colour":1}"#, { body throws(APIProblem) in _ = try body.integer("limit", in: 2...10) })?.field == "colour")
        #expect(problem(#"{}"#, { body throws(APIProblem) in _ = try body.string("id", required: true) })?.field == "id")
        #expect(problem(#"{"limit":3}"#, { body throws(APIProblem) in _ = try body.integer("limit", in: 2...10) }) == nil)
    }

    @Test func rateLimitIsPerClient() {
        var limiter = APIRateLimiter(burst: 3, perSecond: 1)
        for _ in 0..<3 { #expect(limiter.admit("a", now: 100) == nil) }
        #expect(limiter.admit("a", now: 100) == 1)
        #expect(limiter.admit("b", now: 100) == nil)  // another certificate has its own bucket
        #expect(limiter.admit("a", now: 101.01) == nil)  // one second refills one request
        #expect(limiter.admit("a", now: 101.02) != nil)
    }
}

/// The API over a real control plane and relay (relay IPC on a socket pair), no network.
@Suite(.serialized) final class CommandAPIPlaneTests {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let pool = NIOThreadPool(numberOfThreads: 1)
    let relay: Relay
    let plane: ControlPlane
    let client = APIClient(subject: "CN=manager", fingerprint: String(repeating: "ab", count: 32))

    init() throws {
        relay = try Relay(configuration: .init(listen: "127.0.0.1", basePort: 0, threads: 1, securityMode: .mixed))
        let (ours, theirs) = try ProcessSpawner.socketPair()
        let server = RelayIPCServer(relay: relay)
        try startDetachedThread {
            try? server.serve(socket: theirs)
            close(theirs)
        }
        pool.start()
        plane = ControlPlane(
            eventLoop: group.next(), relay: RelayLink(socket: ours, log: Logger(label: "test")),
            settings: ControlSettings(securityMode: .mixed, fqdn: nil, media: .init(udpPort: 3478, tcpPort: 0, threads: 1)),
            identity: nil, blockingPool: pool, serverVersion: "test", log: Logger(label: "test"))
    }

    deinit {
        relay.shutdown()
        try? pool.syncShutdownGracefully()
        try? group.syncShutdownGracefully()
    }

    func call(_ method: String, _ path: String, _ body: String? = nil, contentType: String? = "application/json") throws -> APIResponse {
        let request = APIRequest(method: method, target: path, contentType: body == nil ? nil : contentType, body: Array((body ?? "").utf8))
        let confined = LoopConfined((plane, client))
        return try plane.eventLoop.flatSubmit { CommandAPI.respond(to: request, client: confined.value.1, plane: confined.value.0) }.wait()
    }

    func object(_ response: APIResponse) throws -> [String: JSONValue] {
        try JSONDecoder().decode([String: JSONValue].self, from: Data(response.body.utf8))
    }

    @Test func meetingLifeCycleIsIdempotentAndRefusesConflicts() throws {
        let start = #"{"id":"m1","name":"Board","limit":3}"#
        let created = try call("POST", "/v1/meetings", start)
        #expect(created.status == 201 && created.headers.contains { $0 == ("Location", "/v1/meetings/m1") })
        #expect(try call("POST", "/v1/meetings", start).status == 200)  // same id, same settings
        let conflict = try call("POST", "/v1/meetings", #"{"id":"m1","name":"Other"}"#)
        #expect(conflict.status == 409 && conflict.contentType == "application/problem+json")
        #expect(try object(conflict)["code"] == .string("meeting-exists"))
        let edited = try call("PATCH", "/v1/meetings/m1", #"{"locked":true,"passcode":null}"#)
        #expect(try edited.status == 200 && object(edited)["locked"] == .bool(true))
        #expect(try call("GET", "/v1/meetings/m1/participants").body == #"{"participants":[]}"#)
        #expect(try call("DELETE", "/v1/meetings/m1/participants/7").status == 404)
        #expect(try object(try call("DELETE", "/v1/meetings/m1/participants/x"))["field"] == .string("leg"))
        #expect(try call("DELETE", "/v1/meetings/m1").status == 200)
        let gone = try call("GET", "/v1/meetings/m1")
        #expect(try gone.status == 404 && object(gone)["code"] == .string("unknown-meeting"))
    }

    @Test func refusesBadRequestsWithTheRightStatus() throws {
        #expect(try call("POST", "/v1/meetings", #"{"id":"m2","name":"x"}"#, contentType: "text/plain").status == 415)
        #expect(try call("POST", "/v1/meetings", #"{"id":"m2","name":"x"}"#, contentType: "application/json; charset=utf-8").status == 201)
        #expect(try call("POST", "/v1/meetings", "{not json").status == 400)
        let unknown = try call("POST", "/v1/meetings", #"{"id":"m3","name":"x","colour":"red"}"#)
        #expect(try unknown.status == 400 && object(unknown)["field"] == .string("colour"))
        let badID = try call("POST", "/v1/meetings", #"{"id":"a b","name":"x"}"#)
        #expect(try badID.status == 400 && object(badID)["field"] == .string("id"))
        #expect(try call("POST", "/v1/meetings", "{\"id\":\"m4\",\"name\":\"" + String(repeating: "x", count: 70_000) + "\"}").status == 413)
        #expect(try call("PATCH", "/v1/meetings/m2", "{}").status == 400)
        #expect(try call("GET", "/v1/nothing").status == 404)
        let notAllowed = try call("PUT", "/v1/status")
        #expect(notAllowed.status == 405 && notAllowed.headers.contains { $0 == ("Allow", "GET") })
        // No supervisor in this test: a configuration change cannot be written.
        #expect(try call("PUT", "/v1/system/security", #"{"mode":"secured"}"#).status == 503)
        #expect(try object(try call("PUT", "/v1/system/security", #"{"mode":"open"}"#))["field"] == .string("mode"))
        #expect(try object(try call("PUT", "/v1/system/sso-key", #"{"pem":"nope"}"#))["field"] == .string("pem"))
        #expect(try call("POST", "/v1/users", #"{"email":"a@b.test","name":"A","password":"0123456789"}"#).status == 503)  // no store
        #expect(try call("GET", "/v1/system/security").body == #"{"mode":"mixed"}"#)
        #expect(try call("PUT", "/v1/system/monitoring", #"{"privacy":"off"}"#).status == 503)  // no supervisor
        #expect(try object(try call("PUT", "/v1/system/monitoring", #"{"privacy":"loud"}"#))["field"] == .string("privacy"))
        #expect(try object(try call("PUT", "/v1/system/monitoring", #"{"intervalSeconds":1}"#))["field"] == .string("intervalSeconds"))
        #expect(try object(try call("GET", "/v1/system/monitoring"))["privacy"] == .string("pseudonymous"))
        let metrics = try call("GET", "/metrics")
        #expect(metrics.status == 200 && metrics.contentType.hasPrefix("text/plain") && metrics.body.contains("conclave_"))
        let status = try object(try call("GET", "/v1/status"))
        #expect(status["version"] == .string("test") && status["securityMode"] == .string("mixed") && status["relayConnected"] == .bool(true))
        let spec = try call("GET", "/v1/openapi.yaml")
        #expect(spec.status == 200 && spec.contentType == "application/yaml" && spec.body.hasPrefix("openapi: 3.1.0"))
    }
}
