/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The services as the workers see them: an immutable snapshot (VIP lookup
 * table, per-service backends with their run-time state, Maglev tables),
 * published by the control plane with rcu_xchg_pointer and freed with
 * call_rcu when a reload or a backend change replaces it. A snapshot is
 * self-contained: it copies what it needs from the config.
 *
 * Backend statistics live in a registry that outlives snapshots, so that a
 * reload or a weight change does not reset them: one slot per (service
 * name, protocol, endpoint) seen since xlbd started. Flows name their
 * backend by that slot (flow->backend_id).
 */
#ifndef XLB_SERVICE_H
#define XLB_SERVICE_H

#include <stdint.h>

#include <urcu-qsbr.h>

#include "config.h"
#include "maglev.h"
#include "xlb/tuple.h"

/* What an operator (xlbctl backend) says of a backend. */
enum xlb_backend_admin {
	XLB_BACKEND_UP,
	XLB_BACKEND_DOWN,
	XLB_BACKEND_DRAIN,
};

#define XLB_BACKEND_SLOTS 65536
#define XLB_BACKEND_NO_SLOT 0xffffu

/* A backend's counters since xlbd started. Written with atomics by
 * whichever thread creates or destroys a flow (never per packet). */
struct xlb_backend_stats {
	char service[XLB_NAME_MAX];
	struct xlb_endpoint ep;
	uint8_t proto;
	uint64_t new_flows;
	int64_t active_flows;
	uint64_t closed_packets;     /* both directions of flows now gone */
	uint64_t closed_bytes;
	/* The control thread's rate estimate (new flows per second). */
	uint64_t rate_last;
	double rate;
	/* Dead backends (control thread, except passive_fails). */
	uint64_t drain_since;         /* ns monotonic when it began draining; 0: not */
	uint32_t passive_fails;       /* consecutive RST/unreachable answers to new flows */
	bool health_up;               /* last word of the health checker; true without checks */
	uint64_t revive_at;           /* passively downed, no active checks: up again then */
};

struct xlb_backend {
	struct xlb_endpoint ep;
	uint32_t weight;              /* current weight (config or xlbctl) */
	uint32_t conf_weight;         /* as configured */
	enum xlb_backend_admin admin;
	bool health_up;               /* the health checker's verdict (true without checks) */
	bool usable;                  /* same family as the VIP */
	uint16_t slot;                /* registry slot, XLB_BACKEND_NO_SLOT if full */
};

/* What a backend is to new and existing flows, from admin state, weight
 * and health. */
enum xlb_backend_state {
	XLB_BE_UP,          /* takes new flows */
	XLB_BE_DRAINING,    /* no new flows (but the no-backend fallback); keeps its flows */
	XLB_BE_DOWN,        /* dead or disabled: its flows are purged */
};

enum xlb_backend_state xlb_backend_state(const struct xlb_backend *b);
const char *xlb_backend_state_name(enum xlb_backend_state s);

struct xlb_service {
	char name[XLB_NAME_MAX];
	uint16_t id;
	struct xlb_endpoint vip;
	uint8_t proto;
	uint32_t maglev_table_size;
	struct xlb_maglev *maglev;
	struct xlb_backend *backends;
	uint32_t n_backends;
	/* From the config, for the data path and the control thread. */
	enum xlb_backend_down_action on_backend_down;
	enum xlb_no_backend_action no_backend;
	uint32_t drain_timeout;       /* seconds */
	uint32_t health_passive;
	uint32_t health_interval_ms;
	bool drain_fallback;
	bool notrack;
	uint32_t n_notrack_clients;   /* 0: every client bypasses conntrack */
	struct xlb_prefix notrack_clients[XLB_MAX_PREFIXES];
};

struct xlb_services {
	struct xlb_service *svc;
	uint32_t n;
	uint32_t mask;                /* VIP hash: open addressing, size mask+1 */
	int32_t *slots;               /* index into svc, or -1 */
	/* Backends of notrack services, for their replies (which have no
	 * flow): (service index << 16 | backend index), or -1. */
	uint32_t be_mask;
	int32_t *be_slots;
	uint32_t n_notrack;           /* services with notrack = 1 */
	struct rcu_head rcu;
};

/* Build a snapshot of cfg, every backend as configured and up. Returns
 * NULL and sets errno (a message was logged). */
struct xlb_services *xlb_services_build(const struct xlb_config *cfg);

/* A copy of cur with one backend changed (admin state and weight), its
 * service's Maglev table rebuilt. Returns NULL and sets errno. */
struct xlb_services *xlb_services_with_backend(const struct xlb_services *cur, uint32_t svc,
					       uint32_t backend, enum xlb_backend_admin admin,
					       uint32_t weight);

/* A deep copy of cur without tables, to change backends in and then
 * finish: xlb_services_finish builds the Maglev tables and indexes. */
struct xlb_services *xlb_services_copy(const struct xlb_services *cur);
int xlb_services_finish(struct xlb_services *s);

/* The notrack service backend `t->src:t->sport` answers for (a reply with
 * no flow), with *backend set; or NULL. RCU read side. */
const struct xlb_service *xlb_services_find_notrack_backend(const struct xlb_services *s,
							    const struct xlb_tuple *t,
							    uint32_t *backend);

/* Free now (no reader can see it) or after a grace period. */
void xlb_services_free(struct xlb_services *s);
void xlb_services_free_rcu(struct xlb_services *s);

/* The service whose VIP, port and protocol are the destination of t, or
 * NULL. RCU read side. */
const struct xlb_service *xlb_services_find(const struct xlb_services *s,
					    const struct xlb_tuple *t);

/* The registry. slot_get finds or claims the slot of a backend (control
 * thread only); the stats pointer of a claimed slot never changes. */
uint16_t xlb_backend_slot_get(const char *service, uint8_t proto, const struct xlb_endpoint *ep);
struct xlb_backend_stats *xlb_backend_stats(uint16_t slot);
void xlb_backend_registry_free(void);

const char *xlb_backend_admin_name(enum xlb_backend_admin a);

#endif
