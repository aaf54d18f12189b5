#pragma once
// Process-control calls Swift cannot import: prctl is variadic, signalfd and SCM_RIGHTS need
// macros. Each shim names the call it wraps and returns its result (or -1 with errno set).
#include <signal.h>
#include <stddef.h>

/// setresgid(gid, gid, gid) and setresuid(uid, uid, uid): hidden behind _GNU_SOURCE in glibc.
int conclave_sys_set_all_gids(unsigned int gid);
int conclave_sys_set_all_uids(unsigned int uid);

/// prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
int conclave_sys_set_no_new_privs(void);

/// prctl(PR_SET_KEEPCAPS, keep, 0, 0, 0)
int conclave_sys_set_keepcaps(int keep);

/// prctl(PR_SET_PDEATHSIG, signal): the kernel sends `signal` when the parent dies.
int conclave_sys_set_parent_death_signal(int signal);

/// signalfd(-1, set, SFD_NONBLOCK | SFD_CLOEXEC) for the signals in `set` (block them first).
int conclave_sys_signalfd(const sigset_t *set);

/// Reads one `struct signalfd_siginfo` from `descriptor`; returns its signal number, 0 if none.
int conclave_sys_read_signal(int descriptor);

/// sendmsg of `length` bytes with `descriptor` attached as SCM_RIGHTS (`descriptor` < 0: none).
long conclave_sys_send_with_descriptor(int socket, const void *bytes, size_t length, int descriptor);

/// recvmsg of up to `capacity` bytes; a descriptor passed with SCM_RIGHTS is stored in
/// `*descriptor` (else -1). Returns the byte count, 0 at end of stream, -1 on error.
long conclave_sys_receive_with_descriptor(int socket, void *bytes, size_t capacity, int *descriptor);
