/* test_timer.c — the hierarchical timer wheel (standalone tt__wheel API) and loop timers. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/timerwheel.h"
#include "tether/loop.h"
#include "tether/timer.h"

/* A timer with an id; fired ids are recorded in order. */
typedef struct ent {
    tt_timer t;
    int id;
    uint64_t fired_at; /* wheel now when fired */
} ent;

typedef struct rec {
    tt__wheel *w;
    int *ids;
    size_t n, cap;
    void (*hook)(struct rec *r, ent *e);
    void *hook_data;
} rec;

static void on_fire(tt_timer *t, void *arg)
{
    rec *r = arg;
    ent *e = tt_container_of(t, ent, t);
    cr_assert(!tt_timer_armed(t), "fired timer must be disarmed");
    cr_assert(t->at <= r->w->now, "fired before its deadline");
    e->fired_at = r->w->now;
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 64;
        r->ids = realloc(r->ids, r->cap * sizeof(int));
    }
    r->ids[r->n++] = e->id;
    if (r->hook) r->hook(r, e);
}

static void rec_init(rec *r, tt__wheel *w)
{
    memset(r, 0, sizeof(*r));
    r->w = w;
}

Test(wheel, empty)
{
    tt__wheel w;
    tt__wheel_init(&w, 1000);
    cr_assert_eq(tt__wheel_next_deadline(&w), UINT64_MAX);
    rec r;
    rec_init(&r, &w);
    cr_assert_eq(tt__wheel_run(&w, 5000, on_fire, &r), 0);
    cr_assert_eq(w.now, 5000);
    cr_assert_eq(tt__wheel_count(&w), 0);
}

Test(wheel, order_by_deadline_then_arming)
{
    tt__wheel w;
    tt__wheel_init(&w, 0);
    static const uint64_t at[] = {50, 10, 300, 10, 5000, 64, 63, 65, 4096, 50, 1, 262144};
    enum { N = sizeof(at) / sizeof(at[0]) };
    ent e[N];
    for (int i = 0; i < N; i++) {
        tt_timer_init(&e[i].t, NULL);
        e[i].id = i;
        tt__wheel_add(&w, &e[i].t, at[i]);
        cr_assert(tt_timer_armed(&e[i].t));
    }
    cr_assert_eq(tt__wheel_count(&w), N);
    rec r;
    rec_init(&r, &w);
    cr_assert_eq(tt__wheel_run(&w, 1000000, on_fire, &r), N);
    static const int want[] = {10, 1, 3, 0, 9, 6, 5, 7, 2, 8, 4, 11};
    for (int i = 0; i < N; i++)
        cr_assert_eq(r.ids[i], want[i], "position %d: got %d want %d", i, r.ids[i], want[i]);
    for (int i = 0; i < N; i++)
        cr_assert_eq(e[i].fired_at, at[i], "timer %d fired at %llu", i,
                     (unsigned long long)e[i].fired_at);
    cr_assert_eq(tt__wheel_count(&w), 0);
    free(r.ids);
}

Test(wheel, fires_only_when_due_and_next_deadline)
{
    tt__wheel w;
    tt__wheel_init(&w, 100);
    ent a = {.id = 1}, b = {.id = 2};
    tt__wheel_add(&w, &a.t, 130);
    tt__wheel_add(&w, &b.t, 100 + 64 * 64 * 3 + 7);
    /* 130 is in the next 64 ms slot of level 1: the bound is its cascade point, 128 */
    cr_assert_eq(tt__wheel_next_deadline(&w), 128);
    rec r;
    rec_init(&r, &w);
    cr_assert_eq(tt__wheel_run(&w, 129, on_fire, &r), 0);
    cr_assert_eq(tt__wheel_next_deadline(&w), 130); /* level 0 now: exact */
    cr_assert_eq(tt__wheel_run(&w, 130, on_fire, &r), 1);
    cr_assert_eq(r.ids[0], 1);
    /* the next deadline is a lower bound (a cascade point) never later than the real one */
    uint64_t nd = tt__wheel_next_deadline(&w);
    cr_assert(nd > 130 && nd <= b.t.at);
    while (tt_timer_armed(&b.t)) {
        nd = tt__wheel_next_deadline(&w);
        cr_assert(nd <= b.t.at);
        cr_assert_eq(tt__wheel_run(&w, nd, on_fire, &r), nd == 100 + 64 * 64 * 3 + 7 ? 1 : 0);
    }
    cr_assert_eq(b.fired_at, 100 + 64 * 64 * 3 + 7);
    free(r.ids);
}

Test(wheel, next_deadline_after_cancel_of_earliest)
{
    tt__wheel w;
    tt__wheel_init(&w, 0);
    ent a = {.id = 1}, b = {.id = 2};
    rec r;
    rec_init(&r, &w);
    tt__wheel_add(&w, &a.t, 10);
    tt__wheel_add(&w, &b.t, 20);
    cr_assert_eq(tt__wheel_next_deadline(&w), 10);
    tt__wheel_del(&w, &a.t); /* the cached earliest slot is now empty */
    cr_assert_eq(tt__wheel_next_deadline(&w), 20);
    cr_assert_eq(tt__wheel_run(&w, 15, on_fire, &r), 0);
    cr_assert_eq(w.now, 15);
    tt__wheel_add(&w, &a.t, 17); /* earlier than the cached one */
    cr_assert_eq(tt__wheel_next_deadline(&w), 17);
    cr_assert_eq(tt__wheel_run(&w, 20, on_fire, &r), 2);
    cr_assert_eq(r.ids[0], 1);
    cr_assert_eq(r.ids[1], 2);
    cr_assert_eq(tt__wheel_next_deadline(&w), UINT64_MAX);
    tt__wheel_add(&w, &a.t, 1000000);
    tt__wheel_del(&w, &a.t);
    cr_assert_eq(tt__wheel_run(&w, 2000000, on_fire, &r), 0);
    cr_assert_eq(tt__wheel_next_deadline(&w), UINT64_MAX);
    free(r.ids);
}

Test(wheel, rearm_and_cancel)
{
    tt__wheel w;
    tt__wheel_init(&w, 0);
    ent a = {.id = 1}, b = {.id = 2}, c = {.id = 3};
    tt__wheel_add(&w, &a.t, 100);
    tt__wheel_add(&w, &b.t, 100);
    tt__wheel_add(&w, &c.t, 100);
    tt__wheel_add(&w, &a.t, 100); /* re-arm: moves behind c */
    tt__wheel_add(&w, &b.t, 5000);
    tt__wheel_del(&w, &c.t);
    tt__wheel_del(&w, &c.t); /* idempotent */
    cr_assert(!tt_timer_armed(&c.t));
    cr_assert_eq(tt__wheel_count(&w), 2);
    rec r;
    rec_init(&r, &w);
    cr_assert_eq(tt__wheel_run(&w, 4999, on_fire, &r), 1);
    cr_assert_eq(r.ids[0], 1);
    tt__wheel_add(&w, &b.t, 6000); /* re-arm later, from a higher level */
    cr_assert_eq(tt__wheel_run(&w, 5999, on_fire, &r), 0);
    tt__wheel_add(&w, &b.t, 7000);
    cr_assert_eq(tt__wheel_run(&w, 6999, on_fire, &r), 0);
    cr_assert_eq(tt__wheel_run(&w, 7000, on_fire, &r), 1);
    cr_assert_eq(r.n, 2);
    cr_assert_eq(r.ids[1], 2);
    cr_assert_eq(b.fired_at, 7000);
    free(r.ids);
}

/* Hook: the first fired timer cancels its partner (due the same tick) and re-arms itself. */
static void cancel_partner(rec *r, ent *e)
{
    ent *partner = r->hook_data;
    if (e != partner && tt_timer_armed(&partner->t)) {
        tt__wheel_del(r->w, &partner->t);
        tt__wheel_add(r->w, &e->t, r->w->now + 10);
    }
}

Test(wheel, cancel_same_tick_from_callback)
{
    tt__wheel w;
    tt__wheel_init(&w, 0);
    ent a = {.id = 1}, b = {.id = 2}, c = {.id = 3};
    tt__wheel_add(&w, &a.t, 777);
    tt__wheel_add(&w, &b.t, 777);
    tt__wheel_add(&w, &c.t, 777);
    rec r;
    rec_init(&r, &w);
    r.hook = cancel_partner;
    r.hook_data = &b;
    cr_assert_eq(tt__wheel_run(&w, 777, on_fire, &r), 2);
    cr_assert_eq(r.ids[0], 1);
    cr_assert_eq(r.ids[1], 3);
    cr_assert(!tt_timer_armed(&b.t));
    cr_assert(tt_timer_armed(&a.t));
    cr_assert_eq(a.t.at, 787);
    r.hook = NULL;
    cr_assert_eq(tt__wheel_run(&w, 787, on_fire, &r), 1);
    cr_assert_eq(r.ids[2], 1);
    free(r.ids);
}

/* Hook: re-arm with a past/now deadline; it must not fire again in the same run. */
static void rearm_now(rec *r, ent *e)
{
    if (r->n < 3) tt__wheel_add(r->w, &e->t, r->w->now);
}

Test(wheel, rearm_due_now_waits_for_next_run)
{
    tt__wheel w;
    tt__wheel_init(&w, 0);
    ent a = {.id = 1};
    tt__wheel_add(&w, &a.t, 5);
    rec r;
    rec_init(&r, &w);
    r.hook = rearm_now;
    cr_assert_eq(tt__wheel_run(&w, 10, on_fire, &r), 1);
    cr_assert_eq(tt__wheel_next_deadline(&w), 10);
    cr_assert_eq(tt__wheel_run(&w, 10, on_fire, &r), 1);
    cr_assert_eq(tt__wheel_run(&w, 10, on_fire, &r), 1);
    cr_assert_eq(tt__wheel_run(&w, 10, on_fire, &r), 0);
    free(r.ids);
}

Test(wheel, past_deadline_fires_next_run_first)
{
    tt__wheel w;
    tt__wheel_init(&w, 1000);
    ent a = {.id = 1}, b = {.id = 2}, c = {.id = 3};
    tt__wheel_add(&w, &c.t, 1001);
    tt__wheel_add(&w, &a.t, 10);   /* long past */
    tt__wheel_add(&w, &b.t, 1000); /* exactly now */
    cr_assert_eq(tt__wheel_next_deadline(&w), 1000);
    rec r;
    rec_init(&r, &w);
    cr_assert_eq(tt__wheel_run(&w, 1001, on_fire, &r), 3);
    cr_assert_eq(r.ids[0], 1);
    cr_assert_eq(r.ids[1], 2);
    cr_assert_eq(r.ids[2], 3);
    free(r.ids);
}

Test(wheel, thousands_at_one_tick)
{
    enum { N = 5000 };
    tt__wheel w;
    tt__wheel_init(&w, 12345);
    ent *e = calloc(N, sizeof(ent));
    for (int i = 0; i < N; i++) {
        e[i].id = i;
        tt__wheel_add(&w, &e[i].t, 12345 + 100000); /* level 2: cascades twice */
    }
    rec r;
    rec_init(&r, &w);
    cr_assert_eq(tt__wheel_run(&w, 12345 + 99999, on_fire, &r), 0);
    cr_assert_eq(tt__wheel_run(&w, 12345 + 100000, on_fire, &r), N);
    for (int i = 0; i < N; i++)
        cr_assert_eq(r.ids[i], i, "arming order broken at %d", i);
    free(e);
    free(r.ids);
}

Test(wheel, far_future_and_clock_jumps)
{
    tt__wheel w;
    uint64_t start = (UINT64_C(1) << 36) - 3; /* just before a top-window boundary */
    tt__wheel_init(&w, start);
    ent a = {.id = 1}, b = {.id = 2}, c = {.id = 3}, d = {.id = 4};
    tt__wheel_add(&w, &a.t, start + 5);                       /* crosses the 2^36 boundary */
    tt__wheel_add(&w, &b.t, start + (UINT64_C(1) << 40));     /* far beyond the wheel span */
    tt__wheel_add(&w, &c.t, UINT64_MAX);                      /* never, in practice */
    tt__wheel_add(&w, &d.t, start + (UINT64_C(1) << 36) + 1); /* next window */
    rec r;
    rec_init(&r, &w);
    cr_assert_eq(tt__wheel_run(&w, start + 4, on_fire, &r), 0);
    cr_assert_eq(tt__wheel_run(&w, start + 5, on_fire, &r), 1);
    cr_assert_eq(a.fired_at, start + 5);
    /* a jump of 2^36 ms in one run */
    cr_assert_eq(tt__wheel_run(&w, start + (UINT64_C(1) << 36) + 1, on_fire, &r), 1);
    cr_assert_eq(r.ids[1], 4);
    cr_assert_eq(tt__wheel_run(&w, start + (UINT64_C(1) << 40) - 1, on_fire, &r), 0);
    cr_assert(tt_timer_armed(&b.t));
    cr_assert_eq(tt__wheel_run(&w, start + (UINT64_C(1) << 40), on_fire, &r), 1);
    cr_assert_eq(b.fired_at, start + (UINT64_C(1) << 40));
    cr_assert(tt_timer_armed(&c.t));
    cr_assert_eq(tt__wheel_count(&w), 1);
    tt__wheel_del(&w, &c.t);
    cr_assert_eq(tt__wheel_next_deadline(&w), UINT64_MAX);
    free(r.ids);
}

Test(wheel, wraparound_every_level)
{
    /* Walk the clock in uneven steps through many wraps of levels 0-2, keeping a timer armed
     * 1..70000 ms ahead; each must fire exactly at its deadline. */
    tt__wheel w;
    tt__wheel_init(&w, 63);
    ent e = {.id = 1};
    rec r;
    rec_init(&r, &w);
    uint64_t now = 63, seed = 7;
    for (int i = 0; i < 3000; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        uint64_t delay = 1 + (seed >> 33) % 70000;
        tt__wheel_add(&w, &e.t, now + delay);
        size_t before = r.n;
        while (tt_timer_armed(&e.t)) {
            uint64_t nd = tt__wheel_next_deadline(&w);
            cr_assert(nd <= e.t.at);
            now = nd;
            tt__wheel_run(&w, now, on_fire, &r);
        }
        cr_assert_eq(r.n, before + 1);
        cr_assert_eq(e.fired_at, e.t.at);
    }
    free(r.ids);
}

Test(wheel, one_million_armed)
{
    enum { N = 1000000 };
    tt__wheel w;
    tt__wheel_init(&w, 0);
    ent *e = calloc(N, sizeof(ent));
    uint64_t seed = 42;
    for (int i = 0; i < N; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        e[i].id = i;
        tt__wheel_add(&w, &e[i].t, 1 + (seed >> 33) % 3600000);
    }
    cr_assert_eq(tt__wheel_count(&w), N);
    for (int i = 0; i < N; i += 2)
        tt__wheel_del(&w, &e[i].t);
    rec r;
    rec_init(&r, &w);
    uint64_t last = 0;
    size_t fired = tt__wheel_run(&w, 3600000, on_fire, &r);
    cr_assert_eq(fired, N / 2);
    for (size_t i = 0; i < r.n; i++) {
        ent *x = &e[r.ids[i]];
        cr_assert(r.ids[i] % 2 == 1);
        cr_assert(x->t.at >= last, "out of order");
        cr_assert_eq(x->fired_at, x->t.at);
        last = x->t.at;
    }
    free(e);
    free(r.ids);
}

/* Reference model: a plain array; expected firing order is (effective deadline, arm sequence). */
typedef struct model_ent {
    int armed;
    uint64_t at, key, seq;
} model_ent;

static model_ent *cmp_base;
static int cmp_ids(const void *a, const void *b)
{
    const model_ent *x = &cmp_base[*(const int *)a], *y = &cmp_base[*(const int *)b];
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

Test(wheel, randomized_against_reference_model)
{
    enum { N = 2000, STEPS = 40000 };
    tt__wheel w;
    uint64_t now = 5000;
    tt__wheel_init(&w, now);
    ent *e = calloc(N, sizeof(ent));
    model_ent *m = calloc(N, sizeof(model_ent));
    int *expect = malloc(N * sizeof(int));
    rec r;
    rec_init(&r, &w);
    uint64_t seed = 0x9e3779b97f4a7c15ULL, seq = 0;
    for (int i = 0; i < N; i++)
        e[i].id = i;
    for (int step = 0; step < STEPS; step++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        uint64_t x = seed >> 16;
        int id = (int)(x % N);
        unsigned op = (unsigned)((x >> 20) % 100);
        if (op < 55) { /* arm or re-arm with a mixed delay distribution */
            uint64_t span[] = {1, 64, 4096, 300000, UINT64_C(1) << 38};
            uint64_t delay = (x >> 28) % span[(x >> 24) % 5];
            if ((x >> 27) % 16 == 0 && now > 100) delay = 0; /* due now */
            uint64_t at = now + delay;
            if ((x >> 23) % 32 == 0) at = now - (x >> 40) % 100; /* in the past */
            tt__wheel_add(&w, &e[id].t, at);
            m[id].armed = 1;
            m[id].at = at;
            m[id].key = at < now ? now : at;
            m[id].seq = seq++;
        } else if (op < 75) {
            tt__wheel_del(&w, &e[id].t);
            m[id].armed = 0;
        } else { /* advance: small steps mostly, sometimes a large jump */
            uint64_t adv = (op < 95) ? (x >> 30) % 200 : (x >> 30) % 10000000;
            uint64_t to = now + adv;
            int ne = 0;
            for (int i = 0; i < N; i++)
                if (m[i].armed && m[i].key <= to) expect[ne++] = i;
            cmp_base = m;
            qsort(expect, (size_t)ne, sizeof(int), cmp_ids);
            r.n = 0;
            size_t fired = tt__wheel_run(&w, to, on_fire, &r);
            cr_assert_eq(fired, (size_t)ne, "step %d: fired %zu want %d", step, fired, ne);
            for (int k = 0; k < ne; k++) {
                cr_assert_eq(r.ids[k], expect[k], "step %d pos %d", step, k);
                cr_assert_eq(e[expect[k]].fired_at,
                             m[expect[k]].key > now ? m[expect[k]].key : now);
                m[expect[k]].armed = 0;
            }
            now = to;
        }
        if (step % 1000 == 0) {
            size_t cnt = 0;
            uint64_t min = UINT64_MAX;
            for (int i = 0; i < N; i++) {
                cr_assert_eq(tt_timer_armed(&e[i].t), m[i].armed, "armed state of %d", i);
                if (m[i].armed) {
                    cnt++;
                    if (m[i].key < min) min = m[i].key;
                }
            }
            cr_assert_eq(tt__wheel_count(&w), cnt);
            cr_assert(tt__wheel_next_deadline(&w) <= min);
        }
    }
    free(e);
    free(m);
    free(expect);
    free(r.ids);
}

/* ---- through the loop ---- */

typedef struct lt {
    tt_timer t;
    int fired;
    int order;
    int *counter;
} lt;

static void lt_cb(tt_loop *loop, tt_timer *t)
{
    lt *x = tt_container_of(t, lt, t);
    x->fired++;
    x->order = ++*x->counter;
    cr_assert(tt_loop_now(loop) >= t->at);
}

static void stop_cb(tt_loop *loop, tt_timer *t)
{
    tt_loop_stop(loop);
}

Test(loop_timer, fire_in_order_then_stop)
{
    tt_loop *loop;
    cr_assert_eq(tt_loop_new(&loop), 0);
    int counter = 0;
    lt a = {.counter = &counter}, b = {.counter = &counter}, c = {.counter = &counter};
    tt_timer_init(&a.t, lt_cb);
    tt_timer_init(&b.t, lt_cb);
    tt_timer_init(&c.t, lt_cb);
    tt_timer stop;
    tt_timer_init(&stop, stop_cb);
    tt_timer_start(loop, &b.t, 20);
    tt_timer_start(loop, &a.t, 5);
    tt_timer_start(loop, &c.t, 1000);
    tt_timer_start(loop, &stop, 40);
    uint64_t t0 = tt_loop_now(loop);
    cr_assert_eq(tt_loop_run(loop), 0);
    cr_assert(tt_loop_now(loop) >= t0 + 40);
    cr_assert_eq(a.fired, 1);
    cr_assert_eq(b.fired, 1);
    cr_assert_eq(a.order, 1);
    cr_assert_eq(b.order, 2);
    cr_assert_eq(c.fired, 0);
    cr_assert(tt_timer_armed(&c.t));
    tt_timer_stop(loop, &c.t);
    cr_assert(!tt_timer_armed(&c.t));
    tt_loop_free(loop);
}

Test(loop_timer, start_at_past_fires_next_iteration)
{
    tt_loop *loop;
    cr_assert_eq(tt_loop_new(&loop), 0);
    int counter = 0;
    lt a = {.counter = &counter};
    tt_timer_init(&a.t, lt_cb);
    tt_timer_start_at(loop, &a.t, 0);
    tt_loop_run_once(loop, 1000); /* must not block: a timer is due */
    cr_assert_eq(a.fired, 1);
    tt_loop_free(loop);
}

/* Randomized, with callbacks that cancel and re-arm other timers (and themselves) while a run
 * is firing. Every firing is checked online against the model's next expected timer. */
typedef struct online {
    tt__wheel w;
    ent *e;
    model_ent *m;
    int *deferred; /* armed from a callback with a deadline <= the firing time: next run */
    int n;
    uint64_t to, seq, seed;
    size_t fired;
} online;

static uint64_t online_rand(online *o)
{
    o->seed = o->seed * 6364136223846793005ULL + 1442695040888963407ULL;
    return o->seed >> 16;
}

static void online_arm(online *o, int id, uint64_t at, int in_run)
{
    tt__wheel_add(&o->w, &o->e[id].t, at);
    o->m[id].armed = 1;
    o->m[id].at = at;
    o->m[id].seq = o->seq++;
    o->deferred[id] = in_run && at <= o->w.now;
    o->m[id].key = o->deferred[id] ? o->to : (at < o->w.now ? o->w.now : at);
}

static void online_fire(tt_timer *t, void *arg)
{
    online *o = arg;
    ent *x = tt_container_of(t, ent, t);
    int best = -1;
    for (int i = 0; i < o->n; i++) {
        if (!o->m[i].armed || o->deferred[i] || o->m[i].key > o->to) continue;
        if (best < 0 || o->m[i].key < o->m[best].key ||
            (o->m[i].key == o->m[best].key && o->m[i].seq < o->m[best].seq))
            best = i;
    }
    cr_assert_eq(x->id, best, "fired %d, model expects %d", x->id, best);
    cr_assert_eq(o->w.now, o->m[best].key, "fired at %llu, expected %llu",
                 (unsigned long long)o->w.now, (unsigned long long)o->m[best].key);
    o->m[best].armed = 0;
    o->fired++;
    int actions = (int)(online_rand(o) % 3);
    for (int k = 0; k < actions; k++) {
        uint64_t r = online_rand(o);
        int id = (int)(r % (uint64_t)o->n);
        if ((r >> 20) % 3 == 0) {
            tt__wheel_del(&o->w, &o->e[id].t);
            o->m[id].armed = 0;
            o->deferred[id] = 0;
        } else {
            uint64_t spans[] = {1, 8, 100, 5000, 400000};
            uint64_t d = (r >> 24) % spans[(r >> 40) % 5];
            uint64_t at = o->w.now + d;
            if ((r >> 44) % 8 == 0) at = o->w.now - (r >> 50) % 3; /* due now or in the past */
            online_arm(o, (r >> 47) % 4 == 0 ? x->id : id, at, 1);
        }
    }
}

Test(wheel, randomized_with_callbacks_online_model)
{
    enum { N = 600, STEPS = 20000 };
    static online o;
    memset(&o, 0, sizeof(o));
    o.n = N;
    o.seed = 12345;
    o.e = calloc(N, sizeof(ent));
    o.m = calloc(N, sizeof(model_ent));
    o.deferred = calloc(N, sizeof(int));
    uint64_t now = 77;
    tt__wheel_init(&o.w, now);
    for (int i = 0; i < N; i++)
        o.e[i].id = i;
    for (int step = 0; step < STEPS; step++) {
        uint64_t r = online_rand(&o);
        int id = (int)(r % N);
        unsigned op = (unsigned)((r >> 12) % 10);
        if (op < 5) {
            uint64_t spans[] = {1, 64, 3000, 262144, UINT64_C(1) << 37};
            online_arm(&o, id, now + (r >> 20) % spans[(r >> 16) % 5], 0);
        } else if (op < 6) {
            tt__wheel_del(&o.w, &o.e[id].t);
            o.m[id].armed = 0;
        } else {
            uint64_t adv = op < 9 ? (r >> 24) % 300 : (r >> 24) % 3000000;
            o.to = now + adv;
            tt__wheel_run(&o.w, o.to, online_fire, &o);
            for (int i = 0; i < N; i++) {
                cr_assert(!(o.m[i].armed && !o.deferred[i] && o.m[i].key <= o.to),
                          "timer %d (key %llu) not fired by %llu", i,
                          (unsigned long long)o.m[i].key, (unsigned long long)o.to);
                o.deferred[i] = 0;
            }
            now = o.to;
        }
    }
    size_t cnt = 0;
    for (int i = 0; i < N; i++) {
        cr_assert_eq(tt_timer_armed(&o.e[i].t), o.m[i].armed);
        cnt += o.m[i].armed;
    }
    cr_assert_eq(tt__wheel_count(&o.w), cnt);
    cr_assert(o.fired > 1000, "only %zu fired", o.fired);
    free(o.e);
    free(o.m);
    free(o.deferred);
}
