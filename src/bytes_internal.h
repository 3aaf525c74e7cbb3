/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unaligned reads and writes of packet fields, in the packet's byte order
 * (callers convert with ntohs/htons where they need host order). memcpy
 * compiles to a single load or store on the targets we run on, and is
 * what keeps the compiler from assuming alignment a frame does not have.
 * Shared by packet.c, nat.c and icmp.c.
 */
#ifndef XLB_BYTES_INTERNAL_H
#define XLB_BYTES_INTERNAL_H

#include <stdint.h>
#include <string.h>

static inline uint16_t rd16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static inline uint32_t rd32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static inline void wr16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, sizeof(v));
}

static inline void wr32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));
}

#endif
