/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Per-packet state tracking of existing flows: the TCP state machine of
 * nf_conntrack_proto_tcp.c, UDP's replied/stream timeouts and ASSURED,
 * ICMP echo and everything else with one timeout each.
 *
 * Not done yet (later issues), and what stands in for it:
 *  - TCP window tracking (tcp_in_window): every segment that the state
 *    table accepts counts as in window. The win[] fields are kept for it.
 *    tcp_be_liberal is therefore a no-op today: being liberal is what we
 *    already are.
 *  - The timeout refinements that need window tracking: max_retrans
 *    (retransmission counting), unacknowledged data and zero windows. Only
 *    the kernel's basic rule applies: the new state's timeout, CLOSE's for a
 *    RST, and at most `unacknowledged` for a connection picked up in the
 *    middle (tcp_loose) until it has seen a reply.
 *  - The sequence checks on RST (a RST must hit the window): any RST that
 *    the table accepts closes the connection.
 */
#include <arpa/inet.h>
#include <string.h>

#include "flow_internal.h"

/* What the transition table is indexed by: the packet's class, from its
 * flags, in the kernel's order of precedence (RST, then SYN, FIN, ACK). */
enum seg_class {
	SEG_SYN,
	SEG_SYNACK,
	SEG_FIN,
	SEG_ACK,
	SEG_RST,
	SEG_NONE,
	SEG_MAX,
};

/* f->last_flags */
#define LAST_SIMULTANEOUS_OPEN 0x01   /* a SYN came from each side */
#define LAST_CHALLENGE_ACK     0x02   /* a SYN was let through in LAST_ACK */

/* f->win[dir].flags */
#define WIN_CLOSE_INIT 0x01           /* this side sent the first FIN */

#define NO XLB_TCP_NONE
#define SS XLB_TCP_SYN_SENT
#define SR XLB_TCP_SYN_RECV
#define ES XLB_TCP_ESTABLISHED
#define FW XLB_TCP_FIN_WAIT
#define CW XLB_TCP_CLOSE_WAIT
#define LA XLB_TCP_LAST_ACK
#define TW XLB_TCP_TIME_WAIT
#define CL XLB_TCP_CLOSE
#define S2 XLB_TCP_SYN_SENT2
#define IG XLB_TCP_IGNORE    /* may be valid, may not: let it pass, change nothing */
#define IV XLB_TCP_INVALID   /* certainly wrong: drop, change nothing */

/*
 * The state a connection moves to, by the direction of the packet, the
 * state it is in and the packet's class. One row per state, so a row reads
 * as "in this state, what does each kind of segment do".
 *
 * The reasoning behind the less obvious cells:
 *  - A SYN from the client in SYN_RECV..LAST_ACK is ignored, not refused:
 *    we may be holding a dead connection the endpoints have forgotten; if
 *    the server answers it with a SYN/ACK we resynchronise (see track).
 *  - A SYN in TIME_WAIT or CLOSE opens a new connection on the old tuple
 *    (RFC 1122 allows it from TIME_WAIT); track() turns that into a fresh
 *    flow.
 *  - A SYN from the server while the client's SYN is outstanding is a
 *    simultaneous open (SYN_SENT2); the SYN/ACKs that follow lead both
 *    sides to SYN_RECV.
 *  - The server's SYN/ACK after the handshake, and its ACK while we only
 *    saw a SYN, are ignored: late retransmissions or a half-open peer.
 *  - FIN before any SYN/ACK, and SYN/ACK from the client outside a
 *    simultaneous open, are invalid.
 *  - RST closes from any state but NONE.
 */
static const uint8_t tcp_next[2][XLB_TCP_MAX][SEG_MAX] = {
	[XLB_DIR_ORIG] = {
		/*           SYN  SYNACK FIN  ACK  RST  NONE */
		[NO]     = { SS,  IV,    IV,  ES,  IV,  IV },
		[SS]     = { SS,  IV,    IV,  IV,  CL,  IV },
		[SR]     = { IG,  SR,    FW,  ES,  CL,  IV },
		[ES]     = { IG,  IV,    FW,  ES,  CL,  IV },
		[FW]     = { IG,  IV,    LA,  CW,  CL,  IV },
		[CW]     = { IG,  IV,    LA,  CW,  CL,  IV },
		[LA]     = { IG,  IV,    LA,  TW,  CL,  IV },
		[TW]     = { SS,  IV,    TW,  TW,  CL,  IV },
		[CL]     = { SS,  IV,    CL,  CL,  CL,  IV },
		[S2]     = { S2,  SR,    IV,  IV,  CL,  IV },
	},
	[XLB_DIR_REPLY] = {
		/*           SYN  SYNACK FIN  ACK  RST  NONE */
		[NO]     = { IV,  IV,    IV,  IV,  IV,  IV },
		[SS]     = { S2,  SR,    IV,  IG,  CL,  IV },
		[SR]     = { IV,  IG,    FW,  SR,  CL,  IV },
		[ES]     = { IV,  IG,    FW,  ES,  CL,  IV },
		[FW]     = { IV,  IG,    LA,  CW,  CL,  IV },
		[CW]     = { IV,  IG,    LA,  CW,  CL,  IV },
		[LA]     = { IV,  IG,    LA,  TW,  CL,  IV },
		[TW]     = { SS,  IG,    TW,  TW,  CL,  IV },
		[CL]     = { IV,  IG,    CL,  CL,  CL,  IV },
		[S2]     = { S2,  SR,    IV,  IG,  CL,  IV },
	},
};

static const enum xlb_timeout tcp_state_timeout[XLB_TCP_MAX] = {
	[NO] = XLB_TO_TCP_SYN_SENT,   /* never a target state */
	[SS] = XLB_TO_TCP_SYN_SENT,
	[SR] = XLB_TO_TCP_SYN_RECV,
	[ES] = XLB_TO_TCP_ESTABLISHED,
	[FW] = XLB_TO_TCP_FIN_WAIT,
	[CW] = XLB_TO_TCP_CLOSE_WAIT,
	[LA] = XLB_TO_TCP_LAST_ACK,
	[TW] = XLB_TO_TCP_TIME_WAIT,
	[CL] = XLB_TO_TCP_CLOSE,
	[S2] = XLB_TO_TCP_SYN_SENT,   /* the kernel has no sysctl for it either */
};

#define FLAGBIT(f) (1ull << (f))

/*
 * Flag combinations a real TCP sends (PSH, ECE and CWR do not matter and
 * are masked off first). Anything else - SYN with FIN or RST, no flags,
 * FIN without ACK - is invalid, as in the kernel's tcp_error().
 */
static const uint64_t tcp_valid_flags =
	FLAGBIT(XLB_TCP_SYN) |
	FLAGBIT(XLB_TCP_SYN | XLB_TCP_URG) |
	FLAGBIT(XLB_TCP_SYN | XLB_TCP_ACK) |
	FLAGBIT(XLB_TCP_RST) |
	FLAGBIT(XLB_TCP_RST | XLB_TCP_ACK) |
	FLAGBIT(XLB_TCP_FIN | XLB_TCP_ACK) |
	FLAGBIT(XLB_TCP_FIN | XLB_TCP_ACK | XLB_TCP_URG) |
	FLAGBIT(XLB_TCP_ACK) |
	FLAGBIT(XLB_TCP_ACK | XLB_TCP_URG);

static bool tcp_flags_valid(uint8_t flags)
{
	return tcp_valid_flags & FLAGBIT(flags & ~(XLB_TCP_PSH | XLB_TCP_ECE | XLB_TCP_CWR));
}

static enum seg_class seg_class(uint8_t flags)
{
	if (flags & XLB_TCP_RST)
		return SEG_RST;
	if (flags & XLB_TCP_SYN)
		return (flags & XLB_TCP_ACK) ? SEG_SYNACK : SEG_SYN;
	if (flags & XLB_TCP_FIN)
		return SEG_FIN;
	if (flags & XLB_TCP_ACK)
		return SEG_ACK;
	return SEG_NONE;
}

/* Sequence numbers of a segment; zeros when the packet carries no
 * readable TCP header (the tracker then only loses the resync below). */
struct tcp_seg {
	uint32_t seq, ack, end;
	uint16_t win;
};

static void read_seg(const struct xlb_pkt *p, struct tcp_seg *s)
{
	const uint8_t *th;
	uint32_t hdr_len, payload = 0;

	memset(s, 0, sizeof(*s));
	if (!p->data || p->l4_len < 20 || (uint32_t)p->l4_off + 20 > p->len)
		return;
	th = p->data + p->l4_off;
	memcpy(&s->seq, th + 4, 4);
	memcpy(&s->ack, th + 8, 4);
	memcpy(&s->win, th + 14, 2);
	s->seq = ntohl(s->seq);
	s->ack = ntohl(s->ack);
	s->win = ntohs(s->win);
	hdr_len = (uint32_t)(th[12] >> 4) * 4;
	if (hdr_len <= p->l4_len)
		payload = p->l4_len - hdr_len;
	s->end = s->seq + payload + !!(p->tcp_flags & XLB_TCP_SYN) + !!(p->tcp_flags & XLB_TCP_FIN);
}

uint64_t xlb_ct_initial_timeout(const struct xlb_ct *ct, uint8_t l4proto)
{
	switch (l4proto) {
	case IPPROTO_TCP:
		return ct_timeout(ct, XLB_TO_TCP_SYN_SENT);
	case IPPROTO_UDP:
		return ct_timeout(ct, XLB_TO_UDP);
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		return ct_timeout(ct, XLB_TO_ICMP);
	default:
		return ct_timeout(ct, XLB_TO_GENERIC);
	}
}

bool xlb_ct_may_create(const struct xlb_ct *ct, const struct xlb_pkt *p)
{
	uint8_t next;

	switch (p->tuple.proto) {
	case IPPROTO_TCP:
		if (!tcp_flags_valid(p->tcp_flags))
			return false;
		next = tcp_next[XLB_DIR_ORIG][NO][seg_class(p->tcp_flags)];
		if (next == SS)
			return true;
		return next == ES && __atomic_load_n(&ct->tcp_loose, __ATOMIC_RELAXED);
	case IPPROTO_UDP:
		return true;
	case IPPROTO_ICMP:
		return p->icmp_type == 8;     /* echo request */
	case IPPROTO_ICMPV6:
		return p->icmp_type == 128;   /* echo request */
	default:
		return true;                  /* generic tracking, as the kernel */
	}
}

/*
 * The TCP part of xlb_ct_track(), under the flow's lock. `accepted` is the
 * ctinfo of a packet that passes. Returns the packet's ctinfo; *reopen is
 * set when the connection must be replaced by a fresh one, *kill when it
 * is to be deleted after the packet passes.
 */
static enum xlb_ctinfo tcp_track(struct xlb_ct *ct, struct xlb_flow *f, enum xlb_dir dir,
				 const struct xlb_pkt *p, uint64_t now, enum xlb_ctinfo accepted,
				 bool *reopen, bool *kill)
{
	enum seg_class cls = seg_class(p->tcp_flags);
	struct tcp_seg seg;
	uint8_t old, next;
	uint32_t status;
	uint64_t timeout;

	read_seg(p, &seg);
	old = f->tcp_state;
	if (old >= XLB_TCP_MAX)
		return XLB_CTINFO_INVALID;
	next = tcp_next[dir][old][cls];

	/* Picking up a connection in the middle needs tcp_loose (the
	 * kernel's tcp_new()). */
	if (old == NO && next == ES && !__atomic_load_n(&ct->tcp_loose, __ATOMIC_RELAXED))
		return XLB_CTINFO_INVALID;

	switch (next) {
	case SS:
		if (old < TW)
			break;
		/* A new connection on the tuple of a closed one. The kernel
		 * reuses the entry only after a FIN or a RST from this side and
		 * otherwise ignores the SYN; a load balancer wants a fresh flow
		 * and a fresh backend choice for every new connection. */
		*reopen = true;
		return XLB_CTINFO_NEW;
	case IG:
		if (cls == SEG_SYNACK && f->last_index == SEG_SYN && f->last_dir != dir &&
		    seg.ack == f->last_end) {
			/* This SYN/ACK answers the SYN we ignored a moment
			 * ago: the endpoints started over and agree, we
			 * follow them into a new handshake. */
			old = SS;
			next = SR;
			f->last_flags &= ~LAST_CHALLENGE_ACK;
			break;
		}
		/* Remember the segment: its answer may resynchronise us. */
		f->last_index = cls;
		f->last_dir = dir;
		f->last_seq = seg.seq;
		f->last_end = seg.end;
		f->last_win = seg.win;
		if (cls == SEG_SYN && dir == XLB_DIR_ORIG) {
			/* In LAST_ACK, the peer may answer this SYN with an
			 * RFC 5961 challenge ACK, which must not be taken for
			 * the last ACK of the old connection. */
			f->last_flags = old == LA ? LAST_CHALLENGE_ACK : 0;
		}
		if (old == SS && cls == SEG_ACK && dir == XLB_DIR_REPLY)
			f->last_ack = seg.ack;
		return accepted;   /* no state change, no timeout refresh */
	case IV:
		return XLB_CTINFO_INVALID;
	case TW:
		if (old == LA && cls == SEG_ACK && f->last_dir != dir &&
		    f->last_index == SEG_SYN && (f->last_flags & LAST_CHALLENGE_ACK)) {
			f->last_flags &= ~LAST_CHALLENGE_ACK;
			return accepted;   /* the challenge ACK: stay in LAST_ACK */
		}
		break;
	case S2:
		f->last_flags |= LAST_SIMULTANEOUS_OPEN;
		break;
	case SR:
		/* The table cannot tell a simultaneous open's final ACK from
		 * a late one; the flag can. */
		if (dir == XLB_DIR_REPLY && cls == SEG_ACK && (f->last_flags & LAST_SIMULTANEOUS_OPEN))
			next = ES;
		break;
	default:
		break;
	}

	f->last_index = cls;
	f->last_dir = dir;
	f->tcp_state = next;
	if (old != next && next == FW)
		f->win[dir].flags |= WIN_CLOSE_INIT;

	timeout = ct_timeout(ct, cls == SEG_RST ? XLB_TO_TCP_CLOSE : tcp_state_timeout[next]);

	status = flow_status(f);
	if (!(status & XLB_FLOW_SEEN_REPLY)) {
		/* A RST before any reply: the server refused or the client
		 * gave up. Nothing to keep. */
		if (cls == SEG_RST) {
			*kill = true;
			return accepted;
		}
		/* A retransmitted SYN does not extend the entry, or a client
		 * reusing its port would keep it alive forever. */
		if (cls == SEG_SYN && old == SS)
			return accepted;
		/* Picked up mid-connection and never answered: no five days. */
		if (next == ES && timeout > ct_timeout(ct, XLB_TO_TCP_UNACK))
			timeout = ct_timeout(ct, XLB_TO_TCP_UNACK);
	} else if (!(status & XLB_FLOW_ASSURED) && (old == SR || old == ES) && next == ES) {
		/* The handshake's last ACK, or the answer to a picked-up
		 * connection: both sides are real. */
		flow_set_status(f, XLB_FLOW_ASSURED);
	}
	flow_set_expires(f, now + timeout);
	return accepted;
}

static void udp_track(struct xlb_ct *ct, struct xlb_flow *f, uint64_t now)
{
	uint32_t status = flow_status(f);
	uint64_t timeout = ct_timeout(ct, XLB_TO_UDP);

	/* Replies seen and still talking two seconds after the first packet:
	 * a stream, not a one-shot query. It gets the long timeout and is
	 * kept when the table is full. */
	if ((status & XLB_FLOW_SEEN_REPLY) && now > f->created + 2 * NSEC_PER_SEC) {
		timeout = ct_timeout(ct, XLB_TO_UDP_STREAM);
		flow_set_status(f, XLB_FLOW_ASSURED);
	}
	flow_set_expires(f, now + timeout);
}

enum xlb_ctinfo xlb_ct_track(struct xlb_ct *ct, struct xlb_flow *f, enum xlb_dir dir,
			     const struct xlb_pkt *p, uint64_t now)
{
	enum xlb_ctinfo accepted, ret;
	bool reopen = false, kill = false;

	/* As the kernel's lookup decides it: a packet of the original
	 * direction is NEW until the other side has answered. */
	if (dir == XLB_DIR_REPLY || (flow_status(f) & XLB_FLOW_SEEN_REPLY))
		accepted = XLB_CTINFO_ESTABLISHED;
	else
		accepted = XLB_CTINFO_NEW;

	switch (f->l4proto) {
	case IPPROTO_TCP:
		if (!tcp_flags_valid(p->tcp_flags))
			return XLB_CTINFO_INVALID;
		flow_lock(f);
		ret = tcp_track(ct, f, dir, p, now, accepted, &reopen, &kill);
		flow_unlock(f);
		if (reopen || kill) {
			xlb_ct_delete(ct, f);
			return ret;
		}
		if (ret == XLB_CTINFO_INVALID)
			return ret;
		break;
	case IPPROTO_UDP:
		udp_track(ct, f, now);
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		flow_set_expires(f, now + ct_timeout(ct, XLB_TO_ICMP));
		break;
	default:
		flow_set_expires(f, now + ct_timeout(ct, XLB_TO_GENERIC));
		break;
	}

	/* After the protocol's own decision, which looks at whether a reply
	 * had been seen before this packet (the kernel's order). */
	if (dir == XLB_DIR_REPLY)
		flow_set_status(f, XLB_FLOW_SEEN_REPLY);
	return accepted;
}

const char *xlb_tcp_state_name(enum xlb_tcp_state s)
{
	static const char *const names[XLB_TCP_MAX] = {
		[NO] = "NONE",
		[SS] = "SYN_SENT",
		[SR] = "SYN_RECV",
		[ES] = "ESTABLISHED",
		[FW] = "FIN_WAIT",
		[CW] = "CLOSE_WAIT",
		[LA] = "LAST_ACK",
		[TW] = "TIME_WAIT",
		[CL] = "CLOSE",
		[S2] = "SYN_SENT2",
	};

	if ((unsigned)s >= XLB_TCP_MAX)
		return "UNKNOWN";
	return names[s];
}
