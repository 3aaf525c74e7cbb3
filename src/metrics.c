// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The Prometheus endpoint. Rendering (xlb_metrics_render) and serving are
 * apart, so tests check the text without HTTP.
 *
 * Every family is written whole (HELP, TYPE, then all its samples) before
 * the next begins, as the format requires; counters end in _total.
 * Numbers are read as the control plane reads them elsewhere: per-worker
 * counters are single-writer and read with relaxed loads, so a scrape
 * sees each value as it was at some instant, not one instant for all.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>
#include <urcu-qsbr.h>

#include "log.h"
#include "metrics.h"
#include "service.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define CONTENT_TYPE "text/plain; version=0.0.4"
/* Scrapers keep one connection each; a few at once is plenty, and the
 * limit bounds what a misbehaving client can hold. */
#define CONNECTION_LIMIT 64
#define CONNECTION_TIMEOUT_S 10

static uint64_t load(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static void family(FILE *out, const char *name, const char *type, const char *help)
{
	fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value: backslash, double quote and newline escaped. */
static void label_value(FILE *out, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\\\", out);
		else if (*s == '"')
			fputs("\\\"", out);
		else if (*s == '\n')
			fputs("\\n", out);
		else
			fputc(*s, out);
	}
}

/* ---- backends ------------------------------------------------------------ */

struct flow_sum {
	uint64_t packets, bytes;
};

static int sum_flow(struct xlb_flow *f, void *arg)
{
	struct flow_sum *sum = arg;

	/* backend_id is a registry slot (< XLB_BACKEND_SLOTS), or NO_SLOT. */
	sum[f->backend_id].packets += f->counter[0].packets + f->counter[1].packets;
	sum[f->backend_id].bytes += f->counter[0].bytes + f->counter[1].bytes;
	return 0;
}

struct backend_view {
	const struct xlb_backend *b;
	const struct xlb_backend_stats *bs;   /* NULL: the registry was full */
	const struct flow_sum *live;
};

static uint64_t backend_flows(const struct backend_view *v)
{
	int64_t n = __atomic_load_n(&v->bs->active_flows, __ATOMIC_RELAXED);

	return n > 0 ? (uint64_t)n : 0;
}

/* Flows gone are in the registry, live ones in the walk: together, every
 * packet since xlbd started, never going down across a flow's end. */
static uint64_t backend_packets(const struct backend_view *v)
{
	return v->live->packets + load(&v->bs->closed_packets);
}

static uint64_t backend_bytes(const struct backend_view *v)
{
	return v->live->bytes + load(&v->bs->closed_bytes);
}

static uint64_t backend_new_flows(const struct backend_view *v)
{
	return load(&v->bs->new_flows);
}

static uint64_t backend_up(const struct backend_view *v)
{
	return xlb_backend_state(v->b) == XLB_BE_UP;
}

static uint64_t backend_weight(const struct backend_view *v)
{
	return v->b->weight;
}

static const struct backend_family {
	const char *name, *type, *help;
	bool needs_stats;
	uint64_t (*value)(const struct backend_view *v);
} backend_families[] = {
	{ "xlb_backend_flows", "gauge", "Flows in the table that go to the backend.",
	  true, backend_flows },
	{ "xlb_backend_packets_total", "counter",
	  "Packets of the backend's flows, both directions, since xlbd started.",
	  true, backend_packets },
	{ "xlb_backend_bytes_total", "counter",
	  "Bytes (IP datagrams) of the backend's flows, both directions, since xlbd started.",
	  true, backend_bytes },
	{ "xlb_backend_new_flows_total", "counter",
	  "Connections the scheduler gave the backend since xlbd started.",
	  true, backend_new_flows },
	{ "xlb_backend_up", "gauge",
	  "1 when the backend takes new connections (admin up, weight > 0, healthy), 0 when draining or down.",
	  false, backend_up },
	{ "xlb_backend_weight", "gauge", "The backend's current Maglev weight.",
	  false, backend_weight },
};

static void render_backends(const struct xlb_services *svcs, const struct flow_sum *sum,
			    FILE *out)
{
	for (size_t k = 0; k < ARRAY_SIZE(backend_families); k++) {
		const struct backend_family *fam = &backend_families[k];

		family(out, fam->name, fam->type, fam->help);
		for (uint32_t i = 0; i < svcs->n; i++) {
			const struct xlb_service *svc = &svcs->svc[i];

			for (uint32_t j = 0; j < svc->n_backends; j++) {
				const struct xlb_backend *b = &svc->backends[j];
				struct backend_view v = {
					.b = b,
					.bs = xlb_backend_stats(b->slot),
					.live = &sum[b->slot == XLB_BACKEND_NO_SLOT ? 0 : b->slot],
				};
				char ep[64];

				if (fam->needs_stats && !v.bs)
					continue;
				xlb_endpoint_ntop(&b->ep, ep, sizeof(ep));
				fprintf(out, "%s{service=\"", fam->name);
				label_value(out, svc->name);
				fprintf(out, "\",backend=\"%s\",protocol=\"%s\"} %llu\n", ep,
					svc->proto == IPPROTO_TCP ? "tcp" : "udp",
					(unsigned long long)fam->value(&v));
			}
		}
	}
}

/* ---- workers ------------------------------------------------------------- */

static const struct {
	const char *name, *help;
	size_t offset;
} worker_counters[] = {
	{ "xlb_worker_rx_packets_total", "Frames the worker read from its AF_XDP socket.",
	  offsetof(struct xlb_worker_stats, rx_packets) },
	{ "xlb_worker_tx_packets_total", "Frames the worker put on its socket's tx ring.",
	  offsetof(struct xlb_worker_stats, tx_packets) },
	{ "xlb_worker_rx_bytes_total", "Bytes (Ethernet frames) the worker read.",
	  offsetof(struct xlb_worker_stats, rx_bytes) },
	{ "xlb_worker_tx_bytes_total", "Bytes (Ethernet frames) the worker transmitted.",
	  offsetof(struct xlb_worker_stats, tx_bytes) },
	{ "xlb_worker_new_flows_total", "Connections the worker created.",
	  offsetof(struct xlb_worker_stats, new_flows) },
	{ "xlb_worker_held_packets_total",
	  "Frames that waited for a neighbour (ARP/ND) to resolve.",
	  offsetof(struct xlb_worker_stats, held) },
	{ "xlb_worker_untracked_packets_total",
	  "Packets of notrack services, forwarded without conntrack.",
	  offsetof(struct xlb_worker_stats, untracked) },
	{ "xlb_worker_related_packets_total",
	  "ICMP errors about known connections, translated and forwarded.",
	  offsetof(struct xlb_worker_stats, related) },
	{ "xlb_worker_rejected_total",
	  "New connections with no backend answered with a RST or port unreachable.",
	  offsetof(struct xlb_worker_stats, rejected) },
	{ "xlb_worker_reject_limited_total",
	  "Rejects not sent because of the rate limit (1000/s per worker, burst 50).",
	  offsetof(struct xlb_worker_stats, reject_limited) },
	{ "xlb_worker_csum_completed_total",
	  "TCP/UDP packets whose sender left a partial (offloaded) checksum, completed by the worker.",
	  offsetof(struct xlb_worker_stats, csum_completed) },
};

/* conntrack -S, the kernel's names. */
static const struct {
	const char *name, *help;
	size_t offset;
} ct_counters[] = {
	{ "found", "Lookups that found a flow (conntrack -S found).",
	  offsetof(struct xlb_ct_stats, found) },
	{ "invalid", "Packets conntrack could not track (conntrack -S invalid).",
	  offsetof(struct xlb_ct_stats, invalid) },
	{ "insert", "Flows inserted (conntrack -S insert).",
	  offsetof(struct xlb_ct_stats, insert) },
	{ "insert_failed", "Flows whose reply tuple was taken (conntrack -S insert_failed).",
	  offsetof(struct xlb_ct_stats, insert_failed) },
	{ "drop", "Flows not created: table full, nothing evictable (conntrack -S drop).",
	  offsetof(struct xlb_ct_stats, drop) },
	{ "early_drop", "Flows evicted to make room (conntrack -S early_drop).",
	  offsetof(struct xlb_ct_stats, early_drop) },
	{ "error", "Packets with errors (conntrack -S error).",
	  offsetof(struct xlb_ct_stats, error) },
	{ "search_restart", "Lookups restarted (conntrack -S search_restart).",
	  offsetof(struct xlb_ct_stats, search_restart) },
	{ "clash_resolve", "Insert races settled by adopting the winner "
	  "(conntrack -S clash_resolve).", offsetof(struct xlb_ct_stats, clash_resolve) },
	{ "chaintoolong", "Inserts refused: both buckets of a tuple and the overflow pool "
	  "full (conntrack -S chaintoolong).",
	  offsetof(struct xlb_ct_stats, chaintoolong) },
};

static uint64_t field(const void *base, size_t offset)
{
	return load((const uint64_t *)((const char *)base + offset));
}

static void render_workers(const struct xlb_metrics_ctx *ctx, FILE *out)
{
	char name[64];

	for (size_t k = 0; k < ARRAY_SIZE(worker_counters); k++) {
		family(out, worker_counters[k].name, "counter", worker_counters[k].help);
		for (uint32_t i = 0; i < ctx->n_workers; i++)
			fprintf(out, "%s{worker=\"%u\"} %llu\n", worker_counters[k].name,
				ctx->workers[i].id,
				(unsigned long long)field(&ctx->workers[i].stats,
							  worker_counters[k].offset));
	}
	family(out, "xlb_worker_drops_total", "counter",
	       "Frames the worker dropped, by reason.");
	for (uint32_t i = 0; i < ctx->n_workers; i++)
		for (int r = 0; r < XLB_DROP_MAX; r++)
			fprintf(out, "xlb_worker_drops_total{worker=\"%u\",reason=\"%s\"} %llu\n",
				ctx->workers[i].id, xlb_drop_reason_name(r),
				(unsigned long long)load(&ctx->workers[i].stats.drop[r]));
	for (size_t k = 0; k < ARRAY_SIZE(ct_counters); k++) {
		snprintf(name, sizeof(name), "xlb_conntrack_%s_total", ct_counters[k].name);
		family(out, name, "counter", ct_counters[k].help);
		for (uint32_t i = 0; i < ctx->n_workers; i++)
			fprintf(out, "%s{worker=\"%u\"} %llu\n", name, ctx->workers[i].id,
				(unsigned long long)field(&ctx->workers[i].ct_stats,
							  ct_counters[k].offset));
	}
}

/* ---- AF_XDP sockets and the XDP program ---------------------------------- */

static const struct {
	const char *name, *help;
	size_t offset;
} xsk_counters[] = {
	{ "rx_dropped", "Frames the kernel dropped for the socket for reasons "
	  "other than a full ring or invalid descriptors.",
	  offsetof(struct xdp_statistics, rx_dropped) },
	{ "rx_invalid_descs", "Invalid descriptors on the socket's rx side.",
	  offsetof(struct xdp_statistics, rx_invalid_descs) },
	{ "tx_invalid_descs", "Invalid descriptors the worker put on the tx ring.",
	  offsetof(struct xdp_statistics, tx_invalid_descs) },
	{ "rx_ring_full", "Frames dropped because the rx ring was full (the worker is "
	  "too slow).", offsetof(struct xdp_statistics, rx_ring_full) },
	{ "rx_fill_ring_empty_descs", "Times the kernel found the fill ring empty.",
	  offsetof(struct xdp_statistics, rx_fill_ring_empty_descs) },
	{ "tx_ring_empty_descs", "Times the kernel found the tx ring empty when woken.",
	  offsetof(struct xdp_statistics, tx_ring_empty_descs) },
};

static int render_sockets(const struct xlb_metrics_ctx *ctx, FILE *out)
{
	struct xdp_statistics *st;
	bool *ok, any = false;
	char name[64];

	if (!ctx->n_workers)
		return 0;
	st = calloc(ctx->n_workers, sizeof(*st));
	ok = calloc(ctx->n_workers, sizeof(*ok));
	if (!st || !ok) {
		free(st);
		free(ok);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < ctx->n_workers; i++) {
		ok[i] = ctx->workers[i].xsk.fd >= 0 && !xlb_xsk_stats(&ctx->workers[i].xsk, &st[i]);
		any |= ok[i];
	}
	for (size_t k = 0; any && k < ARRAY_SIZE(xsk_counters); k++) {
		snprintf(name, sizeof(name), "xlb_xsk_%s_total", xsk_counters[k].name);
		family(out, name, "counter", xsk_counters[k].help);
		for (uint32_t i = 0; i < ctx->n_workers; i++)
			if (ok[i])
				fprintf(out, "%s{worker=\"%u\",queue=\"%u\"} %llu\n", name,
					ctx->workers[i].id, ctx->workers[i].queue,
					(unsigned long long)field(&st[i], xsk_counters[k].offset));
	}
	free(st);
	free(ok);
	return 0;
}

static void render_xdp(const struct xlb_metrics_ctx *ctx, FILE *out)
{
	uint64_t st[XLB_XDP_STAT_MAX];

	if (!ctx->xdp || xlb_xdp_read_stats(ctx->xdp, st))
		return;
	family(out, "xlb_xdp_packets_total", "counter",
	       "Frames the XDP program saw, by what it did: pass_* to the kernel, "
	       "redirect_* to a worker.");
	for (int r = 0; r < XLB_XDP_STAT_MAX; r++)
		fprintf(out, "xlb_xdp_packets_total{reason=\"%s\"} %llu\n", xlb_xdp_stat_name(r),
			(unsigned long long)st[r]);
}

int xlb_metrics_render(const struct xlb_metrics_ctx *ctx, FILE *out)
{
	const struct xlb_services *svcs;
	struct flow_sum *sum;
	uint32_t used, total;
	int ret;

	/* Live flows' counters, by backend slot, in one walk of the table. */
	sum = calloc(XLB_BACKEND_SLOTS, sizeof(*sum));
	if (!sum)
		return -ENOMEM;
	xlb_ct_foreach(ctx->dp->ct, sum_flow, sum);
	svcs = rcu_dereference(ctx->dp->services);
	if (svcs)
		render_backends(svcs, sum, out);
	free(sum);

	render_workers(ctx, out);
	ret = render_sockets(ctx, out);
	if (ret)
		return ret;
	render_xdp(ctx, out);

	family(out, "xlb_conntrack_entries", "gauge", "Flows in the table (conntrack -C).");
	fprintf(out, "xlb_conntrack_entries %u\n", xlb_ct_count(ctx->dp->ct));
	family(out, "xlb_conntrack_max", "gauge",
	       "Most flows the table holds ([conntrack] max, nf_conntrack_max).");
	fprintf(out, "xlb_conntrack_max %u\n", xlb_ct_max(ctx->dp->ct));
	family(out, "xlb_conntrack_buckets", "gauge",
	       "Buckets of the flow table's index (7 slots each, two per flow), sized at start.");
	fprintf(out, "xlb_conntrack_buckets %u\n", xlb_ct_buckets(ctx->dp->ct));
	xlb_ct_overflow(ctx->dp->ct, &used, &total);
	family(out, "xlb_conntrack_overflow_buckets", "gauge",
	       "Overflow buckets chained to full ones; inserts fail when all are used.");
	fprintf(out, "xlb_conntrack_overflow_buckets %u\n", used);
	family(out, "xlb_conntrack_overflow_buckets_max", "gauge",
	       "The overflow pool's size.");
	fprintf(out, "xlb_conntrack_overflow_buckets_max %u\n", total);
	if (fflush(out) || ferror(out))
		return -ENOMEM;
	return 0;
}

/* ---- HTTP ------------------------------------------------------------------ */

struct xlb_metrics {
	struct MHD_Daemon *mhd;
	struct xlb_metrics_ctx ctx;
	uint16_t port;
};

/*
 * The server thread's RCU state. libmicrohttpd starts the thread, so it
 * registers itself on its first scrape; the key's destructor unregisters
 * it when libmicrohttpd ends the thread (MHD_stop_daemon joins it).
 */
static pthread_key_t rcu_key;
static pthread_once_t rcu_key_once = PTHREAD_ONCE_INIT;
static int rcu_key_err;
static __thread bool rcu_registered;

static void unregister_reader(void *unused)
{
	(void)unused;
	rcu_unregister_thread();
}

static void make_rcu_key(void)
{
	rcu_key_err = pthread_key_create(&rcu_key, unregister_reader);
}

static void reader_online(void)
{
	if (rcu_registered) {
		rcu_thread_online();
		return;
	}
	rcu_register_thread();
	pthread_setspecific(rcu_key, (void *)1);
	rcu_registered = true;
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *text,
			     bool allow)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
	if (allow)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

/*
 * GET (and HEAD, which every HTTP server must answer like GET) /metrics.
 * libmicrohttpd calls this once when the headers are in, then once per
 * piece of body, then once more. Anything refused is answered on the first
 * call, which makes libmicrohttpd close the connection after the reply
 * instead of reading a body nobody wants; the metrics are answered on the
 * last call, which keeps the connection alive for the scraper's next
 * visit.
 */
static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_data_size, void **con_cls)
{
	static int headers_seen;
	struct xlb_metrics *m = cls;
	struct MHD_Response *r;
	enum MHD_Result ret;
	char *body = NULL;
	size_t len = 0;
	FILE *out;
	int err;

	(void)version;
	(void)upload_data;
	if (!*con_cls) {
		if (strcmp(url, "/metrics"))
			return reply(conn, MHD_HTTP_NOT_FOUND,
				     "Not found: the metrics are at /metrics\n", false);
		if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
			return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
				     "Method not allowed: use GET\n", true);
		*con_cls = &headers_seen;
		return MHD_YES;
	}
	if (*upload_data_size) {
		*upload_data_size = 0;      /* a body on a GET: ignored */
		return MHD_YES;
	}

	out = open_memstream(&body, &len);
	if (!out)
		return reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "Out of memory\n", false);
	reader_online();
	err = xlb_metrics_render(&m->ctx, out);
	/* Offline until the next scrape: writing the response may block on a
	 * slow client, and grace periods must not wait for it. */
	rcu_thread_offline();
	if (fclose(out) && !err)
		err = -ENOMEM;
	if (err) {
		free(body);
		return reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "Cannot render the metrics\n",
			     false);
	}
	r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, CONTENT_TYPE);
	ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

static void log_mhd(void *cls, const char *fmt, va_list ap)
{
	char line[512];
	size_t n;

	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n && line[n - 1] == '\n')
		line[--n] = '\0';
	xlb_warn("metrics: %s", line);
}

static socklen_t to_sockaddr(const struct xlb_endpoint *ep, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (ep->family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = ep->port;
		memcpy(&sin6->sin6_addr, ep->addr.b, 16);
		return sizeof(*sin6);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = ep->port;
		sin->sin_addr.s_addr = xlb_addr_v4(&ep->addr);
		return sizeof(*sin);
	}
}

/* libmicrohttpd says only that it failed; a bind of our own says why
 * (address in use, not local, ...) before it tries. */
static int probe_bind(const struct sockaddr *sa, socklen_t len)
{
	int one = 1, fd, err = 0;

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* As libmicrohttpd does: a port in TIME_WAIT is no conflict. */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (sa->sa_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, sa, len))
		err = -errno;
	close(fd);
	return err;
}

struct xlb_metrics *xlb_metrics_start(const struct xlb_endpoint *ep,
				      const struct xlb_metrics_ctx *ctx)
{
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
	const union MHD_DaemonInfo *info;
	struct sockaddr_storage ss;
	struct xlb_metrics *m;
	socklen_t len;
	int err;

	pthread_once(&rcu_key_once, make_rcu_key);
	if (rcu_key_err) {
		errno = rcu_key_err;
		return NULL;
	}
	len = to_sockaddr(ep, &ss);
	err = probe_bind((struct sockaddr *)&ss, len);
	if (err) {
		errno = -err;
		return NULL;
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->ctx = *ctx;
	if (ep->family == AF_INET6)
		flags |= MHD_USE_IPv6;
	m->mhd = MHD_start_daemon(flags, 0, NULL, NULL, handle, m,
				  MHD_OPTION_EXTERNAL_LOGGER, log_mhd, NULL,
				  MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONNECTION_LIMIT,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONNECTION_TIMEOUT_S,
				  MHD_OPTION_END);
	if (!m->mhd) {
		err = -EIO;      /* libmicrohttpd logged the reason */
		goto err;
	}
	info = MHD_get_daemon_info(m->mhd, MHD_DAEMON_INFO_BIND_PORT);
	m->port = info ? info->port : ntohs(ep->port);
	return m;
err:
	free(m);
	errno = -err;
	return NULL;
}

uint16_t xlb_metrics_port(const struct xlb_metrics *m)
{
	return m->port;
}

void xlb_metrics_stop(struct xlb_metrics *m)
{
	if (!m)
		return;
	MHD_stop_daemon(m->mhd);
	free(m);
}
