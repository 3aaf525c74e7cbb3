/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Ending the flows of a backend that went down (health checks, xlbctl
 * backend ... down, removal by a reload, the end of a drain), as its
 * service's on_backend_down says:
 *   reset  TCP flows: a RST to the client (from the VIP) and one to the
 *          backend (from the client), then the entry goes; so the client
 *          fails fast instead of hanging;
 *   drop   TCP flows stay but their packets are dropped (XLB_FLOW_DEAD)
 *          until they time out;
 *   keep   nothing changes.
 * UDP and other flows are deleted in every case but keep, so their next
 * packet picks a live backend. Each deletion is a [DESTROY] event.
 *
 * Control thread only; it is an online RCU reader for the walk.
 */
#ifndef XLB_PURGE_H
#define XLB_PURGE_H

#include <stdint.h>

#include "config.h"
#include "flow.h"

struct xlb_purge;

/* Raw sockets for the RSTs (CAP_NET_RAW). Returns NULL and sets errno. */
struct xlb_purge *xlb_purge_create(void);
void xlb_purge_destroy(struct xlb_purge *p);

struct xlb_purge_result {
	uint32_t deleted;
	uint32_t reset;          /* TCP flows answered with RSTs */
	uint32_t dead;           /* TCP flows left to time out, packets dropped */
};

/* End the flows whose backend is registry slot `slot`. p may be NULL (no
 * RSTs can be sent: reset then only deletes). */
void xlb_purge_backend(struct xlb_purge *p, struct xlb_ct *ct, uint16_t slot,
		       enum xlb_backend_down_action action, struct xlb_purge_result *res);

#endif
