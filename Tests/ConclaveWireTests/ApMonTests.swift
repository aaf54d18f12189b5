import Testing
@testable import ConclaveWire

@Suite struct ApMonTests {
    /// apmon.md §11, byte for byte.
    @Test func encodesTheSpecificationExample() throws {
        var sequence = ApMon.Sequence()
        let report = try ApMon.encode(
            cluster: "Relay", node: "r1",
            parameters: [.init("participants", .int32(12)), .init("packet_loss", .double(0.25)), .init("os", .string("Linux"))],
            password: "", instanceID: 0x1a2b_3c4d, timestamp: 1_700_000_000, sequence: &sequence)
        let expected =
            "00000012" + "763a322e322e305f636f6e636c617665" + "703a0000"  // header 'v:2.2.0_conclavep:' + 2 pad
            + "1a2b3c4d" + "00000001"                                       // instance id, seq 1
            + "00000005" + "52656c6179000000"                               // cluster 'Relay'
            + "00000002" + "72310000"                                       // node 'r1'
            + "00000003"                                                    // n_params
            + "0000000c" + "7061727469636970616e7473" + "00000002" + "0000000c"  // participants, int32 12
            + "0000000b" + "7061636b65745f6c6f737300" + "00000005" + "3fd0000000000000"  // packet_loss, float64 0.25
            + "00000002" + "6f730000" + "00000000" + "00000005" + "4c696e7578000000"  // os, string 'Linux'
            + "6553f100"                                                    // timestamp
        #expect(report.datagrams.count == 1)
        #expect(report.datagrams[0].hex == expected)
        #expect(report.datagrams[0].count == 136)
        #expect(sequence.next == 2)
    }

    @Test func splitsLargeReportsIntoCompleteDatagrams() throws {
        var sequence = ApMon.Sequence()
        let parameters = (0..<200).map { ApMon.Parameter("leg_\($0)_packets_in", .int32(Int32($0))) }
        let report = try ApMon.encode(
            cluster: "Conclave_Legs", node: "relay-1", parameters: parameters, password: "secret", instanceID: 7,
            sequence: &sequence)
        #expect(report.datagrams.count > 1)
        var total = 0
        for (index, datagram) in report.datagrams.enumerated() {
            #expect(datagram.count <= ApMon.maximumDatagramSize)
            #expect(datagram.count % 4 == 0)
            #expect(datagram.starts(with: [0, 0, 0, 24] + Array("v:2.2.0_conclavep:secret".utf8)))
            let seq = datagram[32..<36].reduce(0) { $0 << 8 | Int($1) }
            #expect(seq == index + 1)
            let countOffset = 28 + 8 + 4 + 16 + 4 + 8  // header, ids, cluster, node
            total += datagram[countOffset..<countOffset + 4].reduce(0) { $0 << 8 | Int($1) }
        }
        #expect(total == 200)
        #expect(sequence.next == Int32(report.datagrams.count + 1))
    }

    @Test func sequenceStartsAtOneAndWrapsToZeroAfterTwoBillion() {
        var fresh = ApMon.Sequence()
        #expect(fresh.take() == 1)
        var late = ApMon.Sequence(next: 1_999_999_999)
        #expect(late.take() == 1_999_999_999)
        #expect(late.take() == 0)
        #expect(late.take() == 1)
    }

    @Test func dropsAParameterThatCannotFitAndRefusesWhatTheReceiverWouldDrop() throws {
        var sequence = ApMon.Sequence()
        let huge = String(repeating: "x", count: 2000)
        let report = try ApMon.encode(
            cluster: "c", node: "n", parameters: [.init("note", .string(huge)), .init("legs", .int32(3))], password: "",
            instanceID: 1, sequence: &sequence)
        #expect(report.dropped == ["note"])
        #expect(report.datagrams.count == 1)
        #expect(throws: WireError.self) {
            try ApMon.encode(cluster: "c", node: "n", parameters: [.init("", .int32(1))], password: "", instanceID: 1, sequence: &sequence)
        }
        #expect(throws: WireError.self) {
            try ApMon.encode(cluster: "c", node: "n", parameters: [], password: "", instanceID: 1, sequence: &sequence)
        }
        #expect(throws: WireError.self) {
            try ApMon.encode(cluster: "c", node: "n", parameters: [.init("a", .int32(1))], password: "two words", instanceID: 1, sequence: &sequence)
        }
        #expect(throws: WireError.self) {
            try ApMon.encode(cluster: "c", node: "#acc_x", parameters: [.init("a", .int32(1))], password: "", instanceID: 1, sequence: &sequence)
        }
        #expect(sequence.next == 2)  // refused reports take no sequence number
    }
}
