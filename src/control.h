/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The control socket: xlbctl's commands served from a UNIX stream socket
 * (mode 0600, root peers only), one thread per client, several clients at
 * once. Protocol in include/xlb/ctl_proto.h.
 */
#ifndef XLB_CONTROL_H
#define XLB_CONTROL_H

#include <pthread.h>
#include <stdint.h>

#include "flow.h"
#include "worker.h"

struct xlb_control;

/* What the command handlers reach. Mutations of services and backends
 * take `lock` (the control thread's SIGHUP reload takes it too). */
struct xlb_control_ctx {
	struct xlb_dataplane *dp;
	struct xlb_worker *workers;
	uint32_t n_workers;
	pthread_mutex_t *lock;
	/* Re-read the config; 0 or a negative errno, message in err. */
	int (*reload)(void *arg, char *err, size_t errlen);
	/* Publish a new services snapshot (it becomes the daemon's) and end
	 * the flows of backends it takes down. Called with `lock` held. */
	void (*publish)(void *arg, struct xlb_services *next);
	void *arg;
};

/* Listen on path (its directory is created 0755 if missing; a stale socket
 * file is replaced, a live one refused). Returns NULL and sets errno. */
struct xlb_control *xlb_control_open(const char *path, const struct xlb_control_ctx *ctx);

/* The listening socket, for the control loop's epoll; call accept when it
 * is readable. */
int xlb_control_fd(const struct xlb_control *c);
void xlb_control_accept(struct xlb_control *c);

/* Stop accepting, end every client (their threads are joined), unlink the
 * socket file. */
void xlb_control_close(struct xlb_control *c);

#endif
