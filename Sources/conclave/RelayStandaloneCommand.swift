import ArgumentParser
import ConclaveRelay
import FoundationEssentials
import Glibc

struct RelayGroupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "relay", abstract: "Run the encrypted media relay.",
        subcommands: [RelayStandaloneCommand.self])
}

extension SecurityMode: ExpressibleByArgument {}

struct RelayStandaloneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "standalone",
        abstract: "Run the relay alone, with legs and keys from a legs file instead of a control server.",
        discussion: """
            Meeting m is served on UDP port PORT + m % THREADS. SIGUSR1 prints the statistics as one
            JSON line; SIGINT or SIGTERM (or --duration) stops the relay and prints them a last time.
            """)

    @Option(help: "Legs file (docs/legs-file.md).") var legs: String
    @Option(help: "Address to listen on.") var listen = "0.0.0.0"
    @Option(help: "First UDP port; relay thread i listens on PORT + i.") var port: UInt16 = 3478
    @Option(help: "Relay threads (default: one per core less one).") var threads = Relay.defaultThreadCount
    @Option(help: "TCP fallback port (0: none).") var tcpPort: UInt16 = 0
    @Option(help: "System security mode: secured (SRTP only) or mixed.") var securityMode = SecurityMode.mixed
    @Option(help: "Stop after this many seconds.") var duration: Double?
    @Flag(help: "Stamp datagrams on receive and report the relay's residence time percentiles.") var measureResidence = false

    func validate() throws {
        guard threads >= 1 && threads <= 64 else { throw ValidationError("--threads must be 1…64") }
        guard Int(port) + threads - 1 <= 65535 else { throw ValidationError("--port + --threads exceeds 65535") }
    }

    func run() throws {
        let file = try LegsFile(parsing: try Data(contentsOf: URL(filePath: legs)))
        // Block the signals before any thread starts, so they reach only the sigwait below.
        var signals = sigset_t()
        sigemptyset(&signals)
        for signal in [SIGINT, SIGTERM, SIGUSR1] { sigaddset(&signals, signal) }
        pthread_sigmask(SIG_BLOCK, &signals, nil)

        var configuration = Relay.Configuration(
            listen: listen, basePort: port, threads: threads, tcpPort: tcpPort, securityMode: securityMode)
        configuration.measureResidence = measureResidence
        let relay = try Relay(configuration: configuration)
        defer { relay.shutdown() }
        for leg in file.legs { try relay.addLeg(leg) }
        let lastPort = Int(port) + threads - 1
        Output.standardError((
            "relay: \(file.legs.count) legs in \(file.meetings.count) meetings; udp \(listen):\(port)…\(lastPort)"
            + (relay.tcpPort.map { ", tcp \(listen):\($0)" } ?? "") + "\n"))

        let deadline = duration.map { Date().addingTimeInterval($0) }
        var timeout = timespec(tv_sec: 0, tv_nsec: 200_000_000)
        while deadline.map({ Date() < $0 }) ?? true {
            let signal = sigtimedwait(&signals, nil, &timeout)
            if signal == SIGUSR1 { printStatistics(relay) }
            if signal == SIGINT || signal == SIGTERM { break }
        }
        printStatistics(relay)
    }

    private func printStatistics(_ relay: Relay) {
        struct Statistics: Encodable {
            let counters: RelayCounters
            let legs: [LegSnapshot]
        }
        let (legs, counters) = relay.snapshot()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        if let line = try? encoder.encode(Statistics(counters: counters, legs: legs)) {
            Output.standardOutput(line + Data("\n".utf8))
        }
    }
}
