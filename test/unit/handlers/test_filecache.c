/* test_filecache.c — the static files' open-file cache (lib/handlers/filecache.c): a hot file
 * keeps its fd and validators, a changed file is reopened after the validity window, nothing
 * escapes the root, and tt__fcache_free closes what the thread's cache holds. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "handlers/filecache.h"

static char dir[] = "/tmp/tt-fcache-XXXXXX";

static void put(const char *name, const char *text)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

static void setup(void)
{
    cr_assert_not_null(mkdtemp(dir));
    put("a.txt", "alpha");
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(filecache, .init = setup, .fini = teardown);

Test(filecache, hot_file_is_cached_then_revalidated)
{
    struct stat st;
    tt__fvalid v1, v2;
    int cached;
    int fd1 = tt__fcache_open(1000, dir, "a.txt", &st, &v1, &cached);
    cr_assert_geq(fd1, 0);
    cr_assert_eq(cached, 1, "a regular file goes into the cache");
    cr_assert_eq(st.st_size, 5);
    cr_assert_eq(v1.etag[0], '"');
    int fd2 = tt__fcache_open(1500, dir, "a.txt", &st, &v2, &cached);
    cr_assert_eq(fd2, fd1, "the same open file within the validity window");
    cr_assert_str_eq(v2.etag, v1.etag);
    put("a.txt", "alpha, longer now");
    fd2 = tt__fcache_open(1600, dir, "a.txt", &st, &v2, &cached);
    cr_assert_eq(st.st_size, 5, "trusted for a second: still the old stat");
    fd2 = tt__fcache_open(5000, dir, "a.txt", &st, &v2, &cached);
    cr_assert_geq(fd2, 0);
    cr_assert_eq(st.st_size, 17, "revalidated: the changed file is reopened");
    cr_assert_str_neq(v2.etag, v1.etag);
    tt__fcache_free();
    cr_assert_lt(fcntl(fd2, F_GETFD), 0, "freeing the cache closed its files");
    tt__fcache_free(); /* twice is harmless */
}

Test(filecache, nothing_outside_the_root)
{
    struct stat st;
    tt__fvalid v;
    int cached;
    cr_assert_lt(tt__fcache_open(0, dir, "../etc/passwd", &st, &v, &cached), 0);
    char link[128];
    snprintf(link, sizeof link, "%s/out", dir);
    cr_assert_eq(symlink("/etc/passwd", link), 0);
    cr_assert_lt(tt__fcache_open(0, dir, "out", &st, &v, &cached), 0);
    cr_assert_eq(tt__fcache_open(0, dir, "missing", &st, &v, &cached), -ENOENT);
    int fd = tt__fcache_open(0, dir, "", &st, &v, &cached); /* the root itself */
    cr_assert_geq(fd, 0);
    cr_assert(S_ISDIR(st.st_mode));
    cr_assert_eq(cached, 0, "directories are not cached: the caller closes them");
    close(fd);
    tt__fcache_free();
}

Test(filecache, fifo_opens_without_blocking_and_is_not_cached, .timeout = 10)
{
    char path[128];
    snprintf(path, sizeof path, "%s/pipe", dir);
    cr_assert_eq(mkfifo(path, 0600), 0);
    struct stat st;
    tt__fvalid v;
    int cached = -1;
    /* before: open(O_RDONLY) of a FIFO blocked until a writer came (the test timed out) */
    int fd = tt__fcache_open(0, dir, "pipe", &st, &v, &cached);
    cr_assert_geq(fd, 0);
    cr_assert(S_ISFIFO(st.st_mode), "the caller sees what it is and refuses it");
    cr_assert_eq(cached, 0, "only regular files are cached");
    close(fd);
}
