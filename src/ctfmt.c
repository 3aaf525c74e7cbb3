/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * conntrack-tools' language for the flow table: `conntrack -L` / `-E` lines
 * and conntrack's filter options (see ctfmt.h for the formats).
 *
 * The layout was checked against conntrack-tools 1.4.7 on kernel 6.x: a
 * flow is first copied into a struct xlb_ct_event_rec (what an event keeps)
 * and one formatter prints both listings and events, so the two cannot
 * drift apart. Tokens are written with a separating space before each one,
 * which leaves no trailing blank to take back on a truncated line.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "ctfmt.h"

#define NS_PER_SEC 1000000000ull

/* ---- Output buffer with snprintf semantics ------------------------- */

/* A line being written. Keeps counting past the end of buf, so the caller
 * learns the length it needed, as with snprintf. */
struct out {
	char *buf;
	size_t len;
	size_t off;
	bool first;        /* no token on the line yet: no space before the next */
};

static void out_init(struct out *o, char *buf, size_t len)
{
	o->buf = buf;
	o->len = len;
	o->off = 0;
	o->first = true;
	if (len)
		buf[0] = '\0';
}

static void vput(struct out *o, const char *fmt, va_list ap)
{
	size_t room = o->off < o->len ? o->len - o->off : 0;
	int n = vsnprintf(room ? o->buf + o->off : NULL, room, fmt, ap);

	if (n > 0)
		o->off += (size_t)n;
}

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vput(o, fmt, ap);
	va_end(ap);
}

static void put_char(struct out *o, char c)
{
	if (o->off + 1 < o->len) {
		o->buf[o->off] = c;
		o->buf[o->off + 1] = '\0';
	}
	o->off++;
}

/* One blank-separated token of a text line. */
static void tok(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tok(struct out *o, const char *fmt, ...)
{
	va_list ap;

	if (!o->first)
		put_char(o, ' ');
	o->first = false;
	va_start(ap, fmt);
	vput(o, fmt, ap);
	va_end(ap);
}

static int out_end(const struct out *o)
{
	return o->off > INT_MAX ? INT_MAX : (int)o->off;
}

/* ---- Names ---------------------------------------------------------- */

static const char *const proto_names[256] = {
	[IPPROTO_ICMP] = "icmp",
	[IPPROTO_TCP] = "tcp",
	[IPPROTO_UDP] = "udp",
	[IPPROTO_DCCP] = "dccp",
	[IPPROTO_GRE] = "gre",
	[IPPROTO_ICMPV6] = "icmpv6",
	[IPPROTO_SCTP] = "sctp",
	[IPPROTO_UDPLITE] = "udplite",
};

const char *xlb_ctfmt_proto_name(uint8_t l4proto)
{
	return proto_names[l4proto] ? proto_names[l4proto] : "unknown";
}

/* The kernel's names (tcp_conntrack_names), which conntrack prints. */
static const char *const state_names[] = {
	[XLB_TCP_NONE] = "NONE",
	[XLB_TCP_SYN_SENT] = "SYN_SENT",
	[XLB_TCP_SYN_RECV] = "SYN_RECV",
	[XLB_TCP_ESTABLISHED] = "ESTABLISHED",
	[XLB_TCP_FIN_WAIT] = "FIN_WAIT",
	[XLB_TCP_CLOSE_WAIT] = "CLOSE_WAIT",
	[XLB_TCP_LAST_ACK] = "LAST_ACK",
	[XLB_TCP_TIME_WAIT] = "TIME_WAIT",
	[XLB_TCP_CLOSE] = "CLOSE",
	[XLB_TCP_SYN_SENT2] = "SYN_SENT2",
};

#define N_STATES (sizeof(state_names) / sizeof(state_names[0]))

const char *xlb_ctfmt_state_name(uint8_t tcp_state)
{
	return tcp_state < N_STATES ? state_names[tcp_state] : "UNKNOWN";
}

static const char *family_name(uint8_t family)
{
	switch (family) {
	case AF_INET:
		return "ipv4";
	case AF_INET6:
		return "ipv6";
	default:
		return "unknown";
	}
}

static bool proto_has_ports(uint8_t l4proto)
{
	return l4proto == IPPROTO_TCP || l4proto == IPPROTO_UDP || l4proto == IPPROTO_UDPLITE ||
	       l4proto == IPPROTO_SCTP || l4proto == IPPROTO_DCCP;
}

static bool proto_is_icmp(uint8_t l4proto)
{
	return l4proto == IPPROTO_ICMP || l4proto == IPPROTO_ICMPV6;
}

static const char *addr_str(const union xlb_addr *a, uint8_t family, char buf[XLB_ADDRSTRLEN])
{
	return xlb_addr_ntop(a, family, buf, XLB_ADDRSTRLEN) ? buf : "unknown";
}

static const char *const event_tags[] = {
	[XLB_CT_EVENT_NEW] = "[NEW]",
	[XLB_CT_EVENT_UPDATE] = "[UPDATE]",
	[XLB_CT_EVENT_DESTROY] = "[DESTROY]",
};

static const char *const event_names[] = {
	[XLB_CT_EVENT_NEW] = "new",
	[XLB_CT_EVENT_UPDATE] = "update",
	[XLB_CT_EVENT_DESTROY] = "destroy",
};

/* ---- Snapshots ------------------------------------------------------ */

/* Seconds left, rounded down as the kernel's nf_ct_expires() / HZ. */
static uint32_t timeout_left(uint64_t expires, uint64_t now)
{
	uint64_t s;

	if (expires <= now)
		return 0;
	s = (expires - now) / NS_PER_SEC;
	return s > UINT32_MAX ? UINT32_MAX : (uint32_t)s;
}

/* Copy what is printed out of a live flow. Workers change state, status,
 * expiry and mark under us: each is read once, relaxed; the counters are
 * plain stores on their side (xlb_flow_account) and plain loads here. */
static void snapshot(struct xlb_ct_event_rec *r, const struct xlb_flow *f, uint64_t now)
{
	memset(r, 0, sizeof(*r));
	r->tuple[XLB_DIR_ORIG] = f->tuple[XLB_DIR_ORIG];
	r->tuple[XLB_DIR_REPLY] = f->tuple[XLB_DIR_REPLY];
	r->counter[XLB_DIR_ORIG] = f->counter[XLB_DIR_ORIG];
	r->counter[XLB_DIR_REPLY] = f->counter[XLB_DIR_REPLY];
	r->timeout = timeout_left(__atomic_load_n(&f->expires, __ATOMIC_RELAXED), now);
	r->status = __atomic_load_n(&f->status, __ATOMIC_RELAXED);
	r->mark = __atomic_load_n(&f->mark, __ATOMIC_RELAXED);
	r->tcp_state = __atomic_load_n(&f->tcp_state, __ATOMIC_RELAXED);
	r->l4proto = f->tuple[XLB_DIR_ORIG].proto;
}

void xlb_ct_event_fill(struct xlb_ct_event_rec *ev, enum xlb_ct_event type,
		       const struct xlb_flow *f, uint64_t now, uint64_t realtime, uint32_t id)
{
	snapshot(ev, f, now);
	ev->type = (uint8_t)type;
	ev->timestamp = realtime;
	ev->id = id;
}

/* What only a listing prints (NULL for events). */
struct list_extra {
	uint32_t use;
	bool has_age, has_start;
	uint64_t age;          /* seconds since creation: delta-time */
	uint64_t start;        /* ns, CLOCK_REALTIME */
};

/* ---- Text form ------------------------------------------------------ */

static void put_tuple(struct out *o, const struct xlb_tuple *t, uint8_t l4proto)
{
	char a[XLB_ADDRSTRLEN];

	tok(o, "src=%s", addr_str(&t->src, t->family, a));
	tok(o, "dst=%s", addr_str(&t->dst, t->family, a));
	if (proto_has_ports(l4proto)) {
		tok(o, "sport=%u", ntohs(t->sport));
		tok(o, "dport=%u", ntohs(t->dport));
	} else if (proto_is_icmp(l4proto)) {
		/* The tuple keeps the type in dport and the echo identifier in
		 * sport, as nf_conntrack_icmp; the code is not part of it and
		 * is 0 for the echo messages that make flows. */
		tok(o, "type=%u", ntohs(t->dport));
		tok(o, "code=%u", 0u);
		tok(o, "id=%u", ntohs(t->sport));
	}
}

static void put_counters(struct out *o, const struct xlb_flow_counter *c)
{
	tok(o, "packets=%llu", (unsigned long long)c->packets);
	tok(o, "bytes=%llu", (unsigned long long)c->bytes);
}

/* ctime(3)'s layout, without its newline: "Thu Nov 26 14:56:05 2026". */
static void put_start(struct out *o, uint64_t start_ns)
{
	time_t t = (time_t)(start_ns / NS_PER_SEC);
	struct tm tm;
	char s[64];

	if (!localtime_r(&t, &tm) || !strftime(s, sizeof(s), "%a %b %e %H:%M:%S %Y", &tm))
		return;
	tok(o, "[start=%s]", s);
}

/*
 * The one text formatter. What differs between -L and -E follows the
 * kernel's ctnetlink: events carry counters only on destroy, no zero timeout
 * on destroy, the mark only when set, and never the reference count.
 */
static void format_text(struct out *o, const struct xlb_ct_event_rec *r,
			const struct list_extra *list, unsigned mode)
{
	const bool event = !list;
	const bool destroy = event && r->type == XLB_CT_EVENT_DESTROY;
	const struct xlb_tuple *orig = &r->tuple[XLB_DIR_ORIG];

	if (event && (mode & XLB_CTFMT_TIMESTAMP))
		put(o, "[%llu.%06llu]\t", (unsigned long long)(r->timestamp / NS_PER_SEC),
		    (unsigned long long)(r->timestamp % NS_PER_SEC / 1000));
	if (event)
		tok(o, "%9s", r->type < 3 ? event_tags[r->type] : "[UNKNOWN]");
	if (mode & XLB_CTFMT_EXTENDED)
		tok(o, "%-8s %u", family_name(orig->family), orig->family);
	tok(o, "%-8s %u", xlb_ctfmt_proto_name(r->l4proto), r->l4proto);
	if (!destroy || r->timeout)
		tok(o, "%u", r->timeout);
	if (r->l4proto == IPPROTO_TCP)
		tok(o, "%s", xlb_ctfmt_state_name(r->tcp_state));

	put_tuple(o, orig, r->l4proto);
	if (!event || destroy)
		put_counters(o, &r->counter[XLB_DIR_ORIG]);
	if (!(r->status & XLB_FLOW_SEEN_REPLY))
		tok(o, "[UNREPLIED]");
	put_tuple(o, &r->tuple[XLB_DIR_REPLY], r->l4proto);
	if (!event || destroy)
		put_counters(o, &r->counter[XLB_DIR_REPLY]);

	if (r->status & XLB_FLOW_ASSURED)
		tok(o, "[ASSURED]");
	if (!event || r->mark)
		tok(o, "mark=%u", r->mark);
	if (orig->zone)
		tok(o, "zone=%u", orig->zone);
	if (list && (mode & XLB_CTFMT_TIMESTAMP)) {
		if (list->has_age)
			tok(o, "delta-time=%llu", (unsigned long long)list->age);
		if (list->has_start)
			put_start(o, list->start);
	}
	if (list)
		tok(o, "use=%u", list->use);
	if (mode & XLB_CTFMT_ID)
		tok(o, "id=%u", r->id);
	put_char(o, '\n');
}

/* ---- JSON form ------------------------------------------------------ */

static void json_str(struct out *o, const char *s)
{
	put_char(o, '"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			put_char(o, '\\');
			put_char(o, (char)c);
		} else if (c < 0x20 || c == 0x7f) {
			put(o, "\\u%04x", c);
		} else {
			put_char(o, (char)c);
		}
	}
	put_char(o, '"');
}

static void json_key(struct out *o, const char *key)
{
	if (!o->first)
		put_char(o, ',');
	o->first = false;
	json_str(o, key);
	put_char(o, ':');
}

static void json_tuple(struct out *o, const char *key, const struct xlb_tuple *t,
		       const struct xlb_flow_counter *c, uint8_t l4proto)
{
	char a[XLB_ADDRSTRLEN];

	json_key(o, key);
	put_char(o, '{');
	o->first = true;
	json_key(o, "src");
	json_str(o, addr_str(&t->src, t->family, a));
	json_key(o, "dst");
	json_str(o, addr_str(&t->dst, t->family, a));
	if (proto_has_ports(l4proto)) {
		json_key(o, "sport");
		put(o, "%u", ntohs(t->sport));
		json_key(o, "dport");
		put(o, "%u", ntohs(t->dport));
	} else if (proto_is_icmp(l4proto)) {
		json_key(o, "type");
		put(o, "%u", ntohs(t->dport));
		json_key(o, "code");
		put(o, "0");
		json_key(o, "id");
		put(o, "%u", ntohs(t->sport));
	}
	json_key(o, "packets");
	put(o, "%llu", (unsigned long long)c->packets);
	json_key(o, "bytes");
	put(o, "%llu", (unsigned long long)c->bytes);
	put_char(o, '}');
	o->first = false;
}

static void format_json(struct out *o, const struct xlb_ct_event_rec *r,
			const struct list_extra *list)
{
	const struct xlb_tuple *orig = &r->tuple[XLB_DIR_ORIG];
	const struct xlb_tuple *reply = &r->tuple[XLB_DIR_REPLY];
	char a[XLB_ADDRSTRLEN], backend[XLB_ADDRSTRLEN + 8];

	put_char(o, '{');
	o->first = true;
	if (!list) {
		json_key(o, "event");
		json_str(o, r->type < 3 ? event_names[r->type] : "unknown");
		json_key(o, "timestamp");
		put(o, "%llu.%06llu", (unsigned long long)(r->timestamp / NS_PER_SEC),
		    (unsigned long long)(r->timestamp % NS_PER_SEC / 1000));
	}
	json_key(o, "family");
	json_str(o, family_name(orig->family));
	json_key(o, "proto");
	json_str(o, xlb_ctfmt_proto_name(r->l4proto));
	json_key(o, "protonum");
	put(o, "%u", r->l4proto);
	json_key(o, "timeout");
	put(o, "%u", r->timeout);
	if (r->l4proto == IPPROTO_TCP) {
		json_key(o, "state");
		json_str(o, xlb_ctfmt_state_name(r->tcp_state));
	}
	json_tuple(o, "orig", orig, &r->counter[XLB_DIR_ORIG], r->l4proto);
	json_tuple(o, "reply", reply, &r->counter[XLB_DIR_REPLY], r->l4proto);
	json_key(o, "assured");
	put(o, "%s", r->status & XLB_FLOW_ASSURED ? "true" : "false");
	json_key(o, "unreplied");
	put(o, "%s", r->status & XLB_FLOW_SEEN_REPLY ? "false" : "true");
	json_key(o, "mark");
	put(o, "%u", r->mark);
	json_key(o, "zone");
	put(o, "%u", orig->zone);
	if (list) {
		json_key(o, "use");
		put(o, "%u", list->use);
	}
	json_key(o, "id");
	put(o, "%u", r->id);

	/* The backend is where the reply comes from (the DNAT target). */
	addr_str(&reply->src, reply->family, a);
	if (!proto_has_ports(r->l4proto))
		snprintf(backend, sizeof(backend), "%s", a);
	else if (reply->family == AF_INET6)
		snprintf(backend, sizeof(backend), "[%s]:%u", a, ntohs(reply->sport));
	else
		snprintf(backend, sizeof(backend), "%s:%u", a, ntohs(reply->sport));
	json_key(o, "backend");
	json_str(o, backend);
	put(o, "}\n");
}

/* ---- Public formatters ---------------------------------------------- */

int xlb_ctfmt_flow(char *buf, size_t len, const struct xlb_flow *f, uint64_t now,
		   unsigned mode, uint32_t id)
{
	struct xlb_ct_event_rec r;
	struct list_extra list = { 0 };
	struct out o;
	uint64_t created = f->created;

	snapshot(&r, f, now);
	r.id = id;
	list.use = xlb_flow_use(f);
	list.has_age = created && created <= now;
	list.age = list.has_age ? (now - created) / NS_PER_SEC : 0;
	list.has_start = f->start != 0;
	list.start = f->start;

	out_init(&o, buf, len);
	if (mode & XLB_CTFMT_JSON)
		format_json(&o, &r, &list);
	else
		format_text(&o, &r, &list, mode);
	return out_end(&o);
}

int xlb_ctfmt_event(char *buf, size_t len, const struct xlb_ct_event_rec *ev, unsigned mode)
{
	struct out o;

	out_init(&o, buf, len);
	if (mode & XLB_CTFMT_JSON)
		format_json(&o, ev, NULL);
	else
		format_text(&o, ev, NULL, mode);
	return out_end(&o);
}

/* ---- Argument parsing helpers --------------------------------------- */

static void errf(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* A whole-string unsigned number no larger than max; base 0 also takes
 * 0x... (marks are usually written in hex). No sign, no blanks. */
static bool parse_num(const char *s, int base, unsigned long long max, unsigned long long *out)
{
	unsigned long long v;
	char *end;

	if (!s || !*s || *s == '-' || *s == '+' || *s == ' ' || *s == '\t')
		return false;
	errno = 0;
	v = strtoull(s, &end, base);
	if (errno || *end || v > max)
		return false;
	*out = v;
	return true;
}

int xlb_ctfmt_parse_output(const char *arg, unsigned *mode, char *err, size_t errlen)
{
	static const struct {
		const char *name;
		unsigned flag;
	} formats[] = {
		{ "extended", XLB_CTFMT_EXTENDED },
		{ "timestamp", XLB_CTFMT_TIMESTAMP },
		{ "ktimestamp", XLB_CTFMT_TIMESTAMP },
		{ "id", XLB_CTFMT_ID },
		{ "json", XLB_CTFMT_JSON },
	};
	unsigned flags = 0;
	const char *p = arg;

	if (!arg || !*arg) {
		errf(err, errlen, "-o: empty output format (extended, timestamp, id, json)");
		return -EINVAL;
	}
	for (;;) {
		size_t n = strcspn(p, ",");
		size_t i;

		for (i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
			if (strlen(formats[i].name) == n && !strncasecmp(p, formats[i].name, n))
				break;
		if (i == sizeof(formats) / sizeof(formats[0])) {
			errf(err, errlen,
			     "-o: unknown output format `%.*s' (extended, timestamp, id, json)",
			     (int)n, p);
			return -EINVAL;
		}
		flags |= formats[i].flag;
		if (!p[n])
			break;
		p += n + 1;
	}
	*mode |= flags;
	return 0;
}

/* ---- Filters -------------------------------------------------------- */

struct ctopt {
	char short_name;               /* 0: long only */
	const char *long_names[3];     /* NULL-terminated */
	uint32_t bit;                  /* XLB_CTF_*, one per option */
};

static const struct ctopt ctopts[] = {
	{ 'p', { "proto", "protonum", NULL }, XLB_CTF_PROTO },
	{ 'f', { "family", NULL }, XLB_CTF_FAMILY },
	{ 's', { "orig-src", "src", NULL }, XLB_CTF_ORIG_SRC },
	{ 'd', { "orig-dst", "dst", NULL }, XLB_CTF_ORIG_DST },
	{ 'r', { "reply-src", NULL }, XLB_CTF_REPLY_SRC },
	{ 'q', { "reply-dst", NULL }, XLB_CTF_REPLY_DST },
	{ 0, { "sport", "orig-port-src", NULL }, XLB_CTF_ORIG_SPORT },
	{ 0, { "dport", "orig-port-dst", NULL }, XLB_CTF_ORIG_DPORT },
	{ 0, { "reply-port-src", NULL }, XLB_CTF_REPLY_SPORT },
	{ 0, { "reply-port-dst", NULL }, XLB_CTF_REPLY_DPORT },
	{ 0, { "state", NULL }, XLB_CTF_STATE },
	{ 'm', { "mark", NULL }, XLB_CTF_MARK },
	{ 'w', { "zone", NULL }, XLB_CTF_ZONE },
	{ 0, { "backend", NULL }, XLB_CTF_BACKEND },
	{ 'u', { "status", NULL }, XLB_CTF_STATUS },
};

#define PORT_BITS (XLB_CTF_ORIG_SPORT | XLB_CTF_ORIG_DPORT | XLB_CTF_REPLY_SPORT | \
		   XLB_CTF_REPLY_DPORT)

/* Which option arg is; its name as typed (without "=value") into name and
 * an attached "--opt=value" into *val. NULL when it is none of ours. */
static const struct ctopt *find_opt(const char *arg, char *name, size_t namelen, const char **val)
{
	*val = NULL;
	if (arg[0] != '-')
		return NULL;
	if (arg[1] != '-') {
		if (!arg[1] || arg[2])
			return NULL;
		for (size_t i = 0; i < sizeof(ctopts) / sizeof(ctopts[0]); i++)
			if (ctopts[i].short_name && ctopts[i].short_name == arg[1]) {
				snprintf(name, namelen, "%s", arg);
				return &ctopts[i];
			}
		return NULL;
	}

	const char *eq = strchr(arg + 2, '=');
	size_t n = eq ? (size_t)(eq - (arg + 2)) : strlen(arg + 2);

	for (size_t i = 0; i < sizeof(ctopts) / sizeof(ctopts[0]); i++)
		for (const char *const *l = ctopts[i].long_names; *l; l++)
			if (strlen(*l) == n && !strncmp(arg + 2, *l, n)) {
				snprintf(name, namelen, "--%s", *l);
				*val = eq ? eq + 1 : NULL;
				return &ctopts[i];
			}
	return NULL;
}

static const struct {
	const char *name;
	uint8_t num;
	uint8_t family;        /* 0: either */
} proto_table[] = {
	{ "tcp", IPPROTO_TCP, 0 },
	{ "udp", IPPROTO_UDP, 0 },
	{ "icmp", IPPROTO_ICMP, AF_INET },
	{ "icmpv6", IPPROTO_ICMPV6, AF_INET6 },
	{ "ipv6-icmp", IPPROTO_ICMPV6, AF_INET6 },
	{ "sctp", IPPROTO_SCTP, 0 },
	{ "udplite", IPPROTO_UDPLITE, 0 },
	{ "dccp", IPPROTO_DCCP, 0 },
	{ "gre", IPPROTO_GRE, 0 },
};

static uint8_t proto_family(uint8_t l4proto)
{
	if (l4proto == IPPROTO_ICMP)
		return AF_INET;
	if (l4proto == IPPROTO_ICMPV6)
		return AF_INET6;
	return 0;
}

static const char *family_word(uint8_t family)
{
	return family == AF_INET ? "IPv4" : "IPv6";
}

/* Settle the filter's family; every address, -f and an ICMP protocol must
 * agree, or the filter could match nothing and nobody would know why. */
static int set_family(struct xlb_ctfilter *flt, uint8_t family, const char *name,
		      const char *val, char *err, size_t errlen)
{
	if (flt->family && flt->family != family) {
		errf(err, errlen,
		     "%s: mismatched address family: `%s' is %s, earlier options chose %s", name,
		     val, family_word(family), family_word(flt->family));
		return -EINVAL;
	}
	if ((flt->set & XLB_CTF_PROTO) && proto_family(flt->l4proto) &&
	    proto_family(flt->l4proto) != family) {
		errf(err, errlen, "%s: mismatched address family: `%s' is %s, but -p %s is %s",
		     name, val, family_word(family), xlb_ctfmt_proto_name(flt->l4proto),
		     family_word(proto_family(flt->l4proto)));
		return -EINVAL;
	}
	flt->family = family;
	return 0;
}

static int parse_proto(struct xlb_ctfilter *flt, const char *name, const char *val,
		       char *err, size_t errlen)
{
	unsigned long long n;
	int proto = -1;

	for (size_t i = 0; i < sizeof(proto_table) / sizeof(proto_table[0]); i++)
		if (!strcasecmp(val, proto_table[i].name))
			proto = proto_table[i].num;
	if (proto < 0 && parse_num(val, 10, 255, &n))
		proto = (int)n;
	if (proto < 0) {
		errf(err, errlen,
		     "%s: unsupported protocol `%s' (tcp, udp, icmp, icmpv6, or a number 0-255)",
		     name, val);
		return -EINVAL;
	}
	if ((flt->set & PORT_BITS) && !proto_has_ports((uint8_t)proto)) {
		errf(err, errlen, "%s: protocol `%s' has no ports, but a port option was given",
		     name, val);
		return -EINVAL;
	}
	if ((flt->set & XLB_CTF_STATE) && proto != IPPROTO_TCP) {
		errf(err, errlen,
		     "%s: only TCP flows have a state, but --state was given with `%s'", name, val);
		return -EINVAL;
	}
	if (flt->family && proto_family((uint8_t)proto) &&
	    proto_family((uint8_t)proto) != flt->family) {
		errf(err, errlen, "%s: `%s' is an %s protocol, but earlier options chose %s", name,
		     val, family_word(proto_family((uint8_t)proto)), family_word(flt->family));
		return -EINVAL;
	}
	flt->l4proto = (uint8_t)proto;
	return 0;
}

static int parse_family(struct xlb_ctfilter *flt, const char *name, const char *val,
			char *err, size_t errlen)
{
	uint8_t family;

	if (!strcasecmp(val, "ipv4")) {
		family = AF_INET;
	} else if (!strcasecmp(val, "ipv6")) {
		family = AF_INET6;
	} else {
		errf(err, errlen, "%s: unsupported family `%s' (ipv4 or ipv6)", name, val);
		return -EINVAL;
	}
	return set_family(flt, family, name, val, err, errlen);
}

static int parse_cidr(struct xlb_ctfilter *flt, struct xlb_ctfilter_addr *a, const char *name,
		      const char *val, char *err, size_t errlen)
{
	char text[INET6_ADDRSTRLEN + 8];
	const char *slash = strchr(val, '/');
	size_t n = slash ? (size_t)(slash - val) : strlen(val);
	unsigned long long prefix;
	unsigned max;

	if (n >= sizeof(text))
		goto bad;
	memcpy(text, val, n);
	text[n] = '\0';
	if (xlb_addr_pton(text, &a->addr, &a->family))
		goto bad;
	max = a->family == AF_INET ? 32 : 128;
	if (!slash)
		prefix = max;
	else if (!parse_num(slash + 1, 10, max, &prefix))
		goto bad;
	a->prefix = (uint8_t)prefix;
	return set_family(flt, a->family, name, val, err, errlen);
bad:
	errf(err, errlen, "%s: bad address `%s' (an IPv4 or IPv6 address, optionally /PREFIX)",
	     name, val);
	return -EINVAL;
}

static int parse_port(struct xlb_ctfilter *flt, uint16_t *port, const char *name,
		      const char *val, char *err, size_t errlen)
{
	unsigned long long n;

	if (!parse_num(val, 10, 65535, &n)) {
		errf(err, errlen, "%s: bad port `%s' (0-65535)", name, val);
		return -EINVAL;
	}
	if ((flt->set & XLB_CTF_PROTO) && !proto_has_ports(flt->l4proto)) {
		errf(err, errlen, "%s: protocol `%s' has no ports", name,
		     xlb_ctfmt_proto_name(flt->l4proto));
		return -EINVAL;
	}
	*port = htons((uint16_t)n);
	return 0;
}

static int parse_state(struct xlb_ctfilter *flt, const char *name, const char *val,
		       char *err, size_t errlen)
{
	if ((flt->set & XLB_CTF_PROTO) && flt->l4proto != IPPROTO_TCP) {
		errf(err, errlen, "%s: only TCP flows have a state, but -p chose `%s'", name,
		     xlb_ctfmt_proto_name(flt->l4proto));
		return -EINVAL;
	}
	for (size_t i = 0; i < N_STATES; i++)
		if (!strcasecmp(val, state_names[i])) {
			flt->tcp_state = (uint8_t)i;
			return 0;
		}
	errf(err, errlen,
	     "%s: unknown TCP state `%s' (NONE, SYN_SENT, SYN_RECV, ESTABLISHED, FIN_WAIT, "
	     "CLOSE_WAIT, LAST_ACK, TIME_WAIT, CLOSE, SYN_SENT2)", name, val);
	return -EINVAL;
}

static int parse_mark(struct xlb_ctfilter *flt, const char *name, const char *val,
		      char *err, size_t errlen)
{
	char text[32];
	const char *slash = strchr(val, '/');
	size_t n = slash ? (size_t)(slash - val) : strlen(val);
	unsigned long long mark, mask = UINT32_MAX;

	if (n >= sizeof(text))
		goto bad;
	memcpy(text, val, n);
	text[n] = '\0';
	if (!parse_num(text, 0, UINT32_MAX, &mark))
		goto bad;
	if (slash && !parse_num(slash + 1, 0, UINT32_MAX, &mask))
		goto bad;
	flt->mark = (uint32_t)mark;
	flt->mark_mask = (uint32_t)mask;
	return 0;
bad:
	errf(err, errlen, "%s: bad mark `%s' (MARK or MARK/MASK, 32-bit numbers)", name, val);
	return -EINVAL;
}

static int parse_zone(struct xlb_ctfilter *flt, const char *name, const char *val,
		      char *err, size_t errlen)
{
	unsigned long long n;

	if (!parse_num(val, 10, 65535, &n)) {
		errf(err, errlen, "%s: bad zone `%s' (0-65535)", name, val);
		return -EINVAL;
	}
	flt->zone = (uint16_t)n;
	return 0;
}

/* ADDR, ADDR:PORT, IPv6 bare or [ADDR6] / [ADDR6]:PORT; no port matches
 * every port. */
static int parse_backend(struct xlb_ctfilter *flt, const char *name, const char *val,
			 char *err, size_t errlen)
{
	char why[XLB_EP_WHYLEN];

	if (xlb_endpoint_pton(val, XLB_EP_PORT_OPTIONAL | XLB_EP_BARE_IPV6, &flt->backend,
			      why, sizeof(why))) {
		errf(err, errlen, "%s: bad backend `%s': %s (ADDR, ADDR:PORT or [IPV6]:PORT)",
		     name, val, why);
		return -EINVAL;
	}
	return set_family(flt, flt->backend.family, name, val, err, errlen);
}

static int parse_status(struct xlb_ctfilter *flt, const char *name, const char *val,
			char *err, size_t errlen)
{
	const char *p = val;

	for (;;) {
		size_t n = strcspn(p, ",");

		if (n == strlen("ASSURED") && !strncasecmp(p, "ASSURED", n)) {
			flt->status_set |= XLB_FLOW_ASSURED;
		} else if (n == strlen("SEEN_REPLY") && !strncasecmp(p, "SEEN_REPLY", n)) {
			flt->status_set |= XLB_FLOW_SEEN_REPLY;
		} else if (n == strlen("UNREPLIED") && !strncasecmp(p, "UNREPLIED", n)) {
			flt->status_clear |= XLB_FLOW_SEEN_REPLY;
		} else {
			errf(err, errlen,
			     "%s: unknown status `%.*s' (ASSURED, SEEN_REPLY, UNREPLIED, "
			     "comma-separated)", name, (int)n, p);
			return -EINVAL;
		}
		if (!p[n])
			break;
		p += n + 1;
	}
	if (flt->status_set & flt->status_clear) {
		errf(err, errlen, "%s: `%s' asks for a status both set and unset", name, val);
		return -EINVAL;
	}
	return 0;
}

static int apply_opt(struct xlb_ctfilter *flt, uint32_t bit, const char *name,
		     const char *val, char *err, size_t errlen)
{
	switch (bit) {
	case XLB_CTF_PROTO:
		return parse_proto(flt, name, val, err, errlen);
	case XLB_CTF_FAMILY:
		return parse_family(flt, name, val, err, errlen);
	case XLB_CTF_ORIG_SRC:
		return parse_cidr(flt, &flt->orig_src, name, val, err, errlen);
	case XLB_CTF_ORIG_DST:
		return parse_cidr(flt, &flt->orig_dst, name, val, err, errlen);
	case XLB_CTF_REPLY_SRC:
		return parse_cidr(flt, &flt->reply_src, name, val, err, errlen);
	case XLB_CTF_REPLY_DST:
		return parse_cidr(flt, &flt->reply_dst, name, val, err, errlen);
	case XLB_CTF_ORIG_SPORT:
		return parse_port(flt, &flt->orig_sport, name, val, err, errlen);
	case XLB_CTF_ORIG_DPORT:
		return parse_port(flt, &flt->orig_dport, name, val, err, errlen);
	case XLB_CTF_REPLY_SPORT:
		return parse_port(flt, &flt->reply_sport, name, val, err, errlen);
	case XLB_CTF_REPLY_DPORT:
		return parse_port(flt, &flt->reply_dport, name, val, err, errlen);
	case XLB_CTF_STATE:
		return parse_state(flt, name, val, err, errlen);
	case XLB_CTF_MARK:
		return parse_mark(flt, name, val, err, errlen);
	case XLB_CTF_ZONE:
		return parse_zone(flt, name, val, err, errlen);
	case XLB_CTF_BACKEND:
		return parse_backend(flt, name, val, err, errlen);
	case XLB_CTF_STATUS:
		return parse_status(flt, name, val, err, errlen);
	default:
		errf(err, errlen, "%s: not a filter option", name);
		return -EINVAL;
	}
}

int xlb_ctfilter_parse(struct xlb_ctfilter *flt, int argc, char **argv, int *next,
		       char *err, size_t errlen)
{
	int i = *next, ret = 0;

	while (i < argc) {
		const struct ctopt *opt;
		const char *val;
		char name[32];
		bool attached;

		opt = find_opt(argv[i], name, sizeof(name), &val);
		if (!opt)
			break;
		attached = val != NULL;
		if (!attached) {
			if (i + 1 >= argc) {
				errf(err, errlen, "option `%s' requires an argument", name);
				ret = -EINVAL;
				goto err;
			}
			val = argv[i + 1];
		}
		if (flt->set & opt->bit) {
			errf(err, errlen, "option `%s' given twice (`%s')", name, val);
			ret = -EINVAL;
			goto err;
		}
		ret = apply_opt(flt, opt->bit, name, val, err, errlen);
		if (ret)
			goto err;
		flt->set |= opt->bit;
		i += attached ? 1 : 2;
	}
	*next = i;
	return 0;
err:
	*next = i;
	return ret;
}

/* ---- Matching ------------------------------------------------------- */

static bool addr_in(const union xlb_addr *a, const struct xlb_ctfilter_addr *net)
{
	/* IPv4 lives in the last 32 bits of the mapped form. */
	unsigned bits = net->prefix + (net->family == AF_INET ? 96u : 0u);
	unsigned whole = bits / 8, rest = bits % 8;

	if (memcmp(a->b, net->addr.b, whole))
		return false;
	if (!rest)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (a->b[whole] & mask) == (net->addr.b[whole] & mask);
}

bool xlb_ctfilter_match_event(const struct xlb_ctfilter *flt, const struct xlb_ct_event_rec *ev)
{
	const struct xlb_tuple *o = &ev->tuple[XLB_DIR_ORIG];
	const struct xlb_tuple *r = &ev->tuple[XLB_DIR_REPLY];
	uint32_t set = flt->set;

	if (flt->family && o->family != flt->family)
		return false;
	if ((set & XLB_CTF_PROTO) && ev->l4proto != flt->l4proto)
		return false;
	if ((set & XLB_CTF_ORIG_SRC) && !addr_in(&o->src, &flt->orig_src))
		return false;
	if ((set & XLB_CTF_ORIG_DST) && !addr_in(&o->dst, &flt->orig_dst))
		return false;
	if ((set & XLB_CTF_REPLY_SRC) && !addr_in(&r->src, &flt->reply_src))
		return false;
	if ((set & XLB_CTF_REPLY_DST) && !addr_in(&r->dst, &flt->reply_dst))
		return false;
	if (set & PORT_BITS) {
		/* An ICMP tuple's "ports" are its type and identifier. */
		if (!proto_has_ports(ev->l4proto))
			return false;
		if ((set & XLB_CTF_ORIG_SPORT) && o->sport != flt->orig_sport)
			return false;
		if ((set & XLB_CTF_ORIG_DPORT) && o->dport != flt->orig_dport)
			return false;
		if ((set & XLB_CTF_REPLY_SPORT) && r->sport != flt->reply_sport)
			return false;
		if ((set & XLB_CTF_REPLY_DPORT) && r->dport != flt->reply_dport)
			return false;
	}
	if ((set & XLB_CTF_STATE) &&
	    (ev->l4proto != IPPROTO_TCP || ev->tcp_state != flt->tcp_state))
		return false;
	if ((set & XLB_CTF_MARK) && (ev->mark & flt->mark_mask) != flt->mark)
		return false;
	if ((set & XLB_CTF_ZONE) && o->zone != flt->zone)
		return false;
	if (set & XLB_CTF_BACKEND) {
		if (!xlb_addr_eq(&r->src, &flt->backend.addr))
			return false;
		if (flt->backend.port &&
		    (!proto_has_ports(ev->l4proto) || r->sport != flt->backend.port))
			return false;
	}
	if ((set & XLB_CTF_STATUS) && ((ev->status & flt->status_set) != flt->status_set ||
				       (ev->status & flt->status_clear)))
		return false;
	return true;
}

bool xlb_ctfilter_match(const struct xlb_ctfilter *flt, const struct xlb_flow *f)
{
	struct xlb_ct_event_rec r;

	/* The timeout plays no part; any clock will do. */
	snapshot(&r, f, 0);
	return xlb_ctfilter_match_event(flt, &r);
}
