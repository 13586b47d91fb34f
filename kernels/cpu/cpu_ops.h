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
 * environment keeps the portable one. NULL entries: not available. */
typedef float (*cpu_dot_f_fn)(const void *wrow, const float *x, int64_t n);
typedef float (*cpu_dot_q8_fn)(const void *wrow, const void *xq, int64_t n);
struct cpu_kernels {
    const char *isa;                       /* "generic", "avx2" */
    cpu_dot_f_fn dot_f[ANC_DT_COUNT_];
    cpu_dot_q8_fn dot_q8[ANC_DT_COUNT_];
};
const struct cpu_kernels *cpu_kernels_get(void);
/* Overrides from kernels/cpu/simd_*.c (each checks nothing: the caller
 * decides from cpuid). */
void cpu_kernels_add_avx2(struct cpu_kernels *k);

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
/* One (query i, head h) pair of an attention call. scores: scratch [n_kv]. */
void cpu_attention_one(const struct anc_attn_args *a, int32_t i, int32_t h, float *scores);
void cpu_swiglu_ref(float *out, const float *gate, const float *up, int64_t n);
void cpu_add_ref(float *y, const float *x, int64_t n);

#endif
