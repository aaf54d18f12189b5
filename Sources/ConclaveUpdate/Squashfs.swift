/// A minimal squashfs 4.0 reader: what the device needs to read a RAUC plain bundle without
/// `unsquashfs` — the root directory's regular files, their bytes streamed block by block.
/// Compression: gzip (zlib; what `mksquashfs` and Debian's `rauc bundle` use by default) and
/// stored blocks. Every offset and size read from the image is checked against the payload
/// before use; a metadata block inflates to at most 8 KiB, a data block to the block size.
public struct SquashfsImage {
    public struct Superblock: Sendable {
        public let inodeCount: UInt32
        public let blockSize: UInt32
        public let fragmentCount: UInt32
        public let compression: UInt16
        public let flags: UInt16
        public let rootInode: UInt64
        public let bytesUsed: UInt64
        public let inodeTableStart: UInt64
        public let directoryTableStart: UInt64
        public let fragmentTableStart: UInt64
    }

    /// A regular file in the root directory.
    public struct File: Sendable, Equatable {
        public let name: String
        public let size: UInt64
        let blocksStart: UInt64
        let blockSizes: [UInt32]
        let fragmentIndex: UInt32
        let fragmentOffset: UInt32
    }

    static let magic: UInt32 = 0x7371_7368  // "hsqs"
    static let metadataSize = 8192
    static let noFragment: UInt32 = 0xFFFF_FFFF
    static let uncompressedDataBit: UInt32 = 1 << 24
    static let compressorOptionsFlag: UInt16 = 0x0400
    /// Bounds on what a bundle may hold in its root directory.
    static let directoryLimit = 1 << 20
    static let fileSizeLimit: UInt64 = 1 << 34

    public let source: ByteSource
    public let superblock: Superblock

    public init(source: ByteSource) throws(UpdateError) {
        self.source = source
        guard source.size >= 96 else { throw .malformedPayload("shorter than a squashfs superblock") }
        let raw = try source.read(at: 0, count: 96)
        var reader = LittleEndianReader(raw)
        guard reader.u32() == Self.magic else { throw .notABundle("the payload is not a squashfs image (bad magic)") }
        let inodeCount = reader.u32()
        _ = reader.u32()  // modification time
        let blockSize = reader.u32()
        let fragmentCount = reader.u32()
        let compression = reader.u16()
        let blockLog = reader.u16()
        let flags = reader.u16()
        _ = reader.u16()  // id count
        let major = reader.u16(), minor = reader.u16()
        let rootInode = reader.u64()
        let bytesUsed = reader.u64()
        _ = reader.u64()  // id table
        _ = reader.u64()  // xattr id table
        let inodeTableStart = reader.u64()
        let directoryTableStart = reader.u64()
        let fragmentTableStart = reader.u64()
        guard major == 4, minor == 0 else { throw .malformedPayload("squashfs version \(major).\(minor), not 4.0") }
        guard blockSize >= 4096, blockSize <= 1 << 20, blockSize.nonzeroBitCount == 1, blockLog < 32, 1 << blockLog == blockSize else {
            throw .malformedPayload("block size \(blockSize) (log \(blockLog)) is not a power of two from 4 KiB to 1 MiB")
        }
        switch compression {
        case 1: break
        case 2: throw .unsupportedCompression("lzma")
        case 3: throw .unsupportedCompression("lzo")
        case 4: throw .unsupportedCompression("xz")
        case 5: throw .unsupportedCompression("lz4")
        case 6: throw .unsupportedCompression("zstd")
        default: throw .unsupportedCompression("id \(compression)")
        }
        guard bytesUsed >= 96 else { throw .malformedPayload("the superblock says \(bytesUsed) bytes used") }
        guard bytesUsed <= source.size else {
            throw .truncated("the squashfs image needs \(bytesUsed) bytes, the payload holds \(source.size)")
        }
        guard inodeTableStart < bytesUsed, directoryTableStart < bytesUsed, inodeTableStart <= directoryTableStart else {
            throw .malformedPayload("inode/directory table offsets outside the image")
        }
        superblock = Superblock(
            inodeCount: inodeCount, blockSize: blockSize, fragmentCount: fragmentCount, compression: compression,
            flags: flags, rootInode: rootInode, bytesUsed: bytesUsed, inodeTableStart: inodeTableStart,
            directoryTableStart: directoryTableStart, fragmentTableStart: fragmentTableStart)
    }

    /// The regular files of the root directory (subdirectories and other types are skipped).
    public func rootFiles() throws(UpdateError) -> [File] {
        let root = try inode(at: superblock.rootInode)
        guard case .directory(let listingStart, let listingOffset, let listingSize) = root else {
            throw .malformedPayload("the root inode is not a directory")
        }
        guard listingSize <= Self.directoryLimit else { throw .malformedPayload("root directory listing of \(listingSize) bytes") }
        var files: [File] = []
        guard listingSize > 0 else { return files }
        var listing = try MetadataReader(
            image: self, tableStart: superblock.directoryTableStart, block: UInt64(listingStart), offset: listingOffset)
        var remaining = listingSize
        while remaining > 0 {
            guard remaining >= 12 else { throw .malformedPayload("directory header cut short") }
            var header = LittleEndianReader(try listing.read(12))
            let count = Int(header.u32()) + 1
            let inodeBlock = header.u32()
            _ = header.u32()  // inode number base
            remaining -= 12
            guard count <= 256 else { throw .malformedPayload("directory header with \(count) entries (at most 256)") }
            for _ in 0..<count {
                guard remaining >= 8 else { throw .malformedPayload("directory entry cut short") }
                var entry = LittleEndianReader(try listing.read(8))
                let inodeOffset = entry.u16()
                _ = entry.u16()  // inode number difference
                let type = entry.u16()
                let nameLength = Int(entry.u16()) + 1
                remaining -= 8
                guard nameLength <= 256, nameLength <= remaining else { throw .malformedPayload("directory entry name cut short") }
                let nameBytes = try listing.read(nameLength)
                remaining -= nameLength
                guard type == 2 else { continue }  // basic regular file; the inode says basic or extended
                guard let name = String(validating: nameBytes, as: UTF8.self), !name.contains("/"), name != ".", name != ".." else {
                    throw .malformedPayload("a file name is not valid UTF-8 or holds '/'")
                }
                let reference = UInt64(inodeBlock) << 16 | UInt64(inodeOffset)
                guard case .file(let file) = try inode(at: reference, name: name) else {
                    throw .malformedPayload("'\(name)' is listed as a file but its inode is not one")
                }
                files.append(file)
            }
        }
        return files
    }

    /// The root directory's regular file called `name`, or nil.
    public func file(named name: String) throws(UpdateError) -> File? {
        try rootFiles().first { $0.name == name }
    }

    /// Streams a file's bytes to `body` in chunks of at most one block, in order.
    public func read(_ file: File, _ body: (ArraySlice<UInt8>) throws(UpdateError) -> Void) throws(UpdateError) {
        let blockSize = UInt64(superblock.blockSize)
        var position = file.blocksStart
        var remaining = file.size
        for word in file.blockSizes {
            let expected = Int(min(blockSize, remaining))
            let stored = Int(word & ~Self.uncompressedDataBit)
            guard word & ~Self.uncompressedDataBit & 0xFF00_0000 == 0, stored <= Int(blockSize) else {
                throw .malformedPayload("data block size word \(word) of '\(file.name)'")
            }
            if stored == 0 {  // a sparse block: zeros, nothing stored
                try body(ArraySlice(repeating: 0, count: expected))
            } else {
                try checkInImage(position, stored, "a data block of '\(file.name)'")
                let raw = try source.read(at: position, count: stored)
                let block = word & Self.uncompressedDataBit != 0 ? raw : try Zlib.inflate(raw[...], limit: Int(blockSize))
                guard block.count == expected else {
                    throw .malformedPayload("a data block of '\(file.name)' holds \(block.count) bytes, not \(expected)")
                }
                try body(block[...])
                position += UInt64(stored)
            }
            remaining -= UInt64(expected)
        }
        guard remaining > 0 else { return }
        guard file.fragmentIndex != Self.noFragment else { throw .malformedPayload("'\(file.name)' ends without its tail") }
        let fragment = try fragmentBlock(file.fragmentIndex)
        let start = Int(file.fragmentOffset)
        guard start <= fragment.count, Int(remaining) <= fragment.count - start else {
            throw .malformedPayload("the tail of '\(file.name)' lies outside its fragment block")
        }
        try body(fragment[start..<start + Int(remaining)])
    }

    // MARK: Inodes

    enum Inode {
        case directory(listingBlock: UInt32, listingOffset: Int, listingSize: Int)
        case file(File)
        case other
    }

    func inode(at reference: UInt64, name: String = "/") throws(UpdateError) -> Inode {
        let block = reference >> 16
        let offset = Int(reference & 0xFFFF)
        var reader = try MetadataReader(image: self, tableStart: superblock.inodeTableStart, block: block, offset: offset)
        var header = LittleEndianReader(try reader.read(16))
        let type = header.u16()
        switch type {
        case 1:  // basic directory
            var fields = LittleEndianReader(try reader.read(16))
            let listingBlock = fields.u32()
            _ = fields.u32()  // link count
            let size = Int(fields.u16())
            let listingOffset = Int(fields.u16())
            return .directory(listingBlock: listingBlock, listingOffset: listingOffset, listingSize: max(size - 3, 0))
        case 8:  // extended directory
            var fields = LittleEndianReader(try reader.read(24))
            _ = fields.u32()  // link count
            let size = Int(fields.u32())
            let listingBlock = fields.u32()
            _ = fields.u32()  // parent
            _ = fields.u16()  // index count
            let listingOffset = Int(fields.u16())
            return .directory(listingBlock: listingBlock, listingOffset: listingOffset, listingSize: max(size - 3, 0))
        case 2, 9:  // basic / extended regular file
            let blocksStart: UInt64, size: UInt64, fragmentIndex: UInt32, fragmentOffset: UInt32
            if type == 2 {
                var fields = LittleEndianReader(try reader.read(16))
                blocksStart = UInt64(fields.u32())
                fragmentIndex = fields.u32()
                fragmentOffset = fields.u32()
                size = UInt64(fields.u32())
            } else {
                var fields = LittleEndianReader(try reader.read(40))
                blocksStart = fields.u64()
                size = fields.u64()
                _ = fields.u64()  // sparse bytes
                _ = fields.u32()  // link count
                fragmentIndex = fields.u32()
                fragmentOffset = fields.u32()
                _ = fields.u32()  // xattr index
            }
            guard size <= Self.fileSizeLimit, size <= superblock.bytesUsed * 1024 else {
                throw .malformedPayload("'\(name)' claims \(size) bytes")
            }
            let blockSize = UInt64(superblock.blockSize)
            let blockCount = fragmentIndex == Self.noFragment ? (size + blockSize - 1) / blockSize : size / blockSize
            var sizes: [UInt32] = []
            sizes.reserveCapacity(Int(blockCount))
            var left = Int(blockCount)
            while left > 0 {
                let take = min(left, 2048)
                var words = LittleEndianReader(try reader.read(take * 4))
                for _ in 0..<take { sizes.append(words.u32()) }
                left -= take
            }
            return .file(File(
                name: name, size: size, blocksStart: blocksStart, blockSizes: sizes,
                fragmentIndex: fragmentIndex, fragmentOffset: fragmentOffset))
        case 3...7, 10...14: return .other
        default: throw .malformedPayload("inode type \(type)")
        }
    }

    // MARK: Fragments and metadata blocks

    func fragmentBlock(_ index: UInt32) throws(UpdateError) -> [UInt8] {
        guard index < superblock.fragmentCount else {
            throw .malformedPayload("fragment \(index) of \(superblock.fragmentCount)")
        }
        guard superblock.fragmentTableStart < superblock.bytesUsed else {
            throw .malformedPayload("the fragment table starts outside the image")
        }
        let tableEntry = superblock.fragmentTableStart + UInt64(index / 512) * 8  // both bounded: no overflow
        try checkInImage(tableEntry, 8, "the fragment table")
        var pointer = LittleEndianReader(try source.read(at: tableEntry, count: 8))
        let metadataBlock = pointer.u64()
        var reader = try MetadataReader(image: self, tableStart: 0, block: metadataBlock, offset: Int(index % 512) * 16)
        var entry = LittleEndianReader(try reader.read(16))
        let start = entry.u64()
        let word = entry.u32()
        let stored = Int(word & ~Self.uncompressedDataBit)
        guard stored > 0, stored <= Int(superblock.blockSize) else { throw .malformedPayload("fragment \(index) size word \(word)") }
        try checkInImage(start, stored, "fragment block \(index)")
        let raw = try source.read(at: start, count: stored)
        return word & Self.uncompressedDataBit != 0 ? raw : try Zlib.inflate(raw[...], limit: Int(superblock.blockSize))
    }

    /// A metadata block at absolute position `position`: its bytes and where the next begins.
    func metadataBlock(at position: UInt64) throws(UpdateError) -> (bytes: [UInt8], next: UInt64) {
        try checkInImage(position, 2, "a metadata block header")
        var header = LittleEndianReader(try source.read(at: position, count: 2))
        let word = header.u16()
        let stored = Int(word & 0x7FFF)
        guard stored > 0, stored <= Self.metadataSize else { throw .malformedPayload("metadata block of \(stored) bytes") }
        try checkInImage(position + 2, stored, "a metadata block")
        let raw = try source.read(at: position + 2, count: stored)
        let bytes = word & 0x8000 != 0 ? raw : try Zlib.inflate(raw[...], limit: Self.metadataSize)
        return (bytes, position + 2 + UInt64(stored))
    }

    func checkInImage(_ offset: UInt64, _ count: Int, _ what: @autoclosure () -> String) throws(UpdateError) {
        guard offset <= superblock.bytesUsed, UInt64(count) <= superblock.bytesUsed - offset else {
            throw .malformedPayload("\(what()) at \(offset)+\(count) lies outside the \(superblock.bytesUsed)-byte image")
        }
    }
}

/// Reads across consecutive metadata blocks of one table.
struct MetadataReader {
    let image: SquashfsImage
    private var buffer: [UInt8]
    private var offset: Int
    private var next: UInt64

    init(image: SquashfsImage, tableStart: UInt64, block: UInt64, offset: Int) throws(UpdateError) {
        self.image = image
        let (position, overflow) = tableStart.addingReportingOverflow(block)
        guard !overflow else { throw .malformedPayload("metadata reference out of range") }
        (buffer, next) = try image.metadataBlock(at: position)
        guard offset <= buffer.count else { throw .malformedPayload("metadata offset \(offset) past its block") }
        self.offset = offset
    }

    mutating func read(_ count: Int) throws(UpdateError) -> [UInt8] {
        var result: [UInt8] = []
        result.reserveCapacity(count)
        while result.count < count {
            if offset == buffer.count {
                (buffer, next) = try image.metadataBlock(at: next)
                offset = 0
            }
            let take = min(count - result.count, buffer.count - offset)
            result += buffer[offset..<offset + take]
            offset += take
        }
        return result
    }
}

/// Little-endian fields from a buffer whose length the caller has checked.
struct LittleEndianReader {
    private let bytes: [UInt8]
    private var position = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    mutating func u16() -> UInt16 { UInt16(truncatingIfNeeded: take(2)) }
    mutating func u32() -> UInt32 { UInt32(truncatingIfNeeded: take(4)) }
    mutating func u64() -> UInt64 { take(8) }

    private mutating func take(_ count: Int) -> UInt64 {
        precondition(position + count <= bytes.count, "LittleEndianReader read past its checked buffer")
        var value: UInt64 = 0
        for index in (0..<count).reversed() { value = value << 8 | UInt64(bytes[position + index]) }
        position += count
        return value
    }
}
