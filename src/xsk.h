/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * One AF_XDP socket with its own UMEM, for one queue of one interface.
 *
 * Frame ownership: every frame is in exactly one place at a time — the
 * free stack, the fill ring, the rx ring, a worker's hands, the tx ring or
 * the completion ring. Frames come back to the free stack only from the rx
 * path (dropped) or the completion ring (sent), so none is reused while
 * the kernel may still read it.
 *
 * Not thread-safe: a socket belongs to one worker.
 */
#ifndef XLB_XSK_H
#define XLB_XSK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <xdp/xsk.h>

#define XLB_XSK_FRAME_SIZE 4096u
#define XLB_XSK_NUM_FRAMES 4096u
#define XLB_XSK_RING_SIZE 2048u

struct xlb_xsk {
	struct xsk_ring_cons rx;
	struct xsk_ring_prod tx;
	struct xsk_ring_prod fq;
	struct xsk_ring_cons cq;
	uint8_t *umem_area;
	struct xsk_umem *umem;
	struct xsk_socket *socket;
	int fd;
	uint32_t queue;
	bool zerocopy;
	bool busy_poll;               /* SO_PREFER_BUSY_POLL set: syscalls drive the NAPI */
	uint32_t n_free;
	uint32_t tx_outstanding;      /* in the tx or completion ring */
	uint64_t *free_frames;        /* stack of frame addresses */
};

/*
 * Create the UMEM and the socket bound to ifname/queue, and insert it in
 * the XSKMAP `xsks_map_fd` at index `queue`. Tries zero-copy first when
 * try_zerocopy, then copy mode. The fill ring is filled. libxdp's own
 * program loading is inhibited: our XDP program is already attached.
 * Returns 0 or a negative errno.
 */
int xlb_xsk_open(struct xlb_xsk *s, const char *ifname, uint32_t queue, int xsks_map_fd,
		 bool try_zerocopy);
void xlb_xsk_close(struct xlb_xsk *s);

static inline uint8_t *xlb_xsk_frame(const struct xlb_xsk *s, uint64_t addr)
{
	return xsk_umem__get_data(s->umem_area, addr);
}

static inline void xlb_xsk_free_frame(struct xlb_xsk *s, uint64_t addr)
{
	s->free_frames[s->n_free++] = xsk_umem__extract_addr(addr);
}

/* Give free frames to the kernel's fill ring (as many as fit). */
void xlb_xsk_refill(struct xlb_xsk *s);

/* Take sent frames back from the completion ring. Returns how many. */
uint32_t xlb_xsk_complete(struct xlb_xsk *s);

/* Ask the kernel to transmit what is in the tx ring, if it needs asking
 * (always in copy mode). Never blocks. */
void xlb_xsk_kick_tx(struct xlb_xsk *s);

/*
 * Busy polling: SO_PREFER_BUSY_POLL, SO_BUSY_POLL = usecs and
 * SO_BUSY_POLL_BUDGET = budget on the socket, so that recvfrom(), sendto()
 * and poll() on it run the queue's NAPI in the calling thread instead of
 * waiting for the softirq (and for a wake-up). usecs = 0 turns it off.
 * Needs CAP_NET_ADMIN for a budget above the default. Returns 0 or a
 * negative errno (EOPNOTSUPP on kernels without the options).
 */
int xlb_xsk_busy_poll(struct xlb_xsk *s, uint32_t usecs, uint32_t budget);

/* In busy-poll mode, run the queue's NAPI once (a non-blocking
 * recvfrom()); nothing otherwise. */
static inline void xlb_xsk_poll_napi(struct xlb_xsk *s)
{
	if (s->busy_poll)
		recvfrom(s->fd, NULL, 0, MSG_DONTWAIT, NULL, NULL);
}

/* XDP_STATISTICS of the socket. Returns 0 or a negative errno. */
int xlb_xsk_stats(const struct xlb_xsk *s, struct xdp_statistics *st);

#endif
