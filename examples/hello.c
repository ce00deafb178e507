/* hello.c — the smallest program against an installed tether (pkg-config --cflags --libs tether).
 */
#include <stdio.h>
#include <tether.h>

static void done(tt_loop *loop, tt_timer *t)
{
    (void)t;
    tt_loop_stop(loop);
}

int main(void)
{
    tt_loop *loop;
    tt_timer t;
    if (tt_loop_new(&loop) < 0) return 1;
    tt_timer_init(&t, done);
    tt_timer_start(loop, &t, 10); /* run the loop for 10 ms */
    tt_loop_run(loop);
    tt_loop_free(loop);
    printf("tether %s\n", tt_version());
    return 0;
}
