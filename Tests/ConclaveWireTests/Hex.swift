/// Lowercase hex without separators, for golden-byte tests (no Foundation `String(format:)`).
extension Sequence<UInt8> {
    var hex: String {
        let digits = Array("0123456789abcdef")
        return String(flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 0x0f)]] })
    }
}

extension Array<UInt8> {
    /// Parses pairs of hex digits, ignoring spaces; traps on anything else (test input only).
    init(hex: String) {
        let digits = hex.filter { $0 != " " }.map { UInt8(String($0), radix: 16)! }
        precondition(digits.count % 2 == 0, "odd number of hex digits")
        self = stride(from: 0, to: digits.count, by: 2).map { digits[$0] << 4 | digits[$0 + 1] }
    }
}
