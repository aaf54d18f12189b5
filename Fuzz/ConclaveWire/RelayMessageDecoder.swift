import ConclaveWire

/// The first byte picks a chunk size; the rest is fed to a decoder in chunks of that size.
/// Any input either throws or gives messages that encode back to the exact bytes they came from.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzRelayMessageDecoder(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let chunkSize = Int(data[0]) + 1
    let stream = UnsafeBufferPointer(start: data + 1, count: size - 1)
    var decoder = RelayMessageDecoder()
    var decodedEnd = 0
    for chunkStart in stride(from: 0, to: stream.count, by: chunkSize) {
        decoder.append(stream[chunkStart..<min(chunkStart + chunkSize, stream.count)])
        do {
            while let message = try decoder.next() {
                let encoded = message.encoded()
                let source = stream[decodedEnd..<decodedEnd + encoded.count]
                precondition(encoded.elementsEqual(source), "\(message) re-encodes differently")
                decodedEnd += encoded.count
            }
        } catch {
            return 0
        }
    }
    return 0
}
