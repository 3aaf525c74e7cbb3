/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The flow table: connection tracking with xlb's own index.
 *
 * Index: a fixed array of buckets, one cache line of 7 slots and an
 * overflow link each. A tuple hashes (SipHash, random key) to 32 bits that
 * pick two candidate buckets and serve as the slot's tag; a flow has one
 * slot for its original tuple and one for its reply tuple. An insert goes
 * to the emptier of the two buckets ("two choices": with a full table
 * using 4 of 7 slots on average, both candidates are rarely full, and then
 * an overflow bucket from a pool is chained), so a lookup reads two bucket
 * lines, whose addresses it knows from the hash alone (a burst prefetches
 * them all), then the one flow whose tag matches.
 *
 * Flows live in a slab of 2 MiB chunks (huge pages where available: a
 * million flows span 128 pages instead of 65536), named by a 32-bit index.
 *
 * Rules (RCU, who writes what):
 *
 *  - Workers, the collector and the control plane are QSBR readers. Every
 *    function here except create/destroy/set_conf runs on the read side; a
 *    flow pointer got from a lookup, an insert or an iteration is valid
 *    until the caller's next quiescent state.
 *
 *  - Readers take no lock: a slot is one 64-bit word, stored with release
 *    after the flow is written and loaded with acquire.
 *
 *  - An insert locks the tuple's two buckets (a byte lock in each, taken in
 *    bucket order) to check that no live flow owns the tuple and to take
 *    an empty slot: two inserts of one tuple serialise there, so a tuple
 *    belongs to at most one live flow, as in nf_conntrack. Slots go from
 *    empty to full only under the bucket's lock; from full to empty only
 *    by the flow's one deleter (below), with no lock.
 *
 *  - DYING is set with one atomic fetch-or; only the caller that set it
 *    empties the flow's slots, decrements the count and hands the flow to
 *    the limbo list. DYING flows never match a lookup.
 *
 *  - The reply slot is added after the orig slot, so a flow may be found
 *    (and deleted) before its reply slot is in. The inserter marks
 *    REPLY_HASHED with a fetch-or after adding it; the deleter sets DYING
 *    with a fetch-or. Exactly one of the two sees the other's bit and
 *    empties the reply slot: the deleter when REPLY_HASHED was already set,
 *    otherwise the inserter, before its next quiescent state.
 *
 *  - A deleted flow waits on the limbo list; the collector (and an
 *    allocation that finds the free list empty) hands the list to
 *    call_rcu, and after a grace period its flows join the free list. No
 *    reader that could have found a flow is still running when its memory
 *    is reused, so there is no reference count.
 *
 *  - The count is reserved before publishing (so a concurrent delete of a
 *    half-inserted flow decrements a count that was incremented) and
 *    touched only on insert and delete, never per packet.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>

/* The vector reads of a bucket are plain loads racing with atomic stores
 * (harmless on x86, where aligned 8-byte halves are never torn, and only
 * a filter anyway), which ThreadSanitizer rightly reports: its builds
 * take the scalar atomic path. */
#if defined(__SSE2__) && !defined(__SANITIZE_THREAD__)
#define CT_SIMD 1
#include <emmintrin.h>
#endif

#include "flow_internal.h"

_Static_assert(sizeof(struct xlb_flow) == 256, "a flow is four cache lines");
_Static_assert(offsetof(struct xlb_flow, tuple[1]) == 64,
	       "the original tuple ends the first line, the reply tuple opens the second");
_Static_assert(sizeof(struct ct_bucket) == 64, "a bucket is one cache line");

/* How far from a new flow's first bucket an insert into a full table looks
 * for an entry to evict: the kernel scans a few chains from the new
 * entry's hash; this looks at up to 64 slots in use, in at most 1024
 * buckets (a table with many more buckets than flows is sparse). */
#define EARLY_DROP_SLOTS 64
#define EARLY_DROP_BUCKETS 1024

/* How often an insert deletes an expired owner of its tuple (or expired
 * flows crowding both its buckets) and tries again before giving up. */
#define INSERT_RETRIES 4

/* Deleted flows an allocation lets pile up in limbo before it hands them
 * to call_rcu itself (the collector does it every slice anyway). */
#define LIMBO_BATCH 64

#define CHUNK_BYTES ((size_t)CT_CHUNK_FLOWS * sizeof(struct xlb_flow))

#define likely(x) __builtin_expect(!!(x), 1)

static inline struct xlb_flow *flow_at(const struct xlb_ct *ct, uint32_t idx)
{
	return &ct->chunks[idx >> CT_CHUNK_SHIFT][idx & (CT_CHUNK_FLOWS - 1)];
}

static inline bool flow_expired(const struct xlb_flow *f, uint64_t now)
{
	return __atomic_load_n(&f->expires, __ATOMIC_RELAXED) <= now;
}

/* --- buckets and slots -------------------------------------------------- */

/* The two candidate buckets of a hash: the hash's high bits scaled to the
 * bucket count (no power of two needed), and the same of the hash times an
 * odd constant; never the same bucket twice. */
static inline uint32_t bucket1(const struct xlb_ct *ct, uint32_t h)
{
	return (uint32_t)(((uint64_t)h * ct->nbuckets) >> 32);
}

static inline uint32_t bucket2(const struct xlb_ct *ct, uint32_t h)
{
	uint32_t b1 = bucket1(ct, h);
	uint32_t b = (uint32_t)(((uint64_t)(h * 0x9e3779b1u) * ct->nbuckets) >> 32);

	if (b != b1)
		return b;
	return b1 + 1 == ct->nbuckets ? 0 : b1 + 1;
}

static inline uint64_t slot_of(uint32_t hash, uint32_t idx, enum xlb_dir dir)
{
	return (uint64_t)hash << 32 | idx << 1 | dir;
}

static inline uint64_t slot_load(const struct ct_bucket *b, int i)
{
	return __atomic_load_n(&b->slot[i], __ATOMIC_ACQUIRE);
}

static inline struct xlb_flow *slot_flow(const struct xlb_ct *ct, uint64_t v, enum xlb_dir *dir)
{
	*dir = (enum xlb_dir)(v & 1);
	return flow_at(ct, (uint32_t)v >> 1);
}

/*
 * Bit i set when slot i's tag may be `hash`: a filter only, each candidate
 * slot is loaded again (atomically) and checked, so a vector load torn by
 * a concurrent store cannot mislead. With SSE2 (every x86-64): the slots'
 * high halves gathered from four loads and compared at once, a dozen
 * instructions for the whole line instead of a branch per slot.
 */
static inline unsigned bucket_tags(const struct ct_bucket *b, uint32_t hash)
{
#ifdef CT_SIMD
	const __m128 *q = (const __m128 *)b->slot;
	const __m128i k = _mm_set1_epi32((int)hash);
	__m128i lo = _mm_castps_si128(_mm_shuffle_ps(q[0], q[1], _MM_SHUFFLE(3, 1, 3, 1)));
	__m128i hi = _mm_castps_si128(_mm_shuffle_ps(q[2], q[3], _MM_SHUFFLE(3, 1, 3, 1)));
	unsigned m = (unsigned)_mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(lo, k))) |
		     (unsigned)_mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(hi, k))) << 4;

	return m & ((1u << CT_SLOTS) - 1);   /* the 8th lane is `next`/`pad` */
#else
	unsigned m = 0;

	for (int i = 0; i < CT_SLOTS; i++)
		m |= (unsigned)((uint32_t)(__atomic_load_n(&b->slot[i], __ATOMIC_RELAXED) >> 32) ==
				hash) << i;
	return m;
#endif
}

/* Bit i set when slot i is empty, read as bucket_tags() reads tags: a
 * filter, confirmed under the bucket's lock by the caller's store. */
static inline unsigned bucket_empty(const struct ct_bucket *b)
{
#ifdef CT_SIMD
	const __m128 *q = (const __m128 *)b->slot;
	const __m128i z = _mm_setzero_si128();
	__m128 e0 = _mm_castsi128_ps(_mm_cmpeq_epi32(_mm_castps_si128(q[0]), z));
	__m128 e1 = _mm_castsi128_ps(_mm_cmpeq_epi32(_mm_castps_si128(q[1]), z));
	__m128 e2 = _mm_castsi128_ps(_mm_cmpeq_epi32(_mm_castps_si128(q[2]), z));
	__m128 e3 = _mm_castsi128_ps(_mm_cmpeq_epi32(_mm_castps_si128(q[3]), z));
	/* A slot is empty when both its halves are zero. */
	__m128 lo = _mm_and_ps(_mm_shuffle_ps(e0, e1, _MM_SHUFFLE(2, 0, 2, 0)),
			       _mm_shuffle_ps(e0, e1, _MM_SHUFFLE(3, 1, 3, 1)));
	__m128 hi = _mm_and_ps(_mm_shuffle_ps(e2, e3, _MM_SHUFFLE(2, 0, 2, 0)),
			       _mm_shuffle_ps(e2, e3, _MM_SHUFFLE(3, 1, 3, 1)));
	unsigned m = (unsigned)_mm_movemask_ps(lo) | (unsigned)_mm_movemask_ps(hi) << 4;

	return m & ((1u << CT_SLOTS) - 1);
#else
	unsigned m = 0;

	for (int i = 0; i < CT_SLOTS; i++)
		m |= (unsigned)!__atomic_load_n(&b->slot[i], __ATOMIC_RELAXED) << i;
	return m;
#endif
}

/* The overflow bucket chained to b, or NULL (nearly always). Linked under
 * b's lock with release, never unlinked while the table lives. */
static inline struct ct_bucket *chain_next(const struct xlb_ct *ct, const struct ct_bucket *b)
{
	uint32_t next = __atomic_load_n(&b->next, __ATOMIC_ACQUIRE);

	return next ? &ct->buckets[next] : NULL;
}

/*
 * The flow of this bucket's chain whose tuple for its slot's direction is
 * t and which is not DYING: for a lookup (`live`) also not expired at
 * `now`; for an insert, the owner, expired or not (an insert deletes an
 * expired owner, then tries again; it calls with the bucket locked).
 * Inlined with `live` constant, so each caller gets its own loop.
 */
static inline __attribute__((always_inline)) struct xlb_flow *
bucket_find(const struct xlb_ct *ct, const struct ct_bucket *b, uint32_t hash,
	    const struct xlb_tuple *t, bool live, uint64_t now, enum xlb_dir *dir)
{
	do {
		for (unsigned m = bucket_tags(b, hash); m; m &= m - 1) {
			uint64_t v = slot_load(b, __builtin_ctz(m));
			struct xlb_flow *f;
			enum xlb_dir d;

			if ((uint32_t)(v >> 32) != hash || !v)
				continue;
			f = slot_flow(ct, v, &d);
			if (xlb_tuple_eq(&f->tuple[d], t) && !(flow_status(f) & XLB_FLOW_DYING) &&
			    (!live || !flow_expired(f, now))) {
				*dir = d;
				return f;
			}
		}
	} while ((b = chain_next(ct, b)));
	return NULL;
}

/* Bits set in a slot mask, inline: without -mpopcnt, __builtin_popcount
 * is a libgcc call several times this long. */
static inline unsigned count7(unsigned m)
{
	m = m - ((m >> 1) & 0x55);
	m = (m & 0x33) + ((m >> 2) & 0x33);
	return (m + (m >> 4)) & 0x0f;
}

/* The first empty slot of b's chain (*where: its bucket), how many empty
 * slots the chain's first bucket has, and its last bucket. */
static int bucket_free_slot(const struct xlb_ct *ct, struct ct_bucket *b,
			    struct ct_bucket **where, unsigned *nfree, struct ct_bucket **last)
{
	unsigned m = bucket_empty(b);

	*nfree = count7(m);
	*where = NULL;
	if (m) {
		*where = b;
		return __builtin_ctz(m);
	}
	for (;;) {
		*last = b;
		b = chain_next(ct, b);
		if (!b)
			return -1;
		if ((m = bucket_empty(b))) {
			*where = b;
			return __builtin_ctz(m);
		}
	}
}

/* Empty f's slot for dir. Only f's deleter (or its inserter, see the
 * rules) calls it, so the slot cannot change under it. */
static void remove_slot(struct xlb_ct *ct, struct xlb_flow *f, enum xlb_dir dir)
{
	uint32_t h = f->hash[dir];
	uint64_t v = slot_of(h, f->idx, dir);
	struct ct_bucket *b[2] = { &ct->buckets[bucket1(ct, h)], &ct->buckets[bucket2(ct, h)] };

	for (int k = 0; k < 2; k++) {
		for (struct ct_bucket *c = b[k]; c; c = chain_next(ct, c)) {
			for (int i = 0; i < CT_SLOTS; i++) {
				if (slot_load(c, i) == v) {
					__atomic_store_n(&c->slot[i], 0, __ATOMIC_RELEASE);
					return;
				}
			}
		}
	}
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


/* --- the slab ------------------------------------------------------------- */

struct limbo_batch {
	struct rcu_head rcu;
	struct xlb_ct *ct;
	uint32_t head, tail;
};

/* A grace period after the batch was handed over: no reader can still hold
 * one of its flows. */
static void limbo_free_rcu(struct rcu_head *head)
{
	struct limbo_batch *lb = caa_container_of(head, struct limbo_batch, rcu);
	struct xlb_ct *ct = lb->ct;

	spin_lock(&ct->slab_lock);
	flow_at(ct, lb->tail)->free_next = ct->free_head;
	ct->free_head = lb->head;
	spin_unlock(&ct->slab_lock);
	free(lb);
}

/* Hand the limbo list to call_rcu. Called with the slab lock held; drops
 * and retakes it around the allocation. */
static void limbo_flush_locked(struct xlb_ct *ct)
{
	struct limbo_batch *lb;

	if (!ct->limbo_n)
		return;
	spin_unlock(&ct->slab_lock);
	lb = malloc(sizeof(*lb));
	spin_lock(&ct->slab_lock);
	if (!lb || !ct->limbo_n) {
		/* Out of memory: the flows wait for the next flush. */
		free(lb);
		return;
	}
	lb->ct = ct;
	lb->head = ct->limbo_head;
	lb->tail = ct->limbo_tail;
	ct->limbo_head = 0;
	ct->limbo_n = 0;
	call_rcu(&lb->rcu, limbo_free_rcu);
}

static void limbo_put(struct xlb_ct *ct, struct xlb_flow *f)
{
	spin_lock(&ct->slab_lock);
	f->free_next = ct->limbo_head;
	if (!ct->limbo_n)
		ct->limbo_tail = f->idx;
	ct->limbo_head = f->idx;
	ct->limbo_n++;
	spin_unlock(&ct->slab_lock);
}

/* A flow that was never visible goes straight back to the free list. */
static void slab_put_now(struct xlb_ct *ct, struct xlb_flow *f)
{
	spin_lock(&ct->slab_lock);
	f->free_next = ct->free_head;
	ct->free_head = f->idx;
	spin_unlock(&ct->slab_lock);
}

static struct xlb_flow *chunk_new(void)
{
	void *p = mmap(NULL, CHUNK_BYTES, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	/* TLB reach: flows are read at random, one huge page covers 8192. */
	madvise(p, CHUNK_BYTES, MADV_HUGEPAGE);
	return p;
}

static struct xlb_flow *slab_get(struct xlb_ct *ct)
{
	struct xlb_flow *f = NULL, *chunk;
	uint32_t idx;

	spin_lock(&ct->slab_lock);
	if (!ct->free_head && ct->limbo_n >= LIMBO_BATCH)
		limbo_flush_locked(ct);
	if (ct->free_head) {
		idx = ct->free_head;
		f = flow_at(ct, idx);
		ct->free_head = f->free_next;
		/* The next allocation's entry, and its link, start coming in now
		 * rather than when that connection needs them. */
		if (ct->free_head)
			__builtin_prefetch(flow_at(ct, ct->free_head), 1);
	} else {
		if (ct->next_unused >= ct->nchunks * CT_CHUNK_FLOWS) {
			/* Rare (once per 8192 flows): the mmap runs under the
			 * lock, other allocations wait a few microseconds. */
			if (ct->nchunks == CT_MAX_CHUNKS || !(chunk = chunk_new()))
				goto out;
			__atomic_store_n(&ct->chunks[ct->nchunks], chunk, __ATOMIC_RELEASE);
			ct->nchunks++;
		}
		idx = ct->next_unused++;
		f = flow_at(ct, idx);
	}
	f->idx = idx;
out:
	spin_unlock(&ct->slab_lock);
	return f;
}

/* --- table -------------------------------------------------------------- */

struct xlb_ct *xlb_ct_create(const struct xlb_ct_conf *conf)
{
	struct xlb_ct *ct;
	size_t bytes = 0;
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

	/* Two slots per flow, 7 per bucket: max / 2 buckets hold 4 slots on
	 * average when the table is full, and with two choices per tuple the
	 * fullest of a million buckets stays around 7; the pool of overflow
	 * buckets takes the rare rest. The configured bucket count (the
	 * kernel's hashsize) is the floor. */
	ct->nbuckets = conf->max / 2 + 1;
	if (conf->buckets > ct->nbuckets)
		ct->nbuckets = conf->buckets;
	if (ct->nbuckets < 2)
		ct->nbuckets = 2;
	ct->npool = ct->nbuckets / 16 + 16;
	ct->pool_used = 0;
	bytes = (size_t)(ct->nbuckets + ct->npool) * sizeof(struct ct_bucket);
	ct->buckets = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ct->buckets == MAP_FAILED) {
		ct->buckets = NULL;
		err = ENOMEM;
		goto err;
	}
	if (bytes >= (2u << 20))
		madvise(ct->buckets, bytes, MADV_HUGEPAGE);
	ct->chunks = calloc(CT_MAX_CHUNKS, sizeof(*ct->chunks));
	if (!ct->chunks) {
		err = ENOMEM;
		goto err;
	}
	ct->next_unused = 1;   /* index 0 names no flow */
	return ct;
err:
	if (ct->buckets)
		munmap(ct->buckets, bytes);
	free(ct->chunks);
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
 * No reader may use the table any more. Limbo batches already handed to
 * call_rcu point at the table: wait for them (offline: a QSBR thread that
 * stays online while waiting for a grace period would never let one end),
 * then the slab and the index go in one piece.
 */
void xlb_ct_destroy(struct xlb_ct *ct)
{
	bool online;
	uint32_t i;

	if (!ct)
		return;
	online = rcu_read_ongoing();
	if (online)
		rcu_thread_offline();
	rcu_barrier();
	if (online)
		rcu_thread_online();
	for (i = 0; i < ct->nchunks; i++)
		munmap(ct->chunks[i], CHUNK_BYTES);
	munmap(ct->buckets, (size_t)(ct->nbuckets + ct->npool) * sizeof(struct ct_bucket));
	free(ct->chunks);
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

uint32_t xlb_ct_buckets(const struct xlb_ct *ct)
{
	return ct->nbuckets;
}

void xlb_ct_overflow(const struct xlb_ct *ct, uint32_t *used, uint32_t *total)
{
	*used = __atomic_load_n(&ct->pool_used, __ATOMIC_RELAXED);
	*total = ct->npool;
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

void xlb_ct_prefetch_buckets(const struct xlb_ct *ct, uint32_t hash)
{
	__builtin_prefetch(&ct->buckets[bucket1(ct, hash)]);
	__builtin_prefetch(&ct->buckets[bucket2(ct, hash)]);
}

uint64_t xlb_ct_prefetch_flow(const struct xlb_ct *ct, uint32_t hash)
{
	const struct ct_bucket *b[2] = { &ct->buckets[bucket1(ct, hash)],
					 &ct->buckets[bucket2(ct, hash)] };

	for (int k = 0; k < 2; k++) {
		for (unsigned m = bucket_tags(b[k], hash); m; m &= m - 1) {
			uint64_t v = slot_load(b[k], __builtin_ctz(m));
			const char *f;
			enum xlb_dir d;

			if ((uint32_t)(v >> 32) != hash || !v)
				continue;
			/* The lines a packet reads: status and orig tuple, reply
			 * tuple and MAC cache, counters and TCP window. */
			f = (const char *)slot_flow(ct, v, &d);
			__builtin_prefetch(f, 1);
			__builtin_prefetch(f + 64, 1);
			__builtin_prefetch(f + 128, 1);
			__builtin_prefetch(f + 192, 1);
			return v;
		}
	}
	return 0;
}

struct xlb_flow *xlb_ct_lookup_hint(struct xlb_ct *ct, const struct xlb_tuple *t, uint32_t hash,
				    uint64_t now, enum xlb_dir *dir, uint64_t hint)
{
	/* The candidate may have been deleted since (DYING), or be another
	 * tuple with the same tag: then search. It cannot have been reused
	 * for another flow: the caller has not been quiescent since. */
	if (likely(hint)) {
		enum xlb_dir d;
		struct xlb_flow *f = slot_flow(ct, hint, &d);

		if (likely(xlb_tuple_eq(&f->tuple[d], t) && !(flow_status(f) & XLB_FLOW_DYING) &&
			   !flow_expired(f, now))) {
			*dir = d;
			return f;
		}
	}
	return xlb_ct_lookup(ct, t, hash, now, dir);
}

struct xlb_flow *xlb_ct_lookup(struct xlb_ct *ct, const struct xlb_tuple *t, uint32_t hash,
			       uint64_t now, enum xlb_dir *dir)
{
	struct xlb_flow *f;

	f = bucket_find(ct, &ct->buckets[bucket1(ct, hash)], hash, t, true, now, dir);
	if (f)
		return f;
	return bucket_find(ct, &ct->buckets[bucket2(ct, hash)], hash, t, true, now, dir);
}

struct xlb_flow *xlb_ct_alloc(struct xlb_ct *ct, const struct xlb_tuple *orig,
			      const struct xlb_tuple *reply, uint64_t now)
{
	struct xlb_flow *f;
	struct timespec ts;
	uint32_t idx;

	f = slab_get(ct);
	if (!f) {
		errno = ENOMEM;
		return NULL;
	}
	idx = f->idx;
	memset(f, 0, sizeof(*f));
	f->idx = idx;
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
	remove_slot(ct, f, XLB_DIR_ORIG);
	if (old & XLB_FLOW_REPLY_HASHED)
		remove_slot(ct, f, XLB_DIR_REPLY);
	__atomic_sub_fetch(&ct->count, 1, __ATOMIC_RELAXED);
	/* Only a flow that was fully published was ever seen as a
	 * connection (counted, announced): only it is reported gone. */
	if ((old & XLB_FLOW_REPLY_HASHED) && ct->on_destroy)
		ct->on_destroy(f, ct->on_destroy_arg);
	limbo_put(ct, f);
	return true;
}

void xlb_ct_set_destroy_hook(struct xlb_ct *ct, xlb_ct_destroy_fn fn, void *arg)
{
	ct->on_destroy_arg = arg;
	ct->on_destroy = fn;
}

/*
 * Make room for f in a table over its limit: look at the buckets from f's
 * first one on for an entry that is expired (any) or not ASSURED, and
 * delete it. Returns whether one was removed. f's `created` is the
 * insert's notion of now.
 */
static bool early_drop(struct xlb_ct *ct, struct xlb_flow *f, struct xlb_ct_stats *st)
{
	uint32_t b = bucket1(ct, f->hash[XLB_DIR_ORIG]);
	unsigned seen = 0;

	for (uint32_t n = 0; n < EARLY_DROP_BUCKETS && n < ct->nbuckets &&
			     seen < EARLY_DROP_SLOTS; n++) {
		struct ct_bucket *bk = &ct->buckets[b];

		for (int i = 0; i < CT_SLOTS; i++) {
			uint64_t v = slot_load(bk, i);
			struct xlb_flow *victim;
			enum xlb_dir d;

			if (!v)
				continue;
			seen++;
			victim = slot_flow(ct, v, &d);
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
		b = b + 1 == ct->nbuckets ? 0 : b + 1;
	}
	return false;
}

/* Delete the expired flows in a bucket; returns how many. */
static unsigned bucket_reap(struct xlb_ct *ct, struct ct_bucket *b, uint64_t now,
			    uint64_t *scanned)
{
	unsigned deleted = 0;

	for (int i = 0; i < CT_SLOTS; i++) {
		uint64_t v = slot_load(b, i);
		struct xlb_flow *f;
		enum xlb_dir d;

		if (!v)
			continue;
		f = slot_flow(ct, v, &d);
		if (scanned)
			(*scanned)++;
		if (flow_expired(f, now) && xlb_ct_delete(ct, f))
			deleted++;
	}
	return deleted;
}

static unsigned chain_reap(struct xlb_ct *ct, struct ct_bucket *b, uint64_t now)
{
	unsigned deleted = 0;

	for (; b; b = chain_next(ct, b))
		deleted += bucket_reap(ct, b, now, NULL);
	return deleted;
}

enum add_result { ADD_OK, ADD_CLASH, ADD_FULL };

/* An overflow bucket from the pool, or NULL when the pool is used up. */
static struct ct_bucket *overflow_new(struct xlb_ct *ct)
{
	uint32_t n = __atomic_fetch_add(&ct->pool_used, 1, __ATOMIC_RELAXED);

	if (n >= ct->npool) {
		__atomic_store_n(&ct->pool_used, ct->npool, __ATOMIC_RELAXED);
		return NULL;
	}
	return &ct->buckets[ct->nbuckets + n];
}

/*
 * Give f's tuple for dir a slot in the emptier of its two buckets, unless
 * a live flow owns the tuple (ADD_CLASH, *owner and *odir set) or both
 * buckets are full (ADD_FULL). An expired owner, or expired flows filling
 * both buckets, are deleted and the add tried again, a few times.
 */
static enum add_result add_slot(struct xlb_ct *ct, struct xlb_flow *f, enum xlb_dir dir,
				struct xlb_flow **owner, enum xlb_dir *odir)
{
	uint32_t h = f->hash[dir];
	uint32_t i1 = bucket1(ct, h), i2 = bucket2(ct, h);
	uint32_t lo = i1 < i2 ? i1 : i2, hi = i1 < i2 ? i2 : i1;
	struct ct_bucket *b1 = &ct->buckets[i1], *b2 = &ct->buckets[i2];
	const struct xlb_tuple *t = &f->tuple[dir];

	for (int tries = 0;; tries++) {
		struct ct_bucket *b = NULL, *w1, *w2, *last1 = b1, *last2;
		unsigned free1, free2;
		int s1, s2, s = 0;

		spin_lock(&ct->buckets[lo].lock);
		spin_lock(&ct->buckets[hi].lock);
		*owner = bucket_find(ct, b1, h, t, false, 0, odir);
		if (!*owner)
			*owner = bucket_find(ct, b2, h, t, false, 0, odir);
		if (!*owner) {
			s1 = bucket_free_slot(ct, b1, &w1, &free1, &last1);
			s2 = bucket_free_slot(ct, b2, &w2, &free2, &last2);
			if (s1 >= 0 && (s2 < 0 || free1 >= free2)) {
				b = w1;
				s = s1;
			} else if (s2 >= 0) {
				b = w2;
				s = s2;
			} else if ((b = overflow_new(ct))) {
				/* Both chains full: a fresh overflow bucket at
				 * the end of the first, under its lock. */
				s = 0;
				__atomic_store_n(&last1->next, (uint32_t)(b - ct->buckets),
						 __ATOMIC_RELEASE);
			}
			if (b) {
				__atomic_store_n(&b->slot[s], slot_of(h, f->idx, dir),
						 __ATOMIC_RELEASE);
				spin_unlock(&ct->buckets[hi].lock);
				spin_unlock(&ct->buckets[lo].lock);
				return ADD_OK;
			}
		}
		spin_unlock(&ct->buckets[hi].lock);
		spin_unlock(&ct->buckets[lo].lock);

		if (*owner) {
			if (tries >= INSERT_RETRIES || !flow_expired(*owner, f->created))
				return ADD_CLASH;
			xlb_ct_delete(ct, *owner);
		} else if (tries >= INSERT_RETRIES ||
			   !(chain_reap(ct, b1, f->created) + chain_reap(ct, b2, f->created))) {
			return ADD_FULL;
		}
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
	struct xlb_flow *owner;
	enum add_result r;
	enum xlb_dir odir;
	uint64_t now = f->created;
	uint32_t old;

	if (!st)
		st = &scratch;

	f->hash[XLB_DIR_ORIG] = orig_hash;
	f->hash[XLB_DIR_REPLY] = xlb_ct_hash(ct, &f->tuple[XLB_DIR_REPLY]);
	/* The reply tuple's buckets are cold (the burst prefetched the orig
	 * tuple's): fetch them while the orig slot goes in. */
	xlb_ct_prefetch_buckets(ct, f->hash[XLB_DIR_REPLY]);
	__atomic_add_fetch(&ct->count, 1, __ATOMIC_RELAXED);

	r = add_slot(ct, f, XLB_DIR_ORIG, &owner, &odir);
	if (r != ADD_OK) {
		/* f was never visible: free it now, no grace period needed. */
		__atomic_sub_fetch(&ct->count, 1, __ATOMIC_RELAXED);
		slab_put_now(ct, f);
		if (r == ADD_CLASH && odir == XLB_DIR_ORIG && !flow_expired(owner, now)) {
			/* Another worker created the same connection first: its
			 * backend choice stands, the packet joins its flow. */
			st->clash_resolve++;
			return owner;
		}
		/* Our orig tuple is the reply tuple of another connection, an
		 * expired owner would not go away, or no room. */
		if (r == ADD_FULL)
			st->chaintoolong++;
		else
			st->insert_failed++;
		return NULL;
	}

	r = add_slot(ct, f, XLB_DIR_REPLY, &owner, &odir);
	if (r != ADD_OK) {
		/* The reply tuple (after NAT) belongs to another connection,
		 * or has no room. f was visible for a moment: unpublish it the
		 * normal way. */
		xlb_ct_delete(ct, f);
		if (r == ADD_FULL)
			st->chaintoolong++;
		else
			st->insert_failed++;
		return NULL;
	}

	old = __atomic_fetch_or(&f->status, XLB_FLOW_REPLY_HASHED, __ATOMIC_ACQ_REL);
	if (old & XLB_FLOW_DYING) {
		/* Deleted (a flush, say) between our two adds; the deleter did
		 * not know about the reply slot. The packet may still use f
		 * until the next quiescent state. */
		remove_slot(ct, f, XLB_DIR_REPLY);
		st->insert++;
		return f;
	}

	if (xlb_ct_count(ct) > xlb_ct_max(ct) && !early_drop(ct, f, st)) {
		/* Full of ASSURED connections: the new one loses, as in the
		 * kernel, where established traffic outranks new attempts. */
		xlb_ct_delete(ct, f);
		st->drop++;
		return NULL;
	}
	st->insert++;
	return f;
}

/* --- walks ------------------------------------------------------------ */

int xlb_ct_foreach(struct xlb_ct *ct, xlb_ct_iter_fn fn, void *arg)
{
	/* Slots never move, so every flow in the table for the whole walk
	 * is visited once, by its original tuple's slot; fn may delete it. */
	uint32_t n = ct->nbuckets + __atomic_load_n(&ct->pool_used, __ATOMIC_RELAXED);

	for (uint32_t b = 0; b < n; b++) {
		for (int i = 0; i < CT_SLOTS; i++) {
			uint64_t v = slot_load(&ct->buckets[b], i);
			struct xlb_flow *f;
			enum xlb_dir d;
			int ret;

			if (!v)
				continue;
			f = slot_flow(ct, v, &d);
			if (d != XLB_DIR_ORIG || (flow_status(f) & XLB_FLOW_DYING))
				continue;
			ret = fn(f, arg);
			if (ret)
				return ret;
		}
	}
	return 0;
}

unsigned xlb_ct_gc(struct xlb_ct *ct, uint64_t now, unsigned budget)
{
	unsigned n, deleted = 0;
	uint32_t b = ct->gc_cursor;

	ct->gc.slices++;
	uint32_t end = ct->nbuckets + __atomic_load_n(&ct->pool_used, __ATOMIC_RELAXED);

	for (n = 0; n < budget; n++) {
		deleted += bucket_reap(ct, &ct->buckets[b], now, &ct->gc.scanned);
		if (++b >= end) {
			b = 0;
			ct->gc.passes++;
		}
	}
	ct->gc_cursor = b;
	ct->gc.deleted += deleted;

	spin_lock(&ct->slab_lock);
	limbo_flush_locked(ct);
	spin_unlock(&ct->slab_lock);
	return deleted;
}

void xlb_ct_gc_stats(const struct xlb_ct *ct, struct xlb_ct_gc_stats *out)
{
	*out = ct->gc;
}
