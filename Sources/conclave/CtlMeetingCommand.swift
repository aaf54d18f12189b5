import ArgumentParser
import ConclaveRelay
import ConclaveSystem
import FoundationEssentials

/// `conclave ctl meeting start|list|show|edit|stop|kick`.
struct CtlMeetingCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "meeting", abstract: "Start, list, show, edit, stop meetings and kick participants.",
        subcommands: [Start.self, List.self, Show.self, Edit.self, Stop.self, Kick.self])

    static func table(_ meetings: [JSONValue]) -> [String] {
        var lines = ["ID                   NAME                       MODE          PEOPLE  FLAGS"]
        for case .object(let meeting) in meetings {
            let participants = { if case .array(let list)? = meeting["participants"] { list.count } else { 0 } }()
            let flags = [
                meeting["locked"] == .bool(true) ? "locked" : nil, meeting["hasPasscode"] == .bool(true) ? "passcode" : nil,
                meeting["guestsAllowed"] == .bool(false) ? "no-guests" : nil,
            ].compactMap { $0 }.joined(separator: ",")
            lines.append(
                "\(text(meeting["id"]).padded(20)) \(text(meeting["name"]).padded(26)) \(text(meeting["mode"]).padded(13)) "
                    + "\("\(participants)/\(text(meeting["limit"]))".padded(7)) \(flags)")
        }
        return lines
    }

    static func details(_ meeting: [String: JSONValue]) -> [String] {
        var lines = table([.object(meeting)])
        if case .array(let participants)? = meeting["participants"], !participants.isEmpty {
            lines.append("LEG         NAME                 KIND   OS              CLIENT     PROFILE")
            for case .object(let participant) in participants {
                lines.append(
                    "leg \(text(participant["leg"]).padded(7)) \(text(participant["name"]).padded(20)) \(text(participant["kind"]).padded(6)) "
                        + "\(text(participant["os"]).padded(15)) \(text(participant["clientVersion"]).padded(10)) \(text(participant["profile"]))")
            }
        }
        return lines
    }

    struct Start: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Start a meeting (idempotent: the same id and settings answer as before).")
        @OptionGroup var options: CtlOptions
        @Argument(help: "Meeting id (1–64 of A-Z a-z 0-9 . _ -).") var id: String
        @Option(help: "Display name (default: the id).") var name: String?
        @Option(help: "File holding a passcode joiners must give.") var passcodeFile: String?
        @Option(help: "Media mode: srtp or encapsulated.") var mode: MediaMode?
        @Option(help: "Participant limit (2–1000).") var limit: Int?
        @Option(help: "Locked: nobody new can join.") var locked: Bool?
        @Option(help: "Whether guests may join.") var guestsAllowed: Bool?

        func run() throws {
            var body: [String: JSONValue] = ["id": .string(id), "name": .string(name ?? id)]
            if let passcodeFile { body["passcode"] = .string(try RoomJoinCommand.secret(passcodeFile)) }
            if let mode { body["mode"] = .string(mode.rawValue) }
            if let limit { body["limit"] = .number(Double(limit)) }
            if let locked { body["locked"] = .bool(locked) }
            if let guestsAllowed { body["guestsAllowed"] = .bool(guestsAllowed) }
            let response = try options.call("POST", "/v1/meetings", body: .object(body))
            options.show(response) { [(response.status == 201 ? "started: " : "already running: ") + (CtlMeetingCommand.table([.object($0)]).last ?? "")] }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the running meetings.")
        @OptionGroup var options: CtlOptions

        func run() throws {
            let response = try options.call("GET", "/v1/meetings")
            options.show(response) { object in
                guard case .array(let meetings)? = object["meetings"], !meetings.isEmpty else { return ["no meetings"] }
                return CtlMeetingCommand.table(meetings)
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a meeting and its participants.")
        @OptionGroup var options: CtlOptions
        @Argument var id: String

        func run() throws {
            options.show(try options.call("GET", "/v1/meetings/\(CtlPath.escape(id))"), human: CtlMeetingCommand.details)
        }
    }

    struct Edit: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Change a running meeting.")
        @OptionGroup var options: CtlOptions
        @Argument var id: String
        @Option(help: "Display name.") var name: String?
        @Option(help: "File holding the new passcode.") var passcodeFile: String?
        @Flag(help: "Remove the passcode.") var clearPasscode = false
        @Option(help: "Media mode (only while the meeting is empty).") var mode: MediaMode?
        @Option(help: "Participant limit.") var limit: Int?
        @Option(help: "Locked: nobody new can join.") var locked: Bool?
        @Option(help: "Whether guests may join.") var guestsAllowed: Bool?

        func run() throws {
            var body: [String: JSONValue] = [:]
            if let name { body["name"] = .string(name) }
            if let passcodeFile { body["passcode"] = .string(try RoomJoinCommand.secret(passcodeFile)) }
            if clearPasscode { body["passcode"] = .null }
            if let mode { body["mode"] = .string(mode.rawValue) }
            if let limit { body["limit"] = .number(Double(limit)) }
            if let locked { body["locked"] = .bool(locked) }
            if let guestsAllowed { body["guestsAllowed"] = .bool(guestsAllowed) }
            guard !body.isEmpty else { throw ValidationError("nothing to change: give at least one option") }
            options.show(try options.call("PATCH", "/v1/meetings/\(CtlPath.escape(id))", body: .object(body))) { ["edited: " + (CtlMeetingCommand.table([.object($0)]).last ?? "")] }
        }
    }

    struct Stop: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop a meeting: every participant is told and removed.")
        @OptionGroup var options: CtlOptions
        @Argument var id: String

        func run() throws {
            options.show(try options.call("DELETE", "/v1/meetings/\(CtlPath.escape(id))")) { object in
                ["stopped \(id): \(text(object["participantsRemoved"])) participants removed"]
            }
        }
    }

    struct Kick: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove one participant by leg number.")
        @OptionGroup var options: CtlOptions
        @Argument var id: String
        @Argument var leg: UInt32

        func run() throws {
            _ = try options.call("DELETE", "/v1/meetings/\(CtlPath.escape(id))/participants/\(leg)")
            if !options.json { CommandOutput.line("removed leg \(leg) from \(id)") }
        }
    }
}

/// A JSON value as table text.
func text(_ value: JSONValue?) -> String {
    switch value {
    case .string(let text)?: text
    case .number(let number)?: number == number.rounded() && abs(number) < 1e15 ? String(Int64(number)) : String(number)
    case .bool(let flag)?: flag ? "yes" : "no"
    case .array(let items)?: items.map { text($0) }.joined(separator: " ")
    default: "-"
    }
}

extension String {
    func padded(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
}

enum CtlPath {
    /// Percent-encodes a path segment (RFC 3986 unreserved characters pass).
    static func escape(_ segment: String) -> String {
        segment.utf8.map { byte in
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "@"):
                String(UnicodeScalar(byte))
            default:
                "%" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true)
            }
        }.joined()
    }
}
