/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Header parsing for the packet path: Ethernet (+ one 802.1Q tag), IPv4,
 * IPv6, TCP, UDP, ICMP and ICMPv6. Bounds-checked against the frame length;
 * never reads past `len`.
 */
#ifndef XLB_PACKET_H
#define XLB_PACKET_H

#include <stdbool.h>
#include <stdint.h>

#include "xlb/tuple.h"

enum xlb_parse_result {
	XLB_PARSE_OK = 0,
	XLB_PARSE_NOT_IP,        /* ARP, LLDP, ...: not for us */
	XLB_PARSE_TRUNCATED,     /* a header runs past the frame */
	XLB_PARSE_BAD_HEADER,    /* IHL < 5, version != ethertype, bad lengths */
	XLB_PARSE_FRAGMENT,      /* IPv4/IPv6 fragment: no usable L4 header */
	XLB_PARSE_UNSUPPORTED,   /* an L4 protocol we do not track */
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
	uint16_t vlan_tci;       /* valid when has_vlan */
	bool has_vlan;
	uint8_t tcp_flags;       /* TCP only */
	uint8_t icmp_type;       /* ICMP/ICMPv6 only */
	uint8_t icmp_code;
	struct xlb_tuple tuple;  /* as seen on the wire; zone 0 */
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
