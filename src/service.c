// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "service.h"

static struct xlb_backend_stats *registry[XLB_BACKEND_SLOTS];
static uint32_t registry_used;

uint16_t xlb_backend_slot_get(const char *service, uint8_t proto, const struct xlb_endpoint *ep)
{
	struct xlb_backend_stats *b;

	/* Linear: backends are few and this runs on reloads only. */
	for (uint32_t i = 0; i < registry_used; i++) {
		b = registry[i];
		if (b->proto == proto && b->ep.port == ep->port && xlb_addr_eq(&b->ep.addr, &ep->addr) &&
		    !strcmp(b->service, service))
			return (uint16_t)i;
	}
	if (registry_used >= XLB_BACKEND_SLOTS - 1)
		return XLB_BACKEND_NO_SLOT;
	b = calloc(1, sizeof(*b));
	if (!b)
		return XLB_BACKEND_NO_SLOT;
	snprintf(b->service, sizeof(b->service), "%s", service);
	b->proto = proto;
	b->ep = *ep;
	b->health_up = true;
	registry[registry_used] = b;
	return (uint16_t)registry_used++;
}

struct xlb_backend_stats *xlb_backend_stats(uint16_t slot)
{
	return slot < registry_used ? registry[slot] : NULL;
}

void xlb_backend_registry_free(void)
{
	for (uint32_t i = 0; i < registry_used; i++)
		free(registry[i]);
	registry_used = 0;
}

const char *xlb_backend_admin_name(enum xlb_backend_admin a)
{
	switch (a) {
	case XLB_BACKEND_UP:
		return "up";
	case XLB_BACKEND_DOWN:
		return "down";
	case XLB_BACKEND_DRAIN:
		return "draining";
	}
	return "?";
}

enum xlb_backend_state xlb_backend_state(const struct xlb_backend *b)
{
	if (!b->usable || b->admin == XLB_BACKEND_DOWN || !b->health_up)
		return XLB_BE_DOWN;
	if (b->admin == XLB_BACKEND_DRAIN || b->weight == 0)
		return XLB_BE_DRAINING;
	return XLB_BE_UP;
}

const char *xlb_backend_state_name(enum xlb_backend_state st)
{
	switch (st) {
	case XLB_BE_UP:
		return "up";
	case XLB_BE_DRAINING:
		return "draining";
	case XLB_BE_DOWN:
		return "down";
	}
	return "?";
}

/* A cheap mix of the VIP, the port and the protocol: VIPs are few and
 * chosen by operators, not by attackers. */
static inline uint32_t vip_hash(const union xlb_addr *a, uint16_t port, uint8_t proto)
{
	uint64_t h = (uint64_t)(a->w[3] ^ a->w[2] ^ a->w[1] ^ a->w[0]) << 24 ^ (uint64_t)port << 8 ^ proto;

	h *= 0x9e3779b97f4a7c15ull;
	return (uint32_t)(h >> 32);
}

/* (Re)build a service's Maglev table from its backends' current state:
 * backends that are up take new flows; when none is, draining ones do if
 * drain_fallback says so (Kubernetes' terminating endpoints), each with its
 * configured weight (1 when that is 0). */
static int build_maglev(struct xlb_service *svc)
{
	struct xlb_maglev_backend *mb;
	bool any_up = false;

	mb = calloc(svc->n_backends ? svc->n_backends : 1, sizeof(*mb));
	if (!mb)
		return -ENOMEM;
	for (uint32_t i = 0; i < svc->n_backends; i++)
		any_up |= xlb_backend_state(&svc->backends[i]) == XLB_BE_UP;
	for (uint32_t i = 0; i < svc->n_backends; i++) {
		const struct xlb_backend *b = &svc->backends[i];
		enum xlb_backend_state st = xlb_backend_state(b);

		mb[i].ep = b->ep;
		if (st == XLB_BE_UP)
			mb[i].weight = b->weight;
		else if (st == XLB_BE_DRAINING && !any_up && svc->drain_fallback)
			mb[i].weight = b->weight ? b->weight : (b->conf_weight ? b->conf_weight : 1);
		else
			mb[i].weight = 0;
	}
	svc->maglev = xlb_maglev_build(mb, svc->n_backends, svc->maglev_table_size);
	free(mb);
	if (!svc->maglev) {
		xlb_err("service %s: cannot build the Maglev table: %s", svc->name, strerror(errno));
		return -errno;
	}
	return 0;
}

static inline uint32_t be_hash(const struct xlb_endpoint *ep, uint8_t proto)
{
	return vip_hash(&ep->addr, ep->port, proto);
}

static int index_notrack_backends(struct xlb_services *s)
{
	uint32_t n = 0, size = 16;

	s->n_notrack = 0;
	for (uint32_t i = 0; i < s->n; i++) {
		if (s->svc[i].notrack) {
			n += s->svc[i].n_backends;
			s->n_notrack++;
		}
	}
	while (size < 2 * n)
		size <<= 1;
	s->be_mask = size - 1;
	s->be_slots = malloc(size * sizeof(*s->be_slots));
	if (!s->be_slots)
		return -ENOMEM;
	memset(s->be_slots, 0xff, size * sizeof(*s->be_slots));
	for (uint32_t i = 0; i < s->n; i++) {
		const struct xlb_service *svc = &s->svc[i];

		if (!svc->notrack)
			continue;
		for (uint32_t j = 0; j < svc->n_backends && j < 0x8000; j++) {
			uint32_t h = be_hash(&svc->backends[j].ep, svc->proto) & s->be_mask;

			while (s->be_slots[h] >= 0)
				h = (h + 1) & s->be_mask;
			s->be_slots[h] = (int32_t)(i << 16 | j);
		}
	}
	return 0;
}

const struct xlb_service *xlb_services_find_notrack_backend(const struct xlb_services *s,
							    const struct xlb_tuple *t,
							    uint32_t *backend)
{
	struct xlb_endpoint ep = { .addr = t->src, .port = t->sport };
	uint32_t h = be_hash(&ep, t->proto) & s->be_mask;

	for (int32_t v; (v = s->be_slots[h]) >= 0; h = (h + 1) & s->be_mask) {
		const struct xlb_service *svc = &s->svc[v >> 16];
		const struct xlb_backend *b = &svc->backends[v & 0xffff];

		if (svc->proto == t->proto && b->ep.port == t->sport && xlb_addr_eq(&b->ep.addr, &t->src)) {
			*backend = (uint32_t)(v & 0xffff);
			return svc;
		}
	}
	return NULL;
}

static int index_vips(struct xlb_services *s)
{
	uint32_t size = 16;

	/* Load factor at most 1/2 keeps probe chains short. */
	while (size < 2 * s->n)
		size <<= 1;
	s->mask = size - 1;
	s->slots = malloc(size * sizeof(*s->slots));
	if (!s->slots)
		return -ENOMEM;
	memset(s->slots, 0xff, size * sizeof(*s->slots));
	for (uint32_t i = 0; i < s->n; i++) {
		const struct xlb_service *svc = &s->svc[i];
		uint32_t h = vip_hash(&svc->vip.addr, svc->vip.port, svc->proto) & s->mask;

		while (s->slots[h] >= 0)
			h = (h + 1) & s->mask;
		s->slots[h] = (int32_t)i;
	}
	return 0;
}

struct xlb_services *xlb_services_build(const struct xlb_config *cfg)
{
	struct xlb_services *s;
	int err = -ENOMEM;

	s = calloc(1, sizeof(*s));
	if (!s)
		goto err;
	s->svc = calloc(cfg->n_services ? cfg->n_services : 1, sizeof(*s->svc));
	if (!s->svc)
		goto err;
	for (uint32_t i = 0; i < cfg->n_services; i++) {
		const struct xlb_service_conf *c = &cfg->services[i];
		struct xlb_service *svc = &s->svc[i];

		s->n = i + 1;
		snprintf(svc->name, sizeof(svc->name), "%s", c->name);
		svc->id = (uint16_t)i;
		svc->vip = c->vip;
		svc->proto = c->proto;
		svc->maglev_table_size = c->maglev_table_size;
		svc->on_backend_down = c->on_backend_down;
		svc->no_backend = c->no_backend;
		svc->drain_timeout = c->drain_timeout;
		svc->health_passive = c->health_passive;
		svc->health_interval_ms = c->health_interval_ms;
		svc->drain_fallback = c->drain_fallback;
		svc->notrack = c->notrack;
		svc->n_notrack_clients = c->n_notrack_clients;
		if (c->n_notrack_clients)
			memcpy(svc->notrack_clients, c->notrack_clients,
			       c->n_notrack_clients * sizeof(*c->notrack_clients));
		svc->n_backends = c->n_backends;
		svc->backends = calloc(c->n_backends ? c->n_backends : 1, sizeof(*svc->backends));
		if (!svc->backends) {
			err = -ENOMEM;
			goto err;
		}
		for (uint32_t j = 0; j < c->n_backends; j++) {
			struct xlb_backend *b = &svc->backends[j];

			b->ep = c->backends[j].ep;
			b->weight = b->conf_weight = c->backends[j].weight;
			b->admin = XLB_BACKEND_UP;
			b->usable = b->ep.family == c->vip.family;
			b->slot = xlb_backend_slot_get(c->name, c->proto, &b->ep);
			/* Health outlives snapshots: a reload does not revive
			 * a backend its checks found dead. */
			b->health_up = true;
			if (xlb_backend_stats(b->slot))
				b->health_up = xlb_backend_stats(b->slot)->health_up;
		}
	}
	err = xlb_services_finish(s);
	if (err)
		goto err;
	return s;
err:
	xlb_services_free(s);
	errno = -err;
	return NULL;
}

int xlb_services_finish(struct xlb_services *s)
{
	int err;

	for (uint32_t i = 0; i < s->n; i++) {
		xlb_maglev_free(s->svc[i].maglev);
		s->svc[i].maglev = NULL;
		err = build_maglev(&s->svc[i]);
		if (err)
			return err;
	}
	free(s->slots);
	free(s->be_slots);
	s->slots = NULL;
	s->be_slots = NULL;
	err = index_vips(s);
	if (!err)
		err = index_notrack_backends(s);
	return err;
}

struct xlb_services *xlb_services_copy(const struct xlb_services *cur)
{
	struct xlb_services *s;

	s = calloc(1, sizeof(*s));
	if (!s)
		goto err;
	s->svc = calloc(cur->n ? cur->n : 1, sizeof(*s->svc));
	if (!s->svc)
		goto err;
	for (uint32_t i = 0; i < cur->n; i++) {
		const struct xlb_service *from = &cur->svc[i];
		struct xlb_service *to = &s->svc[i];

		s->n = i + 1;
		*to = *from;
		to->maglev = NULL;
		to->backends = malloc((from->n_backends ? from->n_backends : 1) * sizeof(*to->backends));
		if (!to->backends)
			goto err;
		memcpy(to->backends, from->backends, from->n_backends * sizeof(*to->backends));
	}
	return s;
err:
	xlb_services_free(s);
	errno = ENOMEM;
	return NULL;
}

struct xlb_services *xlb_services_with_backend(const struct xlb_services *cur, uint32_t svc_idx,
					       uint32_t backend, enum xlb_backend_admin admin,
					       uint32_t weight)
{
	struct xlb_services *s = xlb_services_copy(cur);
	int err;

	if (!s)
		return NULL;
	s->svc[svc_idx].backends[backend].admin = admin;
	s->svc[svc_idx].backends[backend].weight = weight;
	err = xlb_services_finish(s);
	if (err) {
		xlb_services_free(s);
		errno = -err;
		return NULL;
	}
	return s;
}

void xlb_services_free(struct xlb_services *s)
{
	if (!s)
		return;
	for (uint32_t i = 0; i < s->n; i++) {
		xlb_maglev_free(s->svc[i].maglev);
		free(s->svc[i].backends);
	}
	free(s->svc);
	free(s->slots);
	free(s->be_slots);
	free(s);
}

static void free_rcu(struct rcu_head *head)
{
	xlb_services_free(caa_container_of(head, struct xlb_services, rcu));
}

void xlb_services_free_rcu(struct xlb_services *s)
{
	if (s)
		call_rcu(&s->rcu, free_rcu);
}

const struct xlb_service *xlb_services_find(const struct xlb_services *s,
					    const struct xlb_tuple *t)
{
	uint32_t h = vip_hash(&t->dst, t->dport, t->proto) & s->mask;

	for (int32_t i; (i = s->slots[h]) >= 0; h = (h + 1) & s->mask) {
		const struct xlb_service *svc = &s->svc[i];

		if (svc->vip.port == t->dport && svc->proto == t->proto &&
		    xlb_addr_eq(&svc->vip.addr, &t->dst))
			return svc;
	}
	return NULL;
}
