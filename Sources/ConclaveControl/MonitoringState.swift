import ConclaveSystem
import FoundationEssentials
import SystemPackage

/// A cumulative histogram as Prometheus exposes one: counts per upper bound, sum, count.
public struct Histogram: Sendable, Equatable {
    public let bounds: [Double]
    public private(set) var counts: [UInt64]
    public private(set) var sum = 0.0
    public private(set) var count: UInt64 = 0

    public init(bounds: [Double]) {
        precondition(!bounds.isEmpty && bounds == bounds.sorted(), "histogram bounds ascend")
        self.bounds = bounds
        counts = Array(repeating: 0, count: bounds.count)
    }

    public mutating func observe(_ value: Double) {
        guard value.isFinite, value >= 0 else { return }
        for index in bounds.indices where value <= bounds[index] { counts[index] += 1 }
        sum += value
        count += 1
    }
}

/// The control plane's monitoring state, confined to its event loop: the privacy filter, the
/// join-latency histogram, what is known of the relay worker and the certificate, and the ApMon
/// sender once the worker starts it.
public final class MonitoringState {
    public internal(set) var privacy: PrivacyFilter
    public internal(set) var configuration = MonitoringConfiguration()
    /// Seconds from a `join` message to the `joined` answer (password checks included).
    public internal(set) var joinLatency = Histogram(bounds: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10])
    var certificateNotAfter: Date?
    var relayPID: Int32?
    var secretDirectory: FilePath?
    var hasSecret = false
    var cpuMeter = CPUMeter()
    public internal(set) var sender: ApMonSender?

    public init(privacy: PrivacyFilter = PrivacyFilter(mode: .off, secret: [])) {
        self.privacy = privacy
    }

    public func recordJoin(latencySeconds: Double) { joinLatency.observe(latencySeconds) }
}

extension ControlPlane {
    /// Takes a new monitoring configuration (start-up and reload): the privacy mode applies to
    /// the next report, metric and log line; the sender keeps the sequences of destinations that stay.
    public func applyMonitoring(_ configuration: MonitoringConfiguration, secretDirectory: FilePath) {
        let previous = monitoring.configuration
        let first = monitoring.secretDirectory == nil
        monitoring.configuration = configuration
        monitoring.secretDirectory = secretDirectory
        if configuration.privacy != monitoring.privacy.mode || monitoring.privacy.mode == .pseudonymous && !monitoring.hasSecret {
            loadPrivacy()
        }
        if first {
            log.info("monitoring privacy mode: \(configuration.privacy.rawValue)")
        } else if configuration.privacy != previous.privacy {
            log.notice("monitoring privacy mode: \(configuration.privacy.rawValue)")
            audit(actor: "control", action: "monitoring-privacy", detail: "\(previous.privacy.rawValue) → \(configuration.privacy.rawValue)")
        }
        if monitoring.sender == nil, !configuration.destinations.isEmpty {
            let sender = ApMonSender(eventLoop: eventLoop, log: log) { [unowned self] in
                ApMonReports.reports(self.monitoringSnapshot(), privacy: self.monitoring.privacy)
            }
            monitoring.sender = sender
            registry.onChange = { [weak sender] in sender?.reportSoon() }
        }
        monitoring.sender?.apply(configuration)
    }

    /// A new pseudonym secret (`conclave monitoring rotate-secret`): pseudonyms from now on
    /// cannot be linked to earlier ones.
    public func rotateMonitoringSecret() throws {
        guard let directory = monitoring.secretDirectory else { throw MonitoringSecret.Failure.unusable("monitoring is not configured yet") }
        try MonitoringSecret.rotate(databaseDirectory: directory)
        loadPrivacy()
        audit(actor: "local", action: "monitoring-rotate-secret", detail: "pseudonym secret replaced")
        log.notice("monitoring pseudonym secret rotated")
    }

    /// Builds the privacy filter; without a usable secret, pseudonymous falls back to `off`
    /// (nothing personal leaves the box) and says so.
    private func loadPrivacy() {
        let mode = monitoring.configuration.privacy
        guard mode == .pseudonymous else {
            monitoring.privacy = PrivacyFilter(mode: mode, secret: [])
            monitoring.hasSecret = false
            return
        }
        do {
            guard let directory = monitoring.secretDirectory else { throw MonitoringSecret.Failure.unusable("no state directory") }
            monitoring.privacy = PrivacyFilter(mode: .pseudonymous, secret: try MonitoringSecret.loadOrCreate(databaseDirectory: directory))
            monitoring.hasSecret = true
        } catch {
            log.error("\(error): personal fields are left out (as in privacy mode off) until it is fixed")
            monitoring.privacy = PrivacyFilter(mode: .off, secret: [])
            monitoring.hasSecret = false
        }
    }
}
