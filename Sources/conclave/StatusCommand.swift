import ArgumentParser
import ConclaveSystem
import FoundationEssentials
import Glibc

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show the daemon's workers, their privileges and the relay's load.")

    @Option(help: "Directory of the admin socket.") var runDirectory = "/run/conclave"
    @Flag(help: "Print the supervisor's JSON answer.") var json = false

    func run() throws {
        let socket = try UnixSocket.connect(path: runDirectory + "/admin.sock")
        defer { close(socket) }
        UnixSocket.writeAll(socket, "status\n")
        guard let line = UnixSocket.readLine(socket, limit: 1 << 20) else {
            throw ValidationError("the supervisor did not answer")
        }
        if json {
            print(line)
            return
        }
        let report = try JSONDecoder().decode(Supervisor.StatusReport.self, from: Data(line.utf8))
        print("role \(report.role), supervisor pid \(report.supervisorPid), up \(Int(report.uptimeSeconds)) s")
        for worker in report.workers {
            guard let pid = worker.pid, let process = worker.process else {
                print("\(worker.role.rawValue): not running (restarts \(worker.restarts))")
                continue
            }
            let capabilities = ["CapEff", "CapPrm", "CapBnd"].map { "\($0) \(String(process.capabilities[$0] ?? 0, radix: 16))" }
            let figures = (worker.status ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key) \(Self.text($0.value))" }
            print("\(worker.role.rawValue): pid \(pid), uid \(process.uids.first ?? 0), \(capabilities.joined(separator: ", ")), "
                + "NoNewPrivs \(process.noNewPrivileges ? 1 : 0), up \(Int(worker.uptimeSeconds ?? 0)) s, restarts \(worker.restarts)"
                + (figures.isEmpty ? "" : "; " + figures.joined(separator: ", ")))
        }
    }

    private static func text(_ value: JSONValue) -> String {
        switch value {
        case .string(let text): text
        case .number(let number): number == number.rounded() ? String(Int64(number)) : String(number)
        case .bool(let flag): String(flag)
        case .null: "null"
        case .array, .object: "…"
        }
    }
}
