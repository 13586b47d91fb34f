/* cpu_train.h — the CPU backend's training ops (cpu_train.c), as entries of
 * its backend table; see backend.h ("Training") for each one's contract.
 * Depends on backend.h only. */
#ifndef ANC_CPU_TRAIN_H
#define ANC_CPU_TRAIN_H

#include "backend.h"

struct threadpool;
/* The CPU backend's thread pool (cpu_backend.c). */
struct threadpool *cpu_backend_pool(struct anc_backend *be);

void cpu_train_zero(struct anc_backend *be, void *p, size_t bytes);
void cpu_train_upload(struct anc_backend *be, void *dst, const void *host, size_t bytes);
void cpu_train_matmul_bwd_x(struct anc_backend *be, float *dx, const struct anc_weight *w,
                            const float *dy, int32_t n_tok, bool accumulate);
void cpu_train_matmul_bwd_w(struct anc_backend *be, float *dw, const float *dy, const float *x,
                            int64_t rows, int64_t cols, int32_t n_tok);
void cpu_train_rmsnorm_bwd(struct anc_backend *be, float *dx, float *dw, const float *dy,
                           const float *x, const struct anc_weight *w, int32_t n, int32_t n_tok,
                           float eps);
void cpu_train_rope_bwd(struct anc_backend *be, float *dy, int32_t n_tok, int32_t n_heads,
                        int32_t head_dim, const struct anc_rope_table *tab, const int32_t *pos);
void cpu_train_attn(struct anc_backend *be, const struct anc_attn_train_args *a);
void cpu_train_attn_bwd(struct anc_backend *be, const struct anc_attn_train_args *a);
void cpu_train_swiglu_bwd(struct anc_backend *be, float *dgate, float *dup, const float *dy,
                          const float *gate, const float *up, int64_t n);
void cpu_train_embed_bwd(struct anc_backend *be, float *dtable, const float *dx,
                         const int32_t *tokens, int32_t n_tok, int64_t dim);
double cpu_train_cross_entropy(struct anc_backend *be, float *logits, const int32_t *targets,
                               int32_t n_tok, int32_t n_vocab, float grad_scale);
double cpu_train_sum_sq(struct anc_backend *be, const float *x, int64_t n);
void cpu_train_adamw(struct anc_backend *be, float *p, const float *g, float *m, float *v,
                     int64_t n, const struct anc_adamw *h);

#endif
