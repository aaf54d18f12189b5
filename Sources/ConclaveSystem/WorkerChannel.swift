internal import CConclaveSystemShims
import ConclaveWire
import Glibc
import SystemPackage

/// One end of the supervisor ↔ worker socket pair: typed messages (`WorkerMessage`), one per
/// packet, optionally carrying a descriptor. Owns the descriptor and closes it in `deinit`.
public final class WorkerChannel {
    public let descriptor: Int32

    public init(adopting descriptor: Int32) { self.descriptor = descriptor }

    deinit { close(descriptor) }

    /// Sends `message`, with `passing` attached as SCM_RIGHTS when given.
    public func send(_ message: WorkerMessage, passing: Int32? = nil) throws(Errno) {
        let bytes = message.encoded()
        let sent = bytes.withUnsafeBytes {
            conclave_sys_send_with_descriptor(descriptor, $0.baseAddress, $0.count, passing ?? -1)
        }
        guard sent == bytes.count else { throw Errno(rawValue: sent < 0 ? errno : EMSGSIZE) }
    }

    public enum Received {
        case message(WorkerMessage, descriptor: Int32?)
        case closed
    }

    /// Blocks for the next message. An undecodable packet throws: the peer is broken.
    public func receive() throws -> Received {
        var buffer = [UInt8](repeating: 0, count: WorkerMessage.maximumSize + 1)
        var passed: Int32 = -1
        while true {
            let count = buffer.withUnsafeMutableBytes {
                conclave_sys_receive_with_descriptor(descriptor, $0.baseAddress, $0.count, &passed)
            }
            if count < 0 && errno == EINTR { continue }
            if count < 0 { throw Errno(rawValue: errno) }
            if count == 0 { return .closed }
            do {
                let message = try buffer.withUnsafeBytes { try WorkerMessage(decoding: UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
                return .message(message, descriptor: passed >= 0 ? passed : nil)
            } catch {
                if passed >= 0 { close(passed) }
                throw error
            }
        }
    }

    /// Waits up to `timeout` seconds for the channel to be readable.
    public func waitReadable(timeout: Double) -> Bool {
        var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, Int32(timeout * 1000)) > 0
    }
}
