/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The Prometheus endpoint: GET /metrics in the text exposition format
 * (version 0.0.4), served over HTTP by libmicrohttpd.
 *
 * What is exported: per backend (flows, packets, bytes, new flows, up,
 * weight), per worker (packets, bytes, drops by reason, conntrack -S
 * counters), per AF_XDP socket (XDP_STATISTICS), the XDP program's
 * counters and the flow table's size. Names and labels are listed in
 * metrics.c, one table per family.
 *
 * Threads: libmicrohttpd runs one internal thread that accepts, parses
 * and answers every connection. That thread becomes a liburcu QSBR reader
 * on its first scrape and is offline between scrapes, so an idle or slow
 * scraper never holds back a grace period; it unregisters when it exits.
 */
#ifndef XLB_METRICS_H
#define XLB_METRICS_H

#include <stdint.h>
#include <stdio.h>

#include "worker.h"
#include "xdp.h"
#include "xlb/tuple.h"

/* What a scrape reads. Everything must outlive the endpoint. */
struct xlb_metrics_ctx {
	struct xlb_dataplane *dp;          /* flow table and services snapshot */
	struct xlb_worker *workers;        /* their stats and sockets */
	uint32_t n_workers;
	const struct xlb_xdp *xdp;         /* NULL: no xlb_xdp_* family */
};

struct xlb_metrics;

/*
 * Write every family in the text format to out. Caller is an online RCU
 * reader (QSBR): the flow table is walked once, which for a large table
 * is a long read-side section, as for `xlbctl service`. A worker whose
 * socket gives no XDP_STATISTICS (fd < 0, as in tests) has no xlb_xsk_*
 * samples. Returns 0, or a negative errno when out failed (memory).
 */
int xlb_metrics_render(const struct xlb_metrics_ctx *ctx, FILE *out);

/*
 * Listen on ep (port 0: any free port, see xlb_metrics_port) and serve
 * GET /metrics from a thread of libmicrohttpd's. ctx is copied; what it
 * points to must stay valid until xlb_metrics_stop(). The caller's thread
 * needs no RCU state. Returns NULL and sets errno (EADDRINUSE and the like
 * when the address cannot be bound).
 */
struct xlb_metrics *xlb_metrics_start(const struct xlb_endpoint *ep,
				      const struct xlb_metrics_ctx *ctx);

/* The port listened on, host order. */
uint16_t xlb_metrics_port(const struct xlb_metrics *m);

/* Close the listening socket and every connection, join the server's
 * thread (a scrape under way finishes first), free. NULL is fine. */
void xlb_metrics_stop(struct xlb_metrics *m);

#endif
