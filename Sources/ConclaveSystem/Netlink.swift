internal import CNetlink

/// Facts about the libnl library linked into this binary.
public enum NetlinkLibrary {
    /// The version libnl reports at run time (`nl_ver_maj`, `nl_ver_min`, `nl_ver_mic`).
    public static var version: String { "\(nl_ver_maj).\(nl_ver_min).\(nl_ver_mic)" }
}

/// A libnl socket (`struct nl_sock`) connected to one netlink protocol. Owns and frees it.
final class NetlinkSocket {
    let pointer: OpaquePointer

    /// `nl_socket_alloc` + `nl_connect`.
    init(protocol netlinkProtocol: Int32) throws {
        guard let socket = nl_socket_alloc() else { throw NetlinkError("nl_socket_alloc", code: NLE_NOMEM) }
        pointer = socket
        let status = nl_connect(socket, netlinkProtocol)
        guard status == 0 else { throw NetlinkError("nl_connect", code: status) }
    }

    deinit { nl_socket_free(pointer) }
}

/// A libnl object cache (`struct nl_cache`). Owns and frees it.
final class NetlinkCache {
    let pointer: OpaquePointer

    init(takingOwnership pointer: OpaquePointer) { self.pointer = pointer }

    deinit { nl_cache_free(pointer) }

    /// The cache's objects, in kernel order; valid while the cache lives.
    var objects: [OpaquePointer] {
        var result: [OpaquePointer] = []
        var object = nl_cache_get_first(pointer)
        while let current = object {
            result.append(current)
            object = nl_cache_get_next(current)
        }
        return result
    }
}

/// One reference to a libnl object we allocated (`rtnl_link`, `rtnl_addr`, `rtnl_route`,
/// `rtnl_qdisc`, `nl_addr`): drops it with the matching `…_put` in `deinit`.
final class NetlinkObject {
    let pointer: OpaquePointer
    private let release: (OpaquePointer) -> Void

    init?(takingOwnership pointer: OpaquePointer?, release: @escaping (OpaquePointer) -> Void) {
        guard let pointer else { return nil }
        self.pointer = pointer
        self.release = release
    }

    deinit { release(pointer) }

    /// `nl_addr_build` with a prefix length.
    static func address(_ address: InterfaceAddress) throws -> NetlinkObject {
        let bytes = address.bytes
        let raw = bytes.withUnsafeBytes { nl_addr_build(address.family == .ipv4 ? AF_INET : AF_INET6, $0.baseAddress, $0.count) }
        guard let object = NetlinkObject(takingOwnership: raw, release: { nl_addr_put($0) }) else {
            throw NetlinkError("nl_addr_build", code: NLE_NOMEM)
        }
        nl_addr_set_prefixlen(object.pointer, Int32(address.prefixLength))
        return object
    }
}

/// Reads a borrowed `nl_addr` into a value (nil for an empty or unknown-family address).
private func interfaceAddress(_ raw: OpaquePointer?, prefixLength: Int? = nil) -> InterfaceAddress? {
    guard let raw, let binary = nl_addr_get_binary_addr(raw) else { return nil }
    let length = Int(nl_addr_get_len(raw))
    guard length == 4 || length == 16 else { return nil }
    let bytes = Array(UnsafeRawBufferPointer(start: binary, count: length))
    return InterfaceAddress(bytes: bytes, prefixLength: prefixLength ?? Int(nl_addr_get_prefixlen(raw)))
}

/// rtnetlink through libnl-route: links, addresses, routes and the root qdisc.
public final class RouteNetlink: RouteControl {
    private let socket: NetlinkSocket

    public init() throws { socket = try NetlinkSocket(protocol: NETLINK_ROUTE) }

    /// Every link the kernel knows in this network namespace (`rtnl_link_alloc_cache`), with
    /// its addresses (`rtnl_addr_alloc_cache`).
    public func links() throws -> [LinkState] {
        var raw: OpaquePointer?
        let status = rtnl_link_alloc_cache(socket.pointer, AF_UNSPEC, &raw)
        guard status == 0, let raw else { throw NetlinkError("rtnl_link_alloc_cache", code: status) }
        let cache = NetlinkCache(takingOwnership: raw)
        let addresses = try addressesByLink()
        return cache.objects.map { link in
            // Objects in a link cache are `struct rtnl_link`; the cache keeps them alive.
            let flags = rtnl_link_get_flags(link)
            var state = LinkState(
                index: rtnl_link_get_ifindex(link),
                name: rtnl_link_get_name(link).map { String(cString: $0) } ?? "",
                mtu: rtnl_link_get_mtu(link),
                isUp: flags & UInt32(IFF_UP) != 0)
            state.txqueuelen = rtnl_link_get_txqlen(link)
            var text = [CChar](repeating: 0, count: 32)
            state.operationalState = rtnl_link_operstate2str(rtnl_link_get_operstate(link), &text, text.count)
                .map { String(cString: $0).lowercased() } ?? "unknown"
            state.hasCarrier = rtnl_link_get_carrier(link) != 0
            if let mac = rtnl_link_get_addr(link), let binary = nl_addr_get_binary_addr(mac), nl_addr_get_len(mac) == 6 {
                state.macAddress = UnsafeRawBufferPointer(start: binary, count: 6)
                    .map { String($0, radix: 16).leftPadded(to: 2) }.joined(separator: ":")
            }
            state.rootQdisc = rtnl_link_get_qdisc(link).map { String(cString: $0) }
            state.addresses = (addresses[state.index] ?? []).sorted()
            state.statistics.rxPackets = rtnl_link_get_stat(link, RTNL_LINK_RX_PACKETS)
            state.statistics.rxBytes = rtnl_link_get_stat(link, RTNL_LINK_RX_BYTES)
            state.statistics.rxErrors = rtnl_link_get_stat(link, RTNL_LINK_RX_ERRORS)
            state.statistics.rxDropped = rtnl_link_get_stat(link, RTNL_LINK_RX_DROPPED)
            state.statistics.txPackets = rtnl_link_get_stat(link, RTNL_LINK_TX_PACKETS)
            state.statistics.txBytes = rtnl_link_get_stat(link, RTNL_LINK_TX_BYTES)
            state.statistics.txErrors = rtnl_link_get_stat(link, RTNL_LINK_TX_ERRORS)
            state.statistics.txDropped = rtnl_link_get_stat(link, RTNL_LINK_TX_DROPPED)
            return state
        }
    }

    private func addressesByLink() throws -> [Int32: [InterfaceAddress]] {
        var raw: OpaquePointer?
        let status = rtnl_addr_alloc_cache(socket.pointer, &raw)
        guard status == 0, let raw else { throw NetlinkError("rtnl_addr_alloc_cache", code: status) }
        let cache = NetlinkCache(takingOwnership: raw)
        var result: [Int32: [InterfaceAddress]] = [:]
        for address in cache.objects {
            guard let local = interfaceAddress(rtnl_addr_get_local(address), prefixLength: Int(rtnl_addr_get_prefixlen(address)))
            else { continue }
            result[rtnl_addr_get_ifindex(address), default: []].append(local)
        }
        return result
    }

    /// Unicast routes of the main table (`rtnl_route_alloc_cache`).
    public func routes() throws -> [RouteEntry] {
        var raw: OpaquePointer?
        let status = rtnl_route_alloc_cache(socket.pointer, AF_UNSPEC, 0, &raw)
        guard status == 0, let raw else { throw NetlinkError("rtnl_route_alloc_cache", code: status) }
        let cache = NetlinkCache(takingOwnership: raw)
        var result: [RouteEntry] = []
        for route in cache.objects {
            guard rtnl_route_get_table(route) == RT_TABLE_MAIN.rawValue, rtnl_route_get_type(route) == UInt8(RTN_UNICAST),
                let hop = rtnl_route_nexthop_n(route, 0)
            else { continue }
            let family = rtnl_route_get_family(route)
            let zero = InterfaceAddress(bytes: [UInt8](repeating: 0, count: family == UInt8(AF_INET) ? 4 : 16), prefixLength: 0)
            guard let destination = interfaceAddress(rtnl_route_get_dst(route)) ?? zero else { continue }
            let index = rtnl_route_nh_get_ifindex(hop)
            let origin: String = switch Int32(rtnl_route_get_protocol(route)) {
            case RTPROT_KERNEL: "kernel"
            case RTPROT_BOOT: "boot"
            case RTPROT_STATIC: "static"
            case RTPROT_DHCP: "dhcp"
            case let other: String(other)
            }
            result.append(RouteEntry(
                destination: destination, gateway: interfaceAddress(rtnl_route_nh_get_gateway(hop), prefixLength: family == UInt8(AF_INET) ? 32 : 128),
                linkIndex: index, linkName: Self.name(ofLink: index), origin: origin))
        }
        return result
    }

    /// `if_indextoname`, in this thread's network namespace.
    static func name(ofLink index: Int32) -> String {
        var buffer = [CChar](repeating: 0, count: Int(IF_NAMESIZE) + 1)
        guard if_indextoname(UInt32(index), &buffer) != nil else { return "#\(index)" }
        return String(cString: buffer)
    }

    /// One `RTM_NEWLINK` with every attribute that is set, built by libnl
    /// (`rtnl_link_build_change_request`) and sent with extended acks, so a refusal carries
    /// the kernel's reason ("mtu greater than device maximum").
    public func setLink(index: Int32, _ attributes: LinkAttributes) throws {
        let request = try Self.linkChangeRequest(index: index, attributes)
        _ = try requestSocket.get().exchange(request, operation: "rtnl_link_change", replyHeaderLength: 0)
    }

    /// Sends a request libnl built (`rtnl_…_build_…_request`) on the extended-ack socket.
    private func send(_ raw: OpaquePointer?, status: Int32, operation: String) throws {
        guard status == 0, let message = NetlinkObject(takingOwnership: raw, release: { nlmsg_free($0) }) else {
            throw NetlinkError(operation, code: status)
        }
        _ = try requestSocket.get().exchange(Self.bytes(of: message), operation: operation, replyHeaderLength: 0)
    }

    /// The bytes of a libnl message, with the flags `nl_send_auto` would add (we send ourselves).
    static func bytes(of message: NetlinkObject) -> [UInt8] {
        let header = nlmsg_hdr(message.pointer)!
        var bytes = Array(UnsafeRawBufferPointer(start: header, count: Int(header.pointee.nlmsg_len)))
        bytes[6] |= UInt8(NLM_F_REQUEST | NLM_F_ACK)
        return bytes
    }

    static func linkChangeRequest(index: Int32, _ attributes: LinkAttributes) throws -> [UInt8] {
        // The original only names the link: ifi_change carries exactly the flags we change.
        guard let original = NetlinkObject(takingOwnership: rtnl_link_alloc(), release: { rtnl_link_put($0) }),
            let changes = NetlinkObject(takingOwnership: rtnl_link_alloc(), release: { rtnl_link_put($0) })
        else { throw NetlinkError("rtnl_link_alloc", code: NLE_NOMEM) }
        rtnl_link_set_ifindex(original.pointer, index)
        if let mtu = attributes.mtu { rtnl_link_set_mtu(changes.pointer, mtu) }
        if let length = attributes.txqueuelen { rtnl_link_set_txqlen(changes.pointer, length) }
        switch attributes.isUp {
        case true?: rtnl_link_set_flags(changes.pointer, UInt32(IFF_UP))
        case false?: rtnl_link_unset_flags(changes.pointer, UInt32(IFF_UP))
        case nil: break
        }
        var raw: OpaquePointer?
        let status = rtnl_link_build_change_request(original.pointer, changes.pointer, 0, &raw)
        guard status == 0, let message = NetlinkObject(takingOwnership: raw, release: { nlmsg_free($0) }) else {
            throw NetlinkError("rtnl_link_build_change_request", code: status)
        }
        return bytes(of: message)
    }

    private func addressObject(_ address: InterfaceAddress, linkIndex: Int32) throws -> (NetlinkObject, NetlinkObject) {
        guard let object = NetlinkObject(takingOwnership: rtnl_addr_alloc(), release: { rtnl_addr_put($0) }) else {
            throw NetlinkError("rtnl_addr_alloc", code: NLE_NOMEM)
        }
        let local = try NetlinkObject.address(address)
        rtnl_addr_set_ifindex(object.pointer, linkIndex)
        let status = withExtendedLifetime(local) { rtnl_addr_set_local(object.pointer, local.pointer) }  // takes a reference
        guard status == 0 else { throw NetlinkError("rtnl_addr_set_local", code: status) }
        rtnl_addr_set_prefixlen(object.pointer, Int32(address.prefixLength))
        return (object, local)
    }

    /// `rtnl_addr_build_add_request` (`ip address add`), sent with extended acks.
    public func addAddress(_ address: InterfaceAddress, linkIndex: Int32) throws {
        let (object, _) = try addressObject(address, linkIndex: linkIndex)
        var message: OpaquePointer?
        let status = rtnl_addr_build_add_request(object.pointer, 0, &message)
        try send(message, status: status, operation: "rtnl_addr_add \(address)")
    }

    /// `rtnl_addr_build_delete_request` (`ip address del`), sent with extended acks.
    public func removeAddress(_ address: InterfaceAddress, linkIndex: Int32) throws {
        let (object, _) = try addressObject(address, linkIndex: linkIndex)
        var message: OpaquePointer?
        let status = rtnl_addr_build_delete_request(object.pointer, 0, &message)
        try send(message, status: status, operation: "rtnl_addr_delete \(address)")
    }

    private func routeObject(_ route: RouteEntry) throws -> NetlinkObject {
        guard let object = NetlinkObject(takingOwnership: rtnl_route_alloc(), release: { rtnl_route_put($0) }) else {
            throw NetlinkError("rtnl_route_alloc", code: NLE_NOMEM)
        }
        _ = rtnl_route_set_family(object.pointer, UInt8(route.family == .ipv4 ? AF_INET : AF_INET6))
        rtnl_route_set_table(object.pointer, RT_TABLE_MAIN.rawValue)
        rtnl_route_set_protocol(object.pointer, UInt8(RTPROT_STATIC))
        _ = rtnl_route_set_type(object.pointer, UInt8(RTN_UNICAST))
        rtnl_route_set_scope(object.pointer, UInt8(route.gateway == nil ? RT_SCOPE_LINK.rawValue : RT_SCOPE_UNIVERSE.rawValue))
        let destination = try NetlinkObject.address(route.destination)
        let status = withExtendedLifetime(destination) { rtnl_route_set_dst(object.pointer, destination.pointer) }  // takes a reference
        guard status == 0 else { throw NetlinkError("rtnl_route_set_dst", code: status) }
        let gateway = try route.gateway.map(NetlinkObject.address)
        guard let hop = rtnl_route_nh_alloc() else { throw NetlinkError("rtnl_route_nh_alloc", code: NLE_NOMEM) }
        rtnl_route_nh_set_ifindex(hop, route.linkIndex)
        if let gateway { withExtendedLifetime(gateway) { rtnl_route_nh_set_gateway(hop, gateway.pointer) } }  // takes a reference
        rtnl_route_add_nexthop(object.pointer, hop)  // the route owns the next hop from here
        return object
    }

    /// `rtnl_route_build_add_request` with `NLM_F_REPLACE` (`ip route replace`), sent with extended acks.
    public func replaceRoute(_ route: RouteEntry) throws {
        let object = try routeObject(route)
        var message: OpaquePointer?
        let status = rtnl_route_build_add_request(object.pointer, NLM_F_CREATE | NLM_F_REPLACE, &message)
        try send(message, status: status, operation: "rtnl_route_add \(route)")
    }

    /// `rtnl_route_build_del_request` (`ip route del`), sent with extended acks.
    public func removeRoute(_ route: RouteEntry) throws {
        let object = try routeObject(route)
        var message: OpaquePointer?
        let status = rtnl_route_build_del_request(object.pointer, 0, &message)
        try send(message, status: status, operation: "rtnl_route_delete \(route)")
    }

    /// A second rtnetlink socket, with extended acks, for requests we build ourselves.
    private lazy var requestSocket: Result<NetlinkSocket, Error> = Result {
        let socket = try NetlinkSocket(protocol: NETLINK_ROUTE)
        socket.enableExtendedAcknowledgements()
        return socket
    }

    /// `tc qdisc replace dev … root KIND` (`RTM_NEWQDISC`, `NLM_F_CREATE | NLM_F_REPLACE`), or
    /// `tc qdisc del dev … root` when `kind` is nil. Built by hand rather than through libnl's
    /// per-kind modules, which refuse (fifo) or abort (pfifo_fast) without parameters: the
    /// profile names a kind only, and the kernel applies that kind's defaults.
    public func setRootQdisc(linkIndex: Int32, kind: String?) throws {
        let request = try Self.rootQdiscRequest(linkIndex: linkIndex, kind: kind)
        _ = try requestSocket.get().exchange(
            request, operation: kind.map { "qdisc replace root \($0)" } ?? "qdisc delete root", replyHeaderLength: 0)
    }

    static func rootQdiscRequest(linkIndex: Int32, kind: String?) throws -> [UInt8] {
        var header = [UInt8](repeating: 0, count: 20)  // struct tcmsg: family, padding, ifindex, handle, parent, info
        header.storeUInt32(UInt32(bitPattern: linkIndex), at: 4)
        header.storeUInt32(TC_H_ROOT, at: 12)
        let flags = NLM_F_REQUEST | NLM_F_ACK | (kind == nil ? 0 : NLM_F_CREATE | NLM_F_REPLACE)
        let request = try GenericNetlinkRequest(type: Int32(kind == nil ? RTM_DELQDISC : RTM_NEWQDISC), flags: flags, familyHeader: header)
        if let kind { try request.put(TCA_KIND, string: kind) }
        return request.bytes
    }
}

extension String {
    func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
