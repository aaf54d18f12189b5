import ConclaveSystem
import FoundationEssentials
import SystemPackage
import Testing
@testable import ConclaveConsole

/// The console's changes against a temporary state directory, with `--no-apply` and an audit
/// log kept in memory.
@Suite struct ConsoleActionsTests {
    final class AuditRecords: @unchecked Sendable { var lines: [String] = [] }

    func makeActions() throws -> (ConsoleActions, AuditRecords, FilePath) {
        let directory = FilePath("/tmp/conclave-console-\(UInt32.random(in: 0...UInt32.max))")
        try directory.makeDirectory()
        let records = AuditRecords()
        let environment = ConsoleEnvironment(
            stateDirectory: directory, appliesToHost: false, runDirectory: directory.appending("run").string, version: "test",
            boardRole: .server, audit: { action, detail, _ in records.lines.append("\(action): \(detail)") })
        return (ConsoleActions(environment: environment), records, directory)
    }

    @Test(arguments: [
        ("conclave.test", true), ("conclave.test:443", true), ("192.0.2.10:8443", true), ("[2001:db8::1]:443", true),
        ("bad host", false), ("conclave.test:0", false), ("conclave.test:70000", false), ("[2001:db8::1", false), ("-x.test", false),
    ])
    func serverNames(text: String, valid: Bool) {
        #expect(((try? ConsoleActions.parseServer(text)) != nil) == valid)
    }

    @Test func securityModeIsWrittenAndAuditedOldToNew() throws {
        let (actions, records, directory) = try makeActions()
        let lines = try actions.setSecurityMode("secured")
        #expect(lines.contains("security mode: mixed → secured"))
        #expect(lines.contains("--no-apply: the daemon was not asked to reload"))
        #expect(try DaemonConfiguration.load(stateDirectory: directory).securityMode == "secured")
        #expect(records.lines == ["security-mode: mixed → secured"])
    }

    @Test func roomJoinKeepsOtherRoomKeysAndReplacesTheIdentity() throws {
        let (actions, records, directory) = try makeActions()
        try ConfigurationDocument(stateDirectory: directory).update {
            $0["room"] = .object(["server": .string("old.test"), "meeting": .string("m"), "email": .string("a@b.test"),
                                  "passwordFile": .string("pw"), "rtpIn": .string("127.0.0.1:6000")])
        }
        _ = try actions.setRoomJoin(server: "conclave.test:443", meeting: "weekly", nickname: "Room 1")
        let room = try #require(try DaemonConfiguration.load(stateDirectory: directory).room)
        #expect(room.server == "conclave.test:443" && room.meeting == "weekly" && room.nickname == "Room 1")
        #expect(room.email == nil && room.passwordFile == nil && room.rtpIn == "127.0.0.1:6000")
        #expect(records.lines == ["room-join: old.test meeting m → conclave.test:443 meeting weekly as Room 1"])
    }

    @Test func refusedChangesWriteAndAuditNothing() throws {
        let (actions, records, directory) = try makeActions()
        _ = try actions.setSecurityMode("secured")
        let before = try Files.read(directory.appending("conclave.json"))
        #expect(throws: (any Error).self) { try actions.setFQDN("bad name") }
        #expect(throws: (any Error).self) { try actions.setRoomJoin(server: "bad host", meeting: "m", nickname: "n") }
        #expect(throws: (any Error).self) { try actions.setSecurityMode("open") }
        #expect(try Files.read(directory.appending("conclave.json")) == before)
        #expect(records.lines.count == 1)
    }

    @Test func firstBootPlanIsAppliedPasswordLast() throws {
        let (actions, records, directory) = try makeActions()
        var plan = FirstBootPlan()
        plan.password = "correct horse"
        plan.hostname = "relay1"
        plan.fqdn = "conclave.test"
        plan.network = .manual(address: InterfaceAddress(cidr: "192.0.2.10/24")!, gateway: InterfaceAddress(cidr: "192.0.2.1"), dns: [])
        _ = try actions.applyFirstBoot(plan)
        let configuration = try DaemonConfiguration.load(stateDirectory: directory)
        #expect(configuration.fqdn == "conclave.test" && configuration.securityMode == "secured")
        #expect(configuration.network.interfaces["eth0"]?.addresses == [InterfaceAddress(cidr: "192.0.2.10/24")!])
        #expect(try AdminAccount(stateDirectory: directory).verify("correct horse"))
        #expect(records.lines.map { $0.prefix { $0 != ":" } } == ["first-boot", "cert-self-signed", "admin-password"])
        #expect(!records.lines.joined().contains("correct horse"))
    }
}
