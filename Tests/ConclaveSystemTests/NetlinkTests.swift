import Testing
@testable import ConclaveSystem

@Suite struct NetlinkTests {
    @Test func linkCacheContainsLoopback() throws {
        let links = try RouteNetlink().links()
        let loopback = try #require(links.first { $0.name == "lo" })
        #expect(loopback.index == 1)
        #expect(loopback.mtu == 65536)
    }

    @Test func versionIsThree() {
        #expect(NetlinkLibrary.version.hasPrefix("3."))
    }
}
