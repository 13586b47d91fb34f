/* cuda_kernels.h — the CUDA kernels of Ancora as host-callable launch
 * functions (plain C declarations, so the backend's host code and the
 * tests can call them). Implemented in kernels/cuda/kernels_*.cu.
 * Depends only on stdint/stdbool and kernels/dtype.h; never on core/.
 *
 * Every pointer argument is DEVICE memory unless its comment says host.
 * `stream` is a cudaStream_t passed as void * (NULL = the legacy default
 * stream). Each function only enqueues work (no synchronisation, no
 * allocation, so every launch can be captured in a CUDA graph) and
 * returns 0, or -1 when the arguments are outside what the kernel handles
 * (the caller falls back or reports; nothing was launched then).
 *
 * Conventions are those of kernels/backend.h: activations float32,
 * row-major, one row per token; a weight matrix has `rows` outputs and
 * `cols` inputs, stored row by row in its GGUF block format. */
#ifndef ANC_CUDA_KERNELS_H
#define ANC_CUDA_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- weights ----------------------------------------------------------- */

/* Can the kernels below read weights of this type (enum anc_dtype)? */
bool anc_cu_supports(uint32_t type);

/* y[t][r] = sum_c W[r][c] * x[t][c] for t < n_tok, dequantising W on the
 * fly (the decode path; meant for n_tok <= ANC_CU_MATVEC_MAX_TOK).
 * y: [n_tok][rows]; x: [n_tok][cols]; cols a multiple of the type's block. */
#define ANC_CU_MATVEC_MAX_TOK 8
int anc_cu_matvec(void *stream, float *y, const void *w, uint32_t type, int64_t rows,
                  int64_t cols, const float *x, int32_t n_tok);

/* Dequantise rows [row0, row0 + n_rows) of W (rows of `cols` elements) into
 * dst [n_rows][cols] as IEEE half (out_f16) or float32 (the prompt path:
 * the result feeds a cuBLAS GEMM). */
int anc_cu_dequant_rows(void *stream, void *dst, bool out_f16, const void *w, uint32_t type,
                        int64_t cols, int64_t row0, int64_t n_rows);

/* dst[i] = (half)src[i], n elements. */
int anc_cu_f32_to_f16(void *stream, void *dst, const float *src, int64_t n);

/* out[t] = row tokens[t] of the table (dequantised); tokens are device
 * int32 and already checked to be < the table's rows. */
int anc_cu_embed(void *stream, float *out, const void *table, uint32_t type, int64_t cols,
                 const int32_t *tokens, int32_t n_tok);

/* ---- element-wise and row operations ------------------------------------ */

/* y[t] = x[t] / sqrt(mean(x[t]^2) + eps) * w, n_tok rows of n; y may alias x. */
int anc_cu_rmsnorm(void *stream, float *y, const float *x, const float *w, int32_t n,
                   int32_t n_tok, float eps);

/* Rotate x [n_tok][n_heads][head_dim] in place; token t uses table row
 * pos[t] of cos/sin [*][n_pairs]; the first 2*n_pairs dims of each head
 * rotate: pairs (2k, 2k+1), or (k, k + n_pairs) when neox. */
int anc_cu_rope(void *stream, float *x, int32_t n_tok, int32_t n_heads, int32_t head_dim,
                int32_t n_pairs, bool neox, const float *cos_tab, const float *sin_tab,
                const int32_t *pos);

/* out[i] = silu(gate[i]) * up[i]; out may alias gate. */
int anc_cu_swiglu(void *stream, float *out, const float *gate, const float *up, int64_t n);

/* y[i] += x[i] */
int anc_cu_add(void *stream, float *y, const float *x, int64_t n);

/* out[i] = gelu_tanh(gate[i]) * up[i], with gelu_tanh(g) =
 * 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3))); out may alias gate. */
int anc_cu_geglu(void *stream, float *out, const float *gate, const float *up, int64_t n);

/* y[t][i] += b[i] for t < n_tok, i < n (a bias over every token's row). */
int anc_cu_add_rows(void *stream, float *y, const float *b, int64_t n, int32_t n_tok);

/* x[i] *= s */
int anc_cu_scale(void *stream, float *x, float s, int64_t n);

/* x[i] = cap * tanh(x[i] / cap); cap > 0. */
int anc_cu_softcap(void *stream, float *x, float cap, int64_t n);

/* Cache rows of row_len elements of `type` (ANC_DT_F32 or ANC_DT_F16):
 * store: row rows[i] of base <- src[i] (converted); load: dst[i] <- row
 * rows[i] of base (as float). rows: device int32 [n]. */
int anc_cu_store_rows(void *stream, void *base, uint32_t type, const float *src,
                      const int32_t *rows, int32_t n, int64_t row_len);
int anc_cu_load_rows(void *stream, float *dst, const void *base, uint32_t type,
                     const int32_t *rows, int32_t n, int64_t row_len);

/* out[0] = the smallest index of the largest of x[0..n) (NaN never wins). */
int anc_cu_argmax(void *stream, int32_t *out, const float *x, int32_t n);

/* ---- attention ------------------------------------------------------------ */

/* The semantics of struct anc_attn_args (kernels/backend.h), with every
 * array in device memory. Query i of head h (kv head h / (n_head/n_kv_head))
 * sees logical entries [0, n_sink) scored with q_sink (q when NULL) and
 * [max(lo[i], n_sink), hi[i]) scored with q; entry j's key and value are
 * physical row slot[j] of k and v ([*][n_kv_head*head_dim] of kv_type).
 * Softmax over the visible entries of the scores (q . k) * scale, each
 * soft-capped to softcap * tanh(score / softcap) when softcap > 0
 * (attn_dev.h: anc_attn_softcap), out = sum p v.
 * A query seeing nothing gets zeros. When sink_mass is not NULL,
 * sink_mass[h] = share of the LAST query's (i = n_q-1) probability on
 * [0, n_sink) (0 when it sees nothing).
 * Long caches are split into n_split chunks of ceil(n_kv / n_split)
 * entries processed in parallel and merged (flash-decoding); `part` is the
 * work area for that, at least anc_cu_attention_work_bytes() bytes. */
struct anc_cu_attn {
    float *out;              /* [n_q][n_head*head_dim] */
    const float *q;          /* [n_q][n_head*head_dim] */
    const float *q_sink;     /* like q, or NULL */
    const void *k, *v;
    uint32_t kv_type;        /* ANC_DT_F32 or ANC_DT_F16 */
    const int32_t *slot;     /* [n_kv] */
    const int32_t *lo, *hi;  /* [n_q] */
    int32_t n_q, n_kv, n_head, n_kv_head, head_dim, n_sink;
    float scale;
    float softcap;           /* > 0: soft-cap the scores; 0: none */
    float *sink_mass;        /* [n_head] or NULL */
    int32_t n_split;         /* >= 1 */
    float *part;             /* work area (unused when n_split == 1) */
};

size_t anc_cu_attention_work_bytes(int32_t n_q, int32_t n_head, int32_t head_dim,
                                   int32_t n_split);
int anc_cu_attention(void *stream, const struct anc_cu_attn *a);

/* ---- training (kernels_train.cu) ------------------------------------------
 * The backward ops of backend.h's "Training" section, with the contracts
 * of the CPU reference (kernels/cpu/cpu_train.c). The matrix products of
 * the backward (gradient to a matmul's input and weight) are cuBLAS calls
 * made by the backend itself, over anc_cu_dequant_rows for weights that
 * are not f32. Every kernel here is deterministic: each output element is
 * summed by one thread, or one block, in a fixed order. */

/* rmsnorm's backward for y = x / rms(x) * w, n_tok rows of n:
 * dx += d(y)/d(x)^T dy, and dw += sum_t dy[t]·x[t]/rms(x[t]) when dw is
 * not NULL (both accumulate). work: [n_tok] floats (each row's 1/rms). */
int anc_cu_rmsnorm_bwd(void *stream, float *dx, float *dw, const float *dy, const float *x,
                       const float *w, int32_t n, int32_t n_tok, float eps, float *work);

/* anc_cu_rope's transpose: rotate x by -angle (same arguments). */
int anc_cu_rope_bwd(void *stream, float *x, int32_t n_tok, int32_t n_heads, int32_t head_dim,
                    int32_t n_pairs, bool neox, const float *cos_tab, const float *sin_tab,
                    const int32_t *pos);

/* Training attention (struct anc_attn_train_args of backend.h, every
 * array in device memory): n tokens, causal, with S²-Attn groups when
 * group > 0 (heads below n_head/2 see their own group [gG, (g+1)G), the
 * others the groups shifted by G/2: [0, G/2), [G/2, 3G/2), ..., the last
 * ending at n; no wrap-around). Forward: out and lse (each (query, head)'s
 * log-sum-exp of the scaled scores). Backward: dq, dk, dv (overwritten)
 * from dout, out, lse, q, k, v; work: [n][n_head] floats (dout·out). */
struct anc_cu_attn_train {
    float *out;              /* [n][n_head*head_dim] */
    float *lse;              /* [n][n_head] */
    const float *q;          /* [n][n_head*head_dim] */
    const float *k, *v;      /* [n][n_kv_head*head_dim] */
    const float *dout;       /* backward: like out */
    float *dq, *dk, *dv;     /* backward: like q, k, v */
    float *work;             /* backward: [n][n_head] */
    int32_t n, n_head, n_kv_head, head_dim;
    int32_t group;           /* 0: full causal; else even, divides n */
    float scale;
};
int anc_cu_attn_train(void *stream, const struct anc_cu_attn_train *a);
int anc_cu_attn_train_bwd(void *stream, const struct anc_cu_attn_train *a);

/* swiglu's backward: dgate = dy·up·silu'(gate), dup = dy·silu(gate). */
int anc_cu_swiglu_bwd(void *stream, float *dgate, float *dup, const float *dy, const float *gate,
                      const float *up, int64_t n);

/* embed's backward, rows of dim: dtable[uniq[u]] += dx[pos[j]] for j in
 * [start[u], start[u+1]), in that order, for each u < n_uniq. idx (device
 * int32) holds uniq [n_uniq], start [n_uniq + 1], then pos [n_tok]: the
 * positions of each distinct token in increasing order (built on the host
 * from the token list), so every table row is summed by one thread per
 * element in the token order — the CPU's sums, bit for bit. */
int anc_cu_embed_bwd(void *stream, float *dtable, const float *dx, const int32_t *idx,
                     int32_t n_uniq, int32_t n_tok, int64_t dim);

/* Cross-entropy of logits [n_tok][n_vocab] against targets (device int32,
 * < n_vocab; < 0: not scored): loss[t] = -log softmax(logits[t])[target]
 * (0 when not scored), in double; logits become (softmax - onehot) *
 * grad_scale (rows not scored: 0). */
int anc_cu_cross_entropy(void *stream, float *logits, double *loss, const int32_t *targets,
                         int32_t n_tok, int32_t n_vocab, float grad_scale);

/* part[b] = sum of x[i]^2 (in double) over i in [b*c, min(n, (b+1)*c)),
 * c = ceil(n / n_parts), for b < n_parts (n_parts from
 * cuda_plan_sum_parts; the caller adds the parts in order). */
int anc_cu_sum_sq(void *stream, double *part, const float *x, int64_t n, int32_t n_parts);

/* One AdamW step (struct anc_adamw of backend.h), element-wise. */
struct anc_cu_adamw {
    float lr, beta1, beta2, eps, weight_decay;
    int64_t t;               /* step, >= 1 */
};
int anc_cu_adamw(void *stream, float *p, const float *g, float *m, float *v, int64_t n,
                 const struct anc_cu_adamw *h);

#ifdef __cplusplus
}
#endif

#endif
