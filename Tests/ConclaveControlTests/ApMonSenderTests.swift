import ConclaveSystem
import ConclaveWire
import Glibc
import Logging
import NIOCore
import NIOPosix
import Testing
@testable import ConclaveControl

@Suite struct ApMonSenderTests {
    /// A UDP socket on 127.0.0.1 with a receive timeout.
    private static func receiver() throws -> (socket: Int32, port: UInt16) {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) } }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return (socket, UInt16(bigEndian: address.sin_port))
    }

    private static func receive(_ socket: Int32) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 2048)
        let count = recv(socket, &buffer, buffer.count, 0)
        return count > 0 ? Array(buffer[..<count]) : nil
    }

    @Test func sendsWithSequencesAndSurvivesAnUnresolvableDestination() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        defer {
            try? pool.syncShutdownGracefully()
            try? group.syncShutdownGracefully()
        }
        let (socket, port) = try Self.receiver()
        defer { close(socket) }
        let loop = group.next()
        let report = ApMonReports.Report(cluster: "Conclave_Relay", node: "conclave.test", parameters: [.init("participants", .int32(3))])
        let sender = try loop.submit { ApMonSender(eventLoop: loop, log: Logger(label: "test")) { [report] } }.wait()
        var configuration = MonitoringConfiguration()
        configuration.destinations = [
            .init(host: "no-such-host.invalid"), .init(host: "127.0.0.1", port: port, password: "pw"),
        ]
        let started = ApMonSender.monotonic()
        try loop.submit { sender.apply(configuration) }.wait()
        #expect(ApMonSender.monotonic() - started < 0.5)  // resolution is off the loop

        // The first periodic report comes after a second.
        let first = try #require(Self.receive(socket))
        let header = Array("v:2.2.0_conclavep:pw".utf8)
        #expect(Array(first[4..<4 + header.count]) == header)
        let ids = 4 + (header.count + 3) / 4 * 4
        let instance = first[ids..<ids + 4].reduce(0) { $0 << 8 | UInt32($1) }
        #expect(Int32(instance) == sender.instanceID && sender.instanceID >= 0)
        #expect(first[ids + 4..<ids + 8].elementsEqual([0, 0, 0, 1]))

        try loop.submit { sender.report() }.wait()
        let second = try #require(Self.receive(socket))
        #expect(second[ids + 4..<ids + 8].elementsEqual([0, 0, 0, 2]))
        #expect(second[ids..<ids + 4].elementsEqual(first[ids..<ids + 4]))

        let status = try loop.submit { sender.status() }.wait()
        #expect(status.map(\.resolved) == [false, true])
        #expect(status[0].lastError?.contains("does not resolve") == true)
        #expect(status[1].datagramsSent == 2)
        try loop.submit { sender.stop() }.wait()
    }

    /// Reports are paced at 10 datagrams per second; a backlog keeps only the newest report of
    /// each (cluster, node).
    @Test func pacesAndKeepsOnlyTheNewestReportOfANode() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        defer {
            try? pool.syncShutdownGracefully()
            try? group.syncShutdownGracefully()
        }
        let (socket, port) = try Self.receiver()
        defer { close(socket) }
        let loop = group.next()
        final class Round: @unchecked Sendable { var value: Int32 = 0 }  // touched on the loop only
        let round = Round()
        let sender = try loop.submit {
            ApMonSender(eventLoop: loop, log: Logger(label: "test")) {
                round.value += 1
                return (0..<25).map { ApMonReports.Report(cluster: "Conclave_Users", node: String($0), parameters: [.init("round", .int32(round.value))]) }
            }
        }.wait()
        var configuration = MonitoringConfiguration()
        configuration.destinations = [.init(host: "127.0.0.1", port: port)]
        try loop.submit {
            sender.apply(configuration)
            sender.report()
            sender.report()  // replaces the first round's reports still queued
        }.wait()
        let start = ApMonSender.monotonic()
        var received = 0
        while received < 25, Self.receive(socket) != nil { received += 1 }
        let elapsed = ApMonSender.monotonic() - start
        #expect(received == 25)
        #expect(elapsed > 1.2)  // 10 at once, then 10 per second
        let status = try loop.submit { sender.status() }.wait()
        #expect(status[0].datagramsSent == 25)
        try loop.submit { sender.stop() }.wait()
    }
}
