/* filecache.h — internal to lib/handlers: a per-worker open-file cache (one per thread, no
 * locks), like nginx's open_file_cache and h2o's filecache: a regular file keeps its fd, stat,
 * ETag and Last-Modified for a short while. Freed by tt__fcache_free on the worker thread (the
 * static route's worker-exit hook). Uses the public API only. */
#ifndef TT_HANDLERS_FILECACHE_H
#define TT_HANDLERS_FILECACHE_H

#include <stdint.h>
#include <sys/stat.h>

/* The validators of a file. */
typedef struct tt__fvalid {
    char etag[40]; /* "mtime-size" in hex, quoted */
    char lm[40];   /* Last-Modified (IMF-fixdate) */
} tt__fvalid;

/* root/rel opened (beneath root: no escape through ".." or symlinks; non-blocking, so a FIFO
 * never blocks: the caller checks st->st_mode) and stat'ed into *st, *v filled. A regular file may
 * come from (or go into) the calling thread's cache: then *cached is 1 and the fd belongs to the
 * cache (valid until the next call on this thread); otherwise *cached is 0 and the caller closes
 * it. now: loop time in ms. fd or -errno. */
int tt__fcache_open(uint64_t now, const char *root, const char *rel, struct stat *st, tt__fvalid *v,
                    int *cached);
/* Close the calling thread's cached files and free its cache (safe when it has none). */
void tt__fcache_free(void);

#endif
