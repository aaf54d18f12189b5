import ArgumentParser
import ConclaveControl
import ConclaveRelay
import ConclaveSystem
import FoundationEssentials
import Glibc

struct MeetingCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "meeting",
        abstract: "Start, edit, stop and list meetings on the running daemon (root, over the admin socket).",
        subcommands: [MeetingStartCommand.self, MeetingEditCommand.self, MeetingStopCommand.self, MeetingListCommand.self,
                      MeetingShowCommand.self, MeetingKickCommand.self])
}

struct AdminSocketOptions: ParsableArguments {
    @Option(help: "Directory of the admin socket.") var runDirectory = "/run/conclave"
    @Flag(help: "Print the daemon's JSON answer.") var json = false

    /// Sends one meeting request; prints the answer, or fails with the daemon's reason.
    func request(_ body: [String: JSONValue], describe: (MeetingAnswer) -> Void) throws {
        let socket = try UnixSocket.connect(path: runDirectory + "/admin.sock")
        defer { close(socket) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        UnixSocket.writeAll(socket, "meeting " + String(decoding: try encoder.encode(body), as: UTF8.self) + "\n")
        guard let line = UnixSocket.readLine(socket, limit: 1 << 20) else { throw ValidationError("the supervisor did not answer") }
        let answer = try JSONDecoder().decode(MeetingAnswer.self, from: Data(line.utf8))
        guard answer.ok else {
            CommandOutput.error("conclave meeting: \(answer.code ?? "failed"): \(answer.error ?? "refused")")
            throw ExitCode(2)
        }
        if json { CommandOutput.line(line) } else { describe(answer) }
    }
}

struct MeetingAnswer: Decodable {
    var ok: Bool
    var code: String?
    var error: String?
    var created: Bool?
    var meeting: ControlPlane.MeetingSummary?
    var meetings: [ControlPlane.MeetingSummary]?

    static func line(_ meeting: ControlPlane.MeetingSummary) -> String {
        "\(meeting.id)  \"\(meeting.name)\"  \(meeting.mode.rawValue)  \(meeting.participants.count)/\(meeting.limit)"
            + (meeting.locked ? "  locked" : "") + (meeting.hasPasscode ? "  passcode" : "") + (meeting.guestsAllowed ? "" : "  no-guests")
    }
}

extension MediaMode: ExpressibleByArgument {}

struct MeetingSettingsOptions: ParsableArguments {
    @Option(help: "Display name.") var name: String?
    @Option(help: "File holding a passcode joiners must give.") var passcodeFile: String?
    @Option(help: "Media mode: srtp or encapsulated (refused while the system is secured).") var mode: MediaMode?
    @Option(help: "Participant limit (2–1000).") var limit: Int?
    @Option(help: "Locked: nobody new can join.") var locked: Bool?
    @Option(help: "Whether guests (nickname only) may join.") var guestsAllowed: Bool?

    func passcode() throws -> String? { try passcodeFile.map(RoomJoinCommand.secret) }
}

struct MeetingStartCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "start", abstract: "Start a meeting (starting a running one with the same settings is not an error).")
    @Argument(help: "Meeting id: 1–64 of A-Z a-z 0-9 . _ -") var id: String
    @OptionGroup var settings: MeetingSettingsOptions
    @OptionGroup var socket: AdminSocketOptions

    func run() throws {
        let meeting = MeetingSettings(
            name: settings.name ?? id, passcode: try settings.passcode(), mode: settings.mode ?? .srtp, limit: settings.limit ?? 100,
            locked: settings.locked ?? false, guestsAllowed: settings.guestsAllowed ?? true)
        try socket.request(["op": .string("start"), "id": .string(id), "settings": try JSONValue(encoding: meeting)]) { answer in
            CommandOutput.line((answer.created == false ? "already running: " : "started: ") + MeetingAnswer.line(answer.meeting!))
        }
    }
}

struct MeetingEditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "edit", abstract: "Change a running meeting; its participants are told.")
    @Argument var id: String
    @OptionGroup var settings: MeetingSettingsOptions
    @Flag(help: "Remove the passcode.") var clearPasscode = false
    @OptionGroup var socket: AdminSocketOptions

    func run() throws {
        let edit = MeetingSettings.Edit(
            name: settings.name, passcode: try settings.passcode(), clearPasscode: clearPasscode ? true : nil, mode: settings.mode,
            limit: settings.limit, locked: settings.locked, guestsAllowed: settings.guestsAllowed)
        try socket.request(["op": .string("edit"), "id": .string(id), "edit": try JSONValue(encoding: edit)]) { answer in
            CommandOutput.line("edited: " + MeetingAnswer.line(answer.meeting!))
        }
    }
}

struct MeetingStopCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stop", abstract: "Stop a meeting: every participant is told and its leg removed.")
    @Argument var id: String
    @OptionGroup var socket: AdminSocketOptions

    func run() throws {
        try socket.request(["op": .string("stop"), "id": .string(id)]) { answer in CommandOutput.line("stopped: " + MeetingAnswer.line(answer.meeting!)) }
    }
}

struct MeetingListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List running meetings.")
    @OptionGroup var socket: AdminSocketOptions

    func run() throws {
        try socket.request(["op": .string("list")]) { answer in
            let meetings = answer.meetings ?? []
            if meetings.isEmpty { CommandOutput.line("no meetings running") }
            for meeting in meetings { CommandOutput.line(MeetingAnswer.line(meeting)) }
        }
    }
}

struct MeetingShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Show a meeting and its participants.")
    @Argument var id: String
    @OptionGroup var socket: AdminSocketOptions

    func run() throws {
        try socket.request(["op": .string("show"), "id": .string(id)]) { answer in
            let meeting = answer.meeting!
            CommandOutput.line(MeetingAnswer.line(meeting))
            for participant in meeting.participants {
                CommandOutput.line("  leg \(participant.leg)  \(participant.name)  \(participant.kind)  \(participant.profile)  \(participant.os)")
            }
        }
    }
}

struct MeetingKickCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "kick", abstract: "Remove one participant from a meeting.")
    @Argument var id: String
    @Argument var leg: UInt32
    @OptionGroup var socket: AdminSocketOptions

    func run() throws {
        try socket.request(["op": .string("kick"), "id": .string(id), "leg": .number(Double(leg))]) { _ in CommandOutput.line("removed leg \(leg) from \(id)") }
    }
}

extension JSONValue {
    /// A Codable value as a JSON tree.
    init<T: Encodable>(encoding value: T) throws {
        self = try JSONDecoder().decode(JSONValue.self, from: JSONEncoder().encode(value))
    }
}
