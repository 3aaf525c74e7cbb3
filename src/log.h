/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Logging for the control plane: one line per message on stderr
 * (systemd-style daemons log there), prefixed with the program name and a
 * level. The packet path never logs; it counts.
 */
#ifndef XLB_LOG_H
#define XLB_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum xlb_log_level { XLB_LOG_ERR, XLB_LOG_WARN, XLB_LOG_INFO, XLB_LOG_DEBUG };

void xlb_log_init(const char *prog, enum xlb_log_level level);
void xlb_log(enum xlb_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define xlb_err(...)  xlb_log(XLB_LOG_ERR, __VA_ARGS__)
#define xlb_warn(...) xlb_log(XLB_LOG_WARN, __VA_ARGS__)
#define xlb_info(...) xlb_log(XLB_LOG_INFO, __VA_ARGS__)
#define xlb_dbg(...)  xlb_log(XLB_LOG_DEBUG, __VA_ARGS__)

/* At most `burst` messages per `interval_ns`; the rest are counted and the
 * count reported with the next message let through (as the kernel's
 * net_ratelimit). Not thread-safe: one per call site and thread. */
struct xlb_ratelimit {
	uint64_t interval_ns;
	uint32_t burst;
	uint32_t printed;
	uint64_t begin;
	uint64_t missed;
};

bool xlb_ratelimit_ok(struct xlb_ratelimit *rl, uint64_t now_ns);

#endif
