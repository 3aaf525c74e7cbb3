/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The splitmix64 finalizer, for Maglev's permutations and, with a secret
 * seed mixed in, the route mirror's buckets and rate slots: a bijection in
 * which every input bit flips about half the output bits, the low ones
 * included. The connection tuples, which any sender picks by the million,
 * get keyed SipHash instead (flow.c).
 */
#ifndef XLB_MIX_H
#define XLB_MIX_H

#include <stdint.h>

static inline uint64_t xlb_mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

#endif
