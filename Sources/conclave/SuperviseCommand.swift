import ArgumentParser
import ConclaveControl
import ConclaveIdentity
import ConclavePKI
import ConclaveRelay
import ConclaveSystem
import ConclaveUpdate
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
            how things are through RUN-DIRECTORY/admin.sock. With role `room` it binds nothing:
            it drops to the control account and keeps the room in the meeting the room section
            names, joining again whenever the session ends (docs/room-system.md).
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
        if configuration.role == .room { try runRoomSystem(configuration, log: log) }
        var options = Supervisor.Options(stateDirectory: FilePath(state))
        options.runDirectory = FilePath(runDirectory)
        options.stopDeadline = stopDeadline
        let store = CertificateStore(stateDirectory: state)
        let ssoKeyPath = configuration.ssoKeyPath(stateDirectory: FilePath(state))
        options.controlCredentials = {
            let ssoKey = (try? Files.read(ssoKeyPath)) ?? []
            guard let active = try? store.active() else { return ([], [], ssoKey) }
            let chain = ([active.certificate] + active.intermediates).map(\.pemEncoded).joined()
            return (Array(chain.utf8), Array(active.key.pemEncoded.utf8), ssoKey)
        }
        options.apiClientCA = { (try? Files.read(store.apiCAPath)) ?? [] }
        let requests = SupervisorRequests(stateDirectory: FilePath(state), bootFacts: Self.bootFacts)
        options.controlRequest = { json, status in requests.handle(json, status: status) }
        let supervisor: Supervisor
        do {
            // DIR/db, the identity store, belongs to the control worker's account.
            let account = configuration.controlAccount
            let owner = SystemAccount.resolve(name: account.user, fallbackUID: account.uid, fallbackGID: account.gid)
            try IdentityStore.prepareDirectory(stateDirectory: FilePath(state), uid: owner.uid, gid: owner.gid)
            supervisor = try Supervisor(configuration: configuration, options: options, log: log)
        } catch {
            log.critical("cannot start: \(error)")
            throw ExitCode(71)
        }
        throw ExitCode(try supervisor.run())
    }

    /// The booted slot (`/run/boot-slot`, written by the slot selector) and the boot order, for
    /// the command API's status; empty off the appliance image.
    @Sendable static func bootFacts() -> [String: JSONValue] {
        var facts: [String: JSONValue] = [:]
        if let bytes = try? Files.read(FilePath("/run/boot-slot")) {
            let slot = String(decoding: bytes, as: UTF8.self).filter { !$0.isWhitespace }
            if BootState.slots.contains(slot) { facts["slot"] = .string(slot) }
        }
        if FilePath("/data/bootstate").exists, let boot = try? BootStateStore(path: "/data/bootstate").load() {
            facts["bootOrder"] = .array(boot.order.map { .string($0) })
            facts["slotsGood"] = .object(Dictionary(uniqueKeysWithValues: BootState.slots.map { ($0, .bool(boot.isGood($0))) }))
        }
        return facts
    }

    /// Role `room`: read what the room agent needs (trust anchors, secrets) as root, drop to
    /// the control account with no capabilities, and stay in the configured meeting.
    private func runRoomSystem(_ configuration: DaemonConfiguration, log: Logger) throws -> Never {
        guard let room = configuration.room else {
            // First boot of a room system: nothing to join until the console sets it up.
            log.warning("role room but no room section in conclave.json: waiting for the console to configure it")
            while true { sleep(3600) }
        }
        func path(_ name: String) -> String { name.hasPrefix("/") ? name : FilePath(state).appending(name).string }
        let (host, port) = try RoomJoinCommand.split(room.server)
        let credentials: RoomClient.Credentials =
            if let nickname = room.nickname { .guest(nickname: nickname) }
            else if let email = room.email, let passwordFile = room.passwordFile { .user(email: email, password: try RoomJoinCommand.secret(path(passwordFile))) }
            else { .token(try RoomJoinCommand.secret(path(room.tokenFile!))) }
        let anchors = try CertificateStore(stateDirectory: state).trustAnchors()
        guard !anchors.isEmpty else { throw ValidationError("the room has no trust anchors for its server: import them (conclave cert trust import)") }
        let options = RoomClient.Options(
            server: host, port: port, meeting: room.meeting, passcode: try room.passcodeFile.map { try RoomJoinCommand.secret(path($0)) },
            credentials: credentials, trustAnchors: anchors, rtpIn: try PeerAddress(parsing: room.rtpIn),
            rtpOut: try PeerAddress(parsing: room.rtpOut), preferTCP: room.tcp, clientVersion: VersionReport.conclaveVersion)
        let account = configuration.controlAccount
        try Privileges.drop(to: SystemAccount.resolve(name: account.user, fallbackUID: account.uid, fallbackGID: account.gid))
        log.info("room system: joining \(room.meeting) on \(room.server) as \(account.user), no capabilities")
        RoomAgent.run(options: options, log: log)
    }
}
