// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * xlbctl's commands, run by the daemon in a control client's thread.
 * Output formats are conntrack-tools' where conntrack has the command
 * (ctfmt.c), so operators' scripts carry over.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <urcu-qsbr.h>

#include "control_internal.h"
#include "ctfmt.h"
#include "events.h"
#include "service.h"

#define PROG "xlbctl (xlb)"

struct cmd {
	const char *name;
	const char *alias;
	int (*run)(struct ctl_session *s, int argc, char **argv);
	const char *help;
};

static uint32_t flow_id(const struct xlb_flow *f)
{
	return (uint32_t)((uintptr_t)f >> 6);
}

/* Filters and -o for -L, -D and -E. */
static int parse_filter_args(struct ctl_session *s, int argc, char **argv, struct xlb_ctfilter *flt,
			     unsigned *mode, bool allow_output)
{
	char err[256];
	int next = 1;

	while (next < argc) {
		if (xlb_ctfilter_parse(flt, argc, argv, &next, err, sizeof(err))) {
			ctl_err(s, "xlbctl: %s\n", err);
			return -EINVAL;
		}
		if (next >= argc)
			break;
		if (allow_output && (!strcmp(argv[next], "-o") || !strcmp(argv[next], "--output"))) {
			if (next + 1 >= argc) {
				ctl_err(s, "xlbctl: -o needs an argument (extended, json, timestamp, id)\n");
				return -EINVAL;
			}
			if (xlb_ctfmt_parse_output(argv[next + 1], mode, err, sizeof(err))) {
				ctl_err(s, "xlbctl: %s\n", err);
				return -EINVAL;
			}
			next += 2;
			continue;
		}
		ctl_err(s, "xlbctl: %s: unknown option or argument `%s' (try %s --help)\n", argv[0],
			argv[next], argv[0]);
		return -EINVAL;
	}
	return 0;
}

/* ---- -L / -D / -F --------------------------------------------------------- */

struct walk {
	struct ctl_session *s;
	struct xlb_ctfilter flt;
	struct xlb_ct *ct;
	unsigned mode;
	uint64_t now;
	uint64_t n;
	bool delete;
	bool print;
};

static int walk_one(struct xlb_flow *f, void *arg)
{
	struct walk *w = arg;
	char line[XLB_CTFMT_LINE_MAX];

	if (!xlb_ctfilter_match(&w->flt, f))
		return 0;
	/* Expired but not yet collected: gone as far as anyone can tell (the
	 * data path never matches it), as the kernel's dump skips them. */
	if (!w->delete && __atomic_load_n(&f->expires, __ATOMIC_RELAXED) <= w->now)
		return 0;
	if (w->delete && !xlb_ct_delete(w->ct, f))
		return 0;      /* somebody else deleted it first */
	w->n++;
	if (w->print) {
		xlb_ctfmt_flow(line, sizeof(line), f, w->now, w->mode, flow_id(f));
		if (ctl_out(w->s, "%s", line))
			return 1;      /* the client went away: stop walking */
	}
	return 0;
}

/* -L and -D: the flows matching the filter in argv, listed, and with
 * `delete` deleted too; conntrack's closing line on stderr. */
static int list_matching(struct ctl_session *s, int argc, char **argv, bool delete)
{
	struct walk w = { .s = s, .ct = s->ctx->dp->ct, .print = true, .delete = delete };

	if (parse_filter_args(s, argc, argv, &w.flt, &w.mode, true))
		return 1;
	w.now = xlb_now_ns();
	xlb_ct_foreach(w.ct, walk_one, &w);
	ctl_flush(s);
	ctl_err(s, "%s: %llu flow entries have been %s.\n", PROG, (unsigned long long)w.n,
		delete ? "deleted" : "shown");
	return 0;
}

static int cmd_list(struct ctl_session *s, int argc, char **argv)
{
	return list_matching(s, argc, argv, false);
}

static int cmd_delete(struct ctl_session *s, int argc, char **argv)
{
	return list_matching(s, argc, argv, true);
}

static int cmd_flush(struct ctl_session *s, int argc, char **argv)
{
	struct walk w = { .s = s, .ct = s->ctx->dp->ct, .delete = true };

	if (argc > 1) {
		ctl_err(s, "xlbctl: -F takes no arguments (use -D with filters)\n");
		return 1;
	}
	(void)argv;
	xlb_ct_foreach(w.ct, walk_one, &w);
	ctl_err(s, "%s: connection tracking table has been emptied (%llu flow entries deleted).\n",
		PROG, (unsigned long long)w.n);
	return 0;
}

static int cmd_count(struct ctl_session *s, int argc, char **argv)
{
	(void)argv;
	if (argc > 1) {
		ctl_err(s, "xlbctl: -C takes no arguments\n");
		return 1;
	}
	ctl_out(s, "%u\n", xlb_ct_count(s->ctx->dp->ct));
	return 0;
}

static int cmd_stats(struct ctl_session *s, int argc, char **argv)
{
	(void)argv;
	if (argc > 1) {
		ctl_err(s, "xlbctl: -S takes no arguments\n");
		return 1;
	}
	/* conntrack -S: one line per CPU; here one per worker. */
	for (uint32_t i = 0; i < s->ctx->n_workers; i++) {
		const struct xlb_ct_stats *st = &s->ctx->workers[i].ct_stats;

		ctl_out(s,
			"cpu=%-4u\tfound=%llu invalid=%llu insert=%llu insert_failed=%llu drop=%llu "
			"early_drop=%llu error=%llu search_restart=%llu clash_resolve=%llu "
			"chaintoolong=%llu \n",
			i, (unsigned long long)st->found, (unsigned long long)st->invalid,
			(unsigned long long)st->insert, (unsigned long long)st->insert_failed,
			(unsigned long long)st->drop, (unsigned long long)st->early_drop,
			(unsigned long long)st->error, (unsigned long long)st->search_restart,
			(unsigned long long)st->clash_resolve, (unsigned long long)st->chaintoolong);
	}
	ctl_out(s, "entries=%u max=%u\n", xlb_ct_count(s->ctx->dp->ct), xlb_ct_max(s->ctx->dp->ct));
	return 0;
}

/* ---- -E ------------------------------------------------------------------- */

#define EVENT_BATCH 512
/* Half of control.c's MAX_CLIENTS: followers never crowd out commands. */
#define MAX_EVENT_FOLLOWERS 32

static int event_followers;

static int event_cmp(const void *a, const void *b)
{
	const struct xlb_ct_event_rec *x = a, *y = b;

	return x->timestamp < y->timestamp ? -1 : x->timestamp > y->timestamp;
}

static int cmd_events(struct ctl_session *s, int argc, char **argv)
{
	struct xlb_ctfilter flt = XLB_CTFILTER_INIT;
	struct xlb_ct_event_rec evs[EVENT_BATCH];
	struct xlb_events_reader *rd;
	uint64_t lost = 0, reported = 0;
	unsigned mode = 0;

	if (parse_filter_args(s, argc, argv, &flt, &mode, true))
		return 1;
	if (__atomic_add_fetch(&event_followers, 1, __ATOMIC_RELAXED) > MAX_EVENT_FOLLOWERS) {
		__atomic_sub_fetch(&event_followers, 1, __ATOMIC_RELAXED);
		ctl_err(s, "xlbctl: too many -E readers at once (at most %d)\n", MAX_EVENT_FOLLOWERS);
		return 1;
	}
	rd = xlb_events_reader_new();
	if (!rd) {
		__atomic_sub_fetch(&event_followers, 1, __ATOMIC_RELAXED);
		ctl_err(s, "xlbctl: out of memory\n");
		return 1;
	}
	/* Events are copies: no RCU read side is needed while following them. */
	rcu_thread_offline();
	while (!*s->stopping && !s->err) {
		struct pollfd pfd = { .fd = s->fd, .events = POLLRDHUP };
		unsigned n = xlb_events_read(rd, evs, EVENT_BATCH, &lost);

		/* Rings are per thread (the two directions of a connection are
		 * often on two workers): order the batch by time. */
		qsort(evs, n, sizeof(evs[0]), event_cmp);
		for (unsigned i = 0; i < n; i++) {
			char line[XLB_CTFMT_LINE_MAX];

			if (!xlb_ctfilter_match_event(&flt, &evs[i]))
				continue;
			xlb_ctfmt_event(line, sizeof(line), &evs[i], mode);
			ctl_out(s, "%s", line);
		}
		ctl_flush(s);
		if (lost != reported) {
			ctl_err(s, "%s: WARNING: %llu events lost: this reader is too slow\n", PROG,
				(unsigned long long)(lost - reported));
			reported = lost;
		}
		if (n == EVENT_BATCH)
			continue;
		/* Sleep a little, and notice the client going away. */
		if (poll(&pfd, 1, 50) > 0 && (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR)))
			break;
	}
	rcu_thread_online();
	xlb_events_reader_free(rd);
	__atomic_sub_fetch(&event_followers, 1, __ATOMIC_RELAXED);
	return 0;
}

/* ---- services and backends ------------------------------------------------ */

struct backend_sum {
	uint64_t flows, packets, bytes;
};

static int sum_flow(struct xlb_flow *f, void *arg)
{
	struct backend_sum *sum = arg;

	sum[f->backend_id].packets += f->counter[0].packets + f->counter[1].packets;
	sum[f->backend_id].bytes += f->counter[0].bytes + f->counter[1].bytes;
	return 0;
}

static int cmd_service(struct ctl_session *s, int argc, char **argv)
{
	const struct xlb_services *svcs;
	struct backend_sum *sum;
	bool found = false;

	if (argc > 2) {
		ctl_err(s, "xlbctl: usage: service [NAME]\n");
		return 1;
	}
	/* Live flows' counters, by backend, in one walk; gone flows' are in
	 * the registry. */
	sum = calloc(XLB_BACKEND_SLOTS, sizeof(*sum));
	if (!sum) {
		ctl_err(s, "xlbctl: out of memory\n");
		return 1;
	}
	xlb_ct_foreach(s->ctx->dp->ct, sum_flow, sum);
	svcs = rcu_dereference(s->ctx->dp->services);
	for (uint32_t i = 0; i < svcs->n; i++) {
		const struct xlb_service *svc = &svcs->svc[i];
		char vip[64];
		double rate = 0;
		int64_t flows = 0;

		if (argc == 2 && strcmp(argv[1], svc->name))
			continue;
		found = true;
		for (uint32_t j = 0; j < svc->n_backends; j++) {
			const struct xlb_backend_stats *bs = xlb_backend_stats(svc->backends[j].slot);

			if (bs) {
				rate += bs->rate;
				flows += __atomic_load_n(&bs->active_flows, __ATOMIC_RELAXED);
			}
		}
		xlb_endpoint_ntop(&svc->vip, vip, sizeof(vip));
		ctl_out(s, "service %s %s %s scheduler=maglev table=%u backends=%u flows=%lld new/s=%.1f\n",
			svc->name, svc->proto == IPPROTO_TCP ? "tcp" : "udp", vip,
			svc->maglev_table_size, svc->n_backends, (long long)flows, rate);
		for (uint32_t j = 0; j < svc->n_backends; j++) {
			const struct xlb_backend *b = &svc->backends[j];
			const struct xlb_backend_stats *bs = xlb_backend_stats(b->slot);
			uint64_t packets = 0, bytes = 0;
			char ep[64];

			xlb_endpoint_ntop(&b->ep, ep, sizeof(ep));
			if (bs) {
				packets = sum[b->slot].packets +
					  __atomic_load_n(&bs->closed_packets, __ATOMIC_RELAXED);
				bytes = sum[b->slot].bytes +
					__atomic_load_n(&bs->closed_bytes, __ATOMIC_RELAXED);
			}
			ctl_out(s, "  backend %-44s state=%s admin=%s health=%s weight=%u flows=%lld "
				   "packets=%llu bytes=%llu new/s=%.1f%s\n",
				ep, xlb_backend_state_name(xlb_backend_state(b)),
				xlb_backend_admin_name(b->admin), b->health_up ? "up" : "down", b->weight,
				bs ? (long long)__atomic_load_n(&bs->active_flows, __ATOMIC_RELAXED) : 0LL,
				(unsigned long long)packets, (unsigned long long)bytes,
				bs ? bs->rate : 0.0, b->usable ? "" : " (other address family: unused)");
		}
	}
	free(sum);
	if (argc == 2 && !found) {
		ctl_err(s, "xlbctl: service: no service named `%s'\n", argv[1]);
		return 1;
	}
	return 0;
}

static int cmd_backend(struct ctl_session *s, int argc, char **argv)
{
	static const char usage[] =
		"xlbctl: usage: backend SERVICE ADDR:PORT weight N | drain | up | down\n";
	const struct xlb_services *cur;
	struct xlb_services *next;
	enum xlb_backend_admin admin;
	struct xlb_endpoint ep;
	char why[XLB_EP_WHYLEN];
	uint32_t weight, si, bi;
	int status = 1;

	if (argc < 4) {
		ctl_err(s, usage);
		return 1;
	}
	if (xlb_endpoint_pton(argv[2], 0, &ep, why, sizeof(why))) {
		ctl_err(s, "xlbctl: backend: bad backend `%s': %s (expected ADDR:PORT or "
			"[ADDR6]:PORT)\n", argv[2], why);
		return 1;
	}
	pthread_mutex_lock(s->ctx->lock);
	cur = rcu_dereference(s->ctx->dp->services);
	for (si = 0; si < cur->n && strcmp(cur->svc[si].name, argv[1]); si++)
		;
	if (si == cur->n) {
		ctl_err(s, "xlbctl: backend: no service named `%s'\n", argv[1]);
		goto out;
	}
	for (bi = 0; bi < cur->svc[si].n_backends; bi++) {
		const struct xlb_endpoint *b = &cur->svc[si].backends[bi].ep;

		if (b->port == ep.port && xlb_addr_eq(&b->addr, &ep.addr))
			break;
	}
	if (bi == cur->svc[si].n_backends) {
		ctl_err(s, "xlbctl: backend: service %s has no backend %s\n", argv[1], argv[2]);
		goto out;
	}
	admin = cur->svc[si].backends[bi].admin;
	weight = cur->svc[si].backends[bi].weight;
	if (!strcmp(argv[3], "weight") && argc == 5) {
		char *end;
		unsigned long w;

		errno = 0;
		w = strtoul(argv[4], &end, 10);
		if (errno || *end || !*argv[4] || w > 65535) {
			ctl_err(s, "xlbctl: backend: bad weight `%s' (expected 0-65535)\n", argv[4]);
			goto out;
		}
		weight = (uint32_t)w;
	} else if (!strcmp(argv[3], "drain") && argc == 4) {
		admin = XLB_BACKEND_DRAIN;
	} else if (!strcmp(argv[3], "up") && argc == 4) {
		admin = XLB_BACKEND_UP;
	} else if (!strcmp(argv[3], "down") && argc == 4) {
		admin = XLB_BACKEND_DOWN;
	} else {
		ctl_err(s, usage);
		goto out;
	}
	next = xlb_services_with_backend(cur, si, bi, admin, weight);
	if (!next) {
		ctl_err(s, "xlbctl: backend: %s\n", strerror(errno));
		goto out;
	}
	/* Existing flows keep their backend (they carry it in their tuples),
	 * unless it is now down: publish ends those flows. */
	s->ctx->publish(s->ctx->arg, next);
	ctl_out(s, "service %s backend %s: admin=%s weight=%u state=%s\n", argv[1], argv[2],
		xlb_backend_admin_name(admin), weight,
		xlb_backend_state_name(xlb_backend_state(&rcu_dereference(s->ctx->dp->services)
								  ->svc[si].backends[bi])));
	status = 0;
out:
	pthread_mutex_unlock(s->ctx->lock);
	return status;
}

static int cmd_reload(struct ctl_session *s, int argc, char **argv)
{
	char err[512];
	int ret;

	(void)argv;
	if (argc > 1) {
		ctl_err(s, "xlbctl: reload takes no arguments\n");
		return 1;
	}
	pthread_mutex_lock(s->ctx->lock);
	ret = s->ctx->reload(s->ctx->arg, err, sizeof(err));
	pthread_mutex_unlock(s->ctx->lock);
	if (ret) {
		ctl_err(s, "xlbctl: reload rejected, the running configuration stays: %s\n", err);
		return 1;
	}
	ctl_out(s, "configuration reloaded\n");
	return 0;
}

static const struct cmd cmds[] = {
	{ "-L", "--dump", cmd_list,
	  "xlbctl -L [FILTER] [-o extended|json|id|timestamp]\n"
	  "List flows, one per line, as conntrack -L. The count is printed on stderr.\n" },
	{ "-C", "--count", cmd_count, "xlbctl -C\nPrint the number of flows.\n" },
	{ "-S", "--stats", cmd_stats,
	  "xlbctl -S\nPer-worker conntrack statistics as conntrack -S (cpu= is the worker),\n"
	  "then the table's entries and max.\n" },
	{ "-E", "--event", cmd_events,
	  "xlbctl -E [FILTER] [-o timestamp|extended|json]\n"
	  "Follow conntrack events ([NEW], [UPDATE], [DESTROY]) until interrupted.\n" },
	{ "-D", "--delete", cmd_delete,
	  "xlbctl -D [FILTER]\nDelete the matching flows; each is printed, the count on stderr.\n" },
	{ "-F", "--flush", cmd_flush, "xlbctl -F\nDelete every flow.\n" },
	{ "service", NULL, cmd_service,
	  "xlbctl service [NAME]\nServices with their backends: state, weight, active flows,\n"
	  "packets, bytes and new connections per second.\n" },
	{ "backend", NULL, cmd_backend,
	  "xlbctl backend SERVICE ADDR:PORT weight N | drain | up | down\n"
	  "Change a backend until the next reload. weight 0 and drain take no new\n"
	  "connections and keep existing ones.\n" },
	{ "reload", NULL, cmd_reload,
	  "xlbctl reload\nRe-read the configuration file (as SIGHUP); an invalid one is\n"
	  "rejected with its error and the running one stays.\n" },
};

static const char filter_help[] =
	"Filters: -p PROTO, -f ipv4|ipv6, -s/--orig-src ADDR, -d/--orig-dst ADDR,\n"
	"  --sport PORT, --dport PORT, -r/--reply-src ADDR, -q/--reply-dst ADDR,\n"
	"  --reply-port-src PORT, --reply-port-dst PORT, --state STATE, -m/--mark MARK[/MASK],\n"
	"  -w/--zone ZONE, -u/--status ASSURED,SEEN_REPLY,UNREPLIED, --backend ADDR[:PORT].\n";

int ctl_dispatch(struct ctl_session *s, int argc, char **argv)
{
	if (argc < 1) {
		ctl_err(s, "xlbctl: no command (try xlbctl --help)\n");
		return 1;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		const struct cmd *c = &cmds[i];

		if (strcmp(argv[0], c->name) && (!c->alias || strcmp(argv[0], c->alias)))
			continue;
		if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
			ctl_out(s, "Usage: %s", c->help);
			if (c->run == cmd_list || c->run == cmd_delete || c->run == cmd_events)
				ctl_out(s, "%s", filter_help);
			return 0;
		}
		return c->run(s, argc, argv);
	}
	ctl_err(s, "xlbctl: unknown command `%s' (try xlbctl --help)\n", argv[0]);
	return 1;
}
