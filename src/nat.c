/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Address and port rewriting with incremental checksum updates.
 *
 * All sums are over 16-bit words exactly as they sit in memory: the
 * one's-complement sum does not care about byte order (RFC 1071, 2.B), so
 * nothing here swaps bytes, and a stored checksum is read and written as
 * raw bytes.
 *
 * Updates use RFC 1624 eqn. 3, HC' = ~(~HC + ~m + m'): unlike eqn. 2 it
 * can never turn a correct checksum into the "negative zero" 0xffff that
 * a full computation would not produce, so a rewrite and its reverse give
 * back the original bytes. A packet whose checksum was wrong stays wrong
 * by the same amount, so the receiver still drops it.
 */
#include <stdbool.h>
#include <string.h>
#include <arpa/inet.h>

#include "bytes_internal.h"
#include "nat.h"

#define IPV4_CSUM_OFF   10
#define IPV4_SADDR_OFF  12
#define IPV4_DADDR_OFF  16
#define IPV6_SADDR_OFF  8
#define IPV6_DADDR_OFF  24
#define TCP_HLEN        20
#define TCP_CSUM_OFF    16
#define UDP_HLEN        8
#define UDP_LEN_OFF     4
#define UDP_CSUM_OFF    6
#define ICMP_CSUM_OFF   2


/* Accumulate "old word out, new word in" into a 32-bit sum; the callers
 * add at most a few dozen words, far from overflowing it. */
static inline uint32_t diff16(uint32_t sum, uint16_t old, uint16_t new_)
{
	return sum + (uint16_t)~old + new_;
}

static inline uint32_t diff32(uint32_t sum, uint32_t old, uint32_t new_)
{
	old = ~old;
	return sum + (old & 0xffff) + (old >> 16) + (new_ & 0xffff) + (new_ >> 16);
}

static inline uint16_t fold(uint32_t sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/* Apply an accumulated difference to a stored checksum. */
static inline uint16_t csum_apply(uint16_t csum, uint32_t diff)
{
	return (uint16_t)~fold((uint16_t)~csum + diff);
}

uint16_t xlb_csum_replace16(uint16_t csum, uint16_t old, uint16_t new_)
{
	return csum_apply(csum, diff16(0, old, new_));
}

uint16_t xlb_csum_replace32(uint16_t csum, uint32_t old, uint32_t new_)
{
	return csum_apply(csum, diff32(0, old, new_));
}

uint16_t xlb_csum_replace128(uint16_t csum, const uint32_t old[4], const uint32_t new_[4])
{
	uint32_t d = 0;
	int i;

	for (i = 0; i < 4; i++)
		d = diff32(d, old[i], new_[i]);
	return csum_apply(csum, d);
}

/*
 * The one rewrite behind xlb_nat_set_dst/src and xlb_nat_rewrite. The
 * pseudo-header change and the port change are summed first and folded
 * into the L4 checksum once. Inlined so that the per-packet callers, with
 * their flags constant, keep the straight-line code they had before the
 * ICMP quote shared it.
 */
static inline __attribute__((always_inline)) void
rewrite(uint8_t *ip, uint8_t *l4, uint32_t l4_len, uint8_t family, uint8_t proto,
	unsigned int flags, const union xlb_addr *addr, uint16_t port)
{
	bool dst = flags & XLB_NAT_DST;
	uint32_t diff = 0;
	unsigned int csum_off;
	uint16_t csum;
	bool udp = false;
	int i;

	if (family == AF_INET) {
		uint8_t *a = ip + (dst ? IPV4_DADDR_OFF : IPV4_SADDR_OFF);
		uint32_t old = rd32(a), new_ = xlb_addr_v4(addr);

		diff = diff32(0, old, new_);
		wr16(ip + IPV4_CSUM_OFF, csum_apply(rd16(ip + IPV4_CSUM_OFF), diff));
		wr32(a, new_);
	} else {
		uint8_t *a = ip + (dst ? IPV6_DADDR_OFF : IPV6_SADDR_OFF);

		for (i = 0; i < 8; i++)
			diff = diff16(diff, rd16(a + 2 * i), addr->h[i]);
		memcpy(a, addr->b, 16);
	}

	switch (proto) {
	case IPPROTO_TCP:
		csum_off = TCP_CSUM_OFF;
		break;
	case IPPROTO_UDP:
		csum_off = UDP_CSUM_OFF;
		udp = true;
		break;
	case IPPROTO_ICMPV6:
		/* ICMPv6 covers the pseudo-header; ICMPv4 does not, and
		 * neither has ports. */
		if (family != AF_INET6)
			return;
		wr16(l4 + ICMP_CSUM_OFF, csum_apply(rd16(l4 + ICMP_CSUM_OFF), diff));
		return;
	default:
		/* ICMPv4 and what we do not parse: the IP header is all. */
		return;
	}

	/* TCP and UDP both keep sport at 0 and dport at 2. */
	diff = diff16(diff, rd16(l4 + (dst ? 2 : 0)), port);
	wr16(l4 + (dst ? 2 : 0), port);

	/* A quote may stop short of the whole TCP header (RFC 792 promises
	 * 8 bytes): then the port changes and the checksum stays as it was
	 * on the wire, as the kernel's tcp_manip_pkt() leaves it, even with
	 * the checksum itself quoted (18 or 19 bytes). UDP's header is the
	 * 8 bytes. */
	if ((flags & XLB_NAT_QUOTED) && l4_len < (udp ? UDP_HLEN : TCP_HLEN))
		return;
	csum = rd16(l4 + csum_off);
	/* A zero UDP checksum means "none" (IPv4; on IPv6 only tunnels may
	 * send it, RFC 6935) and must stay so: a computed one would be
	 * garbage, having never covered the payload. */
	if (udp && csum == 0)
		return;
	csum = csum_apply(csum, diff);
	/* A computed 0 goes on the wire as 0xffff (RFC 768); both are zero
	 * in one's complement, so receivers accept it. */
	if (udp && csum == 0)
		csum = 0xffff;
	wr16(l4 + csum_off, csum);
}

void xlb_nat_rewrite(uint8_t *ip, uint8_t *l4, uint32_t l4_len, uint8_t family, uint8_t proto,
		     unsigned int flags, const union xlb_addr *addr, uint16_t port)
{
	rewrite(ip, l4, l4_len, family, proto, flags, addr, port);
}

/* The tuple follows the header: IPv4 kept mapped whatever addr's upper
 * words held, ports only where the protocol has them. */
static inline void set_tuple_end(struct xlb_pkt *p, bool dst, const union xlb_addr *addr,
				 uint16_t port)
{
	union xlb_addr *a = dst ? &p->tuple.dst : &p->tuple.src;

	if (p->tuple.family == AF_INET)
		xlb_addr_from_v4(a, xlb_addr_v4(addr));
	else
		*a = *addr;
	if (p->tuple.proto != IPPROTO_TCP && p->tuple.proto != IPPROTO_UDP)
		return;
	if (dst)
		p->tuple.dport = port;
	else
		p->tuple.sport = port;
}

void xlb_nat_set_dst(struct xlb_pkt *p, const union xlb_addr *addr, uint16_t port)
{
	rewrite(p->data + p->l3_off, p->data + p->l4_off, p->l4_len, p->tuple.family,
		p->tuple.proto, XLB_NAT_DST, addr, port);
	set_tuple_end(p, true, addr, port);
}

void xlb_nat_set_src(struct xlb_pkt *p, const union xlb_addr *addr, uint16_t port)
{
	rewrite(p->data + p->l3_off, p->data + p->l4_off, p->l4_len, p->tuple.family,
		p->tuple.proto, 0, addr, port);
	set_tuple_end(p, false, addr, port);
}

/* The difference, folded, of one address (all of an IPv6 one, the IPv4
 * word of a mapped one): what the pseudo-header, and for IPv4 the header,
 * see change. */
static uint32_t addr_diff(uint32_t sum, uint8_t family, const union xlb_addr *old,
			  const union xlb_addr *new_)
{
	if (family == AF_INET)
		return diff32(sum, xlb_addr_v4(old), xlb_addr_v4(new_));
	for (int i = 0; i < 8; i++)
		sum = diff16(sum, old->h[i], new_->h[i]);
	return sum;
}

void xlb_nat_delta(struct xlb_nat_delta *d, const struct xlb_tuple *from,
		   const struct xlb_tuple *to)
{
	uint32_t sum = 0;

	sum = addr_diff(sum, from->family, &from->src, &to->src);
	sum = addr_diff(sum, from->family, &from->dst, &to->dst);
	/* Folding the sum first changes nothing: the one's-complement sum
	 * of ~csum and the folded value folds to what the unfolded one
	 * does (0 only when both are 0), so the bytes on the wire are
	 * those of xlb_nat_set_dst/src. */
	d->ip = from->family == AF_INET ? fold(sum) : 0;
	sum = diff16(sum, from->sport, to->sport);
	sum = diff16(sum, from->dport, to->dport);
	d->l4 = fold(sum);
}

bool xlb_nat_apply(struct xlb_pkt *p, const struct xlb_tuple *other,
		   const struct xlb_nat_delta *d)
{
	uint8_t *ip = p->data + p->l3_off, *l4 = p->data + p->l4_off;
	bool udp = p->tuple.proto == IPPROTO_UDP;
	unsigned int csum_off = udp ? UDP_CSUM_OFF : TCP_CSUM_OFF;
	uint16_t csum = rd16(l4 + csum_off);
	bool partial;

	partial = xlb_csum_partial_(ip, l4, p->tuple.family, p->tuple.proto, p->l4_len, csum);

	if (p->tuple.family == AF_INET) {
		wr32(ip + IPV4_SADDR_OFF, xlb_addr_v4(&other->dst));
		wr32(ip + IPV4_DADDR_OFF, xlb_addr_v4(&other->src));
		wr16(ip + IPV4_CSUM_OFF, csum_apply(rd16(ip + IPV4_CSUM_OFF), d->ip));
	} else {
		memcpy(ip + IPV6_SADDR_OFF, other->dst.b, 16);
		memcpy(ip + IPV6_DADDR_OFF, other->src.b, 16);
	}
	/* TCP and UDP both keep sport at 0 and dport at 2. */
	wr16(l4, other->dport);
	wr16(l4 + 2, other->sport);
	/* As rewrite(): a UDP 0 ("none") stays 0, a computed 0 is sent as
	 * 0xffff. */
	if (!(udp && csum == 0)) {
		csum = csum_apply(csum, d->l4);
		if (udp && csum == 0)
			csum = 0xffff;
		wr16(l4 + csum_off, csum);
	}
	p->tuple.src = other->dst;
	p->tuple.dst = other->src;
	p->tuple.sport = other->dport;
	p->tuple.dport = other->sport;
	if (__builtin_expect(partial, 0))
		xlb_csum_complete(p);
	return partial;
}

/*
 * Eight bytes at a time: the 64-bit word w0 + w1*2^16 + w2*2^32 + w3*2^48
 * of four memory-order 16-bit words is their one's-complement sum, since
 * 2^16 = 1 there, and so is each wrap past 2^64, counted in `carry`. This
 * is the sum a partial checksum's completion needs over a whole datagram,
 * four times fewer additions than 16-bit words.
 */
uint32_t xlb_csum_add(uint32_t sum, const uint8_t *b, uint32_t len)
{
	uint64_t s = sum, carry = 0, w;
	uint32_t w32 = 0;
	uint16_t w16 = 0;

	for (; len >= 8; len -= 8, b += 8) {
		memcpy(&w, b, 8);
		s += w;
		carry += s < w;
	}
	s = (s & 0xffffffffu) + (s >> 32) + carry;
	if (len >= 4) {
		memcpy(&w32, b, 4);
		s += w32;
		b += 4;
		len -= 4;
	}
	if (len >= 2) {
		memcpy(&w16, b, 2);
		s += w16;
		b += 2;
		len -= 2;
	}
	if (len) {
		w16 = 0;
		memcpy(&w16, b, 1);
		s += w16;
	}
	return xlb_csum_fold64(s);
}

uint32_t xlb_csum_pseudo(uint8_t family, const uint8_t *ip, uint8_t proto, uint32_t len)
{
	uint32_t sum;

	if (family == AF_INET)
		sum = xlb_csum_add(0, ip + IPV4_SADDR_OFF, 8);
	else
		sum = xlb_csum_add(0, ip + IPV6_SADDR_OFF, 32);
	/* IPv4's zero+proto and 16-bit length sum to the same as IPv6's
	 * 32-bit length and zeros+next header. */
	return fold(sum + htons(proto) + htons((uint16_t)len) + htons((uint16_t)(len >> 16)));
}

uint16_t xlb_csum_ipv4_header(const uint8_t *ip, unsigned int ihl_bytes)
{
	uint32_t sum;

	sum = xlb_csum_add(0, ip, IPV4_CSUM_OFF);
	sum = xlb_csum_add(sum, ip + IPV4_CSUM_OFF + 2, ihl_bytes - IPV4_CSUM_OFF - 2);
	return (uint16_t)~sum;
}

void xlb_csum_complete(struct xlb_pkt *p)
{
	uint8_t *l4 = p->data + p->l4_off;

	wr16(l4 + (p->tuple.proto == IPPROTO_TCP ? TCP_CSUM_OFF : UDP_CSUM_OFF), xlb_csum_l4(p));
}

/* For a packet xlb_pkt_parse() accepted. UDP never gets 0 back: keeping
 * an IPv4 "no checksum" 0 is the caller's choice. Other protocols: 0. */
uint16_t xlb_csum_l4(const struct xlb_pkt *p)
{
	const uint8_t *ip = p->data + p->l3_off;
	const uint8_t *l4 = p->data + p->l4_off;
	unsigned int len = p->l4_len, csum_off;
	bool pseudo = true;
	uint32_t sum;
	uint16_t csum;

	switch (p->tuple.proto) {
	case IPPROTO_TCP:
		csum_off = TCP_CSUM_OFF;
		break;
	case IPPROTO_UDP:
		csum_off = UDP_CSUM_OFF;
		/* The checksum covers the UDP length, not trailing bytes of
		 * the datagram (the parser checked it is <= l4_len). */
		len = ntohs(rd16(l4 + UDP_LEN_OFF));
		break;
	case IPPROTO_ICMP:
		csum_off = ICMP_CSUM_OFF;
		pseudo = false;
		break;
	case IPPROTO_ICMPV6:
		csum_off = ICMP_CSUM_OFF;
		break;
	default:
		return 0;
	}

	/* Skip the stored checksum rather than subtracting it: only then is
	 * an all-zero ICMP message's checksum 0xffff, as it must be. */
	sum = pseudo ? xlb_csum_pseudo(p->tuple.family, ip, p->tuple.proto, len) : 0;
	sum = xlb_csum_add(sum, l4, csum_off);
	sum = xlb_csum_add(sum, l4 + csum_off + 2, len - csum_off - 2);
	csum = (uint16_t)~sum;
	if (p->tuple.proto == IPPROTO_UDP && csum == 0)
		csum = 0xffff;
	return csum;
}
