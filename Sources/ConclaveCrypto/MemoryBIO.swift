internal import COpenSSL
internal import CConclaveOpenSSLShims

/// An OpenSSL memory `BIO`, used to move bytes in and out of PEM/DER/CMS functions and, as a
/// pair, under the TLS engine. Owns the BIO unless handed to an `SSL` with `releaseOwnership`.
final class MemoryBIO {
    let pointer: OpaquePointer
    private var owned = true

    init() {
        guard let bio = BIO_new(BIO_s_mem()) else { fatalError("BIO_new(BIO_s_mem) failed: out of memory") }
        pointer = bio
    }

    /// A BIO holding a copy of `bytes` (`BIO_write`).
    convenience init(_ bytes: some Collection<UInt8>) {
        self.init()
        write(Array(bytes))
    }

    deinit { if owned { BIO_free(pointer) } }

    /// For `SSL_set_bio`, which takes over the reference.
    func releaseOwnership() -> OpaquePointer {
        owned = false
        return pointer
    }

    func write(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        let written = bytes.withUnsafeBytes { BIO_write(pointer, $0.baseAddress, Int32($0.count)) }
        precondition(written == Int32(bytes.count), "BIO_write to a memory BIO failed")
    }

    /// Everything the BIO holds, without draining it.
    var bytes: [UInt8] {
        var data: UnsafeMutablePointer<CChar>? = nil
        let length = conclave_ssl_bio_get_mem_data(pointer, &data)
        guard length > 0, let data else { return [] }
        return Array(UnsafeRawBufferPointer(start: data, count: length))
    }

    var string: String { String(decoding: bytes, as: UTF8.self) }
}

/// Calls an `i2d_*` function twice, once for the length and once for the bytes.
func encodeDER(_ operation: String, _ encode: (UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>?) -> Int32) throws -> [UInt8] {
    let length = encode(nil)
    guard length > 0 else { throw OpenSSLError.drainQueue(after: operation) }
    var output = [UInt8](repeating: 0, count: Int(length))
    let written = output.withUnsafeMutableBufferPointer { buffer -> Int32 in
        var cursor = buffer.baseAddress
        return encode(&cursor)
    }
    guard written == length else { throw OpenSSLError.drainQueue(after: operation) }
    return output
}

/// Runs a `d2i_*` function over `bytes`; nil when they do not parse (the queue is cleared).
func decodeDER<Parsed>(_ bytes: [UInt8], _ decode: (UnsafeMutablePointer<UnsafePointer<UInt8>?>, Int) -> Parsed?) -> Parsed? {
    bytes.withUnsafeBufferPointer { buffer in
        var cursor = buffer.baseAddress
        let result = decode(&cursor, buffer.count)
        if result == nil { OpenSSLError.clearQueue() }
        return result
    }
}

/// Calls `body` with a pointer that is never nil (OpenSSL rejects NULL even for length 0).
func withNonNullBytes<Result>(_ bytes: [UInt8], _ body: (UnsafePointer<UInt8>, Int) throws -> Result) rethrows -> Result {
    let storage = bytes.isEmpty ? [0] : bytes
    return try storage.withUnsafeBufferPointer { try body($0.baseAddress!, bytes.count) }
}

extension String {
    /// Whether the text looks like PEM (any "-----BEGIN " line).
    static func isPEM(_ bytes: [UInt8]) -> Bool {
        let marker = Array("-----BEGIN ".utf8)
        guard bytes.count >= marker.count else { return false }
        for start in 0...(bytes.count - marker.count) where bytes[start] == 0x2D {
            if Array(bytes[start..<start + marker.count]) == marker { return true }
        }
        return false
    }
}
