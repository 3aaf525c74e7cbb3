// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <urcu-qsbr.h>

#include "events.h"
#include "icmp.h"
#include "log.h"
#include "nat.h"
#include "packet.h"
#include "worker.h"

/* Branch hints only where the packet path has a clear common case: an
 * established flow with a cached next hop. */
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* How long a frame may wait for its next hop's MAC: about what the kernel
 * waits for ARP/ND to give up (3 probes a second apart). */
#define HOLD_NS (3ull * 1000 * 1000 * 1000)
/* Empty polls of the rx ring before the worker sleeps in poll(): long
 * enough to ride out gaps in a burst, short enough not to burn a core of
 * a mostly idle node. */
#define IDLE_SPINS 32
#define IDLE_SLEEP_MS 10

static inline uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

uint64_t xlb_flow_hash5(const struct xlb_tuple *t)
{
	uint64_t h = 0x2545f4914f6cdd1dull ^ t->proto;

	h = mix64(h ^ t->src.q[0]);
	h = mix64(h ^ t->src.q[1]);
	h = mix64(h ^ t->dst.q[0]);
	h = mix64(h ^ t->dst.q[1]);
	return mix64(h ^ ((uint64_t)t->sport << 16 | t->dport));
}

/*
 * Make the packet, which matches f->tuple[dir], leave as the inverse of
 * the other direction's tuple: on the original direction that is DNAT to
 * the backend, on replies the source goes back to the VIP. Written in terms
 * of the two tuples only, so source NAT (full-NAT) needs no change here.
 * The checksum deltas were computed once, when the flow was created.
 */
static inline bool nat_rewrite(struct xlb_pkt *p, const struct xlb_flow *f, enum xlb_dir dir)
{
	struct xlb_nat_delta d = { f->nat_csum[dir][0], f->nat_csum[dir][1] };

	return xlb_nat_apply(p, &f->tuple[!dir], &d);
}

/* Precompute both directions' rewrites of a new flow (nat_rewrite). */
static void nat_prepare(struct xlb_flow *f)
{
	for (int dir = 0; dir < 2; dir++) {
		struct xlb_nat_delta d;
		struct xlb_tuple to;

		xlb_tuple_invert(&to, &f->tuple[!dir]);
		xlb_nat_delta(&d, &f->tuple[dir], &to);
		f->nat_csum[dir][0] = d.ip;
		f->nat_csum[dir][1] = d.l4;
	}
}

/* Finish a partial checksum (see xlb_csum_is_partial()): off the inlined
 * path, since only senders with offloads on a local link need it. */
static __attribute__((noinline, cold)) void csum_complete(struct xlb_worker *w, struct xlb_pkt *p)
{
	xlb_csum_complete(p);
	w->stats.csum_completed++;
}

/* The service a packet is addressed to; *svc caches the answer for the
 * rest of the packet's handling (NULL inside: not looked up yet). */
static inline const struct xlb_service *service_of(const struct xlb_services *svcs,
						   const struct xlb_pkt *p,
						   const struct xlb_service **svc, bool *looked)
{
	if (!*looked) {
		*svc = svcs ? xlb_services_find(svcs, &p->tuple) : NULL;
		*looked = true;
	}
	return *svc;
}

/* A new connection to a service: Maglev picks the backend, conntrack
 * records it. Returns the flow (ours, or the one another worker inserted
 * first) or NULL with *reason set. svc is the packet's service, NULL when
 * it has none. Cold next to the established path. */
static __attribute__((noinline)) struct xlb_flow *
create_flow(struct xlb_worker *w, const struct xlb_service *svc, const struct xlb_pkt *p,
	    uint32_t hash, uint64_t now, enum xlb_drop_reason *reason, bool *created)
{
	struct xlb_ct *ct = w->dp->ct;
	const struct xlb_backend *be;
	struct xlb_tuple reply;
	struct xlb_flow *f, *won;
	uint16_t idx;

	if (!svc) {
		*reason = XLB_DROP_NO_FLOW;
		return NULL;
	}
	if (!xlb_ct_may_create(ct, p)) {
		w->ct_stats.invalid++;
		*reason = XLB_DROP_INVALID;
		return NULL;
	}
	idx = xlb_maglev_lookup(svc->maglev, xlb_flow_hash5(&p->tuple));
	if (idx == XLB_MAGLEV_NONE) {
		*reason = XLB_DROP_NO_BACKEND;
		return NULL;
	}
	be = &svc->backends[idx];
	reply.src = be->ep.addr;
	reply.sport = be->ep.port;
	reply.dst = p->tuple.src;
	reply.dport = p->tuple.sport;
	reply.proto = p->tuple.proto;
	reply.family = p->tuple.family;
	reply.zone = p->tuple.zone;

	f = xlb_ct_alloc(ct, &p->tuple, &reply, now);
	if (!f) {
		w->ct_stats.drop++;
		*reason = XLB_DROP_CT_FULL;
		return NULL;
	}
	f->service_id = svc->id;
	f->backend_id = be->slot;
	nat_prepare(f);
	/* hash is p->tuple's, from the lookup that missed: no second SipHash. */
	won = xlb_ct_insert_hashed(ct, f, hash, &w->ct_stats);
	if (!won) {
		*reason = XLB_DROP_CT_FULL;
		return NULL;
	}
	if (won == f) {
		struct xlb_backend_stats *bs = xlb_backend_stats(be->slot);

		*created = true;
		w->stats.new_flows++;
		/* Per new connection, not per packet: an atomic is affordable. */
		if (bs) {
			__atomic_fetch_add(&bs->new_flows, 1, __ATOMIC_RELAXED);
			__atomic_fetch_add(&bs->active_flows, 1, __ATOMIC_RELAXED);
		}
	}
	return won;
}

/* What an [UPDATE] event reports a change of: the TCP state and the
 * SEEN_REPLY and ASSURED bits (the kernel's PROTOINFO, REPLY, ASSURED). */
static inline uint32_t flow_event_state(const struct xlb_flow *f)
{
	return (__atomic_load_n(&f->status, __ATOMIC_RELAXED) &
		(XLB_FLOW_SEEN_REPLY | XLB_FLOW_ASSURED)) << 8 |
	       __atomic_load_n(&f->tcp_state, __ATOMIC_RELAXED);
}

static inline enum xlb_verdict drop(struct xlb_worker *w, enum xlb_drop_reason r)
{
	w->stats.drop[r]++;
	return XLB_VERDICT_DROP;
}

/* Passive detection: the backend's first answer to a new connection. A RST
 * counts against it (the control thread marks it down after
 * health_passive in a row); a SYN-ACK clears the count. */
static __attribute__((noinline)) void passive_check(const struct xlb_flow *f,
						    const struct xlb_pkt *p)
{
	struct xlb_backend_stats *bs;

	if (p->tuple.proto != IPPROTO_TCP)
		return;
	bs = xlb_backend_stats(f->backend_id);
	if (!bs)
		return;
	if (p->tcp_flags & XLB_TCP_RST)
		__atomic_fetch_add(&bs->passive_fails, 1, __ATOMIC_RELAXED);
	else if ((p->tcp_flags & (XLB_TCP_SYN | XLB_TCP_ACK)) == (XLB_TCP_SYN | XLB_TCP_ACK) &&
		 __atomic_load_n(&bs->passive_fails, __ATOMIC_RELAXED))
		__atomic_store_n(&bs->passive_fails, 0, __ATOMIC_RELAXED);
}

static inline void set_macs(const struct xlb_worker *w, uint8_t *frame, const uint8_t mac[6])
{
	memcpy(frame, mac, 6);
	memcpy(frame + 6, w->dp->if_mac, 6);
}

/* The next hop's MAC for p's destination into mac: TX; or HOLD, with b
 * remembering whose MAC it waits for; or a counted DROP. */
static enum xlb_verdict nexthop(struct xlb_worker *w, struct xlb_buf *b, const struct xlb_pkt *p,
				uint8_t mac[6])
{
	const union xlb_addr *dst = &p->tuple.dst;
	uint32_t gen = xlb_route_gen(w->dp->route) + 1;
	uint32_t slot = ((dst->w[0] ^ dst->w[1] ^ dst->w[2] ^ dst->w[3]) * 0x9e3779b1u) >>
			(32 - __builtin_ctz(XLB_NH_CACHE));
	struct xlb_nh_cached *c = &w->nh_cache[slot];

	if (c->gen == gen && c->family == p->tuple.family && xlb_addr_eq(&c->addr, dst)) {
		memcpy(mac, c->mac, 6);
		return XLB_VERDICT_TX;
	}
	switch (xlb_route_nexthop(w->dp->route, dst, p->tuple.family, mac)) {
	case XLB_NH_OK:
		c->addr = *dst;
		c->family = p->tuple.family;
		memcpy(c->mac, mac, 6);
		c->gen = gen;
		return XLB_VERDICT_TX;
	case XLB_NH_PENDING:
		b->nh = p->tuple.dst;
		b->family = p->tuple.family;
		return XLB_VERDICT_HOLD;
	default:
		return drop(w, XLB_DROP_UNREACHABLE);
	}
}

/* Address the frame to p's next hop (packets without a flow to cache it). */
static enum xlb_verdict send_to(struct xlb_worker *w, struct xlb_buf *b, const struct xlb_pkt *p)
{
	uint8_t mac[6];
	enum xlb_verdict v = nexthop(w, b, p, mac);

	if (v == XLB_VERDICT_TX)
		set_macs(w, b->data, mac);
	return v;
}

/* Rejects per second per worker, and the burst allowed, as the kernel's
 * net.ipv4.icmp_msgs_per_sec / icmp_msgs_burst defaults. */
#define REJECT_PER_SEC 1000
#define REJECT_BURST 50

static bool reject_allowed(struct xlb_worker *w, uint64_t now)
{
	uint64_t elapsed;

	if (now < w->reject_tokens_at)      /* callers fed from memory may go back in time */
		w->reject_tokens_at = now;
	elapsed = now - w->reject_tokens_at;
	if (elapsed >= 1000000000ull / REJECT_PER_SEC) {
		uint64_t add = elapsed * REJECT_PER_SEC / 1000000000ull;

		w->reject_tokens = (uint32_t)(w->reject_tokens + add > REJECT_BURST ?
					      REJECT_BURST : w->reject_tokens + add);
		w->reject_tokens_at = now;
	}
	if (!w->reject_tokens)
		return false;
	w->reject_tokens--;
	return true;
}

/*
 * No backend can take a new connection: with no_backend = reject, answer
 * as a closed port would (a TCP RST, an ICMP port unreachable), from the
 * VIP, in the received frame itself. Cold.
 */
static __attribute__((noinline)) enum xlb_verdict reject(struct xlb_worker *w, struct xlb_buf *b,
							 const struct xlb_service *svc,
							 struct xlb_pkt *p, uint64_t now)
{
	uint32_t cap = b->cap > b->len ? b->cap : b->len;
	int err;

	w->stats.drop[XLB_DROP_NO_BACKEND]++;
	if (svc->no_backend != XLB_NOBACKEND_REJECT)
		return XLB_VERDICT_DROP;
	if (!reject_allowed(w, now)) {
		w->stats.reject_limited++;
		return XLB_VERDICT_DROP;
	}
	if (p->tuple.proto == IPPROTO_TCP)
		err = xlb_tcp_make_rst(b->data, &b->len, p);
	else
		err = xlb_icmp_make_unreach(b->data, &b->len, cap, p);
	if (err || xlb_pkt_parse(p, b->data, b->len) != XLB_PARSE_OK)
		return XLB_VERDICT_DROP;
	w->stats.rejected++;
	return send_to(w, b, p);
}

/*
 * ICMP errors about our connections (RELATED): translated as the kernel's
 * NAT does and sent on. An unreachable from a backend answering a new
 * connection counts for passive detection. Cold.
 */
static __attribute__((noinline)) enum xlb_verdict icmp(struct xlb_worker *w, struct xlb_buf *b,
						       struct xlb_pkt *p, uint64_t now)
{
	struct xlb_flow *f;
	enum xlb_dir dir;
	uint32_t status;

	if (!xlb_icmp_is_error(p))
		return drop(w, XLB_DROP_UNSUPPORTED);
	switch (xlb_icmp_related(w->dp->ct, p, now, &f, &dir)) {
	case XLB_ICMP_RELATED:
		break;
	case XLB_ICMP_MALFORMED:
		w->ct_stats.error++;
		return drop(w, XLB_DROP_PARSE);
	default:
		w->ct_stats.error++;
		return drop(w, XLB_DROP_INVALID);
	}
	status = __atomic_load_n(&f->status, __ATOMIC_RELAXED);
	if (dir == XLB_DIR_REPLY && !(status & XLB_FLOW_SEEN_REPLY)) {
		struct xlb_backend_stats *bs = xlb_backend_stats(f->backend_id);

		if (bs)
			__atomic_fetch_add(&bs->passive_fails, 1, __ATOMIC_RELAXED);
	}
	w->stats.related++;
	return send_to(w, b, p);
}

/* Whether a notrack service bypasses conntrack for this client. */
static bool notrack_client(const struct xlb_service *svc, const union xlb_addr *client,
			   uint8_t family)
{
	if (!svc->n_notrack_clients)
		return true;
	for (uint32_t i = 0; i < svc->n_notrack_clients; i++)
		if (xlb_prefix_match(&svc->notrack_clients[i], client, family))
			return true;
	return false;
}

/*
 * Services with notrack = 1: no conntrack entry. Packets to the VIP go to
 * the backend Maglev picks for their 5-tuple; the backend's replies are
 * rewritten back to the VIP by the backend index. notrack_orig() runs
 * before the flow lookup (a notrack VIP never has flows); notrack_reply()
 * after a miss, so a backend shared with a tracked service keeps its
 * tracked flows. Each returns true when the packet was one of theirs.
 */
static __attribute__((noinline)) bool notrack_orig(struct xlb_worker *w,
						   const struct xlb_service *svc,
						   struct xlb_buf *b, struct xlb_pkt *p,
						   uint64_t now, enum xlb_verdict *v)
{
	bool partial;
	uint32_t idx;

	if (!svc || !svc->notrack || !notrack_client(svc, &p->tuple.src, p->tuple.family))
		return false;
	idx = xlb_maglev_lookup(svc->maglev, xlb_flow_hash5(&p->tuple));
	if (idx == XLB_MAGLEV_NONE) {
		*v = reject(w, b, svc, p, now);
		return true;
	}
	partial = xlb_csum_is_partial(p);
	xlb_nat_set_dst(p, &svc->backends[idx].ep.addr, svc->backends[idx].ep.port);
	if (partial)
		csum_complete(w, p);
	w->stats.untracked++;
	*v = send_to(w, b, p);
	return true;
}

static __attribute__((noinline)) bool notrack_reply(struct xlb_worker *w,
						    const struct xlb_services *svcs,
						    struct xlb_buf *b, struct xlb_pkt *p,
						    enum xlb_verdict *v)
{
	const struct xlb_service *svc;
	bool partial;
	uint32_t idx;

	svc = xlb_services_find_notrack_backend(svcs, &p->tuple, &idx);
	if (!svc || !notrack_client(svc, &p->tuple.dst, p->tuple.family))
		return false;
	partial = xlb_csum_is_partial(p);
	xlb_nat_set_src(p, &svc->vip.addr, svc->vip.port);
	if (partial)
		csum_complete(w, p);
	w->stats.untracked++;
	*v = send_to(w, b, p);
	return true;
}

/* What the first pass over a burst found out about a frame. */
enum stage {
	STAGE_TRACKED,       /* TCP or UDP: hashed, its buckets prefetched */
	STAGE_ICMP,
	STAGE_UNSUPPORTED,
	STAGE_PARSE_ERROR,
};

/* Parse a frame, and for TCP and UDP hash its tuple and prefetch the two
 * buckets its flow can be in: first pass of a burst. */
static inline enum stage classify(struct xlb_worker *w, const struct xlb_buf *b,
				  struct xlb_pkt *p, uint32_t *hash)
{
	enum xlb_parse_result pr = xlb_pkt_parse(p, b->data, b->len);

	*hash = 0;   /* only TCP and UDP are hashed; the others never read it */
	if (unlikely(pr != XLB_PARSE_OK))
		return pr == XLB_PARSE_FRAGMENT || pr == XLB_PARSE_UNSUPPORTED ?
		       STAGE_UNSUPPORTED : STAGE_PARSE_ERROR;
	/* Zones from VLANs: the same tuple on two VLANs is two connections. */
	if (unlikely(p->has_vlan) && __atomic_load_n(&w->dp->zone_from_vlan, __ATOMIC_RELAXED))
		p->tuple.zone = p->vlan_tci & 0x0fff;
	if (unlikely(p->tuple.proto != IPPROTO_TCP && p->tuple.proto != IPPROTO_UDP))
		return p->tuple.proto == IPPROTO_ICMP || p->tuple.proto == IPPROTO_ICMPV6 ?
		       STAGE_ICMP : STAGE_UNSUPPORTED;
	*hash = xlb_ct_hash(w->dp->ct, &p->tuple);
	xlb_ct_prefetch_buckets(w->dp->ct, *hash);
	return STAGE_TRACKED;
}

static enum xlb_verdict handle_one(struct xlb_worker *w, struct xlb_buf *b, struct xlb_pkt *p,
				   enum stage stage, uint32_t hash, uint64_t hint,
				   const struct xlb_services *svcs, uint32_t gen, uint64_t now)
{
	struct xlb_ct *ct = w->dp->ct;
	const struct xlb_service *svc = NULL;
	enum xlb_drop_reason reason;
	enum xlb_ctinfo ctinfo;
	bool svc_looked = false;
	struct xlb_flow *f;
	enum xlb_dir dir;
	uint8_t mac[6];

	if (unlikely(stage != STAGE_TRACKED)) {
		if (stage == STAGE_ICMP)
			return icmp(w, b, p, now);
		return drop(w, stage == STAGE_UNSUPPORTED ? XLB_DROP_UNSUPPORTED : XLB_DROP_PARSE);
	}

	if (unlikely(svcs && svcs->n_notrack)) {
		enum xlb_verdict v;

		if (service_of(svcs, p, &svc, &svc_looked) &&
		    notrack_orig(w, svc, b, p, now, &v))
			return v;
	}

	f = xlb_ct_lookup_hint(ct, &p->tuple, hash, now, &dir, hint);
	if (likely(f != NULL)) {
		bool events = xlb_events_wanted();
		uint32_t before = 0;
		uint8_t tcp_before = f->tcp_state;

		w->ct_stats.found++;
		if (unlikely(__atomic_load_n(&f->status, __ATOMIC_RELAXED) & XLB_FLOW_DEAD))
			return drop(w, XLB_DROP_BACKEND_DOWN);
		if (unlikely(events))
			before = flow_event_state(f);
		ctinfo = xlb_ct_track(ct, f, dir, p, now);
		if (unlikely(ctinfo == XLB_CTINFO_INVALID)) {
			w->ct_stats.invalid++;
			return drop(w, XLB_DROP_INVALID);
		}
		if (unlikely(tcp_before == XLB_TCP_SYN_SENT) && dir == XLB_DIR_REPLY)
			passive_check(f, p);
		if (unlikely(events) && ctinfo != XLB_CTINFO_NEW && flow_event_state(f) != before)
			xlb_events_emit(XLB_CT_EVENT_UPDATE, f);
		/* A SYN reopening a closed connection: the tracker removed the
		 * old entry; the new connection gets a fresh backend choice. */
		if (unlikely(ctinfo == XLB_CTINFO_NEW && dir == XLB_DIR_ORIG))
			f = NULL;
	}
	if (!f) {
		bool created = false;

		if (unlikely(svcs && svcs->n_notrack)) {
			enum xlb_verdict v;

			if (notrack_reply(w, svcs, b, p, &v))
				return v;
		}

		f = create_flow(w, service_of(svcs, p, &svc, &svc_looked), p, hash, now, &reason,
				&created);
		if (!f) {
			if (reason == XLB_DROP_NO_BACKEND)
				return reject(w, b, svc, p, now);
			return drop(w, reason);
		}
		dir = XLB_DIR_ORIG;
		ctinfo = xlb_ct_track(ct, f, dir, p, now);
		if (unlikely(ctinfo == XLB_CTINFO_INVALID)) {
			w->ct_stats.invalid++;
			return drop(w, XLB_DROP_INVALID);
		}
		if (created && xlb_events_wanted())
			xlb_events_emit(XLB_CT_EVENT_NEW, f);
	}

	xlb_flow_account(f, dir, p->l3_len);
	/* A sender's offloaded checksum (veth: containers, pods) is only the
	 * pseudo-header's sum; nothing after us would finish it, so the
	 * rewrite does, as the kernel's forwarding path does
	 * (skb_checksum_help). */
	if (unlikely(nat_rewrite(p, f, dir)))
		w->stats.csum_completed++;

	/* The next hop's MAC, cached in the flow per direction until routes
	 * or neighbours change (gen + 1 so a zeroed entry never matches). A
	 * racing worker may write the same slot; both write what the route
	 * table says for this generation. */
	if (likely(__atomic_load_n(&f->nh_gen[dir], __ATOMIC_ACQUIRE) == gen + 1)) {
		memcpy(mac, f->nh_mac[dir], 6);
	} else {
		enum xlb_verdict v = nexthop(w, b, p, mac);

		if (v != XLB_VERDICT_TX)
			return v;
		memcpy(f->nh_mac[dir], mac, 6);
		__atomic_store_n(&f->nh_gen[dir], gen + 1, __ATOMIC_RELEASE);
	}
	set_macs(w, b->data, mac);
	return XLB_VERDICT_TX;
}

unsigned xlb_worker_handle_burst(struct xlb_worker *w, struct xlb_buf *bufs, unsigned n,
				 uint64_t now)
{
	const struct xlb_services *svcs = rcu_dereference(w->dp->services);
	uint32_t gen = xlb_route_gen(w->dp->route);
	struct xlb_pkt pkts[XLB_BURST];
	uint32_t hashes[XLB_BURST];
	uint64_t hints[XLB_BURST];
	uint8_t stages[XLB_BURST];
	unsigned ntx = 0;

	/*
	 * Three passes, so the flow table's cache misses overlap instead of
	 * following each other: parse and hash every frame and prefetch its
	 * two buckets; then find each frame's candidate flow by tag in the
	 * (now cached) buckets and prefetch its lines; then handle the
	 * frames, whose lookups find everything in cache and start from that
	 * candidate. The last pass still checks it and searches again when
	 * it is not the one: a frame earlier in the burst may have created or
	 * ended the flow a later one belongs to.
	 */
	for (unsigned i = 0; i < n; i++)
		stages[i] = (uint8_t)classify(w, &bufs[i], &pkts[i], &hashes[i]);
	for (unsigned i = 0; i < n; i++)
		hints[i] = stages[i] == STAGE_TRACKED ? xlb_ct_prefetch_flow(w->dp->ct, hashes[i]) : 0;
	for (unsigned i = 0; i < n; i++) {
		bufs[i].verdict = handle_one(w, &bufs[i], &pkts[i], (enum stage)stages[i],
					     hashes[i], hints[i], svcs, gen, now);
		ntx += bufs[i].verdict == XLB_VERDICT_TX;
	}
	return ntx;
}

static bool tx_one(struct xlb_worker *w, uint64_t addr, uint32_t len)
{
	struct xlb_xsk *s = &w->xsk;
	uint32_t idx;

	if (xsk_ring_prod__reserve(&s->tx, 1, &idx) != 1) {
		xlb_xsk_complete(s);
		if (xsk_ring_prod__reserve(&s->tx, 1, &idx) != 1)
			return false;
	}
	xsk_ring_prod__tx_desc(&s->tx, idx)->addr = addr;
	xsk_ring_prod__tx_desc(&s->tx, idx)->len = len;
	xsk_ring_prod__submit(&s->tx, 1);
	s->tx_outstanding++;
	w->stats.tx_packets++;
	w->stats.tx_bytes += len;
	return true;
}

static void hold_frame(struct xlb_worker *w, const struct xlb_buf *b, uint64_t now)
{
	struct xlb_hold *h;

	if (w->n_hold == XLB_HOLD_MAX) {
		xlb_xsk_free_frame(&w->xsk, b->addr);
		w->stats.drop[XLB_DROP_NEIGH]++;
		return;
	}
	h = &w->hold[w->n_hold++];
	h->addr = b->addr;
	h->len = b->len;
	h->family = b->family;
	h->nh = b->nh;
	h->deadline = now + HOLD_NS;
	w->stats.held++;
}

/* Send what waited for a neighbour that has since been resolved; drop what
 * waited too long. Cheap when nothing changed: one generation compare. */
static void release_held(struct xlb_worker *w, uint64_t now)
{
	uint32_t gen = xlb_route_gen(w->dp->route);
	uint32_t kept = 0;
	bool sent = false;

	if (gen == w->hold_gen && now < w->hold[0].deadline)
		return;
	w->hold_gen = gen;
	for (uint32_t i = 0; i < w->n_hold; i++) {
		struct xlb_hold *h = &w->hold[i];
		uint8_t *data = xlb_xsk_frame(&w->xsk, h->addr);
		enum xlb_nh_result r;
		uint8_t mac[6];

		r = xlb_route_nexthop(w->dp->route, &h->nh, h->family, mac);
		if (r == XLB_NH_OK) {
			set_macs(w, data, mac);
			if (tx_one(w, h->addr, h->len)) {
				sent = true;
			} else {
				xlb_xsk_free_frame(&w->xsk, h->addr);
				w->stats.drop[XLB_DROP_TX_RING]++;
			}
		} else if (r == XLB_NH_PENDING && now < h->deadline) {
			w->hold[kept++] = *h;
		} else {
			xlb_xsk_free_frame(&w->xsk, h->addr);
			w->stats.drop[r == XLB_NH_PENDING ? XLB_DROP_NEIGH : XLB_DROP_UNREACHABLE]++;
		}
	}
	w->n_hold = kept;
	if (sent)
		xlb_xsk_kick_tx(&w->xsk);
}

static void transmit_burst(struct xlb_worker *w, struct xlb_buf *bufs, unsigned n, unsigned ntx,
			   uint64_t now)
{
	struct xlb_xsk *s = &w->xsk;
	uint32_t idx = 0;
	unsigned got = 0;

	if (ntx) {
		got = xsk_ring_prod__reserve(&s->tx, ntx, &idx);
		if (got != ntx) {
			xlb_xsk_complete(s);
			got = xsk_ring_prod__reserve(&s->tx, ntx, &idx);
		}
		if (got != ntx)
			got = 0;    /* reserve is all or nothing */
	}
	for (unsigned i = 0; i < n; i++) {
		struct xlb_buf *b = &bufs[i];

		switch (b->verdict) {
		case XLB_VERDICT_TX:
			if (got) {
				struct xdp_desc *d = xsk_ring_prod__tx_desc(&s->tx, idx++);

				d->addr = b->addr;
				d->len = b->len;
				w->stats.tx_packets++;
				w->stats.tx_bytes += b->len;
			} else {
				xlb_xsk_free_frame(s, b->addr);
				w->stats.drop[XLB_DROP_TX_RING]++;
			}
			break;
		case XLB_VERDICT_HOLD:
			hold_frame(w, b, now);
			break;
		default:
			xlb_xsk_free_frame(s, b->addr);
			break;
		}
	}
	if (got) {
		xsk_ring_prod__submit(&s->tx, got);
		s->tx_outstanding += got;
		xlb_xsk_kick_tx(s);
	}
}

/* Sleep until the socket has something, offline for RCU so grace periods
 * do not wait for an idle worker. */
static void idle_wait(struct xlb_worker *w)
{
	struct pollfd pfd = { .fd = w->xsk.fd, .events = POLLIN };

	rcu_thread_offline();
	poll(&pfd, 1, IDLE_SLEEP_MS);
	rcu_thread_online();
}

static void *worker_main(void *arg)
{
	struct xlb_worker *w = arg;
	struct xlb_xsk *s = &w->xsk;
	struct xlb_buf bufs[XLB_BURST];
	unsigned idle = 0;

	rcu_register_thread();
	while (!CMM_LOAD_SHARED(w->dp->stop)) {
		uint32_t idx, n;
		uint64_t now;
		unsigned ntx;

		rcu_quiescent_state();
		xlb_xsk_complete(s);
		n = xsk_ring_cons__peek(&s->rx, XLB_BURST, &idx);
		if (!n) {
			xlb_xsk_refill(s);
			xlb_xsk_kick_tx(s);
			if (w->n_hold)
				release_held(w, xlb_now_ns());
			if (++idle >= IDLE_SPINS)
				idle_wait(w);
			continue;
		}
		idle = 0;
		for (uint32_t i = 0; i < n; i++) {
			const struct xdp_desc *d = xsk_ring_cons__rx_desc(&s->rx, idx + i);

			bufs[i].addr = d->addr;
			bufs[i].len = d->len;
			bufs[i].data = xlb_xsk_frame(s, d->addr);
			bufs[i].cap = XLB_XSK_FRAME_SIZE - (uint32_t)(d->addr & (XLB_XSK_FRAME_SIZE - 1));
			w->stats.rx_bytes += d->len;
		}
		xsk_ring_cons__release(&s->rx, n);
		w->stats.rx_packets += n;

		now = xlb_now_ns();
		ntx = xlb_worker_handle_burst(w, bufs, n, now);
		transmit_burst(w, bufs, n, ntx, now);
		if (w->n_hold)
			release_held(w, now);
		xlb_xsk_refill(s);
		/* Zero-copy drivers want a nudge when the fill ring ran dry. */
		if (xsk_ring_prod__needs_wakeup(&s->fq))
			recvfrom(s->fd, NULL, 0, MSG_DONTWAIT, NULL, NULL);
	}
	/* Frames still held are in the UMEM, freed with the socket. */
	rcu_unregister_thread();
	return NULL;
}

int xlb_worker_open(struct xlb_worker *w, struct xlb_dataplane *dp, uint32_t id,
		    const char *ifname, uint32_t queue, int xsks_map_fd)
{
	memset(w, 0, sizeof(*w));
	w->dp = dp;
	w->id = id;
	w->queue = queue;
	return xlb_xsk_open(&w->xsk, ifname, queue, xsks_map_fd, true);
}

int xlb_worker_start(struct xlb_worker *w)
{
	char name[16];
	int err;

	err = pthread_create(&w->thread, NULL, worker_main, w);
	if (err)
		return -err;
	w->started = true;
	snprintf(name, sizeof(name), "xlb-q%u", w->queue);
	pthread_setname_np(w->thread, name);
	return 0;
}

void xlb_worker_close(struct xlb_worker *w)
{
	if (w->started)
		pthread_join(w->thread, NULL);
	w->started = false;
	xlb_xsk_close(&w->xsk);
}

const char *xlb_drop_reason_name(enum xlb_drop_reason r)
{
	static const char *const names[XLB_DROP_MAX] = {
		[XLB_DROP_PARSE] = "parse",
		[XLB_DROP_UNSUPPORTED] = "unsupported",
		[XLB_DROP_NO_FLOW] = "no_flow",
		[XLB_DROP_INVALID] = "invalid",
		[XLB_DROP_NO_BACKEND] = "no_backend",
		[XLB_DROP_CT_FULL] = "ct_full",
		[XLB_DROP_UNREACHABLE] = "unreachable",
		[XLB_DROP_NEIGH] = "neighbour",
		[XLB_DROP_TX_RING] = "tx_ring",
		[XLB_DROP_BACKEND_DOWN] = "backend_down",
	};

	return r < XLB_DROP_MAX ? names[r] : "?";
}
