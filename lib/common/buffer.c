/* buffer.c — byte buffers over a per-loop pool of fixed-size blocks (see tether/buffer.h).
 *
 * A block is (data - off) .. (data - off + off + cap). Blocks of exactly the pool's size go back
 * to the pool's free list (at most max_free are cached, the rest are freed); larger blocks, made
 * for requests above the block size (a growing request body), are mapped whole pages and
 * unmapped on release. Why not malloc: glibc raises its mmap threshold each time a mapped chunk
 * is freed, so after the first large body the next ones come from the heap, fragment it, and a
 * server's RSS stays high after a burst of bodies; mapped blocks always go back to the kernel. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/api.h"
#include "tether/buffer.h"

struct tt_bufpool {
    size_t block_size;
    size_t max_free;
    size_t nfree;
    size_t in_use;
    void *free_list; /* singly linked through the first word of each cached block */
};

TT_API tt_bufpool *tt_bufpool_new(size_t block_size, size_t max_free)
{
    tt_bufpool *p = calloc(1, sizeof(*p));
    if (!p) return NULL;
    if (!block_size) block_size = 16384;
    if (block_size < sizeof(void *)) block_size = sizeof(void *);
    if (block_size > UINT32_MAX) block_size = UINT32_MAX;
    p->block_size = block_size;
    p->max_free = max_free ? max_free : 64;
    return p;
}

TT_API void tt_bufpool_free(tt_bufpool *pool)
{
    if (!pool) return;
    while (pool->free_list) {
        void *b = pool->free_list;
        pool->free_list = *(void **)b;
        free(b);
    }
    free(pool);
}

TT_API size_t tt_bufpool_block_size(const tt_bufpool *pool)
{
    return pool->block_size;
}

TT_API size_t tt_bufpool_in_use(const tt_bufpool *pool)
{
    return pool->in_use;
}

#define BIG_ROUND 4096u /* large blocks are whole pages */

/* The size of a block for size bytes: the pool's size, or whole pages above it. */
static size_t block_size_for(const tt_bufpool *pool, size_t size)
{
    if (size <= pool->block_size) return pool->block_size;
    size_t r = (size + BIG_ROUND - 1) & ~(size_t)(BIG_ROUND - 1);
    return r > (UINT32_MAX & ~(size_t)(BIG_ROUND - 1)) ? UINT32_MAX & ~(size_t)(BIG_ROUND - 1) : r;
}

/* A block of size bytes (block_size_for; the pool's size comes from the free list when possible).
 */
static char *block_get(tt_bufpool *pool, size_t size)
{
    char *b;
    if (size > pool->block_size) {
        b = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (b == MAP_FAILED) return NULL;
    } else if (pool->free_list) {
        b = pool->free_list;
        pool->free_list = *(void **)b;
        pool->nfree--;
    } else {
        b = malloc(size);
        if (!b) return NULL;
    }
    pool->in_use++;
    return b;
}

static void block_put(tt_bufpool *pool, char *b, size_t size)
{
    pool->in_use--;
    if (size > pool->block_size) {
        munmap(b, size);
        return;
    }
    if (pool->nfree < pool->max_free) {
        *(void **)b = pool->free_list;
        pool->free_list = b;
        pool->nfree++;
        return;
    }
    free(b);
}

TT_API char *tt_buf_reserve(tt_buf *b, tt_bufpool *pool, size_t want)
{
    if (b->data && b->cap - b->len >= want) return b->data + b->len;
    if (want > UINT32_MAX - b->len) return NULL;
    if (!b->data) {
        size_t size = block_size_for(pool, want);
        char *blk = block_get(pool, size);
        if (!blk) return NULL;
        b->data = blk;
        b->len = 0;
        b->off = 0;
        b->cap = (uint32_t)size;
        return b->data;
    }
    size_t total = (size_t)b->off + b->cap;
    char *start = b->data - b->off;
    if (total - b->len >= want) { /* compacting makes room */
        memmove(start, b->data, b->len);
        b->data = start;
        b->cap = (uint32_t)total;
        b->off = 0;
        return b->data + b->len;
    }
    size_t size = total * 2;
    if (size < b->len + want) size = b->len + want;
    size = block_size_for(pool, size);
    if (size < b->len + want) return NULL; /* over the largest block */
    char *blk = block_get(pool, size);
    if (!blk) return NULL;
    memcpy(blk, b->data, b->len);
    block_put(pool, start, total);
    b->data = blk;
    b->off = 0;
    b->cap = (uint32_t)size;
    return b->data + b->len;
}

TT_API void tt_buf_consume(tt_buf *b, size_t n)
{
    if (!b->data) return;
    if (n >= b->len) {
        b->data -= b->off;
        b->cap += b->off;
        b->off = 0;
        b->len = 0;
        return;
    }
    b->data += n;
    b->len -= n;
    b->off += (uint32_t)n;
    b->cap -= (uint32_t)n;
}

TT_API int tt_buf_append(tt_buf *b, tt_bufpool *pool, const void *src, size_t n)
{
    if (!n) return 0;
    char *dst = tt_buf_reserve(b, pool, n);
    if (!dst) return -ENOMEM;
    memcpy(dst, src, n);
    b->len += n;
    return 0;
}

TT_API void tt_buf_release(tt_buf *b, tt_bufpool *pool)
{
    if (b->data) block_put(pool, b->data - b->off, (size_t)b->off + b->cap);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->off = 0;
}

TT_API int tt_buf_release_if_empty(tt_buf *b, tt_bufpool *pool)
{
    if (b->len) return 0;
    tt_buf_release(b, pool);
    return 1;
}
