import Glibc
public import SystemPackage

/// What the console reads: a finished line, or why there is none.
public enum TerminalInput: Equatable, Sendable {
    case line(String)
    /// Ctrl-C: cancel the current step.
    case cancel
    /// Ctrl-D on an empty line.
    case logout
    /// No key for the idle timeout.
    case timedOut
    /// The terminal went away (hang-up, end of file).
    case closed
}

/// The console's terminal, behind a protocol so that sessions can be driven by a script in
/// tests as well as by a TTY.
public protocol ConsoleTerminal: AnyObject {
    /// Writes text; "\n" becomes CR LF.
    func write(_ text: String)
    /// Reads one line with the line editor; a secret is not echoed.
    func read(secret: Bool, maximumLength: Int) -> TerminalInput
    /// Clears the screen if the terminal can, else does nothing.
    func clearScreen()
    /// Runs a program on this terminal in the kernel's normal line mode, then returns to raw
    /// mode; its exit status.
    func runInteractive(_ path: String, arguments: [String]) -> Int32
}

public struct TerminalError: Error, CustomStringConvertible {
    public let operation: String
    public let errno: Errno
    public var description: String { "\(operation): \(errno)" }
}

/// A raw-mode TTY (`tcgetattr`/`cfmakeraw`/`tcsetattr`), restored by `restore()`: no kernel
/// line discipline, so the line editor sees every byte, Ctrl-C included (no SIGINT).
public final class TTYTerminal: ConsoleTerminal {
    let input: Int32
    let output: Int32
    private let ownsDescriptor: Bool
    private var saved = termios()
    private var editor = LineEditor()
    private var queued: [LineEditor.Event] = []
    /// Seconds without a key before `read` answers `.timedOut`.
    public var idleTimeout: Double
    public let canClear: Bool

    /// `path` nil: standard input and output (what init gives a respawned console).
    public init(path: String?, idleTimeout: Double, terminalType: String?) throws {
        if let path {
            let descriptor = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC)
            guard descriptor >= 0 else { throw TerminalError(operation: "open \(path)", errno: Errno(rawValue: errno)) }
            input = descriptor
            output = descriptor
            ownsDescriptor = true
        } else {
            input = STDIN_FILENO
            output = STDOUT_FILENO
            ownsDescriptor = false
        }
        self.idleTimeout = idleTimeout
        let type = terminalType ?? ""
        canClear = !(type.isEmpty || type == "dumb" || type == "unknown")
        guard tcgetattr(input, &saved) == 0 else {
            throw TerminalError(operation: "tcgetattr (not a terminal?)", errno: Errno(rawValue: errno))
        }
        var raw = saved
        cfmakeraw(&raw)  // also VMIN 1, VTIME 0: a read returns after one byte
        guard tcsetattr(input, TCSAFLUSH, &raw) == 0 else {
            throw TerminalError(operation: "tcsetattr", errno: Errno(rawValue: errno))
        }
    }

    deinit {
        restore()
        if ownsDescriptor { close(input) }
    }

    public func restore() { _ = tcsetattr(input, TCSADRAIN, &saved) }

    public func write(_ text: String) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count + 16)
        for byte in text.utf8 {
            if byte == 0x0a { bytes.append(0x0d) }
            bytes.append(byte)
        }
        writeRaw(bytes)
    }

    private func writeRaw(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { Glibc.write(output, $0.baseAddress! + offset, bytes.count - offset) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { return }
            offset += written
        }
    }

    public func runInteractive(_ path: String, arguments: [String]) -> Int32 {
        restore()
        defer {
            var raw = saved
            cfmakeraw(&raw)
            _ = tcsetattr(input, TCSAFLUSH, &raw)
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for target in Int32(0)...2 { posix_spawn_file_actions_adddup2(&actions, target == 0 ? input : output, target) }
        let argv = arguments.map { strdup($0) } + [nil]
        defer { for argument in argv { free(argument) } }
        var pid: pid_t = 0
        guard posix_spawn(&pid, path, &actions, nil, argv, environ) == 0 else { return -1 }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return status
    }

    public func clearScreen() {
        if canClear { writeRaw(Array("\u{1b}[H\u{1b}[2J".utf8)) }
    }

    public func read(secret: Bool, maximumLength: Int) -> TerminalInput {
        editor.isSecret = secret
        editor.maximumLength = maximumLength
        // Lines already typed or pasted stay queued: a paste arrives as many lines at once.
        var lastKey = Self.now()
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            if !queued.isEmpty {
                switch queued.removeFirst() {
                case .line(let text): return .line(text)
                case .cancel: return .cancel
                case .logout: return .logout
                }
            }
            let left = idleTimeout - (Self.now() - lastKey)
            if left <= 0 { return .timedOut }
            var descriptor = pollfd(fd: input, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, Int32(min(left, 3600) * 1000) + 1)
            if ready < 0 && errno == EINTR { continue }
            if ready == 0 { continue }
            guard ready > 0 else { return .closed }
            let count = chunk.withUnsafeMutableBytes { Glibc.read(input, $0.baseAddress, $0.count) }
            if count < 0 && (errno == EINTR || errno == EAGAIN) { continue }
            guard count > 0 else { return .closed }
            lastKey = Self.now()
            let result = editor.feed(chunk[..<count])
            if !result.echo.isEmpty { writeRaw(result.echo) }
            queued += result.events
        }
    }

    static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }
}
