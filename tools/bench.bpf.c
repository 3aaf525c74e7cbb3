/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * XDP programs of the lab benchmark (tools/bench), never part of xlbd:
 *
 *  - bench_reflect, on a backend's veth: turns every benchmark TCP segment
 *    into the answer a server would send and transmits it back where it
 *    came from (swapped MACs, addresses and ports; XDP_TX). A SYN becomes a
 *    SYN-ACK; a data segment becomes a data segment of the server, so the
 *    load balancer in between sees a valid TCP conversation in both
 *    directions (its window tracking included, see seq_for_reply()).
 *  - bench_sink, on the client's veth: counts what comes back (data by the
 *    magic in its payload, SYN-ACKs by their flags), records the latency
 *    from the timestamp the generator wrote into the payload, and drops it.
 *  - bench_pass, on the switch ports that receive XDP_TX frames: veth only
 *    delivers XDP_TX/redirected frames to a peer that runs XDP itself.
 *
 * Anything else (ARP, neighbour discovery, the lab's own traffic) is passed.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "bench.h"

char LICENSE[] SEC("license") = "GPL";

/* Port the generator sends to: the VIP's (80) or, without a load
 * balancer, the backend's own (8080). The reflector answers both. */
const volatile __u16 svc_port_a = 80;
const volatile __u16 svc_port_b = 8080;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XLB_BENCH_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XLB_BENCH_HIST_BUCKETS);
	__type(key, __u32);
	__type(value, __u64);
} latency SEC(".maps");

struct pkt {
	struct ethhdr *eth;
	struct iphdr *ip4;
	struct ipv6hdr *ip6;
	int v6;			/* which of ip4/ip6: the verifier cannot
				 * follow a NULL test on packet pointers */
	struct tcphdr *tcp;
	void *payload;
	__u32 payload_len;
};

static __always_inline int parse(struct xdp_md *ctx, struct pkt *p)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	void *l4;
	__u32 l3_len, l4_hlen;

	p->eth = data;
	if ((void *)(p->eth + 1) > end)
		return -1;
	if (p->eth->h_proto == bpf_htons(ETH_P_IP)) {
		p->ip4 = (void *)(p->eth + 1);
		p->v6 = 0;
		if ((void *)(p->ip4 + 1) > end || p->ip4->ihl != 5 ||
		    p->ip4->protocol != IPPROTO_TCP)
			return -1;
		l4 = p->ip4 + 1;
		l3_len = bpf_ntohs(p->ip4->tot_len);
		if (l3_len < sizeof(struct iphdr))
			return -1;
		l3_len -= sizeof(struct iphdr);
	} else if (p->eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		p->ip6 = (void *)(p->eth + 1);
		p->v6 = 1;
		if ((void *)(p->ip6 + 1) > end || p->ip6->nexthdr != IPPROTO_TCP)
			return -1;
		l4 = p->ip6 + 1;
		l3_len = bpf_ntohs(p->ip6->payload_len);
	} else {
		return -1;
	}
	p->tcp = l4;
	if ((void *)(p->tcp + 1) > end)
		return -1;
	l4_hlen = p->tcp->doff * 4;
	if (l4_hlen < sizeof(struct tcphdr) || l4_hlen > l3_len)
		return -1;
	p->payload = l4 + l4_hlen;
	p->payload_len = l3_len - l4_hlen;
	return 0;
}

static __always_inline void count(__u32 what)
{
	__u64 *n = bpf_map_lookup_elem(&counters, &what);

	if (n)
		*n += 1;
}

/* One's-complement update of a 16-bit checksum for a 32-bit field that
 * changed from `from` to `to` (RFC 1624). */
static __always_inline void csum_replace4(__sum16 *sum, __be32 from, __be32 to)
{
	__u32 s = (__u16)~*sum;

	s += (__u16)~(from & 0xffff);
	s += (__u16)~(from >> 16);
	s += to & 0xffff;
	s += to >> 16;
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	*sum = (__sum16)~s;
}

/*
 * The server's answer to a client segment that starts at `seq` and
 * acknowledges `ack`: the server's data starts where the client's
 * acknowledgement points, and acknowledges everything the client sent.
 * The generator keeps its ack at the server's first byte (it never claims
 * to have received more than the server sent), so every segment of both
 * directions stays inside the windows a conntrack tracker computes.
 */
SEC("xdp")
int bench_reflect(struct xdp_md *ctx)
{
	__u8 mac[ETH_ALEN];
	struct pkt p;
	__be32 old_seq, old_ack, new_seq, new_ack, old_word, new_word;
	__be16 port, dport;
	__u16 *flags_word;

	if (parse(ctx, &p))
		return XDP_PASS;
	dport = bpf_ntohs(p.tcp->dest);
	if (dport != svc_port_a && dport != svc_port_b)
		return XDP_PASS;
	if (p.tcp->rst || p.tcp->fin)
		return XDP_DROP;	/* never answered: the generator sends none */

	old_seq = p.tcp->seq;
	old_ack = p.tcp->ack_seq;
	flags_word = (__u16 *)((__u8 *)p.tcp + 12);
	old_word = *flags_word;
	if (p.tcp->syn) {
		/* The generator put the server's initial sequence number in
		 * the SYN's (unused) acknowledgement field. */
		new_seq = old_ack;
		new_ack = bpf_htonl(bpf_ntohl(old_seq) + 1);
		p.tcp->ack = 1;
		count(XLB_BENCH_REFLECT_SYN);
	} else {
		new_seq = old_ack;
		new_ack = bpf_htonl(bpf_ntohl(old_seq) + p.payload_len);
		count(XLB_BENCH_REFLECT_DATA);
	}
	p.tcp->psh = 0;
	new_word = *flags_word;
	p.tcp->seq = new_seq;
	p.tcp->ack_seq = new_ack;
	csum_replace4(&p.tcp->check, old_seq, new_seq);
	csum_replace4(&p.tcp->check, old_ack, new_ack);
	csum_replace4(&p.tcp->check, old_word, new_word);

	/* Swapping source and destination leaves every checksum as it was. */
	port = p.tcp->source;
	p.tcp->source = p.tcp->dest;
	p.tcp->dest = port;
	if (!p.v6) {
		__be32 a = p.ip4->saddr;

		p.ip4->saddr = p.ip4->daddr;
		p.ip4->daddr = a;
	} else {
		struct in6_addr a = p.ip6->saddr;

		p.ip6->saddr = p.ip6->daddr;
		p.ip6->daddr = a;
	}
	__builtin_memcpy(mac, p.eth->h_source, ETH_ALEN);
	__builtin_memcpy(p.eth->h_source, p.eth->h_dest, ETH_ALEN);
	__builtin_memcpy(p.eth->h_dest, mac, ETH_ALEN);
	return XDP_TX;
}

/* Histogram bucket of a latency in ns: 16 linear buckets below 1024 ns,
 * then 16 per power of two (6% resolution), the last one open-ended. */
static __always_inline __u32 bucket_of(__u64 ns)
{
	__u32 e = 0;
	__u64 v = ns;

	if (ns < 1024)
		return ns >> 6;
	/* floor(log2(ns)) by bisection: BPF has no count-leading-zeros. */
	if (v >> 32) { v >>= 32; e += 32; }
	if (v >> 16) { v >>= 16; e += 16; }
	if (v >> 8) { v >>= 8; e += 8; }
	if (v >> 4) { v >>= 4; e += 4; }
	if (v >> 2) { v >>= 2; e += 2; }
	if (v >> 1) { e += 1; }
	if (e > XLB_BENCH_HIST_MAX_EXP)
		return XLB_BENCH_HIST_BUCKETS - 1;
	return 16 + (e - 10) * 16 + ((ns >> (e - 4)) & 15);
}

SEC("xdp")
int bench_sink(struct xdp_md *ctx)
{
	void *end = (void *)(long)ctx->data_end;
	struct xlb_bench_payload *pl;
	struct pkt p;
	__u64 now, ts, *n;
	__u32 b;

	if (parse(ctx, &p))
		return XDP_PASS;
	if (p.tcp->syn && p.tcp->ack) {
		count(XLB_BENCH_SINK_SYNACK);
		return XDP_DROP;
	}
	pl = p.payload;
	if ((void *)(pl + 1) > end || p.payload_len < sizeof(*pl) ||
	    pl->magic != bpf_htonl(XLB_BENCH_MAGIC))
		return XDP_PASS;
	count(XLB_BENCH_SINK_DATA);
	now = bpf_ktime_get_ns();
	ts = pl->tx_ns;
	b = bucket_of(now > ts ? now - ts : 0);
	n = bpf_map_lookup_elem(&latency, &b);
	if (n)
		*n += 1;
	return XDP_DROP;
}

SEC("xdp")
int bench_pass(struct xdp_md *ctx)
{
	(void)ctx;
	return XDP_PASS;
}
