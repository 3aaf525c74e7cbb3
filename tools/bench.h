/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What tools/bench.bpf.c shares with the generator (tools/bench-gen.c).
 * Only <linux/types.h>: this header is compiled for -target bpf too.
 */
#ifndef XLB_BENCH_H
#define XLB_BENCH_H

#include <linux/types.h>

#define XLB_BENCH_MAGIC 0x786c6221u	/* "xlb!" */

/* First bytes of every data segment's payload (network order magic, the
 * generator's CLOCK_MONOTONIC send time in host order: both ends are on
 * the same machine). The rest of the payload is zeros. */
struct xlb_bench_payload {
	__be32 magic;
	__u32 pad;
	__u64 tx_ns;
};

/* Per-CPU counters of the `counters` map. */
enum xlb_bench_counter {
	XLB_BENCH_SINK_DATA,	/* data segments back at the client */
	XLB_BENCH_SINK_SYNACK,	/* SYN-ACKs back at the client */
	XLB_BENCH_REFLECT_DATA,
	XLB_BENCH_REFLECT_SYN,
	XLB_BENCH_CNT_MAX,
};

/* Latency histogram: buckets 0-15 are 64 ns wide (0-1023 ns); then 16
 * buckets per power of two from 2^10 to 2^33 ns; the last is open. */
#define XLB_BENCH_HIST_MAX_EXP 33
#define XLB_BENCH_HIST_BUCKETS (16 + (XLB_BENCH_HIST_MAX_EXP - 10 + 1) * 16)

#endif
