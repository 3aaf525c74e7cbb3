/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The flow table and the trackers: what a user of conntrack would notice.
 * Time is passed in, never read from a clock, so nothing here depends on
 * how fast the machine is.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "flow.h"
#include "unit.h"

#define SEC 1000000000ull
#define T0 (1000 * SEC)

/* The kernel's defaults, in config.h's order. */
static const uint32_t default_timeouts[XLB_TO_MAX] = {
	120, 60, 432000, 120, 60, 30, 120, 10, 300, 300, 30, 120, 30, 600,
};

static void conf_init(struct xlb_ct_conf *conf, uint32_t max, uint32_t buckets)
{
	memset(conf, 0, sizeof(*conf));
	conf->max = max;
	conf->buckets = buckets;
	memcpy(conf->timeout, default_timeouts, sizeof(conf->timeout));
	conf->tcp_loose = true;
}

static struct xlb_ct *ct_new(uint32_t max)
{
	struct xlb_ct_conf conf;
	struct xlb_ct *ct;

	conf_init(&conf, max, 64);
	ct = xlb_ct_create(&conf);
	CU_ASSERT_FATAL(ct != NULL);
	return ct;
}

/* Let deleted flows go (call_rcu) before the table is freed, so the leak
 * checker sees every flow released. */
static void ct_free(struct xlb_ct *ct)
{
	rcu_barrier();
	xlb_ct_destroy(ct);
	rcu_barrier();
}

static void tuple4(struct xlb_tuple *t, uint8_t proto, uint32_t src, uint32_t dst,
		   uint16_t sport, uint16_t dport)
{
	memset(t, 0, sizeof(*t));
	xlb_addr_from_v4(&t->src, htonl(src));
	xlb_addr_from_v4(&t->dst, htonl(dst));
	t->sport = htons(sport);
	t->dport = htons(dport);
	t->proto = proto;
	t->family = AF_INET;
}

#define CLIENT  0xc6120001u   /* 198.18.0.1 */
#define VIP     0xc6120064u   /* 198.18.0.100 */
#define BACKEND 0xc6120202u   /* 198.18.2.2 */

/* Client port -> VIP:80, DNATed to BACKEND:8080; the reply comes back from
 * the backend. */
static void conn_tuples(struct xlb_tuple *orig, struct xlb_tuple *reply, uint8_t proto,
			uint32_t n)
{
	uint16_t cport = (uint16_t)(10000 + n % 50000);
	uint32_t client = CLIENT + n / 50000;

	tuple4(orig, proto, client, VIP, cport, 80);
	tuple4(reply, proto, BACKEND, client, 8080, cport);
}

static struct xlb_flow *conn_new(struct xlb_ct *ct, uint8_t proto, uint32_t n, uint64_t now,
				 struct xlb_ct_stats *st)
{
	struct xlb_tuple orig, reply;
	struct xlb_flow *f;

	conn_tuples(&orig, &reply, proto, n);
	f = xlb_ct_alloc(ct, &orig, &reply, now);
	CU_ASSERT_FATAL(f != NULL);
	return xlb_ct_insert(ct, f, st);
}

static struct xlb_flow *find(struct xlb_ct *ct, const struct xlb_tuple *t, uint64_t now,
			     enum xlb_dir *dir)
{
	enum xlb_dir scratch;

	return xlb_ct_lookup(ct, t, xlb_ct_hash(ct, t), now, dir ? dir : &scratch);
}

static struct xlb_flow *find_conn(struct xlb_ct *ct, uint8_t proto, uint32_t n, uint64_t now)
{
	struct xlb_tuple orig, reply;

	conn_tuples(&orig, &reply, proto, n);
	return find(ct, &orig, now, NULL);
}

/* A TCP segment with a real header, so the tracker can read seq/ack. */
struct seg {
	struct xlb_pkt p;
	uint8_t buf[20];
};

static void tcp_seg(struct seg *s, const struct xlb_flow *f, enum xlb_dir dir, uint8_t flags,
		    uint32_t seq, uint32_t ack)
{
	uint32_t v;
	uint16_t w = htons(65535);

	memset(s, 0, sizeof(*s));
	v = htonl(seq);
	memcpy(s->buf + 4, &v, 4);
	v = htonl(ack);
	memcpy(s->buf + 8, &v, 4);
	s->buf[12] = 5 << 4;
	s->buf[13] = flags;
	memcpy(s->buf + 14, &w, 2);
	s->p.data = s->buf;
	s->p.len = sizeof(s->buf);
	s->p.l4_len = sizeof(s->buf);
	s->p.l3_len = 40;
	s->p.tcp_flags = flags;
	s->p.tuple = f->tuple[dir];
}

static void udp_pkt(struct xlb_pkt *p, const struct xlb_flow *f, enum xlb_dir dir)
{
	memset(p, 0, sizeof(*p));
	p->tuple = f->tuple[dir];
}

/* --- lookups ---------------------------------------------------------- */

static void test_lookup_both_directions(void)
{
	struct xlb_ct *ct = ct_new(1024);
	struct xlb_ct_stats st = { 0 };
	struct xlb_tuple orig, reply, other;
	struct xlb_flow *f;
	enum xlb_dir dir = XLB_DIR_REPLY;

	f = conn_new(ct, IPPROTO_TCP, 1, T0, &st);
	CU_ASSERT_FATAL(f != NULL);
	CU_ASSERT_EQUAL(st.insert, 1);
	CU_ASSERT_EQUAL(xlb_ct_count(ct), 1);
	CU_ASSERT_EQUAL(xlb_flow_use(f), 1);   /* what conntrack -L shows as use=1 */

	conn_tuples(&orig, &reply, IPPROTO_TCP, 1);
	CU_ASSERT_EQUAL(xlb_ct_hash(ct, &orig), xlb_ct_hash(ct, &orig));
	CU_ASSERT_PTR_EQUAL(find(ct, &orig, T0, &dir), f);
	CU_ASSERT_EQUAL(dir, XLB_DIR_ORIG);
	CU_ASSERT_PTR_EQUAL(find(ct, &reply, T0, &dir), f);
	CU_ASSERT_EQUAL(dir, XLB_DIR_REPLY);

	/* The same ports over UDP, another zone, the tuple inverted: other
	 * connections. */
	conn_tuples(&other, &reply, IPPROTO_UDP, 1);
	CU_ASSERT_PTR_NULL(find(ct, &other, T0, NULL));
	other = orig;
	other.zone = 1;
	CU_ASSERT_PTR_NULL(find(ct, &other, T0, NULL));
	xlb_tuple_invert(&other, &orig);
	CU_ASSERT_PTR_NULL(find(ct, &other, T0, NULL));
	ct_free(ct);
}

/* The worker hashes a new tuple once, for the lookup that misses, and
 * inserts with that hash: the flow must be found both ways as after
 * xlb_ct_insert(), and a second insert of the same connection must still
 * meet the first (same bucket) and adopt it. */
static void test_insert_hashed(void)
{
	struct xlb_ct *ct = ct_new(1024);
	struct xlb_ct_stats st = { 0 };
	struct xlb_tuple orig, reply;
	struct xlb_flow *f, *g;
	enum xlb_dir dir = XLB_DIR_REPLY;
	uint32_t h;

	conn_tuples(&orig, &reply, IPPROTO_TCP, 7);
	h = xlb_ct_hash(ct, &orig);
	CU_ASSERT_PTR_NULL(xlb_ct_lookup(ct, &orig, h, T0, &dir));
	f = xlb_ct_alloc(ct, &orig, &reply, T0);
	CU_ASSERT_FATAL(f != NULL);
	CU_ASSERT_PTR_EQUAL_FATAL(xlb_ct_insert_hashed(ct, f, h, &st), f);
	CU_ASSERT_EQUAL(st.insert, 1);
	CU_ASSERT_PTR_EQUAL(find(ct, &orig, T0, &dir), f);
	CU_ASSERT_EQUAL(dir, XLB_DIR_ORIG);
	CU_ASSERT_PTR_EQUAL(find(ct, &reply, T0, &dir), f);
	CU_ASSERT_EQUAL(dir, XLB_DIR_REPLY);

	g = xlb_ct_alloc(ct, &orig, &reply, T0);
	CU_ASSERT_FATAL(g != NULL);
	CU_ASSERT_PTR_EQUAL(xlb_ct_insert_hashed(ct, g, h, &st), f);
	CU_ASSERT_EQUAL(st.clash_resolve, 1);
	CU_ASSERT_EQUAL(xlb_ct_count(ct), 1);

	CU_ASSERT_TRUE(xlb_ct_delete(ct, f));
	CU_ASSERT_PTR_NULL(find(ct, &orig, T0, NULL));
	CU_ASSERT_PTR_NULL(find(ct, &reply, T0, NULL));
	ct_free(ct);
}

static void test_seed_is_random(void)
{
	struct xlb_ct *a = ct_new(16), *b = ct_new(16);
	struct xlb_tuple orig, reply;
	int i, same = 0;

	/* Two tables hash a tuple differently (a 2^-32 chance per tuple of
	 * agreeing; eight tuples all agreeing means no seed). */
	for (i = 0; i < 8; i++) {
		conn_tuples(&orig, &reply, IPPROTO_TCP, (uint32_t)i);
		same += xlb_ct_hash(a, &orig) == xlb_ct_hash(b, &orig);
	}
	CU_ASSERT(same < 8);
	ct_free(a);
	ct_free(b);
}

static void test_expired_never_matches(void)
{
	struct xlb_ct *ct = ct_new(1024);
	struct xlb_ct_stats st = { 0 };
	struct xlb_tuple orig, reply;
	struct xlb_flow *f;
	struct seg s;

	f = conn_new(ct, IPPROTO_TCP, 7, T0, &st);
	CU_ASSERT_FATAL(f != NULL);
	tcp_seg(&s, f, XLB_DIR_ORIG, XLB_TCP_SYN, 100, 0);
	CU_ASSERT_EQUAL(xlb_ct_track(ct, f, XLB_DIR_ORIG, &s.p, T0), XLB_CTINFO_NEW);
	CU_ASSERT_EQUAL(xlb_flow_timeout_left(f, T0), 120);

	conn_tuples(&orig, &reply, IPPROTO_TCP, 7);
	CU_ASSERT_PTR_EQUAL(find(ct, &orig, T0 + 119 * SEC, NULL), f);
	CU_ASSERT_PTR_NULL(find(ct, &orig, T0 + 120 * SEC, NULL));
	CU_ASSERT_PTR_NULL(find(ct, &reply, T0 + 500 * SEC, NULL));
	CU_ASSERT_EQUAL(xlb_flow_timeout_left(f, T0 + 500 * SEC), 0);
	/* A lookup does not remove it: the collector does. */
	CU_ASSERT_EQUAL(xlb_ct_count(ct), 1);

	/* A new connection on the expired tuple replaces it. */
	f = conn_new(ct, IPPROTO_TCP, 7, T0 + 500 * SEC, &st);
	CU_ASSERT_FATAL(f != NULL);
	CU_ASSERT_EQUAL(f->created, T0 + 500 * SEC);
	CU_ASSERT_EQUAL(xlb_ct_count(ct), 1);
	CU_ASSERT_PTR_EQUAL(find(ct, &orig, T0 + 500 * SEC, NULL), f);

	/* A deleted flow stops matching at once, though readers may still
	 * hold it. */
	CU_ASSERT_TRUE(xlb_ct_delete(ct, f));
	CU_ASSERT_FALSE(xlb_ct_delete(ct, f));
	CU_ASSERT_PTR_NULL(find(ct, &orig, T0 + 500 * SEC, NULL));
	CU_ASSERT_EQUAL(xlb_ct_count(ct), 0);
	ct_free(ct);
}

/* --- insert races and clashes ---------------------------------------- */

#define RACE_ROUNDS 3000

struct race {
	struct xlb_ct *ct;
	pthread_barrier_t barrier;
	struct xlb_flow *got[2][RACE_ROUNDS];
	struct xlb_ct_stats st[2];
};

struct racer {
	struct race *race;
	int id;
};

static void *racer_main(void *arg)
{
	struct racer *r = arg;
	struct race *race = r->race;
	struct xlb_tuple orig, reply;
	struct xlb_flow *f;
	uint32_t i;

	rcu_register_thread();
	for (i = 0; i < RACE_ROUNDS; i++) {
		conn_tuples(&orig, &reply, IPPROTO_UDP, i);
		f = xlb_ct_alloc(race->ct, &orig, &reply, T0);
		rcu_thread_offline();
		pthread_barrier_wait(&race->barrier);
		rcu_thread_online();
		race->got[r->id][i] = xlb_ct_insert(race->ct, f, &race->st[r->id]);
		rcu_quiescent_state();
	}
	rcu_unregister_thread();
	return NULL;
}

static int count_flow(struct xlb_flow *f, void *arg)
{
	(void)f;
	(*(unsigned *)arg)++;
	return 0;
}

static void test_insert_race_loser_adopts_winner(void)
{
	struct race *race = calloc(1, sizeof(*race));
	struct racer racers[2];
	pthread_t th[2];
	unsigned i, n = 0, mismatched = 0, missing = 0;
	int t;

	CU_ASSERT_FATAL(race != NULL);
	race->ct = ct_new(RACE_ROUNDS * 2);
	pthread_barrier_init(&race->barrier, NULL, 2);
	rcu_thread_offline();
	for (t = 0; t < 2; t++) {
		racers[t].race = race;
		racers[t].id = t;
		pthread_create(&th[t], NULL, racer_main, &racers[t]);
	}
	for (t = 0; t < 2; t++)
		pthread_join(th[t], NULL);
	rcu_thread_online();

	for (i = 0; i < RACE_ROUNDS; i++) {
		if (!race->got[0][i] || race->got[0][i] != race->got[1][i])
			mismatched++;
		if (find_conn(race->ct, IPPROTO_UDP, i, T0) != race->got[0][i])
			missing++;
	}
	CU_ASSERT_EQUAL(mismatched, 0);
	CU_ASSERT_EQUAL(missing, 0);
	CU_ASSERT_EQUAL(xlb_ct_count(race->ct), RACE_ROUNDS);
	xlb_ct_foreach(race->ct, count_flow, &n);
	CU_ASSERT_EQUAL(n, RACE_ROUNDS);
	CU_ASSERT_EQUAL(race->st[0].insert + race->st[1].insert, RACE_ROUNDS);
	CU_ASSERT_EQUAL(race->st[0].clash_resolve + race->st[1].clash_resolve, RACE_ROUNDS);
	CU_ASSERT_EQUAL(race->st[0].insert_failed + race->st[1].insert_failed, 0);

	pthread_barrier_destroy(&race->barrier);
	ct_free(race->ct);
	free(race);
}

/* The burst's hinted lookup answers as xlb_ct_lookup does: with the right
 * hint, a stale one (the flow deleted since), a wrong one (another
 * flow's), or none. */
static void test_lookup_hint(void)
{
	struct xlb_ct *ct = ct_new(1024);
	struct xlb_ct_stats st = { 0 };
	struct xlb_tuple orig, reply, other_orig, other_reply;
	struct xlb_flow *f, *g;
	enum xlb_dir dir = XLB_DIR_ORIG;
	uint32_t h, hr;
	uint64_t hint, ghint;

	f = conn_new(ct, IPPROTO_TCP, 1, T0, &st);
	g = conn_new(ct, IPPROTO_TCP, 2, T0, &st);
	CU_ASSERT_FATAL(f && g);
	conn_tuples(&orig, &reply, IPPROTO_TCP, 1);
	conn_tuples(&other_orig, &other_reply, IPPROTO_TCP, 2);
	h = xlb_ct_hash(ct, &orig);
	hr = xlb_ct_hash(ct, &reply);

	xlb_ct_prefetch_buckets(ct, h);
	hint = xlb_ct_prefetch_flow(ct, h);
	CU_ASSERT(hint != 0);
	CU_ASSERT_PTR_EQUAL(xlb_ct_lookup_hint(ct, &orig, h, T0, &dir, hint), f);
	CU_ASSERT_EQUAL(dir, XLB_DIR_ORIG);
	hint = xlb_ct_prefetch_flow(ct, hr);
	CU_ASSERT_PTR_EQUAL(xlb_ct_lookup_hint(ct, &reply, hr, T0, &dir, hint), f);
	CU_ASSERT_EQUAL(dir, XLB_DIR_REPLY);

	/* A wrong hint (g's) and no hint still find f. */
	ghint = xlb_ct_prefetch_flow(ct, xlb_ct_hash(ct, &other_orig));
	CU_ASSERT(ghint != 0);
	CU_ASSERT_PTR_EQUAL(xlb_ct_lookup_hint(ct, &orig, h, T0, &dir, ghint), f);
	CU_ASSERT_PTR_EQUAL(xlb_ct_lookup_hint(ct, &orig, h, T0, &dir, 0), f);

	/* Deleted between the hint and the lookup (an earlier packet of the
	 * burst ended it): not found, although the hint names it. */
	hint = xlb_ct_prefetch_flow(ct, h);
	CU_ASSERT_TRUE(xlb_ct_delete(ct, f));
	CU_ASSERT_PTR_NULL(xlb_ct_lookup_hint(ct, &orig, h, T0, &dir, hint));
	/* ... and a new flow of the same tuple, inserted after the hint, is
	 * found through the search. */
	f = conn_new(ct, IPPROTO_TCP, 1, T0, &st);
	CU_ASSERT_FATAL(f != NULL);
	CU_ASSERT_PTR_EQUAL(xlb_ct_lookup_hint(ct, &orig, h, T0, &dir, hint), f);
	/* Expired flows are not found through a hint either. */
	CU_ASSERT_PTR_NULL(xlb_ct_lookup_hint(ct, &other_orig, xlb_ct_hash(ct, &other_orig),
					      T0 + 1000000 * SEC, &dir, ghint));
	ct_free(ct);
}

/* --- concurrent inserts, deletes, lookups, reuse ------------------------ */

#define STRESS_THREADS 3
#define STRESS_TUPLES 256
#define STRESS_OPS 60000

struct stresser {
	struct xlb_ct *ct;
	uint32_t seed;
	struct xlb_ct_stats st;
	unsigned wrong;           /* lookups that returned a flow of another tuple */
};

/* Random inserts, lookups and deletes of a few tuples from several
 * threads, while the main thread collects and recycles memory: the table's
 * invariants must hold at the end, and no lookup may ever return a flow
 * whose tuple is not the one asked for. */
static void *stresser_main(void *arg)
{
	struct stresser *s = arg;
	struct xlb_tuple orig, reply;
	struct xlb_flow *f;
	enum xlb_dir dir;

	rcu_register_thread();
	for (uint32_t i = 0; i < STRESS_OPS; i++) {
		uint32_t n;

		s->seed = s->seed * 1103515245u + 12345u;
		n = (s->seed >> 8) % STRESS_TUPLES;
		conn_tuples(&orig, &reply, IPPROTO_UDP, n);
		f = find(s->ct, (s->seed >> 20) & 1 ? &reply : &orig, T0, &dir);
		if (f) {
			if (!xlb_tuple_eq(&f->tuple[dir], (s->seed >> 20) & 1 ? &reply : &orig))
				s->wrong++;
			if ((s->seed >> 24) % 3 == 0)
				xlb_ct_delete(s->ct, f);
		} else {
			f = xlb_ct_alloc(s->ct, &orig, &reply, T0);
			if (f)
				xlb_ct_insert(s->ct, f, &s->st);
		}
		if (i % 16 == 0)
			rcu_quiescent_state();
	}
	rcu_unregister_thread();
	return NULL;
}

struct stress_seen {
	uint8_t seen[STRESS_TUPLES];
	unsigned dup, visited;
};

static int stress_visit(struct xlb_flow *f, void *arg)
{
	struct stress_seen *ss = arg;
	uint32_t n = ntohs(f->tuple[XLB_DIR_ORIG].sport) - 10000u;

	if (n < STRESS_TUPLES && ss->seen[n]++)
		ss->dup++;
	ss->visited++;
	return 0;
}

static void test_concurrent_stress(void)
{
	struct xlb_ct *ct = ct_new(STRESS_TUPLES * 2);
	struct stresser s[STRESS_THREADS];
	struct stress_seen ss = { 0 };
	pthread_t th[STRESS_THREADS];
	unsigned wrong = 0, lost = 0, ghosts = 0, inserts = 0, fails = 0;
	int t;

	for (t = 0; t < STRESS_THREADS; t++) {
		s[t] = (struct stresser){ .ct = ct, .seed = 7u + (uint32_t)t * 7919u };
		pthread_create(&th[t], NULL, stresser_main, &s[t]);
	}
	/* The collector's job meanwhile: hand deleted flows to RCU, so
	 * their memory is reused under the other threads' feet. */
	for (int i = 0; i < 2000; i++) {
		xlb_ct_gc(ct, T0, 64);
		rcu_quiescent_state();
	}
	rcu_thread_offline();
	for (t = 0; t < STRESS_THREADS; t++) {
		pthread_join(th[t], NULL);
		wrong += s[t].wrong;
		inserts += s[t].st.insert;
		/* Room for every tuple, always. (insert_failed may happen: a
		 * flow deleted by another thread while its inserter was
		 * between its two slots, its tuple taken meanwhile.) */
		CU_ASSERT_EQUAL(s[t].st.chaintoolong + s[t].st.drop, 0);
		fails += s[t].st.insert_failed;
	}
	rcu_thread_online();

	CU_ASSERT_EQUAL(wrong, 0);
	CU_ASSERT(inserts > STRESS_TUPLES);    /* the tuples came and went */
	CU_ASSERT(fails < inserts / 100);
	xlb_ct_foreach(ct, stress_visit, &ss);
	CU_ASSERT_EQUAL(ss.dup, 0);
	CU_ASSERT_EQUAL(ss.visited, xlb_ct_count(ct));
	for (uint32_t n = 0; n < STRESS_TUPLES; n++) {
		struct xlb_tuple orig, reply;
		struct xlb_flow *fo, *fr;

		conn_tuples(&orig, &reply, IPPROTO_UDP, n);
		fo = find(ct, &orig, T0, NULL);
		fr = find(ct, &reply, T0, NULL);
		if (ss.seen[n] && (!fo || fo != fr))
			lost++;
		if (!ss.seen[n] && (fo || fr))
			ghosts++;
	}
	CU_ASSERT_EQUAL(lost, 0);
	CU_ASSERT_EQUAL(ghosts, 0);
	ct_free(ct);
}

static void test_reply_tuple_clash(void)
{
	struct xlb_ct *ct = ct_new(1024);
	struct xlb_ct_stats st = { 0 };
	struct xlb_tuple orig_a, reply_a, orig_b, orig_c;
	struct xlb_flow *a, *b, *c;
	enum xlb_dir dir;

	a = conn_new(ct, IPPROTO_TCP, 1, T0, &st);
	CU_ASSERT_FATAL(a != NULL);
	conn_tuples(&orig_a, &reply_a, IPPROTO_TCP, 1);

	/* Another client connection NATed onto the same backend tuple. */
	tuple4(&orig_b, IPPROTO_TCP, CLIENT, VIP + 1, 10001, 80);
	b = xlb_ct_alloc(ct, &orig_b, &reply_a, T0);
	CU_ASSERT_PTR_NULL(xlb_ct_insert(ct, b, &st));
	CU_ASSERT_EQUAL(st.insert_failed, 1);
	CU_ASSERT_PTR_NULL(find(ct, &orig_b, T0, NULL));
	CU_ASSERT_PTR_EQUAL(find(ct, &reply_a, T0, &dir), a);
	CU_ASSERT_EQUAL(dir, XLB_DIR_REPLY);

	/* A new flow whose original tuple is a's reply tuple is not a's to
	 * adopt either. */
	tuple4(&orig_c, IPPROTO_TCP, CLIENT, VIP, 30000, 80);
	c = xlb_ct_alloc(ct, &reply_a, &orig_c, T0);
	CU_ASSERT_PTR_NULL(xlb_ct_insert(ct, c, &st));
	CU_ASSERT_EQUAL(st.insert_failed, 2);
	CU_ASSERT_EQUAL(st.clash_resolve, 0);
	CU_ASSERT_PTR_EQUAL(find(ct, &orig_a, T0, NULL), a);

	CU_ASSERT_EQUAL(xlb_ct_count(ct), 1);
	CU_ASSERT_EQUAL(st.insert, 1);
	ct_free(ct);
}

/* --- full table ------------------------------------------------------- */

/* Make a UDP flow ASSURED the way traffic does: a reply, then more traffic
 * after two seconds. */
static void udp_assure(struct xlb_ct *ct, struct xlb_flow *f, uint64_t t)
{
	struct xlb_pkt p;

	udp_pkt(&p, f, XLB_DIR_ORIG);
	xlb_ct_track(ct, f, XLB_DIR_ORIG, &p, t);
	udp_pkt(&p, f, XLB_DIR_REPLY);
	xlb_ct_track(ct, f, XLB_DIR_REPLY, &p, t + SEC / 10);
	udp_pkt(&p, f, XLB_DIR_ORIG);
	xlb_ct_track(ct, f, XLB_DIR_ORIG, &p, t + 3 * SEC);
}

static void test_full_table_early_drop(void)
{
	struct xlb_ct *ct = ct_new(8);
	struct xlb_ct_stats st = { 0 };
	struct xlb_flow *f, *keep[8];
	uint32_t i, found = 0;

	/* Two ASSURED and six unreplied: a ninth connection evicts one of
	 * the six. */
	for (i = 0; i < 8; i++) {
		keep[i] = conn_new(ct, IPPROTO_UDP, i, T0, &st);
		CU_ASSERT_FATAL(keep[i] != NULL);
		if (i < 2)
			udp_assure(ct, keep[i], T0);
	}
	CU_ASSERT_EQUAL(xlb_ct_count(ct), 8);
	for (i = 8; i < 14; i++) {
		f = conn_new(ct, IPPROTO_UDP, i, T0 + 4 * SEC, &st);
		CU_ASSERT_PTR_NOT_NULL(f);
		CU_ASSERT_PTR_EQUAL(find_conn(ct, IPPROTO_UDP, i, T0 + 4 * SEC), f);
		CU_ASSERT_EQUAL(xlb_ct_count(ct), 8);
	}
	CU_ASSERT_EQUAL(st.early_drop, 6);
	CU_ASSERT_EQUAL(st.drop, 0);
	/* The ASSURED ones survive; six of the twelve unassured do. */
	CU_ASSERT_PTR_EQUAL(find_conn(ct, IPPROTO_UDP, 0, T0 + 4 * SEC), keep[0]);
	CU_ASSERT_PTR_EQUAL(find_conn(ct, IPPROTO_UDP, 1, T0 + 4 * SEC), keep[1]);
	for (i = 2; i < 14; i++)
		found += find_conn(ct, IPPROTO_UDP, i, T0 + 4 * SEC) != NULL;
	CU_ASSERT_EQUAL(found, 6);
	ct_free(ct);
}

static void test_full_table_of_assured_refuses(void)
{
	struct xlb_ct *ct = ct_new(8);
	struct xlb_ct_stats st = { 0 };
	struct xlb_flow *keep[8];
	uint32_t i;

	for (i = 0; i < 8; i++) {
		keep[i] = conn_new(ct, IPPROTO_UDP, i, T0, &st);
		CU_ASSERT_FATAL(keep[i] != NULL);
		udp_assure(ct, keep[i], T0);
		CU_ASSERT_TRUE(keep[i]->status & XLB_FLOW_ASSURED);
	}
	CU_ASSERT_PTR_NULL(conn_new(ct, IPPROTO_UDP, 100, T0 + 4 * SEC, &st));
	CU_ASSERT_EQUAL(st.drop, 1);
	CU_ASSERT_EQUAL(st.early_drop, 0);
	CU_ASSERT_EQUAL(xlb_ct_count(ct), 8);
	CU_ASSERT_PTR_NULL(find_conn(ct, IPPROTO_UDP, 100, T0 + 4 * SEC));
	for (i = 0; i < 8; i++)
		CU_ASSERT_PTR_EQUAL(find_conn(ct, IPPROTO_UDP, i, T0 + 4 * SEC), keep[i]);

	/* Expired entries make room even when they are ASSURED. */
	CU_ASSERT_PTR_NOT_NULL(conn_new(ct, IPPROTO_UDP, 101, T0 + 1000 * SEC, &st));
	CU_ASSERT_EQUAL(xlb_ct_count(ct), 8);
	ct_free(ct);
}

/* --- collector ---------------------------------------------------------- */

#define GC_FLOWS 20000

struct gc_deleter {
	struct xlb_ct *ct;
	uint64_t now;
	unsigned deleted;
};

/* Deletes every connection n with n % 4 == 1 (all live) while the
 * collector runs. */
static void *gc_deleter_main(void *arg)
{
	struct gc_deleter *d = arg;
	struct xlb_flow *f;
	uint32_t n;

	rcu_register_thread();
	for (n = 1; n < GC_FLOWS; n += 4) {
		f = find_conn(d->ct, IPPROTO_UDP, n, d->now);
		if (f && xlb_ct_delete(d->ct, f))
			d->deleted++;
		if (n % 64 == 1)
			rcu_quiescent_state();
	}
	rcu_unregister_thread();
	return NULL;
}

static int count_expired(struct xlb_flow *f, void *arg)
{
	uint64_t *now_and_count = arg;

	if (xlb_flow_timeout_left(f, now_and_count[0]) == 0)
		now_and_count[1]++;
	return 0;
}

/* Run slices until the collector has gone `passes` times past the end of
 * the bucket array. */
static unsigned gc_passes(struct xlb_ct *ct, uint64_t now, int passes)
{
	struct xlb_ct_gc_stats gs;
	unsigned deleted = 0;
	uint64_t end;

	xlb_ct_gc_stats(ct, &gs);
	end = gs.passes + (uint64_t)passes;
	do {
		deleted += xlb_ct_gc(ct, now, 100);
		rcu_quiescent_state();
		xlb_ct_gc_stats(ct, &gs);
	} while (gs.passes < end);
	return deleted;
}

static void test_gc_slices(void)
{
	struct xlb_ct *ct = ct_new(GC_FLOWS * 2);
	struct xlb_ct_stats st = { 0 };
	struct xlb_ct_gc_stats gs;
	struct gc_deleter d = { .ct = ct };
	struct xlb_flow *f;
	pthread_t th;
	uint64_t now = T0 + 60 * SEC;
	uint64_t expired_left[2] = { now, 0 };
	unsigned slices = 0, got, max_slice = 0, lost = 0;
	uint32_t n;

	/* Even n: UDP timeout 30 s, expired at `now`. Odd n: refreshed at
	 * T0 + 50 s, alive. */
	for (n = 0; n < GC_FLOWS; n++) {
		f = conn_new(ct, IPPROTO_UDP, n, T0, &st);
		CU_ASSERT_FATAL(f != NULL);
		if (n % 2) {
			struct xlb_pkt p;

			udp_pkt(&p, f, XLB_DIR_ORIG);
			xlb_ct_track(ct, f, XLB_DIR_ORIG, &p, T0 + 50 * SEC);
		}
	}
	d.now = now;
	rcu_quiescent_state();

	/* One pass of 100-bucket slices while another thread deletes live
	 * flows under it. */
	pthread_create(&th, NULL, gc_deleter_main, &d);
	do {
		got = xlb_ct_gc(ct, now, 100);
		if (got > max_slice)
			max_slice = got;
		slices++;
		rcu_quiescent_state();
		xlb_ct_gc_stats(ct, &gs);
	} while (gs.passes == 0);
	rcu_thread_offline();
	pthread_join(th, NULL);
	rcu_thread_online();

	/* GC_FLOWS * 2 / 2 buckets: the pass took that many / 100 slices,
	 * each a small share of the work (100 buckets hold ~200 slots,
	 * about 100 expired flows). */
	CU_ASSERT_EQUAL(slices, (xlb_ct_buckets(ct) + 99) / 100);
	CU_ASSERT(max_slice < GC_FLOWS / 50);
	CU_ASSERT_EQUAL(gs.deleted, GC_FLOWS / 2);
	/* Every flow was seen through one of its two slots at least, unless
	 * the other thread deleted it first. */
	CU_ASSERT(gs.scanned <= 2 * GC_FLOWS && gs.scanned >= GC_FLOWS - GC_FLOWS / 4);
	xlb_ct_foreach(ct, count_expired, expired_left);
	CU_ASSERT_EQUAL(expired_left[1], 0);
	/* A second pass finds nothing more. */
	CU_ASSERT_EQUAL(gc_passes(ct, now, 1), 0);

	/* Every live flow not deleted by the other thread is still here. */
	for (n = 1; n < GC_FLOWS; n += 2) {
		f = find_conn(ct, IPPROTO_UDP, n, now);
		if (n % 4 == 1) {
			CU_ASSERT_PTR_NULL(f);
		} else if (!f) {
			lost++;
		}
	}
	CU_ASSERT_EQUAL(lost, 0);
	CU_ASSERT_EQUAL(d.deleted, GC_FLOWS / 4);
	CU_ASSERT_EQUAL(xlb_ct_count(ct), GC_FLOWS / 4);
	ct_free(ct);
}

/* A deleted flow's memory is reused only after a grace period: a reader
 * that found it before the delete may still be reading it. */
static void test_reuse_after_grace_period(void)
{
	struct xlb_ct *ct = ct_new(1024);
	struct xlb_ct_stats st = { 0 };
	struct xlb_tuple orig, reply;
	struct xlb_flow *f, *g;

	f = conn_new(ct, IPPROTO_UDP, 1, T0, &st);
	CU_ASSERT_FATAL(f != NULL);
	CU_ASSERT_FATAL(xlb_ct_delete(ct, f));
	CU_ASSERT_FALSE(xlb_ct_delete(ct, f));      /* one deleter only */

	/* Still readable as it was, and not handed out again. */
	CU_ASSERT(f->status & XLB_FLOW_DYING);
	CU_ASSERT_EQUAL(ntohs(f->tuple[XLB_DIR_ORIG].sport), 10001);
	conn_tuples(&orig, &reply, IPPROTO_UDP, 2);
	g = xlb_ct_alloc(ct, &orig, &reply, T0);
	CU_ASSERT_FATAL(g != NULL);
	CU_ASSERT_PTR_NOT_EQUAL(g, f);
	CU_ASSERT_PTR_EQUAL(xlb_ct_insert(ct, g, &st), g);

	/* The collector hands limbo to RCU; after a grace period (all
	 * readers quiescent, the callbacks run) the memory is free again. */
	xlb_ct_gc(ct, T0, 1);
	rcu_quiescent_state();
	rcu_thread_offline();
	rcu_barrier();
	rcu_thread_online();
	conn_tuples(&orig, &reply, IPPROTO_UDP, 3);
	g = xlb_ct_alloc(ct, &orig, &reply, T0);
	CU_ASSERT_PTR_EQUAL(g, f);
	CU_ASSERT_EQUAL(g->status, 0);
	CU_ASSERT_PTR_EQUAL(xlb_ct_insert(ct, g, &st), g);
	CU_ASSERT_EQUAL(xlb_ct_count(ct), 2);
	ct_free(ct);
}

/* Both candidate buckets of a tuple full: the insert chains an overflow
 * bucket and every flow stays findable; only when the overflow pool is used
 * up does an insert fail, counted as chaintoolong (the kernel's counter for
 * a chain too long to insert into). A table created for max 2 has two
 * buckets (14 slots: 7 flows) and 16 overflow buckets; a reload raising
 * max does not grow the index. */
static void test_buckets_full(void)
{
	struct xlb_ct_conf conf;
	struct xlb_ct *ct;
	struct xlb_ct_stats st = { 0 };
	uint32_t n, inserted;

	conf_init(&conf, 2, 1);
	ct = xlb_ct_create(&conf);
	CU_ASSERT_FATAL(ct != NULL);
	CU_ASSERT_EQUAL(xlb_ct_buckets(ct), 2);
	conf.max = 1000;
	xlb_ct_set_conf(ct, &conf);
	for (n = 0; n < 200 && conn_new(ct, IPPROTO_UDP, n, T0, &st); n++)
		;
	inserted = n;
	/* (2 + 16) buckets x 7 slots = 63 flows of two slots each. */
	CU_ASSERT_EQUAL(inserted, 63);
	CU_ASSERT_EQUAL(st.insert, inserted);
	CU_ASSERT_EQUAL(st.chaintoolong, 1);
	CU_ASSERT_EQUAL(xlb_ct_count(ct), inserted);
	for (n = 0; n < inserted; n++) {
		struct xlb_tuple orig, reply;

		conn_tuples(&orig, &reply, IPPROTO_UDP, n);
		CU_ASSERT_PTR_NOT_NULL(find(ct, &orig, T0, NULL));
		CU_ASSERT_PTR_NOT_NULL(find(ct, &reply, T0, NULL));
	}

	/* Expired flows crowding the chains make way (UDP: 30 s). */
	CU_ASSERT_PTR_NOT_NULL(conn_new(ct, IPPROTO_UDP, 500, T0 + 31 * SEC, &st));
	CU_ASSERT_EQUAL(st.chaintoolong, 1);
	/* A deleted flow's slots are reused. */
	CU_ASSERT_TRUE(xlb_ct_delete(ct, find_conn(ct, IPPROTO_UDP, 500, T0 + 31 * SEC)));
	CU_ASSERT_PTR_NOT_NULL(conn_new(ct, IPPROTO_UDP, 501, T0 + 31 * SEC, &st));
	ct_free(ct);
}

/* --- foreach, count, reload ------------------------------------------ */

static int delete_odd(struct xlb_flow *f, void *arg)
{
	struct xlb_ct *ct = arg;

	if (ntohs(f->tuple[XLB_DIR_ORIG].sport) % 2)
		xlb_ct_delete(ct, f);
	return 0;
}

static int stop_at_third(struct xlb_flow *f, void *arg)
{
	(void)f;
	return ++*(int *)arg == 3 ? 42 : 0;
}

static void test_foreach_and_count(void)
{
	struct xlb_ct *ct = ct_new(1000);
	struct xlb_ct_stats st = { 0 };
	unsigned n = 0;
	uint32_t i;
	int seen = 0;

	for (i = 0; i < 100; i++)
		CU_ASSERT_PTR_NOT_NULL(conn_new(ct, IPPROTO_TCP, i, T0, &st));
	/* The same connections again: adopted, not counted twice. */
	for (i = 0; i < 10; i++)
		CU_ASSERT_PTR_NOT_NULL(conn_new(ct, IPPROTO_TCP, i, T0, &st));
	CU_ASSERT_EQUAL(xlb_ct_count(ct), 100);
	CU_ASSERT_EQUAL(st.clash_resolve, 10);
	CU_ASSERT_EQUAL(xlb_ct_max(ct), 1000);

	xlb_ct_foreach(ct, count_flow, &n);
	CU_ASSERT_EQUAL(n, 100);
	CU_ASSERT_EQUAL(xlb_ct_foreach(ct, stop_at_third, &seen), 42);
	CU_ASSERT_EQUAL(seen, 3);

	CU_ASSERT_EQUAL(xlb_ct_foreach(ct, delete_odd, ct), 0);
	CU_ASSERT_EQUAL(xlb_ct_count(ct), 50);
	n = 0;
	xlb_ct_foreach(ct, count_flow, &n);
	CU_ASSERT_EQUAL(n, 50);
	CU_ASSERT_PTR_NULL(find_conn(ct, IPPROTO_TCP, 1, T0));
	CU_ASSERT_PTR_NOT_NULL(find_conn(ct, IPPROTO_TCP, 2, T0));
	rcu_quiescent_state();
	ct_free(ct);
}

static void test_reload_conf(void)
{
	struct xlb_ct *ct = ct_new(1000);
	struct xlb_ct_conf conf;
	struct xlb_ct_stats st = { 0 };
	struct xlb_flow *f;
	struct xlb_pkt p;

	conf_init(&conf, 5, 64);
	conf.timeout[XLB_TO_UDP] = 7;
	xlb_ct_set_conf(ct, &conf);
	CU_ASSERT_EQUAL(xlb_ct_max(ct), 5);
	f = conn_new(ct, IPPROTO_UDP, 1, T0, &st);
	CU_ASSERT_FATAL(f != NULL);
	udp_pkt(&p, f, XLB_DIR_ORIG);
	xlb_ct_track(ct, f, XLB_DIR_ORIG, &p, T0);
	CU_ASSERT_EQUAL(xlb_flow_timeout_left(f, T0), 7);
	ct_free(ct);

	conf.max = 0;
	CU_ASSERT_PTR_NULL(xlb_ct_create(&conf));
}

/* --- who may create a flow ---------------------------------------------- */

#define CT_NEW XLB_CTINFO_NEW
#define CT_EST XLB_CTINFO_ESTABLISHED
#define O XLB_DIR_ORIG
#define R XLB_DIR_REPLY
#define BOTH (XLB_FLOW_SEEN_REPLY | XLB_FLOW_ASSURED)

/* TCP's rules (flags, header, tcp_loose) are test_tcp.c's. */
static void test_may_create(void)
{
	static const struct {
		uint8_t proto, flags, icmp_type;
		bool want;
	} rows[] = {
		{ IPPROTO_UDP, 0, 0, true },
		{ IPPROTO_ICMP, 0, 8, true },           /* echo request */
		{ IPPROTO_ICMP, 0, 0, false },          /* echo reply */
		{ IPPROTO_ICMP, 0, 3, false },          /* unreachable: related, not new */
		{ IPPROTO_ICMPV6, 0, 128, true },
		{ IPPROTO_ICMPV6, 0, 129, false },
	};
	struct xlb_ct *ct = ct_new(64);
	struct xlb_pkt p;
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		memset(&p, 0, sizeof(p));
		p.tuple.proto = rows[i].proto;
		p.tcp_flags = rows[i].flags;
		p.icmp_type = rows[i].icmp_type;
		if (xlb_ct_may_create(ct, &p) != rows[i].want) {
			fprintf(stderr, "\n  may_create row %zu wrong\n", i);
			CU_FAIL("may_create");
		}
	}
	ct_free(ct);
}

/* --- UDP, ICMP, generic ------------------------------------------------- */

static void test_udp(void)
{
	struct xlb_ct *ct = ct_new(64);
	struct xlb_flow *f = conn_new(ct, IPPROTO_UDP, 1, T0, NULL);
	struct xlb_pkt p;

	CU_ASSERT_FATAL(f != NULL);
	udp_pkt(&p, f, O);
	CU_ASSERT_EQUAL(xlb_ct_track(ct, f, O, &p, T0), CT_NEW);
	CU_ASSERT_EQUAL(xlb_flow_timeout_left(f, T0), 30);
	CU_ASSERT_EQUAL(xlb_ct_track(ct, f, O, &p, T0 + SEC / 2), CT_NEW);
	CU_ASSERT_EQUAL(f->status & BOTH, 0);

	udp_pkt(&p, f, R);
	CU_ASSERT_EQUAL(xlb_ct_track(ct, f, R, &p, T0 + SEC), CT_EST);
	CU_ASSERT_EQUAL(f->status & BOTH, XLB_FLOW_SEEN_REPLY);
	CU_ASSERT_EQUAL(xlb_flow_timeout_left(f, T0 + SEC), 30);

	/* Within two seconds of the first packet: a query and its answer,
	 * still short-lived. */
	udp_pkt(&p, f, O);
	CU_ASSERT_EQUAL(xlb_ct_track(ct, f, O, &p, T0 + SEC + SEC / 2), CT_EST);
	CU_ASSERT_EQUAL(f->status & BOTH, XLB_FLOW_SEEN_REPLY);
	CU_ASSERT_EQUAL(xlb_flow_timeout_left(f, T0 + SEC + SEC / 2), 30);

	/* Still talking after that: a stream. */
	CU_ASSERT_EQUAL(xlb_ct_track(ct, f, O, &p, T0 + 3 * SEC), CT_EST);
	CU_ASSERT_EQUAL(f->status & BOTH, BOTH);
	CU_ASSERT_EQUAL(xlb_flow_timeout_left(f, T0 + 3 * SEC), 120);
	ct_free(ct);

	/* Never answered: never a stream, however long it lasts. */
	ct = ct_new(64);
	f = conn_new(ct, IPPROTO_UDP, 2, T0, NULL);
	CU_ASSERT_FATAL(f != NULL);
	udp_pkt(&p, f, O);
	xlb_ct_track(ct, f, O, &p, T0);
	xlb_ct_track(ct, f, O, &p, T0 + 20 * SEC);
	CU_ASSERT_EQUAL(f->status & BOTH, 0);
	CU_ASSERT_EQUAL(xlb_flow_timeout_left(f, T0 + 20 * SEC), 30);
	ct_free(ct);
}

static void test_icmp_and_generic(void)
{
	struct xlb_ct *ct = ct_new(64);
	struct xlb_tuple orig, reply;
	struct xlb_flow *f;
	struct xlb_pkt p;

	/* Echo: identifier in sport, type in dport (request 8, reply 0). */
	tuple4(&orig, IPPROTO_ICMP, CLIENT, VIP, 77, 8);
	tuple4(&reply, IPPROTO_ICMP, BACKEND, CLIENT, 77, 0);
	f = xlb_ct_insert(ct, xlb_ct_alloc(ct, &orig, &reply, T0), NULL);
	CU_ASSERT_FATAL(f != NULL);
	memset(&p, 0, sizeof(p));
	p.tuple = orig;
	p.icmp_type = 8;
	CU_ASSERT_EQUAL(xlb_ct_track(ct, f, O, &p, T0), CT_NEW);
	CU_ASSERT_EQUAL(xlb_flow_timeout_left(f, T0), 30);
	p.tuple = reply;
	p.icmp_type = 0;
	CU_ASSERT_EQUAL(xlb_ct_track(ct, f, R, &p, T0), CT_EST);
	CU_ASSERT_TRUE(f->status & XLB_FLOW_SEEN_REPLY);

	tuple4(&orig, IPPROTO_GRE, CLIENT, VIP, 0, 0);
	tuple4(&reply, IPPROTO_GRE, BACKEND, CLIENT, 0, 0);
	f = xlb_ct_insert(ct, xlb_ct_alloc(ct, &orig, &reply, T0), NULL);
	CU_ASSERT_FATAL(f != NULL);
	memset(&p, 0, sizeof(p));
	p.tuple = orig;
	CU_ASSERT_TRUE(xlb_ct_may_create(ct, &p));
	CU_ASSERT_EQUAL(xlb_ct_track(ct, f, O, &p, T0), CT_NEW);
	CU_ASSERT_EQUAL(xlb_flow_timeout_left(f, T0), 600);
	ct_free(ct);
}

int main(void)
{
	static const struct unit_test tests[] = {
		{ "lookup finds both directions", test_lookup_both_directions },
		{ "insert with the lookup's hash", test_insert_hashed },
		{ "hash seed is random", test_seed_is_random },
		{ "expired and deleted entries never match", test_expired_never_matches },
		{ "insert race: the loser adopts the winner", test_insert_race_loser_adopts_winner },
		{ "hinted lookups answer as lookups", test_lookup_hint },
		{ "concurrent inserts, deletes, lookups and reuse", test_concurrent_stress },
		{ "reply tuple clash fails the insert", test_reply_tuple_clash },
		{ "full table: unassured entries are early-dropped", test_full_table_early_drop },
		{ "full table of ASSURED: new flows dropped", test_full_table_of_assured_refuses },
		{ "GC works in slices, survives deletes", test_gc_slices },
		{ "deleted memory is reused after a grace period", test_reuse_after_grace_period },
		{ "full buckets chain; an empty pool fails the insert", test_buckets_full },
		{ "foreach, delete in foreach, count", test_foreach_and_count },
		{ "reload changes timeouts and max", test_reload_conf },
		{ "who may create a UDP, ICMP, other flow", test_may_create },
		{ "UDP replies, streams, timeouts", test_udp },
		{ "ICMP echo and generic", test_icmp_and_generic },
	};
	int status;

	rcu_register_thread();
	status = UNIT_RUN("flow", NULL, NULL, tests);
	rcu_unregister_thread();
	return status;
}
