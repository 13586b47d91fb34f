/* fuzz_gguf.c — libFuzzer harness for the GGUF reader: every input goes
 * through gguf_open_memory; when it opens, every key/value, array element
 * and tensor is walked, and the first and last byte of each tensor read, so
 * the sanitizers see any pointer the reader vouched for but should not have.
 * Depends on core/gguf.c, core/util.c and kernels/dtype.c only. */
#include "dtype.h"
#include "gguf.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Keeps the compiler from dropping reads whose result is otherwise unused. */
static volatile uint64_t sink;

static void touch_str(struct gguf_str s)
{
    if (s.len) sink += (uint8_t)s.ptr[0] + (uint8_t)s.ptr[s.len - 1];
}

static void walk_kv(const struct gguf_file *f, const struct gguf_kv *kv)
{
    touch_str(kv->key);
    /* Look the key up by C string when it has no NUL inside. */
    if (kv->key.len < 256 && !memchr(kv->key.ptr, 0, (size_t)kv->key.len)) {
        char key[256];
        memcpy(key, kv->key.ptr, (size_t)kv->key.len);
        key[kv->key.len] = '\0';
        uint32_t u32;
        int32_t i32;
        uint64_t u64;
        float f32;
        bool b;
        struct gguf_str s;
        if (gguf_get_u32(f, key, &u32)) sink += u32;
        if (gguf_get_i32(f, key, &i32)) sink += (uint32_t)i32;
        if (gguf_get_u64(f, key, &u64)) sink += u64;
        if (gguf_get_f32(f, key, &f32)) sink += f32 == f32;
        if (gguf_get_bool(f, key, &b)) sink += b;
        if (gguf_get_str(f, key, &s)) touch_str(s);
        /* The first kv with this key must be found; duplicates are refused. */
        if (gguf_find_kv(f, key) != kv) abort();
    }
    if (kv->type != GGUF_VT_ARRAY) {
        size_t n = gguf_vtype_size(kv->type);
        if (n) sink += kv->data[0] + kv->data[n - 1];
        return;
    }
    for (uint64_t i = 0; i < kv->arr_n; i++) {
        switch (kv->arr_type) {
        case GGUF_VT_STRING: touch_str(gguf_arr_str(kv, i)); break;
        case GGUF_VT_FLOAT32: sink += gguf_arr_f32(kv, i) == 0.0f; break;
        case GGUF_VT_INT32: sink += (uint32_t)gguf_arr_i32(kv, i); break;
        default: {
            size_t n = gguf_vtype_size(kv->arr_type);
            sink += kv->data[i * n] + kv->data[i * n + n - 1];
            break;
        }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy, so reading one byte past the input is caught
     * even though libFuzzer's own buffer may be larger. */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    if (size) memcpy(buf, data, size);
    char err[512];
    struct gguf_file *f = gguf_open_memory(buf, size, "fuzz.gguf", err, sizeof err);
    if (!f) {
        /* Every refusal names the input. */
        if (strncmp(err, "fuzz.gguf: ", 11) != 0) abort();
        free(buf);
        return 0;
    }
    if (f->data_offset > f->size || f->alignment == 0) abort();
    for (uint64_t i = 0; i < f->n_kv; i++) walk_kv(f, &f->kv[i]);
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const struct gguf_tensor *t = &f->tensors[i];
        touch_str(t->name);
        if (t->nbytes == 0 || !anc_dtype_get(t->type)) abort();
        const uint8_t *p = t->data;
        sink += p[0] + p[t->nbytes - 1];
        if (p < f->base + f->data_offset || p + t->nbytes > f->base + f->size) abort();
    }
    gguf_close(f);
    free(buf);
    return 0;
}
