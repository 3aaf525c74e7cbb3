/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Address and port rewriting with incremental checksum updates
 * (RFC 1624): IPv4 header checksum, TCP/UDP checksums including the
 * pseudo-header, IPv6 pseudo-header. The family never changes.
 */
#ifndef XLB_NAT_H
#define XLB_NAT_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <arpa/inet.h>

#include "packet.h"

/* Rewrite the destination (DNAT, original direction) or the source (the
 * reverse, on replies). Port in network byte order; for ICMP echo the port
 * is ignored. Updates p->tuple to match the new header. */
void xlb_nat_set_dst(struct xlb_pkt *p, const union xlb_addr *addr, uint16_t port);
void xlb_nat_set_src(struct xlb_pkt *p, const union xlb_addr *addr, uint16_t port);

/* Flags for xlb_nat_rewrite(). */
#define XLB_NAT_DST    0x1u   /* the destination end; without it the source */
#define XLB_NAT_QUOTED 0x2u   /* the datagram is quoted in an ICMP error */

/*
 * Set one end (address, and for TCP and UDP the port, network order) of
 * the IP datagram whose header is at ip (family AF_INET or AF_INET6) and
 * whose L4 header (protocol proto) is at l4, l4_len bytes of it in the
 * buffer. Checksums follow incrementally (RFC 1624): the IPv4 header's,
 * TCP's and UDP's over pseudo-header and port (a UDP 0, "none", stays 0),
 * ICMPv6's over the pseudo-header; ICMPv4 and other protocols change in
 * the IP header only. The IP header must be whole and, for TCP, UDP and
 * ICMPv6, at least 8 bytes of L4 present (RFC 792's quote).
 *
 * XLB_NAT_QUOTED: the datagram sits inside an ICMP error, as sent, and may
 * be cut short; the L4 checksum is only updated when the quote holds it
 * (for TCP, the whole 20-byte header), as the kernel's NAT does on an
 * error's quote. Without it the L4 header must be whole (as
 * xlb_pkt_parse() guarantees). Nothing but these bytes is touched: the
 * caller keeps any tuple and the enclosing ICMP checksum.
 */
void xlb_nat_rewrite(uint8_t *ip, uint8_t *l4, uint32_t l4_len, uint8_t family, uint8_t proto,
		     unsigned int flags, const union xlb_addr *addr, uint16_t port);

/*
 * A connection's rewrite, precomputed: the checksum changes of turning a
 * packet with tuple `from` into one with tuple `to` (both addresses and
 * both ports; family and protocol the same, TCP or UDP). They depend on
 * the tuples only, so a flow computes them once and each packet applies
 * them, instead of summing the same address and port words again.
 */
struct xlb_nat_delta {
	uint16_t ip;   /* IPv4 header checksum (addresses) */
	uint16_t l4;   /* TCP/UDP checksum (pseudo-header addresses, ports) */
};

void xlb_nat_delta(struct xlb_nat_delta *d, const struct xlb_tuple *from,
		   const struct xlb_tuple *to);

/*
 * Rewrite p, a TCP or UDP packet whose tuple is `from` of d, into the
 * inverse of `other` (source := other's destination, and so on: on a flow,
 * `other` is the other direction's tuple) with d from xlb_nat_delta(from,
 * inverse of other). Same bytes as xlb_nat_set_dst() + xlb_nat_set_src()
 * (a UDP 0 stays 0); p->tuple follows. A partial checksum (see
 * xlb_csum_is_partial()) is completed: then it returns true. Asked here,
 * on the packet as it came, with the checksum already loaded, because the
 * question is on every packet's path.
 */
bool xlb_nat_apply(struct xlb_pkt *p, const struct xlb_tuple *other,
		   const struct xlb_nat_delta *d);

/* One's-complement sum (RFC 1071) of len bytes as memory-order 16-bit
 * words, an odd last byte padded with zero, added to `sum` and folded to
 * 16 bits; byte order does not matter. */
uint32_t xlb_csum_add(uint32_t sum, const uint8_t *b, uint32_t len);

/* The pseudo-header's sum for an L4 datagram of len bytes under the IP
 * header at ip (addresses, protocol, length), folded to 16 bits. */
uint32_t xlb_csum_pseudo(uint8_t family, const uint8_t *ip, uint8_t proto, uint32_t len);

/*
 * Partial checksums. A sender that offloads its transmit checksum (every
 * veth, so every container and pod; a VM's virtio-net) leaves in the TCP or
 * UDP checksum field only the pseudo-header's sum, not complemented: the
 * kernel's CHECKSUM_PARTIAL, which the NIC or skb_checksum_help() would
 * finish. XDP and AF_XDP hand us those bytes without the skb's ip_summed,
 * so the field itself is the only evidence: it is partial when it equals
 * the folded pseudo-header sum (0 and 0xffff being the same one's-complement
 * zero).
 *
 * A complete checksum is equal by chance for about 1 datagram in 65,536 of
 * a flow's. Treating it as partial is harmless: completing a checksum that
 * was in fact complete, correct or wrong, gives back the same value (the
 * field holds ~sum(pseudo, data) = sum(pseudo), so sum(data, field) folds
 * to it again). The only cost is the sum over the datagram.
 *
 * A UDP checksum of 0 ("none") is never partial. The packet must be one
 * that xlb_pkt_parse() accepted, TCP or UDP.
 */
static inline bool xlb_csum_is_partial(const struct xlb_pkt *p);

/* Store the full TCP or UDP checksum of p, as skb_checksum_help() would:
 * for a partial one, after the NAT rewrite made the field meaningless. */
void xlb_csum_complete(struct xlb_pkt *p);

/* Full checksum recomputation, for tests and for the rare packets whose
 * checksum must be rebuilt from scratch. Return the value to store. */
uint16_t xlb_csum_ipv4_header(const uint8_t *ip, unsigned int ihl_bytes);
uint16_t xlb_csum_l4(const struct xlb_pkt *p);

/* RFC 1624 eqn. 3 building blocks: fold `old` out of and `new` into csum.
 * csum is the value stored in the header (network order). */
uint16_t xlb_csum_replace16(uint16_t csum, uint16_t old, uint16_t new_);
uint16_t xlb_csum_replace32(uint16_t csum, uint32_t old, uint32_t new_);
uint16_t xlb_csum_replace128(uint16_t csum, const uint32_t old[4], const uint32_t new_[4]);

/* Fold a sum of 16- and 32-bit words to 16 bits with end-around carries:
 * the one's-complement sum, in [1, 0xffff] unless every word was 0. */
static inline uint16_t xlb_csum_fold64(uint64_t s)
{
	s = (s & 0xffffffffu) + (s >> 32);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

/*
 * Inlined, and cheaper than xlb_csum_pseudo() + a comparison: every TCP and
 * UDP packet asks, and for the complete checksums of a physical NIC the
 * question must cost a dozen instructions. The pseudo-header is summed as
 * 32-bit words read in memory order, and compared with the stored value
 * modulo 0xffff instead of folded: a 32-bit word hi:lo is hi + lo there, so
 * "stored == the folded sum, or both a zero" is "sum - stored = 0 mod 0xffff".
 * Protocol and length go in as one word: IPv6's 32-bit length plus its
 * zeros+next-header word, whose sum IPv4's fields have too; and the sum of
 * two such big-endian words is the big-endian word of the sum.
 */
static inline bool xlb_csum_partial_(const uint8_t *ip, const uint8_t *l4, uint8_t family,
				     uint8_t proto, uint32_t len, uint16_t stored)
{
	uint32_t w;
	uint64_t s;

	if (proto == IPPROTO_UDP) {
		uint16_t ulen;

		if (stored == 0)
			return false;
		/* The sender summed the UDP length, not trailing bytes. */
		memcpy(&ulen, l4 + 4, 2);
		len = ntohs(ulen);
	}
	s = htonl(len + proto) + (uint64_t)(uint16_t)~stored;
	if (family == AF_INET) {
		memcpy(&w, ip + 12, 4);
		s += w;
		memcpy(&w, ip + 16, 4);
		s += w;
	} else {
		for (int i = 0; i < 8; i++) {
			memcpy(&w, ip + 8 + 4 * i, 4);
			s += w;
		}
	}
	return s % 0xffff == 0;
}

static inline bool xlb_csum_is_partial(const struct xlb_pkt *p)
{
	const uint8_t *l4 = p->data + p->l4_off;
	uint16_t stored;

	memcpy(&stored, l4 + (p->tuple.proto == IPPROTO_TCP ? 16 : 6), 2);
	return xlb_csum_partial_(p->data + p->l3_off, l4, p->tuple.family, p->tuple.proto,
				 p->l4_len, stored);
}

#endif
