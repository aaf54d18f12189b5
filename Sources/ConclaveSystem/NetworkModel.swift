#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

// Values the network code reads from the kernel and decides about. No I/O here: the kernel
// channels behind the protocols at the end of this file are real (libnl, /proc, /sys) or fakes.

/// An IPv4 or IPv6 interface address with its prefix length, always in canonical text form
/// (`inet_pton` then `inet_ntop`), so "2001:DB8::0002/64" and "2001:db8::2/64" are equal.
public struct InterfaceAddress: Sendable, Hashable, Codable, CustomStringConvertible, Comparable {
    public enum Family: String, Sendable, Codable { case ipv4, ipv6 }

    public let family: Family
    public let address: String
    public let prefixLength: Int

    /// "10.0.0.2/24", "2001:db8::2/64"; a bare address gets /32 or /128.
    public init?(cidr text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let bytes = Self.parseAddress(String(parts[0])) else { return nil }
        let maximum = bytes.count == 4 ? 32 : 128
        let prefix = parts.count == 2 ? Int(parts[1]) : maximum
        guard let prefix, (0...maximum).contains(prefix) else { return nil }
        self.init(bytes: bytes, prefixLength: prefix)!
    }

    /// From raw network-order bytes (4 or 16), as netlink carries them.
    public init?(bytes: [UInt8], prefixLength: Int) {
        guard bytes.count == 4 || bytes.count == 16 else { return nil }
        family = bytes.count == 4 ? .ipv4 : .ipv6
        address = Self.format(bytes)
        self.prefixLength = prefixLength
    }

    public var bytes: [UInt8] { Self.parseAddress(address)! }
    public var cidr: String { "\(address)/\(prefixLength)" }
    public var description: String { cidr }

    /// fe80::/10: the kernel makes these itself; configuration never removes them.
    public var isIPv6LinkLocal: Bool { family == .ipv6 && bytes[0] == 0xfe && bytes[1] & 0xc0 == 0x80 }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.cidr < rhs.cidr }

    /// `inet_pton` for either family.
    static func parseAddress(_ text: String) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 16)
        if inet_pton(AF_INET, text, &buffer) == 1 { return Array(buffer.prefix(4)) }
        if inet_pton(AF_INET6, text, &buffer) == 1 { return buffer }
        return nil
    }

    /// `inet_ntop` for either family.
    static func format(_ bytes: [UInt8]) -> String {
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        _ = inet_ntop(bytes.count == 4 ? AF_INET : AF_INET6, bytes, &text, socklen_t(text.count))
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// Packet and error counters of a link (`IFLA_STATS64`).
public struct LinkStatistics: Sendable, Equatable, Codable {
    public var rxPackets: UInt64 = 0, rxBytes: UInt64 = 0, rxErrors: UInt64 = 0, rxDropped: UInt64 = 0
    public var txPackets: UInt64 = 0, txBytes: UInt64 = 0, txErrors: UInt64 = 0, txDropped: UInt64 = 0
    public init() {}
}

/// What the kernel reports about one network interface.
public struct LinkState: Sendable, Equatable, Codable {
    public var index: Int32
    public var name: String
    public var mtu: UInt32
    public var isUp: Bool
    public var txqueuelen: UInt32 = 0
    /// RFC 2863 operational state as the kernel names it: "up", "down", "lowerlayerdown", "unknown"…
    public var operationalState = "unknown"
    public var hasCarrier = false
    public var macAddress: String?
    /// The root qdisc's kind as rtnetlink reports it (`IFLA_QDISC`): "noqueue", "fq_codel", "mq"…
    public var rootQdisc: String?
    public var addresses: [InterfaceAddress] = []
    public var statistics = LinkStatistics()

    public init(index: Int32, name: String, mtu: UInt32, isUp: Bool) {
        self.index = index
        self.name = name
        self.mtu = mtu
        self.isUp = isUp
    }

    public var isLoopback: Bool { name == "lo" }
}

/// One route of the main table, reduced to what configuration sets: a destination ("default"
/// or a prefix), an optional gateway and the output link.
public struct RouteEntry: Sendable, Hashable, Codable, CustomStringConvertible {
    public var destination: InterfaceAddress
    public var gateway: InterfaceAddress?
    public var linkIndex: Int32
    public var linkName: String
    /// "kernel", "boot", "static", "dhcp", or the number.
    public var origin = "static"

    public init(destination: InterfaceAddress, gateway: InterfaceAddress?, linkIndex: Int32, linkName: String, origin: String = "static") {
        self.destination = destination
        self.gateway = gateway
        self.linkIndex = linkIndex
        self.linkName = linkName
        self.origin = origin
    }

    public var isDefault: Bool { destination.prefixLength == 0 }
    public var family: InterfaceAddress.Family { destination.family }

    public var description: String {
        (isDefault ? "default" : destination.cidr) + (gateway.map { " via \($0.address)" } ?? "") + " dev \(linkName)"
    }
}

/// A change of link attributes; nil fields stay as they are (one `RTM_NEWLINK`).
public struct LinkAttributes: Sendable, Equatable {
    public var mtu: UInt32?
    public var txqueuelen: UInt32?
    public var isUp: Bool?

    public init(mtu: UInt32? = nil, txqueuelen: UInt32? = nil, isUp: Bool? = nil) {
        self.mtu = mtu
        self.txqueuelen = txqueuelen
        self.isUp = isUp
    }
}

/// rtnetlink. Real: `RouteNetlink` (libnl-route). Tests: a fake that records the calls.
public protocol RouteControl: AnyObject {
    func links() throws -> [LinkState]
    func routes() throws -> [RouteEntry]
    func setLink(index: Int32, _ attributes: LinkAttributes) throws
    func addAddress(_ address: InterfaceAddress, linkIndex: Int32) throws
    func removeAddress(_ address: InterfaceAddress, linkIndex: Int32) throws
    /// Adds or replaces (`NLM_F_CREATE|NLM_F_REPLACE`) a route in the main table.
    func replaceRoute(_ route: RouteEntry) throws
    func removeRoute(_ route: RouteEntry) throws
    /// Sets the root qdisc (`tc qdisc replace … root KIND`) with the kind's defaults; nil deletes
    /// the root qdisc, which gives the link back its default.
    func setRootQdisc(linkIndex: Int32, kind: String?) throws
}

// MARK: - ethtool

/// Ring sizes (`ETHTOOL_MSG_RINGS_GET`), keyed "rx", "rx-mini", "rx-jumbo", "tx".
public struct RingParameters: Sendable, Equatable, Codable {
    public var current: [String: UInt32] = [:]
    public var maximum: [String: UInt32] = [:]
    public init(current: [String: UInt32] = [:], maximum: [String: UInt32] = [:]) {
        self.current = current
        self.maximum = maximum
    }
}

/// Queue counts (`ETHTOOL_MSG_CHANNELS_GET`), keyed "rx", "tx", "other", "combined".
public struct ChannelParameters: Sendable, Equatable, Codable {
    public var current: [String: UInt32] = [:]
    public var maximum: [String: UInt32] = [:]
    public init(current: [String: UInt32] = [:], maximum: [String: UInt32] = [:]) {
        self.current = current
        self.maximum = maximum
    }
}

/// One interrupt-coalescing parameter: a count ("rx-usecs") or a switch ("adaptive-rx").
public enum CoalesceValue: Sendable, Equatable, Codable, CustomStringConvertible {
    case count(UInt32)
    case flag(Bool)

    public var description: String {
        switch self {
        case .count(let value): String(value)
        case .flag(let value): value ? "on" : "off"
        }
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let flag = try? container.decode(Bool.self) { self = .flag(flag) } else { self = .count(try container.decode(UInt32.self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .count(let value): try container.encode(value)
        case .flag(let value): try container.encode(value)
        }
    }
}

/// Offload features (`ETHTOOL_MSG_FEATURES_GET`) by kernel name ("rx-gro", "tx-tcp-segmentation"…).
public struct FeatureState: Sendable, Equatable, Codable {
    /// Every feature the kernel listed as active.
    public var active: Set<String> = []
    /// Features the driver lets user space change (the "hw" set); the others are fixed.
    public var changeable: Set<String> = []
    public init(active: Set<String> = [], changeable: Set<String> = []) {
        self.active = active
        self.changeable = changeable
    }
}

/// ethtool over generic netlink. Every getter returns nil when the device does not implement
/// the operation (EOPNOTSUPP: veth has no rings and no coalescing).
public protocol EthtoolControl: AnyObject {
    func rings(link: String) throws -> RingParameters?
    func setRings(link: String, _ values: [String: UInt32]) throws
    func channels(link: String) throws -> ChannelParameters?
    func setChannels(link: String, _ values: [String: UInt32]) throws
    /// Only the parameters the driver supports are present.
    func coalesce(link: String) throws -> [String: CoalesceValue]?
    func setCoalesce(link: String, _ values: [String: CoalesceValue]) throws
    func features(link: String) throws -> FeatureState?
    func setFeatures(link: String, _ values: [String: Bool]) throws
}

// MARK: - /proc and /sys

/// Small text files of the kernel: sysctls under /proc/sys, queue masks under /sys/class/net.
/// Real: `KernelFileSystem`. Tests: a dictionary.
public protocol KernelFiles: AnyObject {
    /// The content without its trailing newline; nil when the file does not exist.
    func read(_ path: String) throws -> String?
    func write(_ path: String, _ value: String) throws
    /// Entry names of a directory, sorted; empty when it does not exist.
    func list(_ directory: String) -> [String]
}

/// Host settings outside netlink: the host name (per UTS namespace) and /etc files (resolv.conf).
public protocol HostControl: AnyObject {
    func hostname() throws -> String
    func setHostname(_ name: String) throws
    /// nil when the file does not exist.
    func readConfigurationFile(_ path: String) throws -> String?
    /// Atomically (temp, fsync, rename); through a symbolic link to its target.
    func writeConfigurationFile(_ path: String, _ contents: String) throws
}

/// Everything `net apply` touches, so a test can hand in fakes.
public struct NetworkSystem {
    public let route: RouteControl
    public let ethtool: EthtoolControl
    public let files: KernelFiles
    public let host: HostControl

    public init(route: RouteControl, ethtool: EthtoolControl, files: KernelFiles, host: HostControl) {
        self.route = route
        self.ethtool = ethtool
        self.files = files
        self.host = host
    }
}

/// `net.core.rmem_max` ↔ `/proc/sys/net/core/rmem_max`. A name that already holds a "/"
/// is a path below /proc/sys (for interface names with dots: `net/ipv4/conf/eth0.100/rp_filter`).
public enum Sysctl {
    public static func path(_ name: String) -> String {
        "/proc/sys/" + (name.contains("/") ? name : name.split(separator: ".", omittingEmptySubsequences: false).joined(separator: "/"))
    }

    /// Sysctls print vectors with tabs ("4096\t87380\t6291456"); compare them word by word.
    public static func normalized(_ value: String) -> String {
        value.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).joined(separator: " ")
    }
}

/// CPU masks as /sys prints them ("00000000,0000000f" or "f"): compare without commas and zeros.
public enum CPUMask {
    public static func normalized(_ mask: String) -> String {
        let digits = mask.lowercased().filter { $0 != "," && !$0.isWhitespace }
        let trimmed = digits.drop { $0 == "0" }
        return trimmed.isEmpty ? "0" : String(trimmed)
    }

    public static func isValid(_ mask: String) -> Bool {
        !mask.isEmpty && mask.allSatisfy { $0.isHexDigit || $0 == "," }
    }

    /// The CPUs of a list as /sys/devices/system/cpu/online prints it ("0-3,6").
    public static func cpus(inList list: String) -> Set<Int> {
        var result: Set<Int> = []
        for part in list.split(separator: ",") {
            let bounds = part.split(separator: "-").compactMap { Int(String($0.filter { !$0.isWhitespace })) }
            if bounds.count == 1 { result.insert(bounds[0]) }
            if bounds.count == 2, bounds[0] <= bounds[1] { result.formUnion(bounds[0]...bounds[1]) }
        }
        return result
    }

    /// `mask` restricted to `cpus`, normalized. The kernel refuses bits past its CPU count
    /// (EOVERFLOW) and drops offline ones, so "ff" means "the first eight, of those present".
    public static func restricted(_ mask: String, to cpus: Set<Int>) -> String {
        let digits = Array(mask.lowercased().filter { $0 != "," }.reversed())
        var result = [Character]()
        for (position, digit) in digits.enumerated() {
            let nibble = Int(String(digit), radix: 16) ?? 0
            let kept = (0..<4).reduce(0) { $0 | (cpus.contains(position * 4 + $1) ? nibble & (1 << $1) : 0) }
            result.append(Character(String(kept, radix: 16)))
        }
        return normalized(String(result.reversed()))
    }
}
