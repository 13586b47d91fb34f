/* gguf_build.h — GGUF files built in memory, for the tests and the fuzz
 * harnesses: values, key/values of every type, arrays, tensor infos,
 * padding, whole key/value-only files, and raw headers and in-place patches
 * for the bad-file tests. Header-only (static inline, so each test stays one
 * .c file); depends on core/gguf.h and the C library only, not test_util.h. */
#ifndef ANC_GGUF_BUILD_H
#define ANC_GGUF_BUILD_H

#include "gguf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The bytes written so far; {0} is empty, gw_free ends it. Numbers are
 * written in the host's byte order: GGUF is little-endian, and so must be
 * the machine the tests run on. */
struct gw {
    uint8_t *p;
    size_t len, cap;
    uint64_t n_kv; /* key/values begun by gw_key, for gw_file */
};

/* Offsets of the header fields, for gw_set_u32/gw_set_u64. */
#define GW_AT_VERSION 4
#define GW_AT_N_TENSORS 8
#define GW_AT_N_KV 16

static inline void gw_bytes(struct gw *w, const void *src, size_t n)
{
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap < w->len + n) cap *= 2;
        uint8_t *np = realloc(w->p, cap);
        if (!np) {
            fprintf(stderr, "gguf_build: out of memory\n");
            exit(1);
        }
        w->p = np;
        w->cap = cap;
    }
    if (n) memcpy(w->p + w->len, src, n);
    w->len += n;
}

static inline void gw_free(struct gw *w)
{
    free(w->p);
    *w = (struct gw){0};
}

static inline void gw_u8(struct gw *w, uint8_t v) { gw_bytes(w, &v, 1); }
static inline void gw_u16(struct gw *w, uint16_t v) { gw_bytes(w, &v, 2); }
static inline void gw_u32(struct gw *w, uint32_t v) { gw_bytes(w, &v, 4); }
static inline void gw_i32(struct gw *w, int32_t v) { gw_bytes(w, &v, 4); }
static inline void gw_u64(struct gw *w, uint64_t v) { gw_bytes(w, &v, 8); }
static inline void gw_f32(struct gw *w, float v) { gw_bytes(w, &v, 4); }
static inline void gw_f64(struct gw *w, double v) { gw_bytes(w, &v, 8); }

static inline void gw_zeros(struct gw *w, size_t n)
{
    for (size_t i = 0; i < n; i++) gw_u8(w, 0);
}

/* Zeros up to a multiple of align. */
static inline void gw_pad(struct gw *w, size_t align)
{
    while (w->len % align) gw_u8(w, 0);
}

/* A GGUF string: 64-bit length, then the bytes (which may hold NULs). */
static inline void gw_strn(struct gw *w, const char *s, size_t n)
{
    gw_u64(w, n);
    gw_bytes(w, s, n);
}
static inline void gw_str(struct gw *w, const char *s) { gw_strn(w, s, strlen(s)); }

/* The header: magic, version and the two counts, written where w stands,
 * with whatever values the test wants (see also gw_file). */
static inline void gw_header(struct gw *w, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
    gw_bytes(w, "GGUF", 4);
    gw_u32(w, version);
    gw_u64(w, n_tensors);
    gw_u64(w, n_kv);
}

/* Overwrite bytes already written (a bad magic, version or count). */
static inline void gw_set(struct gw *w, size_t at, const void *src, size_t n)
{
    if (at > w->len || n > w->len - at) {
        fprintf(stderr, "gguf_build: patch at %zu + %zu past %zu bytes\n", at, n, w->len);
        exit(1);
    }
    memcpy(w->p + at, src, n);
}
static inline void gw_set_u32(struct gw *w, size_t at, uint32_t v) { gw_set(w, at, &v, 4); }
static inline void gw_set_u64(struct gw *w, size_t at, uint64_t v) { gw_set(w, at, &v, 8); }

/* Key and value type (counted in w->n_kv); the caller writes the value. */
static inline void gw_key(struct gw *w, const char *key, uint32_t type)
{
    w->n_kv++;
    gw_str(w, key);
    gw_u32(w, type);
}

/* A key/value holding the n bytes at v as they are (any scalar type). */
static inline void gw_kv_val(struct gw *w, const char *key, uint32_t type, const void *v,
                             size_t n)
{
    gw_key(w, key, type);
    gw_bytes(w, v, n);
}

/* Scalars of every type. */
#define GW_KV_SCALAR(name, ctype, vtype)                                                   \
    static inline void gw_kv_##name(struct gw *w, const char *key, ctype v)                \
    {                                                                                      \
        gw_kv_val(w, key, vtype, &v, sizeof v);                                            \
    }
GW_KV_SCALAR(u8, uint8_t, GGUF_VT_UINT8)
GW_KV_SCALAR(i8, int8_t, GGUF_VT_INT8)
GW_KV_SCALAR(u16, uint16_t, GGUF_VT_UINT16)
GW_KV_SCALAR(i16, int16_t, GGUF_VT_INT16)
GW_KV_SCALAR(u32, uint32_t, GGUF_VT_UINT32)
GW_KV_SCALAR(i32, int32_t, GGUF_VT_INT32)
GW_KV_SCALAR(u64, uint64_t, GGUF_VT_UINT64)
GW_KV_SCALAR(i64, int64_t, GGUF_VT_INT64)
GW_KV_SCALAR(f32, float, GGUF_VT_FLOAT32)
GW_KV_SCALAR(f64, double, GGUF_VT_FLOAT64)
#undef GW_KV_SCALAR

static inline void gw_kv_bool(struct gw *w, const char *key, bool v)
{
    uint8_t b = v;
    gw_kv_val(w, key, GGUF_VT_BOOL, &b, 1);
}

static inline void gw_kv_strn(struct gw *w, const char *key, const char *v, size_t n)
{
    gw_key(w, key, GGUF_VT_STRING);
    gw_strn(w, v, n);
}
static inline void gw_kv_str(struct gw *w, const char *key, const char *v)
{
    gw_kv_strn(w, key, v, strlen(v));
}

/* Array header; the caller writes the n elements (or other bytes). */
static inline void gw_kv_arr(struct gw *w, const char *key, uint32_t elem_type, uint64_t n)
{
    gw_key(w, key, GGUF_VT_ARRAY);
    gw_u32(w, elem_type);
    gw_u64(w, n);
}

/* Whole arrays (v may be NULL when n is 0): of C strings, and of n numbers
 * of size bytes each, as they are in memory. */
static inline void gw_kv_strs(struct gw *w, const char *key, const char *const *v, size_t n)
{
    gw_kv_arr(w, key, GGUF_VT_STRING, n);
    for (size_t i = 0; i < n; i++) gw_str(w, v[i]);
}

static inline void gw_kv_nums(struct gw *w, const char *key, uint32_t elem_type, const void *v,
                              size_t n, size_t size)
{
    gw_kv_arr(w, key, elem_type, n);
    gw_bytes(w, v, n * size);
}
static inline void gw_kv_f32s(struct gw *w, const char *key, const float *v, size_t n)
{
    gw_kv_nums(w, key, GGUF_VT_FLOAT32, v, n, sizeof *v);
}
static inline void gw_kv_i32s(struct gw *w, const char *key, const int32_t *v, size_t n)
{
    gw_kv_nums(w, key, GGUF_VT_INT32, v, n, sizeof *v);
}

/* One tensor info: name, dimensions, type, offset in the data section. The
 * data follows the infos after gw_pad to the alignment (32 unless the file
 * has general.alignment), written with the value writers or gw_zeros. */
static inline void gw_tensor(struct gw *w, const char *name, uint32_t n_dims, const uint64_t *ne,
                             uint32_t type, uint64_t offset)
{
    gw_str(w, name);
    gw_u32(w, n_dims);
    for (uint32_t d = 0; d < n_dims; d++) gw_u64(w, ne[d]);
    gw_u32(w, type);
    gw_u64(w, offset);
}

/* A whole file from the key/values in w (which holds no header): a v3
 * header with no tensors and w->n_kv key/values, w's bytes, then zeros up
 * to a multiple of align (0: none). Malloc'ed; *len gets its size. */
static inline uint8_t *gw_file(const struct gw *w, size_t align, size_t *len)
{
    struct gw f = {0};
    gw_header(&f, 3, 0, w->n_kv);
    gw_bytes(&f, w->p, w->len);
    if (align) gw_pad(&f, align);
    *len = f.len;
    return f.p;
}

#endif
