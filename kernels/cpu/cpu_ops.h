/* cpu_ops.h — the CPU reference operations: plain, readable, one thread.
 * The threaded backend (cpu_backend.c) splits work and calls these on
 * slices; other backends are tested against them.
 * Depends on dtype.h and backend.h only. */
#ifndef ANC_CPU_OPS_H
#define ANC_CPU_OPS_H

#include <stdint.h>
#include "backend.h"

/* Build the f16 -> f32 lookup table (idempotent, thread-safe). */
void cpu_ops_init(void);

/* Row dot products, one per weight type: with float activations (dot_f)
 * and with activations quantised to quant_vec_dot_type(type) (dot_q8).
 * The table starts with the portable reference (quant.c) and is overridden
 * by SIMD versions the processor supports; ANCORA_CPU=generic in the
 * environment keeps the portable one, ANCORA_CPU=avx2 stops at AVX2.
 * NULL entries: not available. */
typedef float (*cpu_dot_f_fn)(const void *wrow, const float *x, int64_t n);
typedef float (*cpu_dot_q8_fn)(const void *wrow, const void *xq, int64_t n);

/* Multi-token matrix kernels (prefill): rows [0, nr) of a weight matrix
 * (row r at w + r·row_bytes, n elements of the type) times n_tok tokens,
 * written to y[t·ldy + r]. Each weight block is unpacked once per call and
 * reused for every token, which is what makes prefill compute-bound rather
 * than unpack-bound. mm_q8 takes activations quantised to
 * quant_vec_dot_type(type), token t's row at xq + t·xq_bytes; mm_f takes
 * float activations, token t at x + t·ldx. scratch: cpu_mm_scratch_bytes(n,
 * n_tok) bytes, 64-byte aligned, owned by the calling thread for the call.
 * Each y[t][r] equals dot_q8 / dot_f of the same pair up to the order of
 * the float scaling and summation (tests/test_simd.c). NULL entries: not
 * available; the caller loops over dot_q8 / dot_f instead. */
typedef void (*cpu_mm_q8_fn)(float *y, int64_t ldy, const void *w, size_t row_bytes, int64_t nr,
                             const void *xq, size_t xq_bytes, int32_t n_tok, int64_t n,
                             void *scratch);
typedef void (*cpu_mm_f_fn)(float *y, int64_t ldy, const void *w, size_t row_bytes, int64_t nr,
                            const float *x, int64_t ldx, int32_t n_tok, int64_t n, void *scratch);

/* Activation quantiser for an activation format (Q8_0, Q8_1, Q8_K): the
 * same contract and the same bytes as quant_quantize_row(type, ...). */
typedef bool (*cpu_quant_fn)(const float *x, void *dst, int64_t n);

struct cpu_kernels {
    const char *isa;                       /* "generic", "avx2", "avx2+vnni" */
    cpu_quant_fn quant_x[ANC_DT_COUNT_];   /* by activation type */
    cpu_dot_f_fn dot_f[ANC_DT_COUNT_];
    cpu_dot_q8_fn dot_q8[ANC_DT_COUNT_];
    cpu_mm_f_fn mm_f[ANC_DT_COUNT_];       /* float weights */
    cpu_mm_q8_fn mm_q8[ANC_DT_COUNT_];     /* quantised weights */
    /* attention's inner loops: y[i] += a * x[i]; dst[i] = src[i] (half) */
    void (*axpy)(float *y, float a, const float *x, int64_t n);
    /* training attention's: x[i] = exp(a·x[i] − b), by cpu_exp_fast's method */
    void (*exp_affine)(float *x, int64_t n, float a, float b);
    void (*f16_to_f32)(float *dst, const uint16_t *src, int64_t n);
    /* attention over a half-precision cache, one cache row at a time for
     * a group of query heads (row g at q + g·q_stride, output g at
     * o + g·o_stride): scores out[g] = Σ_d q_g[d]·k[d]; and
     * o_g[d] += p[g]·v[d] for every g whose p[g] is not 0. */
    void (*dot_f16_group)(float *out, const float *q, int64_t q_stride, int32_t group, const uint16_t *k,
                          int64_t hd);
    void (*axpy_f16_group)(float *o, int64_t o_stride, const float *p, int32_t group, const uint16_t *v,
                           int64_t hd);
};
const struct cpu_kernels *cpu_kernels_get(void);

/* e^x for x <= 88, clamped below at -87 (so never 0 or subnormal; used
 * where arguments are scores minus their row's maximum or log-sum-exp).
 * Range reduction x = n·ln2 + r, |r| <= ln2/2 (n by the 1.5·2^23 rounding
 * trick, ln2 split in two for an exact n·ln2_hi), then the degree-6 Taylor
 * polynomial of e^r: relative error below 3e-7 (tests/test_simd.c). */
static inline float cpu_exp_fast(float x)
{
    x = x < -87.0f ? -87.0f : x > 88.0f ? 88.0f : x;
    float n = (x * 1.442695041f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693145751953125f - n * 1.428606820309417e-6f;
    float p = 1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 + r * (1.0f / 720))))));
    union {
        int32_t i;
        float f;
    } b = {.i = ((int32_t)n + 127) << 23};
    return p * b.f;
}
/* The portable table (quant.c's reference; no mm kernels), whatever the
 * processor: the baseline the SIMD tables are tested against. */
void cpu_kernels_generic(struct cpu_kernels *k);
/* Overrides from kernels/cpu/simd_*.c (each checks nothing: the caller
 * decides from cpuid). */
void cpu_kernels_add_avx2(struct cpu_kernels *k);
/* On top of the AVX2 table: prefill kernels using AVX512-VNNI (vpdpbusd on
 * 256-bit vectors; needs AVX512-VL too). */
void cpu_kernels_add_avx512vnni(struct cpu_kernels *k);

/* Scratch bytes an mm kernel needs for rows of n elements and n_tok tokens
 * (room for one packed panel of weight rows plus per-token block data). */
static inline size_t cpu_mm_scratch_bytes(int64_t n, int32_t n_tok)
{
    size_t panel = 17 * (size_t)n + 16384 + 256;
    return panel + (size_t)(n_tok > 0 ? n_tok : 1) * (2 * (size_t)n + (size_t)n / 8 + 64);
}

/* Dot product of one weight row (n elements of `type`) with x[n]. */
float cpu_dot_row(uint32_t type, const void *row, const float *x, int64_t n);

/* Dequantise one row of n elements into out[n]. */
void cpu_dequant_row(uint32_t type, const void *row, float *out, int64_t n);

/* y[t][r] for rows [r0, r1) of W, every token t < n_tok, float activations
 * (the plain reference: cpu_dot_row per pair). */
void cpu_matmul_rows(float *y, const struct anc_weight *w, const float *x, int32_t n_tok,
                     int64_t r0, int64_t r1);

void cpu_rmsnorm_ref(float *y, const float *x, const float *w, int32_t n, float eps);
void cpu_rope_ref(float *x, int32_t n_heads, int32_t head_dim,
                  const struct anc_rope_table *tab, int32_t pos);
/* Attention of query i for the group of query heads sharing key/value head
 * kvh. scores: scratch [n_head / n_kv_head][n_kv]. */
void cpu_attention_group(const struct anc_attn_args *a, int32_t i, int32_t kvh, float *scores);

/* The same over a part [j0, j1) of the entries, unnormalised, for decoding
 * with few (query, key/value head) pairs: the entries are split among the
 * threads and the parts merged (flash-decoding). For each query head g of
 * the group: the largest score m[g], l[g] = sum of exp(score - m[g]) (ls[g]
 * over sinks only) and o[g][hd] = sum of exp(score - m[g]) v. scores:
 * scratch [group][j1 - j0]. */
#define CPU_ATTN_MAX_PARTS 64
struct cpu_attn_part {
    float m[ANC_MAX_GROUP], l[ANC_MAX_GROUP], ls[ANC_MAX_GROUP];
    float *o;              /* [group][head_dim] */
};
void cpu_attention_range(const struct anc_attn_args *a, int32_t i, int32_t kvh, int32_t j0,
                         int32_t j1, float *scores, struct cpu_attn_part *part);
/* out (and sink_mass) of query i, head group kvh from its n_parts parts. */
void cpu_attention_merge(const struct anc_attn_args *a, int32_t i, int32_t kvh,
                         const struct cpu_attn_part *parts, int32_t n_parts);
void cpu_swiglu_ref(float *out, const float *gate, const float *up, int64_t n);
void cpu_add_ref(float *y, const float *x, int64_t n);
void cpu_geglu_ref(float *out, const float *gate, const float *up, int64_t n);
/* y[t][i] += b[i] */
void cpu_add_rows_ref(float *y, const float *b, int64_t n, int32_t n_tok);
void cpu_scale_ref(float *x, float s, int64_t n);
void cpu_softcap_ref(float *x, float cap, int64_t n);

#endif
