/* test_buffer.c — pooled byte buffers: empty buffers hold nothing, reserve/commit/consume,
 * compaction and growth, the pool's bounded free list, reading from an fd. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tether/buffer.h"

Test(buffer, zeroed_is_empty_and_holds_nothing)
{
    tt_bufpool *p = tt_bufpool_new(0, 0);
    cr_assert_not_null(p);
    cr_assert_eq(tt_bufpool_block_size(p), 16384);
    tt_buf b = {0};
    cr_assert_eq(sizeof(tt_buf), 24);
    cr_assert_eq(tt_buf_space(&b), 0);
    cr_assert(tt_buf_release_if_empty(&b, p));
    tt_buf_consume(&b, 10); /* harmless */
    tt_buf_release(&b, p);
    cr_assert_eq(tt_bufpool_in_use(p), 0);
    tt_bufpool_free(p);
}

Test(buffer, append_consume_release)
{
    tt_bufpool *p = tt_bufpool_new(64, 4);
    tt_buf b = {0};
    cr_assert_eq(tt_buf_append(&b, p, "hello ", 6), 0);
    cr_assert_eq(tt_buf_append(&b, p, "world", 5), 0);
    cr_assert_eq(tt_bufpool_in_use(p), 1);
    cr_assert_eq(b.len, 11);
    cr_assert_eq(memcmp(b.data, "hello world", 11), 0);
    cr_assert_eq(tt_buf_space(&b), 64 - 11);
    tt_buf_consume(&b, 6);
    cr_assert_eq(b.len, 5);
    cr_assert_eq(memcmp(b.data, "world", 5), 0);
    cr_assert_eq(b.off, 6);
    cr_assert(!tt_buf_release_if_empty(&b, p));
    tt_buf_consume(&b, 5); /* emptied: rewinds to the block start */
    cr_assert_eq(b.len, 0);
    cr_assert_eq(b.off, 0);
    cr_assert_eq(tt_buf_space(&b), 64);
    cr_assert(tt_buf_release_if_empty(&b, p));
    cr_assert_null(b.data);
    cr_assert_eq(tt_bufpool_in_use(p), 0);
    tt_bufpool_free(p);
}

Test(buffer, reserve_commit_compacts_then_grows)
{
    tt_bufpool *p = tt_bufpool_new(64, 4);
    tt_buf b = {0};
    char *w = tt_buf_reserve(&b, p, 10);
    cr_assert_not_null(w);
    memcpy(w, "0123456789", 10);
    tt_buf_commit(&b, 10);
    cr_assert_eq(tt_buf_append(&b, p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", 50),
                 0);
    cr_assert_eq(b.len, 60);
    tt_buf_consume(&b, 40); /* 20 left at offset 40 */
    char *blk = b.data - b.off;
    /* 30 more bytes do not fit after the data (4 left) but do after compaction (44) */
    w = tt_buf_reserve(&b, p, 30);
    cr_assert_not_null(w);
    cr_assert_eq(b.data, blk, "compacted in place");
    cr_assert_eq(b.off, 0);
    cr_assert_eq(memcmp(b.data, "EFGHIJKLMNOPQRSTUVWX", 20), 0);
    cr_assert_eq(tt_bufpool_in_use(p), 1);
    /* 100 bytes need a bigger block: malloc'd, contents kept, the pool block returned */
    w = tt_buf_reserve(&b, p, 100);
    cr_assert_not_null(w);
    cr_assert(tt_buf_space(&b) >= 100);
    cr_assert_eq(b.len, 20);
    cr_assert_eq(memcmp(b.data, "EFGHIJKLMNOPQRSTUVWX", 20), 0);
    cr_assert_eq(tt_bufpool_in_use(p), 1);
    memset(w, 'q', 100);
    tt_buf_commit(&b, 100);
    cr_assert_eq(b.len, 120);
    tt_buf_release(&b, p);
    cr_assert_eq(tt_bufpool_in_use(p), 0);
    cr_assert_null(b.data);
    cr_assert_eq(b.len + b.cap + b.off, 0);
    tt_bufpool_free(p);
}

Test(buffer, pool_reuses_blocks_and_bounds_cache)
{
    tt_bufpool *p = tt_bufpool_new(128, 2);
    tt_buf b[5];
    memset(b, 0, sizeof(b));
    for (int i = 0; i < 5; i++)
        cr_assert_eq(tt_buf_append(&b[i], p, "x", 1), 0);
    cr_assert_eq(tt_bufpool_in_use(p), 5);
    char *first = b[0].data;
    tt_buf_release(&b[0], p);
    tt_buf c = {0};
    cr_assert_eq(tt_buf_append(&c, p, "y", 1), 0);
    cr_assert_eq(c.data, first, "a cached block is handed out again");
    tt_buf_release(&c, p);
    for (int i = 1; i < 5; i++)
        tt_buf_release(&b[i], p);
    cr_assert_eq(tt_bufpool_in_use(p), 0);
    tt_bufpool_free(p); /* ASan/valgrind would flag the 3 surplus blocks if they leaked */
}

Test(buffer, large_first_reserve)
{
    tt_bufpool *p = tt_bufpool_new(64, 2);
    tt_buf b = {0};
    char big[1000];
    memset(big, 'b', sizeof(big));
    cr_assert_eq(tt_buf_append(&b, p, big, sizeof(big)), 0);
    cr_assert_eq(b.len, 1000);
    cr_assert_eq(memcmp(b.data, big, 1000), 0);
    tt_buf_release(&b, p);
    cr_assert_eq(tt_bufpool_in_use(p), 0);
    tt_bufpool_free(p);
}

Test(buffer, read_fd)
{
    tt_bufpool *p = tt_bufpool_new(32, 2);
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    tt_buf b = {0};
    /* nothing to read: -EAGAIN and, since it held nothing, it still holds nothing */
    cr_assert_eq(tt_buf_read_fd(&b, p, sv[0], 0), -EAGAIN);
    cr_assert_null(b.data);
    cr_assert_eq(tt_bufpool_in_use(p), 0);
    char msg[50];
    memset(msg, 'm', sizeof(msg));
    cr_assert_eq(write(sv[1], msg, sizeof(msg)), 50);
    ssize_t n = tt_buf_read_fd(&b, p, sv[0], 0);
    cr_assert_eq(n, 32, "one read fills the free space");
    n = tt_buf_read_fd(&b, p, sv[0], 64); /* grows to make 64 bytes of room */
    cr_assert_eq(n, 18);
    cr_assert_eq(b.len, 50);
    cr_assert_eq(memcmp(b.data, msg, 50), 0);
    cr_assert_eq(tt_buf_read_fd(&b, p, sv[0], 0), -EAGAIN);
    cr_assert_eq(b.len, 50, "kept data on EAGAIN");
    close(sv[1]);
    cr_assert_eq(tt_buf_read_fd(&b, p, sv[0], 0), 0, "EOF");
    tt_buf_release(&b, p);
    close(sv[0]);
    cr_assert_eq(tt_buf_read_fd(&b, p, sv[0], 0), -EBADF);
    cr_assert_null(b.data);
    cr_assert_eq(tt_bufpool_in_use(p), 0);
    tt_bufpool_free(p);
}

Test(buffer, large_blocks_are_whole_pages_and_go_back)
{
    /* Above the pool's block size a block is mapped in whole pages and unmapped on release
     * (a burst of large bodies must not leave a fragmented heap behind). */
    tt_bufpool *p = tt_bufpool_new(16384, 4);
    tt_buf b = {0};
    cr_assert_not_null(tt_buf_reserve(&b, p, 20000));
    cr_assert_eq(b.cap, 20480, "rounded up to whole pages");
    cr_assert_eq(((uintptr_t)b.data) % 4096, 0, "a mapped block starts on a page");
    memset(b.data, 'x', 20000);
    tt_buf_commit(&b, 20000);
    cr_assert_not_null(tt_buf_reserve(&b, p, 30000)); /* grows to fit, page-rounded */
    cr_assert_eq(b.cap, 53248, "50000 bytes rounded up to whole pages");
    cr_assert_eq(b.data[19999], 'x', "the bytes moved with it");
    cr_assert_eq(tt_bufpool_in_use(p), 1);
    tt_buf_release(&b, p);
    cr_assert_eq(tt_bufpool_in_use(p), 0);
    tt_bufpool_free(p);
}
