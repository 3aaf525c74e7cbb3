/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The TCP tracker, as a user of conntrack would notice it: which segments
 * pass (and with which ctinfo), which are dropped as INVALID, what state
 * the connection is in afterwards and how long it lives. The reference is
 * Linux's nf_conntrack_proto_tcp.c.
 *
 * Every segment is a real frame (Ethernet, IPv4, TCP with options and
 * payload) run through xlb_pkt_parse(), so the tracker reads sequence
 * numbers, windows and options from bytes as it does on the wire. Time is
 * passed in, never read from a clock.
 *
 * Each timeout has its own value here, so the timeout a segment leaves
 * says which rule chose it.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "flow.h"
#include "packet.h"
#include "unit.h"

#define SEC 1000000000ull
#define T0 (1000 * SEC)

/* Seconds; config.h's order. ESTABLISHED is the only state timeout above
 * max_retrans and unacknowledged, as with the kernel's defaults. */
#define TO_SS     11
#define TO_SR     12
#define TO_ES     10000
#define TO_FW     14
#define TO_CW     15
#define TO_LA     16
#define TO_TW     17
#define TO_CL     18
#define TO_RETRANS 300
#define TO_UNACK   400

static const uint32_t test_timeouts[XLB_TO_MAX] = {
	TO_SS, TO_SR, TO_ES, TO_FW, TO_CW, TO_LA, TO_TW, TO_CL, TO_RETRANS, TO_UNACK,
	30, 120, 30, 600,
};

#define CLIENT  0xc6120001u   /* 198.18.0.1 */
#define VIP     0xc6120064u   /* 198.18.0.100 */
#define BACKEND 0xc6120202u   /* 198.18.2.2 */
#define CPORT   10001
#define VPORT   80
#define BPORT   8080

/* Initial sequence numbers of the client and the server. */
#define C 1000u
#define S 5000u

#define O XLB_DIR_ORIG
#define R XLB_DIR_REPLY
#define SYN XLB_TCP_SYN
#define ACK XLB_TCP_ACK
#define FIN XLB_TCP_FIN
#define RST XLB_TCP_RST
#define PSH XLB_TCP_PSH
#define URG XLB_TCP_URG
#define ECE XLB_TCP_ECE
#define CWR XLB_TCP_CWR
#define CT_NEW XLB_CTINFO_NEW
#define CT_EST XLB_CTINFO_ESTABLISHED
#define CT_INV XLB_CTINFO_INVALID

/* --- frames ----------------------------------------------------------- */

static void conf_init(struct xlb_ct_conf *conf)
{
	memset(conf, 0, sizeof(*conf));
	conf->max = 64;
	conf->buckets = 64;
	memcpy(conf->timeout, test_timeouts, sizeof(conf->timeout));
	conf->tcp_loose = true;
}

static void tuple4(struct xlb_tuple *t, uint32_t src, uint32_t dst, uint16_t sport,
		   uint16_t dport)
{
	memset(t, 0, sizeof(*t));
	xlb_addr_from_v4(&t->src, htonl(src));
	xlb_addr_from_v4(&t->dst, htonl(dst));
	t->sport = htons(sport);
	t->dport = htons(dport);
	t->proto = IPPROTO_TCP;
	t->family = AF_INET;
}

/* Client -> VIP, DNATed to the backend; replies come from the backend. */
static void conn_tuples(struct xlb_tuple *orig, struct xlb_tuple *reply)
{
	tuple4(orig, CLIENT, VIP, CPORT, VPORT);
	tuple4(reply, BACKEND, CLIENT, BPORT, CPORT);
}

#define ZERO_WIN (-1)

/* One segment to send. */
struct tx {
	enum xlb_dir dir;
	uint8_t flags;
	uint32_t seq, ack;
	int32_t win;                 /* 0: 65535; ZERO_WIN: a zero window */
	uint16_t len;                /* payload bytes */
	const uint8_t *opt;          /* TCP options, a multiple of 4 bytes */
	uint8_t optlen;
};

struct frame {
	uint8_t b[2048];
	struct xlb_pkt p;
};

static void put16(uint8_t *b, uint16_t v)
{
	b[0] = (uint8_t)(v >> 8);
	b[1] = (uint8_t)v;
}

static void put32(uint8_t *b, uint32_t v)
{
	put16(b, (uint16_t)(v >> 16));
	put16(b + 2, (uint16_t)v);
}

/* Ethernet + IPv4 + TCP as they would arrive, parsed like the workers do. */
static void build(struct frame *f, const struct tx *t)
{
	uint8_t *ip = f->b + 14, *th = ip + 20;
	uint16_t tcp_len = (uint16_t)(20 + t->optlen + t->len);
	uint32_t src = t->dir == O ? CLIENT : BACKEND, dst = t->dir == O ? VIP : CLIENT;

	memset(f, 0, sizeof(*f));
	CU_ASSERT_FATAL(20u + t->optlen + t->len + 34u <= sizeof(f->b) && t->optlen % 4 == 0);
	put16(f->b + 12, 0x0800);
	ip[0] = 0x45;
	put16(ip + 2, (uint16_t)(20 + tcp_len));
	ip[8] = 64;
	ip[9] = IPPROTO_TCP;
	put32(ip + 12, src);
	put32(ip + 16, dst);
	put16(th, t->dir == O ? CPORT : BPORT);
	put16(th + 2, t->dir == O ? VPORT : CPORT);
	put32(th + 4, t->seq);
	put32(th + 8, t->ack);
	th[12] = (uint8_t)((20 + t->optlen) / 4 << 4);
	th[13] = t->flags;
	put16(th + 14, t->win == ZERO_WIN ? 0 : t->win ? (uint16_t)t->win : 65535);
	if (t->optlen)
		memcpy(th + 20, t->opt, t->optlen);
	memset(th + 20 + t->optlen, 'x', t->len);
	CU_ASSERT_EQUAL_FATAL(xlb_pkt_parse(&f->p, f->b, 34u + tcp_len), XLB_PARSE_OK);
}

/* --- a connection under test ------------------------------------------- */

struct conn {
	struct xlb_ct *ct;
	struct xlb_flow *f;
	uint64_t now;
};

static void conn_open(struct conn *c, const struct xlb_ct_conf *conf)
{
	struct xlb_ct_conf def;
	struct xlb_tuple orig, reply;

	if (!conf) {
		conf_init(&def);
		conf = &def;
	}
	c->ct = xlb_ct_create(conf);
	CU_ASSERT_FATAL(c->ct != NULL);
	conn_tuples(&orig, &reply);
	c->now = T0;
	c->f = xlb_ct_insert(c->ct, xlb_ct_alloc(c->ct, &orig, &reply, c->now), NULL);
	CU_ASSERT_FATAL(c->f != NULL);
}

static void conn_close(struct conn *c)
{
	rcu_barrier();
	xlb_ct_destroy(c->ct);
	rcu_barrier();
}

/* Track one segment at c->now. */
static enum xlb_ctinfo xmit(struct conn *c, const struct tx *t)
{
	struct frame fr;

	build(&fr, t);
	return xlb_ct_track(c->ct, c->f, t->dir, &fr.p, c->now);
}

/* A struct tx, positional for the four fields every segment has, then
 * designated ones: TX(O, ACK, seq, ack, .len = 100). */
#define TXI(d, fl, sq, ak, ...) { .dir = (d), .flags = (fl), .seq = (sq), .ack = (ak), __VA_ARGS__ }
#define TX(...) ((struct tx)TXI(__VA_ARGS__))
#define SEND(c, ...) xmit((c), &TX(__VA_ARGS__))

static bool gone(struct conn *c)
{
	struct xlb_tuple orig, reply;

	conn_tuples(&orig, &reply);
	return xlb_ct_lookup(c->ct, &orig, xlb_ct_hash(c->ct, &orig), c->now, &(enum xlb_dir){ O })
	       == NULL;
}

static uint32_t left(struct conn *c)
{
	return xlb_flow_timeout_left(c->f, c->now);
}

/* The client's and the server's next sequence numbers after a script. */
struct nexts {
	uint32_t c, s;
};

static void handshake(struct conn *c)
{
	CU_ASSERT_EQUAL(SEND(c, O, SYN, C, 0), CT_NEW);
	CU_ASSERT_EQUAL(SEND(c, R, SYN | ACK, S, C + 1), CT_EST);
	CU_ASSERT_EQUAL(SEND(c, O, ACK, C + 1, S + 1), CT_EST);
	CU_ASSERT_EQUAL_FATAL(c->f->tcp_state, XLB_TCP_ESTABLISHED);
}

/* --- the state table ----------------------------------------------------- */

/* How to bring a fresh connection into each state with in-window
 * segments, and where both sides' sequence numbers are then. */
struct prefix {
	uint8_t state;
	struct nexts next;
	struct tx steps[10];
};

static const struct prefix prefixes[XLB_TCP_MAX] = {
	[XLB_TCP_NONE] = { XLB_TCP_NONE, { C, S }, { { 0 } } },
	[XLB_TCP_SYN_SENT] = { XLB_TCP_SYN_SENT, { C + 1, S }, {
		TXI(O, SYN, C, 0),
		{ 0 } } },
	[XLB_TCP_SYN_SENT2] = { XLB_TCP_SYN_SENT2, { C + 1, S + 1 }, {
		TXI(O, SYN, C, 0),
		TXI(R, SYN, S, 0),
		{ 0 } } },
	[XLB_TCP_SYN_RECV] = { XLB_TCP_SYN_RECV, { C + 1, S + 1 }, {
		TXI(O, SYN, C, 0),
		TXI(R, SYN | ACK, S, C + 1),
		{ 0 } } },
	[XLB_TCP_ESTABLISHED] = { XLB_TCP_ESTABLISHED, { C + 1, S + 1 }, {
		TXI(O, SYN, C, 0),
		TXI(R, SYN | ACK, S, C + 1),
		TXI(O, ACK, C + 1, S + 1),
		{ 0 } } },
	[XLB_TCP_FIN_WAIT] = { XLB_TCP_FIN_WAIT, { C + 2, S + 1 }, {
		TXI(O, SYN, C, 0),
		TXI(R, SYN | ACK, S, C + 1),
		TXI(O, ACK, C + 1, S + 1),
		TXI(O, FIN | ACK, C + 1, S + 1),
		{ 0 } } },
	[XLB_TCP_CLOSE_WAIT] = { XLB_TCP_CLOSE_WAIT, { C + 2, S + 1 }, {
		TXI(O, SYN, C, 0),
		TXI(R, SYN | ACK, S, C + 1),
		TXI(O, ACK, C + 1, S + 1),
		TXI(O, FIN | ACK, C + 1, S + 1),
		TXI(R, ACK, S + 1, C + 2),
		{ 0 } } },
	[XLB_TCP_LAST_ACK] = { XLB_TCP_LAST_ACK, { C + 2, S + 2 }, {
		TXI(O, SYN, C, 0),
		TXI(R, SYN | ACK, S, C + 1),
		TXI(O, ACK, C + 1, S + 1),
		TXI(O, FIN | ACK, C + 1, S + 1),
		TXI(R, ACK, S + 1, C + 2),
		TXI(R, FIN | ACK, S + 1, C + 2),
		{ 0 } } },
	[XLB_TCP_TIME_WAIT] = { XLB_TCP_TIME_WAIT, { C + 2, S + 2 }, {
		TXI(O, SYN, C, 0),
		TXI(R, SYN | ACK, S, C + 1),
		TXI(O, ACK, C + 1, S + 1),
		TXI(O, FIN | ACK, C + 1, S + 1),
		TXI(R, ACK, S + 1, C + 2),
		TXI(R, FIN | ACK, S + 1, C + 2),
		TXI(O, ACK, C + 2, S + 2),
		{ 0 } } },
	[XLB_TCP_CLOSE] = { XLB_TCP_CLOSE, { C + 1, S + 1 }, {
		TXI(O, SYN, C, 0),
		TXI(R, SYN | ACK, S, C + 1),
		TXI(O, ACK, C + 1, S + 1),
		TXI(O, RST, C + 1, 0),
		{ 0 } } },
};

enum probe { P_SYN, P_SYNACK, P_FIN, P_ACK, P_RST, P_NONE, P_MAX };

/* Expected after the probe: a state (GONE: the flow was deleted, for
 * good or to be reopened), a ctinfo and a timeout in seconds (KEEP: not
 * refreshed). */
#define GONE XLB_TCP_MAX
#define KEEP 0
#define IV_ CT_INV

struct cell {
	uint8_t state;
	enum xlb_ctinfo ctinfo;
	uint32_t timeout;
};

#define NO_ XLB_TCP_NONE
#define SS_ XLB_TCP_SYN_SENT
#define SR_ XLB_TCP_SYN_RECV
#define ES_ XLB_TCP_ESTABLISHED
#define FW_ XLB_TCP_FIN_WAIT
#define CW_ XLB_TCP_CLOSE_WAIT
#define LA_ XLB_TCP_LAST_ACK
#define TW_ XLB_TCP_TIME_WAIT
#define CL_ XLB_TCP_CLOSE
#define S2_ XLB_TCP_SYN_SENT2
#define SAME 0xff                 /* the state the probe found */
#define INVALID { SAME, CT_INV, KEEP }

/*
 * [direction][state][probe]. Probes carry the sequence numbers each side
 * would use next (SYNs and SYN/ACKs their initial ones again), so they are
 * in window: what is tested here is the state machine. A few cells follow
 * from the kernel's rules beyond the table and say why.
 */
static const struct cell cells[2][XLB_TCP_MAX][P_MAX] = {
	[O] = {
		/*             SYN                   SYN/ACK               FIN                 ACK                 RST                 NONE */
		[NO_] = { { SS_, CT_NEW, TO_SS }, INVALID, INVALID,
			  /* picked up (tcp_loose); no ACK with a window seen
			   * yet, so the zero-window rule caps it */
			  { ES_, CT_NEW, TO_RETRANS }, INVALID, INVALID },
		/* A retransmitted SYN does not extend an unanswered entry; a
		 * RST before any reply deletes it. */
		[SS_] = { { SS_, CT_NEW, KEEP }, INVALID, INVALID, INVALID,
			  { GONE, CT_NEW, KEEP }, INVALID },
		[S2_] = { { S2_, CT_EST, TO_SS }, { SR_, CT_EST, TO_SR }, INVALID, INVALID,
			  { CL_, CT_EST, TO_CL }, INVALID },
		[SR_] = { { SAME, CT_EST, KEEP }, { SR_, CT_EST, TO_SR }, { FW_, CT_EST, TO_FW },
			  { ES_, CT_EST, TO_ES }, { CL_, CT_EST, TO_CL }, INVALID },
		[ES_] = { { SAME, CT_EST, KEEP }, INVALID, { FW_, CT_EST, TO_FW },
			  { ES_, CT_EST, TO_ES }, { CL_, CT_EST, TO_CL }, INVALID },
		[FW_] = { { SAME, CT_EST, KEEP }, INVALID, { LA_, CT_EST, TO_LA },
			  { CW_, CT_EST, TO_CW }, { CL_, CT_EST, TO_CL }, INVALID },
		[CW_] = { { SAME, CT_EST, KEEP }, INVALID, { LA_, CT_EST, TO_LA },
			  { CW_, CT_EST, TO_CW }, { CL_, CT_EST, TO_CL }, INVALID },
		[LA_] = { { SAME, CT_EST, KEEP }, INVALID, { LA_, CT_EST, TO_LA },
			  { TW_, CT_EST, TO_TW }, { CL_, CT_EST, TO_CL }, INVALID },
		/* A SYN on a closed connection starts a new one. */
		[TW_] = { { GONE, CT_NEW, KEEP }, INVALID, { TW_, CT_EST, TO_TW },
			  { TW_, CT_EST, TO_TW }, { CL_, CT_EST, TO_CL }, INVALID },
		[CL_] = { { GONE, CT_NEW, KEEP }, INVALID, { CL_, CT_EST, TO_CL },
			  { CL_, CT_EST, TO_CL }, { CL_, CT_EST, TO_CL }, INVALID },
	},
	[R] = {
		[NO_] = { INVALID, INVALID, INVALID, INVALID, INVALID, INVALID },
		/* Simultaneous open; the server's ACK to a bare SYN may be a
		 * half-open peer's and is ignored; its RST, the only answer,
		 * deletes the entry. The SYN, like any SYN before a reply,
		 * does not extend the entry. */
		[SS_] = { { S2_, CT_EST, KEEP }, { SR_, CT_EST, TO_SR }, INVALID,
			  { SAME, CT_EST, KEEP }, { GONE, CT_EST, KEEP }, INVALID },
		[S2_] = { { S2_, CT_EST, TO_SS }, { SR_, CT_EST, TO_SR }, INVALID,
			  { SAME, CT_EST, KEEP }, { CL_, CT_EST, TO_CL }, INVALID },
		[SR_] = { INVALID, { SAME, CT_EST, KEEP }, { FW_, CT_EST, TO_FW },
			  { SR_, CT_EST, TO_SR }, { CL_, CT_EST, TO_CL }, INVALID },
		[ES_] = { INVALID, { SAME, CT_EST, KEEP }, { FW_, CT_EST, TO_FW },
			  { ES_, CT_EST, TO_ES }, { CL_, CT_EST, TO_CL }, INVALID },
		[FW_] = { INVALID, { SAME, CT_EST, KEEP }, { LA_, CT_EST, TO_LA },
			  { CW_, CT_EST, TO_CW }, { CL_, CT_EST, TO_CL }, INVALID },
		[CW_] = { INVALID, { SAME, CT_EST, KEEP }, { LA_, CT_EST, TO_LA },
			  { CW_, CT_EST, TO_CW }, { CL_, CT_EST, TO_CL }, INVALID },
		[LA_] = { INVALID, { SAME, CT_EST, KEEP }, { LA_, CT_EST, TO_LA },
			  { TW_, CT_EST, TO_TW }, { CL_, CT_EST, TO_CL }, INVALID },
		/* The server opening the next connection (roles switched). */
		[TW_] = { { GONE, CT_NEW, KEEP }, { SAME, CT_EST, KEEP }, { TW_, CT_EST, TO_TW },
			  { TW_, CT_EST, TO_TW }, { CL_, CT_EST, TO_CL }, INVALID },
		[CL_] = { INVALID, { SAME, CT_EST, KEEP }, { CL_, CT_EST, TO_CL },
			  { CL_, CT_EST, TO_CL }, { CL_, CT_EST, TO_CL }, INVALID },
	},
};

static struct tx probe_tx(enum xlb_dir dir, enum probe pr, struct nexts n)
{
	uint32_t mine = dir == O ? n.c : n.s, theirs = dir == O ? n.s : n.c;
	uint32_t isn = dir == O ? C : S;

	switch (pr) {
	case P_SYN:
		return TX(dir, SYN, isn, 0);
	case P_SYNACK:
		return TX(dir, SYN | ACK, isn, theirs);
	case P_FIN:
		return TX(dir, FIN | ACK, mine, theirs);
	case P_ACK:
		return TX(dir, ACK, mine, theirs);
	case P_RST:
		return TX(dir, RST, mine, 0);
	default:
		return TX(dir, PSH, mine, 0);   /* no SYN, FIN, RST or ACK */
	}
}

static const char *const probe_names[P_MAX] = { "SYN", "SYN/ACK", "FIN", "ACK", "RST", "NONE" };

static void test_state_table(void)
{
	unsigned bad = 0, cells_run = 0;
	int dir, st, pr;

	for (dir = O; dir <= R; dir++) {
		for (st = 0; st < XLB_TCP_MAX; st++) {
			for (pr = 0; pr < P_MAX; pr++) {
				const struct prefix *px = &prefixes[st];
				const struct cell *want = &cells[dir][st][pr];
				uint8_t want_state = want->state == SAME ? st : want->state;
				struct tx t = probe_tx(dir, pr, px->next);
				enum xlb_ctinfo got;
				uint64_t expires;
				struct conn c;
				bool ok;
				int k;

				conn_open(&c, NULL);
				for (k = 0; px->steps[k].flags; k++) {
					if (xmit(&c, &px->steps[k]) == CT_INV)
						CU_FAIL("prefix segment invalid");
				}
				CU_ASSERT_EQUAL_FATAL(c.f->tcp_state, px->state);
				/* Later, but before the shortest timeout. */
				c.now += 5 * SEC;
				expires = c.f->expires;
				got = xmit(&c, &t);
				if (want->state == GONE)
					ok = gone(&c);
				else
					ok = !gone(&c) && c.f->tcp_state == want_state &&
					     (want->timeout == KEEP ? c.f->expires == expires
								    : left(&c) == want->timeout);
				ok = ok && got == want->ctinfo;
				if (!ok) {
					fprintf(stderr,
						"\n  %s %s in %s: got %s ctinfo %d timeout %u%s, want %s ctinfo %d timeout %u",
						dir == O ? "client" : "server", probe_names[pr],
						xlb_tcp_state_name(st), xlb_tcp_state_name(c.f->tcp_state),
						got, expires == c.f->expires ? 0 : left(&c),
						gone(&c) ? " (deleted)" : "",
						want->state == GONE ? "deleted" : xlb_tcp_state_name(want_state),
						want->ctinfo, want->timeout);
					bad++;
				}
				cells_run++;
				conn_close(&c);
			}
		}
	}
	CU_ASSERT_EQUAL(cells_run, 2 * XLB_TCP_MAX * P_MAX);
	CU_ASSERT_EQUAL(bad, 0);
}

/* --- scenarios ------------------------------------------------------------ */

struct step {
	struct tx tx;
	uint8_t state;               /* expected after it; GONE: deleted */
	enum xlb_ctinfo ctinfo;
};

struct scenario {
	const char *name;
	struct step steps[10];
};

/* Option bytes: window scale 7 and SACK permitted, NOP-padded. */
static const uint8_t opt_ws7_sack[8] = { 1, 3, 3, 7, 1, 1, 4, 2 };

static const struct scenario scenarios[] = {
	{ "three-way handshake, data both ways, FIN from the client", {
		{ TXI(O, SYN, C, 0, .opt = opt_ws7_sack, .optlen = 8), SS_, CT_NEW },
		{ TXI(R, SYN | ACK, S, C + 1, .opt = opt_ws7_sack, .optlen = 8), SR_, CT_EST },
		{ TXI(O, ACK, C + 1, S + 1), ES_, CT_EST },
		{ TXI(O, ACK | PSH, C + 1, S + 1, .len = 100), ES_, CT_EST },
		{ TXI(R, ACK | PSH, S + 1, C + 101, .len = 1000), ES_, CT_EST },
		{ TXI(O, FIN | ACK, C + 101, S + 1001), FW_, CT_EST },
		{ TXI(R, FIN | ACK, S + 1001, C + 102), LA_, CT_EST },
		{ TXI(O, ACK, C + 102, S + 1002), TW_, CT_EST },
		{ TXI(O, ACK, C + 102, S + 1002), TW_, CT_EST },
		{ .tx = { 0 } } } },
	{ "simultaneous open", {
		{ TXI(O, SYN, C, 0), SS_, CT_NEW },
		{ TXI(R, SYN, S, 0), S2_, CT_EST },
		{ TXI(O, SYN | ACK, C, S + 1), SR_, CT_EST },
		{ TXI(R, SYN | ACK, S, C + 1), SR_, CT_EST },
		{ TXI(R, ACK, S + 1, C + 1), ES_, CT_EST },
		{ .tx = { 0 } } } },
	{ "server closes first, FINs cross", {
		{ TXI(O, SYN, C, 0), SS_, CT_NEW },
		{ TXI(R, SYN | ACK, S, C + 1), SR_, CT_EST },
		{ TXI(O, ACK, C + 1, S + 1), ES_, CT_EST },
		{ TXI(R, FIN | ACK | PSH, S + 1, C + 1), FW_, CT_EST },
		{ TXI(O, FIN | ACK, C + 1, S + 1), LA_, CT_EST },
		{ TXI(O, FIN | ACK, C + 1, S + 1), LA_, CT_EST },    /* retransmitted */
		{ TXI(R, ACK, S + 2, C + 2), TW_, CT_EST },
		{ .tx = { 0 } } } },
	{ "refused: RST|ACK with sequence 0 answering the SYN", {
		{ TXI(O, SYN, C, 0), SS_, CT_NEW },
		{ TXI(R, RST | ACK, 0, C + 1), GONE, CT_EST },
		{ .tx = { 0 } } } },
	{ "a RST answering the SYN must ACK it", {
		{ TXI(O, SYN, C, 0), SS_, CT_NEW },
		{ TXI(R, RST | ACK, 0, C + 5000), SS_, CT_INV },
		{ .tx = { 0 } } } },
	{ "SYN in ESTABLISHED ignored, then resync on its SYN/ACK", {
		{ TXI(O, SYN, C, 0), SS_, CT_NEW },
		{ TXI(R, SYN | ACK, S, C + 1), SR_, CT_EST },
		{ TXI(O, ACK, C + 1, S + 1), ES_, CT_EST },
		{ TXI(O, SYN, 70000, 0), ES_, CT_EST },
		{ TXI(R, SYN | ACK, 90000, 70001), SR_, CT_EST },
		{ TXI(O, ACK, 70001, 90001), ES_, CT_EST },
		{ TXI(O, ACK | PSH, 70001, 90001, .len = 500), ES_, CT_EST },
		/* The old connection's data: far left of the new window,
		 * an old retransmission to let through and ignore. */
		{ TXI(O, ACK | PSH, C + 1, S + 1, .len = 500), ES_, CT_EST },
		{ TXI(O, ACK, 70501, 95000), ES_, CT_INV },     /* ACKs what was never sent */
		{ .tx = { 0 } } } },
	{ "ignored SYN, unrelated SYN/ACK: no resync", {
		{ TXI(O, SYN, C, 0), SS_, CT_NEW },
		{ TXI(R, SYN | ACK, S, C + 1), SR_, CT_EST },
		{ TXI(O, ACK, C + 1, S + 1), ES_, CT_EST },
		{ TXI(O, SYN, 70000, 0), ES_, CT_EST },
		{ TXI(R, SYN | ACK, 90000, 55), ES_, CT_EST },
		{ .tx = { 0 } } } },
	{ "challenge ACK in LAST_ACK is not the last ACK", {
		{ TXI(O, SYN, C, 0), SS_, CT_NEW },
		{ TXI(R, SYN | ACK, S, C + 1), SR_, CT_EST },
		{ TXI(O, ACK, C + 1, S + 1), ES_, CT_EST },
		{ TXI(O, FIN | ACK, C + 1, S + 1), FW_, CT_EST },
		{ TXI(R, FIN | ACK, S + 1, C + 2), LA_, CT_EST },
		{ TXI(O, SYN, 70000, 0), LA_, CT_EST },
		{ TXI(R, ACK, S + 2, C + 2), LA_, CT_EST },          /* the challenge ACK */
		{ TXI(O, ACK, C + 2, S + 2), TW_, CT_EST },
		{ .tx = { 0 } } } },
	{ "challenge ACK to a SYN, and the client's RST to it", {
		{ TXI(O, SYN, C, 0), SS_, CT_NEW },
		{ TXI(R, ACK, 777777, 12345), SS_, CT_EST },           /* half-open server */
		{ TXI(O, RST, 12345, 0), CL_, CT_EST },
		{ .tx = { 0 } } } },
	{ "client ACK before the SYN/ACK, FIN in SYN_SENT: invalid", {
		{ TXI(O, SYN, C, 0), SS_, CT_NEW },
		{ TXI(O, ACK, C + 1, S + 1), SS_, CT_INV },
		{ TXI(O, FIN | ACK, C + 1, S + 1), SS_, CT_INV },
		{ TXI(R, FIN | ACK, S + 1, C + 1), SS_, CT_INV },
		{ .tx = { 0 } } } },
	{ "SYN/ACK from the client first: no connection", {
		{ TXI(O, SYN | ACK, C, S), NO_, CT_INV },
		{ .tx = { 0 } } } },
	{ "reply before anything: no connection", {
		{ TXI(R, ACK, S, C), NO_, CT_INV },
		{ .tx = { 0 } } } },
};

static void test_scenarios(void)
{
	size_t i, k;

	for (i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
		const struct scenario *sc = &scenarios[i];
		struct conn c;

		conn_open(&c, NULL);
		for (k = 0; sc->steps[k].tx.flags; k++) {
			const struct step *st = &sc->steps[k];
			enum xlb_ctinfo got;
			bool is_gone;

			c.now += SEC;
			got = xmit(&c, &st->tx);
			is_gone = gone(&c);
			if (got != st->ctinfo || (st->state == GONE) != is_gone ||
			    (!is_gone && c.f->tcp_state != st->state)) {
				fprintf(stderr, "\n  %s, step %zu: got %s ctinfo %d%s, want %s ctinfo %d",
					sc->name, k + 1, xlb_tcp_state_name(c.f->tcp_state), got,
					is_gone ? " (deleted)" : "",
					st->state == GONE ? "deleted" : xlb_tcp_state_name(st->state),
					st->ctinfo);
				CU_FAIL("scenario");
				break;
			}
			if (is_gone)
				break;
		}
		conn_close(&c);
	}
}

/* --- flags and headers ----------------------------------------------------- */

/* Only what a TCP sends passes; PSH, ECE and CWR never matter. Anything
 * else is dropped, and changes nothing, whatever the state. */
static void test_invalid_flags(void)
{
	static const struct {
		uint8_t flags;
		bool valid;
	} rows[] = {
		{ SYN, true }, { SYN | URG, true }, { SYN | ACK, true }, { SYN | ECE | CWR, true },
		{ RST, true }, { RST | ACK, true }, { FIN | ACK, true }, { FIN | ACK | URG, true },
		{ ACK, true }, { ACK | URG, true }, { ACK | PSH | ECE | CWR, true },
		{ 0, false }, { PSH, false }, { URG, false }, { FIN, false }, { FIN | PSH, false },
		{ SYN | FIN, false }, { SYN | RST, false }, { SYN | ACK | FIN, false },
		{ SYN | ACK | RST, false }, { RST | FIN, false }, { RST | ACK | URG, false },
		{ RST | ACK | FIN, false }, { FIN | URG, false }, { SYN | FIN | RST | ACK | URG, false },
	};
	static const uint8_t states[] = { SS_, ES_, FW_, TW_ };
	size_t i, k;

	for (k = 0; k < sizeof(states); k++) {
		for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
			const struct prefix *px = &prefixes[states[k]];
			struct conn c;
			uint64_t expires;
			enum xlb_ctinfo got;
			int j;

			if (rows[i].valid)
				continue;
			conn_open(&c, NULL);
			for (j = 0; px->steps[j].flags; j++)
				xmit(&c, &px->steps[j]);
			c.now += SEC;
			expires = c.f->expires;
			got = SEND(&c, O, rows[i].flags, px->next.c, px->next.s);
			CU_ASSERT_EQUAL(got, CT_INV);
			got = SEND(&c, R, rows[i].flags, px->next.s, px->next.c);
			CU_ASSERT_EQUAL(got, CT_INV);
			CU_ASSERT_EQUAL(c.f->tcp_state, px->state);
			CU_ASSERT_EQUAL(c.f->expires, expires);
			CU_ASSERT_FALSE(gone(&c));
			conn_close(&c);
		}
	}

	/* Who may start a connection: a SYN, or with tcp_loose a segment
	 * with ACK and no SYN, FIN or RST. */
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct xlb_ct_conf conf;
		struct xlb_ct *ct;
		struct frame fr;
		uint8_t fl = rows[i].flags & (uint8_t)~(PSH | ECE | CWR | URG);
		bool want = rows[i].valid && (fl == SYN || fl == ACK);

		conf_init(&conf);
		ct = xlb_ct_create(&conf);
		CU_ASSERT_FATAL(ct != NULL);
		build(&fr, &TX(O, rows[i].flags, C, S));
		if (xlb_ct_may_create(ct, &fr.p) != want) {
			fprintf(stderr, "\n  may_create flags %#x: want %d", rows[i].flags, want);
			CU_FAIL("may_create");
		}
		conf.tcp_loose = false;
		xlb_ct_set_conf(ct, &conf);
		CU_ASSERT_EQUAL(xlb_ct_may_create(ct, &fr.p), want && fl == SYN);
		xlb_ct_destroy(ct);
	}
}

/* A header that is not all there, or says it is longer than the segment:
 * the kernel's "truncated packet". The parser refuses these too; the
 * tracker must not depend on it. */
static void test_truncated_header(void)
{
	struct frame fr;
	struct conn c;
	uint64_t expires;

	conn_open(&c, NULL);
	handshake(&c);
	expires = c.f->expires;

	build(&fr, &TX(O, ACK, C + 1, S + 1, .len = 10));
	fr.p.l4_len = 19;
	CU_ASSERT_EQUAL(xlb_ct_track(c.ct, c.f, O, &fr.p, c.now), CT_INV);
	CU_ASSERT_FALSE(xlb_ct_may_create(c.ct, &fr.p));

	build(&fr, &TX(O, ACK, C + 1, S + 1));
	fr.b[34 + 12] = 4 << 4;                  /* data offset under 5 words */
	CU_ASSERT_EQUAL(xlb_ct_track(c.ct, c.f, O, &fr.p, c.now), CT_INV);

	build(&fr, &TX(O, ACK, C + 1, S + 1, .len = 8));
	fr.b[34 + 12] = 8 << 4;                  /* 32-byte header, 28 bytes there */
	CU_ASSERT_EQUAL(xlb_ct_track(c.ct, c.f, O, &fr.p, c.now), CT_INV);
	build(&fr, &TX(O, SYN, C, 0));
	fr.b[34 + 12] = 6 << 4;
	CU_ASSERT_FALSE(xlb_ct_may_create(c.ct, &fr.p));

	build(&fr, &TX(O, ACK, C + 1, S + 1));
	fr.p.data = NULL;
	CU_ASSERT_EQUAL(xlb_ct_track(c.ct, c.f, O, &fr.p, c.now), CT_INV);

	CU_ASSERT_EQUAL(c.f->tcp_state, ES_);
	CU_ASSERT_EQUAL(c.f->expires, expires);
	conn_close(&c);
}

/* --- window tracking ------------------------------------------------------- */

/* Handshake where the server offers a 1000-byte window, no scaling. */
static void small_window_handshake(struct conn *c)
{
	CU_ASSERT_EQUAL(SEND(c, O, SYN, C, 0), CT_NEW);
	CU_ASSERT_EQUAL(SEND(c, R, SYN | ACK, S, C + 1, .win = 1000), CT_EST);
	CU_ASSERT_EQUAL(SEND(c, O, ACK, C + 1, S + 1), CT_EST);
	CU_ASSERT_EQUAL_FATAL(c->f->tcp_state, ES_);
}

static void test_window_bounds(void)
{
	struct conn c;
	uint64_t expires;

	conn_open(&c, NULL);
	small_window_handshake(&c);

	/* In window: passes, and data in flight shortens the timeout. */
	c.now += SEC;
	CU_ASSERT_EQUAL(SEND(&c, O, ACK | PSH, C + 1, S + 1, .len = 1000), CT_EST);
	CU_ASSERT_EQUAL(left(&c), TO_UNACK);
	CU_ASSERT_EQUAL(SEND(&c, R, ACK, S + 1, C + 1001, .win = 1000), CT_EST);
	CU_ASSERT_EQUAL(left(&c), TO_ES);

	/* Far right of the receiver's window: INVALID, nothing changes,
	 * not even a FIN's state change. */
	c.now += SEC;
	expires = c.f->expires;
	CU_ASSERT_EQUAL(SEND(&c, O, ACK | PSH, C + 6001, S + 1, .len = 100), CT_INV);
	CU_ASSERT_EQUAL(SEND(&c, O, FIN | ACK, C + 6001, S + 1), CT_INV);
	CU_ASSERT_EQUAL(c.f->tcp_state, ES_);
	/* An ACK for data the server never sent: INVALID. */
	CU_ASSERT_EQUAL(SEND(&c, O, ACK, C + 1001, S + 11), CT_INV);
	CU_ASSERT_EQUAL(c.f->expires, expires);

	/* An ACK far below anything recent: let through, ignored. */
	CU_ASSERT_EQUAL(SEND(&c, O, ACK, C + 1001, S + 1 - 70000), CT_EST);
	CU_ASSERT_EQUAL(c.f->expires, expires);

	/* Two more windows' worth, each acknowledged. */
	CU_ASSERT_EQUAL(SEND(&c, O, ACK | PSH, C + 1001, S + 1, .len = 1000), CT_EST);
	CU_ASSERT_EQUAL(SEND(&c, R, ACK, S + 1, C + 2001, .win = 1000), CT_EST);
	CU_ASSERT_EQUAL(SEND(&c, O, ACK | PSH, C + 2001, S + 1, .len = 1000), CT_EST);
	CU_ASSERT_EQUAL(SEND(&c, R, ACK, S + 1, C + 3001, .win = 1000), CT_EST);

	/* Left of the window: a retransmission of long-acknowledged data
	 * passes but is ignored; an old FIN does not start the close. */
	c.now += SEC;
	expires = c.f->expires;
	CU_ASSERT_EQUAL(SEND(&c, O, ACK | PSH, C + 1, S + 1, .len = 1000), CT_EST);
	CU_ASSERT_EQUAL(SEND(&c, O, FIN | ACK, C + 1, S + 1), CT_EST);
	CU_ASSERT_EQUAL(c.f->tcp_state, ES_);
	CU_ASSERT_EQUAL(c.f->expires, expires);

	/* A little over the right edge (less than a window): stacks that
	 * overshoot are let through without a state change... */
	CU_ASSERT_EQUAL(SEND(&c, O, FIN | ACK | PSH, C + 4101, S + 1, .len = 600), CT_EST);
	CU_ASSERT_EQUAL(c.f->tcp_state, ES_);
	CU_ASSERT_EQUAL(c.f->expires, expires);
	/* ...and the server's ACK of that data is then in window. */
	CU_ASSERT_EQUAL(SEND(&c, R, ACK, S + 1, C + 4702, .win = 1000), CT_EST);
	CU_ASSERT_EQUAL(left(&c), TO_ES);
	conn_close(&c);
}

static void test_window_scaling(void)
{
	static const uint8_t ws7[4] = { 1, 3, 3, 7 };
	static const uint8_t ws15[4] = { 1, 3, 3, 15 };
	struct conn c;

	/* Both offer scale 7: the server's 512 means 64 KiB once the
	 * handshake is over (never in the SYN/ACK itself). */
	conn_open(&c, NULL);
	CU_ASSERT_EQUAL(SEND(&c, O, SYN, C, 0, .opt = ws7, .optlen = 4), CT_NEW);
	CU_ASSERT_EQUAL(SEND(&c, R, SYN | ACK, S, C + 1, .win = 512, .opt = ws7, .optlen = 4), CT_EST);
	CU_ASSERT_EQUAL(SEND(&c, O, ACK, C + 1, S + 1, .win = 512), CT_EST);
	CU_ASSERT_EQUAL(SEND(&c, R, ACK, S + 1, C + 1, .win = 512), CT_EST);
	CU_ASSERT_EQUAL(SEND(&c, O, ACK | PSH, C + 60001, S + 1, .len = 100), CT_EST);
	CU_ASSERT_EQUAL(c.f->tcp_state, ES_);
	CU_ASSERT_EQUAL(left(&c), TO_UNACK);      /* tracked: data in flight */
	conn_close(&c);

	/* Only the client offers it: no scaling either way (RFC 7323), so
	 * the same segment is far beyond 512 bytes. */
	conn_open(&c, NULL);
	CU_ASSERT_EQUAL(SEND(&c, O, SYN, C, 0, .opt = ws7, .optlen = 4), CT_NEW);
	CU_ASSERT_EQUAL(SEND(&c, R, SYN | ACK, S, C + 1, .win = 512), CT_EST);
	CU_ASSERT_EQUAL(SEND(&c, O, ACK, C + 1, S + 1, .win = 512), CT_EST);
	CU_ASSERT_EQUAL(SEND(&c, R, ACK, S + 1, C + 1, .win = 512), CT_EST);
	CU_ASSERT_EQUAL(SEND(&c, O, ACK | PSH, C + 60001, S + 1, .len = 100), CT_INV);
	conn_close(&c);

	/* A scale over 14 counts as 14: the server's window of 4 then
	 * allows 64 KiB, not 128; more than a window beyond is INVALID. */
	conn_open(&c, NULL);
	CU_ASSERT_EQUAL(SEND(&c, O, SYN, C, 0, .opt = ws15, .optlen = 4), CT_NEW);
	CU_ASSERT_EQUAL(SEND(&c, R, SYN | ACK, S, C + 1, .win = 4, .opt = ws15, .optlen = 4), CT_EST);
	CU_ASSERT_EQUAL(SEND(&c, O, ACK, C + 1, S + 1, .win = 4), CT_EST);
	CU_ASSERT_EQUAL(SEND(&c, R, ACK, S + 1, C + 1, .win = 4), CT_EST);
	CU_ASSERT_EQUAL(SEND(&c, O, ACK | PSH, C + 60001, S + 1, .len = 100), CT_EST);
	CU_ASSERT_EQUAL(SEND(&c, O, ACK | PSH, C + 1 + 65536 + 70000, S + 1, .len = 100), CT_INV);
	conn_close(&c);
}

/* SACK block: NOP NOP, kind 5, length 10, left edge, right edge. */
static void sack_opt(uint8_t *o, uint32_t left_edge, uint32_t right_edge)
{
	o[0] = 1;
	o[1] = 1;
	o[2] = 5;
	o[3] = 10;
	put32(o + 4, left_edge);
	put32(o + 8, right_edge);
}

static void test_sack(void)
{
	static const uint8_t sack_perm[4] = { 1, 1, 4, 2 };
	uint8_t in[12], beyond[12];
	struct conn c;
	uint32_t i;

	sack_opt(in, S + 2001, S + 3001);
	sack_opt(beyond, S + 3001, S + 4001);

	/* SACK permitted both ways: the highest SACKed byte is what must
	 * have been sent. */
	conn_open(&c, NULL);
	CU_ASSERT_EQUAL(SEND(&c, O, SYN, C, 0, .opt = sack_perm, .optlen = 4), CT_NEW);
	CU_ASSERT_EQUAL(SEND(&c, R, SYN | ACK, S, C + 1, .opt = sack_perm, .optlen = 4), CT_EST);
	CU_ASSERT_EQUAL(SEND(&c, O, ACK, C + 1, S + 1), CT_EST);
	for (i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(SEND(&c, R, ACK | PSH, S + 1 + 1000 * i, C + 1, .len = 1000), CT_EST);
	CU_ASSERT_EQUAL(SEND(&c, O, ACK, C + 1, S + 1001, .opt = in, .optlen = 12), CT_EST);
	CU_ASSERT_EQUAL(SEND(&c, O, ACK, C + 1, S + 1001, .opt = beyond, .optlen = 12), CT_INV);
	conn_close(&c);

	/* Not negotiated: SACK blocks mean nothing and are not read. */
	conn_open(&c, NULL);
	handshake(&c);
	for (i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(SEND(&c, R, ACK | PSH, S + 1 + 1000 * i, C + 1, .len = 1000), CT_EST);
	CU_ASSERT_EQUAL(SEND(&c, O, ACK, C + 1, S + 1001, .opt = beyond, .optlen = 12), CT_EST);
	conn_close(&c);
}

static void test_be_liberal(void)
{
	struct xlb_ct_conf conf;
	struct conn c;

	/* Strict (the default): an out-of-window FIN is dropped. */
	conn_open(&c, NULL);
	handshake(&c);
	CU_ASSERT_EQUAL(SEND(&c, O, FIN | ACK, C + 200001, S + 1), CT_INV);
	CU_ASSERT_EQUAL(c.f->tcp_state, ES_);

	/* tcp_be_liberal (here by a reload): the same FIN passes and
	 * moves the state, ACKs of unseen data pass. */
	conf_init(&conf);
	conf.tcp_be_liberal = true;
	xlb_ct_set_conf(c.ct, &conf);
	CU_ASSERT_EQUAL(SEND(&c, O, FIN | ACK, C + 200001, S + 1), CT_EST);
	CU_ASSERT_EQUAL(c.f->tcp_state, FW_);
	CU_ASSERT_EQUAL(SEND(&c, R, ACK, S + 1, C + 900000), CT_EST);
	CU_ASSERT_EQUAL(c.f->tcp_state, CW_);
	conn_close(&c);

	/* Liberal does not excuse a RST below what the peer acknowledged
	 * (the kernel checks that before the window). */
	conn_open(&c, &conf);
	handshake(&c);
	CU_ASSERT_EQUAL(SEND(&c, O, RST, C, 0), CT_INV);
	CU_ASSERT_EQUAL(c.f->tcp_state, ES_);
	CU_ASSERT_EQUAL(SEND(&c, O, RST, C + 100000, 0), CT_EST);
	CU_ASSERT_EQUAL(c.f->tcp_state, ES_);     /* inexact: waits for the challenge ACK */
	conn_close(&c);
}

static void test_loose_pickup(void)
{
	struct xlb_ct_conf conf;
	struct frame fr;
	struct conn c;

	/* A bare ACK with data, in the middle of a connection. */
	conn_open(&c, NULL);
	build(&fr, &TX(O, ACK | PSH, 100000, 200000, .win = 3000, .len = 50));
	CU_ASSERT_TRUE(xlb_ct_may_create(c.ct, &fr.p));
	CU_ASSERT_EQUAL(xlb_ct_track(c.ct, c.f, O, &fr.p, c.now), CT_NEW);
	CU_ASSERT_EQUAL(c.f->tcp_state, ES_);
	/* No ACK with a window seen yet: the zero-window cap applies. */
	CU_ASSERT_EQUAL(left(&c), TO_RETRANS);
	/* The sender's window starts at what the segment says; both
	 * directions are tracked liberally (0x08) with SACK (0x02). */
	CU_ASSERT_EQUAL(c.f->win[O].td_end, 100050);
	CU_ASSERT_EQUAL(c.f->win[O].td_maxwin, 3000);
	CU_ASSERT_EQUAL(c.f->win[O].td_maxend, 103050);
	CU_ASSERT_EQUAL(c.f->win[O].flags & 0x0a, 0x0a);
	CU_ASSERT_EQUAL(c.f->win[R].flags & 0x0a, 0x0a);

	/* The answer: not yet a real connection for long, unacknowledged
	 * timeout until the client talks again. */
	c.now += SEC;
	CU_ASSERT_EQUAL(SEND(&c, R, ACK | PSH, 200000, 100050, .len = 10), CT_EST);
	CU_ASSERT_EQUAL(c.f->status & XLB_FLOW_ASSURED, 0);
	CU_ASSERT_EQUAL(left(&c), TO_UNACK);
	CU_ASSERT_EQUAL(c.f->win[R].td_end, 200010);
	CU_ASSERT_EQUAL(c.f->win[R].td_maxend, 200010 + 65535);
	CU_ASSERT_EQUAL(SEND(&c, O, ACK, 100050, 200010), CT_EST);
	CU_ASSERT_TRUE(c.f->status & XLB_FLOW_ASSURED);
	CU_ASSERT_EQUAL(left(&c), TO_ES);

	/* Window scale unknown, so liberal: far beyond passes; the RST
	 * sequence check still applies; FIN closes as usual. */
	CU_ASSERT_EQUAL(SEND(&c, O, ACK | PSH, 100050 + 5000000, 200010, .len = 10), CT_EST);
	CU_ASSERT_EQUAL(SEND(&c, R, RST, 199000, 0), CT_INV);
	CU_ASSERT_EQUAL(SEND(&c, R, FIN | ACK, 200010, 100050), CT_EST);
	CU_ASSERT_EQUAL(c.f->tcp_state, FW_);
	conn_close(&c);

	/* tcp_loose off: no pickup. */
	conf_init(&conf);
	conf.tcp_loose = false;
	conn_open(&c, &conf);
	build(&fr, &TX(O, ACK | PSH, 100000, 200000, .len = 50));
	CU_ASSERT_FALSE(xlb_ct_may_create(c.ct, &fr.p));
	CU_ASSERT_EQUAL(xlb_ct_track(c.ct, c.f, O, &fr.p, c.now), CT_INV);
	CU_ASSERT_EQUAL(c.f->tcp_state, NO_);
	build(&fr, &TX(O, SYN, C, 0));
	CU_ASSERT_TRUE(xlb_ct_may_create(c.ct, &fr.p));
	conn_close(&c);
}

/* --- timeouts ---------------------------------------------------------------- */

static void test_timeout_rules(void)
{
	struct xlb_ct_conf conf;
	struct conn c;
	int i;

	/* Unacknowledged data, then retransmissions of it: the third
	 * identical retransmission switches to max_retrans. */
	conn_open(&c, NULL);
	handshake(&c);
	CU_ASSERT_EQUAL(left(&c), TO_ES);
	for (i = 0; i < 4; i++) {
		c.now += SEC;
		CU_ASSERT_EQUAL(SEND(&c, O, ACK | PSH, C + 1, S + 1, .len = 100), CT_EST);
		CU_ASSERT_EQUAL(left(&c), i < 3 ? TO_UNACK : TO_RETRANS);
	}
	/* One more in the same direction stays there; the peer's ACK
	 * resets the count and acknowledges everything. */
	CU_ASSERT_EQUAL(SEND(&c, O, ACK | PSH, C + 1, S + 1, .len = 100), CT_EST);
	CU_ASSERT_EQUAL(left(&c), TO_RETRANS);
	CU_ASSERT_EQUAL(SEND(&c, R, ACK, S + 1, C + 101), CT_EST);
	CU_ASSERT_EQUAL(left(&c), TO_ES);

	/* A pure ACK with a zero window: max_retrans until it opens. */
	CU_ASSERT_EQUAL(SEND(&c, R, ACK, S + 1, C + 101, .win = ZERO_WIN), CT_EST);
	CU_ASSERT_EQUAL(left(&c), TO_RETRANS);
	CU_ASSERT_EQUAL(SEND(&c, R, ACK, S + 1, C + 101, .win = 1000), CT_EST);
	CU_ASSERT_EQUAL(left(&c), TO_ES);

	/* The refinements only shorten: FIN_WAIT's and CLOSE_WAIT's own
	 * timeouts are below both, data in flight and retransmissions or
	 * not. */
	CU_ASSERT_EQUAL(SEND(&c, O, FIN | ACK | PSH, C + 101, S + 1, .len = 10), CT_EST);
	CU_ASSERT_EQUAL(c.f->tcp_state, FW_);
	CU_ASSERT_EQUAL(left(&c), TO_FW);
	for (i = 0; i < 4; i++)
		CU_ASSERT_EQUAL(SEND(&c, R, ACK, S + 1, C + 101), CT_EST);
	CU_ASSERT_EQUAL(left(&c), TO_CW);
	conn_close(&c);

	/* The zero-window cap also covers a handshake's SYN_SENT when
	 * max_retrans is the shorter. */
	conf_init(&conf);
	conf.timeout[XLB_TO_TCP_SYN_SENT] = 500;
	conn_open(&c, &conf);
	CU_ASSERT_EQUAL(SEND(&c, O, SYN, C, 0), CT_NEW);
	CU_ASSERT_EQUAL(left(&c), TO_RETRANS);
	conn_close(&c);
}

static void test_rst_rules(void)
{
	struct conn c;
	uint64_t expires;

	/* Below what the receiver acknowledged: an old or forged RST. */
	conn_open(&c, NULL);
	handshake(&c);
	c.now += SEC;
	expires = c.f->expires;
	CU_ASSERT_EQUAL(SEND(&c, R, RST, S, 0), CT_INV);
	CU_ASSERT_EQUAL(SEND(&c, O, RST | ACK, C - 100, S + 1), CT_INV);
	CU_ASSERT_EQUAL(c.f->tcp_state, ES_);
	CU_ASSERT_EQUAL(c.f->expires, expires);

	/* In window but not where the receiver expects it: the state stays
	 * for the challenge ACK (RFC 5961), the RST's timeout applies... */
	CU_ASSERT_EQUAL(SEND(&c, R, RST, S + 500, 0), CT_EST);
	CU_ASSERT_EQUAL(c.f->tcp_state, ES_);
	CU_ASSERT_EQUAL(left(&c), TO_CL);
	/* ...the challenge ACK keeps the connection alive (for the
	 * unacknowledged timeout: the RST's sequence counts as sent and
	 * the ACK does not cover it)... */
	CU_ASSERT_EQUAL(SEND(&c, O, ACK, C + 1, S + 1), CT_EST);
	CU_ASSERT_EQUAL(left(&c), TO_UNACK);
	/* ...and the RST with the exact sequence closes it. */
	CU_ASSERT_EQUAL(SEND(&c, R, RST, S + 1, 0), CT_EST);
	CU_ASSERT_EQUAL(c.f->tcp_state, CL_);
	CU_ASSERT_EQUAL(left(&c), TO_CL);
	conn_close(&c);

	/* The end of a train: data, then a RST right behind it. */
	conn_open(&c, NULL);
	handshake(&c);
	CU_ASSERT_EQUAL(SEND(&c, R, ACK | PSH, S + 1, C + 1, .len = 19), CT_EST);
	CU_ASSERT_EQUAL(SEND(&c, R, RST | ACK, S + 20, C + 1), CT_EST);
	CU_ASSERT_EQUAL(c.f->tcp_state, CL_);
	conn_close(&c);

	/* RST|ACK with a zero ACK field (broken stacks): taken as ACKing
	 * everything. */
	conn_open(&c, NULL);
	handshake(&c);
	CU_ASSERT_EQUAL(SEND(&c, O, RST | ACK, C + 1, 0), CT_EST);
	CU_ASSERT_EQUAL(c.f->tcp_state, CL_);
	conn_close(&c);

	/* Closing already: the tuple may belong to a new connection, so
	 * any RST is believed. */
	conn_open(&c, NULL);
	handshake(&c);
	CU_ASSERT_EQUAL(SEND(&c, O, FIN | ACK, C + 1, S + 1), CT_EST);
	CU_ASSERT_EQUAL(SEND(&c, R, RST, S + 3000000, 0), CT_EST);
	CU_ASSERT_EQUAL(c.f->tcp_state, CL_);
	conn_close(&c);

	/* An out-of-window FIN, then an out-of-window RST the other way:
	 * the endpoints are tearing down a connection we lost track of.
	 * The assured connection no longer gets days. */
	conn_open(&c, NULL);
	handshake(&c);
	c.now += SEC;
	CU_ASSERT_EQUAL(SEND(&c, O, FIN | ACK, C + 200001, S + 1), CT_INV);
	CU_ASSERT_EQUAL(left(&c), TO_ES - 1);
	CU_ASSERT_EQUAL(SEND(&c, R, RST, S + 300001, 0), CT_INV);
	CU_ASSERT_EQUAL(c.f->tcp_state, ES_);
	CU_ASSERT_EQUAL(left(&c), TO_UNACK);
	conn_close(&c);
}

static void test_state_names(void)
{
	CU_ASSERT_STRING_EQUAL(xlb_tcp_state_name(XLB_TCP_ESTABLISHED), "ESTABLISHED");
	CU_ASSERT_STRING_EQUAL(xlb_tcp_state_name(XLB_TCP_SYN_SENT2), "SYN_SENT2");
	CU_ASSERT_STRING_EQUAL(xlb_tcp_state_name(XLB_TCP_TIME_WAIT), "TIME_WAIT");
	CU_ASSERT_STRING_EQUAL(xlb_tcp_state_name(XLB_TCP_NONE), "NONE");
	CU_ASSERT_STRING_EQUAL(xlb_tcp_state_name(XLB_TCP_INVALID), "UNKNOWN");
}

/* --- two directions at once ----------------------------------------------- */

#define N_FRAMES 64

struct both_ways {
	struct conn *c;
	enum xlb_dir dir;
	struct frame fr[N_FRAMES];   /* built before the thread starts: no
	                              * CUnit calls off the main thread */
	unsigned invalid;
};

/* Each side ACKs what the other sent in the handshake, with a window that
 * changes every time: always in window, whatever the interleaving. */
static void *both_ways_main(void *arg)
{
	struct both_ways *b = arg;
	int i;

	rcu_register_thread();
	for (i = 0; i < 50000; i++) {
		if (xlb_ct_track(b->c->ct, b->c->f, b->dir, &b->fr[i % N_FRAMES].p, b->c->now) ==
		    CT_INV)
			b->invalid++;
	}
	rcu_unregister_thread();
	return NULL;
}

static void test_both_directions_concurrently(void)
{
	static struct both_ways b[2];
	pthread_t th[2];
	struct conn c;
	int t, i;

	conn_open(&c, NULL);
	handshake(&c);
	for (t = 0; t < 2; t++) {
		enum xlb_dir dir = t ? R : O;

		b[t].c = &c;
		b[t].dir = dir;
		b[t].invalid = 0;
		for (i = 0; i < N_FRAMES; i++)
			build(&b[t].fr[i], &TX(dir, ACK, dir == O ? C + 1 : S + 1, dir == O ? S + 1 : C + 1,
					       .win = 1000 + i * 900));
	}
	rcu_thread_offline();
	for (t = 0; t < 2; t++)
		pthread_create(&th[t], NULL, both_ways_main, &b[t]);
	for (t = 0; t < 2; t++)
		pthread_join(th[t], NULL);
	rcu_thread_online();
	CU_ASSERT_EQUAL(b[0].invalid + b[1].invalid, 0);
	CU_ASSERT_EQUAL(c.f->tcp_state, ES_);
	CU_ASSERT_EQUAL(c.f->lock, 0);
	conn_close(&c);
}

int main(void)
{
	static const struct unit_test tests[] = {
		{ "state table: every state x segment x direction", test_state_table },
		{ "scenarios", test_scenarios },
		{ "invalid flag combinations; who may create", test_invalid_flags },
		{ "truncated or inconsistent headers", test_truncated_header },
		{ "window: in, right of, left of, ACK bounds", test_window_bounds },
		{ "window scaling from the SYN options", test_window_scaling },
		{ "SACK blocks bound the ACK", test_sack },
		{ "tcp_be_liberal", test_be_liberal },
		{ "mid-stream pickup (tcp_loose)", test_loose_pickup },
		{ "timeouts: retransmissions, unacknowledged, zero window", test_timeout_rules },
		{ "RST: sequence checks, challenge ACK, train, closing", test_rst_rules },
		{ "state names", test_state_names },
		{ "both directions concurrently", test_both_directions_concurrently },
	};
	int status;

	rcu_register_thread();
	status = UNIT_RUN("tcp", NULL, NULL, tests);
	rcu_unregister_thread();
	return status;
}
