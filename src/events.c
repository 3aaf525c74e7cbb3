// SPDX-License-Identifier: GPL-2.0-or-later
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "events.h"

#define RING_SIZE 4096u             /* events per producer thread */
#define MAX_RINGS 256

struct slot {
	uint64_t seq;                   /* 2*pos+1 while written, 2*pos+2 once done */
	struct xlb_ct_event_rec rec;
};

struct ring {
	uint64_t head __attribute__((aligned(64)));   /* next position to write */
	struct slot slots[RING_SIZE];
};

struct xlb_events_reader {
	uint64_t tail[MAX_RINGS];
};

int xlb_events_listeners;

static struct ring *rings[MAX_RINGS];
static unsigned n_rings;
static __thread struct ring *my_ring;
static __thread bool no_ring;

static struct ring *claim_ring(void)
{
	struct ring *r;
	unsigned i;

	if (no_ring)
		return NULL;
	r = aligned_alloc(64, sizeof(*r));
	if (!r)
		goto full;
	memset(r, 0, sizeof(*r));
	i = __atomic_fetch_add(&n_rings, 1, __ATOMIC_ACQ_REL);
	if (i >= MAX_RINGS) {
		free(r);
		goto full;
	}
	__atomic_store_n(&rings[i], r, __ATOMIC_RELEASE);
	my_ring = r;
	return r;
full:
	no_ring = true;     /* this thread's events are not recorded */
	return NULL;
}

void xlb_events_emit(enum xlb_ct_event type, const struct xlb_flow *f)
{
	struct ring *r = my_ring ? my_ring : claim_ring();
	struct timespec mono, real;
	struct slot *s;
	uint64_t pos;

	if (!r)
		return;
	clock_gettime(CLOCK_MONOTONIC, &mono);
	clock_gettime(CLOCK_REALTIME, &real);
	pos = r->head;
	s = &r->slots[pos & (RING_SIZE - 1)];
	__atomic_store_n(&s->seq, 2 * pos + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	xlb_ct_event_fill(&s->rec, type, f, (uint64_t)mono.tv_sec * 1000000000ull + mono.tv_nsec,
			  (uint64_t)real.tv_sec * 1000000000ull + real.tv_nsec,
			  (uint32_t)((uintptr_t)f >> 6));
	__atomic_store_n(&s->seq, 2 * pos + 2, __ATOMIC_RELEASE);
	__atomic_store_n(&r->head, pos + 1, __ATOMIC_RELEASE);
}

struct xlb_events_reader *xlb_events_reader_new(void)
{
	struct xlb_events_reader *rd = calloc(1, sizeof(*rd));

	if (!rd)
		return NULL;
	/* Start at the present: only events from now on. */
	for (unsigned i = 0; i < MAX_RINGS; i++) {
		struct ring *r = __atomic_load_n(&rings[i], __ATOMIC_ACQUIRE);

		if (r)
			rd->tail[i] = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
	}
	__atomic_fetch_add(&xlb_events_listeners, 1, __ATOMIC_RELAXED);
	return rd;
}

void xlb_events_reader_free(struct xlb_events_reader *rd)
{
	if (!rd)
		return;
	__atomic_fetch_sub(&xlb_events_listeners, 1, __ATOMIC_RELAXED);
	free(rd);
}

unsigned xlb_events_read(struct xlb_events_reader *rd, struct xlb_ct_event_rec *out, unsigned n,
			 uint64_t *lost)
{
	unsigned got = 0;

	for (unsigned i = 0; i < MAX_RINGS && got < n; i++) {
		struct ring *r = __atomic_load_n(&rings[i], __ATOMIC_ACQUIRE);
		uint64_t head;

		if (!r)
			continue;
		head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
		if (head - rd->tail[i] > RING_SIZE) {
			*lost += head - rd->tail[i] - RING_SIZE;
			rd->tail[i] = head - RING_SIZE;
		}
		while (rd->tail[i] != head && got < n) {
			uint64_t pos = rd->tail[i]++;
			struct slot *s = &r->slots[pos & (RING_SIZE - 1)];
			uint64_t seq = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);

			if (seq != 2 * pos + 2) {
				(*lost)++;      /* overwritten while we looked */
				continue;
			}
			memcpy(&out[got], &s->rec, sizeof(out[got]));
			__atomic_thread_fence(__ATOMIC_ACQUIRE);
			if (__atomic_load_n(&s->seq, __ATOMIC_RELAXED) != seq) {
				(*lost)++;
				continue;
			}
			got++;
		}
	}
	return got;
}

void xlb_events_free_all(void)
{
	for (unsigned i = 0; i < MAX_RINGS; i++) {
		free(rings[i]);
		rings[i] = NULL;
	}
	n_rings = 0;
}
