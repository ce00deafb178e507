/* tether/timer.h — millisecond timers on a loop's hierarchical timer wheel.
 *
 * A tt_timer is embedded in its owner (find the owner with tt_container_of); arming never
 * allocates; arm, re-arm and cancel are O(1). Expired timers run in the loop iteration in
 * which their deadline (ms, tt_loop_now clock) has passed, earliest first across wheel slots;
 * timers due at the same millisecond run in arming order (re-arming counts as arming anew).
 * Timers armed for a deadline already past (or delay 0) run in the next timer step (the current
 * iteration's when armed from an fd callback, else the next one), first, in arming order. Any
 * 64-bit deadline is accepted. */
#ifndef TETHER_TIMER_H
#define TETHER_TIMER_H

#include <stddef.h>
#include <stdint.h>

#include "loop.h"

#ifdef __cplusplus
extern "C" {
#endif

#define tt_container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

typedef struct tt_timer tt_timer;
/* Called once when t expires; t is already disarmed and may be re-armed or freed inside. */
typedef void (*tt_timer_cb)(tt_loop *loop, tt_timer *t);

struct tt_timer {
    tt_timer *next, *prev; /* slot list links; next == NULL while disarmed */
    uint64_t at;           /* absolute deadline, ms on the loop clock */
    tt_timer_cb cb;
};

/* Initialise a disarmed timer (zeroing the struct is equivalent). */
static inline void tt_timer_init(tt_timer *t, tt_timer_cb cb)
{
    t->next = t->prev = NULL;
    t->at = 0;
    t->cb = cb;
}
/* Nonzero while armed. */
static inline int tt_timer_armed(const tt_timer *t)
{
    return t->next != NULL;
}

/* Arm (or re-arm) t to fire delay_ms after the loop's cached now. O(1). */
void tt_timer_start(tt_loop *loop, tt_timer *t, uint64_t delay_ms);
/* Arm (or re-arm) t for the absolute deadline at (ms, loop clock); a past deadline fires in
 * the next iteration. O(1). */
void tt_timer_start_at(tt_loop *loop, tt_timer *t, uint64_t at);
/* Disarm t if armed. O(1); safe inside any callback, including t's own. */
void tt_timer_stop(tt_loop *loop, tt_timer *t);

#ifdef __cplusplus
}
#endif
#endif
