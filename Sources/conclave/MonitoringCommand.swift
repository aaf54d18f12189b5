import ArgumentParser
import ConclaveControl
import ConclaveSystem
import Glibc
import SystemPackage

struct MonitoringCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "monitoring", abstract: "ApMon and Prometheus monitoring (docs/monitoring.md).",
        subcommands: [MonitoringRotateSecretCommand.self])
}

/// Replaces the pseudonym secret of privacy mode `pseudonymous`. The running control worker
/// owns DIR/db, so it is asked over the admin socket; with no daemon running the file is
/// written here (as root, given to the owner of DIR/db).
struct MonitoringRotateSecretCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotate-secret",
        abstract: "Replace the pseudonym secret: pseudonyms sent from now on cannot be linked to earlier ones.")

    @Option(help: "State directory (used when the daemon is not running).") var state = "/data/conclave"
    @OptionGroup var admin: AdminSocketOptions

    func run() throws {
        let socketPath = admin.runDirectory + "/admin.sock"
        if FilePath(socketPath).exists {
            try admin.request(["op": .string("monitoring-rotate-secret")]) { _ in
                CommandOutput.line("monitoring pseudonym secret rotated by the running daemon")
            }
            return
        }
        let directory = FilePath(state).appending("db")
        guard directory.exists else {
            throw ValidationError("\(directory) does not exist and no daemon is running (\(socketPath)); nothing to rotate")
        }
        try MonitoringSecret.rotate(databaseDirectory: directory)
        CommandOutput.line("monitoring pseudonym secret rotated in \(directory) (takes effect when the daemon starts)")
    }
}
