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

/* A bucket of the index: one cache line, 7 slots and the index of an
 * overflow bucket (0: none). A slot is 0 (empty) or tag << 32 | ref, where
 * tag is the tuple's hash and ref = idx << 1 | dir names a flow of the
 * slab and which of its tuples the slot indexes. */
#define CT_SLOTS 7
struct ct_bucket {
	uint64_t slot[CT_SLOTS];
	uint32_t next;                     /* overflow bucket, from the pool */
	uint8_t lock;                      /* inserts lock a tuple's two buckets: on the
	                                    * line they write anyway, no extra miss */
	uint8_t pad[3];
} __attribute__((aligned(64)));

/* The slab: flows in chunks of CT_CHUNK_FLOWS (2 MiB, one huge page where
 * the kernel gives one), named by a 32-bit index. Index 0 is never used,
 * so a ref is never 0. */
#define CT_CHUNK_SHIFT 13
#define CT_CHUNK_FLOWS (1u << CT_CHUNK_SHIFT)
#define CT_MAX_CHUNKS ((1u << 27) >> CT_CHUNK_SHIFT)   /* 128M flows */

struct xlb_ct {
	/* Read by every lookup, written only at create/destroy. */
	struct ct_bucket *buckets;         /* [nbuckets + npool] */
	uint32_t nbuckets;                 /* hashed to */
	uint32_t npool;                    /* overflow buckets after them */
	uint64_t seed[2];                  /* SipHash key, from getrandom() */
	struct xlb_flow **chunks;          /* [CT_MAX_CHUNKS], filled as the slab grows */

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
	uint32_t pool_used;                /* overflow buckets handed out */

	/* The slab's allocator, under one spinlock (per new and per deleted
	 * connection, never per packet): a free list, the next never-used
	 * index, and the limbo list of flows deleted but perhaps still read
	 * by a reader, handed to call_rcu in batches. */
	uint8_t slab_lock __attribute__((aligned(64)));
	uint32_t free_head;
	uint32_t nchunks;
	uint32_t next_unused;
	uint32_t limbo_head, limbo_tail;
	uint32_t limbo_n;

	/* The collector's own state (one thread). */
	uint32_t gc_cursor __attribute__((aligned(64)));   /* next bucket */
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

static inline void spin_lock(uint8_t *l)
{
	while (__atomic_test_and_set(l, __ATOMIC_ACQUIRE)) {
		while (__atomic_load_n(l, __ATOMIC_RELAXED))
			caa_cpu_relax();
	}
}

static inline void spin_unlock(uint8_t *l)
{
	__atomic_clear(l, __ATOMIC_RELEASE);
}

/* The per-flow spinlock: two workers may track the two directions of one
 * connection at once. Held for a few dozen instructions, never across a
 * call that can block or go quiescent. */
static inline void flow_lock(struct xlb_flow *f)
{
	spin_lock(&f->lock);
}

static inline void flow_unlock(struct xlb_flow *f)
{
	spin_unlock(&f->lock);
}

/* Timeout for a flow that has not been tracked yet (tcp.c). */
uint64_t xlb_ct_initial_timeout(const struct xlb_ct *ct, uint8_t l4proto);

#endif
