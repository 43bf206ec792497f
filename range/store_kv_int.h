/*
** range/store_kv_int.h: the range_kv view embedded in a range_store (the
** view lives inside the store, so it lives exactly as long as the store).
** Internal to range/: range.c embeds and initializes it, store_kv.c
** implements the ops.
*/
#ifndef MERIDIAN_RANGE_STORE_KV_INT_H
#define MERIDIAN_RANGE_STORE_KV_INT_H

#include "range/range.h"

typedef struct range__store_kv {
    range_kv kv;        /* first member: a range_kv * is a range__store_kv * */
    range_store *store; /* the store this view is embedded in */
} range__store_kv;

/* store_kv.c: set the ops and the back pointer (range_store_open). */
void range__store_kv_init(range__store_kv *v, range_store *s);
/* range.c: the view embedded in s. */
range__store_kv *range__store_kv_of(range_store *s);

#endif
