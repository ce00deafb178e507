/* timerwheel.c — hierarchical timer wheel (see timerwheel.h for the invariant and guarantees).
 *
 * Each slot is a circular doubly-linked list with a sentinel, so arm, re-arm and cancel are O(1)
 * and a timer can be unlinked from whatever list holds it (a slot, the pending list, the
 * overflow list or the on-stack list of a slot being expired) without knowing which. Slot
 * occupancy bitmaps (one 64-bit word per level) are set on insert and cleared lazily when a scan
 * finds the slot empty, so cancel never touches them. Advancing the clock jumps straight to the
 * next occupied slot with a count-trailing-zeros, so a large clock jump costs O(occupied slots),
 * never O(elapsed ms). */
#include "common/timerwheel.h"

static inline void list_init(tt_timer *h)
{
    h->next = h;
    h->prev = h;
}

static inline int list_empty(const tt_timer *h)
{
    return h->next == h;
}

static inline void list_append(tt_timer *h, tt_timer *t)
{
    t->prev = h->prev;
    t->next = h;
    h->prev->next = t;
    h->prev = t;
}

static inline void list_unlink(tt_timer *t)
{
    t->prev->next = t->next;
    t->next->prev = t->prev;
    t->next = NULL;
    t->prev = NULL;
}

/* Move every entry of src to the (uninitialised) sentinel dst; src becomes empty. */
static inline void list_move(tt_timer *dst, tt_timer *src)
{
    if (list_empty(src)) {
        list_init(dst);
        return;
    }
    dst->next = src->next;
    dst->prev = src->prev;
    dst->next->prev = dst;
    dst->prev->next = dst;
    list_init(src);
}

void tt__wheel_init(tt__wheel *w, uint64_t now)
{
    w->now = now;
    w->count = 0;
    w->next = UINT64_MAX;
    w->next_exact = 0;
    w->next_level = w->next_slot = 0;
    list_init(&w->pending);
    list_init(&w->overflow);
    for (int l = 0; l < TT__WHEEL_LEVELS; l++) {
        w->occupied[l] = 0;
        for (int s = 0; s < TT__WHEEL_SLOTS; s++)
            list_init(&w->slots[l][s]);
    }
}

/* Put t (unlinked, at >= w->now) where the invariant says it belongs relative to w->now; at ==
 * now lands in the current level-0 slot, which the running scan expires next. */
static inline void place(tt__wheel *w, tt_timer *t)
{
    uint64_t diff = t->at ^ w->now;
    unsigned level, slot;
    uint64_t event; /* when now reaches t's slot: expiry (level 0) or cascade */
    if (__builtin_expect((diff >> TT__WHEEL_SPAN_BITS) != 0, 0)) {
        list_append(&w->overflow, t);
        level = TT__WHEEL_LEVELS;
        slot = 0;
        event = ((w->now >> TT__WHEEL_SPAN_BITS) + 1) << TT__WHEEL_SPAN_BITS;
    } else {
        level = diff ? (unsigned)(63 - __builtin_clzll(diff)) / TT__WHEEL_BITS : 0;
        unsigned shift = level * TT__WHEEL_BITS;
        slot = (unsigned)(t->at >> shift) & (TT__WHEEL_SLOTS - 1);
        w->occupied[level] |= UINT64_C(1) << slot;
        list_append(&w->slots[level][slot], t);
        event = t->at & (~UINT64_C(0) << shift);
    }
    /* Earlier than the previous lower bound: this slot is now the next event, exactly. (Event
     * times name slots uniquely, so an equal time is the same slot.) */
    if (event < w->next) {
        w->next = event;
        w->next_level = level;
        w->next_slot = slot;
        w->next_exact = 1;
    }
}

void tt__wheel_add(tt__wheel *w, tt_timer *t, uint64_t at)
{
    if (t->next)
        list_unlink(t);
    else
        w->count++;
    t->at = at;
    if (at <= w->now)
        list_append(&w->pending, t);
    else
        place(w, t);
}

void tt__wheel_del(tt__wheel *w, tt_timer *t)
{
    if (!t->next) return;
    list_unlink(t);
    w->count--;
}

/* Find the next occupied slot at or after now's index, lowest level first (a lower level's slots
 * all come before any higher level's). Sets *level (TT__WHEEL_LEVELS: the overflow list) and
 * *slot; returns the time at which now enters it, or UINT64_MAX when nothing is armed there. */
static uint64_t next_slot(tt__wheel *w, unsigned *level, unsigned *slot)
{
    for (unsigned l = 0; l < TT__WHEEL_LEVELS; l++) {
        unsigned shift = l * TT__WHEEL_BITS;
        unsigned idx = (unsigned)(w->now >> shift) & (TT__WHEEL_SLOTS - 1);
        uint64_t m = w->occupied[l] & (~UINT64_C(0) << idx);
        while (m) {
            unsigned s = (unsigned)__builtin_ctzll(m);
            if (!list_empty(&w->slots[l][s])) {
                uint64_t window = ~UINT64_C(0) << (shift + TT__WHEEL_BITS);
                *level = l;
                *slot = s;
                uint64_t start = (w->now & window) | ((uint64_t)s << shift);
                return start > w->now ? start : w->now;
            }
            w->occupied[l] &= ~(UINT64_C(1) << s); /* lazily clear a stale bit */
            m &= m - 1;
        }
    }
    if (!list_empty(&w->overflow)) {
        *level = TT__WHEEL_LEVELS;
        *slot = 0;
        uint64_t top = w->now >> TT__WHEEL_SPAN_BITS;
        if (top == (UINT64_MAX >> TT__WHEEL_SPAN_BITS))
            return UINT64_MAX; /* the last window of the 64-bit clock: nothing beyond */
        return (top + 1) << TT__WHEEL_SPAN_BITS;
    }
    return UINT64_MAX;
}

/* The exact next event: the cached one if its slot is still occupied, else a fresh scan. */
static uint64_t next_event(tt__wheel *w)
{
    if (w->next == UINT64_MAX)
        return UINT64_MAX; /* nothing was placed since a scan found the wheel empty */
    if (w->next_exact) {
        const tt_timer *h = w->next_level == TT__WHEEL_LEVELS
                                ? &w->overflow
                                : &w->slots[w->next_level][w->next_slot];
        if (!list_empty(h)) return w->next;
    }
    w->next = next_slot(w, &w->next_level, &w->next_slot);
    w->next_exact = w->next != UINT64_MAX;
    return w->next;
}

uint64_t tt__wheel_next_deadline(tt__wheel *w)
{
    if (!list_empty(&w->pending)) return w->now;
    return next_event(w);
}

/* Fire every timer of list h (an on-stack sentinel), head first. Callbacks may unlink entries
 * still on h (cancel or re-arm), which simply removes them from this batch. */
static size_t fire_list(tt__wheel *w, tt_timer *h, tt__wheel_fire fire, void *arg)
{
    size_t n = 0;
    while (!list_empty(h)) {
        tt_timer *t = h->next;
        list_unlink(t);
        w->count--;
        n++;
        fire(t, arg);
    }
    return n;
}

size_t tt__wheel_run(tt__wheel *w, uint64_t now, tt__wheel_fire fire, void *arg)
{
    size_t fired = 0;
    tt_timer local;
    if (now < w->now) now = w->now;
    if (!list_empty(&w->pending)) {
        list_move(&local, &w->pending);
        fired += fire_list(w, &local, fire, arg);
    }
    /* w->next is a lower bound: when it is later than now nothing is due (the common case of a
     * loop iteration without expiries costs no scan). */
    while (w->next <= now) {
        uint64_t t_next = next_event(w);
        if (t_next > now) break;
        unsigned level = w->next_level, slot = w->next_slot;
        w->now = t_next;
        w->next_exact = 0; /* this slot is consumed now; w->next = now stays a lower bound */
        if (level == 0) {
            list_move(&local, &w->slots[0][slot]);
            fired += fire_list(w, &local, fire, arg);
            continue;
        }
        /* Cascade: now entered this slot, so its timers move to lower levels (or to the current
         * level-0 slot when due exactly now), keeping their relative order. */
        list_move(&local, level == TT__WHEEL_LEVELS ? &w->overflow : &w->slots[level][slot]);
        while (!list_empty(&local)) {
            tt_timer *t = local.next;
            list_unlink(t);
            place(w, t);
        }
    }
    w->now = now;
    return fired;
}
