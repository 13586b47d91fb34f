/* rope.h — rotary position embedding settings and the rotation tables the
 * kernels use: per-pair frequencies (with ABF, linear, dynamic NTK, YaRN,
 * Llama-3 scaling and a rope_freqs tensor), computed in double.
 * Formulas: ../shared/docs/TECHNIQUES.md §1. Internal to core/. */
#ifndef ANC_ROPE_H
#define ANC_ROPE_H

#include <stdbool.h>
#include <stdint.h>

#include "backend.h"

enum rope_scaling { ROPE_NONE = 0, ROPE_LINEAR, ROPE_DYNAMIC, ROPE_YARN, ROPE_LLAMA3 };

struct rope_params {
    int32_t dims;            /* rotary dims d (even, <= head_dim) */
    bool neox;               /* pairing (k, k+d/2) instead of (2k, 2k+1) */
    double base;             /* rope_theta */
    enum rope_scaling scaling;
    double factor;           /* s */
    int32_t orig_ctx;        /* L0: context the model was trained at */
    double yarn_beta_fast;   /* default 32 */
    double yarn_beta_slow;   /* default 1 */
    double yarn_attn_factor; /* default 1 */
    double llama3_low_freq_factor;  /* default 1 */
    double llama3_high_freq_factor; /* default 4 */
    const float *freq_divisors;     /* rope_freqs tensor [d/2] or NULL (borrowed) */
    double attn_factor;      /* cos and sin are also multiplied by it, whatever the
                                scaling (LongRoPE's attention factor); default 1 */
    int long_rope;           /* which LongRoPE divisors freq_divisors are:
                                0 none, 1 short, 2 long (for display) */
};

void rope_params_default(struct rope_params *p, int32_t dims, double base, int32_t orig_ctx);

/* Frequencies omega[k], k < d/2, for a sequence of current length cur_len
 * (only dynamic NTK depends on it); *mscale receives the factor cos and sin
 * are multiplied by (YaRN's m; 1 otherwise). */
void rope_frequencies(const struct rope_params *p, int64_t cur_len, double *omega,
                      double *mscale);

/* Dynamic NTK's effective base at length L (TECHNIQUES.md §1). */
double rope_dynamic_base(double base, int32_t dims, double factor, int32_t orig_ctx, int64_t len);

/* YaRN's correction range [*low, *high] in pair indices. */
void rope_yarn_range(int32_t dims, double base, int32_t orig_ctx, double beta_fast,
                     double beta_slow, int32_t *low, int32_t *high);

/* A rotation table for positions [0, n_pos), owned by the caller. */
struct rope_table {
    struct anc_rope_table t;  /* what the kernels get */
    float *cos, *sin;         /* owned [n_pos][d/2] */
    int32_t cap_pos;
};

/* (Re)fill the table for positions [0, n_pos); grows storage as needed.
 * false on allocation failure. */
bool rope_table_fill(struct rope_table *tab, const struct rope_params *p, int32_t n_pos,
                     int64_t cur_len);
void rope_table_release(struct rope_table *tab);

/* Fill entry i of the table with the rotation for positions[i] (any size,
 * e.g. text positions of a long conversation), i < n. The kernels then
 * take indices into this list as their "positions". */
bool rope_table_fill_list(struct rope_table *tab, const struct rope_params *p,
                          const int64_t *positions, int32_t n, int64_t cur_len);

/* The RoPE parameters of model m's global layers under settings r (zero
 * fields: the file's values); reach: the largest position used (LongRoPE
 * picks its divisors by it). In session.c; train.c uses it too. */
struct anc_model;
struct anc_rope_settings;
void session_rope_resolve(const struct anc_model *m, const struct anc_rope_settings *r, int32_t reach,
                          struct rope_params *out);

const char *rope_scaling_name(enum rope_scaling s);
int rope_scaling_from_name(const char *name); /* -1 if unknown */

#endif
