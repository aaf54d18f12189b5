import ConclaveCrypto
import ConclaveSystem
import FoundationEssentials
import SystemPackage
import Testing
@testable import ConclaveIdentity
#if canImport(Glibc)
import Glibc
#endif

/// A fresh state directory per test.
func temporaryStateDirectory() -> FilePath {
    var template = Array("/tmp/conclave-identity-XXXXXX".utf8CString)
    let path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    return FilePath(path)
}

/// Cheap scrypt so the suite stays fast; the production default is `.interactive`.
let testParameters = Scrypt.Parameters(cost: 1 << 10, blockSize: 8, parallelism: 1)

func openStore(_ directory: FilePath = temporaryStateDirectory(), retention: Duration = .seconds(30 * 86400)) throws -> IdentityStore {
    try IdentityStore(directory: directory, guestRetention: retention, passwordParameters: testParameters)
}

func fileStatus(_ path: FilePath) -> stat? {
    var status = stat()
    return path.withPlatformString { stat($0, &status) } == 0 ? status : nil
}

@Suite struct IdentityStoreUserTests {
    @Test func addsAndAuthenticatesAUser() throws {
        let store = try openStore()
        let user = try store.addUser(email: "  Alice@Example.ORG ", displayName: "Alice Liddell", password: "correct horse")
        #expect(user.email == "alice@example.org")
        #expect(user.displayName == "Alice Liddell")
        #expect(try store.user(email: "ALICE@example.org") == user)
        #expect(try store.users() == [user])
        #expect(try store.authenticate(email: "alice@example.org", password: "correct horse") == user)
        #expect(try store.authenticate(email: "alice@example.org", password: "correct horsf") == nil)
        #expect(try store.authenticate(email: "bob@example.org", password: "correct horse") == nil)
        #expect(try store.authenticate(email: "not an email", password: "correct horse") == nil)
    }

    @Test func refusesADuplicateWithoutChangingTheFirst() throws {
        let store = try openStore()
        _ = try store.addUser(email: "alice@example.org", displayName: "Alice", password: "first password")
        #expect(throws: IdentityError.userExists("alice@example.org")) {
            try store.addUser(email: "ALICE@example.org", displayName: "Other", password: "second password")
        }
        #expect(try store.user(email: "alice@example.org")?.displayName == "Alice")
        #expect(try store.authenticate(email: "alice@example.org", password: "first password") != nil)
    }

    @Test func refusesBadInputWithAReason() throws {
        let store = try openStore()
        #expect(throws: IdentityError.weakPassword(reason: "at least 10 characters are required, got 9")) {
            try store.addUser(email: "a@example.org", displayName: "A", password: "123456789")
        }
        for email in ["", "no-at", "two@@example.org", "a b@example.org", "@example.org", "a@", "a@-bad-.org", "a@exa_mple.org"] {
            #expect(throws: IdentityError.self) { try store.addUser(email: email, displayName: "A", password: "long enough password") }
        }
        #expect(throws: IdentityError.invalidDisplayName(reason: "empty")) {
            try store.addUser(email: "a@example.org", displayName: "  ", password: "long enough password")
        }
        #expect(throws: IdentityError.invalidDisplayName(reason: "contains a control character")) {
            try store.addUser(email: "a@example.org", displayName: "A\u{1B}[31m", password: "long enough password")
        }
        #expect(try store.users().isEmpty)
        #expect(try store.auditEntries(limit: 10).isEmpty)
    }

    @Test func storesHashSaltAndParametersNeverThePassword() throws {
        let directory = temporaryStateDirectory()
        let store = try openStore(directory)
        _ = try store.addUser(email: "a@example.org", displayName: "A", password: "same password here")
        _ = try store.addUser(email: "b@example.org", displayName: "B", password: "same password here")
        let bytes = try Files.read(directory.appending("db/identity.sqlite")) + ((try? Files.read(directory.appending("db/identity.sqlite-wal"))) ?? [])
        #expect(!String(decoding: bytes, as: UTF8.self).contains("same password here"))
        // Per-user salt: same password, different hashes; the row's own parameters verify it
        // even after the default changes.
        let stronger = try IdentityStore(directory: directory, passwordParameters: Scrypt.Parameters(cost: 1 << 11, blockSize: 8, parallelism: 1))
        #expect(try stronger.authenticate(email: "a@example.org", password: "same password here") != nil)
        try stronger.setPassword(email: "b@example.org", password: "another password")
        #expect(try store.authenticate(email: "b@example.org", password: "another password") != nil)
        #expect(try store.authenticate(email: "b@example.org", password: "same password here") == nil)
    }

    @Test func setPasswordOfUnknownUserThrows() throws {
        let store = try openStore()
        #expect(throws: IdentityError.noSuchUser("ghost@example.org")) {
            try store.setPassword(email: "ghost@example.org", password: "long enough password")
        }
        _ = try store.addUser(email: "a@example.org", displayName: "A", password: "long enough password")
        #expect(throws: IdentityError.self) { try store.setPassword(email: "a@example.org", password: "short") }
        #expect(try store.authenticate(email: "a@example.org", password: "long enough password") != nil)
    }

    @Test func eraseRemovesEveryRowNamingTheUser() throws {
        let directory = temporaryStateDirectory()
        let store = try openStore(directory)
        _ = try store.addUser(email: "alice@example.org", displayName: "Alice", password: "long enough password")
        _ = try store.addUser(email: "bob_1@example.org", displayName: "Bob", password: "long enough password")
        let now = Date()
        try store.recordVisit(nickname: "Alice", address: "192.0.2.1", mac: nil, meeting: "m1", at: now, user: "alice@example.org")
        try store.recordVisit(nickname: "Bob", address: "192.0.2.2", mac: nil, meeting: "m1", at: now, user: "bob_1@example.org")
        try store.recordVisit(nickname: "Alice", address: "192.0.2.3", mac: "52:54:00:12:34:56", meeting: "m1", at: now)  // a guest
        try store.audit(actor: "local", action: "user.add", detail: "display name Alice", subject: "alice@example.org")
        try store.audit(actor: "control", action: "login.failed", detail: "email ALICE@example.org from 192.0.2.1")
        try store.audit(actor: "control", action: "login.failed", detail: "email bob_1@example.org from 192.0.2.2")
        try store.audit(actor: "local", action: "security-mode.set", detail: "secured")
        // '_' must not act as a wildcard: "bobx1@…" is someone else.
        try store.audit(actor: "control", action: "login.failed", detail: "email bobx1@example.org")

        let erasure = try store.erase(email: "Alice@example.org", auditActor: "local")
        // Not in free pages or the write-ahead log either (secure_delete, checkpoint after erase).
        for suffix in ["", "-wal"] {
            let bytes = (try? Files.read(directory.appending("db/identity.sqlite\(suffix)"))) ?? []
            #expect(!String(decoding: bytes, as: UTF8.self).lowercased().contains("alice@example.org"), "identity.sqlite\(suffix)")
        }
        #expect(erasure == Erasure(email: "alice@example.org", visits: 1, auditEntries: 2))
        #expect(try store.user(email: "alice@example.org") == nil)
        #expect(try store.visits().map(\.address) == ["192.0.2.2", "192.0.2.3"])
        let remaining = try store.auditEntries(limit: 100)
        #expect(remaining.map(\.action) == ["user.erase", "login.failed", "security-mode.set", "login.failed"])
        #expect(!remaining.contains { "\($0)".lowercased().contains("alice@example.org") })
        #expect(try store.erase(email: "alice@example.org") == false)

        #expect(try store.erase(email: "bob_1@example.org") == true)
        #expect(try store.auditEntries(limit: 100).map(\.detail).contains("email bobx1@example.org"))
        #expect(try store.users().isEmpty)
    }
}

@Suite struct IdentityStoreVisitTests {
    @Test func purgesVisitsAfterTheRetention() throws {
        let store = try openStore(retention: .seconds(3600))
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        try store.recordVisit(nickname: "old", address: "192.0.2.1", mac: "52-54-00-AB-CD-EF", meeting: "m", at: start)
        try store.recordVisit(nickname: "new", address: "2001:db8::1", mac: nil, meeting: "m", at: start.addingTimeInterval(1800))
        #expect(try store.visits().map(\.nickname) == ["old", "new"])
        #expect(try store.visits().first?.mac == "52:54:00:ab:cd:ef")
        #expect(try store.purgeExpiredVisits(now: start.addingTimeInterval(3599)) == 0)
        #expect(try store.purgeExpiredVisits(now: start.addingTimeInterval(3601)) == 1)
        #expect(try store.visits().map(\.nickname) == ["new"])
        // Recording a visit purges too, so rows expire even without a scheduler.
        try store.recordVisit(nickname: "later", address: "192.0.2.9", mac: nil, meeting: "m", at: start.addingTimeInterval(7200))
        #expect(try store.visits().map(\.nickname) == ["later"])
    }

    @Test func refusesBadVisitFieldsWithoutStoring() throws {
        let store = try openStore()
        #expect(throws: IdentityError.self) { try store.recordVisit(nickname: "", address: "192.0.2.1", mac: nil, meeting: "m", at: Date()) }
        #expect(throws: IdentityError.self) { try store.recordVisit(nickname: "n", address: "192.0.2.1", mac: "zz:zz", meeting: "m", at: Date()) }
        #expect(throws: IdentityError.self) { try store.recordVisit(nickname: "n\n", address: "192.0.2.1", mac: nil, meeting: "m", at: Date()) }
        #expect(try store.visits().isEmpty)
    }
}

@Suite struct IdentityStoreAuditTests {
    @Test func keepsTheNewestEntriesFirst() throws {
        let store = try openStore()
        for index in 1...5 { try store.audit(actor: "console", action: "test.\(index)", detail: "entry \(index)") }
        let entries = try store.auditEntries(limit: 3)
        #expect(entries.map(\.action) == ["test.5", "test.4", "test.3"])
        #expect(entries.allSatisfy { $0.actor == "console" && $0.subject == nil })
        #expect(throws: IdentityError.self) { try store.audit(actor: "", action: "x", detail: "") }
        #expect(throws: IdentityError.self) { try store.audit(actor: "console", action: "x", detail: "two\nlines") }
        #expect(try store.auditEntries(limit: 100).count == 5)
    }

    @Test func storesOpenedTogetherOnANewFileAgree() async throws {
        let directory = temporaryStateDirectory()
        // The console and the control worker may create the database at the same moment.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<4 {
                group.addTask { try openStore(directory).audit(actor: "test", action: "open", detail: "\(index)") }
            }
            try await group.waitForAll()
        }
        #expect(try openStore(directory).auditEntries(limit: 10).count == 4)
    }

    @Test func twoStoresOnOneFileSeeEachOther() throws {
        let directory = temporaryStateDirectory()
        let worker = try openStore(directory), console = try openStore(directory)
        try console.audit(actor: "console", action: "security-mode.set", detail: "secured")
        #expect(try worker.auditEntries(limit: 1).first?.detail == "secured")
    }
}

@Suite struct IdentityStoreFileTests {
    @Test func createsPrivateFilesInAPrivateDirectory() throws {
        let directory = temporaryStateDirectory()
        let store = try openStore(directory)
        try store.audit(actor: "console", action: "test", detail: "write something")
        #expect(directory.appending("db").permissions == .ownerReadWriteExecute)
        for name in ["identity.sqlite", "identity.sqlite-wal", "identity.sqlite-shm"] {
            #expect(directory.appending("db/\(name)").permissions == .ownerReadWrite, "\(name)")
        }
    }

    @Test(.enabled(if: geteuid() == 0, "needs root to give files away"))
    func rootGivesEveryFileToTheDirectoryOwner() throws {
        let directory = temporaryStateDirectory()
        #expect(chown(directory.string, 4242, 4343) == 0)
        let store = try openStore(directory)
        try store.audit(actor: "console", action: "test", detail: "written by root")
        for name in ["db", "db/identity.sqlite", "db/identity.sqlite-wal", "db/identity.sqlite-shm"] {
            let status = try #require(fileStatus(directory.appending(name)), "\(name)")
            #expect(status.st_uid == 4242 && status.st_gid == 4343, "\(name)")
        }
        // An existing db directory keeps its owner and gives it to the files, whoever owns the state directory.
        let other = temporaryStateDirectory()
        try other.appending("db").makeDirectory()
        #expect(chown(other.appending("db").string, 5151, 5252) == 0)
        _ = try openStore(other)
        let status = try #require(fileStatus(other.appending("db/identity.sqlite")))
        #expect(status.st_uid == 5151 && status.st_gid == 5252)
    }

    @Test(.enabled(if: geteuid() == 0, "needs root to give files away"))
    func supervisorHandsTheDirectoryToTheWorker() throws {
        let directory = temporaryStateDirectory()  // root's, as /data/conclave is
        _ = try openStore(directory)  // root-owned files, e.g. from an older run
        try IdentityStore.prepareDirectory(stateDirectory: directory, uid: 4242, gid: 4343)
        for name in ["db", "db/identity.sqlite"] {
            let status = try #require(fileStatus(directory.appending(name)), "\(name)")
            #expect(status.st_uid == 4242 && status.st_gid == 4343, "\(name)")
        }
        #expect(directory.appending("db").permissions == .ownerReadWriteExecute)
        try IdentityStore.prepareDirectory(stateDirectory: directory, uid: 4242, gid: 4343)  // again: nothing to do
    }
}
