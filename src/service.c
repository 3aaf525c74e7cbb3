// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "service.h"

/* A cheap mix of the VIP's last word, the port and the protocol: VIPs are
 * few and chosen by operators, not by attackers. */
static inline uint32_t vip_hash(const union xlb_addr *a, uint16_t port, uint8_t proto)
{
	uint64_t h = (uint64_t)(a->w[3] ^ a->w[2] ^ a->w[1] ^ a->w[0]) << 24 ^ (uint64_t)port << 8 ^ proto;

	h *= 0x9e3779b97f4a7c15ull;
	return (uint32_t)(h >> 32);
}

static int build_service(struct xlb_service *svc, uint16_t id, const struct xlb_service_conf *c)
{
	struct xlb_maglev_backend *mb = NULL;
	int err = 0;

	svc->conf = c;
	svc->id = id;
	svc->vip = c->vip;
	svc->proto = c->proto;
	svc->n_backends = c->n_backends;
	svc->backends = calloc(c->n_backends ? c->n_backends : 1, sizeof(*svc->backends));
	mb = calloc(c->n_backends ? c->n_backends : 1, sizeof(*mb));
	if (!svc->backends || !mb) {
		err = -ENOMEM;
		goto out;
	}
	for (uint32_t i = 0; i < c->n_backends; i++) {
		struct xlb_backend *b = &svc->backends[i];

		b->ep = c->backends[i].ep;
		b->weight = c->backends[i].weight;
		b->usable = b->ep.family == c->vip.family;
		mb[i].ep = b->ep;
		mb[i].weight = b->usable ? b->weight : 0;
	}
	svc->maglev = xlb_maglev_build(mb, c->n_backends, c->maglev_table_size);
	if (!svc->maglev) {
		err = -errno;
		xlb_err("service %s: cannot build the Maglev table: %s", c->name, strerror(errno));
	}
out:
	free(mb);
	return err;
}

struct xlb_services *xlb_services_build(struct xlb_config *cfg)
{
	struct xlb_services *s;
	uint32_t size = 16;
	int err = -ENOMEM;

	s = calloc(1, sizeof(*s));
	if (!s)
		goto err;
	s->svc = calloc(cfg->n_services ? cfg->n_services : 1, sizeof(*s->svc));
	if (!s->svc)
		goto err;
	for (uint32_t i = 0; i < cfg->n_services; i++) {
		err = build_service(&s->svc[i], (uint16_t)i, &cfg->services[i]);
		s->n = i + 1;
		if (err)
			goto err;
	}
	/* Load factor at most 1/2 keeps probe chains short. */
	while (size < 2 * cfg->n_services)
		size <<= 1;
	s->mask = size - 1;
	s->slots = malloc(size * sizeof(*s->slots));
	if (!s->slots) {
		err = -ENOMEM;
		goto err;
	}
	memset(s->slots, 0xff, size * sizeof(*s->slots));
	for (uint32_t i = 0; i < s->n; i++) {
		const struct xlb_service *svc = &s->svc[i];
		uint32_t h = vip_hash(&svc->vip.addr, svc->vip.port, svc->proto) & s->mask;

		while (s->slots[h] >= 0)
			h = (h + 1) & s->mask;
		s->slots[h] = (int32_t)i;
	}
	s->cfg = cfg;
	return s;
err:
	if (s)
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
	xlb_config_free(s->cfg);
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
