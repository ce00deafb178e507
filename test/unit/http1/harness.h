/* harness.h — test support for the HTTP/1.1 engine tests: feeds one input whole, byte by byte
 * and in random splits, every call's bytes copied to end exactly at a PROT_NONE guard page, and
 * returns one verdict (status) so the modes can be compared. */
#ifndef TT_TEST_HTTP1_HARNESS_H
#define TT_TEST_HTTP1_HARNESS_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tether/http1.h"

#define H_MAX (128 * 1024)

/* A buffer of cap bytes followed by a PROT_NONE page. */
typedef struct guard {
    char *base;
    size_t cap;
} guard;

static inline void guard_init(guard *g, size_t cap)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    cap = (cap + pg - 1) / pg * pg;
    char *m = mmap(NULL, cap + pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) abort();
    if (mprotect(m + cap, pg, PROT_NONE)) abort();
    g->base = m;
    g->cap = cap;
}

static inline void guard_free(guard *g)
{
    munmap(g->base, g->cap + (size_t)sysconf(_SC_PAGESIZE));
}

/* Copy n bytes so that they end exactly at the guard page; returns the start. */
static inline char *guard_put(guard *g, const char *src, size_t n)
{
    char *p = g->base + g->cap - n;
    memmove(p, src, n);
    return p;
}

/* Outcome of one message: status 200 = complete message (head + body), 0 = incomplete,
 * otherwise the error status; err = the engine error; head/total lengths; body collected. */
typedef struct outcome {
    int status;
    tt_http1_error err;
    size_t head_len, total_len;
    size_t body_len;
    char body[4096];
    int minor, status_code;
    uint32_t flags;
    tt_http1_body kind;
    uint64_t content_length;
    size_t num_headers;
    char method[32];
    char target[256];
    tt_header hdr_copy_dummy;
    char hname[16][64];
    char hval[16][256];
} outcome;

/* Limits used by h_run (NULL: defaults). */
static const tt_http1_limits *h_limits;

enum { MODE_WHOLE = 0, MODE_BYTES = 1, MODE_RANDOM = 2 };

static inline uint32_t h_rand(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(*s >> 33);
}

static inline void copy_str(char *dst, size_t cap, const char *s, size_t n)
{
    if (n >= cap) n = cap - 1;
    memcpy(dst, s, n);
    dst[n] = 0;
}

/* Run the chunked decoder over in[0, n) split per mode; in is a scratch copy. Returns status
 * (200 done, 0 incomplete, else error status) and *used = bytes of input used. */
static inline int h_chunked(guard *g, const char *in, size_t n, int mode, uint64_t *seed,
                            outcome *o, size_t *used)
{
    tt_http1_chunked_decoder d;
    tt_header tr[8];
    memset(&d, 0, sizeof(d));
    d.trailers = tr;
    d.max_trailers = 8;
    tt_http1_chunked_init(&d);
    static char pend[H_MAX];
    size_t plen = 0, fed = 0;
    *used = 0;
    while (fed < n) {
        size_t step = n - fed;
        if (mode == MODE_BYTES)
            step = 1;
        else if (mode == MODE_RANDOM)
            step = 1 + h_rand(seed) % (step < 17 ? step : 17);
        memcpy(pend + plen, in + fed, step);
        plen += step;
        fed += step;
        char *b = guard_put(g, pend, plen);
        size_t out;
        long c = tt_http1_chunked_decode(&d, b, plen, &out);
        if (c < 0) {
            o->err = d.error;
            return tt_http1_error_status(d.error);
        }
        if (o->body_len + out <= sizeof(o->body)) memcpy(o->body + o->body_len, b, out);
        o->body_len += out;
        *used += (size_t)c;
        memmove(pend, b + c, plen - (size_t)c);
        plen -= (size_t)c;
        if (d.done) return 200;
    }
    return 0;
}

/* Parse one request (is_response=0) or response at in[0, n) in the given mode. */
static inline void h_run(const char *in, size_t n, int is_response, tt_http1_method req_method,
                         int mode, uint64_t seed, outcome *o)
{
    static guard g, g2;
    static int inited;
    if (!inited) {
        guard_init(&g, H_MAX);
        guard_init(&g2, H_MAX);
        inited = 1;
    }
    memset(o, 0, sizeof(*o));
    tt_http1_parser p;
    tt_http1_parser_init(&p, h_limits);
    tt_header hdrs[128];
    tt_http1_request rq;
    tt_http1_response rs;
    memset(&rq, 0, sizeof(rq));
    memset(&rs, 0, sizeof(rs));
    rq.headers = rs.headers = hdrs;
    rq.max_headers = rs.max_headers = 128;
    size_t have = 0;
    int rc = -2;
    const char *b = NULL;
    int flip = 0;
    while (rc == -2 && have < n) {
        size_t step = n - have;
        if (mode == MODE_BYTES)
            step = 1;
        else if (mode == MODE_RANDOM)
            step = 1 + h_rand(&seed) % (step < 40 ? step : 40);
        have += step;
        /* a fresh copy every call, alternating buffers: tests rebasing and over-reads */
        b = guard_put(flip ? &g2 : &g, in, have);
        flip ^= 1;
        rc = is_response ? tt_http1_parse_response(&p, b, have, req_method, &rs)
                         : tt_http1_parse_request(&p, b, have, &rq);
    }
    if (rc == -2) {
        o->status = 0;
        return;
    }
    if (rc == -1) {
        o->err = p.error;
        o->status = tt_http1_error_status(p.error);
        return;
    }
    o->head_len = (size_t)rc;
    o->flags = is_response ? rs.flags : rq.flags;
    o->kind = is_response ? rs.body : rq.body;
    o->content_length = is_response ? rs.content_length : rq.content_length;
    o->num_headers = is_response ? rs.num_headers : rq.num_headers;
    o->minor = is_response ? rs.minor_version : rq.minor_version;
    o->status_code = rs.status;
    if (!is_response) {
        copy_str(o->method, sizeof(o->method), rq.method, rq.method_len);
        copy_str(o->target, sizeof(o->target), rq.target, rq.target_len);
    }
    for (size_t i = 0; i < o->num_headers && i < 16; i++) {
        copy_str(o->hname[i], 64, hdrs[i].name, hdrs[i].name_len);
        copy_str(o->hval[i], 256, hdrs[i].value, hdrs[i].value_len);
    }
    const char *rest = in + rc;
    size_t rn = n - (size_t)rc;
    if (o->kind == TT_HTTP1_BODY_CHUNKED) {
        size_t used = 0;
        o->status = h_chunked(&g2, rest, rn, mode, &seed, o, &used);
        o->total_len = (size_t)rc + used;
    } else if (o->kind == TT_HTTP1_BODY_LENGTH) {
        if (rn < o->content_length) {
            o->status = 0;
            return;
        }
        o->body_len = (size_t)o->content_length;
        memcpy(o->body, rest, o->body_len < sizeof(o->body) ? o->body_len : sizeof(o->body));
        o->total_len = (size_t)rc + o->body_len;
        o->status = 200;
    } else if (o->kind == TT_HTTP1_BODY_CLOSE) {
        o->body_len = rn;
        memcpy(o->body, rest, rn < sizeof(o->body) ? rn : sizeof(o->body));
        o->total_len = n;
        o->status = 200;
    } else {
        o->total_len = (size_t)rc;
        o->status = 200;
    }
}

/* Same outcome in every mode? Returns NULL or which mode differed. */
static inline const char *h_compare(const outcome *a, const outcome *b)
{
    if (a->status != b->status) return "status";
    if (a->err != b->err) return "error";
    if (a->status != 200) return NULL;
    if (a->head_len != b->head_len || a->total_len != b->total_len) return "length";
    if (a->body_len != b->body_len ||
        memcmp(a->body, b->body, a->body_len < sizeof(a->body) ? a->body_len : sizeof(a->body)))
        return "body";
    if (a->flags != b->flags || a->kind != b->kind || a->num_headers != b->num_headers)
        return "framing";
    if (strcmp(a->method, b->method) || strcmp(a->target, b->target)) return "request line";
    for (size_t i = 0; i < a->num_headers && i < 16; i++)
        if (strcmp(a->hname[i], b->hname[i]) || strcmp(a->hval[i], b->hval[i])) return "header";
    return NULL;
}

#endif
