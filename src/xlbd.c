// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * xlbd: the daemon. The main thread is the control plane: it loads the
 * config, attaches the XDP program, starts one worker per queue, then
 * serves signals (SIGHUP reload, SIGINT/SIGTERM stop), netlink
 * notifications and the conntrack garbage collector from one epoll loop.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <urcu-qsbr.h>

#include "config.h"
#include "control.h"
#include "events.h"
#include "flow.h"
#include "health.h"
#include "log.h"
#include "purge.h"
#include "metrics.h"
#include "route.h"
#include "service.h"
#include "worker.h"
#include "xdp.h"
#include "xsk.h"

#define TICK_MS 100
/* GC pacing. Expired entries never match and are taken first by early
 * drop, so collecting them is only about memory: a full pass every ~10 s
 * (a hundredth of the buckets per tick) is enough. A slice costs per
 * bucket (one cache line of 7 slots), whatever the table holds; each tick
 * also stops after GC_SLICE_NS so a huge table never holds the core a
 * worker may share for long. */
#define GC_CHUNK 256
#define GC_SLICE_NS 2000000ull

struct xlbd {
	const char *config_path;
	struct xlb_config *cfg;          /* the running one */
	struct xlb_dataplane dp;
	struct xlb_xdp *xdp;
	struct xlb_worker *workers;
	uint32_t n_workers;
	int ifindex;
	int epfd, sigfd, timerfd;
	bool verbose;
	struct xlb_control *control;
	struct xlb_purge *purge;
	struct xlb_health *health;
	struct xlb_metrics *metrics;
	/* Serialises reloads and backend changes (SIGHUP, xlbctl). */
	pthread_mutex_t lock;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: xlbd [-t] [-v] -c FILE\n"
		"\n"
		"The xlb load balancer daemon. Runs in the foreground and logs to stderr.\n"
		"\n"
		"  -c, --config FILE  the INI configuration (see conf/xlb.ini)\n"
		"  -t, --test         validate the configuration and exit: 0 valid, 1 invalid;\n"
		"                     touches no interface\n"
		"  -v, --verbose      debug logging and a statistics line every 10 s\n"
		"  -h, --help         this text\n"
		"  -V, --version      print the version\n"
		"\n"
		"Signals: SIGHUP reloads the configuration (an invalid one is rejected and the\n"
		"running one stays); SIGINT and SIGTERM detach, free everything and exit 0.\n");
}

/* Receive queues of the interface: ethtool channels, or the count of
 * queues/rx-* in sysfs for drivers without get_channels. */
static int count_rx_queues(const char *ifname)
{
	struct ethtool_channels ch = { .cmd = ETHTOOL_GCHANNELS };
	struct ifreq ifr = { 0 };
	char path[128];
	int fd, n;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd >= 0) {
		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
		ifr.ifr_data = (void *)&ch;
		n = ioctl(fd, SIOCETHTOOL, &ifr);
		close(fd);
		if (n == 0 && ch.rx_count + ch.combined_count > 0)
			return (int)(ch.rx_count + ch.combined_count);
	}
	for (n = 0; n < XLB_MAX_QUEUES; n++) {
		snprintf(path, sizeof(path), "/sys/class/net/%s/queues/rx-%d", ifname, n);
		if (access(path, F_OK))
			break;
	}
	return n ? n : 1;
}

/*
 * Generic (skb) XDP runs after GRO and gets packets as the stack has them:
 * GRO or LRO on the interface, and on a veth the peer's TSO/GSO (veth only
 * stops offering those to the peer of a native XDP program), hand the
 * program TCP segments of up to 64 KiB, which no AF_XDP frame holds: the
 * kernel drops them (the sockets' rx_dropped) and bulk transfers stall.
 * Say so once, naming the interface and what is on; nothing is changed
 * behind the operator's back.
 */
static void warn_generic_offloads(const char *ifname)
{
	struct ethtool_value gro = { .cmd = ETHTOOL_GGRO }, flags = { .cmd = ETHTOOL_GFLAGS };
	struct ethtool_drvinfo drv = { .cmd = ETHTOOL_GDRVINFO };
	struct ifreq ifr = { 0 };
	bool is_gro = false, is_lro = false, is_veth = false;
	char on[64], fix[160];
	int fd;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ifr.ifr_data = (void *)&gro;
	is_gro = ioctl(fd, SIOCETHTOOL, &ifr) == 0 && gro.data;
	ifr.ifr_data = (void *)&flags;
	is_lro = ioctl(fd, SIOCETHTOOL, &ifr) == 0 && (flags.data & ETH_FLAG_LRO);
	ifr.ifr_data = (void *)&drv;
	is_veth = ioctl(fd, SIOCETHTOOL, &ifr) == 0 && !strcmp(drv.driver, "veth");
	close(fd);
	if (!is_gro && !is_lro && !is_veth)
		return;
	snprintf(on, sizeof(on), "%s%s%s%s%s", is_gro ? "GRO" : "",
		 is_gro && (is_lro || is_veth) ? ", " : "", is_lro ? "LRO" : "",
		 is_lro && is_veth ? ", " : "", is_veth ? "the veth peer's TSO/GSO" : "");
	snprintf(fix, sizeof(fix), "%s%s%s%s%s", is_gro || is_lro ? "ethtool -K " : "",
		 is_gro || is_lro ? ifname : "", is_gro ? " gro off" : "", is_lro ? " lro off" : "",
		 is_veth ? (is_gro || is_lro ? "; on the peer: ethtool -K PEER tso off gso off" :
			    "on the peer: ethtool -K PEER tso off gso off") : "");
	xlb_warn("%s: XDP runs in generic mode, on packets as the stack has them: with %s, TCP "
		 "segments over %u bytes reach it and are dropped (AF_XDP rx_dropped), so bulk "
		 "transfers stall; use xdp_mode = native where the driver has it, or %s",
		 ifname, on, XLB_XSK_FRAME_SIZE - 256, fix);
}

/* A flow left the table: its backend's counters take what it carried. */
static void on_flow_destroy(struct xlb_flow *f, void *arg)
{
	struct xlb_backend_stats *bs = xlb_backend_stats(f->backend_id);

	(void)arg;
	if (xlb_events_wanted())
		xlb_events_emit(XLB_CT_EVENT_DESTROY, f);
	if (!bs)
		return;
	__atomic_fetch_sub(&bs->active_flows, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&bs->closed_packets, f->counter[0].packets + f->counter[1].packets,
			   __ATOMIC_RELAXED);
	__atomic_fetch_add(&bs->closed_bytes, f->counter[0].bytes + f->counter[1].bytes,
			   __ATOMIC_RELAXED);
}

static void on_local_addr(const union xlb_addr *addr, uint8_t family, bool add, void *arg)
{
	struct xlbd *d = arg;
	char buf[XLB_ADDRSTRLEN];
	int err;

	err = xlb_xdp_set_local(d->xdp, addr, add);
	if (err)
		xlb_warn("cannot %s local address %s in the XDP map: %s", add ? "add" : "remove",
			 xlb_addr_ntop(addr, family, buf, sizeof(buf)), strerror(-err));
	else
		xlb_dbg("local address %s %s", xlb_addr_ntop(addr, family, buf, sizeof(buf)),
			add ? "added" : "removed");
}

static void apply_static_macs(struct xlbd *d, const struct xlb_config *cfg)
{
	xlb_route_clear_static(d->dp.route);
	for (uint32_t i = 0; i < cfg->n_services; i++) {
		const struct xlb_service_conf *s = &cfg->services[i];

		for (uint32_t j = 0; j < s->n_backends; j++)
			if (s->backends[j].has_mac)
				xlb_route_set_static(d->dp.route, &s->backends[j].ep.addr,
						     s->backends[j].ep.family, s->backends[j].mac);
	}
}

static bool same_metrics(const struct xlb_global_conf *a, const struct xlb_global_conf *b)
{
	if (a->metrics_enabled != b->metrics_enabled)
		return false;
	return !a->metrics_enabled ||
	       (a->metrics.family == b->metrics.family && a->metrics.port == b->metrics.port &&
		xlb_addr_eq(&a->metrics.addr, &b->metrics.addr));
}

static bool same_queues(const struct xlb_global_conf *a, const struct xlb_global_conf *b)
{
	if (a->all_queues != b->all_queues)
		return false;
	if (a->all_queues)
		return true;
	return a->n_queues == b->n_queues &&
	       !memcmp(a->queues, b->queues, a->n_queues * sizeof(a->queues[0]));
}

static void end_flows(struct xlbd *d, const struct xlb_service *svc, const struct xlb_backend *b,
		      const char *why)
{
	struct xlb_purge_result res;
	char ep[64];

	xlb_purge_backend(d->purge, d->dp.ct, b->slot, svc->on_backend_down, &res);
	xlb_endpoint_ntop(&b->ep, ep, sizeof(ep));
	xlb_info("service %s backend %s %s: %u flows deleted (%u reset), %u left to time out", svc->name,
		 ep, why, res.deleted, res.reset, res.dead);
}

static const struct xlb_backend *find_slot(const struct xlb_services *s, uint16_t slot,
					   const struct xlb_service **svc)
{
	for (uint32_t i = 0; s && i < s->n; i++)
		for (uint32_t j = 0; j < s->svc[i].n_backends; j++)
			if (s->svc[i].backends[j].slot == slot) {
				*svc = &s->svc[i];
				return &s->svc[i].backends[j];
			}
	return NULL;
}

/*
 * Make `next` the running snapshot, then settle what changed for each
 * backend: one that went down, or left the config, has its flows ended
 * (on_backend_down); one that began draining starts its drain clock. The
 * snapshot is published first so no new flow goes to a backend whose flows
 * are being ended. Called with d->lock held (or before workers start).
 */
static void publish(struct xlbd *d, struct xlb_services *next)
{
	struct xlb_services *old = rcu_xchg_pointer(&d->dp.services, next);
	uint64_t now = xlb_now_ns();

	for (uint32_t i = 0; i < next->n; i++) {
		const struct xlb_service *svc = &next->svc[i];

		for (uint32_t j = 0; j < svc->n_backends; j++) {
			const struct xlb_backend *b = &svc->backends[j], *ob;
			struct xlb_backend_stats *bs = xlb_backend_stats(b->slot);
			/* Nothing to end for a backend that is new. */
			enum xlb_backend_state st = xlb_backend_state(b), ost = XLB_BE_DOWN;
			const struct xlb_service *osvc;

			ob = find_slot(old, b->slot, &osvc);
			if (ob)
				ost = xlb_backend_state(ob);
			if (bs && st != XLB_BE_DRAINING)
				bs->drain_since = 0;
			else if (bs && !bs->drain_since)
				bs->drain_since = now;
			if (st == XLB_BE_DOWN && ost != XLB_BE_DOWN)
				end_flows(d, svc, b, "is down");
		}
	}
	for (uint32_t i = 0; old && i < old->n; i++) {
		const struct xlb_service *svc = &old->svc[i], *nsvc;

		for (uint32_t j = 0; j < svc->n_backends; j++)
			if (!find_slot(next, svc->backends[j].slot, &nsvc))
				end_flows(d, svc, &svc->backends[j], "was removed");
	}
	xlb_services_free_rcu(old);
}

static void publish_cb(void *arg, struct xlb_services *next)
{
	publish(arg, next);
}

/* A backend's health changed (checker, passive detection): the snapshot
 * is copied with every entry of that backend changed and published.
 * Called with d->lock held. */
static void set_health(struct xlbd *d, uint16_t slot, bool up, const char *why)
{
	struct xlb_backend_stats *bs = xlb_backend_stats(slot);
	struct xlb_services *next;
	char ep[64];
	int err;

	if (!bs || bs->health_up == up)
		return;
	bs->health_up = up;
	bs->passive_fails = 0;
	next = xlb_services_copy(d->dp.services);
	if (!next) {
		xlb_err("cannot apply a health change: %s", strerror(errno));
		return;
	}
	for (uint32_t i = 0; i < next->n; i++)
		for (uint32_t j = 0; j < next->svc[i].n_backends; j++)
			if (next->svc[i].backends[j].slot == slot)
				next->svc[i].backends[j].health_up = up;
	err = xlb_services_finish(next);
	if (err) {
		xlb_services_free(next);
		xlb_err("cannot apply a health change: %s", strerror(-err));
		return;
	}
	xlb_endpoint_ntop(&bs->ep, ep, sizeof(ep));
	xlb_info("service %s backend %s is %s (%s)", bs->service, ep, up ? "up" : "down", why);
	publish(d, next);
}

/* The registry slot of a service's backend in the running snapshot. */
static uint16_t slot_of(const struct xlbd *d, const char *service, const struct xlb_endpoint *ep)
{
	const struct xlb_services *s = d->dp.services;

	for (uint32_t i = 0; s && i < s->n; i++) {
		if (strcmp(s->svc[i].name, service))
			continue;
		for (uint32_t j = 0; j < s->svc[i].n_backends; j++) {
			const struct xlb_backend *b = &s->svc[i].backends[j];

			if (b->ep.port == ep->port && xlb_addr_eq(&b->ep.addr, &ep->addr))
				return b->slot;
		}
	}
	return XLB_BACKEND_NO_SLOT;
}

/* The checker saw a transition (inside xlb_health_process, lock held). */
static void on_health_change(void *arg, const char *service, const struct xlb_endpoint *ep,
			     bool up)
{
	struct xlbd *d = arg;
	struct xlb_health_status st;
	char why[96] = "health check passed";

	if (!up && !xlb_health_get(d->health, service, ep, &st))
		snprintf(why, sizeof(why), "health check: %s", st.last_error);
	set_health(d, slot_of(d, service, ep), up, why);
}

/* After (re)configuring the checker: the registry takes its verdicts, so
 * the snapshot built next has them. */
static void sync_health(struct xlbd *d, const struct xlb_config *cfg)
{
	for (uint32_t i = 0; i < cfg->n_services; i++) {
		const struct xlb_service_conf *c = &cfg->services[i];

		for (uint32_t j = 0; j < c->n_backends; j++) {
			uint16_t slot = xlb_backend_slot_get(c->name, c->proto, &c->backends[j].ep);
			struct xlb_backend_stats *bs = xlb_backend_stats(slot);

			if (bs && c->health != XLB_HEALTH_NONE)
				bs->health_up = xlb_health_is_up(d->health, c->name, &c->backends[j].ep);
		}
	}
}

/* Passive detection: backends that answered health_passive new connections
 * in a row with RST are marked down. Without active checks nothing would
 * bring them back, so they return after ten check intervals. */
static void check_passive(struct xlbd *d)
{
	const struct xlb_services *s = d->dp.services;
	uint64_t now = xlb_now_ns();

	for (uint32_t i = 0; i < s->n; i++) {
		const struct xlb_service *svc = &s->svc[i];

		for (uint32_t j = 0; j < svc->n_backends; j++) {
			const struct xlb_backend *b = &svc->backends[j];
			struct xlb_backend_stats *bs = xlb_backend_stats(b->slot);

			if (!bs)
				continue;
			if (!bs->health_up && bs->revive_at && now >= bs->revive_at) {
				bs->revive_at = 0;
				set_health(d, b->slot, true, "passive hold-down over");
				s = d->dp.services;
				continue;
			}
			if (!svc->health_passive || !bs->health_up ||
			    __atomic_load_n(&bs->passive_fails, __ATOMIC_RELAXED) < svc->health_passive)
				continue;
			/* Active checks bring it back after health_rise passes;
			 * without them, a hold-down of ten intervals. */
			if (xlb_health_set_down(d->health, svc->name, &b->ep,
						"answered new connections with RST"))
				bs->revive_at = now + 10ull * svc->health_interval_ms * 1000000ull;
			set_health(d, b->slot, false, "answered new connections with RST");
			s = d->dp.services;
		}
	}
}

/* Draining backends whose drain_timeout has passed: their flows end. */
static void check_drains(struct xlbd *d)
{
	const struct xlb_services *s = d->dp.services;
	uint64_t now = xlb_now_ns();

	for (uint32_t i = 0; i < s->n; i++) {
		const struct xlb_service *svc = &s->svc[i];

		for (uint32_t j = 0; j < svc->n_backends; j++) {
			const struct xlb_backend *b = &svc->backends[j];
			struct xlb_backend_stats *bs = xlb_backend_stats(b->slot);

			if (!bs || !bs->drain_since || bs->drain_since == UINT64_MAX ||
			    xlb_backend_state(b) != XLB_BE_DRAINING)
				continue;
			if (now - bs->drain_since < (uint64_t)svc->drain_timeout * 1000000000ull)
				continue;
			bs->drain_since = UINT64_MAX;   /* ended once; until it changes state */
			end_flows(d, svc, b, "drained");
		}
	}
}

/* SIGHUP: a valid new config replaces the services atomically; flows keep
 * their backends (the NAT lives in the flow's tuples, not in the service
 * table). Anything invalid leaves the running config untouched. */
static int reload_locked(struct xlbd *d, char *err, size_t errlen)
{
	struct xlb_services *svcs;
	struct xlb_config *cfg;
	int ret;

	ret = xlb_config_load(d->config_path, &cfg, err, errlen);
	if (ret)
		return ret;
	if (strcmp(cfg->global.interface, d->cfg->global.interface) ||
	    !same_queues(&cfg->global, &d->cfg->global) ||
	    cfg->global.xdp_mode != d->cfg->global.xdp_mode ||
	    strcmp(cfg->global.control_socket, d->cfg->global.control_socket) ||
	    !same_metrics(&cfg->global, &d->cfg->global)) {
		snprintf(err, errlen, "%s: [global] settings cannot change while xlbd runs; "
			 "restart it instead", d->config_path);
		xlb_config_free(cfg);
		return -EINVAL;
	}
	ret = xlb_health_configure(d->health, cfg);
	if (ret) {
		snprintf(err, errlen, "%s: health checks: %s", d->config_path, strerror(-ret));
		xlb_config_free(cfg);
		return ret;
	}
	sync_health(d, cfg);
	svcs = xlb_services_build(cfg);
	if (!svcs) {
		ret = -errno;
		snprintf(err, errlen, "%s: %s", d->config_path, strerror(errno));
		xlb_config_free(cfg);
		return ret;
	}
	/* Steering maps first gain the new keys, then the snapshot is
	 * swapped, then stale keys go: no service in both configs ever loses
	 * its steering. */
	ret = xlb_xdp_sync_services(d->xdp, cfg);
	if (ret)
		xlb_warn("reload: steering maps incomplete: %s", strerror(-ret));
	apply_static_macs(d, cfg);
	xlb_ct_set_conf(d->dp.ct, &cfg->ct);
	/* The index was sized for the max at start (two slots per flow,
	 * half of them used when full); it does not grow. */
	if (cfg->ct.max / 2 > xlb_ct_buckets(d->dp.ct))
		xlb_warn("reload: conntrack max %u is above what the flow table was sized for "
			 "at start (%u); inserts may fail (chaintoolong) near the new max: "
			 "restart xlbd to resize", cfg->ct.max, xlb_ct_buckets(d->dp.ct) * 2);
	__atomic_store_n(&d->dp.zone_from_vlan, cfg->ct.zone_from_vlan, __ATOMIC_RELAXED);
	publish(d, svcs);
	/* Workers never read the config itself, only snapshots. */
	xlb_config_free(d->cfg);
	d->cfg = cfg;
	xlb_info("configuration reloaded from %s: %u services", d->config_path, cfg->n_services);
	return 0;
}

static int reload_cb(void *arg, char *err, size_t errlen)
{
	struct xlbd *d = arg;
	int ret = reload_locked(d, err, errlen);

	if (ret)
		xlb_err("reload rejected, the running configuration stays: %s", err);
	return ret;
}

static void reload(struct xlbd *d)
{
	char err[512];

	pthread_mutex_lock(&d->lock);
	reload_cb(d, err, sizeof(err));
	pthread_mutex_unlock(&d->lock);
}

/* The kernel's "nf_conntrack: table full, dropping packet", from the
 * workers' drop counters (they never log), at most once per interval. */
static void check_table_full(struct xlbd *d)
{
	static struct xlb_ratelimit rl = { .interval_ns = 5000000000ull, .burst = 1 };
	static uint64_t last;
	uint64_t drops = 0;

	for (uint32_t i = 0; i < d->n_workers; i++)
		drops += __atomic_load_n(&d->workers[i].ct_stats.drop, __ATOMIC_RELAXED);
	if (drops != last && xlb_ratelimit_ok(&rl, xlb_now_ns())) {
		xlb_warn("conntrack: table full, dropping packet (%llu new connections dropped, "
			 "%u/%u entries)", (unsigned long long)(drops - last), xlb_ct_count(d->dp.ct),
			 xlb_ct_max(d->dp.ct));
		last = drops;
	}
}

/* New connections per second per backend, for xlbctl service. */
static void update_rates(void)
{
	for (uint32_t i = 0;; i++) {
		struct xlb_backend_stats *bs = xlb_backend_stats((uint16_t)i);
		uint64_t n;

		if (!bs || i >= XLB_BACKEND_SLOTS - 1)
			break;
		n = __atomic_load_n(&bs->new_flows, __ATOMIC_RELAXED);
		bs->rate = (double)(n - bs->rate_last);
		bs->rate_last = n;
	}
}

static void log_stats(struct xlbd *d)
{
	uint64_t xs[XLB_XDP_STAT_MAX];

	for (uint32_t i = 0; i < d->n_workers; i++) {
		const struct xlb_worker *w = &d->workers[i];
		const struct xlb_worker_stats *s = &w->stats;
		char drops[512];
		size_t off = 0;

		drops[0] = '\0';
		for (int r = 0; r < XLB_DROP_MAX; r++)
			if (s->drop[r])
				off += snprintf(drops + off, sizeof(drops) - off, " drop_%s=%llu",
						xlb_drop_reason_name(r),
						(unsigned long long)s->drop[r]);
		xlb_info("worker %u queue %u: rx=%llu tx=%llu new=%llu held=%llu%s", w->id, w->queue,
			 (unsigned long long)s->rx_packets, (unsigned long long)s->tx_packets,
			 (unsigned long long)s->new_flows, (unsigned long long)s->held, drops);
	}
	if (!xlb_xdp_read_stats(d->xdp, xs)) {
		char line[512];
		size_t off = 0;

		for (int i = 0; i < XLB_XDP_STAT_MAX; i++)
			off += snprintf(line + off, sizeof(line) - off, " %s=%llu",
					xlb_xdp_stat_name(i), (unsigned long long)xs[i]);
		xlb_info("xdp:%s", line);
	}
	xlb_info("conntrack: %u/%u entries", xlb_ct_count(d->dp.ct), xlb_ct_max(d->dp.ct));
}

static int setup_loop(struct xlbd *d)
{
	struct itimerspec its = {
		.it_interval = { 0, TICK_MS * 1000000L },
		.it_value = { 0, TICK_MS * 1000000L },
	};
	struct epoll_event ev = { .events = EPOLLIN };
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	d->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	d->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	d->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (d->sigfd < 0 || d->timerfd < 0 || d->epfd < 0)
		return -errno;
	if (timerfd_settime(d->timerfd, 0, &its, NULL))
		return -errno;
	ev.data.fd = d->sigfd;
	if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->sigfd, &ev))
		return -errno;
	ev.data.fd = d->timerfd;
	if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->timerfd, &ev))
		return -errno;
	ev.data.fd = xlb_route_fd(d->dp.route);
	if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, ev.data.fd, &ev))
		return -errno;
	ev.data.fd = xlb_control_fd(d->control);
	if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, ev.data.fd, &ev))
		return -errno;
	ev.data.fd = xlb_health_fd(d->health);
	if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, ev.data.fd, &ev))
		return -errno;
	return 0;
}

static void tick(struct xlbd *d, uint64_t *ticks)
{
	unsigned budget = xlb_ct_buckets(d->dp.ct) / 100 + 1;
	uint64_t expirations, start;

	if (read(d->timerfd, &expirations, sizeof(expirations)) < 0)
		return;
	start = xlb_now_ns();
	for (unsigned done = 0; done < budget; done += GC_CHUNK) {
		uint64_t now = xlb_now_ns();

		if (now - start > GC_SLICE_NS)
			break;
		xlb_ct_gc(d->dp.ct, now, budget - done < GC_CHUNK ? budget - done : GC_CHUNK);
		/* Let grace periods through between chunks. */
		rcu_quiescent_state();
	}
	/* Serves the neighbour resolutions workers asked for. Under the lock:
	 * a reload from xlbctl changes static MACs in the same tables. */
	pthread_mutex_lock(&d->lock);
	xlb_route_process(d->dp.route);
	pthread_mutex_unlock(&d->lock);
	++*ticks;
	if (*ticks % (1000 / TICK_MS) == 0) {
		update_rates();
		check_table_full(d);
		pthread_mutex_lock(&d->lock);
		check_drains(d);
		pthread_mutex_unlock(&d->lock);
	}
	{
		pthread_mutex_lock(&d->lock);
		check_passive(d);
		pthread_mutex_unlock(&d->lock);
	}
	if (d->verbose && *ticks % (10000 / TICK_MS) == 0)
		log_stats(d);
}

/* Returns 0 on SIGINT/SIGTERM. */
static int run(struct xlbd *d)
{
	uint64_t ticks = 0;

	for (;;) {
		struct epoll_event evs[4];
		int n;

		rcu_thread_offline();
		n = epoll_wait(d->epfd, evs, 4, -1);
		rcu_thread_online();
		if (n < 0) {
			if (errno == EINTR)
				continue;
			xlb_err("epoll_wait: %s", strerror(errno));
			return -errno;
		}
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;

			if (fd == d->sigfd) {
				struct signalfd_siginfo si;

				while (read(d->sigfd, &si, sizeof(si)) == sizeof(si)) {
					if (si.ssi_signo == SIGHUP) {
						reload(d);
					} else {
						xlb_info("%s: stopping", strsignal(si.ssi_signo));
						return 0;
					}
				}
			} else if (fd == d->timerfd) {
				tick(d, &ticks);
			} else if (d->control && fd == xlb_control_fd(d->control)) {
				xlb_control_accept(d->control);
			} else if (fd == xlb_health_fd(d->health)) {
				pthread_mutex_lock(&d->lock);
				xlb_health_process(d->health);
				pthread_mutex_unlock(&d->lock);
			} else {
				int err;

				pthread_mutex_lock(&d->lock);
				err = xlb_route_process(d->dp.route);
				pthread_mutex_unlock(&d->lock);

				if (err)
					xlb_warn("netlink: %s", strerror(-err));
			}
		}
		rcu_quiescent_state();
	}
}

static int start(struct xlbd *d)
{
	const struct xlb_global_conf *g = &d->cfg->global;
	enum xlb_xdp_mode used;
	uint32_t queues[XLB_MAX_QUEUES];
	char qlist[256] = "";
	size_t off = 0;
	int nq, err;

	d->ifindex = if_nametoindex(g->interface);
	if (!d->ifindex) {
		xlb_err("%s: [global] interface = %s: no such interface", d->config_path,
			g->interface);
		return -ENODEV;
	}
	nq = count_rx_queues(g->interface);
	if (g->all_queues) {
		d->n_workers = nq > XLB_MAX_QUEUES ? XLB_MAX_QUEUES : (uint32_t)nq;
		for (uint32_t i = 0; i < d->n_workers; i++)
			queues[i] = i;
	} else {
		d->n_workers = 0;
		for (uint32_t i = 0; i < g->n_queues; i++) {
			if (g->queues[i] >= nq) {
				xlb_err("%s: [global] queues: %s has %d queues, no queue %u",
					d->config_path, g->interface, nq, g->queues[i]);
				return -EINVAL;
			}
			queues[d->n_workers++] = g->queues[i];
		}
	}

	d->dp.ct = xlb_ct_create(&d->cfg->ct);
	if (!d->dp.ct) {
		xlb_err("cannot create the flow table: %s", strerror(errno));
		return -errno;
	}
	xlb_ct_set_destroy_hook(d->dp.ct, on_flow_destroy, d);
	d->dp.zone_from_vlan = d->cfg->ct.zone_from_vlan;
	d->purge = xlb_purge_create();
	if (!d->purge)
		xlb_warn("no raw sockets (%s): flows of dead backends are deleted without RSTs",
			 strerror(errno));
	d->xdp = xlb_xdp_load(d->ifindex);
	if (!d->xdp)
		return -errno;
	d->dp.route = xlb_route_create(d->ifindex, on_local_addr, d);
	if (!d->dp.route) {
		err = -errno;
		xlb_err("cannot read routes and neighbours over netlink: %s", strerror(errno));
		return err;
	}
	xlb_route_if_mac(d->dp.route, d->dp.if_mac);
	apply_static_macs(d, d->cfg);
	err = xlb_xdp_sync_services(d->xdp, d->cfg);
	if (err)
		return err;

	d->workers = aligned_alloc(64, d->n_workers * sizeof(*d->workers));
	if (!d->workers)
		return -ENOMEM;
	memset(d->workers, 0, d->n_workers * sizeof(*d->workers));
	for (uint32_t i = 0; i < d->n_workers; i++) {
		err = xlb_worker_open(&d->workers[i], &d->dp, i, g->interface, queues[i],
				      xlb_xdp_xsks_fd(d->xdp));
		if (err)
			return err;
		off += snprintf(qlist + off, sizeof(qlist) - off, "%s%u", i ? "," : "", queues[i]);
	}
	/* Sockets exist and maps are filled: only now may packets be steered. */
	err = xlb_xdp_attach(d->xdp, g->xdp_mode, &used);
	if (err)
		return err;
	if (used == XLB_XDP_GENERIC)
		warn_generic_offloads(g->interface);
	for (uint32_t i = 0; i < d->n_workers; i++) {
		err = xlb_worker_start(&d->workers[i]);
		if (err) {
			xlb_err("cannot start worker %u: %s", i, strerror(-err));
			return err;
		}
	}
	{
		struct xlb_control_ctx ctx = {
			.dp = &d->dp, .workers = d->workers, .n_workers = d->n_workers,
			.lock = &d->lock, .reload = reload_cb, .publish = publish_cb, .arg = d,
		};

		d->control = xlb_control_open(g->control_socket, &ctx);
		if (!d->control) {
			err = -errno;
			xlb_err("%s: [global] control_socket = %s: %s", d->config_path,
				g->control_socket,
				errno == EADDRINUSE ? "another xlbd is serving it" : strerror(errno));
			return err;
		}
	}
	if (g->metrics_enabled) {
		struct xlb_metrics_ctx ctx = {
			.dp = &d->dp, .workers = d->workers, .n_workers = d->n_workers,
			.xdp = d->xdp,
		};
		char addr[XLB_ADDRSTRLEN];

		xlb_addr_ntop(&g->metrics.addr, g->metrics.family, addr, sizeof(addr));
		d->metrics = xlb_metrics_start(&g->metrics, &ctx);
		if (!d->metrics) {
			err = -errno;
			xlb_err("%s: [global] metrics = %s%s%s:%u: cannot serve: %s", d->config_path,
				g->metrics.family == AF_INET6 ? "[" : "", addr,
				g->metrics.family == AF_INET6 ? "]" : "", ntohs(g->metrics.port),
				strerror(errno));
			return err;
		}
		xlb_info("metrics on http://%s%s%s:%u/metrics", g->metrics.family == AF_INET6 ? "[" : "",
			 addr, g->metrics.family == AF_INET6 ? "]" : "", xlb_metrics_port(d->metrics));
	}
	err = setup_loop(d);
	if (err) {
		xlb_err("cannot set up the control loop: %s", strerror(-err));
		return err;
	}
	xlb_info("ready: interface %s, queues %s (%s), XDP %s mode, %u services", g->interface,
		 qlist, d->workers[0].xsk.zerocopy ? "zero-copy" : "copy",
		 used == XLB_XDP_NATIVE ? "native" : "generic", d->cfg->n_services);
	return 0;
}

static void stop(struct xlbd *d)
{
	/* Scrapes read workers, tables and the XDP program's maps. */
	xlb_metrics_stop(d->metrics);
	d->metrics = NULL;
	/* Control clients first: they read workers and tables. */
	xlb_control_close(d->control);
	d->control = NULL;
	/* Detach first so nothing more is steered to sockets about to close. */
	if (d->xdp)
		xlb_xdp_close(d->xdp);
	d->xdp = NULL;
	CMM_STORE_SHARED(d->dp.stop, 1);
	for (uint32_t i = 0; d->workers && i < d->n_workers; i++)
		xlb_worker_close(&d->workers[i]);
	free(d->workers);
	if (d->dp.route)
		xlb_route_destroy(d->dp.route);
	xlb_purge_destroy(d->purge);
	xlb_health_destroy(d->health);
	if (d->sigfd >= 0)
		close(d->sigfd);
	if (d->timerfd >= 0)
		close(d->timerfd);
	if (d->epfd >= 0)
		close(d->epfd);
	rcu_thread_offline();
	/* Every call_rcu callback (old snapshots, deleted flows) has run once
	 * this returns, so what is left is ours alone to free. */
	rcu_barrier();
	if (d->dp.ct)
		xlb_ct_destroy(d->dp.ct);
	xlb_services_free(d->dp.services);
	xlb_config_free(d->cfg);
	xlb_backend_registry_free();
	xlb_events_free_all();
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "test", no_argument, NULL, 't' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	struct xlbd d = { .sigfd = -1, .timerfd = -1, .epfd = -1,
			  .lock = PTHREAD_MUTEX_INITIALIZER };
	bool test_only = false;
	struct xlb_services *svcs;
	char err[512];
	sigset_t mask;
	int c, ret;

	while ((c = getopt_long(argc, argv, "c:tvhV", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			d.config_path = optarg;
			break;
		case 't':
			test_only = true;
			break;
		case 'v':
			d.verbose = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("xlbd %s\n", XLB_VERSION);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (!d.config_path || optind != argc) {
		usage(stderr);
		return 1;
	}
	xlb_log_init("xlbd", d.verbose ? XLB_LOG_DEBUG : XLB_LOG_INFO);

	if (xlb_config_load(d.config_path, &d.cfg, err, sizeof(err))) {
		xlb_err("%s", err);
		return 1;
	}
	if (test_only) {
		xlb_info("%s: configuration valid: %u services", d.config_path, d.cfg->n_services);
		xlb_config_free(d.cfg);
		return 0;
	}

	/* Signals are read from a signalfd by the control loop; block them
	 * before any thread starts so workers inherit the mask. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);

	rcu_register_thread();
	d.health = xlb_health_create(on_health_change, &d);
	if (!d.health || xlb_health_configure(d.health, d.cfg)) {
		xlb_err("cannot set up health checks: %s", strerror(errno));
		xlb_health_destroy(d.health);
		xlb_config_free(d.cfg);
		rcu_unregister_thread();
		return 1;
	}
	sync_health(&d, d.cfg);
	svcs = xlb_services_build(d.cfg);
	if (!svcs) {
		xlb_health_destroy(d.health);
		xlb_config_free(d.cfg);
		rcu_unregister_thread();
		return 1;
	}
	publish(&d, svcs);

	ret = start(&d);
	if (!ret) {
		ret = run(&d);
		if (d.verbose || ret)
			log_stats(&d);
	}
	stop(&d);
	rcu_unregister_thread();
	return ret ? 1 : 0;
}
