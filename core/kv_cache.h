/* kv_cache.h — the key/value cache of a session: `capacity` physical rows
 * per layer, and a logical order of entries mapped onto them (so evicting
 * an entry moves a few indices, never the cached vectors).
 * Each key is kept twice: as computed (before RoPE: the exact source) and
 * rotated (what attention reads). A rotated row remembers the position and
 * the RoPE "epoch" it was rotated for; the session re-rotates a row from its
 * source only when either changes (a RoPE setting, dynamic NTK's base, a
 * sink promoted by a larger sink count), so a decode step rotates only the
 * new token's key (TECHNIQUES.md §2, option (c) with exact re-rotation).
 * The rows are backend memory (a GPU's): only backend ops touch them.
 * Internal to core/; knows the backend only for allocation and row copies. */
#ifndef ANC_KV_CACHE_H
#define ANC_KV_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"

struct kv_cache {
    struct anc_backend *be;  /* borrowed */
    int32_t n_layer;
    int32_t kv_dim;          /* n_kv_head * head_dim */
    uint32_t type;           /* ANC_DT_F16 or ANC_DT_F32 */
    size_t row_bytes;
    int32_t capacity;        /* physical rows per layer */
    void **k, **v;           /* [n_layer] -> [capacity][kv_dim] of `type` */
    void **kr;               /* [n_layer] -> [capacity][kv_dim] rotated keys */
    int64_t *rot_pos;        /* [capacity] per physical row: position its
                                rotated key is for (-1: none) */
    uint32_t *rot_epoch;     /* [capacity] RoPE epoch of that rotation */
    int32_t n;               /* logical entries in use */
    int32_t *slot;           /* [capacity] physical row of logical entry j */
    int64_t *orig;           /* [capacity] text index (token number) of entry j */
    int32_t *tok;            /* [capacity] token id of entry j */
    int32_t *free_rows;      /* stack of unused physical rows */
    int32_t n_free;
    int64_t n_evicted;
};

/* NULL on allocation failure. */
struct kv_cache *kv_cache_new(struct anc_backend *be, int32_t n_layer, int32_t kv_dim,
                              uint32_t type, int32_t capacity);
void kv_cache_free(struct kv_cache *c);

/* Append one logical entry for token `tok` at text index `orig`; returns
 * its physical row, or -1 if the cache is full. */
int32_t kv_cache_append(struct kv_cache *c, int64_t orig, int32_t tok);

/* Remove `count` logical entries starting at j; later entries move down. */
void kv_cache_evict(struct kv_cache *c, int32_t j, int32_t count);

/* Change the number of physical rows (>= n), keeping every entry and its
 * order. false on allocation failure (the cache is then unchanged). */
bool kv_cache_resize(struct kv_cache *c, int32_t capacity);

/* Drop every entry. */
void kv_cache_clear(struct kv_cache *c);

/* Bytes allocated for keys (both forms) and values. */
size_t kv_cache_bytes(const struct kv_cache *c);
/* Bytes of the rows its logical entries use now (keys, values and rotated
 * keys of every layer): what of kv_cache_bytes the cache holds. */
size_t kv_cache_bytes_used(const struct kv_cache *c);

#endif
