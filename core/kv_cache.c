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
    c->k = calloc((size_t)(n_layer > 0 ? n_layer : 1), sizeof *c->k);
    c->v = calloc((size_t)(n_layer > 0 ? n_layer : 1), sizeof *c->v);
    c->kr = calloc((size_t)(n_layer > 0 ? n_layer : 1), sizeof *c->kr);
    c->rot_pos = malloc((size_t)capacity * sizeof *c->rot_pos);
    c->rot_epoch = calloc((size_t)capacity, sizeof *c->rot_epoch);
    c->slot = malloc((size_t)capacity * sizeof *c->slot);
    c->orig = malloc((size_t)capacity * sizeof *c->orig);
    c->tok = malloc((size_t)capacity * sizeof *c->tok);
    c->free_rows = malloc((size_t)capacity * sizeof *c->free_rows);
    if (!c->k || !c->v || !c->kr || !c->rot_pos || !c->rot_epoch || !c->slot || !c->orig ||
        !c->tok || !c->free_rows || c->row_bytes == 0)
        goto fail;
    size_t bytes = c->row_bytes * (size_t)capacity;
    if (capacity != 0 && bytes / (size_t)capacity != c->row_bytes) goto fail;
    for (int32_t l = 0; l < n_layer; l++) {
        c->k[l] = be->ops->alloc(be, bytes);
        c->v[l] = be->ops->alloc(be, bytes);
        c->kr[l] = be->ops->alloc(be, bytes);
        if (!c->k[l] || !c->v[l] || !c->kr[l]) goto fail;
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
        if (c->kr) c->be->ops->free(c->be, c->kr[l]);
    }
    free(c->k);
    free(c->v);
    free(c->kr);
    free(c->rot_pos);
    free(c->rot_epoch);
    free(c->slot);
    free(c->orig);
    free(c->tok);
    free(c->free_rows);
    free(c);
}

void kv_cache_clear(struct kv_cache *c)
{
    c->n = 0;
    c->n_free = c->capacity;
    for (int32_t i = 0; i < c->capacity; i++) c->rot_pos[i] = -1;
    /* pop order 0, 1, 2, ... so a fresh cache fills rows in order */
    for (int32_t i = 0; i < c->capacity; i++) c->free_rows[i] = c->capacity - 1 - i;
}

int32_t kv_cache_append(struct kv_cache *c, int64_t orig, int32_t tok)
{
    if (c->n_free == 0) return -1;
    int32_t row = c->free_rows[--c->n_free];
    c->slot[c->n] = row;
    c->rot_pos[row] = -1; /* a new key: not rotated yet */
    c->orig[c->n] = orig;
    c->tok[c->n] = tok;
    c->n++;
    return row;
}

void kv_cache_evict(struct kv_cache *c, int32_t j, int32_t count)
{
    if (count <= 0) return;
    for (int32_t i = 0; i < count; i++) c->free_rows[c->n_free++] = c->slot[j + i];
    size_t tail = (size_t)(c->n - j - count);
    memmove(c->slot + j, c->slot + j + count, tail * sizeof *c->slot);
    memmove(c->orig + j, c->orig + j + count, tail * sizeof *c->orig);
    memmove(c->tok + j, c->tok + j + count, tail * sizeof *c->tok);
    c->n -= count;
    c->n_evicted += count;
}

/* Rows are copied into fresh buffers in logical order, so the new cache is
 * compact (logical entry j in physical row j). */
bool kv_cache_resize(struct kv_cache *c, int32_t capacity)
{
    if (capacity < c->n || capacity < 1) return false;
    size_t bytes = c->row_bytes * (size_t)capacity;
    void **nk = calloc((size_t)c->n_layer, sizeof *nk), **nv = calloc((size_t)c->n_layer, sizeof *nv);
    void **nkr = calloc((size_t)c->n_layer, sizeof *nkr);
    int64_t *rpos = malloc((size_t)capacity * sizeof *rpos);
    uint32_t *repoch = calloc((size_t)capacity, sizeof *repoch);
    int32_t *slot = malloc((size_t)capacity * sizeof *slot);
    int64_t *orig = malloc((size_t)capacity * sizeof *orig);
    int32_t *tok = malloc((size_t)capacity * sizeof *tok);
    int32_t *free_rows = malloc((size_t)capacity * sizeof *free_rows);
    bool ok = nk && nv && nkr && rpos && repoch && slot && orig && tok && free_rows;
    for (int32_t l = 0; ok && l < c->n_layer; l++) {
        nk[l] = c->be->ops->alloc(c->be, bytes);
        nv[l] = c->be->ops->alloc(c->be, bytes);
        nkr[l] = c->be->ops->alloc(c->be, bytes);
        ok = nk[l] && nv[l] && nkr[l];
    }
    if (!ok) {
        for (int32_t l = 0; nk && nv && nkr && l < c->n_layer; l++) {
            c->be->ops->free(c->be, nk[l]);
            c->be->ops->free(c->be, nv[l]);
            c->be->ops->free(c->be, nkr[l]);
        }
        free(nk), free(nv), free(nkr), free(rpos), free(repoch), free(slot), free(orig), free(tok),
            free(free_rows);
        return false;
    }
    for (int32_t l = 0; l < c->n_layer; l++) {
        const struct anc_backend_ops *op = c->be->ops;
        op->copy_rows(c->be, nk[l], c->k[l], c->row_bytes, c->slot, c->n);
        op->copy_rows(c->be, nv[l], c->v[l], c->row_bytes, c->slot, c->n);
        op->copy_rows(c->be, nkr[l], c->kr[l], c->row_bytes, c->slot, c->n);
        c->be->ops->free(c->be, c->k[l]);
        c->be->ops->free(c->be, c->v[l]);
        c->be->ops->free(c->be, c->kr[l]);
    }
    for (int32_t j = 0; j < c->n; j++) {
        rpos[j] = c->rot_pos[c->slot[j]];
        repoch[j] = c->rot_epoch[c->slot[j]];
    }
    for (int32_t r = c->n; r < capacity; r++) rpos[r] = -1;
    free(c->k), free(c->v), free(c->kr), free(c->rot_pos), free(c->rot_epoch);
    c->k = nk;
    c->v = nv;
    c->kr = nkr;
    c->rot_pos = rpos;
    c->rot_epoch = repoch;
    for (int32_t j = 0; j < c->n; j++) slot[j] = j;
    memcpy(orig, c->orig, (size_t)c->n * sizeof *orig);
    memcpy(tok, c->tok, (size_t)c->n * sizeof *tok);
    free(c->slot), free(c->orig), free(c->tok), free(c->free_rows);
    c->slot = slot;
    c->orig = orig;
    c->tok = tok;
    c->free_rows = free_rows;
    c->capacity = capacity;
    c->n_free = 0;
    for (int32_t r = capacity - 1; r >= c->n; r--) c->free_rows[c->n_free++] = r;
    return true;
}

size_t kv_cache_bytes(const struct kv_cache *c)
{
    return 3 * (size_t)c->n_layer * (size_t)c->capacity * c->row_bytes;
}

size_t kv_cache_bytes_used(const struct kv_cache *c)
{
    return 3 * (size_t)c->n_layer * (size_t)c->n * c->row_bytes;
}
