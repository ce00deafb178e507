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

/* Percent-decode path into out (relative, without the leading '/'); refuse NUL, "..", and
 * backslashes. Returns the length or -1. */
static int clean_path(const char *p, size_t n, char *out, size_t size)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int ch = (unsigned char)p[i];
        if (ch == '%') {
            if (i + 2 >= n + 0 && i + 2 > n - 1 + 0) {
                if (i + 2 >= n) return -1;
            }
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

/* Parse one "bytes=a-b" range against size. 1 ok, 0 ignore (serve 200), -1 unsatisfiable. */
static int parse_range(const char *v, size_t n, off_t size, off_t *from, off_t *to)
{
    if (n < 7 || strncasecmp(v, "bytes=", 6)) return 0;
    v += 6;
    n -= 6;
    if (memchr(v, ',', n)) return 0; /* multiple ranges: serve the whole file */
    const char *dash = memchr(v, '-', n);
    if (!dash) return 0;
    long long a = -1, b = -1;
    for (const char *p = v; p < dash; p++) {
        if (*p < '0' || *p > '9') return 0;
        a = (a < 0 ? 0 : a) * 10 + (*p - '0');
        if (a > (1ll << 60)) return 0;
    }
    for (const char *p = dash + 1; p < v + n; p++) {
        if (*p < '0' || *p > '9') return 0;
        b = (b < 0 ? 0 : b) * 10 + (*p - '0');
        if (b > (1ll << 60)) return 0;
    }
    if (a < 0) { /* suffix: last b bytes */
        if (b <= 0) return b == 0 ? -1 : 0;
        *from = b >= size ? 0 : size - b;
        *to = size - 1;
        return size > 0 ? 1 : -1;
    }
    if (a >= size) return -1;
    if (b >= 0 && b < a) return 0;
    *from = a;
    *to = (b < 0 || b >= size) ? size - 1 : b;
    return 1;
}

TT_API void tt_static_worker_exit(void *unused)
{
    (void)unused;
    tt__fcache_free();
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
    int rl = clean_path(p, plen, rel, sizeof rel - 16);
    if (rl < 0) {
        tt_res_send(res, 404, "text/plain", "404 Not Found\n", 14);
        return;
    }
    uint64_t now = tt_loop_now(tt_req_loop(req));
    struct stat st;
    tt__fvalid v;
    int fe; /* the fd belongs to the cache */
    int fd = tt__fcache_open(now, root, rel, &st, &v, &fe);
    if (fd >= 0 && S_ISDIR(st.st_mode)) {
        close(fd); /* directories are never cached */
        fd = -1;
        if (plen == 0 || p[plen - 1] != '/') {
            char loc[1100];
            snprintf(loc, sizeof loc, "%.*s/", (int)plen, p);
            tt_res_header(res, "Location", loc);
            tt_res_send(res, 301, "text/plain", "301 Moved Permanently\n", 22);
            return;
        }
        strcpy(rel + rl, rl ? "/index.html" : "index.html");
        fd = tt__fcache_open(now, root, rel, &st, &v, &fe);
    }
    if (fd < 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0 && !fe) close(fd);
        tt_res_send(res, 404, "text/plain", "404 Not Found\n", 14);
        return;
    }
    const char *etag = v.etag, *lm = v.lm;
    tt_res_header(res, "ETag", etag);
    tt_res_header(res, "Last-Modified", lm);
    size_t vl;
    const char *inm = tt_req_header(req, "If-None-Match", &vl);
    int not_modified = 0;
    if (inm) {
        not_modified = etag_match(inm, vl, etag);
    } else {
        const char *ims = tt_req_header(req, "If-Modified-Since", &vl);
        if (ims) {
            time_t t = parse_http_date(ims, vl);
            not_modified = t != (time_t)-1 && st.st_mtime <= t;
        }
    }
    if (not_modified) {
        if (!fe) close(fd);
        tt_res_start(res, 304, -1);
        tt_res_end(res);
        return;
    }
    tt_res_header(res, "Content-Type", content_type(rel));
    tt_res_header(res, "Accept-Ranges", "bytes");
    off_t from = 0, to = st.st_size - 1;
    int status = 200;
    const char *range = tt_req_header(req, "Range", &vl);
    if (range && st.st_size > 0) {
        int r = parse_range(range, vl, st.st_size, &from, &to);
        if (r < 0) {
            char cr[64];
            snprintf(cr, sizeof cr, "bytes */%lld", (long long)st.st_size);
            tt_res_header(res, "Content-Range", cr);
            if (!fe) close(fd);
            tt_res_send(res, 416, "text/plain", "416 Range Not Satisfiable\n", 26);
            return;
        }
        if (r > 0) {
            char cr[96];
            snprintf(cr, sizeof cr, "bytes %lld-%lld/%lld", (long long)from, (long long)to,
                     (long long)st.st_size);
            tt_res_header(res, "Content-Range", cr);
            status = 206;
        }
    }
    size_t len = st.st_size > 0 ? (size_t)(to - from + 1) : 0;
    if (mid == TT_HTTP1_M_HEAD || len <= SMALL_FILE) {
        char buf[SMALL_FILE];
        size_t got = 0;
        while (mid != TT_HTTP1_M_HEAD && got < len) {
            ssize_t n = pread(fd, buf + got, len - got, from + (off_t)got);
            if (n <= 0) break;
            got += (size_t)n;
        }
        if (mid != TT_HTTP1_M_HEAD && got < len) /* the file shrank: pad to keep framing */
            memset(buf + got, 0, len - got);
        if (!fe) close(fd);
        tt_res_start(res, status, (long long)len);
        if (mid != TT_HTTP1_M_HEAD) tt_res_write(res, buf, len);
    } else {
        /* sendfile takes its own fd: a cached one stays with the cache */
        if (fe && (fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0) {
            tt_res_send(res, 503, "text/plain", "503 Service Unavailable\n", 24);
            return;
        }
        tt_res_start(res, status, (long long)len);
        tt_res_sendfile(res, fd, from, len);
    }
    tt_res_end(res);
}
