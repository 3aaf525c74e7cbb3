// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * xlbctl: xlb's stats and control CLI, in conntrack-tools' language.
 *
 * A thin client: it sends its command line to xlbd's control socket and
 * copies the daemon's answer to stdout and stderr, exiting with the status
 * the daemon gives. `top` is the one command with a loop of its own.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "xlb/ctl_proto.h"

static const char usage_text[] =
	"Usage: xlbctl [--socket PATH] COMMAND [OPTIONS]\n"
	"\n"
	"Connection tracking (as conntrack(8)):\n"
	"  -L, --dump [FILTER] [-o extended|json]  list flows\n"
	"  -C, --count                             count flows\n"
	"  -S, --stats                             per-worker statistics\n"
	"  -E, --event [FILTER] [-o timestamp]     follow NEW, UPDATE, DESTROY events\n"
	"  -D, --delete FILTER                     delete the matching flows\n"
	"  -F, --flush                             delete every flow\n"
	"\n"
	"Filters:\n"
	"  -p, --proto PROTO        tcp, udp, icmp, icmpv6 or a number\n"
	"  -s, --orig-src ADDR      -d, --orig-dst ADDR\n"
	"      --sport PORT             --dport PORT\n"
	"  -r, --reply-src ADDR     -q, --reply-dst ADDR\n"
	"      --reply-port-src PORT    --reply-port-dst PORT\n"
	"  -f, --family ipv4|ipv6   --state STATE (TCP state, e.g. ESTABLISHED)\n"
	"  -m, --mark MARK[/MASK]   -w, --zone ZONE\n"
	"      --backend ADDR[:PORT]  flows sent to a backend\n"
	"\n"
	"Services and backends:\n"
	"  service [NAME]                                  services, backends, rates\n"
	"  backend SERVICE ADDR:PORT weight N|drain|up|down change a backend at run time\n"
	"  reload                                          re-read the configuration\n"
	"  top [-n COUNT] [-i SECONDS]                     live view, refreshed\n"
	"\n"
	"Options:\n"
	"  --socket PATH   control socket (default " XLB_CTL_DEFAULT_SOCKET ")\n"
	"  -h, --help      this text; COMMAND --help for one command\n"
	"\n"
	"Exit status: 0 on success, 1 on error (the message on stderr).\n";

static int connect_socket(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "xlbctl: socket path too long: %s\n", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		fprintf(stderr, "xlbctl: cannot connect to xlbd at %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int read_all(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);

		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int send_request(int fd, int argc, char **argv)
{
	uint32_t v;
	size_t total = 8;

	if (argc > XLB_CTL_MAX_ARGS) {
		fprintf(stderr, "xlbctl: too many arguments (at most %d)\n", XLB_CTL_MAX_ARGS);
		return -1;
	}
	v = htonl(XLB_CTL_MAGIC);
	if (write_all(fd, &v, 4))
		return -1;
	v = htonl((uint32_t)argc);
	if (write_all(fd, &v, 4))
		return -1;
	for (int i = 0; i < argc; i++) {
		size_t len = strlen(argv[i]);

		total += 4 + len;
		if (len > XLB_CTL_MAX_ARG || total > XLB_CTL_MAX_REQUEST) {
			fprintf(stderr, "xlbctl: argument too long: %.40s...\n", argv[i]);
			return -1;
		}
		v = htonl((uint32_t)len);
		if (write_all(fd, &v, 4) || write_all(fd, argv[i], len))
			return -1;
	}
	return 0;
}

/* Copy the daemon's frames to stdout/stderr; returns its exit status. */
static int relay(int fd)
{
	static char buf[65536];

	for (;;) {
		uint8_t hdr[5];
		uint32_t len;

		if (read_all(fd, hdr, sizeof(hdr))) {
			fprintf(stderr, "xlbctl: xlbd closed the connection\n");
			return 1;
		}
		memcpy(&len, hdr + 1, 4);
		len = ntohl(len);
		if (len > sizeof(buf)) {
			fprintf(stderr, "xlbctl: malformed reply from xlbd\n");
			return 1;
		}
		if (read_all(fd, buf, len)) {
			fprintf(stderr, "xlbctl: xlbd closed the connection\n");
			return 1;
		}
		switch (hdr[0]) {
		case XLB_CTL_STDOUT:
			if (fwrite(buf, 1, len, stdout) != len)
				return 1;
			if (fflush(stdout))
				return 1;
			break;
		case XLB_CTL_STDERR:
			fwrite(buf, 1, len, stderr);
			break;
		case XLB_CTL_EXIT:
			return len == 1 ? buf[0] : 1;
		default:
			fprintf(stderr, "xlbctl: malformed reply from xlbd\n");
			return 1;
		}
	}
}

static int run(const char *path, int argc, char **argv)
{
	int fd = connect_socket(path);
	int status;

	if (fd < 0)
		return 1;
	/* Even when sending fails, read: xlbd may have refused the request
	 * (a non-root peer) and said why before closing. */
	if (send_request(fd, argc, argv) && errno != EPIPE && errno != ECONNRESET) {
		close(fd);
		return 1;
	}
	status = relay(fd);
	close(fd);
	return status;
}

/* top: services and statistics redrawn every interval, COUNT times or
 * until interrupted. The daemon computes the rates. */
static int top(const char *path, int argc, char **argv)
{
	char *svc_argv[] = { "service", NULL };
	char *stats_argv[] = { "-S", NULL };
	double interval = 1.0;
	long count = -1;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-n") && i + 1 < argc) {
			count = strtol(argv[++i], NULL, 10);
		} else if (!strcmp(argv[i], "-i") && i + 1 < argc) {
			interval = strtod(argv[++i], NULL);
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			printf("Usage: xlbctl top [-n COUNT] [-i SECONDS]\n"
			       "Live view of services, backends and per-worker statistics,\n"
			       "refreshed every SECONDS (default 1), COUNT times (default: until Ctrl-C).\n");
			return 0;
		} else {
			fprintf(stderr, "xlbctl: top: unknown option %s (try top --help)\n", argv[i]);
			return 1;
		}
	}
	if (interval < 0.1 || interval > 3600) {
		fprintf(stderr, "xlbctl: top: -i must be between 0.1 and 3600 seconds\n");
		return 1;
	}
	for (long n = 0; count < 0 || n < count; n++) {
		struct timespec ts = { (time_t)interval,
				       (long)((interval - (time_t)interval) * 1e9) };
		time_t now = time(NULL);

		if (isatty(STDOUT_FILENO))
			printf("\033[H\033[2J");
		printf("xlb top - %s", ctime(&now));
		fflush(stdout);
		if (run(path, 1, svc_argv) || run(path, 1, stats_argv))
			return 1;
		if (count < 0 || n + 1 < count)
			nanosleep(&ts, NULL);
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *path = XLB_CTL_DEFAULT_SOCKET;
	int i = 1;

	signal(SIGPIPE, SIG_IGN);
	while (i < argc) {
		if (!strcmp(argv[i], "--socket") && i + 1 < argc) {
			path = argv[i + 1];
			i += 2;
		} else if (!strncmp(argv[i], "--socket=", 9)) {
			path = argv[i] + 9;
			i++;
		} else {
			break;
		}
	}
	if (i >= argc) {
		fputs(usage_text, stderr);
		return 1;
	}
	if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
		fputs(usage_text, stdout);
		return 0;
	}
	if (!strcmp(argv[i], "top"))
		return top(path, argc - i, argv + i);
	return run(path, argc - i, argv + i);
}
