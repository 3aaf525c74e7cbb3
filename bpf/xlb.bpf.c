/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * xlb's XDP program: decide, per received frame, whether the load balancer
 * owns it. Frames it owns are redirected to the AF_XDP socket bound on the
 * receiving queue; everything else goes to the kernel unchanged. The program
 * never rewrites a packet: NAT and conntrack live in the workers.
 *
 * What the load balancer owns:
 *  - service traffic: destination (addr, port, proto) is a VIP (`vips`);
 *  - return traffic: source (addr, port, proto) is a backend (`backends`)
 *    and the destination is not one of the node's own addresses (`locals`);
 *  - ICMP errors about either kind of flow, so path MTU discovery and
 *    "port unreachable" reach the client or the backend through the NAT.
 *
 * Anything we cannot parse is passed, never dropped: the kernel is the
 * authority on malformed packets, and passing keeps ARP, NDP, LLDP, routing
 * protocols and the node's own traffic working while xlbd runs.
 *
 * Every decision is counted per CPU in `stats` with its reason
 * (enum xlb_xdp_stat); xlbd sums the CPUs.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/icmpv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "xlb/bpf_shared.h"

/* ICMPv4 types (RFC 792). Not from <linux/icmp.h>: it includes <linux/if.h>,
 * which includes glibc's <sys/socket.h>, and BPF objects are built without
 * the C library's headers (bpf/meson.build). */
#define ICMP_ECHO 8
#define ICMP_DEST_UNREACH 3
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAMETERPROB 12

/* IPv6 extension headers skipped before giving up on finding L4. Real
 * traffic carries at most one or two; the bound keeps the verifier happy. */
#define MAX_IPV6_EXT_HDRS 4

/* RFC 792 and RFC 4443 guarantee this much of the offending packet's L4
 * header inside an ICMP error: enough for the ports. */
#define ICMP_INNER_L4_LEN 8

/* IPv4 fragment bits of iphdr.frag_off (uapi only has them in the kernel's
 * private net/ip.h). */
#define IP4_MF 0x2000
#define IP4_OFFSET 0x1fff

char LICENSE[] SEC("license") = "GPL";

/* The AF_XDP socket of each queue, filled by xlbd's workers. */
struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, XLB_MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

/* Service (VIP) addresses, keyed by destination. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct xlb_svc_key);
	__type(value, struct xlb_svc_val);
} vips SEC(".maps");

/* Backend addresses, keyed by the source of their replies. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct xlb_svc_key);
	__type(value, struct xlb_svc_val);
} backends SEC(".maps");

/* The node's own addresses. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct xlb_local_key);
	__type(value, __u8);
} locals SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XLB_XDP_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/* 802.1Q / 802.1ad tag; the uapi headers do not export one. */
struct vlan_tag {
	__be16 tci;
	__be16 encap_proto;
};

/* The ports every L4 header we steer on starts with (TCP, UDP). */
struct l4_ports {
	__be16 source;
	__be16 dest;
};

/* Why a header could not be used for steering. */
enum parse_result {
	PARSE_OK,
	PARSE_MALFORMED,	/* shorter than its headers claim */
	PARSE_FRAGMENT,		/* L4 header absent or not in every fragment */
	PARSE_UNKNOWN,		/* a protocol we do not steer */
};

/* One direction of a packet, in the form the maps are keyed by. */
struct flow {
	struct xlb_svc_key src;
	struct xlb_svc_key dst;
	__u8 icmp_type;
};

static __always_inline void count(__u32 reason)
{
	__u64 *n = bpf_map_lookup_elem(&stats, &reason);

	if (n)
		*n += 1;
}

static __always_inline int pass(__u32 reason)
{
	count(reason);
	return XDP_PASS;
}

static __always_inline int pass_parse(enum parse_result res)
{
	switch (res) {
	case PARSE_MALFORMED:
		return pass(XLB_XDP_PASS_MALFORMED);
	case PARSE_FRAGMENT:
		return pass(XLB_XDP_PASS_FRAGMENT);
	default:
		return pass(XLB_XDP_PASS_NO_MATCH);
	}
}

/*
 * The reason is counted before the redirect so the counters say which rule
 * fired even when no socket takes the frame. bpf_redirect_map()'s fallback
 * (XDP_PASS in the flags) cannot report that it fell back, so we look the
 * queue up first: XSKMAP lookups from XDP are allowed since Linux 5.3.
 * REDIRECT_FAILED counts frames that were steered but went to the kernel
 * because no worker owns this queue (queue not configured, or xlbd starting
 * or stopping). The socket could still go away between the lookup and the
 * redirect; the fallback then passes the frame uncounted.
 */
static __always_inline int redirect(struct xdp_md *ctx, __u32 reason)
{
	__u32 queue = ctx->rx_queue_index;

	count(reason);
	if (!bpf_map_lookup_elem(&xsks, &queue))
		return pass(XLB_XDP_REDIRECT_FAILED);
	return bpf_redirect_map(&xsks, queue, XDP_PASS);
}

/* Ethernet and at most one VLAN tag. QinQ stacks are passed: xlb's workers
 * transmit untagged or single-tagged frames only. */
static __always_inline enum parse_result parse_eth(void **pos, void *end,
						   __be16 *proto)
{
	struct ethhdr *eth = *pos;
	struct vlan_tag *tag;

	if ((void *)(eth + 1) > end)
		return PARSE_MALFORMED;
	*proto = eth->h_proto;
	*pos = eth + 1;
	if (*proto != bpf_htons(ETH_P_8021Q) && *proto != bpf_htons(ETH_P_8021AD))
		return PARSE_OK;

	tag = *pos;
	if ((void *)(tag + 1) > end)
		return PARSE_MALFORMED;
	*proto = tag->encap_proto;
	*pos = tag + 1;
	return PARSE_OK;
}

static __always_inline void set_ipv4_mapped(__u8 addr[16], const __be32 *ip)
{
	__builtin_memset(addr, 0, 10);
	addr[10] = 0xff;
	addr[11] = 0xff;
	__builtin_memcpy(&addr[12], ip, 4);
}

/*
 * Fragments are passed, first fragments included: later fragments carry no
 * ports, so only the kernel, which reassembles, can keep all of a datagram
 * together; steering the first fragment alone would split it. Services that
 * need fragmented UDP are not supported by xlb today.
 */
static __always_inline enum parse_result parse_ipv4(void **pos, void *end,
						    struct flow *f)
{
	struct iphdr *iph = *pos;
	__u32 hlen;

	if ((void *)(iph + 1) > end)
		return PARSE_MALFORMED;
	if (iph->version != 4 || iph->ihl < 5)
		return PARSE_MALFORMED;
	hlen = iph->ihl * 4;
	if (*pos + hlen > end)
		return PARSE_MALFORMED;
	if (iph->frag_off & bpf_htons(IP4_MF | IP4_OFFSET))
		return PARSE_FRAGMENT;

	set_ipv4_mapped(f->src.addr, &iph->saddr);
	set_ipv4_mapped(f->dst.addr, &iph->daddr);
	f->src.proto = f->dst.proto = iph->protocol;
	*pos += hlen;
	return PARSE_OK;
}

/* Skips hop-by-hop, routing and destination options headers; a fragment
 * header means PARSE_FRAGMENT, as for IPv4. */
static __always_inline enum parse_result parse_ipv6(void **pos, void *end,
						    struct flow *f)
{
	struct ipv6hdr *ip6h = *pos;
	struct ipv6_opt_hdr *opt;
	__u8 nexthdr;
	int i;

	if ((void *)(ip6h + 1) > end)
		return PARSE_MALFORMED;
	if (ip6h->version != 6)
		return PARSE_MALFORMED;
	__builtin_memcpy(f->src.addr, &ip6h->saddr, 16);
	__builtin_memcpy(f->dst.addr, &ip6h->daddr, 16);
	nexthdr = ip6h->nexthdr;
	*pos = ip6h + 1;

#pragma unroll
	for (i = 0; i < MAX_IPV6_EXT_HDRS; i++) {
		if (nexthdr == IPPROTO_FRAGMENT)
			return PARSE_FRAGMENT;
		if (nexthdr != IPPROTO_HOPOPTS && nexthdr != IPPROTO_ROUTING &&
		    nexthdr != IPPROTO_DSTOPTS)
			break;
		opt = *pos;
		if ((void *)(opt + 1) > end)
			return PARSE_MALFORMED;
		nexthdr = opt->nexthdr;
		*pos += (opt->hdrlen + 1) * 8;
	}
	if (nexthdr == IPPROTO_HOPOPTS || nexthdr == IPPROTO_ROUTING ||
	    nexthdr == IPPROTO_DSTOPTS || nexthdr == IPPROTO_FRAGMENT)
		return PARSE_UNKNOWN;	/* more extension headers than we skip */

	f->src.proto = f->dst.proto = nexthdr;
	return PARSE_OK;
}

/*
 * Fills the ports. ICMP flows use port 0: a vips entry for ICMP/ICMPv6 with
 * port 0 is how a VIP would claim ICMP. An outer TCP header must be complete;
 * inside an ICMP error only its first 8 bytes are guaranteed (inner).
 */
static __always_inline enum parse_result parse_l4(void *pos, void *end,
						  struct flow *f, int inner)
{
	struct l4_ports *ports = pos;
	__u32 len;

	switch (f->src.proto) {
	case IPPROTO_TCP:
		len = inner ? ICMP_INNER_L4_LEN : sizeof(struct tcphdr);
		break;
	case IPPROTO_UDP:
		len = sizeof(struct udphdr);
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		/* struct icmphdr and struct icmp6hdr are both 8 bytes. */
		if (pos + sizeof(struct icmp6hdr) > end)
			return PARSE_MALFORMED;
		f->icmp_type = ((struct icmp6hdr *)pos)->icmp6_type;
		f->src.port = f->dst.port = 0;
		return PARSE_OK;
	default:
		return PARSE_UNKNOWN;
	}
	if (pos + len > end)
		return PARSE_MALFORMED;
	f->src.port = ports->source;
	f->dst.port = ports->dest;
	return PARSE_OK;
}

static __always_inline int is_local(const struct xlb_svc_key *k)
{
	struct xlb_local_key lk;

	__builtin_memcpy(lk.addr, k->addr, sizeof(lk.addr));
	return bpf_map_lookup_elem(&locals, &lk) != NULL;
}

static __always_inline int is_icmp_error(const struct flow *f)
{
	if (f->src.proto == IPPROTO_ICMP)
		return f->icmp_type == ICMP_DEST_UNREACH ||
		       f->icmp_type == ICMP_TIME_EXCEEDED ||
		       f->icmp_type == ICMP_PARAMETERPROB;
	return f->icmp_type == ICMPV6_DEST_UNREACH ||
	       f->icmp_type == ICMPV6_PKT_TOOBIG ||
	       f->icmp_type == ICMPV6_TIME_EXCEED ||
	       f->icmp_type == ICMPV6_PARAMPROB;
}

static __always_inline int is_echo_request(const struct flow *f)
{
	if (f->src.proto == IPPROTO_ICMP)
		return f->icmp_type == ICMP_ECHO;
	return f->icmp_type == ICMPV6_ECHO_REQUEST;
}

/*
 * An ICMP error quotes the packet that caused it (the inner packet), so the
 * flow it belongs to is read from the quote, with src and dst as that packet
 * had them:
 *  - inner src is a VIP: a reply we sent as the VIP to a client failed
 *    (e.g. "fragmentation needed" on the way to the client);
 *  - inner dst is a backend: a packet we forwarded to a backend failed.
 *    Unless its source was one of our own addresses: then it was the
 *    node's health check or own connection, and the kernel's socket wants
 *    the error (same rule as for return traffic below);
 *  - inner dst is a VIP: a packet to a service failed after reaching us.
 * The ICMP header is 8 bytes for both families; the quote follows it.
 */
static __always_inline int steer_icmp_error(struct xdp_md *ctx, void *pos,
					    void *end, int ipv6)
{
	enum parse_result res;
	struct flow inner = {};

	pos += sizeof(struct icmp6hdr);
	res = ipv6 ? parse_ipv6(&pos, end, &inner) :
		     parse_ipv4(&pos, end, &inner);
	if (res == PARSE_OK)
		res = parse_l4(pos, end, &inner, 1);
	if (res != PARSE_OK)
		return pass_parse(res);

	if (bpf_map_lookup_elem(&vips, &inner.src))
		return redirect(ctx, XLB_XDP_REDIRECT_ICMP);
	if (bpf_map_lookup_elem(&backends, &inner.dst)) {
		if (is_local(&inner.src))
			return pass(XLB_XDP_PASS_LOCAL);
		return redirect(ctx, XLB_XDP_REDIRECT_ICMP);
	}
	if (bpf_map_lookup_elem(&vips, &inner.dst))
		return redirect(ctx, XLB_XDP_REDIRECT_ICMP);
	return pass(XLB_XDP_PASS_NO_MATCH);
}

SEC("xdp")
int xlb_xdp(struct xdp_md *ctx)
{
	void *pos = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	enum parse_result res;
	struct flow f = {};
	__be16 proto;
	int ipv6;

	res = parse_eth(&pos, end, &proto);
	if (res != PARSE_OK)
		return pass_parse(res);
	if (proto == bpf_htons(ETH_P_IP))
		ipv6 = 0;
	else if (proto == bpf_htons(ETH_P_IPV6))
		ipv6 = 1;
	else
		return pass(XLB_XDP_PASS_NOT_IP);

	res = ipv6 ? parse_ipv6(&pos, end, &f) : parse_ipv4(&pos, end, &f);
	if (res == PARSE_OK)
		res = parse_l4(pos, end, &f, 0);
	if (res != PARSE_OK)
		return pass_parse(res);

	if (f.src.proto == IPPROTO_ICMP || f.src.proto == IPPROTO_ICMPV6) {
		/* ICMPv6 inside IPv4 or the reverse is nobody's traffic. */
		if ((f.src.proto == IPPROTO_ICMPV6) != ipv6)
			return pass(XLB_XDP_PASS_NO_MATCH);
		if (is_icmp_error(&f))
			return steer_icmp_error(ctx, pos, end, ipv6);
		/* `ping VIP` is answered by the kernel unless a service
		 * claims ICMP on the VIP (port 0). Other ICMP (NDP, echo
		 * replies, ...) always belongs to the kernel. */
		if (is_echo_request(&f) && bpf_map_lookup_elem(&vips, &f.dst))
			return redirect(ctx, XLB_XDP_REDIRECT_VIP);
		return pass(XLB_XDP_PASS_NO_MATCH);
	}

	/* Service traffic: a client talking to a VIP. */
	if (bpf_map_lookup_elem(&vips, &f.dst))
		return redirect(ctx, XLB_XDP_REDIRECT_VIP);

	/* Return traffic: a backend answering a client through the DNAT.
	 * The same backend talking to the node itself (health-check replies,
	 * the node's own connections) is the kernel's. */
	if (bpf_map_lookup_elem(&backends, &f.src)) {
		if (is_local(&f.dst))
			return pass(XLB_XDP_PASS_LOCAL);
		return redirect(ctx, XLB_XDP_REDIRECT_REPLY);
	}
	return pass(XLB_XDP_PASS_NO_MATCH);
}
