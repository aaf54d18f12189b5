import ConclaveWire

/// Any input either throws or gives a view whose header and payload lie inside the input.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzRTPHeaderView(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: data, count: size)
    _ = RTPHeaderView.isRTCP(input)
    if let view = try? RTPHeaderView(input) {
        precondition(view.headerLength >= RTPHeaderView.fixedHeaderSize && view.payloadLength >= 0)
        precondition(view.headerLength + view.payloadLength <= size)
        precondition(view.payload.count == view.payloadLength)
        _ = (view.marker, view.payloadType, view.sequenceNumber, view.timestamp, view.ssrc)
    }
    return 0
}
