/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * conntrack-tools' language for xlb's flow table: flows and events printed
 * exactly as `conntrack -L` / `conntrack -E` print the kernel's entries, and
 * conntrack's filter options parsed and matched against flows.
 *
 * Line format (conntrack-tools 1.4 with libnetfilter_conntrack, kernel 6.x):
 *
 *   tcp      6 431999 ESTABLISHED src=A dst=B sport=P dport=Q packets=N bytes=N
 *   src=C dst=D sport=R dport=S packets=N bytes=N [ASSURED] mark=0 use=1
 *
 * (one line). The protocol name is padded to 8 columns, then its number;
 * the timeout is whole seconds left; the state only for TCP; ICMP tuples
 * print `type= code= id=` instead of ports; `[UNREPLIED]` comes before the
 * reply tuple until a reply was seen; `zone=N` only for a nonzero zone.
 * Events (-E) differ as the kernel's netlink events do: no counters except
 * on [DESTROY], no timeout on a [DESTROY] of an expired flow, `mark=` only
 * when nonzero, never `use=`.
 *
 * Nothing here takes locks or allocates; all functions are safe from any
 * thread. Reading a live flow (xlb_ctfmt_flow, xlb_ctfilter_match,
 * xlb_ct_event_fill) must happen on the RCU read side, as for any flow
 * pointer; the fields workers change are read with relaxed atomics or, for
 * the counters, plainly (see xlb_flow_account).
 */
#ifndef XLB_CTFMT_H
#define XLB_CTFMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flow.h"
#include "xlb/tuple.h"

/*
 * Output flags, conntrack's `-o` list (combine with |):
 *   EXTENDED   the layer-3 prefix "ipv4     2 " / "ipv6     10 ";
 *   TIMESTAMP  -L: `delta-time=N [start=DATE]` (conntrack -o ktimestamp,
 *              with the kernel's nf_conntrack_timestamp on); -E: the line is
 *              prefixed with `[SECONDS.MICROSECONDS]\t`, the event's time;
 *   ID         `id=N` at the end of the line;
 *   JSON       one JSON object per line instead of the text form (xlb's own;
 *              conntrack has XML). Fields, in this order:
 *                event ("new"|"update"|"destroy", events only),
 *                timestamp (events only: seconds, 6 decimals),
 *                family ("ipv4"|"ipv6"), proto (name), protonum,
 *                timeout (seconds left), state (TCP only),
 *                orig and reply: {src, dst, sport, dport} for TCP/UDP or
 *                  {src, dst, type, code, id} for ICMP, and packets, bytes,
 *                assured, unreplied (booleans), mark, zone,
 *                use (-L only), id,
 *                backend ("ADDR:PORT" or "[ADDR6]:PORT", the reply source).
 */
enum xlb_ctfmt_mode {
	XLB_CTFMT_DEFAULT   = 0,
	XLB_CTFMT_EXTENDED  = 1u << 0,
	XLB_CTFMT_TIMESTAMP = 1u << 1,
	XLB_CTFMT_ID        = 1u << 2,
	XLB_CTFMT_JSON      = 1u << 3,
};

/*
 * Parse the argument of `-o` ("extended", "json,timestamp", ...; names
 * case-insensitive, comma-separated) and OR the flags into *mode. Returns 0,
 * or -EINVAL with a message for people in err.
 */
int xlb_ctfmt_parse_output(const char *arg, unsigned *mode, char *err, size_t errlen);

/*
 * Write flow f as one `conntrack -L` line ending in '\n' (or a JSON object
 * and '\n' with XLB_CTFMT_JSON) into buf. `now` is CLOCK_MONOTONIC ns (for
 * the timeout and delta-time), `mode` is XLB_CTFMT_* flags, `id` is what
 * `id=` and JSON's "id" print (conntrack's entry id; any stable number).
 * Returns what snprintf would: the length of the whole line, which when
 * >= len means buf holds a truncated, still NUL-terminated line.
 * XLB_CTFMT_LINE_MAX bytes always fit any line, text or JSON.
 */
#define XLB_CTFMT_LINE_MAX 1024
int xlb_ctfmt_flow(char *buf, size_t len, const struct xlb_flow *f, uint64_t now,
		   unsigned mode, uint32_t id);

/* Protocol and TCP state names as conntrack prints them ("tcp", "icmpv6",
 * "unknown"; "ESTABLISHED", ..., "SYN_SENT2"). */
const char *xlb_ctfmt_proto_name(uint8_t l4proto);
const char *xlb_ctfmt_state_name(uint8_t tcp_state);

/* ---- Events (-E) ---------------------------------------------------- */

enum xlb_ct_event {
	XLB_CT_EVENT_NEW,
	XLB_CT_EVENT_UPDATE,
	XLB_CT_EVENT_DESTROY,
};

/*
 * What an event prints, copied out of the flow when the event happens: the
 * flow may be freed before another thread formats the record. Plain data,
 * safe to memcpy into a ring.
 */
struct xlb_ct_event_rec {
	struct xlb_tuple tuple[2];            /* orig, reply */
	struct xlb_flow_counter counter[2];
	uint64_t timestamp;                   /* ns, CLOCK_REALTIME, when it happened */
	uint32_t timeout;                     /* seconds left then */
	uint32_t status;                      /* XLB_FLOW_* */
	uint32_t mark;
	uint32_t id;
	uint8_t type;                         /* enum xlb_ct_event */
	uint8_t tcp_state;                    /* enum xlb_tcp_state */
	uint8_t l4proto;
	uint8_t pad;
};

/*
 * Fill *ev from f for an event of `type` happening at `now` (CLOCK_MONOTONIC
 * ns, for the timeout) and `realtime` (CLOCK_REALTIME ns, the timestamp).
 */
void xlb_ct_event_fill(struct xlb_ct_event_rec *ev, enum xlb_ct_event type,
		       const struct xlb_flow *f, uint64_t now, uint64_t realtime, uint32_t id);

/*
 * Write one `conntrack -E` line for ev, ending in '\n':
 *     "    [NEW] tcp      6 120 SYN_SENT src=... [UNREPLIED] src=..."
 *     " [UPDATE] ..."  "[DESTROY] ..." (tags right-aligned in 9 columns)
 * XLB_CTFMT_TIMESTAMP prefixes "[1700000000.123456]\t". Returns as
 * xlb_ctfmt_flow.
 */
int xlb_ctfmt_event(char *buf, size_t len, const struct xlb_ct_event_rec *ev, unsigned mode);

/* ---- Filters ------------------------------------------------------- */

/* Which fields of struct xlb_ctfilter are set. */
enum {
	XLB_CTF_FAMILY      = 1u << 0,
	XLB_CTF_PROTO       = 1u << 1,
	XLB_CTF_ORIG_SRC    = 1u << 2,
	XLB_CTF_ORIG_DST    = 1u << 3,
	XLB_CTF_REPLY_SRC   = 1u << 4,
	XLB_CTF_REPLY_DST   = 1u << 5,
	XLB_CTF_ORIG_SPORT  = 1u << 6,
	XLB_CTF_ORIG_DPORT  = 1u << 7,
	XLB_CTF_REPLY_SPORT = 1u << 8,
	XLB_CTF_REPLY_DPORT = 1u << 9,
	XLB_CTF_STATE       = 1u << 10,
	XLB_CTF_MARK        = 1u << 11,
	XLB_CTF_ZONE        = 1u << 12,
	XLB_CTF_BACKEND     = 1u << 13,
	XLB_CTF_STATUS      = 1u << 14,
};

/* An address with a prefix length (all bits when none was given). */
struct xlb_ctfilter_addr {
	union xlb_addr addr;
	uint8_t family;
	uint8_t prefix;        /* 0..32 for IPv4, 0..128 for IPv6 */
};

/*
 * A conjunction of conditions on a flow, as conntrack's filter options.
 * Zero it (or use XLB_CTFILTER_INIT) before parsing: the empty filter
 * matches every flow. Ports in network byte order like the tuples.
 */
struct xlb_ctfilter {
	uint32_t set;                          /* XLB_CTF_* */
	uint8_t family;                        /* AF_INET or AF_INET6 */
	uint8_t l4proto;
	uint8_t tcp_state;
	struct xlb_ctfilter_addr orig_src, orig_dst, reply_src, reply_dst;
	uint16_t orig_sport, orig_dport, reply_sport, reply_dport;
	uint32_t mark, mark_mask;              /* (flow mark & mask) == mark */
	uint16_t zone;
	struct xlb_endpoint backend;           /* reply source; port 0: any */
	uint32_t status_set, status_clear;     /* XLB_FLOW_* bits required set / clear */
};

#define XLB_CTFILTER_INIT { .set = 0 }

/*
 * Parse conntrack's filter options from argv[*next] on, accumulating into
 * *flt, and stop at the first argument that is not a filter option (or at
 * argc), leaving *next at it; the caller handles that argument (the command,
 * -o, ...) and calls again to go on. Options:
 *   -p/--proto PROTO          name (tcp udp icmp icmpv6 ...) or number
 *   -f/--family ipv4|ipv6
 *   -s/--src/--orig-src ADDR[/PREFIX]   -d/--dst/--orig-dst
 *   -r/--reply-src   -q/--reply-dst
 *   --sport/--orig-port-src PORT        --dport/--orig-port-dst
 *   --reply-port-src  --reply-port-dst
 *   --state STATE             TCP state name, any case (implies TCP)
 *   -m/--mark MARK[/MASK]     -w/--zone ZONE
 *   --backend ADDR[:PORT]     ([ADDR6]:PORT) the flow's reply source
 *   -u/--status LIST          ASSURED, SEEN_REPLY, UNREPLIED, comma-separated
 * Long options also take `--opt=value`. Ports without -p match TCP and UDP
 * flows only. Returns 0, or -EINVAL with a message in err naming the option
 * and the value (a bad or missing value, an option given twice, conflicting
 * families, ports or a state for a protocol that has none).
 */
int xlb_ctfilter_parse(struct xlb_ctfilter *flt, int argc, char **argv, int *next,
		       char *err, size_t errlen);

/* Whether flow f satisfies every condition of flt. */
bool xlb_ctfilter_match(const struct xlb_ctfilter *flt, const struct xlb_flow *f);

/* The same test on an event record (for -E with filters). */
bool xlb_ctfilter_match_event(const struct xlb_ctfilter *flt, const struct xlb_ct_event_rec *ev);

#endif
