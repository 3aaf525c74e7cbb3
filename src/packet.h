/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Header parsing for the packet path: Ethernet (+ one 802.1Q or 802.1ad
 * tag), IPv4, IPv6, TCP, UDP, ICMP and ICMPv6. Bounds-checked against the
 * frame length; never reads past `len`.
 */
#ifndef XLB_PACKET_H
#define XLB_PACKET_H

#include <stdbool.h>
#include <stdint.h>

#include "xlb/tuple.h"

enum xlb_parse_result {
	XLB_PARSE_OK = 0,
	XLB_PARSE_NOT_IP,        /* ARP, LLDP, a second VLAN tag, ...: not for us */
	XLB_PARSE_TRUNCATED,     /* a header, or the IP datagram, runs past the frame */
	XLB_PARSE_BAD_HEADER,    /* IHL < 5, version != ethertype, bad lengths: a
	                          * header that runs past its IP datagram, TCP data
	                          * offset < 5, UDP length < 8 or past the datagram */
	XLB_PARSE_FRAGMENT,      /* IPv4/IPv6 fragment: no usable L4 header
	                          * (tuple addresses and proto are filled) */
	XLB_PARSE_UNSUPPORTED,   /* an L4 protocol we do not track, too many IPv6
	                          * extension headers, or a routing header with
	                          * segments left (tuple addresses and proto filled) */
	XLB_PARSE_MAX,
};

/* TCP flag bits as in the header's 13th byte. */
#define XLB_TCP_FIN 0x01
#define XLB_TCP_SYN 0x02
#define XLB_TCP_RST 0x04
#define XLB_TCP_PSH 0x08
#define XLB_TCP_ACK 0x10
#define XLB_TCP_URG 0x20
#define XLB_TCP_ECE 0x40
#define XLB_TCP_CWR 0x80

struct xlb_pkt {
	uint8_t *data;           /* start of the Ethernet header */
	uint32_t len;            /* frame length */
	uint16_t l3_off;         /* IP header */
	uint16_t l4_off;         /* TCP/UDP/ICMP header */
	uint16_t l3_len;         /* IP datagram length per its header (<= len - l3_off) */
	uint16_t l4_len;         /* bytes from l4_off to the end of the IP datagram */
	uint16_t payload_off;    /* first byte after the L4 header */
	uint16_t vlan_tci;       /* valid when has_vlan; host byte order */
	bool has_vlan;
	uint8_t tcp_flags;       /* TCP only */
	uint8_t icmp_type;       /* ICMP/ICMPv6 only */
	uint8_t icmp_code;
	/* As seen on the wire; zone 0. TCP/UDP: ports. ICMP and ICMPv6:
	 * dport = htons(type) and, for echo request/reply, sport = the
	 * identifier as it sits in the packet (0 for other types), the fields
	 * nf_conntrack_icmp keys on. The ICMP code is in icmp_code only. Note
	 * that xlb_tuple_invert() does not give an echo's reply tuple: the
	 * reply keeps the identifier in sport and has the reply type. */
	struct xlb_tuple tuple;
};

/*
 * Parse the frame at data[0..len). Fills *p and returns XLB_PARSE_OK, or
 * another enum xlb_parse_result saying why the frame is not usable; *p is
 * then only partly filled. Checksums are not verified (the NIC or kernel
 * did that on the sending host; we only update them incrementally).
 */
enum xlb_parse_result xlb_pkt_parse(struct xlb_pkt *p, uint8_t *data, uint32_t len);

const char *xlb_parse_result_str(enum xlb_parse_result r);

#endif
