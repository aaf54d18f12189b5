import ConclaveWire

/// Any input either throws or gives a message that encodes back to exactly the input.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzWorkerMessage(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: data, count: size)
    if let message = try? WorkerMessage(decoding: input) {
        precondition(message.encoded().elementsEqual(input), "\(message) re-encodes")
    }
    return 0
}
