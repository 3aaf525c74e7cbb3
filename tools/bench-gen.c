/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * xlb-bench-gen: the traffic generator and receive counter of tools/bench.
 *
 *   xlb-bench-gen attach DEV reflect|sink|pass   attach a program of
 *                                                bench.bpf.c (native XDP)
 *   xlb-bench-gen detach DEV
 *   xlb-bench-gen run OPTIONS                    one benchmark cell
 *
 * `run` transmits TCP segments from an AF_XDP socket (copy mode, tx only)
 * on DEV, counts what comes back with bench_sink attached to the same DEV,
 * and prints one JSON object with the figures of every trial: offered and
 * delivered packets, latency percentiles from the timestamps in the
 * payloads, and the CPU the whole machine, the generator itself and the
 * load balancer's process used meanwhile.
 *
 * Flows: flow i has its own client address and port (198.19.0.0/16 or
 * 2001:2:0:100::/64, ports from 1024), is opened with a SYN during the
 * warm-up and then carries data segments whose sequence numbers follow a
 * real connection. New connections (the SYN share) use addresses and ports
 * of their own, never reused within a run.
 *
 * Every loop is bounded in time and in packets.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <net/if.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <xdp/xsk.h>

#include "bench.h"
#include "bench.skel.h"

#define NUM_FRAMES 4096u
#define FRAME_SIZE 2048u
#define RING_SIZE 2048u
#define BATCH 64u
#define MAX_FLOWS (1u << 24)
#define MAX_TRIALS 32
#define FLOW_PORT_BASE 1024u
#define SYN_PORT_BASE 32768u
#define SYN_PORT_SPAN 28000u
#define TCP_SYN_OPT_LEN 8		/* MSS + NOP + window scale */
#define WARM_WINDOW 1024		/* warm-up packets without an answer yet */

struct opts {
	const char *dev;
	uint8_t dst_mac[ETH_ALEN];
	int family;
	uint8_t dst[16];
	uint16_t dport;
	uint32_t flows;
	uint32_t size;
	double syn_share;
	int lb_pid;
	double max_secs, search_secs, fixed_secs, syn_secs;
	int search_steps;
	double fixed_rate, est_rate, loss_tol;
	uint64_t max_packets;		/* per trial */
	double background;		/* busy share before the cell, from the caller */
	const char *label;
};

struct cpu_sample {
	uint64_t busy_ns, softirq_ns, all_ns;	/* the whole machine, tick-sampled */
	uint64_t gen_ns, lb_ns, ksoftirqd_ns;	/* scheduler clock of our threads */
};

struct sink_sample {
	uint64_t cnt[XLB_BENCH_CNT_MAX];
	uint64_t hist[XLB_BENCH_HIST_BUCKETS];
};

struct trial {
	const char *kind;
	double rate;			/* asked; 0 = as fast as possible */
	double secs;			/* measured, first packet to last */
	uint64_t sent_data, sent_syn, got_data, got_synack;
	uint64_t p50_ns, p99_ns, p999_ns;
	/* The generator's own share of the latency: from a segment's time
	 * stamp until the sendto() that carries it has returned. On this
	 * path sendto() runs the node's receive side inline; when the
	 * generator is preempted in between, the wait counts here, not in
	 * the node. */
	uint64_t gen_p99_ns;
	struct cpu_sample cpu;
};

struct gen {
	struct opts o;
	int ifindex;
	uint8_t src_mac[ETH_ALEN];
	struct bench_bpf *skel;
	bool sink_attached;
	uint8_t *area;
	struct xsk_umem *umem;
	struct xsk_socket *xsk;
	struct xsk_ring_prod fq, tx;
	struct xsk_ring_cons cq;
	int fd;
	uint64_t free_frames[NUM_FRAMES];
	uint32_t n_free, outstanding;
	uint64_t gen_hist[XLB_BENCH_HIST_BUCKETS];     /* see trial.gen_p99_ns */
	uint32_t *flow_k;		/* data segments sent per flow */
	uint32_t next_flow;
	uint64_t next_conn;		/* new connections opened so far */
	double syn_acc;
	uint32_t payload_len;
	int ncpu;
	int ksoftirqd[64];		/* pids of the ksoftirqd threads */
	int n_ksoftirqd;
	struct trial trials[MAX_TRIALS];
	int n_trials;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { .tv_sec = ns / 1000000000ull, .tv_nsec = ns % 1000000000ull };

	nanosleep(&ts, NULL);
}

static uint32_t mix32(uint32_t x)
{
	x ^= x >> 16;
	x *= 0x7feb352du;
	x ^= x >> 15;
	x *= 0x846ca68bu;
	x ^= x >> 16;
	return x;
}

/* ------------------------------------------------------------ checksums */

static uint32_t sum16(const void *p, size_t len, uint32_t s)
{
	const uint8_t *b = p;

	for (; len > 1; len -= 2, b += 2)
		s += (uint32_t)b[0] << 8 | b[1];
	if (len)
		s += (uint32_t)b[0] << 8;
	return s;
}

static uint16_t fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

/* ------------------------------------------------------------ frames */

/* Client address and port of flow i (warm-up flows) or of new connection
 * c (SYN share): disjoint port ranges, so the two never meet. */
static void client_of(const struct gen *g, uint64_t idx, bool conn, uint8_t addr[16],
		      uint16_t *port)
{
	uint32_t host = (uint32_t)(idx & 0xffff);

	if (conn)
		*port = (uint16_t)(SYN_PORT_BASE + (idx >> 16) % SYN_PORT_SPAN);
	else
		*port = (uint16_t)(FLOW_PORT_BASE + (idx >> 16));
	memset(addr, 0, 16);
	if (g->o.family == 4) {
		addr[0] = 198;
		addr[1] = 19;
		addr[2] = (uint8_t)(host >> 8);
		addr[3] = (uint8_t)host;
	} else {
		static const uint8_t prefix[8] = { 0x20, 0x01, 0x00, 0x02, 0x00, 0x00, 0x01, 0x00 };

		memcpy(addr, prefix, 8);
		addr[14] = (uint8_t)(host >> 8);
		addr[15] = (uint8_t)host;
	}
}

/*
 * Write one segment into `f`; returns its length. SYN: seq is the client's
 * initial sequence number and the ack field carries the server's, which the
 * reflector uses for its SYN-ACK. Data segment k: seq = isn_c + 1 + k * len,
 * ack = isn_s + 1 (see bench_reflect()).
 */
static uint32_t build(struct gen *g, uint8_t *f, uint64_t idx, bool conn, bool syn, uint32_t k)
{
	uint32_t ip_len = g->o.family == 4 ? sizeof(struct iphdr) : sizeof(struct ipv6hdr);
	uint32_t tcp_len = sizeof(struct tcphdr) + (syn ? TCP_SYN_OPT_LEN : 0);
	uint32_t pay = syn ? 0 : g->payload_len;
	uint32_t l4_len = tcp_len + pay;
	uint32_t frame_len = ETH_HLEN + ip_len + l4_len;
	uint32_t seed = (uint32_t)idx * 2 + (conn ? 0x40000000u : 0);
	uint32_t isn_c = mix32(seed + 1), isn_s = mix32(seed + 2);
	struct ethhdr *eth = (struct ethhdr *)f;
	struct tcphdr *tcp = (struct tcphdr *)(f + ETH_HLEN + ip_len);
	uint8_t src[16];
	uint16_t sport;
	uint32_t s;

	client_of(g, idx, conn, src, &sport);
	memcpy(eth->h_dest, g->o.dst_mac, ETH_ALEN);
	memcpy(eth->h_source, g->src_mac, ETH_ALEN);
	if (g->o.family == 4) {
		struct iphdr *ip = (struct iphdr *)(eth + 1);

		eth->h_proto = htons(ETH_P_IP);
		memset(ip, 0, sizeof(*ip));
		ip->version = 4;
		ip->ihl = 5;
		ip->tot_len = htons((uint16_t)(ip_len + l4_len));
		ip->frag_off = htons(0x4000);
		ip->ttl = 64;
		ip->protocol = IPPROTO_TCP;
		memcpy(&ip->saddr, src, 4);
		memcpy(&ip->daddr, g->o.dst, 4);
		ip->check = htons(fold(sum16(ip, sizeof(*ip), 0)));
		s = sum16(&ip->saddr, 8, 0);
	} else {
		struct ipv6hdr *ip6 = (struct ipv6hdr *)(eth + 1);

		eth->h_proto = htons(ETH_P_IPV6);
		memset(ip6, 0, sizeof(*ip6));
		ip6->version = 6;
		ip6->payload_len = htons((uint16_t)l4_len);
		ip6->nexthdr = IPPROTO_TCP;
		ip6->hop_limit = 64;
		memcpy(&ip6->saddr, src, 16);
		memcpy(&ip6->daddr, g->o.dst, 16);
		s = sum16(&ip6->saddr, 32, 0);
	}
	s += IPPROTO_TCP + l4_len;

	memset(tcp, 0, tcp_len);
	tcp->source = htons(sport);
	tcp->dest = htons(g->o.dport);
	tcp->window = htons(0xffff);
	if (syn) {
		uint8_t *opt = (uint8_t *)(tcp + 1);

		tcp->seq = htonl(isn_c);
		tcp->ack_seq = htonl(isn_s);
		tcp->syn = 1;
		/* MSS 1460, window scale 7: both directions then allow 8 MiB
		 * in flight, more than any trial keeps outstanding. */
		opt[0] = 2; opt[1] = 4; opt[2] = 1460 >> 8; opt[3] = 1460 & 0xff;
		opt[4] = 1; opt[5] = 3; opt[6] = 3; opt[7] = 7;
	} else {
		struct xlb_bench_payload *pl = (struct xlb_bench_payload *)((uint8_t *)tcp + tcp_len);

		tcp->seq = htonl(isn_c + 1 + k * pay);
		tcp->ack_seq = htonl(isn_s + 1);
		tcp->ack = 1;
		tcp->psh = 1;
		pl->magic = htonl(XLB_BENCH_MAGIC);
		pl->pad = 0;
		pl->tx_ns = now_ns();
		/* The rest of the payload stays zero (UMEM frames are never
		 * written beyond the headers and this struct), so it adds
		 * nothing to the checksum. */
		s = sum16(pl, sizeof(*pl), s);
	}
	tcp->doff = (uint16_t)(tcp_len / 4);
	s = sum16(tcp, tcp_len, s);
	tcp->check = htons(fold(s));
	return frame_len < 60 ? 60 : frame_len;
}

/* ------------------------------------------------------------ AF_XDP tx */

static int xsk_setup(struct gen *g)
{
	struct xsk_umem_config ucfg = {
		.fill_size = RING_SIZE,
		.comp_size = RING_SIZE,
		.frame_size = FRAME_SIZE,
	};
	struct xsk_socket_config cfg = {
		.rx_size = 0,
		.tx_size = RING_SIZE,
		.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
		.bind_flags = XDP_COPY | XDP_USE_NEED_WAKEUP,
	};
	size_t size = (size_t)NUM_FRAMES * FRAME_SIZE;
	int err;

	g->area = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (g->area == MAP_FAILED) {
		g->area = NULL;
		return -errno;
	}
	err = xsk_umem__create(&g->umem, g->area, size, &g->fq, &g->cq, &ucfg);
	if (err)
		return err;
	err = xsk_socket__create(&g->xsk, g->o.dev, 0, g->umem, NULL, &g->tx, &cfg);
	if (err)
		return err;
	g->fd = xsk_socket__fd(g->xsk);
	for (uint32_t i = 0; i < NUM_FRAMES; i++)
		g->free_frames[g->n_free++] = (uint64_t)i * FRAME_SIZE;
	return 0;
}

static void complete(struct gen *g)
{
	uint32_t idx, n;

	if (!g->outstanding)
		return;
	n = xsk_ring_cons__peek(&g->cq, RING_SIZE, &idx);
	for (uint32_t i = 0; i < n; i++)
		g->free_frames[g->n_free++] = *xsk_ring_cons__comp_addr(&g->cq, idx + i);
	xsk_ring_cons__release(&g->cq, n);
	g->outstanding -= n;
}

/* Copy mode transmits at most 32 descriptors per sendto(): kick until the
 * ring is consumed, a bounded number of times. */
static void kick(struct gen *g)
{
	for (int i = 0; i < 64; i++) {
		uint32_t queued = g->tx.cached_prod - __atomic_load_n(g->tx.consumer, __ATOMIC_ACQUIRE);

		if (!queued)
			break;
		if (sendto(g->fd, NULL, 0, MSG_DONTWAIT, NULL, 0) < 0 && errno != EAGAIN &&
		    errno != ENOBUFS && errno != EBUSY)
			break;
	}
}

/* Histogram bucket of ns, as bench.bpf.c's bucket_of() (see bench.h). */
static uint32_t hist_bucket(uint64_t ns)
{
	uint32_t e;

	if (ns < 1024)
		return (uint32_t)(ns >> 6);
	e = 63 - (uint32_t)__builtin_clzll(ns);
	if (e > XLB_BENCH_HIST_MAX_EXP)
		return XLB_BENCH_HIST_BUCKETS - 1;
	return 16 + (e - 10) * 16 + (uint32_t)((ns >> (e - 4)) & 15);
}

/* Queue up to n segments; returns how many. */
static uint32_t send_burst(struct gen *g, uint32_t n, bool all_syn, bool warm_syn, uint64_t *syns)
{
	uint64_t t0 = now_ns();
	uint32_t idx, got;

	if (n > g->n_free)
		n = g->n_free;
	got = xsk_ring_prod__reserve(&g->tx, n, &idx);
	for (uint32_t i = 0; i < got; i++) {
		struct xdp_desc *d = xsk_ring_prod__tx_desc(&g->tx, idx + i);
		uint64_t addr = g->free_frames[--g->n_free];
		uint8_t *f = xsk_umem__get_data(g->area, addr);
		bool conn = all_syn;

		if (!conn && g->o.syn_share > 0 && !warm_syn) {
			g->syn_acc += g->o.syn_share;
			if (g->syn_acc >= 1.0) {
				g->syn_acc -= 1.0;
				conn = true;
			}
		}
		if (conn) {
			d->len = build(g, f, g->next_conn++, true, true, 0);
			(*syns)++;
		} else {
			uint32_t fl = g->next_flow;

			g->next_flow = fl + 1 == g->o.flows ? 0 : fl + 1;
			if (warm_syn) {
				d->len = build(g, f, fl, false, true, 0);
				(*syns)++;
			} else {
				d->len = build(g, f, fl, false, false, g->flow_k[fl]++);
			}
		}
		d->addr = addr;
	}
	if (got) {
		xsk_ring_prod__submit(&g->tx, got);
		g->outstanding += got;
		kick(g);
		g->gen_hist[hist_bucket(now_ns() - t0)] += got;
	}
	return got;
}

/* ------------------------------------------------------------ measuring */

static uint64_t schedstat_ns(const char *path)
{
	unsigned long long run = 0;
	FILE *f = fopen(path, "r");

	if (!f)
		return 0;
	if (fscanf(f, "%llu", &run) != 1)
		run = 0;
	fclose(f);
	return run;
}

/* Time on CPU of every thread of pid (scheduler clock, ns): precise,
 * unlike the tick-sampled utime/stime. */
static uint64_t process_ns(int pid)
{
	char tasks[64], path[384];
	struct dirent *de;
	uint64_t sum = 0;
	DIR *d;

	snprintf(tasks, sizeof(tasks), "/proc/%d/task", pid);
	d = opendir(tasks);
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s/schedstat", tasks, de->d_name);
		sum += schedstat_ns(path);
	}
	closedir(d);
	return sum;
}

static void cpu_sample(const struct gen *g, struct cpu_sample *c)
{
	unsigned long long v[10] = { 0 };
	long hz = sysconf(_SC_CLK_TCK);
	uint64_t tick = 1000000000ull / (uint64_t)(hz > 0 ? hz : 100);
	FILE *f = fopen("/proc/stat", "r");

	memset(c, 0, sizeof(*c));
	if (f) {
		if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
			   &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]) >= 8) {
			c->busy_ns = (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) * tick;
			c->softirq_ns = v[6] * tick;
			c->all_ns = (v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7]) * tick;
		}
		fclose(f);
	}
	c->gen_ns = schedstat_ns("/proc/thread-self/schedstat");
	for (int i = 0; i < g->n_ksoftirqd; i++) {
		char path[64];

		snprintf(path, sizeof(path), "/proc/%d/schedstat", g->ksoftirqd[i]);
		c->ksoftirqd_ns += schedstat_ns(path);
	}
	if (g->o.lb_pid > 0)
		c->lb_ns = process_ns(g->o.lb_pid);
}

static void sink_sample(const struct gen *g, struct sink_sample *s)
{
	uint64_t v[g->ncpu];
	int cfd = bpf_map__fd(g->skel->maps.counters);
	int hfd = bpf_map__fd(g->skel->maps.latency);

	memset(s, 0, sizeof(*s));
	for (uint32_t i = 0; i < XLB_BENCH_CNT_MAX; i++)
		if (!bpf_map_lookup_elem(cfd, &i, v))
			for (int c = 0; c < g->ncpu; c++)
				s->cnt[i] += v[c];
	for (uint32_t i = 0; i < XLB_BENCH_HIST_BUCKETS; i++)
		if (!bpf_map_lookup_elem(hfd, &i, v))
			for (int c = 0; c < g->ncpu; c++)
				s->hist[i] += v[c];
}

/* Middle of histogram bucket i, in ns (see bench.h). */
static uint64_t bucket_ns(uint32_t i)
{
	uint32_t e, sub;

	if (i < 16)
		return (uint64_t)i * 64 + 32;
	e = 10 + (i - 16) / 16;
	sub = (i - 16) % 16;
	return ((uint64_t)(16 + sub) << (e - 4)) + ((1ull << (e - 4)) >> 1);
}

static uint64_t percentile(const uint64_t *h, uint64_t total, double p)
{
	uint64_t want = (uint64_t)((double)total * p), seen = 0;

	if (!total)
		return 0;
	for (uint32_t i = 0; i < XLB_BENCH_HIST_BUCKETS; i++) {
		seen += h[i];
		if (seen > want)
			return bucket_ns(i);
	}
	return bucket_ns(XLB_BENCH_HIST_BUCKETS - 1);
}

/*
 * The ksoftirqd threads: softirq work (veth, the bridge, XDP, conntrack,
 * forwarding) runs either inline in the thread that sent the packet (the
 * generator, a worker's sendto()) or in them. Their time plus ours is the
 * lab's CPU, whatever other programs on the machine do meanwhile.
 */
static void find_ksoftirqd(struct gen *g)
{
	struct dirent *de;
	DIR *d = opendir("/proc");

	if (!d)
		return;
	while ((de = readdir(d)) && g->n_ksoftirqd < 64) {
		char path[300], comm[32] = "";
		FILE *f;

		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/comm", de->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(comm, sizeof(comm), f) && !strncmp(comm, "ksoftirqd/", 10))
			g->ksoftirqd[g->n_ksoftirqd++] = atoi(de->d_name);
		fclose(f);
	}
	closedir(d);
}

/* ------------------------------------------------------------ trials */

enum mode { MODE_DATA, MODE_CONNS, MODE_WARM_SYN };

/* The sink's count of one counter, summed over CPUs. */
static uint64_t sink_count(const struct gen *g, uint32_t which)
{
	uint64_t v[g->ncpu], sum = 0;

	if (!bpf_map_lookup_elem(bpf_map__fd(g->skel->maps.counters), &which, v))
		for (int c = 0; c < g->ncpu; c++)
			sum += v[c];
	return sum;
}

/*
 * Send for `secs` and at most `limit` packets at `rate` packets per second
 * (0: as fast as the socket takes them), then wait for the stragglers
 * (until the sink's counters stop moving, at most 1 s) and fill t.
 * window > 0 closes the loop: never more than `window` packets without
 * their answer at the sink, so the warm-up goes as fast as the balancer
 * establishes flows and loses none of them to overload.
 */
static void trial(struct gen *g, struct trial *t, const char *kind, double rate, double secs,
		  enum mode mode, uint64_t limit, uint32_t window)
{
	uint32_t answer = mode == MODE_DATA ? XLB_BENCH_SINK_DATA : XLB_BENCH_SINK_SYNACK;
	uint64_t answered0 = window ? sink_count(g, answer) : 0, answered = 0, progress = 0;
	struct sink_sample *a = calloc(2, sizeof(*a)), *b;
	struct cpu_sample c0, c1;
	uint64_t t0, t_end, t_last, sent = 0, syns = 0, prev;

	memset(t, 0, sizeof(*t));
	t->kind = kind;
	t->rate = rate;
	if (!a)
		return;
	b = a + 1;
	memset(g->gen_hist, 0, sizeof(g->gen_hist));
	sink_sample(g, a);
	cpu_sample(g, &c0);
	t0 = now_ns();
	t_end = t0 + (uint64_t)(secs * 1e9);
	t_last = t0;
	if (limit > g->o.max_packets)
		limit = g->o.max_packets;
	while (!stop && sent < limit) {
		uint64_t now = now_ns();
		uint32_t want = BATCH;

		if (now >= t_end)
			break;
		complete(g);
		if (rate > 0) {
			double due = (double)(now - t0) * rate / 1e9 - (double)sent;
			/* Send in bursts of at least 100 us worth of packets
			 * and sleep in between: a generator that spins would
			 * hide, as busy time, the idle time the CPU figures
			 * are made of. */
			double least = rate * 100e-6 < 1 ? 1 : rate * 100e-6;

			if (least > BATCH)
				least = BATCH;
			if (due < least) {
				sleep_ns((uint64_t)((least - due) * 1e9 / rate));
				continue;
			}
			want = due > BATCH ? BATCH : (uint32_t)due;
		}
		if (limit - sent < want)
			want = (uint32_t)(limit - sent);
		if (window) {
			if (sent - answered + want > window) {
				uint64_t now_answered = sink_count(g, answer) - answered0;

				if (now_answered > answered || !progress)
					progress = now;
				if (now_answered > answered)
					answered = now_answered;
			}
			if (sent - answered + want > window) {
				/* Lost answers would stall us: after 100 ms
				 * without an answer, count them as lost. */
				if (now - progress > 100000000) {
					answered = sent - window / 2;
					progress = now;
				}
				continue;
			}
		}
		sent += send_burst(g, want, mode == MODE_CONNS, mode == MODE_WARM_SYN, &syns);
		t_last = now;
	}
	/* Let the last frames leave and come back. */
	for (int i = 0; i < 100 && g->outstanding; i++) {
		kick(g);
		complete(g);
		if (g->outstanding)
			sleep_ns(1000000);
	}
	prev = UINT64_MAX;
	for (int i = 0; i < 20; i++) {
		uint64_t cur;

		sleep_ns(50000000);
		sink_sample(g, b);
		cur = b->cnt[XLB_BENCH_SINK_DATA] + b->cnt[XLB_BENCH_SINK_SYNACK];
		if (cur == prev)
			break;
		prev = cur;
	}
	cpu_sample(g, &c1);
	t->secs = (double)(t_last - t0) / 1e9;
	if (t->secs <= 0)
		t->secs = secs;
	t->sent_syn = syns;
	t->sent_data = sent - syns;
	t->got_data = b->cnt[XLB_BENCH_SINK_DATA] - a->cnt[XLB_BENCH_SINK_DATA];
	t->got_synack = b->cnt[XLB_BENCH_SINK_SYNACK] - a->cnt[XLB_BENCH_SINK_SYNACK];
	for (uint32_t i = 0; i < XLB_BENCH_HIST_BUCKETS; i++)
		b->hist[i] -= a->hist[i];
	t->p50_ns = percentile(b->hist, t->got_data, 0.50);
	t->p99_ns = percentile(b->hist, t->got_data, 0.99);
	t->p999_ns = percentile(b->hist, t->got_data, 0.999);
	t->gen_p99_ns = percentile(g->gen_hist, sent, 0.99);
	/* The CPU figures cover the drain wait too: every packet's work is
	 * then inside the window, and the idle tail adds no busy time. */
	t->cpu.busy_ns = c1.busy_ns - c0.busy_ns;
	t->cpu.softirq_ns = c1.softirq_ns - c0.softirq_ns;
	t->cpu.all_ns = c1.all_ns - c0.all_ns;
	t->cpu.gen_ns = c1.gen_ns - c0.gen_ns;
	t->cpu.lb_ns = c1.lb_ns - c0.lb_ns;
	t->cpu.ksoftirqd_ns = c1.ksoftirqd_ns - c0.ksoftirqd_ns;
	free(a);
}

static double loss_of(const struct trial *t)
{
	uint64_t sent = t->sent_data + t->sent_syn, got = t->got_data + t->got_synack;

	if (!sent)
		return 1.0;
	return got >= sent ? 0.0 : (double)(sent - got) / (double)sent;
}

static struct trial *new_trial(struct gen *g)
{
	if (g->n_trials == MAX_TRIALS)
		return NULL;
	return &g->trials[g->n_trials++];
}

static void print_trial(const struct trial *t, bool last)
{
	printf("    {\"kind\": \"%s\", \"rate\": %.0f, \"secs\": %.4f, \"sent_data\": %" PRIu64
	       ", \"sent_syn\": %" PRIu64 ", \"got_data\": %" PRIu64 ", \"got_synack\": %" PRIu64
	       ", \"loss\": %.6f, \"p50_ns\": %" PRIu64 ", \"p99_ns\": %" PRIu64
	       ", \"p999_ns\": %" PRIu64 ", \"gen_p99_ns\": %" PRIu64 ", \"cpu\": {\"busy_ns\": %" PRIu64
	       ", \"softirq_ns\": %" PRIu64 ", \"all_ns\": %" PRIu64 ", \"gen_ns\": %" PRIu64
	       ", \"lb_ns\": %" PRIu64 ", \"ksoftirqd_ns\": %" PRIu64 "}}%s\n",
	       t->kind, t->rate, t->secs, t->sent_data, t->sent_syn, t->got_data, t->got_synack,
	       loss_of(t), t->p50_ns, t->p99_ns, t->p999_ns, t->gen_p99_ns, t->cpu.busy_ns, t->cpu.softirq_ns,
	       t->cpu.all_ns, t->cpu.gen_ns, t->cpu.lb_ns, t->cpu.ksoftirqd_ns, last ? "" : ",");
}

static void run_cell(struct gen *g)
{
	struct trial *t, *max = NULL;
	double est = 0;

	/* Warm-up: one SYN per flow, then one data segment per flow, which
	 * completes each handshake (ESTABLISHED, ASSURED) on the way. */
	t = new_trial(g);
	trial(g, t, "warm_syn", g->o.est_rate, 60 + g->o.flows / 2000.0, MODE_WARM_SYN, g->o.flows,
	      WARM_WINDOW);
	est = t->sent_syn ? (double)t->got_synack / (double)t->sent_syn : 0;
	t = new_trial(g);
	trial(g, t, "warm_ack", g->o.est_rate, 60 + g->o.flows / 2000.0, MODE_DATA, g->o.flows,
	      WARM_WINDOW);

	if (g->o.max_secs > 0) {
		max = new_trial(g);
		trial(g, max, "max", 0, g->o.max_secs, MODE_DATA, UINT64_MAX, 0);
	}
	if (max && g->o.search_steps > 0 && g->o.search_secs > 0) {
		double lo = 0, hi = (double)max->sent_data / max->secs;
		double r = (double)max->got_data / max->secs;

		/* The highest offered rate without loss, by bisection between
		 * nothing and the maximum offered rate; the first try is what
		 * the maximum load delivered. */
		for (int i = 0; i < g->o.search_steps && !stop; i++) {
			t = new_trial(g);
			if (!t)
				break;
			trial(g, t, "search", r, g->o.search_secs, MODE_DATA, UINT64_MAX, 0);
			if (loss_of(t) <= g->o.loss_tol)
				lo = r;
			else
				hi = r;
			r = (lo + hi) / 2;
		}
	}
	if (g->o.fixed_rate > 0 && g->o.fixed_secs > 0 && (t = new_trial(g)))
		trial(g, t, "fixed", g->o.fixed_rate, g->o.fixed_secs, MODE_DATA, UINT64_MAX, 0);
	if (g->o.syn_secs > 0 && (t = new_trial(g)))
		trial(g, t, "conns", 0, g->o.syn_secs, MODE_CONNS, UINT64_MAX, 0);

	printf("{\"label\": \"%s\", \"family\": %d, \"flows\": %u, \"size\": %u, "
	       "\"syn_share\": %.4f, \"loss_tol\": %.6f, \"established\": %.6f, "
	       "\"background_busy\": %.4f, \"ncpu\": %d, \"trials\": [\n",
	       g->o.label, g->o.family, g->o.flows, g->o.size, g->o.syn_share, g->o.loss_tol, est,
	       g->o.background, g->ncpu);
	for (int i = 0; i < g->n_trials; i++)
		print_trial(&g->trials[i], i + 1 == g->n_trials);
	printf("]}\n");
	fflush(stdout);
}

/* ------------------------------------------------------------ XDP attach */

static int attach(const char *dev, const char *which)
{
	struct bench_bpf *skel;
	struct bpf_program *prog;
	int ifindex = (int)if_nametoindex(dev), err;

	if (!ifindex) {
		fprintf(stderr, "xlb-bench-gen: no interface %s\n", dev);
		return 1;
	}
	skel = bench_bpf__open_and_load();
	if (!skel) {
		fprintf(stderr, "xlb-bench-gen: cannot load bench.bpf.o: %s\n", strerror(errno));
		return 1;
	}
	if (!strcmp(which, "reflect"))
		prog = skel->progs.bench_reflect;
	else if (!strcmp(which, "sink"))
		prog = skel->progs.bench_sink;
	else if (!strcmp(which, "pass"))
		prog = skel->progs.bench_pass;
	else {
		fprintf(stderr, "xlb-bench-gen: attach: want reflect, sink or pass, not '%s'\n", which);
		bench_bpf__destroy(skel);
		return 2;
	}
	/* Netlink attach, not a bpf_link: the program stays after we exit,
	 * until `detach` or the namespace goes. */
	err = bpf_xdp_attach(ifindex, bpf_program__fd(prog), XDP_FLAGS_DRV_MODE, NULL);
	bench_bpf__destroy(skel);
	if (err) {
		fprintf(stderr, "xlb-bench-gen: cannot attach %s to %s: %s\n", which, dev,
			strerror(-err));
		return 1;
	}
	return 0;
}

static int detach(const char *dev)
{
	int ifindex = (int)if_nametoindex(dev);

	if (!ifindex)
		return 1;
	return bpf_xdp_detach(ifindex, XDP_FLAGS_DRV_MODE, NULL) ? 1 : 0;
}

/* ------------------------------------------------------------ main */

static void usage(FILE *out)
{
	fprintf(out,
		"usage: xlb-bench-gen attach DEV reflect|sink|pass\n"
		"       xlb-bench-gen detach DEV\n"
		"       xlb-bench-gen run --dev DEV --dst-mac MAC --dst ADDR [options]\n"
		"options of run (defaults in brackets):\n"
		"  --dport PORT        destination port [80]\n"
		"  --flows N           established flows, 1..%u [1000]\n"
		"  --size BYTES        frame size of data segments, without FCS [smallest: 66 IPv4, 86 IPv6]\n"
		"  --syn-share F       share of new connections (SYNs) in data trials, 0..1 [0]\n"
		"  --est-rate PPS      highest warm-up rate (SYN, then first data per flow;\n"
		"                      at most 1024 unanswered) [200000]\n"
		"  --max-secs S        trial at maximum load [2]\n"
		"  --search-steps N    bisection steps for the no-loss rate [6]\n"
		"  --search-secs S     length of each step [1]\n"
		"  --loss-tol F        loss still counted as none [0.001]\n"
		"  --fixed-rate PPS    rate of the latency/CPU trial [20000]\n"
		"  --fixed-secs S      its length [2]\n"
		"  --syn-secs S        trial of new connections only, at maximum load [2]\n"
		"  --max-packets N     bound of every trial [50000000]\n"
		"  --lb-pid PID        the load balancer's process, for its CPU time\n"
		"  --label TEXT        copied into the JSON\n"
		"  --background F      busy share of the machine before the cell, copied\n",
		MAX_FLOWS);
}

static int parse_mac(const char *s, uint8_t mac[ETH_ALEN])
{
	unsigned v[ETH_ALEN];

	if (sscanf(s, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6)
		return -1;
	for (int i = 0; i < ETH_ALEN; i++)
		mac[i] = (uint8_t)v[i];
	return 0;
}

static int read_mac(const char *dev, uint8_t mac[ETH_ALEN])
{
	char path[128], line[64];
	FILE *f;
	int err = -1;

	snprintf(path, sizeof(path), "/sys/class/net/%s/address", dev);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fgets(line, sizeof(line), f))
		err = parse_mac(line, mac);
	fclose(f);
	return err;
}

static int parse_args(struct opts *o, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "dev", required_argument, NULL, 'd' },
		{ "dst-mac", required_argument, NULL, 'm' },
		{ "dst", required_argument, NULL, 'a' },
		{ "dport", required_argument, NULL, 'p' },
		{ "flows", required_argument, NULL, 'f' },
		{ "size", required_argument, NULL, 's' },
		{ "syn-share", required_argument, NULL, 'y' },
		{ "est-rate", required_argument, NULL, 'e' },
		{ "max-secs", required_argument, NULL, 'M' },
		{ "search-steps", required_argument, NULL, 'n' },
		{ "search-secs", required_argument, NULL, 'S' },
		{ "loss-tol", required_argument, NULL, 'l' },
		{ "fixed-rate", required_argument, NULL, 'r' },
		{ "fixed-secs", required_argument, NULL, 'F' },
		{ "syn-secs", required_argument, NULL, 'Y' },
		{ "max-packets", required_argument, NULL, 'P' },
		{ "lb-pid", required_argument, NULL, 'L' },
		{ "label", required_argument, NULL, 'T' },
		{ "background", required_argument, NULL, 'B' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	bool have_mac = false, have_dst = false;
	int c;

	*o = (struct opts){
		.dport = 80, .flows = 1000, .est_rate = 200000, .max_secs = 2, .search_steps = 6,
		.search_secs = 1, .loss_tol = 0.001, .fixed_rate = 20000, .fixed_secs = 2,
		.syn_secs = 2, .max_packets = 50000000, .label = "",
	};
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'd': o->dev = optarg; break;
		case 'm':
			if (parse_mac(optarg, o->dst_mac))
				goto bad;
			have_mac = true;
			break;
		case 'a':
			if (inet_pton(AF_INET, optarg, o->dst) == 1)
				o->family = 4;
			else if (inet_pton(AF_INET6, optarg, o->dst) == 1)
				o->family = 6;
			else
				goto bad;
			have_dst = true;
			break;
		case 'p': o->dport = (uint16_t)atoi(optarg); break;
		case 'f': o->flows = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 's': o->size = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'y': o->syn_share = atof(optarg); break;
		case 'e': o->est_rate = atof(optarg); break;
		case 'M': o->max_secs = atof(optarg); break;
		case 'n': o->search_steps = atoi(optarg); break;
		case 'S': o->search_secs = atof(optarg); break;
		case 'l': o->loss_tol = atof(optarg); break;
		case 'r': o->fixed_rate = atof(optarg); break;
		case 'F': o->fixed_secs = atof(optarg); break;
		case 'Y': o->syn_secs = atof(optarg); break;
		case 'P': o->max_packets = strtoull(optarg, NULL, 0); break;
		case 'L': o->lb_pid = atoi(optarg); break;
		case 'T': o->label = optarg; break;
		case 'B': o->background = atof(optarg); break;
		case 'h': usage(stdout); exit(0);
		default: goto bad;
		}
	}
	if (!o->dev || !have_mac || !have_dst || !o->flows || o->flows > MAX_FLOWS ||
	    o->syn_share < 0 || o->syn_share > 1 || o->est_rate <= 0 || o->max_secs > 600 ||
	    o->search_secs > 600 || o->fixed_secs > 600 || o->syn_secs > 600 ||
	    o->search_steps > MAX_TRIALS - 6 || !o->max_packets)
		goto bad;
	return 0;
bad:
	usage(stderr);
	return -1;
}

int main(int argc, char **argv)
{
	struct gen *g;
	uint32_t hdr;
	int err, rc = 1;

	if (argc >= 4 && !strcmp(argv[1], "attach"))
		return attach(argv[2], argv[3]);
	if (argc >= 3 && !strcmp(argv[1], "detach"))
		return detach(argv[2]);
	if (argc < 2 || strcmp(argv[1], "run")) {
		usage(stderr);
		return 2;
	}
	g = calloc(1, sizeof(*g));
	if (!g)
		return 1;
	if (parse_args(&g->o, argc - 1, argv + 1))
		return 2;
	hdr = ETH_HLEN + (g->o.family == 4 ? 20 : 40) + 20;
	if (!g->o.size)
		g->o.size = hdr + sizeof(struct xlb_bench_payload);
	if (g->o.size < hdr + sizeof(struct xlb_bench_payload) || g->o.size > 1514) {
		fprintf(stderr, "xlb-bench-gen: --size must be %zu..1514 for this family\n",
			hdr + sizeof(struct xlb_bench_payload));
		return 2;
	}
	g->payload_len = g->o.size - hdr;
	g->ifindex = (int)if_nametoindex(g->o.dev);
	if (!g->ifindex || read_mac(g->o.dev, g->src_mac)) {
		fprintf(stderr, "xlb-bench-gen: no interface %s\n", g->o.dev);
		return 1;
	}
	g->ncpu = libbpf_num_possible_cpus();
	find_ksoftirqd(g);
	g->flow_k = calloc(g->o.flows, sizeof(*g->flow_k));
	if (!g->flow_k || g->ncpu <= 0)
		return 1;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	/* Sleeps of the pacing loop end when asked, not 50 us later. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);

	g->skel = bench_bpf__open_and_load();
	if (!g->skel) {
		fprintf(stderr, "xlb-bench-gen: cannot load bench.bpf.o: %s\n", strerror(errno));
		goto out;
	}
	err = bpf_xdp_attach(g->ifindex, bpf_program__fd(g->skel->progs.bench_sink),
			     XDP_FLAGS_DRV_MODE, NULL);
	if (err) {
		fprintf(stderr, "xlb-bench-gen: cannot attach the sink to %s: %s\n", g->o.dev,
			strerror(-err));
		goto out;
	}
	g->sink_attached = true;
	err = xsk_setup(g);
	if (err) {
		fprintf(stderr, "xlb-bench-gen: AF_XDP socket on %s: %s\n", g->o.dev, strerror(-err));
		goto out;
	}
	run_cell(g);
	rc = stop ? 130 : 0;
out:
	if (g->xsk)
		xsk_socket__delete(g->xsk);
	if (g->umem)
		xsk_umem__delete(g->umem);
	if (g->area)
		munmap(g->area, (size_t)NUM_FRAMES * FRAME_SIZE);
	if (g->sink_attached)
		bpf_xdp_detach(g->ifindex, XDP_FLAGS_DRV_MODE, NULL);
	bench_bpf__destroy(g->skel);
	free(g->flow_k);
	free(g);
	return rc;
}
