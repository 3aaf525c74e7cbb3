/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Header parsing: frames built byte by byte here, one table row per kind
 * of frame, plus every truncation of every valid frame and random byte
 * mutations, parsed from buffers of exactly the frame's size so that
 * AddressSanitizer sees any read past the end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include <CUnit/Basic.h>

#include "packet.h"
#include "unit.h"

/* ---- frame builder ---------------------------------------------------- */

struct frame {
	uint8_t b[512];
	unsigned int len;
	unsigned int l3;       /* where the IP header starts */
	unsigned int l4;       /* where the L4 header starts */
	unsigned int ip_end;   /* end of the IP datagram (before padding) */
	int family;
};

static void put8(struct frame *f, uint8_t v)
{
	f->b[f->len++] = v;
}

static void put16(struct frame *f, uint16_t v)
{
	put8(f, v >> 8);
	put8(f, v & 0xff);
}

static void put32(struct frame *f, uint32_t v)
{
	put16(f, v >> 16);
	put16(f, v & 0xffff);
}

static void set16(struct frame *f, unsigned int off, uint16_t v)
{
	f->b[off] = v >> 8;
	f->b[off + 1] = v & 0xff;
}

static const uint8_t v6_src[16] = { 0x20, 0x01, 0x00, 0x02, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x11 };
static const uint8_t v6_dst[16] = { 0x20, 0x01, 0x00, 0x02, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0x22 };
#define V4_SRC 0xc6120001u  /* 198.18.0.1 */
#define V4_DST 0xc6120064u  /* 198.18.0.100 */

static void eth(struct frame *f, uint16_t type)
{
	int i;

	memset(f, 0, sizeof(*f));
	for (i = 0; i < 6; i++)
		put8(f, 0x02);
	for (i = 0; i < 6; i++)
		put8(f, 0x04);
	put16(f, type);
}

static void eth_vlan(struct frame *f, uint16_t tpid, uint16_t tci, uint16_t type)
{
	eth(f, tpid);
	put16(f, tci);
	put16(f, type);
}

/* IPv4 header with optlen bytes of options (a multiple of 4);
 * total length and checksum are left for finish(). */
static void ipv4(struct frame *f, uint8_t proto, unsigned int optlen, uint16_t frag)
{
	unsigned int i;

	f->family = AF_INET;
	f->l3 = f->len;
	put8(f, 0x40 | (uint8_t)((20 + optlen) / 4));
	put8(f, 0);
	put16(f, 0);           /* total length, later */
	put16(f, 0x1234);      /* id */
	put16(f, frag);
	put8(f, 64);
	put8(f, proto);
	put16(f, 0);
	put32(f, V4_SRC);
	put32(f, V4_DST);
	for (i = 0; i < optlen; i++)
		put8(f, i + 1 == optlen ? 0 : 1);   /* NOPs, then EOL */
	f->l4 = f->len;
}

static void ipv6(struct frame *f, uint8_t nh)
{
	int i;

	f->family = AF_INET6;
	f->l3 = f->len;
	put32(f, 0x60000000);
	put16(f, 0);           /* payload length, later */
	put8(f, nh);
	put8(f, 64);
	for (i = 0; i < 16; i++)
		put8(f, v6_src[i]);
	for (i = 0; i < 16; i++)
		put8(f, v6_dst[i]);
	f->l4 = f->len;
}

/* An options-style extension header (hop-by-hop, destination options,
 * routing) of (units + 1) * 8 bytes. For routing, byte 3 is segments left. */
static void ext(struct frame *f, uint8_t nh, uint8_t units, uint8_t byte3)
{
	unsigned int i;

	put8(f, nh);
	put8(f, units);
	put8(f, 0);
	put8(f, byte3);
	for (i = 4; i < (units + 1u) * 8; i++)
		put8(f, 0);
	f->l4 = f->len;
}

static void frag6(struct frame *f, uint8_t nh, uint16_t off_flags)
{
	put8(f, nh);
	put8(f, 0);
	put16(f, off_flags);
	put32(f, 0xabcdef01);
	f->l4 = f->len;
}

static void tcp(struct frame *f, uint16_t sport, uint16_t dport, uint8_t flags, unsigned int optlen)
{
	unsigned int i;

	put16(f, sport);
	put16(f, dport);
	put32(f, 1000);
	put32(f, 0);
	put8(f, (uint8_t)(((20 + optlen) / 4) << 4));
	put8(f, flags);
	put16(f, 65535);
	put16(f, 0);
	put16(f, 0);
	for (i = 0; i < optlen; i++)
		put8(f, 1);
}

static void udp(struct frame *f, uint16_t sport, uint16_t dport)
{
	put16(f, sport);
	put16(f, dport);
	put16(f, 0);           /* length, later */
	put16(f, 0);
}

static void icmp(struct frame *f, uint8_t type, uint8_t code, uint16_t id)
{
	put8(f, type);
	put8(f, code);
	put16(f, 0);
	put16(f, id);
	put16(f, 7);
}

static void payload(struct frame *f, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		put8(f, (uint8_t)(0xa0 + i));
}

/* Fill in the IP length from what was built; the datagram ends here. */
static void finish(struct frame *f)
{
	f->ip_end = f->len;
	if (f->family == AF_INET)
		set16(f, f->l3 + 2, f->len - f->l3);
	else
		set16(f, f->l3 + 4, f->len - f->l3 - 40);
}

static void finish_udp(struct frame *f)
{
	finish(f);
	set16(f, f->l4 + 4, f->len - f->l4);
}

static void pad(struct frame *f, unsigned int to)
{
	while (f->len < to)
		put8(f, 0xee);
}

/* ---- the table -------------------------------------------------------- */

struct expect {
	enum xlb_parse_result res;
	uint8_t family;
	uint8_t proto;
	uint16_t sport, dport;   /* host order, compared after ntohs */
	uint8_t tcp_flags;
	uint8_t icmp_type, icmp_code;
	bool has_vlan;
	uint16_t vlan_tci;
	unsigned int l4_hlen;    /* payload_off - l4_off, when OK */
};

struct pcase {
	const char *name;
	void (*build)(struct frame *f);
	struct expect e;
};

static void b_tcp4(struct frame *f)
{
	eth(f, 0x0800);
	ipv4(f, IPPROTO_TCP, 0, 0x4000);
	tcp(f, 40000, 80, XLB_TCP_SYN, 0);
	finish(f);
}

static void b_tcp4_payload_opts(struct frame *f)
{
	eth(f, 0x0800);
	ipv4(f, IPPROTO_TCP, 12, 0);
	tcp(f, 40001, 443, XLB_TCP_ACK | XLB_TCP_PSH, 12);
	payload(f, 33);
	finish(f);
}

static void b_udp4(struct frame *f)
{
	eth(f, 0x0800);
	ipv4(f, IPPROTO_UDP, 0, 0);
	udp(f, 5353, 53);
	payload(f, 5);
	finish_udp(f);
}

static void b_udp4_padded(struct frame *f)
{
	b_udp4(f);
	pad(f, 60);
}

static void b_icmp4_echo(struct frame *f)
{
	eth(f, 0x0800);
	ipv4(f, IPPROTO_ICMP, 0, 0);
	icmp(f, 8, 0, 0x4242);
	payload(f, 16);
	finish(f);
}

static void b_icmp4_reply(struct frame *f)
{
	eth(f, 0x0800);
	ipv4(f, IPPROTO_ICMP, 0, 0);
	icmp(f, 0, 0, 0x4243);
	finish(f);
}

static void b_icmp4_unreach(struct frame *f)
{
	eth(f, 0x0800);
	ipv4(f, IPPROTO_ICMP, 0, 0);
	icmp(f, 3, 4, 0x0000);
	payload(f, 28);
	finish(f);
}

static void b_tcp4_vlan(struct frame *f)
{
	eth_vlan(f, 0x8100, 0x2064, 0x0800);
	ipv4(f, IPPROTO_TCP, 0, 0);
	tcp(f, 1234, 80, XLB_TCP_FIN | XLB_TCP_ACK, 0);
	finish(f);
}

static void b_udp6_vlan_ad(struct frame *f)
{
	eth_vlan(f, 0x88a8, 0x0fff, 0x86dd);
	ipv6(f, IPPROTO_UDP);
	udp(f, 1000, 2000);
	payload(f, 3);
	finish_udp(f);
}

static void b_tcp6(struct frame *f)
{
	eth(f, 0x86dd);
	ipv6(f, IPPROTO_TCP);
	tcp(f, 50000, 8080, XLB_TCP_SYN | XLB_TCP_ECE | XLB_TCP_CWR, 20);
	finish(f);
}

static void b_udp6(struct frame *f)
{
	eth(f, 0x86dd);
	ipv6(f, IPPROTO_UDP);
	udp(f, 5000, 53);
	payload(f, 40);
	finish_udp(f);
}

static void b_icmp6_echo(struct frame *f)
{
	eth(f, 0x86dd);
	ipv6(f, IPPROTO_ICMPV6);
	icmp(f, 128, 0, 0x0101);
	payload(f, 8);
	finish(f);
}

static void b_icmp6_reply(struct frame *f)
{
	eth(f, 0x86dd);
	ipv6(f, IPPROTO_ICMPV6);
	icmp(f, 129, 0, 0x0102);
	finish(f);
}

static void b_tcp6_ext(struct frame *f)
{
	eth(f, 0x86dd);
	ipv6(f, IPPROTO_HOPOPTS);
	ext(f, IPPROTO_DSTOPTS, 0, 0);
	ext(f, IPPROTO_ROUTING, 1, 0);
	ext(f, IPPROTO_FRAGMENT, 0, 0);     /* routing, segments left 0 */
	frag6(f, IPPROTO_DSTOPTS, 0);       /* atomic fragment */
	ext(f, IPPROTO_TCP, 2, 0);
	tcp(f, 7, 9, XLB_TCP_RST, 0);
	payload(f, 1);
	finish(f);
}

static void b_udp6_atomic_frag(struct frame *f)
{
	eth(f, 0x86dd);
	ipv6(f, IPPROTO_FRAGMENT);
	frag6(f, IPPROTO_UDP, 0);
	udp(f, 11, 12);
	finish_udp(f);
}

static void b_arp(struct frame *f)
{
	eth(f, 0x0806);
	payload(f, 28);
	f->ip_end = f->len;
}

static void b_qinq(struct frame *f)
{
	eth_vlan(f, 0x88a8, 10, 0x8100);
	put16(f, 20);
	put16(f, 0x0800);
	ipv4(f, IPPROTO_TCP, 0, 0);
	tcp(f, 1, 2, 0, 0);
	finish(f);
}

static void b_ihl4(struct frame *f)
{
	b_tcp4(f);
	f->b[f->l3] = 0x44;
}

static void b_ver6_in_v4(struct frame *f)
{
	b_tcp4(f);
	f->b[f->l3] = 0x65;
}

static void b_ver4_in_v6(struct frame *f)
{
	b_tcp6(f);
	f->b[f->l3] = 0x40;
}

static void b_totlen_big(struct frame *f)
{
	b_tcp4(f);
	set16(f, f->l3 + 2, f->len - f->l3 + 1);
}

static void b_totlen_lt_ihl(struct frame *f)
{
	b_tcp4(f);
	set16(f, f->l3 + 2, 19);
}

static void b_plen_big(struct frame *f)
{
	b_udp6(f);
	set16(f, f->l3 + 4, f->len - f->l3 - 40 + 1);
}

static void b_tcp_cut_by_totlen(struct frame *f)
{
	/* The frame holds the whole TCP header, the IP header says it
	 * ends 10 bytes into it. */
	b_tcp4(f);
	set16(f, f->l3 + 2, 30);
}

static void b_tcp_doff4(struct frame *f)
{
	b_tcp4(f);
	f->b[f->l4 + 12] = 0x40;
}

static void b_tcp_doff_past(struct frame *f)
{
	b_tcp4(f);
	f->b[f->l4 + 12] = 0x60;   /* 24 bytes, datagram has 20 */
}

static void b_udp_len7(struct frame *f)
{
	b_udp4(f);
	set16(f, f->l4 + 4, 7);
}

static void b_udp_len_past(struct frame *f)
{
	b_udp4_padded(f);
	/* Inside the frame thanks to padding, past the datagram. */
	set16(f, f->l4 + 4, f->ip_end - f->l4 + 1);
}

static void b_udp_len_short(struct frame *f)
{
	/* UDP length below the datagram's: legal, trailing bytes ignored. */
	b_udp4(f);
	set16(f, f->l4 + 4, 8);
}

static void b_icmp_short(struct frame *f)
{
	eth(f, 0x0800);
	ipv4(f, IPPROTO_ICMP, 0, 0);
	put16(f, 0x0800);
	put16(f, 0);
	finish(f);
}

static void b_v4_mf(struct frame *f)
{
	eth(f, 0x0800);
	ipv4(f, IPPROTO_UDP, 0, 0x2000);
	udp(f, 1, 2);
	payload(f, 16);
	finish_udp(f);
}

static void b_v4_offset(struct frame *f)
{
	eth(f, 0x0800);
	ipv4(f, IPPROTO_UDP, 0, 0x0003);
	payload(f, 16);
	finish(f);
}

static void b_v4_df_only(struct frame *f)
{
	eth(f, 0x0800);
	ipv4(f, IPPROTO_UDP, 0, 0x4000);
	udp(f, 3, 4);
	finish_udp(f);
}

static void b_v6_frag_first(struct frame *f)
{
	eth(f, 0x86dd);
	ipv6(f, IPPROTO_FRAGMENT);
	frag6(f, IPPROTO_UDP, 0x0001);   /* offset 0, M set */
	udp(f, 1, 2);
	payload(f, 8);
	finish(f);
}

static void b_v6_frag_later(struct frame *f)
{
	eth(f, 0x86dd);
	ipv6(f, IPPROTO_DSTOPTS);
	ext(f, IPPROTO_FRAGMENT, 0, 0);
	frag6(f, IPPROTO_TCP, 0x00a8);   /* offset 21*8, last */
	payload(f, 8);
	finish(f);
}

static void b_gre4(struct frame *f)
{
	eth(f, 0x0800);
	ipv4(f, 47, 0, 0);
	payload(f, 4);
	finish(f);
}

static void b_sctp6(struct frame *f)
{
	eth(f, 0x86dd);
	ipv6(f, IPPROTO_DSTOPTS);
	ext(f, 132, 0, 0);
	payload(f, 12);
	finish(f);
}

static void b_icmpv6_in_v4(struct frame *f)
{
	eth(f, 0x0800);
	ipv4(f, IPPROTO_ICMPV6, 0, 0);
	icmp(f, 128, 0, 1);
	finish(f);
}

static void b_v6_no_next(struct frame *f)
{
	eth(f, 0x86dd);
	ipv6(f, 59);
	finish(f);
}

static void b_v6_routing_segs(struct frame *f)
{
	eth(f, 0x86dd);
	ipv6(f, IPPROTO_ROUTING);
	ext(f, IPPROTO_TCP, 2, 1);
	tcp(f, 1, 2, XLB_TCP_SYN, 0);
	finish(f);
}

static void b_v6_hop_not_first(struct frame *f)
{
	eth(f, 0x86dd);
	ipv6(f, IPPROTO_DSTOPTS);
	ext(f, IPPROTO_HOPOPTS, 0, 0);
	ext(f, IPPROTO_TCP, 0, 0);
	tcp(f, 1, 2, XLB_TCP_SYN, 0);
	finish(f);
}

static void b_v6_ext_past(struct frame *f)
{
	/* A destination options header claiming 24 bytes in a 16-byte payload. */
	eth(f, 0x86dd);
	ipv6(f, IPPROTO_DSTOPTS);
	ext(f, IPPROTO_TCP, 1, 0);
	finish(f);
	f->b[f->l3 + 41] = 2;
}

static void b_v6_long_chain(struct frame *f)
{
	int i;

	eth(f, 0x86dd);
	ipv6(f, IPPROTO_DSTOPTS);
	for (i = 0; i < 9; i++)
		ext(f, i == 8 ? IPPROTO_UDP : IPPROTO_DSTOPTS, 0, 0);
	udp(f, 1, 2);
	finish_udp(f);
}

static void b_v6_empty(struct frame *f)
{
	eth(f, 0x86dd);
	ipv6(f, IPPROTO_TCP);
	finish(f);
}

#define OK4(p) XLB_PARSE_OK, AF_INET, p
#define OK6(p) XLB_PARSE_OK, AF_INET6, p

static const struct pcase cases[] = {
	{ "tcp4 syn", b_tcp4, { OK4(IPPROTO_TCP), 40000, 80, XLB_TCP_SYN, 0, 0, false, 0, 20 } },
	{ "tcp4 options+payload", b_tcp4_payload_opts,
	  { OK4(IPPROTO_TCP), 40001, 443, XLB_TCP_ACK | XLB_TCP_PSH, 0, 0, false, 0, 32 } },
	{ "udp4", b_udp4, { OK4(IPPROTO_UDP), 5353, 53, 0, 0, 0, false, 0, 8 } },
	{ "udp4 ethernet padding", b_udp4_padded, { OK4(IPPROTO_UDP), 5353, 53, 0, 0, 0, false, 0, 8 } },
	{ "udp4 length below datagram", b_udp_len_short, { OK4(IPPROTO_UDP), 5353, 53, 0, 0, 0, false, 0, 8 } },
	{ "icmp4 echo request", b_icmp4_echo, { OK4(IPPROTO_ICMP), 0x4242, 8, 0, 8, 0, false, 0, 8 } },
	{ "icmp4 echo reply", b_icmp4_reply, { OK4(IPPROTO_ICMP), 0x4243, 0, 0, 0, 0, false, 0, 8 } },
	{ "icmp4 unreachable", b_icmp4_unreach, { OK4(IPPROTO_ICMP), 0, 3, 0, 3, 4, false, 0, 8 } },
	{ "tcp4 802.1Q", b_tcp4_vlan,
	  { OK4(IPPROTO_TCP), 1234, 80, XLB_TCP_FIN | XLB_TCP_ACK, 0, 0, true, 0x2064, 20 } },
	{ "udp6 802.1ad", b_udp6_vlan_ad, { OK6(IPPROTO_UDP), 1000, 2000, 0, 0, 0, true, 0x0fff, 8 } },
	{ "tcp6 options", b_tcp6,
	  { OK6(IPPROTO_TCP), 50000, 8080, XLB_TCP_SYN | XLB_TCP_ECE | XLB_TCP_CWR, 0, 0, false, 0, 40 } },
	{ "udp6", b_udp6, { OK6(IPPROTO_UDP), 5000, 53, 0, 0, 0, false, 0, 8 } },
	{ "icmp6 echo request", b_icmp6_echo, { OK6(IPPROTO_ICMPV6), 0x0101, 128, 0, 128, 0, false, 0, 8 } },
	{ "icmp6 echo reply", b_icmp6_reply, { OK6(IPPROTO_ICMPV6), 0x0102, 129, 0, 129, 0, false, 0, 8 } },
	{ "tcp6 behind hop/dst/rt/frag/dst", b_tcp6_ext,
	  { OK6(IPPROTO_TCP), 7, 9, XLB_TCP_RST, 0, 0, false, 0, 20 } },
	{ "udp6 atomic fragment", b_udp6_atomic_frag, { OK6(IPPROTO_UDP), 11, 12, 0, 0, 0, false, 0, 8 } },
	{ "ipv4 DF only", b_v4_df_only, { OK4(IPPROTO_UDP), 3, 4, 0, 0, 0, false, 0, 8 } },

	{ "arp", b_arp, { XLB_PARSE_NOT_IP, 0, 0, 0, 0, 0, 0, 0, false, 0, 0 } },
	{ "double tag", b_qinq, { XLB_PARSE_NOT_IP, 0, 0, 0, 0, 0, 0, 0, true, 10, 0 } },
	{ "ihl 4", b_ihl4, { XLB_PARSE_BAD_HEADER, 0, 0, 0, 0, 0, 0, 0, false, 0, 0 } },
	{ "version 6 under ethertype ipv4", b_ver6_in_v4, { XLB_PARSE_BAD_HEADER, 0, 0, 0, 0, 0, 0, 0, false, 0, 0 } },
	{ "version 4 under ethertype ipv6", b_ver4_in_v6, { XLB_PARSE_BAD_HEADER, 0, 0, 0, 0, 0, 0, 0, false, 0, 0 } },
	{ "total length past frame", b_totlen_big, { XLB_PARSE_TRUNCATED, 0, 0, 0, 0, 0, 0, 0, false, 0, 0 } },
	{ "total length below ihl", b_totlen_lt_ihl, { XLB_PARSE_BAD_HEADER, 0, 0, 0, 0, 0, 0, 0, false, 0, 0 } },
	{ "payload length past frame", b_plen_big, { XLB_PARSE_TRUNCATED, 0, 0, 0, 0, 0, 0, 0, false, 0, 0 } },
	{ "tcp header past datagram", b_tcp_cut_by_totlen,
	  { XLB_PARSE_BAD_HEADER, AF_INET, IPPROTO_TCP, 0, 0, 0, 0, 0, false, 0, 0 } },
	{ "tcp data offset 4", b_tcp_doff4, { XLB_PARSE_BAD_HEADER, AF_INET, IPPROTO_TCP, 0, 0, 0, 0, 0, false, 0, 0 } },
	{ "tcp data offset past datagram", b_tcp_doff_past,
	  { XLB_PARSE_BAD_HEADER, AF_INET, IPPROTO_TCP, 0, 0, 0, 0, 0, false, 0, 0 } },
	{ "udp length 7", b_udp_len7, { XLB_PARSE_BAD_HEADER, AF_INET, IPPROTO_UDP, 0, 0, 0, 0, 0, false, 0, 0 } },
	{ "udp length into padding", b_udp_len_past,
	  { XLB_PARSE_BAD_HEADER, AF_INET, IPPROTO_UDP, 0, 0, 0, 0, 0, false, 0, 0 } },
	{ "icmp4 4 bytes", b_icmp_short, { XLB_PARSE_BAD_HEADER, AF_INET, IPPROTO_ICMP, 0, 0, 0, 0, 0, false, 0, 0 } },
	{ "ipv4 MF", b_v4_mf, { XLB_PARSE_FRAGMENT, AF_INET, IPPROTO_UDP, 0, 0, 0, 0, 0, false, 0, 0 } },
	{ "ipv4 offset", b_v4_offset, { XLB_PARSE_FRAGMENT, AF_INET, IPPROTO_UDP, 0, 0, 0, 0, 0, false, 0, 0 } },
	{ "ipv6 first fragment", b_v6_frag_first, { XLB_PARSE_FRAGMENT, AF_INET6, IPPROTO_UDP, 0, 0, 0, 0, 0, false, 0, 0 } },
	{ "ipv6 last fragment", b_v6_frag_later, { XLB_PARSE_FRAGMENT, AF_INET6, IPPROTO_TCP, 0, 0, 0, 0, 0, false, 0, 0 } },
	{ "gre4", b_gre4, { XLB_PARSE_UNSUPPORTED, AF_INET, 47, 0, 0, 0, 0, 0, false, 0, 0 } },
	{ "sctp6 behind dstopts", b_sctp6, { XLB_PARSE_UNSUPPORTED, AF_INET6, 132, 0, 0, 0, 0, 0, false, 0, 0 } },
	{ "icmpv6 in ipv4", b_icmpv6_in_v4, { XLB_PARSE_UNSUPPORTED, AF_INET, IPPROTO_ICMPV6, 0, 0, 0, 0, 0, false, 0, 0 } },
	{ "ipv6 no next header", b_v6_no_next, { XLB_PARSE_UNSUPPORTED, AF_INET6, 59, 0, 0, 0, 0, 0, false, 0, 0 } },
	{ "ipv6 routing with segments left", b_v6_routing_segs,
	  { XLB_PARSE_UNSUPPORTED, AF_INET6, IPPROTO_ROUTING, 0, 0, 0, 0, 0, false, 0, 0 } },
	{ "ipv6 nine extension headers", b_v6_long_chain,
	  { XLB_PARSE_UNSUPPORTED, AF_INET6, IPPROTO_DSTOPTS, 0, 0, 0, 0, 0, false, 0, 0 } },
	{ "ipv6 hop-by-hop not first", b_v6_hop_not_first,
	  { XLB_PARSE_BAD_HEADER, AF_INET6, IPPROTO_HOPOPTS, 0, 0, 0, 0, 0, false, 0, 0 } },
	{ "ipv6 ext header past datagram", b_v6_ext_past,
	  { XLB_PARSE_BAD_HEADER, AF_INET6, IPPROTO_DSTOPTS, 0, 0, 0, 0, 0, false, 0, 0 } },
	{ "ipv6 empty datagram", b_v6_empty, { XLB_PARSE_BAD_HEADER, AF_INET6, IPPROTO_TCP, 0, 0, 0, 0, 0, false, 0, 0 } },
};

#define NCASES (sizeof(cases) / sizeof(cases[0]))

/* Parse from a heap copy of exactly len bytes, so ASan flags overreads. */
static enum xlb_parse_result parse_exact(struct xlb_pkt *p, const uint8_t *src, unsigned int len,
					 uint8_t **copy)
{
	*copy = malloc(len ? len : 1);
	CU_ASSERT_FATAL(*copy != NULL);
	memcpy(*copy, src, len);
	return xlb_pkt_parse(p, *copy, len);
}

static void check_addrs(const struct xlb_pkt *p, int family)
{
	union xlb_addr s, d;

	if (family == AF_INET) {
		xlb_addr_from_v4(&s, htonl(V4_SRC));
		xlb_addr_from_v4(&d, htonl(V4_DST));
	} else {
		memcpy(s.b, v6_src, 16);
		memcpy(d.b, v6_dst, 16);
	}
	CU_ASSERT(xlb_addr_eq(&p->tuple.src, &s));
	CU_ASSERT(xlb_addr_eq(&p->tuple.dst, &d));
}

static void test_table(void)
{
	unsigned int i;

	for (i = 0; i < NCASES; i++) {
		const struct pcase *c = &cases[i];
		const struct expect *e = &c->e;
		struct frame f;
		struct xlb_pkt p;
		enum xlb_parse_result r;
		uint8_t *buf;

		c->build(&f);
		r = parse_exact(&p, f.b, f.len, &buf);
		if (r != e->res)
			fprintf(stderr, "\n  %s: got %s, want %s\n", c->name,
				xlb_parse_result_str(r), xlb_parse_result_str(e->res));
		CU_ASSERT_EQUAL(r, e->res);
		CU_ASSERT_EQUAL(p.has_vlan, e->has_vlan);
		if (e->has_vlan)
			CU_ASSERT_EQUAL(p.vlan_tci, e->vlan_tci);
		if (e->family) {
			/* Filled for OK, and for FRAGMENT/UNSUPPORTED/BAD L4
			 * too: counters and logs can name the flow. */
			CU_ASSERT_EQUAL(p.tuple.family, e->family);
			CU_ASSERT_EQUAL(p.tuple.proto, e->proto);
			CU_ASSERT_EQUAL(p.tuple.zone, 0);
			check_addrs(&p, e->family);
			CU_ASSERT_EQUAL(p.l3_off, f.l3);
		}
		if (r == XLB_PARSE_OK && e->res == XLB_PARSE_OK) {
			CU_ASSERT_EQUAL(ntohs(p.tuple.sport), e->sport);
			CU_ASSERT_EQUAL(ntohs(p.tuple.dport), e->dport);
			CU_ASSERT_EQUAL(p.l4_off, f.l4);
			CU_ASSERT_EQUAL(p.l3_len, f.ip_end - f.l3);
			CU_ASSERT_EQUAL(p.l4_len, f.ip_end - f.l4);
			CU_ASSERT_EQUAL(p.payload_off, f.l4 + e->l4_hlen);
			CU_ASSERT_EQUAL(p.len, f.len);
			CU_ASSERT(p.data == buf);
			if (e->proto == IPPROTO_TCP)
				CU_ASSERT_EQUAL(p.tcp_flags, e->tcp_flags);
			if (e->proto == IPPROTO_ICMP || e->proto == IPPROTO_ICMPV6) {
				CU_ASSERT_EQUAL(p.icmp_type, e->icmp_type);
				CU_ASSERT_EQUAL(p.icmp_code, e->icmp_code);
			}
		}
		free(buf);
	}
}

/* Cutting a valid frame anywhere before the end of its IP datagram gives
 * TRUNCATED, never a read past the cut. Cuts inside Ethernet padding are
 * still whole datagrams. */
static void test_truncation(void)
{
	unsigned int i, cut;

	for (i = 0; i < NCASES; i++) {
		const struct pcase *c = &cases[i];
		struct frame f;
		struct xlb_pkt p;
		enum xlb_parse_result r;
		uint8_t *buf;

		if (c->e.res != XLB_PARSE_OK)
			continue;
		c->build(&f);
		for (cut = 0; cut < f.len; cut++) {
			r = parse_exact(&p, f.b, cut, &buf);
			if (cut < f.ip_end) {
				if (r != XLB_PARSE_TRUNCATED)
					fprintf(stderr, "\n  %s cut at %u: %s\n", c->name, cut,
						xlb_parse_result_str(r));
				CU_ASSERT_EQUAL(r, XLB_PARSE_TRUNCATED);
			} else {
				CU_ASSERT_EQUAL(r, XLB_PARSE_OK);
				CU_ASSERT_EQUAL(p.l3_len, f.ip_end - f.l3);
			}
			free(buf);
		}
	}
}

/* Ethernet pads short frames to 60 bytes; the padding is no part of the
 * datagram, so lengths come from the IP header. */
static void test_padding(void)
{
	struct frame f, g;
	struct xlb_pkt p, q;
	uint8_t *buf, *buf2;

	b_udp4(&f);
	b_udp4_padded(&g);
	CU_ASSERT(g.len > f.len);
	CU_ASSERT_EQUAL_FATAL(parse_exact(&p, f.b, f.len, &buf), XLB_PARSE_OK);
	CU_ASSERT_EQUAL_FATAL(parse_exact(&q, g.b, g.len, &buf2), XLB_PARSE_OK);
	CU_ASSERT_EQUAL(q.l3_len, p.l3_len);
	CU_ASSERT_EQUAL(q.l4_len, p.l4_len);
	CU_ASSERT_EQUAL(q.l3_len, 20 + 8 + 5);
	CU_ASSERT(xlb_tuple_eq(&p.tuple, &q.tuple));
	free(buf);
	free(buf2);

	/* The same for IPv6 with a padded tail after a short TCP segment. */
	b_tcp6(&f);
	g = f;
	pad(&g, f.len + 7);
	CU_ASSERT_EQUAL_FATAL(parse_exact(&q, g.b, g.len, &buf), XLB_PARSE_OK);
	CU_ASSERT_EQUAL(q.l3_len, f.ip_end - f.l3);
	CU_ASSERT_EQUAL(q.l4_len, f.ip_end - f.l4);
	free(buf);
}

/* Random byte flips in valid frames: whatever comes out, no read past the
 * frame (ASan), and an OK result describes a layout inside the frame. */
static void test_mutations(void)
{
	unsigned int i, n, k;
	uint32_t seed = 12345;

	for (i = 0; i < NCASES; i++) {
		struct frame f;

		cases[i].build(&f);
		for (n = 0; n < 2000; n++) {
			struct frame m = f;
			struct xlb_pkt p;
			enum xlb_parse_result r;
			uint8_t *buf;
			unsigned int flips;

			seed = seed * 1103515245u + 12345u;
			flips = 1 + (seed >> 16) % 4;
			for (k = 0; k < flips; k++) {
				seed = seed * 1103515245u + 12345u;
				/* Mostly in the headers, where the lengths are. */
				m.b[(seed >> 8) % (f.l4 + 24 < f.len ? f.l4 + 24 : f.len)] = (uint8_t)(seed >> 24);
			}
			seed = seed * 1103515245u + 12345u;
			r = parse_exact(&p, m.b, m.len - (seed >> 20) % 3 * ((seed >> 8) & 1), &buf);
			CU_ASSERT(r < XLB_PARSE_MAX);
			if (r == XLB_PARSE_OK) {
				CU_ASSERT(p.l3_off + (uint32_t)p.l3_len <= p.len);
				CU_ASSERT(p.l4_off + (uint32_t)p.l4_len == p.l3_off + (uint32_t)p.l3_len);
				CU_ASSERT(p.payload_off >= p.l4_off);
				CU_ASSERT(p.payload_off <= p.l3_off + p.l3_len);
			}
			free(buf);
		}
	}
}

static void test_result_str(void)
{
	int r, s;

	for (r = 0; r < XLB_PARSE_MAX; r++) {
		CU_ASSERT_PTR_NOT_NULL_FATAL(xlb_parse_result_str(r));
		for (s = 0; s < r; s++)
			CU_ASSERT(strcmp(xlb_parse_result_str(r), xlb_parse_result_str(s)) != 0);
	}
	CU_ASSERT_STRING_EQUAL(xlb_parse_result_str(XLB_PARSE_MAX), "unknown");
}

int main(void)
{
	static const struct unit_test tests[] = {
		{ "frame table", test_table },
		{ "every truncation", test_truncation },
		{ "ethernet padding", test_padding },
		{ "random mutations", test_mutations },
		{ "result names", test_result_str },
	};

	return UNIT_RUN("packet", NULL, NULL, tests);
}
