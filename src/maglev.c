/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Maglev consistent hashing (Eisenbud et al., NSDI 2016), with weights.
 *
 * Every backend has a preference list, a permutation of the table slots
 * derived only from its endpoint: offset = h1 % M, skip = h2 % (M - 1) + 1,
 * slot j = (offset + j * skip) % M. M is prime, so every skip visits every
 * slot. Backends take turns claiming their next unclaimed preferred slot
 * until the table is full.
 *
 * Weights decide whose turn it is. The paper fills in plain rounds, one turn
 * per backend; we hand out turns with the Sainte-Laguë divisor method: the
 * next turn goes to the backend with the smallest (2 * claimed + 1) / weight.
 * With equal weights that is exactly the paper's round robin. With unequal
 * weights turns are spread evenly through the fill instead of in bursts, so a
 * light backend still gets its early preferences, and each backend ends
 * within about one slot of M * w / W:
 *
 *	|claimed - M * w / W| <= 1/2 + n/2 * w/W
 *
 * which is a relative error below W / (2 * M * w) + n / (2 * M).
 *
 * Nothing depends on the order of the backend array. Turns are ordered by
 * the key above and, on ties, by the endpoint itself, so a shuffled list
 * builds the same table in terms of endpoints, and removing a backend only
 * takes its turns out of the sequence: the other backends claim in the same
 * relative order as before, which is what keeps disruption minimal.
 *
 * The hashes have fixed seeds and read the endpoint byte by byte, so every
 * node, whatever its endianness, builds the same table from the same config.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "maglev.h"
#include "mix.h"

/* Arbitrary odd constants; changing them reshuffles every deployed table. */
#define SEED_OFFSET 0x6a09e667f3bcc909ull
#define SEED_SKIP 0xbb67ae8584caa73bull

/* Canonical bytes of an endpoint: what is hashed and what orders ties. */
#define EP_KEY_LEN 19

struct slot_picker {
	uint64_t next;      /* the next preferred slot to try */
	uint64_t skip;
	uint64_t claimed;   /* slots claimed so far */
	uint32_t weight;
	uint16_t index;     /* into the caller's array */
	uint8_t key[EP_KEY_LEN];
};

int xlb_is_prime(uint32_t n)
{
	if (n < 2)
		return 0;
	if (n < 4)
		return 1;
	if (n % 2 == 0 || n % 3 == 0)
		return 0;
	/* 64-bit square so i * i cannot wrap near UINT32_MAX. */
	for (uint64_t i = 5; i * i <= n; i += 6)
		if (n % i == 0 || n % (i + 2) == 0)
			return 0;
	return 1;
}

static void endpoint_key(const struct xlb_endpoint *ep, uint8_t key[EP_KEY_LEN])
{
	const uint8_t *port = (const uint8_t *)&ep->port;

	/* Family first so IPv4 and IPv6 backends sort apart; the port is in
	 * network order already, so its bytes are host independent. */
	key[0] = ep->family;
	memcpy(key + 1, ep->addr.b, 16);
	key[17] = port[0];
	key[18] = port[1];
}

/* Absorb the key 8 bytes at a time, little-endian by construction, mixing
 * the whole state after each word so every byte reaches every output bit. */
static uint64_t key_hash(const uint8_t key[EP_KEY_LEN], uint64_t seed)
{
	uint64_t h = xlb_mix64(seed ^ EP_KEY_LEN);

	for (unsigned int off = 0; off < EP_KEY_LEN; off += 8) {
		uint64_t w = 0;

		for (unsigned int i = 0; i < 8 && off + i < EP_KEY_LEN; i++)
			w |= (uint64_t)key[off + i] << (8 * i);
		h = xlb_mix64(h ^ w) + 0x9e3779b97f4a7c15ull;
	}
	return xlb_mix64(h);
}

/* 2 * claimed + 1 < 2^33 times a weight < 2^32 fits in 64 bits unless both
 * the table and the weights are absurdly large; be exact where we can. */
#ifdef __SIZEOF_INT128__
__extension__ typedef unsigned __int128 turn_key;
#else
typedef uint64_t turn_key;
#endif

/* Whose turn comes first: smaller (2 * claimed + 1) / weight, then the
 * smaller endpoint, then (duplicate endpoints only) weight and index. */
static bool turn_before(const struct slot_picker *a, const struct slot_picker *b)
{
	turn_key ka = (turn_key)(2 * a->claimed + 1) * b->weight;
	turn_key kb = (turn_key)(2 * b->claimed + 1) * a->weight;
	int c;

	if (ka != kb)
		return ka < kb;
	c = memcmp(a->key, b->key, EP_KEY_LEN);
	if (c)
		return c < 0;
	if (a->weight != b->weight)
		return a->weight > b->weight;
	return a->index < b->index;
}

/* A binary min-heap of pickers, ordered by turn_before. */
static void sift_down(struct slot_picker *heap, uint32_t n, uint32_t i)
{
	struct slot_picker moving = heap[i];

	for (;;) {
		uint32_t child = 2 * i + 1;

		if (child >= n)
			break;
		if (child + 1 < n && turn_before(&heap[child + 1], &heap[child]))
			child++;
		if (!turn_before(&heap[child], &moving))
			break;
		heap[i] = heap[child];
		i = child;
	}
	heap[i] = moving;
}

struct xlb_maglev *xlb_maglev_build(const struct xlb_maglev_backend *backends, uint32_t n,
				    uint32_t size)
{
	struct slot_picker *heap = NULL;
	struct xlb_maglev *m = NULL;
	uint32_t active = 0;
	int err;

	/* Indices must fit the table's uint16_t next to XLB_MAGLEV_NONE. */
	if (!xlb_is_prime(size) || size < n || n >= XLB_MAGLEV_NONE || (n && !backends)) {
		err = EINVAL;
		goto err;
	}

	m = malloc(sizeof(*m) + (size_t)size * sizeof(m->table[0]));
	if (!m) {
		err = ENOMEM;
		goto err;
	}
	m->size = size;
	for (uint32_t s = 0; s < size; s++)
		m->table[s] = XLB_MAGLEV_NONE;

	if (n) {
		heap = calloc(n, sizeof(*heap));
		if (!heap) {
			err = ENOMEM;
			goto err;
		}
	}
	for (uint32_t i = 0; i < n; i++) {
		struct slot_picker *p = &heap[active];

		if (!backends[i].weight)
			continue;
		endpoint_key(&backends[i].ep, p->key);
		p->next = key_hash(p->key, SEED_OFFSET) % size;
		/* size 2 leaves one possible skip, 1, which still visits both. */
		p->skip = key_hash(p->key, SEED_SKIP) % (size - 1) + 1;
		p->weight = backends[i].weight;
		p->index = (uint16_t)i;
		active++;
	}
	for (uint32_t i = active / 2; i-- > 0;)
		sift_down(heap, active, i);

	/* Each skip is coprime with the prime size, so a preference list is
	 * a full cycle and the walk always ends on a free slot. */
	for (uint32_t filled = 0; active && filled < size; filled++) {
		struct slot_picker *p = &heap[0];

		while (m->table[p->next] != XLB_MAGLEV_NONE) {
			p->next += p->skip;
			if (p->next >= size)
				p->next -= size;
		}
		m->table[p->next] = p->index;
		p->claimed++;
		sift_down(heap, active, 0);
	}

	free(heap);
	return m;

err:
	free(heap);
	free(m);
	errno = err;
	return NULL;
}

void xlb_maglev_free(struct xlb_maglev *m)
{
	free(m);
}
