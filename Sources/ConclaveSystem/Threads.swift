import Glibc
import SystemPackage

/// A detached POSIX thread running `body` (for the few long-lived threads outside SwiftNIO).
public func startDetachedThread(_ body: @escaping @Sendable () -> Void) throws(Errno) {
    final class Box: @unchecked Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    let box = Unmanaged.passRetained(Box(body))
    var handle = pthread_t()
    let status = pthread_create(&handle, nil, { context in
        Unmanaged<Box>.fromOpaque(context!).takeRetainedValue().body()
        return nil
    }, box.toOpaque())
    guard status == 0 else {
        box.release()
        throw Errno(rawValue: status)
    }
    pthread_detach(handle)
}
