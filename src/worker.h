/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The worker: one thread per NIC queue. It reads its AF_XDP socket in
 * bursts, runs each burst through the packet function (conntrack lookup,
 * Maglev for new flows, NAT, next hop) and transmits on the same socket.
 *
 * The packet function, xlb_worker_handle_burst(), works on frames in
 * memory and knows nothing of sockets, so tests and the microbenchmark
 * call it directly.
 */
#ifndef XLB_WORKER_H
#define XLB_WORKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "flow.h"
#include "route.h"
#include "service.h"
#include "xsk.h"

#define XLB_BURST 64
#define XLB_NH_CACHE 256   /* per worker, a power of two */

/* Why a worker dropped a packet. */
enum xlb_drop_reason {
	XLB_DROP_PARSE,          /* malformed or truncated */
	XLB_DROP_UNSUPPORTED,    /* fragments, protocols and ICMP we do not handle yet */
	XLB_DROP_NO_FLOW,        /* return traffic of no known connection */
	XLB_DROP_INVALID,        /* conntrack said INVALID */
	XLB_DROP_NO_BACKEND,     /* a new connection, no backend to take it */
	XLB_DROP_CT_FULL,        /* could not insert (table full, tuple clash) */
	XLB_DROP_UNREACHABLE,    /* no route out of our interface */
	XLB_DROP_NEIGH,          /* neighbour never resolved, or the hold queue was full */
	XLB_DROP_TX_RING,        /* the tx ring had no room */
	XLB_DROP_BACKEND_DOWN,   /* a flow of a dead backend (on_backend_down = drop) */
	XLB_DROP_MAX,
};

struct xlb_worker_stats {
	uint64_t rx_packets;
	uint64_t rx_bytes;
	uint64_t tx_packets;
	uint64_t tx_bytes;
	uint64_t new_flows;
	uint64_t held;           /* waited for a neighbour */
	uint64_t untracked;      /* notrack services: forwarded without conntrack */
	uint64_t rejected;       /* no backend: answered with RST / port unreachable */
	uint64_t related;        /* ICMP errors about our flows, translated and sent on */
	uint64_t reject_limited; /* would have been rejected, over the rate limit: dropped */
	uint64_t csum_completed; /* a sender's partial (offloaded) checksum, finished here */
	uint64_t drop[XLB_DROP_MAX];
};

/* What every worker shares. The services pointer is RCU-protected. */
struct xlb_dataplane {
	struct xlb_ct *ct;
	struct xlb_route *route;
	struct xlb_services *services;
	uint8_t if_mac[6];
	bool zone_from_vlan;     /* [conntrack] zone_from_vlan; a reload may flip it */
	volatile int stop;
};

enum xlb_verdict { XLB_VERDICT_TX, XLB_VERDICT_DROP, XLB_VERDICT_HOLD };

/* One frame of a burst. For HOLD, nh/family say whose MAC is awaited. */
struct xlb_buf {
	uint8_t *data;
	uint32_t len;
	uint32_t cap;            /* bytes writable at data (a reject may grow the frame) */
	uint64_t addr;           /* UMEM address; opaque to the packet function */
	uint8_t verdict;
	uint8_t family;
	union xlb_addr nh;       /* the packet's destination after NAT */
};

struct xlb_hold {
	uint64_t addr;
	uint32_t len;
	uint8_t family;
	union xlb_addr nh;
	uint64_t deadline;
};

#define XLB_HOLD_MAX 256

struct xlb_worker {
	/* Read on every packet. */
	struct xlb_dataplane *dp;
	struct xlb_xsk xsk;
	struct xlb_ct_stats ct_stats;
	struct xlb_worker_stats stats;

	/* Next hops this worker resolved, by destination address: new
	 * connections to a backend (or a client) it has sent to before skip
	 * the route and neighbour lookups. An entry is good for the route
	 * generation it was resolved at (gen + 1: a zeroed one never is). */
	struct xlb_nh_cached {
		union xlb_addr addr;
		uint32_t gen;
		uint8_t mac[6];
		uint8_t family;
	} nh_cache[XLB_NH_CACHE];

	/* Frames waiting for a neighbour to resolve (the kernel's unres_qlen). */
	struct xlb_hold hold[XLB_HOLD_MAX];
	uint32_t n_hold;
	uint32_t hold_gen;

	/* Token bucket for the RSTs and port unreachables the worker makes
	 * (the kernel's icmp_msgs_per_sec): a VIP with no backend must not
	 * become a packet amplifier. */
	uint64_t reject_tokens_at;
	uint32_t reject_tokens;

	uint32_t id;
	uint32_t queue;
	pthread_t thread;
	bool started;
} __attribute__((aligned(64)));

/*
 * Run a burst of frames through conntrack, Maglev and NAT. Each buf gets
 * a verdict; TX frames are rewritten in place (addresses, ports, checksums,
 * MACs). Returns how many were TX. Caller is an online RCU reader.
 */
unsigned xlb_worker_handle_burst(struct xlb_worker *w, struct xlb_buf *bufs, unsigned n,
				 uint64_t now);

/* Open the worker's socket (before the XDP program is attached). */
int xlb_worker_open(struct xlb_worker *w, struct xlb_dataplane *dp, uint32_t id,
		    const char *ifname, uint32_t queue, int xsks_map_fd);
int xlb_worker_start(struct xlb_worker *w);
/* Join (after dp->stop was set) and close the socket. */
void xlb_worker_close(struct xlb_worker *w);

const char *xlb_drop_reason_name(enum xlb_drop_reason r);

/* The 5-tuple hash Maglev uses: fixed seed, so every xlb node, and this
 * one after a restart, picks the same backend for the same connection. */
uint64_t xlb_flow_hash5(const struct xlb_tuple *t);

#endif
