// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Active health checks: see health.h for the contract.
 *
 * Each target sits in a binary min-heap keyed by its next event: the start
 * of its next check when idle, the deadline of its check when one is in
 * flight. A timerfd is armed at the heap's top. The timerfd and every check
 * socket live in one private epoll set, whose fd is what the daemon polls,
 * so a slow backend only ever costs its own socket and its own deadline.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/timerfd.h>

#include "health.h"
#include "log.h"

#define NSEC_PER_MSEC 1000000ULL
#define EVENT_BATCH 64
#define EVENT_ROUNDS 16          /* batches per process call before yielding */
#define STATUS_LINE_MAX 128      /* bytes of an HTTP answer we look at */
#define REQUEST_MAX 512

/* One service's check settings, shared by its targets. */
struct check_conf {
	unsigned refs;
	char service[XLB_NAME_MAX];
	enum xlb_health_kind kind;
	uint16_t port;               /* host order; 0 = the backend's port */
	uint32_t interval_ms;
	uint32_t timeout_ms;
	uint32_t rise;
	uint32_t fall;
	uint32_t status;
	char path[sizeof(((struct xlb_service_conf *)0)->health_path)];
	char payload[sizeof(((struct xlb_service_conf *)0)->health_payload)];
};

enum phase { IDLE, CONNECTING, SENDING, RECEIVING };

struct target {
	struct check_conf *conf;
	struct xlb_endpoint ep;
	struct sockaddr_storage sa;  /* where checks go */
	socklen_t salen;

	bool up;
	bool carried;                /* configure: taken over by the new set */
	uint32_t ok, fail;           /* consecutive */
	uint64_t checks, failures;
	uint32_t last_latency_us;
	uint64_t last_check_ns;
	char last_error[64];

	uint64_t next_ns;            /* heap key */
	size_t heap_idx;

	/* The check in flight (fd >= 0). */
	int fd;
	enum phase phase;
	uint64_t started_ns;
	size_t sent;
	size_t got;
	char buf[STATUS_LINE_MAX];
};

struct xlb_health {
	int epfd;
	int timerfd;
	xlb_health_change_fn fn;
	void *arg;
	uint64_t rng;

	struct target **targets;     /* sorted by (service, endpoint) */
	size_t n;
	struct target **heap;        /* same targets, by next_ns */
	size_t heap_n;

	struct xlb_ratelimit local_rl;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* xorshift64*: jitter needs spread, not secrecy. */
static uint64_t rng_next(struct xlb_health *h)
{
	h->rng ^= h->rng >> 12;
	h->rng ^= h->rng << 25;
	h->rng ^= h->rng >> 27;
	return h->rng * 0x2545F4914F6CDD1DULL;
}

/* ---- ordering and the heap ----------------------------------------------- */

static int key_cmp(const char *sa, const struct xlb_endpoint *a, const char *sb,
		   const struct xlb_endpoint *b)
{
	int c = strcmp(sa, sb);

	if (c)
		return c;
	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	c = memcmp(a->addr.b, b->addr.b, sizeof(a->addr.b));
	if (c)
		return c;
	if (a->port != b->port)
		return ntohs(a->port) < ntohs(b->port) ? -1 : 1;
	return 0;
}

static int target_cmp(const void *pa, const void *pb)
{
	const struct target *a = *(struct target *const *)pa;
	const struct target *b = *(struct target *const *)pb;

	return key_cmp(a->conf->service, &a->ep, b->conf->service, &b->ep);
}

static struct target *find(const struct xlb_health *h, const char *service,
			   const struct xlb_endpoint *ep)
{
	size_t lo = 0, hi = h->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		struct target *t = h->targets[mid];
		int c = key_cmp(service, ep, t->conf->service, &t->ep);

		if (!c)
			return t;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

static void heap_set(struct xlb_health *h, size_t i, struct target *t)
{
	h->heap[i] = t;
	t->heap_idx = i;
}

static void heap_fix(struct xlb_health *h, size_t i)
{
	struct target *t = h->heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (h->heap[parent]->next_ns <= t->next_ns)
			break;
		heap_set(h, i, h->heap[parent]);
		i = parent;
	}
	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= h->heap_n)
			break;
		if (c + 1 < h->heap_n && h->heap[c + 1]->next_ns < h->heap[c]->next_ns)
			c++;
		if (t->next_ns <= h->heap[c]->next_ns)
			break;
		heap_set(h, i, h->heap[c]);
		i = c;
	}
	heap_set(h, i, t);
}

static void schedule(struct xlb_health *h, struct target *t, uint64_t when)
{
	t->next_ns = when;
	heap_fix(h, t->heap_idx);
}

static void arm_timer(struct xlb_health *h)
{
	struct itimerspec its = { 0 };

	if (h->heap_n) {
		uint64_t when = h->heap[0]->next_ns;

		/* An all-zero it_value would disarm the timer. */
		if (!when)
			when = 1;
		its.it_value.tv_sec = (time_t)(when / 1000000000ULL);
		its.it_value.tv_nsec = (long)(when % 1000000000ULL);
	}
	/* Cannot fail with a valid fd and a normalised time. */
	timerfd_settime(h->timerfd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* ---- targets ------------------------------------------------------------- */

static uint16_t check_port(const struct target *t)
{
	return t->conf->port ? t->conf->port : ntohs(t->ep.port);
}

static const char *ep_str(const struct target *t, char *buf, size_t len)
{
	return xlb_endpoint_ntop(&t->ep, buf, len);
}

static void conf_put(struct check_conf *c)
{
	if (c && --c->refs == 0)
		free(c);
}

static bool conf_same(const struct check_conf *a, const struct check_conf *b)
{
	if (a->kind != b->kind || a->port != b->port || a->interval_ms != b->interval_ms ||
	    a->timeout_ms != b->timeout_ms || a->rise != b->rise || a->fall != b->fall)
		return false;
	if (a->kind == XLB_HEALTH_HTTP)
		return a->status == b->status && !strcmp(a->path, b->path);
	if (a->kind == XLB_HEALTH_UDP)
		return !strcmp(a->payload, b->payload);
	return true;
}

static void close_check(struct target *t)
{
	/* Close with a RST: a check never leaves a socket in TIME_WAIT behind,
	 * however many backends are checked how often. */
	if (t->conf->kind != XLB_HEALTH_UDP) {
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };

		setsockopt(t->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	close(t->fd);   /* also leaves the epoll set */
	t->fd = -1;
	t->phase = IDLE;
}

static void target_free(struct target *t)
{
	if (!t)
		return;
	if (t->fd >= 0)
		close_check(t);
	conf_put(t->conf);
	free(t);
}

static struct target *target_new(struct check_conf *conf, const struct xlb_endpoint *ep)
{
	struct target *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->conf = conf;
	conf->refs++;
	t->ep = *ep;
	t->up = true;
	t->fd = -1;
	if (ep->family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&t->sa;

		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = xlb_addr_v4(&ep->addr);
		sin->sin_port = htons(check_port(t));
		t->salen = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&t->sa;

		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, ep->addr.b, sizeof(sin6->sin6_addr));
		sin6->sin6_port = htons(check_port(t));
		t->salen = sizeof(*sin6);
	}
	return t;
}

/* ---- one check ----------------------------------------------------------- */

static void fill_status(const struct target *t, struct xlb_health_status *st)
{
	memset(st, 0, sizeof(*st));
	snprintf(st->service, sizeof(st->service), "%s", t->conf->service);
	st->backend = t->ep;
	st->kind = t->conf->kind;
	st->port = check_port(t);
	st->up = t->up;
	st->in_flight = t->fd >= 0;
	st->consecutive_ok = t->ok;
	st->consecutive_fail = t->fail;
	st->checks = t->checks;
	st->failures = t->failures;
	st->last_latency_us = t->last_latency_us;
	st->last_check_ns = t->last_check_ns;
	st->next_check_ns = t->fd >= 0 ? t->started_ns + t->conf->interval_ms * NSEC_PER_MSEC
				       : t->next_ns;
	memcpy(st->last_error, t->last_error, sizeof(st->last_error));
}

/* Next start: one interval after this one started, never in the past. */
static void schedule_next(struct xlb_health *h, struct target *t, uint64_t now)
{
	uint64_t next = t->started_ns + t->conf->interval_ms * NSEC_PER_MSEC;

	schedule(h, t, next > now ? next : now);
}

/*
 * The check ended: count it, apply rise/fall, schedule the next one. err is
 * NULL on success.
 */
static void finish(struct xlb_health *h, struct target *t, const char *err)
{
	uint64_t now = now_ns();
	uint64_t us = (now - t->started_ns) / 1000;
	bool was_up = t->up;
	char ep[XLB_ADDRSTRLEN + 8];

	if (t->fd >= 0)
		close_check(t);
	t->checks++;
	t->last_check_ns = t->started_ns;
	t->last_latency_us = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
	if (err) {
		t->failures++;
		t->fail++;
		t->ok = 0;
		snprintf(t->last_error, sizeof(t->last_error), "%s", err);
		if (t->up && t->fail >= t->conf->fall)
			t->up = false;
	} else {
		t->ok++;
		t->fail = 0;
		t->last_error[0] = '\0';
		if (!t->up && t->ok >= t->conf->rise)
			t->up = true;
	}
	schedule_next(h, t, now);
	if (t->up == was_up)
		return;
	if (t->up)
		xlb_dbg("service %s: backend %s is up: %u checks passed", t->conf->service,
			 ep_str(t, ep, sizeof(ep)), t->ok);
	else
		xlb_dbg("service %s: backend %s is down: %u checks failed, last: %s",
			 t->conf->service, ep_str(t, ep, sizeof(ep)), t->fail, t->last_error);
	if (h->fn)
		h->fn(h->arg, t->conf->service, &t->ep, t->up);
}

static void finish_errno(struct xlb_health *h, struct target *t, const char *what, int err)
{
	char msg[64];

	snprintf(msg, sizeof(msg), "%s: %s", what, strerror(err));
	finish(h, t, msg);
}

/*
 * Our own trouble (out of fds, memory, local ports) says nothing about the
 * backend: it is neither counted for nor against it, only shown and
 * retried at the next interval. Otherwise running out of fds would take
 * every backend down at once.
 */
static void local_error(struct xlb_health *h, struct target *t, const char *what, int err,
			uint64_t now)
{
	char ep[XLB_ADDRSTRLEN + 8];

	if (t->fd >= 0)
		close_check(t);
	snprintf(t->last_error, sizeof(t->last_error), "local %s: %s", what, strerror(err));
	if (xlb_ratelimit_ok(&h->local_rl, now))
		xlb_warn("service %s: backend %s: cannot check: %s", t->conf->service,
			 ep_str(t, ep, sizeof(ep)), t->last_error);
	schedule_next(h, t, now);
}

static bool is_local_errno(int err)
{
	return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM ||
	       err == EAGAIN || err == EADDRNOTAVAIL;
}

static int watch(struct xlb_health *h, struct target *t, uint32_t events, int op)
{
	struct epoll_event ev = { .events = events, .data.ptr = t };

	return epoll_ctl(h->epfd, op, t->fd, &ev) ? -errno : 0;
}

static size_t http_request(const struct target *t, char *buf, size_t len)
{
	char a[XLB_ADDRSTRLEN];
	char host[XLB_ADDRSTRLEN + 8];
	uint16_t port = check_port(t);
	size_t hl;
	int n;

	if (!xlb_addr_ntop(&t->ep.addr, t->ep.family, a, sizeof(a)))
		a[0] = '\0';
	snprintf(host, sizeof(host), t->ep.family == AF_INET6 ? "[%s]" : "%s", a);
	/* Host carries the port unless it is HTTP's default (RFC 9110 7.2). */
	hl = strlen(host);
	if (port != 80)
		snprintf(host + hl, sizeof(host) - hl, ":%u", port);
	n = snprintf(buf, len, "GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: xlb-health\r\n\r\n",
		     t->conf->path, host);
	return n < 0 ? 0 : (size_t)n >= len ? len - 1 : (size_t)n;
}

/*
 * Parse "HTTP/x.y SSS[ reason]" at the start of buf. Returns 1 with *status
 * set, 0 if more bytes are needed, -1 if this is no HTTP status line.
 */
static int parse_status_line(const char *buf, size_t len, bool eof, unsigned *status)
{
	static const char prefix[] = "HTTP/";
	size_t i, plen = sizeof(prefix) - 1;
	unsigned s = 0;
	int digits;

	for (i = 0; i < plen; i++) {
		if (i >= len)
			return eof ? -1 : 0;
		if (buf[i] != prefix[i])
			return -1;
	}
	/* version: digits and dots */
	for (; i < len && ((buf[i] >= '0' && buf[i] <= '9') || buf[i] == '.'); i++)
		;
	if (i >= len)
		return eof ? -1 : 0;
	if (i == plen || buf[i] != ' ')
		return -1;
	i++;
	for (digits = 0; digits < 3; digits++, i++) {
		if (i >= len)
			return eof ? -1 : 0;
		if (buf[i] < '0' || buf[i] > '9')
			return -1;
		s = s * 10 + (unsigned)(buf[i] - '0');
	}
	if (i < len && buf[i] != ' ' && buf[i] != '\r' && buf[i] != '\n')
		return -1;
	if (i >= len && !eof)
		return 0;
	*status = s;
	return 1;
}

static void http_send(struct xlb_health *h, struct target *t)
{
	char req[REQUEST_MAX];
	size_t len = http_request(t, req, sizeof(req));
	ssize_t n;
	int ret;

	n = send(t->fd, req + t->sent, len - t->sent, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			finish_errno(h, t, "send", errno);
		return;
	}
	t->sent += (size_t)n;
	if (t->sent < len) {
		t->phase = SENDING;
		return;
	}
	t->phase = RECEIVING;
	ret = watch(h, t, EPOLLIN, EPOLL_CTL_MOD);
	if (ret)
		local_error(h, t, "epoll", -ret, now_ns());
}

static void http_recv(struct xlb_health *h, struct target *t)
{
	char msg[64];
	unsigned status;
	ssize_t n;
	int ret;

	n = recv(t->fd, t->buf + t->got, sizeof(t->buf) - t->got, MSG_DONTWAIT);
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			finish_errno(h, t, "recv", errno);
		return;
	}
	t->got += (size_t)n;
	/* A full buffer is as far as we read: the line must be decidable by then. */
	ret = parse_status_line(t->buf, t->got, n == 0 || t->got == sizeof(t->buf), &status);
	if (ret == 0)
		return;
	if (ret < 0) {
		finish(h, t, t->got ? "not an HTTP status line" : "closed before a status line");
		return;
	}
	if (status != t->conf->status) {
		snprintf(msg, sizeof(msg), "status %u, expected %u", status, t->conf->status);
		finish(h, t, msg);
		return;
	}
	finish(h, t, NULL);
}

static int sock_error(int fd)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len))
		return errno;
	return err;
}

static void on_event(struct xlb_health *h, struct target *t, uint32_t events)
{
	int err;
	ssize_t n;

	switch (t->phase) {
	case CONNECTING:
		err = sock_error(t->fd);
		if (err) {
			finish_errno(h, t, "connect", err);
			return;
		}
		if (!(events & EPOLLOUT)) {
			/* A hang-up without an error would stay ready (level-
			 * triggered) and spin us until the deadline. */
			if (events & (EPOLLHUP | EPOLLERR))
				finish(h, t, "connect: closed by peer");
			return;
		}
		if (t->conf->kind == XLB_HEALTH_TCP) {
			finish(h, t, NULL);
			return;
		}
		t->phase = SENDING;
		http_send(h, t);
		return;
	case SENDING:
		http_send(h, t);
		return;
	case RECEIVING:
		if (t->conf->kind == XLB_HEALTH_HTTP) {
			http_recv(h, t);
			return;
		}
		/* udp: any datagram counts; the connected socket only takes
		 * datagrams from the backend, and turns an ICMP port
		 * unreachable into ECONNREFUSED. */
		n = recv(t->fd, t->buf, sizeof(t->buf), MSG_DONTWAIT);
		if (n >= 0)
			finish(h, t, NULL);
		else if (errno == ECONNREFUSED)
			finish(h, t, "port unreachable");
		else if (errno != EAGAIN && errno != EINTR)
			finish_errno(h, t, "recv", errno);
		return;
	case IDLE:
		return;
	}
}

static void start_check(struct xlb_health *h, struct target *t, uint64_t now)
{
	int type = t->conf->kind == XLB_HEALTH_UDP ? SOCK_DGRAM : SOCK_STREAM;
	int ret;

	t->started_ns = now;
	t->sent = 0;
	t->got = 0;
	t->fd = socket(t->sa.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (t->fd < 0) {
		/* No IPv6 on this node makes an IPv6 backend unreachable:
		 * that is the backend's failure as far as traffic goes. */
		if (errno == EAFNOSUPPORT)
			finish_errno(h, t, "socket", errno);
		else
			local_error(h, t, "socket", errno, now);
		return;
	}
	/* Deadline first: every path below either finishes or waits for it. */
	schedule(h, t, now + t->conf->timeout_ms * NSEC_PER_MSEC);

	if (connect(t->fd, (struct sockaddr *)&t->sa, t->salen)) {
		int err = errno;

		if (err != EINPROGRESS) {
			if (is_local_errno(err))
				local_error(h, t, "connect", err, now);
			else
				finish_errno(h, t, "connect", err);
			return;
		}
		t->phase = CONNECTING;
		ret = watch(h, t, EPOLLOUT, EPOLL_CTL_ADD);
		if (ret)
			local_error(h, t, "epoll", -ret, now);
		return;
	}

	switch (t->conf->kind) {
	case XLB_HEALTH_TCP:
		finish(h, t, NULL);
		return;
	case XLB_HEALTH_HTTP:
		ret = watch(h, t, EPOLLOUT, EPOLL_CTL_ADD);
		if (ret) {
			local_error(h, t, "epoll", -ret, now);
			return;
		}
		t->phase = SENDING;
		http_send(h, t);
		return;
	default:
		break;
	}

	/* udp */
	ret = watch(h, t, EPOLLIN, EPOLL_CTL_ADD);
	if (ret) {
		local_error(h, t, "epoll", -ret, now);
		return;
	}
	t->phase = RECEIVING;
	if (send(t->fd, t->conf->payload, strlen(t->conf->payload),
		 MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
		int err = errno;

		if (err == ECONNREFUSED)
			finish(h, t, "port unreachable");
		else if (is_local_errno(err))
			local_error(h, t, "send", err, now);
		else
			finish_errno(h, t, "send", err);
	}
}

static const char *timeout_reason(const struct target *t)
{
	switch (t->phase) {
	case CONNECTING:
		return "timeout connecting";
	case SENDING:
		return "timeout sending the request";
	case RECEIVING:
		return t->conf->kind == XLB_HEALTH_HTTP ? "timeout waiting for the status line"
							: "timeout waiting for a reply";
	default:
		return "timeout";
	}
}

/* ---- API ----------------------------------------------------------------- */

struct xlb_health *xlb_health_create(xlb_health_change_fn fn, void *arg)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	struct xlb_health *h;
	int err;

	h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->fn = fn;
	h->arg = arg;
	h->epfd = epoll_create1(EPOLL_CLOEXEC);
	h->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (h->epfd < 0 || h->timerfd < 0)
		goto err;
	/* data.ptr NULL marks the timer among the check sockets. */
	if (epoll_ctl(h->epfd, EPOLL_CTL_ADD, h->timerfd, &ev))
		goto err;
	if (getrandom(&h->rng, sizeof(h->rng), GRND_NONBLOCK) != sizeof(h->rng))
		h->rng = now_ns() ^ ((uint64_t)getpid() << 32);
	if (!h->rng)
		h->rng = 0x9E3779B97F4A7C15ULL;
	h->local_rl.interval_ns = 5000 * NSEC_PER_MSEC;
	h->local_rl.burst = 10;
	return h;
err:
	err = errno;
	if (h->epfd >= 0)
		close(h->epfd);
	if (h->timerfd >= 0)
		close(h->timerfd);
	free(h);
	errno = err;
	return NULL;
}

static struct check_conf *conf_new(const struct xlb_service_conf *s)
{
	struct check_conf *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->refs = 1;   /* the builder's reference, dropped once targets hold theirs */
	snprintf(c->service, sizeof(c->service), "%s", s->name);
	c->kind = s->health;
	c->port = s->health_port;
	c->interval_ms = s->health_interval_ms ? s->health_interval_ms : 1000;
	c->timeout_ms = s->health_timeout_ms ? s->health_timeout_ms : 500;
	c->rise = s->health_rise ? s->health_rise : 1;
	c->fall = s->health_fall ? s->health_fall : 1;
	c->status = s->health_status;
	snprintf(c->path, sizeof(c->path), "%s", s->health_path[0] ? s->health_path : "/");
	snprintf(c->payload, sizeof(c->payload), "%s", s->health_payload);
	return c;
}

int xlb_health_configure(struct xlb_health *h, const struct xlb_config *cfg)
{
	struct target **next = NULL, **heap = NULL;
	size_t n = 0, cap = 0, i, j;
	uint64_t now = now_ns();
	int err = 0;

	/* Build the whole new set first, so a failure leaves the old one as is. */
	for (i = 0; cfg && i < cfg->n_services; i++) {
		const struct xlb_service_conf *s = &cfg->services[i];
		struct check_conf *c;

		if (s->health == XLB_HEALTH_NONE || !s->n_backends)
			continue;
		c = conf_new(s);
		if (!c) {
			err = -ENOMEM;
			goto err;
		}
		for (j = 0; j < s->n_backends; j++) {
			const struct xlb_endpoint *ep = &s->backends[j].ep;

			if (ep->family != AF_INET && ep->family != AF_INET6)
				continue;
			if (n == cap) {
				size_t ncap = cap ? 2 * cap : 64;
				struct target **p = realloc(next, ncap * sizeof(*p));

				if (!p) {
					conf_put(c);
					err = -ENOMEM;
					goto err;
				}
				next = p;
				cap = ncap;
			}
			next[n] = target_new(c, ep);
			if (!next[n]) {
				conf_put(c);
				err = -ENOMEM;
				goto err;
			}
			n++;
		}
		conf_put(c);
	}
	if (n) {
		heap = calloc(n, sizeof(*heap));
		if (!heap) {
			err = -ENOMEM;
			goto err;
		}
		qsort(next, n, sizeof(*next), target_cmp);
	}

	/* Nothing can fail from here on. Drop duplicates (the config parser
	 * refuses them; this keeps ownership simple if one slips through). */
	for (i = 0, j = 0; i < n; i++) {
		if (j && !target_cmp(&next[j - 1], &next[i]))
			target_free(next[i]);
		else
			next[j++] = next[i];
	}
	n = j;

	for (i = 0; i < n; i++) {
		struct target *t = next[i];
		struct target *old = find(h, t->conf->service, &t->ep);

		if (old && !old->carried && conf_same(old->conf, t->conf)) {
			old->carried = true;
			next[i] = old;
			target_free(t);
			continue;
		}
		if (old)
			t->up = old->up;
		/* Spread first checks over one interval. */
		t->next_ns = now + rng_next(h) % (t->conf->interval_ms * NSEC_PER_MSEC);
	}

	for (i = 0; i < h->n; i++) {
		if (h->targets[i]->carried)
			h->targets[i]->carried = false;
		else
			target_free(h->targets[i]);
	}
	free(h->targets);
	free(h->heap);
	h->targets = next;
	h->n = n;
	h->heap = heap;
	/* Insert one by one: each sift-up finds a valid heap below it. */
	for (h->heap_n = 0; h->heap_n < n; h->heap_n++) {
		heap_set(h, h->heap_n, next[h->heap_n]);
		heap_fix(h, h->heap_n);
	}
	arm_timer(h);
	return 0;
err:
	for (i = 0; i < n; i++)
		target_free(next[i]);
	free(next);
	free(heap);
	return err;
}

int xlb_health_fd(const struct xlb_health *h)
{
	return h->epfd;
}

void xlb_health_process(struct xlb_health *h)
{
	struct epoll_event evs[EVENT_BATCH];
	uint64_t expirations, now;
	int round, n, i;

	/* Only to clear the timer's readiness; the heap says what is due. */
	if (read(h->timerfd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
		xlb_dbg("health timerfd: %s", strerror(errno));

	/* Answers first, so one that arrived in time is not taken for a timeout. */
	for (round = 0; round < EVENT_ROUNDS; round++) {
		n = epoll_wait(h->epfd, evs, EVENT_BATCH, 0);
		for (i = 0; i < n; i++) {
			struct target *t = evs[i].data.ptr;

			if (t && t->fd >= 0)
				on_event(h, t, evs[i].events);
		}
		if (n < EVENT_BATCH)
			break;
	}

	now = now_ns();
	while (h->heap_n && h->heap[0]->next_ns <= now) {
		struct target *t = h->heap[0];

		if (t->fd >= 0)
			finish(h, t, timeout_reason(t));
		else
			start_check(h, t, now);
	}
	arm_timer(h);
}

bool xlb_health_is_up(const struct xlb_health *h, const char *service,
		      const struct xlb_endpoint *backend)
{
	const struct target *t = find(h, service, backend);

	return !t || t->up;
}

int xlb_health_set_down(struct xlb_health *h, const char *service,
			const struct xlb_endpoint *backend, const char *why)
{
	struct target *t = find(h, service, backend);

	if (!t)
		return -ENOENT;
	t->up = false;
	t->ok = 0;
	snprintf(t->last_error, sizeof(t->last_error), "%s", why ? why : "set down");
	return 0;
}

int xlb_health_get(const struct xlb_health *h, const char *service,
		   const struct xlb_endpoint *backend, struct xlb_health_status *out)
{
	const struct target *t = find(h, service, backend);

	if (!t)
		return -ENOENT;
	fill_status(t, out);
	return 0;
}

int xlb_health_walk(const struct xlb_health *h, xlb_health_walk_fn fn, void *arg)
{
	struct xlb_health_status st;
	size_t i;
	int ret;

	for (i = 0; i < h->n; i++) {
		fill_status(h->targets[i], &st);
		ret = fn(arg, &st);
		if (ret)
			return ret;
	}
	return 0;
}

size_t xlb_health_count(const struct xlb_health *h)
{
	return h->n;
}

void xlb_health_destroy(struct xlb_health *h)
{
	size_t i;

	if (!h)
		return;
	for (i = 0; i < h->n; i++)
		target_free(h->targets[i]);
	free(h->targets);
	free(h->heap);
	close(h->timerfd);
	close(h->epfd);
	free(h);
}
