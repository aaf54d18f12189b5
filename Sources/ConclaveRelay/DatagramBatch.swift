internal import CConclaveSocket
import Glibc

/// Preallocated buffers, socket addresses, control buffers and `mmsghdr`s for one
/// `recvmmsg`/`sendmmsg` batch. Allocated once per relay thread; nothing here allocates
/// per packet. Owns its memory and frees it in `deinit`.
final class DatagramBatch {
    let capacity: Int
    let bufferSize: Int
    private let buffers: UnsafeMutableRawPointer
    private let vectors: UnsafeMutablePointer<iovec>
    private let names: UnsafeMutablePointer<sockaddr_in6>
    private let controls: UnsafeMutableRawPointer
    private let controlSize: Int
    let headers: UnsafeMutablePointer<conclave_mmsghdr>
    /// Filled slots, for a batch being assembled for `sendmmsg`.
    private(set) var count = 0

    init(capacity: Int, bufferSize: Int) {
        self.capacity = capacity
        self.bufferSize = bufferSize
        buffers = .allocate(byteCount: capacity * bufferSize, alignment: 16)
        vectors = .allocate(capacity: capacity)
        names = .allocate(capacity: capacity)
        controlSize = max(conclave_cmsg_int_space(), conclave_cmsg_timestamp_space())
        controls = .allocate(byteCount: capacity * controlSize, alignment: 16)
        headers = .allocate(capacity: capacity)
        for slot in 0..<capacity {
            vectors[slot] = iovec(iov_base: buffers + slot * bufferSize, iov_len: bufferSize)
            headers[slot] = conclave_mmsghdr()
            headers[slot].msg_hdr.msg_iov = vectors + slot
            headers[slot].msg_hdr.msg_iovlen = 1
            headers[slot].msg_hdr.msg_name = UnsafeMutableRawPointer(names + slot)
        }
    }

    deinit {
        buffers.deallocate()
        vectors.deallocate()
        names.deallocate()
        controls.deallocate()
        headers.deallocate()
    }

    @inline(__always) func buffer(_ slot: Int) -> UnsafeMutableRawPointer { buffers + slot * bufferSize }

    @inline(__always) func receivedLength(_ slot: Int) -> Int { Int(headers[slot].msg_len) }

    @inline(__always) func source(_ slot: Int) -> PeerAddress? { PeerAddress(UnsafeRawPointer(names + slot)) }

    /// When the kernel received the datagram in `slot` (CLOCK_REALTIME ns), 0 if not stamped.
    @inline(__always) func receiveTimestamp(_ slot: Int) -> Int64 {
        conclave_cmsg_timestamp_nanoseconds(&headers[slot].msg_hdr)
    }

    /// Receives up to `capacity` datagrams without blocking; returns how many (0 when none).
    /// With `timestamps`, each slot gets room for the kernel's receive timestamp.
    func receive(from socket: Int32, timestamps: Bool = false) throws(RelayError) -> Int {
        for slot in 0..<capacity {
            vectors[slot].iov_len = bufferSize
            headers[slot].msg_hdr.msg_namelen = socklen_t(MemoryLayout<sockaddr_in6>.size)
            headers[slot].msg_hdr.msg_control = timestamps ? controls + slot * controlSize : nil
            headers[slot].msg_hdr.msg_controllen = timestamps ? controlSize : 0
            headers[slot].msg_hdr.msg_flags = 0
        }
        let received = conclave_recvmmsg(socket, headers, UInt32(capacity), Int32(MSG_DONTWAIT))
        if received >= 0 { return Int(received) }
        if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { return 0 }
        throw .system("recvmmsg", errno)
    }

    /// The next free slot of an outgoing batch, or nil when the batch is full.
    @inline(__always) func nextSlot() -> Int? { count < capacity ? count : nil }

    /// Commits the slot returned by `nextSlot` with its length, destination and DSCP.
    @inline(__always) func commit(length: Int, to destination: PeerAddress, dscp: UInt8) {
        let slot = count
        vectors[slot].iov_len = length
        let header = headers + slot
        header.pointee.msg_hdr.msg_namelen = destination.write(to: UnsafeMutableRawPointer(names + slot))
        let isIPv4 = Int32(destination.family) == AF_INET
        // DSCP sits in the upper six bits of the TOS / traffic class byte (RFC 2474).
        conclave_cmsg_set_int(
            &header.pointee.msg_hdr, controls + slot * controlSize,
            isIPv4 ? Int32(IPPROTO_IP) : Int32(IPPROTO_IPV6), isIPv4 ? IP_TOS : IPV6_TCLASS, Int32(dscp) << 2)
        count += 1
    }

    /// Sends every committed slot with as few `sendmmsg` calls as the kernel allows, then
    /// empties the batch. Returns how many datagrams the kernel refused (dropped).
    func flush(to socket: Int32) -> Int {
        var sent = 0
        var dropped = 0
        while sent < count {
            let result = conclave_sendmmsg(socket, headers + sent, UInt32(count - sent), 0)
            if result > 0 {
                sent += Int(result)
            } else if result < 0 && errno == EINTR {
                continue
            } else {
                // The first message failed (e.g. ENOBUFS, or an unreachable peer): drop it, go on.
                sent += 1
                dropped += 1
            }
        }
        count = 0
        return dropped
    }
}
