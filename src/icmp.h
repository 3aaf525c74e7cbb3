/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ICMP and ICMPv6 errors about tracked flows (conntrack's RELATED), and the
 * answers a load balancer gives in place of a backend: port unreachable and
 * TCP RST.
 *
 * An error quotes the packet that caused it. The quote names the flow; the
 * error travels the opposite way of the quoted packet, and is translated as
 * the kernel's NAT translates a RELATED error: the quote is put back to what
 * its sender saw, the outer header gets the flow's NAT for the direction
 * the error travels.
 */
#ifndef XLB_ICMP_H
#define XLB_ICMP_H

#include <stdbool.h>
#include <stdint.h>

#include "flow.h"
#include "packet.h"

enum xlb_icmp_verdict {
	XLB_ICMP_RELATED,     /* about a known flow, translated in place: send it */
	XLB_ICMP_NO_FLOW,     /* an error about no connection we track, or whose
	                       * outer destination is not the quoted packet's
	                       * source: conntrack's INVALID, drop it */
	XLB_ICMP_MALFORMED,   /* bad ICMP checksum, or a quote too short or
	                       * inconsistent to name a flow: drop it */
	XLB_ICMP_NOT_ERROR,   /* not an error message we translate (echo, NDP,
	                       * redirect, source quench, ...): not for this path */
};

/*
 * Whether p (parsed by xlb_pkt_parse) is an error message this module
 * translates: ICMPv4 destination unreachable (fragmentation needed
 * included), time exceeded, parameter problem; any ICMPv6 error type
 * (below 128: destination unreachable, packet too big, time exceeded,
 * parameter problem, and the unassigned ones, as the kernel).
 */
bool xlb_icmp_is_error(const struct xlb_pkt *p);

/*
 * Find the flow the ICMP error p is about and translate the error in
 * place, as the kernel's nf_conntrack_inet_error() and
 * nf_nat_icmp_reply_translation() / nf_nat_icmpv6_reply_translation() do.
 *
 * p must have parsed XLB_PARSE_OK. The quote must hold the quoted IP
 * header and at least 8 bytes of its L4 header, and may end there. The
 * error must be addressed to the quoted packet's source.
 *
 * On XLB_ICMP_RELATED: *flow is the flow and *dir the direction the error
 * travels (the opposite of the quoted packet's); the frame is rewritten
 * (quoted addresses and ports back to what the quoted packet's sender
 * saw, with the quoted IPv4 header checksum and, when fully quoted, the
 * quoted TCP/UDP/ICMPv6 checksum updated; outer source and/or destination
 * as the flow's NAT for *dir dictates; ICMP checksum recomputed over the
 * whole message, ICMPv6 including the pseudo-header; outer IPv4 header
 * checksum updated) and p->tuple.src/dst are the new outer addresses, so
 * p->tuple.dst is where it goes. MACs are the caller's.
 * The flow's state and timeout are not touched (a RELATED packet does not
 * refresh its connection). Any other verdict leaves the frame as it was
 * and *flow NULL.
 *
 * RCU read side (the flow is valid until the caller's next quiescent
 * state). Never reads outside p->data[0..p->len).
 */
enum xlb_icmp_verdict xlb_icmp_related(struct xlb_ct *ct, struct xlb_pkt *p, uint64_t now,
				       struct xlb_flow **flow, enum xlb_dir *dir);

const char *xlb_icmp_verdict_str(enum xlb_icmp_verdict v);

/*
 * Turn the received packet p (a client's, to a VIP; parsed XLB_PARSE_OK)
 * into an ICMP port unreachable (ICMPv6 destination unreachable, code 4)
 * from the VIP back to the client, in the same frame buffer. The error
 * quotes the original IP datagram from its IP header on, as much as fits
 * in a 576-byte IPv4 / 1280-byte IPv6 datagram and in max_len (the frame's
 * room). The Ethernet header (and any VLAN tag) is left as it was: MACs
 * are the caller's. Sets *len to the new frame length.
 *
 * Returns 0; -EINVAL when no error may be sent, as the kernel's
 * icmp_send()/icmp6_send() would refuse (p is itself an ICMP error, its
 * source is unspecified, multicast, broadcast or loopback, its destination
 * is multicast or broadcast); -ENOSPC when max_len cannot hold the IP
 * header and 8 bytes of L4 of the original. The frame is only modified
 * on success.
 */
int xlb_icmp_make_unreach(uint8_t *frame, uint32_t *len, uint32_t max_len,
			  const struct xlb_pkt *p);

/*
 * Turn the TCP segment p (a client's, to a VIP; parsed XLB_PARSE_OK) into
 * the RST the kernel answers it with (tcp_v4_send_reset, nf_reject): from
 * the VIP to the client, no options, window 0; if the segment had ACK,
 * seq = its ack_seq and flags RST; otherwise seq 0, ack = its seq + SYN +
 * FIN + payload length and flags RST|ACK. IP header as the kernel's
 * REJECT builds it: no options, DF, ID 0, TTL/hop limit 64, TOS 0.
 * The frame never grows. Sets *len.
 *
 * Returns 0, or -EINVAL when the kernel would not answer: not TCP, a RST,
 * a bad TCP checksum, or addresses as for xlb_icmp_make_unreach(). The
 * frame is only modified on success.
 */
int xlb_tcp_make_rst(uint8_t *frame, uint32_t *len, const struct xlb_pkt *p);

#endif
