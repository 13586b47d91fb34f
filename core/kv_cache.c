/* kv_cache.c — see kv_cache.h. Depends on the backend interface only. */
#include "kv_cache.h"

#include <stdlib.h>
#include <string.h>

struct kv_cache *kv_cache_new(struct anc_backend *be, int32_t n_layer, int32_t kv_dim,
                              uint32_t type, int32_t capacity)
{
    struct kv_cache *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->be = be;
    c->n_layer = n_layer;
    c->kv_dim = kv_dim;
    c->type = type;
    c->row_bytes = anc_dtype_row_bytes(type, (uint64_t)kv_dim);
    c->capacity = capacity;
    c->k = calloc((size_t)n_layer, sizeof *c->k);
    c->v = calloc((size_t)n_layer, sizeof *c->v);
    c->slot = malloc((size_t)capacity * sizeof *c->slot);
    c->orig = malloc((size_t)capacity * sizeof *c->orig);
    c->free_rows = malloc((size_t)capacity * sizeof *c->free_rows);
    if (!c->k || !c->v || !c->slot || !c->orig || !c->free_rows || c->row_bytes == 0) goto fail;
    size_t bytes = c->row_bytes * (size_t)capacity;
    if (capacity != 0 && bytes / (size_t)capacity != c->row_bytes) goto fail;
    for (int32_t l = 0; l < n_layer; l++) {
        c->k[l] = be->ops->alloc(be, bytes);
        c->v[l] = be->ops->alloc(be, bytes);
        if (!c->k[l] || !c->v[l]) goto fail;
    }
    kv_cache_clear(c);
    return c;
fail:
    kv_cache_free(c);
    return NULL;
}

void kv_cache_free(struct kv_cache *c)
{
    if (!c) return;
    for (int32_t l = 0; l < c->n_layer; l++) {
        if (c->k) c->be->ops->free(c->be, c->k[l]);
        if (c->v) c->be->ops->free(c->be, c->v[l]);
    }
    free(c->k);
    free(c->v);
    free(c->slot);
    free(c->orig);
    free(c->free_rows);
    free(c);
}

void kv_cache_clear(struct kv_cache *c)
{
    c->n = 0;
    c->n_free = c->capacity;
    /* pop order 0, 1, 2, ... so a fresh cache fills rows in order */
    for (int32_t i = 0; i < c->capacity; i++) c->free_rows[i] = c->capacity - 1 - i;
}

int32_t kv_cache_append(struct kv_cache *c, int64_t orig)
{
    if (c->n_free == 0) return -1;
    int32_t row = c->free_rows[--c->n_free];
    c->slot[c->n] = row;
    c->orig[c->n] = orig;
    c->n++;
    return row;
}

void kv_cache_evict(struct kv_cache *c, int32_t j)
{
    c->free_rows[c->n_free++] = c->slot[j];
    memmove(c->slot + j, c->slot + j + 1, (size_t)(c->n - j - 1) * sizeof *c->slot);
    memmove(c->orig + j, c->orig + j + 1, (size_t)(c->n - j - 1) * sizeof *c->orig);
    c->n--;
    c->n_evicted++;
}

size_t kv_cache_bytes(const struct kv_cache *c)
{
    return 2 * (size_t)c->n_layer * (size_t)c->capacity * c->row_bytes;
}
