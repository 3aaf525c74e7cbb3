/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Shared by control.c (the socket) and ctl_cmds.c (the commands). */
#ifndef XLB_CONTROL_INTERNAL_H
#define XLB_CONTROL_INTERNAL_H

#include <stddef.h>

#include "control.h"

struct ctl_session {
	int fd;
	int err;                          /* first send error: stop producing */
	const struct xlb_control_ctx *ctx;
	volatile int *stopping;           /* the daemon is shutting down */
	size_t len;
	char buf[65536];                  /* stdout, sent in frames when full */
};

/* Buffered stdout for the client; flushed when full and at the end. */
int ctl_out(struct ctl_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int ctl_flush(struct ctl_session *s);
/* One message for the client's stderr (stdout so far is flushed first). */
int ctl_err(struct ctl_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Run argv; returns the exit status for xlbctl. Caller is an online RCU
 * reader (QSBR); long commands report quiescent states themselves. */
int ctl_dispatch(struct ctl_session *s, int argc, char **argv);

#endif
