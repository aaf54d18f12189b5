import FoundationEssentials
import Testing
@testable import ConclaveSystem

@Suite struct TuningProfileTests {
    @Test func issueExampleParses() throws {
        let profile = try TuningProfile.parse(Array(#"""
            {"links": {"*": {"mtu": 1500, "txqueuelen": 2500, "qdisc": "fq",
                             "rings": {"rx": 4096, "tx": 4096}, "coalesce": {"rx-usecs": 50, "adaptive-rx": true},
                             "channels": {"combined": 4}, "features": {"gro": true, "rx-udp-gro-forwarding": true},
                             "rps_cpus": "ff", "xps_cpus": "ff"}},
             "sysctl": {"net.core.rmem_max": "33554432"}}
            """#.utf8), source: "issue")
        let link = try #require(profile.settings(forLink: "eth0"))
        #expect(link.mtu == 1500 && link.txqueuelen == 2500 && link.qdisc == "fq")
        #expect(link.rings == ["rx": .value(4096), "tx": .value(4096)])
        #expect(link.coalesce == ["rx-usecs": .count(50), "adaptive-rx": .flag(true)])
        #expect(link.channels == ["combined": .value(4)])
        #expect(link.features == ["gro": true, "rx-udp-gro-forwarding": true])
        #expect(link.rpsCPUs == "ff" && link.xpsCPUs == "ff")
        #expect(profile.sysctl == ["net.core.rmem_max": "33554432"])
        #expect(profile.settings(forLink: "lo") == nil)
    }

    @Test(arguments: [
        (#"{"links": {"eth0": {"mtu": "big"}}}"#, "links.eth0.mtu"),
        (#"{"links": {"eth0": {"ring": {}}}}"#, "links.eth0.ring"),
        (#"{"links": {"eth0": {"rings": {"rx": -1}}}}"#, "links.eth0.rings.rx"),
        (#"{"links": {"eth0": {"coalesce": {"rx-usec": 5}}}}"#, "links.eth0.coalesce.rx-usec"),
        (#"{"links": {"eth0": {"coalesce": {"adaptive-rx": 1}}}}"#, "links.eth0.coalesce.adaptive-rx"),
        (#"{"links": {"eth0": {"rps_cpus": "zz"}}}"#, "links.eth0.rps_cpus"),
        (#"{"links": {"eth0": {"features": {"gro": "on"}}}}"#, "links.eth0.features.gro"),
        (#"{"sysctl": {"net.core.rmem_max": true}}"#, "sysctl.net.core.rmem_max"),
        (#"{"sysctls": {}}"#, "sysctls"),
    ])
    func errorsNameTheField(json: String, field: String) {
        #expect(throws: ConfigurationFileError.self) { try TuningProfile.parse(Array(json.utf8), source: "p") }
        do { _ = try TuningProfile.parse(Array(json.utf8), source: "p") } catch {
            guard case .invalid(_, let named, _) = error else { Issue.record("\(error)"); return }
            #expect(named == field)
        }
    }

    @Test func namedLinkOverridesWildcardKeyByKey() throws {
        let profile = try TuningProfile.parse(Array(#"""
            {"links": {"*": {"mtu": 1500, "rings": {"rx": 1024, "tx": 1024}}, "eth1": {"mtu": 9000, "rings": {"rx": "max"}}}}
            """#.utf8), source: "p")
        let link = try #require(profile.settings(forLink: "eth1"))
        #expect(link.mtu == 9000)
        #expect(link.rings == ["rx": .maximum, "tx": .value(1024)])
    }

    @Test func configurationOverridesTheBoardProfile() throws {
        let board = try TuningProfile.parse(Array(#"{"links": {"*": {"txqueuelen": 2500}}, "sysctl": {"a.b": "1", "c.d": "2"}}"#.utf8), source: "b")
        let overrides = try TuningProfile.parse(Array(#"{"links": {"*": {"qdisc": "fq_codel"}}, "sysctl": {"a.b": "3"}}"#.utf8), source: "o")
        let merged = board.merged(with: overrides)
        #expect(merged.links["*"]?.txqueuelen == 2500 && merged.links["*"]?.qdisc == "fq_codel")
        #expect(merged.sysctl == ["a.b": "3", "c.d": "2"])
    }

    /// The three boards' profiles parse (board/<name>/tuning.json, next to this package).
    @Test(arguments: ["qemu-x86_64", "room-system", "server-appliance"])
    func boardProfileParses(board: String) throws {
        let root = String(#filePath).split(separator: "/").dropLast(3).joined(separator: "/")
        let path = "/\(root)/board/\(board)/tuning.json"
        let profile = try TuningProfile.load(path)
        #expect(profile.description != nil)
        #expect(!profile.links.isEmpty || !profile.sysctl.isEmpty)
    }

    @Test func sysctlNamesMapToProcPaths() {
        #expect(Sysctl.path("net.core.rmem_max") == "/proc/sys/net/core/rmem_max")
        #expect(Sysctl.path("net/ipv4/conf/eth0.100/rp_filter") == "/proc/sys/net/ipv4/conf/eth0.100/rp_filter")
        #expect(Sysctl.normalized("4096\t87380  6291456\n") == "4096 87380 6291456")
        #expect(CPUMask.normalized("00000000,0000000F") == "f")
        #expect(CPUMask.normalized("0") == "0")
    }
}

@Suite struct CPUMaskTests {
    @Test func masksAreRestrictedToOnlineCPUs() {
        #expect(CPUMask.cpus(inList: "0-3,6\n") == [0, 1, 2, 3, 6])
        #expect(CPUMask.restricted("ff", to: [0, 1]) == "3")
        #expect(CPUMask.restricted("ffffffff,ffffffff", to: Set(0..<40)) == "ffffffffff")
        #expect(CPUMask.restricted("f0", to: [0, 1]) == "0")
    }
}
