/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Conntrack events (xlbctl -E): NEW, UPDATE, DESTROY.
 *
 * Every thread that produces events (workers, the collector, control
 * clients deleting flows) writes into a ring of its own, claimed on its
 * first event: one writer per ring, so producing is a few stores and never
 * blocks. Readers follow every ring with cursors of their own; a reader too
 * slow to keep up is lapped, and learns how many events it lost. Nothing
 * is produced while nobody listens (one relaxed load per flow change).
 */
#ifndef XLB_EVENTS_H
#define XLB_EVENTS_H

#include <stdbool.h>
#include <stdint.h>

#include "ctfmt.h"
#include "flow.h"

extern int xlb_events_listeners;

static inline bool xlb_events_wanted(void)
{
	return __atomic_load_n(&xlb_events_listeners, __ATOMIC_RELAXED) != 0;
}

/* Record an event about f now. Call only when xlb_events_wanted(). */
void xlb_events_emit(enum xlb_ct_event type, const struct xlb_flow *f);

/* A reader: registers as a listener while it exists. */
struct xlb_events_reader;
struct xlb_events_reader *xlb_events_reader_new(void);
void xlb_events_reader_free(struct xlb_events_reader *r);

/* Copy up to n pending events into out (oldest first per ring). Adds the
 * number of events lost since the last call to *lost. Returns the count. */
unsigned xlb_events_read(struct xlb_events_reader *r, struct xlb_ct_event_rec *out, unsigned n,
			 uint64_t *lost);

/* Free every ring (at exit, no producers or readers left). */
void xlb_events_free_all(void);

#endif
