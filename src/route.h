/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Where to send a rewritten packet, as the kernel would: routes, neighbours
 * and the node's own addresses, mirrored from rtnetlink (libmnl) and kept
 * current from its notifications.
 *
 * Threads: the control thread owns the netlink sockets and calls
 * xlb_route_process() when xlb_route_fd() is readable; workers call
 * xlb_route_nexthop() as RCU readers. Tables are published with RCU.
 */
#ifndef XLB_ROUTE_H
#define XLB_ROUTE_H

#include <stdbool.h>
#include <stdint.h>

#include "xlb/tuple.h"

struct xlb_route;

enum xlb_nh_result {
	XLB_NH_OK,           /* mac[] filled */
	XLB_NH_PENDING,      /* neighbour unknown or incomplete: resolution asked for */
	XLB_NH_UNREACHABLE,  /* no route, or the route leaves through another interface */
};

/* Called by xlb_route_process() (control thread) for each address the node
 * gains (add=true) or loses, on any interface. */
typedef void (*xlb_local_addr_fn)(const union xlb_addr *addr, uint8_t family, bool add,
				  void *arg);

/*
 * Mirror the routes of the main table and the neighbours of interface
 * `ifindex`, and the node's addresses (reported through local_fn, which may
 * be NULL). Returns NULL and sets errno.
 */
struct xlb_route *xlb_route_create(int ifindex, xlb_local_addr_fn local_fn, void *arg);
void xlb_route_destroy(struct xlb_route *r);

/* The netlink socket to poll for notifications, and the handler. Returns 0
 * or a negative errno; also sends the resolution requests workers queued. */
int xlb_route_fd(const struct xlb_route *r);
int xlb_route_process(struct xlb_route *r);

/* The interface's own MAC, the source of every frame we send. */
void xlb_route_if_mac(const struct xlb_route *r, uint8_t mac[6]);

/* Bumped on every route or neighbour change: a next hop cached at an older
 * generation must be looked up again. */
uint32_t xlb_route_gen(const struct xlb_route *r);

/* A static next-hop MAC for one address (backend `mac=` in the config);
 * takes precedence over the neighbour table. Control thread. */
int xlb_route_set_static(struct xlb_route *r, const union xlb_addr *addr, uint8_t family,
			 const uint8_t mac[6]);
void xlb_route_clear_static(struct xlb_route *r);

/*
 * Next-hop MAC for a packet to dst: longest-prefix route (its gateway, or
 * dst itself when on-link), then that address's neighbour entry. When the
 * neighbour is missing or not yet resolved, a resolution is queued for the
 * control thread (never blocking, at most one request per address per
 * second) and XLB_NH_PENDING returned: the caller must not send the packet
 * to a guessed address. RCU read side; never blocks, never makes a syscall.
 */
enum xlb_nh_result xlb_route_nexthop(struct xlb_route *r, const union xlb_addr *dst,
				     uint8_t family, uint8_t mac[6]);

#endif
