/* tether/buffer.h — growable byte buffers backed by a per-loop pool of fixed blocks, so that
 * a connection with nothing buffered holds no memory (tt_buf_release when empty). */
#ifndef TETHER_BUFFER_H
#define TETHER_BUFFER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tt_bufpool tt_bufpool;

/* A byte buffer: readable bytes are data[0, len); free space follows up to cap.
 * A zeroed tt_buf is valid and empty (data NULL, no memory held). 24 bytes. */
typedef struct tt_buf {
    char *data;   /* start of readable bytes (inside the block) */
    size_t len;   /* readable bytes */
    uint32_t cap; /* bytes from data to the end of the block */
    uint32_t off; /* bytes consumed before data (data - block start) */
} tt_buf;

/* Create a pool of blocks of block_size bytes (0: 16 KiB) keeping at most max_free blocks
 * cached (0: 64). Not thread-safe: one pool per loop thread. Returns NULL on ENOMEM. */
tt_bufpool *tt_bufpool_new(size_t block_size, size_t max_free);
/* Free the pool and its cached blocks (buffers still holding blocks must be released first). */
void tt_bufpool_free(tt_bufpool *pool);
/* The pool's block size. */
size_t tt_bufpool_block_size(const tt_bufpool *pool);
/* Blocks currently handed out (for tests and statistics). */
size_t tt_bufpool_in_use(const tt_bufpool *pool);

/* Ensure at least want bytes of free space after the readable bytes, compacting or growing
 * (blocks of the pool's size; larger requests malloc a bigger block). Returns a pointer to the
 * free space or NULL on ENOMEM. */
char *tt_buf_reserve(tt_buf *b, tt_bufpool *pool, size_t want);
/* Free space after the readable bytes (0 when nothing is held). */
static inline size_t tt_buf_space(const tt_buf *b)
{
    return b->data ? b->cap - b->len : 0;
}
/* Mark n bytes written into the reserved space as readable. */
static inline void tt_buf_commit(tt_buf *b, size_t n)
{
    b->len += n;
}
/* Drop n readable bytes from the front; an emptied buffer rewinds to its block start. */
void tt_buf_consume(tt_buf *b, size_t n);
/* Append n bytes. 0 or -ENOMEM. */
int tt_buf_append(tt_buf *b, tt_bufpool *pool, const void *src, size_t n);
/* Give the block back to the pool (readable bytes are discarded). b becomes zeroed. */
void tt_buf_release(tt_buf *b, tt_bufpool *pool);
/* Release if empty; returns nonzero if the buffer now holds no memory. */
int tt_buf_release_if_empty(tt_buf *b, tt_bufpool *pool);

/* Read once from fd into b (reserving at least min_space). Returns bytes read, 0 on EOF, or
 * -errno (-EAGAIN when nothing is ready). A buffer that held nothing and received nothing is
 * left holding nothing. */
ssize_t tt_buf_read_fd(tt_buf *b, tt_bufpool *pool, int fd, size_t min_space);

#ifdef __cplusplus
}
#endif
#endif
