/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAT rewriting: after every rewrite the checksums must be exactly what a
 * from-scratch computation gives, so receivers accept the packet, and a
 * rewrite followed by its reverse must give back the original bytes.
 *
 * The reference checksum here is deliberately naive (big-endian byte
 * pairs over an explicitly built pseudo-header) and shares nothing with
 * nat.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include <CUnit/Basic.h>

#include "nat.h"
#include "packet.h"
#include "unit.h"

/* ---- independent reference checksum ----------------------------------- */

static uint16_t ref_csum(const uint8_t *b, unsigned int len)
{
	unsigned long sum = 0;
	unsigned int i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (unsigned long)b[i] << 8 | b[i + 1];
	if (len & 1)
		sum += (unsigned long)b[len - 1] << 8;
	while (sum > 0xffff)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)(~sum & 0xffff);
}

static uint16_t get16(const uint8_t *b)
{
	return (uint16_t)(b[0] << 8 | b[1]);
}

static void set16(uint8_t *b, uint16_t v)
{
	b[0] = v >> 8;
	b[1] = v & 0xff;
}

/* The IPv4 header checksum as it should be, in host order. */
static uint16_t ref_ip_csum(const uint8_t *ip)
{
	uint8_t h[60];
	unsigned int hl = (ip[0] & 15) * 4;

	memcpy(h, ip, hl);
	h[10] = h[11] = 0;
	return ref_csum(h, hl);
}

/* The L4 checksum as it should be (host order), for a packet whose IP
 * header is at ip and whose L4 segment of seglen bytes is at l4. */
static uint16_t ref_l4_csum(const uint8_t *ip, const uint8_t *l4, unsigned int seglen,
			    int family, uint8_t proto)
{
	uint8_t buf[2048];
	unsigned int n = 0, csum_off;
	uint16_t c;

	if (proto == IPPROTO_TCP)
		csum_off = 16;
	else if (proto == IPPROTO_UDP)
		csum_off = 6;
	else
		csum_off = 2;

	if (family == AF_INET && proto != IPPROTO_ICMP) {
		memcpy(buf, ip + 12, 8);
		buf[8] = 0;
		buf[9] = proto;
		buf[10] = seglen >> 8;
		buf[11] = seglen & 0xff;
		n = 12;
	} else if (family == AF_INET6) {
		memcpy(buf, ip + 8, 32);
		buf[32] = buf[33] = 0;
		buf[34] = seglen >> 8;
		buf[35] = seglen & 0xff;
		buf[36] = buf[37] = buf[38] = 0;
		buf[39] = proto;
		n = 40;
	}
	memcpy(buf + n, l4, seglen);
	buf[n + csum_off] = buf[n + csum_off + 1] = 0;
	c = ref_csum(buf, n + seglen);
	if (proto == IPPROTO_UDP && c == 0)
		c = 0xffff;
	return c;
}

/* ---- packet builder ---------------------------------------------------- */

static uint32_t rng_state = 0x5eed1234;

static uint32_t rnd(void)
{
	/* xorshift32: fixed seed, same packets on every run */
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

static void rnd_addr(union xlb_addr *a, int family)
{
	int i;

	if (family == AF_INET) {
		xlb_addr_from_v4(a, rnd());
	} else {
		for (i = 0; i < 4; i++)
			a->w[i] = rnd();
	}
}

struct pkt_spec {
	int family;
	uint8_t proto;
	bool vlan;
	unsigned int ip_opt;       /* IPv4 option bytes, multiple of 4 */
	union xlb_addr src, dst;
	uint16_t sport, dport;     /* host order; for ICMP sport is the id */
	unsigned int paylen;
	bool udp_no_csum;
};

struct built {
	uint8_t b[1600];
	unsigned int len, l3, l4, seglen;
};

static void fill_csums(struct built *k, const struct pkt_spec *s)
{
	uint8_t *ip = k->b + k->l3, *l4 = k->b + k->l4;
	unsigned int off = s->proto == IPPROTO_TCP ? 16 : s->proto == IPPROTO_UDP ? 6 : 2;

	if (s->family == AF_INET)
		set16(ip + 10, ref_ip_csum(ip));
	if (s->proto == IPPROTO_UDP && s->udp_no_csum && s->family == AF_INET)
		set16(l4 + off, 0);
	else
		set16(l4 + off, ref_l4_csum(ip, l4, k->seglen, s->family, s->proto));
}

static void build(struct built *k, const struct pkt_spec *s, const uint8_t *pay)
{
	uint8_t *p = k->b, *ip, *l4;
	unsigned int i, hl, l4hl;

	memset(k, 0, sizeof(*k));
	memset(p, 0x02, 6);
	memset(p + 6, 0x04, 6);
	p += 12;
	if (s->vlan) {
		set16(p, 0x8100);
		set16(p + 2, 42);
		p += 4;
	}
	set16(p, s->family == AF_INET ? 0x0800 : 0x86dd);
	p += 2;
	ip = p;
	k->l3 = ip - k->b;
	l4hl = s->proto == IPPROTO_TCP ? 20 : 8;
	k->seglen = l4hl + s->paylen;
	if (s->family == AF_INET) {
		hl = 20 + s->ip_opt;
		ip[0] = 0x40 | (uint8_t)(hl / 4);
		set16(ip + 2, hl + k->seglen);
		set16(ip + 4, rnd() & 0xffff);
		ip[8] = 64;
		ip[9] = s->proto;
		memcpy(ip + 12, &s->src.w[3], 4);
		memcpy(ip + 16, &s->dst.w[3], 4);
		for (i = 20; i < hl; i++)
			ip[i] = 1;   /* NOP options */
	} else {
		hl = 40;
		ip[0] = 0x60;
		set16(ip + 4, k->seglen);
		ip[6] = s->proto;
		ip[7] = 64;
		memcpy(ip + 8, s->src.b, 16);
		memcpy(ip + 24, s->dst.b, 16);
	}
	l4 = ip + hl;
	k->l4 = l4 - k->b;
	if (s->proto == IPPROTO_TCP || s->proto == IPPROTO_UDP) {
		set16(l4, s->sport);
		set16(l4 + 2, s->dport);
		if (s->proto == IPPROTO_TCP) {
			for (i = 4; i < 12; i++)
				l4[i] = rnd() & 0xff;
			l4[12] = 5 << 4;
			l4[13] = XLB_TCP_ACK;
			set16(l4 + 14, 512);
		} else {
			set16(l4 + 4, k->seglen);
		}
	} else {
		l4[0] = s->family == AF_INET ? 8 : 128;
		set16(l4 + 4, s->sport);
		set16(l4 + 6, rnd() & 0xffff);
	}
	memcpy(l4 + l4hl, pay, s->paylen);
	k->len = k->l4 + k->seglen;
	fill_csums(k, s);
}

static void rnd_spec(struct pkt_spec *s, int family, uint8_t proto)
{
	memset(s, 0, sizeof(*s));
	s->family = family;
	s->proto = proto;
	s->vlan = rnd() & 1;
	s->ip_opt = family == AF_INET ? (rnd() % 3) * 4 : 0;
	rnd_addr(&s->src, family);
	rnd_addr(&s->dst, family);
	s->sport = rnd() & 0xffff;
	s->dport = rnd() & 0xffff;
	s->paylen = rnd() % 80;   /* odd lengths too */
}

static void rnd_payload(uint8_t *pay, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		pay[i] = rnd() & 0xff;
}

/* ---- checks ----------------------------------------------------------- */

static unsigned int l4_csum_off(uint8_t proto)
{
	return proto == IPPROTO_TCP ? 16 : proto == IPPROTO_UDP ? 6 : 2;
}

/* Every checksum in the packet is what a full computation gives, and
 * nat.c's own full computations agree. */
static void check_csums(const struct built *k, const struct xlb_pkt *p, int family, uint8_t proto)
{
	const uint8_t *ip = k->b + k->l3, *l4 = k->b + k->l4;
	uint16_t want;

	if (family == AF_INET) {
		CU_ASSERT_EQUAL(get16(ip + 10), ref_ip_csum(ip));
		CU_ASSERT_EQUAL(ntohs(xlb_csum_ipv4_header(ip, (ip[0] & 15) * 4)), ref_ip_csum(ip));
	}
	want = ref_l4_csum(ip, l4, k->seglen, family, proto);
	CU_ASSERT_EQUAL(get16(l4 + l4_csum_off(proto)), want);
	CU_ASSERT_EQUAL(ntohs(xlb_csum_l4(p)), want);
}

static void check_addr_in_header(const struct built *k, int family, bool dst, const union xlb_addr *a)
{
	const uint8_t *ip = k->b + k->l3;

	if (family == AF_INET) {
		CU_ASSERT(memcmp(ip + (dst ? 16 : 12), &a->w[3], 4) == 0);
	} else {
		CU_ASSERT(memcmp(ip + (dst ? 24 : 8), a->b, 16) == 0);
	}
}

/* One random packet: rewrite one side, check, rewrite back, compare. */
static void nat_one(int family, uint8_t proto, bool dst)
{
	struct pkt_spec s;
	struct built k, orig;
	struct xlb_pkt p;
	struct xlb_tuple t0;
	union xlb_addr na, oa;
	uint8_t pay[128];
	uint16_t np, op;
	bool ports = proto == IPPROTO_TCP || proto == IPPROTO_UDP;
	uint16_t icmp_csum;

	rnd_spec(&s, family, proto);
	rnd_payload(pay, s.paylen);
	build(&k, &s, pay);
	orig = k;
	CU_ASSERT_EQUAL_FATAL(xlb_pkt_parse(&p, k.b, k.len), XLB_PARSE_OK);
	t0 = p.tuple;
	check_csums(&k, &p, family, proto);
	icmp_csum = get16(k.b + k.l4 + 2);

	rnd_addr(&na, family);
	np = htons(rnd() & 0xffff);
	oa = dst ? t0.dst : t0.src;
	op = dst ? t0.dport : t0.sport;

	if (dst)
		xlb_nat_set_dst(&p, &na, np);
	else
		xlb_nat_set_src(&p, &na, np);

	check_csums(&k, &p, family, proto);
	check_addr_in_header(&k, family, dst, &na);
	if (proto == IPPROTO_ICMP)   /* no pseudo-header: untouched */
		CU_ASSERT_EQUAL(get16(k.b + k.l4 + 2), icmp_csum);
	if (ports) {
		CU_ASSERT(memcmp(k.b + k.l4 + (dst ? 2 : 0), &np, 2) == 0);
	} else {   /* the echo identifier is not a port */
		CU_ASSERT(memcmp(k.b + k.l4 + 4, orig.b + orig.l4 + 4, 4) == 0);
	}
	/* Only the header fields NAT owns changed, and the payload not at all. */
	CU_ASSERT(memcmp(k.b + k.l4 + k.seglen - s.paylen, pay, s.paylen) == 0);
	CU_ASSERT(memcmp(k.b, orig.b, k.l3) == 0);

	/* The tuple follows the header, and is what a fresh parse says. */
	{
		struct xlb_pkt q;
		struct built copy = k;

		CU_ASSERT(xlb_addr_eq(dst ? &p.tuple.dst : &p.tuple.src, &na));
		CU_ASSERT(xlb_addr_eq(dst ? &p.tuple.src : &p.tuple.dst, dst ? &t0.src : &t0.dst));
		if (ports)
			CU_ASSERT_EQUAL(dst ? p.tuple.dport : p.tuple.sport, np);
		CU_ASSERT_EQUAL_FATAL(xlb_pkt_parse(&q, copy.b, copy.len), XLB_PARSE_OK);
		CU_ASSERT(xlb_tuple_eq(&q.tuple, &p.tuple));
	}

	/* And back: exactly the bytes we started from. */
	if (dst)
		xlb_nat_set_dst(&p, &oa, op);
	else
		xlb_nat_set_src(&p, &oa, op);
	CU_ASSERT(k.len == orig.len && memcmp(k.b, orig.b, k.len) == 0);
	CU_ASSERT(xlb_tuple_eq(&p.tuple, &t0));
}

#define ROUNDS 400

static void run_rounds(int family, uint8_t proto)
{
	int i;

	for (i = 0; i < ROUNDS; i++) {
		nat_one(family, proto, true);
		nat_one(family, proto, false);
	}
}

static void test_tcp4(void) { run_rounds(AF_INET, IPPROTO_TCP); }
static void test_udp4(void) { run_rounds(AF_INET, IPPROTO_UDP); }
static void test_icmp4(void) { run_rounds(AF_INET, IPPROTO_ICMP); }
static void test_tcp6(void) { run_rounds(AF_INET6, IPPROTO_TCP); }
static void test_udp6(void) { run_rounds(AF_INET6, IPPROTO_UDP); }
static void test_icmp6(void) { run_rounds(AF_INET6, IPPROTO_ICMPV6); }

/* A reply leaving the backend, source-NATed back to the VIP, is byte for
 * byte the packet the VIP would have sent itself. */
static void test_reply_snat(void)
{
	int i;

	for (i = 0; i < ROUNDS; i++) {
		int family = i & 1 ? AF_INET6 : AF_INET;
		uint8_t proto = i & 2 ? IPPROTO_TCP : IPPROTO_UDP;
		struct pkt_spec s, v;
		struct built k, want;
		struct xlb_pkt p;
		uint8_t pay[128];

		rnd_spec(&s, family, proto);
		rnd_payload(pay, s.paylen);
		v = s;
		rnd_addr(&v.src, family);   /* the VIP */
		v.sport = rnd() & 0xffff;
		/* Same IP id and TCP sequence bytes in both. */
		{
			uint32_t save = rng_state;

			build(&k, &s, pay);
			rng_state = save;
			build(&want, &v, pay);
		}
		CU_ASSERT_EQUAL_FATAL(xlb_pkt_parse(&p, k.b, k.len), XLB_PARSE_OK);
		xlb_nat_set_src(&p, &v.src, htons(v.sport));
		CU_ASSERT(memcmp(k.b, want.b, k.len) == 0);
	}
}

/* IPv4 UDP without a checksum stays without one. */
static void test_udp4_zero_csum(void)
{
	int i;

	for (i = 0; i < 100; i++) {
		struct pkt_spec s;
		struct built k;
		struct xlb_pkt p;
		union xlb_addr na;
		uint8_t pay[128];
		uint16_t np = htons(rnd() & 0xffff);

		rnd_spec(&s, AF_INET, IPPROTO_UDP);
		s.udp_no_csum = true;
		rnd_payload(pay, s.paylen);
		build(&k, &s, pay);
		CU_ASSERT_EQUAL_FATAL(xlb_pkt_parse(&p, k.b, k.len), XLB_PARSE_OK);
		rnd_addr(&na, AF_INET);
		if (i & 1)
			xlb_nat_set_dst(&p, &na, np);
		else
			xlb_nat_set_src(&p, &na, np);
		CU_ASSERT_EQUAL(get16(k.b + k.l4 + 6), 0);
		CU_ASSERT_EQUAL(get16(k.b + k.l3 + 10), ref_ip_csum(k.b + k.l3));
		CU_ASSERT(memcmp(k.b + k.l4 + (i & 1 ? 2 : 0), &np, 2) == 0);
	}
}

/*
 * A packet whose rewritten form sums to exactly zero: UDP must then carry
 * 0xffff (0 would mean "no checksum"), TCP carries 0. The payload's first
 * word is chosen to make it so.
 */
static void check_zero_result(int family, uint8_t proto)
{
	struct pkt_spec s, after;
	struct built k, a;
	struct xlb_pkt p;
	uint8_t pay[128];
	uint16_t c;
	uint32_t save;

	rnd_spec(&s, family, proto);
	s.paylen = 20;
	rnd_payload(pay, s.paylen);
	after = s;
	rnd_addr(&after.dst, family);
	after.dport = rnd() & 0xffff;

	/* With the word zero, the post-NAT checksum c; with the word = c,
	 * the post-NAT sum becomes 0xffff and its checksum 0. */
	pay[0] = pay[1] = 0;
	save = rng_state;
	build(&a, &after, pay);
	c = ref_l4_csum(a.b + a.l3, a.b + a.l4, a.seglen, family, proto);
	set16(pay, c);
	rng_state = save;
	build(&a, &after, pay);
	/* The construction worked: the target's computed checksum is zero. */
	CU_ASSERT_EQUAL_FATAL(get16(a.b + a.l4 + l4_csum_off(proto)),
			      proto == IPPROTO_UDP ? 0xffff : 0x0000);

	rng_state = save;
	build(&k, &s, pay);
	CU_ASSERT_EQUAL_FATAL(xlb_pkt_parse(&p, k.b, k.len), XLB_PARSE_OK);
	xlb_nat_set_dst(&p, &after.dst, htons(after.dport));
	CU_ASSERT(memcmp(k.b, a.b, a.len) == 0);
	CU_ASSERT_EQUAL(get16(k.b + k.l4 + l4_csum_off(proto)), proto == IPPROTO_UDP ? 0xffff : 0x0000);

	/* The precomputed path lands on the same bytes. */
	{
		struct xlb_tuple to, other;
		struct xlb_nat_delta d;

		rng_state = save;
		build(&k, &s, pay);
		CU_ASSERT_EQUAL_FATAL(xlb_pkt_parse(&p, k.b, k.len), XLB_PARSE_OK);
		to = p.tuple;
		to.dst = after.dst;
		to.dport = htons(after.dport);
		xlb_nat_delta(&d, &p.tuple, &to);
		xlb_tuple_invert(&other, &to);
		xlb_nat_apply(&p, &other, &d);
		CU_ASSERT(memcmp(k.b, a.b, a.len) == 0);
	}
}

/* xlb_nat_apply() with a precomputed delta gives the bytes set_dst then
 * set_src give, both ends changed at random, UDP 0 checksums included. */
static void apply_rounds(int family, uint8_t proto, bool no_csum)
{
	for (int i = 0; i < ROUNDS; i++) {
		struct pkt_spec s;
		struct built k1, k2;
		struct xlb_pkt p1, p2;
		struct xlb_tuple to, other;
		struct xlb_nat_delta d;
		uint8_t pay[128];

		rnd_spec(&s, family, proto);
		s.udp_no_csum = no_csum;
		rnd_payload(pay, s.paylen);
		build(&k1, &s, pay);
		k2 = k1;
		CU_ASSERT_EQUAL_FATAL(xlb_pkt_parse(&p1, k1.b, k1.len), XLB_PARSE_OK);
		CU_ASSERT_EQUAL_FATAL(xlb_pkt_parse(&p2, k2.b, k2.len), XLB_PARSE_OK);
		to = p1.tuple;
		/* Each end changes, or not (as DNAT keeps the source). */
		if (rnd() & 3) {
			rnd_addr(&to.dst, family);
			to.dport = htons(rnd() & 0xffff);
		}
		if (rnd() & 1) {
			rnd_addr(&to.src, family);
			to.sport = htons(rnd() & 0xffff);
		}
		xlb_nat_set_dst(&p1, &to.dst, to.dport);
		xlb_nat_set_src(&p1, &to.src, to.sport);

		xlb_nat_delta(&d, &p2.tuple, &to);
		xlb_tuple_invert(&other, &to);
		xlb_nat_apply(&p2, &other, &d);
		CU_ASSERT(memcmp(k1.b, k2.b, k1.len) == 0);
		CU_ASSERT(xlb_tuple_eq(&p1.tuple, &p2.tuple));
		if (no_csum) {
			CU_ASSERT_EQUAL(get16(k2.b + k2.l4 + 6), 0);
		} else {
			check_csums(&k2, &p2, family, proto);
		}
	}
}

static void test_apply(void)
{
	apply_rounds(AF_INET, IPPROTO_TCP, false);
	apply_rounds(AF_INET, IPPROTO_UDP, false);
	apply_rounds(AF_INET, IPPROTO_UDP, true);
	apply_rounds(AF_INET6, IPPROTO_TCP, false);
	apply_rounds(AF_INET6, IPPROTO_UDP, false);
}

static void test_zero_result(void)
{
	check_zero_result(AF_INET, IPPROTO_UDP);
	check_zero_result(AF_INET6, IPPROTO_UDP);
	check_zero_result(AF_INET, IPPROTO_TCP);
	check_zero_result(AF_INET6, IPPROTO_TCP);
}

/* The replace helpers against recomputation over a random block. */
static void test_replace_helpers(void)
{
	int i, j;

	for (i = 0; i < 1000; i++) {
		uint8_t b[64];
		uint16_t c0, c1, o16, n16;
		uint32_t o32, n32, o128[4], n128[4];
		unsigned int at = (rnd() % 14) * 4;

		for (j = 0; j < 64; j++)
			b[j] = rnd() & 0xff;
		c0 = htons(ref_csum(b, sizeof(b)));

		memcpy(&o16, b + at, 2);
		n16 = rnd() & 0xffff;
		memcpy(b + at, &n16, 2);
		c1 = htons(ref_csum(b, sizeof(b)));
		CU_ASSERT_EQUAL(xlb_csum_replace16(c0, o16, n16), c1);

		c0 = c1;
		memcpy(&o32, b + at, 4);
		n32 = rnd();
		memcpy(b + at, &n32, 4);
		c1 = htons(ref_csum(b, sizeof(b)));
		CU_ASSERT_EQUAL(xlb_csum_replace32(c0, o32, n32), c1);

		c0 = c1;
		at = (rnd() % 13) * 4;
		memcpy(o128, b + at, 16);
		for (j = 0; j < 4; j++)
			n128[j] = rnd();
		memcpy(b + at, n128, 16);
		c1 = htons(ref_csum(b, sizeof(b)));
		CU_ASSERT_EQUAL(xlb_csum_replace128(c0, o128, n128), c1);
	}
}

/*
 * xlb_nat_rewrite is what xlb_nat_set_dst/src do, on any datagram in a
 * buffer: the same bytes for a whole packet, quoted or not. A quote (in an
 * ICMP error) cut inside the TCP header gets the new port but keeps its
 * checksum, as the kernel's NAT leaves it; from 20 bytes on it is updated.
 */
static void test_rewrite_at(void)
{
	static const struct {
		int family;
		uint8_t proto;
	} kinds[] = {
		{ AF_INET, IPPROTO_TCP }, { AF_INET, IPPROTO_UDP }, { AF_INET, IPPROTO_ICMP },
		{ AF_INET6, IPPROTO_TCP }, { AF_INET6, IPPROTO_UDP }, { AF_INET6, IPPROTO_ICMPV6 },
	};

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		for (int round = 0; round < 50; round++) {
			bool dst = round & 1;
			unsigned int flags = dst ? XLB_NAT_DST : 0;
			struct pkt_spec s;
			struct built k, whole, quoted;
			struct xlb_pkt p;
			union xlb_addr na;
			uint8_t pay[128];
			uint16_t np;

			rnd_spec(&s, kinds[i].family, kinds[i].proto);
			rnd_payload(pay, s.paylen);
			build(&k, &s, pay);
			whole = quoted = k;
			rnd_addr(&na, s.family);
			np = htons(rnd() & 0xffff);
			CU_ASSERT_EQUAL_FATAL(xlb_pkt_parse(&p, k.b, k.len), XLB_PARSE_OK);
			if (dst)
				xlb_nat_set_dst(&p, &na, np);
			else
				xlb_nat_set_src(&p, &na, np);
			xlb_nat_rewrite(whole.b + whole.l3, whole.b + whole.l4, whole.seglen,
					(uint8_t)s.family, s.proto, flags, &na, np);
			CU_ASSERT(memcmp(whole.b, k.b, k.len) == 0);
			xlb_nat_rewrite(quoted.b + quoted.l3, quoted.b + quoted.l4, quoted.seglen,
					(uint8_t)s.family, s.proto, flags | XLB_NAT_QUOTED, &na, np);
			CU_ASSERT(memcmp(quoted.b, k.b, k.len) == 0);
		}
	}

	for (int family = AF_INET; family; family = family == AF_INET ? AF_INET6 : 0) {
		for (unsigned int cut = 8; cut <= 20; cut++) {
			struct pkt_spec s;
			struct built k, q, orig;
			struct xlb_pkt p;
			union xlb_addr na;
			uint16_t np = htons(8080);
			uint8_t none[1];

			rnd_spec(&s, family, IPPROTO_TCP);
			s.paylen = 0;
			build(&k, &s, none);
			q = orig = k;
			rnd_addr(&na, family);
			CU_ASSERT_EQUAL_FATAL(xlb_pkt_parse(&p, k.b, k.len), XLB_PARSE_OK);
			xlb_nat_set_src(&p, &na, np);
			xlb_nat_rewrite(q.b + q.l3, q.b + q.l4, cut, (uint8_t)family, IPPROTO_TCP,
					XLB_NAT_QUOTED, &na, np);
			/* IP header and ports as for the whole packet... */
			CU_ASSERT(memcmp(q.b, k.b, q.l4 + 4) == 0);
			/* ...the checksum only once the whole header is quoted. */
			CU_ASSERT(memcmp(q.b + q.l4 + 16, (cut < 20 ? orig.b : k.b) + k.l4 + 16, 2) == 0);
		}
	}
}

int main(void)
{
	static const struct unit_test tests[] = {
		{ "tcp4 dnat/snat", test_tcp4 },
		{ "udp4 dnat/snat", test_udp4 },
		{ "icmp4 echo", test_icmp4 },
		{ "tcp6 dnat/snat", test_tcp6 },
		{ "udp6 dnat/snat", test_udp6 },
		{ "icmp6 echo", test_icmp6 },
		{ "reply snat equals vip's own packet", test_reply_snat },
		{ "udp4 zero checksum kept", test_udp4_zero_csum },
		{ "computed zero checksum", test_zero_result },
		{ "precomputed rewrite equals set_dst + set_src", test_apply },
		{ "replace helpers", test_replace_helpers },
		{ "rewrite at an offset, whole and quoted", test_rewrite_at },
	};

	return UNIT_RUN("nat", NULL, NULL, tests);
}
