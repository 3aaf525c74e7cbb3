// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "xsk.h"

#ifndef SOL_XDP
#define SOL_XDP 283
#endif
/* Older libc headers lack these (Linux 5.11). */
#ifndef SO_PREFER_BUSY_POLL
#define SO_PREFER_BUSY_POLL 69
#endif
#ifndef SO_BUSY_POLL_BUDGET
#define SO_BUSY_POLL_BUDGET 70
#endif

static int create_socket(struct xlb_xsk *s, const char *ifname, uint32_t queue, __u16 bind_flags)
{
	struct xsk_socket_config cfg = {
		.rx_size = XLB_XSK_RING_SIZE,
		.tx_size = XLB_XSK_RING_SIZE,
		.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
		.xdp_flags = 0,
		.bind_flags = bind_flags | XDP_USE_NEED_WAKEUP,
	};

	return xsk_socket__create(&s->socket, ifname, queue, s->umem, &s->rx, &s->tx, &cfg);
}

int xlb_xsk_open(struct xlb_xsk *s, const char *ifname, uint32_t queue, int xsks_map_fd,
		 bool try_zerocopy)
{
	struct xsk_umem_config ucfg = {
		.fill_size = XLB_XSK_RING_SIZE,
		.comp_size = XLB_XSK_RING_SIZE,
		.frame_size = XLB_XSK_FRAME_SIZE,
		.frame_headroom = 0,
		.flags = 0,
	};
	size_t size = (size_t)XLB_XSK_NUM_FRAMES * XLB_XSK_FRAME_SIZE;
	int err;

	memset(s, 0, sizeof(*s));
	s->fd = -1;
	s->queue = queue;
	s->umem_area = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (s->umem_area == MAP_FAILED) {
		s->umem_area = NULL;
		err = -errno;
		goto err;
	}
	s->free_frames = calloc(XLB_XSK_NUM_FRAMES, sizeof(*s->free_frames));
	if (!s->free_frames) {
		err = -ENOMEM;
		goto err;
	}
	err = xsk_umem__create(&s->umem, s->umem_area, size, &s->fq, &s->cq, &ucfg);
	if (err) {
		xlb_err("queue %u: cannot create UMEM: %s", queue, strerror(-err));
		goto err;
	}
	err = -EOPNOTSUPP;
	if (try_zerocopy) {
		err = create_socket(s, ifname, queue, XDP_ZEROCOPY);
		s->zerocopy = !err;
	}
	if (err)
		err = create_socket(s, ifname, queue, XDP_COPY);
	if (err) {
		xlb_err("queue %u: cannot create AF_XDP socket on %s: %s", queue, ifname,
			strerror(-err));
		goto err;
	}
	s->fd = xsk_socket__fd(s->socket);
	err = xsk_socket__update_xskmap(s->socket, xsks_map_fd);
	if (err) {
		xlb_err("queue %u: cannot insert the socket into the XSKMAP: %s", queue,
			strerror(-err));
		goto err;
	}
	for (uint32_t i = 0; i < XLB_XSK_NUM_FRAMES; i++)
		s->free_frames[s->n_free++] = (uint64_t)i * XLB_XSK_FRAME_SIZE;
	xlb_xsk_refill(s);
	return 0;
err:
	xlb_xsk_close(s);
	return err;
}

void xlb_xsk_close(struct xlb_xsk *s)
{
	if (s->socket)
		xsk_socket__delete(s->socket);
	if (s->umem)
		xsk_umem__delete(s->umem);
	if (s->umem_area)
		munmap(s->umem_area, (size_t)XLB_XSK_NUM_FRAMES * XLB_XSK_FRAME_SIZE);
	free(s->free_frames);
	memset(s, 0, sizeof(*s));
	s->fd = -1;
}

void xlb_xsk_refill(struct xlb_xsk *s)
{
	uint32_t idx, n, room;

	/* Forwarding transmits the rx frame itself, so no frames need to be
	 * kept back for transmission: everything free goes to the kernel. */
	room = xsk_prod_nb_free(&s->fq, s->n_free);
	n = room < s->n_free ? room : s->n_free;
	if (!n)
		return;
	n = xsk_ring_prod__reserve(&s->fq, n, &idx);
	for (uint32_t i = 0; i < n; i++)
		*xsk_ring_prod__fill_addr(&s->fq, idx + i) = s->free_frames[--s->n_free];
	xsk_ring_prod__submit(&s->fq, n);
}

uint32_t xlb_xsk_complete(struct xlb_xsk *s)
{
	uint32_t idx, n;

	if (!s->tx_outstanding)
		return 0;
	n = xsk_ring_cons__peek(&s->cq, XLB_XSK_RING_SIZE, &idx);
	for (uint32_t i = 0; i < n; i++)
		xlb_xsk_free_frame(s, *xsk_ring_cons__comp_addr(&s->cq, idx + i));
	if (n) {
		xsk_ring_cons__release(&s->cq, n);
		s->tx_outstanding -= n;
	}
	return n;
}

void xlb_xsk_kick_tx(struct xlb_xsk *s)
{
	if (!s->tx_outstanding || !xsk_ring_prod__needs_wakeup(&s->tx))
		return;
	/* In copy mode one sendto() transmits at most 32 descriptors (the
	 * kernel's TX_BATCH_SIZE) and says EAGAIN for the rest, so kick until
	 * the kernel has consumed the ring, a bounded number of times. Any
	 * other error (ENOBUFS, EBUSY) means "later": the next loop kicks. */
	for (int i = 0; i < 16; i++) {
		uint32_t queued = s->tx.cached_prod - __atomic_load_n(s->tx.consumer, __ATOMIC_ACQUIRE);

		if (!queued)
			break;
		if (sendto(s->fd, NULL, 0, MSG_DONTWAIT, NULL, 0) < 0 && errno != EAGAIN)
			break;
	}
}

int xlb_xsk_busy_poll(struct xlb_xsk *s, uint32_t usecs, uint32_t budget)
{
	int prefer = usecs > 0, us = (int)usecs, b = (int)budget;

	if (setsockopt(s->fd, SOL_SOCKET, SO_PREFER_BUSY_POLL, &prefer, sizeof(prefer)) ||
	    setsockopt(s->fd, SOL_SOCKET, SO_BUSY_POLL, &us, sizeof(us)) ||
	    (usecs && setsockopt(s->fd, SOL_SOCKET, SO_BUSY_POLL_BUDGET, &b, sizeof(b))))
		return errno == ENOPROTOOPT ? -EOPNOTSUPP : -errno;
	s->busy_poll = usecs > 0;
	return 0;
}

int xlb_xsk_stats(const struct xlb_xsk *s, struct xdp_statistics *st)
{
	socklen_t len = sizeof(*st);

	if (getsockopt(s->fd, SOL_XDP, XDP_STATISTICS, st, &len))
		return -errno;
	return 0;
}
