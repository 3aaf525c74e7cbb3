// SPDX-License-Identifier: GPL-2.0-or-later
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <urcu-qsbr.h>

#include "control.h"
#include "control_internal.h"
#include "log.h"
#include "xlb/ctl_proto.h"

/* Clients served at once. Event followers (-E) may hold at most half the
 * slots (ctl_cmds.c), so commands such as reload always get through. */
#define MAX_CLIENTS 64
/* A client that does not read its output for this long is dropped, so a
 * stuck xlbctl cannot hold a dump's RCU read side open indefinitely. */
#define SEND_TIMEOUT_S 5

struct client {
	struct xlb_control *c;
	int fd;
	pthread_t thread;
	bool used;
	bool done;
};

struct xlb_control {
	struct xlb_control_ctx ctx;
	char path[108];
	int fd;
	pthread_mutex_t clients_lock;
	struct client clients[MAX_CLIENTS];
	volatile int stopping;
};

/* ---- output -------------------------------------------------------------- */

static int send_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int ctl_flush(struct ctl_session *s)
{
	uint8_t hdr[5];
	uint32_t n;
	int err;

	if (s->err || !s->len)
		return s->err;
	hdr[0] = XLB_CTL_STDOUT;
	n = htonl((uint32_t)s->len);
	memcpy(hdr + 1, &n, 4);
	err = send_all(s->fd, hdr, sizeof(hdr));
	if (!err)
		err = send_all(s->fd, s->buf, s->len);
	s->len = 0;
	s->err = err;
	return err;
}

int ctl_out(struct ctl_session *s, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (s->err)
		return s->err;
	for (int tries = 0; tries < 2; tries++) {
		size_t room = sizeof(s->buf) - s->len;

		va_start(ap, fmt);
		n = vsnprintf(s->buf + s->len, room, fmt, ap);
		va_end(ap);
		if (n < 0)
			return -EINVAL;
		if ((size_t)n < room) {
			s->len += (size_t)n;
			return 0;
		}
		if (ctl_flush(s))
			return s->err;
	}
	return -E2BIG;
}

static int send_frame(struct ctl_session *s, uint8_t type, const void *data, uint32_t len)
{
	uint8_t hdr[5];
	uint32_t n = htonl(len);
	int err;

	hdr[0] = type;
	memcpy(hdr + 1, &n, 4);
	err = send_all(s->fd, hdr, sizeof(hdr));
	if (!err && len)
		err = send_all(s->fd, data, len);
	return err;
}

int ctl_err(struct ctl_session *s, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	ctl_flush(s);
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	return send_frame(s, XLB_CTL_STDERR, line, (uint32_t)n);
}

/* ---- requests ------------------------------------------------------------- */

static int read_all(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = recv(fd, p, len, 0);

		if (n == 0)
			return -ECONNRESET;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int read_u32(int fd, uint32_t *v)
{
	int err = read_all(fd, v, 4);

	*v = ntohl(*v);
	return err;
}

/* Read and bound-check one request into argv (NULL-terminated, one
 * allocation each). Returns argc or a negative errno with a message. */
static int read_request(int fd, char **argv, char *err, size_t errlen)
{
	uint32_t magic, argc, total = 8;
	int ret;

	if (read_u32(fd, &magic) || magic != XLB_CTL_MAGIC) {
		snprintf(err, errlen, "malformed request (is xlbctl the same version as xlbd?)");
		return -EPROTO;
	}
	if (read_u32(fd, &argc) || argc > XLB_CTL_MAX_ARGS) {
		snprintf(err, errlen, "malformed request: more than %d arguments",
			 XLB_CTL_MAX_ARGS);
		return -EPROTO;
	}
	for (uint32_t i = 0; i < argc; i++) {
		uint32_t len;

		if (read_u32(fd, &len) || len > XLB_CTL_MAX_ARG ||
		    (total += 4 + len) > XLB_CTL_MAX_REQUEST) {
			snprintf(err, errlen, "malformed request: argument too long");
			ret = -EPROTO;
			goto err;
		}
		argv[i] = malloc(len + 1);
		if (!argv[i]) {
			ret = -ENOMEM;
			snprintf(err, errlen, "out of memory");
			goto err;
		}
		argv[i + 1] = NULL;
		if (read_all(fd, argv[i], len)) {
			snprintf(err, errlen, "malformed request: truncated");
			ret = -EPROTO;
			goto err;
		}
		argv[i][len] = '\0';
		if (strlen(argv[i]) != len) {
			snprintf(err, errlen, "malformed request: NUL byte in an argument");
			ret = -EPROTO;
			goto err;
		}
	}
	argv[argc] = NULL;
	return (int)argc;
err:
	for (uint32_t i = 0; argv[i]; i++) {
		free(argv[i]);
		argv[i] = NULL;
	}
	return ret;
}

static bool peer_is_root(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.uid == 0;
}

static void *client_main(void *arg)
{
	struct client *cl = arg;
	struct ctl_session *s;
	char *argv[XLB_CTL_MAX_ARGS + 1] = { NULL };
	char err[256];
	uint8_t status = 1;
	int argc;

	rcu_register_thread();
	s = calloc(1, sizeof(*s));
	if (!s)
		goto out;
	s->fd = cl->fd;
	s->ctx = &cl->c->ctx;
	s->stopping = &cl->c->stopping;
	if (!peer_is_root(cl->fd)) {
		ctl_err(s, "xlbctl: permission denied: the control socket serves root only\n");
		goto reply;
	}
	argc = read_request(cl->fd, argv, err, sizeof(err));
	if (argc < 0) {
		ctl_err(s, "xlbctl: %s\n", err);
		goto reply;
	}
	status = (uint8_t)ctl_dispatch(s, argc, argv);
	for (int i = 0; i < argc; i++)
		free(argv[i]);
reply:
	ctl_flush(s);
	if (!s->err)
		send_frame(s, XLB_CTL_EXIT, &status, 1);
	free(s);
out:
	rcu_unregister_thread();
	close(cl->fd);
	__atomic_store_n(&cl->done, true, __ATOMIC_RELEASE);
	return NULL;
}

/* Join clients that have finished, so their slots can be reused. */
static void reap(struct xlb_control *c, bool all)
{
	for (int i = 0; i < MAX_CLIENTS; i++) {
		struct client *cl = &c->clients[i];

		if (!cl->used)
			continue;
		if (all && !__atomic_load_n(&cl->done, __ATOMIC_ACQUIRE))
			shutdown(cl->fd, SHUT_RDWR);
		if (all || __atomic_load_n(&cl->done, __ATOMIC_ACQUIRE)) {
			pthread_join(cl->thread, NULL);
			cl->used = false;
		}
	}
}

void xlb_control_accept(struct xlb_control *c)
{
	struct timeval tv = { .tv_sec = SEND_TIMEOUT_S };
	struct client *cl = NULL;
	int fd;

	fd = accept4(c->fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	reap(c, false);
	for (int i = 0; i < MAX_CLIENTS && !cl; i++)
		if (!c->clients[i].used)
			cl = &c->clients[i];
	if (!cl) {
		static const char busy[] = "xlbctl: xlbd is busy: too many clients at once\n";
		uint8_t hdr[5] = { XLB_CTL_STDERR }, x[6] = { XLB_CTL_EXIT, 0, 0, 0, 1, 1 };
		uint32_t n = htonl(sizeof(busy) - 1);

		memcpy(hdr + 1, &n, 4);
		send(fd, hdr, 5, MSG_NOSIGNAL | MSG_DONTWAIT);
		send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		send(fd, x, sizeof(x), MSG_NOSIGNAL | MSG_DONTWAIT);
		close(fd);
		return;
	}
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	/* A request must arrive promptly too: a client that connects and says
	 * nothing does not keep a slot. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	cl->c = c;
	cl->fd = fd;
	cl->done = false;
	cl->used = true;
	if (pthread_create(&cl->thread, NULL, client_main, cl)) {
		cl->used = false;
		close(fd);
	}
}

static int mkdir_parent(const char *path)
{
	char dir[108];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	if (mkdir(dir, 0755) && errno != EEXIST)
		return -errno;
	return 0;
}

/* A socket file left by a daemon that died is replaced; one a live daemon
 * answers on is not. */
static bool socket_is_live(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool live;

	if (fd < 0)
		return false;
	live = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0;
	close(fd);
	return live;
}

struct xlb_control *xlb_control_open(const char *path, const struct xlb_control_ctx *ctx)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct xlb_control *c;
	mode_t old;
	int err;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->ctx = *ctx;
	c->fd = -1;
	pthread_mutex_init(&c->clients_lock, NULL);
	snprintf(c->path, sizeof(c->path), "%s", path);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	err = mkdir_parent(path);
	if (err)
		goto err;
	if (socket_is_live(&sa)) {
		err = -EADDRINUSE;
		goto err;
	}
	unlink(path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (c->fd < 0) {
		err = -errno;
		goto err;
	}
	/* Created 0600 from the start: no window in which others may connect. */
	old = umask(0177);
	err = bind(c->fd, (struct sockaddr *)&sa, sizeof(sa)) ? -errno : 0;
	umask(old);
	if (err)
		goto err;
	if (listen(c->fd, 64)) {
		err = -errno;
		goto err;
	}
	return c;
err:
	if (c->fd >= 0)
		close(c->fd);
	free(c);
	errno = -err;
	return NULL;
}

int xlb_control_fd(const struct xlb_control *c)
{
	return c->fd;
}

void xlb_control_close(struct xlb_control *c)
{
	if (!c)
		return;
	c->stopping = 1;
	close(c->fd);
	reap(c, true);
	unlink(c->path);
	free(c);
}
