/// Everything `conclave net show` prints: links with their ethtool parameters and queue masks,
/// routes, and the sysctls that matter to a relay.
public struct NetworkReport: Sendable, Codable {
    public struct Link: Sendable, Codable {
        public var link: LinkState
        /// nil: not supported by this device.
        public var rings: RingParameters?
        public var channels: ChannelParameters?
        public var coalesce: [String: CoalesceValue]?
        public var features: [String: Bool]?
        /// Queue name ("rx-0", "tx-0") → file ("rps_cpus", "xps_cpus", "rps_flow_cnt") → value.
        public var queues: [String: [String: String]] = [:]
    }

    public var links: [Link] = []
    public var routes: [RouteEntry] = []
    public var sysctl: [String: String] = [:]

    /// The sysctls shown even when no profile names them (docs/tuning.md explains each).
    public static let relaySysctls = [
        "net.core.rmem_max", "net.core.wmem_max", "net.core.rmem_default", "net.core.wmem_default", "net.core.netdev_max_backlog",
        "net.core.netdev_budget", "net.core.netdev_budget_usecs", "net.core.busy_read", "net.core.busy_poll",
        "net.core.rps_sock_flow_entries", "net.core.default_qdisc", "net.core.somaxconn", "net.ipv4.udp_mem", "net.ipv4.udp_rmem_min",
        "net.ipv4.udp_wmem_min", "net.ipv4.ip_local_port_range",
    ]

    /// The features shown in text form (all active ones are in the JSON).
    public static let relayFeatures = [
        "rx-gro", "tx-generic-segmentation", "tx-tcp-segmentation", "rx-udp-gro-forwarding", "rx-gro-list", "rx-lro", "rx-checksum",
        "tx-scatter-gather", "rx-gro-hw",
    ]

    public static func gather(from system: NetworkSystem, extraSysctls: [String] = []) throws -> NetworkReport {
        var report = NetworkReport()
        for link in try system.route.links().sorted(by: { $0.index < $1.index }) {
            var entry = Link(link: link)
            if !link.isLoopback {
                entry.rings = try system.ethtool.rings(link: link.name)
                entry.channels = try system.ethtool.channels(link: link.name)
                entry.coalesce = try system.ethtool.coalesce(link: link.name)
                if let features = try system.ethtool.features(link: link.name) {
                    var shown: [String: Bool] = [:]
                    for name in features.active.union(features.changeable) { shown[name] = features.active.contains(name) }
                    entry.features = shown
                }
            }
            for queue in system.files.list("/sys/class/net/\(link.name)/queues") {
                let files = queue.hasPrefix("rx-") ? ["rps_cpus", "rps_flow_cnt"] : ["xps_cpus"]
                for file in files {
                    if let value = try? system.files.read("/sys/class/net/\(link.name)/queues/\(queue)/\(file)") {
                        entry.queues[queue, default: [:]][file] = value
                    }
                }
            }
            report.links.append(entry)
        }
        report.routes = try system.route.routes()
        for name in Set(relaySysctls + extraSysctls) {
            if let value = try? system.files.read(Sysctl.path(name)) { report.sysctl[name] = Sysctl.normalized(value) }
        }
        return report
    }

    /// The text form: one block per link, then routes and sysctls.
    public var text: String {
        var lines: [String] = []
        for entry in links {
            let link = entry.link
            lines.append("\(link.index): \(link.name) \(link.isUp ? "UP" : "DOWN") \(link.operationalState)\(link.hasCarrier ? "" : " no-carrier") "
                + "mtu \(link.mtu) txqueuelen \(link.txqueuelen) qdisc \(link.rootQdisc ?? "-")"
                + (link.macAddress.map { " mac \($0)" } ?? ""))
            for address in link.addresses { lines.append("    address \(address)") }
            let statistics = link.statistics
            lines.append("    rx \(statistics.rxPackets) packets \(statistics.rxBytes) bytes \(statistics.rxErrors) errors \(statistics.rxDropped) dropped; "
                + "tx \(statistics.txPackets) packets \(statistics.txBytes) bytes \(statistics.txErrors) errors \(statistics.txDropped) dropped")
            guard !link.isLoopback else { continue }
            lines.append("    rings: " + (entry.rings.map { Self.pairs($0.current, $0.maximum) } ?? "not supported by this device"))
            lines.append("    channels: " + (entry.channels.map { Self.pairs($0.current, $0.maximum) } ?? "not supported by this device"))
            lines.append("    coalesce: " + (entry.coalesce.map { $0.isEmpty ? "no parameters" : NetworkPlanner.render($0) } ?? "not supported by this device"))
            if let features = entry.features {
                let shown = Self.relayFeatures.compactMap { name in features[name].map { "\(name) \($0 ? "on" : "off")" } }
                lines.append("    features: " + (shown.isEmpty ? "none of the relay's" : shown.joined(separator: ", ")))
            } else {
                lines.append("    features: not supported by this device")
            }
            for (queue, files) in entry.queues.sorted(by: { $0.key < $1.key }) {
                lines.append("    \(queue): " + files.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
            }
        }
        lines.append("routes:")
        for route in routes.sorted(by: { $0.description < $1.description }) { lines.append("    \(route) proto \(route.origin)") }
        lines.append("sysctl:")
        for (name, value) in sysctl.sorted(by: { $0.key < $1.key }) { lines.append("    \(name) = \(value)") }
        return lines.joined(separator: "\n")
    }

    private static func pairs(_ current: [String: UInt32], _ maximum: [String: UInt32]) -> String {
        maximum.isEmpty ? "none" : maximum.keys.sorted().map { "\($0) \(current[$0] ?? 0)/\(maximum[$0]!) max" }.joined(separator: ", ")
    }
}
