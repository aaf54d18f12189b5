import ConclaveWire

/// Any input either throws or gives a message that survives its own encoding.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzControlMessage(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    if let message = try? ControlMessage(decoding: input) {
        precondition((try? ControlMessage(decoding: message.encoded())) == message, "\(message) round-trips")
    }
    return 0
}
