import ConclaveIdentity
import ConclaveRelay
import ConclaveSystem
import ConclaveWire
import FoundationEssentials
import Glibc
import Logging
import NIOCore
import NIOPosix
import SystemPackage

/// `conclave worker control` after its privilege drop. The control plane (meetings, joins,
/// keys for the relay) runs on one event loop; this thread serves the supervisor channel and
/// hands each request to that loop. Legs of the configured legs file are kept on the relay
/// too (tests and benchmarks without clients); a reload re-reads it and the configuration.
/// The certificate comes from the supervisor, which alone reads the key file.
public final class ControlWorker {
    private let stateDirectory: FilePath
    private let supervisor: WorkerChannel
    private let log: Logger
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private let pool = NIOThreadPool(numberOfThreads: 1)
    private let plane: ControlPlane
    private let controlListener: Int32?
    private let apiListener: Int32?
    private let metricsListener: Int32?
    private let media: MediaPorts

    /// `controlListener` is the bound, listening control socket (nil: no control server);
    /// `apiListener` the command API's (nil: no command API); `metricsListener` the plain-HTTP
    /// `/metrics` socket when the configuration asks for one.
    public init(
        stateDirectory: FilePath, supervisor: WorkerChannel, relayIPC: Int32, controlListener: Int32?, apiListener: Int32? = nil,
        metricsListener: Int32? = nil, media: MediaPorts, serverVersion: String, log: Logger
    ) throws {
        self.apiListener = apiListener
        self.metricsListener = metricsListener
        self.media = media
        self.stateDirectory = stateDirectory
        self.supervisor = supervisor
        self.log = log
        self.controlListener = controlListener
        let configuration = try DaemonConfiguration.load(stateDirectory: stateDirectory)
        let identity: IdentityStore?
        do {
            identity = try IdentityStore(
                directory: stateDirectory, guestRetention: configuration.guestRetention)
        } catch {
            log.error("identity store not opened, registered users cannot join: \(error)")
            identity = nil
        }
        pool.start()
        plane = ControlPlane(
            eventLoop: group.next(), relay: RelayLink(socket: relayIPC, log: log),
            settings: ControlSettings(configuration: configuration, media: media), identity: identity,
            blockingPool: pool, serverVersion: serverVersion, log: log)
    }

    public func run() throws -> Int32 {
        defer {
            try? pool.syncShutdownGracefully()
            try? group.syncShutdownGracefully()
        }
        try onLoop { plane in
            self.reloadOnLoop(plane)
        }
        if let controlListener {
            _ = try plane.eventLoop.flatSubmit { [plane = LoopConfined(plane)] in ControlServer.start(listeningSocket: controlListener, plane: plane.value) }.wait()
            log.info("control server accepting on wss://…\(ControlServer.path)")
        }
        if let apiListener {
            let channel = LoopConfined(supervisor)
            try onLoop { plane in
                // SOCK_SEQPACKET: each send is one whole message, whichever thread sends it.
                plane.api.sendToSupervisor = { json in try channel.value.send(.supervisorRequest(json: json)) }
            }
            _ = try plane.eventLoop.flatSubmit { [plane = LoopConfined(plane)] in CommandAPIServer.start(listeningSocket: apiListener, plane: plane.value) }.wait()
            log.info("command API accepting (mutual TLS, docs/api.md)")
        }
        if let metricsListener {
            _ = try plane.eventLoop.flatSubmit { [plane = LoopConfined(plane)] in MetricsHTTPServer.start(listeningSocket: metricsListener, plane: plane.value) }.wait()
            log.info("metrics served over plain HTTP on \(MetricsHTTPServer.path)")
        }
        let purge = plane.eventLoop.scheduleRepeatedTask(initialDelay: .seconds(5), delay: .seconds(3600)) { [confined = LoopConfined(plane)] _ in
            let plane = confined.value
            guard let identity = plane.identity else { return }
            do {
                let removed = try identity.purgeExpiredVisits(now: Date())
                if removed > 0 { plane.log.info("removed \(removed) guest visits past their retention") }
            } catch { plane.log.error("guest visit purge: \(error)") }
        }
        defer { purge.cancel() }
        try supervisor.send(.ready)
        while true {
            guard supervisor.waitReadable(timeout: -1) else { continue }
            switch try supervisor.receive() {
            case .closed:
                log.info("supervisor gone: stopping")
                return 0
            case .message(.stop, _):
                log.info("stopping")
                return 0
            case .message(.reload, _):
                log.info("reload")
                try onLoop { plane in self.reloadOnLoop(plane) }
            case .message(.statusRequest, _):
                try supervisor.send(.status(json: try onLoop { $0.statusJSON }))
            case .message(.adminRequest(let json), _):
                let reply = try onLoop { AdminRequests.handle(json, plane: $0) }
                try supervisor.send(.adminReply(json: reply))
            case .message(.credentials(let chain, let key, let ssoKey), _):
                try onLoop { $0.loadCredentials(chain: chain, key: key, ssoKey: ssoKey) }
            case .message(.apiClientCA(let pem), _):
                try onLoop { $0.api.loadClientCA(pem: pem, log: $0.log) }
            case .message(.supervisorReply(let json), _):
                try onLoop { $0.api.supervisorReplied(json) }
            case .message(.peerChannel, let descriptor?):
                log.info("relay worker restarted: sending every meeting and leg again")
                try onLoop { $0.relay.reconnect(socket: descriptor) }
            case .message(let message, let descriptor):
                if let descriptor { close(descriptor) }
                log.critical("supervisor sent \(message), which a control worker does not take")
                return 70
            }
        }
    }

    /// Runs `body` on the control plane's event loop and waits for its result.
    private func onLoop<T: Sendable>(_ body: @escaping (ControlPlane) -> T) throws -> T {
        let confined = LoopConfined((plane, body))
        return try plane.eventLoop.submit { confined.value.1(confined.value.0) }.wait()
    }

    /// Re-reads the configuration, the certificate and the legs file. A bad configuration
    /// file is reported and changes nothing.
    private func reloadOnLoop(_ plane: ControlPlane) {
        let configuration: DaemonConfiguration
        do { configuration = try DaemonConfiguration.load(stateDirectory: stateDirectory) } catch {
            log.error("configuration not reloaded: \(error)")
            return
        }
        plane.apply(ControlSettings(configuration: configuration, media: media))
        plane.api.pinnedFingerprints = Set(configuration.apiClientFingerprints)
        plane.applyMonitoring(configuration.monitoring, secretDirectory: stateDirectory.appending("db"))
        guard let name = configuration.legsFile else { return }
        let path = name.hasPrefix("/") ? FilePath(name) : stateDirectory.appending(name)
        do {
            let file = try LegsFile(parsing: Data(try Files.read(path)))
            try plane.relay.synchronizeFileLegs(file.legs)
            log.info("relay holds \(plane.relay.legCount) legs in \(plane.relay.meetingCount) meetings")
        } catch {
            log.error("legs file \(path): \(error)")
        }
    }
}

/// Hands a value that belongs to the control plane's event loop to a closure that runs there.
/// (`NIOLoopBound` checks the loop when it is made; these are made on the worker's main thread.)
struct LoopConfined<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
