#define _GNU_SOURCE
#include "CConclaveSocket.h"
#include <string.h>
#include <time.h>

_Static_assert(sizeof(struct conclave_mmsghdr) == sizeof(struct mmsghdr), "mmsghdr layout");
_Static_assert(offsetof(struct conclave_mmsghdr, msg_len) == offsetof(struct mmsghdr, msg_len), "mmsghdr layout");

int conclave_recvmmsg(int fd, struct conclave_mmsghdr *messages, unsigned int count, int flags) {
    return recvmmsg(fd, (struct mmsghdr *)messages, count, flags, NULL);
}

int conclave_sendmmsg(int fd, struct conclave_mmsghdr *messages, unsigned int count, int flags) {
    return sendmmsg(fd, (struct mmsghdr *)messages, count, flags);
}

size_t conclave_cmsg_int_space(void) { return CMSG_SPACE(sizeof(int)); }

void conclave_cmsg_set_int(struct msghdr *message, void *control, int level, int type, int value) {
    message->msg_control = control;
    message->msg_controllen = CMSG_SPACE(sizeof(int));
    struct cmsghdr *header = CMSG_FIRSTHDR(message);
    header->cmsg_level = level;
    header->cmsg_type = type;
    header->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(header), &value, sizeof(int));
}

int conclave_enable_receive_timestamps(int fd) {
    int on = 1;
    return setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
}

size_t conclave_cmsg_timestamp_space(void) { return CMSG_SPACE(sizeof(struct timespec)); }

int64_t conclave_cmsg_timestamp_nanoseconds(const struct msghdr *message) {
    for (struct cmsghdr *header = CMSG_FIRSTHDR((struct msghdr *)message); header;
         header = CMSG_NXTHDR((struct msghdr *)message, header)) {
        if (header->cmsg_level == SOL_SOCKET && header->cmsg_type == SCM_TIMESTAMPNS) {
            struct timespec stamp;
            memcpy(&stamp, CMSG_DATA(header), sizeof stamp);
            return (int64_t)stamp.tv_sec * 1000000000 + stamp.tv_nsec;
        }
    }
    return 0;
}
