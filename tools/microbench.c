/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * microbench: the packet function, xlb_worker_handle_burst(), fed from
 * memory in bursts of 64 against flow tables of 1K to 8M connections.
 *
 * What it runs is what a worker runs: real conntrack (flow table, TCP
 * tracker), Maglev, NAT and next hops from the kernel's route and neighbour
 * tables, read over netlink in a private network namespace (hence root).
 * Only the AF_XDP socket is missing.
 *
 * Per table size, in a child process of its own (so each size starts with
 * a clean heap and its RSS delta is its own):
 *
 *  - fill: N connections through the full handshake (SYN, SYN-ACK, ACK) in
 *    bursts, so every flow is ESTABLISHED and ASSURED with its next hop
 *    cached, as in a loaded node; RSS before and after gives bytes per flow;
 *  - established: ACKs of random existing flows (uniform over the table),
 *    client -> VIP, ns per packet;
 *  - new: SYNs of tuples never seen, each creating a flow; after each
 *    burst, outside the timed region, the burst's flows are deleted, so the
 *    table stays at N (+ at most 64).
 *
 * Method: a burst's frames are rebuilt from scratch (headers, checksums)
 * into the burst buffers before each call, because NAT rewrites them in
 * place. The clock brackets only the xlb_worker_handle_burst() call; the
 * cost of a clock read pair is measured and subtracted. Each figure is the
 * median of --runs runs. --callgrind reruns each size under callgrind with
 * instrumentation started only around the measured loops and collection
 * only inside xlb_worker_handle_burst() (--toggle-collect), and reads Ir per
 * packet from the dumps. --perf counts instructions and cycles with
 * perf_event_open around the same calls, where the CPU exposes counters.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/perf_event.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <urcu-qsbr.h>

#include "config.h"
#include "flow.h"
#include "packet.h"
#include "route.h"
#include "service.h"
#include "worker.h"

/* The callgrind client requests are macros from valgrind's headers; without
 * them the benchmark still builds, and --callgrind says it cannot work. */
#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define HAVE_CALLGRIND 1
#endif
#endif
#ifndef HAVE_CALLGRIND
#define HAVE_CALLGRIND 0
#define CALLGRIND_START_INSTRUMENTATION do { } while (0)
#define CALLGRIND_STOP_INSTRUMENTATION do { } while (0)
#define CALLGRIND_DUMP_STATS_AT(s) do { (void)(s); } while (0)
#endif

#define MAX_SIZES 8
#define N_BACKENDS 8
#define FRAME_CAP 128
#define CLIENT_SEQ 1000u
#define BACKEND_SEQ 5000u

static const uint8_t if_mac[6] = { 0x02, 0xee, 0, 0, 0, 0x01 };
static const uint8_t client_mac[6] = { 0x02, 0, 0, 0, 0, 0x10 };

/* 198.18.0.100, the VIP; established clients live in 198.18.128.0/17,
 * new connections come from 198.19.0.0/16 (both routed via 198.18.0.10). */
#define VIP_BE 0xc6120064u
#define EST_NET 0xc6128000u
#define NEW_NET 0xc6130000u
#define VIP_PORT 80
#define BACKEND_PORT 8080

struct opts {
	uint32_t sizes[MAX_SIZES];
	int n_sizes;
	int runs;
	uint32_t est_packets;        /* per run */
	uint32_t new_conns;          /* per run */
	uint32_t cg_packets;         /* per phase under callgrind */
	uint32_t buckets;            /* 0: one per flow, rounded up to a power of two */
	uint64_t seed;
	const char *json;
	bool callgrind;
	bool perf;
	/* internal: run one size under callgrind, in the namespace the parent made */
	uint32_t child_callgrind;
};

struct stat3 {
	double median, min, max;
};

/* What one size's child reports to the parent (in shared memory). */
struct size_result {
	bool done;
	char error[160];
	uint32_t flows;
	uint32_t buckets;
	struct stat3 est_ns, new_ns;
	double clock_ns;             /* a clock_gettime pair, per burst */
	double prep_ns;              /* rebuilding a frame, per packet (not in est/new) */
	uint64_t rss_before, rss_after;
	double fill_s;
	uint64_t not_tx;             /* frames that did not come out TX: must stay 0 */
	uint64_t new_missing;        /* created flows not found for deletion: must stay 0 */
	/* perf_event_open */
	bool perf_ok;
	char perf_why[96];
	double est_ins, est_cyc, new_ins, new_cyc;
	/* callgrind, filled in by the parent */
	bool cg_ok;
	double est_ir, new_ir;
	char cg_file[512];
};

/* ---- frames ------------------------------------------------------------- */

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)(v >> 16)); put16(p + 2, (uint16_t)v); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static uint32_t sum16(uint32_t sum, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		sum += get16(p + i);
	if (n & 1)
		sum += (uint32_t)p[n - 1] << 8;
	return sum;
}

static uint16_t fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

#define FRAME_LEN (14 + 20 + 20)

/* An IPv4 TCP segment without payload or options, valid checksums. */
static void build_tcp(uint8_t *f, uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport,
		      uint32_t seq, uint32_t ack, uint8_t flags, uint16_t win)
{
	uint8_t *ip = f + 14, *tcp = ip + 20;
	uint32_t sum;

	memcpy(f, if_mac, 6);
	memcpy(f + 6, client_mac, 6);
	put16(f + 12, 0x0800);
	ip[0] = 0x45;
	ip[1] = 0;
	put16(ip + 2, 40);
	put16(ip + 4, 0);
	put16(ip + 6, 0x4000);
	ip[8] = 64;
	ip[9] = IPPROTO_TCP;
	put16(ip + 10, 0);
	put32(ip + 12, src);
	put32(ip + 16, dst);
	put16(ip + 10, (uint16_t)~fold(sum16(0, ip, 20)));

	put16(tcp, sport);
	put16(tcp + 2, dport);
	put32(tcp + 4, seq);
	put32(tcp + 8, ack);
	tcp[12] = 5 << 4;
	tcp[13] = flags;
	put16(tcp + 14, win);
	put16(tcp + 16, 0);
	put16(tcp + 18, 0);
	sum = sum16(0, ip + 12, 8) + IPPROTO_TCP + 20;
	put16(tcp + 16, (uint16_t)~fold(sum16(sum, tcp, 20)));
}

/* Established flow i: its client address and port. */
static uint32_t est_client(uint32_t i) { return EST_NET + (i & 0x7fff); }
static uint16_t est_port(uint32_t i) { return (uint16_t)(1024 + (i >> 15)); }
/* New connection j. */
static uint32_t new_client(uint64_t j) { return NEW_NET + (uint32_t)(j & 0xffff); }
static uint16_t new_port(uint64_t j) { return (uint16_t)(1024 + (j >> 16) % 64000); }

static bool frame_checksums_ok(const uint8_t *f)
{
	const uint8_t *ip = f + 14;
	uint32_t sum = sum16(0, ip + 12, 8) + IPPROTO_TCP + 20;

	return fold(sum16(0, ip, 20)) == 0xffff && fold(sum16(sum, ip + 20, 20)) == 0xffff;
}

/* ---- the environment ------------------------------------------------------ */

static int sh(const char *cmd)
{
	int rc = system(cmd);

	if (rc != 0)
		fprintf(stderr, "microbench: command failed (%d): %s\n", rc, cmd);
	return rc;
}

/* A namespace of our own: it disappears with the last process in it. */
static int make_namespace(void)
{
	char cmd[160];

	if (unshare(CLONE_NEWNET)) {
		perror("microbench: unshare(CLONE_NEWNET)");
		return -1;
	}
	if (sh("ip link add xb0 address 02:ee:00:00:00:01 type veth peer name xb1") ||
	    sh("ip link set xb0 up && ip link set xb1 up && ip link set lo up") ||
	    sh("ip addr add 198.18.0.1/24 dev xb0 && ip addr add 198.18.2.1/24 dev xb0") ||
	    sh("ip neigh add 198.18.0.10 lladdr 02:00:00:00:00:10 dev xb0 nud permanent") ||
	    sh("ip route add 198.18.128.0/17 via 198.18.0.10 dev xb0") ||
	    sh("ip route add 198.19.0.0/16 via 198.18.0.10 dev xb0"))
		return -1;
	for (int b = 0; b < N_BACKENDS; b++) {
		snprintf(cmd, sizeof(cmd),
			 "ip neigh add 198.18.2.%d lladdr 02:00:00:00:02:%02x dev xb0 nud permanent",
			 2 + b, 2 + b);
		if (sh(cmd))
			return -1;
	}
	return 0;
}

struct bench {
	struct xlb_config *cfg;
	struct xlb_dataplane dp;
	struct xlb_worker *w;
	uint8_t (*frames)[FRAME_CAP];
	struct xlb_buf bufs[XLB_BURST];
	uint64_t rng;
	uint64_t next_new;           /* the next new connection's number */
	int perf_fd[2];
};

static int bench_open(struct bench *b, uint32_t flows, uint32_t buckets, char *err, size_t errlen)
{
	char path[] = "/tmp/xlb-microbench-XXXXXX";
	struct xlb_services *svcs;
	char text[1024];
	int fd, len;

	/* Room for the burst of new connections on top of the filled table:
	 * a full table would measure early drop, not connection setup. */
	len = snprintf(text, sizeof(text),
		       "[global]\ninterface = xb0\n"
		       "[conntrack]\nmax = %u\nbuckets = %u\n"
		       "[service web]\nvip = 198.18.0.100\nport = %d\nprotocol = tcp\n"
		       "backends = 198.18.2.2:%d, 198.18.2.3:%d, 198.18.2.4:%d, 198.18.2.5:%d, "
		       "198.18.2.6:%d, 198.18.2.7:%d, 198.18.2.8:%d, 198.18.2.9:%d\n",
		       flows + 4096, buckets, VIP_PORT, BACKEND_PORT, BACKEND_PORT, BACKEND_PORT,
		       BACKEND_PORT, BACKEND_PORT, BACKEND_PORT, BACKEND_PORT, BACKEND_PORT);
	fd = mkstemp(path);
	if (fd < 0 || write(fd, text, (size_t)len) != len) {
		snprintf(err, errlen, "writing %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	if (xlb_config_load(path, &b->cfg, err, errlen)) {
		unlink(path);
		return -1;
	}
	unlink(path);

	rcu_register_thread();
	b->dp.ct = xlb_ct_create(&b->cfg->ct);
	b->dp.route = xlb_route_create((int)if_nametoindex("xb0"), NULL, NULL);
	svcs = xlb_services_build(b->cfg);
	if (!b->dp.ct || !b->dp.route || !svcs) {
		snprintf(err, errlen, "setting up the data plane: %s", strerror(errno));
		return -1;
	}
	xlb_route_if_mac(b->dp.route, b->dp.if_mac);
	rcu_assign_pointer(b->dp.services, svcs);
	b->w = aligned_alloc(64, sizeof(*b->w));
	b->frames = aligned_alloc(64, (size_t)XLB_BURST * FRAME_CAP);
	if (!b->w || !b->frames) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	memset(b->w, 0, sizeof(*b->w));
	b->w->dp = &b->dp;
	return 0;
}

static void bench_close(struct bench *b)
{
	free(b->w);
	free(b->frames);
	xlb_route_destroy(b->dp.route);
	rcu_thread_offline();
	rcu_barrier();
	xlb_ct_destroy(b->dp.ct);
	xlb_services_free(b->dp.services);
	xlb_config_free(b->cfg);
	xlb_backend_registry_free();
	rcu_unregister_thread();
}

static uint64_t rss_bytes(void)
{
	unsigned long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f) {
		if (fscanf(f, "%lu %lu", &size, &resident) != 2)
			resident = 0;
		fclose(f);
	}
	return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* xorshift64*: cheap, and the same stream for the same --seed. */
static inline uint64_t rnd(struct bench *b)
{
	b->rng ^= b->rng >> 12;
	b->rng ^= b->rng << 25;
	b->rng ^= b->rng >> 27;
	return b->rng * 0x2545f4914f6cdd1dull;
}

static void set_bufs(struct bench *b, unsigned n)
{
	for (unsigned k = 0; k < n; k++)
		b->bufs[k] = (struct xlb_buf){ .data = b->frames[k], .len = FRAME_LEN,
					       .cap = FRAME_CAP };
}

/* Run a prepared burst; counts frames that did not come out TX. */
static unsigned run_burst(struct bench *b, unsigned n, uint64_t *not_tx)
{
	unsigned tx = xlb_worker_handle_burst(b->w, b->bufs, n, xlb_now_ns());

	*not_tx += n - tx;
	return tx;
}

/* ---- fill ------------------------------------------------------------------ */

/* Flows [0, flows) through SYN, SYN-ACK, ACK. */
static void fill(struct bench *b, uint32_t flows, uint64_t *not_tx)
{
	for (uint32_t base = 0; base < flows; base += XLB_BURST) {
		unsigned n = flows - base < XLB_BURST ? flows - base : XLB_BURST;

		for (unsigned k = 0; k < n; k++)
			build_tcp(b->frames[k], est_client(base + k), est_port(base + k), VIP_BE,
				  VIP_PORT, CLIENT_SEQ, 0, XLB_TCP_SYN, 65535);
		set_bufs(b, n);
		run_burst(b, n, not_tx);
		/* The SYN went to the backend Maglev chose: it answers. */
		for (unsigned k = 0; k < n; k++) {
			uint8_t *f = b->frames[k];
			uint32_t backend = get32(f + 14 + 16);
			uint16_t bport = get16(f + 34 + 2);

			build_tcp(f, backend, bport, est_client(base + k), est_port(base + k),
				  BACKEND_SEQ, CLIENT_SEQ + 1, XLB_TCP_SYN | XLB_TCP_ACK, 65535);
		}
		set_bufs(b, n);
		run_burst(b, n, not_tx);
		for (unsigned k = 0; k < n; k++)
			build_tcp(b->frames[k], est_client(base + k), est_port(base + k), VIP_BE,
				  VIP_PORT, CLIENT_SEQ + 1, BACKEND_SEQ + 1, XLB_TCP_ACK, 65535);
		set_bufs(b, n);
		run_burst(b, n, not_tx);
		rcu_quiescent_state();
	}
}

/* ---- the measured bursts ------------------------------------------------------ */

/* ACKs of random established flows. The advertised window is 65535 or
 * 65534 at random, so the tracker sees both a repeated segment (its
 * retransmission path) and a changed one (its update path), as a flow in
 * the middle of a transfer would. */
static void prep_established(struct bench *b, uint32_t flows)
{
	for (unsigned k = 0; k < XLB_BURST; k++) {
		uint64_t r = rnd(b);
		uint32_t i = (uint32_t)(((r >> 32) * flows) >> 32);

		build_tcp(b->frames[k], est_client(i), est_port(i), VIP_BE, VIP_PORT,
			  CLIENT_SEQ + 1, BACKEND_SEQ + 1, XLB_TCP_ACK, (uint16_t)(65535 - (r & 1)));
	}
	set_bufs(b, XLB_BURST);
}

static void prep_new(struct bench *b)
{
	for (unsigned k = 0; k < XLB_BURST; k++) {
		uint64_t j = b->next_new + k;

		build_tcp(b->frames[k], new_client(j), new_port(j), VIP_BE, VIP_PORT,
			  CLIENT_SEQ, 0, XLB_TCP_SYN, 65535);
	}
	set_bufs(b, XLB_BURST);
}

/* Delete the flows the last new-connection burst created (untimed). */
static void delete_new(struct bench *b, uint64_t *missing)
{
	uint64_t now = xlb_now_ns();

	for (unsigned k = 0; k < XLB_BURST; k++) {
		uint64_t j = b->next_new + k;
		struct xlb_tuple t;
		struct xlb_flow *f;
		enum xlb_dir dir;

		memset(&t, 0, sizeof(t));
		xlb_addr_from_v4(&t.src, htonl(new_client(j)));
		xlb_addr_from_v4(&t.dst, htonl(VIP_BE));
		t.sport = htons(new_port(j));
		t.dport = htons(VIP_PORT);
		t.proto = IPPROTO_TCP;
		t.family = AF_INET;
		f = xlb_ct_lookup(b->dp.ct, &t, xlb_ct_hash(b->dp.ct, &t), now, &dir);
		if (!f || dir != XLB_DIR_ORIG || !xlb_ct_delete(b->dp.ct, f))
			(*missing)++;
	}
	b->next_new += XLB_BURST;
}

/* ---- hardware counters ----------------------------------------------------------- */

static int perf_open(uint64_t config, char *why, size_t whylen)
{
	struct perf_event_attr a;
	int fd;

	memset(&a, 0, sizeof(a));
	a.size = sizeof(a);
	a.type = PERF_TYPE_HARDWARE;
	a.config = config;
	a.disabled = 1;
	a.exclude_kernel = 1;
	a.exclude_hv = 1;
	fd = (int)syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
	if (fd < 0)
		snprintf(why, whylen, "perf_event_open(%s): %s",
			 config == PERF_COUNT_HW_INSTRUCTIONS ? "instructions" : "cycles",
			 strerror(errno));
	return fd;
}

static void perf_toggle(struct bench *b, bool on)
{
	for (int i = 0; i < 2; i++)
		ioctl(b->perf_fd[i], on ? PERF_EVENT_IOC_ENABLE : PERF_EVENT_IOC_DISABLE, 0);
}

static void perf_read(struct bench *b, uint64_t v[2])
{
	for (int i = 0; i < 2; i++) {
		if (read(b->perf_fd[i], &v[i], sizeof(v[i])) != sizeof(v[i]))
			v[i] = 0;
		ioctl(b->perf_fd[i], PERF_EVENT_IOC_RESET, 0);
	}
}

/* ---- one size ------------------------------------------------------------------ */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static struct stat3 stat3_of(double *v, int n)
{
	struct stat3 s;

	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	s.min = v[0];
	s.max = v[n - 1];
	s.median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	return s;
}

static double clock_pair_ns(void)
{
	double v[9];

	for (int r = 0; r < 9; r++) {
		uint64_t t0 = now_ns(), sum = 0;

		for (int i = 0; i < 10000; i++) {
			uint64_t a = now_ns();

			sum += now_ns() - a;
		}
		(void)t0;
		v[r] = (double)sum / 10000;
	}
	return stat3_of(v, 9).median;
}

/* Timed: the whole size in this process, results into *res. */
static int run_size(const struct opts *o, uint32_t flows, struct size_result *res)
{
	uint32_t est_bursts = o->est_packets / XLB_BURST, new_bursts = o->new_conns / XLB_BURST;
	double est[64], newc[64];
	struct bench b;
	uint64_t t0, c[2];
	int runs = o->runs;

	memset(&b, 0, sizeof(b));
	b.rng = o->seed;
	b.perf_fd[0] = b.perf_fd[1] = -1;
	res->flows = flows;
	if (bench_open(&b, flows, o->buckets ? o->buckets : 1, res->error, sizeof(res->error)))
		return -1;
	res->buckets = xlb_ct_buckets(b.dp.ct);
	if (o->perf) {
		b.perf_fd[0] = perf_open(PERF_COUNT_HW_INSTRUCTIONS, res->perf_why,
					 sizeof(res->perf_why));
		if (b.perf_fd[0] >= 0)
			b.perf_fd[1] = perf_open(PERF_COUNT_HW_CPU_CYCLES, res->perf_why,
						 sizeof(res->perf_why));
		res->perf_ok = b.perf_fd[0] >= 0 && b.perf_fd[1] >= 0;
	}

	res->rss_before = rss_bytes();
	t0 = now_ns();
	fill(&b, flows, &res->not_tx);
	res->fill_s = (double)(now_ns() - t0) / 1e9;
	res->rss_after = rss_bytes();
	if (xlb_ct_count(b.dp.ct) != flows)
		snprintf(res->error, sizeof(res->error), "table holds %u flows after the fill, not %u",
			 xlb_ct_count(b.dp.ct), flows);

	/* A sanity check of the frames this benchmark feeds: valid, and the
	 * flows they name exist (the packet comes out TX towards a backend). */
	prep_established(&b, flows);
	for (unsigned k = 0; k < XLB_BURST; k++)
		if (!frame_checksums_ok(b.frames[k]))
			snprintf(res->error, sizeof(res->error), "bad checksum in a built frame");
	run_burst(&b, XLB_BURST, &res->not_tx);
	if (get16(b.frames[0] + 36) != BACKEND_PORT || !frame_checksums_ok(b.frames[0]))
		snprintf(res->error, sizeof(res->error), "established frame not NATed to a backend");

	res->clock_ns = clock_pair_ns();
	t0 = now_ns();
	for (uint32_t i = 0; i < est_bursts; i++)
		prep_established(&b, flows);
	res->prep_ns = (double)(now_ns() - t0) / ((double)est_bursts * XLB_BURST);

	if (runs > 64)
		runs = 64;
	for (int r = 0; r < runs; r++) {
		uint64_t total = 0;

		for (uint32_t i = 0; i < est_bursts; i++) {
			prep_established(&b, flows);
			if (res->perf_ok)
				perf_toggle(&b, true);
			t0 = now_ns();
			run_burst(&b, XLB_BURST, &res->not_tx);
			total += now_ns() - t0;
			if (res->perf_ok)
				perf_toggle(&b, false);
			rcu_quiescent_state();
		}
		est[r] = ((double)total - res->clock_ns * est_bursts) /
			 ((double)est_bursts * XLB_BURST);
	}
	if (res->perf_ok) {
		perf_read(&b, c);
		res->est_ins = (double)c[0] / ((double)runs * est_bursts * XLB_BURST);
		res->est_cyc = (double)c[1] / ((double)runs * est_bursts * XLB_BURST);
	}

	for (int r = 0; r < runs; r++) {
		uint64_t total = 0;

		for (uint32_t i = 0; i < new_bursts; i++) {
			prep_new(&b);
			if (res->perf_ok)
				perf_toggle(&b, true);
			t0 = now_ns();
			run_burst(&b, XLB_BURST, &res->not_tx);
			total += now_ns() - t0;
			if (res->perf_ok)
				perf_toggle(&b, false);
			delete_new(&b, &res->new_missing);
			rcu_quiescent_state();
		}
		newc[r] = ((double)total - res->clock_ns * new_bursts) /
			  ((double)new_bursts * XLB_BURST);
	}
	if (res->perf_ok) {
		perf_read(&b, c);
		res->new_ins = (double)c[0] / ((double)runs * new_bursts * XLB_BURST);
		res->new_cyc = (double)c[1] / ((double)runs * new_bursts * XLB_BURST);
	}
	res->est_ns = stat3_of(est, runs);
	res->new_ns = stat3_of(newc, runs);
	for (int i = 0; i < 2; i++)
		if (b.perf_fd[i] >= 0)
			close(b.perf_fd[i]);
	bench_close(&b);
	res->done = true;
	return 0;
}

/* Under callgrind: the same loops, a fixed number of packets, each phase
 * dumped with its packet count in the dump's description. */
static int run_size_callgrind(const struct opts *o, uint32_t flows)
{
	uint32_t bursts = o->cg_packets / XLB_BURST;
	uint64_t not_tx = 0, missing = 0;
	char err[256], desc[96];
	struct bench b;

	memset(&b, 0, sizeof(b));
	b.rng = o->seed;
	if (bench_open(&b, flows, o->buckets ? o->buckets : 1, err,
		       sizeof(err))) {
		fprintf(stderr, "microbench: %s\n", err);
		return 1;
	}
	fill(&b, flows, &not_tx);
	/* Warm the same way the timed runs are warm. */
	for (uint32_t i = 0; i < bursts; i++) {
		prep_established(&b, flows);
		run_burst(&b, XLB_BURST, &not_tx);
		rcu_quiescent_state();
	}

	CALLGRIND_START_INSTRUMENTATION;
	for (uint32_t i = 0; i < bursts; i++) {
		prep_established(&b, flows);
		run_burst(&b, XLB_BURST, &not_tx);
		rcu_quiescent_state();
	}
	CALLGRIND_STOP_INSTRUMENTATION;
	snprintf(desc, sizeof(desc), "xlb-established flows=%u packets=%u", flows,
		 bursts * XLB_BURST);
	CALLGRIND_DUMP_STATS_AT(desc);

	CALLGRIND_START_INSTRUMENTATION;
	for (uint32_t i = 0; i < bursts; i++) {
		prep_new(&b);
		run_burst(&b, XLB_BURST, &not_tx);
		delete_new(&b, &missing);
		rcu_quiescent_state();
	}
	CALLGRIND_STOP_INSTRUMENTATION;
	snprintf(desc, sizeof(desc), "xlb-new flows=%u packets=%u", flows, bursts * XLB_BURST);
	CALLGRIND_DUMP_STATS_AT(desc);

	bench_close(&b);
	if (not_tx || missing) {
		fprintf(stderr, "microbench: %" PRIu64 " frames not TX, %" PRIu64
			" new flows missing\n", not_tx, missing);
		return 1;
	}
	return 0;
}

/* ---- callgrind driver (parent) ---------------------------------------------------- */

/* Ir of the dump whose description starts with `what`, per packet. */
static bool cg_parse(const char *dir, const char *prefix, const char *what, double *ir_per_pkt,
		     char *file, size_t filelen)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	bool found = false;

	if (!d)
		return false;
	while (!found && (de = readdir(d))) {
		char path[512], line[512];
		unsigned long long packets = 0, ir = 0;
		bool ours = false;
		FILE *f;

		if (strncmp(de->d_name, prefix, strlen(prefix)))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f)) {
			const char *p;

			if (!strncmp(line, "desc: Trigger: Client Request: ", 31) &&
			    !strncmp(line + 31, what, strlen(what))) {
				ours = true;
				p = strstr(line, "packets=");
				if (p)
					packets = strtoull(p + 8, NULL, 10);
			} else if (!strncmp(line, "summary: ", 9) || !strncmp(line, "totals: ", 8)) {
				ir = strtoull(strchr(line, ':') + 1, NULL, 10);
			}
		}
		fclose(f);
		if (ours && packets && ir) {
			*ir_per_pkt = (double)ir / (double)packets;
			snprintf(file, filelen, "%s", path);
			found = true;
		}
	}
	closedir(d);
	return found;
}

static void size_name(uint32_t n, char *buf, size_t len)
{
	if (n >= 1000000 && n % 1000000 == 0)
		snprintf(buf, len, "%uM", n / 1000000);
	else if (n >= 1000 && n % 1000 == 0)
		snprintf(buf, len, "%uK", n / 1000);
	else
		snprintf(buf, len, "%u", n);
}

static int callgrind_size(const struct opts *o, const char *dir, uint32_t flows,
			  struct size_result *res)
{
	char self[512], out[400], toggle[] = "--toggle-collect=xlb_worker_handle_burst";
	char nbuf[16], pbuf[16], bbuf[16], sbuf[24], prefix[64], name[16], new_file[512];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	int status;
	pid_t pid;

	if (n < 0)
		return -1;
	self[n] = 0;
	size_name(flows, name, sizeof(name));
	snprintf(prefix, sizeof(prefix), "cg-%s.out", name);
	snprintf(out, sizeof(out), "--callgrind-out-file=%s/%s", dir, prefix);
	snprintf(nbuf, sizeof(nbuf), "%u", flows);
	snprintf(pbuf, sizeof(pbuf), "%u", o->cg_packets);
	snprintf(bbuf, sizeof(bbuf), "%u", o->buckets);
	snprintf(sbuf, sizeof(sbuf), "%" PRIu64, o->seed);
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		execlp("valgrind", "valgrind", "--tool=callgrind", "--quiet",
		       "--instr-atstart=no", "--collect-atstart=no", toggle, out,
		       self, "--child-callgrind", nbuf, "--callgrind-packets", pbuf,
		       "--seed", sbuf, o->buckets ? "--buckets" : (char *)NULL, bbuf,
		       (char *)NULL);
		perror("microbench: valgrind");
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status)) {
		snprintf(res->error, sizeof(res->error), "the callgrind run failed (status %d)",
			 status);
		return -1;
	}
	res->cg_ok = cg_parse(dir, prefix, "xlb-established", &res->est_ir, res->cg_file,
			      sizeof(res->cg_file)) &&
		     cg_parse(dir, prefix, "xlb-new", &res->new_ir, new_file, sizeof(new_file));
	return res->cg_ok ? 0 : -1;
}

/* ---- output --------------------------------------------------------------------- */

static double per_flow(const struct size_result *r)
{
	return r->flows ? (double)(r->rss_after - r->rss_before) / r->flows : 0;
}

static void print_table(const struct opts *o, struct size_result *res, int n)
{
	char name[16];

	printf("\n%-6s %-26s %-26s %9s %9s %11s %8s\n", "flows", "established ns/pkt",
	       "new conn ns/conn", "est Ir", "new Ir", "bytes/flow", "fill s");
	printf("%-6s %-26s %-26s %9s %9s %11s %8s\n", "", "median (min-max)", "median (min-max)",
	       "/pkt", "/conn", "(RSS)", "");
	for (int i = 0; i < n; i++) {
		struct size_result *r = &res[i];
		char est[40], newc[40], eir[16] = "-", nir[16] = "-";

		size_name(r->flows, name, sizeof(name));
		if (!r->done) {
			printf("%-6s failed: %s\n", name, r->error[0] ? r->error : "see above");
			continue;
		}
		snprintf(est, sizeof(est), "%.1f (%.1f-%.1f)", r->est_ns.median, r->est_ns.min,
			 r->est_ns.max);
		snprintf(newc, sizeof(newc), "%.1f (%.1f-%.1f)", r->new_ns.median, r->new_ns.min,
			 r->new_ns.max);
		if (r->cg_ok) {
			snprintf(eir, sizeof(eir), "%.0f", r->est_ir);
			snprintf(nir, sizeof(nir), "%.0f", r->new_ir);
		}
		printf("%-6s %-26s %-26s %9s %9s %11.0f %8.1f\n", name, est, newc, eir, nir,
		       per_flow(r), r->fill_s);
		if (r->error[0])
			printf("       warning: %s\n", r->error);
		if (r->not_tx || r->new_missing)
			printf("       INVALID RUN: %" PRIu64 " frames not TX, %" PRIu64
			       " new flows not found\n", r->not_tx, r->new_missing);
	}
	printf("\nsizeof(struct xlb_flow) = %zu B (slab, no per-flow allocation);"
	       " index bucket = 64 B (7 slots; a flow takes 2)\n", sizeof(struct xlb_flow));
	if (n > 0 && res[0].done)
		printf("clock_gettime pair %.1f ns per timed burst (subtracted); rebuilding a frame"
		       " %.1f ns/pkt (outside the timed region)\n", res[0].clock_ns, res[0].prep_ns);
	if (o->perf) {
		if (n > 0 && res[0].perf_ok) {
			for (int i = 0; i < n; i++) {
				size_name(res[i].flows, name, sizeof(name));
				printf("perf %-6s established %.0f ins %.0f cycles /pkt; new %.0f ins"
				       " %.0f cycles /conn\n", name, res[i].est_ins, res[i].est_cyc,
				       res[i].new_ins, res[i].new_cyc);
			}
		} else {
			printf("perf: hardware counters not supported here (%s)\n",
			       n > 0 ? res[0].perf_why : "no run");
		}
	}
	if (o->callgrind)
		for (int i = 0; i < n; i++)
			if (res[i].cg_ok)
				printf("callgrind dump: callgrind_annotate %s\n", res[i].cg_file);
	printf("targets (issue 'Performance', at 1M flows): established <= 50 ns and <= 250"
	       " instructions per packet; new connection <= 250 ns; <= 128 bytes per flow\n");
}

static void json_stat(FILE *f, const char *key, const struct stat3 *s)
{
	fprintf(f, "\"%s\": {\"median\": %.2f, \"min\": %.2f, \"max\": %.2f}", key, s->median,
		s->min, s->max);
}

static int write_json(const struct opts *o, const struct size_result *res, int n)
{
	FILE *f = fopen(o->json, "w");

	if (!f) {
		fprintf(stderr, "microbench: %s: %s\n", o->json, strerror(errno));
		return -1;
	}
	fprintf(f, "{\n  \"burst\": %d,\n  \"runs\": %d,\n  \"established_packets_per_run\": %u,\n"
		"  \"new_connections_per_run\": %u,\n  \"sizeof_flow\": %zu,\n"
		"  \"perf_supported\": %s,\n  \"sizes\": [\n",
		XLB_BURST, o->runs, o->est_packets / XLB_BURST * XLB_BURST,
		o->new_conns / XLB_BURST * XLB_BURST, sizeof(struct xlb_flow),
		n > 0 && res[0].perf_ok ? "true" : "false");
	for (int i = 0; i < n; i++) {
		const struct size_result *r = &res[i];

		fprintf(f, "    {\"flows\": %u, \"ok\": %s, \"buckets\": %u, ", r->flows,
			r->done && !r->not_tx && !r->new_missing && !r->error[0] ? "true" : "false",
			r->buckets);
		json_stat(f, "established_ns_per_packet", &r->est_ns);
		fprintf(f, ", ");
		json_stat(f, "new_ns_per_connection", &r->new_ns);
		fprintf(f, ", \"clock_pair_ns\": %.2f, \"frame_rebuild_ns\": %.2f, "
			"\"rss_before\": %" PRIu64 ", \"rss_after\": %" PRIu64
			", \"bytes_per_flow\": %.1f, \"fill_seconds\": %.2f",
			r->clock_ns, r->prep_ns, r->rss_before, r->rss_after, per_flow(r), r->fill_s);
		if (r->cg_ok)
			fprintf(f, ", \"established_ir_per_packet\": %.1f, \"new_ir_per_connection\": %.1f",
				r->est_ir, r->new_ir);
		if (r->perf_ok)
			fprintf(f, ", \"established_instructions\": %.1f, \"established_cycles\": %.1f"
				", \"new_instructions\": %.1f, \"new_cycles\": %.1f",
				r->est_ins, r->est_cyc, r->new_ins, r->new_cyc);
		fprintf(f, "}%s\n", i + 1 < n ? "," : "");
	}
	fprintf(f, "  ]\n}\n");
	return fclose(f) ? -1 : 0;
}

static void print_loadavg(void)
{
	char line[128] = "";
	FILE *f = fopen("/proc/loadavg", "r");

	if (f) {
		if (!fgets(line, sizeof(line), f))
			line[0] = 0;
		fclose(f);
	}
	printf("load average at the end (%ld CPUs): %s", sysconf(_SC_NPROCESSORS_ONLN),
	       line[0] ? line : "unknown\n");
}

/* ---- main ---------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: microbench [options]\n"
		"Measures xlb_worker_handle_burst() (conntrack, Maglev, NAT, next hop) on\n"
		"frames in memory, bursts of %d, for flow tables of several sizes.\n"
		"Needs root: it builds a private network namespace for the route and\n"
		"neighbour tables.\n\n"
		"  -s, --sizes LIST        table sizes, e.g. 1k,100k,1m,8m (the default; k = 1000,\n"
		"                          m = 1000000); 8m needs about 4 GiB of memory\n"
		"  -r, --runs N            runs per figure, the median is reported (default 5)\n"
		"  -p, --packets N         established packets per run (default 2000000)\n"
		"  -n, --new N             new connections per run (default 200000)\n"
		"  -b, --buckets N         index buckets, as [conntrack] buckets (default: the\n"
		"                          table's own sizing, max / 2)\n"
		"  -j, --json PATH         write the results as JSON (default microbench.json)\n"
		"      --callgrind         also run each size under valgrind --tool=callgrind and\n"
		"                          report instructions (Ir) per packet and per connection\n"
		"      --callgrind-packets N  packets per phase under callgrind (default 64000)\n"
		"      --perf              count instructions and cycles with perf_event_open\n"
		"                          (says so when the CPU exposes no counters)\n"
		"      --seed N            random stream of flow choices (default 1)\n"
		"  -h, --help\n", XLB_BURST);
}

static int parse_count(const char *s, uint32_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	if (*end == 'k' || *end == 'K')
		v *= 1000, end++;
	else if (*end == 'm' || *end == 'M')
		v *= 1000000, end++;
	if (*end || v == 0 || v > 60000000)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static int parse_sizes(const char *s, struct opts *o)
{
	char buf[256], *tok, *save;

	snprintf(buf, sizeof(buf), "%s", s);
	o->n_sizes = 0;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (o->n_sizes == MAX_SIZES || parse_count(tok, &o->sizes[o->n_sizes]))
			return -1;
		o->n_sizes++;
	}
	return o->n_sizes ? 0 : -1;
}

enum { OPT_CALLGRIND = 256, OPT_CG_PACKETS, OPT_PERF, OPT_SEED, OPT_CHILD_CG };

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "sizes", required_argument, NULL, 's' },
		{ "runs", required_argument, NULL, 'r' },
		{ "packets", required_argument, NULL, 'p' },
		{ "new", required_argument, NULL, 'n' },
		{ "buckets", required_argument, NULL, 'b' },
		{ "json", required_argument, NULL, 'j' },
		{ "callgrind", no_argument, NULL, OPT_CALLGRIND },
		{ "callgrind-packets", required_argument, NULL, OPT_CG_PACKETS },
		{ "perf", no_argument, NULL, OPT_PERF },
		{ "seed", required_argument, NULL, OPT_SEED },
		{ "child-callgrind", required_argument, NULL, OPT_CHILD_CG },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = {
		.runs = 5,
		.est_packets = 2000000,
		.new_conns = 200000,
		.cg_packets = 64000,
		.seed = 1,
		.json = "microbench.json",
	};
	struct size_result *res;
	char cgdir[] = "/tmp/xlb-microbench-cg-XXXXXX";
	uint32_t v;
	int c, failed = 0;

	parse_sizes("1k,100k,1m,8m", &o);
	while ((c = getopt_long(argc, argv, "s:r:p:n:b:j:h", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (parse_sizes(optarg, &o))
				goto bad;
			break;
		case 'r':
			if (parse_count(optarg, &v) || v > 64)
				goto bad;
			o.runs = (int)v;
			break;
		case 'p':
			if (parse_count(optarg, &o.est_packets) || o.est_packets < XLB_BURST)
				goto bad;
			break;
		case 'n':
			if (parse_count(optarg, &o.new_conns) || o.new_conns < XLB_BURST)
				goto bad;
			break;
		case 'b':
			if (parse_count(optarg, &o.buckets))
				goto bad;
			break;
		case 'j':
			o.json = optarg;
			break;
		case OPT_CALLGRIND:
			o.callgrind = true;
			break;
		case OPT_CG_PACKETS:
			if (parse_count(optarg, &o.cg_packets) || o.cg_packets < XLB_BURST)
				goto bad;
			break;
		case OPT_PERF:
			o.perf = true;
			break;
		case OPT_SEED:
			o.seed = strtoull(optarg, NULL, 10) | 1;
			break;
		case OPT_CHILD_CG:
			if (parse_count(optarg, &o.child_callgrind))
				goto bad;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			goto bad;
		}
	}
	if (optind != argc)
		goto bad;

	if (o.child_callgrind)
		return run_size_callgrind(&o, o.child_callgrind);

	if (geteuid() != 0) {
		fprintf(stderr, "microbench: needs root: it builds a private network namespace "
			"for the route and neighbour tables (run it with sudo)\n");
		return 77;   /* meson's "skipped" */
	}
	if (o.callgrind && !HAVE_CALLGRIND) {
		fprintf(stderr, "microbench: built without <valgrind/callgrind.h>; install valgrind"
			" and rebuild for --callgrind\n");
		return 1;
	}
	if (make_namespace())
		return 1;

	/* Results come back from the per-size children through shared memory. */
	res = mmap(NULL, sizeof(*res) * MAX_SIZES, PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (res == MAP_FAILED) {
		perror("microbench: mmap");
		return 1;
	}
	memset(res, 0, sizeof(*res) * MAX_SIZES);
	printf("xlb microbenchmark: xlb_worker_handle_burst(), bursts of %d, IPv4 TCP, 1 service,"
	       " %d backends (Maglev)\n%d runs of %u established packets and %u new connections"
	       " per size\n", XLB_BURST, N_BACKENDS, o.runs, o.est_packets / XLB_BURST * XLB_BURST,
	       o.new_conns / XLB_BURST * XLB_BURST);
	if (o.callgrind && !mkdtemp(cgdir)) {
		perror("microbench: mkdtemp");
		return 1;
	}
	for (int i = 0; i < o.n_sizes; i++) {
		char name[16];
		int status;
		pid_t pid;

		size_name(o.sizes[i], name, sizeof(name));
		printf("%s flows: filling and measuring...\n", name);
		fflush(NULL);
		pid = fork();
		if (pid < 0) {
			perror("microbench: fork");
			return 1;
		}
		if (pid == 0)
			_exit(run_size(&o, o.sizes[i], &res[i]) ? 1 : 0);
		if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status)) {
			fprintf(stderr, "microbench: %s flows: %s\n", name,
				res[i].error[0] ? res[i].error : "the run died");
			res[i].flows = o.sizes[i];
			res[i].done = false;
			failed = 1;
			continue;
		}
		if (o.callgrind) {
			printf("%s flows: again under callgrind (%u packets per phase)...\n", name,
			       o.cg_packets / XLB_BURST * XLB_BURST);
			fflush(NULL);
			if (callgrind_size(&o, cgdir, o.sizes[i], &res[i])) {
				fprintf(stderr, "microbench: %s flows: no callgrind result\n", name);
				failed = 1;
			}
		}
		if (res[i].not_tx || res[i].new_missing || res[i].error[0])
			failed = 1;
	}
	print_table(&o, res, o.n_sizes);
	/* Timings from a busy machine are worth little: show how busy it was. */
	print_loadavg();
	if (o.json && o.json[0] && write_json(&o, res, o.n_sizes))
		failed = 1;
	else if (o.json && o.json[0])
		printf("results written to %s\n", o.json);
	return failed;
bad:
	usage(stderr);
	return 2;
}
