/* gguf_write.c — see gguf_write.h. Layout written: header, key/values,
 * tensor infos, padding to the alignment (32), tensor data (each tensor
 * padded to the alignment). Depends on gguf.h (for copying values),
 * dtype.h and util.h. */
#include "gguf_write.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dtype.h"
#include "util.h"

#define GW_ALIGN 32
#define GW_CHUNK_BYTES (16u << 20) /* tensor data is produced in blocks of rows of about this size */

struct gw_tensor {
    char *name;
    uint32_t type;
    uint64_t ne0, ne1;
    uint64_t offset, nbytes;
};

struct gguf_writer {
    uint8_t *kv;      /* serialised key/values */
    size_t kv_len, kv_cap;
    uint64_t n_kv;
    struct gw_tensor *t;
    size_t n_t, cap_t;
    uint64_t data_bytes;
    bool oom;
};

struct gguf_writer *gguf_writer_new(void) { return calloc(1, sizeof(struct gguf_writer)); }

void gguf_writer_free(struct gguf_writer *w)
{
    if (!w) return;
    for (size_t i = 0; i < w->n_t; i++) free(w->t[i].name);
    free(w->t);
    free(w->kv);
    free(w);
}

static bool put(struct gguf_writer *w, const void *p, size_t n)
{
    if (w->oom) return false;
    if (w->kv_len + n > w->kv_cap) {
        size_t cap = w->kv_cap ? w->kv_cap : 4096;
        while (cap < w->kv_len + n) cap *= 2;
        uint8_t *nb = realloc(w->kv, cap);
        if (!nb) return !(w->oom = true);
        w->kv = nb;
        w->kv_cap = cap;
    }
    memcpy(w->kv + w->kv_len, p, n);
    w->kv_len += n;
    return true;
}

static bool put_u32(struct gguf_writer *w, uint32_t v) { return put(w, &v, 4); }
static bool put_u64(struct gguf_writer *w, uint64_t v) { return put(w, &v, 8); }
static bool put_str(struct gguf_writer *w, const char *s, uint64_t len)
{
    return put_u64(w, len) && put(w, s, (size_t)len);
}

static bool key(struct gguf_writer *w, const char *k, uint32_t type)
{
    w->n_kv++;
    return put_str(w, k, strlen(k)) && put_u32(w, type);
}

bool gguf_writer_u32(struct gguf_writer *w, const char *k, uint32_t v)
{
    return key(w, k, GGUF_VT_UINT32) && put_u32(w, v);
}

bool gguf_writer_f32(struct gguf_writer *w, const char *k, float v)
{
    return key(w, k, GGUF_VT_FLOAT32) && put(w, &v, 4);
}

bool gguf_writer_str(struct gguf_writer *w, const char *k, const char *v)
{
    return key(w, k, GGUF_VT_STRING) && put_str(w, v, strlen(v));
}

/* Bytes of a value's payload as stored in a file being read. */
static uint64_t value_bytes(const struct gguf_kv *kv)
{
    if (kv->type == GGUF_VT_STRING) {
        uint64_t len;
        memcpy(&len, kv->data, 8);
        return 8 + len;
    }
    if (kv->type != GGUF_VT_ARRAY) return gguf_vtype_size(kv->type);
    if (kv->arr_n == 0) return 0;
    if (kv->arr_type == GGUF_VT_STRING) {
        uint64_t last = kv->str_offs[kv->arr_n - 1], len;
        memcpy(&len, kv->data + last, 8);
        return last + 8 + len;
    }
    return kv->arr_n * gguf_vtype_size(kv->arr_type);
}

bool gguf_writer_copy_kv(struct gguf_writer *w, const struct gguf_kv *kv)
{
    w->n_kv++;
    if (!put_str(w, kv->key.ptr, kv->key.len) || !put_u32(w, (uint32_t)kv->type)) return false;
    if (kv->type == GGUF_VT_ARRAY && (!put_u32(w, (uint32_t)kv->arr_type) || !put_u64(w, kv->arr_n)))
        return false;
    return put(w, kv->data, (size_t)value_bytes(kv));
}

long gguf_writer_tensor(struct gguf_writer *w, const char *name, uint32_t type, uint64_t ne0,
                        uint64_t ne1)
{
    size_t row = anc_dtype_row_bytes(type, ne0);
    if (row == 0 || ne1 == 0) return -1;
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? w->cap_t * 2 : 64;
        struct gw_tensor *nt = realloc(w->t, cap * sizeof *nt);
        if (!nt) return -1;
        w->t = nt;
        w->cap_t = cap;
    }
    struct gw_tensor *t = &w->t[w->n_t];
    t->name = strdup(name);
    if (!t->name) return -1;
    t->type = type;
    t->ne0 = ne0;
    t->ne1 = ne1;
    t->offset = w->data_bytes;
    t->nbytes = (uint64_t)row * ne1;
    w->data_bytes += (t->nbytes + GW_ALIGN - 1) / GW_ALIGN * GW_ALIGN;
    return (long)w->n_t++;
}

static bool write_all(FILE *fp, const void *p, size_t n) { return fwrite(p, 1, n, fp) == n; }

static bool pad(FILE *fp, uint64_t n)
{
    static const uint8_t zeros[GW_ALIGN];
    return write_all(fp, zeros, (size_t)n);
}

int gguf_writer_write(struct gguf_writer *w, const char *path, gguf_fill_fn fill, void *ctx,
                      void (*progress)(void *ctx, uint64_t done, uint64_t total),
                      char *err, size_t errlen)
{
    if (w->oom) {
        anc_set_err(err, errlen, "out of memory building %s", path);
        return -1;
    }
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp) {
        anc_set_err(err, errlen, "out of memory");
        return -1;
    }
    snprintf(tmp, plen + 16, "%s.tmp%ld", path, (long)getpid());
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        anc_set_err(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
        free(tmp);
        return -1;
    }
    void *buf = NULL;
    bool ok = true;
    uint32_t magic = 0x46554747u, version = 3;
    uint64_t n_t = w->n_t;
    ok = write_all(fp, &magic, 4) && write_all(fp, &version, 4) && write_all(fp, &n_t, 8) &&
         write_all(fp, &w->n_kv, 8) && write_all(fp, w->kv, w->kv_len);
    uint64_t pos = 24 + w->kv_len;
    for (size_t i = 0; ok && i < w->n_t; i++) {
        const struct gw_tensor *t = &w->t[i];
        uint64_t nlen = strlen(t->name);
        uint32_t n_dims = t->ne1 > 1 ? 2 : 1, type = t->type;
        ok = write_all(fp, &nlen, 8) && write_all(fp, t->name, (size_t)nlen) &&
             write_all(fp, &n_dims, 4) && write_all(fp, &t->ne0, 8) &&
             (n_dims == 1 || write_all(fp, &t->ne1, 8)) && write_all(fp, &type, 4) &&
             write_all(fp, &t->offset, 8);
        pos += 8 + nlen + 4 + 8 * n_dims + 4 + 8;
    }
    if (ok) ok = pad(fp, (GW_ALIGN - pos % GW_ALIGN) % GW_ALIGN);
    uint64_t done = 0;
    for (size_t i = 0; ok && i < w->n_t; i++) {
        const struct gw_tensor *t = &w->t[i];
        size_t row = (size_t)(t->nbytes / t->ne1);
        int64_t rows_per = (int64_t)(GW_CHUNK_BYTES / row);
        if (rows_per < 1) rows_per = 1;
        if (!buf && !(buf = malloc(row * (size_t)rows_per > GW_CHUNK_BYTES ? row * (size_t)rows_per
                                                                            : GW_CHUNK_BYTES))) {
            ok = false;
            anc_set_err(err, errlen, "out of memory");
            break;
        }
        for (int64_t r = 0; ok && r < (int64_t)t->ne1; r += rows_per) {
            int64_t n = (int64_t)t->ne1 - r < rows_per ? (int64_t)t->ne1 - r : rows_per;
            if (row * (size_t)n > GW_CHUNK_BYTES) { /* a single huge row */
                void *nb = realloc(buf, row * (size_t)n);
                if (!nb) { ok = false; break; }
                buf = nb;
            }
            ok = fill(ctx, i, r, n, buf) && write_all(fp, buf, row * (size_t)n);
            done += row * (size_t)n;
            if (progress) progress(ctx, done, w->data_bytes);
        }
        if (ok) ok = pad(fp, (GW_ALIGN - t->nbytes % GW_ALIGN) % GW_ALIGN);
    }
    free(buf);
    if (fclose(fp) != 0) ok = false;
    if (ok && rename(tmp, path) != 0) {
        anc_set_err(err, errlen, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    if (!ok) {
        if (!err || !*err) anc_set_err(err, errlen, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
    }
    free(tmp);
    return ok ? 0 : -1;
}
