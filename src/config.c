/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The INI configuration: iniparser reads the values, this file decides
 * whether they make sense. Every key, default and range is documented in
 * conf/xlb.ini; keep the two in step.
 *
 * Before iniparser sees the file a line scanner walks it once, because
 * iniparser 4.1 alone would betray the user in three ways: it calls
 * "[service web] ; comment" a syntax error (only key lines may carry a
 * comment), it silently merges a repeated section or lets a repeated key
 * win, and it reports problems only on stderr with the line text. The
 * scanner refuses repeats and syntax errors with a line number, strips
 * comments from section lines, and hands iniparser the result through a
 * memfd, so both read the very same bytes even if the file changes under
 * a reload.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <iniparser.h>

#include "config.h"
#include "log.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define CONF_FILE_MAX (16u << 20)
/* iniparser 4.1 reads lines into a 1024-byte buffer, continuations
 * included; stay a little below so its own "line too long" never fires. */
#define INI_LINE_MAX 1020

#define QUEUE_ID_MAX 65535u
#define QUEUES_MAX ARRAY_SIZE(((struct xlb_global_conf *)0)->queues)
#define CT_MAX_DEFAULT 262144u
#define CT_MAX_MAX (1u << 26)
#define CT_BUCKETS_DEFAULT 65536u
#define CT_BUCKETS_MAX (1u << 26)
/* Seconds; the largest that still fits in milliseconds as an int32. */
#define TIMEOUT_MAX 2147483u
#define MAGLEV_SIZE_MIN 7u
#define MAGLEV_SIZE_MAX 1000003u
#define HEALTH_MS_MAX 3600000u
#define HEALTH_COUNT_MAX 100u
#define WEIGHT_MAX 65535u

const uint32_t xlb_default_timeouts[XLB_TO_MAX] = {
	[XLB_TO_TCP_SYN_SENT] = 120,
	[XLB_TO_TCP_SYN_RECV] = 60,
	[XLB_TO_TCP_ESTABLISHED] = 432000,
	[XLB_TO_TCP_FIN_WAIT] = 120,
	[XLB_TO_TCP_CLOSE_WAIT] = 60,
	[XLB_TO_TCP_LAST_ACK] = 30,
	[XLB_TO_TCP_TIME_WAIT] = 120,
	[XLB_TO_TCP_CLOSE] = 10,
	[XLB_TO_TCP_MAX_RETRANS] = 300,
	[XLB_TO_TCP_UNACK] = 300,
	[XLB_TO_UDP] = 30,
	[XLB_TO_UDP_STREAM] = 120,
	[XLB_TO_ICMP] = 30,
	[XLB_TO_GENERIC] = 600,
};

static const char *const timeout_keys[XLB_TO_MAX] = {
	[XLB_TO_TCP_SYN_SENT] = "tcp_timeout_syn_sent",
	[XLB_TO_TCP_SYN_RECV] = "tcp_timeout_syn_recv",
	[XLB_TO_TCP_ESTABLISHED] = "tcp_timeout_established",
	[XLB_TO_TCP_FIN_WAIT] = "tcp_timeout_fin_wait",
	[XLB_TO_TCP_CLOSE_WAIT] = "tcp_timeout_close_wait",
	[XLB_TO_TCP_LAST_ACK] = "tcp_timeout_last_ack",
	[XLB_TO_TCP_TIME_WAIT] = "tcp_timeout_time_wait",
	[XLB_TO_TCP_CLOSE] = "tcp_timeout_close",
	[XLB_TO_TCP_MAX_RETRANS] = "tcp_timeout_max_retrans",
	[XLB_TO_TCP_UNACK] = "tcp_timeout_unacknowledged",
	[XLB_TO_UDP] = "udp_timeout",
	[XLB_TO_UDP_STREAM] = "udp_timeout_stream",
	[XLB_TO_ICMP] = "icmp_timeout",
	[XLB_TO_GENERIC] = "generic_timeout",
};

/* Returns the INI key (the kernel sysctl name less "nf_conntrack_"), or
 * NULL for a value outside the enum. */
const char *xlb_timeout_key(enum xlb_timeout t)
{
	if ((unsigned)t >= XLB_TO_MAX)
		return NULL;
	return timeout_keys[t];
}

static const char *const global_keys[] = {
	"interface", "queues", "xdp_mode", "control_socket", "metrics", NULL,
};

static const char *const conntrack_keys[] = {
	"max", "buckets",
	"tcp_timeout_syn_sent", "tcp_timeout_syn_recv", "tcp_timeout_established",
	"tcp_timeout_fin_wait", "tcp_timeout_close_wait", "tcp_timeout_last_ack",
	"tcp_timeout_time_wait", "tcp_timeout_close", "tcp_timeout_max_retrans",
	"tcp_timeout_unacknowledged", "udp_timeout", "udp_timeout_stream",
	"icmp_timeout", "generic_timeout", "tcp_loose", "tcp_be_liberal", "zone_from_vlan", NULL,
};

static const char *const service_keys[] = {
	"vip", "port", "protocol", "scheduler", "maglev_table_size", "backends",
	"health", "health_port", "health_interval_ms", "health_timeout_ms",
	"health_rise", "health_fall", "health_path", "health_status",
	"health_payload", "health_passive", "on_backend_down", "drain_timeout",
	"drain_fallback", "no_backend", "notrack", "notrack_clients", NULL,
};

struct enum_name {
	const char *name;
	int value;
};

static const struct enum_name xdp_modes[] = {
	{ "auto", XLB_XDP_AUTO }, { "native", XLB_XDP_NATIVE },
	{ "generic", XLB_XDP_GENERIC }, { NULL, 0 },
};
static const struct enum_name protocols[] = {
	{ "tcp", IPPROTO_TCP }, { "udp", IPPROTO_UDP }, { NULL, 0 },
};
static const struct enum_name schedulers[] = {
	{ "maglev", XLB_SCHED_MAGLEV }, { NULL, 0 },
};
static const struct enum_name health_kinds[] = {
	{ "none", XLB_HEALTH_NONE }, { "tcp", XLB_HEALTH_TCP },
	{ "http", XLB_HEALTH_HTTP }, { "udp", XLB_HEALTH_UDP }, { NULL, 0 },
};
static const struct enum_name down_actions[] = {
	{ "reset", XLB_DOWN_RESET }, { "drop", XLB_DOWN_DROP },
	{ "keep", XLB_DOWN_KEEP }, { NULL, 0 },
};
static const struct enum_name no_backend_actions[] = {
	{ "reject", XLB_NOBACKEND_REJECT }, { "drop", XLB_NOBACKEND_DROP }, { NULL, 0 },
};

/* Where we are, for messages: every one names file and section. */
struct ctx {
	const char *path;
	char *err;
	size_t errlen;
	dictionary *ini;
	const char *sec;
};

static void put_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void put_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* "FILE: [section] key = value: " then the reason; returns -EINVAL so
 * callers can `return fail(...)`. key and val may be NULL. */
static int fail(struct ctx *c, const char *key, const char *val, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(struct ctx *c, const char *key, const char *val, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!c->err || !c->errlen)
		return -EINVAL;
	if (key && val)
		n = snprintf(c->err, c->errlen, "%s: [%s] %s = %s: ", c->path, c->sec, key, val);
	else if (key)
		n = snprintf(c->err, c->errlen, "%s: [%s] %s: ", c->path, c->sec, key);
	else
		n = snprintf(c->err, c->errlen, "%s: [%s]: ", c->path, c->sec);
	if (n >= 0 && (size_t)n < c->errlen) {
		va_start(ap, fmt);
		vsnprintf(c->err + n, c->errlen - n, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static const char *get(struct ctx *c, const char *key)
{
	char full[INI_LINE_MAX + 64];   /* section names are bounded by the line */

	snprintf(full, sizeof(full), "%s:%s", c->sec, key);
	return iniparser_getstring(c->ini, full, NULL);
}

/* Decimal digits only, so "-1", "0x10", "1e3" or "80 tcp" are refused
 * instead of being half-read as strtoul would. */
static int parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		if (v > (UINT64_MAX - 9) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return 0;
}

static int get_uint(struct ctx *c, const char *key, uint32_t min, uint32_t max,
		    uint32_t def, uint32_t *out)
{
	const char *val = get(c, key);
	uint64_t v;
	int ret;

	if (!val) {
		*out = def;
		return 0;
	}
	ret = parse_u64(val, &v);
	if (ret == -EINVAL)
		return fail(c, key, val, "not a number (expected an integer %u-%u)", min, max);
	if (ret || v < min || v > max)
		return fail(c, key, val, "out of range (%u-%u)", min, max);
	*out = (uint32_t)v;
	return 0;
}

static int get_enum(struct ctx *c, const char *key, const struct enum_name *names,
		    int def, int *out)
{
	const char *val = get(c, key);
	char accepted[128] = "";

	if (!val) {
		*out = def;
		return 0;
	}
	for (const struct enum_name *n = names; n->name; n++) {
		if (!strcasecmp(val, n->name)) {
			*out = n->value;
			return 0;
		}
	}
	for (const struct enum_name *n = names; n->name; n++) {
		size_t used = strlen(accepted);

		snprintf(accepted + used, sizeof(accepted) - used, "%s%s",
			 n == names ? "" : " | ", n->name);
	}
	return fail(c, key, val, "unknown value (expected %s)", accepted);
}

static int check_keys(struct ctx *c, const char *const *known)
{
	int n = iniparser_getsecnkeys(c->ini, c->sec);
	size_t prefix = strlen(c->sec) + 1;
	const char **keys;
	char accepted[512] = "";
	int ret = 0;

	if (n <= 0)
		return 0;
	keys = calloc((size_t)n, sizeof(*keys));
	if (!keys) {
		put_err(c->err, c->errlen, "%s: out of memory", c->path);
		return -ENOMEM;
	}
	if (!iniparser_getseckeys(c->ini, c->sec, keys)) {
		put_err(c->err, c->errlen, "%s: [%s]: cannot list keys", c->path, c->sec);
		ret = -EINVAL;
		goto out;
	}
	for (int i = 0; i < n; i++) {
		const char *key = keys[i] + prefix;
		const char *const *k;

		for (k = known; *k; k++)
			if (!strcmp(key, *k))
				break;
		if (*k)
			continue;
		for (k = known; *k; k++) {
			size_t used = strlen(accepted);

			snprintf(accepted + used, sizeof(accepted) - used, "%s%s",
				 k == known ? "" : ", ", *k);
		}
		ret = fail(c, key, iniparser_getstring(c->ini, keys[i], ""),
			   "unknown key (expected one of: %s)", accepted);
		goto out;
	}
out:
	free(keys);
	return ret;
}

/* ---- [global] ---------------------------------------------------------- */

/* The kernel's dev_valid_name(): what `ip link` would accept. */
static bool valid_ifname(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len >= IF_NAMESIZE || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (; *s; s++)
		if (*s == '/' || *s == ':' || isspace((unsigned char)*s))
			return false;
	return true;
}

static int add_queue(struct xlb_global_conf *g, uint32_t q)
{
	uint32_t i = 0;

	while (i < g->n_queues && g->queues[i] < q)
		i++;
	if (i < g->n_queues && g->queues[i] == q)
		return 0;
	if (g->n_queues == QUEUES_MAX)
		return -E2BIG;
	memmove(&g->queues[i + 1], &g->queues[i], (g->n_queues - i) * sizeof(g->queues[0]));
	g->queues[i] = (uint16_t)q;
	g->n_queues++;
	return 0;
}

#define QUEUES_ACCEPTED "all, N for the first N queues (1-64), or a list of queue ids " \
	"0-65535 and ranges such as 0-3,6 (at most 64 queues)"

static int parse_queue_id(const char *s, uint32_t *q)
{
	uint64_t v;

	if (parse_u64(s, &v) || v > QUEUE_ID_MAX)
		return -EINVAL;
	*q = (uint32_t)v;
	return 0;
}

/*
 * "all", "N" (queues 0..N-1) or a list "0-3,6". A value is a list as soon
 * as it contains ',' or '-', so "3" means three queues and "3-3" queue 3.
 */
static int parse_queues(struct ctx *c, const char *val, struct xlb_global_conf *g)
{
	char item[32];
	const char *p = val;

	g->all_queues = false;
	g->n_queues = 0;
	if (!strcasecmp(val, "all")) {
		g->all_queues = true;
		return 0;
	}
	if (!strpbrk(val, ",-")) {
		uint64_t n;

		if (parse_u64(val, &n) || n < 1 || n > QUEUES_MAX)
			return fail(c, "queues", val, "not a queue count (expected %s)",
				    QUEUES_ACCEPTED);
		for (uint32_t q = 0; q < n; q++)
			add_queue(g, q);
		return 0;
	}
	for (;;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		uint32_t lo, hi;
		char *dash, *a, *b;

		while (len && isspace((unsigned char)*p)) {
			p++;
			len--;
		}
		while (len && isspace((unsigned char)p[len - 1]))
			len--;
		if (len == 0 || len >= sizeof(item))
			return fail(c, "queues", val, "bad item \"%.*s\" (expected %s)",
				    (int)len, p, QUEUES_ACCEPTED);
		memcpy(item, p, len);
		item[len] = '\0';
		a = item;
		dash = strchr(item, '-');
		b = dash ? dash + 1 : item;
		if (dash)
			*dash = '\0';
		while (dash && isspace((unsigned char)*b))
			b++;
		for (char *t = a + strlen(a); t > a && isspace((unsigned char)t[-1]);)
			*--t = '\0';
		if (parse_queue_id(a, &lo) || parse_queue_id(b, &hi))
			return fail(c, "queues", val, "bad item \"%.*s\" (expected %s)",
				    (int)len, p, QUEUES_ACCEPTED);
		if (lo > hi)
			return fail(c, "queues", val, "range %u-%u runs backwards (write %u-%u)",
				    lo, hi, hi, lo);
		for (uint32_t q = lo; q <= hi; q++)
			if (add_queue(g, q))
				return fail(c, "queues", val, "more than %zu queues (expected %s)",
					    QUEUES_MAX, QUEUES_ACCEPTED);
		if (!end)
			return 0;
		p = end + 1;
	}
}

#define METRICS_ACCEPTED "IPV4:PORT or [IPV6]:PORT with a port 1-65535, e.g. " \
	"127.0.0.1:9100; empty for no endpoint"

/* "ADDR:PORT" or "[V6]:PORT": where the Prometheus endpoint listens. The
 * unspecified address (0.0.0.0, [::]) is accepted: listening everywhere
 * is a legitimate choice for a scrape target. */
static int parse_metrics(struct ctx *c, const char *val, struct xlb_global_conf *g)
{
	char why[XLB_EP_WHYLEN];

	if (xlb_endpoint_pton(val, 0, &g->metrics, why, sizeof(why)))
		return fail(c, "metrics", val, "%s (expected %s)", why, METRICS_ACCEPTED);
	if (g->metrics.family == AF_INET ? (ntohl(xlb_addr_v4(&g->metrics.addr)) >> 28) == 0xe
					 : g->metrics.addr.b[0] == 0xff)
		return fail(c, "metrics", val, "a multicast address (expected %s)",
			    METRICS_ACCEPTED);
	g->metrics_enabled = true;
	return 0;
}

static int parse_global(struct ctx *c, struct xlb_global_conf *g)
{
	const char *val;
	int mode;
	int ret;

	c->sec = "global";
	ret = check_keys(c, global_keys);
	if (ret)
		return ret;

	val = get(c, "interface");
	if (!val)
		return fail(c, "interface", NULL,
			    "missing (required: the interface the XDP program attaches to)");
	if (!valid_ifname(val))
		return fail(c, "interface", val,
			    "not an interface name (1-%d characters, no '/', ':' or spaces)",
			    IF_NAMESIZE - 1);
	strcpy(g->interface, val);

	val = get(c, "queues");
	ret = parse_queues(c, val ? val : "all", g);
	if (ret)
		return ret;

	ret = get_enum(c, "xdp_mode", xdp_modes, XLB_XDP_AUTO, &mode);
	if (ret)
		return ret;
	g->xdp_mode = (enum xlb_xdp_mode)mode;

	val = get(c, "control_socket");
	if (!val)
		val = "/run/xlb/xlb.sock";
	if (!*val || strlen(val) >= sizeof(g->control_socket))
		return fail(c, "control_socket", val,
			    "bad length (1-%zu characters: a Unix socket path must fit sun_path)",
			    sizeof(g->control_socket) - 1);
	strcpy(g->control_socket, val);

	val = get(c, "metrics");
	if (val && *val)
		return parse_metrics(c, val, g);
	return 0;
}

/* ---- [conntrack] ------------------------------------------------------- */

static int parse_conntrack(struct ctx *c, struct xlb_ct_conf *ct)
{
	uint32_t v;
	int ret;

	c->sec = "conntrack";
	ret = check_keys(c, conntrack_keys);
	if (ret)
		return ret;

	ret = get_uint(c, "max", 1, CT_MAX_MAX, CT_MAX_DEFAULT, &ct->max);
	if (ret)
		return ret;
	/* A floor for the flow table's index, like the kernel's hashsize;
	 * the table takes any count (and at least max / 2). */
	ret = get_uint(c, "buckets", 1, CT_BUCKETS_MAX, CT_BUCKETS_DEFAULT, &ct->buckets);
	if (ret)
		return ret;

	for (int t = 0; t < XLB_TO_MAX; t++) {
		ret = get_uint(c, timeout_keys[t], 1, TIMEOUT_MAX, xlb_default_timeouts[t],
			       &ct->timeout[t]);
		if (ret)
			return ret;
	}
	ret = get_uint(c, "tcp_loose", 0, 1, 1, &v);
	if (ret)
		return ret;
	ct->tcp_loose = v;
	ret = get_uint(c, "tcp_be_liberal", 0, 1, 0, &v);
	if (ret)
		return ret;
	ct->tcp_be_liberal = v;
	ret = get_uint(c, "zone_from_vlan", 0, 1, 0, &v);
	if (ret)
		return ret;
	ct->zone_from_vlan = v;
	return 0;
}

/* ---- [service NAME] ---------------------------------------------------- */

static bool is_prime(uint32_t n)
{
	if (n < 2)
		return false;
	for (uint32_t d = 2; d <= n / d; d++)
		if (n % d == 0)
			return false;
	return true;
}

/* A VIP or backend must be somewhere a packet can be sent to. */
static bool is_unicast(const union xlb_addr *a, uint8_t family)
{
	if (family == AF_INET) {
		uint32_t v4 = ntohl(xlb_addr_v4(a));

		return v4 != 0 && v4 != 0xffffffff && (v4 >> 28) != 0xe;
	}
	return (a->q[0] | a->q[1]) != 0 && a->b[0] != 0xff;
}

static int hex_digit(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch = (char)tolower((unsigned char)ch);
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/* Exactly aa:bb:cc:dd:ee:ff, any case. */
static int parse_mac(const char *s, uint8_t mac[6])
{
	for (int i = 0; i < 6; i++) {
		int hi = hex_digit(s[0]), lo = hi < 0 ? -1 : hex_digit(s[1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		mac[i] = (uint8_t)(hi << 4 | lo);
		s += 2;
		if (*s != (i == 5 ? '\0' : ':'))
			return -EINVAL;
		s++;
	}
	return 0;
}

#define BACKEND_ACCEPTED "ADDR[:PORT] or [IPV6][:PORT] with a port 1-65535, then " \
	"optional weight=0-65535 and mac=aa:bb:cc:dd:ee:ff"

/* One backends entry: "ADDR[:PORT]" or "[IPV6][:PORT]", then options. */
static int parse_backend(struct ctx *c, char *entry, const struct xlb_service_conf *svc,
			 struct xlb_backend_conf *b)
{
	char shown[INI_LINE_MAX + 1], why[XLB_EP_WHYLEN];
	char *save = NULL, *ep, *opt;
	bool seen_weight = false;
	uint64_t v;

	/* strtok_r cuts the entry apart; keep it whole for messages. */
	snprintf(shown, sizeof(shown), "%s", entry);
	ep = strtok_r(entry, " \t", &save);

	memset(b, 0, sizeof(*b));
	b->weight = 1;
	if (xlb_endpoint_pton(ep, XLB_EP_PORT_OPTIONAL, &b->ep, why, sizeof(why)))
		return fail(c, "backends", shown, "%s (expected %s)", why, BACKEND_ACCEPTED);
	if (!is_unicast(&b->ep.addr, b->ep.family))
		return fail(c, "backends", shown, "not a unicast address (expected %s)",
			    BACKEND_ACCEPTED);
	/* No port: the service's own, as LVS does for a real server. */
	if (!b->ep.port)
		b->ep.port = svc->vip.port;

	while ((opt = strtok_r(NULL, " \t", &save))) {
		if (!strncasecmp(opt, "weight=", 7)) {
			if (seen_weight)
				return fail(c, "backends", shown, "weight given twice");
			seen_weight = true;
			if (parse_u64(opt + 7, &v) || v > WEIGHT_MAX)
				return fail(c, "backends", shown,
					    "bad weight \"%s\" (expected weight=0-%u)",
					    opt + 7, WEIGHT_MAX);
			b->weight = (uint32_t)v;
		} else if (!strncasecmp(opt, "mac=", 4)) {
			if (b->has_mac)
				return fail(c, "backends", shown, "mac given twice");
			if (parse_mac(opt + 4, b->mac) || (b->mac[0] & 1) ||
			    !(b->mac[0] | b->mac[1] | b->mac[2] | b->mac[3] | b->mac[4] |
			      b->mac[5]))
				return fail(c, "backends", shown,
					    "bad mac \"%s\" (expected a unicast MAC as "
					    "mac=aa:bb:cc:dd:ee:ff)", opt + 4);
			b->has_mac = true;
		} else {
			return fail(c, "backends", shown,
				    "unknown option \"%s\" (expected weight=N or "
				    "mac=aa:bb:cc:dd:ee:ff)", opt);
		}
	}
	return 0;
}

static int parse_backends(struct ctx *c, const char *val, struct xlb_service_conf *svc)
{
	char *list = NULL, *p;
	uint32_t n = 0;
	int ret = 0;

	for (const char *s = val; *s; s++)
		if (!isspace((unsigned char)*s))
			goto some;
	return 0;   /* empty list: allowed, warned about once valid */
some:
	for (const char *s = val; *s; s++)
		n += *s == ',';
	n++;
	if (n > XLB_MAX_BACKENDS) {
		return fail(c, "backends", val, "%u entries, more than %d", n,
			    XLB_MAX_BACKENDS);
	}
	list = strdup(val);
	svc->backends = calloc(n, sizeof(*svc->backends));
	if (!list || !svc->backends) {
		put_err(c->err, c->errlen, "%s: out of memory", c->path);
		ret = -ENOMEM;
		goto out;
	}
	p = list;
	for (uint32_t i = 0; i < n; i++) {
		char *end = strchr(p, ',');
		char *next = end ? end + 1 : NULL;
		struct xlb_backend_conf *b = &svc->backends[i];

		if (end)
			*end = '\0';
		while (isspace((unsigned char)*p))
			p++;
		for (char *t = p + strlen(p); t > p && isspace((unsigned char)t[-1]);)
			*--t = '\0';
		if (!*p) {
			ret = fail(c, "backends", val,
				   "entry %u is empty (expected a comma-separated list of %s)",
				   i + 1, BACKEND_ACCEPTED);
			goto out;
		}
		ret = parse_backend(c, p, svc, b);
		if (ret)
			goto out;
		svc->n_backends = i + 1;
		for (uint32_t j = 0; j < i; j++) {
			const struct xlb_backend_conf *o = &svc->backends[j];
			char addr[XLB_ADDRSTRLEN];

			if (o->ep.family == b->ep.family && o->ep.port == b->ep.port &&
			    xlb_addr_eq(&o->ep.addr, &b->ep.addr)) {
				xlb_addr_ntop(&b->ep.addr, b->ep.family, addr, sizeof(addr));
				ret = fail(c, "backends", val,
					   b->ep.family == AF_INET6 ?
					   "duplicate backend [%s]:%u (each address and port "
					   "may appear once per service)" :
					   "duplicate backend %s:%u (each address and port "
					   "may appear once per service)",
					   addr, ntohs(b->ep.port));
				goto out;
			}
		}
		if (b->ep.family == svc->vip.family && b->ep.port == svc->vip.port &&
		    xlb_addr_eq(&b->ep.addr, &svc->vip.addr)) {
			ret = fail(c, "backends", val,
				   "a backend is the VIP itself (expected real servers)");
			goto out;
		}
		p = next;
	}
out:
	free(list);
	return ret;
}

static int parse_text(struct ctx *c, const char *key, const char *def, char *dst,
		      size_t size, bool is_path)
{
	const char *val = get(c, key);

	if (!val)
		val = def;
	if (strlen(val) >= size)
		return fail(c, key, val, "too long (at most %zu characters)", size - 1);
	if (is_path) {
		bool ok = val[0] == '/';

		for (const char *s = val; *s && ok; s++)
			ok = *s > ' ' && *s < 0x7f;
		if (!ok)
			return fail(c, key, val,
				    "not an HTTP path (expected one starting with '/', "
				    "without spaces)");
	}
	strcpy(dst, val);
	return 0;
}

/* KEY = PREFIX[, PREFIX...], each ADDR or ADDR/LEN, IPv4 or IPv6. */
static int parse_prefixes(struct ctx *c, const char *key, struct xlb_prefix **out, uint32_t *n)
{
	const char *val = get(c, key);
	char buf[INI_LINE_MAX + 1], *tok, *save = NULL;

	*out = NULL;
	*n = 0;
	if (!val || !*val)
		return 0;
	snprintf(buf, sizeof(buf), "%s", val);
	*out = calloc(XLB_MAX_PREFIXES, sizeof(**out));
	if (!*out)
		return -ENOMEM;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		struct xlb_prefix *p = &(*out)[*n];
		char *slash, *end;
		unsigned long len;

		while (*tok == ' ' || *tok == '\t')
			tok++;
		for (end = tok + strlen(tok); end > tok && (end[-1] == ' ' || end[-1] == '\t');)
			*--end = '\0';
		if (*n == XLB_MAX_PREFIXES)
			return fail(c, key, tok, "more than %d prefixes", XLB_MAX_PREFIXES);
		slash = strchr(tok, '/');
		if (slash)
			*slash = '\0';
		if (xlb_addr_pton(tok, &p->addr, &p->family))
			return fail(c, key, tok, "not an IPv4 or IPv6 address (expected ADDR or ADDR/LEN)");
		len = p->family == AF_INET ? 32 : 128;
		if (slash) {
			errno = 0;
			len = strtoul(slash + 1, &end, 10);
			if (errno || *end || !slash[1] || len > (p->family == AF_INET ? 32u : 128u)) {
				*slash = '/';
				return fail(c, key, tok, "bad prefix length (0-32 for IPv4, 0-128 for IPv6)");
			}
		}
		p->len = (uint8_t)len;
		(*n)++;
	}
	return 0;
}

static int parse_service(struct ctx *c, const char *sec, const char *name,
			 struct xlb_service_conf *svc)
{
	const char *val;
	uint32_t v;
	uint32_t u;
	int e;
	int ret;

	c->sec = sec;
	snprintf(svc->name, sizeof(svc->name), "%s", name);
	ret = check_keys(c, service_keys);
	if (ret)
		return ret;

	val = get(c, "vip");
	if (!val)
		return fail(c, "vip", NULL, "missing (required: an IPv4 or IPv6 address)");
	if (xlb_addr_pton(val, &svc->vip.addr, &svc->vip.family))
		return fail(c, "vip", val, "not an address (expected IPv4 or IPv6, "
			    "such as 198.18.0.100 or 2001:2::100)");
	if (!is_unicast(&svc->vip.addr, svc->vip.family))
		return fail(c, "vip", val, "not a unicast address (expected one that "
			    "clients can send to)");

	if (!get(c, "port"))
		return fail(c, "port", NULL, "missing (required: 1-65535)");
	ret = get_uint(c, "port", 1, 65535, 0, &v);
	if (ret)
		return ret;
	svc->vip.port = htons((uint16_t)v);

	ret = get_enum(c, "protocol", protocols, IPPROTO_TCP, &e);
	if (ret)
		return ret;
	svc->proto = (uint8_t)e;
	ret = get_enum(c, "scheduler", schedulers, XLB_SCHED_MAGLEV, &e);
	if (ret)
		return ret;
	svc->scheduler = (enum xlb_scheduler)e;

	ret = get_uint(c, "maglev_table_size", MAGLEV_SIZE_MIN, MAGLEV_SIZE_MAX, 65537,
		       &svc->maglev_table_size);
	if (ret)
		return ret;
	if (!is_prime(svc->maglev_table_size))
		return fail(c, "maglev_table_size", get(c, "maglev_table_size"),
			    "not a prime (Maglev needs a prime table size %u-%u, "
			    "such as 251, 4093, 65537 or 655373)", MAGLEV_SIZE_MIN,
			    MAGLEV_SIZE_MAX);

	val = get(c, "backends");
	ret = parse_backends(c, val ? val : "", svc);
	if (ret)
		return ret;
	if (svc->maglev_table_size <= svc->n_backends) {
		char size[16];

		snprintf(size, sizeof(size), "%u", svc->maglev_table_size);
		return fail(c, "maglev_table_size", size,
			    "too small for %u backends (expected a prime above %u; "
			    "100 times the backends or more spreads load evenly)",
			    svc->n_backends, svc->n_backends);
	}

	ret = get_enum(c, "health", health_kinds, XLB_HEALTH_NONE, &e);
	if (ret)
		return ret;
	svc->health = (enum xlb_health_kind)e;
	ret = get_uint(c, "health_port", 1, 65535, 0, &v);
	if (ret)
		return ret;
	svc->health_port = (uint16_t)v;
	ret = get_uint(c, "health_interval_ms", 10, HEALTH_MS_MAX, 1000,
		       &svc->health_interval_ms);
	if (ret)
		return ret;
	ret = get_uint(c, "health_timeout_ms", 1, HEALTH_MS_MAX, 500, &svc->health_timeout_ms);
	if (ret)
		return ret;
	if (svc->health_timeout_ms >= svc->health_interval_ms) {
		char ms[16];

		snprintf(ms, sizeof(ms), "%u", svc->health_timeout_ms);
		return fail(c, "health_timeout_ms", ms,
			    "not below health_interval_ms = %u (a check must time out "
			    "before the next one starts)", svc->health_interval_ms);
	}
	ret = get_uint(c, "health_rise", 1, HEALTH_COUNT_MAX, 2, &svc->health_rise);
	if (ret)
		return ret;
	ret = get_uint(c, "health_fall", 1, HEALTH_COUNT_MAX, 2, &svc->health_fall);
	if (ret)
		return ret;
	ret = parse_text(c, "health_path", "/", svc->health_path, sizeof(svc->health_path),
			 true);
	if (ret)
		return ret;
	ret = get_uint(c, "health_status", 100, 599, 200, &svc->health_status);
	if (ret)
		return ret;
	ret = parse_text(c, "health_payload", "ping", svc->health_payload,
			 sizeof(svc->health_payload), false);
	if (ret)
		return ret;

	ret = get_enum(c, "on_backend_down", down_actions, XLB_DOWN_RESET, &e);
	if (ret)
		return ret;
	svc->on_backend_down = (enum xlb_backend_down_action)e;
	ret = get_uint(c, "drain_timeout", 0, TIMEOUT_MAX, 300, &svc->drain_timeout);
	if (ret)
		return ret;
	ret = get_enum(c, "no_backend", no_backend_actions, XLB_NOBACKEND_REJECT, &e);
	if (ret)
		return ret;
	svc->no_backend = (enum xlb_no_backend_action)e;
	ret = get_uint(c, "health_passive", 0, HEALTH_COUNT_MAX, 0, &svc->health_passive);
	if (ret)
		return ret;
	ret = get_uint(c, "drain_fallback", 0, 1, 1, &u);
	if (ret)
		return ret;
	svc->drain_fallback = u;
	ret = get_uint(c, "notrack", 0, 1, 0, &u);
	if (ret)
		return ret;
	svc->notrack = u;
	ret = parse_prefixes(c, "notrack_clients", &svc->notrack_clients, &svc->n_notrack_clients);
	if (ret)
		return ret;
	if (svc->n_notrack_clients && !svc->notrack)
		return fail(c, "notrack_clients", get(c, "notrack_clients"),
			    "needs notrack = 1 (it narrows which clients bypass conntrack)");
	return 0;
}

/* Two services may not answer the same VIP, port and protocol: the data
 * path could not tell which one a packet is for. */
static int check_overlap(struct ctx *c, const struct xlb_config *cfg, char **secs)
{
	for (uint32_t i = 0; i < cfg->n_services; i++) {
		const struct xlb_service_conf *a = &cfg->services[i];

		for (uint32_t j = 0; j < i; j++) {
			const struct xlb_service_conf *b = &cfg->services[j];
			char addr[XLB_ADDRSTRLEN];

			if (a->proto != b->proto || a->vip.port != b->vip.port ||
			    !xlb_addr_eq(&a->vip.addr, &b->vip.addr))
				continue;
			xlb_addr_ntop(&a->vip.addr, a->vip.family, addr, sizeof(addr));
			c->sec = secs[i];
			return fail(c, "vip", addr,
				    "port %u %s is already served by [%s] (each VIP, port "
				    "and protocol may belong to one service)",
				    ntohs(a->vip.port), a->proto == IPPROTO_TCP ? "tcp" : "udp",
				    secs[j]);
		}
	}
	return 0;
}

/* Things that are allowed but probably not what the user meant. Only said
 * once the whole file is known to be valid. */
static void warn_config(const struct xlb_config *cfg)
{
	for (uint32_t i = 0; i < cfg->n_services; i++) {
		const struct xlb_service_conf *s = &cfg->services[i];
		uint32_t weight = 0;

		if (!s->n_backends)
			xlb_warn("%s: [service %s] backends: none, so every new connection "
				 "meets no_backend = %s", cfg->path, s->name,
				 s->no_backend == XLB_NOBACKEND_DROP ? "drop" : "reject");
		for (uint32_t j = 0; j < s->n_backends; j++) {
			const struct xlb_backend_conf *b = &s->backends[j];
			char addr[XLB_ADDRSTRLEN];

			weight += b->weight;
			if (b->ep.family == s->vip.family)
				continue;
			xlb_addr_ntop(&b->ep.addr, b->ep.family, addr, sizeof(addr));
			xlb_warn("%s: [service %s] backends = %s%s%s:%u: an %s backend for an "
				 "%s VIP gets no traffic (xlb does not translate between "
				 "address families)", cfg->path, s->name,
				 b->ep.family == AF_INET6 ? "[" : "", addr,
				 b->ep.family == AF_INET6 ? "]" : "", ntohs(b->ep.port),
				 b->ep.family == AF_INET6 ? "IPv6" : "IPv4",
				 s->vip.family == AF_INET6 ? "IPv6" : "IPv4");
		}
		if (s->n_backends && !weight)
			xlb_warn("%s: [service %s] backends: every weight is 0, so no backend "
				 "takes new connections", cfg->path, s->name);
	}
}

/* ---- the line scanner -------------------------------------------------- */

struct seen {
	char *name;
	unsigned line;
};

struct scan {
	const char *path;
	char *err;
	size_t errlen;
	struct seen *sections;          /* every section so far */
	size_t n_sections, cap_sections;
	struct seen *keys;              /* keys of the current section */
	size_t n_keys, cap_keys;
	char *out;                      /* what iniparser gets */
	size_t out_len, out_cap;
};

static int append(struct scan *s, const char *p, size_t len)
{
	if (s->out_len + len > s->out_cap) {
		size_t cap = s->out_cap ? s->out_cap : 4096;
		char *out;

		while (cap < s->out_len + len)
			cap *= 2;
		out = realloc(s->out, cap);
		if (!out)
			return -ENOMEM;
		s->out = out;
		s->out_cap = cap;
	}
	memcpy(s->out + s->out_len, p, len);
	s->out_len += len;
	return 0;
}

/* Remember name; -EEXIST with *first set if it was already there. */
static int remember(struct seen **list, size_t *n, size_t *cap, const char *name,
		    size_t len, unsigned line, unsigned *first)
{
	char *copy;

	for (size_t i = 0; i < *n; i++) {
		if (strlen((*list)[i].name) == len && !memcmp((*list)[i].name, name, len)) {
			*first = (*list)[i].line;
			return -EEXIST;
		}
	}
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		struct seen *nl = realloc(*list, ncap * sizeof(**list));

		if (!nl)
			return -ENOMEM;
		*list = nl;
		*cap = ncap;
	}
	copy = strndup(name, len);
	if (!copy)
		return -ENOMEM;
	(*list)[*n].name = copy;
	(*list)[*n].line = line;
	(*n)++;
	return 0;
}

static void forget(struct seen *list, size_t *n)
{
	for (size_t i = 0; i < *n; i++)
		free(list[i].name);
	*n = 0;
}

/* Lowercase and trim in place, as iniparser does to section and key names. */
static size_t normalise(char *p, size_t len, char **start)
{
	while (len && isspace((unsigned char)*p)) {
		p++;
		len--;
	}
	while (len && isspace((unsigned char)p[len - 1]))
		len--;
	for (size_t i = 0; i < len; i++)
		p[i] = (char)tolower((unsigned char)p[i]);
	*start = p;
	return len;
}

#define SYNTAX_ACCEPTED "expected [section], key = value, or a comment starting " \
	"with ; or #"

/*
 * One logical line (continuations joined) starting at physical line `line`;
 * raw/raw_len are its bytes as in the file, nphys its physical line count.
 */
static int scan_line(struct scan *s, char *text, size_t len, unsigned line,
		     const char *raw, size_t raw_len, unsigned nphys)
{
	char *p = text, *name, *eq, *close;
	size_t nlen, o;
	unsigned first;
	int ret;

	while (len && isspace((unsigned char)*p)) {
		p++;
		len--;
	}
	if (!len || *p == ';' || *p == '#')
		return append(s, raw, raw_len);

	if (*p == '[') {
		close = memchr(p, ']', len);
		if (!close) {
			put_err(s->err, s->errlen, "%s:%u: syntax error: \"%.*s\": no closing ] "
				"(%s)", s->path, line, (int)len, p, SYNTAX_ACCEPTED);
			return -EINVAL;
		}
		for (char *t = close + 1; t < p + len && *t != ';' && *t != '#'; t++) {
			if (!isspace((unsigned char)*t)) {
				put_err(s->err, s->errlen, "%s:%u: syntax error: \"%.*s\": text "
					"after ] (%s)", s->path, line, (int)len, p,
					SYNTAX_ACCEPTED);
				return -EINVAL;
			}
		}
		nlen = normalise(p + 1, (size_t)(close - p - 1), &name);
		/* "[service  web]" is "[service web]": one space, so the repeat
		 * check and iniparser see a single spelling. */
		o = 0;
		for (size_t i = 0; i < nlen; i++) {
			char ch = isspace((unsigned char)name[i]) ? ' ' : name[i];

			if (ch == ' ' && name[o - 1] == ' ')
				continue;
			name[o++] = ch;
		}
		nlen = o;
		if (!nlen) {
			put_err(s->err, s->errlen, "%s:%u: syntax error: \"%.*s\": empty section "
				"name (expected [global], [conntrack] or [service NAME])",
				s->path, line, (int)len, p);
			return -EINVAL;
		}
		ret = remember(&s->sections, &s->n_sections, &s->cap_sections, name, nlen,
			       line, &first);
		if (ret == -EEXIST) {
			put_err(s->err, s->errlen, "%s:%u: [%.*s]: section repeated (first at "
				"line %u; each section may appear once)", s->path, line,
				(int)nlen, name, first);
			return -EINVAL;
		}
		if (ret)
			return ret;
		forget(s->keys, &s->n_keys);
		/* The comment goes; the line count stays for iniparser's sake. */
		ret = append(s, "[", 1);
		if (!ret)
			ret = append(s, name, nlen);
		if (!ret)
			ret = append(s, "]", 1);
		for (unsigned i = 0; i < nphys && !ret; i++)
			ret = append(s, "\n", 1);
		return ret;
	}

	eq = memchr(p, '=', len);
	if (!eq || eq == p) {
		put_err(s->err, s->errlen, "%s:%u: syntax error: \"%.*s\" (%s)", s->path, line,
			(int)len, p, SYNTAX_ACCEPTED);
		return -EINVAL;
	}
	nlen = normalise(p, (size_t)(eq - p), &name);
	if (!s->n_sections) {
		put_err(s->err, s->errlen, "%s:%u: %.*s: key outside any section (put it under "
			"[global], [conntrack] or [service NAME])", s->path, line, (int)nlen,
			name);
		return -EINVAL;
	}
	ret = remember(&s->keys, &s->n_keys, &s->cap_keys, name, nlen, line, &first);
	if (ret == -EEXIST) {
		put_err(s->err, s->errlen, "%s:%u: [%s] %.*s: key repeated (first at line %u; "
			"each key may appear once per section)", s->path, line,
			s->sections[s->n_sections - 1].name, (int)nlen, name, first);
		return -EINVAL;
	}
	if (ret)
		return ret;
	return append(s, raw, raw_len);
}

/* Walks the file as iniparser 4.1 will: a line whose last non-blank
 * character is '\' continues on the next one, comments included. */
static int scan_file(struct scan *s, const char *buf, size_t len)
{
	char text[INI_LINE_MAX + 1];
	size_t pos = 0;
	unsigned lineno = 0;
	int ret;

	if (memchr(buf, '\0', len)) {
		put_err(s->err, s->errlen, "%s: contains a NUL byte (expected a text file)",
			s->path);
		return -EINVAL;
	}
	while (pos < len) {
		size_t start = pos, tlen = 0;
		unsigned first = lineno + 1, nphys = 0;

		for (;;) {
			const char *nl = memchr(buf + pos, '\n', len - pos);
			size_t end = nl ? (size_t)(nl - buf) : len;
			size_t l;

			lineno++;
			nphys++;
			if (tlen + (end - pos) > INI_LINE_MAX) {
				put_err(s->err, s->errlen, "%s:%u: line too long (at most %d "
					"characters, continuation lines included)", s->path,
					lineno, INI_LINE_MAX);
				return -EINVAL;
			}
			memcpy(text + tlen, buf + pos, end - pos);
			l = tlen + (end - pos);
			pos = nl ? end + 1 : end;
			while (l > tlen && isspace((unsigned char)text[l - 1]))
				l--;
			if (l > tlen && text[l - 1] == '\\') {
				if (pos >= len) {
					put_err(s->err, s->errlen, "%s:%u: syntax error: the last "
						"line ends with \\ (a continuation needs a next "
						"line)", s->path, lineno);
					return -EINVAL;
				}
				tlen = l - 1;
				continue;
			}
			tlen = l;
			break;
		}
		text[tlen] = '\0';
		ret = scan_line(s, text, tlen, first, buf + start, pos - start, nphys);
		if (ret == -ENOMEM)
			put_err(s->err, s->errlen, "%s: out of memory", s->path);
		if (ret)
			return ret;
	}
	return 0;
}

static int read_file(const char *path, char **buf, size_t *len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	struct stat st;
	size_t got;
	char *b = NULL;
	int ret;

	if (!f) {
		ret = -errno;
		put_err(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return ret;
	}
	if (fstat(fileno(f), &st)) {
		ret = -errno;
		put_err(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
		goto err;
	}
	if (!S_ISREG(st.st_mode) || (size_t)st.st_size > CONF_FILE_MAX) {
		ret = -EINVAL;
		put_err(err, errlen, "%s: not a regular file of at most %u bytes", path,
			CONF_FILE_MAX);
		goto err;
	}
	b = malloc((size_t)st.st_size + 1);
	if (!b) {
		ret = -ENOMEM;
		put_err(err, errlen, "%s: out of memory", path);
		goto err;
	}
	got = fread(b, 1, (size_t)st.st_size, f);
	if (ferror(f)) {
		ret = -EIO;
		put_err(err, errlen, "%s: cannot read", path);
		goto err;
	}
	b[got] = '\0';
	fclose(f);
	*buf = b;
	*len = got;
	return 0;
err:
	free(b);
	fclose(f);
	return ret;
}

/* iniparser reports through a global callback with no context pointer. */
static _Thread_local char ini_msg[512];

static int capture_ini_error(const char *fmt, ...)
{
	size_t used = strlen(ini_msg);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ini_msg + used, sizeof(ini_msg) - used, fmt, ap);
	va_end(ap);
	return 0;
}

/*
 * Hands iniparser exactly the scanned text. It takes only a path, so the
 * text goes into a memfd opened again through /proc.
 *
 * Not thread-safe: iniparser's error callback is process-wide.
 */
static dictionary *load_text(const char *path, const char *text, size_t len, char *err,
			     size_t errlen)
{
	char fdpath[32];
	dictionary *ini = NULL;
	size_t off = 0;
	int fd;

	fd = memfd_create("xlb-config", MFD_CLOEXEC);
	if (fd < 0) {
		put_err(err, errlen, "%s: memfd_create: %s", path, strerror(errno));
		return NULL;
	}
	while (off < len) {
		ssize_t n = write(fd, text + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			put_err(err, errlen, "%s: cannot copy to memfd: %s", path,
				strerror(errno));
			goto out;
		}
		off += (size_t)n;
	}
	snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", fd);
	ini_msg[0] = '\0';
	iniparser_set_error_callback(capture_ini_error);
	ini = iniparser_load(fdpath);
	iniparser_set_error_callback(NULL);
	if (!ini) {
		for (char *m = ini_msg; *m; m++)
			if (*m == '\n')
				*m = ' ';
		put_err(err, errlen, "%s: %s", path, ini_msg[0] ? ini_msg : "iniparser failed");
	}
out:
	close(fd);
	return ini;
}

/* ---- the whole file ---------------------------------------------------- */

static bool valid_service_name(const char *name)
{
	size_t len = strlen(name);

	if (!len || len >= XLB_NAME_MAX)
		return false;
	for (; *name; name++)
		if (!isalnum((unsigned char)*name) && !strchr("_.-", *name))
			return false;
	return true;
}

/* "service web" -> "web"; NULL if sec is not a service section. */
static const char *service_name(const char *sec)
{
	if (strncmp(sec, "service", 7))
		return NULL;
	if (!sec[7])
		return sec + 7;
	if (!isspace((unsigned char)sec[7]))
		return NULL;
	sec += 7;
	while (isspace((unsigned char)*sec))
		sec++;
	return sec;
}

int xlb_config_load(const char *path, struct xlb_config **out, char *err, size_t errlen)
{
	struct scan s = { .path = path, .err = err, .errlen = errlen };
	struct ctx c = { .path = path, .err = err, .errlen = errlen };
	struct xlb_config *cfg = NULL;
	char **service_secs = NULL;
	char *buf = NULL;
	size_t len = 0;
	bool has_global = false;
	int nsec, ret;

	*out = NULL;
	ret = read_file(path, &buf, &len, err, errlen);
	if (ret)
		return ret;
	/* Editors on other systems may start the file with a UTF-8 BOM;
	 * neither the scanner nor iniparser should see it. */
	if (len >= 3 && !memcmp(buf, "\xef\xbb\xbf", 3))
		ret = scan_file(&s, buf + 3, len - 3);
	else
		ret = scan_file(&s, buf, len);
	if (ret)
		goto err;
	c.ini = load_text(path, s.out ? s.out : "", s.out_len, err, errlen);
	if (!c.ini) {
		ret = -EINVAL;
		goto err;
	}

	cfg = calloc(1, sizeof(*cfg));
	if (!cfg || !(cfg->path = strdup(path))) {
		ret = -ENOMEM;
		put_err(err, errlen, "%s: out of memory", path);
		goto err;
	}

	/* Sections first, so a misspelt one is reported as such and not as
	 * the keys it would have held. */
	nsec = iniparser_getnsec(c.ini);
	service_secs = calloc((size_t)(nsec > 0 ? nsec : 1), sizeof(*service_secs));
	if (!service_secs) {
		ret = -ENOMEM;
		put_err(err, errlen, "%s: out of memory", path);
		goto err;
	}
	for (int i = 0; i < nsec; i++) {
		const char *sec = iniparser_getsecname(c.ini, i);
		const char *name = service_name(sec);

		c.sec = sec;
		if (!strcmp(sec, "global")) {
			has_global = true;
		} else if (!strcmp(sec, "conntrack")) {
			continue;
		} else if (!name) {
			ret = fail(&c, NULL, NULL, "unknown section (expected [global], "
				   "[conntrack] or [service NAME])");
			goto err;
		} else if (!valid_service_name(name)) {
			ret = fail(&c, NULL, NULL, "bad service name \"%s\" (expected "
				   "[service NAME], NAME of 1-%d letters, digits, '_', '.' "
				   "or '-')", name, XLB_NAME_MAX - 1);
			goto err;
		} else if (cfg->n_services == XLB_MAX_SERVICES) {
			ret = fail(&c, NULL, NULL, "more than %d services", XLB_MAX_SERVICES);
			goto err;
		} else {
			service_secs[cfg->n_services++] = (char *)sec;
		}
	}
	if (!has_global) {
		c.sec = "global";
		ret = fail(&c, "interface", NULL, "missing (required: the [global] section "
			   "with the interface the XDP program attaches to)");
		goto err;
	}

	ret = parse_global(&c, &cfg->global);
	if (ret)
		goto err;
	ret = parse_conntrack(&c, &cfg->ct);
	if (ret)
		goto err;

	if (cfg->n_services) {
		cfg->services = calloc(cfg->n_services, sizeof(*cfg->services));
		if (!cfg->services) {
			ret = -ENOMEM;
			put_err(err, errlen, "%s: out of memory", path);
			goto err;
		}
	}
	for (uint32_t i = 0; i < cfg->n_services; i++) {
		ret = parse_service(&c, service_secs[i], service_name(service_secs[i]),
				    &cfg->services[i]);
		if (ret)
			goto err;
	}
	ret = check_overlap(&c, cfg, service_secs);
	if (ret)
		goto err;

	warn_config(cfg);
	*out = cfg;
	cfg = NULL;
	ret = 0;
err:
	xlb_config_free(cfg);
	free(service_secs);
	if (c.ini)
		iniparser_freedict(c.ini);
	forget(s.sections, &s.n_sections);
	forget(s.keys, &s.n_keys);
	free(s.sections);
	free(s.keys);
	free(s.out);
	free(buf);
	return ret;
}

void xlb_config_free(struct xlb_config *cfg)
{
	if (!cfg)
		return;
	for (uint32_t i = 0; cfg->services && i < cfg->n_services; i++) {
		free(cfg->services[i].backends);
		free(cfg->services[i].notrack_clients);
	}
	free(cfg->services);
	free(cfg->path);
	free(cfg);
}
