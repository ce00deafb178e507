/* bench/timers.c — cost per timer of tether's hierarchical timer wheel against a binary min-heap
 * (implemented here), at 1k, 100k and 1M armed timers, in the same run.
 *
 *   build/bench/timers [--hugepages] [N ...]     default N: 1000 100000 1000000
 *
 * --hugepages backs the timer arrays with transparent huge pages, which takes TLB misses out of
 * the 1M-timer numbers (an application with a million connections would want that too).
 *
 * Operations, each timed over N timers and repeated until ~2M timers were processed (best of 5: the
 * machine may be shared): arm+cancel (seq)  arm N timers (random deadlines 1..60000 ms ahead),
 * cancel them in arming order arm+cancel (rnd)  the same, cancelled in a random order
 * (memory-bound: touches 1M random lines) re-arm            N armed; re-arm each (in a random
 * order) to now + 1..60000 ms arm+expire arm N, then advance the clock deadline by deadline until
 * all fired Prints ns per timer and the 1M/1k ratio of each structure. Single thread, no I/O. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "common/timerwheel.h"

#define SPAN_MS    60000u
#define TARGET_OPS 2000000u

typedef struct went {
    tt_timer t;
    uint32_t id;
} went;

typedef struct hent {
    uint64_t at;
    uint32_t idx; /* position in the heap; UINT32_MAX when not armed */
    uint32_t id;
} hent;

typedef struct heap {
    hent **a;
    uint32_t n;
} heap;

static inline void heap_swap_set(heap *h, uint32_t i, hent *e)
{
    h->a[i] = e;
    e->idx = i;
}

static void heap_up(heap *h, uint32_t i)
{
    hent *e = h->a[i];
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (h->a[p]->at <= e->at) break;
        heap_swap_set(h, i, h->a[p]);
        i = p;
    }
    heap_swap_set(h, i, e);
}

static void heap_down(heap *h, uint32_t i)
{
    hent *e = h->a[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && h->a[c + 1]->at < h->a[c]->at) c++;
        if (e->at <= h->a[c]->at) break;
        heap_swap_set(h, i, h->a[c]);
        i = c;
    }
    heap_swap_set(h, i, e);
}

static void heap_del(heap *h, hent *e)
{
    if (e->idx == UINT32_MAX) return;
    uint32_t i = e->idx;
    e->idx = UINT32_MAX;
    h->n--;
    if (i == h->n) return;
    hent *last = h->a[h->n];
    heap_swap_set(h, i, last);
    if (i > 0 && h->a[(i - 1) / 2]->at > last->at)
        heap_up(h, i);
    else
        heap_down(h, i);
}

static void heap_add(heap *h, hent *e, uint64_t at)
{
    heap_del(h, e);
    e->at = at;
    h->a[h->n] = e;
    e->idx = h->n++;
    heap_up(h, e->idx);
}

static hent *heap_pop(heap *h)
{
    hent *e = h->a[0];
    heap_del(h, e);
    return e;
}

static int g_huge; /* --hugepages: back the big arrays with transparent huge pages */

/* Zeroed memory for n bytes; with --hugepages 2 MiB-aligned and advised MADV_HUGEPAGE. */
static void *big_alloc(size_t n)
{
    if (!g_huge) return calloc(1, n);
    size_t sz = (n + (2u << 20) - 1) & ~(size_t)((2u << 20) - 1);
    void *p = aligned_alloc(2u << 20, sz);
    if (!p) return NULL;
    madvise(p, sz, MADV_HUGEPAGE);
    memset(p, 0, sz);
    return p;
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static inline uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static size_t g_fired;
static void on_fire(tt_timer *t, void *arg)
{
    (void)t;
    (void)arg;
    g_fired++;
}

enum { OP_CANCEL_SEQ, OP_CANCEL_RND, OP_REARM, OP_EXPIRE, OP_EXPIRE_MONO, NOPS };
static const char *op_name[NOPS] = {"arm+cancel (seq)", "arm+cancel (rnd)", "re-arm",
                                    "arm+expire (rnd)", "arm+expire (mono)"};

typedef struct ctx {
    uint32_t n;
    went *we;
    hent *he;
    tt__wheel *w;
    heap h;
    uint32_t *delay; /* per-timer delays, fixed per size so both structures see the same input */
    uint32_t *mono;  /* the same delays sorted: deadlines grow with arming order */
    uint32_t *perm;  /* a random permutation of 0..n-1 */
} ctx;

/* One pass of op over n timers; returns elapsed ns. The clock starts at base for each pass. */
static uint64_t pass_wheel(ctx *c, int op, uint64_t base)
{
    uint32_t n = c->n;
    tt__wheel_init(c->w, base);
    uint64_t t0 = now_ns();
    switch (op) {
    case OP_CANCEL_SEQ:
    case OP_CANCEL_RND:
        for (uint32_t i = 0; i < n; i++)
            tt__wheel_add(c->w, &c->we[i].t, base + c->delay[i]);
        for (uint32_t i = 0; i < n; i++)
            tt__wheel_del(c->w, &c->we[op == OP_CANCEL_SEQ ? i : c->perm[i]].t);
        break;
    case OP_REARM: {
        for (uint32_t i = 0; i < n; i++)
            tt__wheel_add(c->w, &c->we[i].t, base + c->delay[i]);
        t0 = now_ns(); /* time only the re-arms */
        for (uint32_t i = 0; i < n; i++)
            tt__wheel_add(c->w, &c->we[c->perm[i]].t, base + 1 + c->delay[n - 1 - i]);
        uint64_t el = now_ns() - t0;
        for (uint32_t i = 0; i < n; i++)
            tt__wheel_del(c->w, &c->we[i].t);
        return el;
    }
    case OP_EXPIRE:
    case OP_EXPIRE_MONO:
        g_fired = 0;
        for (uint32_t i = 0; i < n; i++)
            tt__wheel_add(c->w, &c->we[i].t, base + (op == OP_EXPIRE ? c->delay[i] : c->mono[i]));
        while (g_fired < n) {
            uint64_t nd = tt__wheel_next_deadline(c->w);
            tt__wheel_run(c->w, nd, on_fire, NULL);
        }
        break;
    }
    return now_ns() - t0;
}

static uint64_t pass_heap(ctx *c, int op, uint64_t base)
{
    uint32_t n = c->n;
    c->h.n = 0;
    for (uint32_t i = 0; i < n; i++)
        c->he[i].idx = UINT32_MAX;
    uint64_t t0 = now_ns();
    switch (op) {
    case OP_CANCEL_SEQ:
    case OP_CANCEL_RND:
        for (uint32_t i = 0; i < n; i++)
            heap_add(&c->h, &c->he[i], base + c->delay[i]);
        for (uint32_t i = 0; i < n; i++)
            heap_del(&c->h, &c->he[op == OP_CANCEL_SEQ ? i : c->perm[i]]);
        break;
    case OP_REARM: {
        for (uint32_t i = 0; i < n; i++)
            heap_add(&c->h, &c->he[i], base + c->delay[i]);
        t0 = now_ns();
        for (uint32_t i = 0; i < n; i++)
            heap_add(&c->h, &c->he[c->perm[i]], base + 1 + c->delay[n - 1 - i]);
        uint64_t el = now_ns() - t0;
        c->h.n = 0;
        return el;
    }
    case OP_EXPIRE:
    case OP_EXPIRE_MONO: {
        size_t fired = 0;
        for (uint32_t i = 0; i < n; i++)
            heap_add(&c->h, &c->he[i], base + (op == OP_EXPIRE ? c->delay[i] : c->mono[i]));
        while (c->h.n) {
            uint64_t now = c->h.a[0]->at; /* the loop would sleep until the earliest deadline */
            while (c->h.n && c->h.a[0]->at <= now) {
                heap_pop(&c->h);
                fired++;
            }
        }
        if (fired != n) abort();
        break;
    }
    }
    return now_ns() - t0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Memory floor: ns per dependent load chasing a random cycle through n wheel-sized entries. */
static double chase(uint32_t n)
{
    went *e = big_alloc(n * sizeof(went));
    uint32_t *perm = malloc(n * sizeof(uint32_t));
    if (!e || !perm) exit(1);
    for (uint32_t i = 0; i < n; i++)
        perm[i] = i;
    for (uint32_t i = n - 1; i > 0; i--) {
        uint32_t j = rnd() % (i + 1), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (uint32_t i = 0; i < n; i++)
        e[perm[i]].t.next = &e[perm[(i + 1) % n]].t;
    uint32_t hops = TARGET_OPS > n ? TARGET_OPS : n;
    double best = 1e30;
    for (int trial = 0; trial < 3; trial++) {
        tt_timer *p = &e[perm[0]].t;
        uint64_t t0 = now_ns();
        for (uint32_t i = 0; i < hops; i++)
            p = p->next;
        double per = (double)(now_ns() - t0) / hops;
        if (p == NULL) abort();
        if (per < best) best = per;
    }
    free(e);
    free(perm);
    return best;
}

/* Best of 5 measurements, each repeating passes until TARGET_OPS timers: ns per timer. */
static double measure(ctx *c, int op, int use_heap)
{
    uint32_t reps = TARGET_OPS / c->n;
    if (reps < 1) reps = 1;
    double best = 1e30;
    for (int trial = 0; trial < 5; trial++) {
        uint64_t total = 0;
        for (uint32_t r = 0; r < reps; r++) {
            uint64_t base = 1000000 + (uint64_t)r * 7919u; /* varies slot alignment */
            total += use_heap ? pass_heap(c, op, base) : pass_wheel(c, op, base);
        }
        double per = (double)total / ((double)reps * c->n);
        if (per < best) best = per;
    }
    return best;
}

int main(int argc, char **argv)
{
    uint32_t sizes[8] = {1000, 100000, 1000000};
    int nsizes = 3;
    int custom = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--hugepages")) {
            g_huge = 1;
            continue;
        }
        if (!custom) nsizes = 0;
        custom = 1;
        if (nsizes < 8) sizes[nsizes++] = (uint32_t)strtoul(argv[i], NULL, 10);
    }
    printf("timer wheel vs binary heap; ns per timer, best of 5; memory: %s\n\n",
           g_huge ? "transparent huge pages (--hugepages)" : "malloc (4 KiB pages)");
    double res[8][NOPS][2];
    printf("%-9s %-18s %12s %12s %10s\n", "timers", "operation", "wheel ns", "heap ns",
           "heap/wheel");
    for (int s = 0; s < nsizes; s++) {
        ctx c = {.n = sizes[s]};
        if (!c.n) return 2;
        c.we = big_alloc(c.n * sizeof(went));
        c.he = big_alloc(c.n * sizeof(hent));
        c.w = malloc(sizeof(tt__wheel));
        c.h.a = big_alloc(c.n * sizeof(hent *));
        c.delay = malloc(c.n * sizeof(uint32_t));
        c.perm = malloc(c.n * sizeof(uint32_t));
        c.mono = malloc(c.n * sizeof(uint32_t));
        if (!c.we || !c.he || !c.w || !c.h.a || !c.delay || !c.perm || !c.mono) {
            fprintf(stderr, "out of memory\n");
            return 1;
        }
        for (uint32_t i = 0; i < c.n; i++) {
            c.we[i].id = c.he[i].id = i;
            c.delay[i] = 1 + rnd() % SPAN_MS;
            c.perm[i] = i;
        }
        memcpy(c.mono, c.delay, c.n * sizeof(uint32_t));
        qsort(c.mono, c.n, sizeof(uint32_t), cmp_u32);
        for (uint32_t i = c.n - 1; i > 0; i--) {
            uint32_t j = rnd() % (i + 1), t = c.perm[i];
            c.perm[i] = c.perm[j];
            c.perm[j] = t;
        }
        for (int op = 0; op < NOPS; op++) {
            res[s][op][0] = measure(&c, op, 0);
            res[s][op][1] = measure(&c, op, 1);
            printf("%-9" PRIu32 " %-18s %12.1f %12.1f %9.2fx\n", c.n, op_name[op], res[s][op][0],
                   res[s][op][1], res[s][op][1] / res[s][op][0]);
            fflush(stdout);
        }
        printf("%-9" PRIu32 " %-18s %12.1f   (one dependent random load: the DRAM floor)\n", c.n,
               "pointer chase", chase(c.n));
        free(c.we);
        free(c.he);
        free(c.w);
        free(c.h.a);
        free(c.delay);
        free(c.perm);
        free(c.mono);
    }
    if (nsizes > 1) {
        printf("\ncost at %" PRIu32 " timers relative to %" PRIu32
               " (goal for the wheel: <= 1.5x)\n",
               sizes[nsizes - 1], sizes[0]);
        printf("%-18s %8s %8s\n", "operation", "wheel", "heap");
        for (int op = 0; op < NOPS; op++)
            printf("%-18s %7.2fx %7.2fx\n", op_name[op], res[nsizes - 1][op][0] / res[0][op][0],
                   res[nsizes - 1][op][1] / res[0][op][1]);
    }
    return 0;
}
