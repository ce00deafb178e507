/* fields.c — what a proxy changes in the fields it forwards (RFC 9110 §7.6): hop-by-hop fields
 * removed both ways (Connection and every field it names, Keep-Alive, TE, Transfer-Encoding,
 * Upgrade, Proxy-Connection, Proxy-Authenticate, Proxy-Authorization), Via appended, and on
 * requests X-Forwarded-For appended, X-Forwarded-Proto and X-Forwarded-Host set. Framing
 * fields are not copied: the client and the server frame the messages they write. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "proxy/proxy_int.h"

/* ---- the arena ---- */

int tt__parena_reserve(tt__parena *a, size_t n)
{
    if (a->len + n <= a->cap) return 0;
    size_t cap = a->cap ? a->cap : 1024;
    while (cap < a->len + n)
        cap *= 2;
    char *b = realloc(a->buf, cap);
    if (!b) return -ENOMEM;
    a->buf = b;
    a->cap = cap;
    return 0;
}

long tt__parena_put(tt__parena *a, const char *s, size_t n)
{
    if (tt__parena_reserve(a, n + 1) < 0) return -1;
    long off = (long)a->len;
    if (n) memcpy(a->buf + a->len, s, n);
    a->buf[a->len + n] = 0;
    a->len += n + 1;
    return off;
}

long tt__parena_join(tt__parena *a, const tt__pstr *parts, int n)
{
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += parts[i].n;
    if (tt__parena_reserve(a, total + 1) < 0) return -1;
    long off = (long)a->len;
    char *o = a->buf + a->len;
    for (int i = 0; i < n; i++) {
        if (parts[i].n) memcpy(o, parts[i].s, parts[i].n);
        o += parts[i].n;
    }
    *o = 0;
    a->len += total + 1;
    return off;
}

long tt__parena_line(tt__parena *a, const char *name, size_t nl, const char *value, size_t vl)
{
    tt__pstr p[3] = {{name, nl}, {": ", 2}, {value, vl}};
    return tt__parena_join(a, p, 3);
}

void tt__parena_free(tt__parena *a)
{
    free(a->buf);
    a->buf = NULL;
    a->len = a->cap = 0;
}

/* ---- hop-by-hop ---- */

/* Case-insensitive equality of the token name[0,n) with lit[0,ln): the length, then the first
 * letter (| 0x20 folds the case; names are tokens, the literals start with a letter) reject most
 * pairs before any string call. */
static inline int is_n(const char *name, size_t n, const char *lit, size_t ln)
{
    return n == ln && n && (name[0] | 0x20) == (lit[0] | 0x20) && !strncasecmp(name, lit, n);
}

/* is_n with a string literal, its length known at compile time (no strlen per field) */
#define is(name, n, lit) is_n((name), (n), "" lit, sizeof(lit) - 1)

int tt__proxy_hop_static(const char *name, size_t n)
{
#define HOP(s)                                                                                     \
    {                                                                                              \
        s, sizeof(s) - 1                                                                           \
    }
    static const struct {
        const char *s;
        size_t n;
    } hop[] = {HOP("Connection"),
               HOP("Keep-Alive"),
               HOP("TE"),
               HOP("Transfer-Encoding"),
               HOP("Upgrade"),
               HOP("Proxy-Connection"),
               HOP("Proxy-Authenticate"),
               HOP("Proxy-Authorization")};
#undef HOP
    for (size_t i = 0; i < sizeof hop / sizeof hop[0]; i++)
        if (is_n(name, n, hop[i].s, hop[i].n)) return 1;
    return 0;
}

int tt__proxy_conn_named(const char *name, size_t n, const char *const *vals, const size_t *vlens,
                         int nvals)
{
    for (int k = 0; k < nvals; k++) {
        const char *v = vals[k];
        size_t vl = vlens[k], i = 0;
        while (i < vl) {
            while (i < vl && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
                i++;
            size_t s = i;
            while (i < vl && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
                i++;
            if (i > s && i - s == n && !strncasecmp(v + s, name, n)) return 1;
        }
    }
    return 0;
}

int tt__proxy_hop(const char *name, size_t n, const char *const *vals, const size_t *vlens,
                  int nvals)
{
    return tt__proxy_hop_static(name, n) || tt__proxy_conn_named(name, n, vals, vlens, nvals);
}

/* Nonzero when the list v[0,n) has the token tok (case-insensitive). */
static int list_has(const char *v, size_t n, const char *tok)
{
    const char *vals[1] = {v};
    size_t lens[1] = {n};
    return tt__proxy_conn_named(tok, strlen(tok), vals, lens, 1);
}

#define MAX_CONN_FIELDS 8 /* Connection fields honoured per message (more: only the first 8) */

/* ---- the upstream request ---- */

/* Append "prev, add" (or "add") for a list field combined from every line of name. */
static int combined(tt__parena *a, const tt__preq_in *in, const char *name, const char *add,
                    long *out)
{
    size_t start = a->len, total = 0;
    int any = 0;
    total = strlen(name);
    if (tt__parena_reserve(a, total + 2) < 0) return -ENOMEM;
    memcpy(a->buf + a->len, name, total);
    memcpy(a->buf + a->len + total, ": ", 2);
    a->len += total + 2;
    for (int i = 0; i < in->n; i++) {
        if (!is_n(in->names[i], in->nlens[i], name, total) || !in->vlens[i]) continue;
        if (tt__parena_reserve(a, in->vlens[i] + 2) < 0) return -ENOMEM;
        if (any) {
            memcpy(a->buf + a->len, ", ", 2);
            a->len += 2;
        }
        memcpy(a->buf + a->len, in->values[i], in->vlens[i]);
        a->len += in->vlens[i];
        any = 1;
    }
    size_t al = strlen(add);
    if (tt__parena_reserve(a, al + 3) < 0) return -ENOMEM;
    if (any) {
        memcpy(a->buf + a->len, ", ", 2);
        a->len += 2;
    }
    memcpy(a->buf + a->len, add, al + 1);
    a->len += al + 1;
    *out = (long)start;
    return 0;
}

/* Fields the proxy writes itself on a request (they are rebuilt, never copied). */
static int req_own(const char *nm, size_t nl, int forwarded)
{
    return is(nm, nl, "Host") || is(nm, nl, "Content-Length") || is(nm, nl, "Expect") ||
           is(nm, nl, "Via") || is(nm, nl, "X-Forwarded-For") ||
           (forwarded && (is(nm, nl, "X-Forwarded-Proto") || is(nm, nl, "X-Forwarded-Host")));
}

int tt__proxy_req_fields(const tt__preq_in *in, tt__parena *a, long *offs, int maxoffs, int *expect)
{
    const char *cv[MAX_CONN_FIELDS];
    size_t cl[MAX_CONN_FIELDS];
    int nc = 0, k = 0;
    *expect = 0;
    for (int i = 0; i < in->n; i++) {
        if (is(in->names[i], in->nlens[i], "Connection") && nc < MAX_CONN_FIELDS) {
            cv[nc] = in->values[i];
            cl[nc++] = in->vlens[i];
        } else if (is(in->names[i], in->nlens[i], "Expect") &&
                   list_has(in->values[i], in->vlens[i], "100-continue")) {
            *expect = 1;
        }
    }
    for (int i = 0; i < in->n; i++) {
        const char *nm = in->names[i];
        size_t nl = in->nlens[i];
        if (tt__proxy_hop(nm, nl, cv, cl, nc) || req_own(nm, nl, in->forwarded)) continue;
        if (k + 6 > maxoffs) return -ENOSPC;
        long o = tt__parena_line(a, nm, nl, in->values[i], in->vlens[i]);
        if (o < 0) return -ENOMEM;
        offs[k++] = o;
    }
    if (k + 6 > maxoffs) return -ENOSPC;
    long o = 0;
    if (in->up_host)
        o = tt__parena_line(a, "Host", 4, in->up_host, strlen(in->up_host));
    else if (in->host)
        o = tt__parena_line(a, "Host", 4, in->host, in->host_len);
    if (o < 0) return -ENOMEM;
    if (in->up_host || in->host) offs[k++] = o;
    char via[TT__PROXY_VIA_MAX + 8];
    size_t vl = strlen(in->via);
    if (vl > TT__PROXY_VIA_MAX) vl = TT__PROXY_VIA_MAX; /* tt_proxy_new refuses longer */
    memcpy(via, in->minor ? "1.1 " : "1.0 ", 4);
    memcpy(via + 4, in->via, vl);
    via[4 + vl] = 0;
    if (combined(a, in, "Via", via, &offs[k++]) < 0) return -ENOMEM;
    /* the earlier hops are kept even when this one's address is unknown */
    const char *ip = in->peer_ip ? in->peer_ip : "unknown";
    if (combined(a, in, "X-Forwarded-For", ip, &offs[k++]) < 0) return -ENOMEM;
    if (in->forwarded) {
        if ((o = tt__parena_line(a, "X-Forwarded-Proto", 17, in->proto, strlen(in->proto))) < 0)
            return -ENOMEM;
        offs[k++] = o;
        if (in->host) {
            o = tt__parena_line(a, "X-Forwarded-Host", 16, in->host, in->host_len);
            if (o < 0) return -ENOMEM;
            offs[k++] = o;
        }
    }
    return k;
}

/* ---- the response ---- */

/* Fields the proxy's server writes itself on a response. */
static int res_own(const char *nm, size_t nl)
{
    return is(nm, nl, "Content-Length") || is(nm, nl, "Date") || is(nm, nl, "Server") ||
           is(nm, nl, "Via");
}

int tt__proxy_res_fields(const tt_exchange *x, const char *via, tt__parena *scratch,
                         int (*add)(void *ud, const char *name, const char *value), void *ud)
{
    const char *cv[MAX_CONN_FIELDS];
    size_t cl[MAX_CONN_FIELDS];
    int nc = 0;
    const char *h = x->head;
    scratch->len = 0;
    /* The Via line first (earlier values, then ours), then each field reusing the space. */
    if (tt__parena_put(scratch, "", 0) < 0) return -ENOMEM;
    scratch->len = 0;
    for (int i = 0; i < x->nhdrs; i++) {
        const tt_hdr_span *s = &x->hdrs[i];
        const char *nm = h + s->name;
        if (is(nm, s->name_len, "Connection") && nc < MAX_CONN_FIELDS) {
            cv[nc] = h + s->value;
            cl[nc++] = s->value_len;
        } else if (is(nm, s->name_len, "Via") && s->value_len) {
            if (tt__parena_reserve(scratch, s->value_len + 3) < 0) return -ENOMEM;
            memcpy(scratch->buf + scratch->len, h + s->value, s->value_len);
            memcpy(scratch->buf + scratch->len + s->value_len, ", ", 2);
            scratch->len += s->value_len + 2;
        }
    }
    tt__pstr v[2] = {{x->version_minor ? "1.1 " : "1.0 ", 4}, {via, strlen(via)}};
    if (tt__parena_join(scratch, v, 2) < 0) return -ENOMEM;
    size_t mark = scratch->len;
    /* all or nothing: a head the response writer cannot hold is refused before any field */
    size_t nf = 1, bytes = 3 + mark - 1;
    /* each field's verdict, so the second pass does not redo it (x->hdrs holds at most 64) */
    _Static_assert(sizeof x->hdrs / sizeof x->hdrs[0] <= 64, "one bit per field");
    uint64_t skip = 0;
    for (int i = 0; i < x->nhdrs; i++) {
        const tt_hdr_span *s = &x->hdrs[i];
        if (tt__proxy_hop(h + s->name, s->name_len, cv, cl, nc) ||
            res_own(h + s->name, s->name_len)) {
            skip |= (uint64_t)1 << i;
            continue;
        }
        nf++;
        bytes += s->name_len + s->value_len;
    }
    if (nf > TT_RES_MAX_FIELDS || bytes > TT_RES_FIELD_BYTES) return -E2BIG;
    for (int i = 0; i < x->nhdrs; i++) {
        const tt_hdr_span *s = &x->hdrs[i];
        const char *nm = h + s->name;
        if ((skip >> i) & 1) continue;
        scratch->len = mark;
        long no = tt__parena_put(scratch, nm, s->name_len);
        long val = tt__parena_put(scratch, h + s->value, s->value_len);
        if (no < 0 || val < 0) return -ENOMEM;
        int r = add(ud, scratch->buf + no, scratch->buf + val);
        if (r < 0) return r;
    }
    return add(ud, "Via", scratch->buf);
}

/* ---- the client's address ---- */

void tt__proxy_peer_ip(const tt_addr *a, char *buf, size_t size)
{
    if (a->ss.ss_family != AF_INET && a->ss.ss_family != AF_INET6) {
        snprintf(buf, size, "unix");
        return;
    }
    char t[128];
    tt_addr_format(a, t, sizeof t);
    char *colon = strrchr(t, ':');
    if (colon) *colon = 0;
    char *s = t;
    if (*s == '[') {
        s++;
        size_t n = strlen(s);
        if (n && s[n - 1] == ']') s[n - 1] = 0;
    }
    snprintf(buf, size, "%s", s);
}
