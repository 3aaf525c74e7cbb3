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
