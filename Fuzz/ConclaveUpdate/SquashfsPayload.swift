import ConclaveUpdate

/// Any payload either throws or lists the root directory and streams every file with exactly
/// its size; nothing traps or reads outside the input.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzSquashfsPayload(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    guard let image = try? SquashfsImage(source: MemoryByteSource(input)), let files = try? image.rootFiles() else { return 0 }
    for file in files {
        var total: UInt64 = 0
        do {
            try image.read(file) { chunk throws(UpdateError) in total += UInt64(chunk.count) }
            precondition(total == file.size, "'\(file.name)' streamed \(total) bytes, its inode says \(file.size)")
        } catch {}
    }
    return 0
}
