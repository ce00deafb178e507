/* test_llhttp_vectors.c — data-driven test over llhttp's request vectors (162, extracted from
 * llhttp's test/request/ *.md). tether processes each input as a pipeline of requests, as a
 * server would: verdict accept (every byte belongs to complete messages), reject (an error,
 * or bytes after a message that ends the connection), or incomplete. Strict vectors must
 * agree with llhttp, and the messages must match; every difference is listed with its reason
 * in vector_diffs.py. Each input is also fed byte by byte and in random splits. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <strings.h>

#include "harness.h"
#include "llhttp_vectors.h"

#define NVEC (sizeof(llhttp_vectors) / sizeof(llhttp_vectors[0]))

typedef struct pipe_result {
    const char *verdict;
    char summary[8192];
    tt_http1_error err;
} pipe_result;

static void append(char *dst, size_t cap, const char *fmt, const char *s, size_t n)
{
    size_t l = strlen(dst);
    if (l < cap) snprintf(dst + l, cap - l, fmt, (int)n, s);
}

static void run_pipeline(const llvec *v, int mode, uint64_t seed, pipe_result *pr)
{
    size_t off = 0;
    memset(pr, 0, sizeof(*pr));
    pr->verdict = "accept";
    static outcome o;
    int nmsg = 0;
    while (off < v->len) {
        h_run(v->raw + off, v->len - off, 0, TT_HTTP1_M_OTHER, mode, seed, &o);
        if (o.status == 0) {
            /* llhttp's "accept": at least one message complete and no error */
            pr->verdict = nmsg ? "accept" : "incomplete";
            return;
        }
        if (o.status != 200) {
            pr->verdict = "reject";
            pr->err = o.err;
            return;
        }
        if (nmsg++) append(pr->summary, sizeof(pr->summary), "%.*s", "\n", 1);
        append(pr->summary, sizeof(pr->summary), "%.*s", o.method, strlen(o.method));
        append(pr->summary, sizeof(pr->summary), " %.*s", o.target, strlen(o.target));
        append(pr->summary, sizeof(pr->summary), " %.*s", o.minor ? "1.1" : "1.0", 3);
        for (size_t i = 0; i < o.num_headers && i < 16; i++) {
            append(pr->summary, sizeof(pr->summary), "|%.*s", o.hname[i], strlen(o.hname[i]));
            append(pr->summary, sizeof(pr->summary), ": %.*s", o.hval[i], strlen(o.hval[i]));
        }
        append(pr->summary, sizeof(pr->summary), "|body=%.*s", o.body, o.body_len);
        off += o.total_len;
        if ((o.flags & TT_HTTP1_F_UPGRADE) || !strcmp(o.method, "CONNECT")) {
            pr->verdict = "upgrade"; /* the rest belongs to another protocol (tunnel) */
            return;
        }
        if (!(o.flags & TT_HTTP1_F_KEEP_ALIVE) && off < v->len) {
            /* the server closes after this message: following bytes are never processed */
            pr->verdict = "reject";
            return;
        }
    }
}

static size_t vec_idx[NVEC];

ParameterizedTestParameters(llhttp, vectors)
{
    for (size_t i = 0; i < NVEC; i++)
        vec_idx[i] = i;
    return cr_make_param_array(size_t, vec_idx, NVEC);
}

ParameterizedTest(size_t *ip, llhttp, vectors)
{
    const llvec *v = &llhttp_vectors[*ip];
    static pipe_result a, b;
    static const tt_http1_limits no_host = {.flags = TT_HTTP1_LIMIT_ALLOW_NO_HOST};
    h_limits = &no_host; /* Host is required by default: see llhttp.host_required */
    run_pipeline(v, MODE_WHOLE, 0, &a);
    cr_assert_str_eq(a.verdict, v->verdict, "[%s] %s: tether %s (%s), expected %s (llhttp %s)",
                     v->file, v->name, a.verdict, tt_http1_error_name(a.err), v->verdict,
                     v->llhttp_verdict);
    if (!v->why && v->strict && !strcmp(a.verdict, "accept"))
        cr_assert_str_eq(a.summary, v->messages, "[%s] %s: messages differ", v->file, v->name);
    run_pipeline(v, MODE_BYTES, 0, &b);
    cr_assert_str_eq(a.verdict, b.verdict, "%s: byte-by-byte verdict differs", v->name);
    cr_assert_str_eq(a.summary, b.summary, "%s: byte-by-byte messages differ", v->name);
    for (uint64_t seed = 1; seed <= 8; seed++) {
        run_pipeline(v, MODE_RANDOM, seed, &b);
        cr_assert_str_eq(a.verdict, b.verdict, "%s: split verdict differs", v->name);
        cr_assert_str_eq(a.summary, b.summary, "%s: split messages differ", v->name);
    }
}

/* Every strict vector tether does not agree with carries a written reason. */
Test(llhttp, differences_are_justified)
{
    size_t strict = 0, diffs = 0;
    for (size_t i = 0; i < NVEC; i++) {
        const llvec *v = &llhttp_vectors[i];
        if (v->strict) strict++;
        if (strcmp(v->verdict, v->llhttp_verdict)) {
            cr_assert_not_null(v->why, "%s: differs without a reason", v->name);
            diffs++;
        }
    }
    cr_assert_eq(NVEC, 162);
    cr_assert_geq(strict, 100);
    cr_log_info("%zu vectors, %zu strict, %zu deliberate verdict differences", NVEC, strict, diffs);
}

/* llhttp does not require Host; tether does by default (RFC 9112 §3.2: a server MUST respond
 * 400 to an HTTP/1.1 request without Host). Every HTTP/1.1 vector without Host that tether
 * accepts with the relaxation is rejected with host_missing without it. */
Test(llhttp, host_required)
{
    static const tt_http1_limits no_host = {.flags = TT_HTTP1_LIMIT_ALLOW_NO_HOST};
    size_t checked = 0;
    for (size_t i = 0; i < NVEC; i++) {
        const llvec *v = &llhttp_vectors[i];
        static outcome o;
        h_limits = &no_host;
        h_run(v->raw, v->len, 0, TT_HTTP1_M_OTHER, MODE_WHOLE, 0, &o);
        if (o.status != 200 || o.minor != 1) continue;
        int has_host = 0;
        for (size_t k = 0; k < o.num_headers && k < 16; k++)
            if (!strcasecmp(o.hname[k], "host")) has_host = 1;
        if (has_host) continue;
        h_limits = NULL;
        h_run(v->raw, v->len, 0, TT_HTTP1_M_OTHER, MODE_WHOLE, 0, &o);
        cr_assert_eq(o.err, TT_HTTP1_E_HOST_MISSING, "%s", v->name);
        checked++;
    }
    cr_assert_geq(checked, 40);
}
