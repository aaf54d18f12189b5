/// Reads big-endian fields from untrusted bytes, throwing at the end of the input instead of trapping.
struct ByteReader {
    private let bytes: UnsafeRawBufferPointer
    private(set) var offset = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var remaining: Int { bytes.count - offset }

    mutating func read<Integer: FixedWidthInteger & BitwiseCopyable>(
        _: Integer.Type = Integer.self
    ) throws(WireError) -> Integer {
        let size = MemoryLayout<Integer>.size
        try require(size)
        defer { offset += size }
        return Integer(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: Integer.self))
    }

    mutating func readBytes(_ count: Int) throws(WireError) -> [UInt8] {
        try require(count)
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }

    mutating func skip(_ count: Int) throws(WireError) {
        try require(count)
        offset += count
    }

    private func require(_ count: Int) throws(WireError) {
        guard remaining >= count else { throw .truncated(needed: offset + count, got: bytes.count) }
    }
}

extension Array where Element == UInt8 {
    mutating func appendBigEndian<Integer: FixedWidthInteger>(_ value: Integer) {
        Swift.withUnsafeBytes(of: value.bigEndian) { append(contentsOf: $0) }
    }
}
