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

/* Dot product of one weight row (n elements of `type`) with x[n]. */
float cpu_dot_row(uint32_t type, const void *row, const float *x, int64_t n);

/* Dequantise one row of n elements into out[n]. */
void cpu_dequant_row(uint32_t type, const void *row, float *out, int64_t n);

/* y[t][r] for rows [r0, r1) of W, every token t < n_tok. */
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
