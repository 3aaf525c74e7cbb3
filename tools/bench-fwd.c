/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * xlb-bench-fwd: "the limit" of tools/bench — xlb's I/O path with no load
 * balancing work.
 *
 * It attaches xlb's own XDP program (bpf/xlb.bpf.c, the skeleton xlbd
 * embeds) and opens xlb's AF_XDP sockets (src/xsk.c), one thread per queue
 * running the same loop as a worker (bursts of 64, the same idle spin and
 * poll). Per packet it only rewrites the Ethernet header: traffic to the
 * VIP goes to a backend's MAC (chosen by the source port, no table),
 * anything else back to the client's MAC. No flow table, no NAT, no
 * checksum, no route lookup: what xlb costs above this is its own work.
 *
 * The backends' reflectors answer from the VIP (nothing translated it), so
 * the VIP is also written into the program's `backends` map: its replies
 * are steered like return traffic.
 *
 * Runs until SIGINT/SIGTERM; prints "xlb-bench-fwd: ready" when attached.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/ip.h>
#include <linux/ipv6.h>

#include "bench.h"
#include "xlb/bpf_shared.h"
#include "xlb.skel.h"
#include "xsk.h"

#define BURST 64
#define IDLE_SPINS 32		/* as src/worker.c */
#define IDLE_SLEEP_MS 10
#define MAX_BACKENDS 16
#define MAX_VIPS 8

struct fwd {
	uint8_t own_mac[ETH_ALEN];
	uint8_t client_mac[ETH_ALEN];
	uint8_t backend_mac[MAX_BACKENDS][ETH_ALEN];
	unsigned n_backends;
	uint8_t vip[MAX_VIPS][16];	/* IPv4 as ::ffff:a.b.c.d */
	unsigned n_vips;
};

/* --stamps: how old the generator's segments are when a queue sees them
 * (rx) and when its sendto() has returned (tx), per direction, in log2
 * microsecond buckets. Where a round trip's time goes, hop by hop. */
#define AGE_BUCKETS 24
enum { AGE_RX_REQ, AGE_TX_REQ, AGE_RX_REP, AGE_TX_REP, AGE_MAX };

struct queue {
	struct xlb_xsk xsk;
	const struct fwd *fwd;
	pthread_t thread;
	uint64_t rx, tx, dropped;
	uint64_t sleeps, timeouts, missed_wakeups;
	bool stamps;
	uint64_t age[AGE_MAX][AGE_BUCKETS];
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static bool is_vip(const struct fwd *f, const uint8_t addr[16])
{
	for (unsigned i = 0; i < f->n_vips; i++)
		if (!memcmp(f->vip[i], addr, 16))
			return true;
	return false;
}

/* Rewrite the MACs of one frame; false when it is not IP (dropped). */
static bool forward(const struct fwd *f, uint8_t *p, uint32_t len)
{
	struct ethhdr *eth = (struct ethhdr *)p;
	uint8_t dst[16] = { 0 };
	uint16_t sport = 0;

	if (len < ETH_HLEN + sizeof(struct iphdr))
		return false;
	if (eth->h_proto == htons(ETH_P_IP)) {
		const struct iphdr *ip = (const struct iphdr *)(eth + 1);

		dst[10] = dst[11] = 0xff;
		memcpy(&dst[12], &ip->daddr, 4);
		if (len >= ETH_HLEN + ip->ihl * 4u + 2)
			memcpy(&sport, p + ETH_HLEN + ip->ihl * 4u, 2);
	} else if (eth->h_proto == htons(ETH_P_IPV6) && len >= ETH_HLEN + sizeof(struct ipv6hdr) + 2) {
		const struct ipv6hdr *ip6 = (const struct ipv6hdr *)(eth + 1);

		memcpy(dst, &ip6->daddr, 16);
		memcpy(&sport, ip6 + 1, 2);
	} else {
		return false;
	}
	if (is_vip(f, dst))
		memcpy(eth->h_dest, f->backend_mac[ntohs(sport) % f->n_backends], ETH_ALEN);
	else
		memcpy(eth->h_dest, f->client_mac, ETH_ALEN);
	memcpy(eth->h_source, f->own_mac, ETH_ALEN);
	return true;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The generator's send time in a data segment, or 0. */
static uint64_t segment_stamp(const uint8_t *p, uint32_t len)
{
	const struct ethhdr *eth = (const struct ethhdr *)p;
	const struct xlb_bench_payload *pl;
	uint32_t off;
	uint64_t ts;

	if (eth->h_proto == htons(ETH_P_IP)) {
		const struct iphdr *ip = (const struct iphdr *)(eth + 1);

		if (ip->protocol != IPPROTO_TCP)
			return 0;
		off = ETH_HLEN + ip->ihl * 4u;
	} else if (eth->h_proto == htons(ETH_P_IPV6)) {
		off = ETH_HLEN + sizeof(struct ipv6hdr);
	} else {
		return 0;
	}
	if (off + 13 > len)
		return 0;
	off += (p[off + 12] >> 4) * 4u;
	if (off + sizeof(*pl) > len)
		return 0;
	pl = (const struct xlb_bench_payload *)(p + off);
	if (pl->magic != htonl(XLB_BENCH_MAGIC))
		return 0;
	memcpy(&ts, &pl->tx_ns, sizeof(ts));
	return ts;
}

static void count_age(struct queue *q, int which, uint64_t stamp, uint64_t now)
{
	uint64_t us = now > stamp ? (now - stamp) / 1000 : 0;
	int b = 0;

	while (us && b < AGE_BUCKETS - 1) {
		us >>= 1;
		b++;
	}
	q->age[which][b]++;
}

static void print_ages(const struct queue *q, unsigned id)
{
	static const char *const names[AGE_MAX] = { "rx req", "tx req", "rx rep", "tx rep" };

	fprintf(stderr, "xlb-bench-fwd: queue %u age, us < sleeps %llu timeouts %llu missed %llu\n",
		id, (unsigned long long)q->sleeps, (unsigned long long)q->timeouts,
		(unsigned long long)q->missed_wakeups);
	for (int k = 0; k < AGE_MAX; k++) {
		fprintf(stderr, "xlb-bench-fwd: queue %u %s age, us <", id, names[k]);
		for (int b = 0; b < AGE_BUCKETS; b++)
			if (q->age[k][b])
				fprintf(stderr, " %llu:%llu", 1ull << b, (unsigned long long)q->age[k][b]);
		fprintf(stderr, "\n");
	}
}

static void idle_wait(struct queue *q)
{
	struct pollfd pfd = { .fd = q->xsk.fd, .events = POLLIN };
	uint32_t idx;

	q->sleeps++;
	if (poll(&pfd, 1, IDLE_SLEEP_MS) == 0) {
		q->timeouts++;
		/* A frame in the ring after a sleep that timed out: its
		 * wake-up never came. */
		if (xsk_ring_cons__peek(&q->xsk.rx, 1, &idx)) {
			q->missed_wakeups++;
			xsk_ring_cons__cancel(&q->xsk.rx, 1);
		}
	}
}

static void *queue_main(void *arg)
{
	struct queue *q = arg;
	struct xlb_xsk *s = &q->xsk;
	unsigned idle = 0;

	while (!stop) {
		uint64_t addrs[BURST], stamps[BURST];
		uint32_t lens[BURST];
		bool reply[BURST];
		uint32_t idx, n, tidx = 0, got, ntx = 0;
		uint64_t t_rx;

		xlb_xsk_complete(s);
		n = xsk_ring_cons__peek(&s->rx, BURST, &idx);
		if (!n) {
			xlb_xsk_refill(s);
			xlb_xsk_kick_tx(s);
			xlb_xsk_poll_napi(s);
			if (++idle >= IDLE_SPINS)
				idle_wait(q);
			continue;
		}
		idle = 0;
		t_rx = q->stamps ? now_ns() : 0;
		for (uint32_t i = 0; i < n; i++) {
			const struct xdp_desc *d = xsk_ring_cons__rx_desc(&s->rx, idx + i);
			uint8_t *frame = xlb_xsk_frame(s, d->addr);

			if (forward(q->fwd, frame, d->len)) {
				if (q->stamps) {
					stamps[ntx] = segment_stamp(frame, d->len);
					reply[ntx] = !memcmp(frame, q->fwd->client_mac, ETH_ALEN);
					if (stamps[ntx])
						count_age(q, reply[ntx] ? AGE_RX_REP : AGE_RX_REQ,
							  stamps[ntx], t_rx);
				}
				addrs[ntx] = d->addr;
				lens[ntx++] = d->len;
			} else {
				xlb_xsk_free_frame(s, d->addr);
				q->dropped++;
			}
		}
		xsk_ring_cons__release(&s->rx, n);
		q->rx += n;
		got = ntx ? xsk_ring_prod__reserve(&s->tx, ntx, &tidx) : 0;
		if (ntx && got != ntx) {
			xlb_xsk_complete(s);
			got = xsk_ring_prod__reserve(&s->tx, ntx, &tidx);
		}
		if (got != ntx)
			got = 0;
		for (uint32_t i = 0; i < ntx; i++) {
			if (got) {
				struct xdp_desc *d = xsk_ring_prod__tx_desc(&s->tx, tidx++);

				d->addr = addrs[i];
				d->len = lens[i];
			} else {
				xlb_xsk_free_frame(s, addrs[i]);
				q->dropped++;
			}
		}
		if (got) {
			xsk_ring_prod__submit(&s->tx, got);
			s->tx_outstanding += got;
			q->tx += got;
			xlb_xsk_kick_tx(s);
		}
		if (q->stamps)
			for (uint32_t i = 0; i < ntx; i++)
				if (stamps[i])
					count_age(q, reply[i] ? AGE_TX_REP : AGE_TX_REQ, stamps[i],
						  now_ns());
		xlb_xsk_refill(s);
		if (xsk_ring_prod__needs_wakeup(&s->fq))
			recvfrom(s->fd, NULL, 0, MSG_DONTWAIT, NULL, NULL);
	}
	return NULL;
}

static int parse_mac(const char *str, uint8_t mac[ETH_ALEN])
{
	unsigned v[ETH_ALEN];

	if (sscanf(str, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6)
		return -1;
	for (int i = 0; i < ETH_ALEN; i++)
		mac[i] = (uint8_t)v[i];
	return 0;
}

static int parse_addr(const char *str, uint8_t addr[16])
{
	memset(addr, 0, 16);
	if (inet_pton(AF_INET6, str, addr) == 1)
		return 0;
	addr[10] = addr[11] = 0xff;
	return inet_pton(AF_INET, str, &addr[12]) == 1 ? 0 : -1;
}

static void usage(FILE *out)
{
	fprintf(out, "usage: xlb-bench-fwd --dev DEV --queues N --port PORT --vip ADDR... "
		     "--backend-mac MAC... --client-mac MAC [--stamps]\n"
		     "       [--busy-poll USECS [--busy-budget N]]\n"
		     "  --stamps  at exit, per queue and direction, how old the generator's\n"
		     "            segments were when received and when sent on (log2 us)\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "dev", required_argument, NULL, 'd' },
		{ "queues", required_argument, NULL, 'q' },
		{ "port", required_argument, NULL, 'p' },
		{ "vip", required_argument, NULL, 'v' },
		{ "backend-mac", required_argument, NULL, 'b' },
		{ "client-mac", required_argument, NULL, 'c' },
		{ "stamps", no_argument, NULL, 's' },
		{ "busy-poll", required_argument, NULL, 'B' },
		{ "busy-budget", required_argument, NULL, 'G' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct fwd f = { 0 };
	struct queue *queues = NULL;
	struct xlb_bpf *skel = NULL;
	const char *dev = NULL;
	unsigned n_queues = 1, started = 0;
	uint16_t port = 80;
	int c, ifindex, link_fd = -1, rc = 1, err;
	bool have_client = false, stamps = false;
	unsigned busy_us = 0, busy_budget = BURST;
	char path[128];
	FILE *mf;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'd': dev = optarg; break;
		case 'q': n_queues = (unsigned)atoi(optarg); break;
		case 'p': port = (uint16_t)atoi(optarg); break;
		case 'v':
			if (f.n_vips == MAX_VIPS || parse_addr(optarg, f.vip[f.n_vips++]))
				goto usage;
			break;
		case 'b':
			if (f.n_backends == MAX_BACKENDS ||
			    parse_mac(optarg, f.backend_mac[f.n_backends++]))
				goto usage;
			break;
		case 'c':
			if (parse_mac(optarg, f.client_mac))
				goto usage;
			have_client = true;
			break;
		case 's': stamps = true; break;
		case 'B': busy_us = (unsigned)atoi(optarg); break;
		case 'G': busy_budget = (unsigned)atoi(optarg); break;
		case 'h': usage(stdout); return 0;
		default: goto usage;
		}
	}
	if (!dev || !f.n_vips || !f.n_backends || !have_client || !n_queues ||
	    n_queues > XLB_MAX_QUEUES)
		goto usage;
	ifindex = (int)if_nametoindex(dev);
	snprintf(path, sizeof(path), "/sys/class/net/%s/address", dev);
	mf = fopen(path, "r");
	if (!ifindex || !mf) {
		fprintf(stderr, "xlb-bench-fwd: no interface %s\n", dev);
		if (mf)
			fclose(mf);
		return 1;
	}
	err = fgets(path, sizeof(path), mf) ? parse_mac(path, f.own_mac) : -1;
	fclose(mf);
	if (err)
		return 1;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	skel = xlb_bpf__open_and_load();
	if (!skel) {
		fprintf(stderr, "xlb-bench-fwd: cannot load xlb's XDP program: %s\n", strerror(errno));
		goto out;
	}
	for (unsigned i = 0; i < f.n_vips; i++) {
		struct xlb_svc_key k = { .port = htons(port), .proto = IPPROTO_TCP };
		struct xlb_svc_val v = { .service_id = i };

		memcpy(k.addr, f.vip[i], 16);
		if (bpf_map_update_elem(bpf_map__fd(skel->maps.vips), &k, &v, BPF_ANY) ||
		    bpf_map_update_elem(bpf_map__fd(skel->maps.backends), &k, &v, BPF_ANY)) {
			fprintf(stderr, "xlb-bench-fwd: steering maps: %s\n", strerror(errno));
			goto out;
		}
	}
	{
		LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = XDP_FLAGS_DRV_MODE);

		link_fd = bpf_link_create(bpf_program__fd(skel->progs.xlb_xdp), ifindex, BPF_XDP,
					  &opts);
	}
	if (link_fd < 0) {
		fprintf(stderr, "xlb-bench-fwd: cannot attach XDP to %s: %s\n", dev, strerror(errno));
		goto out;
	}
	queues = calloc(n_queues, sizeof(*queues));
	if (!queues)
		goto out;
	for (unsigned i = 0; i < n_queues; i++) {
		queues[i].fwd = &f;
		queues[i].stamps = stamps;
		err = xlb_xsk_open(&queues[i].xsk, dev, i, bpf_map__fd(skel->maps.xsks), true);
		if (err) {
			fprintf(stderr, "xlb-bench-fwd: queue %u: %s\n", i, strerror(-err));
			goto out;
		}
		err = busy_us ? xlb_xsk_busy_poll(&queues[i].xsk, busy_us, busy_budget) : 0;
		if (err) {
			fprintf(stderr, "xlb-bench-fwd: queue %u: busy polling: %s\n", i,
				strerror(-err));
			goto out;
		}
	}
	for (; started < n_queues; started++)
		if (pthread_create(&queues[started].thread, NULL, queue_main, &queues[started]))
			goto out;
	fprintf(stderr, "xlb-bench-fwd: ready\n");
	while (!stop)
		pause();
	rc = 0;
out:
	stop = 1;
	for (unsigned i = 0; i < started; i++) {
		pthread_join(queues[i].thread, NULL);
		fprintf(stderr, "xlb-bench-fwd: queue %u: rx %llu tx %llu dropped %llu\n", i,
			(unsigned long long)queues[i].rx, (unsigned long long)queues[i].tx,
			(unsigned long long)queues[i].dropped);
		if (stamps)
			print_ages(&queues[i], i);
	}
	for (unsigned i = 0; queues && i < n_queues; i++)
		if (queues[i].xsk.umem || queues[i].xsk.socket)
			xlb_xsk_close(&queues[i].xsk);
	free(queues);
	if (link_fd >= 0)
		close(link_fd);
	xlb_bpf__destroy(skel);
	return rc;
usage:
	usage(stderr);
	return 2;
}
