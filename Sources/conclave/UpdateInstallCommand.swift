import ArgumentParser
import ConclaveCrypto
import ConclaveUpdate
import Glibc

struct UpdateInstallCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "install", abstract: "Verify a bundle and write it to the inactive slot; the next boot starts it.")

    @Argument(help: "The bundle (.raucb).") var bundle: String
    @Flag(help: "Allow an equal or older version (console only: asks for the version to be typed).") var forceDowngrade = false
    @Flag(help: "Reboot once the slot is written.") var reboot = false
    @OptionGroup var system: UpdateSystemOptions

    func run() throws {
        let environment = try system.environment()
        let installer = UpdateInstaller(environment: environment)
        let keyring = try UpdatePolicy.keyring(at: environment.configuration.keyringPath)
        if forceDowngrade { try confirmDowngrade(keyring: keyring, running: environment.runningVersion) }
        var lastPercent: UInt64 = 101
        let state: UpdateState
        do {
            state = try installer.install(bundle: bundle, keyring: keyring, allowDowngrade: forceDowngrade) { written, total in
                let percent = total == 0 ? 100 : written * 100 / total
                if percent / 10 != lastPercent / 10 { CommandOutput.line("writing: \(percent)%") }
                lastPercent = percent
            }
        } catch {
            CommandOutput.error("update not installed: \(error)")
            throw ExitCode.failure
        }
        for line in state.summaryLines { CommandOutput.line(line) }
        if reboot {
            _ = try installer.prepareReboot()
            CommandOutput.line("rebooting")
            execv("/sbin/reboot", [strdup("reboot"), nil])
            throw ValidationError("cannot run /sbin/reboot: \(String(cString: strerror(errno)))")
        }
    }

    /// A downgrade is a console decision: the operator types the version shown. Never over the
    /// API, never from a pipe or a script.
    private func confirmDowngrade(keyring: TrustStore, running: String?) throws {
        guard isatty(STDIN_FILENO) == 1, isatty(STDOUT_FILENO) == 1 else {
            throw ValidationError("--force-downgrade needs the console: an interactive terminal to type the confirmation")
        }
        let (manifest, _) = try BundleVerifier.inspect(BundleFile(path: bundle), keyring: keyring)
        CommandOutput.line("Installing version \(manifest.version) over the running \(running ?? "unknown") version.")
        CommandOutput.line("Type the version \(manifest.version) to confirm the downgrade: ", terminator: "")
        guard let answer = readLine(), String(answer.filter { $0 != " " && $0 != "\t" && $0 != "\r" }) == manifest.version else {
            throw ValidationError("downgrade not confirmed; nothing was changed")
        }
    }
}
