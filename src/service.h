/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The services as the workers see them: an immutable snapshot built from a
 * config (VIP lookup table, per-service backends and Maglev table),
 * published by the control thread with rcu_xchg_pointer and freed with
 * call_rcu when a reload or a backend change replaces it.
 */
#ifndef XLB_SERVICE_H
#define XLB_SERVICE_H

#include <stdint.h>

#include <urcu-qsbr.h>

#include "config.h"
#include "maglev.h"
#include "xlb/tuple.h"

struct xlb_backend {
	struct xlb_endpoint ep;
	uint32_t weight;
	bool usable;                  /* same family as the VIP */
};

struct xlb_service {
	const struct xlb_service_conf *conf;
	uint16_t id;
	struct xlb_endpoint vip;
	uint8_t proto;
	struct xlb_maglev *maglev;
	struct xlb_backend *backends;
	uint32_t n_backends;
};

struct xlb_services {
	struct xlb_config *cfg;       /* owned: services point into it */
	struct xlb_service *svc;
	uint32_t n;
	uint32_t mask;                /* VIP hash: open addressing, size mask+1 */
	int32_t *slots;               /* index into svc, or -1 */
	struct rcu_head rcu;
};

/* Build the snapshot of cfg. On success the snapshot owns cfg. Returns NULL
 * and sets errno (a message was logged). */
struct xlb_services *xlb_services_build(struct xlb_config *cfg);

/* Free now (no reader can see it) or after a grace period. */
void xlb_services_free(struct xlb_services *s);
void xlb_services_free_rcu(struct xlb_services *s);

/* The service whose VIP, port and protocol are the destination of t, or
 * NULL. RCU read side. */
const struct xlb_service *xlb_services_find(const struct xlb_services *s,
					    const struct xlb_tuple *t);

#endif
