import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// Who the database files belong to. The control worker (uid `conclave`) owns them; the console
/// runs as root and must not leave a root-owned file the worker then cannot open. So, as root,
/// every file and directory created here is given to the owner of the directory it lives in.
struct FileOwner {
    let uid: uid_t
    let gid: gid_t
    /// Only root can (and needs to) give files away.
    let changesOwnership: Bool

    /// Creates `databaseDirectory` (0700) if missing, owned like `stateDirectory`; returns the
    /// owner of `databaseDirectory`, which every database file takes.
    static func prepare(databaseDirectory: FilePath, stateDirectory: FilePath) throws -> FileOwner {
        let parent = try ownerOf(stateDirectory)
        if !databaseDirectory.exists {
            do { try databaseDirectory.makeDirectory(permissions: .ownerReadWriteExecute) } catch {
                throw IdentityError.storage("cannot create \(databaseDirectory): \(error)")
            }
            try parent.adopt(databaseDirectory)
            try databaseDirectory.synchronizeParent()
        }
        return try ownerOf(databaseDirectory)
    }

    private static func ownerOf(_ path: FilePath) throws -> FileOwner {
        var status = stat()
        guard path.withPlatformString({ stat($0, &status) }) == 0 else {
            throw IdentityError.storage("cannot stat \(path): \(Errno(rawValue: errno))")
        }
        guard status.st_mode & S_IFMT == S_IFDIR else { throw IdentityError.storage("\(path) is not a directory") }
        return FileOwner(uid: status.st_uid, gid: status.st_gid, changesOwnership: geteuid() == 0)
    }

    /// For the supervisor (root), before it starts the control worker: `databaseDirectory` exists,
    /// 0700, and it and every file in it belong to `uid`:`gid`.
    static func handOver(databaseDirectory: FilePath, uid: uid_t, gid: gid_t) throws {
        do { try databaseDirectory.makeDirectory(permissions: .ownerReadWriteExecute) } catch {
            throw IdentityError.storage("cannot create \(databaseDirectory): \(error)")
        }
        let owner = FileOwner(uid: uid, gid: gid, changesOwnership: true)
        try owner.adopt(databaseDirectory)
        guard databaseDirectory.withPlatformString({ chmod($0, 0o700) }) == 0 else {
            throw IdentityError.storage("cannot chmod \(databaseDirectory): \(Errno(rawValue: errno))")
        }
        let entries: [String]
        do { entries = try databaseDirectory.directoryEntries() } catch {
            throw IdentityError.storage("cannot list \(databaseDirectory): \(error)")
        }
        for name in entries { try owner.adopt(databaseDirectory.appending(name)) }
    }

    /// Creates an empty file 0600 if it is missing (`open` with O_CREAT|O_EXCL), then adopts it.
    func createPrivateFile(_ path: FilePath) throws {
        if !path.exists {
            do {
                let file = try FileDescriptor.open(
                    path, .readWrite, options: [.create, .exclusiveCreate], permissions: .ownerReadWrite)
                try file.closeAfter { try file.synchronize() }
                try path.synchronizeParent()
            } catch Errno.fileExists {
                // Another process created it between the check and the open: theirs is as good.
            } catch {
                throw IdentityError.storage("cannot create \(path): \(error)")
            }
        }
        try adopt(path)
    }

    /// Gives an existing `path` to this owner (`chown`) when running as root; a missing file is fine.
    func adopt(_ path: FilePath) throws {
        guard changesOwnership, path.exists else { return }
        var status = stat()
        guard path.withPlatformString({ lstat($0, &status) }) == 0 else { return }
        if status.st_uid == uid && status.st_gid == gid { return }
        guard path.withPlatformString({ chown($0, uid, gid) }) == 0 else {
            throw IdentityError.storage("cannot give \(path) to uid \(uid): \(Errno(rawValue: errno))")
        }
    }
}

extension FilePath {
    func synchronizeParent() throws {
        do { try removingLastComponent().synchronizeDirectory() } catch {
            throw IdentityError.storage("cannot fsync the directory of \(self): \(error)")
        }
    }
}
