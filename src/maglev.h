/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Maglev consistent hashing (Eisenbud et al., NSDI 2016), with weights.
 *
 * A lookup table of a prime size M maps a flow hash to a backend index.
 * Built by the control plane, read by the workers; immutable once built.
 */
#ifndef XLB_MAGLEV_H
#define XLB_MAGLEV_H

#include <stdint.h>

#include "xlb/tuple.h"

#define XLB_MAGLEV_DEFAULT_SIZE 65537u
#define XLB_MAGLEV_NONE 0xffffu   /* no backend can take new connections */

struct xlb_maglev_backend {
	struct xlb_endpoint ep;    /* the identity hashed to place the backend */
	uint32_t weight;           /* 0 = not in the table */
};

struct xlb_maglev {
	uint32_t size;             /* prime */
	uint16_t table[];          /* backend index, or XLB_MAGLEV_NONE */
};

/*
 * Build a table of `size` entries (must be prime and >= n) for backends[0..n).
 * A backend's position depends only on its endpoint, so removing one moves
 * only its share. Backends of weight 0 get no slots. Returns NULL and sets
 * errno (EINVAL: size not prime or too small; ENOMEM).
 */
struct xlb_maglev *xlb_maglev_build(const struct xlb_maglev_backend *backends, uint32_t n,
				    uint32_t size);
void xlb_maglev_free(struct xlb_maglev *m);

static inline uint16_t xlb_maglev_lookup(const struct xlb_maglev *m, uint64_t hash)
{
	return m->table[hash % m->size];
}

int xlb_is_prime(uint32_t n);

#endif
