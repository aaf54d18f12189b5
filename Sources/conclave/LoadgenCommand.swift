import ArgumentParser
import ConclaveRelay
import FoundationEssentials

struct LoadgenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loadgen",
        abstract: "Generate load against a relay, or make a legs file for it.",
        subcommands: [LoadgenRunCommand.self, MakeLegsCommand.self],
        defaultSubcommand: LoadgenRunCommand.self)
}

struct LoadgenRunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Act as N participants in M meetings against a relay and check what comes back.",
        discussion: """
            Sends real SRTP (or scrambled RTP) in CMF frames, decrypts and checks every packet the
            relay forwards, and reports sent, received, expected, lost, duplicated, authentication
            failures and one-way latency percentiles. Exits 1 with --check if anything was lost,
            duplicated, corrupted or failed to authenticate, or if an attack got through.
            """)

    @Option(help: "Legs file (docs/legs-file.md).") var legs: String
    @Option(help: "Relay UDP address of thread 0, HOST:PORT.") var relay: String
    @Option(help: "The relay's thread count (meeting m is on PORT + m % N).") var relayThreads = 1
    @Option(help: "Relay TCP fallback address, HOST:PORT (for --tcp and --switch-to-tcp).") var relayTcp: String?
    @Option(help: "Meetings to take from the legs file.") var meetings = 1
    @Option(help: "Participants per meeting.") var participants = 2
    @Option(help: "Audio packets per second per participant.") var audioPps = 50.0
    @Option(help: "Video packets per second per participant.") var videoPps = 600.0
    @Option(help: "RTP packet size in bytes before protection.") var size = 1200
    @Option(help: "Seconds to send.") var duration = 5.0
    @Flag(help: "Every participant uses the TCP fallback.") var tcp = false
    @Option(help: "Seconds after which the first participant of each meeting moves to TCP.") var switchToTcp: Double?
    @Option(help: "Seconds after which it moves back to UDP.") var switchToUdp: Double?
    @Flag(help: "Also send a forged packet, a replay and a hijack attempt from a new address.") var attack = false
    @Flag(help: "Count what arrives without decrypting or checking it (benchmarks).") var noVerify = false
    @Option(help: "Seconds between RTCP sender reports per participant (0: none after the warm-up).") var rtcpInterval = 1.0
    @Flag(help: "Print the report as JSON.") var json = false
    @Flag(help: "Exit 1 unless every packet arrived once, intact, and no attack got through.") var check = false

    func validate() throws {
        guard size >= 44 && size <= 1400 else { throw ValidationError("--size must be 44…1400") }
        guard meetings >= 1, participants >= 2 else { throw ValidationError("need at least 1 meeting of 2 participants") }
        guard duration > 0 && duration <= 600 else { throw ValidationError("--duration must be in (0, 600]") }
        guard relayThreads >= 1 else { throw ValidationError("--relay-threads must be at least 1") }
        if (tcp || switchToTcp != nil) && relayTcp == nil { throw ValidationError("--tcp and --switch-to-tcp need --relay-tcp") }
        if noVerify && (check || attack) { throw ValidationError("--no-verify cannot be combined with --check or --attack") }
    }

    func run() throws {
        let file = try LegsFile(parsing: try Data(contentsOf: URL(filePath: legs)))
        var configuration = LoadGenerator.Configuration(relay: try PeerAddress(parsing: relay))
        configuration.relayThreads = relayThreads
        configuration.tcpRelay = try relayTcp.map { try PeerAddress(parsing: $0) }
        configuration.meetings = meetings
        configuration.participants = participants
        configuration.audioPacketsPerSecond = audioPps
        configuration.videoPacketsPerSecond = videoPps
        configuration.packetSize = size
        configuration.duration = duration
        configuration.tcpOnly = tcp
        configuration.switchToTCP = switchToTcp
        configuration.switchToUDP = switchToUdp
        configuration.attack = attack
        configuration.verify = !noVerify
        configuration.rtcpInterval = rtcpInterval
        let report = try LoadGenerator(legs: file, configuration: configuration).run()
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print("""
                sent \(report.sent) (\(Int(report.sentPerSecond)) pps), received \(report.received) of \(report.expected) expected \
                (\(Int(report.receivedPerSecond)) pps); lost \(report.lost), duplicated \(report.duplicated), \
                auth failures \(report.authFailures), corrupted \(report.corrupted)
                latency ms: p50 \(report.latencyMilliseconds.p50) p99 \(report.latencyMilliseconds.p99) \
                p99.9 \(report.latencyMilliseconds.p999) max \(report.latencyMilliseconds.max)
                """)
        }
        if check {
            let attackFailed = (report.attack?.attackerReceived ?? 0) > 0
            if report.lost > 0 || report.duplicated > 0 || report.corrupted > 0 || report.authFailures > 0 || attackFailed {
                throw ExitCode(1)
            }
        }
    }
}

struct MakeLegsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "make-legs", abstract: "Print a legs file with random keys and tokens.")

    @Option(help: "Meetings.") var meetings = 1
    @Option(help: "Participants per meeting.") var participants = 2
    @Option(help: "gcm, sha1 or encapsulated.") var profile = "gcm"

    func run() throws {
        let names = ["gcm": "AEAD_AES_128_GCM", "sha1": "AES_CM_128_HMAC_SHA1_80", "encapsulated": "encapsulated"]
        guard let name = names[profile] else { throw ValidationError("--profile must be gcm, sha1 or encapsulated") }
        guard (1...10_000).contains(meetings), (1...100).contains(participants) else {
            throw ValidationError("--meetings must be 1…10000 and --participants 1…100")
        }
        let file = try LegsFile.generate(meetings: meetings, participants: participants, profile: name)
        Output.standardOutput(file.encoded() + Data("\n".utf8))
    }
}
