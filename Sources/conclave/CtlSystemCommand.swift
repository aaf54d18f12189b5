import ArgumentParser
import ConclaveSystem
import FoundationEssentials

/// `conclave ctl status`.
struct CtlStatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Version, role, boot slot, uptime, certificate expiry, security mode, workers, load.")
    @OptionGroup var options: CtlOptions

    func run() throws {
        options.show(try options.call("GET", "/v1/status")) { status in
            var lines = [
                "version:       \(text(status["version"]))",
                "role:          \(text(status["role"]))" + (status["slot"].map { ", slot \(text($0))" } ?? ""),
                "uptime:        \(text(status["uptimeSeconds"].map { if case .number(let s) = $0 { .number(s.rounded()) } else { $0 } })) s",
                "security mode: \(text(status["securityMode"]))",
                "load:          \(text(status["load"]))",
                "meetings:      \(text(status["meetings"])), participants \(text(status["participants"])), legs \(text(status["legs"]))",
            ]
            if case .object(let certificate)? = status["certificate"] {
                lines.append("certificate:   \(text(certificate["subject"])), \(text(certificate["daysLeft"])) days left")
            } else {
                lines.append("certificate:   none active")
            }
            if case .array(let workers)? = status["workers"] {
                for case .object(let worker) in workers {
                    lines.append("worker \(text(worker["role"]).padded(8)) pid \(text(worker["pid"])), restarts \(text(worker["restarts"]))")
                }
            }
            return lines
        }
    }
}

/// `conclave ctl security get|set`.
struct CtlSecurityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "security", abstract: "Read or change the system security mode.", subcommands: [Get.self, Set.self])

    struct Get: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the security mode.")
        @OptionGroup var options: CtlOptions

        func run() throws {
            options.show(try options.call("GET", "/v1/system/security")) { ["security mode: \(text($0["mode"]))"] }
        }
    }

    struct Set: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set the security mode (secured or mixed); applies to new legs at once.")
        @OptionGroup var options: CtlOptions
        @Argument(help: "secured or mixed.") var mode: String

        func run() throws {
            options.show(try options.call("PUT", "/v1/system/security", body: .object(["mode": .string(mode)]))) { ["security mode: \(text($0["mode"]))"] }
        }
    }
}

/// `conclave ctl metrics`: the Prometheus text exposition.
struct CtlMetricsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "metrics", abstract: "Print the appliance's Prometheus metrics.")
    @OptionGroup var options: CtlOptions

    func run() throws {
        let response = try options.call("GET", "/metrics")
        CommandOutput.line(String(decoding: response.body, as: UTF8.self), terminator: "")
    }
}

/// `conclave ctl request METHOD PATH [--body JSON]`: any API call, answer printed as is.
struct CtlRequestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "request", abstract: "Send any request to the API and print the answer (JSON bodies).")
    @OptionGroup var options: CtlOptions
    @Argument(help: "GET, POST, PUT, PATCH or DELETE.") var method: String
    @Argument(help: "Path, e.g. /v1/status.") var path: String
    @Option(help: "JSON body.") var body: String?

    func run() throws {
        let value = try body.map { try JSONDecoder().decode(JSONValue.self, from: Data($0.utf8)) }
        let response = try options.call(method.uppercased(), path, body: value)
        if !response.body.isEmpty { CommandOutput.line(String(decoding: response.body, as: UTF8.self), terminator: response.body.last == 10 ? "" : "\n") }
    }
}
