/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Runs crafted frames through bpf/xlb.bpf.c with BPF_PROG_RUN and checks
 * which steering rule fired (the per-CPU `stats` counters) and the verdict.
 *
 * The table runs twice: with no AF_XDP socket in `xsks` (every frame must go
 * to the kernel; steered ones also count REDIRECT_FAILED) and with a socket
 * bound on queue 0 (steered frames return XDP_REDIRECT). The socket is bound
 * to the loopback of a network namespace private to this process, so the
 * test touches no real interface and sends nothing.
 *
 * Needs root (BPF and AF_XDP); exits 77 (skip) otherwise.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_xdp.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <xdp/xsk.h>

#include "unit.h"
#include "xlb/bpf_shared.h"
#include "xlb.skel.h"

/* The lab plan: clients on 198.18.1.0/24, the VIPs, backends on
 * 198.18.2.0/24 where the node itself is .1; IPv6 alike. */
#define CLIENT4 "198.18.1.1"
#define ROUTER4 "198.18.1.254"
#define VIP4 "198.18.0.100"
#define VIP4_ICMP "198.18.0.101"	/* a VIP that claims ICMP (port 0) */
#define BACKEND4 "198.18.2.2"
#define LOCAL4 "198.18.2.1"
#define CLIENT6 "2001:2:0:1::1"
#define ROUTER6 "2001:2:0:1::fe"
#define VIP6 "2001:2::100"
#define BACKEND6 "2001:2:0:2::2"
#define LOCAL6 "2001:2:0:2::1"

/* One IP packet: the family comes from the address literals. For TCP and
 * UDP a/b are the ports, for ICMP type and code. */
struct ip_pkt {
	const char *src, *dst;
	uint8_t proto;
	uint16_t a, b;
};

struct xdp_case {
	const char *name;
	uint16_t tpid;		/* VLAN tag protocol, 0 for none */
	uint16_t tpid2;		/* a second (QinQ) tag */
	uint16_t ethertype;	/* only for non-IP frames */
	struct ip_pkt pkt;
	struct ip_pkt inner;	/* the packet an ICMP error quotes */
	uint16_t frag_off;	/* IPv4 flags and fragment offset */
	uint8_t ip_opt_words;	/* IPv4 options, in 4-byte words */
	uint8_t ihl;		/* IPv4 header length to claim, if not 0 */
	uint8_t ext[6];		/* IPv6 extension headers, in order */
	uint8_t n_ext;		/* how many (IPPROTO_HOPOPTS is 0) */
	int cut;		/* bytes removed from the end of the frame */
	enum xlb_xdp_stat want;
};

#define TCP(s, d, sp, dp) { s, d, IPPROTO_TCP, sp, dp }
#define UDP(s, d, sp, dp) { s, d, IPPROTO_UDP, sp, dp }
#define ICMP4(s, d, t, c) { s, d, IPPROTO_ICMP, t, c }
#define ICMP6(s, d, t, c) { s, d, IPPROTO_ICMPV6, t, c }

static const struct xdp_case cases[] = {
	{ .name = "ARP", .ethertype = ETH_P_ARP, .want = XLB_XDP_PASS_NOT_IP },
	{ .name = "LLDP", .ethertype = 0x88cc, .want = XLB_XDP_PASS_NOT_IP },
	{ .name = "TCP to VIP:80", .pkt = TCP(CLIENT4, VIP4, 40000, 80),
	  .want = XLB_XDP_REDIRECT_VIP },
	{ .name = "TCP to VIP:81", .pkt = TCP(CLIENT4, VIP4, 40000, 81),
	  .want = XLB_XDP_PASS_NO_MATCH },
	{ .name = "UDP to VIP:53", .pkt = UDP(CLIENT4, VIP4, 40000, 53),
	  .want = XLB_XDP_REDIRECT_VIP },
	{ .name = "UDP to the TCP service's port", .pkt = UDP(CLIENT4, VIP4, 40000, 80),
	  .want = XLB_XDP_PASS_NO_MATCH },
	{ .name = "TCP to an address that is not a VIP",
	  .pkt = TCP(CLIENT4, "198.18.0.99", 40000, 80), .want = XLB_XDP_PASS_NO_MATCH },
	{ .name = "GRE to VIP", .pkt = { CLIENT4, VIP4, 47, 0, 0 },
	  .want = XLB_XDP_PASS_NO_MATCH },
	{ .name = "TCP backend reply to client", .pkt = TCP(BACKEND4, CLIENT4, 8080, 40000),
	  .want = XLB_XDP_REDIRECT_REPLY },
	{ .name = "UDP backend reply to client", .pkt = UDP(BACKEND4, CLIENT4, 5353, 40000),
	  .want = XLB_XDP_REDIRECT_REPLY },
	{ .name = "TCP backend reply to the node", .pkt = TCP(BACKEND4, LOCAL4, 8080, 40000),
	  .want = XLB_XDP_PASS_LOCAL },
	{ .name = "backend, other port (ssh) to client",
	  .pkt = TCP(BACKEND4, CLIENT4, 22, 40000), .want = XLB_XDP_PASS_NO_MATCH },
	{ .name = "IPv4 with options to VIP", .pkt = TCP(CLIENT4, VIP4, 40000, 80),
	  .ip_opt_words = 2, .want = XLB_XDP_REDIRECT_VIP },
	{ .name = "802.1Q tagged TCP to VIP", .tpid = ETH_P_8021Q,
	  .pkt = TCP(CLIENT4, VIP4, 40000, 80), .want = XLB_XDP_REDIRECT_VIP },
	{ .name = "802.1ad tagged IPv6 to VIP", .tpid = ETH_P_8021AD,
	  .pkt = TCP(CLIENT6, VIP6, 40000, 80), .want = XLB_XDP_REDIRECT_VIP },
	{ .name = "QinQ is not parsed", .tpid = ETH_P_8021AD, .tpid2 = ETH_P_8021Q,
	  .pkt = TCP(CLIENT4, VIP4, 40000, 80), .want = XLB_XDP_PASS_NOT_IP },

	{ .name = "IPv6 TCP to VIP:80", .pkt = TCP(CLIENT6, VIP6, 40000, 80),
	  .want = XLB_XDP_REDIRECT_VIP },
	{ .name = "IPv6 TCP to VIP:81", .pkt = TCP(CLIENT6, VIP6, 40000, 81),
	  .want = XLB_XDP_PASS_NO_MATCH },
	{ .name = "IPv6 hop-by-hop + dest-opts to VIP", .pkt = TCP(CLIENT6, VIP6, 40000, 80),
	  .ext = { IPPROTO_HOPOPTS, IPPROTO_DSTOPTS }, .n_ext = 2, .want = XLB_XDP_REDIRECT_VIP },
	{ .name = "IPv6 routing header to VIP", .pkt = UDP(CLIENT6, VIP6, 40000, 53),
	  .ext = { IPPROTO_ROUTING }, .n_ext = 1, .want = XLB_XDP_REDIRECT_VIP },
	{ .name = "IPv6 four extension headers to VIP", .pkt = TCP(CLIENT6, VIP6, 40000, 80),
	  .ext = { IPPROTO_HOPOPTS, IPPROTO_DSTOPTS, IPPROTO_ROUTING, IPPROTO_DSTOPTS },
	  .n_ext = 4, .want = XLB_XDP_REDIRECT_VIP },
	{ .name = "IPv6 more extension headers than skipped",
	  .pkt = TCP(CLIENT6, VIP6, 40000, 80),
	  .ext = { IPPROTO_DSTOPTS, IPPROTO_DSTOPTS, IPPROTO_DSTOPTS, IPPROTO_DSTOPTS,
		   IPPROTO_DSTOPTS }, .n_ext = 5, .want = XLB_XDP_PASS_NO_MATCH },
	{ .name = "IPv6 fragment to VIP", .pkt = UDP(CLIENT6, VIP6, 40000, 53),
	  .ext = { IPPROTO_FRAGMENT }, .n_ext = 1, .want = XLB_XDP_PASS_FRAGMENT },
	{ .name = "IPv6 backend reply to client", .pkt = TCP(BACKEND6, CLIENT6, 8080, 40000),
	  .want = XLB_XDP_REDIRECT_REPLY },
	{ .name = "IPv6 backend reply to the node", .pkt = TCP(BACKEND6, LOCAL6, 8080, 40000),
	  .want = XLB_XDP_PASS_LOCAL },

	{ .name = "IPv4 first fragment to VIP", .pkt = UDP(CLIENT4, VIP4, 40000, 53),
	  .frag_off = 0x2000, .want = XLB_XDP_PASS_FRAGMENT },
	{ .name = "IPv4 later fragment to VIP", .pkt = UDP(CLIENT4, VIP4, 40000, 53),
	  .frag_off = 185, .want = XLB_XDP_PASS_FRAGMENT },
	{ .name = "IPv4 DF set to VIP", .pkt = TCP(CLIENT4, VIP4, 40000, 80),
	  .frag_off = 0x4000, .want = XLB_XDP_REDIRECT_VIP },

	{ .name = "truncated VLAN tag", .tpid = ETH_P_8021Q, .pkt = TCP(CLIENT4, VIP4, 40000, 80),
	  .cut = 20 + 20 + 3, .want = XLB_XDP_PASS_MALFORMED },
	{ .name = "truncated IPv4 header", .pkt = TCP(CLIENT4, VIP4, 40000, 80),
	  .cut = 20 + 1, .want = XLB_XDP_PASS_MALFORMED },
	{ .name = "IPv4 IHL 4", .pkt = TCP(CLIENT4, VIP4, 40000, 80), .ihl = 4,
	  .want = XLB_XDP_PASS_MALFORMED },
	{ .name = "IPv4 IHL past the end", .pkt = UDP(CLIENT4, VIP4, 40000, 53), .ihl = 15,
	  .want = XLB_XDP_PASS_MALFORMED },
	{ .name = "truncated TCP header", .pkt = TCP(CLIENT4, VIP4, 40000, 80),
	  .cut = 1, .want = XLB_XDP_PASS_MALFORMED },
	{ .name = "truncated UDP header", .pkt = UDP(BACKEND4, CLIENT4, 5353, 40000),
	  .cut = 1, .want = XLB_XDP_PASS_MALFORMED },
	{ .name = "truncated IPv6 header", .pkt = TCP(CLIENT6, VIP6, 40000, 80),
	  .cut = 20 + 1, .want = XLB_XDP_PASS_MALFORMED },
	{ .name = "truncated IPv6 extension header", .pkt = TCP(CLIENT6, VIP6, 40000, 80),
	  .ext = { IPPROTO_HOPOPTS }, .n_ext = 1, .cut = 20 + 7, .want = XLB_XDP_PASS_MALFORMED },

	{ .name = "ping to VIP is the kernel's", .pkt = ICMP4(CLIENT4, VIP4, 8, 0),
	  .want = XLB_XDP_PASS_NO_MATCH },
	{ .name = "ping6 to VIP is the kernel's", .pkt = ICMP6(CLIENT6, VIP6, 128, 0),
	  .want = XLB_XDP_PASS_NO_MATCH },
	{ .name = "ping to a VIP claiming ICMP", .pkt = ICMP4(CLIENT4, VIP4_ICMP, 8, 0),
	  .want = XLB_XDP_REDIRECT_VIP },
	{ .name = "echo reply from a backend", .pkt = ICMP4(BACKEND4, CLIENT4, 0, 0),
	  .want = XLB_XDP_PASS_NO_MATCH },
	{ .name = "neighbour solicitation", .pkt = ICMP6(CLIENT6, VIP6, 135, 0),
	  .want = XLB_XDP_PASS_NO_MATCH },
	{ .name = "frag needed about a VIP reply", .pkt = ICMP4(ROUTER4, VIP4, 3, 4),
	  .inner = TCP(VIP4, CLIENT4, 80, 40000), .want = XLB_XDP_REDIRECT_ICMP },
	{ .name = "port unreachable about a forwarded packet",
	  .pkt = ICMP4(BACKEND4, CLIENT4, 3, 3),
	  .inner = UDP(CLIENT4, BACKEND4, 40000, 5353), .want = XLB_XDP_REDIRECT_ICMP },
	{ .name = "time exceeded about a packet to a VIP", .pkt = ICMP4(ROUTER4, CLIENT4, 11, 0),
	  .inner = TCP(CLIENT4, VIP4, 40000, 80), .want = XLB_XDP_REDIRECT_ICMP },
	{ .name = "port unreachable about a health check",
	  .pkt = ICMP4(BACKEND4, LOCAL4, 3, 3),
	  .inner = UDP(LOCAL4, BACKEND4, 40000, 5353), .want = XLB_XDP_PASS_LOCAL },
	{ .name = "ICMP error about someone else's flow", .pkt = ICMP4(ROUTER4, CLIENT4, 3, 4),
	  .inner = TCP(CLIENT4, "198.18.0.99", 40000, 80), .want = XLB_XDP_PASS_NO_MATCH },
	{ .name = "ICMP error quoting a truncated header", .pkt = ICMP4(ROUTER4, VIP4, 3, 4),
	  .inner = TCP(VIP4, CLIENT4, 80, 40000), .cut = 5, .want = XLB_XDP_PASS_MALFORMED },
	{ .name = "packet too big about a VIP6 reply", .pkt = ICMP6(ROUTER6, VIP6, 2, 0),
	  .inner = TCP(VIP6, CLIENT6, 80, 40000), .want = XLB_XDP_REDIRECT_ICMP },
	{ .name = "ICMPv6 unreachable about a forwarded packet",
	  .pkt = ICMP6(ROUTER6, CLIENT6, 1, 3),
	  .inner = TCP(CLIENT6, BACKEND6, 40000, 8080), .want = XLB_XDP_REDIRECT_ICMP },
};

struct svc_entry {
	const char *addr;
	uint16_t port;
	uint8_t proto;
};

static const struct svc_entry vip_entries[] = {
	{ VIP4, 80, IPPROTO_TCP },
	{ VIP4, 53, IPPROTO_UDP },
	{ VIP4_ICMP, 0, IPPROTO_ICMP },
	{ VIP6, 80, IPPROTO_TCP },
	{ VIP6, 53, IPPROTO_UDP },
};

static const struct svc_entry backend_entries[] = {
	{ BACKEND4, 8080, IPPROTO_TCP },
	{ BACKEND4, 5353, IPPROTO_UDP },
	{ BACKEND6, 8080, IPPROTO_TCP },
};

static const char *const local_addrs[] = { LOCAL4, LOCAL6 };

static struct xlb_bpf *skel;
static struct xsk_umem *umem;
static struct xsk_socket *xsk;
static void *umem_area;
static struct xsk_ring_prod fill_ring;
static struct xsk_ring_cons comp_ring, rx_ring;

#define UMEM_FRAMES 64
#define UMEM_SIZE (UMEM_FRAMES * XSK_UMEM__DEFAULT_FRAME_SIZE)

/* 16-byte form of the maps: IPv4 as ::ffff:a.b.c.d. Returns the family. */
static int parse_addr(const char *s, uint8_t out[16])
{
	memset(out, 0, 16);
	if (inet_pton(AF_INET6, s, out) == 1)
		return AF_INET6;
	if (inet_pton(AF_INET, s, out + 12) != 1) {
		fprintf(stderr, "bad address in the test table: %s\n", s);
		abort();
	}
	out[10] = out[11] = 0xff;
	return AF_INET;
}

static struct xlb_svc_key svc_key(const struct svc_entry *e)
{
	struct xlb_svc_key k;

	memset(&k, 0, sizeof(k));
	parse_addr(e->addr, k.addr);
	k.port = htons(e->port);
	k.proto = e->proto;
	return k;
}

struct frame {
	uint8_t buf[512];
	size_t len;
};

static uint8_t *put(struct frame *f, size_t n)
{
	uint8_t *p = f->buf + f->len;

	if (f->len + n > sizeof(f->buf))
		abort();
	memset(p, 0, n);
	f->len += n;
	return p;
}

static void put16(uint8_t *p, uint16_t v)
{
	v = htons(v);
	memcpy(p, &v, 2);
}

/* Appends p's L4 header. A quoted (inner) packet gets exactly the 8 bytes
 * of L4 that an ICMPv4 error guarantees. */
static void put_l4(struct frame *f, const struct ip_pkt *p, bool inner)
{
	uint8_t *l4;

	switch (p->proto) {
	case IPPROTO_TCP:
		l4 = put(f, inner ? 8 : 20);
		put16(l4, p->a);
		put16(l4 + 2, p->b);
		if (!inner) {
			l4[12] = 5 << 4;	/* data offset */
			l4[13] = 0x02;		/* SYN */
			put16(l4 + 14, 64240);
		}
		break;
	case IPPROTO_UDP:
		l4 = put(f, 8);
		put16(l4, p->a);
		put16(l4 + 2, p->b);
		put16(l4 + 4, 8);
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		l4 = put(f, 8);
		l4[0] = p->a;
		l4[1] = p->b;
		put16(l4 + 4, 0x1234);	/* echo id, unused by errors */
		break;
	default:
		put(f, 8);
		break;
	}
}

/* Appends an IP packet; outer packets take the case's IP options,
 * fragment bits and extension headers, a quoted packet is plain. */
static void put_ip(struct frame *f, const struct xdp_case *c, const struct ip_pkt *p,
		   bool inner)
{
	uint8_t src[16], dst[16];
	size_t start = f->len;
	uint8_t *h;
	int family;

	family = parse_addr(p->src, src);
	parse_addr(p->dst, dst);

	if (family == AF_INET) {
		int words = 5 + (inner ? 0 : c->ip_opt_words);

		h = put(f, words * 4);
		h[0] = 0x40 | (inner || !c->ihl ? words : c->ihl);
		put16(h + 6, inner ? 0 : c->frag_off);
		h[8] = 64;
		h[9] = p->proto;
		memcpy(h + 12, src + 12, 4);
		memcpy(h + 16, dst + 12, 4);
		memset(h + 20, 1, (words - 5) * 4);	/* NOP options */
	} else {
		uint8_t *next;

		h = put(f, 40);
		h[0] = 0x60;
		h[7] = 64;
		memcpy(h + 8, src, 16);
		memcpy(h + 24, dst, 16);
		next = h + 6;
		for (int i = 0; !inner && i < c->n_ext; i++) {
			/* Destination options get 16 bytes, the others 8, so
			 * the parser must read each header's length. */
			int units = c->ext[i] == IPPROTO_DSTOPTS ? 2 : 1;
			uint8_t *ext = put(f, units * 8);

			*next = c->ext[i];
			next = ext;	/* byte 0 is the next header */
			if (c->ext[i] != IPPROTO_FRAGMENT) {
				ext[1] = units - 1;
				ext[2] = 1;	/* one PadN option fills the rest */
				ext[3] = units * 8 - 4;
			}
		}
		*next = p->proto;
	}

	put_l4(f, p, inner);
	if (!inner && c->inner.src)
		put_ip(f, c, &c->inner, true);

	/* Lengths as a sender would set them (the program does not read them). */
	h = f->buf + start;
	if (family == AF_INET)
		put16(h + 2, f->len - start);
	else
		put16(h + 4, f->len - start - 40);
}

static void build_frame(const struct xdp_case *c, struct frame *f)
{
	static const uint8_t dst_mac[6] = { 0x02, 0, 0, 0, 0, 0x01 };
	static const uint8_t src_mac[6] = { 0x02, 0, 0, 0, 0, 0x02 };
	uint16_t ethertype = c->ethertype;
	uint8_t *h;

	f->len = 0;
	if (!ethertype)
		ethertype = strchr(c->pkt.src, ':') ? ETH_P_IPV6 : ETH_P_IP;

	h = put(f, 12);
	memcpy(h, dst_mac, 6);
	memcpy(h + 6, src_mac, 6);
	if (c->tpid) {
		h = put(f, 4);
		put16(h, c->tpid);
		put16(h + 2, 100);	/* VLAN id */
	}
	if (c->tpid2) {
		h = put(f, 4);
		put16(h, c->tpid2);
		put16(h + 2, 200);
	}
	put16(put(f, 2), ethertype);

	if (c->pkt.src)
		put_ip(f, c, &c->pkt, false);
	else
		put(f, 46);	/* ARP, LLDP, ...: the minimum payload */

	f->len -= c->cut;
}

static int read_stats(uint64_t sums[XLB_XDP_STAT_MAX])
{
	int ncpus = libbpf_num_possible_cpus();
	int fd = bpf_map__fd(skel->maps.stats);
	uint64_t *per_cpu;
	int err = 0;

	if (ncpus < 0)
		return ncpus;
	per_cpu = calloc(ncpus, sizeof(*per_cpu));
	if (!per_cpu)
		return -ENOMEM;
	for (uint32_t r = 0; r < XLB_XDP_STAT_MAX; r++) {
		sums[r] = 0;
		if (bpf_map_lookup_elem(fd, &r, per_cpu)) {
			err = -errno;
			goto err;
		}
		for (int i = 0; i < ncpus; i++)
			sums[r] += per_cpu[i];
	}
err:
	free(per_cpu);
	return err;
}

static const char *const stat_names[XLB_XDP_STAT_MAX] = {
	[XLB_XDP_PASS_NOT_IP] = "PASS_NOT_IP",
	[XLB_XDP_PASS_NO_MATCH] = "PASS_NO_MATCH",
	[XLB_XDP_PASS_LOCAL] = "PASS_LOCAL",
	[XLB_XDP_PASS_MALFORMED] = "PASS_MALFORMED",
	[XLB_XDP_PASS_FRAGMENT] = "PASS_FRAGMENT",
	[XLB_XDP_REDIRECT_VIP] = "REDIRECT_VIP",
	[XLB_XDP_REDIRECT_REPLY] = "REDIRECT_REPLY",
	[XLB_XDP_REDIRECT_ICMP] = "REDIRECT_ICMP",
	[XLB_XDP_REDIRECT_FAILED] = "REDIRECT_FAILED",
};

static bool is_redirect(enum xlb_xdp_stat r)
{
	return r == XLB_XDP_REDIRECT_VIP || r == XLB_XDP_REDIRECT_REPLY ||
	       r == XLB_XDP_REDIRECT_ICMP;
}

/* An assertion that names the table row it failed on. */
static void case_assert(const struct xdp_case *c, bool ok, int line, const char *what)
{
	char msg[256];

	snprintf(msg, sizeof(msg), "[%s] %s", c->name, what);
	CU_assertImplementation(ok, line, msg, __FILE__, "", CU_FALSE);
}

#define CASE_ASSERT(c, cond) case_assert(c, (cond), __LINE__, #cond)

/* Runs every row once; with_socket says whether queue 0 has a socket. */
static void run_table(bool with_socket)
{
	int prog_fd = bpf_program__fd(skel->progs.xlb_xdp);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct xdp_case *c = &cases[i];
		uint64_t before[XLB_XDP_STAT_MAX], after[XLB_XDP_STAT_MAX];
		struct frame f;
		LIBBPF_OPTS(bpf_test_run_opts, opts, .repeat = 1);
		int err;

		build_frame(c, &f);
		opts.data_in = f.buf;
		opts.data_size_in = f.len;

		CU_ASSERT_EQUAL_FATAL(read_stats(before), 0);
		err = bpf_prog_test_run_opts(prog_fd, &opts);
		CASE_ASSERT(c, err == 0);
		CU_ASSERT_EQUAL_FATAL(read_stats(after), 0);

		for (int r = 0; r < XLB_XDP_STAT_MAX; r++) {
			uint64_t want = r == (int)c->want;

			if (r == XLB_XDP_REDIRECT_FAILED)
				want = !with_socket && is_redirect(c->want);
			if (after[r] - before[r] != want) {
				char what[128];

				snprintf(what, sizeof(what),
					 "%s moved by %llu, expected %llu", stat_names[r],
					 (unsigned long long)(after[r] - before[r]),
					 (unsigned long long)want);
				case_assert(c, false, __LINE__, what);
			}
		}
		if (with_socket && is_redirect(c->want))
			CASE_ASSERT(c, opts.retval == XDP_REDIRECT);
		else
			CASE_ASSERT(c, opts.retval == XDP_PASS);
	}
}

static void test_no_socket(void)
{
	run_table(false);
}

static int bind_socket(void)
{
	struct xsk_umem_config ucfg = {
		.fill_size = UMEM_FRAMES,
		.comp_size = UMEM_FRAMES,
		.frame_size = XSK_UMEM__DEFAULT_FRAME_SIZE,
	};
	struct xsk_socket_config scfg = {
		.rx_size = UMEM_FRAMES,
		.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
		.bind_flags = XDP_COPY,
	};
	int err;

	umem_area = mmap(NULL, UMEM_SIZE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (umem_area == MAP_FAILED) {
		umem_area = NULL;
		return -errno;
	}
	err = xsk_umem__create(&umem, umem_area, UMEM_SIZE, &fill_ring, &comp_ring, &ucfg);
	if (err)
		return err;
	return xsk_socket__create(&xsk, "lo", 0, umem, &rx_ring, NULL, &scfg);
}

static void test_with_socket(void)
{
	uint32_t queue = 0;
	int fd, err;

	err = bind_socket();
	if (err)
		fprintf(stderr, "AF_XDP socket on lo: %s\n", strerror(-err));
	CU_ASSERT_EQUAL_FATAL(err, 0);
	fd = xsk_socket__fd(xsk);
	CU_ASSERT_EQUAL_FATAL(bpf_map_update_elem(bpf_map__fd(skel->maps.xsks), &queue, &fd,
						  BPF_ANY), 0);
	run_table(true);
	CU_ASSERT_EQUAL(bpf_map_delete_elem(bpf_map__fd(skel->maps.xsks), &queue), 0);
}

static int fill_map(struct bpf_map *map, const struct svc_entry *e, size_t n)
{
	struct xlb_svc_val val = { .service_id = 1 };

	for (size_t i = 0; i < n; i++) {
		struct xlb_svc_key k = svc_key(&e[i]);

		if (bpf_map_update_elem(bpf_map__fd(map), &k, &val, BPF_NOEXIST))
			return -errno;
	}
	return 0;
}

/* Loading is the verifier check: it fails here if this kernel rejects the
 * program. */
static int suite_init(void)
{
	uint8_t one = 1;

	skel = xlb_bpf__open_and_load();
	if (!skel) {
		fprintf(stderr, "loading xlb.bpf.o: %s\n", strerror(errno));
		return -1;
	}
	if (fill_map(skel->maps.vips, vip_entries, sizeof(vip_entries) / sizeof(vip_entries[0])) ||
	    fill_map(skel->maps.backends, backend_entries,
		     sizeof(backend_entries) / sizeof(backend_entries[0])))
		return -1;
	for (size_t i = 0; i < sizeof(local_addrs) / sizeof(local_addrs[0]); i++) {
		struct xlb_local_key k;

		parse_addr(local_addrs[i], k.addr);
		if (bpf_map_update_elem(bpf_map__fd(skel->maps.locals), &k, &one, BPF_NOEXIST))
			return -1;
	}
	return 0;
}

static int suite_cleanup(void)
{
	if (xsk)
		xsk_socket__delete(xsk);
	if (umem)
		xsk_umem__delete(umem);
	if (umem_area)
		munmap(umem_area, UMEM_SIZE);
	xlb_bpf__destroy(skel);
	return 0;
}

int main(void)
{
	static const struct unit_test tests[] = {
		{ "verdicts, no socket on the queue", test_no_socket },
		{ "verdicts, socket bound on queue 0", test_with_socket },
	};

	if (geteuid() != 0) {
		fprintf(stderr, "test_xdp: needs root for BPF and AF_XDP, skipping\n");
		return 77;
	}
	/* A private network namespace: the socket binds to its loopback. */
	if (unshare(CLONE_NEWNET)) {
		perror("unshare(CLONE_NEWNET)");
		return 1;
	}

	return UNIT_RUN("xdp", suite_init, suite_cleanup, tests);
}
