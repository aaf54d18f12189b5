/// What `net apply` wants: a tuning profile, the network configuration, and where DNS goes.
public struct NetworkTarget: Sendable {
    public var tuning: TuningProfile
    public var network: NetworkConfiguration
    /// On the appliance /etc/resolv.conf is a link into /run; the link's target is written.
    public var resolvConfPath: String
    /// False inside another network namespace: the host name belongs to the UTS namespace,
    /// which `--netns` does not change, so setting it would rename the host.
    public var setsHostname: Bool

    public init(tuning: TuningProfile = TuningProfile(), network: NetworkConfiguration = NetworkConfiguration(),
                resolvConfPath: String = "/etc/resolv.conf", setsHostname: Bool = true) {
        self.tuning = tuning
        self.network = network
        self.resolvConfPath = resolvConfPath
        self.setsHostname = setsHostname
    }
}

/// One write to a kernel file (a queue's rps_cpus, a sysctl).
public struct FileWrite: Sendable, Equatable {
    public let path: String
    public let value: String
}

/// One kernel request `net apply` makes. Each change carries the action that undoes it.
public enum NetworkAction: Sendable, Equatable {
    case link(index: Int32, LinkAttributes)
    case addAddress(InterfaceAddress, linkIndex: Int32)
    case removeAddress(InterfaceAddress, linkIndex: Int32)
    case replaceRoute(RouteEntry)
    case removeRoute(RouteEntry)
    case rootQdisc(linkIndex: Int32, kind: String?)
    case rings(link: String, [String: UInt32])
    case channels(link: String, [String: UInt32])
    case coalesce(link: String, [String: CoalesceValue])
    case features(link: String, [String: Bool])
    case files([FileWrite])
    /// The same value into FILE of every queue named PREFIX-N that exists when this runs:
    /// a channel change earlier in the same run adds or removes queues.
    case queueFiles(link: String, prefix: String, file: String, value: String)
    case hostname(String)
    case configurationFile(path: String, contents: String)
}

/// A setting that differs: its name, the value now, the value wanted, and how to get there and back.
public struct NetworkChange: Sendable, Equatable, CustomStringConvertible {
    public let setting: String
    public let old: String
    public let new: String
    public let action: NetworkAction
    public let undo: NetworkAction

    public var description: String { "\(setting): \(old) → \(new)" }
}

/// A setting left as it is, and why ("not supported by this device").
public struct NetworkNote: Sendable, Equatable, CustomStringConvertible {
    public let setting: String
    public let message: String
    public var description: String { "\(setting): \(message)" }
}

public struct NetworkPlan: Sendable, Equatable {
    public var changes: [NetworkChange] = []
    public var notes: [NetworkNote] = []
    /// What the device cannot do although the profile lists it as `required`: apply refuses
    /// the whole plan before changing anything.
    public var failures: [NetworkNote] = []
    public init() {}
}

/// Compares what the kernel reports with the target and lists the changes, in the order they
/// are applied: sysctls, then per link sizes, qdisc, queues, rings, coalescing, offloads,
/// packet steering, state, addresses, routes; then DNS and host name. It only reads.
public struct NetworkPlanner {
    let system: NetworkSystem

    public init(system: NetworkSystem) { self.system = system }

    public func plan(_ target: NetworkTarget) throws -> NetworkPlan {
        var plan = NetworkPlan()
        let links = try system.route.links().sorted { $0.name < $1.name }
        let routes = try system.route.routes()
        let present = Set(links.map(\.name))
        for name in Set(target.tuning.links.keys).union(target.network.interfaces.keys).sorted() where name != "*" && !present.contains(name) {
            plan.notes.append(NetworkNote(setting: name, message: "no such interface here; its settings are skipped"))
        }
        // Sysctls first: net.core.default_qdisc must be set before a link comes up, so that the
        // per-queue children of a multi-queue NIC's mq are created with it.
        for (name, value) in target.tuning.sysctl.sorted(by: { $0.key < $1.key }) {
            let path = Sysctl.path(name)
            guard let current = try? system.files.read(path) else {
                plan.notes.append(NetworkNote(
                    setting: "sysctl \(name)", message: "not present (not in this kernel, or not per network namespace); skipped"))
                continue
            }
            guard Sysctl.normalized(current) != Sysctl.normalized(value) else { continue }
            plan.changes.append(NetworkChange(
                setting: "sysctl \(name)", old: Sysctl.normalized(current), new: Sysctl.normalized(value),
                action: .files([FileWrite(path: path, value: value)]), undo: .files([FileWrite(path: path, value: current)])))
        }
        for link in links {
            if let tuning = target.tuning.settings(forLink: link.name, wildcardApplies: link.macAddress != nil) {
                let first = plan.notes.count
                try planTuning(tuning, for: link, into: &plan)
                Self.escalate(notesFrom: first, required: tuning.required, in: &plan)
            }
            if let interface = target.network.interfaces[link.name] { planInterface(interface, for: link, routes: routes, into: &plan) }
        }
        if !target.network.dns.isEmpty {
            let contents = Self.resolvConf(nameservers: target.network.dns.map(\.address), search: target.network.search)
            planFile(target.resolvConfPath, contents: contents, setting: "dns", into: &plan)
        }
        if target.network.hostname != nil && !target.setsHostname {
            plan.notes.append(NetworkNote(setting: "hostname", message: "not per network namespace; skipped"))
        } else if let hostname = target.network.hostname {
            let current = try system.host.hostname()
            if current != hostname {
                plan.changes.append(NetworkChange(
                    setting: "hostname", old: current, new: hostname, action: .hostname(hostname), undo: .hostname(current)))
            }
        }
        return plan
    }

    /// Moves the notes about settings the profile marks `required` ("rings", "rps_cpus" …) to
    /// the plan's failures. A note's setting reads "LINK WHAT …" or "LINK QUEUE FILE".
    static func escalate(notesFrom first: Int, required: Set<String>, in plan: inout NetworkPlan) {
        guard !required.isEmpty else { return }
        var kept = Array(plan.notes[..<first])
        for note in plan.notes[first...] {
            let words = note.setting.split(separator: " ").map(String.init)
            var key = words.count > 1 ? words[1] : ""
            if key == "feature" { key = "features" }
            if (key.hasPrefix("rx-") || key.hasPrefix("tx-")) && words.count > 2 { key = words[2] }
            if required.contains(key) {
                let reason = note.message.hasSuffix("; skipped") ? String(note.message.dropLast("; skipped".count)) : note.message
                plan.failures.append(NetworkNote(setting: note.setting, message: reason + ", and the profile requires it"))
            } else {
                kept.append(note)
            }
        }
        plan.notes = kept
    }

    static func resolvConf(nameservers: [String], search: [String]) -> String {
        var text = "# written by conclave net; edit the network configuration instead\n"
        if !search.isEmpty { text += "search \(search.joined(separator: " "))\n" }
        for server in nameservers { text += "nameserver \(server)\n" }
        return text
    }

    func planFile(_ path: String, contents: String, setting: String, into plan: inout NetworkPlan) {
        let current = (try? system.host.readConfigurationFile(path)) ?? nil
        guard current != contents else { return }
        let summary = { (text: String?) -> String in
            guard let text else { return "(none)" }
            let lines = text.split(separator: "\n").filter { !$0.hasPrefix("#") }
            return lines.isEmpty ? "(empty)" : lines.joined(separator: "; ")
        }
        plan.changes.append(NetworkChange(
            setting: setting, old: summary(current), new: summary(contents),
            action: .configurationFile(path: path, contents: contents), undo: .configurationFile(path: path, contents: current ?? "")))
    }

    // MARK: Links

    private func planTuning(_ tuning: TuningProfile.LinkTuning, for link: LinkState, into plan: inout NetworkPlan) throws {
        let name = link.name
        if let length = tuning.txqueuelen, length != link.txqueuelen {
            plan.changes.append(NetworkChange(
                setting: "\(name) txqueuelen", old: String(link.txqueuelen), new: String(length),
                action: .link(index: link.index, LinkAttributes(txqueuelen: length)),
                undo: .link(index: link.index, LinkAttributes(txqueuelen: link.txqueuelen))))
        }
        if let mtu = tuning.mtu, mtu != link.mtu {
            plan.changes.append(NetworkChange(
                setting: "\(name) mtu", old: String(link.mtu), new: String(mtu),
                action: .link(index: link.index, LinkAttributes(mtu: mtu)), undo: .link(index: link.index, LinkAttributes(mtu: link.mtu))))
        }
        if let qdisc = tuning.qdisc, qdisc != link.rootQdisc {
            // Deleting our root qdisc gives the link back the kernel's default (noqueue, mq, …).
            plan.changes.append(NetworkChange(
                setting: "\(name) qdisc", old: link.rootQdisc ?? "(none)", new: qdisc,
                action: .rootQdisc(linkIndex: link.index, kind: qdisc), undo: .rootQdisc(linkIndex: link.index, kind: nil)))
        }
        if !tuning.channels.isEmpty {
            let parameters = try system.ethtool.channels(link: name)
            planCounts(tuning.channels, current: parameters?.current, maximum: parameters?.maximum, what: "channels", link: name, into: &plan) {
                .channels(link: name, $0)
            }
        }
        if !tuning.rings.isEmpty {
            let parameters = try system.ethtool.rings(link: name)
            planCounts(tuning.rings, current: parameters?.current, maximum: parameters?.maximum, what: "rings", link: name, into: &plan) {
                .rings(link: name, $0)
            }
        }
        if !tuning.coalesce.isEmpty { try planCoalesce(tuning.coalesce, link: name, into: &plan) }
        if !tuning.features.isEmpty { try planFeatures(tuning.features, link: name, into: &plan) }
        let queues = system.files.list("/sys/class/net/\(name)/queues")
        let receiveQueues = queues.filter { $0.hasPrefix("rx-") }
        let transmitQueues = queues.filter { $0.hasPrefix("tx-") }
        let online = (try? system.files.read("/sys/devices/system/cpu/online")).flatMap { $0 }.map(CPUMask.cpus(inList:))
        let effective = { (mask: String) in online.map { CPUMask.restricted(mask, to: $0) } ?? CPUMask.normalized(mask) }
        if let mask = tuning.rpsCPUs {
            planQueueFiles(receiveQueues, prefix: "rx", file: "rps_cpus", value: effective(mask), link: name, compare: CPUMask.normalized, into: &plan)
        }
        if let count = tuning.rpsFlowCount {
            planQueueFiles(receiveQueues, prefix: "rx", file: "rps_flow_cnt", value: String(count), link: name, compare: { $0 }, into: &plan)
        }
        if let mask = tuning.xpsCPUs {
            planQueueFiles(transmitQueues, prefix: "tx", file: "xps_cpus", value: effective(mask), link: name, compare: CPUMask.normalized, into: &plan)
        }
    }

    /// Rings and channels: each count against the device's maximum, read first.
    private func planCounts(
        _ wanted: [String: TuningProfile.Count], current: [String: UInt32]?, maximum: [String: UInt32]?, what: String, link: String,
        into plan: inout NetworkPlan, action: ([String: UInt32]) -> NetworkAction
    ) {
        guard let current, let maximum else {
            plan.notes.append(NetworkNote(setting: "\(link) \(what)", message: "not supported by this device; skipped"))
            return
        }
        var new: [String: UInt32] = [:]
        var old: [String: UInt32] = [:]
        for (key, count) in wanted.sorted(by: { $0.key < $1.key }) {
            guard let top = maximum[key] else {
                plan.notes.append(NetworkNote(setting: "\(link) \(what) \(key)", message: "not supported by this device; skipped"))
                continue
            }
            let value: UInt32
            switch count {
            case .maximum: value = top
            case .value(let number): value = number
            }
            guard value <= top else {
                plan.notes.append(NetworkNote(
                    setting: "\(link) \(what) \(key)", message: "\(value) exceeds the device maximum \(top); skipped (\"max\" asks for the maximum)"))
                continue
            }
            if current[key] != value {
                new[key] = value
                old[key] = current[key] ?? 0
            }
        }
        guard !new.isEmpty else { return }
        plan.changes.append(NetworkChange(
            setting: "\(link) \(what)", old: Self.render(old), new: Self.render(new), action: action(new), undo: action(old)))
    }

    private func planCoalesce(_ wanted: [String: CoalesceValue], link: String, into plan: inout NetworkPlan) throws {
        guard let current = try system.ethtool.coalesce(link: link) else {
            plan.notes.append(NetworkNote(setting: "\(link) coalesce", message: "not supported by this device; skipped"))
            return
        }
        var new: [String: CoalesceValue] = [:]
        var old: [String: CoalesceValue] = [:]
        for (key, value) in wanted.sorted(by: { $0.key < $1.key }) {
            guard let now = current[key] else {
                plan.notes.append(NetworkNote(setting: "\(link) coalesce \(key)", message: "not supported by this device; skipped"))
                continue
            }
            if now != value {
                new[key] = value
                old[key] = now
            }
        }
        guard !new.isEmpty else { return }
        plan.changes.append(NetworkChange(
            setting: "\(link) coalesce", old: Self.render(old), new: Self.render(new),
            action: .coalesce(link: link, new), undo: .coalesce(link: link, old)))
    }

    /// ethtool's short names ("gro") and the kernel's feature names they stand for.
    static let featureAliases: [String: [String]] = [
        "gro": ["rx-gro"], "gso": ["tx-generic-segmentation"], "lro": ["rx-lro"], "sg": ["tx-scatter-gather"],
        "tso": [
            "tx-tcp-segmentation", "tx-tcp-ecn-segmentation", "tx-tcp-mangleid-segmentation", "tx-tcp6-segmentation",
            "tx-tcp-accecn-segmentation",  // kernel 6.18
        ],
        "rx": ["rx-checksum"], "tx": ["tx-checksum-ipv4", "tx-checksum-ip-generic", "tx-checksum-ipv6"],
        "rxhash": ["rx-hashing"], "rxvlan": ["rx-vlan-hw-parse"], "txvlan": ["tx-vlan-hw-insert"], "ntuple": ["rx-ntuple-filter"],
        "gro-hw": ["rx-gro-hw"], "gro-list": ["rx-gro-list"], "udp-gro-forwarding": ["rx-udp-gro-forwarding"],
    ]

    private func planFeatures(_ wanted: [String: Bool], link: String, into plan: inout NetworkPlan) throws {
        guard let state = try system.ethtool.features(link: link) else {
            plan.notes.append(NetworkNote(setting: "\(link) features", message: "not supported by this device; skipped"))
            return
        }
        var new: [String: Bool] = [:]
        var old: [String: Bool] = [:]
        for (name, on) in wanted.sorted(by: { $0.key < $1.key }) {
            let kernelNames = Self.featureAliases[name] ?? [name]
            let known = kernelNames.filter { state.changeable.contains($0) || state.active.contains($0) }
            guard !known.isEmpty else {
                plan.notes.append(NetworkNote(
                    setting: "\(link) feature \(name)",
                    message: on ? "not supported by this device (or fixed off); skipped" : "already off (not offered by this device)"))
                continue
            }
            for kernelName in known where state.active.contains(kernelName) != on {
                guard state.changeable.contains(kernelName) else {
                    plan.notes.append(NetworkNote(
                        setting: "\(link) feature \(kernelName)", message: "fixed \(on ? "off" : "on") by this device; skipped"))
                    continue
                }
                new[kernelName] = on
                old[kernelName] = !on
            }
        }
        guard !new.isEmpty else { return }
        plan.changes.append(NetworkChange(
            setting: "\(link) features", old: Self.render(old.mapValues { $0 ? "on" : "off" }), new: Self.render(new.mapValues { $0 ? "on" : "off" }),
            action: .features(link: link, new), undo: .features(link: link, old)))
    }

    /// rps_cpus, rps_flow_cnt, xps_cpus: the same value on every queue of the link.
    private func planQueueFiles(
        _ queues: [String], prefix: String, file: String, value: String, link: String, compare: (String) -> String,
        into plan: inout NetworkPlan
    ) {
        var writes: [FileWrite] = []
        var undo: [FileWrite] = []
        for queue in queues {
            let path = "/sys/class/net/\(link)/queues/\(queue)/\(file)"
            guard let current = try? system.files.read(path) else {
                plan.notes.append(NetworkNote(setting: "\(link) \(queue) \(file)", message: "not available (kernel without RPS/XPS, or a single-queue device); skipped"))
                continue
            }
            if compare(current) != compare(value) {
                writes.append(FileWrite(path: path, value: value))
                undo.append(FileWrite(path: path, value: current))
            }
        }
        guard !writes.isEmpty else { return }
        let olds = Array(Set(undo.map { compare($0.value) })).sorted()
        plan.changes.append(NetworkChange(
            setting: "\(link) \(file) (\(writes.count) queue\(writes.count == 1 ? "" : "s"))", old: olds.joined(separator: ","), new: compare(value),
            action: .queueFiles(link: link, prefix: prefix, file: file, value: value),
            undo: olds.count == 1 ? .queueFiles(link: link, prefix: prefix, file: file, value: undo[0].value) : .files(undo)))
    }

    // MARK: Addresses and routes

    private func planInterface(_ interface: NetworkConfiguration.Interface, for link: LinkState, routes: [RouteEntry], into plan: inout NetworkPlan) {
        let name = link.name
        if interface.isUp != link.isUp {
            plan.changes.append(NetworkChange(
                setting: "\(name) state", old: link.isUp ? "up" : "down", new: interface.isUp ? "up" : "down",
                action: .link(index: link.index, LinkAttributes(isUp: interface.isUp)),
                undo: .link(index: link.index, LinkAttributes(isUp: link.isUp))))
        }
        // Static addresses are exact: the listed ones, and no other (kernel link-local IPv6 aside).
        // With DHCP, or with no list, the addresses belong to someone else and stay.
        if !interface.dhcp && !interface.addresses.isEmpty {
            let current = Set(link.addresses.filter { !$0.isIPv6LinkLocal })
            let wanted = Set(interface.addresses)
            for address in wanted.subtracting(current).sorted() {
                plan.changes.append(NetworkChange(
                    setting: "\(name) address \(address)", old: "absent", new: "present",
                    action: .addAddress(address, linkIndex: link.index), undo: .removeAddress(address, linkIndex: link.index)))
            }
            for address in current.subtracting(wanted).sorted() {
                plan.changes.append(NetworkChange(
                    setting: "\(name) address \(address)", old: "present", new: "absent",
                    action: .removeAddress(address, linkIndex: link.index), undo: .addAddress(address, linkIndex: link.index)))
            }
        }
        var wantedRoutes: [RouteEntry] = []
        for gateway in [interface.gateway, interface.gateway6].compactMap({ $0 }) {
            let any = InterfaceAddress(bytes: [UInt8](repeating: 0, count: gateway.family == .ipv4 ? 4 : 16), prefixLength: 0)!
            wantedRoutes.append(RouteEntry(destination: any, gateway: gateway, linkIndex: link.index, linkName: name))
        }
        for route in interface.routes {
            wantedRoutes.append(RouteEntry(destination: route.destination, gateway: route.gateway, linkIndex: link.index, linkName: name))
        }
        for route in wantedRoutes { Self.planRoute(route, existing: routes, into: &plan) }
    }

    static func planRoute(_ route: RouteEntry, existing routes: [RouteEntry], into plan: inout NetworkPlan) {
        let setting = "route \(route.isDefault ? "default" : route.destination.cidr)\(route.family == .ipv6 && route.isDefault ? " (IPv6)" : "")"
        let match = routes.first { $0.destination == route.destination && $0.origin != "kernel" }
        switch match {
        case nil:
            plan.changes.append(NetworkChange(
                setting: setting, old: "absent", new: route.description, action: .replaceRoute(route), undo: .removeRoute(route)))
        case let existing? where existing.gateway != route.gateway || existing.linkIndex != route.linkIndex:
            plan.changes.append(NetworkChange(
                setting: setting, old: existing.description, new: route.description, action: .replaceRoute(route), undo: .replaceRoute(existing)))
        default:
            break
        }
    }

    static func render<Value: CustomStringConvertible>(_ values: [String: Value]) -> String {
        values.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
    }
}
