/* head.h — internal: what the head parser's parts share. parser.c (the entry points and the
 * driver), request_line.c, status_line.c, fields.c (the field section) and framing.c (field
 * semantics and the framing decision) each take a tt__head: one call's view of the message. */
#ifndef TT_HTTP1_HEAD_H
#define TT_HTTP1_HEAD_H

#include <stddef.h>
#include <stdint.h>

#include <string.h>

#include "http1/chars.h"
#include "http1/scan.h"
#include "tether/http1.h"

/* tt_http1_parser.state: the start line's states, then the field section's (S_FIELD + the
 * field line's phase, tt__fl_phase). */
enum {
    S_START = 0, /* before the start line (leading CRLFs skipped) */
    S_START_LF,  /* CR seen before the start line */
    S_METHOD,
    S_TARGET,
    S_VERSION,
    S_SL_VERSION, /* response: "HTTP/x.y " */
    S_SL_STATUS,
    S_SL_REASON,
    S_LINE_LF, /* CR seen at the end of the start line */
    S_FIELD,   /* field section: S_FIELD + tt__fl_phase */
    S_END_LF = S_FIELD + TT__FL_END_LF,
    S_NAME = S_FIELD + TT__FL_NAME,
    S_OWS = S_FIELD + TT__FL_OWS,
    S_VALUE = S_FIELD + TT__FL_VALUE,
    S_VALUE_LF = S_FIELD + TT__FL_VALUE_LF,
};

/* Internal tt_http1_parser.flags bits (framing state gathered from the fields). */
enum {
    PF_RESPONSE = 1u << 0,
    PF_TE_CHUNKED_LAST = 1u << 1, /* last transfer coding so far is chunked */
    PF_TE_NOT_FINAL = 1u << 2,    /* chunked followed by another coding */
    PF_TE_OTHER = 1u << 3,        /* a coding other than chunked before chunked */
    PF_TE_BAD = 1u << 4,          /* malformed transfer-coding element */
    PF_HOST = 1u << 5,
    PF_UPGRADE_HDR = 1u << 6,
};

/* Part results: a part returns the position where the next part starts (>= 0), or
 * TT__HEAD_MORE (p->pos/state say where to resume), or TT__HEAD_FAIL (h->err says why). The
 * parts' own steps return TT__HEAD_DONE when they are complete. */
enum { TT__HEAD_DONE = 1, TT__HEAD_MORE = -2, TT__HEAD_FAIL = -1 };

/* One parse call's view: the buffer, its bounds, where the results go. */
typedef struct tt__head {
    tt_http1_parser *p;
    const char *buf;
    size_t end;            /* bytes that may be examined: min(len, max_head) */
    size_t lend;           /* bound while in the start line: min(end, max_request_line) */
    size_t max_line;       /* limits.max_request_line (or its default) */
    size_t max_head;       /* limits.max_head (or its default) */
    size_t max_fields;     /* min(limits.max_headers, caller's capacity) */
    tt_http1_request *rq;  /* the request being parsed, or NULL */
    tt_http1_response *rs; /* the response being parsed, or NULL */
    tt_header *hdr;
    uint32_t *flags; /* the message's TT_HTTP1_F_* */
    uint64_t *cl;    /* the message's content_length */
    const char **host;
    size_t *host_len;
    const char *no_host; /* where host points for responses */
    size_t no_host_len;
    const tt__http1_scan *scan;
    tt_http1_error err;
} tt__head;

/* Fail with e at pos: returns TT__HEAD_FAIL. */
static inline int tt__head_fail(tt__head *h, size_t pos, tt_http1_error e)
{
    h->p->pos = pos;
    h->err = e;
    return TT__HEAD_FAIL;
}

/* Suspend at pos in state: returns TT__HEAD_MORE. */
static inline int tt__head_more(tt__head *h, size_t pos, uint32_t state)
{
    h->p->pos = pos;
    h->p->state = state;
    return TT__HEAD_MORE;
}

/* HTTP-version = "HTTP/" DIGIT "." DIGIT at v (8 bytes): the minor version (0 or 1), -1 when
 * malformed, -2 when well formed but not HTTP/1.0 or 1.1. */
static inline int tt__http1_version(const char *v)
{
    uint64_t x, v11, v10;
    memcpy(&x, v, 8);
    memcpy(&v11, "HTTP/1.1", 8);
    memcpy(&v10, "HTTP/1.0", 8);
    if (x == v11) return 1; /* the usual ones at once */
    if (x == v10) return 0;
    if (memcmp(v, "HTTP/", 5) || !TT__IS(v[5], TT__C_DIGIT) || v[6] != '.' ||
        !TT__IS(v[7], TT__C_DIGIT))
        return -1;
    if (v[5] != '1') return -2;
    return v[7] == '0' ? 0 : 1; /* HTTP/1.x, x > 1: served as HTTP/1.1 (RFC 9110 §2.5) */
}

/* Check the first bytes of an incomplete HTTP-version (n < 9 at v): 1 if they may still become
 * one. */
static inline int tt__http1_version_prefix(const char *v, size_t n)
{
    for (size_t k = 0; k < n && k < 5; k++)
        if (v[k] != "HTTP/"[k]) return 0;
    return 1;
}

/* request_line.c: from S_METHOD (at pos) through the CR ending the line (state S_LINE_LF when
 * done; returns the position after the CR). */
ptrdiff_t tt__http1_request_line(tt__head *h, size_t pos);
/* status_line.c: from S_SL_VERSION (at pos) through the CR ending the line (state S_LINE_LF). */
ptrdiff_t tt__http1_status_line(tt__head *h, size_t pos);
/* fields.c: the field section from pos, up to and including the empty line (returns the
 * position after it: the head's length). */
ptrdiff_t tt__http1_fields(tt__head *h, size_t pos);
/* Whether tt__http1_field_semantics acts on a field named n (len bytes): a quick filter on the
 * length and the first letter (Host, Expect, Upgrade, Connection, Keep-Alive, Content-Length,
 * Transfer-Encoding); the names themselves are compared there. */
static inline int tt__http1_semantic_name(const char *n, size_t len)
{
    static const char first[18][2] = {[4] = {'h', 'h'},  [6] = {'e', 'e'},  [7] = {'u', 'u'},
                                      [10] = {'c', 'k'}, [14] = {'c', 'c'}, [17] = {'t', 't'}};
    if (len >= 18) return 0;
    char c = (char)(n[0] | 0x20);
    return c == first[len][0] || c == first[len][1];
}

/* framing.c: apply one accepted field (Host, Content-Length, Transfer-Encoding, Connection,
 * Expect, Upgrade, Keep-Alive). TT_HTTP1_OK or the error. */
tt_http1_error tt__http1_field_semantics(tt__head *h, const tt_header *f);
/* framing.c: the head is complete: decide framing and persistence. TT_HTTP1_OK or the error. */
tt_http1_error tt__http1_request_framing(tt__head *h);
tt_http1_error tt__http1_response_framing(tt__head *h, tt_http1_method req_method);

#endif
