internal import CNetlink
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A generic-netlink request/answer channel. Real: `GenericNetlinkSocket` (libnl-genl). Tests:
/// a fake that records the request bytes and answers from a script.
public protocol GenericNetlinkChannel: AnyObject {
    /// The numeric id of a generic-netlink family ("ethtool"), resolved through `nlctrl`.
    func familyIdentifier(named name: String) throws -> UInt16
    /// Sends one request built with port 0 and sequence 0 (the channel fills both in) and
    /// returns the attribute bytes (after `nlmsghdr` and `genlmsghdr`) of every reply, up to
    /// the kernel's acknowledgement. A kernel error throws `NetlinkError` with its extack text.
    func exchange(_ request: [UInt8], operation: String) throws -> [[UInt8]]
}

/// A `NETLINK_GENERIC` libnl socket with extended acks on: the kernel explains its refusals
/// ("requested ring size exceeds maximum"), and we show that text instead of a bare errno.
public final class GenericNetlinkSocket: GenericNetlinkChannel {
    private let socket: NetlinkSocket

    public init() throws {
        socket = try NetlinkSocket(protocol: NETLINK_GENERIC)
        socket.enableExtendedAcknowledgements()
    }

    /// `genl_ctrl_resolve`.
    public func familyIdentifier(named name: String) throws -> UInt16 {
        let identifier = genl_ctrl_resolve(socket.pointer, name)
        guard identifier > 0 else { throw NetlinkError("genl_ctrl_resolve \(name)", code: identifier) }
        return UInt16(identifier)
    }

    public func exchange(_ request: [UInt8], operation: String) throws -> [[UInt8]] {
        try socket.exchange(request, operation: operation, replyHeaderLength: 4)  // genlmsghdr
    }
}

extension NetlinkSocket {
    /// `NETLINK_EXT_ACK` and `NETLINK_CAP_ACK`. Best effort: kernels before 4.12 lack them, and
    /// the errno alone still works.
    func enableExtendedAcknowledgements() {
        let descriptor = nl_socket_get_fd(pointer)
        var on: Int32 = 1
        _ = setsockopt(descriptor, SOL_NETLINK, NETLINK_EXT_ACK, &on, socklen_t(MemoryLayout<Int32>.size))
        _ = setsockopt(descriptor, SOL_NETLINK, NETLINK_CAP_ACK, &on, socklen_t(MemoryLayout<Int32>.size))
    }

    /// `nl_sendto` of a request built with port 0 and sequence 0, stamped with our port and the
    /// next sequence number, then `nl_recv` until the acknowledgement of that sequence number.
    /// Returns each reply's bytes after `nlmsghdr` and `replyHeaderLength` more bytes.
    func exchange(_ request: [UInt8], operation: String, replyHeaderLength: Int) throws -> [[UInt8]] {
        precondition(request.count >= 16, "a netlink request has at least its header")
        var message = request
        let sequence = nl_socket_use_seq(pointer)
        message.storeUInt32(sequence, at: 8)
        message.storeUInt32(nl_socket_get_local_port(pointer), at: 12)
        let sent = message.withUnsafeMutableBytes { nl_sendto(pointer, $0.baseAddress, $0.count) }
        guard sent >= 0 else { throw NetlinkError("\(operation): nl_sendto", code: sent) }
        var replies: [[UInt8]] = []
        while true {
            var peer = sockaddr_nl()
            var buffer: UnsafeMutablePointer<UInt8>?
            let count = nl_recv(pointer, &peer, &buffer, nil)
            guard count > 0, let buffer else { throw NetlinkError("\(operation): nl_recv", code: count == 0 ? NLE_NOMEM : count) }
            let received = Array(UnsafeBufferPointer(start: buffer, count: Int(count)))
            free(buffer)
            switch try NetlinkReply.parse(received, sequence: sequence, operation: operation, replyHeaderLength: replyHeaderLength) {
            case .replies(let payloads): replies += payloads
            case .finished(let payloads): return replies + payloads
            }
        }
    }
}

/// Splitting received datagrams into netlink messages: pure, so it is tested without a kernel.
enum NetlinkReply: Equatable {
    case replies([[UInt8]])
    /// The acknowledgement (or `NLMSG_DONE`) arrived; the payloads before it in the same datagram.
    case finished([[UInt8]])

    static func parse(_ bytes: [UInt8], sequence: UInt32, operation: String, replyHeaderLength: Int = 4) throws -> NetlinkReply {
        var payloads: [[UInt8]] = []
        var offset = 0
        while offset + 16 <= bytes.count {
            let length = Int(bytes.loadUInt32(at: offset))
            guard length >= 16, offset + length <= bytes.count else { break }
            let type = Int32(bytes.loadUInt16(at: offset + 4))
            let flags = Int32(bytes.loadUInt16(at: offset + 6))
            let messageSequence = bytes.loadUInt32(at: offset + 8)
            defer { offset += (length + 3) & ~3 }
            guard messageSequence == sequence else { continue }  // a late answer to an earlier request
            switch type {
            case NLMSG_ERROR:
                guard length >= 20 else { throw NetlinkError(operation, code: NLE_MSG_TRUNC) }
                let error = Int32(bitPattern: bytes.loadUInt32(at: offset + 16))
                if error == 0 { return .finished(payloads) }
                var text: String?
                if flags & NLM_F_ACK_TLVS != 0 && length >= 36 {
                    // nlmsgerr = error + the request's header, then the request's body unless capped.
                    let requestLength = Int(bytes.loadUInt32(at: offset + 20))
                    let start = offset + 36 + (flags & NLM_F_CAPPED != 0 ? 0 : max(0, requestLength - 16))
                    if start >= offset + 36 && start <= offset + length {
                        let attributes = NetlinkAttribute.parse(bytes[start..<(offset + length)])
                        text = attributes.first { $0.type == Int(NLMSGERR_ATTR_MSG.rawValue) }?.string
                    }
                }
                throw NetlinkError(operation, errno: error, kernelMessage: text)
            case NLMSG_DONE:
                return .finished(payloads)
            case NLMSG_NOOP, NLMSG_OVERRUN:
                continue
            default:
                guard length >= 16 + replyHeaderLength else { continue }
                payloads.append(Array(bytes[(offset + 16 + replyHeaderLength)..<(offset + length)]))
            }
        }
        return .replies(payloads)
    }
}

/// One netlink attribute (`struct nlattr`) of a received message.
struct NetlinkAttribute {
    let type: Int
    let payload: ArraySlice<UInt8>

    /// Attributes in a buffer; a truncated tail is ignored (the kernel never sends one).
    static func parse(_ bytes: ArraySlice<UInt8>) -> [NetlinkAttribute] {
        var result: [NetlinkAttribute] = []
        var offset = bytes.startIndex
        while offset + 4 <= bytes.endIndex {
            let length = Int(UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8)
            let type = (UInt16(bytes[offset + 2]) | UInt16(bytes[offset + 3]) << 8) & 0x3fff  // NLA_TYPE_MASK: without NLA_F_NESTED and NLA_F_NET_BYTEORDER
            guard length >= 4, offset + length <= bytes.endIndex else { break }
            result.append(NetlinkAttribute(type: Int(type), payload: bytes[(offset + 4)..<(offset + length)]))
            offset += (length + 3) & ~3
        }
        return result
    }

    var u8: UInt8? { payload.first }
    var u32: UInt32? {
        guard payload.count >= 4 else { return nil }
        let start = payload.startIndex
        return (0..<4).reduce(UInt32(0)) { $0 | UInt32(payload[start + $1]) << (8 * UInt32($1)) }
    }
    var string: String { String(decoding: payload.prefix { $0 != 0 }, as: UTF8.self) }
    var nested: [NetlinkAttribute] { Self.parse(payload) }
}

/// A request built with libnl (`nlmsg_alloc`, `genlmsg_put` or `nlmsg_put`, `nla_put_…`),
/// returned as bytes.
struct GenericNetlinkRequest {
    private let message: NetlinkObject

    /// A plain netlink request (rtnetlink): `nlmsg_put` with port 0 and sequence 0, then the
    /// family header (`struct tcmsg`, …) as given.
    init(type: Int32, flags: Int32, familyHeader: [UInt8]) throws {
        guard let message = NetlinkObject(takingOwnership: nlmsg_alloc(), release: { nlmsg_free($0) }) else {
            throw NetlinkError("nlmsg_alloc", code: NLE_NOMEM)
        }
        self.message = message
        guard let header = nlmsg_put(message.pointer, 0, 0, type, Int32(familyHeader.count), flags), let body = nlmsg_data(header) else {
            throw NetlinkError("nlmsg_put", code: NLE_NOMEM)
        }
        familyHeader.withUnsafeBytes { body.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
    }

    /// Header with port 0 and sequence 0, flags `NLM_F_REQUEST | NLM_F_ACK`.
    init(family: UInt16, command: Int, version: Int32) throws {
        guard let message = NetlinkObject(takingOwnership: nlmsg_alloc(), release: { nlmsg_free($0) }) else {
            throw NetlinkError("nlmsg_alloc", code: NLE_NOMEM)
        }
        self.message = message
        guard genlmsg_put(message.pointer, 0, 0, Int32(family), 0, NLM_F_REQUEST | NLM_F_ACK, UInt8(command), UInt8(version)) != nil else {
            throw NetlinkError("genlmsg_put", code: NLE_NOMEM)
        }
    }

    func nest(_ type: Int, _ body: () throws -> Void) throws {
        // NLA_F_NESTED: ethtool validates strictly and refuses a nest without it.
        guard let start = nla_nest_start(message.pointer, Int32(type) | NLA_F_NESTED) else { throw NetlinkError("nla_nest_start", code: NLE_NOMEM) }
        try body()
        try check(nla_nest_end(message.pointer, start), "nla_nest_end")
    }

    func put(_ type: Int, string: String) throws { try check(nla_put_string(message.pointer, Int32(type), string), "nla_put_string") }
    func put(_ type: Int, u32: UInt32) throws { try check(nla_put_u32(message.pointer, Int32(type), u32), "nla_put_u32") }
    func put(_ type: Int, u8: UInt8) throws { try check(nla_put_u8(message.pointer, Int32(type), u8), "nla_put_u8") }
    func putFlag(_ type: Int) throws { try check(nla_put_flag(message.pointer, Int32(type)), "nla_put_flag") }

    private func check(_ status: Int32, _ operation: String) throws {
        guard status >= 0 else { throw NetlinkError(operation, code: status) }
    }

    var bytes: [UInt8] {
        let header = nlmsg_hdr(message.pointer)!
        return Array(UnsafeRawBufferPointer(start: header, count: Int(header.pointee.nlmsg_len)))
    }
}

extension Array where Element == UInt8 {
    /// Netlink headers are in host byte order (little-endian on every board we ship).
    func loadUInt32(at offset: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { $0 | UInt32(self[offset + $1]) << (8 * UInt32($1)) }
    }

    func loadUInt16(at offset: Int) -> UInt16 { UInt16(self[offset]) | UInt16(self[offset + 1]) << 8 }

    mutating func storeUInt32(_ value: UInt32, at offset: Int) {
        for index in 0..<4 { self[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(index))) }
    }
}
