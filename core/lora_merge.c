/* lora_merge.c — `ancora lora merge`: the adapter's base model written
 * again with the adapter folded in (anc_lora_merge in ancora.h). Adapted
 * weights become W + scale·(alpha/r)·B·A as F16, computed row by row while
 * the streaming writer asks for them; every other key and tensor is copied
 * byte for byte. Depends on lora.h, the GGUF reader and writer, and the
 * reference dequantisers of kernels/quant.h. */
#include "lora.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtype.h"
#include "gguf.h"
#include "gguf_write.h"
#include "quant.h"
#include "util.h"

struct merge_ctx {
    const struct anc_lora *lo;
    const struct gguf_file *f;
    const struct lora_pair **pair; /* [n_tensors]: the pair folded into each, or NULL */
    const struct anc_weight **plus; /* [n_tensors]: LoRA+'s trained tensor (f32) instead, or NULL */
    float scale;
    long a_index;                  /* tensor whose A is in a_f (-1: none) */
    float *a_f;                    /* [r][in] that pair's A as floats */
    float *w_f, *b_f;              /* [in] one merged row, [r] one row of B */
};

/* rows [row0, row0 + n) of output tensor index: a copy of the base's
 * bytes, or for an adapted weight W + scale·(alpha/r)·B·A as F16 */
static bool merge_fill(void *ctx, size_t index, int64_t row0, int64_t n_rows, void *buf)
{
    struct merge_ctx *mc = ctx;
    const struct gguf_tensor *t = &mc->f->tensors[index];
    size_t row_bytes = anc_dtype_row_bytes(t->type, t->ne[0]);
    const struct lora_pair *pr = mc->pair[index];
    if (mc->plus[index]) {
        size_t f32_row = (size_t)t->ne[0] * sizeof(float);
        memcpy(buf, (const uint8_t *)mc->plus[index]->data + (size_t)row0 * f32_row, (size_t)n_rows * f32_row);
        return true;
    }
    if (!pr) {
        memcpy(buf, (const uint8_t *)t->data + (size_t)row0 * row_bytes, (size_t)n_rows * row_bytes);
        return true;
    }
    int64_t in = pr->a.cols, r = pr->a.rows;
    size_t a_row = anc_dtype_row_bytes(pr->a.type, (uint64_t)in);
    size_t b_row = anc_dtype_row_bytes(pr->b.type, (uint64_t)r);
    if (mc->a_index != (long)index) {
        for (int64_t k = 0; k < r; k++)
            quant_dequant_row(pr->a.type, (const uint8_t *)pr->a.data + (size_t)k * a_row,
                              mc->a_f + (size_t)k * in, in);
        mc->a_index = (long)index;
    }
    float s = mc->scale * pr->alpha_scale;
    uint16_t *out = buf;
    for (int64_t o = row0; o < row0 + n_rows; o++) {
        quant_dequant_row(t->type, (const uint8_t *)t->data + (size_t)o * row_bytes, mc->w_f, in);
        quant_dequant_row(pr->b.type, (const uint8_t *)pr->b.data + (size_t)o * b_row, mc->b_f, r);
        for (int64_t k = 0; k < r; k++) {
            float c = s * mc->b_f[k];
            const float *a = mc->a_f + (size_t)k * in;
            for (int64_t i = 0; i < in; i++) mc->w_f[i] += c * a[i];
        }
        for (int64_t i = 0; i < in; i++) *out++ = anc_f32_to_f16(mc->w_f[i]);
    }
    return true;
}

/* Declare every key and tensor of the base in w; NULL pairs in mc->pair
 * are copied as they are. */
static bool merge_declare(struct gguf_writer *w, struct merge_ctx *mc, char *err, size_t errlen)
{
    const struct gguf_file *f = mc->f;
    const struct anc_lora *lo = mc->lo;
    const char *arch = lo->model->hp.arch;
    for (uint64_t i = 0; i < f->n_kv; i++)
        if (!(lo->has_rope && lora_is_rope_key(&f->kv[i], arch)) && !gguf_writer_copy_kv(w, &f->kv[i])) {
            anc_set_err(err, errlen, "out of memory");
            return false;
        }
    /* the RoPE the adapter was trained for, as the model's own */
    if (lo->has_rope && !lora_write_rope(w, arch, lo->trained_ctx, lo->rope.theta,
                                         anc_rope_scaling_name(lo->rope.scaling), lo->rope.factor,
                                         lo->rope.orig_ctx)) {
        anc_set_err(err, errlen, "out of memory");
        return false;
    }
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const struct gguf_tensor *t = &f->tensors[i];
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)(t->name.len < 127 ? t->name.len : 127), t->name.ptr);
        if (t->n_dims > 2) {
            anc_set_err(err, errlen, "%s: tensor %s has %u dimensions; merging handles 1 or 2",
                        f->path, name, t->n_dims);
            return false;
        }
        mc->pair[i] = lora_pair_for_tensor(mc->lo, name);
        mc->plus[i] = lora_plus_for_tensor(mc->lo, name);
        uint32_t type = mc->plus[i] ? ANC_DT_F32 : mc->pair[i] ? ANC_DT_F16 : t->type;
        if (gguf_writer_tensor(w, name, type, t->ne[0], t->n_dims > 1 ? t->ne[1] : 1) < 0) {
            anc_set_err(err, errlen, "out of memory");
            return false;
        }
    }
    return true;
}

int anc_lora_merge(const struct anc_lora *lo, float scale, const char *out_path, char *err,
                   size_t errlen)
{
    const struct gguf_file *f = lo->model->file;
    struct merge_ctx mc = {.lo = lo, .f = f, .scale = scale, .a_index = -1};
    int64_t in_max = lo->model->hp.dim > lo->model->hp.n_ff ? lo->model->hp.dim : lo->model->hp.n_ff;
    if (lo->model->hp.q_dim > in_max) in_max = lo->model->hp.q_dim;
    mc.pair = calloc(f->n_tensors ? f->n_tensors : 1, sizeof *mc.pair);
    mc.plus = calloc(f->n_tensors ? f->n_tensors : 1, sizeof *mc.plus);
    mc.a_f = malloc((size_t)lo->max_rank * (size_t)in_max * sizeof(float));
    mc.w_f = malloc((size_t)in_max * sizeof(float));
    mc.b_f = malloc((size_t)lo->max_rank * sizeof(float));
    struct gguf_writer *w = gguf_writer_new();
    int rc = -1;
    if (!mc.pair || !mc.plus || !mc.a_f || !mc.w_f || !mc.b_f || !w) anc_set_err(err, errlen, "out of memory");
    else if (merge_declare(w, &mc, err, errlen))
        rc = gguf_writer_write(w, out_path, merge_fill, &mc, NULL, err, errlen);
    gguf_writer_free(w);
    free(mc.pair);
    free(mc.plus);
    free(mc.a_f);
    free(mc.w_f);
    free(mc.b_f);
    return rc;
}

bool lora_is_rope_key(const struct gguf_kv *kv, const char *arch)
{
    static const char *const suffixes[] = {".context_length", ".rope.freq_base", ".rope.scaling.type",
                                           ".rope.scaling.factor", ".rope.scaling.original_context_length",
                                           ".rope.scale_linear"};
    char k[160];
    for (size_t i = 0; i < sizeof suffixes / sizeof *suffixes; i++) {
        snprintf(k, sizeof k, "%s%s", arch, suffixes[i]);
        if (gguf_str_eq(kv->key, k)) return true;
    }
    return false;
}

bool lora_write_rope(struct gguf_writer *w, const char *prefix, int32_t ctx, double base, const char *scaling,
                     double factor, int32_t orig_ctx)
{
    char k[160];
    bool ok = true;
    snprintf(k, sizeof k, "%s.context_length", prefix);
    ok = ok && gguf_writer_u32(w, k, (uint32_t)ctx);
    snprintf(k, sizeof k, "%s.rope.freq_base", prefix);
    ok = ok && gguf_writer_f32(w, k, (float)base);
    snprintf(k, sizeof k, "%s.rope.scaling.type", prefix);
    ok = ok && gguf_writer_str(w, k, scaling);
    snprintf(k, sizeof k, "%s.rope.scaling.factor", prefix);
    ok = ok && gguf_writer_f32(w, k, (float)factor);
    snprintf(k, sizeof k, "%s.rope.scaling.original_context_length", prefix);
    ok = ok && gguf_writer_u32(w, k, (uint32_t)orig_ctx);
    return ok;
}
