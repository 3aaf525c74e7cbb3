// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The Prometheus endpoint as a scraper sees it: the text is parsed back
 * line by line (every sample `name{labels} value`, every family with HELP
 * and TYPE before its samples, counters named *_total), values are
 * checked against what the test put into a real flow table, services
 * snapshot and worker stats, and the HTTP side is exercised with a plain
 * socket client on 127.0.0.1.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <urcu-qsbr.h>

#include "config.h"
#include "flow.h"
#include "metrics.h"
#include "service.h"
#include "unit.h"
#include "worker.h"

static const char *config_text =
	"[global]\n"
	"interface = xm0\n"
	"[conntrack]\n"
	"max = 1000\n"
	"[service web]\n"
	"vip = 198.18.0.100\n"
	"port = 80\n"
	"backends = 198.18.2.2:8080, 198.18.2.3:8080 weight=2\n"
	"[service dns]\n"
	"vip = 198.18.0.100\n"
	"port = 53\n"
	"protocol = udp\n"
	"backends = 198.18.2.2:5353\n"
	"[service web6]\n"
	"vip = 2001:2::100\n"
	"port = 80\n"
	"backends = [2001:2:0:2::2]:8080\n";

static char cfg_path[] = "/tmp/xlb-test-metrics-XXXXXX";
static struct xlb_config *cfg;
static struct xlb_dataplane dp;
static struct xlb_worker *workers;
static struct xlb_metrics_ctx ctx;

#define N_WORKERS 2

/* ---- fixture ------------------------------------------------------------- */

static void tuple4(struct xlb_tuple *t, const char *src, uint16_t sport, const char *dst,
		   uint16_t dport, uint8_t proto)
{
	uint8_t family;

	memset(t, 0, sizeof(*t));
	xlb_addr_pton(src, &t->src, &family);
	xlb_addr_pton(dst, &t->dst, &t->family);
	t->sport = htons(sport);
	t->dport = htons(dport);
	t->proto = proto;
}

/* One flow client -> vip, NATed to backend, carrying the given counters. */
static int add_flow(const char *client, uint16_t cport, const char *vip, uint16_t vport,
		    const char *backend, uint16_t bport, uint8_t proto, uint16_t slot,
		    uint64_t pkts_orig, uint64_t bytes_orig, uint64_t pkts_reply,
		    uint64_t bytes_reply)
{
	struct xlb_ct_stats st = { 0 };
	struct xlb_tuple orig, reply;
	struct xlb_flow *f;

	tuple4(&orig, client, cport, vip, vport, proto);
	tuple4(&reply, backend, bport, client, cport, proto);
	f = xlb_ct_alloc(dp.ct, &orig, &reply, xlb_now_ns());
	if (!f)
		return -1;
	f->backend_id = slot;
	f->counter[XLB_DIR_ORIG].packets = pkts_orig;
	f->counter[XLB_DIR_ORIG].bytes = bytes_orig;
	f->counter[XLB_DIR_REPLY].packets = pkts_reply;
	f->counter[XLB_DIR_REPLY].bytes = bytes_reply;
	return xlb_ct_insert(dp.ct, f, &st) == f ? 0 : -1;
}

static void set_backend_stats(uint16_t slot, uint64_t new_flows, int64_t active,
			      uint64_t closed_packets, uint64_t closed_bytes)
{
	struct xlb_backend_stats *bs = xlb_backend_stats(slot);

	bs->new_flows = new_flows;
	bs->active_flows = active;
	bs->closed_packets = closed_packets;
	bs->closed_bytes = closed_bytes;
}

static int setup(void)
{
	struct xlb_services *svcs, *down;
	char err[512];
	int fd;

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
	svcs = xlb_services_build(cfg);
	if (!dp.ct || !svcs)
		return -1;
	/* web's second backend taken down by an operator: up 0, weight 0. */
	down = xlb_services_with_backend(svcs, 0, 1, XLB_BACKEND_DOWN, 0);
	xlb_services_free(svcs);
	if (!down)
		return -1;
	rcu_assign_pointer(dp.services, down);

	/* Registry slots in configuration order: web 0 and 1, dns 2, web6 3. */
	if (add_flow("198.18.0.10", 40000, "198.18.0.100", 80, "198.18.2.2", 8080, IPPROTO_TCP, 0,
		     5, 500, 4, 4000) ||
	    add_flow("198.18.0.11", 40001, "198.18.0.100", 80, "198.18.2.2", 8080, IPPROTO_TCP, 0,
		     2, 120, 1, 60) ||
	    add_flow("198.18.0.10", 40002, "198.18.0.100", 80, "198.18.2.3", 8080, IPPROTO_TCP, 1,
		     1, 60, 0, 0) ||
	    add_flow("198.18.0.10", 5000, "198.18.0.100", 53, "198.18.2.2", 5353, IPPROTO_UDP, 2,
		     1, 70, 1, 170))
		return -1;
	set_backend_stats(0, 10, 2, 100, 10000);
	set_backend_stats(1, 1, 1, 0, 0);
	set_backend_stats(2, 3, 1, 7, 700);
	/* web6's backend: no flows at all. */

	workers = aligned_alloc(64, N_WORKERS * sizeof(*workers));
	if (!workers)
		return -1;
	memset(workers, 0, N_WORKERS * sizeof(*workers));
	for (uint32_t i = 0; i < N_WORKERS; i++) {
		struct xlb_worker *w = &workers[i];

		w->dp = &dp;
		w->id = i;
		w->queue = i * 3;
		w->xsk.fd = -1;          /* no socket: no xlb_xsk_* samples */
		w->stats.rx_packets = 1000 + i;
		w->stats.tx_packets = 900 + i;
		w->stats.rx_bytes = 64000 + i;
		w->stats.tx_bytes = 57600 + i;
		w->stats.new_flows = 10 + i;
		w->stats.held = 3 + i;
		for (int r = 0; r < XLB_DROP_MAX; r++)
			w->stats.drop[r] = 100 * i + (uint64_t)r;
		w->ct_stats.found = 11 + i;
		w->ct_stats.invalid = 12 + i;
		w->ct_stats.insert = 13 + i;
		w->ct_stats.insert_failed = 14 + i;
		w->ct_stats.drop = 15 + i;
		w->ct_stats.early_drop = 16 + i;
		w->ct_stats.error = 17 + i;
		w->ct_stats.search_restart = 18 + i;
		w->ct_stats.clash_resolve = 19 + i;
		w->ct_stats.chaintoolong = 20 + i;
	}
	ctx = (struct xlb_metrics_ctx){ .dp = &dp, .workers = workers, .n_workers = N_WORKERS };
	return 0;
}

static int teardown(void)
{
	unlink(cfg_path);
	free(workers);
	rcu_thread_offline();
	rcu_barrier();
	if (dp.ct)
		xlb_ct_destroy(dp.ct);
	xlb_services_free(dp.services);
	xlb_config_free(cfg);
	xlb_backend_registry_free();
	rcu_unregister_thread();
	return 0;
}

/* ---- the exposition format, parsed back -------------------------------------- */

#define MAX_SAMPLES 512
#define MAX_FAMILIES 64

struct sample {
	char series[256];         /* name{labels} exactly as written */
	unsigned long long value;
};

struct fam {
	char name[96];
	char type[16];
	bool help;
	unsigned samples;
};

struct exposition {
	struct sample s[MAX_SAMPLES];
	unsigned n;
	struct fam f[MAX_FAMILIES];
	unsigned nf;
	unsigned errors;
};

static struct exposition expo;
static bool quiet;           /* errors are expected: do not print them */

static void bad(struct exposition *e, const char *line, const char *why)
{
	if (!quiet)
		fprintf(stderr, "\nbad line \"%s\": %s\n", line, why);
	e->errors++;
}

static struct fam *find_fam(struct exposition *e, const char *name)
{
	for (unsigned i = 0; i < e->nf; i++)
		if (!strcmp(e->f[i].name, name))
			return &e->f[i];
	return NULL;
}

static bool name_char(char c, bool first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
	       (!first && c >= '0' && c <= '9');
}

/* Length of a metric or label name at p, 0 if none. */
static size_t name_len(const char *p)
{
	size_t n = 0;

	while (name_char(p[n], n == 0))
		n++;
	return n;
}

/* {a="x",b="y\"z"}: returns the length, 0 if malformed. */
static size_t labels_len(const char *p)
{
	size_t n = 1;

	if (*p != '{')
		return 0;
	if (p[n] == '}')
		return n + 1;
	for (;;) {
		size_t l = name_len(p + n);

		if (!l || p[n + l] != '=' || p[n + l + 1] != '"')
			return 0;
		n += l + 2;
		while (p[n] && p[n] != '"') {
			if (p[n] == '\\' && !strchr("\\\"n", p[n + 1]))
				return 0;
			n += p[n] == '\\' ? 2 : 1;
		}
		if (p[n] != '"')
			return 0;
		n++;
		if (p[n] == '}')
			return n + 1;
		if (p[n] != ',')
			return 0;
		n++;
	}
}

static void parse_line(struct exposition *e, char *line, struct fam **cur)
{
	char name[96], *end;
	size_t n;

	if (!strncmp(line, "# HELP ", 7) || !strncmp(line, "# TYPE ", 7)) {
		bool help = line[2] == 'H';
		struct fam *f;

		n = name_len(line + 7);
		if (!n || n >= sizeof(name) || line[7 + n] != ' ' || !line[8 + n])
			return bad(e, line, "HELP/TYPE without a name and text");
		memcpy(name, line + 7, n);
		name[n] = '\0';
		f = find_fam(e, name);
		if (!f) {
			if (e->nf == MAX_FAMILIES)
				return bad(e, line, "too many families");
			f = &e->f[e->nf++];
			memset(f, 0, sizeof(*f));
			strcpy(f->name, name);
		} else if (f != *cur || f->samples) {
			return bad(e, line, "family split: HELP/TYPE after other lines");
		}
		if (help) {
			if (f->help || f->type[0])
				return bad(e, line, "HELP repeated or after TYPE");
			f->help = true;
		} else {
			if (f->type[0])
				return bad(e, line, "TYPE repeated");
			if (strcmp(line + 8 + n, "counter") && strcmp(line + 8 + n, "gauge"))
				return bad(e, line, "TYPE neither counter nor gauge");
			strcpy(f->type, line + 8 + n);
		}
		*cur = f;
		return;
	}
	if (line[0] == '#')
		return bad(e, line, "a comment that is neither HELP nor TYPE");

	n = name_len(line);
	if (!n || n >= sizeof(name))
		return bad(e, line, "no metric name");
	memcpy(name, line, n);
	name[n] = '\0';
	if (!*cur || strcmp((*cur)->name, name))
		return bad(e, line, "sample outside its family (no HELP/TYPE just before)");
	if (!(*cur)->help || !(*cur)->type[0])
		return bad(e, line, "family without HELP or TYPE");
	if (line[n] == '{') {
		size_t l = labels_len(line + n);

		if (!l)
			return bad(e, line, "malformed labels");
		n += l;
	}
	if (line[n] != ' ' || n >= sizeof(e->s[0].series))
		return bad(e, line, "no space before the value");
	if (e->n == MAX_SAMPLES)
		return bad(e, line, "too many samples");
	for (unsigned i = 0; i < e->n; i++)
		if (strlen(e->s[i].series) == n && !strncmp(e->s[i].series, line, n))
			return bad(e, line, "series repeated");
	memcpy(e->s[e->n].series, line, n);
	e->s[e->n].series[n] = '\0';
	errno = 0;
	e->s[e->n].value = strtoull(line + n + 1, &end, 10);
	if (errno || end == line + n + 1 || *end)
		return bad(e, line, "value is not an integer");
	e->n++;
	(*cur)->samples++;
}

static void parse(struct exposition *e, char *text)
{
	struct fam *cur = NULL;
	char *line, *save = NULL;

	memset(e, 0, sizeof(*e));
	if (!*text || text[strlen(text) - 1] != '\n') {
		bad(e, text, "the text must end with a newline");
		return;
	}
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		parse_line(e, line, &cur);
	for (unsigned i = 0; i < e->nf; i++) {
		const struct fam *f = &e->f[i];
		size_t len = strlen(f->name);
		bool total = len > 6 && !strcmp(f->name + len - 6, "_total");

		if (!f->help || !f->type[0])
			bad(e, f->name, "family without HELP or TYPE");
		if (!strcmp(f->type, "counter") != total)
			bad(e, f->name, "counters, and only counters, end in _total");
	}
}

/* The value of a series, or -1 (printed) if absent. */
static long long value(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static long long value(const char *fmt, ...)
{
	char series[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(series, sizeof(series), fmt, ap);
	va_end(ap);
	for (unsigned i = 0; i < expo.n; i++)
		if (!strcmp(expo.s[i].series, series))
			return (long long)expo.s[i].value;
	fprintf(stderr, "\nno series %s\n", series);
	return -1;
}

static char *render(void)
{
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);
	int ret;

	if (!out)
		return NULL;
	ret = xlb_metrics_render(&ctx, out);
	fclose(out);
	if (ret) {
		free(text);
		return NULL;
	}
	return text;
}

/* The checker must be able to say no, or the format tests prove nothing. */
static void test_checker_refuses(void)
{
	static const char *const bad_texts[] = {
		"# TYPE a gauge\na 1\n",                                   /* no HELP */
		"# HELP a x\na 1\n",                                       /* no TYPE */
		"# HELP a x\n# TYPE a counter\na 1\n",                    /* counter not _total */
		"# HELP a_total x\n# TYPE a_total gauge\na_total 1\n",    /* gauge _total */
		"# HELP a x\n# TYPE a gauge\nb 1\n",                      /* outside its family */
		"# HELP a x\n# TYPE a gauge\na{l=\"1\"} 1\n"
		"# HELP b x\n# TYPE b gauge\nb 1\na{l=\"2\"} 1\n",       /* family split */
		"# HELP a x\n# TYPE a gauge\na{l=1} 1\n",                 /* unquoted label */
		"# HELP a x\n# TYPE a gauge\na{l=\"1\" 1\n",              /* unclosed labels */
		"# HELP a x\n# TYPE a gauge\na one\n",                    /* not a number */
		"# HELP a x\n# TYPE a gauge\na 1\na 2\n",                 /* series repeated */
		"# HELP a x\n# TYPE a gauge\na 1",                         /* no final newline */
		"# HELP a x\n# TYPE a summary\na 1\n",                    /* unexpected type */
	};
	static const char good[] = "# HELP a_total x\n# TYPE a_total counter\n"
				   "a_total{l=\"q\\\"\\\\\",m=\"\"} 7\n";
	char text[256];

	for (size_t i = 0; i < sizeof(bad_texts) / sizeof(bad_texts[0]); i++) {
		snprintf(text, sizeof(text), "%s", bad_texts[i]);
		quiet = true;
		parse(&expo, text);
		quiet = false;
		if (!expo.errors)
			fprintf(stderr, "\naccepted: %s\n", bad_texts[i]);
		CU_ASSERT_NOT_EQUAL(expo.errors, 0);
	}
	snprintf(text, sizeof(text), "%s", good);
	parse(&expo, text);
	CU_ASSERT_EQUAL(expo.errors, 0);
	CU_ASSERT_EQUAL(value("a_total{l=\"q\\\"\\\\\",m=\"\"}"), 7);
}

/* ---- rendering ----------------------------------------------------------------- */

static void test_format(void)
{
	char *text = render();

	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	parse(&expo, text);
	free(text);
	CU_ASSERT_EQUAL(expo.errors, 0);
	CU_ASSERT(expo.nf >= 20);
	CU_ASSERT(expo.n >= 60);
}

#define WEB_B1 "service=\"web\",backend=\"198.18.2.2:8080\",protocol=\"tcp\""
#define WEB_B2 "service=\"web\",backend=\"198.18.2.3:8080\",protocol=\"tcp\""
#define DNS_B1 "service=\"dns\",backend=\"198.18.2.2:5353\",protocol=\"udp\""
#define WEB6_B1 "service=\"web6\",backend=\"[2001:2:0:2::2]:8080\",protocol=\"tcp\""

static void test_backends(void)
{
	static const struct {
		const char *labels;
		long long flows, packets, bytes, new_flows, up, weight;
	} want[] = {
		/* live 5+4+2+1 packets, 500+4000+120+60 bytes, plus closed 100/10000 */
		{ WEB_B1, 2, 112, 14680, 10, 1, 1 },
		{ WEB_B2, 1, 1, 60, 1, 0, 0 },
		{ DNS_B1, 1, 9, 940, 3, 1, 1 },
		{ WEB6_B1, 0, 0, 0, 0, 1, 1 },
	};
	char *text = render();

	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	parse(&expo, text);
	free(text);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		CU_ASSERT_EQUAL(value("xlb_backend_flows{%s}", want[i].labels), want[i].flows);
		CU_ASSERT_EQUAL(value("xlb_backend_packets_total{%s}", want[i].labels),
				want[i].packets);
		CU_ASSERT_EQUAL(value("xlb_backend_bytes_total{%s}", want[i].labels), want[i].bytes);
		CU_ASSERT_EQUAL(value("xlb_backend_new_flows_total{%s}", want[i].labels),
				want[i].new_flows);
		CU_ASSERT_EQUAL(value("xlb_backend_up{%s}", want[i].labels), want[i].up);
		CU_ASSERT_EQUAL(value("xlb_backend_weight{%s}", want[i].labels), want[i].weight);
	}
	CU_ASSERT_EQUAL(find_fam(&expo, "xlb_backend_up")->samples, 4);
	CU_ASSERT_STRING_EQUAL(find_fam(&expo, "xlb_backend_flows")->type, "gauge");
	CU_ASSERT_STRING_EQUAL(find_fam(&expo, "xlb_backend_packets_total")->type, "counter");
}

static void test_workers(void)
{
	static const char *const ct_names[] = {
		"found", "invalid", "insert", "insert_failed", "drop", "early_drop", "error",
		"search_restart", "clash_resolve", "chaintoolong",
	};
	char *text = render();

	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	parse(&expo, text);
	free(text);
	for (unsigned i = 0; i < N_WORKERS; i++) {
		CU_ASSERT_EQUAL(value("xlb_worker_rx_packets_total{worker=\"%u\"}", i), 1000 + i);
		CU_ASSERT_EQUAL(value("xlb_worker_tx_packets_total{worker=\"%u\"}", i), 900 + i);
		CU_ASSERT_EQUAL(value("xlb_worker_rx_bytes_total{worker=\"%u\"}", i), 64000 + i);
		CU_ASSERT_EQUAL(value("xlb_worker_tx_bytes_total{worker=\"%u\"}", i), 57600 + i);
		CU_ASSERT_EQUAL(value("xlb_worker_new_flows_total{worker=\"%u\"}", i), 10 + i);
		CU_ASSERT_EQUAL(value("xlb_worker_held_packets_total{worker=\"%u\"}", i), 3 + i);
		for (int r = 0; r < XLB_DROP_MAX; r++)
			CU_ASSERT_EQUAL(value("xlb_worker_drops_total{worker=\"%u\",reason=\"%s\"}", i,
					      xlb_drop_reason_name(r)), 100 * i + r);
		/* conntrack -S, in its order: found is 11, chaintoolong 20. */
		for (unsigned k = 0; k < sizeof(ct_names) / sizeof(ct_names[0]); k++)
			CU_ASSERT_EQUAL(value("xlb_conntrack_%s_total{worker=\"%u\"}", ct_names[k], i),
					11 + k + i);
	}
	CU_ASSERT_EQUAL(find_fam(&expo, "xlb_worker_drops_total")->samples,
			N_WORKERS * XLB_DROP_MAX);
	CU_ASSERT_EQUAL(value("xlb_conntrack_entries"), 4);
	CU_ASSERT_EQUAL(value("xlb_conntrack_max"), 1000);
	CU_ASSERT_STRING_EQUAL(find_fam(&expo, "xlb_conntrack_entries")->type, "gauge");
	/* The index: max / 2 + 1 buckets (the configured floor is lower
	 * here), none of the overflow pool used by 4 flows. */
	CU_ASSERT_EQUAL(value("xlb_conntrack_buckets"), xlb_ct_buckets(dp.ct));
	CU_ASSERT(value("xlb_conntrack_buckets") >= 501);
	CU_ASSERT_EQUAL(value("xlb_conntrack_overflow_buckets"), 0);
	CU_ASSERT(value("xlb_conntrack_overflow_buckets_max") > 0);
	/* No socket and no XDP program here: those families are left out,
	 * not written empty or as zeros that would look like real counts. */
	CU_ASSERT_PTR_NULL(find_fam(&expo, "xlb_xsk_rx_dropped_total"));
	CU_ASSERT_PTR_NULL(find_fam(&expo, "xlb_xdp_packets_total"));
}

/* A flow leaving the table moves its counts to the backend's closed_*
 * (the destroy hook): the counter must not go backwards. */
static void test_counter_monotonic_across_flow_end(void)
{
	struct xlb_backend_stats *bs = xlb_backend_stats(1);
	struct xlb_tuple t;
	struct xlb_flow *f;
	enum xlb_dir dir;
	char *text;

	tuple4(&t, "198.18.0.10", 40002, "198.18.0.100", 80, IPPROTO_TCP);
	f = xlb_ct_lookup(dp.ct, &t, xlb_ct_hash(dp.ct, &t), xlb_now_ns(), &dir);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	bs->closed_packets += f->counter[0].packets + f->counter[1].packets;
	bs->closed_bytes += f->counter[0].bytes + f->counter[1].bytes;
	bs->active_flows--;
	CU_ASSERT_TRUE(xlb_ct_delete(dp.ct, f));

	text = render();
	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	parse(&expo, text);
	free(text);
	CU_ASSERT_EQUAL(expo.errors, 0);
	CU_ASSERT_EQUAL(value("xlb_backend_packets_total{" WEB_B2 "}"), 1);
	CU_ASSERT_EQUAL(value("xlb_backend_bytes_total{" WEB_B2 "}"), 60);
	CU_ASSERT_EQUAL(value("xlb_backend_flows{" WEB_B2 "}"), 0);
	CU_ASSERT_EQUAL(value("xlb_conntrack_entries"), 3);
}

/* ---- HTTP ------------------------------------------------------------------------ */

struct http_reply {
	int status;
	char content_type[128];
	char allow[64];
	char *body;
	size_t body_len;
};

/* Requests on a fresh connection, read until the server closes it; the
 * first reply's status and headers are parsed, the rest is the body. The
 * caller is offline as an RCU reader while it waits. */
static int http(uint16_t port, const char *request, struct http_reply *r)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	char *buf = NULL, *hdr_end, *line;
	size_t len = 0, cap = 0;
	int fd, ret = -1;

	memset(r, 0, sizeof(*r));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) ||
	    write(fd, request, strlen(request)) != (ssize_t)strlen(request))
		goto out;
	for (;;) {
		ssize_t n;

		if (cap - len < 4096) {
			char *nb = realloc(buf, cap + 65536);

			if (!nb)
				goto out;
			buf = nb;
			cap += 65536;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0)
			goto out;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	hdr_end = strstr(buf, "\r\n\r\n");
	if (!hdr_end || sscanf(buf, "HTTP/1.%*d %d", &r->status) != 1)
		goto out;
	*hdr_end = '\0';
	for (line = strstr(buf, "\r\n"); line; line = strstr(line, "\r\n")) {
		line += 2;
		if (!strncasecmp(line, "Content-Type: ", 14))
			sscanf(line + 14, "%127[^\r]", r->content_type);
		else if (!strncasecmp(line, "Allow: ", 7))
			sscanf(line + 7, "%63[^\r]", r->allow);
	}
	r->body_len = len - (size_t)(hdr_end + 4 - buf);
	r->body = malloc(r->body_len + 1);
	if (!r->body)
		goto out;
	memcpy(r->body, hdr_end + 4, r->body_len);
	r->body[r->body_len] = '\0';
	ret = 0;
out:
	free(buf);
	close(fd);
	return ret;
}

static void test_http(void)
{
	struct xlb_endpoint ep = { .port = 0 };
	struct xlb_metrics *m, *again;
	struct http_reply r;
	uint16_t port;
	char *want;
	int err;

	xlb_addr_pton("127.0.0.1", &ep.addr, &ep.family);
	m = xlb_metrics_start(&ep, &ctx);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	port = xlb_metrics_port(m);
	CU_ASSERT_NOT_EQUAL(port, 0);
	want = render();
	CU_ASSERT_PTR_NOT_NULL_FATAL(want);

	rcu_thread_offline();
	err = http(port, "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", &r);
	CU_ASSERT_EQUAL(err, 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(r.content_type, "text/plain; version=0.0.4");
	/* What a scraper gets is exactly the rendering (nothing changes here
	 * between the two), and parses cleanly. */
	CU_ASSERT_PTR_NOT_NULL_FATAL(r.body);
	CU_ASSERT_STRING_EQUAL(r.body, want);
	parse(&expo, r.body);
	CU_ASSERT_EQUAL(expo.errors, 0);
	CU_ASSERT_EQUAL(value("xlb_conntrack_max"), 1000);
	free(r.body);

	/* Keep-alive, as scrapers use it: two requests on one connection,
	 * two answers (the second request asks the server to close). */
	CU_ASSERT_EQUAL(http(port, "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n"
			     "GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r.body);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\r\n\r\n# HELP xlb_backend_flows "));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "HTTP/1.1 200 OK\r\n"));
	free(r.body);

	/* The query string is not part of the path. */
	CU_ASSERT_EQUAL(http(port, "GET /metrics?x=1 HTTP/1.0\r\n\r\n", &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	free(r.body);

	CU_ASSERT_EQUAL(http(port, "GET /other HTTP/1.0\r\n\r\n", &r), 0);
	CU_ASSERT_EQUAL(r.status, 404);
	free(r.body);
	CU_ASSERT_EQUAL(http(port, "GET / HTTP/1.0\r\n\r\n", &r), 0);
	CU_ASSERT_EQUAL(r.status, 404);
	free(r.body);

	CU_ASSERT_EQUAL(http(port, "POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n", &r), 0);
	CU_ASSERT_EQUAL(r.status, 405);
	CU_ASSERT_STRING_EQUAL(r.allow, "GET, HEAD");
	free(r.body);

	CU_ASSERT_EQUAL(http(port, "HEAD /metrics HTTP/1.0\r\n\r\n", &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(r.content_type, "text/plain; version=0.0.4");
	CU_ASSERT_EQUAL(r.body_len, 0);
	free(r.body);

	/* The server's thread is offline between scrapes: a grace period
	 * completes (this would hang if it were not). */
	synchronize_rcu();
	rcu_thread_online();

	/* Binding an address in use fails with the reason, as xlbd reports. */
	ep.port = htons(port);
	again = xlb_metrics_start(&ep, &ctx);
	err = errno;
	CU_ASSERT_PTR_NULL(again);
	CU_ASSERT_EQUAL(err, EADDRINUSE);
	xlb_metrics_stop(again);

	xlb_metrics_stop(m);
	free(want);
}

/* IPv6 loopback, when the machine has it. */
static void test_http_ipv6(void)
{
	struct xlb_endpoint ep = { .port = 0 };
	struct xlb_metrics *m;

	xlb_addr_pton("::1", &ep.addr, &ep.family);
	m = xlb_metrics_start(&ep, &ctx);
	if (!m && (errno == EADDRNOTAVAIL || errno == EAFNOSUPPORT)) {
		fprintf(stderr, "(no IPv6 loopback: skipped) ");
		return;
	}
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_NOT_EQUAL(xlb_metrics_port(m), 0);
	xlb_metrics_stop(m);
}

int main(void)
{
	static const struct unit_test tests[] = {
		{ "the format checker refuses what scrapers would", test_checker_refuses },
		{ "every line parses, every family has HELP and TYPE", test_format },
		{ "backend families: flows, packets, bytes, up, weight", test_backends },
		{ "worker, drop and conntrack -S families", test_workers },
		{ "a flow's end does not make counters go back",
		  test_counter_monotonic_across_flow_end },
		{ "HTTP: GET /metrics, 404, 405, HEAD, address in use", test_http },
		{ "HTTP on IPv6 loopback", test_http_ipv6 },
	};

	return UNIT_RUN("metrics", setup, teardown, tests);
}
