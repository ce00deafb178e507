/* timerwheel.h — internal: hierarchical timer wheel, millisecond resolution, usable without a
 * loop (unit tests, bench). 6 levels x 64 slots cover the aligned 2^36 ms (~2.2 years) window
 * that holds now; deadlines beyond it wait in an overflow list that is re-placed each time now
 * enters a new window, so any 64-bit deadline is accepted.
 *
 * Invariant: a timer with deadline at > now sits at level L = highest 6-bit group in which at and
 * now differ, in slot (at >> 6L) & 63; when now enters a slot of level L >= 1 that slot is
 * cascaded to lower levels. Timers armed with at <= now go to a pending list that fires at the
 * start of the next tt__wheel_run. Guarantees: a timer fires in the first run whose now >= at;
 * within one run, earlier deadlines fire first; equal deadlines fire in arming order (re-arming
 * counts as arming anew). Pending (past-deadline) timers fire first, in arming order. */
#ifndef TT_COMMON_TIMERWHEEL_H
#define TT_COMMON_TIMERWHEEL_H

#include <stddef.h>
#include <stdint.h>

#include "tether/timer.h"

#define TT__WHEEL_BITS      6
#define TT__WHEEL_SLOTS     64
#define TT__WHEEL_LEVELS    6
#define TT__WHEEL_SPAN_BITS (TT__WHEEL_BITS * TT__WHEEL_LEVELS) /* 36 */

typedef struct tt__wheel {
    uint64_t now;        /* time of the last run (ms) */
    uint64_t next;       /* lower bound of the next expiry/cascade time; UINT64_MAX: none */
    unsigned next_level; /* when next_exact: the slot due at next (level 6: overflow) */
    unsigned next_slot;
    int next_exact; /* next was exact when set; valid while that slot is non-empty */
    size_t count;   /* armed timers */
    uint64_t occupied[TT__WHEEL_LEVELS]; /* bit s set if slot s may be non-empty (lazy) */
    tt_timer pending;                    /* sentinel: armed with at <= now */
    tt_timer overflow;                   /* sentinel: beyond the current 2^36 ms window */
    tt_timer slots[TT__WHEEL_LEVELS][TT__WHEEL_SLOTS]; /* sentinels of circular lists */
} tt__wheel;

/* Called for each expired timer (already disarmed); may arm, re-arm or cancel any timer. */
typedef void (*tt__wheel_fire)(tt_timer *t, void *arg);

/* Initialise an empty wheel whose clock starts at now. */
void tt__wheel_init(tt__wheel *w, uint64_t now);
/* Arm or re-arm t for the absolute deadline at. O(1). */
void tt__wheel_add(tt__wheel *w, tt_timer *t, uint64_t at);
/* Disarm t if armed. O(1). */
void tt__wheel_del(tt__wheel *w, tt_timer *t);
/* A lower bound of the earliest deadline: the time of the next expiry or cascade (exact when
 * the earliest timer is on level 0, i.e. in the same aligned 64 ms window as now). UINT64_MAX when
 * no timer is armed; <= now if some are due. */
uint64_t tt__wheel_next_deadline(tt__wheel *w);
/* Advance the clock to now (never backwards) and fire every timer with at <= now, in order.
 * Returns the number of timers fired. */
size_t tt__wheel_run(tt__wheel *w, uint64_t now, tt__wheel_fire fire, void *arg);
/* Armed timers. */
static inline size_t tt__wheel_count(const tt__wheel *w)
{
    return w->count;
}

#endif
