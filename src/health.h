/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Active health checks of backends (the dead-backends issue).
 *
 * Every backend of every service with health != none is a target. Checks
 * are tcp (a connect), http (GET health_path, the status line must carry
 * health_status) or udp (health_payload out, any datagram back from the
 * backend's address and port). They run in the control thread through the
 * kernel's own sockets, all non-blocking: one socket per check in flight,
 * driven by an epoll set of this module plus a timerfd, both hidden behind
 * the one fd xlb_health_fd() returns for the daemon's epoll loop.
 *
 * A check starts every health_interval_ms, counted from the start of the
 * previous one, and fails if it has not passed within health_timeout_ms.
 * First checks are spread at random over one interval so a thousand
 * backends do not all fire at once. health_rise consecutive passes bring a
 * down target up, health_fall consecutive failures take an up target down;
 * the change callback runs on those transitions only. Transitions are
 * logged at debug level only: the caller logs them (once, with its own
 * wording), and finds the reason in xlb_health_get()'s last_error.
 *
 * Threading: none. Every function must be called from one thread (the
 * control thread); nothing here takes locks.
 */
#ifndef XLB_HEALTH_H
#define XLB_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "xlb/tuple.h"

struct xlb_health;

/*
 * Called on every up/down transition, from inside xlb_health_process().
 * service and backend are valid for the duration of the call. The callback
 * may call xlb_health_is_up/get/walk, but not configure, process or destroy.
 */
typedef void (*xlb_health_change_fn)(void *arg, const char *service,
				     const struct xlb_endpoint *backend, bool up);

/* What xlbctl shows about one target. */
struct xlb_health_status {
	char service[XLB_NAME_MAX];
	struct xlb_endpoint backend;    /* as configured */
	enum xlb_health_kind kind;
	uint16_t port;                  /* the port checked, host order */
	bool up;
	bool in_flight;                 /* a check is running now */
	uint32_t consecutive_ok;
	uint32_t consecutive_fail;
	uint64_t checks;                /* completed checks since the target appeared */
	uint64_t failures;              /* of which failed */
	uint32_t last_latency_us;       /* duration of the last completed check */
	uint64_t last_check_ns;         /* CLOCK_MONOTONIC start of it; 0: none yet */
	uint64_t next_check_ns;         /* CLOCK_MONOTONIC start of the next one */
	char last_error[64];            /* why the last check failed; "" if it passed */
};

/* Return nonzero to stop the walk; xlb_health_walk() then returns that value. */
typedef int (*xlb_health_walk_fn)(void *arg, const struct xlb_health_status *st);

/*
 * A checker with no targets. fn (may be NULL) is called on transitions.
 * Returns NULL and sets errno on failure.
 */
struct xlb_health *xlb_health_create(xlb_health_change_fn fn, void *arg);

/*
 * Load (or reload) the targets from cfg; cfg may be NULL for none, and is
 * not referenced after the call. All or nothing: on failure (-ENOMEM, ...)
 * the previous targets keep running unchanged.
 *
 * A target is (service name, backend endpoint). One present before with the
 * same check settings (kind, port, interval, timeout, rise, fall, path,
 * status, payload) is kept as it is: state, counters, schedule, a check in
 * flight. One present before with other settings keeps only its up/down
 * state; its counters restart and its next check is jittered anew. A new
 * target starts UP: a restart or a reload must not blackhole traffic to
 * healthy backends while rise checks run; a dead one goes down after fall
 * failures, as it would have without checks. No callback runs for these
 * initial states, so after a configure the caller should ask
 * xlb_health_is_up() for every backend it publishes.
 */
int xlb_health_configure(struct xlb_health *h, const struct xlb_config *cfg);

/*
 * One fd for the daemon's epoll (EPOLLIN, level-triggered): readable when
 * a check socket or a deadline needs xlb_health_process().
 */
int xlb_health_fd(const struct xlb_health *h);

/*
 * Non-blocking: finish the checks whose sockets are ready, fail those past
 * their deadline, start those due, re-arm the timer. Calls the change
 * callback on transitions. Harmless when nothing is due.
 */
void xlb_health_process(struct xlb_health *h);

/* Whether the backend gets new connections as far as checks say: true for
 * a backend without checks (health = none, or not configured). */
bool xlb_health_is_up(const struct xlb_health *h, const char *service,
		      const struct xlb_endpoint *backend);

/*
 * Another detector (passive: RSTs to new connections) found the backend
 * dead: take the target down now, as if fall checks had failed, so it comes
 * back only after rise consecutive passes. why goes into last_error. The
 * change callback is not called (the caller made this change). 0, or
 * -ENOENT if the backend has no checks: nothing here would bring it back,
 * the caller must.
 */
int xlb_health_set_down(struct xlb_health *h, const char *service,
			const struct xlb_endpoint *backend, const char *why);

/* The status of one target. 0, or -ENOENT if it has no checks. */
int xlb_health_get(const struct xlb_health *h, const char *service,
		   const struct xlb_endpoint *backend, struct xlb_health_status *out);

/* Every target, ordered by service name, then family, address, port.
 * 0, or the first nonzero value fn returned. */
int xlb_health_walk(const struct xlb_health *h, xlb_health_walk_fn fn, void *arg);

/* Number of targets. */
size_t xlb_health_count(const struct xlb_health *h);

/* Close every check in flight and free everything. NULL is a no-op. */
void xlb_health_destroy(struct xlb_health *h);

#endif
