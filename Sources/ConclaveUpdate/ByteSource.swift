import Glibc

/// Bytes read at an offset, within a fixed size: the squashfs payload of a bundle, read from
/// the file with `pread` or, in tests, from memory. A read outside the size throws.
public protocol ByteSource {
    var size: UInt64 { get }
    /// Exactly `count` bytes from `offset`.
    func read(at offset: UInt64, count: Int) throws(UpdateError) -> [UInt8]
}

extension ByteSource {
    func checkedRange(_ offset: UInt64, _ count: Int, _ what: @autoclosure () -> String) throws(UpdateError) {
        guard count >= 0, offset <= size, UInt64(count) <= size - offset else {
            throw .malformedPayload("\(what()) at \(offset)+\(count) lies outside the \(size)-byte payload")
        }
    }
}

/// Bytes in memory.
public struct MemoryByteSource: ByteSource {
    public let bytes: [UInt8]
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public var size: UInt64 { UInt64(bytes.count) }

    public func read(at offset: UInt64, count: Int) throws(UpdateError) -> [UInt8] {
        try checkedRange(offset, count, "a read")
        return Array(bytes[Int(offset)..<Int(offset) + count])
    }
}

/// The first `size` bytes of an open file, read with `pread`. Does not own the descriptor.
public struct FileByteSource: ByteSource {
    public let descriptor: Int32
    public let size: UInt64

    public init(descriptor: Int32, size: UInt64) {
        self.descriptor = descriptor
        self.size = size
    }

    public func read(at offset: UInt64, count: Int) throws(UpdateError) -> [UInt8] {
        try checkedRange(offset, count, "a read")
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let result = bytes.withUnsafeMutableBytes { buffer in
                pread(descriptor, buffer.baseAddress! + done, count - done, off_t(offset) + off_t(done))
            }
            if result < 0 && errno == EINTR { continue }
            guard result > 0 else {
                throw result < 0 ? .io("pread: \(String(cString: strerror(errno)))") : .truncated("the file ended early")
            }
            done += result
        }
        return bytes
    }
}
