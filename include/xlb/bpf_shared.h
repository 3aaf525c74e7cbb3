/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Structs shared between bpf/xlb.bpf.c and the daemon's map loader.
 * Only <linux/types.h> here: this header is compiled for -target bpf too.
 *
 * Addresses are 16 bytes, IPv4 as IPv4-mapped IPv6 (::ffff:a.b.c.d), the
 * same convention as struct xlb_tuple, so userspace copies them straight.
 */
#ifndef XLB_BPF_SHARED_H
#define XLB_BPF_SHARED_H

#include <linux/types.h>

/* Key of the `vips` map (destination of service traffic) and of the
 * `backends` map (source of return traffic). Port in network byte order;
 * ICMP/ICMPv6 use port 0 (a `vips` entry with proto ICMP and port 0 would
 * claim pings to the VIP). The BPF program zeroes pad: so must userspace. */
struct xlb_svc_key {
	__u8 addr[16];
	__be16 port;
	__u8 proto;
	__u8 pad;
};

struct xlb_svc_val {
	__u32 service_id;
};

/* Key of the `locals` map: the node's own addresses. Return traffic
 * addressed to one of them (health-check replies, the node's own
 * connections to a backend) is passed to the kernel, never redirected. */
struct xlb_local_key {
	__u8 addr[16];
};

/* Reasons counted per CPU in the `stats` map, in this order. A steered
 * frame counts its REDIRECT_* reason, and also REDIRECT_FAILED when no
 * socket is bound on its queue (it then goes to the kernel). */
enum xlb_xdp_stat {
	XLB_XDP_PASS_NOT_IP,      /* ARP, LLDP, ... */
	XLB_XDP_PASS_NO_MATCH,    /* IP but not ours */
	XLB_XDP_PASS_LOCAL,       /* from a backend, to the node itself */
	XLB_XDP_PASS_MALFORMED,   /* truncated header: the kernel decides */
	XLB_XDP_PASS_FRAGMENT,    /* any IP fragment, first ones included */
	XLB_XDP_REDIRECT_VIP,
	XLB_XDP_REDIRECT_REPLY,
	XLB_XDP_REDIRECT_ICMP,    /* ICMP error about a VIP or backend flow */
	XLB_XDP_REDIRECT_FAILED,  /* no socket on this queue */
	XLB_XDP_STAT_MAX,
};

#define XLB_MAX_QUEUES 64

#endif
