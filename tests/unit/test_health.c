// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Health checks against real servers on the loopback (127.0.0.1 and ::1),
 * run non-blocking in the test's own poll loop next to the checker: a TCP
 * listener, an HTTP server whose answer depends on the path, a black hole
 * that accepts and never answers, a UDP echo, a UDP server that never
 * answers, ports with nothing behind them. The checker is only driven the
 * way xlbd drives it: xlb_health_process() when its fd is readable.
 *
 * Nothing here asserts a duration; only what happened, in which order,
 * how many times.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "config.h"
#include "health.h"
#include "log.h"
#include "unit.h"

/* ---- servers ------------------------------------------------------------- */

struct lab {
	int family;
	int tcp, http, hole, refused, udp_echo, udp_silent;
	uint16_t tcp_port, http_port, hole_port, refused_port;
	uint16_t udp_echo_port, udp_silent_port, udp_refused_port;
};

enum conn_kind { CONN_HTTP, CONN_HOLE };

struct conn {
	int fd;
	enum conn_kind kind;
	char req[2048];
	size_t len;
	const char *rest;        /* second half of a split answer, sent next round */
};

#define MAX_CONNS 512
static struct conn conns[MAX_CONNS];
static int n_conns;

static struct lab lab4, lab6;
static bool have_ipv6;
static int toggle_status = 200;
static char last_request[2048];   /* the last one for /ok */
static char long_answer[512];
static char *big_answer;

static void loopback(int family, struct sockaddr_storage *ss, socklen_t *len, uint16_t port)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sin->sin_port = htons(port);
		*len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = in6addr_loopback;
		sin6->sin6_port = htons(port);
		*len = sizeof(*sin6);
	}
}

/* A socket bound to an ephemeral loopback port; listening if asked. */
static int server(int family, int type, bool listening, uint16_t *port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1;

	fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	loopback(family, &ss, &len, 0);
	if (bind(fd, (struct sockaddr *)&ss, len) || (listening && listen(fd, 512)) ||
	    getsockname(fd, (struct sockaddr *)&ss, &len)) {
		close(fd);
		return -1;
	}
	*port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					: ((struct sockaddr_in6 *)&ss)->sin6_port);
	return fd;
}

static int lab_open(struct lab *l, int family)
{
	int fd;

	memset(l, 0, sizeof(*l));
	l->family = family;
	l->tcp = server(family, SOCK_STREAM, true, &l->tcp_port);
	l->http = server(family, SOCK_STREAM, true, &l->http_port);
	l->hole = server(family, SOCK_STREAM, true, &l->hole_port);
	/* Bound but not listening: connects are refused, and nobody else
	 * can take the port while the test runs. */
	l->refused = server(family, SOCK_STREAM, false, &l->refused_port);
	l->udp_echo = server(family, SOCK_DGRAM, false, &l->udp_echo_port);
	l->udp_silent = server(family, SOCK_DGRAM, false, &l->udp_silent_port);
	fd = server(family, SOCK_DGRAM, false, &l->udp_refused_port);
	if (fd >= 0)
		close(fd);
	if (l->tcp < 0 || l->http < 0 || l->hole < 0 || l->refused < 0 || l->udp_echo < 0 ||
	    l->udp_silent < 0 || fd < 0)
		return -1;
	return 0;
}

static void lab_close(struct lab *l)
{
	int *fds[] = { &l->tcp, &l->http, &l->hole, &l->refused, &l->udp_echo,
		       &l->udp_silent };

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (*fds[i] > 0)
			close(*fds[i]);
}

static void conn_close(int i)
{
	close(conns[i].fd);
	conns[i] = conns[--n_conns];
}

static void conns_close_all(void)
{
	while (n_conns)
		conn_close(0);
}

static void conn_add(int fd, enum conn_kind kind)
{
	if (n_conns == MAX_CONNS) {
		close(fd);
		return;
	}
	memset(&conns[n_conns], 0, sizeof(conns[n_conns]));
	conns[n_conns].fd = fd;
	conns[n_conns].kind = kind;
	n_conns++;
}

/* The HTTP server's answers, by path. */
struct answer {
	const char *path;
	const char *first;
	const char *rest;        /* sent one poll round later */
};

static const char *answer_for(const char *path, const char **rest)
{
	static const struct answer answers[] = {
		{ "/ok", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", NULL },
		{ "/fail", "HTTP/1.1 503 Service Unavailable\r\n\r\n", NULL },
		{ "/garbage", "SSH-2.0-OpenSSH_9.2p1\r\n", NULL },
		{ "/noreason", "HTTP/1.0 200\r\n\r\n", NULL },
		{ "/close", "", NULL },
		{ "/split", "HTTP/1.", "1 200 OK\r\n\r\n" },
		{ "/fourdigits", "HTTP/1.1 2000 OK\r\n\r\n", NULL },
		{ "/lowercase", "http/1.1 200 OK\r\n\r\n", NULL },
		{ "/letters", "HTTP/1.1 2x0 OK\r\n\r\n", NULL },
		{ "/noversion", "HTTP/ 200 OK\r\n\r\n", NULL },
	};

	*rest = NULL;
	if (!strcmp(path, "/toggle"))
		return toggle_status == 200 ? "HTTP/1.1 200 OK\r\n\r\n"
					    : "HTTP/1.1 503 Service Unavailable\r\n\r\n";
	if (!strcmp(path, "/long"))
		return long_answer;
	if (!strcmp(path, "/big"))
		return big_answer;
	for (size_t i = 0; i < sizeof(answers) / sizeof(answers[0]); i++) {
		if (!strcmp(path, answers[i].path)) {
			*rest = answers[i].rest;
			return answers[i].first;
		}
	}
	return "HTTP/1.1 404 Not Found\r\n\r\n";
}

/* Returns true when the connection is done with. */
static bool http_read(struct conn *c)
{
	char path[256];
	const char *answer;
	ssize_t n;

	n = recv(c->fd, c->req + c->len, sizeof(c->req) - 1 - c->len, 0);
	if (n <= 0)
		return n == 0 || errno != EAGAIN;
	c->len += (size_t)n;
	c->req[c->len] = '\0';
	if (!strstr(c->req, "\r\n\r\n"))
		return c->len == sizeof(c->req) - 1;
	if (sscanf(c->req, "GET %255s ", path) != 1)
		return true;
	if (!strcmp(path, "/ok"))
		snprintf(last_request, sizeof(last_request), "%s", c->req);
	answer = answer_for(path, &c->rest);
	/* A short write only cuts the body, which the checker ignores. */
	if (send(c->fd, answer, strlen(answer), MSG_NOSIGNAL) < 0)
		return true;
	return !c->rest;
}

static void lab_poll_fds(const struct lab *l, struct pollfd *p, int *n)
{
	int fds[] = { l->tcp, l->http, l->hole, l->udp_echo, l->udp_silent };

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		p[*n].fd = fds[i];
		p[*n].events = POLLIN;
		p[*n].revents = 0;
		(*n)++;
	}
}

static void lab_serve(const struct lab *l, int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char buf[2048];
	ssize_t n;
	int c;

	if (fd == l->udp_echo) {
		n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&ss, &len);
		if (n >= 0)
			sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&ss, len);
		return;
	}
	if (fd == l->udp_silent) {
		recv(fd, buf, sizeof(buf), 0);
		return;
	}
	while ((c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		if (fd == l->tcp)
			close(c);
		else
			conn_add(c, fd == l->http ? CONN_HTTP : CONN_HOLE);
	}
}

/* ---- the checker under test ---------------------------------------------- */

struct event {
	char service[XLB_NAME_MAX];
	struct xlb_endpoint backend;
	bool up;
	struct xlb_health_status st;   /* as the callback saw it */
};

static struct xlb_health *h;
static struct event events[256];
static int n_events;

static void on_change(void *arg, const char *service, const struct xlb_endpoint *backend,
		      bool up)
{
	struct event *e;

	CU_ASSERT_PTR_EQUAL(arg, &n_events);
	if (n_events == (int)(sizeof(events) / sizeof(events[0])))
		return;
	e = &events[n_events++];
	snprintf(e->service, sizeof(e->service), "%s", service);
	e->backend = *backend;
	e->up = up;
	CU_ASSERT_EQUAL(xlb_health_get(h, service, backend, &e->st), 0);
	CU_ASSERT_EQUAL(xlb_health_is_up(h, service, backend), up);
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * Run servers and checker until done(arg) or max_ms passed (a bound so a
 * broken checker fails the test instead of hanging it, not a timing
 * assertion). Returns done(arg).
 */
static bool pump(bool (*done)(void *), void *arg, unsigned max_ms)
{
	uint64_t end = mono_ms() + max_ms;

	while (!done(arg)) {
		struct pollfd p[16 + MAX_CONNS];
		int n = 0, http_base, i;
		bool split_pending = false;

		if (mono_ms() > end)
			return false;
		p[n].fd = xlb_health_fd(h);
		p[n].events = POLLIN;
		p[n].revents = 0;
		n++;
		lab_poll_fds(&lab4, p, &n);
		if (have_ipv6)
			lab_poll_fds(&lab6, p, &n);
		http_base = n;
		for (i = 0; i < n_conns; i++) {
			p[n].fd = conns[i].fd;
			p[n].events = conns[i].kind == CONN_HTTP && !conns[i].rest ? POLLIN : 0;
			p[n].revents = 0;
			n++;
			split_pending |= conns[i].rest != NULL;
		}
		if (poll(p, (nfds_t)n, split_pending ? 1 : 20) < 0)
			return false;
		if (p[0].revents)
			xlb_health_process(h);
		/* Back to front, before accepting: conn_close() moves the last
		 * entry into i, which has then been handled already. Second
		 * halves go out only now, a round after the first. */
		for (i = n_conns - 1; i >= 0; i--) {
			if (conns[i].rest) {
				send(conns[i].fd, conns[i].rest, strlen(conns[i].rest), MSG_NOSIGNAL);
				conn_close(i);
			} else if (conns[i].kind == CONN_HTTP &&
				   (p[http_base + i].revents & (POLLIN | POLLHUP | POLLERR)) &&
				   http_read(&conns[i])) {
				conn_close(i);
			}
		}
		for (i = 1; i < http_base; i++) {
			if (!p[i].revents)
				continue;
			lab_serve(p[i].fd == lab6.tcp || p[i].fd == lab6.http ||
				  p[i].fd == lab6.hole || p[i].fd == lab6.udp_echo ||
				  p[i].fd == lab6.udp_silent ? &lab6 : &lab4, p[i].fd);
		}
	}
	return true;
}

/* ---- configs ------------------------------------------------------------- */

static struct xlb_service_conf *add_service(struct xlb_config *cfg, const char *name,
					    enum xlb_health_kind kind, uint32_t interval_ms,
					    uint32_t timeout_ms, uint32_t rise, uint32_t fall)
{
	struct xlb_service_conf *s;

	s = realloc(cfg->services, (cfg->n_services + 1) * sizeof(*s));
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	cfg->services = s;
	s = &cfg->services[cfg->n_services++];
	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->proto = kind == XLB_HEALTH_UDP ? IPPROTO_UDP : IPPROTO_TCP;
	s->health = kind;
	s->health_interval_ms = interval_ms;
	s->health_timeout_ms = timeout_ms;
	s->health_rise = rise;
	s->health_fall = fall;
	snprintf(s->health_path, sizeof(s->health_path), "/");
	s->health_status = 200;
	snprintf(s->health_payload, sizeof(s->health_payload), "ping");
	return s;
}

static struct xlb_endpoint ep(int family, uint16_t port)
{
	struct xlb_endpoint e;

	memset(&e, 0, sizeof(e));
	e.family = (uint8_t)family;
	if (family == AF_INET)
		xlb_addr_from_v4(&e.addr, htonl(INADDR_LOOPBACK));
	else
		memcpy(e.addr.b, &in6addr_loopback, 16);
	e.port = htons(port);
	return e;
}

static void add_backend(struct xlb_service_conf *s, int family, uint16_t port)
{
	struct xlb_backend_conf *b;

	b = realloc(s->backends, (s->n_backends + 1) * sizeof(*b));
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	s->backends = b;
	b = &s->backends[s->n_backends++];
	memset(b, 0, sizeof(*b));
	b->ep = ep(family, port);
	b->weight = 1;
}

static void cfg_clear(struct xlb_config *cfg)
{
	for (uint32_t i = 0; i < cfg->n_services; i++)
		free(cfg->services[i].backends);
	free(cfg->services);
	memset(cfg, 0, sizeof(*cfg));
}

static void checker_start(void)
{
	n_events = 0;
	h = xlb_health_create(on_change, &n_events);
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
}

static void checker_stop(void)
{
	xlb_health_destroy(h);
	h = NULL;
	conns_close_all();
}

static struct xlb_health_status status(const char *service, int family, uint16_t port)
{
	struct xlb_health_status st;
	struct xlb_endpoint e = ep(family, port);

	memset(&st, 0, sizeof(st));
	CU_ASSERT_EQUAL(xlb_health_get(h, service, &e, &st), 0);
	return st;
}

static bool is_up(const char *service, int family, uint16_t port)
{
	struct xlb_endpoint e = ep(family, port);

	return xlb_health_is_up(h, service, &e);
}

static int count_events(const char *service, int family, uint16_t port, bool up)
{
	struct xlb_endpoint e = ep(family, port);
	int n = 0;

	for (int i = 0; i < n_events; i++)
		if (!strcmp(events[i].service, service) && events[i].up == up &&
		    events[i].backend.port == e.port && events[i].backend.family == e.family &&
		    xlb_addr_eq(&events[i].backend.addr, &e.addr))
			n++;
	return n;
}

/* ---- predicates for pump() ----------------------------------------------- */

static bool events_at_least(void *arg)
{
	return n_events >= *(int *)arg;
}

static int every_target_checked(void *arg, const struct xlb_health_status *st)
{
	return st->checks < *(uint64_t *)arg;   /* nonzero stops: not yet */
}

static bool all_checked(void *arg)
{
	return xlb_health_walk(h, every_target_checked, arg) == 0;
}

static int any_idle(void *arg, const struct xlb_health_status *st)
{
	(void)arg;
	return !st->in_flight;
}

static bool all_in_flight(void *arg)
{
	(void)arg;
	return xlb_health_walk(h, any_idle, NULL) == 0;
}

struct target_ref {
	const char *service;
	int family;
	uint16_t port;
	uint64_t n;
};

static bool target_checks(void *arg)
{
	struct target_ref *r = arg;

	return status(r->service, r->family, r->port).checks >= r->n;
}

static bool target_in_flight(void *arg)
{
	struct target_ref *r = arg;

	return status(r->service, r->family, r->port).in_flight;
}

/* ---- tests --------------------------------------------------------------- */

/* A listener stays up; a refused port goes down after exactly fall
 * failures, and up again after exactly rise passes once it listens. */
static void tcp_up_down_up(struct lab *l)
{
	struct xlb_config cfg = { 0 };
	struct xlb_service_conf *s;
	struct xlb_health_status st;
	uint64_t five = 5;
	int want;
	uint16_t refused_port;
	int fd;

	/* A refused port of our own, so listen() can revive it. */
	fd = server(l->family, SOCK_STREAM, false, &refused_port);
	CU_ASSERT_FATAL(fd >= 0);
	s = add_service(&cfg, "web", XLB_HEALTH_TCP, 30, 20, 2, 3);
	add_backend(s, l->family, l->tcp_port);
	add_backend(s, l->family, refused_port);
	checker_start();
	CU_ASSERT_EQUAL(xlb_health_configure(h, &cfg), 0);
	CU_ASSERT_EQUAL(xlb_health_count(h), 2);
	/* New targets start up: a restart must not blackhole anything. */
	CU_ASSERT_TRUE(is_up("web", l->family, l->tcp_port));
	CU_ASSERT_TRUE(is_up("web", l->family, refused_port));

	want = 1;
	CU_ASSERT_FATAL(pump(events_at_least, &want, 5000));
	CU_ASSERT_EQUAL(count_events("web", l->family, refused_port, false), 1);
	CU_ASSERT_FALSE(events[0].up);
	CU_ASSERT_EQUAL(events[0].st.consecutive_fail, 3);
	CU_ASSERT_EQUAL(events[0].st.checks, 3);
	CU_ASSERT_EQUAL(events[0].st.failures, 3);
	CU_ASSERT_PTR_NOT_NULL(strstr(events[0].st.last_error, "refused"));
	CU_ASSERT_FALSE(is_up("web", l->family, refused_port));

	/* Let the listener be checked a few more times: it never flaps. */
	CU_ASSERT_FATAL(pump(all_checked, &five, 5000));
	CU_ASSERT_EQUAL(n_events, 1);
	st = status("web", l->family, l->tcp_port);
	CU_ASSERT_TRUE(st.up);
	CU_ASSERT_EQUAL(st.failures, 0);
	CU_ASSERT_EQUAL(st.consecutive_ok, st.checks);
	CU_ASSERT_STRING_EQUAL(st.last_error, "");
	CU_ASSERT_EQUAL(st.kind, XLB_HEALTH_TCP);
	CU_ASSERT_EQUAL(st.port, l->tcp_port);

	/* The backend comes back. */
	CU_ASSERT_EQUAL_FATAL(listen(fd, 64), 0);
	want = 2;
	CU_ASSERT_FATAL(pump(events_at_least, &want, 5000));
	CU_ASSERT_EQUAL(n_events, 2);
	CU_ASSERT_EQUAL(count_events("web", l->family, refused_port, true), 1);
	CU_ASSERT_EQUAL(events[1].st.consecutive_ok, 2);
	CU_ASSERT_EQUAL(events[1].st.consecutive_fail, 0);
	CU_ASSERT_TRUE(is_up("web", l->family, refused_port));

	checker_stop();
	/* Accepted connections were never taken off the backlog: close. */
	close(fd);
	cfg_clear(&cfg);
}

static void test_tcp(void)
{
	tcp_up_down_up(&lab4);
}

struct http_case {
	const char *path;
	bool up;
	const char *error;      /* part of last_error when down */
};

static const struct http_case http_cases[] = {
	{ "/ok", true, NULL },
	{ "/noreason", true, NULL },              /* the reason phrase is optional */
	{ "/split", true, NULL },                 /* status line in two segments */
	{ "/long", true, NULL },                  /* only the start is read */
	{ "/big", true, NULL },                   /* the body is ignored */
	{ "/fail", false, "status 503, expected 200" },
	{ "/missing", false, "status 404" },
	{ "/garbage", false, "not an HTTP status line" },
	{ "/fourdigits", false, "not an HTTP status line" },
	{ "/lowercase", false, "not an HTTP status line" },
	{ "/letters", false, "not an HTTP status line" },
	{ "/noversion", false, "not an HTTP status line" },
	{ "/close", false, "closed before a status line" },
};

#define N_HTTP_CASES (sizeof(http_cases) / sizeof(http_cases[0]))

static void http_table(struct lab *l)
{
	struct xlb_config cfg = { 0 };
	struct xlb_service_conf *s;
	char name[XLB_NAME_MAX];
	char host[64];
	uint64_t four = 4;
	size_t i;

	for (i = 0; i < N_HTTP_CASES; i++) {
		snprintf(name, sizeof(name), "case%zu", i);
		s = add_service(&cfg, name, XLB_HEALTH_HTTP, 30, 20, 2, 2);
		snprintf(s->health_path, sizeof(s->health_path), "%s", http_cases[i].path);
		add_backend(s, l->family, l->http_port);
	}
	/* health_port: the backend's own port refuses, the check port answers. */
	s = add_service(&cfg, "port", XLB_HEALTH_HTTP, 30, 20, 2, 2);
	snprintf(s->health_path, sizeof(s->health_path), "/ok");
	s->health_port = l->http_port;
	add_backend(s, l->family, l->refused_port);

	checker_start();
	last_request[0] = '\0';
	CU_ASSERT_EQUAL(xlb_health_configure(h, &cfg), 0);
	CU_ASSERT_FATAL(pump(all_checked, &four, 8000));

	for (i = 0; i < N_HTTP_CASES; i++) {
		const struct http_case *c = &http_cases[i];
		struct xlb_health_status st;

		snprintf(name, sizeof(name), "case%zu", i);
		st = status(name, l->family, l->http_port);
		if (st.up != c->up)
			fprintf(stderr, "\n  %s: up=%d last_error=\"%s\" ", c->path, st.up,
				st.last_error);
		CU_ASSERT_EQUAL(st.up, c->up);
		CU_ASSERT_EQUAL(count_events(name, l->family, l->http_port, false), c->up ? 0 : 1);
		CU_ASSERT_EQUAL(count_events(name, l->family, l->http_port, true), 0);
		if (c->up) {
			CU_ASSERT_EQUAL(st.failures, 0);
		} else {
			CU_ASSERT_EQUAL(st.failures, st.checks);
			CU_ASSERT_PTR_NOT_NULL(strstr(st.last_error, c->error));
		}
	}
	CU_ASSERT_TRUE(is_up("port", l->family, l->refused_port));
	CU_ASSERT_EQUAL(status("port", l->family, l->refused_port).port, l->http_port);
	CU_ASSERT_EQUAL(status("port", l->family, l->refused_port).failures, 0);

	/* What the backend saw. */
	if (l->family == AF_INET)
		snprintf(host, sizeof(host), "Host: 127.0.0.1:%u\r\n", l->http_port);
	else
		snprintf(host, sizeof(host), "Host: [::1]:%u\r\n", l->http_port);
	CU_ASSERT_EQUAL(strncmp(last_request, "GET /ok HTTP/1.0\r\n", 18), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(last_request, host));
	CU_ASSERT_PTR_NOT_NULL(strstr(last_request, "\r\nUser-Agent: xlb-health\r\n"));
	CU_ASSERT_EQUAL(strlen(last_request) - (size_t)(strstr(last_request, "\r\n\r\n") -
							last_request), 4);

	checker_stop();
	cfg_clear(&cfg);
}

static void test_http(void)
{
	http_table(&lab4);
}

/* An HTTP backend that starts failing and recovers: exactly fall failures
 * to go down, exactly rise passes to come back. */
static void test_http_flap(void)
{
	struct xlb_config cfg = { 0 };
	struct xlb_service_conf *s;
	struct target_ref r = { "api", AF_INET, lab4.http_port, 3 };
	int want;

	s = add_service(&cfg, "api", XLB_HEALTH_HTTP, 25, 20, 3, 2);
	snprintf(s->health_path, sizeof(s->health_path), "/toggle");
	add_backend(s, AF_INET, lab4.http_port);
	toggle_status = 200;
	checker_start();
	CU_ASSERT_EQUAL(xlb_health_configure(h, &cfg), 0);
	CU_ASSERT_FATAL(pump(target_checks, &r, 5000));
	CU_ASSERT_EQUAL(n_events, 0);

	toggle_status = 503;
	want = 1;
	CU_ASSERT_FATAL(pump(events_at_least, &want, 5000));
	CU_ASSERT_FALSE(events[0].up);
	CU_ASSERT_EQUAL(events[0].st.consecutive_fail, 2);
	CU_ASSERT_EQUAL(events[0].st.failures, 2);

	toggle_status = 200;
	want = 2;
	CU_ASSERT_FATAL(pump(events_at_least, &want, 5000));
	CU_ASSERT_TRUE(events[1].up);
	CU_ASSERT_EQUAL(events[1].st.consecutive_ok, 3);
	CU_ASSERT_EQUAL(events[1].st.failures, 2);
	CU_ASSERT_EQUAL(n_events, 2);

	checker_stop();
	cfg_clear(&cfg);
}

/* Passive detection takes a healthy target down; the checks bring it back
 * after rise passes, with one callback. */
static void test_set_down(void)
{
	struct xlb_config cfg = { 0 };
	struct xlb_service_conf *s;
	struct target_ref r = { "web", AF_INET, lab4.tcp_port, 2 };
	struct xlb_endpoint e = ep(AF_INET, lab4.tcp_port);
	struct xlb_endpoint other = ep(AF_INET, lab4.refused_port);
	struct xlb_health_status st;
	int want = 1;

	s = add_service(&cfg, "web", XLB_HEALTH_TCP, 25, 20, 3, 2);
	add_backend(s, AF_INET, lab4.tcp_port);
	checker_start();
	CU_ASSERT_EQUAL(xlb_health_configure(h, &cfg), 0);
	CU_ASSERT_FATAL(pump(target_checks, &r, 5000));
	CU_ASSERT_TRUE(is_up("web", AF_INET, lab4.tcp_port));

	CU_ASSERT_EQUAL(xlb_health_set_down(h, "web", &e, "passive: RST"), 0);
	CU_ASSERT_EQUAL(xlb_health_set_down(h, "web", &other, "passive: RST"), -ENOENT);
	CU_ASSERT_EQUAL(xlb_health_set_down(h, "nope", &e, "passive: RST"), -ENOENT);
	CU_ASSERT_EQUAL(n_events, 0);
	st = status("web", AF_INET, lab4.tcp_port);
	CU_ASSERT_FALSE(st.up);
	CU_ASSERT_EQUAL(st.consecutive_ok, 0);
	CU_ASSERT_STRING_EQUAL(st.last_error, "passive: RST");

	CU_ASSERT_FATAL(pump(events_at_least, &want, 5000));
	CU_ASSERT_TRUE(events[0].up);
	CU_ASSERT_EQUAL(events[0].st.consecutive_ok, 3);
	CU_ASSERT_EQUAL(n_events, 1);

	checker_stop();
	cfg_clear(&cfg);
}

static void udp_cases(struct lab *l)
{
	struct xlb_config cfg = { 0 };
	struct xlb_service_conf *s;
	struct xlb_health_status st;
	uint64_t four = 4;

	s = add_service(&cfg, "dns", XLB_HEALTH_UDP, 30, 20, 2, 2);
	add_backend(s, l->family, l->udp_echo_port);
	add_backend(s, l->family, l->udp_silent_port);
	add_backend(s, l->family, l->udp_refused_port);
	checker_start();
	CU_ASSERT_EQUAL(xlb_health_configure(h, &cfg), 0);
	CU_ASSERT_FATAL(pump(all_checked, &four, 5000));

	st = status("dns", l->family, l->udp_echo_port);
	CU_ASSERT_TRUE(st.up);
	CU_ASSERT_EQUAL(st.failures, 0);
	st = status("dns", l->family, l->udp_silent_port);
	CU_ASSERT_FALSE(st.up);
	CU_ASSERT_PTR_NOT_NULL(strstr(st.last_error, "timeout"));
	/* The ICMP port unreachable ends the check at once, not at the deadline. */
	st = status("dns", l->family, l->udp_refused_port);
	CU_ASSERT_FALSE(st.up);
	CU_ASSERT_STRING_EQUAL(st.last_error, "port unreachable");
	CU_ASSERT_EQUAL(n_events, 2);
	CU_ASSERT_EQUAL(count_events("dns", l->family, l->udp_silent_port, false), 1);
	CU_ASSERT_EQUAL(count_events("dns", l->family, l->udp_refused_port, false), 1);

	checker_stop();
	cfg_clear(&cfg);
}

static void test_udp(void)
{
	udp_cases(&lab4);
}

/* While one check hangs until its deadline, another backend's checks
 * keep running at their own pace. */
static void test_slow_does_not_delay_fast(void)
{
	struct xlb_config cfg = { 0 };
	struct xlb_service_conf *s;
	struct target_ref slow = { "slow", AF_INET, lab4.hole_port, 1 };
	struct xlb_health_status st;
	uint64_t fast_before;

	s = add_service(&cfg, "slow", XLB_HEALTH_HTTP, 1000, 600, 1, 1);
	add_backend(s, AF_INET, lab4.hole_port);
	s = add_service(&cfg, "fast", XLB_HEALTH_TCP, 15, 10, 1, 1);
	add_backend(s, AF_INET, lab4.tcp_port);
	checker_start();
	CU_ASSERT_EQUAL(xlb_health_configure(h, &cfg), 0);

	CU_ASSERT_FATAL(pump(target_in_flight, &slow, 3000));
	fast_before = status("fast", AF_INET, lab4.tcp_port).checks;
	CU_ASSERT_FATAL(pump(target_checks, &slow, 3000));

	st = status("slow", AF_INET, lab4.hole_port);
	CU_ASSERT_FALSE(st.up);
	CU_ASSERT_STRING_EQUAL(st.last_error, "timeout waiting for the status line");
	st = status("fast", AF_INET, lab4.tcp_port);
	CU_ASSERT_TRUE(st.up);
	CU_ASSERT_EQUAL(st.failures, 0);
	/* The slow check was in flight 600 ms; the fast one runs every 15 ms. */
	CU_ASSERT(st.checks >= fast_before + 5);
	CU_ASSERT_EQUAL(n_events, 1);

	checker_stop();
	cfg_clear(&cfg);
}

/* First checks are spread over one interval, not fired together. */
static void test_first_checks_spread(void)
{
	struct xlb_config cfg = { 0 };
	struct xlb_service_conf *s;
	struct xlb_health_status st;
	struct timespec ts;
	uint64_t now, lo = UINT64_MAX, hi = 0;
	const uint64_t interval = 1000 * 1000000ULL;
	unsigned i, n = 200, same = 0;
	uint64_t first = 0;

	s = add_service(&cfg, "many", XLB_HEALTH_TCP, 1000, 500, 2, 2);
	for (i = 0; i < n; i++)
		add_backend(s, AF_INET, (uint16_t)(40000 + i));
	checker_start();
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
	CU_ASSERT_EQUAL(xlb_health_configure(h, &cfg), 0);
	CU_ASSERT_EQUAL(xlb_health_count(h), n);
	for (i = 0; i < n; i++) {
		st = status("many", AF_INET, (uint16_t)(40000 + i));
		CU_ASSERT(st.next_check_ns >= now && st.next_check_ns < now + interval + 100000000ULL);
		CU_ASSERT_EQUAL(st.checks, 0);
		if (i == 0)
			first = st.next_check_ns;
		else if (st.next_check_ns == first)
			same++;
		lo = st.next_check_ns < lo ? st.next_check_ns : lo;
		hi = st.next_check_ns > hi ? st.next_check_ns : hi;
	}
	CU_ASSERT(same < 5);
	CU_ASSERT(hi - lo > interval / 2);

	checker_stop();
	cfg_clear(&cfg);
}

static int walk_collect(void *arg, const struct xlb_health_status *st)
{
	char (*names)[XLB_NAME_MAX + 8] = arg;
	static int i;

	if (!st) {
		i = 0;
		return 0;
	}
	snprintf(names[i++], XLB_NAME_MAX + 8, "%s:%u", st->service, ntohs(st->backend.port));
	return 0;
}

static int walk_stop(void *arg, const struct xlb_health_status *st)
{
	(*(int *)arg)++;
	(void)st;
	return 7;
}

/* A reload keeps what did not change, resets counters of what did (but
 * not its up/down state), starts new backends up, forgets removed ones. */
static void test_reconfigure(void)
{
	struct xlb_config a = { 0 }, b = { 0 };
	struct xlb_service_conf *s;
	struct xlb_health_status before_ref, before_ok, st;
	char names[8][XLB_NAME_MAX + 8];
	uint16_t refused2;
	int want, fd, calls = 0;

	fd = server(AF_INET, SOCK_STREAM, false, &refused2);
	CU_ASSERT_FATAL(fd >= 0);

	s = add_service(&a, "web", XLB_HEALTH_TCP, 30, 20, 2, 2);
	add_backend(s, AF_INET, lab4.tcp_port);
	add_backend(s, AF_INET, lab4.refused_port);
	s = add_service(&a, "changed", XLB_HEALTH_TCP, 30, 20, 2, 2);
	add_backend(s, AF_INET, lab4.refused_port);
	s = add_service(&a, "gone", XLB_HEALTH_TCP, 30, 20, 2, 2);
	add_backend(s, AF_INET, lab4.refused_port);
	s = add_service(&a, "plain", XLB_HEALTH_NONE, 30, 20, 2, 2);
	add_backend(s, AF_INET, lab4.refused_port);

	checker_start();
	CU_ASSERT_EQUAL(xlb_health_configure(h, &a), 0);
	CU_ASSERT_EQUAL(xlb_health_count(h), 4);   /* health = none has no targets */
	CU_ASSERT_TRUE(is_up("plain", AF_INET, lab4.refused_port));
	want = 3;
	CU_ASSERT_FATAL(pump(events_at_least, &want, 5000));
	CU_ASSERT_FALSE(is_up("web", AF_INET, lab4.refused_port));
	CU_ASSERT_FALSE(is_up("changed", AF_INET, lab4.refused_port));
	CU_ASSERT_FALSE(is_up("gone", AF_INET, lab4.refused_port));

	/* The walk: sorted by service then backend, stops when told. */
	walk_collect(names, NULL);
	CU_ASSERT_EQUAL(xlb_health_walk(h, walk_collect, names), 0);
	{
		char w0[32], w1[32], w2[32], w3[32];
		uint16_t p_lo = lab4.tcp_port < lab4.refused_port ? lab4.tcp_port : lab4.refused_port;
		uint16_t p_hi = lab4.tcp_port < lab4.refused_port ? lab4.refused_port : lab4.tcp_port;

		snprintf(w0, sizeof(w0), "changed:%u", lab4.refused_port);
		snprintf(w1, sizeof(w1), "gone:%u", lab4.refused_port);
		snprintf(w2, sizeof(w2), "web:%u", p_lo);
		snprintf(w3, sizeof(w3), "web:%u", p_hi);
		CU_ASSERT_STRING_EQUAL(names[0], w0);
		CU_ASSERT_STRING_EQUAL(names[1], w1);
		CU_ASSERT_STRING_EQUAL(names[2], w2);
		CU_ASSERT_STRING_EQUAL(names[3], w3);
	}
	CU_ASSERT_EQUAL(xlb_health_walk(h, walk_stop, &calls), 7);
	CU_ASSERT_EQUAL(calls, 1);

	before_ref = status("web", AF_INET, lab4.refused_port);
	before_ok = status("web", AF_INET, lab4.tcp_port);

	s = add_service(&b, "web", XLB_HEALTH_TCP, 30, 20, 2, 2);
	add_backend(s, AF_INET, refused2);
	add_backend(s, AF_INET, lab4.refused_port);
	add_backend(s, AF_INET, lab4.tcp_port);
	s = add_service(&b, "changed", XLB_HEALTH_TCP, 30, 20, 2, 3);
	add_backend(s, AF_INET, lab4.refused_port);
	CU_ASSERT_EQUAL(xlb_health_configure(h, &b), 0);
	CU_ASSERT_EQUAL(xlb_health_count(h), 4);
	CU_ASSERT_EQUAL(n_events, 3);          /* no callbacks from a reload */

	st = status("web", AF_INET, lab4.refused_port);
	CU_ASSERT_FALSE(st.up);
	CU_ASSERT(st.checks >= before_ref.checks);
	CU_ASSERT(st.consecutive_fail >= before_ref.consecutive_fail);
	st = status("web", AF_INET, lab4.tcp_port);
	CU_ASSERT_TRUE(st.up);
	CU_ASSERT(st.checks >= before_ok.checks);
	CU_ASSERT(st.checks > 0);
	st = status("web", AF_INET, refused2);
	CU_ASSERT_TRUE(st.up);
	CU_ASSERT_EQUAL(st.checks, 0);
	st = status("changed", AF_INET, lab4.refused_port);
	CU_ASSERT_FALSE(st.up);                /* state kept ... */
	CU_ASSERT_EQUAL(st.checks, 0);         /* ... counters restart */
	{
		struct xlb_endpoint e = ep(AF_INET, lab4.refused_port);

		CU_ASSERT_EQUAL(xlb_health_get(h, "gone", &e, &st), -ENOENT);
		CU_ASSERT_TRUE(xlb_health_is_up(h, "gone", &e));
	}

	/* Only the new dead backend produces an event. */
	want = 4;
	CU_ASSERT_FATAL(pump(events_at_least, &want, 5000));
	CU_ASSERT_EQUAL(count_events("web", AF_INET, refused2, false), 1);
	CU_ASSERT_EQUAL(events[3].st.consecutive_fail, 2);
	{
		uint64_t four = 4;

		CU_ASSERT_FATAL(pump(all_checked, &four, 5000));
	}
	CU_ASSERT_EQUAL(n_events, 4);
	CU_ASSERT_EQUAL(count_events("web", AF_INET, lab4.refused_port, true), 0);
	CU_ASSERT_EQUAL(count_events("changed", AF_INET, lab4.refused_port, true), 0);

	/* No config: no targets, everything is up. */
	CU_ASSERT_EQUAL(xlb_health_configure(h, NULL), 0);
	CU_ASSERT_EQUAL(xlb_health_count(h), 0);
	CU_ASSERT_TRUE(is_up("web", AF_INET, lab4.refused_port));

	checker_stop();
	close(fd);
	cfg_clear(&a);
	cfg_clear(&b);
}

static void test_ipv6(void)
{
	if (!have_ipv6) {
		fprintf(stderr, "(no IPv6 loopback: skipped) ");
		return;
	}
	tcp_up_down_up(&lab6);
	http_table(&lab6);
	udp_cases(&lab6);
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		n++;
	closedir(d);
	return n;
}

/* Destroying the checker with checks in flight closes every socket. */
static void test_destroy_in_flight(void)
{
	struct xlb_config cfg = { 0 };
	struct xlb_service_conf *s;
	int fds_before;

	conns_close_all();
	fds_before = count_fds();
	s = add_service(&cfg, "hole", XLB_HEALTH_HTTP, 100, 80, 2, 2);
	add_backend(s, AF_INET, lab4.hole_port);
	s = add_service(&cfg, "hole2", XLB_HEALTH_HTTP, 100, 80, 2, 2);
	add_backend(s, AF_INET, lab4.hole_port);
	s = add_service(&cfg, "silent", XLB_HEALTH_UDP, 100, 80, 2, 2);
	add_backend(s, AF_INET, lab4.udp_silent_port);
	if (have_ipv6)
		add_backend(s, AF_INET6, lab6.udp_silent_port);
	checker_start();
	CU_ASSERT_EQUAL(xlb_health_configure(h, &cfg), 0);
	CU_ASSERT_FATAL(pump(all_in_flight, NULL, 3000));
	CU_ASSERT(count_fds() > fds_before);
	checker_stop();
	CU_ASSERT_EQUAL(count_fds(), fds_before);
	cfg_clear(&cfg);
}

static int setup(void)
{
	size_t len;

	xlb_log_init("test_health", XLB_LOG_WARN);
	snprintf(long_answer, sizeof(long_answer), "HTTP/1.1 200 %0300d\r\n\r\n", 0);
	len = 32 * 1024;
	big_answer = malloc(len + 1);
	if (!big_answer)
		return -1;
	snprintf(big_answer, len, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", len);
	memset(big_answer + strlen(big_answer), 'b', len - strlen(big_answer));
	big_answer[len] = '\0';
	if (lab_open(&lab4, AF_INET))
		return -1;
	have_ipv6 = lab_open(&lab6, AF_INET6) == 0;
	return 0;
}

static int teardown(void)
{
	conns_close_all();
	lab_close(&lab4);
	lab_close(&lab6);
	free(big_answer);
	return 0;
}

int main(void)
{
	static const struct unit_test tests[] = {
		{ "tcp: down after fall failures, up after rise passes", test_tcp },
		{ "http: status lines that pass and fail, health_port, the request", test_http },
		{ "http: a backend that fails and recovers", test_http_flap },
		{ "set_down: down at once, back after rise passes", test_set_down },
		{ "udp: echo, silence, port unreachable", test_udp },
		{ "a slow backend does not delay a fast one", test_slow_does_not_delay_fast },
		{ "first checks are spread over the interval", test_first_checks_spread },
		{ "reload keeps unchanged targets, walk order", test_reconfigure },
		{ "IPv6 loopback: tcp, http, udp", test_ipv6 },
		{ "destroy with checks in flight closes everything", test_destroy_in_flight },
	};

	return UNIT_RUN("health", setup, teardown, tests);
}
