import ArgumentParser
import ConclaveControl
import ConclaveRelay
import ConclaveSystem
import Glibc
import Logging
import SystemPackage

/// `conclave worker relay|control`: what the supervisor re-executes. Not for people.
struct WorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker", abstract: "A daemon worker (started by conclave supervise).",
        shouldDisplay: false, subcommands: [RelayWorkerCommand.self, ControlWorkerCommand.self])
}

struct WorkerAccountOptions: ParsableArguments {
    @Option var state: String
    @Option var user: String
    @Option var uid: UInt32
    @Option var gid: UInt32

    /// Drops to the worker's account with no capabilities. Runs before any thread starts.
    func dropPrivileges() throws {
        Privileges.dieWithParent()
        let account = SystemAccount.resolve(name: user, fallbackUID: uid, fallbackGID: gid)
        try Privileges.drop(to: account)
    }
}

struct RelayWorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "relay", abstract: "The relay worker.")

    @OptionGroup var account: WorkerAccountOptions
    @Option var udpSockets: Int
    @Option var tcpListener: Int
    @Option var securityMode: SecurityMode

    func run() throws {
        try account.dropPrivileges()
        CompactLogHandler.bootstrap()
        let log = Logger(label: "relay")
        let first = Supervisor.Descriptors.firstSocket
        let udp = (0..<Int32(udpSockets)).map { first + $0 }
        let relay = try Relay(
            configuration: .init(threads: udpSockets, securityMode: securityMode),
            udpSockets: udp, tcpListener: tcpListener == 1 ? first + Int32(udpSockets) : nil)
        log.info("serving \(udpSockets) UDP sockets\(tcpListener == 1 ? " and the TCP fallback" : "") as \(getuid()):\(getgid()), no capabilities")
        let supervisor = WorkerChannel(adopting: Supervisor.Descriptors.supervisor)
        let state = FilePath(account.state)
        throw ExitCode(try RelayWorker.run(
            relay: relay, supervisor: supervisor, initialIPC: Supervisor.Descriptors.relayIPC, log: log,
            securityMode: { (try? DaemonConfiguration.load(stateDirectory: state)).flatMap { SecurityMode(rawValue: $0.securityMode) } }))
    }
}

struct ControlWorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "control", abstract: "The control worker.")

    @OptionGroup var account: WorkerAccountOptions
    @Option var mediaPort: UInt16
    @Option var mediaTcpPort: UInt16
    @Option var relayThreads: Int
    @Flag(help: "Descriptor 7 is the plain-HTTP metrics listener.") var metricsListener = false

    func run() throws {
        try account.dropPrivileges()
        CompactLogHandler.bootstrap()
        let log = Logger(label: "control")
        // Descriptor 5 is the control server's listener; 6, the command API's.
        let worker = try ControlWorker(
            stateDirectory: FilePath(account.state), supervisor: WorkerChannel(adopting: Supervisor.Descriptors.supervisor),
            relayIPC: Supervisor.Descriptors.relayIPC, controlListener: Supervisor.Descriptors.firstSocket,
            apiListener: Supervisor.Descriptors.firstSocket + 1,
            metricsListener: metricsListener ? Supervisor.Descriptors.firstSocket + 2 : nil,
            media: .init(udpPort: mediaPort, tcpPort: mediaTcpPort, threads: relayThreads),
            serverVersion: VersionReport.conclaveVersion, log: log)
        throw ExitCode(try worker.run())
    }
}
