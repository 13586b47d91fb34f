/* cpu_ops.c — CPU reference operations (see cpu_ops.h): the definition of
 * what every op computes. Written for clarity; the compiler vectorises the
 * float loops. Depends on dtype.h / backend.h only. */
#include "cpu_ops.h"
#include "quant.h"

#include <math.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>

static float f16_table[1 << 16];
static pthread_once_t f16_once = PTHREAD_ONCE_INIT;

static void f16_table_build(void)
{
    for (uint32_t i = 0; i < (1u << 16); i++) f16_table[i] = anc_f16_to_f32((uint16_t)i);
}

void cpu_ops_init(void) { pthread_once(&f16_once, f16_table_build); }

static inline float f16_lut(uint16_t h) { return f16_table[h]; }

float cpu_dot_row(uint32_t type, const void *row, const float *x, int64_t n)
{
    float sum = 0.0f;
    switch (type) {
    case ANC_DT_F32: {
        const float *w = row;
        for (int64_t i = 0; i < n; i++) sum += w[i] * x[i];
        break;
    }
    case ANC_DT_F16: {
        const uint16_t *w = row;
        for (int64_t i = 0; i < n; i++) sum += f16_lut(w[i]) * x[i];
        break;
    }
    case ANC_DT_BF16: {
        const uint16_t *w = row;
        for (int64_t i = 0; i < n; i++) sum += anc_bf16_to_f32(w[i]) * x[i];
        break;
    }
    default:
        sum = quant_dot_row(type, row, x, n); /* the quantised formats */
        break;
    }
    return sum;
}

void cpu_dequant_row(uint32_t type, const void *row, float *out, int64_t n)
{
    switch (type) {
    case ANC_DT_F32:
        memcpy(out, row, (size_t)n * sizeof(float));
        break;
    case ANC_DT_F16: {
        const uint16_t *w = row;
        for (int64_t i = 0; i < n; i++) out[i] = f16_lut(w[i]);
        break;
    }
    case ANC_DT_BF16: {
        const uint16_t *w = row;
        for (int64_t i = 0; i < n; i++) out[i] = anc_bf16_to_f32(w[i]);
        break;
    }
    default:
        quant_dequant_row(type, row, out, n);
        break;
    }
}

void cpu_matmul_rows(float *y, const struct anc_weight *w, const float *x, int32_t n_tok,
                     int64_t r0, int64_t r1)
{
    size_t row_bytes = anc_dtype_row_bytes(w->type, (uint64_t)w->cols);
    const uint8_t *base = w->data;
    for (int64_t r = r0; r < r1; r++) {
        const void *row = base + (size_t)r * row_bytes;
        for (int32_t t = 0; t < n_tok; t++)
            y[(size_t)t * w->rows + r] = cpu_dot_row(w->type, row, x + (size_t)t * w->cols, w->cols);
    }
}

void cpu_rmsnorm_ref(float *y, const float *x, const float *w, int32_t n, float eps)
{
    double ss = 0.0;
    for (int32_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float inv = (float)(1.0 / sqrt(ss / n + eps));
    for (int32_t i = 0; i < n; i++) y[i] = x[i] * inv * w[i];
}

void cpu_rope_ref(float *x, int32_t n_heads, int32_t head_dim,
                  const struct anc_rope_table *tab, int32_t pos)
{
    const float *c = tab->cos + (size_t)pos * tab->n_pairs;
    const float *s = tab->sin + (size_t)pos * tab->n_pairs;
    for (int32_t h = 0; h < n_heads; h++) {
        float *v = x + (size_t)h * head_dim;
        for (int32_t k = 0; k < tab->n_pairs; k++) {
            int32_t i0 = tab->neox ? k : 2 * k;
            int32_t i1 = tab->neox ? k + tab->n_pairs : 2 * k + 1;
            float x0 = v[i0], x1 = v[i1];
            v[i0] = x0 * c[k] - x1 * s[k];
            v[i1] = x0 * s[k] + x1 * c[k];
        }
    }
}

/* Row j (logical) of a key or value array, head kvh, as floats. */
static inline const float *kv_row(const struct anc_attn_args *a, const struct cpu_kernels *k,
                                  const void *base, int32_t j, int32_t kvh, float *buf)
{
    int32_t slot = a->slot ? a->slot[j] : j;
    size_t off = ((size_t)slot * a->n_kv_head + kvh) * a->head_dim;
    if (a->kv_type == ANC_DT_F16) {
        k->f16_to_f32(buf, (const uint16_t *)base + off, a->head_dim);
        return buf;
    }
    return (const float *)base + off;
}

/* Row j (logical) of a half-precision key or value array, head kvh. */
static inline const uint16_t *kv_half_row(const struct anc_attn_args *a, const void *base, int32_t j,
                                          int32_t kvh)
{
    int32_t slot = a->slot ? a->slot[j] : j;
    return (const uint16_t *)base + ((size_t)slot * a->n_kv_head + kvh) * a->head_dim;
}

/* Scaled (and soft-capped) scores of query i's heads in key/value group
 * kvh against logical entries [j0, j1): scores[g][j - j0], -inf where the
 * entry is not visible (sinks [0, n_sink) with q_sink, else [lo, hi));
 * maxv[g] the largest. */
static void score_entries(const struct anc_attn_args *a, const struct cpu_kernels *kt, int32_t i,
                          int32_t kvh, int32_t j0, int32_t j1, int32_t lo, int32_t hi,
                          float *scores, float *maxv)
{
    int32_t hd = a->head_dim, group = a->n_head / a->n_kv_head, h0 = kvh * group, n = j1 - j0;
    cpu_dot_f_fn dot = kt->dot_f[ANC_DT_F32];
    float buf[ANC_MAX_HEAD_DIM];
    for (int32_t g = 0; g < group; g++) maxv[g] = -INFINITY;
    for (int32_t j = j0; j < j1; j++) {
        bool sink = j < a->n_sink;
        if (!sink && (j < lo || j >= hi)) {
            for (int32_t g = 0; g < group; g++) scores[(size_t)g * n + (j - j0)] = -INFINITY;
            continue;
        }
        const float *qb = sink && a->q_sink ? a->q_sink : a->q;
        const float *q0 = qb + ((size_t)i * a->n_head + h0) * hd; /* the group's heads, hd apart */
        float dots[ANC_MAX_GROUP];
        if (a->kv_type == ANC_DT_F16) {
            kt->dot_f16_group(dots, q0, hd, group, kv_half_row(a, a->k, j, kvh), hd);
        } else {
            const float *k = kv_row(a, kt, a->k, j, kvh, buf);
            for (int32_t g = 0; g < group; g++) dots[g] = dot(q0 + (size_t)g * hd, k, hd);
        }
        for (int32_t g = 0; g < group; g++) {
            float sc = dots[g] * a->scale;
            if (a->softcap > 0.0f) sc = a->softcap * tanhf(sc / a->softcap);
            scores[(size_t)g * n + (j - j0)] = sc;
            if (sc > maxv[g]) maxv[g] = sc;
        }
    }
}

/* o_g += p[g]·v_j for the group's heads (outputs hd apart) whose weight is
 * not zero: value row j of head kvh read (and converted) once. */
static void add_value_row(const struct anc_attn_args *a, const struct cpu_kernels *kt, float *o,
                          const float *p, int32_t group, int32_t j, int32_t kvh, float *buf)
{
    int32_t hd = a->head_dim;
    if (a->kv_type == ANC_DT_F16) {
        kt->axpy_f16_group(o, hd, p, group, kv_half_row(a, a->v, j, kvh), hd);
        return;
    }
    const float *v = kv_row(a, kt, a->v, j, kvh, buf);
    for (int32_t g = 0; g < group; g++)
        if (p[g] != 0.0f) kt->axpy(o + (size_t)g * hd, p[g], v, hd);
}

/* Softmax attention of query i for the query heads that share key/value
 * head kvh (grouped-query attention: each key and value row is read and
 * converted once for the whole group). Entries seen: [0, n_sink) (scored
 * with q_sink) and [lo[i], hi[i]) (scored with q). scores: scratch
 * [group][n_kv]. */
void cpu_attention_group(const struct anc_attn_args *a, int32_t i, int32_t kvh, float *scores)
{
    int32_t hd = a->head_dim, group = a->n_head / a->n_kv_head, h0 = kvh * group;
    int32_t n_kv = a->n_kv;
    const struct cpu_kernels *kt = cpu_kernels_get();
    int32_t lo = a->lo[i], hi = a->hi[i];
    if (lo < a->n_sink) lo = a->n_sink; /* never count a sink twice */
    float buf[ANC_MAX_HEAD_DIM];
    float maxv[ANC_MAX_GROUP];
    score_entries(a, kt, i, kvh, 0, n_kv, lo, hi, scores, maxv);
    float inv[ANC_MAX_GROUP];
    for (int32_t g = 0; g < group; g++) {
        float *sg = scores + (size_t)g * n_kv;
        double sum = 0.0, sink_sum = 0.0;
        for (int32_t j = 0; j < n_kv; j++) {
            float e = sg[j] == -INFINITY ? 0.0f : expf(sg[j] - maxv[g]);
            sg[j] = e;
            sum += e;
            if (j < a->n_sink) sink_sum += e;
        }
        inv[g] = sum > 0 ? (float)(1.0 / sum) : 0.0f;
        if (a->sink_mass && i == a->n_q - 1)
            a->sink_mass[h0 + g] = sum > 0 ? (float)(sink_sum / sum) : 0.0f;
        memset(a->out + ((size_t)i * a->n_head + h0 + g) * hd, 0, (size_t)hd * sizeof(float));
    }
    float *out0 = a->out + ((size_t)i * a->n_head + h0) * hd; /* the group's outputs, hd apart */
    for (int32_t j = 0; j < n_kv; j++) {
        if (j >= a->n_sink && (j < lo || j >= hi)) continue;
        float p[ANC_MAX_GROUP];
        for (int32_t g = 0; g < group; g++) p[g] = scores[(size_t)g * n_kv + j] * inv[g];
        add_value_row(a, kt, out0, p, group, j, kvh, buf);
    }
}

void cpu_attention_range(const struct anc_attn_args *a, int32_t i, int32_t kvh, int32_t j0,
                         int32_t j1, float *scores, struct cpu_attn_part *part)
{
    int32_t hd = a->head_dim, group = a->n_head / a->n_kv_head;
    int32_t n = j1 - j0;
    const struct cpu_kernels *kt = cpu_kernels_get();
    int32_t lo = a->lo[i], hi = a->hi[i];
    if (lo < a->n_sink) lo = a->n_sink; /* never count a sink twice */
    float buf[ANC_MAX_HEAD_DIM];
    for (int32_t g = 0; g < group; g++) {
        part->m[g] = -INFINITY;
        part->l[g] = part->ls[g] = 0.0f;
        memset(part->o + (size_t)g * hd, 0, (size_t)hd * sizeof(float));
    }
    score_entries(a, kt, i, kvh, j0, j1, lo, hi, scores, part->m);
    for (int32_t g = 0; g < group; g++) {
        float *sg = scores + (size_t)g * n;
        double sum = 0.0, sink_sum = 0.0;
        for (int32_t j = 0; j < n; j++) {
            float e = sg[j] == -INFINITY ? 0.0f : expf(sg[j] - part->m[g]);
            sg[j] = e;
            sum += e;
            if (j0 + j < a->n_sink) sink_sum += e;
        }
        part->l[g] = (float)sum;
        part->ls[g] = (float)sink_sum;
    }
    for (int32_t j = j0; j < j1; j++) {
        if (j >= a->n_sink && (j < lo || j >= hi)) continue;
        float e[ANC_MAX_GROUP];
        for (int32_t g = 0; g < group; g++) e[g] = scores[(size_t)g * n + (j - j0)];
        add_value_row(a, kt, part->o, e, group, j, kvh, buf);
    }
}

void cpu_attention_merge(const struct anc_attn_args *a, int32_t i, int32_t kvh,
                         const struct cpu_attn_part *parts, int32_t n_parts)
{
    int32_t hd = a->head_dim, group = a->n_head / a->n_kv_head, h0 = kvh * group;
    for (int32_t g = 0; g < group; g++) {
        float mx = -INFINITY;
        for (int32_t c = 0; c < n_parts; c++)
            if (parts[c].m[g] > mx) mx = parts[c].m[g];
        double sum = 0.0, sink_sum = 0.0;
        float w[CPU_ATTN_MAX_PARTS];
        for (int32_t c = 0; c < n_parts; c++) {
            w[c] = parts[c].m[g] == -INFINITY ? 0.0f : expf(parts[c].m[g] - mx);
            sum += (double)w[c] * parts[c].l[g];
            sink_sum += (double)w[c] * parts[c].ls[g];
        }
        float inv = sum > 0 ? (float)(1.0 / sum) : 0.0f;
        float *out = a->out + ((size_t)i * a->n_head + h0 + g) * hd;
        for (int32_t e = 0; e < hd; e++) {
            float acc = 0.0f;
            for (int32_t c = 0; c < n_parts; c++) acc += w[c] * parts[c].o[(size_t)g * hd + e];
            out[e] = acc * inv;
        }
        if (a->sink_mass && i == a->n_q - 1)
            a->sink_mass[h0 + g] = sum > 0 ? (float)(sink_sum / sum) : 0.0f;
    }
}

void cpu_swiglu_ref(float *out, const float *gate, const float *up, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        float g = gate[i];
        out[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

void cpu_add_ref(float *y, const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] += x[i];
}

/* GELU in its tanh form (Hendrycks & Gimpel 2016, §2):
 * 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3); computed as
 * x / (1 + exp(-2u)), the same function (0.5 (1 + tanh u) = 1 / (1 + e^-2u))
 * for one expf instead of a tanhf. */
void cpu_geglu_ref(float *out, const float *gate, const float *up, int64_t n)
{
    const float c2 = 2.0f * 0.7978845608028654f; /* 2 sqrt(2/pi) */
    for (int64_t i = 0; i < n; i++) {
        float g = gate[i];
        out[i] = g / (1.0f + expf(-c2 * (g + 0.044715f * g * g * g))) * up[i];
    }
}

void cpu_add_rows_ref(float *y, const float *b, int64_t n, int32_t n_tok)
{
    for (int32_t t = 0; t < n_tok; t++)
        for (int64_t i = 0; i < n; i++) y[(size_t)t * n + i] += b[i];
}

void cpu_scale_ref(float *x, float s, int64_t n)
{
    for (int64_t i = 0; i < n; i++) x[i] *= s;
}

void cpu_softcap_ref(float *x, float cap, int64_t n)
{
    for (int64_t i = 0; i < n; i++) x[i] = cap * tanhf(x[i] / cap);
}

/* ---- the kernel table ------------------------------------------------ */

#define REF_DOT(T)                                                                \
    static float ref_dot_f_##T(const void *w, const float *x, int64_t n)         \
    {                                                                             \
        return cpu_dot_row(ANC_DT_##T, w, x, n);                                  \
    }                                                                             \
    static float ref_dot_q8_##T(const void *w, const void *xq, int64_t n)        \
    {                                                                             \
        return quant_dot_q8(ANC_DT_##T, w, xq, n);                                \
    }
REF_DOT(F32)
REF_DOT(F16)
REF_DOT(BF16)
REF_DOT(Q4_0)
REF_DOT(Q4_1)
REF_DOT(Q5_0)
REF_DOT(Q5_1)
REF_DOT(Q8_0)
REF_DOT(Q4_K)
REF_DOT(Q5_K)
REF_DOT(Q6_K)
#undef REF_DOT

#define REF_QUANT(T)                                                       \
    static bool ref_quant_##T(const float *x, void *dst, int64_t n)        \
    {                                                                      \
        return quant_quantize_row(ANC_DT_##T, x, dst, n);                  \
    }
REF_QUANT(Q8_0)
REF_QUANT(Q8_1)
REF_QUANT(Q8_K)
#undef REF_QUANT

static void ref_axpy(float *y, float a, const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

static void ref_exp_affine(float *x, int64_t n, float a, float b)
{
    for (int64_t i = 0; i < n; i++) x[i] = cpu_exp_fast(a * x[i] - b);
}

static void ref_f16_to_f32(float *dst, const uint16_t *src, int64_t n)
{
    for (int64_t i = 0; i < n; i++) dst[i] = f16_lut(src[i]);
}

static void ref_dot_f16_group(float *out, const float *q, int64_t q_stride, int32_t group, const uint16_t *k,
                              int64_t hd)
{
    for (int32_t g = 0; g < group; g++) {
        float s = 0.0f;
        for (int64_t d = 0; d < hd; d++) s += q[g * q_stride + d] * f16_lut(k[d]);
        out[g] = s;
    }
}

static void ref_axpy_f16_group(float *o, int64_t o_stride, const float *p, int32_t group, const uint16_t *v,
                               int64_t hd)
{
    for (int32_t g = 0; g < group; g++)
        if (p[g] != 0.0f)
            for (int64_t d = 0; d < hd; d++) o[g * o_stride + d] += p[g] * f16_lut(v[d]);
}

static struct cpu_kernels kernels;
static pthread_once_t kernels_once = PTHREAD_ONCE_INIT;

void cpu_kernels_generic(struct cpu_kernels *k)
{
    cpu_ops_init();
    memset(k, 0, sizeof *k);
    k->isa = "generic";
#define SET(T)                                   \
    k->dot_f[ANC_DT_##T] = ref_dot_f_##T;        \
    k->dot_q8[ANC_DT_##T] = ref_dot_q8_##T;
    SET(F32) SET(F16) SET(BF16) SET(Q4_0) SET(Q4_1) SET(Q5_0) SET(Q5_1) SET(Q8_0)
    SET(Q4_K) SET(Q5_K) SET(Q6_K)
#undef SET
    k->quant_x[ANC_DT_Q8_0] = ref_quant_Q8_0;
    k->quant_x[ANC_DT_Q8_1] = ref_quant_Q8_1;
    k->quant_x[ANC_DT_Q8_K] = ref_quant_Q8_K;
    k->axpy = ref_axpy;
    k->exp_affine = ref_exp_affine;
    k->f16_to_f32 = ref_f16_to_f32;
    k->dot_f16_group = ref_dot_f16_group;
    k->axpy_f16_group = ref_axpy_f16_group;
}

static void kernels_build(void)
{
    cpu_kernels_generic(&kernels);
    const char *force = getenv("ANCORA_CPU");
    if (force && strcmp(force, "generic") == 0) return;
#if defined(__x86_64__) && defined(__GNUC__) && !defined(ANC_NO_SIMD)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
        __builtin_cpu_supports("f16c")) {
        cpu_kernels_add_avx2(&kernels);
        kernels.isa = "avx2";
        /* ANCORA_CPU=avx2 keeps the AVX2 kernels only */
        if (__builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
            !(force && strcmp(force, "avx2") == 0)) {
            cpu_kernels_add_avx512vnni(&kernels);
            kernels.isa = "avx2+vnni";
        }
    }
#endif
}

const struct cpu_kernels *cpu_kernels_get(void)
{
    pthread_once(&kernels_once, kernels_build);
    return &kernels;
}
