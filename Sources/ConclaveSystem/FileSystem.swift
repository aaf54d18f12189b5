public import SystemPackage
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

// Funnels for the syscalls swift-system lacks; each names the C function it wraps.

extension FileDescriptor {
    /// The corresponding C function is `fsync`.
    public func synchronize() throws(Errno) {
        guard fsync(rawValue) == 0 else { throw Errno(rawValue: errno) }
    }
}

extension FilePath {
    /// The corresponding C function is `rename`: atomic replacement of `target`.
    public func rename(to target: FilePath) throws(Errno) {
        let result = withPlatformString { source in target.withPlatformString { Glibc.rename(source, $0) } }
        guard result == 0 else { throw Errno(rawValue: errno) }
    }

    /// The corresponding C function is `unlink`; a missing file is fine.
    public func removeIfPresent() throws(Errno) {
        let result = withPlatformString { unlink($0) }
        guard result == 0 || errno == ENOENT else { throw Errno(rawValue: errno) }
    }

    /// The corresponding C function is `mkdir`; an existing directory is fine.
    public func makeDirectory(permissions: FilePermissions = .ownerReadWriteExecute) throws(Errno) {
        let result = withPlatformString { mkdir($0, permissions.rawValue) }
        guard result == 0 || errno == EEXIST else { throw Errno(rawValue: errno) }
    }

    /// The corresponding C function is `symlink`: creates this path pointing at `target`.
    public func makeSymbolicLink(to target: String) throws(Errno) {
        let result = withPlatformString { link in symlink(target, link) }
        guard result == 0 else { throw Errno(rawValue: errno) }
    }

    /// The corresponding C function is `readlink`; nil when there is no link.
    public func symbolicLinkTarget() throws(Errno) -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let length = withPlatformString { readlink($0, &buffer, buffer.count - 1) }
        if length < 0 {
            if errno == ENOENT { return nil }
            throw Errno(rawValue: errno)
        }
        return String(decoding: buffer.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The corresponding C function is `lstat`.
    public var exists: Bool {
        var status = Glibc.stat()
        return withPlatformString { Glibc.lstat($0, &status) } == 0
    }

    /// Permission bits from `stat`, nil when the file is missing.
    public var permissions: FilePermissions? {
        var status = Glibc.stat()
        let result: Int32 = withPlatformString { path in statFile(path, &status) }
        guard result == 0 else { return nil }
        return FilePermissions(rawValue: status.st_mode & 0o7777)
    }

    /// Entry names of a directory (`opendir`/`readdir`), without "." and "..".
    public func directoryEntries() throws(Errno) -> [String] {
        guard let directory = withPlatformString({ opendir($0) }) else {
            if errno == ENOENT { return [] }
            throw Errno(rawValue: errno)
        }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.baseAddress!.assumingMemoryBound(to: CChar.self))
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// Removes a directory that holds only files (`unlink` each, then `rmdir`); missing is fine.
    public func removeFlatDirectory() throws(Errno) {
        for name in try directoryEntries() { try appending(name).removeIfPresent() }
        let result = withPlatformString { rmdir($0) }
        guard result == 0 || errno == ENOENT else { throw Errno(rawValue: errno) }
    }

    /// fsync of a directory, which makes renames and creations in it durable.
    public func synchronizeDirectory() throws {
        let directory = try FileDescriptor.open(self, .readOnly, options: .directory)
        try directory.closeAfter { try directory.synchronize() }
    }
}

/// `stat(2)`, named apart because FilePath has a `stat()` method of its own.
private func statFile(_ path: UnsafePointer<CChar>, _ status: UnsafeMutablePointer<Glibc.stat>) -> Int32 {
    stat(path, status)
}

public enum Files {
    /// The whole content of a file.
    public static func read(_ path: FilePath) throws -> [UInt8] {
        let file = try FileDescriptor.open(path, .readOnly)
        return try file.closeAfter {
            var bytes: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 65_536)
            while true {
                let count = try chunk.withUnsafeMutableBytes { try file.read(into: $0) }
                if count == 0 { break }
                bytes += chunk[..<count]
            }
            return bytes
        }
    }

    /// After a power cut, `path` holds either the old bytes or the new ones, never a mix:
    /// temp → fsync → rename → fsync(dir). Secrets get 0600.
    public static func writeAtomically(_ bytes: [UInt8], to path: FilePath, permissions: FilePermissions, faults: FaultInjection = .fromEnvironment) throws {
        let directory = path.removingLastComponent()
        let temporary = directory.appending(".\(path.lastComponent!).new")
        try temporary.removeIfPresent()  // left over from an interrupted write
        let file = try FileDescriptor.open(
            temporary, .writeOnly, options: [.create, .exclusiveCreate], permissions: permissions)
        try file.closeAfter {
            _ = try file.writeAll(bytes)
            try file.synchronize()
        }
        faults.reach("temporary-written")
        try temporary.rename(to: path)
        try directory.synchronizeDirectory()  // makes the rename durable
    }
}

/// Test hook: `CONCLAVE_FAULT_POINT=<name>` kills the process with SIGKILL when it reaches
/// that point, to prove a crash there leaves the store consistent. Unset in production.
public struct FaultInjection: Sendable {
    let point: String?

    public static var fromEnvironment: FaultInjection {
        FaultInjection(point: getenv("CONCLAVE_FAULT_POINT").map { String(cString: $0) })
    }

    public static let none = FaultInjection(point: nil)

    public func reach(_ name: String) {
        guard point == name else { return }
        kill(getpid(), SIGKILL)
    }
}
