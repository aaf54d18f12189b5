import Glibc
import SystemPackage

/// Listening sockets bound by the supervisor (numeric addresses only: no resolver at boot).
public enum SocketBinding {
    /// A UDP socket on `host:port` with `bufferBytes` receive and send buffers. The forced
    /// options pass the `rmem_max`/`wmem_max` caps and need CAP_NET_ADMIN; without it the plain
    /// options are used, capped by the kernel.
    public static func udp(_ host: String, _ port: UInt16, bufferBytes: Int) throws(SocketError) -> Int32 {
        let socket = try bound(host, port, type: SOCK_DGRAM)
        var size = Int32(clamping: bufferBytes)
        for (forced, plain) in [(SO_RCVBUFFORCE, SO_RCVBUF), (SO_SNDBUFFORCE, SO_SNDBUF)] {
            if setsockopt(socket, SOL_SOCKET, forced, &size, 4) != 0 { _ = setsockopt(socket, SOL_SOCKET, plain, &size, 4) }
        }
        return socket
    }

    /// A listening TCP socket on `host:port`.
    public static func tcp(_ host: String, _ port: UInt16, backlog: Int32 = 512) throws(SocketError) -> Int32 {
        let socket = try bound(host, port, type: SOCK_STREAM)
        guard listen(socket, backlog) == 0 else {
            let code = errno
            close(socket)
            throw .call("listen on \(host):\(port)", Errno(rawValue: code))
        }
        return socket
    }

    private static func bound(_ host: String, _ port: UInt16, type: __socket_type) throws(SocketError) -> Int32 {
        var storage = sockaddr_in6()
        let length: socklen_t
        let family: Int32
        if host.contains(":") {
            family = AF_INET6
            storage.sin6_family = sa_family_t(AF_INET6)
            storage.sin6_port = port.bigEndian
            guard inet_pton(AF_INET6, host, &storage.sin6_addr) == 1 else { throw .badAddress(host) }
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        } else {
            family = AF_INET
            var ipv4 = sockaddr_in()
            ipv4.sin_family = sa_family_t(AF_INET)
            ipv4.sin_port = port.bigEndian
            guard inet_pton(AF_INET, host, &ipv4.sin_addr) == 1 else { throw .badAddress(host) }
            withUnsafeMutableBytes(of: &storage) { $0.storeBytes(of: ipv4, as: sockaddr_in.self) }
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
        }
        let socket = Glibc.socket(family, Int32(type.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard socket >= 0 else { throw .call("socket", Errno(rawValue: errno)) }
        var on: Int32 = 1
        if type == SOCK_STREAM { setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &on, 4) }
        let result = withUnsafeBytes(of: &storage) { bind(socket, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), length) }
        guard result == 0 else {
            let code = errno
            close(socket)
            throw .call("bind \(host):\(port) (\(type == SOCK_STREAM ? "tcp" : "udp"))", Errno(rawValue: code))
        }
        return socket
    }
}

public enum SocketError: Error, CustomStringConvertible {
    case badAddress(String)
    case call(String, Errno)

    public var description: String {
        switch self {
        case .badAddress(let host): "'\(host)' is not a numeric IPv4 or IPv6 address"
        case .call(let what, let error): "\(what): \(error)"
        }
    }
}

/// Unix stream sockets for the admin interface: one request line, one reply line.
public enum UnixSocket {
    private static func address(_ path: String) throws(SocketError) -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { throw .badAddress(path) }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        return address
    }

    /// Binds and listens at `path` with `permissions` set before anyone can connect.
    public static func listen(path: String, permissions: mode_t) throws(SocketError) -> Int32 {
        var address = try address(path)
        let socket = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard socket >= 0 else { throw .call("socket", Errno(rawValue: errno)) }
        let previous = umask(0o177)  // the socket file is created 0600, never briefly wider
        let bound = withUnsafeBytes(of: &address) {
            bind(socket, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(MemoryLayout<sockaddr_un>.size))
        }
        umask(previous)
        guard bound == 0, chmod(path, permissions) == 0, Glibc.listen(socket, 16) == 0 else {
            let code = errno
            close(socket)
            throw .call("listen on \(path)", Errno(rawValue: code))
        }
        return socket
    }

    public static func connect(path: String) throws(SocketError) -> Int32 {
        var address = try address(path)
        let socket = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard socket >= 0 else { throw .call("socket", Errno(rawValue: errno)) }
        let connected = withUnsafeBytes(of: &address) {
            Glibc.connect(socket, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(MemoryLayout<sockaddr_un>.size))
        }
        guard connected == 0 else {
            let code = errno
            close(socket)
            throw .call("connect to \(path)", Errno(rawValue: code))
        }
        return socket
    }

    /// Reads up to a newline (not included) or `limit` bytes; nil on error or end before a line.
    public static func readLine(_ socket: Int32, limit: Int) -> String? {
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        while bytes.count < limit {
            let count = read(socket, &byte, 1)
            if count < 0 && errno == EINTR { continue }
            guard count == 1 else { return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self) }
            if byte == UInt8(ascii: "\n") { break }
            bytes.append(byte)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    public static func writeAll(_ socket: Int32, _ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let count = bytes.withUnsafeBytes { send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return }
            bytes = bytes.dropFirst(count)
        }
    }
}
