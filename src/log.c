// SPDX-License-Identifier: GPL-2.0-or-later
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

static const char *log_prog = "xlbd";
static enum xlb_log_level log_max = XLB_LOG_INFO;

void xlb_log_init(const char *prog, enum xlb_log_level level)
{
	log_prog = prog;
	log_max = level;
}

void xlb_log(enum xlb_log_level level, const char *fmt, ...)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	char line[1024];
	va_list ap;

	if (level > log_max)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One fprintf per line so lines from threads do not interleave. */
	if (level == XLB_LOG_INFO)
		fprintf(stderr, "%s: %s\n", log_prog, line);
	else
		fprintf(stderr, "%s: %s: %s\n", log_prog, names[level], line);
}

bool xlb_ratelimit_ok(struct xlb_ratelimit *rl, uint64_t now_ns)
{
	if (now_ns - rl->begin >= rl->interval_ns) {
		if (rl->missed)
			xlb_warn("%llu messages suppressed", (unsigned long long)rl->missed);
		rl->begin = now_ns;
		rl->printed = 0;
		rl->missed = 0;
	}
	if (rl->printed < rl->burst) {
		rl->printed++;
		return true;
	}
	rl->missed++;
	return false;
}
