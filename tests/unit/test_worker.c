// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The packet function fed from memory: real conntrack, real Maglev, real
 * route and neighbour tables (from a private network namespace), no
 * sockets. Each test sends frames through xlb_worker_handle_burst() and
 * checks what would leave the wire: addresses, ports, MACs, checksums.
 *
 * Needs root (a network namespace of its own); exits 77 otherwise.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <urcu-qsbr.h>

#include "config.h"
#include "flow.h"
#include "nat.h"
#include "packet.h"
#include "route.h"
#include "service.h"
#include "unit.h"
#include "worker.h"

static const uint8_t client_mac[6] = { 0x02, 0, 0, 0, 0, 0x10 };
static const uint8_t b1_mac[6] = { 0x02, 0, 0, 0, 0x02, 0x02 };
static const uint8_t b2_mac[6] = { 0x02, 0, 0, 0, 0x02, 0x03 };
static const uint8_t wire_mac[6] = { 0x02, 0xee, 0, 0, 0, 0x01 };

static struct xlb_dataplane dp;
static struct xlb_worker *w;
static struct xlb_config *cfg;
static char cfg_path[] = "/tmp/xlb-test-worker-XXXXXX";

static const char *config_text =
	"[global]\n"
	"interface = xw0\n"
	"[service web]\n"
	"vip = 198.18.0.100\n"
	"port = 80\n"
	"protocol = tcp\n"
	"backends = 198.18.2.2:8080, 198.18.2.3:8080\n"
	"[service dns]\n"
	"vip = 198.18.0.100\n"
	"port = 53\n"
	"protocol = udp\n"
	"backends = 198.18.2.2:5353\n"
	"[service web6]\n"
	"vip = 2001:2::100\n"
	"port = 80\n"
	"protocol = tcp\n"
	"backends = [2001:2:0:2::2]:8080\n"
	"[service dns6]\n"
	"vip = 2001:2::100\n"
	"port = 53\n"
	"protocol = udp\n"
	"backends = [2001:2:0:2::2]:5353\n"
	"[service empty]\n"
	"vip = 198.18.0.101\n"
	"port = 80\n"
	"protocol = tcp\n"
	"backends = 198.18.2.2:8080 weight=0\n"
	"drain_fallback = 0\n"
	"no_backend = drop\n"
	"[service closed]\n"
	"vip = 198.18.0.102\n"
	"port = 80\n"
	"protocol = tcp\n"
	"backends = 198.18.2.2:8080 weight=0\n"
	"drain_fallback = 0\n"
	"[service closed-udp]\n"
	"vip = 198.18.0.102\n"
	"port = 53\n"
	"protocol = udp\n"
	"backends = 198.18.2.3:5353 weight=0\n"
	"drain_fallback = 0\n"
	"[service stateless]\n"
	"vip = 198.18.0.103\n"
	"port = 53\n"
	"protocol = udp\n"
	"backends = 198.18.2.3:5354\n"
	"notrack = 1\n"
	"notrack_clients = 198.18.0.0/24, 2001:2::/64\n";

static int sh(const char *cmd)
{
	int rc = system(cmd);

	if (rc != 0)
		fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
	return rc;
}

static int setup(void)
{
	struct xlb_services *svcs;
	char err[512];
	int fd;

	if (unshare(CLONE_NEWNET))
		return -1;
	if (sh("ip link add xw0 address 02:ee:00:00:00:01 type veth peer name xw1") ||
	    sh("ip link set xw0 up && ip link set xw1 up && ip link set lo up") ||
	    sh("ip addr add 198.18.0.1/24 dev xw0 && ip addr add 198.18.2.1/24 dev xw0") ||
	    sh("ip addr add 2001:2::1/64 dev xw0 nodad && ip addr add 2001:2:0:2::1/64 dev xw0 nodad") ||
	    sh("ip neigh add 198.18.0.10 lladdr 02:00:00:00:00:10 dev xw0 nud permanent") ||
	    sh("ip neigh add 198.18.2.2 lladdr 02:00:00:00:02:02 dev xw0 nud permanent") ||
	    sh("ip neigh add 198.18.2.3 lladdr 02:00:00:00:02:03 dev xw0 nud permanent") ||
	    sh("ip neigh add 2001:2::10 lladdr 02:00:00:00:00:10 dev xw0 nud permanent") ||
	    sh("ip neigh add 2001:2:0:2::2 lladdr 02:00:00:00:02:02 dev xw0 nud permanent"))
		return -1;

	fd = mkstemp(cfg_path);
	if (fd < 0 || write(fd, config_text, strlen(config_text)) != (ssize_t)strlen(config_text))
		return -1;
	close(fd);
	if (xlb_config_load(cfg_path, &cfg, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	rcu_register_thread();
	dp.ct = xlb_ct_create(&cfg->ct);
	dp.route = xlb_route_create(if_nametoindex("xw0"), NULL, NULL);
	svcs = xlb_services_build(cfg);
	if (!dp.ct || !dp.route || !svcs)
		return -1;
	xlb_route_if_mac(dp.route, dp.if_mac);
	rcu_assign_pointer(dp.services, svcs);
	w = aligned_alloc(64, sizeof(*w));
	memset(w, 0, sizeof(*w));
	w->dp = &dp;
	return 0;
}

static int teardown(void)
{
	unlink(cfg_path);
	free(w);
	xlb_route_destroy(dp.route);
	rcu_thread_offline();
	rcu_barrier();
	xlb_ct_destroy(dp.ct);
	xlb_services_free(dp.services);
	xlb_config_free(cfg);
	xlb_backend_registry_free();
	rcu_unregister_thread();
	return 0;
}

/* ---- frame building ---------------------------------------------------- */

struct frame {
	uint8_t b[256];
	uint32_t len;
};

static void put16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = v & 0xff; }
static void put32(uint8_t *p, uint32_t v) { put16(p, v >> 16); put16(p + 2, v & 0xffff); }

/* Sequence and acknowledgement numbers of the next TCP segment built: the
 * tracker checks them (window tracking), so handshakes must be real. */
static uint32_t tcp_seq = 1000, tcp_ack;

static void build(struct frame *f, int family, const char *src, uint16_t sport, const char *dst,
		  uint16_t dport, uint8_t proto, uint8_t tcp_flags, const char *payload)
{
	size_t plen = strlen(payload);
	size_t l4len = (proto == IPPROTO_TCP ? 20 : 8) + plen;
	uint8_t *ip = f->b + 14, *l4;
	struct xlb_pkt p;

	memset(f, 0, sizeof(*f));
	memcpy(f->b, wire_mac, 6);
	memcpy(f->b + 6, client_mac, 6);
	if (family == AF_INET) {
		put16(f->b + 12, 0x0800);
		ip[0] = 0x45;
		put16(ip + 2, (uint16_t)(20 + l4len));
		ip[8] = 64;
		ip[9] = proto;
		inet_pton(AF_INET, src, ip + 12);
		inet_pton(AF_INET, dst, ip + 16);
		l4 = ip + 20;
	} else {
		put16(f->b + 12, 0x86dd);
		ip[0] = 0x60;
		put16(ip + 4, (uint16_t)l4len);
		ip[6] = proto;
		ip[7] = 64;
		inet_pton(AF_INET6, src, ip + 8);
		inet_pton(AF_INET6, dst, ip + 24);
		l4 = ip + 40;
	}
	put16(l4, sport);
	put16(l4 + 2, dport);
	if (proto == IPPROTO_TCP) {
		put32(l4 + 4, tcp_seq);
		put32(l4 + 8, tcp_ack);
		l4[12] = 5 << 4;
		l4[13] = tcp_flags;
		put16(l4 + 14, 65535);
		memcpy(l4 + 20, payload, plen);
	} else {
		put16(l4 + 4, (uint16_t)l4len);
		memcpy(l4 + 8, payload, plen);
	}
	f->len = (uint32_t)((l4 - f->b) + l4len);
	/* Valid checksums to begin with, so the output's can be checked. */
	CU_ASSERT_EQUAL_FATAL(xlb_pkt_parse(&p, f->b, f->len), XLB_PARSE_OK);
	if (family == AF_INET) {
		uint16_t c = xlb_csum_ipv4_header(ip, 20);

		memcpy(ip + 10, &c, 2);
	}
	{
		uint16_t c = xlb_csum_l4(&p);

		memcpy(l4 + (proto == IPPROTO_TCP ? 16 : 6), &c, 2);
	}
}

/* Run one frame; returns its verdict and the parsed result. */
static int run(struct frame *f, struct xlb_pkt *out)
{
	struct xlb_buf b = { .data = f->b, .len = f->len };

	rcu_quiescent_state();
	xlb_worker_handle_burst(w, &b, 1, xlb_now_ns());
	if (out)
		CU_ASSERT_EQUAL(xlb_pkt_parse(out, f->b, f->len), XLB_PARSE_OK);
	return b.verdict;
}

static void assert_checksums_ok(struct xlb_pkt *p)
{
	uint16_t stored;

	if (p->tuple.family == AF_INET) {
		memcpy(&stored, p->data + p->l3_off + 10, 2);
		CU_ASSERT_EQUAL(xlb_csum_ipv4_header(p->data + p->l3_off, 20), stored);
	}
	memcpy(&stored, p->data + p->l4_off + (p->tuple.proto == IPPROTO_TCP ? 16 : 6), 2);
	/* Recomputed from scratch with the field zeroed, the checksum must
	 * be what the incremental update left there. */
	{
		uint16_t zero = 0, again;

		memcpy(p->data + p->l4_off + (p->tuple.proto == IPPROTO_TCP ? 16 : 6), &zero, 2);
		again = xlb_csum_l4(p);
		memcpy(p->data + p->l4_off + (p->tuple.proto == IPPROTO_TCP ? 16 : 6), &stored, 2);
		CU_ASSERT_EQUAL(again, stored);
	}
}

static bool addr_is(const union xlb_addr *a, const char *text)
{
	union xlb_addr b;
	uint8_t fam;

	return xlb_addr_pton(text, &b, &fam) == 0 && xlb_addr_eq(a, &b);
}

/* ---- tests -------------------------------------------------------------- */

static void test_tcp_handshake_v4(void)
{
	struct frame f;
	struct xlb_pkt p;
	char backend[XLB_ADDRSTRLEN];
	const uint8_t *bmac;

	tcp_seq = 1000;
	tcp_ack = 0;
	build(&f, AF_INET, "198.18.0.10", 40000, "198.18.0.100", 80, IPPROTO_TCP, XLB_TCP_SYN, "");
	CU_ASSERT_EQUAL_FATAL(run(&f, &p), XLB_VERDICT_TX);
	CU_ASSERT(addr_is(&p.tuple.dst, "198.18.2.2") || addr_is(&p.tuple.dst, "198.18.2.3"));
	CU_ASSERT_EQUAL(ntohs(p.tuple.dport), 8080);
	CU_ASSERT(addr_is(&p.tuple.src, "198.18.0.10"));
	CU_ASSERT_EQUAL(ntohs(p.tuple.sport), 40000);
	bmac = addr_is(&p.tuple.dst, "198.18.2.2") ? b1_mac : b2_mac;
	CU_ASSERT_EQUAL(memcmp(f.b, bmac, 6), 0);
	CU_ASSERT_EQUAL(memcmp(f.b + 6, wire_mac, 6), 0);
	assert_checksums_ok(&p);
	xlb_addr_ntop(&p.tuple.dst, AF_INET, backend, sizeof(backend));

	/* The backend's SYN-ACK leaves from the VIP, to the client's MAC. */
	tcp_seq = 5000;
	tcp_ack = 1001;
	build(&f, AF_INET, backend, 8080, "198.18.0.10", 40000, IPPROTO_TCP,
	      XLB_TCP_SYN | XLB_TCP_ACK, "");
	CU_ASSERT_EQUAL_FATAL(run(&f, &p), XLB_VERDICT_TX);
	CU_ASSERT(addr_is(&p.tuple.src, "198.18.0.100"));
	CU_ASSERT_EQUAL(ntohs(p.tuple.sport), 80);
	CU_ASSERT(addr_is(&p.tuple.dst, "198.18.0.10"));
	CU_ASSERT_EQUAL(memcmp(f.b, client_mac, 6), 0);
	assert_checksums_ok(&p);

	/* The rest of the connection sticks to the same backend. */
	tcp_seq = 1001;
	tcp_ack = 5001;
	for (int i = 0; i < 5; i++) {
		build(&f, AF_INET, "198.18.0.10", 40000, "198.18.0.100", 80, IPPROTO_TCP,
		      XLB_TCP_ACK, "GET / HTTP/1.0\r\n\r\n");
		tcp_seq += 18;
		CU_ASSERT_EQUAL_FATAL(run(&f, &p), XLB_VERDICT_TX);
		CU_ASSERT(addr_is(&p.tuple.dst, backend));
		assert_checksums_ok(&p);
	}
}

static void test_spread_over_backends(void)
{
	int hits[2] = { 0, 0 };
	struct frame f;
	struct xlb_pkt p;

	tcp_seq = 1000;
	tcp_ack = 0;
	for (int i = 0; i < 200; i++) {
		build(&f, AF_INET, "198.18.0.10", (uint16_t)(41000 + i), "198.18.0.100", 80,
		      IPPROTO_TCP, XLB_TCP_SYN, "");
		CU_ASSERT_EQUAL_FATAL(run(&f, &p), XLB_VERDICT_TX);
		hits[addr_is(&p.tuple.dst, "198.18.2.3")]++;
	}
	/* Equal weights: 200 connections, each backend far from 0 or 200. */
	CU_ASSERT(hits[0] > 60 && hits[1] > 60);
}

static void test_udp_v4(void)
{
	struct frame f;
	struct xlb_pkt p;

	build(&f, AF_INET, "198.18.0.10", 5000, "198.18.0.100", 53, IPPROTO_UDP, 0, "query");
	CU_ASSERT_EQUAL_FATAL(run(&f, &p), XLB_VERDICT_TX);
	CU_ASSERT(addr_is(&p.tuple.dst, "198.18.2.2"));
	CU_ASSERT_EQUAL(ntohs(p.tuple.dport), 5353);
	assert_checksums_ok(&p);

	build(&f, AF_INET, "198.18.2.2", 5353, "198.18.0.10", 5000, IPPROTO_UDP, 0, "answer");
	CU_ASSERT_EQUAL_FATAL(run(&f, &p), XLB_VERDICT_TX);
	CU_ASSERT(addr_is(&p.tuple.src, "198.18.0.100"));
	CU_ASSERT_EQUAL(ntohs(p.tuple.sport), 53);
	assert_checksums_ok(&p);
}

static void test_tcp_v6(void)
{
	struct frame f;
	struct xlb_pkt p;

	tcp_seq = 1000;
	tcp_ack = 0;
	build(&f, AF_INET6, "2001:2::10", 40000, "2001:2::100", 80, IPPROTO_TCP, XLB_TCP_SYN, "");
	CU_ASSERT_EQUAL_FATAL(run(&f, &p), XLB_VERDICT_TX);
	CU_ASSERT(addr_is(&p.tuple.dst, "2001:2:0:2::2"));
	CU_ASSERT_EQUAL(memcmp(f.b, b1_mac, 6), 0);
	assert_checksums_ok(&p);

	tcp_seq = 5000;
	tcp_ack = 1001;
	build(&f, AF_INET6, "2001:2:0:2::2", 8080, "2001:2::10", 40000, IPPROTO_TCP,
	      XLB_TCP_SYN | XLB_TCP_ACK, "");
	CU_ASSERT_EQUAL_FATAL(run(&f, &p), XLB_VERDICT_TX);
	CU_ASSERT(addr_is(&p.tuple.src, "2001:2::100"));
	CU_ASSERT_EQUAL(memcmp(f.b, client_mac, 6), 0);
	assert_checksums_ok(&p);
}

/* What a sender with transmit checksum offload puts in the field: the
 * pseudo-header's sum, folded, not complemented (CHECKSUM_PARTIAL). */
static void make_partial(struct frame *f)
{
	struct xlb_pkt p;
	uint16_t c;

	CU_ASSERT_EQUAL_FATAL(xlb_pkt_parse(&p, f->b, f->len), XLB_PARSE_OK);
	c = (uint16_t)xlb_csum_pseudo(p.tuple.family, p.data + p.l3_off, p.tuple.proto, p.l4_len);
	memcpy(p.data + p.l4_off + (p.tuple.proto == IPPROTO_TCP ? 16 : 6), &c, 2);
	CU_ASSERT(xlb_csum_is_partial(&p));
}

/* Partial checksums from either end leave complete, NATed both ways, TCP
 * and UDP, IPv4 and IPv6; complete ones are not touched beyond the
 * incremental update (the counter stays). */
static void test_partial_checksums(void)
{
	static const struct {
		int family;
		const char *client, *vip, *b1;
	} fam[] = {
		{ AF_INET, "198.18.0.10", "198.18.0.100", "198.18.2.2" },
		{ AF_INET6, "2001:2::10", "2001:2::100", "2001:2:0:2::2" },
	};
	struct frame f;
	struct xlb_pkt p;
	uint64_t before;
	char backend[XLB_ADDRSTRLEN];

	for (size_t i = 0; i < sizeof(fam) / sizeof(fam[0]); i++) {
		int af = fam[i].family;

		/* TCP: a partial SYN, the backend's partial SYN-ACK, a partial
		 * data segment, then a complete one. */
		tcp_seq = 7000;
		tcp_ack = 0;
		build(&f, af, fam[i].client, 42000, fam[i].vip, 80, IPPROTO_TCP, XLB_TCP_SYN, "");
		make_partial(&f);
		before = w->stats.csum_completed;
		CU_ASSERT_EQUAL_FATAL(run(&f, &p), XLB_VERDICT_TX);
		CU_ASSERT_EQUAL(w->stats.csum_completed, before + 1);
		CU_ASSERT_EQUAL(ntohs(p.tuple.dport), 8080);
		assert_checksums_ok(&p);
		xlb_addr_ntop(&p.tuple.dst, (uint8_t)af, backend, sizeof(backend));

		tcp_seq = 9000;
		tcp_ack = 7001;
		build(&f, af, backend, 8080, fam[i].client, 42000, IPPROTO_TCP,
		      XLB_TCP_SYN | XLB_TCP_ACK, "");
		make_partial(&f);
		CU_ASSERT_EQUAL_FATAL(run(&f, &p), XLB_VERDICT_TX);
		CU_ASSERT_EQUAL(w->stats.csum_completed, before + 2);
		CU_ASSERT(addr_is(&p.tuple.src, fam[i].vip));
		assert_checksums_ok(&p);

		tcp_seq = 7001;
		tcp_ack = 9001;
		build(&f, af, fam[i].client, 42000, fam[i].vip, 80, IPPROTO_TCP,
		      XLB_TCP_ACK | XLB_TCP_PSH, "GET / HTTP/1.0\r\n\r\n!");
		make_partial(&f);
		CU_ASSERT_EQUAL_FATAL(run(&f, &p), XLB_VERDICT_TX);
		CU_ASSERT_EQUAL(w->stats.csum_completed, before + 3);
		assert_checksums_ok(&p);

		tcp_seq += 19;
		build(&f, af, fam[i].client, 42000, fam[i].vip, 80, IPPROTO_TCP, XLB_TCP_ACK, "");
		CU_ASSERT_EQUAL_FATAL(run(&f, &p), XLB_VERDICT_TX);
		CU_ASSERT_EQUAL(w->stats.csum_completed, before + 3);
		assert_checksums_ok(&p);

		/* UDP, odd length: the query and the answer. */
		build(&f, af, fam[i].client, 5100, fam[i].vip, 53, IPPROTO_UDP, 0, "odd-query");
		make_partial(&f);
		CU_ASSERT_EQUAL_FATAL(run(&f, &p), XLB_VERDICT_TX);
		CU_ASSERT_EQUAL(w->stats.csum_completed, before + 4);
		CU_ASSERT(addr_is(&p.tuple.dst, fam[i].b1));
		assert_checksums_ok(&p);
		build(&f, af, fam[i].b1, 5353, fam[i].client, 5100, IPPROTO_UDP, 0, "answer");
		make_partial(&f);
		CU_ASSERT_EQUAL_FATAL(run(&f, &p), XLB_VERDICT_TX);
		CU_ASSERT_EQUAL(w->stats.csum_completed, before + 5);
		CU_ASSERT(addr_is(&p.tuple.src, fam[i].vip));
		assert_checksums_ok(&p);
	}

	/* notrack forwards without a flow: completed there too. */
	build(&f, AF_INET, "198.18.0.10", 5200, "198.18.0.103", 53, IPPROTO_UDP, 0, "q");
	make_partial(&f);
	before = w->stats.csum_completed;
	CU_ASSERT_EQUAL_FATAL(run(&f, &p), XLB_VERDICT_TX);
	CU_ASSERT_EQUAL(w->stats.csum_completed, before + 1);
	assert_checksums_ok(&p);
}

static void test_drops(void)
{
	uint64_t before;
	struct frame f;

	/* Return traffic of no connection we know. */
	before = w->stats.drop[XLB_DROP_NO_FLOW];
	build(&f, AF_INET, "198.18.2.2", 8080, "198.18.0.10", 1234, IPPROTO_TCP, XLB_TCP_ACK, "");
	CU_ASSERT_EQUAL(run(&f, NULL), XLB_VERDICT_DROP);
	CU_ASSERT_EQUAL(w->stats.drop[XLB_DROP_NO_FLOW], before + 1);

	/* A service whose only backend has weight 0. */
	before = w->stats.drop[XLB_DROP_NO_BACKEND];
	build(&f, AF_INET, "198.18.0.10", 40001, "198.18.0.101", 80, IPPROTO_TCP, XLB_TCP_SYN, "");
	CU_ASSERT_EQUAL(run(&f, NULL), XLB_VERDICT_DROP);
	CU_ASSERT_EQUAL(w->stats.drop[XLB_DROP_NO_BACKEND], before + 1);

	/* A bare RST to the VIP creates nothing. */
	before = w->stats.drop[XLB_DROP_INVALID];
	build(&f, AF_INET, "198.18.0.10", 40002, "198.18.0.100", 80, IPPROTO_TCP, XLB_TCP_RST, "");
	CU_ASSERT_EQUAL(run(&f, NULL), XLB_VERDICT_DROP);
	CU_ASSERT_EQUAL(w->stats.drop[XLB_DROP_INVALID], before + 1);
}

static void test_unresolved_neighbour_holds(void)
{
	struct frame f;
	struct xlb_buf b;

	/* A client whose MAC nobody knows yet: the SYN-ACK must wait, never
	 * go to a guessed address. */
	build(&f, AF_INET, "198.18.0.77", 40000, "198.18.0.100", 53, IPPROTO_UDP, 0, "q");
	CU_ASSERT_EQUAL_FATAL(run(&f, NULL), XLB_VERDICT_TX);
	build(&f, AF_INET, "198.18.2.2", 5353, "198.18.0.77", 40000, IPPROTO_UDP, 0, "a");
	b = (struct xlb_buf){ .data = f.b, .len = f.len };
	xlb_worker_handle_burst(w, &b, 1, xlb_now_ns());
	CU_ASSERT_EQUAL(b.verdict, XLB_VERDICT_HOLD);
	CU_ASSERT(addr_is(&b.nh, "198.18.0.77"));
}

static void test_reject(void)
{
	struct frame f;
	struct xlb_pkt p;
	struct xlb_buf b;

	/* TCP to a service with no backend: a RST from the VIP. */
	tcp_seq = 7000;
	tcp_ack = 0;
	build(&f, AF_INET, "198.18.0.10", 40100, "198.18.0.102", 80, IPPROTO_TCP, XLB_TCP_SYN, "");
	CU_ASSERT_EQUAL_FATAL(run(&f, &p), XLB_VERDICT_TX);
	CU_ASSERT(addr_is(&p.tuple.src, "198.18.0.102"));
	CU_ASSERT(addr_is(&p.tuple.dst, "198.18.0.10"));
	CU_ASSERT_EQUAL(ntohs(p.tuple.sport), 80);
	CU_ASSERT_EQUAL(ntohs(p.tuple.dport), 40100);
	CU_ASSERT(p.tcp_flags & XLB_TCP_RST);
	CU_ASSERT_EQUAL(memcmp(f.b, client_mac, 6), 0);
	assert_checksums_ok(&p);

	/* A partial checksum (an offloading sender) is trusted as the
	 * kernel's nf_reject trusts CHECKSUM_PARTIAL; a wrong one is not
	 * answered. */
	build(&f, AF_INET, "198.18.0.10", 40101, "198.18.0.102", 80, IPPROTO_TCP, XLB_TCP_SYN, "");
	make_partial(&f);
	CU_ASSERT_EQUAL_FATAL(run(&f, &p), XLB_VERDICT_TX);
	CU_ASSERT(p.tcp_flags & XLB_TCP_RST);
	assert_checksums_ok(&p);
	build(&f, AF_INET, "198.18.0.10", 40102, "198.18.0.102", 80, IPPROTO_TCP, XLB_TCP_SYN, "");
	f.b[14 + 20 + 16] ^= 0x5a;
	CU_ASSERT_EQUAL(run(&f, NULL), XLB_VERDICT_DROP);

	/* UDP: an ICMP port unreachable from the VIP, quoting the datagram;
	 * the frame grows, within its capacity. */
	build(&f, AF_INET, "198.18.0.10", 5001, "198.18.0.102", 53, IPPROTO_UDP, 0, "q");
	b = (struct xlb_buf){ .data = f.b, .len = f.len, .cap = sizeof(f.b) };
	rcu_quiescent_state();
	xlb_worker_handle_burst(w, &b, 1, xlb_now_ns());
	CU_ASSERT_EQUAL_FATAL(b.verdict, XLB_VERDICT_TX);
	CU_ASSERT_EQUAL_FATAL(xlb_pkt_parse(&p, f.b, b.len), XLB_PARSE_OK);
	CU_ASSERT_EQUAL(p.tuple.proto, IPPROTO_ICMP);
	CU_ASSERT_EQUAL(p.icmp_type, 3);
	CU_ASSERT_EQUAL(p.icmp_code, 3);
	CU_ASSERT(addr_is(&p.tuple.src, "198.18.0.102"));
	CU_ASSERT(addr_is(&p.tuple.dst, "198.18.0.10"));
	CU_ASSERT(w->stats.rejected >= 2);

	/* A flood is answered only up to the rate limit (burst 50, then
	 * 1000/s): the rest is dropped and counted, never amplified. */
	{
		uint64_t rejected = w->stats.rejected, limited = w->stats.reject_limited;
		/* All at one instant, well after the last reject: the bucket is
		 * full (50) and nothing refills it, whatever the machine's speed. */
		uint64_t at = xlb_now_ns() + 10000000000ull;
		unsigned tx = 0;

		for (int i = 0; i < 200; i++) {
			struct xlb_buf fb;

			build(&f, AF_INET, "198.18.0.10", (uint16_t)(42000 + i), "198.18.0.102", 80,
			      IPPROTO_TCP, XLB_TCP_SYN, "");
			fb = (struct xlb_buf){ .data = f.b, .len = f.len, .cap = sizeof(f.b) };
			rcu_quiescent_state();
			xlb_worker_handle_burst(w, &fb, 1, at);
			tx += fb.verdict == XLB_VERDICT_TX;
		}
		CU_ASSERT_EQUAL(tx, 50);
		CU_ASSERT_EQUAL(w->stats.rejected - rejected, tx);
		CU_ASSERT_EQUAL(w->stats.reject_limited - limited, 200 - tx);
	}
}

static void test_notrack(void)
{
	uint32_t count = xlb_ct_count(dp.ct);
	uint64_t before = w->stats.untracked;
	struct frame f;
	struct xlb_pkt p;

	build(&f, AF_INET, "198.18.0.10", 5002, "198.18.0.103", 53, IPPROTO_UDP, 0, "q");
	CU_ASSERT_EQUAL_FATAL(run(&f, &p), XLB_VERDICT_TX);
	CU_ASSERT(addr_is(&p.tuple.dst, "198.18.2.3"));
	CU_ASSERT_EQUAL(ntohs(p.tuple.dport), 5354);
	assert_checksums_ok(&p);
	build(&f, AF_INET, "198.18.2.3", 5354, "198.18.0.10", 5002, IPPROTO_UDP, 0, "a");
	CU_ASSERT_EQUAL_FATAL(run(&f, &p), XLB_VERDICT_TX);
	CU_ASSERT(addr_is(&p.tuple.src, "198.18.0.103"));
	CU_ASSERT_EQUAL(ntohs(p.tuple.sport), 53);
	assert_checksums_ok(&p);
	/* Neither packet touched the table. */
	CU_ASSERT_EQUAL(xlb_ct_count(dp.ct), count);
	CU_ASSERT_EQUAL(w->stats.untracked, before + 2);

	/* A client outside notrack_clients is tracked as usual. */
	build(&f, AF_INET, "198.18.1.10", 5002, "198.18.0.103", 53, IPPROTO_UDP, 0, "q");
	CU_ASSERT_EQUAL_FATAL(run(&f, &p), XLB_VERDICT_TX);
	CU_ASSERT(addr_is(&p.tuple.dst, "198.18.2.3"));
	CU_ASSERT_EQUAL(xlb_ct_count(dp.ct), count + 1);
	CU_ASSERT_EQUAL(w->stats.untracked, before + 2);
}

static void add_vlan(struct frame *f, uint16_t vid)
{
	memmove(f->b + 16, f->b + 12, f->len - 12);
	put16(f->b + 12, 0x8100);
	put16(f->b + 14, vid);
	f->len += 4;
}

/* With zone_from_vlan, one tuple on two VLANs is two connections, and the
 * tag stays on the frame. */
static void test_vlan_zones(void)
{
	uint32_t count = xlb_ct_count(dp.ct);
	struct frame f;
	struct xlb_pkt p;

	dp.zone_from_vlan = true;
	for (uint16_t vid = 10; vid <= 20; vid += 10) {
		build(&f, AF_INET, "198.18.0.10", 5100, "198.18.0.100", 53, IPPROTO_UDP, 0, "q");
		add_vlan(&f, vid);
		CU_ASSERT_EQUAL_FATAL(run(&f, &p), XLB_VERDICT_TX);
		CU_ASSERT(p.has_vlan && (p.vlan_tci & 0xfff) == vid);
		CU_ASSERT(addr_is(&p.tuple.dst, "198.18.2.2"));
	}
	CU_ASSERT_EQUAL(xlb_ct_count(dp.ct), count + 2);
	dp.zone_from_vlan = false;
}

/* A router on the client side says a reply (VIP -> client) was too big:
 * the error is translated towards the backend, which sent that reply. */
static void test_related_icmp(void)
{
	struct frame f, err;
	struct xlb_pkt p;
	uint8_t *ip, *icmp;
	uint32_t quote_len;
	uint16_t c;

	build(&f, AF_INET, "198.18.0.10", 5003, "198.18.0.100", 53, IPPROTO_UDP, 0, "q");
	CU_ASSERT_EQUAL_FATAL(run(&f, &p), XLB_VERDICT_TX);
	/* The reply as it left xlb: VIP:53 -> client:5003. */
	build(&f, AF_INET, "198.18.0.100", 53, "198.18.0.10", 5003, IPPROTO_UDP, 0, "answer");
	quote_len = f.len - 14;
	memset(&err, 0, sizeof(err));
	memcpy(err.b, wire_mac, 6);
	memcpy(err.b + 6, client_mac, 6);
	put16(err.b + 12, 0x0800);
	ip = err.b + 14;
	ip[0] = 0x45;
	put16(ip + 2, (uint16_t)(20 + 8 + quote_len));
	ip[8] = 64;
	ip[9] = IPPROTO_ICMP;
	inet_pton(AF_INET, "198.18.1.1", ip + 12);        /* the router */
	inet_pton(AF_INET, "198.18.0.100", ip + 16);      /* to the VIP */
	c = xlb_csum_ipv4_header(ip, 20);
	memcpy(ip + 10, &c, 2);
	icmp = ip + 20;
	icmp[0] = 3;             /* unreachable */
	icmp[1] = 4;             /* fragmentation needed */
	put16(icmp + 6, 1280);
	memcpy(icmp + 8, f.b + 14, quote_len);
	err.len = 14 + 20 + 8 + quote_len;
	{
		uint32_t sum = 0;

		for (uint32_t i = 0; i < 8 + quote_len; i += 2)
			sum += (uint32_t)(icmp[i] << 8 | (i + 1 < 8 + quote_len ? icmp[i + 1] : 0));
		while (sum >> 16)
			sum = (sum & 0xffff) + (sum >> 16);
		put16(icmp + 2, (uint16_t)~sum);
	}
	CU_ASSERT_EQUAL_FATAL(run(&err, &p), XLB_VERDICT_TX);
	CU_ASSERT(addr_is(&p.tuple.dst, "198.18.2.2"));
	CU_ASSERT_EQUAL(memcmp(err.b, b1_mac, 6), 0);
	CU_ASSERT(w->stats.related >= 1);
}

int main(void)
{
	static const struct unit_test tests[] = {
		{ "TCP handshake through the VIP, IPv4", test_tcp_handshake_v4 },
		{ "connections spread over backends", test_spread_over_backends },
		{ "UDP request and reply", test_udp_v4 },
		{ "TCP through an IPv6 VIP", test_tcp_v6 },
		{ "partial (offloaded) checksums completed", test_partial_checksums },
		{ "drops are counted by reason", test_drops },
		{ "an unresolved neighbour holds the frame", test_unresolved_neighbour_holds },
		{ "no backend: RST and port unreachable", test_reject },
		{ "notrack: stateless both ways", test_notrack },
		{ "RELATED ICMP error translated", test_related_icmp },
		{ "VLAN ids as conntrack zones", test_vlan_zones },
	};

	if (geteuid() != 0) {
		fprintf(stderr, "test_worker: needs root for a network namespace, skipping\n");
		return 77;
	}
	return UNIT_RUN("worker", setup, teardown, tests);
}
