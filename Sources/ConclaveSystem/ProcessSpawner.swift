import Glibc
import SystemPackage

/// Starts a child process with chosen descriptors and nothing else inherited.
public enum ProcessSpawner {
    /// Runs `executable` with `arguments` (argv[0] first). Descriptor `descriptors[i]` appears as
    /// `3 + i` in the child; 0–2 are shared; every other descriptor of ours is close-on-exec.
    /// The child starts with no blocked signals and default dispositions.
    public static func spawn(_ executable: String, arguments: [String], descriptors: [Int32]) throws(Errno) -> pid_t {
        // Move the sources above the targets first, so no dup2 overwrites a later source.
        var moved: [Int32] = []
        defer { for descriptor in moved { close(descriptor) } }
        for descriptor in descriptors {
            let copy = fcntl(descriptor, F_DUPFD_CLOEXEC, 100)
            guard copy >= 0 else { throw Errno(rawValue: errno) }
            moved.append(copy)
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (index, descriptor) in moved.enumerated() {
            posix_spawn_file_actions_adddup2(&actions, descriptor, Int32(3 + index))  // dup2 clears close-on-exec
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = arguments.map { strdup($0) } + [nil]
        defer { for argument in argv { free(argument) } }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
        guard status == 0 else { throw Errno(rawValue: status) }
        return pid
    }

    /// A connected pair of `SOCK_SEQPACKET` Unix sockets (message boundaries kept), close-on-exec.
    public static func socketPair() throws(Errno) -> (Int32, Int32) {
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            throw Errno(rawValue: errno)
        }
        return (pair[0], pair[1])
    }
}

/// When to restart a worker that exited: at once the first time, then doubling up to a
/// ceiling while it keeps dying young; a worker that ran long enough starts the count anew.
public struct RestartPolicy: Sendable, Equatable {
    public var initialDelay = 0.5
    public var maximumDelay = 30.0
    /// A worker that ran at least this long is healthy again.
    public var stableAfter = 30.0
    private(set) var consecutiveFailures = 0

    public init() {}

    /// Records an exit after `lifetime` seconds and returns the delay before the restart.
    public mutating func delayAfterExit(lifetime: Double) -> Double {
        if lifetime >= stableAfter { consecutiveFailures = 0 }
        defer { consecutiveFailures += 1 }
        guard consecutiveFailures > 0 else { return 0 }
        return min(maximumDelay, initialDelay * Double(1 << min(consecutiveFailures - 1, 16)))
    }
}
