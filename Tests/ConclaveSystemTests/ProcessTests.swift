import ConclaveWire
import Glibc
import SystemPackage
import Testing
@testable import ConclaveSystem

@Suite struct ProcessTests {
    @Test func readsThisProcessStatus() throws {
        let status = try ProcessStatus(pid: getpid())
        #expect(status.pid == getpid())
        #expect(status.uids.count == 4 && status.uids[0] == getuid())
        #expect(status.gids.count == 4 && status.gids[0] == getgid())
        #expect(Set(status.capabilities.keys) == ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"])
    }

    @Test func resolvesAccountsFromPasswdOrFallsBack() throws {
        let path = "/tmp/conclave-passwd-\(getpid())"
        let text = "root:x:0:0:root:/root:/bin/sh\nconclave-media:x:991:992::/nonexistent:/bin/false\n"
        try Files.writeAtomically(Array(text.utf8), to: FilePath(path), permissions: .ownerReadWrite)
        defer { unlink(path) }
        #expect(SystemAccount.resolve(name: "conclave-media", fallbackUID: 5, fallbackGID: 6, passwd: path)
            == SystemAccount(name: "conclave-media", uid: 991, gid: 992))
        #expect(SystemAccount.resolve(name: "nobody-here", fallbackUID: 5, fallbackGID: 6, passwd: path)
            == SystemAccount(name: "nobody-here", uid: 5, gid: 6))
    }

    @Test func workerChannelCarriesMessagesAndADescriptor() throws {
        let (a, b) = try ProcessSpawner.socketPair()
        let supervisor = WorkerChannel(adopting: a), worker = WorkerChannel(adopting: b)
        let (passedRead, passedWrite) = try ProcessSpawner.socketPair()
        defer { close(passedWrite) }
        try supervisor.send(.peerChannel, passing: passedRead)
        close(passedRead)
        guard case .message(.peerChannel, let received?) = try worker.receive() else {
            Issue.record("no descriptor arrived")
            return
        }
        defer { close(received) }
        // The received descriptor is the same socket: what goes in one end comes out of it.
        #expect(write(passedWrite, "x", 1) == 1)
        var byte: UInt8 = 0
        #expect(read(received, &byte, 1) == 1 && byte == UInt8(ascii: "x"))

        try worker.send(.status(json: #"{"legs":3}"#))
        guard case .message(.status(let json), nil) = try supervisor.receive() else {
            Issue.record("no status")
            return
        }
        #expect(json == #"{"legs":3}"#)
    }

    @Test func workerChannelRefusesGarbageAndReportsClosure() throws {
        let (a, b) = try ProcessSpawner.socketPair()
        let supervisor = WorkerChannel(adopting: a)
        #expect(write(b, [UInt8(1), 99], 2) == 2)  // version 1, unknown type 99
        #expect(throws: WireError.unknownType(99)) { _ = try supervisor.receive() }
        close(b)
        guard case .closed = try supervisor.receive() else {
            Issue.record("closure not reported")
            return
        }
    }
}
