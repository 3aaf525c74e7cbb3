/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The XDP steering program: load, fill its maps, attach with a bpf_link.
 *
 * The link is held only by our file descriptor (never pinned), so the
 * program detaches when xlbd exits, however it exits, SIGKILL included.
 */
#ifndef XLB_XDP_H
#define XLB_XDP_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "xlb/bpf_shared.h"

struct xlb_xdp;

/* Open and load the program for `ifindex` (not attached yet). Returns NULL
 * and sets errno; a message was logged. */
struct xlb_xdp *xlb_xdp_load(int ifindex);

/* Attach per mode: native, generic, or auto (native, then generic).
 * Returns 0 or a negative errno. Sets the mode actually used. */
int xlb_xdp_attach(struct xlb_xdp *x, enum xlb_xdp_mode mode, enum xlb_xdp_mode *used);

/* Detach (close the link) and free everything. */
void xlb_xdp_close(struct xlb_xdp *x);

int xlb_xdp_xsks_fd(const struct xlb_xdp *x);

/* Make the steering maps hold exactly the services of cfg: VIP keys and
 * backend keys (return traffic) added, stale ones deleted. Control thread.
 * Returns 0 or a negative errno. */
int xlb_xdp_sync_services(struct xlb_xdp *x, const struct xlb_config *cfg);

/* The node's own addresses (return traffic to them stays with the kernel). */
int xlb_xdp_set_local(struct xlb_xdp *x, const union xlb_addr *addr, bool add);

/* Sum the per-CPU counters of the program into out[XLB_XDP_STAT_MAX]. */
int xlb_xdp_read_stats(const struct xlb_xdp *x, uint64_t out[XLB_XDP_STAT_MAX]);

const char *xlb_xdp_stat_name(enum xlb_xdp_stat s);

#endif
