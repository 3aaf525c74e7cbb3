// SPDX-License-Identifier: GPL-2.0-or-later
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "nat.h"
#include "packet.h"
#include "purge.h"

#ifndef IPV6_HDRINCL
#define IPV6_HDRINCL 36
#endif

struct xlb_purge {
	int fd4;
	int fd6;
};

struct xlb_purge *xlb_purge_create(void)
{
	struct xlb_purge *p = calloc(1, sizeof(*p));
	int one = 1;

	if (!p)
		return NULL;
	p->fd4 = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	p->fd6 = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	if (p->fd6 >= 0)
		setsockopt(p->fd6, IPPROTO_IPV6, IPV6_HDRINCL, &one, sizeof(one));
	if (p->fd4 < 0 || p->fd6 < 0) {
		int err = errno;

		xlb_purge_destroy(p);
		errno = err;
		return NULL;
	}
	return p;
}

void xlb_purge_destroy(struct xlb_purge *p)
{
	if (!p)
		return;
	if (p->fd4 >= 0)
		close(p->fd4);
	if (p->fd6 >= 0)
		close(p->fd6);
	free(p);
}

static void put16(uint8_t *b, uint16_t v)
{
	b[0] = v >> 8;
	b[1] = v & 0xff;
}

static void put32(uint8_t *b, uint32_t v)
{
	put16(b, v >> 16);
	put16(b + 2, v & 0xffff);
}

/*
 * Send a RST|ACK with the addresses and ports of t (as it leaves: t->src is
 * the sender), sequence `seq` and acknowledgement `ack`. The frame is built
 * behind a dummy Ethernet header so the packet code computes checksums the
 * one way it always does; the kernel routes it from the IP header on.
 */
static int send_rst(struct xlb_purge *p, const struct xlb_tuple *t, uint32_t seq, uint32_t ack)
{
	uint8_t frame[14 + 40 + 20] = { 0 };
	uint8_t *ip = frame + 14, *tcp;
	struct sockaddr_storage ss = { 0 };
	struct xlb_pkt pkt;
	socklen_t sslen;
	uint16_t csum;
	size_t l3len;
	int fd;

	if (t->family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		put16(frame + 12, 0x0800);
		ip[0] = 0x45;
		put16(ip + 2, 40);
		ip[8] = 64;
		ip[9] = IPPROTO_TCP;
		memcpy(ip + 12, &t->src.w[3], 4);
		memcpy(ip + 16, &t->dst.w[3], 4);
		tcp = ip + 20;
		l3len = 40;
		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = t->dst.w[3];
		sslen = sizeof(*sin);
		fd = p->fd4;
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		put16(frame + 12, 0x86dd);
		ip[0] = 0x60;
		put16(ip + 4, 20);
		ip[6] = IPPROTO_TCP;
		ip[7] = 64;
		memcpy(ip + 8, t->src.b, 16);
		memcpy(ip + 24, t->dst.b, 16);
		tcp = ip + 40;
		l3len = 60;
		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, t->dst.b, 16);
		sslen = sizeof(*sin6);
		fd = p->fd6;
	}
	memcpy(tcp, &t->sport, 2);
	memcpy(tcp + 2, &t->dport, 2);
	put32(tcp + 4, seq);
	put32(tcp + 8, ack);
	tcp[12] = 5 << 4;
	tcp[13] = XLB_TCP_RST | XLB_TCP_ACK;
	if (xlb_pkt_parse(&pkt, frame, (uint32_t)(14 + l3len)) != XLB_PARSE_OK)
		return -EINVAL;
	if (t->family == AF_INET) {
		csum = xlb_csum_ipv4_header(ip, 20);
		memcpy(ip + 10, &csum, 2);
	}
	csum = xlb_csum_l4(&pkt);
	memcpy(tcp + 16, &csum, 2);
	if (sendto(fd, ip, l3len, 0, (struct sockaddr *)&ss, sslen) < 0)
		return -errno;
	return 0;
}

/* Both ends of a connection learn it is over: the client from the VIP, the
 * backend (if it is still there) from the client's address. Sequence
 * numbers are what each side expects next (the other side's td_end), so
 * the RST is accepted rather than challenged (RFC 5961). */
static void reset_flow(struct xlb_purge *p, const struct xlb_flow *f)
{
	const struct xlb_tuple *o = &f->tuple[XLB_DIR_ORIG], *r = &f->tuple[XLB_DIR_REPLY];
	uint32_t orig_next = f->win[XLB_DIR_ORIG].td_end;
	uint32_t reply_next = f->win[XLB_DIR_REPLY].td_end;
	struct xlb_tuple to_client, to_backend;

	xlb_tuple_invert(&to_client, o);       /* VIP:port -> client */
	xlb_tuple_invert(&to_backend, r);      /* client -> backend */
	send_rst(p, &to_client, reply_next, orig_next);
	send_rst(p, &to_backend, orig_next, reply_next);
}

struct walk {
	struct xlb_purge *p;
	struct xlb_ct *ct;
	uint16_t slot;
	enum xlb_backend_down_action action;
	struct xlb_purge_result *res;
};

static bool tcp_open(const struct xlb_flow *f)
{
	return f->l4proto == IPPROTO_TCP && f->tcp_state != XLB_TCP_TIME_WAIT &&
	       f->tcp_state != XLB_TCP_CLOSE;
}

static int purge_one(struct xlb_flow *f, void *arg)
{
	struct walk *w = arg;

	if (f->backend_id != w->slot)
		return 0;
	if (w->action == XLB_DOWN_DROP && tcp_open(f)) {
		if (!(__atomic_fetch_or(&f->status, XLB_FLOW_DEAD, __ATOMIC_ACQ_REL) & XLB_FLOW_DEAD))
			w->res->dead++;
		return 0;
	}
	if (!xlb_ct_delete(w->ct, f))
		return 0;
	w->res->deleted++;
	if (w->action == XLB_DOWN_RESET && tcp_open(f) && w->p) {
		reset_flow(w->p, f);
		w->res->reset++;
	}
	return 0;
}

void xlb_purge_backend(struct xlb_purge *p, struct xlb_ct *ct, uint16_t slot,
		       enum xlb_backend_down_action action, struct xlb_purge_result *res)
{
	struct walk w = { .p = p, .ct = ct, .slot = slot, .action = action, .res = res };

	memset(res, 0, sizeof(*res));
	if (action == XLB_DOWN_KEEP || slot == 0xffff)
		return;
	xlb_ct_foreach(ct, purge_one, &w);
}
