internal import CNetlink
public import SystemPackage
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// /proc/sys and /sys as `KernelFiles`: each read is one `read`, each write one `write` of the
/// whole value (these files take a value per write and never hold partial writes).
public final class KernelFileSystem: KernelFiles {
    public init() {}

    public func read(_ path: String) throws -> String? {
        let file = FilePath(path)
        guard file.exists else { return nil }
        let bytes = try Files.read(file)
        var text = String(decoding: bytes, as: UTF8.self)
        while text.last == "\n" { text.removeLast() }
        return text
    }

    public func write(_ path: String, _ value: String) throws {
        let file = try FileDescriptor.open(FilePath(path), .writeOnly, options: [.truncate])
        try file.closeAfter { _ = try file.writeAll(Array((value + "\n").utf8)) }
    }

    public func list(_ directory: String) -> [String] {
        (try? FilePath(directory).directoryEntries()) ?? []
    }
}

/// The host name of this UTS namespace (`gethostname`, `sethostname`).
public final class SystemHost: HostControl {
    public init() {}

    public func hostname() throws -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { throw Errno(rawValue: errno) }
        return String(cString: buffer)
    }

    public func setHostname(_ name: String) throws {
        let bytes = Array(name.utf8)
        guard sethostname(name, bytes.count) == 0 else { throw Errno(rawValue: errno) }
    }

    public func readConfigurationFile(_ path: String) throws -> String? {
        let file = resolved(path)
        guard file.exists else { return nil }
        return String(decoding: try Files.read(file), as: UTF8.self)
    }

    public func writeConfigurationFile(_ path: String, _ contents: String) throws {
        try Files.writeAtomically(Array(contents.utf8), to: resolved(path), permissions: [.ownerReadWrite, .groupRead, .otherRead])
    }

    /// /etc/resolv.conf → ../run/resolv.conf on the appliance: replacing the link itself would
    /// write to the read-only root's overlay and stop following /run.
    private func resolved(_ path: String) -> FilePath {
        let file = FilePath(path)
        // readlink fails with EINVAL on a regular file: that is "not a link" too.
        guard let target = (try? file.symbolicLinkTarget()) ?? nil else { return file }
        let targetPath = FilePath(target)
        return targetPath.isAbsolute ? targetPath : file.removingLastComponent().pushing(targetPath).lexicallyNormalized()
    }
}

extension NetworkSystem {
    /// The kernel: rtnetlink and ethtool sockets of this thread's network namespace, /proc, /sys.
    public static func kernel() throws -> NetworkSystem {
        NetworkSystem(route: try RouteNetlink(), ethtool: try EthtoolNetlink(), files: KernelFileSystem(), host: SystemHost())
    }
}

/// Named network namespaces as iproute2 keeps them (`/var/run/netns/NAME`).
public enum NetworkNamespace {
    /// Moves this process into the namespace, as `ip netns exec` does: `setns(CLONE_NEWNET)`,
    /// then a private mount namespace with a fresh sysfs, because /sys/class/net shows the
    /// namespace of whoever mounted sysfs, not ours. Call before any thread starts: setns
    /// changes only the calling thread.
    public static func enter(named name: String) throws {
        guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else {
            throw NetworkNamespaceError(name: name, step: "name", errno: EINVAL)
        }
        let descriptor = open("/var/run/netns/" + name, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw NetworkNamespaceError(name: name, step: "open /var/run/netns/\(name)", errno: errno) }
        defer { close(descriptor) }
        guard conclave_nl_enter_network_namespace(descriptor) == 0 else { throw NetworkNamespaceError(name: name, step: "setns", errno: errno) }
        guard conclave_nl_unshare_mount_namespace() == 0 else { throw NetworkNamespaceError(name: name, step: "unshare(CLONE_NEWNS)", errno: errno) }
        // Keep our mounts from propagating back to the host's namespace.
        guard mount(nil, "/", nil, UInt(MS_SLAVE | MS_REC), nil) == 0 else {
            throw NetworkNamespaceError(name: name, step: "mount --make-rslave /", errno: errno)
        }
        _ = umount2("/sys", Int32(MNT_DETACH))
        guard mount(name, "/sys", "sysfs", 0, nil) == 0 else {
            throw NetworkNamespaceError(name: name, step: "mount sysfs", errno: errno)
        }
    }
}

public struct NetworkNamespaceError: Error, CustomStringConvertible {
    public let name: String
    public let step: String
    public let errno: Int32

    public var description: String { "network namespace \(name): \(step): \(String(cString: strerror(errno)))" }
}
