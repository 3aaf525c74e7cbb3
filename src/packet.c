/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Header parsing for the packet path. Called once per received frame, so
 * it stays branch-light: fixed-size reads through rd16/rd32 (the IP header
 * sits at an odd 2-byte boundary after Ethernet, so loads must tolerate
 * misalignment) and one bounded loop for IPv6 extension headers.
 *
 * Every length is checked against what the frame really holds before a
 * byte is read, in this order: a header that runs past the frame is
 * TRUNCATED; then the IP datagram's own length must fit in the frame
 * (TRUNCATED again: the frame was cut); from then on everything is checked
 * against the datagram, and a header that does not fit in it is
 * BAD_HEADER, since the sender's lengths contradict each other.
 */
#include <string.h>
#include <arpa/inet.h>

#include "bytes_internal.h"
#include "packet.h"

#define ETH_HDR_LEN      14
#define VLAN_HDR_LEN     4
#define ETHERTYPE_IPV4   0x0800
#define ETHERTYPE_IPV6   0x86dd
#define ETHERTYPE_8021Q  0x8100
#define ETHERTYPE_8021AD 0x88a8

#define IPV4_MIN_HLEN    20
#define IPV4_MF          0x2000
#define IPV4_OFFSET_MASK 0x1fff
#define IPV6_HLEN        40
#define IPV6_FRAG_MASK   0xfff9   /* offset (13 bits) and the M flag */

/* RFC 8200 does not cap the chain; real traffic carries one or two. The
 * cap keeps the hot path's only loop bounded against crafted chains. */
#define IPV6_MAX_EXTHDR  8

#define TCP_MIN_HLEN     20
#define UDP_HLEN         8
#define ICMP_HLEN        8   /* type, code, checksum + 4 bytes every message has */

#define ICMP_ECHOREPLY    0
#define ICMP_ECHO         8
#define ICMPV6_ECHO       128
#define ICMPV6_ECHOREPLY  129


static inline enum xlb_parse_result parse_icmp(struct xlb_pkt *p, const uint8_t *l4,
					       uint8_t echo_request, uint8_t echo_reply)
{
	if (p->l4_len < ICMP_HLEN)
		return XLB_PARSE_BAD_HEADER;
	p->icmp_type = l4[0];
	p->icmp_code = l4[1];
	/* The identifier is what tells two pings between the same hosts
	 * apart; other messages (errors, NDP) have no identity of their own. */
	if (l4[0] == echo_request || l4[0] == echo_reply)
		p->tuple.sport = rd16(l4 + 4);
	p->tuple.dport = htons(l4[0]);
	p->payload_off = p->l4_off + ICMP_HLEN;
	return XLB_PARSE_OK;
}

/* p->l4_off and p->l4_len are set; the datagram is known to fit in the frame. */
static inline enum xlb_parse_result parse_l4(struct xlb_pkt *p, uint8_t proto)
{
	const uint8_t *l4 = p->data + p->l4_off;
	unsigned int hlen;
	uint16_t ulen;

	p->tuple.proto = proto;
	switch (proto) {
	case IPPROTO_TCP:
		if (p->l4_len < TCP_MIN_HLEN)
			return XLB_PARSE_BAD_HEADER;
		hlen = (l4[12] >> 4) * 4u;
		if (hlen < TCP_MIN_HLEN || hlen > p->l4_len)
			return XLB_PARSE_BAD_HEADER;
		p->tuple.sport = rd16(l4);
		p->tuple.dport = rd16(l4 + 2);
		p->tcp_flags = l4[13];
		p->payload_off = p->l4_off + hlen;
		return XLB_PARSE_OK;
	case IPPROTO_UDP:
		if (p->l4_len < UDP_HLEN)
			return XLB_PARSE_BAD_HEADER;
		/* Shorter than the datagram is legal (the rest is padding);
		 * longer means a lie about where the payload ends. */
		ulen = ntohs(rd16(l4 + 4));
		if (ulen < UDP_HLEN || ulen > p->l4_len)
			return XLB_PARSE_BAD_HEADER;
		p->tuple.sport = rd16(l4);
		p->tuple.dport = rd16(l4 + 2);
		p->payload_off = p->l4_off + UDP_HLEN;
		return XLB_PARSE_OK;
	case IPPROTO_ICMP:
		if (p->tuple.family != AF_INET)
			return XLB_PARSE_UNSUPPORTED;
		return parse_icmp(p, l4, ICMP_ECHO, ICMP_ECHOREPLY);
	case IPPROTO_ICMPV6:
		if (p->tuple.family != AF_INET6)
			return XLB_PARSE_UNSUPPORTED;
		return parse_icmp(p, l4, ICMPV6_ECHO, ICMPV6_ECHOREPLY);
	default:
		return XLB_PARSE_UNSUPPORTED;
	}
}

static inline enum xlb_parse_result parse_ipv4(struct xlb_pkt *p, uint32_t off)
{
	const uint8_t *ip = p->data + off;
	uint32_t avail = p->len - off;
	unsigned int hlen, tot;

	if (avail < IPV4_MIN_HLEN)
		return XLB_PARSE_TRUNCATED;
	if ((ip[0] >> 4) != 4)
		return XLB_PARSE_BAD_HEADER;
	hlen = (ip[0] & 0x0f) * 4u;
	if (hlen < IPV4_MIN_HLEN)
		return XLB_PARSE_BAD_HEADER;
	if (hlen > avail)
		return XLB_PARSE_TRUNCATED;
	tot = ntohs(rd16(ip + 2));
	if (tot < hlen)
		return XLB_PARSE_BAD_HEADER;
	if (tot > avail)
		return XLB_PARSE_TRUNCATED;

	p->l3_off = off;
	p->l3_len = tot;
	p->tuple.family = AF_INET;
	p->tuple.proto = ip[9];
	xlb_addr_from_v4(&p->tuple.src, rd32(ip + 12));
	xlb_addr_from_v4(&p->tuple.dst, rd32(ip + 16));

	if (rd16(ip + 6) & htons(IPV4_MF | IPV4_OFFSET_MASK))
		return XLB_PARSE_FRAGMENT;

	p->l4_off = off + hlen;
	p->l4_len = tot - hlen;
	return parse_l4(p, ip[9]);
}

static inline enum xlb_parse_result parse_ipv6(struct xlb_pkt *p, uint32_t off)
{
	const uint8_t *ip = p->data + off;
	uint32_t avail = p->len - off;
	unsigned int end, hoff = IPV6_HLEN, hlen;
	uint8_t nh;
	int i;

	if (avail < IPV6_HLEN)
		return XLB_PARSE_TRUNCATED;
	if ((ip[0] >> 4) != 6)
		return XLB_PARSE_BAD_HEADER;
	/* A payload length of 0 would announce a jumbogram (RFC 2675); we
	 * do not take those, and without the option it is simply an empty
	 * datagram, which then fails the L4 header checks below. */
	end = IPV6_HLEN + ntohs(rd16(ip + 4));
	if (end > avail)
		return XLB_PARSE_TRUNCATED;
	if (end > UINT16_MAX)   /* only with frames over 64 KiB: l3_len cannot hold it */
		return XLB_PARSE_BAD_HEADER;

	p->l3_off = off;
	p->l3_len = end;
	p->tuple.family = AF_INET6;
	memcpy(p->tuple.src.b, ip + 8, 16);
	memcpy(p->tuple.dst.b, ip + 24, 16);

	nh = ip[6];
	for (i = 0; i < IPV6_MAX_EXTHDR; i++) {
		switch (nh) {
		case IPPROTO_HOPOPTS:
			/* Only valid right after the fixed header (RFC 8200 4.1). */
			if (i != 0)
				goto bad;
			/* fallthrough */
		case IPPROTO_DSTOPTS:
		case IPPROTO_ROUTING:
			if (hoff + 8 > end)
				goto bad;
			hlen = (ip[hoff + 1] + 1u) * 8u;
			if (hoff + hlen > end)
				goto bad;
			/* With segments left, the address in the header is not
			 * the final destination: the L4 checksum covers another
			 * address, and rewriting ours would not be a DNAT. */
			if (nh == IPPROTO_ROUTING && ip[hoff + 3] != 0) {
				p->tuple.proto = nh;
				return XLB_PARSE_UNSUPPORTED;
			}
			nh = ip[hoff];
			hoff += hlen;
			break;
		case IPPROTO_FRAGMENT:
			if (hoff + 8 > end)
				goto bad;
			if (rd16(ip + hoff + 2) & htons(IPV6_FRAG_MASK)) {
				p->tuple.proto = ip[hoff];
				return XLB_PARSE_FRAGMENT;
			}
			/* Atomic fragment (RFC 6946): the whole datagram. */
			nh = ip[hoff];
			hoff += 8;
			break;
		default:
			p->l4_off = off + hoff;
			p->l4_len = end - hoff;
			return parse_l4(p, nh);
		}
	}
	/* Too many extension headers; AH, ESP and unknown ones land in
	 * parse_l4's default case instead. */
	p->tuple.proto = nh;
	return XLB_PARSE_UNSUPPORTED;
bad:
	p->tuple.proto = nh;
	return XLB_PARSE_BAD_HEADER;
}

enum xlb_parse_result xlb_pkt_parse(struct xlb_pkt *p, uint8_t *data, uint32_t len)
{
	uint32_t off = ETH_HDR_LEN;
	uint16_t type;

	p->data = data;
	p->len = len;
	p->l3_off = 0;
	p->l4_off = 0;
	p->l3_len = 0;
	p->l4_len = 0;
	p->payload_off = 0;
	p->vlan_tci = 0;
	p->has_vlan = false;
	p->tcp_flags = 0;
	p->icmp_type = 0;
	p->icmp_code = 0;
	memset(&p->tuple, 0, sizeof(p->tuple));

	if (len < ETH_HDR_LEN)
		return XLB_PARSE_TRUNCATED;
	type = ntohs(rd16(data + 12));
	if (type == ETHERTYPE_8021Q || type == ETHERTYPE_8021AD) {
		if (len < ETH_HDR_LEN + VLAN_HDR_LEN)
			return XLB_PARSE_TRUNCATED;
		p->has_vlan = true;
		p->vlan_tci = ntohs(rd16(data + 14));
		type = ntohs(rd16(data + 16));
		off += VLAN_HDR_LEN;
	}

	switch (type) {
	case ETHERTYPE_IPV4:
		return parse_ipv4(p, off);
	case ETHERTYPE_IPV6:
		return parse_ipv6(p, off);
	default:
		/* Including a second VLAN tag (QinQ): the XDP program only
		 * steers frames with at most one tag, so one here is not ours. */
		return XLB_PARSE_NOT_IP;
	}
}

const char *xlb_parse_result_str(enum xlb_parse_result r)
{
	static const char *const names[XLB_PARSE_MAX] = {
		[XLB_PARSE_OK] = "ok",
		[XLB_PARSE_NOT_IP] = "not-ip",
		[XLB_PARSE_TRUNCATED] = "truncated",
		[XLB_PARSE_BAD_HEADER] = "bad-header",
		[XLB_PARSE_FRAGMENT] = "fragment",
		[XLB_PARSE_UNSUPPORTED] = "unsupported",
	};

	if ((unsigned int)r >= XLB_PARSE_MAX)
		return "unknown";
	return names[r];
}
