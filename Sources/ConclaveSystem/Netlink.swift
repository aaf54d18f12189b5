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
}

/// What the kernel reports about one network interface.
public struct LinkState: Sendable, Equatable {
    public let index: Int32
    public let name: String
    public let mtu: UInt32
    public let isUp: Bool
}

/// Reads links through rtnetlink (libnl-route).
public struct RouteNetlink {
    private let socket: NetlinkSocket

    public init() throws { socket = try NetlinkSocket(protocol: NETLINK_ROUTE) }

    /// Every link the kernel knows in this network namespace (`rtnl_link_alloc_cache`).
    public func links() throws -> [LinkState] {
        var raw: OpaquePointer?
        let status = rtnl_link_alloc_cache(socket.pointer, AF_UNSPEC, &raw)
        guard status == 0, let raw else { throw NetlinkError("rtnl_link_alloc_cache", code: status) }
        let cache = NetlinkCache(takingOwnership: raw)
        var result: [LinkState] = []
        var object = nl_cache_get_first(cache.pointer)
        while let current = object {
            // Objects in a link cache are `struct rtnl_link`; the cache keeps them alive.
            let link = current
            result.append(LinkState(
                index: rtnl_link_get_ifindex(link),
                name: rtnl_link_get_name(link).map { String(cString: $0) } ?? "",
                mtu: rtnl_link_get_mtu(link),
                isUp: rtnl_link_get_flags(link) & UInt32(IFF_UP) != 0))
            object = nl_cache_get_next(current)
        }
        return result
    }
}
