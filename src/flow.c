/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The flow table: connection tracking on a liburcu cds_lfht (QSBR flavor).
 *
 * Every flow is hashed twice, node[ORIG] under its original tuple and
 * node[REPLY] under its reply tuple, in one table, with one key space: a
 * tuple belongs to at most one live flow in either direction, as in
 * nf_conntrack.
 *
 * Rules (RCU, references, who unhashes what):
 *
 *  - Workers, the collector and the control plane are QSBR readers. Every
 *    function here except create/destroy/set_conf runs on the read side; a
 *    flow pointer got from a lookup, an insert or an iteration is valid
 *    until the caller's next quiescent state.
 *
 *  - f->use counts references: 1 for the table from publication until
 *    xlb_ct_delete() unhashes the flow, 1 for an inserter while it is
 *    publishing, 1 for the collector while its cursor is parked on f
 *    between slices. Whoever drops the last one hands the memory to
 *    call_rcu(), so it is freed one grace period after the last unhash,
 *    never earlier: readers that found f before it left the table are done.
 *
 *  - DYING is set with one atomic fetch-or; only the caller that set it
 *    unhashes the flow, decrements the count and drops the table's
 *    reference. DYING flows never match a lookup.
 *
 *  - The reply node is added after the orig node, so a flow may be found
 *    (and deleted) before its reply node is in the table. The inserter
 *    marks REPLY_HASHED with a fetch-or after adding it; the deleter sets
 *    DYING with a fetch-or. Exactly one of the two sees the other's bit and
 *    removes the reply node: the deleter when REPLY_HASHED was already
 *    set, otherwise the inserter. The inserter's reference keeps the memory
 *    until it is done.
 *
 *  - The count is reserved before publishing (so a concurrent delete of a
 *    half-inserted flow decrements a count that was incremented) and
 *    touched only on insert and delete, never per packet.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "flow_internal.h"

_Static_assert(offsetof(struct xlb_flow, node) == 0,
	       "the direction of a hit is read from the node's address");
_Static_assert(sizeof(struct cds_lfht_node) * 2 <= 64,
	       "node[REPLY] must sit inside the first cache line");
_Static_assert(_Alignof(struct xlb_flow) == 64, "flows are cache-line aligned");

/* How many entries after a new flow's node an insert into a full table
 * looks at for one to evict: the kernel scans a few buckets from the new
 * entry's hash, this walks as far in the split-ordered list. */
#define EARLY_DROP_SCAN 64

/* How often an insert deletes an expired owner of its tuple and tries
 * again before giving up. */
#define INSERT_RETRIES 4

struct ct_key {
	const struct xlb_tuple *tuple;
	uint64_t now;
};

static inline struct xlb_flow *flow_of(struct cds_lfht_node *node, enum xlb_dir *dir)
{
	uintptr_t a = (uintptr_t)node;

	*dir = (a & 63) ? XLB_DIR_REPLY : XLB_DIR_ORIG;
	return (struct xlb_flow *)(a & ~(uintptr_t)63);
}

static inline bool flow_expired(const struct xlb_flow *f, uint64_t now)
{
	return __atomic_load_n(&f->expires, __ATOMIC_RELAXED) <= now;
}

static void flow_free_rcu(struct rcu_head *head)
{
	free(caa_container_of(head, struct xlb_flow, rcu));
}

static void flow_put(struct xlb_flow *f)
{
	if (__atomic_sub_fetch(&f->use, 1, __ATOMIC_ACQ_REL) == 0)
		call_rcu(&f->rcu, flow_free_rcu);
}

/* Take a reference unless the last one is gone (the flow is on its way to
 * call_rcu and must not be resurrected). */
static bool flow_get(struct xlb_flow *f)
{
	uint32_t use = __atomic_load_n(&f->use, __ATOMIC_RELAXED);

	while (use) {
		if (__atomic_compare_exchange_n(&f->use, &use, use + 1, true,
						__ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			return true;
	}
	return false;
}

/* --- hashing ---------------------------------------------------------- */

static inline uint64_t rotl64(uint64_t x, int b)
{
	return (x << b) | (x >> (64 - b));
}

static inline void sip_round(uint64_t *v0, uint64_t *v1, uint64_t *v2, uint64_t *v3)
{
	*v0 += *v1; *v1 = rotl64(*v1, 13); *v1 ^= *v0; *v0 = rotl64(*v0, 32);
	*v2 += *v3; *v3 = rotl64(*v3, 16); *v3 ^= *v2;
	*v0 += *v3; *v3 = rotl64(*v3, 21); *v3 ^= *v0;
	*v2 += *v1; *v1 = rotl64(*v1, 17); *v1 ^= *v2; *v2 = rotl64(*v2, 32);
}

/* SipHash-1-3 over n words (one round per word, three to finish, as the
 * kernel's hsiphash on 64-bit), keyed with the table's seed. The length
 * goes into the last block, so inputs of different lengths never share a
 * message. */
static inline uint32_t siphash13(const struct xlb_ct *ct, const uint64_t *m, size_t n)
{
	uint64_t v0 = ct->seed[0] ^ 0x736f6d6570736575ull;
	uint64_t v1 = ct->seed[1] ^ 0x646f72616e646f6dull;
	uint64_t v2 = ct->seed[0] ^ 0x6c7967656e657261ull;
	uint64_t v3 = ct->seed[1] ^ 0x7465646279746573ull;
	uint64_t last = (uint64_t)(n * 8) << 56;
	uint64_t h;
	size_t i;

	for (i = 0; i < n; i++) {
		v3 ^= m[i];
		sip_round(&v0, &v1, &v2, &v3);
		v0 ^= m[i];
	}
	v3 ^= last;
	sip_round(&v0, &v1, &v2, &v3);
	v0 ^= last;
	v2 ^= 0xff;
	sip_round(&v0, &v1, &v2, &v3);
	sip_round(&v0, &v1, &v2, &v3);
	sip_round(&v0, &v1, &v2, &v3);
	h = v0 ^ v1 ^ v2 ^ v3;
	return (uint32_t)(h ^ (h >> 32));
}

_Static_assert(offsetof(struct xlb_tuple, sport) == 32 && sizeof(struct xlb_tuple) == 40,
	       "the last tuple word holds ports, proto, family and zone");

/*
 * SipHash-1-3 keyed with a random seed: sources and ports are chosen by
 * whoever sends packets, so the bucket a tuple lands in must not be
 * predictable, or one sender could pile its flows into one chain.
 *
 * A tuple whose two addresses are IPv4-mapped (all IPv4 traffic) is hashed
 * as two words, both IPv4 addresses and the ports/proto/family/zone word,
 * instead of five: the three words left out are the same constant for
 * every such tuple, so the short message still determines the tuple (no
 * collisions a sender could exploit that the long one would not have),
 * the key is the same, and the length byte keeps short and long messages
 * apart. Three SipHash rounds fewer on every packet.
 */
uint32_t xlb_ct_hash(const struct xlb_ct *ct, const struct xlb_tuple *t)
{
	uint64_t m[sizeof(*t) / 8];

	if (xlb_addr_is_v4mapped(&t->src) && xlb_addr_is_v4mapped(&t->dst)) {
		m[0] = (uint64_t)t->src.w[3] << 32 | t->dst.w[3];
		memcpy(&m[1], &t->sport, 8);
		return siphash13(ct, m, 2);
	}
	memcpy(m, t, sizeof(m));
	return siphash13(ct, m, sizeof(m) / sizeof(m[0]));
}

/* --- match functions ---------------------------------------------------- */

/* Lookups: the tuple of the node's own direction, a flow neither dying nor
 * expired. */
static int match_live(struct cds_lfht_node *node, const void *arg)
{
	const struct ct_key *key = arg;
	enum xlb_dir dir;
	struct xlb_flow *f = flow_of(node, &dir);

	return xlb_tuple_eq(&f->tuple[dir], key->tuple) &&
	       !(flow_status(f) & XLB_FLOW_DYING) && !flow_expired(f, key->now);
}

/* Inserts: who owns the tuple, expired or not (an expired owner is
 * deleted by the inserter, which then tries again). */
static int match_owner(struct cds_lfht_node *node, const void *arg)
{
	enum xlb_dir dir;
	struct xlb_flow *f = flow_of(node, &dir);

	return xlb_tuple_eq(&f->tuple[dir], arg) && !(flow_status(f) & XLB_FLOW_DYING);
}

/* Finding one given node again: the collector's cursor, early drop. */
static int match_node(struct cds_lfht_node *node, const void *arg)
{
	return node == arg;
}

/* Position *it on f's node for dir; false when that node is no longer in
 * the table. */
static bool find_node(struct xlb_ct *ct, struct xlb_flow *f, enum xlb_dir dir,
		      struct cds_lfht_iter *it)
{
	cds_lfht_lookup(ct->ht, xlb_ct_hash(ct, &f->tuple[dir]), match_node,
			&f->node[dir], it);
	return cds_lfht_iter_get_node(it) != NULL;
}

/* --- table -------------------------------------------------------------- */

static unsigned long roundup_pow2(unsigned long n)
{
	unsigned long p = 1;

	while (p < n && p < (1ul << 30))
		p <<= 1;
	return p;
}

struct xlb_ct *xlb_ct_create(const struct xlb_ct_conf *conf)
{
	struct xlb_ct *ct;
	unsigned long buckets;
	int err;

	if (!conf || conf->max == 0) {
		errno = EINVAL;
		return NULL;
	}
	ct = aligned_alloc(64, sizeof(*ct));
	if (!ct) {
		errno = ENOMEM;
		return NULL;
	}
	memset(ct, 0, sizeof(*ct));

	if (getrandom(ct->seed, sizeof(ct->seed), 0) != (ssize_t)sizeof(ct->seed)) {
		err = errno ? errno : EIO;
		goto err;
	}
	xlb_ct_set_conf(ct, conf);

	/* The configured bucket count is also the floor: auto-resize grows
	 * the table with the number of entries but never shrinks it below
	 * what the operator asked for (the kernel's hashsize is fixed). */
	buckets = roundup_pow2(conf->buckets ? conf->buckets : 1);
	ct->ht = cds_lfht_new(buckets, buckets, 0,
			      CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING, NULL);
	if (!ct->ht) {
		err = ENOMEM;
		goto err;
	}
	return ct;
err:
	free(ct);
	errno = err;
	return NULL;
}

void xlb_ct_set_conf(struct xlb_ct *ct, const struct xlb_ct_conf *conf)
{
	int i;

	for (i = 0; i < XLB_TO_MAX; i++)
		__atomic_store_n(&ct->timeout_ns[i], (uint64_t)conf->timeout[i] * NSEC_PER_SEC,
				 __ATOMIC_RELAXED);
	__atomic_store_n(&ct->max, conf->max, __ATOMIC_RELAXED);
	__atomic_store_n(&ct->tcp_loose, conf->tcp_loose, __ATOMIC_RELAXED);
	__atomic_store_n(&ct->tcp_be_liberal, conf->tcp_be_liberal, __ATOMIC_RELAXED);
}

/*
 * No reader may use the table any more, so nodes are unhashed and flows
 * freed without grace periods. A flow is freed when the walk reaches the
 * second of its two nodes: the iterator has then moved past both, so it
 * never reads freed memory. Flows already deleted are in call_rcu's hands
 * (call rcu_barrier() to see them freed before checking for leaks).
 */
void xlb_ct_destroy(struct xlb_ct *ct)
{
	struct cds_lfht_iter it;
	struct cds_lfht_node *node;
	struct xlb_flow *f;
	enum xlb_dir dir;
	bool online;

	if (!ct)
		return;
	if (ct->gc_cursor) {
		f = ct->gc_cursor;
		ct->gc_cursor = NULL;
		if (__atomic_sub_fetch(&f->use, 1, __ATOMIC_ACQ_REL) == 0)
			free(f);
	}
	cds_lfht_for_each(ct->ht, &it, node) {
		f = flow_of(node, &dir);
		cds_lfht_del(ct->ht, node);
		if (f->status & XLB_FLOW_REPLY_HASHED) {
			f->status &= ~XLB_FLOW_REPLY_HASHED;   /* the other node is still ahead */
			continue;
		}
		free(f);
	}

	/* The resize worker waits for grace periods: a QSBR thread that stays
	 * online while waiting for it would never let one end. */
	online = rcu_read_ongoing();
	if (online)
		rcu_thread_offline();
	cds_lfht_destroy(ct->ht, NULL);
	if (online)
		rcu_thread_online();
	free(ct);
}

uint32_t xlb_ct_count(const struct xlb_ct *ct)
{
	return __atomic_load_n(&ct->count, __ATOMIC_RELAXED);
}

uint32_t xlb_ct_max(const struct xlb_ct *ct)
{
	return __atomic_load_n(&ct->max, __ATOMIC_RELAXED);
}

uint64_t xlb_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

uint32_t xlb_flow_timeout_left(const struct xlb_flow *f, uint64_t now)
{
	uint64_t expires = __atomic_load_n(&f->expires, __ATOMIC_RELAXED);
	uint64_t left;

	if (expires <= now)
		return 0;
	left = (expires - now) / NSEC_PER_SEC;
	return left > UINT32_MAX ? UINT32_MAX : (uint32_t)left;
}

/* --- lookup, insert, delete ------------------------------------------- */

struct xlb_flow *xlb_ct_lookup(struct xlb_ct *ct, const struct xlb_tuple *t, uint32_t hash,
			       uint64_t now, enum xlb_dir *dir)
{
	struct ct_key key = { .tuple = t, .now = now };
	struct cds_lfht_iter it;
	struct cds_lfht_node *node;

	cds_lfht_lookup(ct->ht, hash, match_live, &key, &it);
	node = cds_lfht_iter_get_node(&it);
	if (!node)
		return NULL;
	return flow_of(node, dir);
}

struct xlb_flow *xlb_ct_alloc(struct xlb_ct *ct, const struct xlb_tuple *orig,
			      const struct xlb_tuple *reply, uint64_t now)
{
	struct xlb_flow *f;
	struct timespec ts;

	f = aligned_alloc(64, sizeof(*f));
	if (!f) {
		errno = ENOMEM;
		return NULL;
	}
	memset(f, 0, sizeof(*f));
	cds_lfht_node_init(&f->node[XLB_DIR_ORIG]);
	cds_lfht_node_init(&f->node[XLB_DIR_REPLY]);
	f->tuple[XLB_DIR_ORIG] = *orig;
	f->tuple[XLB_DIR_REPLY] = *reply;
	f->l4proto = orig->proto;
	f->tcp_state = XLB_TCP_NONE;
	f->created = now;
	/* Alive until xlb_ct_track() sets the timeout of its first state, so
	 * a racing insert of the same tuple adopts it instead of deleting it. */
	f->expires = now + xlb_ct_initial_timeout(ct, orig->proto);
	clock_gettime(CLOCK_REALTIME, &ts);
	f->start = (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
	return f;
}

bool xlb_ct_delete(struct xlb_ct *ct, struct xlb_flow *f)
{
	uint32_t old = __atomic_fetch_or(&f->status, XLB_FLOW_DYING, __ATOMIC_ACQ_REL);

	if (old & XLB_FLOW_DYING)
		return false;
	cds_lfht_del(ct->ht, &f->node[XLB_DIR_ORIG]);
	if (old & XLB_FLOW_REPLY_HASHED)
		cds_lfht_del(ct->ht, &f->node[XLB_DIR_REPLY]);
	__atomic_sub_fetch(&ct->count, 1, __ATOMIC_RELAXED);
	/* Only a flow that was fully published was ever seen as a
	 * connection (counted, announced): only it is reported gone. */
	if ((old & XLB_FLOW_REPLY_HASHED) && ct->on_destroy)
		ct->on_destroy(f, ct->on_destroy_arg);
	flow_put(f);   /* the table's reference */
	return true;
}

void xlb_ct_set_destroy_hook(struct xlb_ct *ct, xlb_ct_destroy_fn fn, void *arg)
{
	ct->on_destroy_arg = arg;
	ct->on_destroy = fn;
}

/*
 * Make room for f in a table over its limit: walk forward from f's node for
 * an entry that is expired (any) or not ASSURED, and delete it. Returns
 * whether one was removed. f's `created` is the insert's notion of now.
 */
static bool early_drop(struct xlb_ct *ct, struct xlb_flow *f, struct xlb_ct_stats *st)
{
	struct cds_lfht_iter it;
	struct cds_lfht_node *node;
	struct xlb_flow *victim;
	enum xlb_dir dir;
	bool wrapped = false;
	int i;

	if (!find_node(ct, f, XLB_DIR_ORIG, &it))
		return true;   /* f itself was deleted meanwhile: nothing to make room for */

	for (i = 0; i < EARLY_DROP_SCAN; i++) {
		cds_lfht_next(ct->ht, &it);
		node = cds_lfht_iter_get_node(&it);
		if (!node) {
			if (wrapped)
				break;
			wrapped = true;
			cds_lfht_first(ct->ht, &it);
			node = cds_lfht_iter_get_node(&it);
			if (!node)
				break;
		}
		victim = flow_of(node, &dir);
		if (victim == f)
			continue;
		if (flow_expired(victim, f->created)) {
			if (xlb_ct_delete(ct, victim))
				return true;
			continue;
		}
		if (flow_status(victim) & (XLB_FLOW_ASSURED | XLB_FLOW_DYING))
			continue;
		if (xlb_ct_delete(ct, victim)) {
			st->early_drop++;
			return true;
		}
	}
	return false;
}

/*
 * Add one node with add_unique. Returns NULL when our node went in, or the
 * node that owns the tuple. An expired owner is deleted and the add tried
 * again, a few times.
 */
static struct cds_lfht_node *add_node(struct xlb_ct *ct, struct xlb_flow *f, enum xlb_dir dir,
				      uint32_t hash)
{
	struct cds_lfht_node *got;
	struct xlb_flow *owner;
	enum xlb_dir odir;
	int tries;

	for (tries = 0;; tries++) {
		got = cds_lfht_add_unique(ct->ht, hash, match_owner, &f->tuple[dir], &f->node[dir]);
		if (got == &f->node[dir])
			return NULL;
		owner = flow_of(got, &odir);
		if (owner == f || tries >= INSERT_RETRIES || !flow_expired(owner, f->created))
			return got;
		xlb_ct_delete(ct, owner);
	}
}

struct xlb_flow *xlb_ct_insert(struct xlb_ct *ct, struct xlb_flow *f, struct xlb_ct_stats *st)
{
	return xlb_ct_insert_hashed(ct, f, xlb_ct_hash(ct, &f->tuple[XLB_DIR_ORIG]), st);
}

struct xlb_flow *xlb_ct_insert_hashed(struct xlb_ct *ct, struct xlb_flow *f, uint32_t orig_hash,
				      struct xlb_ct_stats *st)
{
	struct xlb_ct_stats scratch;
	struct cds_lfht_node *owner;
	struct xlb_flow *winner;
	enum xlb_dir dir;
	uint32_t old;

	if (!st)
		st = &scratch;

	/* The table's reference and ours; f is not visible yet. */
	f->use = 2;
	__atomic_add_fetch(&ct->count, 1, __ATOMIC_RELAXED);

	owner = add_node(ct, f, XLB_DIR_ORIG, orig_hash);
	if (owner) {
		uint64_t now = f->created;

		/* f was never visible: free it now, no grace period needed. */
		__atomic_sub_fetch(&ct->count, 1, __ATOMIC_RELAXED);
		free(f);
		winner = flow_of(owner, &dir);
		if (dir == XLB_DIR_ORIG && !flow_expired(winner, now)) {
			/* Another worker created the same connection first: its
			 * backend choice stands, the packet joins its flow. */
			st->clash_resolve++;
			return winner;
		}
		/* Our orig tuple is the reply tuple of another connection, or
		 * an expired owner would not go away: not ours to adopt. */
		st->insert_failed++;
		return NULL;
	}

	owner = add_node(ct, f, XLB_DIR_REPLY, xlb_ct_hash(ct, &f->tuple[XLB_DIR_REPLY]));
	if (owner) {
		/* The reply tuple (after NAT) belongs to another connection.
		 * f was visible for a moment: unpublish it the normal way. */
		xlb_ct_delete(ct, f);
		flow_put(f);
		st->insert_failed++;
		return NULL;
	}

	old = __atomic_fetch_or(&f->status, XLB_FLOW_REPLY_HASHED, __ATOMIC_ACQ_REL);
	if (old & XLB_FLOW_DYING) {
		/* Deleted (a flush, say) between our two adds; the deleter did
		 * not know about the reply node. The packet may still use f
		 * until the next quiescent state. */
		cds_lfht_del(ct->ht, &f->node[XLB_DIR_REPLY]);
		flow_put(f);
		st->insert++;
		return f;
	}

	if (xlb_ct_count(ct) > xlb_ct_max(ct) && !early_drop(ct, f, st)) {
		/* Full of ASSURED connections: the new one loses, as in the
		 * kernel, where established traffic outranks new attempts. */
		xlb_ct_delete(ct, f);
		flow_put(f);
		st->drop++;
		return NULL;
	}
	flow_put(f);
	st->insert++;
	return f;
}

/* --- walks ------------------------------------------------------------ */

int xlb_ct_foreach(struct xlb_ct *ct, xlb_ct_iter_fn fn, void *arg)
{
	struct cds_lfht_iter it;
	struct cds_lfht_node *node;
	struct xlb_flow *f;
	enum xlb_dir dir;
	int ret;

	/* Deleting the current node is allowed by cds_lfht during a walk;
	 * the walk continues from the successor it already read, and the
	 * flow's memory lasts until the caller's next quiescent state. */
	cds_lfht_for_each(ct->ht, &it, node) {
		f = flow_of(node, &dir);
		if (dir != XLB_DIR_ORIG || (flow_status(f) & XLB_FLOW_DYING))
			continue;
		ret = fn(f, arg);
		if (ret)
			return ret;
	}
	return 0;
}

/* Put the collector back where it stopped. The reference it held kept
 * the cursor flow's memory; whether the node is still in the table only a
 * lookup of that very node can tell (a removed node's successor pointer
 * may lead to memory freed since). */
static bool gc_resume(struct xlb_ct *ct, struct cds_lfht_iter *it)
{
	struct xlb_flow *f = ct->gc_cursor;
	bool found;

	if (!f)
		return false;
	ct->gc_cursor = NULL;
	found = find_node(ct, f, ct->gc_cursor_dir, it);
	flow_put(f);   /* if that was the last reference, call_rcu waits for us */
	if (!found)
		ct->gc.restarts++;
	return found;
}

/* Hold the next entry to visit so a quiescent state cannot free it. */
static void gc_park(struct xlb_ct *ct, struct cds_lfht_iter *it)
{
	struct cds_lfht_node *node;
	struct xlb_flow *f;
	enum xlb_dir dir;

	for (; (node = cds_lfht_iter_get_node(it)); cds_lfht_next(ct->ht, it)) {
		f = flow_of(node, &dir);
		if (flow_get(f)) {
			ct->gc_cursor = f;
			ct->gc_cursor_dir = dir;
			return;
		}
	}
	/* End of the table: the next slice starts from the beginning. */
}

unsigned xlb_ct_gc(struct xlb_ct *ct, uint64_t now, unsigned budget)
{
	struct cds_lfht_iter it;
	struct cds_lfht_node *node;
	struct xlb_flow *f;
	enum xlb_dir dir;
	unsigned n, deleted = 0;

	ct->gc.slices++;
	if (!gc_resume(ct, &it))
		cds_lfht_first(ct->ht, &it);
	for (n = 0; n < budget && (node = cds_lfht_iter_get_node(&it)); n++) {
		f = flow_of(node, &dir);
		if (flow_expired(f, now) && xlb_ct_delete(ct, f))
			deleted++;
		cds_lfht_next(ct->ht, &it);
	}
	ct->gc.scanned += n;
	ct->gc.deleted += deleted;
	gc_park(ct, &it);
	return deleted;
}

void xlb_ct_gc_stats(const struct xlb_ct *ct, struct xlb_ct_gc_stats *out)
{
	*out = ct->gc;
}
