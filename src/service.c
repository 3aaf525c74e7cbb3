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

/* A cheap mix of the VIP, the port and the protocol: VIPs are few and
 * chosen by operators, not by attackers. */
static inline uint32_t vip_hash(const union xlb_addr *a, uint16_t port, uint8_t proto)
{
	uint64_t h = (uint64_t)(a->w[3] ^ a->w[2] ^ a->w[1] ^ a->w[0]) << 24 ^ (uint64_t)port << 8 ^ proto;

	h *= 0x9e3779b97f4a7c15ull;
	return (uint32_t)(h >> 32);
}

/* (Re)build a service's Maglev table from its backends' current state:
 * only usable backends that are up and have a weight take new flows. */
static int build_maglev(struct xlb_service *svc)
{
	struct xlb_maglev_backend *mb;

	mb = calloc(svc->n_backends ? svc->n_backends : 1, sizeof(*mb));
	if (!mb)
		return -ENOMEM;
	for (uint32_t i = 0; i < svc->n_backends; i++) {
		const struct xlb_backend *b = &svc->backends[i];

		mb[i].ep = b->ep;
		mb[i].weight = b->usable && b->admin == XLB_BACKEND_UP ? b->weight : 0;
	}
	svc->maglev = xlb_maglev_build(mb, svc->n_backends, svc->maglev_table_size);
	free(mb);
	if (!svc->maglev) {
		xlb_err("service %s: cannot build the Maglev table: %s", svc->name, strerror(errno));
		return -errno;
	}
	return 0;
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
		}
		err = build_maglev(svc);
		if (err)
			goto err;
	}
	err = index_vips(s);
	if (err)
		goto err;
	return s;
err:
	xlb_services_free(s);
	errno = -err;
	return NULL;
}

struct xlb_services *xlb_services_with_backend(const struct xlb_services *cur, uint32_t svc_idx,
					       uint32_t backend, enum xlb_backend_admin admin,
					       uint32_t weight)
{
	struct xlb_services *s;
	int err = -ENOMEM;

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
		if (!to->backends) {
			err = -ENOMEM;
			goto err;
		}
		memcpy(to->backends, from->backends, from->n_backends * sizeof(*to->backends));
		if (i == svc_idx) {
			to->backends[backend].admin = admin;
			to->backends[backend].weight = weight;
		}
		err = build_maglev(to);
		if (err)
			goto err;
	}
	err = index_vips(s);
	if (err)
		goto err;
	return s;
err:
	xlb_services_free(s);
	errno = -err;
	return NULL;
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
