/* static.c — static files: GET/HEAD, Content-Type by extension, Last-Modified /
 * If-Modified-Since, ETag / If-None-Match (304), one Range (206/416), index.html, sendfile for
 * large files (small ones are copied so pipelined responses stay batched), and no escape from
 * the root: ".." segments are refused and files are opened with openat2(RESOLVE_BENEATH) (or a
 * realpath check where openat2 is missing), so symlinks cannot lead outside. Each worker keeps
 * recently served files open (the open-file cache below), so a hot file costs no
 * open/fstat/close. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/api.h"
#include "server/server_int.h"

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

/* Open rel beneath root (dfd: root opened O_PATH, or -1 to open it here). */
static int open_beneath(const char *root, int dfd, const char *rel)
{
    static int no_openat2;
    if (!*rel) rel = ".";
    if (!no_openat2) {
        int own = dfd < 0;
        if (own && (dfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) return -errno;
        struct open_how how = {.flags = O_RDONLY | O_CLOEXEC, .resolve = RESOLVE_BENEATH};
        long fd = syscall(SYS_openat2, dfd, rel, &how, sizeof how);
        int e = errno;
        if (own) close(dfd);
        if (fd >= 0) return (int)fd;
        if (e != ENOSYS) return e == EXDEV ? -ENOENT : -e;
        no_openat2 = 1;
    }
    char full[PATH_MAX], real[PATH_MAX], rroot[PATH_MAX];
    if (snprintf(full, sizeof full, "%s/%s", root, rel) >= (int)sizeof full) return -ENAMETOOLONG;
    if (!realpath(root, rroot) || !realpath(full, real)) return -ENOENT;
    size_t rl = strlen(rroot);
    if (strncmp(real, rroot, rl) != 0 || (real[rl] != 0 && real[rl] != '/')) return -ENOENT;
    int fd = open(real, O_RDONLY | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

static void http_date(time_t t, char *buf, size_t n)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

/* ---- open-file cache ----
 * One per worker (no locks), like nginx's open_file_cache and h2o's filecache: a regular file
 * keeps its fd, stat, ETag and Last-Modified; the entry is trusted for FCACHE_VALID_MS of loop
 * time, then revalidated with one fstatat (same inode, size and mtime: kept; else reopened).
 * So a changed file is served at most that long after the change. Direct-mapped by a hash of
 * (root, path): a colliding entry is closed and replaced. Root directories stay open (O_PATH). */
#define FCACHE_SLOTS    64
#define FCACHE_VALID_MS 1000
#define FCACHE_ROOTS    4

typedef struct fentry {
    const char *root; /* the route's root (pointer identity) */
    int fd;           /* -1: empty */
    uint64_t checked; /* loop time of the last validation */
    struct stat st;
    char etag[40], lm[40];
    uint16_t rel_len;
    char rel[238];
} fentry;

struct tt__fcache {
    struct {
        const char *root;
        int dfd;
    } roots[FCACHE_ROOTS];
    int nroots;
    fentry e[FCACHE_SLOTS];
};

void tt__fcache_free(tt__worker *w)
{
    struct tt__fcache *fc = w->fcache;
    if (!fc) return;
    for (int i = 0; i < FCACHE_SLOTS; i++)
        if (fc->e[i].fd >= 0) close(fc->e[i].fd);
    for (int i = 0; i < fc->nroots; i++)
        close(fc->roots[i].dfd);
    free(fc);
    w->fcache = NULL;
}

static int root_dfd(struct tt__fcache *fc, const char *root)
{
    for (int i = 0; i < fc->nroots; i++)
        if (fc->roots[i].root == root) return fc->roots[i].dfd;
    if (fc->nroots == FCACHE_ROOTS) return -1; /* many roots: open per request */
    int dfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return -1;
    fc->roots[fc->nroots].root = root;
    fc->roots[fc->nroots++].dfd = dfd;
    return dfd;
}

/* The validators of a file: ETag ("mtime-size") and Last-Modified, 40 bytes each. */
static void validators(const struct stat *st, char etag[40], char lm[40])
{
    snprintf(etag, 40, "\"%llx-%llx\"", (unsigned long long)st->st_mtime,
             (unsigned long long)st->st_size);
    http_date(st->st_mtime, lm, 40);
}

static void entry_fill(fentry *e, int fd, const struct stat *st)
{
    e->fd = fd;
    e->st = *st;
    validators(st, e->etag, e->lm);
}

/* root/rel opened and stat'ed. Regular files come from (or go into) the cache: then *e is
 * set and the fd belongs to the cache; otherwise *e is NULL and the caller closes fd. */
static int file_open(tt__worker *w, uint64_t now, const char *root, const char *rel,
                     struct stat *st, fentry **e)
{
    *e = NULL;
    struct tt__fcache *fc = w->fcache;
    if (!fc && (fc = w->fcache = malloc(sizeof *fc))) {
        fc->nroots = 0;
        for (int i = 0; i < FCACHE_SLOTS; i++)
            fc->e[i].fd = -1;
    }
    size_t rl = strlen(rel);
    fentry *slot = NULL;
    int dfd = -1;
    if (fc && rl < sizeof fc->e[0].rel) {
        uint64_t h = 1469598103934665603ull ^ (uintptr_t)root;
        for (size_t i = 0; i < rl; i++)
            h = (h ^ (unsigned char)rel[i]) * 1099511628211ull;
        slot = &fc->e[(h ^ (h >> 29)) % FCACHE_SLOTS];
        dfd = root_dfd(fc, root);
        if (slot->fd >= 0 && slot->root == root && slot->rel_len == rl &&
            !memcmp(slot->rel, rel, rl)) {
            struct stat now_st;
            if (now - slot->checked < FCACHE_VALID_MS ||
                (dfd >= 0 && fstatat(dfd, rl ? rel : ".", &now_st, 0) == 0 &&
                 now_st.st_ino == slot->st.st_ino && now_st.st_dev == slot->st.st_dev &&
                 now_st.st_size == slot->st.st_size &&
                 now_st.st_mtim.tv_sec == slot->st.st_mtim.tv_sec &&
                 now_st.st_mtim.tv_nsec == slot->st.st_mtim.tv_nsec)) {
                if (now - slot->checked >= FCACHE_VALID_MS) slot->checked = now;
                *st = slot->st;
                *e = slot;
                return slot->fd;
            }
            close(slot->fd); /* changed or gone: forget it */
            slot->fd = -1;
        }
    }
    int fd = open_beneath(root, dfd, rel);
    if (fd < 0) return fd;
    if (fstat(fd, st) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    if (slot && S_ISREG(st->st_mode)) {
        if (slot->fd >= 0) close(slot->fd);
        slot->root = root;
        slot->checked = now;
        slot->rel_len = (uint16_t)rl;
        memcpy(slot->rel, rel, rl);
        entry_fill(slot, fd, st);
        *e = slot;
    }
    return fd;
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

TT_API void tt_static_handler(tt_req *req, tt_res *res, void *rootp)
{
    const char *root = rootp;
    int mid = req->req.method_id;
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
    tt__worker *w = req->conn->w;
    uint64_t now = tt_loop_now(w->loop);
    struct stat st;
    fentry *fe;
    int fd = file_open(w, now, root, rel, &st, &fe);
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
        fd = file_open(w, now, root, rel, &st, &fe);
    }
    if (fd < 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0 && !fe) close(fd);
        tt_res_send(res, 404, "text/plain", "404 Not Found\n", 14);
        return;
    }
    char etag_buf[40], lm_buf[40];
    const char *etag = etag_buf, *lm = lm_buf;
    if (fe) {
        etag = fe->etag;
        lm = fe->lm;
    } else {
        validators(&st, etag_buf, lm_buf);
    }
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
