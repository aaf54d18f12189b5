internal import CZlib

/// zlib streams, as squashfs's "gzip" compressor stores blocks (`compress2` output).
enum Zlib {
    /// Inflates one complete zlib stream (`uncompress`) into at most `limit` bytes; a stream
    /// that is damaged, incomplete or larger than `limit` throws.
    static func inflate(_ input: ArraySlice<UInt8>, limit: Int) throws(UpdateError) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: max(limit, 1))
        var outputLength = uLongf(limit)
        let result = input.withUnsafeBytes { source in
            output.withUnsafeMutableBytes { destination in
                uncompress(
                    destination.baseAddress!.assumingMemoryBound(to: Bytef.self), &outputLength,
                    source.baseAddress?.assumingMemoryBound(to: Bytef.self), uLong(source.count))
            }
        }
        switch result {
        case Z_OK: return Array(output.prefix(Int(outputLength)))
        case Z_BUF_ERROR: throw .malformedPayload("a compressed block is larger than \(limit) bytes or incomplete")
        case Z_DATA_ERROR: throw .malformedPayload("a compressed block is damaged (zlib data error)")
        case Z_MEM_ERROR: throw .io("zlib: out of memory")
        default: throw .malformedPayload("zlib error \(result)")
        }
    }
}
