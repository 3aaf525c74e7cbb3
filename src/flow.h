/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The flow table: connection tracking shared by all workers.
 *
 * One struct xlb_flow per connection, indexed under both its original
 * tuple and its reply tuple (after NAT), so a packet of either direction,
 * arriving on any queue, finds it with one lookup. The index is xlb's own
 * (flow.c): a fixed array of cache-line buckets of 7 slots, two candidate
 * buckets per tuple, a 32-bit tag per slot, so a lookup reads two bucket
 * lines and then the flow's, and a burst can prefetch all of them before
 * it needs them.
 *
 * RCU rules: workers are QSBR readers. Lookups, inserts and deletes run on
 * the read side; a deleted flow's memory is reused only after a grace
 * period, so a pointer got from a lookup stays valid until the caller's
 * next quiescent state. Counters in a flow are written without atomics
 * (see xlb_flow_account).
 */
#ifndef XLB_FLOW_H
#define XLB_FLOW_H

#include <stdbool.h>
#include <stdint.h>

#include <urcu-qsbr.h>

#include "config.h"
#include "packet.h"
#include "xlb/tuple.h"

enum xlb_dir { XLB_DIR_ORIG = 0, XLB_DIR_REPLY = 1 };

/* What a packet is to conntrack (the kernel's ctinfo). */
enum xlb_ctinfo {
	XLB_CTINFO_NEW,
	XLB_CTINFO_ESTABLISHED,
	XLB_CTINFO_RELATED,
	XLB_CTINFO_INVALID,
	XLB_CTINFO_UNTRACKED,
};

/* TCP states, in the kernel's order (enum tcp_conntrack). */
enum xlb_tcp_state {
	XLB_TCP_NONE,
	XLB_TCP_SYN_SENT,
	XLB_TCP_SYN_RECV,
	XLB_TCP_ESTABLISHED,
	XLB_TCP_FIN_WAIT,
	XLB_TCP_CLOSE_WAIT,
	XLB_TCP_LAST_ACK,
	XLB_TCP_TIME_WAIT,
	XLB_TCP_CLOSE,
	XLB_TCP_SYN_SENT2,
	XLB_TCP_MAX,
	XLB_TCP_IGNORE,
	XLB_TCP_INVALID,
};

/* status bits (as IPS_*) */
#define XLB_FLOW_SEEN_REPLY  (1u << 0)
#define XLB_FLOW_ASSURED     (1u << 1)
#define XLB_FLOW_DYING       (1u << 2)   /* removed from the table */
#define XLB_FLOW_DEAD        (1u << 3)   /* backend down, on_backend_down = drop */

struct xlb_flow_counter {
	uint64_t packets;
	uint64_t bytes;
};

/* Per-direction TCP window tracking state (as struct ip_ct_tcp_state). */
struct xlb_tcp_window {
	uint32_t td_end;
	uint32_t td_maxend;
	uint32_t td_maxwin;
	uint32_t td_maxack;
	uint8_t td_scale;
	uint8_t flags;
};

/*
 * Layout, for the packet path: the first cache line holds what every
 * packet reads and the tracker writes (timeout, status, TCP state, the
 * tracker's lock) and the original tuple, which ends on the line's last
 * byte; the reply tuple opens the second line, with the next-hop MAC
 * cache. A lookup's tuple compare therefore touches one line. Counters and
 * the TCP window follow.
 *
 * Entries live in the table's slab (flow.c), 64-byte aligned, and are
 * reused one grace period after they left the table: a pointer from a
 * lookup stays valid until the reader's next quiescent state, with no
 * reference count.
 */
struct xlb_flow {
	uint64_t expires;                  /* ns, CLOCK_MONOTONIC */
	uint32_t status;                   /* XLB_FLOW_* */
	uint16_t service_id;
	uint16_t backend_id;
	uint8_t tcp_state;                 /* enum xlb_tcp_state */
	uint8_t l4proto;
	uint8_t lock;                      /* TCP tracker spinlock: two queues, two directions */
	uint8_t retrans;
	uint8_t last_dir, last_index;      /* TCP tracker bookkeeping */
	uint8_t last_flags;                /* TCP tracker: simultaneous open, challenge ACK,
	                                    * an ignored SYN's options */
	uint8_t last_wscale;               /* an ignored SYN's window scale */
	struct xlb_tuple tuple[2];         /* orig, reply (after NAT) */
	uint32_t nh_gen[2];                /* route generation nh_mac[dir] was resolved at */
	uint8_t nh_mac[2][6];              /* next-hop MAC per direction */
	uint32_t mark;
	struct xlb_flow_counter counter[2];
	struct xlb_tcp_window win[2];      /* [dir]: what that side sent (tcp.c) */
	uint32_t last_seq, last_ack, last_end;
	uint16_t last_win;
	uint64_t created;                  /* ns, CLOCK_MONOTONIC (UDP stream detection) */
	uint64_t start;                    /* ns, CLOCK_REALTIME, for -o timestamp */
	uint32_t hash[2];                  /* xlb_ct_hash() of each tuple, for unhashing */
	uint32_t idx;                      /* slab index: the table's name for the flow */
	uint32_t free_next;                /* slab free and limbo lists (flow.c) */
	uint16_t nat_csum[2][2];           /* [dir]: the rewrite's checksum deltas, IPv4
	                                    * header and L4 (struct xlb_nat_delta, worker.c) */
} __attribute__((aligned(64)));

/* Per-worker statistics, the kernel's names (conntrack -S). Written by one
 * worker only; the control plane sums them. */
struct xlb_ct_stats {
	uint64_t found;
	uint64_t invalid;
	uint64_t insert;
	uint64_t insert_failed;
	uint64_t drop;
	uint64_t early_drop;
	uint64_t error;
	uint64_t search_restart;
	uint64_t clash_resolve;
	uint64_t chaintoolong;
} __attribute__((aligned(64)));

struct xlb_ct;

/*
 * Create a table bounded to `max` entries, timeouts and switches from conf.
 * The index has max(conf->buckets, max / 2 + 1) buckets of 7 slots, so a
 * full table fills 4 of 7 on average, and a pool of overflow buckets for
 * the rare full pair; it does not grow (a reload that raises max far
 * beyond it makes inserts fail with chaintoolong once the pool is used). Flow memory comes from
 * a slab that grows as needed. The hash seed is random. Returns NULL and
 * sets errno.
 */
struct xlb_ct *xlb_ct_create(const struct xlb_ct_conf *conf);

/* Apply new timeouts, tcp_loose, tcp_be_liberal and max (reload). */
void xlb_ct_set_conf(struct xlb_ct *ct, const struct xlb_ct_conf *conf);

/* Free every entry and the table. No reader may be using it; the caller
 * may be an online QSBR reader (it is taken offline while deferred frees
 * finish). */
void xlb_ct_destroy(struct xlb_ct *ct);

uint32_t xlb_ct_hash(const struct xlb_ct *ct, const struct xlb_tuple *t);

/*
 * Batching for the packet path: a worker hashes a whole burst, calls
 * xlb_ct_prefetch_buckets() for every packet, then xlb_ct_prefetch_flow()
 * for every packet (the buckets are in cache by then; this finds the
 * candidate flow by tag, prefetches its lines and returns it as a hint, 0
 * for none), then looks each packet up with xlb_ct_lookup_hint(). They
 * change nothing in the table and may be skipped.
 */
void xlb_ct_prefetch_buckets(const struct xlb_ct *ct, uint32_t hash);
uint64_t xlb_ct_prefetch_flow(const struct xlb_ct *ct, uint32_t hash);

/*
 * Find the flow with orig or reply tuple equal to *t (hash from
 * xlb_ct_hash). Expired entries never match, even before the collector has
 * removed them. Sets *dir to the direction of t. RCU read side.
 */
struct xlb_flow *xlb_ct_lookup(struct xlb_ct *ct, const struct xlb_tuple *t, uint32_t hash,
			       uint64_t now, enum xlb_dir *dir);

/*
 * xlb_ct_lookup() starting from the hint xlb_ct_prefetch_flow() returned
 * for the same hash, with no quiescent state in between: when the hinted
 * flow is the one, no bucket is searched again. Same result as
 * xlb_ct_lookup().
 */
struct xlb_flow *xlb_ct_lookup_hint(struct xlb_ct *ct, const struct xlb_tuple *t, uint32_t hash,
				    uint64_t now, enum xlb_dir *dir, uint64_t hint);

/*
 * Whether a packet with no entry may create one (TCP: a SYN, or with
 * tcp_loose any non-RST/FIN segment with ACK as the kernel's tcp_new(); UDP
 * and ICMP echo requests: yes).
 */
bool xlb_ct_may_create(const struct xlb_ct *ct, const struct xlb_pkt *p);

/*
 * Allocate a flow for orig/reply, not yet visible to lookups. Its state is
 * set from the first packet by xlb_ct_track() after insertion; until then
 * it lives for the protocol's first timeout from `now`. Returns NULL and
 * sets errno on allocation failure (the caller counts st->drop: there is
 * no st here).
 */
struct xlb_flow *xlb_ct_alloc(struct xlb_ct *ct, const struct xlb_tuple *orig,
			      const struct xlb_tuple *reply, uint64_t now);

/*
 * Publish f under both tuples. Returns the flow that now owns the original
 * tuple: f; or the winner of an insert race, in which case f is released
 * and st->clash_resolve counted (the kernel's DNS race: the loser adopts the
 * winner and its backend); or NULL when the flow cannot be inserted (reply
 * tuple owned by another flow: st->insert_failed; both buckets of a tuple
 * full of live entries: st->chaintoolong; table full and nothing could be
 * early-dropped: st->drop), f released. When the table is over
 * `max`, an entry that is not ASSURED near f's hash is evicted first
 * (st->early_drop). RCU read side.
 */
struct xlb_flow *xlb_ct_insert(struct xlb_ct *ct, struct xlb_flow *f, struct xlb_ct_stats *st);

/*
 * xlb_ct_insert() for a caller that already has xlb_ct_hash() of f's
 * original tuple (it looked the tuple up first): saves hashing it again.
 * orig_hash must be that hash; a wrong one files the node in the wrong
 * bucket, where lookups never find it.
 */
struct xlb_flow *xlb_ct_insert_hashed(struct xlb_ct *ct, struct xlb_flow *f, uint32_t orig_hash,
				      struct xlb_ct_stats *st);

/*
 * Remove f from the table and free it after a grace period. Any RCU reader
 * may call it; when several race, exactly one gets true.
 */
bool xlb_ct_delete(struct xlb_ct *ct, struct xlb_flow *f);

/*
 * Called once for every flow that leaves the table after it was fully
 * inserted, by the thread that deleted it (a worker, the collector, a
 * control client), before the flow's memory can be freed. It must not
 * block. Set it before workers start.
 */
typedef void (*xlb_ct_destroy_fn)(struct xlb_flow *f, void *arg);
void xlb_ct_set_destroy_hook(struct xlb_ct *ct, xlb_ct_destroy_fn fn, void *arg);

/*
 * Track a packet of an existing flow in direction dir: TCP state machine,
 * SEEN_REPLY/ASSURED, timeout. Returns the packet's ctinfo; INVALID packets
 * leave the flow unchanged and are to be dropped. For a packet that reopens
 * a closed TCP connection (SYN on TIME_WAIT/CLOSE) the flow is deleted and
 * XLB_CTINFO_NEW returned: the caller creates a fresh one.
 */
enum xlb_ctinfo xlb_ct_track(struct xlb_ct *ct, struct xlb_flow *f, enum xlb_dir dir,
			     const struct xlb_pkt *p, uint64_t now);

/* Add one packet of `bytes` (the IP datagram length) to f's counters for
 * dir. Plain stores: a direction is handled by one queue (RSS hashes a
 * 5-tuple to one queue), so concurrent updates of one counter are rare
 * enough that an occasional lost increment is the price of no atomics. */
static inline void xlb_flow_account(struct xlb_flow *f, enum xlb_dir dir, uint32_t bytes)
{
	f->counter[dir].packets++;
	f->counter[dir].bytes += bytes;
}

/* conntrack's use=: 1 while the table holds f, 0 once it is dying. */
static inline uint32_t xlb_flow_use(const struct xlb_flow *f)
{
	return !(__atomic_load_n(&f->status, __ATOMIC_RELAXED) & XLB_FLOW_DYING);
}

/* Seconds left before f expires (0 when expired). */
uint32_t xlb_flow_timeout_left(const struct xlb_flow *f, uint64_t now);

/*
 * Garbage collection slice: look at `budget` buckets from where the
 * previous slice stopped (wrapping to the first one after the last), delete
 * the expired flows found there, and hand flows deleted since the last
 * slice to RCU to be reused after a grace period. Returns how many were
 * deleted. Call from one thread only (the collector), online as an RCU
 * reader; it may go quiescent between calls. A slice costs what its
 * buckets cost, whatever the table holds.
 */
unsigned xlb_ct_gc(struct xlb_ct *ct, uint64_t now, unsigned budget);

/* What the collector did since the table was created (read from the
 * collector's thread, or accept slightly stale values). `passes` counts
 * slices that reached the end of the bucket array; `scanned` counts
 * slots in use looked at (a flow has two). */
struct xlb_ct_gc_stats {
	uint64_t slices;
	uint64_t scanned;
	uint64_t deleted;
	uint64_t passes;
};
void xlb_ct_gc_stats(const struct xlb_ct *ct, struct xlb_ct_gc_stats *out);

uint32_t xlb_ct_count(const struct xlb_ct *ct);
uint32_t xlb_ct_buckets(const struct xlb_ct *ct);   /* index buckets (7 slots each) */

/* The overflow pool: buckets chained to full ones, in use and in all.
 * When it is used up, inserts that find both their buckets full fail
 * (chaintoolong). */
void xlb_ct_overflow(const struct xlb_ct *ct, uint32_t *used, uint32_t *total);
uint32_t xlb_ct_max(const struct xlb_ct *ct);

/* Visit every live entry once. RCU read side for the whole walk; fn may call
 * xlb_ct_delete on the flow it is given. Stops early when fn returns nonzero
 * and returns that value. Entries past their timeout that the collector has
 * not removed yet are visited too (xlb_flow_timeout_left() says 0). */
typedef int (*xlb_ct_iter_fn)(struct xlb_flow *f, void *arg);
int xlb_ct_foreach(struct xlb_ct *ct, xlb_ct_iter_fn fn, void *arg);

const char *xlb_tcp_state_name(enum xlb_tcp_state s);   /* "ESTABLISHED", ... */

/* Monotonic and wall clocks in ns. */
uint64_t xlb_now_ns(void);

#endif
