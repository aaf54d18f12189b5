#pragma once
#include <net/if.h>
#include <netlink/netlink.h>
#include <netlink/version.h>
#include <netlink/errno.h>
#include <netlink/cache.h>
#include <netlink/msg.h>
#include <netlink/attr.h>
#include <netlink/route/link.h>
#include <netlink/route/addr.h>
#include <netlink/route/route.h>
#include <netlink/route/nexthop.h>
#include <netlink/route/tc.h>
#include <netlink/route/qdisc.h>
#include <netlink/genl/genl.h>
#include <netlink/genl/ctrl.h>
#include <linux/ethtool_netlink.h>

/* Entering a named network namespace (`conclave net apply --netns`): glibc declares setns(2)
   and unshare(2) only under _GNU_SOURCE, which Swift's Glibc module does not define. */
int setns(int fd, int nstype);
int unshare(int flags);
static inline int conclave_nl_enter_network_namespace(int descriptor) { return setns(descriptor, 0x40000000 /* CLONE_NEWNET */); }
static inline int conclave_nl_unshare_mount_namespace(void) { return unshare(0x00020000 /* CLONE_NEWNS */); }
