/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What flow.c and tcp.c share and nobody else needs: the table struct and
 * the flow's private status bit and lock.
 */
#ifndef XLB_FLOW_INTERNAL_H
#define XLB_FLOW_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <urcu/arch.h>

#include "flow.h"

/* The reply node is in the table. Set by the inserter with the same atomic
 * read-modify-write as DYING is set by the deleter, so exactly one of them
 * sees the other's bit and removes the reply node (see xlb_ct_insert). */
#define XLB_FLOW_REPLY_HASHED (1u << 31)

#define NSEC_PER_SEC 1000000000ull

struct xlb_ct {
	struct cds_lfht *ht;
	uint64_t seed[2];                  /* SipHash key, from getrandom() */

	/* Settings a reload may change while workers read them: each one
	 * read and written with relaxed atomics. */
	uint64_t timeout_ns[XLB_TO_MAX];
	uint32_t max;
	xlb_ct_destroy_fn on_destroy;
	void *on_destroy_arg;
	bool tcp_loose;
	bool tcp_be_liberal;

	/* Touched by every insert and delete on any worker: alone on its
	 * line so lookups do not share it. */
	uint32_t count __attribute__((aligned(64)));

	/* The collector's own state (one thread). */
	struct xlb_flow *gc_cursor __attribute__((aligned(64)));
	enum xlb_dir gc_cursor_dir;
	struct xlb_ct_gc_stats gc;
};

static inline uint64_t ct_timeout(const struct xlb_ct *ct, enum xlb_timeout t)
{
	return __atomic_load_n(&ct->timeout_ns[t], __ATOMIC_RELAXED);
}

static inline uint32_t flow_status(const struct xlb_flow *f)
{
	return __atomic_load_n(&f->status, __ATOMIC_ACQUIRE);
}

static inline void flow_set_status(struct xlb_flow *f, uint32_t bits)
{
	/* Read first: a bit is set once and read on every packet, so do not
	 * dirty the line when it is already there. */
	if ((flow_status(f) & bits) != bits)
		__atomic_fetch_or(&f->status, bits, __ATOMIC_ACQ_REL);
}

static inline void flow_set_expires(struct xlb_flow *f, uint64_t expires)
{
	__atomic_store_n(&f->expires, expires, __ATOMIC_RELAXED);
}

/* The per-flow spinlock: two workers may track the two directions of one
 * connection at once. Held for a few dozen instructions, never across a
 * call that can block or go quiescent. */
static inline void flow_lock(struct xlb_flow *f)
{
	while (__atomic_test_and_set(&f->lock, __ATOMIC_ACQUIRE)) {
		while (__atomic_load_n(&f->lock, __ATOMIC_RELAXED))
			caa_cpu_relax();
	}
}

static inline void flow_unlock(struct xlb_flow *f)
{
	__atomic_clear(&f->lock, __ATOMIC_RELEASE);
}

/* Timeout for a flow that has not been tracked yet (tcp.c). */
uint64_t xlb_ct_initial_timeout(const struct xlb_ct *ct, uint8_t l4proto);

#endif
