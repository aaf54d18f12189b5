import Glibc

/// A UDP peer (IPv4 or IPv6 address and port), stored inline so comparing the source of each
/// datagram with a leg's latch costs no allocation.
public struct PeerAddress: Hashable, Sendable, CustomStringConvertible {
    /// `AF_INET` or `AF_INET6`.
    let family: sa_family_t
    /// Port in network byte order.
    var portNetworkOrder: UInt16
    /// IPv4: the first 4 bytes; IPv6: all 16, as stored in the socket address.
    let high: UInt64
    let low: UInt64

    /// Reads a socket address the kernel filled in (`recvmmsg`'s `msg_name`).
    init?(_ address: UnsafeRawPointer) {
        family = address.load(as: sa_family_t.self)
        switch Int32(family) {
        case AF_INET:
            let ipv4 = address.load(as: sockaddr_in.self)
            portNetworkOrder = ipv4.sin_port
            high = UInt64(ipv4.sin_addr.s_addr)
            low = 0
        case AF_INET6:
            let ipv6 = address.load(as: sockaddr_in6.self)
            portNetworkOrder = ipv6.sin6_port
            (high, low) = withUnsafeBytes(of: ipv6.sin6_addr) {
                ($0.loadUnaligned(fromByteOffset: 0, as: UInt64.self), $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
            }
        default:
            return nil
        }
    }

    /// Parses `HOST:PORT` with a numeric IPv4 address or `[IPv6]:PORT`.
    public init(parsing text: String) throws(RelayError) {
        var storage = sockaddr_in6()
        let (host, port) = try Self.split(text)
        let parsed = withUnsafeMutableBytes(of: &storage) { raw -> Bool in
            if host.contains(":") {
                var ipv6 = sockaddr_in6()
                ipv6.sin6_family = sa_family_t(AF_INET6)
                ipv6.sin6_port = port.bigEndian
                guard inet_pton(AF_INET6, host, &ipv6.sin6_addr) == 1 else { return false }
                raw.storeBytes(of: ipv6, as: sockaddr_in6.self)
            } else {
                var ipv4 = sockaddr_in()
                ipv4.sin_family = sa_family_t(AF_INET)
                ipv4.sin_port = port.bigEndian
                guard inet_pton(AF_INET, host, &ipv4.sin_addr) == 1 else { return false }
                raw.storeBytes(of: ipv4, as: sockaddr_in.self)
            }
            return true
        }
        guard parsed, let address = withUnsafeBytes(of: &storage, { PeerAddress($0.baseAddress!) }) else {
            throw .invalidAddress(text)
        }
        self = address
    }

    private static func split(_ text: String) throws(RelayError) -> (String, UInt16) {
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else {
            throw .invalidAddress(text)
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host, port)
    }

    public var port: UInt16 { UInt16(bigEndian: portNetworkOrder) }

    /// Writes this address as a `sockaddr_in`/`sockaddr_in6` at `destination` (room for a
    /// `sockaddr_in6`) and returns its length, for `msg_name` or `bind`/`connect`.
    func write(to destination: UnsafeMutableRawPointer) -> socklen_t {
        if Int32(family) == AF_INET {
            var ipv4 = sockaddr_in()
            ipv4.sin_family = family
            ipv4.sin_port = portNetworkOrder
            ipv4.sin_addr.s_addr = UInt32(truncatingIfNeeded: high)
            destination.storeBytes(of: ipv4, as: sockaddr_in.self)
            return socklen_t(MemoryLayout<sockaddr_in>.size)
        }
        var ipv6 = sockaddr_in6()
        ipv6.sin6_family = family
        ipv6.sin6_port = portNetworkOrder
        withUnsafeMutableBytes(of: &ipv6.sin6_addr) {
            $0.storeBytes(of: high, toByteOffset: 0, as: UInt64.self)
            $0.storeBytes(of: low, toByteOffset: 8, as: UInt64.self)
        }
        destination.storeBytes(of: ipv6, as: sockaddr_in6.self)
        return socklen_t(MemoryLayout<sockaddr_in6>.size)
    }

    public var description: String {
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        if Int32(family) == AF_INET {
            var address = in_addr(s_addr: UInt32(truncatingIfNeeded: high))
            inet_ntop(AF_INET, &address, &text, socklen_t(text.count))
            return "\(String(cString: text)):\(port)"
        }
        var address = in6_addr()
        withUnsafeMutableBytes(of: &address) {
            $0.storeBytes(of: high, toByteOffset: 0, as: UInt64.self)
            $0.storeBytes(of: low, toByteOffset: 8, as: UInt64.self)
        }
        inet_ntop(AF_INET6, &address, &text, socklen_t(text.count))
        return "[\(String(cString: text))]:\(port)"
    }
}
