/* filecache.c — the open-file cache of the static files (filecache.h): per worker thread,
 * direct-mapped, revalidated after FCACHE_VALID_MS; and opening beneath a root. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "handlers/filecache.h"

/* Open rel beneath root (dfd: root opened O_PATH, or -1 to open it here). Non-blocking, as
 * nginx opens: a FIFO (or a device) opens at once instead of blocking the worker until a
 * writer comes, and the caller's fstat then refuses it (only regular files are served). */
#define OPEN_FLAGS (O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
static int open_beneath(const char *root, int dfd, const char *rel)
{
    static int no_openat2;
    if (!*rel) rel = ".";
    if (!no_openat2) {
        int own = dfd < 0;
        if (own && (dfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) return -errno;
        struct open_how how = {.flags = OPEN_FLAGS, .resolve = RESOLVE_BENEATH};
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
    int fd = open(real, OPEN_FLAGS);
    return fd < 0 ? -errno : fd;
}

static void http_date(time_t t, char *buf, size_t n)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

/* One per worker thread (no locks), like nginx's open_file_cache and h2o's filecache: a regular
 * file keeps its fd, stat, ETag and Last-Modified; the entry is trusted for FCACHE_VALID_MS of loop
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
    tt__fvalid v;
    uint16_t rel_len;
    char rel[238];
} fentry;

typedef struct fcache {
    struct {
        const char *root;
        int dfd;
    } roots[FCACHE_ROOTS];
    int nroots;
    fentry e[FCACHE_SLOTS];
} fcache;

static __thread fcache *cache; /* the calling worker's; NULL until its first static request */

void tt__fcache_free(void)
{
    fcache *fc = cache;
    if (!fc) return;
    for (int i = 0; i < FCACHE_SLOTS; i++)
        if (fc->e[i].fd >= 0) close(fc->e[i].fd);
    for (int i = 0; i < fc->nroots; i++)
        close(fc->roots[i].dfd);
    free(fc);
    cache = NULL;
}

static int root_dfd(fcache *fc, const char *root)
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

/* The validators of a file: ETag ("mtime-size") and Last-Modified. */
static void validators(const struct stat *st, tt__fvalid *v)
{
    snprintf(v->etag, sizeof v->etag, "\"%llx-%llx\"", (unsigned long long)st->st_mtime,
             (unsigned long long)st->st_size);
    http_date(st->st_mtime, v->lm, sizeof v->lm);
}

int tt__fcache_open(uint64_t now, const char *root, const char *rel, struct stat *st, tt__fvalid *v,
                    int *cached)
{
    fentry *e = NULL;
    *cached = 0;
    fcache *fc = cache;
    if (!fc && (fc = cache = malloc(sizeof *fc))) {
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
                *v = slot->v;
                *cached = 1;
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
        slot->fd = fd;
        slot->st = *st;
        validators(st, &slot->v);
        e = slot;
    }
    if (e) {
        *v = e->v;
        *cached = 1;
    } else {
        validators(st, v);
    }
    return fd;
}
