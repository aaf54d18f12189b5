#pragma once
// Batched datagram I/O for the media hot path. Swift's Glibc module does not see mmsghdr,
// recvmmsg or sendmmsg (they need _GNU_SOURCE), and CMSG_* are macros: these prefixed shims
// expose exactly what the relay uses.
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <sys/eventfd.h>

/// Same layout as the kernel's `struct mmsghdr` (checked with a static assertion).
struct conclave_mmsghdr {
    struct msghdr msg_hdr;
    unsigned int msg_len;
};

/// recvmmsg(2) with no timeout.
int conclave_recvmmsg(int fd, struct conclave_mmsghdr *messages, unsigned int count, int flags);

/// sendmmsg(2).
int conclave_sendmmsg(int fd, struct conclave_mmsghdr *messages, unsigned int count, int flags);

/// setsockopt(SO_TIMESTAMPNS): the kernel stamps each received datagram (CLOCK_REALTIME).
int conclave_enable_receive_timestamps(int fd);

/// Room a control buffer needs for a receive timestamp (CMSG_SPACE(sizeof(struct timespec))).
size_t conclave_cmsg_timestamp_space(void);

/// The SCM_TIMESTAMPNS of a received message in nanoseconds, or 0 if it carries none.
int64_t conclave_cmsg_timestamp_nanoseconds(const struct msghdr *message);

/// Room a control buffer needs for one int-valued ancillary message (CMSG_SPACE(sizeof(int))).
size_t conclave_cmsg_int_space(void);

/// Writes one int-valued ancillary message (e.g. IPPROTO_IP/IP_TOS) into `control`, which has
/// `conclave_cmsg_int_space()` bytes, and points `message` at it.
void conclave_cmsg_set_int(struct msghdr *message, void *control, int level, int type, int value);
