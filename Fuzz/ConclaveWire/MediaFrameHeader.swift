import ConclaveWire

/// Any input either throws or gives a header that encodes back to the bytes it was read from.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzMediaFrameHeader(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: data, count: size)
    if let header = try? MediaFrameHeader(parsing: input) {
        precondition(header.bytes.elementsEqual(input.prefix(MediaFrameHeader.size)), "\(header) re-encodes")
    }
    return 0
}
