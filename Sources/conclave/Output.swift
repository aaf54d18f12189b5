import FoundationEssentials
import Glibc

/// Writes bytes to standard output or standard error unbuffered (FileHandle lives in the full
/// Foundation, which would pull ICU into the binary).
enum Output {
    static func standardOutput(_ data: Data) { write(data, to: STDOUT_FILENO) }
    static func standardError(_ text: String) { write(Data(text.utf8), to: STDERR_FILENO) }

    private static func write(_ data: Data, to descriptor: Int32) {
        data.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = Glibc.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 && errno == EINTR { continue }
                guard written > 0 else { return }
                offset += written
            }
        }
    }
}
