/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Connection tuples, family-agnostic.
 *
 * IPv4 addresses are stored as IPv4-mapped IPv6 (::ffff:a.b.c.d), so one
 * table and one compare serve both families; `family` is kept for printing
 * and for the packet rewriter, which must know which header it touches.
 *
 * Shared by src/, tools/ and tests/. Not used by bpf/ (see bpf_shared.h).
 */
#ifndef XLB_TUPLE_H
#define XLB_TUPLE_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>

union xlb_addr {
	uint8_t b[16];
	uint16_t h[8];
	uint32_t w[4];
	uint64_t q[2];
};

/* Ports in network byte order, as they sit in the packet. For ICMP echo,
 * sport carries the identifier and dport the type (as nf_conntrack_icmp). */
struct xlb_tuple {
	union xlb_addr src;
	union xlb_addr dst;
	uint16_t sport;
	uint16_t dport;
	uint8_t proto;   /* IPPROTO_* */
	uint8_t family;  /* AF_INET or AF_INET6 */
	uint16_t zone;   /* conntrack zone: same tuple, other zone = other flow */
};

_Static_assert(sizeof(struct xlb_tuple) == 40, "tuple layout is hashed as bytes");

/* A socket-style endpoint used by config and tools: address + port. */
struct xlb_endpoint {
	union xlb_addr addr;
	uint16_t port;   /* network byte order */
	uint8_t family;
};

static inline void xlb_addr_from_v4(union xlb_addr *a, uint32_t v4_be)
{
	a->q[0] = 0;
	a->w[2] = htonl(0xffff);
	a->w[3] = v4_be;
}

static inline uint32_t xlb_addr_v4(const union xlb_addr *a)
{
	return a->w[3];
}

static inline bool xlb_addr_eq(const union xlb_addr *a, const union xlb_addr *b)
{
	return a->q[0] == b->q[0] && a->q[1] == b->q[1];
}

static inline bool xlb_addr_is_v4mapped(const union xlb_addr *a)
{
	return a->q[0] == 0 && a->w[2] == htonl(0xffff);
}

static inline bool xlb_tuple_eq(const struct xlb_tuple *a, const struct xlb_tuple *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

/* The tuple seen from the other side: addresses and ports swapped. */
static inline void xlb_tuple_invert(struct xlb_tuple *out, const struct xlb_tuple *in)
{
	out->src = in->dst;
	out->dst = in->src;
	out->sport = in->dport;
	out->dport = in->sport;
	out->proto = in->proto;
	out->family = in->family;
	out->zone = in->zone;
}

/*
 * Text forms. xlb_addr_ntop writes "198.18.0.1" or "2001:2::1" (no
 * brackets); xlb_addr_pton accepts either family and sets *family.
 * Return 0 or -EINVAL.
 */
int xlb_addr_pton(const char *s, union xlb_addr *a, uint8_t *family);
const char *xlb_addr_ntop(const union xlb_addr *a, uint8_t family, char *buf, size_t len);

#define XLB_ADDRSTRLEN 46

/* "198.18.2.2:8080" or "[2001:2::2]:8080" (port in host order), as the
 * config and xlbctl write endpoints; "?" for an unknown family. Returns buf. */
const char *xlb_endpoint_ntop(const struct xlb_endpoint *ep, char *buf, size_t len);

#define XLB_ENDPOINTSTRLEN (XLB_ADDRSTRLEN + 8)

/* Flags for xlb_endpoint_pton(): what a caller accepts beyond ADDR:PORT. */
#define XLB_EP_PORT_OPTIONAL 0x1u   /* "ADDR" or "[IPV6]" alone, port 0 */
#define XLB_EP_BARE_IPV6     0x2u   /* "2001:2::2" unbracketed: no port, so with the above */

/* Room for any reason xlb_endpoint_pton() gives. */
#define XLB_EP_WHYLEN 64

/*
 * The one parser of endpoints as users type them: "198.18.2.2:8080" or
 * "[2001:2::2]:8080", the port decimal digits 1-65535. IPv6 needs the
 * brackets (so "ADDR:PORT" is never ambiguous), IPv4 may not have them.
 * flags (XLB_EP_*) widen that; a ':' with nothing after it is always an
 * error. On success *ep holds the address, family and port (network order;
 * 0 when none was given).
 *
 * Returns 0; -EINVAL for bad syntax or a bad address, -ERANGE for a port
 * out of 1-65535. On error, when why is not NULL, writes a short reason
 * that quotes at most the port (e.g. `bad port "0"', "IPv6 addresses need
 * brackets: [ADDR]:PORT") for the caller to word into its own message
 * beside the input; *ep is then unspecified. Address policy (unicast,
 * multicast) is the caller's.
 */
int xlb_endpoint_pton(const char *s, unsigned int flags, struct xlb_endpoint *ep,
		      char *why, size_t whylen);

#endif
