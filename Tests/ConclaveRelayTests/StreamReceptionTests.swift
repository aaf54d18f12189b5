import Testing
@testable import ConclaveRelay

@Suite struct StreamReceptionTests {
    @Test func countsGapsAsLossAcrossTheSequenceWrap() {
        var stream = StreamReception(ssrc: 1, sequence: 65530, clockRate: 90_000)
        for sequence: UInt16 in [65530, 65531, 65533, 65535, 0, 1, 4] {
            stream.record(sequence: sequence, timestamp: 0, arrival: 0)
        }
        #expect(stream.expected == 11)  // 65530 … 4 across the wrap
        #expect(stream.received == 7)
        #expect(stream.lost == 4)       // 65532, 65534, 2, 3
    }

    @Test func lateAndDuplicatePacketsDoNotMoveTheHighestSequence() {
        var stream = StreamReception(ssrc: 1, sequence: 100, clockRate: 90_000)
        for sequence: UInt16 in [100, 102, 101, 102] { stream.record(sequence: sequence, timestamp: 0, arrival: 0) }
        #expect(stream.expected == 3)
        #expect(stream.lost == 0)
    }

    @Test func jitterFollowsRFC3550() {
        // Packets sent every 20 ms (960 ticks at 48 kHz) arriving alternately 0 and 480 ticks late.
        var stream = StreamReception(ssrc: 1, sequence: 0, clockRate: 48_000)
        var expected = 0.0
        for index in 0..<200 {
            let timestamp = UInt32(index * 960)
            let arrival = Int64(index * 960 + (index % 2) * 480)
            stream.record(sequence: UInt16(index), timestamp: timestamp, arrival: arrival)
            if index > 0 { expected += (480 - expected) / 16 }  // J += (|D| - J) / 16
        }
        #expect(abs(Double(stream.jitter) - expected) <= 1)
        #expect(abs(stream.jitterSeconds - expected / 48_000) < 0.0001)
    }

    @Test func anInactiveStreamReportsNoJitter() {
        #expect(StreamReception().jitterSeconds == 0)
    }
}
