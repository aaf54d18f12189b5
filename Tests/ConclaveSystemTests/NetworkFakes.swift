@testable import ConclaveSystem

/// Lowercase hex of bytes, for the golden-byte tests of the network code.
func networkHex(_ bytes: some Sequence<UInt8>) -> String {
    let digits = Array("0123456789abcdef")
    return String(bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 0x0f)]] })
}

func networkBytes(hex: String) -> [UInt8] {
    let digits = hex.filter { !$0.isWhitespace }.map { UInt8(String($0), radix: 16)! }
    return stride(from: 0, to: digits.count, by: 2).map { digits[$0] << 4 | digits[$0 + 1] }
}

/// A kernel in memory: links, routes, ethtool parameters and files, changed by the calls as
/// the kernel would, and a log of every call.
class FakeKernel: RouteControl, EthtoolControl, KernelFiles, HostControl {
    var linkStates: [LinkState] = []
    var routeEntries: [RouteEntry] = []
    var ringParameters: [String: RingParameters] = [:]
    var channelParameters: [String: ChannelParameters] = [:]
    var coalesceParameters: [String: [String: CoalesceValue]] = [:]
    var featureStates: [String: FeatureState] = [:]
    var files: [String: String] = [:]
    var configurationFiles: [String: String] = [:]
    var host = "appliance"
    var calls: [String] = []
    /// Setting an MTU above this fails with EINVAL, as the kernel does past the device's max_mtu.
    var maximumMTU: UInt32 = 65535

    func add(link name: String, index: Int32, mtu: UInt32 = 1500) {
        var link = LinkState(index: index, name: name, mtu: mtu, isUp: false)
        link.txqueuelen = 1000
        link.rootQdisc = "noqueue"
        link.macAddress = name == "lo" ? nil : "02:00:00:00:00:\(String(index, radix: 16).leftPadded(to: 2))"
        linkStates.append(link)
    }

    func links() throws -> [LinkState] { linkStates }
    func routes() throws -> [RouteEntry] { routeEntries }

    func setLink(index: Int32, _ attributes: LinkAttributes) throws {
        calls.append("setLink \(index) \(attributes)")
        guard let position = linkStates.firstIndex(where: { $0.index == index }) else { throw NetlinkError("setLink", code: 19) }
        if let mtu = attributes.mtu {
            guard mtu <= maximumMTU && mtu >= 68 else { throw NetlinkError("rtnl_link_change", errno: 22) }
            linkStates[position].mtu = mtu
        }
        if let length = attributes.txqueuelen { linkStates[position].txqueuelen = length }
        if let up = attributes.isUp { linkStates[position].isUp = up }
    }

    func addAddress(_ address: InterfaceAddress, linkIndex: Int32) throws {
        calls.append("addAddress \(address) \(linkIndex)")
        let position = linkStates.firstIndex { $0.index == linkIndex }!
        linkStates[position].addresses.append(address)
    }

    func removeAddress(_ address: InterfaceAddress, linkIndex: Int32) throws {
        calls.append("removeAddress \(address) \(linkIndex)")
        let position = linkStates.firstIndex { $0.index == linkIndex }!
        linkStates[position].addresses.removeAll { $0 == address }
    }

    func replaceRoute(_ route: RouteEntry) throws {
        calls.append("replaceRoute \(route)")
        routeEntries.removeAll { $0.destination == route.destination }
        routeEntries.append(route)
    }

    func removeRoute(_ route: RouteEntry) throws {
        calls.append("removeRoute \(route)")
        routeEntries.removeAll { $0.destination == route.destination }
    }

    func setRootQdisc(linkIndex: Int32, kind: String?) throws {
        calls.append("setRootQdisc \(linkIndex) \(kind ?? "default")")
        let position = linkStates.firstIndex { $0.index == linkIndex }!
        linkStates[position].rootQdisc = kind ?? "noqueue"
    }

    func rings(link: String) throws -> RingParameters? { ringParameters[link] }
    func setRings(link: String, _ values: [String: UInt32]) throws {
        calls.append("setRings \(link) \(values.sorted { $0.key < $1.key })")
        ringParameters[link]!.current.merge(values) { $1 }
    }

    func channels(link: String) throws -> ChannelParameters? { channelParameters[link] }
    func setChannels(link: String, _ values: [String: UInt32]) throws {
        calls.append("setChannels \(link) \(values.sorted { $0.key < $1.key })")
        channelParameters[link]!.current.merge(values) { $1 }
    }

    func coalesce(link: String) throws -> [String: CoalesceValue]? { coalesceParameters[link] }
    func setCoalesce(link: String, _ values: [String: CoalesceValue]) throws {
        calls.append("setCoalesce \(link)")
        coalesceParameters[link]!.merge(values) { $1 }
    }

    func features(link: String) throws -> FeatureState? { featureStates[link] }
    func setFeatures(link: String, _ values: [String: Bool]) throws {
        calls.append("setFeatures \(link) \(values.sorted { $0.key < $1.key })")
        for (name, on) in values {
            if on { featureStates[link]!.active.insert(name) } else { featureStates[link]!.active.remove(name) }
        }
    }

    func read(_ path: String) throws -> String? { files[path] }
    func write(_ path: String, _ value: String) throws {
        calls.append("write \(path) \(value)")
        guard files[path] != nil else { throw KernelFileError(path: path, value: value, reason: "No such file or directory") }
        files[path] = value
    }
    func list(_ directory: String) -> [String] {
        let prefix = directory + "/"
        return Array(Set(files.keys.filter { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count).split(separator: "/")[0]) })).sorted()
    }

    func hostname() throws -> String { host }
    func setHostname(_ name: String) throws {
        calls.append("setHostname \(name)")
        host = name
    }
    func readConfigurationFile(_ path: String) throws -> String? { configurationFiles[path] }
    func writeConfigurationFile(_ path: String, _ contents: String) throws {
        calls.append("writeConfigurationFile \(path)")
        configurationFiles[path] = contents
    }

    var system: NetworkSystem { NetworkSystem(route: self, ethtool: self, files: self, host: self) }

    func link(_ name: String) -> LinkState { linkStates.first { $0.name == name }! }
}

/// A generic-netlink channel that records requests and answers from a script.
final class FakeGenericNetlinkChannel: GenericNetlinkChannel {
    var sent: [[UInt8]] = []
    var answers: [Result<[[UInt8]], NetlinkError>] = []

    func familyIdentifier(named name: String) throws -> UInt16 { 20 }

    func exchange(_ request: [UInt8], operation: String) throws -> [[UInt8]] {
        sent.append(request)
        return try answers.isEmpty ? [] : answers.removeFirst().get()
    }
}
