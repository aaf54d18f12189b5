import ArgumentParser
import ConclaveConsole
import ConclaveSystem
import ConclaveUpdate
import Glibc
import SystemPackage

/// What init respawns on ttyS0 and tty1 (docs/console.md): the status screen, the first-boot
/// wizard, the login and the menus. Runs as root on the physical console only.
struct ConsoleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "console", abstract: "The appliance console: status, first-boot wizard, login and setup menus.")

    @Option(help: "State directory (configuration, PKI, admin account).") var state = "/data/conclave"
    @Option(help: "Terminal device (default: standard input and output, as init starts it).") var tty: String?
    @Flag(help: "Write state only: leave the host's network, the daemon and the power alone (tests).") var noApply = false
    @Option(help: "Directory of the daemon's admin socket.") var runDirectory = "/run/conclave"
    @Option(help: "Seconds without a key before the session logs out.") var idleTimeout = 600.0

    func run() throws {
        guard idleTimeout > 0 else { throw ValidationError("--idle-timeout must be positive") }
        let board = BoardFile.read()
        var environment = ConsoleEnvironment(
            stateDirectory: FilePath(state), appliesToHost: !noApply, runDirectory: runDirectory,
            version: board["VERSION"].map { "\(VersionReport.conclaveVersion) (\($0))" } ?? VersionReport.conclaveVersion,
            boardRole: board["ROLE"].flatMap(DaemonConfiguration.Role.init(rawValue:)) ?? .server,
            audit: ConsoleAuditLog(stateDirectory: FilePath(state)).record)
        environment.lastUpdate = {
            guard let state = try? UpdateInstaller(environment: UpdateEnvironment.system()).status() else { return nil }
            return state.rollback.map { "ROLLBACK: \($0)" } ?? state.lastResult
        }
        let terminal = try TTYTerminal(path: tty, idleTimeout: idleTimeout, terminalType: getenv("TERM").map { String(cString: $0) })
        defer { terminal.restore() }
        _ = ConsoleSession(terminal: terminal, environment: environment).run()
    }
}

/// `/etc/conclave/board`, written by scripts/build-image: shell assignments (BOARD, ROLE, VERSION …).
enum BoardFile {
    static func read(_ path: String = "/etc/conclave/board") -> [String: String] {
        guard let bytes = try? Files.read(FilePath(path)) else { return [:] }
        var values: [String: String] = [:]
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            var value = line[line.index(after: equals)...]
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = value.dropFirst().dropLast() }
            values[String(line[..<equals])] = String(value)
        }
        return values
    }
}
