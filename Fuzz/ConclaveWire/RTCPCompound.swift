import ConclaveWire

/// Any input either throws or gives packets whose reports survive an encode and a parse unchanged.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzRTCPCompound(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: data, count: size)
    guard let packets = try? RTCPPacket.parseCompound(input) else { return 0 }
    for packet in packets {
        let encoded: [UInt8]
        switch packet {
        case .senderReport(let report): encoded = report.encoded()
        case .receiverReport(let report): encoded = report.encoded()
        case .other: continue
        }
        let reparsed = encoded.withUnsafeBytes { try? RTCPPacket.parseCompound($0) }
        precondition(reparsed == [packet], "\(packet) does not round-trip")
    }
    return 0
}
