/// Why a decoder refused its input. Decoders of untrusted bytes throw this and never trap.
public enum WireError: Error, Equatable, Sendable, CustomStringConvertible {
    case truncated(needed: Int, got: Int)
    case oversized(limit: Int, got: Int)
    case badMagic(UInt8)
    case unknownType(UInt8)
    case badVersion(UInt8)
    case malformed(String)

    public var description: String {
        switch self {
        case .truncated(let needed, let got): "truncated: needed \(needed) bytes, got \(got)"
        case .oversized(let limit, let got): "oversized: limit \(limit) bytes, got \(got)"
        case .badMagic(let byte): "bad magic byte 0x\(String(byte, radix: 16))"
        case .unknownType(let type): "unknown type \(type)"
        case .badVersion(let version): "unsupported version \(version)"
        case .malformed(let reason): "malformed: \(reason)"
        }
    }
}
