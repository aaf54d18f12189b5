import ConclaveSystem
import Glibc
import SystemPackage

/// CPU and memory of another process from `/proc/<pid>/stat`, which any uid may read (the
/// fields used here, utime, stime and rss, are not hidden from other users; `status` and
/// `smaps` would need ptrace access to another uid's process).
public struct ProcessUsage: Equatable, Sendable {
    /// User plus system CPU time, in seconds.
    public var cpuSeconds: Double
    public var residentBytes: Int64

    /// Parses one `/proc/<pid>/stat` line. The command name (field 2) is in parentheses and may
    /// hold spaces and ')', so fields are counted after the last ')'.
    public init?(statLine: String, ticksPerSecond: Double, pageSize: Int64) {
        guard let close = statLine.lastIndex(of: ")") else { return nil }
        let fields = statLine[statLine.index(after: close)...].split(separator: " ")
        // After the name: state(3) … utime(14) stime(15) … rss(24); index = field number - 3.
        guard fields.count > 21, let user = Double(fields[11]), let system = Double(fields[12]), let pages = Int64(fields[21]) else {
            return nil
        }
        cpuSeconds = (user + system) / ticksPerSecond
        residentBytes = pages * pageSize
    }

    init(cpuSeconds: Double, residentBytes: Int64) {
        self.cpuSeconds = cpuSeconds
        self.residentBytes = residentBytes
    }

    public static func read(pid: Int32) -> ProcessUsage? {
        guard let bytes = try? Files.read(FilePath("/proc/\(pid)/stat")) else { return nil }
        return ProcessUsage(
            statLine: String(decoding: bytes, as: UTF8.self), ticksPerSecond: Double(sysconf(Int32(_SC_CLK_TCK))),
            pageSize: Int64(sysconf(Int32(_SC_PAGESIZE))))
    }

    /// The relay worker: the process with the same parent (the supervisor) whose command line
    /// is `conclave worker relay …`. nil when there is none (no supervisor, or it is restarting).
    public static func relayWorkerPID() -> Int32? {
        let parent = getppid()
        guard parent > 1, let entries = try? FilePath("/proc").directoryEntries() else { return nil }
        for entry in entries {
            guard let pid = Int32(entry), pid != getpid() else { continue }
            guard let stat = try? Files.read(FilePath("/proc/\(pid)/stat")) else { continue }
            let line = String(decoding: stat, as: UTF8.self)
            guard let close = line.lastIndex(of: ")") else { continue }
            let fields = line[line.index(after: close)...].split(separator: " ")
            guard fields.count > 1, Int32(fields[1]) == parent else { continue }
            guard let commandLine = try? Files.read(FilePath("/proc/\(pid)/cmdline")) else { continue }
            let arguments = commandLine.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            if arguments.count >= 3, arguments[1] == "worker", arguments[2] == "relay" { return pid }
        }
        return nil
    }
}

/// CPU percentage between two readings of the same process.
struct CPUMeter {
    private var last: (pid: Int32, usage: ProcessUsage, at: Double)?

    /// The process's CPU use since the previous call, in percent of one core (nil the first time).
    mutating func sample(pid: Int32, usage: ProcessUsage, at now: Double) -> Double? {
        defer { last = (pid, usage, now) }
        guard let last, last.pid == pid, now > last.at else { return nil }
        return max(0, (usage.cpuSeconds - last.usage.cpuSeconds) / (now - last.at) * 100)
    }
}
