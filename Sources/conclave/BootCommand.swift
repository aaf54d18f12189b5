import ArgumentParser
import ConclaveConsole
import ConclaveSystem
import ConclaveUpdate
import FoundationEssentials
import Glibc
import SystemPackage

/// busybox init's second `::sysinit:` step, after rcS has mounted /proc, /sys, /dev, /run and
/// /data and loaded the board's modules (docs/image.md): prepares the data partition's layout,
/// starts the log ring, applies the network and tuning as `conclave net apply` does, starts
/// udhcpc where DHCP is configured, reports the boot state, and leaves a background health
/// check that marks the slot good once the daemon runs both workers.
struct BootCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "boot", abstract: "Boot-time setup (init's sysinit): data layout, network, tuning, boot state, health check.",
        subcommands: [BootHealthCheckCommand.self])

    @Option(help: "State directory on the data partition.") var state = "/data/conclave"
    @Option(help: "The A/B boot state file.") var bootState = "/data/bootstate"
    @Option(help: "Seconds the background health check waits for the daemon.") var healthTimeout = 120

    func run() throws {
        let started = BootLog.uptime()
        BootLog.say("start uptime=\(started)")
        let stateDirectory = FilePath(state)
        do {
            for line in try DataLayout(stateDirectory: stateDirectory).prepare() { BootLog.say(line) }
        } catch {
            BootLog.say("data layout: \(error)")
        }
        startLogRing()

        let network = ApplianceNetwork(stateDirectory: stateDirectory)
        waitForConfiguredLinks(network)
        do {
            for line in try network.apply() { BootLog.say("net: \(line)") }
        } catch {
            BootLog.say("net: \(error)")
        }
        do {
            let hostname = try? NetworkConfiguration.load(stateDirectory: stateDirectory).network.hostname
            for line in try network.reconcileDHCPClients(hostname: hostname ?? nil) { BootLog.say("net: \(line)") }
        } catch {
            BootLog.say("net: DHCP client: \(error)")
        }

        let slots = (try? BootStateStore(path: FilePath(bootState)).load()) ?? BootState()
        let booted = (try? Files.read(FilePath("/run/boot-slot"))).map { String(decoding: $0, as: UTF8.self).filter { $0 == "A" || $0 == "B" } }
        BootLog.say("boot state: order '\(slots.order.joined(separator: " "))' A_left=\(slots.triesLeft["A"] ?? 0) B_left=\(slots.triesLeft["B"] ?? 0) booted=\(booted ?? "none")")
        if let booted, booted != slots.primary {
            BootLog.say("FALLBACK: slot \(slots.primary) did not come up; running slot \(booted)")
        }
        // The update installer records a rollback (the new slot did not come up) at once, so
        // the console, the API and monitoring can show it.
        do {
            let state = try UpdateInstaller(environment: try updateEnvironment()).reconcileAtBoot()
            if let rollback = state.rollback { BootLog.say("ROLLBACK: \(rollback)") }
        } catch {
            BootLog.say("update state: \(error)")
        }
        if let booted, !booted.isEmpty {
            let arguments = ["conclave", "boot", "health-check", "--boot-state", bootState, "--timeout", "\(healthTimeout)", "--slot", booted]
            do { _ = try ProcessSpawner.spawn("/proc/self/exe", arguments: arguments, descriptors: []) } catch {
                BootLog.say("health check not started: \(error)")
            }
        }
        CommandOutput.line("BOOT-DONE uptime=\(BootLog.uptime()) slot=\(booted ?? "none")")
    }

    private func updateEnvironment() throws -> UpdateEnvironment {
        try UpdateEnvironment.system(bootStatePath: bootState)
    }

    private func startLogRing() {
        // busybox syslogd with an in-memory ring (`logread`): the daemon's log does not wear flash.
        guard FilePath("/sbin/syslogd").exists, !FilePath("/dev/log").exists else { return }
        do { _ = try ProcessSpawner.spawn("/sbin/syslogd", arguments: ["syslogd", "-C512"], descriptors: []) } catch {
            BootLog.say("syslogd: \(error)")
        }
    }

    /// NIC modules were just loaded: give configured interfaces (and eth0) up to 3 s to appear.
    private func waitForConfiguredLinks(_ network: ApplianceNetwork) {
        let configured = (try? NetworkConfiguration.load(stateDirectory: network.stateDirectory).network.interfaces.keys.sorted()) ?? []
        let names = Set(configured.isEmpty ? ["eth0"] : configured)
        for _ in 0..<30 {
            if names.allSatisfy({ FilePath("/sys/class/net/\($0)").exists }) { return }
            usleep(100_000)
        }
        BootLog.say("net: not present after 3 s: \(names.filter { !FilePath("/sys/class/net/\($0)").exists }.sorted().joined(separator: " "))")
    }
}

/// The background half of `conclave boot`: the health check. Once `conclave supervise` runs
/// both workers, the update installer marks the booted slot good (its tries back, the update's
/// outcome recorded). Until then the slot keeps its spent try, and enough failed boots fall
/// back to the other slot. Further health checks go here.
struct BootHealthCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "health-check", abstract: "Mark the booted slot good once the daemon runs both workers.", shouldDisplay: false)

    @Option var bootState = "/data/bootstate"
    @Option var timeout = 120
    @Option var slot: String
    @Option var runDirectory = "/run/conclave"

    func run() throws {
        let daemon = DaemonLink(runDirectory: runDirectory)
        for _ in 0..<max(1, timeout) {
            if let report = daemon.status(), report.workers.count == 2, report.workers.allSatisfy({ $0.pid != nil }) {
                do {
                    let state = try UpdateInstaller(environment: try UpdateEnvironment.system(bootStatePath: bootState)).markGood()
                    BootLog.say("slot \(slot) healthy (daemon and both workers up), marked good uptime=\(BootLog.uptime())"
                        + (state.lastResult.map { "; \($0)" } ?? ""))
                } catch {
                    BootLog.say("slot \(slot): marking it good failed: \(error)")
                }
                return
            }
            sleep(1)
        }
        BootLog.say("slot \(slot) NOT marked good: the daemon did not come up within \(timeout) s")
    }
}

enum BootLog {
    static func say(_ line: String) {
        CommandOutput.line("boot: \(line)")
    }

    static func uptime() -> String {
        guard let bytes = try? Files.read(FilePath("/proc/uptime")) else { return "?" }
        return String(String(decoding: bytes, as: UTF8.self).prefix { $0 != " " })
    }
}

/// The data partition's layout under the state directory; created on first boot, checked on
/// every boot (modes put right).
struct DataLayout {
    let stateDirectory: FilePath

    func prepare() throws -> [String] {
        var lines: [String] = []
        let firstBoot = !stateDirectory.appending("conclave.json").exists && !stateDirectory.appending("console").exists
        try stateDirectory.removingLastComponent().makeDirectory(permissions: FilePermissions(rawValue: 0o755))
        // db/ belongs to the identity store, which creates it with the owner its worker needs.
        for (name, mode) in [("", 0o755), ("pki", 0o700), ("console", 0o700)] as [(String, UInt32)] {
            let path = name.isEmpty ? stateDirectory : stateDirectory.appending(name)
            try path.makeDirectory(permissions: FilePermissions(rawValue: mode))
            guard chmod(path.string, mode_t(mode)) == 0 else { throw Errno(rawValue: errno) }
        }
        try stateDirectory.synchronizeDirectory()
        if firstBoot { lines.append("first boot: created \(stateDirectory) (pki, console); the console runs the setup wizard") }
        if !Self.isMountPoint(stateDirectory.removingLastComponent()) {
            lines.append("WARNING: \(stateDirectory.removingLastComponent()) is not a mounted partition: state is lost at power-off")
        }
        return lines
    }

    static func isMountPoint(_ path: FilePath) -> Bool {
        guard let bytes = try? Files.read(FilePath("/proc/mounts")) else { return false }
        return String(decoding: bytes, as: UTF8.self).split(separator: "\n").contains { line in
            line.split(separator: " ").dropFirst().first.map(String.init) == path.string
        }
    }
}
