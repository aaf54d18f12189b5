import Testing
@testable import ConclaveSystem

@Suite struct NetworkPlanTests {
    /// A veth-like link (no rings, no coalescing) and a NIC-like one with both.
    static func kernel() -> FakeKernel {
        let kernel = FakeKernel()
        kernel.add(link: "lo", index: 1, mtu: 65536)
        kernel.add(link: "eth0", index: 2)
        kernel.add(link: "veth0", index: 3)
        kernel.ringParameters["eth0"] = RingParameters(current: ["rx": 256, "tx": 256], maximum: ["rx": 4096, "tx": 4096])
        kernel.coalesceParameters["eth0"] = ["rx-usecs": .count(0), "adaptive-rx": .flag(false)]
        kernel.channelParameters["eth0"] = ChannelParameters(current: ["combined": 1], maximum: ["combined": 8])
        kernel.channelParameters["veth0"] = ChannelParameters(current: ["rx": 1, "tx": 1], maximum: ["rx": 2, "tx": 2])
        kernel.featureStates["veth0"] = FeatureState(active: ["rx-checksum"], changeable: ["rx-gro", "tx-tcp-segmentation", "rx-udp-gro-forwarding"])
        kernel.featureStates["eth0"] = FeatureState(active: [], changeable: [])
        for link in ["eth0", "veth0"] {
            kernel.files["/sys/class/net/\(link)/queues/rx-0/rps_cpus"] = "0"
            kernel.files["/sys/class/net/\(link)/queues/rx-0/rps_flow_cnt"] = "0"
            kernel.files["/sys/class/net/\(link)/queues/tx-0/xps_cpus"] = "00000000"
        }
        kernel.files["/proc/sys/net/core/somaxconn"] = "4096"
        kernel.files["/proc/sys/net/ipv4/ip_local_port_range"] = "32768\t60999"
        return kernel
    }

    static func profile(_ json: String) throws -> TuningProfile { try TuningProfile.parse(Array(json.utf8), source: "test") }

    @Test func planListsOldAndNewAndNotesWhatTheDeviceCannotDo() throws {
        let kernel = Self.kernel()
        let profile = try Self.profile(#"""
            {"links": {"*": {"txqueuelen": 2500, "qdisc": "fq", "rings": {"rx": 4096, "tx": "max"}, "coalesce": {"rx-usecs": 50},
                             "features": {"gro": true, "tso": false, "rx-udp-gro-forwarding": true}, "rps_cpus": "3"},
                       "veth0": {"mtu": 9000, "channels": {"rx": 2, "tx": 2}}},
             "sysctl": {"net.ipv4.ip_local_port_range": "10000 60999", "net.core.rmem_max": "33554432"}}
            """#)
        let plan = try NetworkPlanner(system: kernel.system).plan(NetworkTarget(tuning: profile))
        let lines = plan.changes.map(\.description)
        #expect(lines.contains("eth0 txqueuelen: 1000 → 2500"))
        #expect(lines.contains("eth0 rings: rx 256, tx 256 → rx 4096, tx 4096"))  // "max" is read from the device
        #expect(lines.contains("eth0 coalesce: rx-usecs 0 → rx-usecs 50"))
        #expect(lines.contains("veth0 mtu: 1500 → 9000"))
        #expect(lines.contains("veth0 qdisc: noqueue → fq"))
        #expect(lines.contains("veth0 channels: rx 1, tx 1 → rx 2, tx 2"))
        #expect(lines.contains("veth0 features: rx-gro off, rx-udp-gro-forwarding off → rx-gro on, rx-udp-gro-forwarding on"))
        #expect(lines.contains("veth0 rps_cpus (1 queue): 0 → 3"))
        #expect(lines.contains("sysctl net.ipv4.ip_local_port_range: 32768 60999 → 10000 60999"))
        #expect(!lines.contains { $0.hasPrefix("lo ") })  // "*" never touches loopback
        let notes = plan.notes.map(\.description)
        #expect(notes.contains("veth0 rings: not supported by this device; skipped"))
        #expect(notes.contains("veth0 coalesce: not supported by this device; skipped"))
        #expect(notes.contains("eth0 feature gro: not supported by this device (or fixed off); skipped"))
        #expect(notes.contains { $0.hasPrefix("sysctl net.core.rmem_max: not present") })
    }

    @Test func secondApplyChangesNothing() throws {
        let kernel = Self.kernel()
        let profile = try Self.profile(#"""
            {"links": {"veth0": {"mtu": 9000, "txqueuelen": 2500, "qdisc": "fq", "channels": {"rx": 2}, "features": {"gro": true},
                                 "rps_cpus": "3", "xps_cpus": "3", "rps_flow_cnt": 2048}},
             "sysctl": {"net.core.somaxconn": "8192"}}
            """#)
        var network = NetworkConfiguration()
        var interface = NetworkConfiguration.Interface()
        interface.addresses = [InterfaceAddress(cidr: "192.0.2.10/24")!, InterfaceAddress(cidr: "2001:db8::10/64")!]
        interface.gateway = InterfaceAddress(cidr: "192.0.2.1")
        interface.routes = [.init(destination: InterfaceAddress(cidr: "198.51.100.0/24")!, gateway: InterfaceAddress(cidr: "192.0.2.254"))]
        network.interfaces["veth0"] = interface
        network.dns = [InterfaceAddress(cidr: "192.0.2.53")!]
        let target = NetworkTarget(tuning: profile, network: network, resolvConfPath: "/run/resolv.conf")
        let first = try NetworkApplier(system: kernel.system).apply(try NetworkPlanner(system: kernel.system).plan(target))
        #expect(first.applied.count == 15)
        #expect(kernel.link("veth0").isUp && kernel.link("veth0").mtu == 9000 && kernel.link("veth0").addresses.count == 2)
        #expect(kernel.configurationFiles["/run/resolv.conf"]?.contains("nameserver 192.0.2.53\n") == true)
        #expect(kernel.files["/sys/class/net/veth0/queues/tx-0/xps_cpus"] == "3")
        let second = try NetworkPlanner(system: kernel.system).plan(target)
        #expect(second.changes.isEmpty, "\(second.changes)")
    }

    @Test func hardFailureRollsBackThisRunsChanges() throws {
        let kernel = Self.kernel()
        let profile = try Self.profile(#"{"links": {"veth0": {"txqueuelen": 2500, "mtu": 100000}}, "sysctl": {"net.core.somaxconn": "8192"}}"#)
        let plan = try NetworkPlanner(system: kernel.system).plan(NetworkTarget(tuning: profile))
        #expect(plan.changes.map(\.setting) == ["sysctl net.core.somaxconn", "veth0 txqueuelen", "veth0 mtu"])
        #expect {
            _ = try NetworkApplier(system: kernel.system).apply(plan)
        } throws: { error in
            let error = error as! NetworkApplyError
            return error.setting == "veth0 mtu" && error.wanted == "100000"
                && error.rolledBack == ["veth0 txqueuelen", "sysctl net.core.somaxconn"] && error.rollbackFailures.isEmpty
        }
        #expect(kernel.link("veth0").txqueuelen == 1000)
        #expect(kernel.link("veth0").mtu == 1500)
        #expect(kernel.files["/proc/sys/net/core/somaxconn"] == "4096")  // written, then put back
    }

    @Test func unsupportedAtSetTimeIsANoteNotAFailure() throws {
        final class RefusingKernel: FakeKernel {
            override func setCoalesce(link: String, _ values: [String: CoalesceValue]) throws {
                throw NetlinkError("ethtool coalesce set \(link)", errno: -95, kernelMessage: "unsupported parameter")
            }
        }
        let kernel = RefusingKernel()
        kernel.add(link: "eth0", index: 2)
        kernel.coalesceParameters["eth0"] = ["rx-usecs": .count(0)]
        let profile = try Self.profile(#"{"links": {"eth0": {"coalesce": {"rx-usecs": 10}, "txqueuelen": 2000}}}"#)
        let outcome = try NetworkApplier(system: kernel.system).apply(try NetworkPlanner(system: kernel.system).plan(NetworkTarget(tuning: profile)))
        #expect(outcome.applied.map(\.setting) == ["eth0 txqueuelen"])
        #expect(outcome.notes.map(\.description) == ["eth0 coalesce: not supported by this device (Operation not supported (unsupported parameter)); skipped"])
    }

    @Test func ringAboveTheMaximumIsSkippedWithTheMaximum() throws {
        let kernel = Self.kernel()
        let plan = try NetworkPlanner(system: kernel.system).plan(NetworkTarget(tuning: try Self.profile(#"{"links": {"eth0": {"rings": {"rx": 8192}}}}"#)))
        #expect(plan.changes.isEmpty)
        #expect(plan.notes.map(\.description) == [#"eth0 rings rx: 8192 exceeds the device maximum 4096; skipped ("max" asks for the maximum)"#])
    }

    @Test func wildcardSkipsLinksWithoutAMACAddress() throws {
        let kernel = Self.kernel()
        kernel.add(link: "sit0", index: 4, mtu: 1480)
        kernel.linkStates[3].macAddress = nil  // a tunnel: no link-layer address
        let profile = try Self.profile(#"{"links": {"*": {"mtu": 1500}, "sit0": {"txqueuelen": 10}}}"#)
        let plan = try NetworkPlanner(system: kernel.system).plan(NetworkTarget(tuning: profile))
        #expect(plan.changes.map(\.description) == ["sit0 txqueuelen: 1000 → 10"])  // named: yes; "*": not for sit0
    }

    @Test func hostnameIsLeftAloneInsideANamespace() throws {
        let kernel = Self.kernel()
        var network = NetworkConfiguration()
        network.hostname = "relay1"
        let inside = try NetworkPlanner(system: kernel.system).plan(NetworkTarget(network: network, setsHostname: false))
        #expect(inside.changes.isEmpty)
        #expect(inside.notes.map(\.description) == ["hostname: not per network namespace; skipped"])
        let outside = try NetworkPlanner(system: kernel.system).plan(NetworkTarget(network: network))
        #expect(outside.changes.map(\.description) == ["hostname: appliance → relay1"])
    }

    @Test func missingInterfaceIsANote() throws {
        let plan = try NetworkPlanner(system: Self.kernel().system).plan(NetworkTarget(tuning: try Self.profile(#"{"links": {"eth9": {"mtu": 9000}}}"#)))
        #expect(plan.notes.map(\.description) == ["eth9: no such interface here; its settings are skipped"])
    }

    @Test func defaultRouteWithAnotherGatewayIsReplacedAndRestoredOnUndo() throws {
        let kernel = Self.kernel()
        let old = RouteEntry(destination: InterfaceAddress(cidr: "0.0.0.0/0")!, gateway: InterfaceAddress(cidr: "192.0.2.2"), linkIndex: 2, linkName: "eth0", origin: "boot")
        kernel.routeEntries = [old]
        var network = NetworkConfiguration()
        var interface = NetworkConfiguration.Interface()
        interface.isUp = false
        interface.gateway = InterfaceAddress(cidr: "192.0.2.1")
        network.interfaces["eth0"] = interface
        let plan = try NetworkPlanner(system: kernel.system).plan(NetworkTarget(network: network))
        #expect(plan.changes.map(\.description) == ["route default: default via 192.0.2.2 dev eth0 → default via 192.0.2.1 dev eth0"])
        #expect(plan.changes[0].undo == .replaceRoute(old))
    }

    @Test func queueMasksGoToTheQueuesThatExistAfterAChannelChange() throws {
        final class QueueKernel: FakeKernel {
            override func setChannels(link: String, _ values: [String: UInt32]) throws {
                try super.setChannels(link: link, values)
                // As veth does: the queue directories follow the channel count.
                let count = Int(values["rx"] ?? 1)
                for queue in 0..<2 where queue >= count { files["/sys/class/net/\(link)/queues/rx-\(queue)/rps_cpus"] = nil }
            }
        }
        let kernel = QueueKernel()
        kernel.add(link: "veth0", index: 3)
        kernel.channelParameters["veth0"] = ChannelParameters(current: ["rx": 2], maximum: ["rx": 2])
        kernel.files["/sys/class/net/veth0/queues/rx-0/rps_cpus"] = "0"
        kernel.files["/sys/class/net/veth0/queues/rx-1/rps_cpus"] = "0"
        kernel.files["/sys/devices/system/cpu/online"] = "0-1"
        let profile = try Self.profile(#"{"links": {"veth0": {"channels": {"rx": 1}, "rps_cpus": "ff"}}}"#)
        let outcome = try NetworkApplier(system: kernel.system).apply(try NetworkPlanner(system: kernel.system).plan(NetworkTarget(tuning: profile)))
        #expect(outcome.applied.map(\.description) == ["veth0 channels: rx 2 → rx 1", "veth0 rps_cpus (2 queues): 0 → 3"])
        #expect(kernel.files["/sys/class/net/veth0/queues/rx-0/rps_cpus"] == "3")  // "ff" restricted to CPUs 0-1
        #expect(try NetworkPlanner(system: kernel.system).plan(NetworkTarget(tuning: profile)).changes.isEmpty)
    }
}

@Suite struct RequiredSettingsTests {
    @Test func requiredSettingTheDeviceLacksRefusesTheWholeProfile() throws {
        let kernel = NetworkPlanTests.kernel()
        let profile = try NetworkPlanTests.profile(#"{"links": {"veth0": {"txqueuelen": 2500, "rings": {"rx": 4096}, "required": ["rings"]}}}"#)
        let plan = try NetworkPlanner(system: kernel.system).plan(NetworkTarget(tuning: profile))
        #expect(plan.failures.map(\.description) == ["veth0 rings: not supported by this device, and the profile requires it"])
        #expect(plan.notes.isEmpty)
        #expect(throws: NetworkApplyError.self) { try NetworkApplier(system: kernel.system).apply(plan) }
        #expect(kernel.link("veth0").txqueuelen == 1000)  // nothing was changed
        #expect(kernel.calls.isEmpty)
    }

    @Test func requiredNamesOnlyKnownKeys() {
        #expect(throws: ConfigurationFileError.invalid("p", field: "links.eth0.required[0]",
            "expected one of channels, coalesce, features, rings, rps_cpus, rps_flow_cnt, xps_cpus")) {
            try TuningProfile.parse(Array(#"{"links": {"eth0": {"required": ["mtu"]}}}"#.utf8), source: "p")
        }
    }
}
