/* serialize.c — response and request head serializers, reason phrases, the per-second
 * cached Date value and Keep-Alive parameters. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/api.h"
#include "http1/chars.h"
#include "http1/internal.h"
#include "tether/http1.h"

TT_API const char *tt_http1_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 103: return "Early Hints";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    }
    return "";
}

static __thread time_t date_sec = -1;
static __thread char date_buf[TT_HTTP1_DATE_LEN + 1];

TT_API const char *tt_http1_date(time_t now)
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char mons[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    if (!now) now = time(NULL);
    if (now == date_sec) return date_buf;
    struct tm tm;
    gmtime_r(&now, &tm);
    snprintf(date_buf, sizeof(date_buf), "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday],
             tm.tm_mday, mons[tm.tm_mon], (tm.tm_year + 1900) % 10000, tm.tm_hour, tm.tm_min,
             tm.tm_sec);
    date_sec = now;
    return date_buf;
}

static size_t u64_dec(char *out, uint64_t v)
{
    char tmp[20];
    size_t k = 0;
    do {
        tmp[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < k; i++)
        out[i] = tmp[k - 1 - i];
    return k;
}

/* Decide framing for a response (RFC 9112 §6.1-6.3, RFC 9110 §8.6). Returns the flags of
 * which framing fields to emit: 1 Content-Length, 2 Transfer-Encoding: chunked. */
static int decide(tt_http1_response_head *h)
{
    int st = h->status;
    int keep = h->keep_alive ? 1 : 0;
    int emit = 0;
    if ((st >= 100 && st < 200) || st == 204) {
        h->body = TT_HTTP1_BODY_NONE;
        if (st == 101) keep = 0;
    } else if (st == 304 || h->head_request) {
        h->body = TT_HTTP1_BODY_NONE;
        if (h->content_length >= 0) emit = 1;
    } else if (h->content_length >= 0) {
        h->body = TT_HTTP1_BODY_LENGTH;
        emit = 1;
    } else if (h->request_minor >= 1) {
        h->body = TT_HTTP1_BODY_CHUNKED;
        emit = 2;
    } else {
        h->body = TT_HTTP1_BODY_CLOSE;
        keep = 0;
    }
    h->keep_alive = keep;
    return emit;
}

/* Append helpers writing only while there is room, always counting. */
typedef struct {
    char *buf;
    size_t size, n;
} wr;

static inline void put(wr *w, const char *s, size_t n)
{
    if (w->n + n <= w->size) memcpy(w->buf + w->n, s, n);
    w->n += n;
}
#define PUTLIT(w, lit) put((w), lit, sizeof(lit) - 1)

static size_t status_line(char *out, int status, int minor, const char *reason, size_t rlen)
{
    /* "HTTP/1.1 200 " + reason; reason copied by the caller when too long */
    memcpy(out, minor ? "HTTP/1.1 " : "HTTP/1.0 ", 9);
    int s = status < 100 || status > 999 ? 500 : status;
    out[9] = (char)('0' + s / 100);
    out[10] = (char)('0' + s / 10 % 10);
    out[11] = (char)('0' + s % 10);
    out[12] = ' ';
    (void)reason;
    (void)rlen;
    return 13;
}

/* One rule for every head this file writes (internal.h). */
int tt__http1_fields_valid(const tt_header *f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!tt_http1_token_valid(f[i].name, f[i].name_len) ||
            !tt_http1_value_valid(f[i].value, f[i].value_len))
            return 0;
    return 1;
}

/* 1 if a response head's fields and reason phrase can be written without splitting it. */
static int response_valid(const tt_http1_response_head *h)
{
    return tt__http1_fields_valid(h->headers, h->num_headers) &&
           (!h->reason || tt_http1_value_valid(h->reason, strlen(h->reason)));
}

TT_API size_t tt_http1_serialize_response(char *buf, size_t size, tt_http1_response_head *h)
{
    if (!response_valid(h)) return 0;
    wr w = {buf, size, 0};
    int emit = decide(h);
    const char *reason = h->reason ? h->reason : tt_http1_reason(h->status);
    char sl[16];
    put(&w, sl, status_line(sl, h->status, 1, NULL, 0));
    put(&w, reason, strlen(reason));
    PUTLIT(&w, "\r\n");
    if (h->date) {
        PUTLIT(&w, "Date: ");
        put(&w, tt_http1_date(0), TT_HTTP1_DATE_LEN);
        PUTLIT(&w, "\r\n");
    }
    for (size_t i = 0; i < h->num_headers; i++) {
        const tt_header *f = &h->headers[i];
        put(&w, f->name, f->name_len);
        PUTLIT(&w, ": ");
        put(&w, f->value, f->value_len);
        PUTLIT(&w, "\r\n");
    }
    if (emit == 1) {
        char num[24];
        PUTLIT(&w, "Content-Length: ");
        put(&w, num, u64_dec(num, (uint64_t)h->content_length));
        PUTLIT(&w, "\r\n");
    } else if (emit == 2) {
        PUTLIT(&w, "Transfer-Encoding: chunked\r\n");
    }
    if (!h->keep_alive && h->status != 101)
        PUTLIT(&w, "Connection: close\r\n");
    else if (h->keep_alive && h->request_minor == 0)
        PUTLIT(&w, "Connection: keep-alive\r\n");
    PUTLIT(&w, "\r\n");
    return w.n;
}

#define IOV(p, l)                                                                                  \
    do {                                                                                           \
        if (k >= iovcnt) return -1;                                                                \
        iov[k].iov_base = (void *)(p);                                                             \
        iov[k].iov_len = (l);                                                                      \
        k++;                                                                                       \
    } while (0)
#define IOVLIT(lit) IOV(lit, sizeof(lit) - 1)

TT_API int tt_http1_response_iov(struct iovec *iov, int iovcnt, char *scratch, size_t scratch_size,
                                 tt_http1_response_head *h)
{
    int k = 0;
    if (scratch_size < 64 || !response_valid(h)) return -1;
    int emit = decide(h);
    const char *reason = h->reason ? h->reason : tt_http1_reason(h->status);
    size_t s = status_line(scratch, h->status, 1, NULL, 0);
    IOV(scratch, s);
    IOV(reason, strlen(reason));
    IOVLIT("\r\n");
    char *sp = scratch + s;
    if (h->date) {
        IOVLIT("Date: ");
        memcpy(sp, tt_http1_date(0), TT_HTTP1_DATE_LEN);
        IOV(sp, TT_HTTP1_DATE_LEN);
        sp += TT_HTTP1_DATE_LEN;
        IOVLIT("\r\n");
    }
    for (size_t i = 0; i < h->num_headers; i++) {
        IOV(h->headers[i].name, h->headers[i].name_len);
        IOVLIT(": ");
        IOV(h->headers[i].value, h->headers[i].value_len);
        IOVLIT("\r\n");
    }
    if (emit == 1) {
        IOVLIT("Content-Length: ");
        size_t n = u64_dec(sp, (uint64_t)h->content_length);
        IOV(sp, n);
        IOVLIT("\r\n");
    } else if (emit == 2) {
        IOVLIT("Transfer-Encoding: chunked\r\n");
    }
    if (!h->keep_alive && h->status != 101)
        IOVLIT("Connection: close\r\n");
    else if (h->keep_alive && h->request_minor == 0)
        IOVLIT("Connection: keep-alive\r\n");
    IOVLIT("\r\n");
    return k;
}

TT_API int tt_http1_token_valid(const char *s, size_t n)
{
    /* the AND of the bytes' classes, four at a time, no branch per byte: TCHAR stays set only
     * when every byte has it */
    const uint8_t *u = (const uint8_t *)s;
    unsigned all = TT__C_TCHAR;
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        all &= (unsigned)(tt__http1_cls[u[i]] & tt__http1_cls[u[i + 1]] & tt__http1_cls[u[i + 2]] &
                          tt__http1_cls[u[i + 3]]);
    for (; i < n; i++)
        all &= tt__http1_cls[u[i]];
    return n && all;
}

/* Nonzero when one of the 8 bytes in w is below 0x20 or is DEL (0x7f): the bytes a value may
 * not hold, HTAB excepted (the caller rechecks such a word byte by byte). Exact as a yes/no. */
static inline uint64_t word_suspect(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    uint64_t d = w ^ (ones * 0x7f);
    return (((w - ones * 0x20) & ~w) | ((d - ones) & ~d)) & high;
}

TT_API int tt_http1_value_valid(const char *s, size_t n)
{
    if (!n) return 1;
    if (TT__IS(s[0], TT__C_OWS) || TT__IS(s[n - 1], TT__C_OWS)) return 0;
    /* field-vchar / SP / HTAB is every byte but CTLs other than HTAB and DEL: 8 bytes a step;
     * a word with a suspect byte (or the last < 8 bytes) goes through the class table */
    size_t i = 0;
    while (i < n) {
        size_t e = i + 8;
        if (e <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (!word_suspect(w)) {
                i = e;
                continue;
            }
        } else {
            e = n;
        }
        for (; i < e; i++)
            if (!TT__IS(s[i], TT__C_VALUE | TT__C_OWS)) return 0;
    }
    return 1;
}

int tt__http1_header_split(const char *line, size_t len, tt_header *out)
{
    const char *colon = memchr(line, ':', len);
    if (!colon) return -1;
    size_t nlen = (size_t)(colon - line), v = nlen + 1, e = len;
    while (v < e && TT__IS(line[v], TT__C_OWS))
        v++;
    while (e > v && TT__IS(line[e - 1], TT__C_OWS))
        e--;
    out->name = line;
    out->name_len = nlen;
    out->value = line + v;
    out->value_len = e - v;
    return 0;
}

TT_API int tt_http1_header_line(const char *line, size_t len, tt_header *out)
{
    tt_header h;
    if (tt__http1_header_split(line, len, &h) < 0 || !tt_http1_token_valid(h.name, h.name_len) ||
        !tt_http1_value_valid(h.value, h.value_len))
        return -1;
    *out = h;
    return 0;
}

/* A request-target: visible ASCII only (no SP, CTL or DEL), never empty. */
static int target_valid(const char *t)
{
    if (!*t) return 0;
    for (; *t; t++)
        if (!TT__IS(*t, TT__C_TARGET)) return 0;
    return 1;
}

TT_API size_t tt_http1_serialize_request(char *buf, size_t size, const tt_http1_request_head *h)
{
    if (!tt_http1_token_valid(h->method, strlen(h->method)) || !target_valid(h->target) ||
        (h->host && !tt_http1_value_valid(h->host, strlen(h->host))))
        return 0;
    if (!tt__http1_fields_valid(h->headers, h->num_headers)) return 0;
    wr w = {buf, size, 0};
    put(&w, h->method, strlen(h->method));
    PUTLIT(&w, " ");
    put(&w, h->target, strlen(h->target));
    if (h->http10)
        PUTLIT(&w, " HTTP/1.0\r\n");
    else
        PUTLIT(&w, " HTTP/1.1\r\n");
    if (h->host) {
        PUTLIT(&w, "Host: ");
        put(&w, h->host, strlen(h->host));
        PUTLIT(&w, "\r\n");
    }
    for (size_t i = 0; i < h->num_headers; i++) {
        const tt_header *f = &h->headers[i];
        put(&w, f->name, f->name_len);
        PUTLIT(&w, ": ");
        put(&w, f->value, f->value_len);
        PUTLIT(&w, "\r\n");
    }
    if (h->content_length >= 0) {
        char num[24];
        PUTLIT(&w, "Content-Length: ");
        put(&w, num, u64_dec(num, (uint64_t)h->content_length));
        PUTLIT(&w, "\r\n");
    } else if (h->content_length == -2 && !h->http10) {
        PUTLIT(&w, "Transfer-Encoding: chunked\r\n");
    }
    if (h->expect_continue && !h->http10 && h->content_length != -1)
        PUTLIT(&w, "Expect: 100-continue\r\n");
    if (!h->keep_alive && !h->http10) PUTLIT(&w, "Connection: close\r\n");
    if (h->keep_alive && h->http10) PUTLIT(&w, "Connection: keep-alive\r\n");
    PUTLIT(&w, "\r\n");
    return w.n;
}

TT_API int tt_http1_keepalive_parse(const char *v, size_t len, tt_http1_keepalive *out)
{
    out->timeout = -1;
    out->max = -1;
    size_t i = 0;
    while (i < len) {
        while (i < len && (TT__IS(v[i], TT__C_OWS) || v[i] == ','))
            i++;
        if (i == len) break;
        size_t ns = i;
        while (i < len && TT__IS(v[i], TT__C_TCHAR))
            i++;
        if (i == ns) return -1;
        size_t ne = i;
        long num = -1;
        int numeric = 0;
        if (i < len && v[i] == '=') {
            i++;
            size_t vs = i;
            if (i < len && v[i] == '"') {
                i++;
                while (i < len && v[i] != '"')
                    i++;
                if (i == len) return -1;
                i++;
            } else {
                numeric = 1;
                num = 0;
                while (i < len && TT__IS(v[i], TT__C_TCHAR)) {
                    if (!TT__IS(v[i], TT__C_DIGIT))
                        numeric = 0;
                    else if (num < 100000000)
                        num = num * 10 + (v[i] - '0');
                    i++;
                }
                if (i == vs) return -1;
            }
        }
        while (i < len && TT__IS(v[i], TT__C_OWS))
            i++;
        if (i < len && v[i] != ',') return -1;
        if (numeric && TT__IEQ(v + ns, ne - ns, "timeout"))
            out->timeout = num;
        else if (numeric && TT__IEQ(v + ns, ne - ns, "max"))
            out->max = num;
    }
    return 0;
}

TT_API size_t tt_http1_keepalive_format(char *buf, size_t size, long timeout, long max)
{
    char tmp[64];
    size_t n = 0;
    if (timeout >= 0) {
        memcpy(tmp, "timeout=", 8);
        n = 8 + u64_dec(tmp + 8, (uint64_t)timeout);
    }
    if (max >= 0) {
        if (n) {
            tmp[n++] = ',';
            tmp[n++] = ' ';
        }
        memcpy(tmp + n, "max=", 4);
        n += 4;
        n += u64_dec(tmp + n, (uint64_t)max);
    }
    if (n < size) {
        memcpy(buf, tmp, n);
        buf[n] = '\0';
    }
    return n;
}
