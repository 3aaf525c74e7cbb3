/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Routes, neighbours and local addresses mirrored from rtnetlink.
 *
 * Two netlink sockets: `ev` is subscribed to the link, route, neighbour and
 * address groups and only ever read; `req` carries our dumps and requests,
 * so a dump reply is never interleaved with notifications. `ev` is bound
 * before the first dump: every change after the dump's snapshot is then
 * also queued on `ev`, and since each notification carries the whole
 * object, replaying them over the dump converges on the kernel's state.
 * When `ev` overruns (ENOBUFS) we lost notifications, so everything is
 * dumped again and what the dump no longer shows is dropped.
 *
 * What workers read:
 *  - the route table, an immutable array sorted by prefix length
 *    (longest first), swapped with rcu_xchg_pointer and freed with
 *    call_rcu. The lookup is linear: fine for the tens of routes a load
 *    balancer's node has; a full table would want an LPM trie.
 *  - the neighbour and static tables, cds_lfht keyed by address (IPv4
 *    mapped as in tuple.h). Entries are immutable: a changed MAC is a new
 *    node put with cds_lfht_add_replace, the old one freed with call_rcu.
 *    Only neighbours with a usable link-layer address are kept.
 *  - the interface MAC, the generation and the control thread's clock,
 *    as atomics.
 *
 * Resolution: a worker that finds no usable neighbour must not block or
 * make a syscall, so it pushes the address into a bounded multi-producer
 * ring (per-cell sequence numbers; workers are anonymous to us, so a ring
 * per worker is not possible) and the control thread drains it in
 * xlb_route_process(). The caller runs that at least every 100 ms, so a
 * request reaches the kernel within 100 ms. It asks the kernel with an
 * RTM_NEWNEIGH carrying NTF_USE: the kernel treats it as if it had a
 * packet for that neighbour (neigh_event_send), creating the entry and
 * sending the ARP request or neighbour solicitation itself, and we learn
 * the answer from the notifications like any other neighbour change.
 * Requests are limited to one per address per second in two steps: workers
 * keep a lossy filter (fingerprint and time per hash slot, see
 * want_resolution()) so a flood to one address does not flood the queue,
 * and the control thread keeps the exact per-address times (see
 * asked_recently()), so the limit holds even when the filter collides.
 *
 * Deliberate limits:
 *  - one-arm: we transmit only on our interface, so a route leaving
 *    through another interface answers XLB_NH_UNREACHABLE.
 *  - multipath routes use their first next hop; routes appended to an
 *    existing IPv6 prefix (NLM_F_APPEND) replace it here.
 *  - routes with a TOS, a source prefix, or only a nexthop-object id
 *    (RTA_NH_ID) are ignored: we cannot honour them.
 *  - IPv4 drops the routes of a link that goes down without telling
 *    anyone, so any link notification triggers a full resync.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>
#include <sys/socket.h>

#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <libmnl/libmnl.h>
#include <urcu-qsbr.h>
#include <urcu/rculfhash.h>

#include "mix.h"
#include "route.h"

#define NL_BUF_SIZE        32768         /* a dump batch or a notification burst */
#define NL_REQ_SIZE        512           /* our requests: headers and one address */
#define NL_RCVBUF          (8 << 20)     /* notifications queue here between two process calls */
#define RESOLVE_RING       256           /* pending resolution requests, power of two */
#define RESOLVE_SLOTS      1024          /* workers' rate-limit filter, power of two */
#define ASKED_MAX          1024          /* addresses asked for in the last interval */
#define RESOLVE_INTERVAL   1000          /* ms between two requests for one address */
#define EVENT_BATCH        1024          /* recv calls per process(), so a flood cannot starve */
#define DUMP_RETRIES       4             /* dumps interrupted by concurrent changes */

struct rt_entry {
	union xlb_addr dst;       /* masked */
	union xlb_addr mask;
	union xlb_addr gw;        /* valid when gw_family != 0 */
	uint32_t priority;        /* metric: lower wins among equal prefixes */
	int oif;
	uint8_t family;
	uint8_t plen;             /* as the kernel counts it, per family */
	uint8_t gw_family;        /* 0: on-link, the destination is the next hop */
	bool reject;              /* blackhole, unreachable, prohibit, throw */
};

/* An immutable snapshot, published whole. */
struct rt_table {
	struct rcu_head rcu;
	size_t n;
	struct rt_entry e[];
};

/* A neighbour or a static MAC. Immutable once published, but for `epoch`,
 * which only the control thread reads or writes. */
struct nh_node {
	struct cds_lfht_node node;
	union xlb_addr addr;
	uint8_t family;
	uint8_t mac[6];
	uint32_t epoch;
	struct rcu_head rcu;
};

struct nh_key {
	const union xlb_addr *addr;
	uint8_t family;
};

struct resolve_cell {
	_Atomic size_t seq;
	union xlb_addr addr;
	uint8_t family;
};

struct asked {
	union xlb_addr addr;
	uint8_t family;
	uint64_t at;                        /* ms */
};

struct local_addr {
	union xlb_addr addr;
	int ifindex;
	uint8_t family;
	uint32_t epoch;
};

struct xlb_route {
	/* Read by workers. */
	struct rt_table *routes;            /* RCU */
	struct cds_lfht *neigh;
	struct cds_lfht *statics;
	uint64_t seed;
	int ifindex;
	_Atomic uint32_t gen;
	_Atomic uint64_t mac;               /* low 48 bits, see mac_pack() */
	_Atomic uint64_t now_ms;            /* control thread's clock, for the rate limit */
	_Atomic uint64_t filter[RESOLVE_SLOTS];   /* fingerprint << 32 | ms */

	/* The resolution ring: workers produce, the control thread consumes. */
	_Alignas(64) _Atomic size_t enq;
	_Alignas(64) size_t deq;
	struct resolve_cell ring[RESOLVE_RING];

	/* Control thread only. */
	struct mnl_socket *ev;
	struct mnl_socket *req;
	uint32_t seq;
	char *buf;
	struct rt_entry *rt;                /* master copy of the main table */
	size_t rt_n, rt_cap;
	bool rt_dirty;
	struct local_addr *la;
	size_t la_n, la_cap;
	struct asked asked[ASKED_MAX];
	size_t asked_n;
	uint32_t epoch;                     /* mark for the resync sweep */
	bool resync;                        /* lost notifications or a link changed */
	bool dump_intr;
	int cb_err;                         /* first error inside a parse callback */
	xlb_local_addr_fn local_fn;
	void *arg;
};

/* ---- helpers ---------------------------------------------------------- */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	/* +1: a stored stamp of 0 means "never requested". */
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000 + 1;
}

/* Seeded so that on-link peers cannot choose colliding addresses. */
static uint64_t addr_hash(const union xlb_addr *a, uint64_t seed)
{
	return xlb_mix64(xlb_mix64(seed ^ a->q[0]) ^ a->q[1]);
}

static uint64_t mac_pack(const uint8_t mac[6])
{
	uint64_t v = 0;

	for (int i = 0; i < 6; i++)
		v = v << 8 | mac[i];
	return v;
}

static void mac_unpack(uint64_t v, uint8_t mac[6])
{
	for (int i = 5; i >= 0; i--) {
		mac[i] = v & 0xff;
		v >>= 8;
	}
}

/* Netlink addresses are 4 or 16 bytes; ours are always 16. */
static int addr_from_nl(union xlb_addr *a, int family, const void *p, size_t len)
{
	if (family == AF_INET && len == 4) {
		uint32_t v4;

		memcpy(&v4, p, 4);
		xlb_addr_from_v4(a, v4);
		return 0;
	}
	if (family == AF_INET6 && len == 16) {
		memcpy(a->b, p, 16);
		return 0;
	}
	return -EINVAL;
}

static void bump_gen(struct xlb_route *r)
{
	atomic_fetch_add_explicit(&r->gen, 1, memory_order_release);
}

/* ---- neighbour and static tables ------------------------------------- */

static int nh_match(struct cds_lfht_node *node, const void *key)
{
	const struct nh_node *n = caa_container_of(node, struct nh_node, node);
	const struct nh_key *k = key;

	return n->family == k->family && xlb_addr_eq(&n->addr, k->addr);
}

static void nh_free(struct rcu_head *head)
{
	free(caa_container_of(head, struct nh_node, rcu));
}

/* RCU read side. */
static struct nh_node *nh_find(struct cds_lfht *ht, uint64_t seed, const union xlb_addr *a,
			       uint8_t family)
{
	struct nh_key k = { .addr = a, .family = family };
	struct cds_lfht_iter it;
	struct cds_lfht_node *node;

	cds_lfht_lookup(ht, addr_hash(a, seed), nh_match, &k, &it);
	node = cds_lfht_iter_get_node(&it);
	return node ? caa_container_of(node, struct nh_node, node) : NULL;
}

/* Control thread. Puts or refreshes an entry; bumps the generation only
 * when a reader could see a difference. */
static int nh_put(struct xlb_route *r, struct cds_lfht *ht, const union xlb_addr *a,
		  uint8_t family, const uint8_t mac[6])
{
	struct nh_key k = { .addr = a, .family = family };
	struct cds_lfht_node *old;
	struct nh_node *n;

	rcu_read_lock();
	n = nh_find(ht, r->seed, a, family);
	if (n && memcmp(n->mac, mac, 6) == 0) {
		n->epoch = r->epoch;
		rcu_read_unlock();
		return 0;
	}
	n = calloc(1, sizeof(*n));
	if (!n) {
		rcu_read_unlock();
		return -ENOMEM;
	}
	n->addr = *a;
	n->family = family;
	memcpy(n->mac, mac, 6);
	n->epoch = r->epoch;
	old = cds_lfht_add_replace(ht, addr_hash(a, r->seed), nh_match, &k, &n->node);
	rcu_read_unlock();
	if (old)
		call_rcu(&caa_container_of(old, struct nh_node, node)->rcu, nh_free);
	bump_gen(r);
	return 0;
}

/* Control thread. */
static void nh_del(struct xlb_route *r, struct cds_lfht *ht, const union xlb_addr *a,
		   uint8_t family)
{
	struct nh_node *n;
	bool gone = false;

	rcu_read_lock();
	n = nh_find(ht, r->seed, a, family);
	if (n && cds_lfht_del(ht, &n->node) == 0) {
		call_rcu(&n->rcu, nh_free);
		gone = true;
	}
	rcu_read_unlock();
	if (gone)
		bump_gen(r);
}

/* Control thread. Removes the entries not marked with the current epoch,
 * or all of them when all is set. */
static void nh_sweep(struct xlb_route *r, struct cds_lfht *ht, bool all)
{
	struct cds_lfht_iter it;
	struct nh_node *n;
	bool changed = false;

	rcu_read_lock();
	cds_lfht_for_each_entry(ht, &it, n, node) {
		if (!all && n->epoch == r->epoch)
			continue;
		if (cds_lfht_del(ht, &n->node) == 0) {
			call_rcu(&n->rcu, nh_free);
			changed = true;
		}
	}
	rcu_read_unlock();
	if (changed)
		bump_gen(r);
}

/* ---- route table ------------------------------------------------------ */

static void rt_free(struct rcu_head *head)
{
	free(caa_container_of(head, struct rt_table, rcu));
}

static void prefix_mask(union xlb_addr *m, unsigned int bits)
{
	memset(m, 0, sizeof(*m));
	for (unsigned int i = 0; i < 16 && bits; i++) {
		unsigned int take = bits < 8 ? bits : 8;

		m->b[i] = (uint8_t)(0xff00 >> take);
		bits -= take;
	}
}

static bool rt_same_key(const struct rt_entry *a, const struct rt_entry *b)
{
	return a->family == b->family && a->plen == b->plen && a->priority == b->priority &&
	       xlb_addr_eq(&a->dst, &b->dst);
}

static int rt_cmp(const void *pa, const void *pb)
{
	const struct rt_entry *a = pa, *b = pb;

	if (a->plen != b->plen)
		return a->plen > b->plen ? -1 : 1;
	if (a->priority != b->priority)
		return a->priority < b->priority ? -1 : 1;
	return 0;
}

/* Control thread: publish the master copy as a new snapshot. */
static int rt_publish(struct xlb_route *r)
{
	struct rt_table *t, *old;

	t = malloc(sizeof(*t) + r->rt_n * sizeof(t->e[0]));
	if (!t)
		return -ENOMEM;
	t->n = r->rt_n;
	if (r->rt_n)
		memcpy(t->e, r->rt, r->rt_n * sizeof(t->e[0]));
	qsort(t->e, t->n, sizeof(t->e[0]), rt_cmp);
	old = rcu_xchg_pointer(&r->routes, t);
	if (old)
		call_rcu(&old->rcu, rt_free);
	r->rt_dirty = false;
	bump_gen(r);
	return 0;
}

static void rt_remove(struct xlb_route *r, const struct rt_entry *key)
{
	for (size_t i = 0; i < r->rt_n; i++) {
		if (rt_same_key(&r->rt[i], key)) {
			r->rt[i] = r->rt[--r->rt_n];
			r->rt_dirty = true;
			return;
		}
	}
}

static int rt_upsert(struct xlb_route *r, const struct rt_entry *e)
{
	for (size_t i = 0; i < r->rt_n; i++) {
		if (rt_same_key(&r->rt[i], e)) {
			if (memcmp(&r->rt[i], e, sizeof(*e)) != 0) {
				r->rt[i] = *e;
				r->rt_dirty = true;
			}
			return 0;
		}
	}
	if (r->rt_n == r->rt_cap) {
		size_t cap = r->rt_cap ? r->rt_cap * 2 : 32;
		struct rt_entry *n = realloc(r->rt, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		r->rt = n;
		r->rt_cap = cap;
	}
	r->rt[r->rt_n++] = *e;
	r->rt_dirty = true;
	return 0;
}

/* RCU read side: the longest prefix containing dst, lowest metric first. */
static const struct rt_entry *rt_lookup(const struct rt_table *t, const union xlb_addr *dst,
					uint8_t family)
{
	if (!t)
		return NULL;
	for (size_t i = 0; i < t->n; i++) {
		const struct rt_entry *e = &t->e[i];

		if (e->family == family &&
		    (dst->q[0] & e->mask.q[0]) == e->dst.q[0] &&
		    (dst->q[1] & e->mask.q[1]) == e->dst.q[1])
			return e;
	}
	return NULL;
}

/* ---- netlink parsing ---------------------------------------------------- */

struct attrs {
	const struct nlattr *tb[64];
};

static int attr_cb(const struct nlattr *attr, void *arg)
{
	struct attrs *a = arg;
	uint16_t type = mnl_attr_get_type(attr);

	if (type < 64)
		a->tb[type] = attr;
	return MNL_CB_OK;
}

static const struct nlattr *attr_get(const struct attrs *a, unsigned int type)
{
	return type < 64 ? a->tb[type] : NULL;
}

/* A gateway from RTA_GATEWAY (route's family) or RTA_VIA (any family). */
static void parse_gateway(struct rt_entry *e, const struct attrs *a, uint8_t family)
{
	const struct nlattr *gw = attr_get(a, RTA_GATEWAY);
	const struct nlattr *via = attr_get(a, RTA_VIA);

	if (gw && addr_from_nl(&e->gw, family, mnl_attr_get_payload(gw),
			       mnl_attr_get_payload_len(gw)) == 0) {
		e->gw_family = family;
	} else if (via && mnl_attr_get_payload_len(via) >= sizeof(struct rtvia)) {
		const struct rtvia *v = mnl_attr_get_payload(via);
		size_t len = mnl_attr_get_payload_len(via) - sizeof(struct rtvia);

		if (addr_from_nl(&e->gw, v->rtvia_family, v->rtvia_addr, len) == 0)
			e->gw_family = (uint8_t)v->rtvia_family;
	}
}

static void handle_route(struct xlb_route *r, const struct nlmsghdr *nlh)
{
	const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
	struct attrs a = { 0 };
	struct rt_entry e;
	const struct nlattr *at;
	uint32_t table;
	unsigned int bits;
	int err;

	/* Entries are compared with memcmp: no stray padding bytes. */
	memset(&e, 0, sizeof(e));

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*rtm))
		return;
	if (rtm->rtm_family != AF_INET && rtm->rtm_family != AF_INET6)
		return;
	if (mnl_attr_parse(nlh, sizeof(*rtm), attr_cb, &a) < 0)
		return;
	at = attr_get(&a, RTA_TABLE);
	table = at && mnl_attr_get_payload_len(at) >= 4 ? mnl_attr_get_u32(at) : rtm->rtm_table;
	if (table != RT_TABLE_MAIN || (rtm->rtm_flags & RTM_F_CLONED))
		return;
	if (rtm->rtm_tos || rtm->rtm_src_len)
		return;

	e.family = rtm->rtm_family;
	e.plen = rtm->rtm_dst_len;
	bits = e.family == AF_INET ? 96u + e.plen : e.plen;
	if (bits > 128)
		return;
	at = attr_get(&a, RTA_DST);
	if (at) {
		if (addr_from_nl(&e.dst, e.family, mnl_attr_get_payload(at),
				 mnl_attr_get_payload_len(at)) < 0)
			return;
	} else if (e.family == AF_INET) {
		xlb_addr_from_v4(&e.dst, 0);
	}
	prefix_mask(&e.mask, bits);
	e.dst.q[0] &= e.mask.q[0];
	e.dst.q[1] &= e.mask.q[1];
	at = attr_get(&a, RTA_PRIORITY);
	if (at && mnl_attr_get_payload_len(at) >= 4)
		e.priority = mnl_attr_get_u32(at);

	if (nlh->nlmsg_type == RTM_DELROUTE) {
		rt_remove(r, &e);
		return;
	}

	switch (rtm->rtm_type) {
	case RTN_UNICAST:
		break;
	case RTN_BLACKHOLE:
	case RTN_UNREACHABLE:
	case RTN_PROHIBIT:
	case RTN_THROW:
		e.reject = true;
		break;
	default:
		return;
	}

	if (!e.reject) {
		at = attr_get(&a, RTA_OIF);
		if (at && mnl_attr_get_payload_len(at) >= 4)
			e.oif = (int)mnl_attr_get_u32(at);
		parse_gateway(&e, &a, e.family);
		at = attr_get(&a, RTA_MULTIPATH);
		if (at && mnl_attr_get_payload_len(at) >= sizeof(struct rtnexthop)) {
			/* ECMP: the first path only (documented at the top). */
			const struct rtnexthop *nh = mnl_attr_get_payload(at);
			size_t room = mnl_attr_get_payload_len(at);

			if (nh->rtnh_len >= sizeof(*nh) && nh->rtnh_len <= room) {
				struct attrs na = { 0 };

				e.oif = nh->rtnh_ifindex;
				if (mnl_attr_parse_payload(RTNH_DATA(nh), nh->rtnh_len - sizeof(*nh),
							   attr_cb, &na) >= 0)
					parse_gateway(&e, &na, e.family);
			}
		}
		if (!e.oif)
			return;  /* nexthop object without details: cannot use it */
	}

	err = rt_upsert(r, &e);
	if (err && !r->cb_err)
		r->cb_err = err;
}

static void handle_neigh(struct xlb_route *r, const struct nlmsghdr *nlh)
{
	const struct ndmsg *ndm = mnl_nlmsg_get_payload(nlh);
	struct attrs a = { 0 };
	const struct nlattr *dst, *ll;
	union xlb_addr addr;
	int err;

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*ndm))
		return;
	/* AF_BRIDGE fdb entries share the group; proxy entries are another table. */
	if (ndm->ndm_family != AF_INET && ndm->ndm_family != AF_INET6)
		return;
	if (ndm->ndm_ifindex != r->ifindex || (ndm->ndm_flags & NTF_PROXY))
		return;
	if (mnl_attr_parse(nlh, sizeof(*ndm), attr_cb, &a) < 0)
		return;
	dst = attr_get(&a, NDA_DST);
	if (!dst || addr_from_nl(&addr, ndm->ndm_family, mnl_attr_get_payload(dst),
				 mnl_attr_get_payload_len(dst)) < 0)
		return;
	ll = attr_get(&a, NDA_LLADDR);

	/* STALE is usable: the kernel sends to it too, and re-validates. */
	if (nlh->nlmsg_type == RTM_NEWNEIGH && ll && mnl_attr_get_payload_len(ll) == 6 &&
	    (ndm->ndm_state & (NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE |
			       NUD_PERMANENT | NUD_NOARP))) {
		err = nh_put(r, r->neigh, &addr, ndm->ndm_family, mnl_attr_get_payload(ll));
		if (err && !r->cb_err)
			r->cb_err = err;
	} else {
		nh_del(r, r->neigh, &addr, ndm->ndm_family);
	}
}

static struct local_addr *local_find(struct xlb_route *r, const union xlb_addr *a,
				     uint8_t family, int ifindex)
{
	for (size_t i = 0; i < r->la_n; i++) {
		struct local_addr *l = &r->la[i];

		if (l->family == family && l->ifindex == ifindex && xlb_addr_eq(&l->addr, a))
			return l;
	}
	return NULL;
}

/* The same address may sit on several interfaces: the node has it as long
 * as one of them does. */
static bool local_held(const struct xlb_route *r, const union xlb_addr *a, uint8_t family)
{
	for (size_t i = 0; i < r->la_n; i++)
		if (r->la[i].family == family && xlb_addr_eq(&r->la[i].addr, a))
			return true;
	return false;
}

static void local_remove_at(struct xlb_route *r, size_t i)
{
	struct local_addr l = r->la[i];

	r->la[i] = r->la[--r->la_n];
	if (r->local_fn && !local_held(r, &l.addr, l.family))
		r->local_fn(&l.addr, l.family, false, r->arg);
}

static void handle_addr(struct xlb_route *r, const struct nlmsghdr *nlh)
{
	const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
	struct attrs a = { 0 };
	const struct nlattr *at;
	struct local_addr *l;
	union xlb_addr addr;
	uint8_t family;
	int ifindex;
	bool had;

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*ifa))
		return;
	if (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6)
		return;
	if (mnl_attr_parse(nlh, sizeof(*ifa), attr_cb, &a) < 0)
		return;
	/* IFA_ADDRESS is the peer on point-to-point links; IFA_LOCAL is ours. */
	at = attr_get(&a, IFA_LOCAL);
	if (!at)
		at = attr_get(&a, IFA_ADDRESS);
	family = ifa->ifa_family;
	if (!at || addr_from_nl(&addr, family, mnl_attr_get_payload(at),
				mnl_attr_get_payload_len(at)) < 0)
		return;
	ifindex = (int)ifa->ifa_index;
	l = local_find(r, &addr, family, ifindex);

	if (nlh->nlmsg_type == RTM_DELADDR) {
		if (l)
			local_remove_at(r, (size_t)(l - r->la));
		return;
	}
	if (l) {
		l->epoch = r->epoch;
		return;
	}
	if (r->la_n == r->la_cap) {
		size_t cap = r->la_cap ? r->la_cap * 2 : 16;
		struct local_addr *n = realloc(r->la, cap * sizeof(*n));

		if (!n) {
			if (!r->cb_err)
				r->cb_err = -ENOMEM;
			return;
		}
		r->la = n;
		r->la_cap = cap;
	}
	had = local_held(r, &addr, family);
	r->la[r->la_n++] = (struct local_addr){ .addr = addr, .ifindex = ifindex,
						.family = family, .epoch = r->epoch };
	if (r->local_fn && !had)
		r->local_fn(&addr, family, true, r->arg);
}

static void handle_link(struct xlb_route *r, const struct nlmsghdr *nlh, bool dump)
{
	const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
	struct attrs a = { 0 };
	const struct nlattr *at;

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*ifi))
		return;
	if (!dump)
		r->resync = true;  /* routes may have vanished silently */
	if (ifi->ifi_index != r->ifindex || nlh->nlmsg_type != RTM_NEWLINK)
		return;
	if (mnl_attr_parse(nlh, sizeof(*ifi), attr_cb, &a) < 0)
		return;
	at = attr_get(&a, IFLA_ADDRESS);
	if (at && mnl_attr_get_payload_len(at) == 6) {
		uint64_t mac = mac_pack(mnl_attr_get_payload(at));

		if (atomic_exchange_explicit(&r->mac, mac, memory_order_relaxed) != mac)
			bump_gen(r);
	}
}

static void dispatch(struct xlb_route *r, const struct nlmsghdr *nlh, bool dump)
{
	if (nlh->nlmsg_flags & NLM_F_DUMP_INTR)
		r->dump_intr = true;
	switch (nlh->nlmsg_type) {
	case RTM_NEWROUTE:
	case RTM_DELROUTE:
		handle_route(r, nlh);
		break;
	case RTM_NEWNEIGH:
	case RTM_DELNEIGH:
		handle_neigh(r, nlh);
		break;
	case RTM_NEWADDR:
	case RTM_DELADDR:
		handle_addr(r, nlh);
		break;
	case RTM_NEWLINK:
	case RTM_DELLINK:
		handle_link(r, nlh, dump);
		break;
	}
}

static int event_cb(const struct nlmsghdr *nlh, void *arg)
{
	dispatch(arg, nlh, false);
	return MNL_CB_OK;
}

static int dump_cb(const struct nlmsghdr *nlh, void *arg)
{
	dispatch(arg, nlh, true);
	return MNL_CB_OK;
}

/* ---- requests --------------------------------------------------------- */

/* Send one request on `req` and run its replies until the final ACK or
 * NLMSG_DONE. Control thread; blocks only for the kernel's answer, which
 * is produced while the request is sent. */
static int nl_talk(struct xlb_route *r, struct nlmsghdr *nlh)
{
	unsigned int portid = mnl_socket_get_portid(r->req);
	uint32_t seq = ++r->seq;
	ssize_t n;
	int ret = MNL_CB_OK;

	nlh->nlmsg_seq = seq;
	nlh->nlmsg_flags |= NLM_F_ACK;
	if (mnl_socket_sendto(r->req, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	do {
		n = mnl_socket_recvfrom(r->req, r->buf, NL_BUF_SIZE);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		ret = mnl_cb_run(r->buf, (size_t)n, seq, portid, dump_cb, r);
	} while (ret > MNL_CB_STOP);
	if (ret < 0)
		return errno ? -errno : -EPROTO;
	return r->cb_err;
}

static int nl_dump(struct xlb_route *r, uint16_t type, uint8_t family)
{
	char req[NL_REQ_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(req);
	struct rtgenmsg *g;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	/* Every rtnetlink dump reads the family from the first byte. A full
	 * struct keeps strict-checking kernels happy as well. */
	g = mnl_nlmsg_put_extra_header(nlh, type == RTM_GETROUTE ? sizeof(struct rtmsg) :
					    type == RTM_GETNEIGH ? sizeof(struct ndmsg) :
					    sizeof(struct ifaddrmsg));
	g->rtgen_family = family;
	return nl_talk(r, nlh);
}

static int get_link(struct xlb_route *r)
{
	char req[NL_REQ_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(req);
	struct ifinfomsg *ifi;

	nlh->nlmsg_type = RTM_GETLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = r->ifindex;
	return nl_talk(r, nlh);
}

/* Ask the kernel to resolve `a` on our interface as if it had a packet
 * for it: NTF_USE makes neigh_add() call neigh_event_send(), which creates
 * the entry if need be and sends the ARP request or solicitation. */
static int request_resolution(struct xlb_route *r, const union xlb_addr *a, uint8_t family)
{
	char req[NL_REQ_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(req);
	struct ndmsg *ndm;

	nlh->nlmsg_type = RTM_NEWNEIGH;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_REPLACE;
	ndm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ndm));
	ndm->ndm_family = family;
	ndm->ndm_ifindex = r->ifindex;
	ndm->ndm_state = NUD_NONE;
	ndm->ndm_flags = NTF_USE;
	if (family == AF_INET)
		mnl_attr_put(nlh, NDA_DST, 4, &a->w[3]);
	else
		mnl_attr_put(nlh, NDA_DST, 16, a->b);
	return nl_talk(r, nlh);
}

/* Dump everything again and drop what the dump no longer shows. Used at
 * create, after an overrun and after link changes. */
static int resync(struct xlb_route *r)
{
	static const struct { uint16_t type; uint8_t family; } dumps[] = {
		{ RTM_GETADDR, AF_UNSPEC },
		{ RTM_GETROUTE, AF_INET },
		{ RTM_GETROUTE, AF_INET6 },
		{ RTM_GETNEIGH, AF_INET },
		{ RTM_GETNEIGH, AF_INET6 },
	};
	int err = 0;

	for (int attempt = 0; attempt < DUMP_RETRIES; attempt++) {
		r->resync = false;
		r->dump_intr = false;
		r->cb_err = 0;
		r->epoch++;
		r->rt_n = 0;
		err = get_link(r);
		for (size_t i = 0; !err && i < sizeof(dumps) / sizeof(dumps[0]); i++)
			err = nl_dump(r, dumps[i].type, dumps[i].family);
		if (err || !r->dump_intr)
			break;
	}
	if (err) {
		r->resync = true;  /* try again at the next process() */
		return err;
	}

	nh_sweep(r, r->neigh, false);
	for (size_t i = 0; i < r->la_n;) {
		if (r->la[i].epoch != r->epoch)
			local_remove_at(r, i);
		else
			i++;
	}
	return rt_publish(r);
}

/* ---- resolution queue -------------------------------------------------- */

/*
 * Worker side: a lossy filter, one slot per hash holding the fingerprint of
 * the last address queued there and when. A recent entry for this address
 * means it was queued less than a second ago. Another address in the slot
 * is simply replaced: two colliding addresses may then both be queued more
 * often, which the control thread's exact limit absorbs, but neither can
 * starve the other.
 */
static bool want_resolution(struct xlb_route *r, const union xlb_addr *a,
			    _Atomic uint64_t **slot_out, uint64_t *claim_out, uint64_t *prev_out)
{
	uint64_t h = addr_hash(a, r->seed);
	_Atomic uint64_t *slot = &r->filter[h & (RESOLVE_SLOTS - 1)];
	uint32_t fp = (uint32_t)(h >> 32);
	uint32_t now = (uint32_t)atomic_load_explicit(&r->now_ms, memory_order_relaxed);
	uint64_t v = atomic_load_explicit(slot, memory_order_relaxed);
	uint64_t claim = (uint64_t)fp << 32 | now;

	if (v && (uint32_t)(v >> 32) == fp && (uint32_t)(now - (uint32_t)v) < RESOLVE_INTERVAL)
		return false;
	/* Lost the race: the winner queued this address, or the next packet
	 * will try again. */
	if (!atomic_compare_exchange_strong_explicit(slot, &v, claim, memory_order_relaxed,
						     memory_order_relaxed))
		return false;
	*slot_out = slot;
	*claim_out = claim;
	*prev_out = v;
	return true;
}

/* Worker side, multi-producer: a cell is free for position p when its
 * sequence is p, and holds an item for the consumer when it is p + 1. */
static bool ring_push(struct xlb_route *r, const union xlb_addr *a, uint8_t family)
{
	size_t pos = atomic_load_explicit(&r->enq, memory_order_relaxed);

	for (;;) {
		struct resolve_cell *c = &r->ring[pos & (RESOLVE_RING - 1)];
		size_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
		intptr_t diff = (intptr_t)seq - (intptr_t)pos;

		if (diff == 0) {
			if (atomic_compare_exchange_weak_explicit(&r->enq, &pos, pos + 1,
								  memory_order_relaxed,
								  memory_order_relaxed)) {
				c->addr = *a;
				c->family = family;
				atomic_store_explicit(&c->seq, pos + 1, memory_order_release);
				return true;
			}
		} else if (diff < 0) {
			return false;  /* full */
		} else {
			pos = atomic_load_explicit(&r->enq, memory_order_relaxed);
		}
	}
}

/* Control thread, the only consumer. */
static bool ring_pop(struct xlb_route *r, union xlb_addr *a, uint8_t *family)
{
	struct resolve_cell *c = &r->ring[r->deq & (RESOLVE_RING - 1)];

	if (atomic_load_explicit(&c->seq, memory_order_acquire) != r->deq + 1)
		return false;
	*a = c->addr;
	*family = c->family;
	atomic_store_explicit(&c->seq, r->deq + RESOLVE_RING, memory_order_release);
	r->deq++;
	return true;
}

static void queue_resolution(struct xlb_route *r, const union xlb_addr *a, uint8_t family)
{
	_Atomic uint64_t *slot;
	uint64_t claim, prev;

	if (!want_resolution(r, a, &slot, &claim, &prev))
		return;
	/* Full: give the slot back so the next packet asks again. */
	if (!ring_push(r, a, family))
		atomic_compare_exchange_strong_explicit(slot, &claim, prev, memory_order_relaxed,
							memory_order_relaxed);
}

/* Control thread: forget the addresses asked for more than an interval ago. */
static void asked_expire(struct xlb_route *r, uint64_t now)
{
	size_t n = 0;

	for (size_t i = 0; i < r->asked_n; i++)
		if (now - r->asked[i].at < RESOLVE_INTERVAL)
			r->asked[n++] = r->asked[i];
	r->asked_n = n;
}

/* Control thread: the exact limit, one request per address per interval.
 * When more addresses than ASKED_MAX were asked for within one interval,
 * the newest go unrecorded: asking too often beats never asking. */
static bool asked_recently(struct xlb_route *r, const union xlb_addr *a, uint8_t family,
			   uint64_t now)
{
	for (size_t i = 0; i < r->asked_n; i++) {
		struct asked *k = &r->asked[i];

		if (k->family == family && xlb_addr_eq(&k->addr, a))
			return true;  /* expired entries were dropped first */
	}
	if (r->asked_n < ASKED_MAX)
		r->asked[r->asked_n++] = (struct asked){ .addr = *a, .family = family, .at = now };
	return false;
}

/* ---- public API ------------------------------------------------------- */

static int set_rcvbuf(struct mnl_socket *nl, int size)
{
	int fd = mnl_socket_get_fd(nl);

	/* FORCE needs CAP_NET_ADMIN and ignores rmem_max; fall back politely. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) == 0)
		return 0;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size)) == 0)
		return 0;
	return -errno;
}

/*
 * Control thread, registered with QSBR and online (the first dump fills
 * the tables). The addresses present at start are reported to local_fn
 * before this returns.
 */
struct xlb_route *xlb_route_create(int ifindex, xlb_local_addr_fn local_fn, void *arg)
{
	struct xlb_route *r;
	int err;

	if (ifindex <= 0) {
		errno = EINVAL;
		return NULL;
	}
	if (posix_memalign((void **)&r, 64, sizeof(*r))) {
		errno = ENOMEM;
		return NULL;
	}
	memset(r, 0, sizeof(*r));
	r->ifindex = ifindex;
	r->local_fn = local_fn;
	r->arg = arg;
	for (size_t i = 0; i < RESOLVE_RING; i++)
		atomic_init(&r->ring[i].seq, i);
	atomic_init(&r->now_ms, now_ms());
	if (getrandom(&r->seed, sizeof(r->seed), GRND_NONBLOCK) != sizeof(r->seed))
		r->seed = now_ms() * 0x9e3779b97f4a7c15ULL;

	r->buf = malloc(NL_BUF_SIZE);
	r->neigh = cds_lfht_new(64, 64, 0, CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING, NULL);
	r->statics = cds_lfht_new(16, 16, 0, CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING, NULL);
	if (!r->buf || !r->neigh || !r->statics) {
		err = -ENOMEM;
		goto err;
	}

	r->ev = mnl_socket_open2(NETLINK_ROUTE, SOCK_NONBLOCK | SOCK_CLOEXEC);
	r->req = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (!r->ev || !r->req) {
		err = -errno;
		goto err;
	}
	err = set_rcvbuf(r->ev, NL_RCVBUF);
	if (err)
		goto err;
	/* Subscribe before dumping, so nothing falls between the two. */
	if (mnl_socket_bind(r->ev, RTMGRP_LINK | RTMGRP_NEIGH | RTMGRP_IPV4_IFADDR |
			    RTMGRP_IPV6_IFADDR | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE,
			    MNL_SOCKET_AUTOPID) < 0 ||
	    mnl_socket_bind(r->req, 0, MNL_SOCKET_AUTOPID) < 0) {
		err = -errno;
		goto err;
	}
	err = resync(r);
	if (err)
		goto err;
	return r;

err:
	xlb_route_destroy(r);
	errno = -err;
	return NULL;
}

static void destroy_table(struct cds_lfht *ht)
{
	struct cds_lfht_iter it;
	struct nh_node *n;
	bool online;

	if (!ht)
		return;
	rcu_read_lock();
	cds_lfht_for_each_entry(ht, &it, n, node) {
		if (cds_lfht_del(ht, &n->node) == 0)
			call_rcu(&n->rcu, nh_free);
	}
	rcu_read_unlock();
	/* Not from a read-side critical section, which an online QSBR thread
	 * is in: the table's resize worker may wait for a grace period. */
	online = rcu_read_ongoing();
	if (online)
		rcu_thread_offline();
	cds_lfht_destroy(ht, NULL);
	if (online)
		rcu_thread_online();
}

/* Control thread, once no worker can call xlb_route_nexthop() any more. */
void xlb_route_destroy(struct xlb_route *r)
{
	if (!r)
		return;
	if (r->ev)
		mnl_socket_close(r->ev);
	if (r->req)
		mnl_socket_close(r->req);
	destroy_table(r->neigh);
	destroy_table(r->statics);
	free(r->routes);
	/* Wait for the tables and nodes still queued with call_rcu. */
	rcu_barrier();
	free(r->rt);
	free(r->la);
	free(r->buf);
	free(r);
}

int xlb_route_fd(const struct xlb_route *r)
{
	return mnl_socket_get_fd(r->ev);
}

/*
 * After an overrun, what is still queued predates the notifications the
 * kernel dropped: applied after the dump, it would roll the mirror back to
 * an old state that the lost notifications would have corrected. So it is
 * thrown away, and only what arrives after this point is replayed over the
 * dump that follows.
 */
static void drain(struct xlb_route *r)
{
	/* Bounded, in case the kernel writes faster than we read: what is
	 * left then overruns again and brings us back here. */
	for (int i = 0; i < 65536; i++) {
		ssize_t n = mnl_socket_recvfrom(r->ev, r->buf, NL_BUF_SIZE);

		if (n < 0 && errno != ENOBUFS && errno != EINTR)
			return;  /* EAGAIN: empty; anything else shows again later */
	}
}

/* Control thread, registered with QSBR and online. Reads what is queued on
 * the notification socket, resyncs if needed, then sends the resolution
 * requests workers queued. A failed resolution request is not an error:
 * the kernel's neighbour notifications are the answer that matters. */
int xlb_route_process(struct xlb_route *r)
{
	uint64_t now = now_ms();
	union xlb_addr a;
	uint8_t family;
	int err = 0;

	atomic_store_explicit(&r->now_ms, now, memory_order_relaxed);
	r->cb_err = 0;

	for (int i = 0; i < EVENT_BATCH; i++) {
		ssize_t n = mnl_socket_recvfrom(r->ev, r->buf, NL_BUF_SIZE);

		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (errno == ENOBUFS) {
				r->resync = true;
				drain(r);
				break;
			}
			if (errno == EINTR)
				continue;
			err = -errno;
			break;
		}
		if (mnl_cb_run(r->buf, (size_t)n, 0, 0, event_cb, r) < 0) {
			err = errno ? -errno : -EPROTO;
			break;
		}
	}
	if (!err)
		err = r->cb_err;
	if (err == -ENOMEM)
		r->resync = true;  /* an update was dropped: start over next time */

	if (r->resync) {
		int e = resync(r);

		if (!err)
			err = e;
	} else if (r->rt_dirty) {
		int e = rt_publish(r);

		if (!err)
			err = e;
	}

	asked_expire(r, now);
	while (ring_pop(r, &a, &family)) {
		if (asked_recently(r, &a, family, now))
			continue;
		r->cb_err = 0;
		(void)request_resolution(r, &a, family);
	}
	r->cb_err = 0;
	return err;
}

void xlb_route_if_mac(const struct xlb_route *r, uint8_t mac[6])
{
	mac_unpack(atomic_load_explicit(&r->mac, memory_order_relaxed), mac);
}

uint32_t xlb_route_gen(const struct xlb_route *r)
{
	return atomic_load_explicit(&r->gen, memory_order_acquire);
}

int xlb_route_set_static(struct xlb_route *r, const union xlb_addr *addr, uint8_t family,
			 const uint8_t mac[6])
{
	if (family != AF_INET && family != AF_INET6)
		return -EINVAL;
	if (family == AF_INET && !xlb_addr_is_v4mapped(addr))
		return -EINVAL;
	return nh_put(r, r->statics, addr, family, mac);
}

void xlb_route_clear_static(struct xlb_route *r)
{
	nh_sweep(r, r->statics, true);
}

/*
 * Statics keyed by dst come first: a backend's configured MAC says where
 * it is, whatever the routes say. Then the route, then statics and
 * neighbours for the next hop.
 */
enum xlb_nh_result xlb_route_nexthop(struct xlb_route *r, const union xlb_addr *dst,
				     uint8_t family, uint8_t mac[6])
{
	const struct rt_entry *e;
	const union xlb_addr *via = dst;
	uint8_t via_family = family;
	struct nh_node *n;

	n = nh_find(r->statics, r->seed, dst, family);
	if (n)
		goto found;
	e = rt_lookup(rcu_dereference(r->routes), dst, family);
	if (!e || e->reject || e->oif != r->ifindex)
		return XLB_NH_UNREACHABLE;
	if (e->gw_family) {
		via = &e->gw;
		via_family = e->gw_family;
		n = nh_find(r->statics, r->seed, via, via_family);
		if (n)
			goto found;
	}
	n = nh_find(r->neigh, r->seed, via, via_family);
	if (n)
		goto found;
	queue_resolution(r, via, via_family);
	return XLB_NH_PENDING;

found:
	memcpy(mac, n->mac, 6);
	return XLB_NH_OK;
}
