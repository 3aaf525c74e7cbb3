/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The config loader as a user meets it: the shipped example, the SPEC's
 * example and a minimal file load with the documented values; each kind
 * of mistake is refused with a message naming file, section, key and value.
 *
 * Runs with the working directory tests/ (meson's workdir).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "config.h"
#include "unit.h"

#define CONF_EXAMPLE "../conf/xlb.ini"
#define CONF_SPEC "unit/configs/spec.ini"
#define CONF_MINIMAL "unit/configs/minimal.ini"

static char tmpdir[] = "/tmp/xlb-test-config-XXXXXX";
static char tmppath[256];

/* Writes text to a fresh file in tmpdir and returns its path. */
static const char *write_conf(const char *name, const char *text)
{
	FILE *f;

	snprintf(tmppath, sizeof(tmppath), "%s/%s.ini", tmpdir, name);
	f = fopen(tmppath, "w");
	if (!f)
		return NULL;
	fputs(text, f);
	fclose(f);
	return tmppath;
}

/* Runs the loader with stderr captured into out, for the warnings. */
static int load_capturing(const char *path, struct xlb_config **cfg, char *err,
			  size_t errlen, char *out, size_t outlen)
{
	FILE *cap = tmpfile();
	int saved, ret;
	size_t n;

	fflush(stderr);
	saved = dup(STDERR_FILENO);
	dup2(fileno(cap), STDERR_FILENO);
	ret = xlb_config_load(path, cfg, err, errlen);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(cap);
	n = fread(out, 1, outlen - 1, cap);
	out[n] = '\0';
	fclose(cap);
	return ret;
}

static void assert_endpoint(const struct xlb_endpoint *ep, const char *addr, uint16_t port)
{
	char buf[XLB_ADDRSTRLEN];

	CU_ASSERT_PTR_NOT_NULL_FATAL(xlb_addr_ntop(&ep->addr, ep->family, buf, sizeof(buf)));
	CU_ASSERT_STRING_EQUAL(buf, addr);
	CU_ASSERT_EQUAL(ntohs(ep->port), port);
	CU_ASSERT_EQUAL(ep->family, strchr(addr, ':') ? AF_INET6 : AF_INET);
}

static void assert_default_ct(const struct xlb_ct_conf *ct)
{
	CU_ASSERT_EQUAL(ct->max, 262144);
	CU_ASSERT_EQUAL(ct->buckets, 65536);
	for (int t = 0; t < XLB_TO_MAX; t++)
		CU_ASSERT_EQUAL(ct->timeout[t], xlb_default_timeouts[t]);
	CU_ASSERT_TRUE(ct->tcp_loose);
	CU_ASSERT_FALSE(ct->tcp_be_liberal);
}

/* The kernel's defaults, which the SPEC and conf/xlb.ini promise. */
static void test_timeout_table(void)
{
	static const struct {
		enum xlb_timeout t;
		const char *key;
		uint32_t secs;
	} want[] = {
		{ XLB_TO_TCP_SYN_SENT, "tcp_timeout_syn_sent", 120 },
		{ XLB_TO_TCP_SYN_RECV, "tcp_timeout_syn_recv", 60 },
		{ XLB_TO_TCP_ESTABLISHED, "tcp_timeout_established", 432000 },
		{ XLB_TO_TCP_FIN_WAIT, "tcp_timeout_fin_wait", 120 },
		{ XLB_TO_TCP_CLOSE_WAIT, "tcp_timeout_close_wait", 60 },
		{ XLB_TO_TCP_LAST_ACK, "tcp_timeout_last_ack", 30 },
		{ XLB_TO_TCP_TIME_WAIT, "tcp_timeout_time_wait", 120 },
		{ XLB_TO_TCP_CLOSE, "tcp_timeout_close", 10 },
		{ XLB_TO_TCP_MAX_RETRANS, "tcp_timeout_max_retrans", 300 },
		{ XLB_TO_TCP_UNACK, "tcp_timeout_unacknowledged", 300 },
		{ XLB_TO_UDP, "udp_timeout", 30 },
		{ XLB_TO_UDP_STREAM, "udp_timeout_stream", 120 },
		{ XLB_TO_ICMP, "icmp_timeout", 30 },
		{ XLB_TO_GENERIC, "generic_timeout", 600 },
	};

	CU_ASSERT_EQUAL(sizeof(want) / sizeof(want[0]), XLB_TO_MAX);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		CU_ASSERT_STRING_EQUAL(xlb_timeout_key(want[i].t), want[i].key);
		CU_ASSERT_EQUAL(xlb_default_timeouts[want[i].t], want[i].secs);
	}
	CU_ASSERT_PTR_NULL(xlb_timeout_key(XLB_TO_MAX));
}

static void test_example_conf(void)
{
	struct xlb_config *cfg = NULL;
	char err[512] = "";
	const struct xlb_service_conf *s;

	CU_ASSERT_EQUAL_FATAL(xlb_config_load(CONF_EXAMPLE, &cfg, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(cfg->path, CONF_EXAMPLE);
	CU_ASSERT_STRING_EQUAL(cfg->global.interface, "xlb0");
	CU_ASSERT_TRUE(cfg->global.all_queues);
	CU_ASSERT_EQUAL(cfg->global.xdp_mode, XLB_XDP_AUTO);
	CU_ASSERT_STRING_EQUAL(cfg->global.control_socket, "/run/xlb/xlb.sock");
	assert_default_ct(&cfg->ct);
	CU_ASSERT_EQUAL_FATAL(cfg->n_services, 2);

	s = &cfg->services[0];
	CU_ASSERT_STRING_EQUAL(s->name, "web");
	assert_endpoint(&s->vip, "198.18.0.100", 80);
	CU_ASSERT_EQUAL(s->proto, IPPROTO_TCP);
	CU_ASSERT_EQUAL(s->scheduler, XLB_SCHED_MAGLEV);
	CU_ASSERT_EQUAL(s->maglev_table_size, 65537);
	CU_ASSERT_EQUAL_FATAL(s->n_backends, 3);
	assert_endpoint(&s->backends[0].ep, "198.18.2.2", 8080);
	assert_endpoint(&s->backends[1].ep, "198.18.2.3", 8080);
	assert_endpoint(&s->backends[2].ep, "198.18.3.2", 8080);
	CU_ASSERT_EQUAL(s->backends[0].weight, 1);
	CU_ASSERT_EQUAL(s->backends[1].weight, 2);
	CU_ASSERT_EQUAL(s->backends[2].weight, 1);
	CU_ASSERT_FALSE(s->backends[0].has_mac);
	CU_ASSERT_EQUAL(s->health, XLB_HEALTH_HTTP);
	CU_ASSERT_EQUAL(s->health_port, 8080);
	CU_ASSERT_EQUAL(s->health_interval_ms, 1000);
	CU_ASSERT_EQUAL(s->health_timeout_ms, 500);
	CU_ASSERT_EQUAL(s->health_rise, 2);
	CU_ASSERT_EQUAL(s->health_fall, 2);
	CU_ASSERT_STRING_EQUAL(s->health_path, "/");
	CU_ASSERT_EQUAL(s->health_status, 200);
	CU_ASSERT_STRING_EQUAL(s->health_payload, "ping");
	CU_ASSERT_EQUAL(s->on_backend_down, XLB_DOWN_RESET);
	CU_ASSERT_EQUAL(s->drain_timeout, 300);
	CU_ASSERT_EQUAL(s->no_backend, XLB_NOBACKEND_REJECT);

	s = &cfg->services[1];
	CU_ASSERT_STRING_EQUAL(s->name, "web6");
	assert_endpoint(&s->vip, "2001:2::100", 80);
	CU_ASSERT_EQUAL(s->proto, IPPROTO_TCP);
	CU_ASSERT_EQUAL_FATAL(s->n_backends, 3);
	assert_endpoint(&s->backends[0].ep, "2001:2:0:2::2", 8080);
	assert_endpoint(&s->backends[1].ep, "2001:2:0:2::3", 8080);
	assert_endpoint(&s->backends[2].ep, "2001:2:0:3::2", 8080);
	CU_ASSERT_EQUAL(s->backends[1].weight, 2);
	CU_ASSERT_EQUAL(s->health, XLB_HEALTH_TCP);
	CU_ASSERT_EQUAL(s->health_port, 0);   /* each backend's own */
	CU_ASSERT_EQUAL(s->maglev_table_size, 65537);
	xlb_config_free(cfg);
}

static void test_spec_example(void)
{
	struct xlb_config *cfg = NULL;
	char err[512] = "", warnings[2048];
	const struct xlb_service_conf *s;
	int ret;

	ret = load_capturing(CONF_SPEC, &cfg, err, sizeof(err), warnings, sizeof(warnings));
	if (ret)
		fprintf(stderr, "%s\n", err);
	CU_ASSERT_EQUAL_FATAL(ret, 0);
	CU_ASSERT_STRING_EQUAL(cfg->global.interface, "xlb0");
	CU_ASSERT_TRUE(cfg->global.all_queues);
	assert_default_ct(&cfg->ct);
	CU_ASSERT_EQUAL_FATAL(cfg->n_services, 1);
	s = &cfg->services[0];
	CU_ASSERT_STRING_EQUAL(s->name, "web");
	assert_endpoint(&s->vip, "198.18.0.100", 80);
	CU_ASSERT_EQUAL_FATAL(s->n_backends, 3);
	assert_endpoint(&s->backends[0].ep, "198.18.2.2", 8080);
	assert_endpoint(&s->backends[1].ep, "198.18.2.3", 8080);
	CU_ASSERT_EQUAL(s->backends[1].weight, 2);
	assert_endpoint(&s->backends[2].ep, "2001:2:0:2::2", 8080);
	CU_ASSERT_EQUAL(s->health, XLB_HEALTH_HTTP);
	CU_ASSERT_EQUAL(s->health_port, 8080);
	CU_ASSERT_STRING_EQUAL(s->health_path, "/");
	CU_ASSERT_STRING_EQUAL(s->health_payload, "ping");
	CU_ASSERT_EQUAL(s->on_backend_down, XLB_DOWN_RESET);
	CU_ASSERT_EQUAL(s->no_backend, XLB_NOBACKEND_REJECT);
	/* The IPv6 backend of an IPv4 VIP is kept, and the user is told. */
	CU_ASSERT_PTR_NOT_NULL(strstr(warnings, "[service web] backends = [2001:2:0:2::2]:8080"));
	CU_ASSERT_PTR_NOT_NULL(strstr(warnings, "gets no traffic"));
	xlb_config_free(cfg);
}

static void test_minimal(void)
{
	struct xlb_config *cfg = NULL;
	char err[512] = "";

	CU_ASSERT_EQUAL_FATAL(xlb_config_load(CONF_MINIMAL, &cfg, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(cfg->global.interface, "xlb0");
	CU_ASSERT_TRUE(cfg->global.all_queues);
	CU_ASSERT_EQUAL(cfg->global.xdp_mode, XLB_XDP_AUTO);
	CU_ASSERT_STRING_EQUAL(cfg->global.control_socket, "/run/xlb/xlb.sock");
	assert_default_ct(&cfg->ct);
	CU_ASSERT_EQUAL(cfg->n_services, 0);
	xlb_config_free(cfg);
}

/* ---- good variations: one file each, one check each -------------------- */

#define GLOBAL "[global]\ninterface = xlb0\n"
#define SERVICE "[service web]\nvip = 198.18.0.100\nport = 80\n"

static void check_queues_n(const struct xlb_config *c)
{
	CU_ASSERT_FALSE(c->global.all_queues);
	CU_ASSERT_EQUAL_FATAL(c->global.n_queues, 4);
	for (uint16_t i = 0; i < 4; i++)
		CU_ASSERT_EQUAL(c->global.queues[i], i);
}

static void check_queues_list(const struct xlb_config *c)
{
	static const uint16_t want[] = { 0, 1, 2, 3, 6, 9 };

	CU_ASSERT_FALSE(c->global.all_queues);
	CU_ASSERT_EQUAL_FATAL(c->global.n_queues, 6);
	for (int i = 0; i < 6; i++)
		CU_ASSERT_EQUAL(c->global.queues[i], want[i]);
}

static void check_queue_3(const struct xlb_config *c)
{
	CU_ASSERT_FALSE(c->global.all_queues);
	CU_ASSERT_EQUAL_FATAL(c->global.n_queues, 1);
	CU_ASSERT_EQUAL(c->global.queues[0], 3);
}

static void check_queues_64(const struct xlb_config *c)
{
	CU_ASSERT_EQUAL_FATAL(c->global.n_queues, 64);
	CU_ASSERT_EQUAL(c->global.queues[0], 100);
	CU_ASSERT_EQUAL(c->global.queues[63], 163);
}

static void check_global_set(const struct xlb_config *c)
{
	CU_ASSERT_STRING_EQUAL(c->global.interface, "veth-lb.1");
	CU_ASSERT_EQUAL(c->global.xdp_mode, XLB_XDP_GENERIC);
	CU_ASSERT_STRING_EQUAL(c->global.control_socket, "/tmp/xlb test;1.sock");
}

static void check_metrics_v4(const struct xlb_config *c)
{
	CU_ASSERT_TRUE(c->global.metrics_enabled);
	assert_endpoint(&c->global.metrics, "127.0.0.1", 9100);
}

static void check_metrics_v6(const struct xlb_config *c)
{
	CU_ASSERT_TRUE(c->global.metrics_enabled);
	assert_endpoint(&c->global.metrics, "2001:2::1", 65535);
}

static void check_metrics_off(const struct xlb_config *c)
{
	CU_ASSERT_FALSE(c->global.metrics_enabled);
}

static void check_buckets_as_given(const struct xlb_config *c)
{
	CU_ASSERT_EQUAL(c->ct.buckets, 50000);
	CU_ASSERT_EQUAL(c->ct.max, 1);
}

static void check_buckets_one(const struct xlb_config *c)
{
	CU_ASSERT_EQUAL(c->ct.buckets, 1);
}

static void check_buckets_odd(const struct xlb_config *c)
{
	CU_ASSERT_EQUAL(c->ct.buckets, 100);
}

static void check_ct_set(const struct xlb_config *c)
{
	CU_ASSERT_EQUAL(c->ct.timeout[XLB_TO_TCP_ESTABLISHED], 7200);
	CU_ASSERT_EQUAL(c->ct.timeout[XLB_TO_UDP], 10);
	CU_ASSERT_EQUAL(c->ct.timeout[XLB_TO_TCP_SYN_SENT], 120);
	CU_ASSERT_FALSE(c->ct.tcp_loose);
	CU_ASSERT_TRUE(c->ct.tcp_be_liberal);
	CU_ASSERT_EQUAL(c->ct.max, 67108864);
	CU_ASSERT_EQUAL(c->ct.buckets, 67108864);
}

static void check_backend_options(const struct xlb_config *c)
{
	const struct xlb_service_conf *s = &c->services[0];
	static const uint8_t mac[6] = { 0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee };

	CU_ASSERT_EQUAL_FATAL(s->n_backends, 4);
	assert_endpoint(&s->backends[0].ep, "198.18.2.2", 80);   /* service port */
	CU_ASSERT_EQUAL(s->backends[0].weight, 0);
	CU_ASSERT_TRUE(s->backends[0].has_mac);
	CU_ASSERT_EQUAL(memcmp(s->backends[0].mac, mac, 6), 0);
	assert_endpoint(&s->backends[1].ep, "198.18.2.2", 81);
	CU_ASSERT_EQUAL(s->backends[1].weight, 65535);
	CU_ASSERT_FALSE(s->backends[1].has_mac);
	assert_endpoint(&s->backends[2].ep, "2001:2::2", 80);
	assert_endpoint(&s->backends[3].ep, "2001:2::2", 8080);
	CU_ASSERT_EQUAL(s->backends[3].weight, 7);
	CU_ASSERT_TRUE(s->backends[3].has_mac);
}

static void check_service_set(const struct xlb_config *c)
{
	const struct xlb_service_conf *s = &c->services[0];

	CU_ASSERT_EQUAL(s->proto, IPPROTO_UDP);
	CU_ASSERT_EQUAL(s->maglev_table_size, 251);
	CU_ASSERT_EQUAL(s->health, XLB_HEALTH_UDP);
	CU_ASSERT_EQUAL(s->health_port, 53);
	CU_ASSERT_EQUAL(s->health_interval_ms, 200);
	CU_ASSERT_EQUAL(s->health_timeout_ms, 199);
	CU_ASSERT_EQUAL(s->health_rise, 1);
	CU_ASSERT_EQUAL(s->health_fall, 100);
	CU_ASSERT_STRING_EQUAL(s->health_path, "/healthz?full=1");
	CU_ASSERT_EQUAL(s->health_status, 204);
	CU_ASSERT_STRING_EQUAL(s->health_payload, " hello; there ");
	CU_ASSERT_EQUAL(s->on_backend_down, XLB_DOWN_KEEP);
	CU_ASSERT_EQUAL(s->drain_timeout, 0);
	CU_ASSERT_EQUAL(s->no_backend, XLB_NOBACKEND_DROP);
}

static void check_two_services(const struct xlb_config *c)
{
	CU_ASSERT_EQUAL_FATAL(c->n_services, 3);
	CU_ASSERT_STRING_EQUAL(c->services[0].name, "web");
	CU_ASSERT_STRING_EQUAL(c->services[1].name, "dns");
	CU_ASSERT_STRING_EQUAL(c->services[2].name, "web.alt-2_b");
	CU_ASSERT_EQUAL(c->services[1].proto, IPPROTO_UDP);
	CU_ASSERT_EQUAL(ntohs(c->services[2].vip.port), 81);
}

static void check_no_backends(const struct xlb_config *c)
{
	CU_ASSERT_EQUAL_FATAL(c->n_services, 1);
	CU_ASSERT_EQUAL(c->services[0].n_backends, 0);
	CU_ASSERT_PTR_NULL(c->services[0].backends);
}

static void check_continuation(const struct xlb_config *c)
{
	CU_ASSERT_EQUAL_FATAL(c->n_services, 1);
	CU_ASSERT_EQUAL(c->services[0].n_backends, 3);
}

static const struct good_case {
	const char *name;
	const char *text;
	void (*check)(const struct xlb_config *c);
	const char *warning;    /* expected on stderr, or NULL for silence */
} good_cases[] = {
	{ "queues-n", GLOBAL "queues = 4\n", check_queues_n, NULL },
	{ "queues-list", GLOBAL "queues = 6, 0-3, 2,9 ,1-2\n", check_queues_list, NULL },
	{ "queues-3-3", GLOBAL "queues = 3-3\n", check_queue_3, NULL },
	{ "queues-64", GLOBAL "queues = 100-163\n", check_queues_64, NULL },
	{ "global-set", "[GLOBAL]\nInterface = veth-lb.1\nxdp_mode = Generic\n"
	  "control_socket = \"/tmp/xlb test;1.sock\"   ; quoted\n", check_global_set, NULL },
	{ "metrics-v4", GLOBAL "metrics = 127.0.0.1:9100\n", check_metrics_v4, NULL },
	{ "metrics-v6", GLOBAL "metrics = [2001:2::1]:65535\n", check_metrics_v6, NULL },
	{ "metrics-empty", GLOBAL "metrics =\n", check_metrics_off, NULL },
	{ "metrics-absent", GLOBAL, check_metrics_off, NULL },
	{ "buckets-as-given", GLOBAL "[conntrack]\nbuckets = 50000\nmax = 1\n",
	  check_buckets_as_given, NULL },
	{ "buckets-one", GLOBAL "[conntrack]\nbuckets = 1\n", check_buckets_one, NULL },
	{ "buckets-odd", GLOBAL "[conntrack]\nbuckets = 100\n", check_buckets_odd, NULL },
	{ "ct-set", GLOBAL "[conntrack]\ntcp_timeout_established = 7200\nudp_timeout = 10\n"
	  "tcp_loose = 0\ntcp_be_liberal = 1\nmax = 67108864\nbuckets = 67108864\n",
	  check_ct_set, NULL },
	{ "backend-options", GLOBAL SERVICE
	  "backends = 198.18.2.2 mac=02:AA:bb:cc:dd:ee weight=0, 198.18.2.2:81 weight=65535,"
	  " [2001:2::2], [2001:2::2]:8080  weight=7\tmac=02:00:00:00:00:01\n",
	  check_backend_options, "gets no traffic" },
	{ "service-set", GLOBAL "[service web]\nvip = 198.18.0.53\nport = 53\n"
	  "protocol = UDP\nmaglev_table_size = 251\nbackends = 198.18.2.2\nhealth = udp\n"
	  "health_port = 53\nhealth_interval_ms = 200\nhealth_timeout_ms = 199\n"
	  "health_rise = 1\nhealth_fall = 100\nhealth_path = /healthz?full=1\n"
	  "health_status = 204\nhealth_payload = \" hello; there \"\n"
	  "on_backend_down = keep\ndrain_timeout = 0\nno_backend = drop\n",
	  check_service_set, NULL },
	/* Same VIP and port, other protocol; same VIP, other port: both fine. */
	{ "services", GLOBAL SERVICE "backends = 198.18.2.2\n"
	  "[service dns]\nvip = 198.18.0.100\nport = 80\nprotocol = udp\n"
	  "backends = 198.18.2.2\n"
	  "[service   Web.alt-2_b]   # comment after a header\nvip = 198.18.0.100\n"
	  "port = 81\nbackends = 198.18.2.2\n", check_two_services, NULL },
	{ "no-backends", GLOBAL SERVICE "backends =\n", check_no_backends, "backends: none" },
	{ "no-backends-key", GLOBAL SERVICE, check_no_backends, "backends: none" },
	{ "crlf-bom", "\xef\xbb\xbf; made elsewhere\r\n[global]  \r\ninterface = xlb0\r\n"
	  "[service web]\r\nvip = 198.18.0.100\r\nport = 80\r\n"
	  "backends = 198.18.2.2, 198.18.2.3 weight=1 , 198.18.2.4\r\n",
	  check_continuation, NULL },
	{ "continuation", GLOBAL SERVICE "backends = 198.18.2.2, \\\n  198.18.2.3, \\\n"
	  "  198.18.2.4\n", check_continuation, NULL },
};

static void test_good_table(void)
{
	for (size_t i = 0; i < sizeof(good_cases) / sizeof(good_cases[0]); i++) {
		const struct good_case *t = &good_cases[i];
		struct xlb_config *cfg = NULL;
		char err[512] = "", warnings[2048];
		const char *path = write_conf(t->name, t->text);
		int ret;

		CU_ASSERT_PTR_NOT_NULL_FATAL(path);
		ret = load_capturing(path, &cfg, err, sizeof(err), warnings, sizeof(warnings));
		if (ret)
			fprintf(stderr, "\n%s: unexpected error: %s\n", t->name, err);
		CU_ASSERT_EQUAL(ret, 0);
		if (ret)
			continue;
		t->check(cfg);
		if (t->warning) {
			CU_ASSERT_PTR_NOT_NULL(strstr(warnings, t->warning));
		} else {
			CU_ASSERT_STRING_EQUAL(warnings, "");
		}
		xlb_config_free(cfg);
	}
}

/* ---- mistakes ---------------------------------------------------------- */

static const struct bad_case {
	const char *name;
	const char *text;
	const char *want;       /* a substring of the message */
} bad_cases[] = {
	/* structure */
	{ "unknown-section", GLOBAL "[servers]\nx = 1\n",
	  "[servers]: unknown section (expected [global], [conntrack] or [service NAME])" },
	{ "unknown-key-global", GLOBAL "interfaces = xlb1\n",
	  "[global] interfaces = xlb1: unknown key (expected one of: interface, queues" },
	{ "unknown-key-ct", GLOBAL "[conntrack]\ntcp_timeout_estab = 5\n",
	  "[conntrack] tcp_timeout_estab = 5: unknown key" },
	{ "unknown-key-service", GLOBAL SERVICE "weight = 3\n",
	  "[service web] weight = 3: unknown key" },
	{ "syntax", "[global]\ninterface xlb0\n", ":2: syntax error: \"interface xlb0\"" },
	{ "syntax-header", "[global\ninterface = xlb0\n", ":1: syntax error: \"[global\": no closing ]" },
	{ "syntax-after-header", "[global] x\ninterface = xlb0\n", ":1: syntax error" },
	{ "empty-key", GLOBAL "= 3\n", ":3: syntax error" },
	{ "empty-section", "[]\n", ":1: syntax error: \"[]\": empty section name" },
	{ "repeated-key", GLOBAL "queues = 1\nInterface = xlb1\n",
	  ":4: [global] interface: key repeated (first at line 2" },
	{ "repeated-section", GLOBAL SERVICE "[conntrack]\n[Service  Web]\n",
	  ":7: [service web]: section repeated (first at line 3" },
	{ "key-outside", "interface = xlb0\n" GLOBAL, ":1: interface: key outside any section" },
	{ "continuation-at-end", GLOBAL "queues = 1 \\", ":3: syntax error: the last line ends with \\" },
	{ "service-no-name", GLOBAL "[service]\n", "[service]: bad service name \"\"" },
	{ "service-bad-name", GLOBAL "[service web/1]\n", "[service web/1]: bad service name \"web/1\"" },
	{ "service-long-name", GLOBAL "[service "
	  "a234567890123456789012345678901234567890123456789012345678901234]\n",
	  "bad service name" },
	/* [global] */
	{ "missing-interface", "[global]\nqueues = all\n",
	  "[global] interface: missing (required" },
	{ "missing-global", "[conntrack]\nmax = 5\n", "[global] interface: missing (required" },
	{ "empty-file", "", "[global] interface: missing" },
	{ "interface-long", "[global]\ninterface = abcdefghijklmnop\n",
	  "[global] interface = abcdefghijklmnop: not an interface name (1-15 characters" },
	{ "interface-slash", "[global]\ninterface = a/b\n", "interface = a/b: not an interface name" },
	{ "queues-empty-item", GLOBAL "queues = 0-3,,6\n",
	  "[global] queues = 0-3,,6: bad item \"\" (expected all, N for the first N queues" },
	{ "queues-backwards", GLOBAL "queues = 5-2\n",
	  "[global] queues = 5-2: range 5-2 runs backwards" },
	{ "queues-too-many", GLOBAL "queues = 0-64\n", "queues = 0-64: more than 64 queues" },
	{ "queues-zero", GLOBAL "queues = 0\n", "[global] queues = 0: not a queue count" },
	{ "queues-65", GLOBAL "queues = 65\n", "queues = 65: not a queue count" },
	{ "queues-negative", GLOBAL "queues = -1\n", "queues = -1: bad item" },
	{ "queues-word", GLOBAL "queues = some\n", "queues = some: not a queue count" },
	{ "queues-id-range", GLOBAL "queues = 1,65536\n", "queues = 1,65536: bad item \"65536\"" },
	{ "xdp-mode", GLOBAL "xdp_mode = fast\n",
	  "[global] xdp_mode = fast: unknown value (expected auto | native | generic)" },
	{ "socket-long", GLOBAL "control_socket = /run/"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaa.sock\n", "bad length (1-107 characters" },
	{ "socket-empty", GLOBAL "control_socket =\n", "[global] control_socket = : bad length" },
	{ "notrack-bad", GLOBAL SERVICE "backends = 198.18.2.2\nnotrack = 2\n",
	  "[service web] notrack = 2: out of range" },
	{ "notrack-clients-no-notrack", GLOBAL SERVICE "backends = 198.18.2.2\n"
	  "notrack_clients = 198.18.1.0/24\n", "notrack_clients = 198.18.1.0/24: needs notrack = 1" },
	{ "notrack-clients-bad-len", GLOBAL SERVICE "backends = 198.18.2.2\nnotrack = 1\n"
	  "notrack_clients = 198.18.1.0/33\n", "notrack_clients = 198.18.1.0/33: bad prefix length" },
	{ "notrack-clients-bad-addr", GLOBAL SERVICE "backends = 198.18.2.2\nnotrack = 1\n"
	  "notrack_clients = 198.18.1.0/24, nothere\n", "notrack_clients = nothere: not an IPv4 or IPv6" },
	{ "drain-fallback-bad", GLOBAL SERVICE "backends = 198.18.2.2\ndrain_fallback = yes\n",
	  "[service web] drain_fallback = yes" },
	{ "health-passive-big", GLOBAL SERVICE "backends = 198.18.2.2\nhealth_passive = 101\n",
	  "[service web] health_passive = 101: out of range" },
	{ "metrics-no-port", GLOBAL "metrics = 127.0.0.1\n",
	  "[global] metrics = 127.0.0.1: no port (expected IPV4:PORT or [IPV6]:PORT" },
	{ "metrics-port-zero", GLOBAL "metrics = 127.0.0.1:0\n",
	  "[global] metrics = 127.0.0.1:0: bad port \"0\"" },
	{ "metrics-port-big", GLOBAL "metrics = [::1]:65536\n",
	  "[global] metrics = [::1]:65536: bad port \"65536\"" },
	{ "metrics-port-word", GLOBAL "metrics = 127.0.0.1:http\n", "bad port \"http\"" },
	{ "metrics-v6-bare", GLOBAL "metrics = ::1:9100\n",
	  "[global] metrics = ::1:9100: IPv6 addresses need brackets" },
	{ "metrics-v4-brackets", GLOBAL "metrics = [127.0.0.1]:9100\n",
	  "metrics = [127.0.0.1]:9100: not an IPv6 address in brackets" },
	{ "metrics-bad-addr", GLOBAL "metrics = localhost:9100\n",
	  "[global] metrics = localhost:9100: not an IPv4 address" },
	{ "metrics-multicast", GLOBAL "metrics = 224.0.0.1:9100\n",
	  "metrics = 224.0.0.1:9100: a multicast address" },
	/* [conntrack] */
	{ "ct-max-zero", GLOBAL "[conntrack]\nmax = 0\n",
	  "[conntrack] max = 0: out of range (1-67108864)" },
	{ "ct-max-huge", GLOBAL "[conntrack]\nmax = 99999999999999999999999\n",
	  "max = 99999999999999999999999: out of range (1-67108864)" },
	{ "ct-max-negative", GLOBAL "[conntrack]\nmax = -5\n",
	  "[conntrack] max = -5: not a number (expected an integer 1-67108864)" },
	{ "ct-max-hex", GLOBAL "[conntrack]\nmax = 0x100\n", "max = 0x100: not a number" },
	{ "ct-buckets", GLOBAL "[conntrack]\nbuckets = 67108865\n",
	  "[conntrack] buckets = 67108865: out of range (1-67108864)" },
	{ "ct-timeout-zero", GLOBAL "[conntrack]\ntcp_timeout_established = 0\n",
	  "[conntrack] tcp_timeout_established = 0: out of range (1-2147483)" },
	{ "ct-timeout-units", GLOBAL "[conntrack]\nudp_timeout = 30s\n",
	  "[conntrack] udp_timeout = 30s: not a number" },
	{ "ct-loose", GLOBAL "[conntrack]\ntcp_loose = 2\n",
	  "[conntrack] tcp_loose = 2: out of range (0-1)" },
	{ "ct-liberal", GLOBAL "[conntrack]\ntcp_be_liberal = yes\n",
	  "[conntrack] tcp_be_liberal = yes: not a number (expected an integer 0-1)" },
	/* [service] addresses and ports */
	{ "vip-missing", GLOBAL "[service web]\nport = 80\n", "[service web] vip: missing" },
	{ "vip-bad", GLOBAL "[service web]\nvip = 198.18.0.300\nport = 80\n",
	  "[service web] vip = 198.18.0.300: not an address (expected IPv4 or IPv6" },
	{ "vip-brackets", GLOBAL "[service web]\nvip = [2001:2::1]\nport = 80\n",
	  "vip = [2001:2::1]: not an address" },
	{ "vip-multicast", GLOBAL "[service web]\nvip = 224.0.0.1\nport = 80\n",
	  "vip = 224.0.0.1: not a unicast address" },
	{ "vip-any", GLOBAL "[service web]\nvip = ::\nport = 80\n", "vip = ::: not a unicast address" },
	{ "port-missing", GLOBAL "[service web]\nvip = 198.18.0.100\n",
	  "[service web] port: missing (required: 1-65535)" },
	{ "port-range", GLOBAL "[service web]\nvip = 198.18.0.100\nport = 70000\n",
	  "[service web] port = 70000: out of range (1-65535)" },
	{ "port-zero", GLOBAL "[service web]\nvip = 198.18.0.100\nport = 0\n",
	  "port = 0: out of range (1-65535)" },
	{ "port-name", GLOBAL "[service web]\nvip = 198.18.0.100\nport = http\n",
	  "port = http: not a number (expected an integer 1-65535)" },
	{ "protocol", GLOBAL SERVICE "protocol = sctp\n",
	  "[service web] protocol = sctp: unknown value (expected tcp | udp)" },
	{ "scheduler", GLOBAL SERVICE "scheduler = rr\n",
	  "[service web] scheduler = rr: unknown value (expected maglev)" },
	/* Maglev table */
	{ "table-not-prime", GLOBAL SERVICE "maglev_table_size = 65536\n",
	  "[service web] maglev_table_size = 65536: not a prime" },
	{ "table-range", GLOBAL SERVICE "maglev_table_size = 5\n",
	  "maglev_table_size = 5: out of range (7-1000003)" },
	{ "table-too-small", GLOBAL SERVICE "maglev_table_size = 7\n"
	  "backends = 198.18.2.1, 198.18.2.2, 198.18.2.3, 198.18.2.4, 198.18.2.5, 198.18.2.6, "
	  "198.18.2.7\n", "[service web] maglev_table_size = 7: too small for 7 backends" },
	/* backends */
	{ "backend-bad-addr", GLOBAL SERVICE "backends = 198.18.2.2:8080, 198.18.2.300:8080\n",
	  "[service web] backends = 198.18.2.300:8080: not an IPv4 address" },
	{ "backend-v6-bare", GLOBAL SERVICE "backends = 2001:2::2:8080\n",
	  "backends = 2001:2::2:8080: IPv6 addresses need brackets" },
	{ "backend-v4-brackets", GLOBAL SERVICE "backends = [198.18.2.2]:80\n",
	  "backends = [198.18.2.2]:80: not an IPv6 address in brackets" },
	{ "backend-bracket-junk", GLOBAL SERVICE "backends = [2001:2::2]8080\n",
	  "backends = [2001:2::2]8080: bad endpoint" },
	{ "backend-port", GLOBAL SERVICE "backends = 198.18.2.2:0\n",
	  "backends = 198.18.2.2:0: bad port \"0\" (expected ADDR[:PORT] or [IPV6][:PORT] "
	  "with a port 1-65535" },
	{ "backend-port-big", GLOBAL SERVICE "backends = [2001:2::2]:65536\n",
	  "backends = [2001:2::2]:65536: bad port" },
	{ "backend-empty-entry", GLOBAL SERVICE "backends = 198.18.2.2, ,198.18.2.3\n",
	  "entry 2 is empty" },
	{ "backend-trailing-comma", GLOBAL SERVICE "backends = 198.18.2.2,\n", "entry 2 is empty" },
	{ "backend-multicast", GLOBAL SERVICE "backends = 239.1.1.1\n",
	  "backends = 239.1.1.1: not a unicast address" },
	{ "backend-dup", GLOBAL SERVICE "backends = 198.18.2.2:8080, 198.18.2.3, 198.18.2.2:8080\n",
	  "duplicate backend 198.18.2.2:8080" },
	{ "backend-dup-default-port", GLOBAL SERVICE "backends = 198.18.2.2, 198.18.2.2:80\n",
	  "duplicate backend 198.18.2.2:80" },
	{ "backend-dup-v6", GLOBAL SERVICE "backends = [2001:2::2]:80, [2001:2:0:0::2]:80\n",
	  "duplicate backend [2001:2::2]:80" },
	{ "backend-is-vip", GLOBAL SERVICE "backends = 198.18.0.100:80\n",
	  "a backend is the VIP itself" },
	{ "weight-big", GLOBAL SERVICE "backends = 198.18.2.2 weight=70000\n",
	  "[service web] backends = 198.18.2.2 weight=70000: bad weight \"70000\" (expected weight=0-65535)" },
	{ "weight-negative", GLOBAL SERVICE "backends = 198.18.2.2 weight=-1\n", "bad weight \"-1\"" },
	{ "weight-empty", GLOBAL SERVICE "backends = 198.18.2.2 weight=\n", "bad weight \"\"" },
	{ "weight-twice", GLOBAL SERVICE "backends = 198.18.2.2 weight=1 weight=2\n",
	  "weight given twice" },
	{ "backend-option", GLOBAL SERVICE "backends = 198.18.2.2 weigth=2\n",
	  "unknown option \"weigth=2\"" },
	{ "mac-short", GLOBAL SERVICE "backends = 198.18.2.2 mac=02:bb:cc:dd:ee\n",
	  "backends = 198.18.2.2 mac=02:bb:cc:dd:ee: bad mac \"02:bb:cc:dd:ee\"" },
	{ "mac-long", GLOBAL SERVICE "backends = 198.18.2.2 mac=02:bb:cc:dd:ee:ff:00\n", "bad mac" },
	{ "mac-hex", GLOBAL SERVICE "backends = 198.18.2.2 mac=02:bb:cc:dd:ee:fg\n", "bad mac" },
	{ "mac-dash", GLOBAL SERVICE "backends = 198.18.2.2 mac=02-bb-cc-dd-ee-ff\n", "bad mac" },
	{ "mac-multicast", GLOBAL SERVICE "backends = 198.18.2.2 mac=01:00:5e:00:00:01\n",
	  "bad mac \"01:00:5e:00:00:01\" (expected a unicast MAC" },
	{ "mac-zero", GLOBAL SERVICE "backends = 198.18.2.2 mac=00:00:00:00:00:00\n", "bad mac" },
	{ "mac-twice", GLOBAL SERVICE
	  "backends = 198.18.2.2 mac=02:00:00:00:00:01 mac=02:00:00:00:00:02\n", "mac given twice" },
	/* health and the rest */
	{ "health", GLOBAL SERVICE "health = icmp\n",
	  "[service web] health = icmp: unknown value (expected none | tcp | http | udp)" },
	{ "health-timeout", GLOBAL SERVICE "health_timeout_ms = 1000\n",
	  "[service web] health_timeout_ms = 1000: not below health_interval_ms = 1000" },
	{ "health-timeout-2", GLOBAL SERVICE "health_interval_ms = 100\n",
	  "health_timeout_ms = 500: not below health_interval_ms = 100" },
	{ "health-interval", GLOBAL SERVICE "health_interval_ms = 5\n",
	  "health_interval_ms = 5: out of range (10-3600000)" },
	{ "health-port", GLOBAL SERVICE "health_port = 0\n", "health_port = 0: out of range (1-65535)" },
	{ "health-rise", GLOBAL SERVICE "health_rise = 0\n", "health_rise = 0: out of range (1-100)" },
	{ "health-fall", GLOBAL SERVICE "health_fall = 101\n", "health_fall = 101: out of range (1-100)" },
	{ "health-status", GLOBAL SERVICE "health_status = 600\n",
	  "health_status = 600: out of range (100-599)" },
	{ "health-path", GLOBAL SERVICE "health_path = index.html\n",
	  "[service web] health_path = index.html: not an HTTP path" },
	{ "health-path-space", GLOBAL SERVICE "health_path = \"/a b\"\n", "not an HTTP path" },
	{ "down", GLOBAL SERVICE "on_backend_down = ignore\n",
	  "on_backend_down = ignore: unknown value (expected reset | drop | keep)" },
	{ "drain", GLOBAL SERVICE "drain_timeout = 2147484\n",
	  "drain_timeout = 2147484: out of range (0-2147483)" },
	{ "no-backend", GLOBAL SERVICE "no_backend = accept\n",
	  "no_backend = accept: unknown value (expected reject | drop)" },
	/* between services */
	{ "duplicate-service", GLOBAL "[service a]\nvip = 198.18.0.100\nport = 80\n"
	  "[service b]\nvip = 198.18.0.100\nport = 80\nprotocol = tcp\n",
	  "[service b] vip = 198.18.0.100: port 80 tcp is already served by [service a]" },
	{ "duplicate-service-v6", GLOBAL "[service a]\nvip = 2001:2::100\nport = 53\nprotocol = udp\n"
	  "[service b]\nvip = 2001:2:0::100\nport = 53\nprotocol = udp\n",
	  "[service b] vip = 2001:2::100: port 53 udp is already served by [service a]" },
};

static void test_bad_table(void)
{
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *t = &bad_cases[i];
		struct xlb_config *cfg = (struct xlb_config *)&cfg;   /* must be cleared */
		char err[512] = "";
		const char *path = write_conf(t->name, t->text);
		int ret;

		CU_ASSERT_PTR_NOT_NULL_FATAL(path);
		ret = xlb_config_load(path, &cfg, err, sizeof(err));
		CU_ASSERT_EQUAL(ret, -EINVAL);
		CU_ASSERT_PTR_NULL(cfg);
		/* Every message starts with the file. */
		CU_ASSERT_EQUAL(strncmp(err, path, strlen(path)), 0);
		if (!strstr(err, t->want)) {
			fprintf(stderr, "\n%s: got \"%s\"\n  want \"%s\"\n", t->name, err, t->want);
			CU_FAIL("message");
		}
		if (!ret)
			xlb_config_free(cfg);
	}
}

static void test_io_errors(void)
{
	struct xlb_config *cfg = NULL;
	char err[512] = "", longline[2048];
	FILE *f;

	CU_ASSERT_EQUAL(xlb_config_load("unit/configs/no-such.ini", &cfg, err, sizeof(err)),
			-ENOENT);
	CU_ASSERT_PTR_NULL(cfg);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "unit/configs/no-such.ini: cannot open"));

	CU_ASSERT_EQUAL(xlb_config_load("unit/configs", &cfg, err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "not a regular file"));

	/* iniparser cannot hold more than ~1 KiB on a line: say so. */
	memset(longline, 'a', sizeof(longline));
	memcpy(longline, "[global]\ninterface = xlb0\nqueues = ", 35);
	longline[sizeof(longline) - 2] = '\n';
	longline[sizeof(longline) - 1] = '\0';
	CU_ASSERT_EQUAL(xlb_config_load(write_conf("long", longline), &cfg, err, sizeof(err)),
			-EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, ":3: line too long (at most 1020 characters"));

	snprintf(tmppath, sizeof(tmppath), "%s/nul.ini", tmpdir);
	f = fopen(tmppath, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fwrite("[global]\ninterface = xlb0\0\n", 1, 27, f);
	fclose(f);
	CU_ASSERT_EQUAL(xlb_config_load(tmppath, &cfg, err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "NUL byte"));
}

/* A short or missing buffer never overflows and never hides the result. */
static void test_small_err_buffer(void)
{
	struct xlb_config *cfg = NULL;
	char err[16];
	const char *path = write_conf("small", GLOBAL "[service web]\nvip = 198.18.0.100\nport = 70000\n");

	memset(err, 'x', sizeof(err));
	CU_ASSERT_EQUAL(xlb_config_load(path, &cfg, err, sizeof(err)), -EINVAL);
	CU_ASSERT_EQUAL(strlen(err), sizeof(err) - 1);
	CU_ASSERT_EQUAL(xlb_config_load(path, &cfg, NULL, 0), -EINVAL);
	CU_ASSERT_PTR_NULL(cfg);
	xlb_config_free(NULL);
}

static int cleanup_tmpdir(void)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	static const struct unit_test tests[] = {
		{ "timeout keys and kernel defaults", test_timeout_table },
		{ "conf/xlb.ini loads as documented", test_example_conf },
		{ "SPEC example loads, warns of the IPv6 backend", test_spec_example },
		{ "minimal file takes the defaults", test_minimal },
		{ "good variations", test_good_table },
		{ "mistakes are refused with the right message", test_bad_table },
		{ "unreadable and oversized input", test_io_errors },
		{ "short error buffer", test_small_err_buffer },
	};

	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	return UNIT_RUN("config", NULL, cleanup_tmpdir, tests);
}
