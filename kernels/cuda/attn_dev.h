/* attn_dev.h — the pure math of the CUDA attention kernel, shared by the
 * device code (kernels/cuda/kernels_attn.cu) and a CPU test that replays
 * the kernel's algorithm (tests/test_cuda_dev_attn.c):
 *   - the block plan: query heads per block, entries per tile;
 *   - the split plan: which logical cache entries split s of n_split owns;
 *   - the visibility rule: which entries a query sees, and with which query
 *     copy (q_sink for the sinks) they are scored;
 *   - the score: scaling, then the optional soft-cap (tanh);
 *   - the online softmax state (running max, sum, sink sum) and its update
 *     with a tile of scores, and the merge of two partial states
 *     (flash-decoding);
 *   - IEEE half <-> float by bit manipulation (bit-identical to dtype.h).
 * Compiles as C99 (gcc) and as CUDA C++ (nvcc). Depends on the C library
 * headers only: never on the CUDA runtime, backend.h or core/. No model
 * facts: the constants below size the kernel's shared memory, nothing else. */
#ifndef ANC_ATTN_DEV_H
#define ANC_ATTN_DEV_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#ifdef __CUDACC__
#define ANC_HD_ATTN __host__ __device__ __forceinline__
#else
#define ANC_HD_ATTN static inline
#endif

/* ---- block plan -------------------------------------------------------
 * One CUDA block handles (query i, kv head, head chunk, split s). It holds
 * the accumulators of gb query heads x head_dim in registers, spread over
 * its threads, so gb * head_dim <= ANC_ATTN_GD_MAX; key/value rows are
 * staged in shared memory a tile of `tile` entries at a time, so
 * tile * head_dim <= ANC_ATTN_TILE_FLOATS. With head_dim <= 512 both
 * quotients are >= 4. */
#define ANC_ATTN_THREADS 256      /* threads per attention block */
#define ANC_ATTN_GD_MAX 2048      /* query heads per block x head_dim, floats */
#define ANC_ATTN_TILE_FLOATS 2048 /* entries per tile x head_dim, floats */
#define ANC_ATTN_TILE_MAX 32      /* entries per tile, at most (one per lane) */
#define ANC_ATTN_ACC_PER_THREAD (ANC_ATTN_GD_MAX / ANC_ATTN_THREADS)

/* Query heads of one kv head handled together by one block (all of them
 * unless group x head_dim is too large for the accumulators). */
ANC_HD_ATTN int32_t anc_attn_heads_per_block(int32_t group, int32_t head_dim)
{
    int32_t cap = ANC_ATTN_GD_MAX / head_dim;
    if (cap < 1) cap = 1;
    return group < cap ? group : cap;
}

/* Cache entries staged per tile. */
ANC_HD_ATTN int32_t anc_attn_tile_entries(int32_t head_dim)
{
    int32_t t = ANC_ATTN_TILE_FLOATS / head_dim;
    if (t < 1) t = 1;
    return t < ANC_ATTN_TILE_MAX ? t : ANC_ATTN_TILE_MAX;
}

/* Row stride (floats) of query and key rows in shared memory: odd, so
 * threads reading element d of consecutive rows hit distinct banks. */
ANC_HD_ATTN int32_t anc_attn_row_stride(int32_t head_dim) { return head_dim | 1; }

/* ---- split plan ---------------------------------------------------------
 * Split s of n_split owns logical entries [*b, *e) = [s*c, min(n_kv, (s+1)*c))
 * with c = ceil(n_kv / n_split); trailing splits may be empty (*b == *e). */
ANC_HD_ATTN void anc_attn_split_range(int32_t n_kv, int32_t n_split, int32_t s, int32_t *b,
                                      int32_t *e)
{
    int64_t c = ((int64_t)n_kv + n_split - 1) / n_split;
    int64_t lo = (int64_t)s * c, hi = lo + c;
    *b = (int32_t)(lo < n_kv ? lo : n_kv);
    *e = (int32_t)(hi < n_kv ? hi : n_kv);
}

/* ---- visibility ---------------------------------------------------------
 * A query with window [lo, hi) sees logical entry j when j < n_sink (a
 * sink, scored with q_sink when there is one) or lo <= j < hi (scored with
 * q). A sink inside the window is still one entry, scored as a sink. */
enum { ANC_ATTN_HIDDEN = 0, ANC_ATTN_WINDOW = 1, ANC_ATTN_SINK = 2 };

ANC_HD_ATTN int anc_attn_visibility(int32_t j, int32_t n_sink, int32_t lo, int32_t hi)
{
    if (j < n_sink) return ANC_ATTN_SINK;
    return j >= lo && j < hi ? ANC_ATTN_WINDOW : ANC_ATTN_HIDDEN;
}

/* The entries of a chunk [b, e) one query sees, as two ranges: the sinks
 * [sink_b, sink_e), then the window [win_b, win_e) (its start clamped up to
 * n_sink so no sink is counted twice). Either may be empty. */
struct anc_attn_span {
    int32_t sink_b, sink_e, win_b, win_e;
};

ANC_HD_ATTN int32_t anc_attn_clamp(int32_t x, int32_t lo, int32_t hi)
{
    return x < lo ? lo : x > hi ? hi : x;
}

ANC_HD_ATTN struct anc_attn_span anc_attn_chunk_span(int32_t b, int32_t e, int32_t n_sink,
                                                     int32_t lo, int32_t hi)
{
    struct anc_attn_span sp;
    sp.sink_b = b;
    sp.sink_e = anc_attn_clamp(n_sink, b, e);
    int32_t wlo = lo > n_sink ? lo : n_sink;
    sp.win_b = anc_attn_clamp(wlo, b, e);
    sp.win_e = anc_attn_clamp(hi, sp.win_b, e);
    return sp;
}

/* Number of visible entries of the span; the first anc_attn_span_sinks()
 * of them are sinks. */
ANC_HD_ATTN int32_t anc_attn_span_sinks(struct anc_attn_span sp) { return sp.sink_e - sp.sink_b; }

ANC_HD_ATTN int32_t anc_attn_span_count(struct anc_attn_span sp)
{
    return (sp.sink_e - sp.sink_b) + (sp.win_e - sp.win_b);
}

/* Logical index of the u-th visible entry, u < anc_attn_span_count(sp). */
ANC_HD_ATTN int32_t anc_attn_span_entry(struct anc_attn_span sp, int32_t u)
{
    int32_t ns = sp.sink_e - sp.sink_b;
    return u < ns ? sp.sink_b + u : sp.win_b + (u - ns);
}

/* ---- scores ----------------------------------------------------------------
 * A score is (q . k) * scale, then, when cap > 0, soft-capped to
 * cap * tanh(score / cap) (Gemma 2): the order and the operations of the
 * CPU reference (cpu_attention_group), so both round alike. */
ANC_HD_ATTN float anc_attn_softcap(float s, float cap)
{
    return cap > 0.0f ? cap * tanhf(s / cap) : s;
}

ANC_HD_ATTN float anc_attn_score(float dot, float scale, float cap)
{
    return anc_attn_softcap(dot * scale, cap);
}

/* ---- online softmax -------------------------------------------------------
 * The partial result of one query head over some entries E:
 *   m = max_{j in E} s_j (-inf when E is empty),
 *   l = sum_{j in E} exp(s_j - m),  sink_l = the same over the sinks in E,
 * and, kept by the caller per element d, acc[d] = sum_{j in E} exp(s_j - m) v_j[d].
 * Final: out[d] = acc[d] / l, sink share = sink_l / l (0 and 0 when l == 0). */
struct anc_attn_state {
    float m, l, sink_l;
};

ANC_HD_ATTN struct anc_attn_state anc_attn_state_empty(void)
{
    struct anc_attn_state st;
    st.m = -INFINITY;
    st.l = 0.0f;
    st.sink_l = 0.0f;
    return st;
}

/* Factor that takes sums relative to max m_old to sums relative to
 * m_new >= m_old. An empty state (m_old = -inf) has nothing to scale: 0. */
ANC_HD_ATTN float anc_attn_rescale(float m_old, float m_new)
{
    return m_old == -INFINITY ? 0.0f : expf(m_old - m_new);
}

/* exp(s - m), the weight of score s under max m >= s; 0 for a hidden entry. */
ANC_HD_ATTN float anc_attn_weight(float s, float m) { return s == -INFINITY ? 0.0f : expf(s - m); }

/* First half of folding a tile of scores in: raise st->m to cover the
 * tile's largest score and rescale the sums. Returns the factor the caller
 * must multiply its accumulator by. Then weigh each score with
 * anc_attn_weight(s, st->m) and add the weights with anc_attn_state_add. */
ANC_HD_ATTN float anc_attn_state_raise(struct anc_attn_state *st, float tile_max)
{
    float m = fmaxf(st->m, tile_max);
    float alpha = anc_attn_rescale(st->m, m);
    st->m = m;
    st->l *= alpha;
    st->sink_l *= alpha;
    return alpha;
}

/* Second half: add the tile's weights (all of them, and those of sinks). */
ANC_HD_ATTN void anc_attn_state_add(struct anc_attn_state *st, float p_sum, float p_sink_sum)
{
    st->l += p_sum;
    st->sink_l += p_sink_sum;
}

/* The one-score case: fold score s (a sink when is_sink); *alpha scales the
 * accumulator, then acc += *p * v. */
ANC_HD_ATTN void anc_attn_update_one(struct anc_attn_state *st, float s, int is_sink,
                                     float *alpha, float *p)
{
    *alpha = anc_attn_state_raise(st, s);
    *p = anc_attn_weight(s, st->m);
    anc_attn_state_add(st, *p, is_sink ? *p : 0.0f);
}

/* Merge partial states a and b (disjoint entry sets). The merged
 * accumulator is acc_a * *fa + acc_b * *fb. */
ANC_HD_ATTN struct anc_attn_state anc_attn_merge(struct anc_attn_state a, struct anc_attn_state b,
                                                 float *fa, float *fb)
{
    struct anc_attn_state r;
    r.m = fmaxf(a.m, b.m);
    *fa = anc_attn_rescale(a.m, r.m);
    *fb = anc_attn_rescale(b.m, r.m);
    r.l = a.l * *fa + b.l * *fb;
    r.sink_l = a.sink_l * *fa + b.sink_l * *fb;
    return r;
}

/* Output element from its accumulator; a query that saw nothing gets 0. */
ANC_HD_ATTN float anc_attn_finish(float acc, struct anc_attn_state st)
{
    return st.l > 0.0f ? acc / st.l : 0.0f;
}

/* Share of the probability on the sinks (0 when nothing was seen). */
ANC_HD_ATTN float anc_attn_sink_share(struct anc_attn_state st)
{
    return st.l > 0.0f ? st.sink_l / st.l : 0.0f;
}

/* ---- IEEE half <-> float ------------------------------------------------
 * Exact for every half; float -> half rounds to nearest even, overflows to
 * infinity, and maps every NaN to a quiet NaN of the same sign with no
 * payload: bit-identical to anc_f16_to_f32 / anc_f32_to_f16 (dtype.h). */
ANC_HD_ATTN uint32_t anc_dev_float_bits(float f)
{
#ifdef __CUDA_ARCH__
    return __float_as_uint(f);
#else
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
#endif
}

ANC_HD_ATTN float anc_dev_bits_float(uint32_t u)
{
#ifdef __CUDA_ARCH__
    return __uint_as_float(u);
#else
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
#endif
}

ANC_HD_ATTN float anc_dev_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t ex = ((uint32_t)h >> 10) & 0x1fu;
    uint32_t man = (uint32_t)h & 0x3ffu;
    if (ex == 0) { /* zero or subnormal: man x 2^-24, exact in float */
        float f = (float)man * 0x1p-24f;
        return sign ? -f : f;
    }
    if (ex == 0x1fu) return anc_dev_bits_float(sign | 0x7f800000u | (man << 13)); /* inf, nan */
    return anc_dev_bits_float(sign | ((ex + (127u - 15u)) << 23) | (man << 13));
}

ANC_HD_ATTN uint16_t anc_dev_f32_to_f16(float f)
{
    uint32_t x = anc_dev_float_bits(f);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t mag = x & 0x7fffffffu;
    if (mag > 0x7f800000u) return (uint16_t)(sign | 0x7e00u);  /* nan */
    if (mag >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* >= 65520 (or inf): inf */
    if (mag >= 0x38800000u) {                                  /* >= 2^-14: a normal half */
        uint32_t r = mag - ((127u - 15u) << 23);               /* re-bias the exponent */
        r += 0xfffu + ((r >> 13) & 1u);                        /* round the 13 dropped bits */
        return (uint16_t)(sign | (r >> 13));
    }
    /* A subnormal half (or zero): the value in units of 2^-24 is
     * m x 2^-shift with m the 24-bit significand, rounded to nearest even. */
    uint32_t e = mag >> 23;
    if (e < 102u) return (uint16_t)sign; /* < 2^-25: rounds to zero */
    uint32_t m = (mag & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126u - e; /* 14..24 */
    uint32_t q = m >> shift, rem = m & ((1u << shift) - 1u), halfway = 1u << (shift - 1u);
    if (rem > halfway || (rem == halfway && (q & 1u))) q++;
    return (uint16_t)(sign | q);
}

#endif
