/* ids.h — a growable array of token ids, for the front-end's bookkeeping
 * of what was fed (the chat) and of what to feed again (replay).
 * Header-only; depends on libc only. */
#ifndef ANC_TUI_IDS_H
#define ANC_TUI_IDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Append t[0..k) to *ids (*n used of *cap), doubling the capacity from
 * 1024 as needed; false (nothing changed) when out of memory. */
static inline bool ids_append(int32_t **ids, size_t *n, size_t *cap, const int32_t *t, size_t k)
{
    if (*n + k > *cap) {
        size_t c = *cap ? *cap : 1024;
        while (c < *n + k) c *= 2;
        int32_t *p = realloc(*ids, c * sizeof *p);
        if (!p) return false;
        *ids = p;
        *cap = c;
    }
    memcpy(*ids + *n, t, k * sizeof *t);
    *n += k;
    return true;
}

#endif
