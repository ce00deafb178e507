/* static.c — static files: GET/HEAD, Content-Type by extension, Last-Modified /
 * If-Modified-Since, ETag / If-None-Match (304), one Range (206/416), index.html, sendfile for
 * large files (small ones are copied so pipelined responses stay batched), and no escape from
 * the root: ".." segments are refused and files are opened with openat2(RESOLVE_BENEATH) (or a
 * realpath check where openat2 is missing), so symlinks cannot lead outside. Each worker keeps
 * recently served files open (filecache.c), so a hot file costs no open/fstat/close. An
 * ordinary route: it uses only the public request and response API. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/api.h"
#include "handlers/filecache.h"
#include "handlers/static.h"
#include "tether/server.h"

#define SMALL_FILE 16384

static const struct {
    const char *ext, *type;
} types[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"txt", "text/plain; charset=utf-8"},
    {"md", "text/markdown; charset=utf-8"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"ico", "image/x-icon"},
    {"wasm", "application/wasm"},
    {"pdf", "application/pdf"},
    {"xml", "application/xml"},
    {"woff2", "font/woff2"},
    {"woff", "font/woff"},
};

static const char *content_type(const char *path)
{
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    if (dot && (!slash || dot > slash))
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (!strcasecmp(dot + 1, types[i].ext)) return types[i].type;
    return "application/octet-stream";
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

int tt__static_clean_path(const char *p, size_t n, char *out, size_t size)
{
    size_t o = 0;
    if (size == 0) return -1;
    for (size_t i = 0; i < n; i++) {
        int ch = (unsigned char)p[i];
        if (ch == '%') {
            if (i + 2 >= n) return -1;
            int a = hexval(p[i + 1]), b = hexval(p[i + 2]);
            if (a < 0 || b < 0) return -1;
            ch = a * 16 + b;
            i += 2;
        }
        if (ch == 0 || ch == '\\') return -1;
        if (o + 1 >= size) return -1;
        if (ch == '/' && (o == 0 || out[o - 1] == '/'))
            continue; /* collapse leading and repeated slashes */
        out[o++] = (char)ch;
    }
    out[o] = 0;
    /* refuse any "." or ".." segment */
    for (char *s = out; *s;) {
        char *e = strchr(s, '/');
        size_t l = e ? (size_t)(e - s) : strlen(s);
        if ((l == 1 && s[0] == '.') || (l == 2 && s[0] == '.' && s[1] == '.')) return -1;
        s += l;
        if (*s == '/') s++;
    }
    return (int)o;
}

int tt__static_dir_location(const char *rel, char *out, size_t size)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    if (size < 3) return -1;
    out[o++] = '/';
    for (const unsigned char *s = (const unsigned char *)rel; *s; s++) {
        /* RFC 3986 pchar and '/': unreserved, sub-delims, ':' and '@' stay as they are */
        if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
            strchr("-._~!$&'()*+,;=:@/", *s)) {
            if (o + 2 >= size) return -1;
            out[o++] = (char)*s;
        } else {
            if (o + 4 >= size) return -1;
            out[o++] = '%';
            out[o++] = hex[*s >> 4];
            out[o++] = hex[*s & 15];
        }
    }
    if (o > 1) out[o++] = '/';
    out[o] = 0;
    return (int)o;
}

static time_t parse_http_date(const char *v, size_t n)
{
    char tmp[64];
    struct tm tm;
    if (n >= sizeof tmp) return (time_t)-1;
    memcpy(tmp, v, n);
    tmp[n] = 0;
    memset(&tm, 0, sizeof tm);
    const char *e = strptime(tmp, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!e) return (time_t)-1;
    return timegm(&tm);
}

/* Does an If-None-Match list contain etag (or "*")? */
static int etag_match(const char *v, size_t n, const char *etag)
{
    size_t el = strlen(etag);
    for (size_t i = 0; i < n;) {
        while (i < n && (v[i] == ' ' || v[i] == ',' || v[i] == '\t'))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        const char *t = v + s;
        size_t tl = e - s;
        if (tl == 1 && t[0] == '*') return 1;
        if (tl > 2 && t[0] == 'W' && t[1] == '/') {
            t += 2;
            tl -= 2;
        }
        if (tl == el && !memcmp(t, etag, el)) return 1;
    }
    return 0;
}

/* Digits p[0..n) as a non-negative number that saturates at RANGE_MAX (any position that
 * large is past every file); -1 if empty or not all digits. */
#define RANGE_MAX ((long long)1 << 62)
static long long range_pos(const char *p, size_t n)
{
    if (n == 0) return -1;
    long long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return -1;
        /* v < 2^62 / 10 here, so v * 10 + 9 < 2^62 + 9: no overflow */
        v = v >= RANGE_MAX / 10 ? RANGE_MAX : v * 10 + (p[i] - '0');
        if (v > RANGE_MAX) v = RANGE_MAX;
    }
    return v;
}

int tt__static_parse_range(const char *v, size_t n, off_t size, off_t *from, off_t *to)
{
    if (n < 7 || strncasecmp(v, "bytes=", 6)) return 0;
    v += 6;
    n -= 6;
    if (memchr(v, ',', n)) return 0; /* multiple ranges: serve the whole file */
    const char *dash = memchr(v, '-', n);
    if (!dash || size < 0) return 0;
    size_t al = (size_t)(dash - v), bl = n - al - 1;
    long long a = al ? range_pos(v, al) : -1, b = bl ? range_pos(dash + 1, bl) : -1;
    if ((al && a < 0) || (bl && b < 0) || (!al && !bl)) return 0; /* invalid: ignore */
    if (!al) {                                                    /* suffix: the last b bytes */
        if (b == 0 || size == 0) return -1;
        *from = b >= size ? 0 : size - b;
        *to = size - 1;
        return 1;
    }
    if (bl && b < a) return 0; /* invalid: ignore */
    if (a >= size) return -1;
    *from = a;
    *to = (!bl || b >= size) ? size - 1 : b;
    return 1;
}

TT_API void tt_static_worker_exit(void *unused)
{
    (void)unused;
    tt__fcache_free();
}

/* An error answer for a failed open (-errno) or a header that could not be stored: missing
 * files are 404 and unreadable ones 403 (as nginx); running out of descriptors or memory is a
 * 503 with Retry-After, never a 404 a cache would keep; anything else is a 500. */
static void fail(tt_res *res, int err)
{
    switch (err) {
    case -ENOENT:
    case -ENOTDIR:
    case -ELOOP:
    case -ENAMETOOLONG:
    case -ENXIO:
    case -ENODEV: tt_res_send(res, 404, "text/plain", "404 Not Found\n", 14); return;
    case -EACCES:
    case -EPERM: tt_res_send(res, 403, "text/plain", "403 Forbidden\n", 14); return;
    case -EMFILE:
    case -ENFILE:
    case -ENOMEM:
    case -EAGAIN:
        tt_res_header(res, "Retry-After", "1"); /* a fresh head: cannot fail */
        tt_res_send(res, 503, "text/plain", "503 Service Unavailable\n", 24);
        return;
    default: tt_res_send(res, 500, "text/plain", "500 Internal Server Error\n", 26);
    }
}

/* A directory asked for without its trailing slash: 301 to the clean path plus '/'. The target
 * is rebuilt from the cleaned path, so "//host" cannot become an off-site Location. */
static void redirect_dir(tt_res *res, const char *rel)
{
    char loc[3 * 1024 + 4];
    if (tt__static_dir_location(rel, loc, sizeof loc) < 0) {
        tt_res_send(res, 414, "text/plain", "414 URI Too Long\n", 17);
        return;
    }
    if (tt_res_header(res, "Location", loc) < 0) { /* the header store is full */
        tt_res_send(res, 414, "text/plain", "414 URI Too Long\n", 17);
        return;
    }
    tt_res_send(res, 301, "text/plain", "301 Moved Permanently\n", 22);
}

/* Open rel (a directory means its index.html) as a regular file into *st / *v: the fd (and
 * *fe: 1 when it belongs to the cache), or -1 after answering (404 for anything not regular, the
 * redirect of a directory without its slash), never blocking (FIFOs open non-blocking). */
static int open_file(tt_req *req, tt_res *res, const char *root, char *rel, int rl, struct stat *st,
                     tt__fvalid *v, int *fe)
{
    size_t plen;
    const char *p = tt_req_path(req, &plen);
    uint64_t now = tt_loop_now(tt_req_loop(req));
    int fd = tt__fcache_open(now, root, rel, st, v, fe);
    if (fd >= 0 && S_ISDIR(st->st_mode)) {
        close(fd); /* directories are never cached */
        if (plen == 0 || p[plen - 1] != '/') {
            redirect_dir(res, rel);
            return -1;
        }
        strcpy(rel + rl, rl ? "/index.html" : "index.html");
        fd = tt__fcache_open(now, root, rel, st, v, fe);
    }
    if (fd >= 0 && !S_ISREG(st->st_mode)) { /* a FIFO, socket or device: not served */
        if (!*fe) close(fd);
        fd = -ENOENT;
    }
    if (fd < 0) {
        fail(res, fd);
        return -1;
    }
    return fd;
}

/* The body: small files and HEAD are copied (pipelined responses stay batched), larger ones
 * go with sendfile, which takes fd (then never the cache's). Closes fd unless fe. */
static void send_body(tt_res *res, int head, int status, int fd, int fe, off_t from, size_t len)
{
    if (head || len <= SMALL_FILE) {
        char buf[SMALL_FILE];
        size_t got = 0;
        while (!head && got < len) {
            ssize_t n = pread(fd, buf + got, len - got, from + (off_t)got);
            if (n <= 0) break;
            got += (size_t)n;
        }
        if (!head && got < len) /* the file shrank: pad to keep framing */
            memset(buf + got, 0, len - got);
        if (!fe) close(fd);
        tt_res_start(res, status, (long long)len);
        if (!head) tt_res_write(res, buf, len);
    } else {
        tt_res_start(res, status, (long long)len);
        tt_res_sendfile(res, fd, from, len);
    }
    tt_res_end(res);
}

TT_API void tt_static_handler(tt_req *req, tt_res *res, void *rootp)
{
    const char *root = rootp;
    tt_http1_method mid = tt_req_method_id(req);
    if (mid != TT_HTTP1_M_GET && mid != TT_HTTP1_M_HEAD) {
        tt_res_header(res, "Allow", "GET, HEAD");
        tt_res_send(res, 405, "text/plain", "405 Method Not Allowed\n", 23);
        return;
    }
    char rel[1024];
    size_t plen;
    const char *p = tt_req_path(req, &plen);
    int rl = tt__static_clean_path(p, plen, rel, sizeof rel - 16);
    if (rl < 0) {
        tt_res_send(res, 404, "text/plain", "404 Not Found\n", 14);
        return;
    }
    struct stat st;
    tt__fvalid v;
    int fe; /* the fd belongs to the cache */
    int fd = open_file(req, res, root, rel, rl, &st, &v, &fe);
    if (fd < 0) return;
    size_t vl;
    const char *inm = tt_req_header(req, "If-None-Match", &vl);
    int not_modified = 0;
    if (inm) {
        not_modified = etag_match(inm, vl, v.etag);
    } else {
        const char *ims = tt_req_header(req, "If-Modified-Since", &vl);
        if (ims) {
            time_t t = parse_http_date(ims, vl);
            not_modified = t != (time_t)-1 && st.st_mtime <= t;
        }
    }
    off_t from = 0, to = st.st_size - 1;
    int r = 0; /* the Range: 1 satisfiable, 0 none or ignored, -1 unsatisfiable */
    const char *range = tt_req_header(req, "Range", &vl);
    if (!not_modified && range && st.st_size > 0)
        r = tt__static_parse_range(range, vl, st.st_size, &from, &to);
    size_t len = st.st_size > 0 ? (size_t)(to - from + 1) : 0;
    int head = mid == TT_HTTP1_M_HEAD;
    if (!not_modified && r >= 0 && fe && !head && len > SMALL_FILE) {
        /* sendfile takes its own fd, a cached one stays with the cache; dup'ed before any
         * header, so that running out of descriptors is a clean 503 */
        int own = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (own < 0) {
            fail(res, -errno);
            return;
        }
        fd = own;
        fe = 0;
    }
    int bad = tt_res_header(res, "ETag", v.etag) < 0;
    bad |= tt_res_header(res, "Last-Modified", v.lm) < 0;
    char cr[96];
    if (r < 0)
        snprintf(cr, sizeof cr, "bytes */%lld", (long long)st.st_size);
    else if (r > 0)
        snprintf(cr, sizeof cr, "bytes %lld-%lld/%lld", (long long)from, (long long)to,
                 (long long)st.st_size);
    if (r) bad |= tt_res_header(res, "Content-Range", cr) < 0;
    if (!not_modified && r >= 0) {
        bad |= tt_res_header(res, "Content-Type", content_type(rel)) < 0;
        bad |= tt_res_header(res, "Accept-Ranges", "bytes") < 0;
    }
    if (bad || not_modified || r < 0) {
        if (!fe) close(fd);
        if (bad) /* every header write is checked: no response with a header missing */
            fail(res, -ENOSPC);
        else if (r < 0)
            tt_res_send(res, 416, "text/plain", "416 Range Not Satisfiable\n", 26);
        else {
            tt_res_start(res, 304, -1);
            tt_res_end(res);
        }
        return;
    }
    send_body(res, head, r > 0 ? 206 : 200, fd, fe, from, len);
}
