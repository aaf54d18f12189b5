import ConclaveCrypto
import ConclavePKI
import ConclaveSystem
import FoundationEssentials
import Glibc
import SystemPackage

/// Limits on pasted input: a certificate chain fits easily, a runaway paste does not.
public enum PasteLimits {
    public static let bytes = 64 * 1024
    public static let lines = 600
    public static let lineLength = 4096
}

/// Why the session ended.
public enum SessionEnd: Equatable, Sendable { case loggedOut, timedOut, closed }

/// One run of the console on one terminal: status screen, first-boot wizard or login, then
/// the menu. Returns when the terminal closes; init respawns it.
public final class ConsoleSession {
    let terminal: ConsoleTerminal
    let environment: ConsoleEnvironment
    let actions: ConsoleActions
    let clock: () -> Double

    public init(terminal: ConsoleTerminal, environment: ConsoleEnvironment, clock: @escaping () -> Double = { Double(time(nil)) }) {
        self.terminal = terminal
        self.environment = environment
        actions = ConsoleActions(environment: environment)
        self.clock = clock
    }

    struct Closed: Error {}

    // MARK: Output and input helpers

    func say(_ lines: [String]) {
        terminal.write(lines.flatMap { TextLayout.wrap($0, indent: 2) }.joined(separator: "\n") + "\n")
    }

    func say(_ line: String) { say([line]) }

    /// One answer: nil after Ctrl-C (the step is cancelled); throws when the session ends.
    func ask(_ question: String, secret: Bool = false, maximumLength: Int = 1024) throws -> String? {
        terminal.write(question)
        switch terminal.read(secret: secret, maximumLength: maximumLength) {
        case .line(let text): return text
        case .cancel: return nil
        case .logout: throw SessionEndError(end: .loggedOut)
        case .timedOut:
            terminal.write("\n")
            say("idle for too long: logged out")
            throw SessionEndError(end: .timedOut)
        case .closed: throw SessionEndError(end: .closed)
        }
    }

    /// A pasted PEM block up to its END line (`many`: blocks until an empty line). Bounded in
    /// bytes, lines and line length; nil after Ctrl-C or when the bounds are passed (the paste
    /// is then thrown away, with the reason said).
    func paste(secret: Bool, many: Bool) throws -> String? {
        var lines: [String] = []
        var bytes = 0
        var overflow: String?
        var sawEnd = false
        while true {
            guard let line = try ask("", secret: secret, maximumLength: PasteLimits.lineLength) else {
                say("cancelled: nothing was imported")
                return nil
            }
            let trimmed = line.trimmedLine
            if many && trimmed.isEmpty && (sawEnd || lines.isEmpty) { break }
            if trimmed.isEmpty && lines.isEmpty { continue }
            bytes += line.utf8.count + 1
            if overflow == nil {
                if bytes > PasteLimits.bytes { overflow = "the paste is larger than \(PasteLimits.bytes / 1024) KiB" }
                if lines.count >= PasteLimits.lines { overflow = "the paste has more than \(PasteLimits.lines) lines" }
                if overflow == nil { lines.append(trimmed) }
            }
            if trimmed.hasPrefix("-----END ") && trimmed.hasSuffix("-----") {
                sawEnd = true
                if !many && overflow == nil { break }
            }
            if let overflow, !many, sawEnd || bytes > 4 * PasteLimits.bytes {
                say("refused: \(overflow); nothing was imported")
                return nil
            }
        }
        if let overflow {
            say("refused: \(overflow); nothing was imported")
            return nil
        }
        return lines.joined(separator: "\n") + (lines.isEmpty ? "" : "\n")
    }

    func pause() throws {
        _ = try ask("Press Enter to go on. ")
    }

    // MARK: Run

    public func run() -> SessionEnd {
        do {
            while true {
                try statusScreen()
            }
        } catch let end as SessionEndError {
            return end.end
        } catch {
            say("console error: \(error)")
            return .closed
        }
    }

    /// Status, then (first boot) the wizard or (otherwise) the login.
    func statusScreen() throws {
        reapChildren()
        terminal.clearScreen()
        let snapshot = StatusSnapshot.gather(stateDirectory: environment.stateDirectory, daemon: environment.daemon, version: environment.version, lastUpdate: environment.lastUpdate)
        say(snapshot.lines)
        let firstBoot = !environment.admin.exists
        say(firstBoot
            ? "Enter: refresh  1: first-boot setup"
            : "Enter: refresh  1: log in  2: password recovery")
        guard let choice = try ask("> ")?.trimmedLine else { return }
        switch (choice, firstBoot) {
        case ("1", true): try runWizard()
        case ("1", false):
            if try login() { try mainMenu() }
        case ("2", false): try passwordRecovery()
        default: return
        }
    }

    // MARK: Wizard

    func runWizard() throws {
        let anchors = (try? environment.certificates.trustAnchors()) ?? []
        var wizard = FirstBootWizard(defaultRole: (try? environment.currentConfiguration().role) ?? environment.boardRole,
                                     interface: environment.interface, storedAnchors: anchors)
        var action = FirstBootWizard.Action.ask(wizard.prompt())
        while true {
            let prompt: Prompt
            switch action {
            case .leave:
                say("first-boot setup left; nothing was changed")
                return
            case .finished(let plan):
                say("applying …")
                do {
                    say(try actions.applyFirstBoot(plan))
                    say("done: log in with the new password")
                } catch {
                    say("refused: \(FirstBootWizard.reason(error))")
                    say("the wizard runs again at the next login prompt")
                }
                try pause()
                return
            case .ask(let next): prompt = next
            case .refused(let reason, let next):
                say("refused: \(reason)")
                prompt = next
            }
            say(prompt.text)
            let answer: String?
            switch prompt.kind {
            case .line: answer = try ask(prompt.question)
            case .secret: answer = try ask(prompt.question, secret: true, maximumLength: AdminAccount.maximumLength + 1)
            case .paste(let secret): answer = try paste(secret: secret, many: false)
            case .pasteMany: answer = try paste(secret: false, many: true)
            }
            action = answer.map { wizard.handle($0) } ?? wizard.back()
        }
    }

    // MARK: Login

    func login() throws -> Bool {
        let account = environment.admin
        var throttle = account.throttle()
        if let remaining = throttle.remainingLock(now: clock()) {
            say("locked after repeated failures: try again in \(Self.duration(remaining))")
            return false
        }
        guard let password = try ask("Password: ", secret: true, maximumLength: AdminAccount.maximumLength + 1) else { return false }
        let good: Bool
        do { good = try account.verify(password) } catch {
            say("\(error)")
            return false
        }
        if good {
            throttle.recordSuccess()
            try account.saveThrottle(throttle)
            try? environment.audit("login", "admin logged in at the console", nil)
            return true
        }
        let lock = throttle.recordFailure(now: clock())
        try account.saveThrottle(throttle)
        if let lock {
            try? environment.audit("login-locked", "5 failed logins: locked for \(Self.duration(lock))", nil)
            say("wrong password: locked for \(Self.duration(lock))")
        } else {
            try? environment.audit("login-failed", "failed login (\(throttle.failures) of \(LoginThrottle.failuresPerLock))", nil)
            say("wrong password")
        }
        return false
    }

    static func duration(_ seconds: Double) -> String {
        let whole = Int(seconds.rounded(.up))
        return whole >= 60 ? "\((whole + 59) / 60) min" : "\(whole) s"
    }

    func passwordRecovery() throws {
        say(["Password recovery sets a new admin password. Configuration and certificates stay.",
             "It is offered only here, at the physical console."])
        guard try ask("Type RESET PASSWORD to go on: ")?.trimmedLine == "RESET PASSWORD" else {
            say("not confirmed: nothing changed")
            return
        }
        guard let password = try newPassword() else { return }
        say(try actions.setAdminPassword(password, reason: "reset by password recovery at the console"))
        var throttle = environment.admin.throttle()
        throttle.recordSuccess()
        try environment.admin.saveThrottle(throttle)
        try pause()
    }

    /// Asks a new password twice; nil when cancelled or refused (the reason is said).
    func newPassword() throws -> String? {
        guard let first = try ask("New admin password: ", secret: true, maximumLength: AdminAccount.maximumLength + 1),
            let second = try ask("Again: ", secret: true, maximumLength: AdminAccount.maximumLength + 1)
        else { return nil }
        let configuration = try? environment.currentConfiguration()
        let names = [configuration?.fqdn, configuration?.network.hostname, Self.hostname()].compactMap { $0 }
        do { try AdminAccount.validate(first, confirmation: second, hostnames: names) } catch {
            say("refused: \(error)")
            return nil
        }
        return first
    }

    static func hostname() -> String {
        var name = [CChar](repeating: 0, count: 256)
        guard gethostname(&name, name.count - 1) == 0 else { return "" }
        return String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    func reapChildren() {
        while waitpid(-1, nil, WNOHANG) > 0 {}
    }
}

struct SessionEndError: Error { let end: SessionEnd }
