/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Address and port rewriting with incremental checksum updates
 * (RFC 1624): IPv4 header checksum, TCP/UDP checksums including the
 * pseudo-header, IPv6 pseudo-header. The family never changes.
 */
#ifndef XLB_NAT_H
#define XLB_NAT_H

#include <stdint.h>

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
 * (a UDP 0 stays 0); p->tuple follows.
 */
void xlb_nat_apply(struct xlb_pkt *p, const struct xlb_tuple *other,
		   const struct xlb_nat_delta *d);

/* One's-complement sum (RFC 1071) of len bytes as memory-order 16-bit
 * words, an odd last byte padded with zero, added to `sum` and folded to
 * 16 bits; byte order does not matter. */
uint32_t xlb_csum_add(uint32_t sum, const uint8_t *b, uint32_t len);

/* The pseudo-header's sum for an L4 datagram of len bytes under the IP
 * header at ip (addresses, protocol, length), folded to 16 bits. */
uint32_t xlb_csum_pseudo(uint8_t family, const uint8_t *ip, uint8_t proto, uint32_t len);

/* Full checksum recomputation, for tests and for the rare packets whose
 * checksum must be rebuilt from scratch. Return the value to store. */
uint16_t xlb_csum_ipv4_header(const uint8_t *ip, unsigned int ihl_bytes);
uint16_t xlb_csum_l4(const struct xlb_pkt *p);

/* RFC 1624 eqn. 3 building blocks: fold `old` out of and `new` into csum.
 * csum is the value stored in the header (network order). */
uint16_t xlb_csum_replace16(uint16_t csum, uint16_t old, uint16_t new_);
uint16_t xlb_csum_replace32(uint16_t csum, uint32_t old, uint32_t new_);
uint16_t xlb_csum_replace128(uint16_t csum, const uint32_t old[4], const uint32_t new_[4]);

#endif
