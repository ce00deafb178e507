/* list.h — internal: the one intrusive list of the library (libuv's queue.h idea, written
 * anew): a circular doubly-linked list with a sentinel head. A node is embedded in its owner;
 * tt__list_entry gets the owner back. Every operation is O(1); an unlinked node points to
 * itself, so removing twice is harmless. Not thread-safe. */
#ifndef TT_COMMON_LIST_H
#define TT_COMMON_LIST_H

#include <stddef.h>

typedef struct tt__list {
    struct tt__list *next, *prev;
} tt__list;

/* The struct of type containing node (a tt__list named member). */
#define tt__list_entry(node, type, member) ((type *)((char *)(node)-offsetof(type, member)))

/* Make l an empty list (or an unlinked node). */
static inline void tt__list_init(tt__list *l)
{
    l->next = l->prev = l;
}
/* Nonzero when the list is empty (or the node is unlinked). */
static inline int tt__list_empty(const tt__list *l)
{
    return l->next == l;
}
/* The first and last nodes, NULL when empty. */
static inline tt__list *tt__list_first(const tt__list *l)
{
    return l->next == l ? NULL : l->next;
}
static inline tt__list *tt__list_last(const tt__list *l)
{
    return l->prev == l ? NULL : l->prev;
}
/* Append n at the tail (oldest stays first). */
static inline void tt__list_push_back(tt__list *l, tt__list *n)
{
    n->prev = l->prev;
    n->next = l;
    l->prev->next = n;
    l->prev = n;
}
/* Insert n at the head. */
static inline void tt__list_push_front(tt__list *l, tt__list *n)
{
    n->next = l->next;
    n->prev = l;
    l->next->prev = n;
    l->next = n;
}
/* Unlink n (a no-op on an unlinked node) and leave it unlinked. */
static inline void tt__list_remove(tt__list *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->next = n->prev = n;
}
/* Remove and return the first node, NULL when empty. */
static inline tt__list *tt__list_pop_front(tt__list *l)
{
    tt__list *n = tt__list_first(l);
    if (n) tt__list_remove(n);
    return n;
}
/* Nonzero while n is linked into some list. */
static inline int tt__list_linked(const tt__list *n)
{
    return n->next != n;
}

/* Iterate nodes of l; safe against removing the current node (n). */
#define tt__list_each(l, n, tmp)                                                                   \
    for ((n) = (l)->next, (tmp) = (n)->next; (n) != (l); (n) = (tmp), (tmp) = (n)->next)

#endif
