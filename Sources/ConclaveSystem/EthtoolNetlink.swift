internal import CNetlink

/// ethtool over generic netlink (family "ethtool", `linux/ethtool_netlink.h`): rings, channels,
/// interrupt coalescing and offload features, read and set by interface name.
public final class EthtoolNetlink: EthtoolControl {
    private let channel: GenericNetlinkChannel
    private var resolvedFamily: UInt16?

    public init(channel: GenericNetlinkChannel) { self.channel = channel }

    /// The real kernel channel.
    public convenience init() throws { self.init(channel: try GenericNetlinkSocket()) }

    private func family() throws -> UInt16 {
        if let resolvedFamily { return resolvedFamily }
        let family: UInt16
        do { family = try channel.familyIdentifier(named: ETHTOOL_GENL_NAME) } catch let error as NetlinkError where error.code == NLE_OBJ_NOTFOUND {
            // A kernel without CONFIG_ETHTOOL_NETLINK (before 5.6): no device supports anything.
            throw NetlinkError(error.operation, code: NLE_OPNOTSUPP, kernelMessage: "no ethtool generic-netlink family in this kernel")
        }
        resolvedFamily = family
        return family
    }

    // MARK: Parameter names ↔ attributes

    static let ringAttributes: [(String, current: Int, maximum: Int)] = [
        ("rx", ETHTOOL_A_RINGS_RX, ETHTOOL_A_RINGS_RX_MAX),
        ("rx-mini", ETHTOOL_A_RINGS_RX_MINI, ETHTOOL_A_RINGS_RX_MINI_MAX),
        ("rx-jumbo", ETHTOOL_A_RINGS_RX_JUMBO, ETHTOOL_A_RINGS_RX_JUMBO_MAX),
        ("tx", ETHTOOL_A_RINGS_TX, ETHTOOL_A_RINGS_TX_MAX),
    ]

    static let channelAttributes: [(String, current: Int, maximum: Int)] = [
        ("rx", ETHTOOL_A_CHANNELS_RX_COUNT, ETHTOOL_A_CHANNELS_RX_MAX),
        ("tx", ETHTOOL_A_CHANNELS_TX_COUNT, ETHTOOL_A_CHANNELS_TX_MAX),
        ("other", ETHTOOL_A_CHANNELS_OTHER_COUNT, ETHTOOL_A_CHANNELS_OTHER_MAX),
        ("combined", ETHTOOL_A_CHANNELS_COMBINED_COUNT, ETHTOOL_A_CHANNELS_COMBINED_MAX),
    ]

    /// The coalescing parameters a profile may name, with ethtool's own names (`ethtool -C`).
    public static let coalesceParameters: [(name: String, attribute: Int, isFlag: Bool)] = [
        ("rx-usecs", ETHTOOL_A_COALESCE_RX_USECS, false),
        ("rx-frames", ETHTOOL_A_COALESCE_RX_MAX_FRAMES, false),
        ("tx-usecs", ETHTOOL_A_COALESCE_TX_USECS, false),
        ("tx-frames", ETHTOOL_A_COALESCE_TX_MAX_FRAMES, false),
        ("adaptive-rx", ETHTOOL_A_COALESCE_USE_ADAPTIVE_RX, true),
        ("adaptive-tx", ETHTOOL_A_COALESCE_USE_ADAPTIVE_TX, true),
    ]

    public static let ringNames = ringAttributes.map(\.0)
    public static let channelNames = channelAttributes.map(\.0)

    // MARK: Requests (bytes), separate from the exchange so tests can check them exactly

    static func request(family: UInt16, command: Int, header: Int, link: String, body: (GenericNetlinkRequest) throws -> Void = { _ in })
        throws -> [UInt8]
    {
        let request = try GenericNetlinkRequest(family: family, command: command, version: ETHTOOL_GENL_VERSION)
        try request.nest(header) { try request.put(ETHTOOL_A_HEADER_DEV_NAME, string: link) }
        try body(request)
        return request.bytes
    }

    /// `ETHTOOL_MSG_RINGS_SET` (`ethtool -G`), attributes in the kernel's order.
    static func setRingsRequest(family: UInt16, link: String, _ values: [String: UInt32]) throws -> [UInt8] {
        try request(family: family, command: ETHTOOL_MSG_RINGS_SET, header: ETHTOOL_A_RINGS_HEADER, link: link) { request in
            for (name, attribute, _) in ringAttributes.sorted(by: { $0.current < $1.current }) {
                if let value = values[name] { try request.put(attribute, u32: value) }
            }
        }
    }

    /// `ETHTOOL_MSG_COALESCE_SET` (`ethtool -C`); counts are u32, the adaptive switches u8.
    static func setCoalesceRequest(family: UInt16, link: String, _ values: [String: CoalesceValue]) throws -> [UInt8] {
        try request(family: family, command: ETHTOOL_MSG_COALESCE_SET, header: ETHTOOL_A_COALESCE_HEADER, link: link) { request in
            for parameter in coalesceParameters.sorted(by: { $0.attribute < $1.attribute }) {
                switch values[parameter.name] {
                case .count(let value)?: try request.put(parameter.attribute, u32: value)
                case .flag(let value)?: try request.put(parameter.attribute, u8: value ? 1 : 0)
                case nil: break
                }
            }
        }
    }

    static func setChannelsRequest(family: UInt16, link: String, _ values: [String: UInt32]) throws -> [UInt8] {
        try request(family: family, command: ETHTOOL_MSG_CHANNELS_SET, header: ETHTOOL_A_CHANNELS_HEADER, link: link) { request in
            for (name, attribute, _) in channelAttributes.sorted(by: { $0.current < $1.current }) {
                if let value = values[name] { try request.put(attribute, u32: value) }
            }
        }
    }

    /// `ETHTOOL_MSG_FEATURES_SET` with a verbose bitset: the listed bits are the mask, and
    /// `ETHTOOL_A_BITSET_BIT_VALUE` present means on.
    static func setFeaturesRequest(family: UInt16, link: String, _ values: [String: Bool]) throws -> [UInt8] {
        try request(family: family, command: ETHTOOL_MSG_FEATURES_SET, header: ETHTOOL_A_FEATURES_HEADER, link: link) { request in
            try request.nest(ETHTOOL_A_FEATURES_WANTED) {
                try request.nest(ETHTOOL_A_BITSET_BITS) {
                    for (name, on) in values.sorted(by: { $0.key < $1.key }) {
                        try request.nest(ETHTOOL_A_BITSET_BITS_BIT) {
                            try request.put(ETHTOOL_A_BITSET_BIT_NAME, string: name)
                            if on { try request.putFlag(ETHTOOL_A_BITSET_BIT_VALUE) }
                        }
                    }
                }
            }
        }
    }

    // MARK: Exchanges

    /// The single reply of a GET, or nil when the driver does not implement it (EOPNOTSUPP).
    private func get(command: Int, header: Int, link: String, operation: String) throws -> [NetlinkAttribute]? {
        do {
            let bytes = try Self.request(family: try family(), command: command, header: header, link: link)
            let replies = try channel.exchange(bytes, operation: "\(operation) \(link)")
            return replies.first.map { NetlinkAttribute.parse($0[...]) } ?? []
        } catch let error as NetlinkError where error.isNotSupported {
            return nil
        }
    }

    public func rings(link: String) throws -> RingParameters? {
        guard let attributes = try get(command: ETHTOOL_MSG_RINGS_GET, header: ETHTOOL_A_RINGS_HEADER, link: link, operation: "ethtool rings get")
        else { return nil }
        let (current, maximum) = Self.counts(in: attributes, Self.ringAttributes)
        return RingParameters(current: current, maximum: maximum)
    }

    /// The current value and maximum of each (current, maximum) attribute pair of `table`. A
    /// count the device lacks has maximum 0 (rx-mini, rx-jumbo on most NICs): it is left out.
    private static func counts(
        in attributes: [NetlinkAttribute], _ table: [(String, current: Int, maximum: Int)]
    ) -> (current: [String: UInt32], maximum: [String: UInt32]) {
        var currents: [String: UInt32] = [:], maximums: [String: UInt32] = [:]
        for (name, current, maximum) in table {
            guard let top = attributes.first(where: { $0.type == maximum })?.u32, top > 0 else { continue }
            maximums[name] = top
            currents[name] = attributes.first { $0.type == current }?.u32 ?? 0
        }
        return (currents, maximums)
    }

    public func setRings(link: String, _ values: [String: UInt32]) throws {
        _ = try channel.exchange(try Self.setRingsRequest(family: try family(), link: link, values), operation: "ethtool rings set \(link)")
    }

    public func channels(link: String) throws -> ChannelParameters? {
        guard let attributes = try get(
            command: ETHTOOL_MSG_CHANNELS_GET, header: ETHTOOL_A_CHANNELS_HEADER, link: link, operation: "ethtool channels get")
        else { return nil }
        let (current, maximum) = Self.counts(in: attributes, Self.channelAttributes)
        return ChannelParameters(current: current, maximum: maximum)
    }

    public func setChannels(link: String, _ values: [String: UInt32]) throws {
        _ = try channel.exchange(
            try Self.setChannelsRequest(family: try family(), link: link, values), operation: "ethtool channels set \(link)")
    }

    public func coalesce(link: String) throws -> [String: CoalesceValue]? {
        guard let attributes = try get(
            command: ETHTOOL_MSG_COALESCE_GET, header: ETHTOOL_A_COALESCE_HEADER, link: link, operation: "ethtool coalesce get")
        else { return nil }
        // The kernel leaves out a parameter the driver does not support (unless it is non-zero).
        var result: [String: CoalesceValue] = [:]
        for parameter in Self.coalesceParameters {
            guard let attribute = attributes.first(where: { $0.type == parameter.attribute }) else { continue }
            result[parameter.name] = parameter.isFlag ? .flag((attribute.u8 ?? 0) != 0) : .count(attribute.u32 ?? 0)
        }
        return result
    }

    public func setCoalesce(link: String, _ values: [String: CoalesceValue]) throws {
        _ = try channel.exchange(
            try Self.setCoalesceRequest(family: try family(), link: link, values), operation: "ethtool coalesce set \(link)")
    }

    public func features(link: String) throws -> FeatureState? {
        guard let attributes = try get(
            command: ETHTOOL_MSG_FEATURES_GET, header: ETHTOOL_A_FEATURES_HEADER, link: link, operation: "ethtool features get")
        else { return nil }
        func names(_ type: Int) -> Set<String> {
            guard let bitset = attributes.first(where: { $0.type == type })?.nested else { return [] }
            let noMask = bitset.contains { $0.type == ETHTOOL_A_BITSET_NOMASK }
            let bits = bitset.first { $0.type == ETHTOOL_A_BITSET_BITS }?.nested ?? []
            var result: Set<String> = []
            for bit in bits where bit.type == ETHTOOL_A_BITSET_BITS_BIT {
                let fields = bit.nested
                guard let name = fields.first(where: { $0.type == ETHTOOL_A_BITSET_BIT_NAME })?.string else { continue }
                // Without a mask a verbose bitset lists only the bits that are set.
                if noMask || fields.contains(where: { $0.type == ETHTOOL_A_BITSET_BIT_VALUE }) { result.insert(name) }
            }
            return result
        }
        return FeatureState(active: names(ETHTOOL_A_FEATURES_ACTIVE), changeable: names(ETHTOOL_A_FEATURES_HW))
    }

    public func setFeatures(link: String, _ values: [String: Bool]) throws {
        _ = try channel.exchange(
            try Self.setFeaturesRequest(family: try family(), link: link, values), operation: "ethtool features set \(link)")
    }
}
