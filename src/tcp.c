/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Per-packet state tracking of existing flows: the TCP tracker of
 * nf_conntrack_proto_tcp.c (state table, window tracking, timeouts), UDP's
 * replied/stream timeouts and ASSURED, ICMP echo and everything else with
 * one timeout each.
 *
 * TCP follows the kernel's rules, so a connection that passes Linux's
 * conntrack passes here and one that Linux marks INVALID is dropped here:
 *  - the state table (tcp_next below) with the kernel's special cases:
 *    resynchronising on the SYN/ACK that answers an ignored SYN, the RFC
 *    5961 challenge ACK in LAST_ACK, simultaneous open, RSTs that must hit
 *    the sequence the peer expects;
 *  - window tracking (tcp_in_window): per direction the highest sequence
 *    sent (td_end), the right edge the peer allows (td_maxend), the largest
 *    window (td_maxwin) and the highest ACK (td_maxack), with window
 *    scaling and SACK negotiated on the SYNs. Data beyond the peer's window
 *    or ACKs for data never sent are INVALID; retransmissions of
 *    acknowledged data and very old ACKs are let through without touching
 *    the state (the kernel's "ignore");
 *  - tcp_be_liberal: out-of-window segments are accepted as in window. A
 *    connection picked up mid-stream (tcp_loose) is always tracked
 *    liberally, since its window scale was never seen;
 *  - the timeout of the new state, shortened to tcp_timeout_max_retrans
 *    after TCP_MAX_RETRANS identical retransmissions or while the last ACK
 *    advertised a zero window, and to tcp_timeout_unacknowledged while data
 *    is outstanding; CLOSE's timeout after a RST.
 *
 * Deliberate differences from the kernel:
 *  - A SYN on a connection in TIME_WAIT or CLOSE always starts a new flow
 *    (the kernel does so only after a FIN, or a RST from the same side, and
 *    otherwise ignores the SYN and waits for the SYN/ACK): a load balancer
 *    wants a fresh backend choice for every new connection.
 *  - No sequence adjustment (we never change payload lengths), no SYN
 *    proxy, no checksum verification (the parser's contract), and no
 *    tcp_ignore_invalid_rst switch (it is off, the kernel's default).
 *  - The retransmission counter saturates instead of wrapping at 256.
 *  - On a resync, the restarted side gets only the ignored SYN's window
 *    scale and SACK flags; the kernel copies its whole last_flags byte,
 *    whose other bits are bookkeeping, not that side's options.
 */
#include <arpa/inet.h>
#include <string.h>

#include "flow_internal.h"

/* The kernel's nf_conntrack_tcp_max_retrans default; not configurable. */
#define TCP_MAX_RETRANS 3
/* The largest window scale RFC 7323 allows. */
#define TCP_MAX_WSCALE 14
/* However small the sender's window, ACKs this far below the receiver's
 * highest sequence are still plausible (delayed, reordered). */
#define MAX_ACK_WINDOW_MIN 66000u

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

/* f->win[dir].flags; the values are the kernel's IP_CT_TCP_FLAG_*, so a
 * dump reads the same. */
#define WIN_WINDOW_SCALE 0x01         /* this side offered window scaling */
#define WIN_SACK_PERM    0x02         /* this side accepts SACK */
#define WIN_CLOSE_INIT   0x04         /* this side sent the first FIN */
#define WIN_BE_LIBERAL   0x08         /* never mark its segments out of window */
#define WIN_DATA_UNACK   0x10         /* it sent data the peer has not ACKed */
#define WIN_MAXACK_SET   0x20         /* td_maxack holds an ACK it sent */

/* f->last_flags: WIN_WINDOW_SCALE and WIN_SACK_PERM of an ignored SYN
 * (kept for a resync), and: */
#define LAST_CHALLENGE_ACK     0x40   /* a SYN was let through in LAST_ACK */
#define LAST_SIMULTANEOUS_OPEN 0x80   /* a SYN came from each side */

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
/* Sequence arithmetic modulo 2^32 (RFC 1982). */
static inline bool seq_before(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) < 0;
}

static inline bool seq_after(uint32_t a, uint32_t b)
{
	return seq_before(b, a);
}

/* What the tracker reads from a segment. */
struct tcp_seg {
	uint32_t seq, ack;
	uint32_t end;                /* seq + payload + SYN + FIN */
	uint16_t win;                /* as sent, unscaled */
	uint8_t flags;
	enum seg_class cls;
	const uint8_t *opt;          /* options, opt_len bytes */
	uint32_t opt_len;
};

static inline uint32_t rd32(const uint8_t *b)
{
	uint32_t v;

	memcpy(&v, b, 4);
	return ntohl(v);
}

/*
 * Read the TCP header at p->l4_off, all but what depends on the flags.
 * Returns the header length, or 0 when it is not all there or contradicts
 * itself (data offset under 5 words or past the datagram): the kernel's
 * "truncated packet", INVALID, whatever the state.
 */
static inline uint32_t hdr_len_of(const struct xlb_pkt *p)
{
	uint32_t hdr_len;

	if (!p->data || p->l4_len < 20 || (uint32_t)p->l4_off + p->l4_len > p->len)
		return 0;
	hdr_len = (uint32_t)(p->data[p->l4_off + 12] >> 4) * 4;
	if (hdr_len < 20 || hdr_len > p->l4_len)
		return 0;
	return hdr_len;
}

static inline uint32_t read_hdr(const struct xlb_pkt *p, struct tcp_seg *s)
{
	uint32_t hdr_len = hdr_len_of(p);
	const uint8_t *th;
	uint16_t w;

	if (!hdr_len)
		return 0;
	th = p->data + p->l4_off;
	s->seq = rd32(th + 4);
	s->ack = rd32(th + 8);
	memcpy(&w, th + 14, 2);
	s->win = ntohs(w);
	s->flags = p->tcp_flags;
	s->opt = th + 20;
	s->opt_len = hdr_len - 20;
	return hdr_len;
}

/* The whole segment as the tracker sees it; false as read_hdr. */
static bool read_seg(const struct xlb_pkt *p, struct tcp_seg *s)
{
	uint32_t hdr_len = read_hdr(p, s);

	if (!hdr_len)
		return false;
	s->cls = seg_class(s->flags);
	s->end = s->seq + (p->l4_len - hdr_len) + !!(s->flags & XLB_TCP_SYN) +
		 !!(s->flags & XLB_TCP_FIN);
	return true;
}

/* TCP option kinds and lengths (RFC 9293, 7323, 2018). */
#define OPT_EOL       0
#define OPT_NOP       1
#define OPT_WSCALE    3
#define OPT_SACK_PERM 4
#define OPT_SACK      5
#define OPT_TIMESTAMP 8

/*
 * Walk the options, calling fn for every well-formed one; stops at the end
 * of the list or at the first malformed length, as a TCP would. fn returns
 * false to stop early.
 */
typedef bool (*opt_fn)(uint8_t kind, const uint8_t *val, uint32_t len, void *arg);

static void walk_options(const struct tcp_seg *s, opt_fn fn, void *arg)
{
	const uint8_t *o = s->opt;
	uint32_t left = s->opt_len;

	while (left > 0) {
		uint8_t kind = o[0], len;

		if (kind == OPT_EOL)
			return;
		if (kind == OPT_NOP) {
			o++;
			left--;
			continue;
		}
		if (left < 2)
			return;
		len = o[1];
		if (len < 2 || len > left)
			return;
		if (!fn(kind, o + 2, len - 2u, arg))
			return;
		o += len;
		left -= len;
	}
}

struct syn_opts {
	uint8_t flags;               /* WIN_WINDOW_SCALE, WIN_SACK_PERM */
	uint8_t scale;
};

static bool syn_opt(uint8_t kind, const uint8_t *val, uint32_t len, void *arg)
{
	struct syn_opts *so = arg;

	if (kind == OPT_SACK_PERM && len == 0) {
		so->flags |= WIN_SACK_PERM;
	} else if (kind == OPT_WSCALE && len == 1) {
		so->scale = val[0] > TCP_MAX_WSCALE ? TCP_MAX_WSCALE : val[0];
		so->flags |= WIN_WINDOW_SCALE;
	}
	return true;
}

/* The window scale and SACK permission a SYN or SYN/ACK offers. */
static struct syn_opts read_syn_opts(const struct tcp_seg *s)
{
	struct syn_opts so = { 0, 0 };

	walk_options(s, syn_opt, &so);
	return so;
}

/* A sender's options replace what it offered before; the liberal bit is
 * ours, not the packet's, and stays. */
static void apply_syn_opts(struct xlb_tcp_window *w, const struct tcp_seg *s)
{
	struct syn_opts so;

	if (s->opt_len == 0)
		return;
	so = read_syn_opts(s);
	w->td_scale = so.scale;
	w->flags = (uint8_t)((w->flags & WIN_BE_LIBERAL) | so.flags);
}

static bool sack_opt(uint8_t kind, const uint8_t *val, uint32_t len, void *arg)
{
	uint32_t *sack = arg, i;

	if (kind != OPT_SACK || len < 8 || len % 8)
		return true;
	/* Each block is left edge, right edge; the right edges count. */
	for (i = 0; i < len; i += 8) {
		uint32_t right = rd32(val + i + 4);

		if (seq_after(right, *sack))
			*sack = right;
	}
	return false;                /* one SACK option per segment */
}

/* The highest right edge of the segment's SACK blocks, or ack. */
static uint32_t highest_sack(const struct tcp_seg *s, uint32_t ack)
{
	static const uint8_t ts_only[4] = { OPT_NOP, OPT_NOP, OPT_TIMESTAMP, 10 };
	uint32_t sack = ack;

	/* Most segments carry just an aligned timestamp: no walk for them. */
	if (s->opt_len == 12 && memcmp(s->opt, ts_only, 4) == 0)
		return sack;
	walk_options(s, sack_opt, &sack);
	return sack;
}

/* A SYN or SYN/ACK: what its sender will send and accept starts here. */
static void init_sender(struct xlb_tcp_window *sender, struct xlb_tcp_window *receiver,
			const struct tcp_seg *s, enum xlb_dir dir)
{
	sender->td_end = s->end;
	sender->td_maxend = s->end;
	sender->td_maxwin = s->win ? s->win : 1;
	apply_syn_opts(sender, s);
	/* RFC 7323: scaling is on only when both SYNs asked for it. The
	 * answer decides, for both directions. */
	if (dir == XLB_DIR_REPLY &&
	    !((sender->flags & WIN_WINDOW_SCALE) && (receiver->flags & WIN_WINDOW_SCALE))) {
		sender->td_scale = 0;
		receiver->td_scale = 0;
	}
}

/* Forget a side's window (a resync starts it over); liberal stays. */
static void window_reset(struct xlb_tcp_window *w)
{
	w->td_end = 0;
	w->td_maxend = 0;
	w->td_maxwin = 0;
	w->td_maxack = 0;
	w->td_scale = 0;
	w->flags &= WIN_BE_LIBERAL;
}

enum win_verdict {
	WIN_IGNORE,                  /* let it pass, change nothing */
	WIN_INVALID,                 /* drop it */
	WIN_ACCEPT,                  /* in window: the state machine goes on */
};

/* An out-of-window verdict, unless the sender or the whole table is
 * liberal: then any segment counts as in window. */
static enum win_verdict out_of_window(const struct xlb_ct *ct, const struct xlb_tcp_window *sender,
				      enum win_verdict v)
{
	if ((sender->flags & WIN_BE_LIBERAL) || __atomic_load_n(&ct->tcp_be_liberal, __ATOMIC_RELAXED))
		return WIN_ACCEPT;
	return v;
}

static inline uint32_t max_ack_window(const struct xlb_tcp_window *sender)
{
	return sender->td_maxwin > MAX_ACK_WINDOW_MIN ? sender->td_maxwin : MAX_ACK_WINDOW_MIN;
}

/*
 * The bookkeeping of a segment tcp_in_window() accepted: both sides'
 * windows and the retransmission count. seq/ack/sack/end/win are the
 * segment's after tcp_in_window's adjustments, win still unscaled. Shared
 * with the fast path, which must leave exactly the same state behind.
 */
static __attribute__((always_inline)) inline void
window_accept(struct xlb_flow *f, enum xlb_dir dir, const struct tcp_seg *s, uint32_t seq,
	      uint32_t ack, uint32_t sack, uint32_t end, uint32_t win, bool syn, bool has_ack)
{
	struct xlb_tcp_window *sender = &f->win[dir], *receiver = &f->win[!dir];
	uint32_t swin;

	/* RFC 7323: the window field of a SYN is never scaled. */
	if (!syn)
		win <<= sender->td_scale;

	/* What the sender sent and acknowledged. */
	swin = win + (sack - ack);
	if (sender->td_maxwin < swin)
		sender->td_maxwin = swin;
	if (seq_after(end, sender->td_end)) {
		sender->td_end = end;
		sender->flags |= WIN_DATA_UNACK;
	}
	if (has_ack) {
		if (!(sender->flags & WIN_MAXACK_SET)) {
			sender->td_maxack = ack;
			sender->flags |= WIN_MAXACK_SET;
		} else if (seq_after(ack, sender->td_maxack)) {
			sender->td_maxack = ack;
		}
	}

	/* What the receiver may send now. */
	if (receiver->td_maxwin != 0 && seq_after(end, sender->td_maxend))
		receiver->td_maxwin += end - sender->td_maxend;
	if (seq_after(sack + win, receiver->td_maxend - 1)) {
		receiver->td_maxend = sack + win;
		if (win == 0)
			receiver->td_maxend++;   /* room for a zero-window probe */
	}
	if (ack == receiver->td_end)
		receiver->flags &= ~WIN_DATA_UNACK;

	/* The same pure ACK again, same direction, same window: a
	 * retransmission. Counted towards the max_retrans timeout. */
	if (s->cls == SEG_ACK) {
		if (f->last_dir == dir && f->last_seq == seq && f->last_ack == ack &&
		    f->last_end == end && f->last_win == s->win) {
			if (f->retrans < UINT8_MAX)
				f->retrans++;
		} else {
			f->last_dir = dir;
			f->last_seq = seq;
			f->last_ack = ack;
			f->last_end = end;
			f->last_win = s->win;
			f->retrans = 0;
		}
	}
}

/*
 * The kernel's tcp_in_window(): is the segment inside what the receiver can
 * accept, and does its (S)ACK acknowledge only what the receiver was sent?
 * Updates both sides' windows for an accepted segment, and the
 * retransmission count. The four bounds, for a segment [seq, end) with
 * highest (S)ACK sack:
 *   seq  <= sender.td_maxend                      (data right of window)
 *   end  >  sender.td_end - receiver.td_maxwin    (old retransmission)
 *   sack <= receiver.td_end                       (ACK of unseen data)
 *   sack >  receiver.td_end - max_ack_window      (very old ACK)
 */
static enum win_verdict tcp_in_window(const struct xlb_ct *ct, struct xlb_flow *f,
				      enum xlb_dir dir, const struct tcp_seg *s)
{
	struct xlb_tcp_window *sender = &f->win[dir], *receiver = &f->win[!dir];
	uint32_t seq = s->seq, ack = s->ack, sack, end = s->end, win = s->win, swin;
	bool has_ack = s->flags & XLB_TCP_ACK, syn = s->flags & XLB_TCP_SYN;

	sack = (receiver->flags & WIN_SACK_PERM) ? highest_sack(s, ack) : ack;

	if (sender->td_maxwin == 0) {
		if (syn) {
			/* The SYN/ACK, or the second SYN of a simultaneous
			 * open: this side's window starts here. */
			init_sender(sender, receiver, s, dir);
			if (!has_ack)
				return WIN_ACCEPT;
		} else {
			/* First segment we see from this side in the middle
			 * of a connection: believe it. */
			sender->td_end = end;
			swin = win << sender->td_scale;
			sender->td_maxwin = swin ? swin : 1;
			sender->td_maxend = end + sender->td_maxwin;
			if (receiver->td_maxwin == 0) {
				/* Nothing seen the other way either: make the
				 * ACK bounds hold until something is. */
				receiver->td_end = sack;
				receiver->td_maxend = sack;
			} else if (sack == receiver->td_end + 1) {
				/* Answer to a keepalive probe, which sits one
				 * below the peer's next sequence. */
				receiver->td_end++;
			}
		}
	} else if (syn && seq_after(end, sender->td_end) &&
		   (f->tcp_state == XLB_TCP_SYN_SENT || f->tcp_state == XLB_TCP_SYN_RECV)) {
		/* A new SYN (or SYN/ACK) with a higher sequence during the
		 * handshake: the endpoint restarted (RFC 9293 allows it to
		 * reuse the port at once); its options may differ too. */
		init_sender(sender, receiver, s, dir);
		if (dir == XLB_DIR_REPLY && !has_ack)
			return WIN_ACCEPT;
	}

	if (!has_ack) {
		/* No ACK to check: take it as acknowledging everything. */
		ack = sack = receiver->td_end;
	} else if ((s->flags & XLB_TCP_RST) && ack == 0) {
		/* Stacks that send RST|ACK with a zero ACK field. */
		ack = sack = receiver->td_end;
	}

	/* A RST answering a SYN may carry sequence 0: put it where the
	 * sender is. */
	if ((s->flags & XLB_TCP_RST) && seq == 0 && f->tcp_state == XLB_TCP_SYN_SENT)
		seq = end = sender->td_end;

	if (seq_after(seq, sender->td_maxend)) {
		uint32_t overshot = end - sender->td_maxend + 1;

		/* A little more than the receiver's window, but otherwise
		 * sane: some stacks do that. Let it pass without state change,
		 * and move td_end so the ACK for it is not out of bounds. */
		if (receiver->td_maxwin && seq_after(end, sender->td_end - receiver->td_maxwin - 1) &&
		    seq_after(sack, receiver->td_end - max_ack_window(sender) - 1) &&
		    overshot <= receiver->td_maxwin && !seq_after(sack, receiver->td_end)) {
			sender->td_end = end;
			sender->flags |= WIN_DATA_UNACK;
			return out_of_window(ct, sender, WIN_IGNORE);
		}
		return out_of_window(ct, sender, WIN_INVALID);
	}
	if (seq_after(sack, receiver->td_end))
		return out_of_window(ct, sender, WIN_INVALID);
	if (receiver->td_maxwin && !seq_after(end, sender->td_end - receiver->td_maxwin - 1))
		return out_of_window(ct, sender, WIN_IGNORE);
	if (!seq_after(sack, receiver->td_end - max_ack_window(sender) - 1))
		return out_of_window(ct, sender, WIN_IGNORE);

	window_accept(f, dir, s, seq, ack, sack, end, win, syn, has_ack);
	return WIN_ACCEPT;
}

/*
 * An assured connection got a FIN or RST we found out of window, right
 * after one the other way: the endpoints are closing a connection we are
 * out of step with. Do not let it sit in ESTABLISHED for days: shorten the
 * timeout to tcp_timeout_unacknowledged, as for data never acknowledged.
 */
static void handle_invalid(const struct xlb_ct *ct, struct xlb_flow *f, enum xlb_dir dir,
			   enum seg_class cls, uint64_t now)
{
	uint64_t left, expires, unack;

	if (!(flow_status(f) & XLB_FLOW_ASSURED) || (cls != SEG_RST && cls != SEG_FIN))
		return;
	if (f->last_dir != dir && (f->last_index == SEG_FIN || f->last_index == SEG_RST)) {
		expires = __atomic_load_n(&f->expires, __ATOMIC_RELAXED);
		left = expires > now ? expires - now : 0;
		/* The kernel leaves anything under two minutes alone. */
		if (left < 120 * NSEC_PER_SEC)
			return;
		unack = ct_timeout(ct, XLB_TO_TCP_UNACK);
		if (left > unack)
			flow_set_expires(f, now + unack);
	} else {
		f->last_index = cls;
		f->last_dir = dir;
	}
}

/* Start tracking on the first packet of the original direction (the
 * kernel's tcp_new()). False when it cannot start a connection. */
static bool tcp_new(const struct xlb_ct *ct, struct xlb_flow *f, const struct tcp_seg *s)
{
	struct xlb_tcp_window *w = &f->win[XLB_DIR_ORIG];
	uint8_t next = tcp_next[XLB_DIR_ORIG][NO][s->cls];

	if (next != SS && !(next == ES && __atomic_load_n(&ct->tcp_loose, __ATOMIC_RELAXED)))
		return false;
	memset(f->win, 0, sizeof(f->win));
	f->last_seq = f->last_ack = f->last_end = 0;
	f->last_win = 0;
	f->last_flags = f->last_wscale = 0;
	f->retrans = 0;
	f->last_dir = XLB_DIR_ORIG;
	f->last_index = SEG_NONE;

	w->td_end = s->end;
	w->td_maxwin = s->win ? s->win : 1;
	if (next == SS) {
		w->td_maxend = s->end;
		apply_syn_opts(w, s);
	} else {
		/* Picked up in the middle: the window scale was on SYNs we
		 * never saw, so any window may be scaled. Assume SACK and
		 * be liberal both ways, as the kernel does. */
		w->td_maxend = s->end + w->td_maxwin;
		f->win[XLB_DIR_ORIG].flags = WIN_SACK_PERM | WIN_BE_LIBERAL;
		f->win[XLB_DIR_REPLY].flags = WIN_SACK_PERM | WIN_BE_LIBERAL;
	}
	return true;
}

static inline bool tcp_established(const struct xlb_flow *f)
{
	return f->tcp_state == ES && (flow_status(f) & XLB_FLOW_ASSURED);
}

static inline bool can_early_drop(uint8_t state)
{
	return state == FW || state == LA || state == TW || state == CL || state == CW;
}

/*
 * Which timeout a segment leaves the connection with (the kernel's order):
 * too many retransmissions, a RST, unacknowledged data, a zero window,
 * otherwise the state's own. Each refinement only ever shortens.
 */
static uint64_t tcp_timeout(const struct xlb_ct *ct, const struct xlb_flow *f, uint8_t state,
			    enum seg_class cls)
{
	uint64_t t = ct_timeout(ct, tcp_state_timeout[state]);
	uint64_t retrans = ct_timeout(ct, XLB_TO_TCP_MAX_RETRANS);
	uint64_t unack = ct_timeout(ct, XLB_TO_TCP_UNACK);

	if (f->retrans >= TCP_MAX_RETRANS && t > retrans)
		return retrans;
	if (cls == SEG_RST)
		return ct_timeout(ct, XLB_TO_TCP_CLOSE);
	if (((f->win[0].flags | f->win[1].flags) & WIN_DATA_UNACK) && t > unack)
		return unack;
	if (f->last_win == 0 && t > retrans)
		return retrans;
	return t;
}

/* The flags of the segments the fast path takes: an ACK, with or without
 * PSH, ECE, CWR (which change nothing here). */
#define FAST_IGNORED_FLAGS (XLB_TCP_PSH | XLB_TCP_ECE | XLB_TCP_CWR)

/*
 * The segment nearly every packet is: an in-window ACK, with or without
 * data, on an ESTABLISHED and ASSURED connection (the lookup found it, so
 * SEEN_REPLY is set too). Under the flow's lock. It leaves the flow exactly
 * as tcp_track() would: for such a segment the table says ES -> ES in
 * both directions, tcp_in_window() takes none of its SYN, RST or
 * first-segment branches and accepts, and neither status bit changes; what
 * is left is window_accept(), the ACK's last_* bookkeeping and the
 * timeout, which are the same code. It skips the flag table, the class,
 * the state switch and the branches that cannot apply.
 *
 * Returns false, having changed nothing, for any segment outside that
 * case, including one that only fails a window bound: the full path then
 * decides (IGNORE, INVALID, liberal), from the same flow state.
 */
static bool tcp_track_fast(struct xlb_ct *ct, struct xlb_flow *f, enum xlb_dir dir,
			   const struct tcp_seg *s, uint64_t now)
{
	struct xlb_tcp_window *sender = &f->win[dir], *receiver = &f->win[!dir];
	uint32_t seq = s->seq, ack = s->ack, end = s->end, sack;
	const uint32_t both = XLB_FLOW_SEEN_REPLY | XLB_FLOW_ASSURED;

	if (f->tcp_state != ES || (flow_status(f) & both) != both)
		return false;
	/* Both sides seen: no first-segment initialisation, and the
	 * receiver's window bounds apply (tcp_in_window tests for 0). */
	if (sender->td_maxwin == 0 || receiver->td_maxwin == 0)
		return false;
	/* Without options, highest_sack() would only return ack. */
	sack = (receiver->flags & WIN_SACK_PERM) && s->opt_len ? highest_sack(s, ack) : ack;

	/* tcp_in_window()'s four bounds, all in window. */
	if (seq_after(seq, sender->td_maxend) || seq_after(sack, receiver->td_end) ||
	    !seq_after(end, sender->td_end - receiver->td_maxwin - 1) ||
	    !seq_after(sack, receiver->td_end - max_ack_window(sender) - 1))
		return false;

	window_accept(f, dir, s, seq, ack, sack, end, s->win, false, true);
	/* tcp_track()'s tail for ES -> ES on an ACK: the state is stored
	 * unchanged (skipped), no FIN_WAIT, SEEN_REPLY and ASSURED already
	 * set, so only the timeout moves. */
	f->last_index = SEG_ACK;
	f->last_dir = dir;
	flow_set_expires(f, now + tcp_timeout(ct, f, ES, SEG_ACK));
	return true;
}

/*
 * The TCP part of xlb_ct_track(), under the flow's lock. `accepted` is the
 * ctinfo of a packet that passes. Returns the packet's ctinfo; *reopen is
 * set when the connection must be replaced by a fresh one, *kill when it
 * is to be deleted after the packet passes.
 */
static enum xlb_ctinfo tcp_track(struct xlb_ct *ct, struct xlb_flow *f, enum xlb_dir dir,
				 const struct tcp_seg *s, uint64_t now, enum xlb_ctinfo accepted,
				 bool *reopen, bool *kill)
{
	enum seg_class cls = s->cls;
	bool check_window = true;
	uint8_t old, next;
	uint32_t status;
	uint64_t timeout;

	old = f->tcp_state;
	if (old >= XLB_TCP_MAX)
		return XLB_CTINFO_INVALID;
	if (old == NO && (dir != XLB_DIR_ORIG || !tcp_new(ct, f, s)))
		return XLB_CTINFO_INVALID;
	next = tcp_next[dir][old][cls];

	switch (next) {
	case SS:
		if (old < TW)
			break;
		/* A new connection on the tuple of a closed one: see the
		 * deliberate differences at the top. */
		*reopen = true;
		return XLB_CTINFO_NEW;
	case IG:
		if (cls == SEG_SYNACK && f->last_index == SEG_SYN && f->last_dir != dir &&
		    s->ack == f->last_end) {
			/* This SYN/ACK answers the SYN we ignored a moment
			 * ago: the endpoints started over and agree. Follow
			 * them into the new handshake, with the ignored SYN
			 * as its first segment. */
			struct xlb_tcp_window *syn_side = &f->win[f->last_dir];

			old = SS;
			next = SR;
			syn_side->td_end = f->last_end;
			syn_side->td_maxend = f->last_end;
			syn_side->td_maxwin = f->last_win ? f->last_win : 1;
			syn_side->td_scale = f->last_wscale;
			f->last_flags &= ~LAST_CHALLENGE_ACK;
			syn_side->flags = f->last_flags & (WIN_WINDOW_SCALE | WIN_SACK_PERM);
			window_reset(&f->win[dir]);
			break;
		}
		/* Remember the segment: its answer may resynchronise us. */
		f->last_index = cls;
		f->last_dir = dir;
		f->last_seq = s->seq;
		f->last_end = s->end;
		f->last_win = s->win;
		if (cls == SEG_SYN && dir == XLB_DIR_ORIG) {
			struct syn_opts so = read_syn_opts(s);

			f->last_flags = so.flags;
			f->last_wscale = (so.flags & WIN_WINDOW_SCALE) ? so.scale : 0;
			/* In LAST_ACK, the peer may answer this SYN with an
			 * RFC 5961 challenge ACK, which must not be taken for
			 * the last ACK of the old connection. */
			if (old == LA)
				f->last_flags |= LAST_CHALLENGE_ACK;
		}
		/* An ACK answering our client's SYN: maybe a challenge ACK,
		 * whose RST we will want to recognise. */
		if (old == SS && cls == SEG_ACK && dir == XLB_DIR_REPLY)
			f->last_ack = s->ack;
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
	case CL:
		if (cls != SEG_RST)
			break;
		/* Closing already: the tuple may be in use by a new
		 * connection our windows know nothing of. */
		if (can_early_drop(old)) {
			check_window = false;
			break;
		}
		/* A RST must carry the sequence its receiver expects (RFC
		 * 5961): the highest ACK that side sent. Unless we let a SYN
		 * through, which makes td_maxack stale. */
		if ((f->win[!dir].flags & WIN_MAXACK_SET) && f->last_index != SEG_SYN) {
			uint32_t maxack = f->win[!dir].td_maxack;

			/* Sequence 0 before the connection is established:
			 * the answer to a SYN we let through. */
			if (s->seq == 0 && !tcp_established(f))
				break;
			if (seq_before(s->seq, maxack))
				return XLB_CTINFO_INVALID;
			if (!tcp_established(f) || s->seq == maxack)
				break;
			/* The end of a train: data, then a RST right after. */
			if (f->last_index == SEG_ACK && f->last_dir == dir && s->seq == f->last_end)
				break;
			/* In window but not exact: the peer will answer with a
			 * challenge ACK, so keep the state (the RST's short
			 * timeout applies all the same). */
			next = old;
		}
		status = flow_status(f);
		if ((((status & XLB_FLOW_SEEN_REPLY) && f->last_index == SEG_SYN) ||
		     (!(status & XLB_FLOW_ASSURED) && f->last_index == SEG_ACK)) &&
		    s->ack == f->last_end) {
			/* The RST answers a SYN or ACK we let through without
			 * tracking it: our windows do not cover it. */
			check_window = false;
			break;
		}
		/* The RST answering a challenge ACK to a SYN. */
		if (old == SS && f->last_index == SEG_ACK && f->last_dir == XLB_DIR_REPLY &&
		    s->seq == f->last_ack)
			check_window = false;
		break;
	default:
		break;
	}

	if (check_window) {
		switch (tcp_in_window(ct, f, dir, s)) {
		case WIN_IGNORE:
			return accepted;
		case WIN_INVALID:
			handle_invalid(ct, f, dir, cls, now);
			return XLB_CTINFO_INVALID;
		case WIN_ACCEPT:
			break;
		}
	}

	f->last_index = cls;
	f->last_dir = dir;
	__atomic_store_n(&f->tcp_state, next, __ATOMIC_RELAXED);
	if (old != next && next == FW)
		f->win[dir].flags |= WIN_CLOSE_INIT;

	timeout = tcp_timeout(ct, f, next, cls);

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
		/* What the kernel's tcp_error() and tcp_new() accept: valid
		 * flags and a header that is all there. The tracker reads the
		 * rest once the flow exists. */
		if (!tcp_flags_valid(p->tcp_flags) || !hdr_len_of(p))
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
	struct tcp_seg seg;
	bool reopen = false, kill = false;

	/* As the kernel's lookup decides it: a packet of the original
	 * direction is NEW until the other side has answered. */
	if (dir == XLB_DIR_REPLY || (flow_status(f) & XLB_FLOW_SEEN_REPLY))
		accepted = XLB_CTINFO_ESTABLISHED;
	else
		accepted = XLB_CTINFO_NEW;

	switch (f->l4proto) {
	case IPPROTO_TCP:
		if ((p->tcp_flags & ~FAST_IGNORED_FLAGS) == XLB_TCP_ACK) {
			/* A valid flag combination; its class is SEG_ACK and
			 * it has neither SYN nor FIN to count in end. */
			uint32_t hdr_len = read_hdr(p, &seg);

			if (!hdr_len)
				return XLB_CTINFO_INVALID;
			seg.cls = SEG_ACK;
			seg.end = seg.seq + (p->l4_len - hdr_len);
			flow_lock(f);
			if (__builtin_expect(tcp_track_fast(ct, f, dir, &seg, now), 1)) {
				flow_unlock(f);
				/* SEEN_REPLY was set: ESTABLISHED, and
				 * nothing to mark for a reply. */
				return XLB_CTINFO_ESTABLISHED;
			}
		} else {
			if (!tcp_flags_valid(p->tcp_flags) || !read_seg(p, &seg))
				return XLB_CTINFO_INVALID;
			flow_lock(f);
		}
		ret = tcp_track(ct, f, dir, &seg, now, accepted, &reopen, &kill);
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
