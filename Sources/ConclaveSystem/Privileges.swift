internal import CCap
internal import CConclaveSystemShims
import Glibc
import SystemPackage

/// The account a worker runs as: from `/etc/passwd` when it names the user, else the numeric
/// ids the configuration gives (so tests run on machines without the appliance's accounts).
public struct SystemAccount: Sendable, Equatable, CustomStringConvertible {
    public let name: String
    public let uid: UInt32
    public let gid: UInt32

    public init(name: String, uid: UInt32, gid: UInt32) {
        self.name = name
        self.uid = uid
        self.gid = gid
    }

    /// Reads `passwd` directly (a static binary has no NSS modules to ask).
    public static func resolve(name: String, fallbackUID: UInt32, fallbackGID: UInt32, passwd: String = "/etc/passwd") -> SystemAccount {
        if let file = fopen(passwd, "r") {
            defer { fclose(file) }
            var line: UnsafeMutablePointer<CChar>?
            var capacity = 0
            defer { free(line) }
            while getline(&line, &capacity, file) > 0, let line {
                let fields = String(cString: line).split(separator: ":", omittingEmptySubsequences: false)
                if fields.count >= 4, fields[0] == name, let uid = UInt32(fields[2]), let gid = UInt32(fields[3]) {
                    return SystemAccount(name: name, uid: uid, gid: gid)
                }
            }
        }
        return SystemAccount(name: name, uid: fallbackUID, gid: fallbackGID)
    }

    public var description: String { "\(name) (\(uid):\(gid))" }
}

public enum PrivilegeError: Error, CustomStringConvertible {
    case threadsAlreadyRunning(Int)
    case call(String, Errno)
    case notDropped(String)

    public var description: String {
        switch self {
        case .threadsAlreadyRunning(let count):
            "\(count) threads run before the privilege drop: capabilities are per thread, so the drop must come first"
        case .call(let name, let error): "\(name): \(error)"
        case .notDropped(let what): "privileges were not dropped: \(what)"
        }
    }
}

/// Capability numbers from <linux/capability.h> that the supervisor keeps or reports.
public enum Capability: Int32, CaseIterable, Sendable {
    case kill = 5, setgid = 6, setuid = 7, setpcap = 8, netBindService = 10, netAdmin = 12
}

public enum Privileges {
    /// Threads of this process (entries in `/proc/self/task`).
    public static func threadCount() -> Int {
        guard let directory = opendir("/proc/self/task") else { return 0 }
        defer { closedir(directory) }
        var count = 0
        while let entry = readdir(directory) {
            if entry.pointee.d_name.0 != UInt8(ascii: ".") { count += 1 }
        }
        return count
    }

    /// Becomes `account` with no capability in any set and no way to gain one: clears the
    /// bounding and ambient sets, sets groups/gid/uid, empties the process sets, sets
    /// no_new_privs, then checks `/proc/self/status`. Capabilities are per thread, so this
    /// refuses to run once a second thread exists.
    public static func drop(to account: SystemAccount) throws(PrivilegeError) {
        let threads = threadCount()
        guard threads == 1 else { throw .threadsAlreadyRunning(threads) }
        // The bounding set can only be cleared while CAP_SETPCAP is held: before the uid change.
        for capability in 0..<cap_max_bits() {
            guard cap_drop_bound(capability) == 0 else { throw .call("cap_drop_bound(\(capability))", Errno(rawValue: errno)) }
        }
        guard cap_reset_ambient() == 0 else { throw .call("cap_reset_ambient", Errno(rawValue: errno)) }
        guard conclave_sys_set_keepcaps(0) == 0 else { throw .call("prctl(PR_SET_KEEPCAPS)", Errno(rawValue: errno)) }
        var groups = [account.gid]
        guard setgroups(1, &groups) == 0 else { throw .call("setgroups", Errno(rawValue: errno)) }
        guard conclave_sys_set_all_gids(account.gid) == 0 else { throw .call("setresgid", Errno(rawValue: errno)) }
        guard conclave_sys_set_all_uids(account.uid) == 0 else { throw .call("setresuid", Errno(rawValue: errno)) }
        try setProcessCapabilities([])
        guard conclave_sys_set_no_new_privs() == 0 else { throw .call("prctl(PR_SET_NO_NEW_PRIVS)", Errno(rawValue: errno)) }

        let status: ProcessStatus
        do { status = try ProcessStatus(pid: getpid()) } catch { throw .notDropped("cannot read /proc/self/status: \(error)") }
        guard status.capabilities.allSatisfy({ $0.value == 0 }) else { throw .notDropped("capability sets \(status.capabilities)") }
        guard status.noNewPrivileges else { throw .notDropped("NoNewPrivs is not set") }
        guard status.uids.allSatisfy({ $0 == account.uid }), status.gids.allSatisfy({ $0 == account.gid }) else {
            throw .notDropped("uids \(status.uids), gids \(status.gids)")
        }
    }

    /// Keeps only `kept` in the bounding, permitted and effective sets (inheritable and ambient
    /// empty): what a long-running root process holds after its start-up.
    public static func restrict(to kept: Set<Capability>) throws(PrivilegeError) {
        let keptNumbers = Set(kept.map(\.rawValue))
        for capability in 0..<cap_max_bits() where !keptNumbers.contains(capability) {
            guard cap_drop_bound(capability) == 0 else { throw .call("cap_drop_bound(\(capability))", Errno(rawValue: errno)) }
        }
        guard cap_reset_ambient() == 0 else { throw .call("cap_reset_ambient", Errno(rawValue: errno)) }
        try setProcessCapabilities(kept.map(\.rawValue))
    }

    /// `cap_set_proc` with exactly `capabilities` permitted and effective.
    private static func setProcessCapabilities(_ capabilities: [Int32]) throws(PrivilegeError) {
        guard let state = cap_init() else { throw .call("cap_init", Errno(rawValue: errno)) }
        defer { cap_free(UnsafeMutableRawPointer(state)) }
        var values = capabilities.map { cap_value_t($0) }
        if !values.isEmpty {
            for flag in [CAP_PERMITTED, CAP_EFFECTIVE] {
                guard cap_set_flag(state, flag, Int32(values.count), &values, CAP_SET) == 0 else {
                    throw .call("cap_set_flag", Errno(rawValue: errno))
                }
            }
        }
        guard cap_set_proc(state) == 0 else { throw .call("cap_set_proc", Errno(rawValue: errno)) }
    }

    /// Asks the kernel to send `signal` to this process when its parent dies (workers use it so
    /// a killed supervisor leaves no orphan holding the media sockets).
    public static func dieWithParent(signal: Int32 = 15 /* SIGTERM */) {
        _ = conclave_sys_set_parent_death_signal(signal)
    }
}

/// What `/proc/<pid>/status` says about a process's identity and privileges.
public struct ProcessStatus: Sendable, Equatable, Codable {
    public let pid: Int32
    public let name: String
    /// Real, effective, saved and filesystem uid / gid.
    public let uids: [UInt32]
    public let gids: [UInt32]
    /// CapInh, CapPrm, CapEff, CapBnd, CapAmb, as the bit masks the kernel prints in hex.
    public let capabilities: [String: UInt64]
    public let noNewPrivileges: Bool

    public init(pid: Int32) throws {
        let text = try String(readingProcFile: "/proc/\(pid)/status")
        var fields: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[String(line[..<colon])] = line[line.index(after: colon)...].trimmingCharacters(in: " \t")
        }
        self.pid = pid
        name = fields["Name"] ?? ""
        uids = (fields["Uid"] ?? "").split(whereSeparator: { $0 == "\t" || $0 == " " }).compactMap { UInt32($0) }
        gids = (fields["Gid"] ?? "").split(whereSeparator: { $0 == "\t" || $0 == " " }).compactMap { UInt32($0) }
        var capabilities: [String: UInt64] = [:]
        for name in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
            capabilities[name] = fields[name].flatMap { UInt64($0, radix: 16) }
        }
        self.capabilities = capabilities
        noNewPrivileges = fields["NoNewPrivs"] == "1"
    }
}

extension String {
    /// Reads a small file whose size `stat` cannot tell (procfs reports 0).
    init(readingProcFile path: String) throws {
        let descriptor = try FileDescriptor.open(FilePath(path), .readOnly)
        defer { try? descriptor.close() }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = try chunk.withUnsafeMutableBytes { try descriptor.read(into: $0) }
            if count == 0 { break }
            bytes += chunk[0..<count]
        }
        self = String(decoding: bytes, as: UTF8.self)
    }

    func trimmingCharacters(in set: String) -> String {
        var view = Substring(self)
        while let first = view.first, set.contains(first) { view = view.dropFirst() }
        while let last = view.last, set.contains(last) { view = view.dropLast() }
        return String(view)
    }
}

extension Substring {
    func trimmingCharacters(in set: String) -> String { String(self).trimmingCharacters(in: set) }
}
