/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ICMP errors about tracked flows (RELATED), and the load balancer's own
 * answers (port unreachable, TCP RST).
 *
 * RELATED follows the kernel. Conntrack (nf_conntrack_inet_error) takes the
 * quoted packet's tuple, inverts it, because the error travels against the
 * quoted packet, and looks it up; the error is only related when it is
 * addressed to the quoted packet's source. NAT (nf_nat_icmp_reply_translation
 * and its ICMPv6 twin) then applies to the error, for each kind of mapping
 * the flow has in the error's direction, the mapping to the outer header and
 * the reverse mapping to the quote. xlb does at once what the kernel does at
 * PRE_ROUTING (destination) and POST_ROUTING (source).
 *
 * Checksums as the kernel leaves them: the ICMP checksum is verified first
 * (nf_conntrack_checksum is on by default) and then recomputed over the whole
 * message, since the quote changed; the quoted IPv4 header checksum and the
 * quoted L4 checksum are updated incrementally (RFC 1624), the latter only
 * when the quote holds it: a TCP checksum only when the whole 20-byte header
 * is quoted, a UDP checksum of 0 ("none") stays 0.
 *
 * Everything here runs on error paths: clarity over speed.
 */
#include <errno.h>
#include <string.h>
#include <arpa/inet.h>

#include "bytes_internal.h"
#include "icmp.h"
#include "nat.h"

#define IPV4_HLEN         20
#define IPV6_HLEN         40
#define ICMP_HLEN         8
#define TCP_HLEN          20
#define UDP_HLEN          8
#define QUOTE_L4_MIN      8    /* RFC 792: the quote holds 8 bytes of L4 */

#define IPV4_CSUM_OFF     10
#define IPV4_SADDR_OFF    12
#define IPV4_DADDR_OFF    16
#define IPV4_OFFSET_MASK  0x1fff
#define IPV4_DF           0x4000
#define IPV6_SADDR_OFF    8
#define IPV6_DADDR_OFF    24
#define IPV6_FRAG_OFFSET  0xfff8
#define IPV6_MAX_EXTHDR   8
#define TCP_CSUM_OFF      16
#define UDP_CSUM_OFF      6
#define ICMP_CSUM_OFF     2

#define ICMP_ECHOREPLY       0
#define ICMP_DEST_UNREACH    3
#define ICMP_SOURCE_QUENCH   4
#define ICMP_REDIRECT        5
#define ICMP_ECHO            8
#define ICMP_TIME_EXCEEDED   11
#define ICMP_PARAMETERPROB   12
#define ICMP_PORT_UNREACH    3
#define ICMPV6_DEST_UNREACH  1
#define ICMPV6_PORT_UNREACH  4
#define ICMPV6_ECHO          128
#define ICMPV6_ECHOREPLY     129
#define NDISC_REDIRECT       137

/* Largest error datagrams (RFC 1812 4.3.2.3, RFC 4443 2.4(c)). */
#define ICMP_ERR_MAX      576
#define ICMPV6_ERR_MAX    1280

#define IPTOS_TOS_MASK    0x1e
#define IPTOS_PREC_INTERNETCONTROL 0xc0
#define DEFAULT_TTL       64


/* The checksum to store for l4[0..len) whose checksum field is at
 * csum_off (skipped), plus `pseudo` (0 for ICMPv4). */
static uint16_t csum_compute(const uint8_t *l4, uint32_t len, unsigned int csum_off,
			     uint32_t pseudo)
{
	uint32_t sum = pseudo;

	sum = xlb_csum_add(sum, l4, csum_off);
	sum = xlb_csum_add(sum, l4 + csum_off + 2, len - csum_off - 2);
	return (uint16_t)~sum;
}

static bool csum_ok(const uint8_t *l4, uint32_t len, uint32_t pseudo)
{
	return xlb_csum_add(pseudo, l4, len) == 0xffff;
}

static inline bool is_v4_error_type(uint8_t type)
{
	/* The kernel's icmp_is_err() also counts source quench and redirect.
	 * Source quench is deprecated (RFC 6633: hosts ignore it, routers do
	 * not send it) and the XDP program does not steer it; the kernel's
	 * NAT drops redirects about NATed connections, and every xlb flow is
	 * NATed. Neither is worth forwarding. */
	return type == ICMP_DEST_UNREACH || type == ICMP_TIME_EXCEEDED ||
	       type == ICMP_PARAMETERPROB;
}

bool xlb_icmp_is_error(const struct xlb_pkt *p)
{
	if (p->tuple.family == AF_INET && p->tuple.proto == IPPROTO_ICMP)
		return is_v4_error_type(p->icmp_type);
	/* RFC 4443 2.1: types 0-127 are errors. */
	if (p->tuple.family == AF_INET6 && p->tuple.proto == IPPROTO_ICMPV6)
		return p->icmp_type < 128;
	return false;
}

/* ---- the quote --------------------------------------------------------- */

struct quote {
	uint8_t *ip;          /* quoted IP header */
	uint8_t *l4;          /* quoted L4 header */
	uint32_t l4_avail;    /* bytes of it in the quote, >= QUOTE_L4_MIN */
	uint8_t icmp_type;    /* when proto is ICMP or ICMPv6 */
	struct xlb_tuple tuple;   /* the quoted packet's, as on the wire */
};

/*
 * Parse the quote at q[0..avail) of an error of the given family. NO_FLOW
 * for a quote that is well formed but cannot name a connection (a non-first
 * fragment, an extension header chain longer than we follow): the kernel
 * finds no tuple for those and calls the error invalid, as for no match.
 */
static enum xlb_icmp_verdict parse_quote(struct quote *q, uint8_t *ip, uint32_t avail,
					 uint8_t family)
{
	uint32_t hlen;
	uint8_t nh;
	int i;

	memset(q, 0, sizeof(*q));
	q->ip = ip;
	q->tuple.family = family;
	if (family == AF_INET) {
		if (avail < IPV4_HLEN || (ip[0] >> 4) != 4)
			return XLB_ICMP_MALFORMED;
		hlen = (ip[0] & 0x0f) * 4u;
		if (hlen < IPV4_HLEN || hlen + QUOTE_L4_MIN > avail)
			return XLB_ICMP_MALFORMED;
		if (rd16(ip + 6) & htons(IPV4_OFFSET_MASK))
			return XLB_ICMP_NO_FLOW;
		nh = ip[9];
		xlb_addr_from_v4(&q->tuple.src, rd32(ip + IPV4_SADDR_OFF));
		xlb_addr_from_v4(&q->tuple.dst, rd32(ip + IPV4_DADDR_OFF));
	} else {
		if (avail < IPV6_HLEN || (ip[0] >> 4) != 6)
			return XLB_ICMP_MALFORMED;
		memcpy(q->tuple.src.b, ip + IPV6_SADDR_OFF, 16);
		memcpy(q->tuple.dst.b, ip + IPV6_DADDR_OFF, 16);
		nh = ip[6];
		hlen = IPV6_HLEN;
		/* As the kernel's ipv6_skip_exthdr(): the payload length is
		 * not checked, the quote is usually cut short of it. */
		for (i = 0;; i++) {
			if (nh != IPPROTO_HOPOPTS && nh != IPPROTO_DSTOPTS &&
			    nh != IPPROTO_ROUTING && nh != IPPROTO_FRAGMENT)
				break;
			if (i == IPV6_MAX_EXTHDR)
				return XLB_ICMP_NO_FLOW;
			if (hlen + 8 > avail)
				return XLB_ICMP_MALFORMED;
			if (nh == IPPROTO_FRAGMENT) {
				if (rd16(ip + hlen + 2) & htons(IPV6_FRAG_OFFSET))
					return XLB_ICMP_NO_FLOW;
				nh = ip[hlen];
				hlen += 8;
			} else {
				uint32_t ext = (ip[hlen + 1] + 1u) * 8u;

				nh = ip[hlen];
				hlen += ext;
			}
		}
		if (hlen + QUOTE_L4_MIN > avail)
			return XLB_ICMP_MALFORMED;
	}
	q->l4 = ip + hlen;
	q->l4_avail = avail - hlen;
	q->tuple.proto = nh;

	switch (nh) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
		q->tuple.sport = rd16(q->l4);
		q->tuple.dport = rd16(q->l4 + 2);
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		/* Only echo has an identity to find (packet.h); an error
		 * quoting an error, or ICMP of the other family, names
		 * nothing (the kernel cannot invert those tuples either). */
		if ((nh == IPPROTO_ICMP) != (family == AF_INET))
			return XLB_ICMP_NO_FLOW;
		q->icmp_type = q->l4[0];
		if (family == AF_INET ? q->icmp_type != ICMP_ECHO && q->icmp_type != ICMP_ECHOREPLY
				      : q->icmp_type != ICMPV6_ECHO && q->icmp_type != ICMPV6_ECHOREPLY)
			return XLB_ICMP_NO_FLOW;
		q->tuple.sport = rd16(q->l4 + 4);
		q->tuple.dport = htons(q->icmp_type);
		break;
	default:
		/* Generic flows: addresses and protocol only. */
		break;
	}
	return XLB_ICMP_RELATED;
}

/* The tuple of a packet going the other way: for echo, the identifier
 * stays and the type becomes its answer (nf_conntrack_invert_icmp_tuple). */
static void quote_invert(struct xlb_tuple *out, const struct quote *q)
{
	uint8_t t;

	xlb_tuple_invert(out, &q->tuple);
	if (q->tuple.proto != IPPROTO_ICMP && q->tuple.proto != IPPROTO_ICMPV6)
		return;
	if (q->tuple.proto == IPPROTO_ICMP)
		t = q->icmp_type == ICMP_ECHO ? ICMP_ECHOREPLY : ICMP_ECHO;
	else
		t = q->icmp_type == ICMPV6_ECHO ? ICMPV6_ECHOREPLY : ICMPV6_ECHO;
	out->sport = q->tuple.sport;
	out->dport = htons(t);
}

/* ---- translation ------------------------------------------------------- */

/* Whether the flow maps endpoint a (as the packets of one direction carry
 * it) to b (as the other direction's tuple has it): the kernel's
 * IPS_DST_NAT / IPS_SRC_NAT. Ports count for TCP and UDP only: xlb never
 * maps an echo identifier, and generic flows have no ports. */
static bool maps(uint8_t proto, const union xlb_addr *a, uint16_t aport,
		 const union xlb_addr *b, uint16_t bport)
{
	if (!xlb_addr_eq(a, b))
		return true;
	return (proto == IPPROTO_TCP || proto == IPPROTO_UDP) && aport != bport;
}

/*
 * Set the quoted packet's source (src) or destination to addr/port, as
 * nf_nat_ipv4/6_manip_pkt() on the quote: nat.c's rewrite, told that the
 * datagram is a quote so that a checksum the quote cuts off is left alone.
 */
static void quote_set(struct quote *q, bool src, const union xlb_addr *addr, uint16_t port)
{
	xlb_nat_rewrite(q->ip, q->l4, q->l4_avail, q->tuple.family, q->tuple.proto,
			XLB_NAT_QUOTED | (src ? 0 : XLB_NAT_DST), addr, port);
	if (src)
		q->tuple.src = *addr;
	else
		q->tuple.dst = *addr;
}

static uint32_t icmp_pseudo(const struct xlb_pkt *p)
{
	if (p->tuple.family == AF_INET)
		return 0;
	return xlb_csum_pseudo(AF_INET6, p->data + p->l3_off, IPPROTO_ICMPV6, p->l4_len);
}

/*
 * The error travels in direction dir of f; cur is that direction's tuple
 * and other the opposite one. Where the flow maps cur's destination to
 * other's source (a DNAT seen from this direction), the error goes to
 * other's source and the quote's source becomes it; where it maps cur's
 * source to other's destination (a SNAT seen from this direction), the
 * error comes from other's destination and the quote's destination
 * becomes it. The outer source otherwise stays: a router's error keeps
 * the router's address.
 */
static void translate(struct xlb_pkt *p, struct quote *q, const struct xlb_flow *f,
		      enum xlb_dir dir)
{
	const struct xlb_tuple *cur = &f->tuple[dir], *other = &f->tuple[!dir];
	uint8_t *icmp = p->data + p->l4_off;
	uint8_t proto = cur->proto;

	if (maps(proto, &cur->dst, cur->dport, &other->src, other->sport)) {
		quote_set(q, true, &other->src, other->sport);
		xlb_nat_set_dst(p, &other->src, 0);
	}
	if (maps(proto, &cur->src, cur->sport, &other->dst, other->dport)) {
		quote_set(q, false, &other->dst, other->dport);
		xlb_nat_set_src(p, &other->dst, 0);
	}
	/* The outer rewrites above adjusted an ICMPv6 checksum for the
	 * pseudo-header only; the quote changed too, so it is recomputed.
	 * The message was verified before, so a full recomputation does not
	 * launder a corrupted one. */
	wr16(icmp + ICMP_CSUM_OFF, csum_compute(icmp, p->l4_len, ICMP_CSUM_OFF, icmp_pseudo(p)));
}

enum xlb_icmp_verdict xlb_icmp_related(struct xlb_ct *ct, struct xlb_pkt *p, uint64_t now,
				       struct xlb_flow **flow, enum xlb_dir *dir)
{
	enum xlb_icmp_verdict v;
	struct xlb_tuple inv;
	struct xlb_flow *f;
	struct quote q;
	enum xlb_dir d;

	*flow = NULL;
	if (!xlb_icmp_is_error(p))
		return XLB_ICMP_NOT_ERROR;
	/* The parser guarantees the 8-byte ICMP header; checked again since
	 * everything below relies on it. */
	if (p->l4_len < ICMP_HLEN || p->l4_off + (uint32_t)p->l4_len > p->len)
		return XLB_ICMP_MALFORMED;
	if (!csum_ok(p->data + p->l4_off, p->l4_len, icmp_pseudo(p)))
		return XLB_ICMP_MALFORMED;

	v = parse_quote(&q, p->data + p->l4_off + ICMP_HLEN, p->l4_len - ICMP_HLEN,
			p->tuple.family);
	if (v != XLB_ICMP_RELATED)
		return v;
	q.tuple.zone = p->tuple.zone;

	/* The error travels against the quoted packet. */
	quote_invert(&inv, &q);
	f = xlb_ct_lookup(ct, &inv, xlb_ct_hash(ct, &inv), now, &d);
	if (!f)
		return XLB_ICMP_NO_FLOW;
	/* The error must go where the quoted packet came from; otherwise
	 * anyone could have an error "related" delivered to any host the
	 * flow's peer can reach (the kernel's "outer daddr != inner"). */
	if (!xlb_addr_eq(&p->tuple.dst, &f->tuple[d].dst))
		return XLB_ICMP_NO_FLOW;

	translate(p, &q, f, d);
	*flow = f;
	*dir = d;
	return XLB_ICMP_RELATED;
}

const char *xlb_icmp_verdict_str(enum xlb_icmp_verdict v)
{
	switch (v) {
	case XLB_ICMP_RELATED:
		return "related";
	case XLB_ICMP_NO_FLOW:
		return "no-flow";
	case XLB_ICMP_MALFORMED:
		return "malformed";
	case XLB_ICMP_NOT_ERROR:
		return "not-error";
	}
	return "unknown";
}

/* ---- the load balancer's own answers ----------------------------------- */

/* Whether the kernel would answer a packet from p's source to p's
 * destination at all: never to an address that is not one host's, nor to
 * what was sent to a group (icmp_send, icmp6_send, nf_reject). */
static bool may_answer(const struct xlb_pkt *p)
{
	const union xlb_addr *s = &p->tuple.src, *d = &p->tuple.dst;

	if (p->tuple.family == AF_INET) {
		uint32_t sa = ntohl(xlb_addr_v4(s)), da = ntohl(xlb_addr_v4(d));

		if ((sa >> 24) == 0 || (sa >> 24) == 127 || (sa >> 28) == 0xe || sa == 0xffffffff)
			return false;
		return (da >> 28) != 0xe && da != 0xffffffff;
	}
	if ((s->q[0] == 0 && s->q[1] == 0) || s->b[0] == 0xff)
		return false;
	if (s->q[0] == 0 && s->w[2] == 0 && s->w[3] == htonl(1))   /* ::1 */
		return false;
	return d->b[0] != 0xff;
}

/* Whether p is itself an ICMP error: never answered with another one
 * (RFC 1122 3.2.2, RFC 4443 2.4(e)), nor are ICMPv6 redirects. Unknown
 * ICMPv4 types count as errors, as in icmp_send(). */
static bool is_icmp_error_any(const struct xlb_pkt *p)
{
	uint8_t t = p->icmp_type;

	if (p->tuple.proto == IPPROTO_ICMP)
		return t == ICMP_DEST_UNREACH || t == ICMP_SOURCE_QUENCH || t == ICMP_REDIRECT ||
		       t == ICMP_TIME_EXCEEDED || t == ICMP_PARAMETERPROB || t > 18;
	if (p->tuple.proto == IPPROTO_ICMPV6)
		return t < 128 || t == NDISC_REDIRECT;
	return false;
}

/* A datagram's identification for an error we originate. The kernel's
 * ICMP socket does not set DF, so the ID must vary; we keep no counter, so
 * it is derived from the offending header, which varies per packet. */
static uint16_t derive_ip_id(const uint8_t *ip)
{
	uint32_t h = rd32(ip + 4) * 0x9e3779b1u ^ rd32(ip + 12) ^ rd32(ip + 16) * 0x85ebca6bu;

	return (uint16_t)(h ^ (h >> 16));
}

static void put_ipv4(uint8_t *ip, uint8_t tos, uint16_t tot_len, uint16_t id, uint16_t frag,
		     uint8_t proto, uint32_t saddr, uint32_t daddr)
{
	ip[0] = 0x45;
	ip[1] = tos;
	wr16(ip + 2, htons(tot_len));
	wr16(ip + 4, id);
	wr16(ip + 6, htons(frag));
	ip[8] = DEFAULT_TTL;
	ip[9] = proto;
	wr16(ip + IPV4_CSUM_OFF, 0);
	wr32(ip + IPV4_SADDR_OFF, saddr);
	wr32(ip + IPV4_DADDR_OFF, daddr);
	wr16(ip + IPV4_CSUM_OFF, xlb_csum_ipv4_header(ip, IPV4_HLEN));
}

static void put_ipv6(uint8_t *ip, uint16_t payload_len, uint8_t nexthdr,
		     const union xlb_addr *saddr, const union xlb_addr *daddr)
{
	wr32(ip, htonl(6u << 28));   /* traffic class 0, no flow label */
	wr16(ip + 4, htons(payload_len));
	ip[6] = nexthdr;
	ip[7] = DEFAULT_TTL;
	memcpy(ip + IPV6_SADDR_OFF, saddr->b, 16);
	memcpy(ip + IPV6_DADDR_OFF, daddr->b, 16);
}

int xlb_icmp_make_unreach(uint8_t *frame, uint32_t *len, uint32_t max_len,
			  const struct xlb_pkt *p)
{
	bool v4 = p->tuple.family == AF_INET;
	uint32_t hdr = (v4 ? IPV4_HLEN : IPV6_HLEN) + ICMP_HLEN;
	uint32_t limit = v4 ? ICMP_ERR_MAX : ICMPV6_ERR_MAX;
	uint32_t quote, least, room;
	union xlb_addr client, vip;
	uint8_t *ip, *icmp, tos;
	uint16_t id;

	if (!p->l3_off || !p->l4_off || (uint32_t)p->l3_off + p->l3_len > p->len)
		return -EINVAL;
	if (!may_answer(p) || is_icmp_error_any(p))
		return -EINVAL;
	ip = frame + p->l3_off;

	/* The original from its IP header: all of it that fits, at least its
	 * IP header and 8 bytes of L4 (or all of it, when shorter). */
	quote = p->l3_len < limit - hdr ? p->l3_len : limit - hdr;
	least = (uint32_t)(p->l4_off - p->l3_off) + QUOTE_L4_MIN;
	if (least > p->l3_len)
		least = p->l3_len;
	if (max_len < (uint32_t)p->l3_off + hdr + least)
		return -ENOSPC;
	room = max_len - p->l3_off - hdr;
	if (quote > room)
		quote = room;

	client = p->tuple.src;
	vip = p->tuple.dst;
	tos = v4 ? (uint8_t)((ip[1] & IPTOS_TOS_MASK) | IPTOS_PREC_INTERNETCONTROL) : 0;
	id = v4 ? derive_ip_id(ip) : 0;

	memmove(ip + hdr, ip, quote);
	if (v4)
		put_ipv4(ip, tos, (uint16_t)(hdr + quote), id, 0, IPPROTO_ICMP,
			 xlb_addr_v4(&vip), xlb_addr_v4(&client));
	else
		put_ipv6(ip, (uint16_t)(ICMP_HLEN + quote), IPPROTO_ICMPV6, &vip, &client);
	icmp = ip + hdr - ICMP_HLEN;
	icmp[0] = v4 ? ICMP_DEST_UNREACH : ICMPV6_DEST_UNREACH;
	icmp[1] = v4 ? ICMP_PORT_UNREACH : ICMPV6_PORT_UNREACH;
	wr16(icmp + 2, 0);
	wr32(icmp + 4, 0);
	wr16(icmp + ICMP_CSUM_OFF,
	     csum_compute(icmp, ICMP_HLEN + quote, ICMP_CSUM_OFF,
			  v4 ? 0 : xlb_csum_pseudo(AF_INET6, ip, IPPROTO_ICMPV6, ICMP_HLEN + quote)));
	*len = p->l3_off + hdr + quote;
	return 0;
}

int xlb_tcp_make_rst(uint8_t *frame, uint32_t *len, const struct xlb_pkt *p)
{
	bool v4 = p->tuple.family == AF_INET;
	uint32_t iphlen = v4 ? IPV4_HLEN : IPV6_HLEN;
	uint32_t seq, ack = 0, thlen;
	union xlb_addr client, vip;
	uint16_t sport, dport;
	uint8_t *ip, *tcp, flags;

	if (p->tuple.proto != IPPROTO_TCP || !p->l3_off || !p->l4_off ||
	    (uint32_t)p->l4_off + p->l4_len > p->len || p->l4_len < TCP_HLEN)
		return -EINVAL;
	ip = frame + p->l3_off;
	tcp = frame + p->l4_off;
	thlen = (tcp[12] >> 4) * 4u;
	if (thlen < TCP_HLEN || thlen > p->l4_len)
		return -EINVAL;
	flags = tcp[13];
	/* No RST for a RST (RFC 793), nor for a segment the stack would have
	 * dropped for its checksum (nf_reject checks it too). A partial
	 * checksum (the sender offloads it: it never crossed a wire) is
	 * trusted, as nf_ip_checksum() trusts CHECKSUM_PARTIAL. */
	if (flags & XLB_TCP_RST)
		return -EINVAL;
	if (!csum_ok(tcp, p->l4_len, xlb_csum_pseudo(p->tuple.family, ip, IPPROTO_TCP, p->l4_len)) &&
	    !xlb_csum_is_partial(p))
		return -EINVAL;
	if (!may_answer(p))
		return -EINVAL;

	client = p->tuple.src;
	vip = p->tuple.dst;
	sport = rd16(tcp);
	dport = rd16(tcp + 2);
	if (flags & XLB_TCP_ACK) {
		/* Acceptable to the sender: it is what it expects next. */
		seq = rd32(tcp + 8);
		flags = XLB_TCP_RST;
	} else {
		/* No ACK to take a sequence number from: acknowledge the
		 * whole segment instead (RFC 793 "Reset Generation"). */
		seq = 0;
		ack = htonl(ntohl(rd32(tcp + 4)) + !!(flags & XLB_TCP_SYN) +
			    !!(flags & XLB_TCP_FIN) + (p->l4_len - thlen));
		flags = XLB_TCP_RST | XLB_TCP_ACK;
	}

	/* The new headers are never longer than the old ones, and every field
	 * needed from the old ones has been read. */
	if (v4)
		put_ipv4(ip, 0, (uint16_t)(iphlen + TCP_HLEN), 0, IPV4_DF, IPPROTO_TCP,
			 xlb_addr_v4(&vip), xlb_addr_v4(&client));
	else
		put_ipv6(ip, TCP_HLEN, IPPROTO_TCP, &vip, &client);
	tcp = ip + iphlen;
	wr16(tcp, dport);
	wr16(tcp + 2, sport);
	wr32(tcp + 4, seq);
	wr32(tcp + 8, ack);
	tcp[12] = (TCP_HLEN / 4) << 4;
	tcp[13] = flags;
	wr16(tcp + 14, 0);                  /* window */
	wr16(tcp + TCP_CSUM_OFF, 0);
	wr16(tcp + 18, 0);                  /* urgent pointer */
	wr16(tcp + TCP_CSUM_OFF,
	     csum_compute(tcp, TCP_HLEN, TCP_CSUM_OFF,
			  xlb_csum_pseudo(p->tuple.family, ip, IPPROTO_TCP, TCP_HLEN)));
	*len = p->l3_off + iphlen + TCP_HLEN;
	return 0;
}
