import Testing
@testable import ConclaveSystem

@Suite struct DHCPLeaseTests {
    /// What busybox udhcpc exports to its hook for a "bound" event, with QEMU slirp's addresses
    /// (docs/network.md lists the variables).
    static let recorded = [
        "interface": "eth0", "ip": "10.0.2.15", "subnet": "255.255.255.0", "mask": "24", "router": "10.0.2.2",
        "dns": "10.0.2.3", "domain": "example.test", "lease": "86400", "serverid": "10.0.2.2", "opt53": "05",
    ]

    @Test func leaseFromTheEnvironment() throws {
        let lease = try DHCPLease(event: .bound, environment: Self.recorded)
        #expect(lease.address?.cidr == "10.0.2.15/24")
        #expect(lease.routers.map(\.address) == ["10.0.2.2"])
        #expect(lease.dns.map(\.address) == ["10.0.2.3"])
        #expect(lease.domain == "example.test")
        #expect(lease.leaseSeconds == 86400)
    }

    @Test func netmaskWithoutMask() throws {
        var environment = Self.recorded
        environment["mask"] = nil
        environment["subnet"] = "255.255.240.0"
        #expect(try DHCPLease(event: .renew, environment: environment).address?.cidr == "10.0.2.15/20")
        #expect(DHCPLease.prefixLength(ofNetmask: "255.0.255.0") == nil)
    }

    @Test func boundConfiguresAddressRouteAndDNS() throws {
        let kernel = FakeKernel()
        kernel.add(link: "eth0", index: 2)
        kernel.linkStates[0].addresses = [InterfaceAddress(cidr: "10.0.9.9/24")!, InterfaceAddress(cidr: "fe80::1/64")!]
        let lease = try DHCPLease(event: .bound, environment: Self.recorded)
        let plan = try NetworkPlanner(system: kernel.system).plan(lease: lease, resolvConfPath: "/run/resolv.conf")
        #expect(plan.changes.map(\.description) == [
            "eth0 state: down → up",
            "eth0 address 10.0.9.9/24: present → absent",
            "eth0 address 10.0.2.15/24: absent → present",
            "route default: absent → default via 10.0.2.2 dev eth0",
            "dns: (none) → search example.test; nameserver 10.0.2.3",
        ])
        _ = try NetworkApplier(system: kernel.system).apply(plan)
        #expect(kernel.link("eth0").addresses.map(\.cidr).sorted() == ["10.0.2.15/24", "fe80::1/64"])
        #expect(try NetworkPlanner(system: kernel.system).plan(lease: lease, resolvConfPath: "/run/resolv.conf").changes.isEmpty)
    }

    @Test func classlessStaticRoutesReplaceTheRouterOption() throws {
        var environment = Self.recorded
        environment["staticroutes"] = "0.0.0.0/0 10.0.2.1 198.51.100.0/24 10.0.2.254 10.0.3.0/24 0.0.0.0"
        let lease = try DHCPLease(event: .bound, environment: environment)
        let kernel = FakeKernel()
        kernel.add(link: "eth0", index: 2)
        let plan = try NetworkPlanner(system: kernel.system).plan(lease: lease, resolvConfPath: "/run/resolv.conf")
        #expect(plan.changes.map(\.description).filter { $0.hasPrefix("route") } == [
            "route default: absent → default via 10.0.2.1 dev eth0",  // not 10.0.2.2 from "router" (RFC 3442)
            "route 198.51.100.0/24: absent → 198.51.100.0/24 via 10.0.2.254 dev eth0",
            "route 10.0.3.0/24: absent → 10.0.3.0/24 dev eth0",
        ])
        environment["staticroutes"] = "10.0.0.0/8"
        #expect(throws: DHCPLeaseError.self) { try DHCPLease(event: .bound, environment: environment) }
    }

    @Test func deconfigDropsIPv4Only() throws {
        let kernel = FakeKernel()
        kernel.add(link: "eth0", index: 2)
        kernel.linkStates[0].isUp = true
        kernel.linkStates[0].addresses = [InterfaceAddress(cidr: "10.0.2.15/24")!, InterfaceAddress(cidr: "2001:db8::5/64")!]
        let plan = try NetworkPlanner(system: kernel.system).plan(lease: try DHCPLease(event: .deconfig, environment: ["interface": "eth0"]), resolvConfPath: "/r")
        #expect(plan.changes.map(\.description) == ["eth0 address 10.0.2.15/24: present → absent"])
    }

    @Test func badEnvironmentIsRefused() {
        #expect(throws: DHCPLeaseError.self) { try DHCPLease(event: .bound, environment: ["interface": "eth0", "ip": "not-an-ip"]) }
        #expect(throws: DHCPLeaseError.self) { try DHCPLease(event: .bound, environment: ["ip": "10.0.2.15"]) }
    }
}
