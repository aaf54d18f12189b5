/// What busybox udhcpc hands its hook script: the event as the first argument and the lease
/// in the environment (`interface`, `ip`, `mask` or `subnet`, `router`, `staticroutes`, `dns`,
/// `domain`, `mtu`, `hostname`, `ntpsrv`, `lease`). `conclave net dhcp-event` turns it into the same changes
/// `net apply` makes, through the same code.
public struct DHCPLease: Sendable, Equatable {
    public enum Event: String, Sendable, CaseIterable {
        /// Lease lost or not yet obtained: drop the IPv4 addresses, keep the link up.
        case deconfig
        case bound, renew
        /// Nothing to change.
        case leasefail, nak
    }

    public let event: Event
    public let interface: String
    public var address: InterfaceAddress?
    public var routers: [InterfaceAddress] = []
    /// Classless static routes (option 121, RFC 3442): when present, the router option is
    /// ignored, as the RFC requires, and a default route comes from here if at all.
    public var staticRoutes: [NetworkConfiguration.StaticRoute] = []
    public var dns: [InterfaceAddress] = []
    public var domain: String?
    public var mtu: UInt32?
    public var ntp: [String] = []
    public var leaseSeconds: Int?

    public init(event: Event, environment: [String: String]) throws(DHCPLeaseError) {
        self.event = event
        guard let interface = environment["interface"], NetworkConfiguration.isValidInterfaceName(interface) else {
            throw DHCPLeaseError("interface: missing or not an interface name")
        }
        self.interface = interface
        guard event == .bound || event == .renew else { return }
        guard let ip = environment["ip"], let bare = InterfaceAddress(cidr: ip), bare.family == .ipv4, !ip.contains("/") else {
            throw DHCPLeaseError("ip: missing or not an IPv4 address (\(environment["ip"] ?? "unset"))")
        }
        let prefix: Int
        if let mask = environment["mask"] {
            guard let value = Int(mask), (1...32).contains(value) else { throw DHCPLeaseError("mask: not a prefix length (\(mask))") }
            prefix = value
        } else if let subnet = environment["subnet"] {
            guard let value = Self.prefixLength(ofNetmask: subnet) else { throw DHCPLeaseError("subnet: not a netmask (\(subnet))") }
            prefix = value
        } else {
            prefix = 32  // no subnet option: the address alone, routes need an on-link router
        }
        address = InterfaceAddress(cidr: "\(ip)/\(prefix)")
        routers = try Self.addresses(environment["router"], name: "router")
        let words = (environment["staticroutes"] ?? "").split(separator: " ").map(String.init)
        guard words.count % 2 == 0 else { throw DHCPLeaseError("staticroutes: expected pairs of PREFIX/LENGTH ROUTER") }
        for pair in stride(from: 0, to: words.count, by: 2) {
            guard words[pair].contains("/"), let destination = InterfaceAddress(cidr: words[pair]), destination.family == .ipv4,
                let router = InterfaceAddress(cidr: words[pair + 1]), !words[pair + 1].contains("/"), router.family == .ipv4
            else { throw DHCPLeaseError("staticroutes: not PREFIX/LENGTH ROUTER (\(words[pair]) \(words[pair + 1]))") }
            // A router of 0.0.0.0 means the destination is on the link.
            staticRoutes.append(.init(destination: destination, gateway: router.address == "0.0.0.0" ? nil : router))
        }
        dns = try Self.addresses(environment["dns"], name: "dns")
        domain = environment["domain"].flatMap { $0.isEmpty ? nil : $0 }
        if let domain, !NetworkConfiguration.isValidHostname(domain) { throw DHCPLeaseError("domain: not a domain name (\(domain))") }
        if let text = environment["mtu"] {
            guard let value = UInt32(text), (576...65535).contains(value) else { throw DHCPLeaseError("mtu: out of range (\(text))") }
            mtu = value
        }
        ntp = environment["ntpsrv"].map { $0.split(separator: " ").map(String.init) } ?? []
        leaseSeconds = environment["lease"].flatMap { Int($0) }
    }

    private static func addresses(_ text: String?, name: String) throws(DHCPLeaseError) -> [InterfaceAddress] {
        var result: [InterfaceAddress] = []
        for word in (text ?? "").split(separator: " ") {
            guard let address = InterfaceAddress(cidr: String(word)), !word.contains("/") else {
                throw DHCPLeaseError("\(name): not an address (\(word))")
            }
            result.append(address)
        }
        return result
    }

    /// "255.255.255.0" → 24; nil for a non-contiguous mask.
    static func prefixLength(ofNetmask text: String) -> Int? {
        guard let bytes = InterfaceAddress.parseAddress(text), bytes.count == 4 else { return nil }
        let value = bytes.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        let ones = value.nonzeroBitCount
        guard value == (ones == 0 ? 0 : ~UInt32(0) << (32 - ones)) else { return nil }
        return ones
    }
}

public struct DHCPLeaseError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

extension NetworkPlanner {
    /// The changes a lease asks for: link up, exactly the leased IPv4 address (IPv6 untouched),
    /// the default route via the first router, the MTU the server offers, resolv.conf.
    public func plan(lease: DHCPLease, resolvConfPath: String) throws -> NetworkPlan {
        var plan = NetworkPlan()
        guard lease.event == .bound || lease.event == .renew || lease.event == .deconfig else { return plan }
        guard let link = try system.route.links().first(where: { $0.name == lease.interface }) else {
            throw DHCPLeaseError("interface \(lease.interface): no such interface")
        }
        if !link.isUp {
            plan.changes.append(NetworkChange(
                setting: "\(link.name) state", old: "down", new: "up",
                action: .link(index: link.index, LinkAttributes(isUp: true)), undo: .link(index: link.index, LinkAttributes(isUp: false))))
        }
        if let mtu = lease.mtu, mtu != link.mtu {
            plan.changes.append(NetworkChange(
                setting: "\(link.name) mtu", old: String(link.mtu), new: String(mtu),
                action: .link(index: link.index, LinkAttributes(mtu: mtu)), undo: .link(index: link.index, LinkAttributes(mtu: link.mtu))))
        }
        let current = Set(link.addresses.filter { $0.family == .ipv4 })
        let wanted: Set<InterfaceAddress> = lease.address.map { [$0] } ?? []
        for address in current.subtracting(wanted).sorted() {
            plan.changes.append(NetworkChange(
                setting: "\(link.name) address \(address)", old: "present", new: "absent",
                action: .removeAddress(address, linkIndex: link.index), undo: .addAddress(address, linkIndex: link.index)))
        }
        for address in wanted.subtracting(current).sorted() {
            plan.changes.append(NetworkChange(
                setting: "\(link.name) address \(address)", old: "absent", new: "present",
                action: .addAddress(address, linkIndex: link.index), undo: .removeAddress(address, linkIndex: link.index)))
        }
        guard lease.event != .deconfig else { return plan }
        let existing = try system.route.routes()
        if !lease.staticRoutes.isEmpty {
            for route in lease.staticRoutes {
                Self.planRoute(
                    RouteEntry(destination: route.destination, gateway: route.gateway, linkIndex: link.index, linkName: link.name),
                    existing: existing, into: &plan)
            }
        } else if let router = lease.routers.first {
            let route = RouteEntry(
                destination: InterfaceAddress(cidr: "0.0.0.0/0")!, gateway: InterfaceAddress(cidr: router.address + "/32"),
                linkIndex: link.index, linkName: link.name)
            Self.planRoute(route, existing: existing, into: &plan)
        }
        if !lease.dns.isEmpty {
            let contents = Self.resolvConf(nameservers: lease.dns.map(\.address), search: lease.domain.map { [$0] } ?? [])
            planFile(resolvConfPath, contents: contents, setting: "dns", into: &plan)
        }
        return plan
    }
}
