/* test_list.c — the one intrusive list: order, removal from anywhere, double removal, safe
 * iteration while removing, entry recovery. */
#include <criterion/criterion.h>

#include "common/list.h"

typedef struct item {
    int v;
    tt__list node;
} item;

static int collect(tt__list *l, int *out)
{
    int n = 0;
    tt__list *p, *t;
    tt__list_each(l, p, t) out[n++] = tt__list_entry(p, item, node)->v;
    return n;
}

Test(list, push_pop_order_and_entry)
{
    tt__list l;
    tt__list_init(&l);
    cr_assert(tt__list_empty(&l));
    cr_assert_null(tt__list_first(&l));
    cr_assert_null(tt__list_last(&l));
    item it[4];
    for (int i = 0; i < 4; i++) {
        it[i].v = i;
        tt__list_init(&it[i].node);
        cr_assert(!tt__list_linked(&it[i].node));
    }
    tt__list_push_back(&l, &it[1].node);
    tt__list_push_back(&l, &it[2].node);
    tt__list_push_front(&l, &it[0].node);
    tt__list_push_back(&l, &it[3].node);
    int got[4];
    cr_assert_eq(collect(&l, got), 4);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(got[i], i);
    cr_assert_eq(tt__list_entry(tt__list_last(&l), item, node)->v, 3);
    tt__list *p = tt__list_pop_front(&l);
    cr_assert_eq(tt__list_entry(p, item, node), &it[0]);
    cr_assert(!tt__list_linked(p));
}

Test(list, remove_anywhere_twice_and_while_iterating)
{
    tt__list l;
    tt__list_init(&l);
    item it[5];
    for (int i = 0; i < 5; i++) {
        it[i].v = i;
        tt__list_push_back(&l, &it[i].node);
    }
    tt__list_remove(&it[2].node);
    tt__list_remove(&it[2].node); /* harmless: an unlinked node points to itself */
    tt__list *p, *t;
    tt__list_each(&l, p, t) if (tt__list_entry(p, item, node)->v % 2) tt__list_remove(p);
    int got[5];
    cr_assert_eq(collect(&l, got), 2);
    cr_assert_eq(got[0], 0);
    cr_assert_eq(got[1], 4);
    tt__list_remove(&it[0].node);
    tt__list_remove(&it[4].node);
    cr_assert(tt__list_empty(&l));
    cr_assert_null(tt__list_pop_front(&l));
}
