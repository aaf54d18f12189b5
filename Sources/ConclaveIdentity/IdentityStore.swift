public import ConclaveCrypto
public import FoundationEssentials
public import SystemPackage
import ConclaveSystem
import GRDB
#if canImport(Glibc)
import Glibc
#endif

/// A registered user as stored: never the password, only its scrypt hash.
public struct User: Sendable, Equatable, CustomStringConvertible {
    /// Normalised: trimmed, lowercase.
    public let email: String
    public let displayName: String
    public let created: Date
    /// When the password was last set.
    public let passwordChanged: Date

    public var description: String { "\(email) (\(displayName))" }
}

/// One visit to a meeting: a guest's nickname, address and MAC as the client reported them, or a
/// registered user's (then `user` holds the email). Deleted after the retention period.
public struct Visit: Sendable, Equatable {
    public let id: Int64
    public let nickname: String
    public let address: String
    public let mac: String?
    public let meeting: String
    public let user: String?
    public let at: Date
}

/// One audit log row: who did what, never a secret.
public struct AuditEntry: Sendable, Equatable, CustomStringConvertible {
    public let id: Int64
    public let at: Date
    /// "local", "console", "control", "api:CN=… sha256:…".
    public let actor: String
    /// Dotted verb, e.g. "user.add", "login.failed", "security-mode.set".
    public let action: String
    public let detail: String
    /// The email of the registered user this row names, if any (erase removes the row).
    public let subject: String?

    public var description: String {
        let time = at.formatted(.iso8601)
        return "\(time) \(actor) \(action)\(subject.map { " [\($0)]" } ?? "") \(detail)"
    }
}

/// What `erase` removed.
public struct Erasure: Sendable, Equatable, CustomStringConvertible {
    public let email: String
    public let visits: Int
    public let auditEntries: Int

    public var description: String {
        "removed user \(email), \(visits) visit\(visits == 1 ? "" : "s"), \(auditEntries) audit entr\(auditEntries == 1 ? "y" : "ies") naming them"
    }
}

public enum IdentityError: Error, CustomStringConvertible, Equatable, Sendable {
    case userExists(String)
    case noSuchUser(String)
    case invalidEmail(String, reason: String)
    case invalidDisplayName(reason: String)
    case weakPassword(reason: String)
    case invalidField(String, reason: String)
    case storage(String)

    public var description: String {
        switch self {
        case .userExists(let email): "a user with email \(email) already exists"
        case .noSuchUser(let email): "no registered user with email \(email)"
        case .invalidEmail(let email, let reason): "invalid email \"\(email)\": \(reason)"
        case .invalidDisplayName(let reason): "invalid display name: \(reason)"
        case .weakPassword(let reason): "password refused: \(reason)"
        case .invalidField(let field, let reason): "invalid \(field): \(reason)"
        case .storage(let reason): "identity store: \(reason)"
        }
    }
}

/// The appliance's identity database, `DIR/db/identity.sqlite` (SQLite in WAL mode through GRDB):
/// registered users, guest visits (deleted after the retention period) and the audit log.
/// Thread-safe: every access goes through one serial `DatabaseQueue`. See docs/identity.md.
public final class IdentityStore: Sendable {
    public static let minimumPasswordLength = 10
    public static let maximumPasswordBytes = 1024

    private let queue: DatabaseQueue
    public let path: FilePath
    public let guestRetention: Duration
    let passwordParameters: Scrypt.Parameters

    /// Opens or creates `directory/db/identity.sqlite` (directory 0700, files 0600) and migrates
    /// the schema. Run as root on a directory another uid owns (the console writing audit rows
    /// next to the control worker), every file it creates takes the directory's owner.
    /// `passwordParameters` applies to hashes written from now on; each row keeps its own.
    public init(
        directory: FilePath, guestRetention: Duration = .seconds(30 * 86400),
        passwordParameters: Scrypt.Parameters = .interactive
    ) throws {
        precondition(guestRetention > .zero, "guest retention must be positive")
        self.guestRetention = guestRetention
        self.passwordParameters = passwordParameters
        let databaseDirectory = directory.appending("db")
        path = databaseDirectory.appending("identity.sqlite")
        let owner = try FileOwner.prepare(databaseDirectory: databaseDirectory, stateDirectory: directory)
        // SQLite creates -wal and -shm with the main file's mode, and as root chowns them to the
        // main file's owner (os_unix.c, robust_fchown): so the main file is created here first.
        try owner.createPrivateFile(path)

        var configuration = Configuration()
        // WAL is set below rather than with `journalMode = .wal`: GRDB's own set-up reads the -wal
        // file's size through Foundation's FileManager, which looks the owner up with getpwuid_r.
        // In the static binary, an owner missing from /etc/passwd makes glibc load the host's NSS
        // modules, which crashes. A DatabaseQueue needs none of that set-up.
        configuration.foreignKeysEnabled = true
        configuration.busyMode = .timeout(5)  // the console and the control worker share the file
        configuration.label = "identity"
        configuration.prepareDatabase { db in
            guard try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL") == "wal" else {
                throw IdentityError.storage("SQLite refused WAL mode")
            }
            // Every committed change survives a power cut (NORMAL could lose the last ones).
            try db.execute(sql: "PRAGMA synchronous = FULL")
            // Deleted rows are overwritten with zeros, so that an erased user is not left in free pages.
            try db.execute(sql: "PRAGMA secure_delete = ON")
        }
        do {
            queue = try DatabaseQueue(path: path.string, configuration: configuration)
            try Self.migrator.migrate(queue)
        } catch {
            throw IdentityError.storage("cannot open \(path): \(error)")
        }
        for suffix in ["-wal", "-shm"] {
            try owner.adopt(FilePath(path.string + suffix))
        }
    }

    /// Run as root (the supervisor, before it starts the control worker): creates `DIR/db` (0700)
    /// and gives it, and any database file already in it, to the worker's account, so that the
    /// worker can create and open the database when `DIR` itself belongs to root.
    public static func prepareDirectory(stateDirectory: FilePath, uid: UInt32, gid: UInt32) throws {
        try FileOwner.handOver(databaseDirectory: stateDirectory.appending("db"), uid: uid_t(uid), gid: gid_t(gid))
    }

    // MARK: Schema

    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.create(table: "user") { table in
                table.primaryKey("email", .text)
                table.column("display_name", .text).notNull()
                table.column("password_hash", .blob).notNull()
                table.column("salt", .blob).notNull()
                table.column("scrypt_n", .integer).notNull()
                table.column("scrypt_r", .integer).notNull()
                table.column("scrypt_p", .integer).notNull()
                table.column("created_at", .double).notNull()
                table.column("password_changed_at", .double).notNull()
            }
            try db.create(table: "visit") { table in
                table.autoIncrementedPrimaryKey("id")
                table.column("nickname", .text).notNull()
                table.column("address", .text).notNull()
                table.column("mac", .text)
                table.column("meeting", .text).notNull()
                table.column("user_email", .text).indexed()
                table.column("at", .double).notNull().indexed()
            }
            try db.create(table: "audit") { table in
                table.autoIncrementedPrimaryKey("id")
                table.column("at", .double).notNull()
                table.column("actor", .text).notNull()
                table.column("action", .text).notNull()
                table.column("detail", .text).notNull()
                table.column("subject", .text).indexed()
            }
        }
        return migrator
    }

    // MARK: Registered users

    public func addUser(email: String, displayName: String, password: String) throws -> User {
        let email = try Self.normalisedEmail(email)
        let displayName = try Self.validatedDisplayName(displayName)
        try Self.checkPassword(password)
        let hash = try PasswordHash.make(password: password, parameters: passwordParameters)
        let now = Date()
        return try write { db in
            if try Row.fetchOne(db, sql: "SELECT 1 FROM user WHERE email = ?", arguments: [email]) != nil {
                throw IdentityError.userExists(email)
            }
            try db.execute(
                sql: """
                    INSERT INTO user (email, display_name, password_hash, salt, scrypt_n, scrypt_r, scrypt_p, created_at, password_changed_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    email, displayName, Data(hash.hash), Data(hash.salt), Int64(hash.parameters.cost),
                    Int64(hash.parameters.blockSize), Int64(hash.parameters.parallelism), now.timeIntervalSince1970,
                    now.timeIntervalSince1970,
                ])
            // Read back, so that the value equals what later reads return (dates stored as Double).
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM user WHERE email = ?", arguments: [email]) else {
                throw IdentityError.storage("the new user row is missing")
            }
            return Self.user(from: row)
        }
    }

    public func user(email: String) throws -> User? {
        guard let email = try? Self.normalisedEmail(email) else { return nil }
        return try read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM user WHERE email = ?", arguments: [email]).map(Self.user(from:))
        }
    }

    public func users() throws -> [User] {
        try read { db in try Row.fetchAll(db, sql: "SELECT * FROM user ORDER BY email").map(Self.user(from:)) }
    }

    /// The user when `password` is theirs; nil for an unknown email or a wrong password alike.
    /// An unknown email still costs one scrypt, so timing does not tell which users exist.
    public func authenticate(email: String, password: String) throws -> User? {
        let normalised = try? Self.normalisedEmail(email)
        let stored: (User, PasswordHash)? = try normalised.flatMap { email in
            try read { db in
                try Row.fetchOne(db, sql: "SELECT * FROM user WHERE email = ?", arguments: [email]).map {
                    (Self.user(from: $0), try Self.passwordHash(from: $0))
                }
            }
        }
        guard let (user, hash) = stored else {
            _ = try PasswordHash.make(password: password, parameters: passwordParameters)
            return nil
        }
        return try hash.matches(password: password) ? user : nil
    }

    public func setPassword(email: String, password: String) throws {
        let email = try Self.normalisedEmail(email)
        try Self.checkPassword(password)
        let hash = try PasswordHash.make(password: password, parameters: passwordParameters)
        try write { db in
            try db.execute(
                sql: """
                    UPDATE user SET password_hash = ?, salt = ?, scrypt_n = ?, scrypt_r = ?, scrypt_p = ?, password_changed_at = ?
                    WHERE email = ?
                    """,
                arguments: [
                    Data(hash.hash), Data(hash.salt), Int64(hash.parameters.cost), Int64(hash.parameters.blockSize),
                    Int64(hash.parameters.parallelism), Date().timeIntervalSince1970, email,
                ])
            guard db.changesCount == 1 else { throw IdentityError.noSuchUser(email) }
        }
    }

    /// Removes the user and every row naming them (their visits, audit rows whose subject or
    /// detail names them) in one transaction. False when there was no such user.
    public func erase(email: String) throws -> Bool {
        try erase(email: email, auditActor: nil) != nil
    }

    /// As `erase(email:)`, reporting what went. With `auditActor`, the same transaction adds an
    /// audit row "user.erase" with the counts only: the log must not name the erased user again.
    public func erase(email: String, auditActor: String?) throws -> Erasure? {
        let email = try Self.normalisedEmail(email)
        let erasure: Erasure? = try write { db in
            try db.execute(sql: "DELETE FROM user WHERE email = ?", arguments: [email])
            guard db.changesCount == 1 else { return nil }
            try db.execute(sql: "DELETE FROM visit WHERE user_email = ?", arguments: [email])
            let visits = db.changesCount
            // Emails are stored lowercase; instr() avoids LIKE's wildcards ('_' is common in emails).
            try db.execute(
                sql: """
                    DELETE FROM audit WHERE subject = ?1 OR instr(lower(detail), ?1) > 0
                    OR instr(lower(actor), ?1) > 0
                    """,
                arguments: [email])
            let erasure = Erasure(email: email, visits: visits, auditEntries: db.changesCount)
            if let auditActor {
                try Self.insertAudit(
                    db, actor: auditActor, action: "user.erase",
                    detail: "erased one registered user, \(erasure.visits) visits and \(erasure.auditEntries) audit entries",
                    subject: nil)
            }
            return erasure
        }
        if erasure != nil {
            // The write-ahead log still holds the pages as they were before the erase: copy the
            // zeroed pages back and empty the log. Busy readers can make this partial; the next
            // checkpoint finishes it.
            try? queue.writeWithoutTransaction { db in _ = try db.checkpoint(.truncate) }
        }
        return erasure
    }

    // MARK: Visits

    /// Records a visit; `user` is the email of a registered user (nil for a guest). Visits older
    /// than the retention period are purged in the same transaction.
    public func recordVisit(nickname: String, address: String, mac: String?, meeting: String, at: Date, user: String? = nil) throws {
        let nickname = try Self.validatedText(nickname, field: "nickname", maximum: 100)
        let address = try Self.validatedText(address, field: "address", maximum: 64)
        let mac = try mac.map { try Self.validatedMAC($0) }
        let meeting = try Self.validatedText(meeting, field: "meeting", maximum: 128)
        let user = try user.map { try Self.normalisedEmail($0) }
        let cutoff = at.timeIntervalSince1970 - guestRetention.seconds
        try write { db in
            try db.execute(
                sql: "INSERT INTO visit (nickname, address, mac, meeting, user_email, at) VALUES (?, ?, ?, ?, ?, ?)",
                arguments: [nickname, address, mac, meeting, user, at.timeIntervalSince1970])
            try db.execute(sql: "DELETE FROM visit WHERE at < ?", arguments: [cutoff])
        }
    }

    /// Deletes the visits older than the retention period; returns how many went.
    @discardableResult
    public func purgeExpiredVisits(now: Date) throws -> Int {
        let cutoff = now.timeIntervalSince1970 - guestRetention.seconds
        return try write { db in
            try db.execute(sql: "DELETE FROM visit WHERE at < ?", arguments: [cutoff])
            return db.changesCount
        }
    }

    /// Oldest first.
    public func visits() throws -> [Visit] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM visit ORDER BY at, id").map { row in
                Visit(
                    id: row["id"], nickname: row["nickname"], address: row["address"], mac: row["mac"],
                    meeting: row["meeting"], user: row["user_email"], at: Date(timeIntervalSince1970: row["at"]))
            }
        }
    }

    // MARK: Audit log

    /// Appends an audit row. `detail` must never hold a secret; `subject` is the email of the
    /// registered user the row is about, so that `erase` finds it.
    public func audit(actor: String, action: String, detail: String, subject: String? = nil) throws {
        let actor = try Self.validatedText(actor, field: "audit actor", maximum: 512)
        let action = try Self.validatedText(action, field: "audit action", maximum: 64)
        let detail = try Self.validatedText(detail, field: "audit detail", maximum: 2048, allowEmpty: true)
        let subject = try subject.map { try Self.normalisedEmail($0) }
        try write { db in try Self.insertAudit(db, actor: actor, action: action, detail: detail, subject: subject) }
    }

    /// The newest `limit` entries, newest first.
    public func auditEntries(limit: Int) throws -> [AuditEntry] {
        precondition(limit >= 0, "negative limit")
        return try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM audit ORDER BY id DESC LIMIT ?", arguments: [limit]).map { row in
                AuditEntry(
                    id: row["id"], at: Date(timeIntervalSince1970: row["at"]), actor: row["actor"], action: row["action"],
                    detail: row["detail"], subject: row["subject"])
            }
        }
    }

    private static func insertAudit(_ db: Database, actor: String, action: String, detail: String, subject: String?) throws {
        try db.execute(
            sql: "INSERT INTO audit (at, actor, action, detail, subject) VALUES (?, ?, ?, ?, ?)",
            arguments: [Date().timeIntervalSince1970, actor, action, detail, subject])
    }

    // MARK: Access

    /// Runs `body` in one write transaction; our own refusals pass through, GRDB's become `.storage`.
    private func write<T>(_ body: (Database) throws -> T) throws -> T {
        do {
            return try queue.write { db in try body(db) }
        } catch let error as IdentityError {
            throw error
        } catch {
            throw IdentityError.storage("\(error)")
        }
    }

    private func read<T>(_ body: (Database) throws -> T) throws -> T {
        do {
            return try queue.read { db in try body(db) }
        } catch let error as IdentityError {
            throw error
        } catch {
            throw IdentityError.storage("\(error)")
        }
    }

    private static func user(from row: Row) -> User {
        User(
            email: row["email"], displayName: row["display_name"], created: Date(timeIntervalSince1970: row["created_at"]),
            passwordChanged: Date(timeIntervalSince1970: row["password_changed_at"]))
    }

    private static func passwordHash(from row: Row) throws -> PasswordHash {
        let n: Int64 = row["scrypt_n"], r: Int64 = row["scrypt_r"], p: Int64 = row["scrypt_p"]
        let hash: Data = row["password_hash"], salt: Data = row["salt"]
        guard n > 1, r > 0, p > 0 else { throw IdentityError.storage("stored scrypt parameters are invalid") }
        return PasswordHash(
            hash: Array(hash), salt: Array(salt),
            parameters: Scrypt.Parameters(cost: UInt64(n), blockSize: UInt64(r), parallelism: UInt64(p)))
    }
}

extension Duration {
    /// Whole and fractional seconds as a Double.
    var seconds: Double {
        let (whole, attoseconds) = components
        return Double(whole) + Double(attoseconds) / 1e18
    }
}
