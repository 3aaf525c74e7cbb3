/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The route mirror against a real kernel: the test unshares its own network
 * namespace (gone when the process exits), builds a veth pair there with
 * `ip`, and puts the peer end in a second namespace held by a child process
 * (killed with us, PR_SET_PDEATHSIG), so ARP and ND get real answers.
 * Needs root; exits 77 otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <net/if.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <sched.h>

#include <CUnit/Basic.h>
#include <urcu-qsbr.h>

#include "route.h"
#include "unit.h"

static struct xlb_route *rt;
static pid_t peer = -1;

static const uint8_t MAC_XR0[6] = { 0x02, 0, 0, 0, 0, 0x01 };
static const uint8_t MAC_XR1[6] = { 0x02, 0, 0, 0, 0, 0x02 };
static const uint8_t MAC_FE[6] = { 0x02, 0, 0, 0, 0, 0xfe };
static const uint8_t MAC_FD[6] = { 0x02, 0, 0, 0, 0, 0xfd };
static const uint8_t MAC_FC[6] = { 0x02, 0, 0, 0, 0, 0xfc };
static const uint8_t MAC_FB[6] = { 0x02, 0, 0, 0, 0, 0xfb };
static const uint8_t MAC_EE[6] = { 0x02, 0, 0, 0, 0, 0xee };
static const uint8_t MAC_AA[6] = { 0x02, 0, 0, 0, 0, 0xaa };
static const uint8_t MAC_BB[6] = { 0x02, 0, 0, 0, 0, 0xbb };

/* What local_fn reported, in order. */
struct local_event {
	char addr[XLB_ADDRSTRLEN];
	bool add;
};
static struct local_event local_events[256];
static int n_local_events;

static void on_local(const union xlb_addr *addr, uint8_t family, bool add, void *arg)
{
	(void)arg;
	if (n_local_events == (int)(sizeof(local_events) / sizeof(local_events[0])))
		return;
	xlb_addr_ntop(addr, family, local_events[n_local_events].addr, XLB_ADDRSTRLEN);
	local_events[n_local_events++].add = add;
}

static bool local_reported(const char *addr, bool add)
{
	for (int i = 0; i < n_local_events; i++)
		if (strcmp(local_events[i].addr, addr) == 0 && local_events[i].add == add)
			return true;
	return false;
}

static int sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rc = system(cmd);
	if (rc != 0)
		fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
	return rc;
}

/* The first line `cmd` prints, or "" */
static void sh_line(char *out, size_t len, const char *cmd)
{
	FILE *f = popen(cmd, "r");

	out[0] = '\0';
	if (!f)
		return;
	if (!fgets(out, (int)len, f))
		out[0] = '\0';
	pclose(f);
}

static enum xlb_nh_result nexthop(const char *dst, uint8_t mac[6])
{
	union xlb_addr a;
	uint8_t family;

	if (xlb_addr_pton(dst, &a, &family) != 0) {
		CU_FAIL("bad address in test");
		return XLB_NH_UNREACHABLE;
	}
	memset(mac, 0, 6);
	return xlb_route_nexthop(rt, &a, family, mac);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };

	rcu_thread_offline();
	nanosleep(&ts, NULL);
	rcu_thread_online();
}

/* What the control thread does when the netlink fd is readable, until it
 * is not: one call handles a bounded batch. */
static void process_all(void)
{
	struct pollfd pfd = { .fd = xlb_route_fd(rt), .events = POLLIN };
	int i = 0;

	do {
		CU_ASSERT_EQUAL(xlb_route_process(rt), 0);
	} while (poll(&pfd, 1, 0) > 0 && ++i < 1000);
}

/* ---- setup ----------------------------------------------------------- */

/* The peer namespace: a child that unshares and waits to be killed. */
static int start_peer(void)
{
	int p[2];
	char c = 0;

	if (pipe(p) < 0)
		return -1;
	peer = fork();
	if (peer < 0)
		return -1;
	if (peer == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		c = unshare(CLONE_NEWNET) == 0 ? 'y' : 'n';
		if (write(p[1], &c, 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(p[1]);
	if (read(p[0], &c, 1) != 1)
		c = 'n';
	close(p[0]);
	return c == 'y' ? 0 : -1;
}

static void stop_peer(void)
{
	if (peer > 0) {
		kill(peer, SIGKILL);
		waitpid(peer, NULL, 0);
		peer = -1;
	}
}

static int add_neighbours(void)
{
	return sh("ip neigh replace 198.18.0.254 lladdr 02:00:00:00:00:fe dev xr0") ||
	       sh("ip neigh replace 198.18.0.253 lladdr 02:00:00:00:00:fd dev xr0") ||
	       sh("ip neigh replace 198.18.0.252 lladdr 02:00:00:00:00:fb dev xr0") ||
	       sh("ip -6 neigh replace 2001:2::fe lladdr 02:00:00:00:00:fc dev xr0");
}

static int build_lab(void)
{
	return sh("ip link set lo up") ||
	       sh("ip link add xr0 address 02:00:00:00:00:01 type veth peer name xr1 "
		  "address 02:00:00:00:00:02") ||
	       sh("ip link set xr1 netns %d", (int)peer) ||
	       sh("nsenter -t %d -n sh -ec 'ip link set lo up; "
		  "ip addr add 198.18.0.2/24 dev xr1; "
		  "ip -6 addr add 2001:2::2/64 dev xr1 nodad; ip link set xr1 up'", (int)peer) ||
	       sh("ip addr add 198.18.0.1/24 dev xr0") ||
	       sh("ip -6 addr add 2001:2::1/64 dev xr0 nodad") ||
	       sh("ip link set xr0 up") ||
	       add_neighbours() ||
	       sh("ip route add 198.18.1.0/24 via 198.18.0.254") ||
	       sh("ip route add 198.18.0.0/16 via 198.18.0.253") ||
	       sh("ip route add blackhole 198.18.5.0/24") ||
	       sh("ip -6 route add default via 2001:2::fe dev xr0") ||
	       /* A second interface: its routes are not ours to use. */
	       sh("ip link add xr2 type veth peer name xr3") ||
	       sh("ip link set xr2 up") ||
	       sh("ip addr add 198.18.4.1/24 dev xr2") ||
	       sh("ip route add 198.18.6.0/24 dev xr2");
}

/* ---- tests ------------------------------------------------------------ */

static void test_create_bad_ifindex(void)
{
	struct xlb_route *r = xlb_route_create(999999, NULL, NULL);

	CU_ASSERT_PTR_NULL(r);
	CU_ASSERT_EQUAL(errno, ENODEV);
	xlb_route_destroy(r);
}

static void test_if_mac(void)
{
	uint8_t mac[6];

	xlb_route_if_mac(rt, mac);
	CU_ASSERT_EQUAL(memcmp(mac, MAC_XR0, 6), 0);
}

static void test_initial_local_addrs(void)
{
	CU_ASSERT_TRUE(local_reported("198.18.0.1", true));
	CU_ASSERT_TRUE(local_reported("2001:2::1", true));
	CU_ASSERT_TRUE(local_reported("198.18.4.1", true));  /* other interfaces too */
	CU_ASSERT_TRUE(local_reported("127.0.0.1", true));
	CU_ASSERT_FALSE(local_reported("198.18.0.2", true)); /* the peer's, not ours */
}

static const struct {
	const char *dst;
	enum xlb_nh_result res;
	const uint8_t *mac;
	const char *why;
} lookups[] = {
	{ "198.18.0.254", XLB_NH_OK, MAC_FE, "on-link, known neighbour" },
	{ "198.18.1.7", XLB_NH_OK, MAC_FE, "the /24 via .254 beats the /16" },
	{ "198.18.7.1", XLB_NH_OK, MAC_FD, "the /16 via .253" },
	{ "198.18.5.1", XLB_NH_UNREACHABLE, NULL, "blackhole /24 inside the /16" },
	{ "198.18.4.9", XLB_NH_UNREACHABLE, NULL, "connected route of another interface" },
	{ "198.18.6.1", XLB_NH_UNREACHABLE, NULL, "static route through another interface" },
	{ "198.19.0.1", XLB_NH_UNREACHABLE, NULL, "no route, no IPv4 default" },
	{ "2001:2:0:9::1", XLB_NH_OK, MAC_FC, "IPv6 default route" },
	{ "2001:2::fe", XLB_NH_OK, MAC_FC, "IPv6 on-link" },
};

static void test_lookup_table(void)
{
	for (size_t i = 0; i < sizeof(lookups) / sizeof(lookups[0]); i++) {
		uint8_t mac[6];
		enum xlb_nh_result res = nexthop(lookups[i].dst, mac);

		if (res != lookups[i].res)
			fprintf(stderr, "\n  %s (%s): got %d, want %d\n", lookups[i].dst,
				lookups[i].why, res, lookups[i].res);
		CU_ASSERT_EQUAL(res, lookups[i].res);
		if (lookups[i].mac)
			CU_ASSERT_EQUAL(memcmp(mac, lookups[i].mac, 6), 0);
	}
}

/* Process until dst resolves, or give up after a generous deadline (the
 * peer answers in microseconds; the deadline only stops a hang). */
static enum xlb_nh_result wait_resolved(const char *dst, uint8_t mac[6])
{
	enum xlb_nh_result res = XLB_NH_PENDING;

	for (int i = 0; i < 200 && res == XLB_NH_PENDING; i++) {
		process_all();
		res = nexthop(dst, mac);
		if (res == XLB_NH_PENDING)
			sleep_ms(50);
	}
	return res;
}

static void test_resolution_v4(void)
{
	uint8_t mac[6];
	char line[256];

	sh_line(line, sizeof(line), "ip neigh show 198.18.0.2 dev xr0");
	CU_ASSERT_STRING_EQUAL(line, "");
	CU_ASSERT_EQUAL(nexthop("198.18.0.2", mac), XLB_NH_PENDING);
	CU_ASSERT_EQUAL(wait_resolved("198.18.0.2", mac), XLB_NH_OK);
	CU_ASSERT_EQUAL(memcmp(mac, MAC_XR1, 6), 0);
	sh_line(line, sizeof(line), "ip neigh show 198.18.0.2 dev xr0");
	CU_ASSERT_PTR_NOT_NULL(strstr(line, "02:00:00:00:00:02"));
}

static void test_resolution_v6(void)
{
	uint8_t mac[6];

	CU_ASSERT_EQUAL(nexthop("2001:2::2", mac), XLB_NH_PENDING);
	CU_ASSERT_EQUAL(wait_resolved("2001:2::2", mac), XLB_NH_OK);
	CU_ASSERT_EQUAL(memcmp(mac, MAC_XR1, 6), 0);
}

/* Nobody answers: the kernel must still have been asked (INCOMPLETE or
 * FAILED), and the address stays pending. */
static void test_resolution_unanswered(void)
{
	uint8_t mac[6];
	char line[256];

	CU_ASSERT_EQUAL(nexthop("198.18.0.77", mac), XLB_NH_PENDING);
	CU_ASSERT_EQUAL(nexthop("198.18.0.77", mac), XLB_NH_PENDING);
	process_all();
	sh_line(line, sizeof(line), "ip neigh show 198.18.0.77 dev xr0");
	CU_ASSERT_TRUE(strstr(line, "INCOMPLETE") || strstr(line, "FAILED"));
	CU_ASSERT_EQUAL(nexthop("198.18.0.77", mac), XLB_NH_PENDING);
}

static int count_lines(const char *cmd)
{
	char line[256];
	int n = 0;
	FILE *f = popen(cmd, "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		n++;
	pclose(f);
	return n;
}

/* More unknown neighbours at once than the request queue holds: none may
 * be forgotten, later packets ask again for the ones that did not fit. */
static void test_resolution_burst(void)
{
	enum { N = 400 };  /* over the queue (256), under gc_thresh2 (512) */
	int asked = 0;

	for (int round = 0; round < 200 && asked < N; round++) {
		for (int i = 0; i < N; i++) {
			char dst[64];
			uint8_t mac[6];

			snprintf(dst, sizeof(dst), "2001:2::1:%x", i);
			CU_ASSERT_EQUAL(nexthop(dst, mac), XLB_NH_PENDING);
		}
		process_all();
		asked = count_lines("ip -6 neigh show dev xr0 | grep '^2001:2::1:'");
		if (asked < N)
			sleep_ms(50);
	}
	if (asked != N)
		fprintf(stderr, "\n  %d of %d neighbours asked for\n", asked, N);
	CU_ASSERT_EQUAL(asked, N);
}

static void test_route_change(void)
{
	uint32_t gen = xlb_route_gen(rt);
	uint8_t mac[6];

	CU_ASSERT_EQUAL_FATAL(sh("ip route replace 198.18.1.0/24 via 198.18.0.252"), 0);
	/* Not seen until the control thread processes the notification. */
	CU_ASSERT_EQUAL(nexthop("198.18.1.7", mac), XLB_NH_OK);
	CU_ASSERT_EQUAL(memcmp(mac, MAC_FE, 6), 0);
	process_all();
	CU_ASSERT_NOT_EQUAL(xlb_route_gen(rt), gen);
	CU_ASSERT_EQUAL(nexthop("198.18.1.7", mac), XLB_NH_OK);
	CU_ASSERT_EQUAL(memcmp(mac, MAC_FB, 6), 0);

	/* Deleted: the /16 takes over. */
	CU_ASSERT_EQUAL_FATAL(sh("ip route del 198.18.1.0/24"), 0);
	process_all();
	CU_ASSERT_EQUAL(nexthop("198.18.1.7", mac), XLB_NH_OK);
	CU_ASSERT_EQUAL(memcmp(mac, MAC_FD, 6), 0);

	/* A new IPv4 default route. */
	CU_ASSERT_EQUAL_FATAL(sh("ip route add default via 198.18.0.254"), 0);
	process_all();
	CU_ASSERT_EQUAL(nexthop("198.19.0.1", mac), XLB_NH_OK);
	CU_ASSERT_EQUAL(memcmp(mac, MAC_FE, 6), 0);
	CU_ASSERT_EQUAL_FATAL(sh("ip route del default via 198.18.0.254"), 0);
	process_all();
	CU_ASSERT_EQUAL(nexthop("198.19.0.1", mac), XLB_NH_UNREACHABLE);
}

static void test_neigh_change(void)
{
	uint32_t gen = xlb_route_gen(rt);
	uint8_t mac[6];

	CU_ASSERT_EQUAL_FATAL(sh("ip neigh replace 198.18.0.254 lladdr 02:00:00:00:00:ee "
				 "dev xr0"), 0);
	process_all();
	CU_ASSERT_NOT_EQUAL(xlb_route_gen(rt), gen);
	CU_ASSERT_EQUAL(nexthop("198.18.0.254", mac), XLB_NH_OK);
	CU_ASSERT_EQUAL(memcmp(mac, MAC_EE, 6), 0);

	gen = xlb_route_gen(rt);
	CU_ASSERT_EQUAL_FATAL(sh("ip neigh del 198.18.0.254 dev xr0"), 0);
	process_all();
	CU_ASSERT_NOT_EQUAL(xlb_route_gen(rt), gen);
	CU_ASSERT_EQUAL(nexthop("198.18.0.254", mac), XLB_NH_PENDING);

	CU_ASSERT_EQUAL_FATAL(sh("ip neigh replace 198.18.0.254 lladdr 02:00:00:00:00:fe "
				 "dev xr0"), 0);
	process_all();
	CU_ASSERT_EQUAL(nexthop("198.18.0.254", mac), XLB_NH_OK);
	CU_ASSERT_EQUAL(memcmp(mac, MAC_FE, 6), 0);
}

static void test_static(void)
{
	union xlb_addr gw, backend;
	uint8_t family, mac[6];
	uint32_t gen = xlb_route_gen(rt);

	CU_ASSERT_EQUAL_FATAL(xlb_addr_pton("198.18.0.253", &gw, &family), 0);
	CU_ASSERT_EQUAL(xlb_route_set_static(rt, &gw, family, MAC_AA), 0);
	CU_ASSERT_NOT_EQUAL(xlb_route_gen(rt), gen);
	/* The gateway's static MAC beats its neighbour entry. */
	CU_ASSERT_EQUAL(nexthop("198.18.7.1", mac), XLB_NH_OK);
	CU_ASSERT_EQUAL(memcmp(mac, MAC_AA, 6), 0);

	/* A backend's own static MAC needs no route at all. */
	CU_ASSERT_EQUAL_FATAL(xlb_addr_pton("2001:2:ff::9", &backend, &family), 0);
	CU_ASSERT_EQUAL(xlb_route_set_static(rt, &backend, family, MAC_BB), 0);
	CU_ASSERT_EQUAL(nexthop("2001:2:ff::9", mac), XLB_NH_OK);
	CU_ASSERT_EQUAL(memcmp(mac, MAC_BB, 6), 0);
	CU_ASSERT_EQUAL(xlb_route_set_static(rt, &backend, 7, MAC_BB), -EINVAL);

	gen = xlb_route_gen(rt);
	xlb_route_clear_static(rt);
	CU_ASSERT_NOT_EQUAL(xlb_route_gen(rt), gen);
	CU_ASSERT_EQUAL(nexthop("198.18.7.1", mac), XLB_NH_OK);
	CU_ASSERT_EQUAL(memcmp(mac, MAC_FD, 6), 0);
	CU_ASSERT_EQUAL(nexthop("2001:2:ff::9", mac), XLB_NH_OK);  /* v6 default */
	CU_ASSERT_EQUAL(memcmp(mac, MAC_FC, 6), 0);
}

static void test_local_addr_events(void)
{
	CU_ASSERT_EQUAL_FATAL(sh("ip addr add 198.18.0.7/24 dev xr0"), 0);
	CU_ASSERT_EQUAL_FATAL(sh("ip -6 addr add 2001:2::7/64 dev xr0 nodad"), 0);
	/* IPv6 announces the address from its DAD work, even with nodad. */
	for (int i = 0; i < 200 && !local_reported("2001:2::7", true); i++) {
		process_all();
		if (!local_reported("2001:2::7", true))
			sleep_ms(50);
	}
	CU_ASSERT_TRUE(local_reported("198.18.0.7", true));
	CU_ASSERT_TRUE(local_reported("2001:2::7", true));
	CU_ASSERT_FALSE(local_reported("198.18.0.7", false));

	CU_ASSERT_EQUAL_FATAL(sh("ip addr del 198.18.0.7/24 dev xr0"), 0);
	process_all();
	CU_ASSERT_TRUE(local_reported("198.18.0.7", false));
	CU_ASSERT_FALSE(local_reported("2001:2::7", false));
}

static void test_link_events(void)
{
	uint32_t gen;
	uint8_t mac[6];

	/* IPv4 drops xr2's static route with the link and says nothing about
	 * it; if we kept it, 198.18.6.0/24 would still hide the /16. */
	CU_ASSERT_EQUAL_FATAL(sh("ip link set xr2 down"), 0);
	process_all();
	CU_ASSERT_EQUAL(nexthop("198.18.6.1", mac), XLB_NH_OK);
	CU_ASSERT_EQUAL(memcmp(mac, MAC_FD, 6), 0);

	CU_ASSERT_EQUAL_FATAL(sh("ip link del xr2"), 0);
	process_all();
	CU_ASSERT_EQUAL(nexthop("198.18.4.9", mac), XLB_NH_OK);
	CU_ASSERT_EQUAL(memcmp(mac, MAC_FD, 6), 0);
	CU_ASSERT_TRUE(local_reported("198.18.4.1", false));

	/* A new MAC: ours changes, and the kernel flushes the interface's
	 * neighbours, permanent ones included; so must we. */
	gen = xlb_route_gen(rt);
	CU_ASSERT_EQUAL_FATAL(sh("ip link set xr0 address 02:00:00:00:00:11"), 0);
	process_all();
	CU_ASSERT_NOT_EQUAL(xlb_route_gen(rt), gen);
	xlb_route_if_mac(rt, mac);
	CU_ASSERT_EQUAL(mac[5], 0x11);
	CU_ASSERT_EQUAL(nexthop("198.18.0.254", mac), XLB_NH_PENDING);

	CU_ASSERT_EQUAL_FATAL(sh("ip link set xr0 address 02:00:00:00:00:01"), 0);
	CU_ASSERT_EQUAL_FATAL(add_neighbours(), 0);
	process_all();
	xlb_route_if_mac(rt, mac);
	CU_ASSERT_EQUAL(memcmp(mac, MAC_XR0, 6), 0);
	CU_ASSERT_EQUAL(nexthop("198.18.0.254", mac), XLB_NH_OK);
	CU_ASSERT_EQUAL(memcmp(mac, MAC_FE, 6), 0);
}

/* Netlink drops on our notification socket, from /proc/net/netlink. */
static long socket_drops(int fd)
{
	struct stat st;
	char line[512];
	long drops = -1;
	FILE *f;

	if (fstat(fd, &st) < 0)
		return -1;
	f = fopen("/proc/net/netlink", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long sk, inode;
		int proto, pid, locks;
		unsigned int groups;
		long rmem, wmem, dump, d;

		/* sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode */
		if (sscanf(line, "%lx %d %d %x %ld %ld %ld %d %ld %lu", &sk, &proto, &pid,
			   &groups, &rmem, &wmem, &dump, &locks, &d, &inode) == 10 &&
		    inode == (unsigned long)st.st_ino)
			drops = d;
	}
	fclose(f);
	return drops;
}

/*
 * Overrun the notification socket with route churn, then change things
 * once more: those last notifications are the ones the kernel drops, so
 * only a full resync gets them right.
 */
static void test_overrun_resync(void)
{
	char path[] = "/tmp/xlb-route-batch-XXXXXX";
	uint8_t mac[6];
	long drops = 0;
	FILE *f;
	int fd;

	for (int round = 0; round < 8 && drops <= 0; round++) {
		fd = mkstemp(path);
		CU_ASSERT_FATAL(fd >= 0);
		f = fdopen(fd, "w");
		CU_ASSERT_FATAL(f != NULL);
		for (int i = 0; i < 20000; i++)
			fprintf(f, "route replace 198.18.1.0/24 via 198.18.0.%d\n",
				i % 2 ? 254 : 253);
		fclose(f);
		CU_ASSERT_EQUAL(sh("ip -batch %s", path), 0);
		unlink(path);
		strcpy(path, "/tmp/xlb-route-batch-XXXXXX");
		drops = socket_drops(xlb_route_fd(rt));
	}
	CU_ASSERT_FATAL(drops > 0);  /* otherwise this test proves nothing */

	CU_ASSERT_EQUAL_FATAL(sh("ip route replace 198.18.1.0/24 via 198.18.0.252"), 0);
	CU_ASSERT_EQUAL_FATAL(sh("ip route add 198.18.2.0/24 via 198.18.0.254"), 0);
	CU_ASSERT_EQUAL_FATAL(sh("ip addr add 198.18.0.8/24 dev xr0"), 0);
	CU_ASSERT_EQUAL_FATAL(sh("ip neigh replace 198.18.0.253 lladdr 02:00:00:00:00:ee "
				 "dev xr0"), 0);

	process_all();
	CU_ASSERT_EQUAL(nexthop("198.18.1.7", mac), XLB_NH_OK);
	CU_ASSERT_EQUAL(memcmp(mac, MAC_FB, 6), 0);
	CU_ASSERT_EQUAL(nexthop("198.18.2.7", mac), XLB_NH_OK);
	CU_ASSERT_EQUAL(memcmp(mac, MAC_FE, 6), 0);
	CU_ASSERT_EQUAL(nexthop("198.18.7.1", mac), XLB_NH_OK);
	CU_ASSERT_EQUAL(memcmp(mac, MAC_EE, 6), 0);
	CU_ASSERT_TRUE(local_reported("198.18.0.8", true));
}

/* ---- main ------------------------------------------------------------- */

int main(void)
{
	static const struct unit_test tests[] = {
		{ "create fails on a missing interface", test_create_bad_ifindex },
		{ "interface MAC", test_if_mac },
		{ "local addresses at start", test_initial_local_addrs },
		{ "longest-prefix lookups", test_lookup_table },
		{ "IPv4 resolution (ARP)", test_resolution_v4 },
		{ "IPv6 resolution (ND)", test_resolution_v6 },
		{ "unanswered resolution", test_resolution_unanswered },
		{ "burst of resolutions", test_resolution_burst },
		{ "route changes", test_route_change },
		{ "neighbour changes", test_neigh_change },
		{ "static MACs", test_static },
		{ "local address events", test_local_addr_events },
		{ "link events", test_link_events },
		{ "overrun and resync", test_overrun_resync },
	};
	int status;
	int ifindex;

	if (geteuid() != 0) {
		fprintf(stderr, "test_route: needs root, skipped\n");
		return 77;
	}
	/* Fork before liburcu starts threads. */
	if (start_peer() < 0 || unshare(CLONE_NEWNET) < 0) {
		fprintf(stderr, "test_route: cannot create network namespaces, skipped\n");
		stop_peer();
		return 77;
	}
	if (build_lab()) {
		stop_peer();
		return 1;
	}
	ifindex = (int)if_nametoindex("xr0");

	rcu_register_thread();
	rt = xlb_route_create(ifindex, on_local, NULL);
	if (!rt) {
		perror("xlb_route_create");
		rcu_unregister_thread();
		stop_peer();
		return 1;
	}

	status = UNIT_RUN("route", NULL, NULL, tests);

	xlb_route_destroy(rt);
	rcu_unregister_thread();
	stop_peer();
	return status;
}
