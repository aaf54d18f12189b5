import ArgumentParser
import ConclaveSystem
import Glibc
import Logging
import SystemPackage

struct SuperviseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "supervise",
        abstract: "Run the daemon: bind the sockets, start and watch the relay and control workers (root).",
        discussion: """
            Reads STATE/conclave.json (missing: first-boot defaults). SIGHUP reloads the workers,
            SIGTERM or SIGINT stops control, then relay, and exits 0. `conclave status` asks it
            how things are through RUN-DIRECTORY/admin.sock.
            """)

    @Option(help: "State directory (configuration, PKI).") var state = "/data/conclave"
    @Option(help: "Directory of the admin socket.") var runDirectory = "/run/conclave"
    @Option(help: "Address every socket listens on (overrides the configuration).") var listen: String?
    @Option(help: "Control server TCP port.") var controlPort: UInt16?
    @Option(help: "Command API TCP port.") var apiPort: UInt16?
    @Option(help: "First relay UDP port (one per relay thread).") var mediaPort: UInt16?
    @Option(help: "Media TCP fallback port (0: none).") var mediaTcpPort: UInt16?
    @Option(help: "Seconds to stop both workers before they are killed.") var stopDeadline = 10.0

    func run() throws {
        CompactLogHandler.bootstrap()
        let log = Logger(label: "supervisor")
        guard geteuid() == 0 else { throw ValidationError("conclave supervise runs as root: it binds privileged ports and starts workers under their own accounts") }
        var configuration: DaemonConfiguration
        do { configuration = try DaemonConfiguration.load(stateDirectory: FilePath(state)) } catch {
            log.critical("configuration refused: \(error)")
            throw ExitCode(78)  // EX_CONFIG: init respawns us; nothing was started
        }
        if let listen { configuration.listen = listen }
        if let controlPort { configuration.controlPort = controlPort }
        if let apiPort { configuration.apiPort = apiPort }
        if let mediaPort { configuration.mediaPort = mediaPort }
        if let mediaTcpPort { configuration.mediaTCPPort = mediaTcpPort }
        var options = Supervisor.Options(stateDirectory: FilePath(state))
        options.runDirectory = FilePath(runDirectory)
        options.stopDeadline = stopDeadline
        let supervisor: Supervisor
        do { supervisor = try Supervisor(configuration: configuration, options: options, log: log) } catch {
            log.critical("cannot start: \(error)")
            throw ExitCode(71)
        }
        throw ExitCode(try supervisor.run())
    }
}
