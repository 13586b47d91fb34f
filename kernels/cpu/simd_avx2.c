/* simd_avx2.c — AVX2/FMA/F16C (and AVX512-VNNI) CPU kernels: row dot
 * products for decode, multi-token matrix kernels for prefill, activation
 * quantisers. Depends on kernels/ headers only; no threads, no model facts.
 *
 * Each kernel is tested against the portable reference in quant.c by
 * tests/test_simd.c. Functions carry target attributes, so the file builds
 * without -mavx2 and the binary still runs on any x86-64; cpu_ops.c installs
 * these kernels only when cpuid reports the features. docs/performance.md
 * explains the designs and what each one bought.
 *
 * Integer dot products: weights and activations meet as bytes in
 * _mm256_maddubs_epi16 (unsigned × signed, pairs summed to int16), widened
 * with _mm256_madd_epi16; every block's integer sum is exact and equals
 * the reference's, only the float scaling and summation order may differ.
 * Activation quants are in [-127, 127] (quant_quantize_row's range), which
 * the int16 bounds below rely on. */
#include "cpu_ops.h"
#include "quant.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma,f16c")))
#define AVX2_INLINE __attribute__((target("avx2,fma,f16c"), always_inline)) static inline
#define VNNI __attribute__((target("avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni")))

static inline uint32_t ld32(const void *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

AVX2_INLINE float f16s(uint16_t h) { return _cvtsh_ss(h); }

AVX2_INLINE float hsum256(__m256 v)
{
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}

/* v, as an opaque value: stops GCC from reassociating a chain of integer
 * adds into a tree (which keeps many products alive and spills them). */
AVX2_INLINE __m256i chain(__m256i v)
{
    __asm__("" : "+x"(v));
    return v;
}

/* acc + Σ of four u8·s8 products per 32-bit lane: AVX512-VNNI vpdpbusd on
 * 256-bit vectors (EVEX). Written as asm so the micro-kernels can take a
 * compile-time `vnni` flag: the instruction appears only in the copies
 * inlined into the *_vnni entry points, which cpu_ops.c installs only where
 * cpuid reports AVX512-VNNI and AVX512-VL. */
AVX2_INLINE __m256i dpbusd(__m256i acc, __m256i u8, __m256i s8)
{
    __asm__("%{evex%} vpdpbusd %2, %1, %0" : "+x"(acc) : "x"(u8), "x"(s8));
    return acc;
}

/* Four bytes at p in every 32-bit lane. */
AVX2_INLINE __m256i bcast32(const void *p) { return _mm256_set1_epi32((int)ld32(p)); }

/* 16 bytes of packed nibbles -> 32 bytes in element order: element i is the
 * low nibble of qs[i], element i + 16 its high nibble (Q4_0/Q4_1/Q5_x). */
AVX2_INLINE __m256i nib32(const uint8_t *qs)
{
    __m128i raw = _mm_loadu_si128((const __m128i *)qs);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), _mm256_set1_epi8(15));
}

/* Byte i = 0x10 where bit i of the little-endian 32-bit word at qh is set
 * (the fifth bit of Q5_0/Q5_1 element i), else 0. */
AVX2_INLINE __m256i bit4_32(const uint8_t *qh)
{
    const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                            2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i sel = _mm256_set1_epi64x(0x8040201008040201ll);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)ld32(qh)), spread);
    v = _mm256_cmpeq_epi8(_mm256_and_si256(v, sel), sel);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x10));
}

/* Q4_K/Q5_K scales: the eight 6-bit scales in bytes 0..7 and the eight
 * mins in bytes 8..15 (quant_k_scale_min, four at a time). */
static inline __m128i k_scales(const uint8_t s[12])
{
    uint32_t u0 = ld32(s), u1 = ld32(s + 4), u2 = ld32(s + 8);
    uint32_t sc_lo = u0 & 0x3f3f3f3fu, m_lo = u1 & 0x3f3f3f3fu;
    uint32_t sc_hi = (u2 & 0x0f0f0f0fu) | ((u0 >> 6) & 0x03030303u) << 4;
    uint32_t m_hi = ((u2 >> 4) & 0x0f0f0f0fu) | ((u1 >> 6) & 0x03030303u) << 4;
    return _mm_set_epi32((int)m_hi, (int)m_lo, (int)sc_hi, (int)sc_lo);
}

/* Same, as plain bytes sc[8], m[8] (for packing). */
static inline void k_scales_bytes(const uint8_t s[12], uint8_t sc[8], uint8_t m[8])
{
    uint32_t u0 = ld32(s), u1 = ld32(s + 4), u2 = ld32(s + 8);
    uint32_t v[4] = {u0 & 0x3f3f3f3fu, (u2 & 0x0f0f0f0fu) | ((u0 >> 6) & 0x03030303u) << 4,
                     u1 & 0x3f3f3f3fu, ((u2 >> 4) & 0x0f0f0f0fu) | ((u1 >> 6) & 0x03030303u) << 4};
    memcpy(sc, v, 8);
    memcpy(m, v + 2, 8);
}

/* pshufb controls: KBC[j] puts int16 element j of each 128-bit lane in all
 * eight int16 slots of that lane; K6C[k] puts element 2k in the low lane and
 * element 2k + 1 in the high lane. */
#define B2(a) (a), (a) + 1
#define B16(a) B2(a), B2(a), B2(a), B2(a), B2(a), B2(a), B2(a), B2(a)
static const uint8_t KBC[8][32] __attribute__((aligned(32))) = {
    {B16(0), B16(0)},   {B16(2), B16(2)},   {B16(4), B16(4)},   {B16(6), B16(6)},
    {B16(8), B16(8)},   {B16(10), B16(10)}, {B16(12), B16(12)}, {B16(14), B16(14)},
};
static const uint8_t K6C[4][32] __attribute__((aligned(32))) = {
    {B16(0), B16(2)}, {B16(4), B16(6)}, {B16(8), B16(10)}, {B16(12), B16(14)},
};
#undef B16
#undef B2

/* ======================================================================
 * Float dot products
 * ====================================================================== */

AVX2 static float dot_f_f32(const void *wrow, const float *x, int64_t n)
{
    const float *w = wrow;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
    }
    float s = hsum256(_mm256_add_ps(a0, a1));
    for (; i < n; i++) s += w[i] * x[i];
    return s;
}

AVX2_INLINE __m256 ld_f16x8(const uint16_t *p)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

AVX2_INLINE __m256 ld_bf16x8(const uint16_t *p)
{
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

AVX2 static float dot_f_f16(const void *wrow, const float *x, int64_t n)
{
    const uint16_t *w = wrow;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_fmadd_ps(ld_f16x8(w + i), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(ld_f16x8(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
    }
    float s = hsum256(_mm256_add_ps(a0, a1));
    for (; i < n; i++) s += anc_f16_to_f32(w[i]) * x[i];
    return s;
}

AVX2 static float dot_f_bf16(const void *wrow, const float *x, int64_t n)
{
    const uint16_t *w = wrow;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_fmadd_ps(ld_bf16x8(w + i), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(ld_bf16x8(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
    }
    float s = hsum256(_mm256_add_ps(a0, a1));
    for (; i < n; i++) s += anc_bf16_to_f32(w[i]) * x[i];
    return s;
}

/* ======================================================================
 * Integer dot products of one weight row with one quantised token (decode)
 * Each block's integer sum stays in eight int32 lanes, is converted to
 * float and scaled by d_w·d_x into eight float accumulators (two, so that
 * consecutive blocks do not wait on each other's FMA).
 * ====================================================================== */

/* int32 lanes whose sum is Σ (q − off)·x over one 32-element block:
 * q unsigned (0..31), x signed; |pairs| <= 31·127·2 fits int16. */
AVX2_INLINE __m256i isum_off(__m256i q, __m256i x, __m256i off)
{
    __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(q, x), _mm256_maddubs_epi16(off, x));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

AVX2_INLINE __m256i isum_u(__m256i q, __m256i x)
{
    return _mm256_madd_epi16(_mm256_maddubs_epi16(q, x), _mm256_set1_epi16(1));
}

AVX2_INLINE __m256 scale_acc(__m256i isum, float d, __m256 acc)
{
    return _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(isum), acc);
}

#define XQS(xb) _mm256_loadu_si256((const __m256i *)(xb).qs)

AVX2 static float dot_q8_q4_0(const void *wrow, const void *xq, int64_t n)
{
    const struct block_q4_0 *w = wrow;
    const struct block_q8_0 *x = xq;
    const int64_t nb = n / QUANT_QK;
    const __m256i off = _mm256_set1_epi8(8);
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
        a0 = scale_acc(isum_off(nib32(w[b].qs), XQS(x[b]), off), f16s(w[b].d) * f16s(x[b].d), a0);
        a1 = scale_acc(isum_off(nib32(w[b + 1].qs), XQS(x[b + 1]), off),
                       f16s(w[b + 1].d) * f16s(x[b + 1].d), a1);
    }
    for (; b < nb; b++)
        a0 = scale_acc(isum_off(nib32(w[b].qs), XQS(x[b]), off), f16s(w[b].d) * f16s(x[b].d), a0);
    return hsum256(_mm256_add_ps(a0, a1));
}

AVX2 static float dot_q8_q5_0(const void *wrow, const void *xq, int64_t n)
{
    const struct block_q5_0 *w = wrow;
    const struct block_q8_0 *x = xq;
    const int64_t nb = n / QUANT_QK;
    const __m256i off = _mm256_set1_epi8(16);
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
        __m256i q0 = _mm256_or_si256(nib32(w[b].qs), bit4_32(w[b].qh));
        __m256i q1 = _mm256_or_si256(nib32(w[b + 1].qs), bit4_32(w[b + 1].qh));
        a0 = scale_acc(isum_off(q0, XQS(x[b]), off), f16s(w[b].d) * f16s(x[b].d), a0);
        a1 = scale_acc(isum_off(q1, XQS(x[b + 1]), off), f16s(w[b + 1].d) * f16s(x[b + 1].d), a1);
    }
    for (; b < nb; b++) {
        __m256i q0 = _mm256_or_si256(nib32(w[b].qs), bit4_32(w[b].qh));
        a0 = scale_acc(isum_off(q0, XQS(x[b]), off), f16s(w[b].d) * f16s(x[b].d), a0);
    }
    return hsum256(_mm256_add_ps(a0, a1));
}

/* Q4_1/Q5_1 with Q8_1: Σ (d·q + m)·x = d·d_x·Σ q·q_x + m·s_x. The m·s_x
 * terms go to scalar accumulators. */
AVX2 static float dot_q8_q4_1(const void *wrow, const void *xq, int64_t n)
{
    const struct block_q4_1 *w = wrow;
    const struct block_q8_1 *x = xq;
    const int64_t nb = n / QUANT_QK;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    float m0 = 0.0f, m1 = 0.0f;
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
        a0 = scale_acc(isum_u(nib32(w[b].qs), XQS(x[b])), f16s(w[b].d) * f16s(x[b].d), a0);
        a1 = scale_acc(isum_u(nib32(w[b + 1].qs), XQS(x[b + 1])), f16s(w[b + 1].d) * f16s(x[b + 1].d), a1);
        m0 += f16s(w[b].m) * f16s(x[b].s);
        m1 += f16s(w[b + 1].m) * f16s(x[b + 1].s);
    }
    for (; b < nb; b++) {
        a0 = scale_acc(isum_u(nib32(w[b].qs), XQS(x[b])), f16s(w[b].d) * f16s(x[b].d), a0);
        m0 += f16s(w[b].m) * f16s(x[b].s);
    }
    return hsum256(_mm256_add_ps(a0, a1)) + (m0 + m1);
}

AVX2 static float dot_q8_q5_1(const void *wrow, const void *xq, int64_t n)
{
    const struct block_q5_1 *w = wrow;
    const struct block_q8_1 *x = xq;
    const int64_t nb = n / QUANT_QK;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    float m0 = 0.0f, m1 = 0.0f;
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
        __m256i q0 = _mm256_or_si256(nib32(w[b].qs), bit4_32(w[b].qh));
        __m256i q1 = _mm256_or_si256(nib32(w[b + 1].qs), bit4_32(w[b + 1].qh));
        a0 = scale_acc(isum_u(q0, XQS(x[b])), f16s(w[b].d) * f16s(x[b].d), a0);
        a1 = scale_acc(isum_u(q1, XQS(x[b + 1])), f16s(w[b + 1].d) * f16s(x[b + 1].d), a1);
        m0 += f16s(w[b].m) * f16s(x[b].s);
        m1 += f16s(w[b + 1].m) * f16s(x[b + 1].s);
    }
    for (; b < nb; b++) {
        __m256i q0 = _mm256_or_si256(nib32(w[b].qs), bit4_32(w[b].qh));
        a0 = scale_acc(isum_u(q0, XQS(x[b])), f16s(w[b].d) * f16s(x[b].d), a0);
        m0 += f16s(w[b].m) * f16s(x[b].s);
    }
    return hsum256(_mm256_add_ps(a0, a1)) + (m0 + m1);
}

/* Q8_0 × Q8_0: both signed, so |w| meets x with w's sign moved onto it;
 * |w| <= 128, |x| <= 127: pairs <= 32512 fit int16. */
AVX2_INLINE __m256i isum_s8(__m256i w, __m256i x)
{
    __m256i p = _mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(x, w));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

AVX2 static float dot_q8_q8_0(const void *wrow, const void *xq, int64_t n)
{
    const struct block_q8_0 *w = wrow;
    const struct block_q8_0 *x = xq;
    const int64_t nb = n / QUANT_QK;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
        a0 = scale_acc(isum_s8(XQS(w[b]), XQS(x[b])), f16s(w[b].d) * f16s(x[b].d), a0);
        a1 = scale_acc(isum_s8(XQS(w[b + 1]), XQS(x[b + 1])), f16s(w[b + 1].d) * f16s(x[b + 1].d), a1);
    }
    for (; b < nb; b++)
        a0 = scale_acc(isum_s8(XQS(w[b]), XQS(x[b])), f16s(w[b].d) * f16s(x[b].d), a0);
    return hsum256(_mm256_add_ps(a0, a1));
}

/* Q4_K/Q5_K: per super-block, sumi = Σ_j sc_j·Σ q·x (the scale enters as
 * the int16 multiplier of madd) and the mins Σ_j m_j·(bsum_2j + bsum_2j+1)
 * (one madd of the bsums with each min repeated twice); they go to two
 * float accumulators scaled by d·d_x and dmin·d_x. q <= 31, x <= 127:
 * int16 pairs <= 7874; Σ over a super-block < 2^31. */
AVX2_INLINE __m256i k_mins(__m128i scm, const int16_t *bsums)
{
    __m256i mdup = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(scm, scm)); /* m0,m0,m1,m1.. */
    return _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)bsums), mdup);
}

AVX2_INLINE __m256i ksc(__m256i sc16, int j)
{
    return _mm256_shuffle_epi8(sc16, _mm256_load_si256((const __m256i *)KBC[j]));
}

AVX2 static float dot_q8_q4_k(const void *wrow, const void *xq, int64_t n)
{
    const struct block_q4_k *w = wrow;
    const struct block_q8_k *x = xq;
    const int64_t nb = n / QUANT_QK_K;
    const __m256i m4 = _mm256_set1_epi8(15);
    __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m128i scm = k_scales(w[b].scales);
        __m256i sc16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(scm));
        __m256i sumi = _mm256_setzero_si256();
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) {
            __m256i qv = _mm256_loadu_si256((const __m256i *)(w[b].qs + 32 * c));
            __m256i lo = _mm256_and_si256(qv, m4), hi = _mm256_and_si256(_mm256_srli_epi16(qv, 4), m4);
            __m256i x0 = _mm256_loadu_si256((const __m256i *)(x[b].qs + 64 * c));
            __m256i x1 = _mm256_loadu_si256((const __m256i *)(x[b].qs + 64 * c + 32));
            __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, x0), ksc(sc16, 2 * c));
            __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, x1), ksc(sc16, 2 * c + 1));
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p0, p1));
        }
        acc = scale_acc(sumi, x[b].d * f16s(w[b].d), acc);
        accm = scale_acc(k_mins(scm, x[b].bsums), x[b].d * f16s(w[b].dmin), accm);
    }
    return hsum256(acc) - hsum256(accm);
}

/* Fifth bit of Q5_K sub-block j (bit j of qh[i]) moved to bit 4. */
AVX2_INLINE __m256i k5_bit(__m256i qh, int j)
{
    __m256i v = j <= 4 ? _mm256_slli_epi16(qh, 4 - j) : _mm256_srli_epi16(qh, j - 4);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x10));
}

AVX2 static float dot_q8_q5_k(const void *wrow, const void *xq, int64_t n)
{
    const struct block_q5_k *w = wrow;
    const struct block_q8_k *x = xq;
    const int64_t nb = n / QUANT_QK_K;
    const __m256i m4 = _mm256_set1_epi8(15);
    __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m128i scm = k_scales(w[b].scales);
        __m256i sc16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(scm));
        __m256i qh = _mm256_loadu_si256((const __m256i *)w[b].qh);
        __m256i sumi = _mm256_setzero_si256();
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) {
            __m256i qv = _mm256_loadu_si256((const __m256i *)(w[b].qs + 32 * c));
            __m256i lo = _mm256_or_si256(_mm256_and_si256(qv, m4), k5_bit(qh, 2 * c));
            __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qv, 4), m4),
                                         k5_bit(qh, 2 * c + 1));
            __m256i x0 = _mm256_loadu_si256((const __m256i *)(x[b].qs + 64 * c));
            __m256i x1 = _mm256_loadu_si256((const __m256i *)(x[b].qs + 64 * c + 32));
            __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, x0), ksc(sc16, 2 * c));
            __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, x1), ksc(sc16, 2 * c + 1));
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p0, p1));
        }
        acc = scale_acc(sumi, x[b].d * f16s(w[b].d), acc);
        accm = scale_acc(k_mins(scm, x[b].bsums), x[b].d * f16s(w[b].dmin), accm);
    }
    return hsum256(acc) - hsum256(accm);
}

/* Q6_K element chunk k (k = 0..3) of half h: 32 quants 0..63 (see quant.h:
 * low nibble from ql, two high bits from qh). */
AVX2_INLINE __m256i k6_chunk(__m256i a, __m256i b, __m256i h, int k)
{
    const __m256i m4 = _mm256_set1_epi8(15), m30 = _mm256_set1_epi8(0x30);
    __m256i lo = k == 0 ? a : k == 1 ? b : k == 2 ? _mm256_srli_epi16(a, 4) : _mm256_srli_epi16(b, 4);
    __m256i hi = k == 0 ? _mm256_slli_epi16(h, 4) : k == 1 ? _mm256_slli_epi16(h, 2)
               : k == 2 ? h : _mm256_srli_epi16(h, 2);
    return _mm256_or_si256(_mm256_and_si256(lo, m4), _mm256_and_si256(hi, m30));
}

/* Q6_K: sumi = Σ_j sc_j·Σ q·x − 32·Σ_j sc_j·bsum_j, which is the
 * reference's Σ_j sc_j·Σ (q − 32)·x. q <= 63: int16 pairs <= 16002. */
AVX2 static float dot_q8_q6_k(const void *wrow, const void *xq, int64_t n)
{
    const struct block_q6_k *w = wrow;
    const struct block_q8_k *x = xq;
    const int64_t nb = n / QUANT_QK_K;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m128i sc8 = _mm_loadu_si128((const __m128i *)w[b].scales);
        __m256i corr = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)x[b].bsums),
                                         _mm256_cvtepi8_epi16(sc8));
        __m256i sumi = _mm256_setzero_si256();
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            __m256i scv = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(h ? _mm_srli_si128(sc8, 8) : sc8));
            __m256i qa = _mm256_loadu_si256((const __m256i *)(w[b].ql + 64 * h));
            __m256i qb = _mm256_loadu_si256((const __m256i *)(w[b].ql + 64 * h + 32));
            __m256i qh = _mm256_loadu_si256((const __m256i *)(w[b].qh + 32 * h));
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++) {
                __m256i q = k6_chunk(qa, qb, qh, k);
                __m256i xv = _mm256_loadu_si256((const __m256i *)(x[b].qs + 128 * h + 32 * k));
                __m256i sc = _mm256_shuffle_epi8(scv, _mm256_load_si256((const __m256i *)K6C[k]));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_maddubs_epi16(q, xv), sc));
            }
        }
        sumi = _mm256_sub_epi32(sumi, _mm256_slli_epi32(corr, 5));
        acc = scale_acc(sumi, f16s(w[b].d) * x[b].d, acc);
    }
    return hsum256(acc);
}

/* ======================================================================
 * Multi-token kernels (prefill)
 *
 * Quantised weights: a panel of 8 rows is unpacked once into "rows in
 * lanes" order — for every 4 consecutive elements, one 32-byte vector whose
 * 32-bit lane r holds those 4 quants of row r — together with the rows'
 * scales as float vectors. A token's 4 activation quants, broadcast to all
 * lanes, then meet 8 rows in one maddubs, and each lane accumulates its
 * own row: no horizontal sums, and the per-block scaling (a vector of 8
 * row scales times the token's scale) costs one multiply for 8 rows. Each
 * lane sums its blocks in block order with the reference's expression
 * (d_w·d_x)·isum, so the results match quant_dot_q8 bit for bit when the
 * compiler does not contract them (it doesn't under -std=c11).
 * Tokens go 4 at a time; the panel (<= 17 bytes per column) stays in L2.
 * ====================================================================== */

#define PR 8   /* rows per quantised panel */
#define PT 4   /* tokens per micro-tile */

AVX2_INLINE void tr8x8_ps(__m256 v[8])
{
    __m256 t0 = _mm256_unpacklo_ps(v[0], v[1]), t1 = _mm256_unpackhi_ps(v[0], v[1]);
    __m256 t2 = _mm256_unpacklo_ps(v[2], v[3]), t3 = _mm256_unpackhi_ps(v[2], v[3]);
    __m256 t4 = _mm256_unpacklo_ps(v[4], v[5]), t5 = _mm256_unpackhi_ps(v[4], v[5]);
    __m256 t6 = _mm256_unpacklo_ps(v[6], v[7]), t7 = _mm256_unpackhi_ps(v[6], v[7]);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xee);
    __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xee);
    __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xee);
    __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xee);
    v[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
    v[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    v[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
    v[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    v[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
    v[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    v[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
    v[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

/* v[r] = 32 quants of row r  ->  out[s] lane r = quants 4s..4s+3 of row r. */
AVX2_INLINE void tr_store(__m256i v[8], __m256i *out)
{
    __m256 f[8];
    for (int r = 0; r < 8; r++) f[r] = _mm256_castsi256_ps(v[r]);
    tr8x8_ps(f);
    for (int s = 0; s < 8; s++) _mm256_store_si256(out + s, _mm256_castps_si256(f[s]));
}

AVX2_INLINE void store_rows(float *y, __m256 v, int nrv)
{
    if (nrv >= 8) {
        _mm256_storeu_ps(y, v);
    } else {
        float tmp[8];
        _mm256_storeu_ps(tmp, v);
        for (int r = 0; r < nrv; r++) y[r] = tmp[r];
    }
}

/* Start of the per-token area of the scratch (after the weight panel). */
static inline void *tok_area(void *scratch, int64_t n)
{
    return (uint8_t *)scratch + ((17 * (size_t)n + 16384 + 256) & ~(size_t)63);
}

/* ---- legacy formats: Q4_0, Q4_1, Q5_0, Q5_1 ---------------------------- */

struct pk32 {               /* one 32-element block of 8 rows */
    __m256i q[8];           /* step s: lane r = quants 4s..4s+3 of row r (0..31) */
    __m256 d;               /* row scales */
    __m256 m;               /* row minimums (Q4_1, Q5_1) */
};

/* Pack rows [0, nrv) (nrv <= 8; the rest are zero) of nb blocks. */
AVX2_INLINE void pack_leg(uint32_t type, const uint8_t *w, size_t row_bytes, int nrv, int64_t nb,
                          struct pk32 *pk)
{
    for (int64_t b = 0; b < nb; b++) {
        __m256i v[8];
        float d[8], m[8];
        for (int r = 0; r < 8; r++) {
            v[r] = _mm256_setzero_si256();
            d[r] = m[r] = 0.0f;
            if (r >= nrv) continue;
            const uint8_t *row = w + (size_t)r * row_bytes;
            if (type == ANC_DT_Q4_0) {
                const struct block_q4_0 *bl = (const struct block_q4_0 *)row + b;
                v[r] = nib32(bl->qs);
                d[r] = f16s(bl->d);
            } else if (type == ANC_DT_Q4_1) {
                const struct block_q4_1 *bl = (const struct block_q4_1 *)row + b;
                v[r] = nib32(bl->qs);
                d[r] = f16s(bl->d);
                m[r] = f16s(bl->m);
            } else if (type == ANC_DT_Q5_0) {
                const struct block_q5_0 *bl = (const struct block_q5_0 *)row + b;
                v[r] = _mm256_or_si256(nib32(bl->qs), bit4_32(bl->qh));
                d[r] = f16s(bl->d);
            } else {
                const struct block_q5_1 *bl = (const struct block_q5_1 *)row + b;
                v[r] = _mm256_or_si256(nib32(bl->qs), bit4_32(bl->qh));
                d[r] = f16s(bl->d);
                m[r] = f16s(bl->m);
            }
        }
        tr_store(v, pk[b].q);
        pk[b].d = _mm256_loadu_ps(d);
        pk[b].m = _mm256_loadu_ps(m);
    }
}

/* Per token and block: d_x as float, and off·Σ q_x (Q8_0) or s_x (Q8_1). */
struct xinfo {
    float d;
    union { int32_t c; float s; } u;
};

AVX2_INLINE void prep_q8(const uint8_t *xq, size_t xq_bytes, int32_t n_tok, int64_t nb, bool q8_1,
                         int32_t off, struct xinfo *xi)
{
    const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
    for (int32_t t = 0; t < n_tok; t++) {
        const uint8_t *row = xq + (size_t)t * xq_bytes;
        for (int64_t b = 0; b < nb; b++) {
            struct xinfo *o = xi + (size_t)t * nb + b;
            if (q8_1) {
                const struct block_q8_1 *x = (const struct block_q8_1 *)row + b;
                o->d = f16s(x->d);
                o->u.s = f16s(x->s);
            } else {
                const struct block_q8_0 *x = (const struct block_q8_0 *)row + b;
                __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, XQS(*x)), ones16);
                __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
                s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
                s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
                o->d = f16s(x->d);
                o->u.c = off * _mm_cvtsi128_si32(s4);
            }
        }
    }
}

/* T tokens × 8 rows over nb blocks. `steps16`: 4-element steps summed in
 * int16 before widening (8 for 4-bit quants: 8·15·127·2 < 2^15; 4 for
 * 5-bit ones). `with_min`: Q4_1/Q5_1 (Q8_1 activations, + m·s_x), else
 * Q4_0/Q5_0 (isum − off·Σ q_x). */
AVX2_INLINE void mk_leg(const int T, const bool vnni, const bool with_min, const int steps16, float *y,
                        int64_t ldy,
                        int nrv, const struct pk32 *pk, int64_t nb, const uint8_t *xq,
                        size_t xq_bytes, const struct xinfo *xi)
{
    const size_t xblk = with_min ? sizeof(struct block_q8_1) : sizeof(struct block_q8_0);
    const size_t xoff = with_min ? offsetof(struct block_q8_1, qs) : offsetof(struct block_q8_0, qs);
    const __m256i ones = _mm256_set1_epi16(1);
    const uint8_t *xr[PT];
    const struct xinfo *xt[PT];
    __m256 acc[PT];
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) {
        xr[t] = xq + (size_t)t * xq_bytes + xoff;
        xt[t] = xi + (size_t)t * nb;
        acc[t] = _mm256_setzero_ps();
    }
    for (int64_t b = 0; b < nb; b++) {
        const struct pk32 *p = pk + b;
        __m256i i32[PT];
        if (vnni) {
#pragma GCC unroll 8
            for (int t = 0; t < T; t++) i32[t] = _mm256_setzero_si256();
#pragma GCC unroll 8
            for (int s = 0; s < 8; s++) {
                __m256i wv = _mm256_load_si256(p->q + s);
#pragma GCC unroll 8
                for (int t = 0; t < T; t++) i32[t] = dpbusd(i32[t], wv, bcast32(xr[t] + b * xblk + 4 * s));
            }
        }
#pragma GCC unroll 2
        for (int h = 0; h < 8 && !vnni; h += steps16) {
            __m256i i16[PT];
#pragma GCC unroll 8
            for (int s = h; s < h + steps16; s++) {
                __m256i wv = _mm256_load_si256(p->q + s);
#pragma GCC unroll 4
                for (int t = 0; t < T; t++) {
                    __m256i m = _mm256_maddubs_epi16(wv, bcast32(xr[t] + b * xblk + 4 * s));
                    i16[t] = s == h ? m : chain(_mm256_add_epi16(i16[t], m));
                }
            }
#pragma GCC unroll 4
            for (int t = 0; t < T; t++) {
                __m256i w32 = _mm256_madd_epi16(i16[t], ones);
                i32[t] = h == 0 ? w32 : _mm256_add_epi32(i32[t], w32);
            }
        }
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            const struct xinfo *o = xt[t] + b;
            __m256 dd = _mm256_mul_ps(p->d, _mm256_set1_ps(o->d));
            __m256 term;
            if (with_min) {
                term = _mm256_add_ps(_mm256_mul_ps(dd, _mm256_cvtepi32_ps(i32[t])),
                                     _mm256_mul_ps(p->m, _mm256_set1_ps(o->u.s)));
            } else {
                __m256i isum = _mm256_sub_epi32(i32[t], _mm256_set1_epi32(o->u.c));
                term = _mm256_mul_ps(dd, _mm256_cvtepi32_ps(isum));
            }
            acc[t] = _mm256_add_ps(acc[t], term);
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) store_rows(y + t * ldy, acc[t], nrv);
}

/* ---- Q8_0 weights ------------------------------------------------------ */
/* Signed × signed: the weights are widened to int16 in the panel and meet
 * int16 activation pairs in madd directly (per 2 elements one multiply
 * instead of sign + maddubs + madd per 4). */

struct pk8 {
    __m256i w[16];  /* step s: lane r = (w_2s, w_2s+1) of row r as int16 */
    __m256 d;
};

AVX2_INLINE void pack_q8_0(const uint8_t *w, size_t row_bytes, int nrv, int64_t nb, struct pk8 *pk)
{
    for (int64_t b = 0; b < nb; b++) {
        __m256i lo[8], hi[8];
        float d[8];
        for (int r = 0; r < 8; r++) {
            lo[r] = hi[r] = _mm256_setzero_si256();
            d[r] = 0.0f;
            if (r < nrv) {
                const struct block_q8_0 *bl = (const struct block_q8_0 *)(w + (size_t)r * row_bytes) + b;
                lo[r] = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)bl->qs));
                hi[r] = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(bl->qs + 16)));
                d[r] = f16s(bl->d);
            }
        }
        tr_store(lo, pk[b].w);
        tr_store(hi, pk[b].w + 8);
        pk[b].d = _mm256_loadu_ps(d);
    }
}

/* Per token: the quants widened to int16 (n per token), then d_x per block. */
AVX2_INLINE void prep_q8_0_i16(const uint8_t *xq, size_t xq_bytes, int32_t n_tok, int64_t nb, int16_t *xw,
                               float *xd)
{
    for (int32_t t = 0; t < n_tok; t++) {
        const struct block_q8_0 *x = (const struct block_q8_0 *)(xq + (size_t)t * xq_bytes);
        for (int64_t b = 0; b < nb; b++) {
            int16_t *o = xw + ((size_t)t * nb + b) * QUANT_QK;
            _mm256_storeu_si256((__m256i *)o, _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x[b].qs)));
            _mm256_storeu_si256((__m256i *)(o + 16),
                                _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(x[b].qs + 16))));
            xd[(size_t)t * nb + b] = f16s(x[b].d);
        }
    }
}

AVX2_INLINE void mk_q8_0(const int T, float *y, int64_t ldy, int nrv, const struct pk8 *pk, int64_t nb,
                         const int16_t *xw, const float *xd)
{
    __m256 acc[PT];
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const struct pk8 *p = pk + b;
        __m256i i32[PT];
#pragma GCC unroll 16
        for (int s = 0; s < 16; s++) {
            __m256i wv = _mm256_load_si256(p->w + s);
#pragma GCC unroll 8
            for (int t = 0; t < T; t++) {
                __m256i m = _mm256_madd_epi16(wv, bcast32(xw + ((size_t)t * nb + b) * QUANT_QK + 2 * s));
                i32[t] = s == 0 ? m : chain(_mm256_add_epi32(i32[t], m));
            }
        }
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            __m256 dd = _mm256_mul_ps(p->d, _mm256_set1_ps(xd[(size_t)t * nb + b]));
            acc[t] = _mm256_add_ps(acc[t], _mm256_mul_ps(dd, _mm256_cvtepi32_ps(i32[t])));
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) store_rows(y + t * ldy, acc[t], nrv);
}

/* With VNNI: the activations + 128 as unsigned bytes meet the signed
 * weights in vpdpbusd; Σ (x + 128)·w − 128·Σ w, the second term per row
 * and block from the panel. */
struct pk8v {
    __m256i q[8];   /* step s: lane r = w_4s..w_4s+3 of row r (int8) */
    __m256i corr;   /* 128·Σ w per row */
    __m256 d;
};

AVX2_INLINE int32_t hsum_epi32(__m256i s)
{
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
    return _mm_cvtsi128_si32(s4);
}

AVX2_INLINE void pack_q8_0v(const uint8_t *w, size_t row_bytes, int nrv, int64_t nb, struct pk8v *pk)
{
    const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
    for (int64_t b = 0; b < nb; b++) {
        __m256i v[8];
        int32_t corr[8];
        float d[8];
        for (int r = 0; r < 8; r++) {
            v[r] = _mm256_setzero_si256();
            d[r] = 0.0f;
            corr[r] = 0;
            if (r < nrv) {
                const struct block_q8_0 *bl = (const struct block_q8_0 *)(w + (size_t)r * row_bytes) + b;
                v[r] = XQS(*bl);
                d[r] = f16s(bl->d);
                /* Σ w via |w|·sign: maddubs(1, w) sums signed pairs */
                corr[r] = 128 * hsum_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(ones8, v[r]), ones16));
            }
        }
        tr_store(v, pk[b].q);
        pk[b].corr = _mm256_loadu_si256((const __m256i *)corr);
        pk[b].d = _mm256_loadu_ps(d);
    }
}

/* Per token: the quants + 128 as unsigned bytes (n), then d_x per block. */
AVX2_INLINE void prep_q8_0u(const uint8_t *xq, size_t xq_bytes, int32_t n_tok, int64_t nb, uint8_t *xu,
                            float *xd)
{
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    for (int32_t t = 0; t < n_tok; t++) {
        const struct block_q8_0 *x = (const struct block_q8_0 *)(xq + (size_t)t * xq_bytes);
        for (int64_t b = 0; b < nb; b++) {
            _mm256_storeu_si256((__m256i *)(xu + ((size_t)t * nb + b) * QUANT_QK), _mm256_xor_si256(XQS(x[b]), flip));
            xd[(size_t)t * nb + b] = f16s(x[b].d);
        }
    }
}

AVX2_INLINE void mk_q8_0v(const int T, float *y, int64_t ldy, int nrv, const struct pk8v *pk, int64_t nb,
                          const uint8_t *xu, const float *xd)
{
    __m256 acc[PT];
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const struct pk8v *p = pk + b;
        __m256i i32[PT];
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) i32[t] = _mm256_sub_epi32(_mm256_setzero_si256(), p->corr);
#pragma GCC unroll 8
        for (int s = 0; s < 8; s++) {
            __m256i wv = _mm256_load_si256(p->q + s);
#pragma GCC unroll 8
            for (int t = 0; t < T; t++)
                i32[t] = dpbusd(i32[t], bcast32(xu + ((size_t)t * nb + b) * QUANT_QK + 4 * s), wv);
        }
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            __m256 dd = _mm256_mul_ps(p->d, _mm256_set1_ps(xd[(size_t)t * nb + b]));
            acc[t] = _mm256_add_ps(acc[t], _mm256_mul_ps(dd, _mm256_cvtepi32_ps(i32[t])));
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) store_rows(y + t * ldy, acc[t], nrv);
}

/* ---- Q4_K / Q5_K -------------------------------------------------------- */

struct pkk {
    __m256i q[8][8];        /* [sub-block j][step]: rows in lanes, quants 0..31 */
    uint32_t sc[8][8];      /* [j][row]: (sc, sc) as two int16 (madd multiplier) */
    int32_t sc32[8][8];     /* [j][row]: sc (VNNI: mullo multiplier) */
    uint32_t mp[4][8];      /* [k][row]: (m_2k, m_2k+1) as two int16 */
    float d[8], dmin[8];
} __attribute__((aligned(32)));

AVX2_INLINE void pack_k45(bool five, const uint8_t *w, size_t row_bytes, int nrv, int64_t nsb,
                          struct pkk *pk)
{
    const __m256i m4 = _mm256_set1_epi8(15);
    for (int64_t b = 0; b < nsb; b++) {
        struct pkk *p = pk + b;
        const uint8_t *qs[8], *qh[8];
        for (int r = 0; r < 8; r++) {
            qs[r] = qh[r] = NULL;
            uint8_t sc[8] = {0}, m[8] = {0};
            p->d[r] = p->dmin[r] = 0.0f;
            if (r < nrv) {
                const uint8_t *row = w + (size_t)r * row_bytes;
                const uint8_t *scales;
                uint16_t d, dmin;
                if (five) {
                    const struct block_q5_k *bl = (const struct block_q5_k *)row + b;
                    qs[r] = bl->qs, qh[r] = bl->qh, scales = bl->scales, d = bl->d, dmin = bl->dmin;
                } else {
                    const struct block_q4_k *bl = (const struct block_q4_k *)row + b;
                    qs[r] = bl->qs, scales = bl->scales, d = bl->d, dmin = bl->dmin;
                }
                k_scales_bytes(scales, sc, m);
                p->d[r] = f16s(d);
                p->dmin[r] = f16s(dmin);
            }
            for (int j = 0; j < 8; j++) {
                p->sc[j][r] = sc[j] * 0x10001u;
                p->sc32[j][r] = sc[j];
            }
            for (int k = 0; k < 4; k++) p->mp[k][r] = m[2 * k] | (uint32_t)m[2 * k + 1] << 16;
        }
        for (int j = 0; j < 8; j++) {
            __m256i v[8];
            for (int r = 0; r < 8; r++) {
                if (!qs[r]) {
                    v[r] = _mm256_setzero_si256();
                    continue;
                }
                __m256i qv = _mm256_loadu_si256((const __m256i *)(qs[r] + 32 * (j / 2)));
                v[r] = _mm256_and_si256(j & 1 ? _mm256_srli_epi16(qv, 4) : qv, m4);
                if (five) {
                    __m256i h = _mm256_loadu_si256((const __m256i *)qh[r]);
                    __m256i bit = _mm256_and_si256(_mm256_srl_epi16(h, _mm_cvtsi32_si128(j)),
                                                   _mm256_set1_epi8(1));
                    v[r] = _mm256_or_si256(v[r], _mm256_slli_epi16(bit, 4));
                }
            }
            tr_store(v, p->q[j]);
        }
    }
}

/* Per token and super-block: the pair sums P_j = bsum_2j + bsum_2j+1 as
 * int16 (|P| <= 32·127). */
AVX2_INLINE void prep_k45(const uint8_t *xq, size_t xq_bytes, int32_t n_tok, int64_t nsb, int16_t *P)
{
    for (int32_t t = 0; t < n_tok; t++) {
        const struct block_q8_k *x = (const struct block_q8_k *)(xq + (size_t)t * xq_bytes);
        for (int64_t b = 0; b < nsb; b++) {
            __m256i s = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)x[b].bsums),
                                          _mm256_set1_epi16(1));
            __m128i p = _mm_packs_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
            _mm_storeu_si128((__m128i *)(P + ((size_t)t * nsb + b) * 8), p);
        }
    }
}

/* steps16 = 8 for Q4_K (8·15·127·2 < 2^15), 4 for Q5_K. */
AVX2_INLINE void mk_k45(const int T, const bool vnni, const int steps16, float *y, int64_t ldy, int nrv,
                        const struct pkk *pk, int64_t nsb, const uint8_t *xq, size_t xq_bytes,
                        const int16_t *P)
{
    const struct block_q8_k *xr[PT];
    const int16_t *pt[PT];
    __m256 acc[PT];
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) {
        xr[t] = (const struct block_q8_k *)(xq + (size_t)t * xq_bytes);
        pt[t] = P + (size_t)t * nsb * 8;
        acc[t] = _mm256_setzero_ps();
    }
    for (int64_t b = 0; b < nsb; b++) {
        const struct pkk *p = pk + b;
        __m256i sumi[PT];
        for (int j = 0; j < 8; j++) {
            if (vnni) { /* int32 sums per sub-block, times sc */
                __m256i sj[PT], sc32 = _mm256_load_si256((const __m256i *)p->sc32[j]);
#pragma GCC unroll 8
                for (int t = 0; t < T; t++) sj[t] = _mm256_setzero_si256();
#pragma GCC unroll 8
                for (int s = 0; s < 8; s++) {
                    __m256i wv = _mm256_load_si256(&p->q[j][s]);
#pragma GCC unroll 8
                    for (int t = 0; t < T; t++) sj[t] = dpbusd(sj[t], wv, bcast32(xr[t][b].qs + 32 * j + 4 * s));
                }
#pragma GCC unroll 8
                for (int t = 0; t < T; t++) {
                    __m256i w32 = _mm256_mullo_epi32(sj[t], sc32);
                    sumi[t] = j == 0 ? w32 : _mm256_add_epi32(sumi[t], w32);
                }
                continue;
            }
            __m256i sc = _mm256_load_si256((const __m256i *)p->sc[j]);
#pragma GCC unroll 2
            for (int h = 0; h < 8; h += steps16) {
                __m256i i16[PT];
#pragma GCC unroll 8
                for (int s = h; s < h + steps16; s++) {
                    __m256i wv = _mm256_load_si256(&p->q[j][s]);
#pragma GCC unroll 4
                    for (int t = 0; t < T; t++) {
                        __m256i m = _mm256_maddubs_epi16(wv, bcast32(xr[t][b].qs + 32 * j + 4 * s));
                        i16[t] = s == h ? m : chain(_mm256_add_epi16(i16[t], m));
                    }
                }
#pragma GCC unroll 4
                for (int t = 0; t < T; t++) {
                    __m256i w32 = _mm256_madd_epi16(i16[t], sc);
                    sumi[t] = j == 0 && h == 0 ? w32 : _mm256_add_epi32(sumi[t], w32);
                }
            }
        }
        __m256 d = _mm256_load_ps(p->d), dmin = _mm256_load_ps(p->dmin);
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            __m256i summ = _mm256_setzero_si256();
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++)
                summ = _mm256_add_epi32(summ, _mm256_madd_epi16(_mm256_load_si256((const __m256i *)p->mp[k]),
                                                                bcast32(pt[t] + 8 * b + 2 * k)));
            __m256 v = _mm256_sub_ps(_mm256_mul_ps(d, _mm256_cvtepi32_ps(sumi[t])),
                                     _mm256_mul_ps(dmin, _mm256_cvtepi32_ps(summ)));
            acc[t] = _mm256_add_ps(acc[t], _mm256_mul_ps(_mm256_set1_ps(xr[t][b].d), v));
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) store_rows(y + t * ldy, acc[t], nrv);
}

/* ---- Q6_K --------------------------------------------------------------- */

struct pk6 {
    __m256i q[8][8];        /* [32-element chunk][step]: rows in lanes, quants 0..63 */
    uint32_t sc[16][8];     /* [sub-block][row]: (sc, sc) as int16 */
    int32_t sc32[16][8];    /* [sub-block][row]: sc (VNNI) */
    uint32_t sp[8][8];      /* [k][row]: (sc_2k, sc_2k+1) as int16 */
    float d[8];
} __attribute__((aligned(32)));

AVX2_INLINE void pack_q6_k(const uint8_t *w, size_t row_bytes, int nrv, int64_t nsb, struct pk6 *pk)
{
    for (int64_t b = 0; b < nsb; b++) {
        struct pk6 *p = pk + b;
        const struct block_q6_k *bl[8];
        for (int r = 0; r < 8; r++) {
            bl[r] = r < nrv ? (const struct block_q6_k *)(w + (size_t)r * row_bytes) + b : NULL;
            p->d[r] = bl[r] ? f16s(bl[r]->d) : 0.0f;
            for (int j = 0; j < 16; j++) {
                uint16_t s = bl[r] ? (uint16_t)bl[r]->scales[j] : 0;
                p->sc[j][r] = s | (uint32_t)s << 16;
                p->sc32[j][r] = bl[r] ? bl[r]->scales[j] : 0;
            }
            for (int k = 0; k < 8; k++) {
                uint16_t s0 = bl[r] ? (uint16_t)bl[r]->scales[2 * k] : 0;
                uint16_t s1 = bl[r] ? (uint16_t)bl[r]->scales[2 * k + 1] : 0;
                p->sp[k][r] = s0 | (uint32_t)s1 << 16;
            }
        }
        for (int h = 0; h < 2; h++)
            for (int k = 0; k < 4; k++) {
                __m256i v[8];
                for (int r = 0; r < 8; r++) {
                    if (!bl[r]) {
                        v[r] = _mm256_setzero_si256();
                        continue;
                    }
                    __m256i qa = _mm256_loadu_si256((const __m256i *)(bl[r]->ql + 64 * h));
                    __m256i qb = _mm256_loadu_si256((const __m256i *)(bl[r]->ql + 64 * h + 32));
                    __m256i qh = _mm256_loadu_si256((const __m256i *)(bl[r]->qh + 32 * h));
                    v[r] = k6_chunk(qa, qb, qh, k);
                }
                tr_store(v, p->q[4 * h + k]);
            }
    }
}

AVX2_INLINE void mk_q6_k(const int T, const bool vnni, float *y, int64_t ldy, int nrv, const struct pk6 *pk,
                         int64_t nsb,
                         const uint8_t *xq, size_t xq_bytes)
{
    const struct block_q8_k *xr[PT];
    __m256 acc[PT];
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) {
        xr[t] = (const struct block_q8_k *)(xq + (size_t)t * xq_bytes);
        acc[t] = _mm256_setzero_ps();
    }
    for (int64_t b = 0; b < nsb; b++) {
        const struct pk6 *p = pk + b;
        __m256i sumi[PT];
        for (int c = 0; c < 8 && vnni; c++) {
#pragma GCC unroll 2
            for (int h = 0; h < 8; h += 4) { /* one sub-block of 16: four steps */
                __m256i sj[PT], sc32 = _mm256_load_si256((const __m256i *)p->sc32[2 * c + h / 4]);
#pragma GCC unroll 8
                for (int t = 0; t < T; t++) sj[t] = _mm256_setzero_si256();
#pragma GCC unroll 4
                for (int s = h; s < h + 4; s++) {
                    __m256i wv = _mm256_load_si256(&p->q[c][s]);
#pragma GCC unroll 8
                    for (int t = 0; t < T; t++) sj[t] = dpbusd(sj[t], wv, bcast32(xr[t][b].qs + 32 * c + 4 * s));
                }
#pragma GCC unroll 8
                for (int t = 0; t < T; t++) {
                    __m256i w32 = _mm256_mullo_epi32(sj[t], sc32);
                    sumi[t] = c == 0 && h == 0 ? w32 : _mm256_add_epi32(sumi[t], w32);
                }
            }
        }
        for (int c = 0; c < 8 && !vnni; c++) {
#pragma GCC unroll 4
            for (int h = 0; h < 8; h += 2) { /* two steps (8 quants <= 63) per int16 sum */
                __m256i sc = _mm256_load_si256((const __m256i *)p->sc[2 * c + h / 4]);
                __m256i w0 = _mm256_load_si256(&p->q[c][h]), w1 = _mm256_load_si256(&p->q[c][h + 1]);
#pragma GCC unroll 4
                for (int t = 0; t < T; t++) {
                    const int8_t *xs = xr[t][b].qs + 32 * c + 4 * h;
                    __m256i m = _mm256_add_epi16(_mm256_maddubs_epi16(w0, bcast32(xs)),
                                                 _mm256_maddubs_epi16(w1, bcast32(xs + 4)));
                    __m256i w32 = _mm256_madd_epi16(m, sc);
                    sumi[t] = c == 0 && h == 0 ? w32 : chain(_mm256_add_epi32(sumi[t], w32));
                }
            }
        }
        __m256 d = _mm256_load_ps(p->d);
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            __m256i corr = _mm256_setzero_si256();
#pragma GCC unroll 8
            for (int k = 0; k < 8; k++)
                corr = _mm256_add_epi32(corr, _mm256_madd_epi16(_mm256_load_si256((const __m256i *)p->sp[k]),
                                                                bcast32(xr[t][b].bsums + 2 * k)));
            __m256i isum = _mm256_sub_epi32(sumi[t], _mm256_slli_epi32(corr, 5));
            __m256 dd = _mm256_mul_ps(d, _mm256_set1_ps(xr[t][b].d));
            acc[t] = _mm256_add_ps(acc[t], _mm256_mul_ps(dd, _mm256_cvtepi32_ps(isum)));
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) store_rows(y + t * ldy, acc[t], nrv);
}

/* ---- drivers: panels of 8 rows, tokens 4 at a time ---------------------- */

/* ---- decode (one token): streaming the rows ---------------------------- */
/* With one token nothing is reused, so nothing is packed: each thread
 * reads its rows once. The activations are laid out once per call instead,
 * per group of 8 blocks: blocks (2p, 2p+1) side by side as [first halves |
 * second halves] — the order in which one 32-byte load of two Q4 blocks'
 * nibbles unpacks — with the 8 blocks' d_x and offset corrections. Eight
 * blocks' int32 lanes are then folded into one vector (lane = block) by
 * hadd, and one FMA scales all eight: the per-block broadcasts of the
 * simple dot_q8 loop are gone. Lane order after the fold: blocks
 * 0,2,4,6,1,3,5,7 (PERM below). The blocks past the last whole group
 * form a partial group of whole pairs, the missing pairs zero (SmolLM2's
 * 576-wide rows are two groups and a pair); only an odd last block goes
 * through the row kernels' per-block code. Each block's scales come from
 * one 32-bit load at its start (heads_ord). */

struct xgrp {
    __m256i lo[4], hi[4];   /* pair p: [x_2p[0..15] | x_2p+1[0..15]], [x_2p[16..31] | x_2p+1[16..31]] */
    __m256 d;               /* d_x of the 8 blocks, PERM order */
    __m256 s;               /* Q8_1: s_x; Q8_0: off·Σ q_x as int32 bits; PERM order */
};
static const int PERM[8] = {0, 2, 4, 6, 1, 3, 5, 7};
static const int NATURAL[8] = {0, 1, 2, 3, 4, 5, 6, 7};

/* Groups of 8 blocks from nb blocks: the whole groups, then (when two or
 * more blocks are left) a partial group of the whole pairs left, its
 * missing blocks zero. An odd last block stays outside every group. */
static inline int64_t grp_count(int64_t nb) { return nb / 8 + (nb % 8 >= 2); }
static inline int64_t grp_blocks(int64_t nb) { return 8 * (nb / 8) + (nb % 8 & ~(int64_t)1); }

AVX2_INLINE void prep_grp(const uint8_t *xq, bool q8_1, int32_t off, int64_t nb, struct xgrp *xg)
{
    const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
    const size_t xblk = q8_1 ? sizeof(struct block_q8_1) : sizeof(struct block_q8_0);
    const int64_t ng = grp_count(nb), nvb = grp_blocks(nb);
    for (int64_t g = 0; g < ng; g++) {
        float d[8] = {0}, sf[8] = {0};
        int32_t c[8] = {0};
        for (int k = 0; k < 8; k++) {
            if (8 * g + PERM[k] >= nvb) continue;
            const uint8_t *bl = xq + (size_t)(8 * g + PERM[k]) * xblk;
            if (q8_1) {
                const struct block_q8_1 *x = (const struct block_q8_1 *)bl;
                d[k] = f16s(x->d);
                sf[k] = f16s(x->s);
            } else {
                const struct block_q8_0 *x = (const struct block_q8_0 *)bl;
                __m256i sv = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, XQS(*x)), ones16);
                __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sv), _mm256_extracti128_si256(sv, 1));
                s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
                s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
                d[k] = f16s(x->d);
                c[k] = off * _mm_cvtsi128_si32(s4);
            }
        }
        for (int p = 0; p < 4; p++) {
            if (8 * g + 2 * p >= nvb) {
                xg[g].lo[p] = xg[g].hi[p] = _mm256_setzero_si256();
                continue;
            }
            const uint8_t *qa = xq + (size_t)(8 * g + 2 * p) * xblk + (q8_1 ? 4 : 2);
            const uint8_t *qb = qa + xblk;
            xg[g].lo[p] = _mm256_loadu2_m128i((const __m128i *)qb, (const __m128i *)qa);
            xg[g].hi[p] = _mm256_loadu2_m128i((const __m128i *)(qb + 16), (const __m128i *)(qa + 16));
        }
        xg[g].d = _mm256_loadu_ps(d);
        xg[g].s = q8_1 ? _mm256_loadu_ps(sf) : _mm256_castsi256_ps(_mm256_loadu_si256((const __m256i *)c));
    }
}

/* The scales of eight legacy blocks at p + i·stride, i in PERM order (or
 * the order ord gives), as
 * floats: every legacy block starts with its f16 d, and Q4_1/Q5_1 follow it
 * with m, so one 32-bit load per block brings both. The low halves go to
 * *d, the high ones to *m (when m is wanted); blocks at nv and past it
 * (a partial group) read as zero. Eight loads and three
 * shuffles (sixteen 16-bit loads with shifts and ors before: a third of
 * the Q4_1 decode loop's instructions). */
AVX2_INLINE void heads_ord(const uint8_t *p, size_t stride, const int *ord, int nv, __m256 *d, __m256 *m)
{
    const __m256i split = _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15,
                                           0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15);
    /* lane i by a broadcast load and a blend: the load ports and any ALU,
     * where inserting each word would queue on the shuffle port */
    __m256i h = _mm256_setzero_si256();
    /* spelled out: the blend's lane mask must be a constant at every -O level */
#define LANE(i) \
    if (ord[i] < nv) h = _mm256_blend_epi32(h, _mm256_set1_epi32((int)ld32(p + ord[i] * stride)), 1 << (i))
    LANE(0); LANE(1); LANE(2); LANE(3); LANE(4); LANE(5); LANE(6); LANE(7);
#undef LANE
    /* per 128-bit lane [4 lows | 4 highs]; then the qwords as [lows | lows | highs | highs] */
    __m256i t = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(h, split), _MM_SHUFFLE(3, 1, 2, 0));
    *d = _mm256_cvtph_ps(_mm256_castsi256_si128(t));
    if (m) *m = _mm256_cvtph_ps(_mm256_extracti128_si256(t, 1));
}
AVX2_INLINE void heads_dm(const uint8_t *p, size_t stride, int nv, __m256 *d, __m256 *m)
{
    heads_ord(p, stride, PERM, nv, d, m);
}

/* The fifth bits of two Q5 blocks' first (second) halves, as the 32-bit
 * word bit4_32 expects. */
static inline uint32_t qh_lo2(const uint8_t *qha, const uint8_t *qhb)
{
    return (ld32(qha) & 0xffffu) | (ld32(qhb) << 16);
}
static inline uint32_t qh_hi2(const uint8_t *qha, const uint8_t *qhb)
{
    return (ld32(qha) >> 16) | (ld32(qhb) & 0xffff0000u);
}

AVX2_INLINE __m256i bit4_w(uint32_t w)
{
    uint8_t b[4];
    memcpy(b, &w, 4);
    return bit4_32(b);
}

/* One group of a legacy row (npairs whole pairs of blocks at wb, 4 for a
 * whole group) against its prepared activations, added to *acc / *accm. */
AVX2_INLINE void mv_leg_grp(uint32_t type, const bool vnni, const uint8_t *wb, const struct xgrp *x, int npairs,
                            __m256 *acc, __m256 *accm)
{
    const bool five = type == ANC_DT_Q5_0 || type == ANC_DT_Q5_1;
    const bool with_min = type == ANC_DT_Q4_1 || type == ANC_DT_Q5_1;
    const size_t bb = type == ANC_DT_Q4_0 ? sizeof(struct block_q4_0) : type == ANC_DT_Q4_1 ? sizeof(struct block_q4_1)
                    : type == ANC_DT_Q5_0 ? sizeof(struct block_q5_0) : sizeof(struct block_q5_1);
    const size_t qs_off = type == ANC_DT_Q4_0 ? offsetof(struct block_q4_0, qs)
                        : type == ANC_DT_Q4_1 ? offsetof(struct block_q4_1, qs)
                        : type == ANC_DT_Q5_0 ? offsetof(struct block_q5_0, qs) : offsetof(struct block_q5_1, qs);
    const size_t qh_off = type == ANC_DT_Q5_0 ? offsetof(struct block_q5_0, qh) : offsetof(struct block_q5_1, qh);
    const __m256i m4 = _mm256_set1_epi8(15), ones = _mm256_set1_epi16(1);
    __m256i v[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()};
#pragma GCC unroll 4
    for (int p = 0; p < npairs; p++) {
        const uint8_t *ba = wb + (size_t)(2 * p) * bb, *bbk = ba + bb;
        __m256i q = _mm256_loadu2_m128i((const __m128i *)(bbk + qs_off), (const __m128i *)(ba + qs_off));
        __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
        if (five) {
            lo = _mm256_or_si256(lo, bit4_w(qh_lo2(ba + qh_off, bbk + qh_off)));
            hi = _mm256_or_si256(hi, bit4_w(qh_hi2(ba + qh_off, bbk + qh_off)));
        }
        if (vnni) {
            v[p] = dpbusd(dpbusd(_mm256_setzero_si256(), lo, x->lo[p]), hi, x->hi[p]);
        } else {
            /* int16: 2·31·127·2 < 2^15 */
            __m256i p16 = _mm256_add_epi16(_mm256_maddubs_epi16(lo, x->lo[p]), _mm256_maddubs_epi16(hi, x->hi[p]));
            v[p] = _mm256_madd_epi16(p16, ones);
        }
    }
    __m256i s = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
    __m256 dw, mw;
    heads_dm(wb, bb, 2 * npairs, &dw, with_min ? &mw : NULL);
    if (with_min) {
        *acc = _mm256_fmadd_ps(_mm256_mul_ps(dw, x->d), _mm256_cvtepi32_ps(s), *acc);
        *accm = _mm256_fmadd_ps(mw, x->s, *accm);
    } else {
        s = _mm256_sub_epi32(s, _mm256_castps_si256(x->s));
        *acc = _mm256_fmadd_ps(_mm256_mul_ps(dw, x->d), _mm256_cvtepi32_ps(s), *acc);
    }
}

/* One row of a legacy type against the prepared groups (grp_count(nb) of
 * them, the last maybe partial); an odd last block uses xq directly. */
AVX2_INLINE float mv_leg_row(uint32_t type, const bool vnni, const uint8_t *row, const struct xgrp *xg, const uint8_t *xq,
                             int64_t nb)
{
    const bool with_min = type == ANC_DT_Q4_1 || type == ANC_DT_Q5_1;
    const size_t bb = type == ANC_DT_Q4_0 ? sizeof(struct block_q4_0) : type == ANC_DT_Q4_1 ? sizeof(struct block_q4_1)
                    : type == ANC_DT_Q5_0 ? sizeof(struct block_q5_0) : sizeof(struct block_q5_1);
    const int64_t ng = nb / 8;
    __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
    for (int64_t g = 0; g < ng; g++) mv_leg_grp(type, vnni, row + (size_t)g * 8 * bb, xg + g, 4, &acc, &accm);
    int tail_pairs = (int)(nb % 8) / 2;
    if (tail_pairs) mv_leg_grp(type, vnni, row + (size_t)ng * 8 * bb, xg + ng, tail_pairs, &acc, &accm);
    float sum = hsum256(_mm256_add_ps(acc, accm));
    int64_t b0 = grp_blocks(nb);
    if (b0 < nb) {
        const size_t xb = with_min ? sizeof(struct block_q8_1) : sizeof(struct block_q8_0);
        const uint8_t *wt = row + (size_t)b0 * bb, *xt = xq + (size_t)b0 * xb;
        int64_t nt = (nb - b0) * QUANT_QK;
        sum += type == ANC_DT_Q4_0 ? dot_q8_q4_0(wt, xt, nt) : type == ANC_DT_Q4_1 ? dot_q8_q4_1(wt, xt, nt)
             : type == ANC_DT_Q5_0 ? dot_q8_q5_0(wt, xt, nt) : dot_q8_q5_1(wt, xt, nt);
    }
    return sum;
}

AVX2_INLINE void mv_leg(uint32_t type, const bool vnni, float *y, const void *w, size_t row_bytes, int64_t nr,
                        const void *xq, int64_t n, void *scratch)
{
    const bool with_min = type == ANC_DT_Q4_1 || type == ANC_DT_Q5_1;
    const int32_t off = type == ANC_DT_Q4_0 ? 8 : 16;
    const int64_t nb = n / QUANT_QK;
    struct xgrp *xg = scratch;
    prep_grp(xq, with_min, off, nb, xg);
    for (int64_t r = 0; r < nr; r++)
        y[r] = mv_leg_row(type, vnni, (const uint8_t *)w + (size_t)r * row_bytes, xg, xq, nb);
}

/* Q8_0 weights: one block per vector (no pairing), natural block order.
 * A last group of fewer than 8 blocks reads only its nv blocks (the
 * others' sums and scales are zero), so no row needs a per-block tail. */
AVX2_INLINE void mv_q8_0_grp(const bool vnni, const struct block_q8_0 *wb, const struct block_q8_0 *xb, __m256 xd,
                             int nv, __m256 *acc)
{
    __m256i v[8];
#pragma GCC unroll 8
    for (int k = 0; k < 8; k++) {
        v[k] = _mm256_setzero_si256();
        if (k >= nv) continue; /* past the row: never read */
        __m256i w = XQS(wb[k]), x = XQS(xb[k]);
        v[k] = vnni ? dpbusd(v[k], _mm256_abs_epi8(w), _mm256_sign_epi8(x, w)) : isum_s8(w, x);
    }
    __m256i h0 = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
    __m256i h1 = _mm256_hadd_epi32(_mm256_hadd_epi32(v[4], v[5]), _mm256_hadd_epi32(v[6], v[7]));
    /* h0 = [b0..b3 low-lane parts | b0..b3 high-lane parts], h1 the same for b4..b7 */
    __m256i s = _mm256_add_epi32(_mm256_permute2x128_si256(h0, h1, 0x20), _mm256_permute2x128_si256(h0, h1, 0x31));
    __m256 dw;
    heads_ord((const uint8_t *)wb, sizeof *wb, NATURAL, nv, &dw, NULL);
    *acc = _mm256_fmadd_ps(_mm256_mul_ps(dw, xd), _mm256_cvtepi32_ps(s), *acc);
}

AVX2_INLINE void mv_q8_0(const bool vnni, float *y, const void *w, size_t row_bytes, int64_t nr,
                         const void *xq, int64_t n, void *scratch)
{
    const int64_t nb = n / QUANT_QK, ng = nb / 8;
    const int tail = (int)(nb % 8);
    const struct block_q8_0 *x = xq;
    __m256 *xd = scratch;
    for (int64_t g = 0; g < ng + (tail > 0); g++) {
        float d[8] = {0};
        for (int k = 0; k < 8 && 8 * g + k < nb; k++) d[k] = f16s(x[8 * g + k].d);
        xd[g] = _mm256_loadu_ps(d);
    }
    for (int64_t r = 0; r < nr; r++) {
        const struct block_q8_0 *wr = (const struct block_q8_0 *)((const uint8_t *)w + (size_t)r * row_bytes);
        __m256 acc = _mm256_setzero_ps();
        for (int64_t g = 0; g < ng; g++) mv_q8_0_grp(vnni, wr + 8 * g, x + 8 * g, xd[g], 8, &acc);
        if (tail) mv_q8_0_grp(vnni, wr + 8 * ng, x + 8 * ng, xd[ng], tail, &acc);
        y[r] = hsum256(acc);
    }
}

/* Row kernels for the types without a dedicated decode loop. */
AVX2_INLINE void mv_rows(cpu_dot_q8_fn dot, float *y, const void *w, size_t row_bytes, int64_t nr,
                         const void *xq, int64_t n)
{
    for (int64_t r = 0; r < nr; r++) y[r] = dot((const uint8_t *)w + (size_t)r * row_bytes, xq, n);
}

/* Token tiles of PT, then the 1..3 left over; T is a constant in each call
 * so the micro-kernels unroll and keep their accumulators in registers. */
#define TOKEN_TILES(CALL)                                                       \
    do {                                                                        \
        int32_t t0 = 0;                                                         \
        for (; t0 + PT <= n_tok; t0 += PT) CALL(PT);                            \
        switch (n_tok - t0) {                                                   \
        case 3: CALL(3); break;                                                 \
        case 2: CALL(2); break;                                                 \
        case 1: CALL(1); break;                                                 \
        default: break;                                                         \
        }                                                                       \
    } while (0)

AVX2_INLINE void mm_leg(uint32_t type, const bool vnni, const bool with_min, const int steps16, int32_t off,
                        float *y,
                        int64_t ldy, const void *w, size_t row_bytes, int64_t nr, const void *xq,
                        size_t xq_bytes, int32_t n_tok, int64_t n, void *scratch)
{
    if (n_tok == 1) {
        mv_leg(type, vnni, y, w, row_bytes, nr, xq, n, scratch);
        return;
    }
    const int64_t nb = n / QUANT_QK;
    struct pk32 *pk = scratch;
    struct xinfo *xi = tok_area(scratch, n);
    prep_q8(xq, xq_bytes, n_tok, nb, with_min, off, xi);
    for (int64_t r0 = 0; r0 < nr; r0 += PR) {
        int nrv = nr - r0 < PR ? (int)(nr - r0) : PR;
        pack_leg(type, (const uint8_t *)w + (size_t)r0 * row_bytes, row_bytes, nrv, nb, pk);
#define CALL(T)                                                                              \
    mk_leg(T, vnni, with_min, steps16, y + r0 + (int64_t)t0 * ldy, ldy, nrv, pk, nb,           \
           (const uint8_t *)xq + (size_t)t0 * xq_bytes, xq_bytes, xi + (size_t)t0 * nb)
        TOKEN_TILES(CALL);
#undef CALL
    }
}

#define MM_LEG(NAME, TYPE, WITH_MIN, STEPS16, OFF)                                               \
    AVX2 static void NAME(float *y, int64_t ldy, const void *w, size_t row_bytes, int64_t nr,     \
                          const void *xq, size_t xq_bytes, int32_t n_tok, int64_t n,             \
                          void *scratch)                                                         \
    {                                                                                            \
        mm_leg(TYPE, false, WITH_MIN, STEPS16, OFF, y, ldy, w, row_bytes, nr, xq, xq_bytes,      \
               n_tok, n, scratch);                                                               \
    }                                                                                            \
    VNNI static void NAME##_vnni(float *y, int64_t ldy, const void *w, size_t row_bytes,         \
                                 int64_t nr, const void *xq, size_t xq_bytes, int32_t n_tok,     \
                                 int64_t n, void *scratch)                                       \
    {                                                                                            \
        mm_leg(TYPE, true, WITH_MIN, STEPS16, OFF, y, ldy, w, row_bytes, nr, xq, xq_bytes,       \
               n_tok, n, scratch);                                                               \
    }
MM_LEG(mm_q4_0, ANC_DT_Q4_0, false, 8, 8)
MM_LEG(mm_q5_0, ANC_DT_Q5_0, false, 4, 16)
MM_LEG(mm_q4_1, ANC_DT_Q4_1, true, 8, 0)
MM_LEG(mm_q5_1, ANC_DT_Q5_1, true, 4, 0)

AVX2 static void mm_q8_0(float *y, int64_t ldy, const void *w, size_t row_bytes, int64_t nr,
                         const void *xq, size_t xq_bytes, int32_t n_tok, int64_t n, void *scratch)
{
    if (n_tok == 1) {
        mv_q8_0(false, y, w, row_bytes, nr, xq, n, scratch);
        return;
    }
    const int64_t nb = n / QUANT_QK;
    struct pk8 *pk = scratch;
    int16_t *xw = tok_area(scratch, n);
    float *xd = (float *)(xw + (size_t)n_tok * n);
    prep_q8_0_i16(xq, xq_bytes, n_tok, nb, xw, xd);
    for (int64_t r0 = 0; r0 < nr; r0 += PR) {
        int nrv = nr - r0 < PR ? (int)(nr - r0) : PR;
        pack_q8_0((const uint8_t *)w + (size_t)r0 * row_bytes, row_bytes, nrv, nb, pk);
#define CALL(T)                                                                           \
    mk_q8_0(T, y + r0 + (int64_t)t0 * ldy, ldy, nrv, pk, nb, xw + (size_t)t0 * n, xd + (size_t)t0 * nb)
        TOKEN_TILES(CALL);
#undef CALL
    }
}

AVX2_INLINE void mm_k45(const bool vnni, const bool five, const int steps16, float *y, int64_t ldy, const void *w,
                        size_t row_bytes, int64_t nr, const void *xq, size_t xq_bytes, int32_t n_tok,
                        int64_t n, void *scratch)
{
    if (n_tok == 1) {
        mv_rows(five ? dot_q8_q5_k : dot_q8_q4_k, y, w, row_bytes, nr, xq, n);
        return;
    }
    const int64_t nsb = n / QUANT_QK_K;
    struct pkk *pk = scratch;
    int16_t *P = tok_area(scratch, n);
    prep_k45(xq, xq_bytes, n_tok, nsb, P);
    for (int64_t r0 = 0; r0 < nr; r0 += PR) {
        int nrv = nr - r0 < PR ? (int)(nr - r0) : PR;
        pack_k45(five, (const uint8_t *)w + (size_t)r0 * row_bytes, row_bytes, nrv, nsb, pk);
#define CALL(T)                                                                             \
    mk_k45(T, vnni, steps16, y + r0 + (int64_t)t0 * ldy, ldy, nrv, pk, nsb,                         \
           (const uint8_t *)xq + (size_t)t0 * xq_bytes, xq_bytes, P + (size_t)t0 * nsb * 8)
        TOKEN_TILES(CALL);
#undef CALL
    }
}

AVX2 static void mm_q4_k(float *y, int64_t ldy, const void *w, size_t row_bytes, int64_t nr,
                         const void *xq, size_t xq_bytes, int32_t n_tok, int64_t n, void *scratch)
{
    mm_k45(false, false, 8, y, ldy, w, row_bytes, nr, xq, xq_bytes, n_tok, n, scratch);
}

VNNI static void mm_q4_k_vnni(float *y, int64_t ldy, const void *w, size_t row_bytes, int64_t nr,
                              const void *xq, size_t xq_bytes, int32_t n_tok, int64_t n, void *scratch)
{
    mm_k45(true, false, 8, y, ldy, w, row_bytes, nr, xq, xq_bytes, n_tok, n, scratch);
}

AVX2 static void mm_q5_k(float *y, int64_t ldy, const void *w, size_t row_bytes, int64_t nr,
                         const void *xq, size_t xq_bytes, int32_t n_tok, int64_t n, void *scratch)
{
    mm_k45(false, true, 4, y, ldy, w, row_bytes, nr, xq, xq_bytes, n_tok, n, scratch);
}

VNNI static void mm_q5_k_vnni(float *y, int64_t ldy, const void *w, size_t row_bytes, int64_t nr,
                              const void *xq, size_t xq_bytes, int32_t n_tok, int64_t n, void *scratch)
{
    mm_k45(true, true, 4, y, ldy, w, row_bytes, nr, xq, xq_bytes, n_tok, n, scratch);
}

AVX2_INLINE void mm_q6_k_any(const bool vnni, float *y, int64_t ldy, const void *w, size_t row_bytes,
                             int64_t nr, const void *xq, size_t xq_bytes, int32_t n_tok, int64_t n,
                             void *scratch)
{
    if (n_tok == 1) {
        mv_rows(dot_q8_q6_k, y, w, row_bytes, nr, xq, n);
        return;
    }
    const int64_t nsb = n / QUANT_QK_K;
    struct pk6 *pk = scratch;
    for (int64_t r0 = 0; r0 < nr; r0 += PR) {
        int nrv = nr - r0 < PR ? (int)(nr - r0) : PR;
        pack_q6_k((const uint8_t *)w + (size_t)r0 * row_bytes, row_bytes, nrv, nsb, pk);
#define CALL(T)                                                                         \
    mk_q6_k(T, vnni, y + r0 + (int64_t)t0 * ldy, ldy, nrv, pk, nsb,                             \
            (const uint8_t *)xq + (size_t)t0 * xq_bytes, xq_bytes)
        TOKEN_TILES(CALL);
#undef CALL
    }
}

AVX2 static void mm_q6_k(float *y, int64_t ldy, const void *w, size_t row_bytes, int64_t nr,
                         const void *xq, size_t xq_bytes, int32_t n_tok, int64_t n, void *scratch)
{
    mm_q6_k_any(false, y, ldy, w, row_bytes, nr, xq, xq_bytes, n_tok, n, scratch);
}

VNNI static void mm_q6_k_vnni(float *y, int64_t ldy, const void *w, size_t row_bytes, int64_t nr,
                              const void *xq, size_t xq_bytes, int32_t n_tok, int64_t n, void *scratch)
{
    mm_q6_k_any(true, y, ldy, w, row_bytes, nr, xq, xq_bytes, n_tok, n, scratch);
}

VNNI static void mm_q8_0_vnni(float *y, int64_t ldy, const void *w, size_t row_bytes, int64_t nr,
                              const void *xq, size_t xq_bytes, int32_t n_tok, int64_t n, void *scratch)
{
    if (n_tok == 1) {
        mv_q8_0(true, y, w, row_bytes, nr, xq, n, scratch);
        return;
    }
    const int64_t nb = n / QUANT_QK;
    struct pk8v *pk = scratch;
    uint8_t *xu = tok_area(scratch, n);
    float *xd = (float *)(xu + (size_t)n_tok * n);
    prep_q8_0u(xq, xq_bytes, n_tok, nb, xu, xd);
    for (int64_t r0 = 0; r0 < nr; r0 += PR) {
        int nrv = nr - r0 < PR ? (int)(nr - r0) : PR;
        pack_q8_0v((const uint8_t *)w + (size_t)r0 * row_bytes, row_bytes, nrv, nb, pk);
#define CALL(T)                                                                                  \
    mk_q8_0v(T, y + r0 + (int64_t)t0 * ldy, ldy, nrv, pk, nb, xu + (size_t)t0 * n, xd + (size_t)t0 * nb)
        TOKEN_TILES(CALL);
#undef CALL
    }
}

/* ---- float weights: F32, F16, BF16 ------------------------------------- */
/* Panels of 16 rows × 256 columns converted to float, rows in lanes
 * (column k of the panel = two vectors of 8 rows); a micro-tile of 16 rows
 * × 6 tokens keeps 12 accumulators and does 12 FMAs per 8 loads. Each
 * (row, token) sums its columns in order with FMA; the panel results are
 * added to y. */

#define FR 16
#define FKC 256
#define FT 6

AVX2_INLINE __m256 ld8_as_f32(uint32_t type, const uint8_t *row, int64_t k)
{
    if (type == ANC_DT_F32) return _mm256_loadu_ps((const float *)row + k);
    if (type == ANC_DT_F16) return ld_f16x8((const uint16_t *)row + k);
    return ld_bf16x8((const uint16_t *)row + k);
}

static inline float ld1_as_f32(uint32_t type, const uint8_t *row, int64_t k)
{
    if (type == ANC_DT_F32) return ((const float *)row)[k];
    uint16_t h = ((const uint16_t *)row)[k];
    return type == ANC_DT_F16 ? anc_f16_to_f32(h) : anc_bf16_to_f32(h);
}

/* out[k][16] = rows [0, nrv) of columns [k0, k0 + kc), zero past nrv. */
AVX2_INLINE void pack_f(uint32_t type, const uint8_t *w, size_t row_bytes, int nrv, int64_t k0, int kc,
                        float *out)
{
    int k = 0;
    for (; k + 8 <= kc; k += 8)
        for (int g = 0; g < FR; g += 8) {
            __m256 v[8];
            for (int r = 0; r < 8; r++)
                v[r] = g + r < nrv ? ld8_as_f32(type, w + (size_t)(g + r) * row_bytes, k0 + k)
                                   : _mm256_setzero_ps();
            tr8x8_ps(v);
            for (int i = 0; i < 8; i++) _mm256_store_ps(out + (size_t)(k + i) * FR + g, v[i]);
        }
    for (; k < kc; k++)
        for (int r = 0; r < FR; r++)
            out[(size_t)k * FR + r] = r < nrv ? ld1_as_f32(type, w + (size_t)r * row_bytes, k0 + k) : 0.0f;
}

AVX2_INLINE void mk_f(const int T, float *y, int64_t ldy, int nrv, bool first, const float *pk, int kc,
                      const float *x, int64_t ldx)
{
    __m256 a0[FT], a1[FT];
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) a0[t] = a1[t] = _mm256_setzero_ps();
    for (int k = 0; k < kc; k++) {
        __m256 w0 = _mm256_load_ps(pk + (size_t)k * FR), w1 = _mm256_load_ps(pk + (size_t)k * FR + 8);
#pragma GCC unroll 6
        for (int t = 0; t < T; t++) {
            __m256 xb = _mm256_broadcast_ss(x + t * ldx + k);
            a0[t] = _mm256_fmadd_ps(w0, xb, a0[t]);
            a1[t] = _mm256_fmadd_ps(w1, xb, a1[t]);
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) {
        float *yt = y + t * ldy;
        if (nrv >= FR) {
            if (!first) {
                a0[t] = _mm256_add_ps(a0[t], _mm256_loadu_ps(yt));
                a1[t] = _mm256_add_ps(a1[t], _mm256_loadu_ps(yt + 8));
            }
            _mm256_storeu_ps(yt, a0[t]);
            _mm256_storeu_ps(yt + 8, a1[t]);
        } else {
            float tmp[FR];
            _mm256_storeu_ps(tmp, a0[t]);
            _mm256_storeu_ps(tmp + 8, a1[t]);
            for (int r = 0; r < nrv; r++) yt[r] = first ? tmp[r] : yt[r] + tmp[r];
        }
    }
}

AVX2_INLINE void mm_float(uint32_t type, float *y, int64_t ldy, const void *w, size_t row_bytes,
                          int64_t nr, const float *x, int64_t ldx, int32_t n_tok, int64_t n,
                          void *scratch)
{
    if (n_tok == 1) { /* nothing to reuse: stream the rows */
        cpu_dot_f_fn dot = type == ANC_DT_F32 ? dot_f_f32 : type == ANC_DT_F16 ? dot_f_f16 : dot_f_bf16;
        for (int64_t r = 0; r < nr; r++) y[r] = dot((const uint8_t *)w + (size_t)r * row_bytes, x, n);
        return;
    }
    float *pk = scratch;
    for (int64_t r0 = 0; r0 < nr; r0 += FR) {
        int nrv = nr - r0 < FR ? (int)(nr - r0) : FR;
        for (int64_t k0 = 0; k0 < n; k0 += FKC) {
            int kc = n - k0 < FKC ? (int)(n - k0) : FKC;
            pack_f(type, (const uint8_t *)w + (size_t)r0 * row_bytes, row_bytes, nrv, k0, kc, pk);
            bool first = k0 == 0;
            /* tiles of FT tokens; a remainder under 4 is merged with one
             * full tile and split in two (fewer than 4 tokens leave too few
             * independent FMA chains to hide their latency) */
            int32_t t0 = 0, left = n_tok;
            while (left > 0) {
                int T = left >= FT + 4 || left == FT ? FT : left > FT ? (left + 1) / 2 : left;
                const float *xt = x + t0 * ldx + k0;
                float *yt = y + r0 + t0 * ldy;
                switch (T) {
                case 6: mk_f(6, yt, ldy, nrv, first, pk, kc, xt, ldx); break;
                case 5: mk_f(5, yt, ldy, nrv, first, pk, kc, xt, ldx); break;
                case 4: mk_f(4, yt, ldy, nrv, first, pk, kc, xt, ldx); break;
                case 3: mk_f(3, yt, ldy, nrv, first, pk, kc, xt, ldx); break;
                case 2: mk_f(2, yt, ldy, nrv, first, pk, kc, xt, ldx); break;
                default: mk_f(1, yt, ldy, nrv, first, pk, kc, xt, ldx); break;
                }
                t0 += T;
                left -= T;
            }
        }
    }
}

#define MM_F(NAME, TYPE)                                                                        \
    AVX2 static void NAME(float *y, int64_t ldy, const void *w, size_t row_bytes, int64_t nr,    \
                          const float *x, int64_t ldx, int32_t n_tok, int64_t n, void *scratch) \
    {                                                                                           \
        mm_float(TYPE, y, ldy, w, row_bytes, nr, x, ldx, n_tok, n, scratch);                    \
    }
MM_F(mm_f32, ANC_DT_F32)
MM_F(mm_f16, ANC_DT_F16)
MM_F(mm_bf16, ANC_DT_BF16)

/* ======================================================================
 * Activation quantisers: the bytes of quant_quantize_row, 8 floats at a
 * time. Each step is the reference's float operation (absmax, d = amax /
 * 127, id = 1 / d, x·id) and round-half-away-from-zero is done exactly:
 * t = trunc|v|, then t + 1 where |v| − t >= 0.5 (|v| − t is exact).
 * Anything unusual (a non-finite input, a scale that overflows half
 * precision) goes to the reference, which reports and poisons the row.
 * ====================================================================== */

/* max |x| over 8k floats; *bad set when one is not finite. */
AVX2_INLINE float absmax_k(const float *x, int k, __m256 *bad)
{
    const __m256 sign = _mm256_set1_ps(-0.0f), big = _mm256_set1_ps(3.40282347e38f);
    __m256 m = _mm256_setzero_ps();
    for (int i = 0; i < k; i++) {
        __m256 a = _mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8 * i));
        *bad = _mm256_or_ps(*bad, _mm256_cmp_ps(a, big, _CMP_NLE_UQ)); /* inf or NaN */
        m = _mm256_max_ps(m, a);
    }
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

/* 8 quants round-half-away(x·id) as int32 (|x·id| <= 127 + rounding). */
AVX2_INLINE __m256i q8_round(const float *x, __m256 id)
{
    const __m256 sign = _mm256_set1_ps(-0.0f), half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f);
    __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x), id);
    __m256 a = _mm256_andnot_ps(sign, v);
    __m256 t = _mm256_round_ps(a, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    t = _mm256_add_ps(t, _mm256_and_ps(_mm256_cmp_ps(_mm256_sub_ps(a, t), half, _CMP_GE_OQ), one));
    t = _mm256_min_ps(t, _mm256_set1_ps(127.0f));
    return _mm256_cvttps_epi32(_mm256_or_ps(t, _mm256_and_ps(v, sign)));
}

/* 32 int8 quants from 4 vectors of int32 (in order). */
AVX2_INLINE __m256i pack_q8(__m256i a, __m256i b, __m256i c, __m256i d)
{
    __m256i ab = _mm256_packs_epi32(a, b), cd = _mm256_packs_epi32(c, d);
    __m256i v = _mm256_packs_epi16(ab, cd); /* dwords: a0 b0 c0 d0 | a1 b1 c1 d1 */
    return _mm256_permutevar8x32_epi32(v, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* Σ of 32 int8 */
AVX2_INLINE int32_t sum_q8(__m256i q)
{
    __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), q), _mm256_set1_epi16(1));
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
    return _mm_cvtsi128_si32(s4);
}

AVX2_INLINE __m256i q8_block32(const float *x, float id)
{
    __m256 idv = _mm256_set1_ps(id);
    return pack_q8(q8_round(x, idv), q8_round(x + 8, idv), q8_round(x + 16, idv), q8_round(x + 24, idv));
}

AVX2 static bool quant_x_q8_0(const float *x, void *dst, int64_t n)
{
    if (n < 0 || n % QUANT_QK) return quant_quantize_row(ANC_DT_Q8_0, x, dst, n);
    struct block_q8_0 *b = dst;
    __m256 bad = _mm256_setzero_ps();
    for (int64_t k = 0; k < n / QUANT_QK; k++) {
        float d = absmax_k(x + k * QUANT_QK, 4, &bad) / 127.0f;
        uint16_t h = anc_f32_to_f16(d);
        if (_mm256_movemask_ps(bad) || !(anc_f16_to_f32(h) <= 65504.0f))
            return quant_quantize_row(ANC_DT_Q8_0, x, dst, n);
        b[k].d = h;
        _mm256_storeu_si256((__m256i *)b[k].qs, q8_block32(x + k * QUANT_QK, d != 0.0f ? 1.0f / d : 0.0f));
    }
    return true;
}

AVX2 static bool quant_x_q8_1(const float *x, void *dst, int64_t n)
{
    if (n < 0 || n % QUANT_QK) return quant_quantize_row(ANC_DT_Q8_1, x, dst, n);
    struct block_q8_1 *b = dst;
    __m256 bad = _mm256_setzero_ps();
    for (int64_t k = 0; k < n / QUANT_QK; k++) {
        float d = absmax_k(x + k * QUANT_QK, 4, &bad) / 127.0f;
        uint16_t h = anc_f32_to_f16(d);
        if (_mm256_movemask_ps(bad) || !(anc_f16_to_f32(h) <= 65504.0f))
            return quant_quantize_row(ANC_DT_Q8_1, x, dst, n);
        __m256i q = q8_block32(x + k * QUANT_QK, d != 0.0f ? 1.0f / d : 0.0f);
        uint16_t s = anc_f32_to_f16(anc_f16_to_f32(h) * (float)sum_q8(q));
        if (!(fabsf(anc_f16_to_f32(s)) <= 65504.0f)) return quant_quantize_row(ANC_DT_Q8_1, x, dst, n);
        b[k].d = h;
        b[k].s = s;
        _mm256_storeu_si256((__m256i *)b[k].qs, q);
    }
    return true;
}

AVX2 static bool quant_x_q8_k(const float *x, void *dst, int64_t n)
{
    if (n < 0 || n % QUANT_QK_K) return quant_quantize_row(ANC_DT_Q8_K, x, dst, n);
    struct block_q8_k *b = dst;
    __m256 bad = _mm256_setzero_ps();
    for (int64_t k = 0; k < n / QUANT_QK_K; k++) {
        const float *xb = x + k * QUANT_QK_K;
        float d = absmax_k(xb, 32, &bad) / 127.0f;
        if (_mm256_movemask_ps(bad)) return quant_quantize_row(ANC_DT_Q8_K, x, dst, n);
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[k].d = d;
        for (int c = 0; c < 8; c++) {
            __m256i q = q8_block32(xb + 32 * c, id);
            _mm256_storeu_si256((__m256i *)(b[k].qs + 32 * c), q);
            /* bsums of the two groups of 16: int16 sums of pairs, then of lanes */
            __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), q), _mm256_set1_epi16(1));
            __m128i lo = _mm256_castsi256_si128(s), hi = _mm256_extracti128_si256(s, 1);
            lo = _mm_add_epi32(lo, _mm_shuffle_epi32(lo, 0x4e));
            hi = _mm_add_epi32(hi, _mm_shuffle_epi32(hi, 0x4e));
            lo = _mm_add_epi32(lo, _mm_shuffle_epi32(lo, 0xb1));
            hi = _mm_add_epi32(hi, _mm_shuffle_epi32(hi, 0xb1));
            b[k].bsums[2 * c] = (int16_t)_mm_cvtsi128_si32(lo);
            b[k].bsums[2 * c + 1] = (int16_t)_mm_cvtsi128_si32(hi);
        }
    }
    return true;
}

/* ---- attention's inner loops ----------------------------------------------- */

static AVX2 void axpy_f32(float *y, float a, const float *x, int64_t n)
{
    __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * x[i];
}

/* x[i] = exp(a·x[i] − b): cpu_exp_fast's steps eight lanes at a time */
static AVX2 void exp_affine_f32(float *x, int64_t n, float a, float b)
{
    const __m256 va = _mm256_set1_ps(a), vb = _mm256_set1_ps(b);
    const __m256 lo = _mm256_set1_ps(-87.0f), hi = _mm256_set1_ps(88.0f);
    const __m256 log2e = _mm256_set1_ps(1.442695041f), magic = _mm256_set1_ps(12582912.0f);
    const __m256 ln2_hi = _mm256_set1_ps(0.693145751953125f), ln2_lo = _mm256_set1_ps(1.428606820309417e-6f);
    const __m256 c6 = _mm256_set1_ps(1.0f / 720), c5 = _mm256_set1_ps(1.0f / 120), c4 = _mm256_set1_ps(1.0f / 24);
    const __m256 c3 = _mm256_set1_ps(1.0f / 6), c2 = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_fmsub_ps(va, _mm256_loadu_ps(x + i), vb);
        v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
        __m256 k = _mm256_sub_ps(_mm256_fmadd_ps(v, log2e, magic), magic);
        __m256 r = _mm256_fnmadd_ps(k, ln2_lo, _mm256_fnmadd_ps(k, ln2_hi, v));
        __m256 p = _mm256_fmadd_ps(r, c6, c5);
        p = _mm256_fmadd_ps(r, p, c4);
        p = _mm256_fmadd_ps(r, p, c3);
        p = _mm256_fmadd_ps(r, p, c2);
        p = _mm256_fmadd_ps(r, p, one);
        p = _mm256_fmadd_ps(r, p, one);
        __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
        _mm256_storeu_ps(x + i, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
    }
    for (; i < n; i++) x[i] = cpu_exp_fast(a * x[i] - b);
}

static AVX2 void f16_to_f32_row(float *dst, const uint16_t *src, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++) dst[i] = f16s(src[i]);
}

/* A half-precision key row against up to four query heads at a time: the
 * row is converted once per four heads, in registers, and each head keeps
 * its own accumulator. */
static AVX2 void dot_f16_group(float *out, const float *q, int64_t q_stride, int32_t group, const uint16_t *k,
                               int64_t hd)
{
    for (int32_t g0 = 0; g0 < group; g0 += 4) {
        const int gn = group - g0 < 4 ? group - g0 : 4;
        __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
        int64_t d = 0;
        for (; d + 8 <= hd; d += 8) {
            __m256 kf = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(k + d)));
#pragma GCC unroll 4
            for (int g = 0; g < 4; g++)
                if (g < gn) acc[g] = _mm256_fmadd_ps(_mm256_loadu_ps(q + (g0 + g) * q_stride + d), kf, acc[g]);
        }
        for (int g = 0; g < gn; g++) {
            float s = hsum256(acc[g]);
            for (int64_t t = d; t < hd; t++) s += q[(g0 + g) * q_stride + t] * f16s(k[t]);
            out[g0 + g] = s;
        }
    }
}

/* A half-precision value row into the outputs of the heads whose weight is
 * not zero: eight elements converted once for every head. */
static AVX2 void axpy_f16_group(float *o, int64_t o_stride, const float *p, int32_t group, const uint16_t *v,
                                int64_t hd)
{
    int64_t d = 0;
    for (; d + 8 <= hd; d += 8) {
        __m256 vf = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + d)));
        for (int32_t g = 0; g < group; g++) {
            if (p[g] == 0.0f) continue;
            float *og = o + g * o_stride + d;
            _mm256_storeu_ps(og, _mm256_fmadd_ps(_mm256_set1_ps(p[g]), vf, _mm256_loadu_ps(og)));
        }
    }
    for (; d < hd; d++) {
        float x = f16s(v[d]);
        for (int32_t g = 0; g < group; g++)
            if (p[g] != 0.0f) o[g * o_stride + d] += p[g] * x;
    }
}

void cpu_kernels_add_avx2(struct cpu_kernels *k)
{
    k->dot_f16_group = dot_f16_group;
    k->axpy_f16_group = axpy_f16_group;
    k->axpy = axpy_f32;
    k->exp_affine = exp_affine_f32;
    k->f16_to_f32 = f16_to_f32_row;
    k->quant_x[ANC_DT_Q8_0] = quant_x_q8_0;
    k->quant_x[ANC_DT_Q8_1] = quant_x_q8_1;
    k->quant_x[ANC_DT_Q8_K] = quant_x_q8_k;
    k->dot_f[ANC_DT_F32] = dot_f_f32;
    k->dot_f[ANC_DT_F16] = dot_f_f16;
    k->dot_f[ANC_DT_BF16] = dot_f_bf16;
    k->dot_q8[ANC_DT_Q4_0] = dot_q8_q4_0;
    k->dot_q8[ANC_DT_Q4_1] = dot_q8_q4_1;
    k->dot_q8[ANC_DT_Q5_0] = dot_q8_q5_0;
    k->dot_q8[ANC_DT_Q5_1] = dot_q8_q5_1;
    k->dot_q8[ANC_DT_Q8_0] = dot_q8_q8_0;
    k->dot_q8[ANC_DT_Q4_K] = dot_q8_q4_k;
    k->dot_q8[ANC_DT_Q5_K] = dot_q8_q5_k;
    k->dot_q8[ANC_DT_Q6_K] = dot_q8_q6_k;
    k->mm_f[ANC_DT_F32] = mm_f32;
    k->mm_f[ANC_DT_F16] = mm_f16;
    k->mm_f[ANC_DT_BF16] = mm_bf16;
    k->mm_q8[ANC_DT_Q4_0] = mm_q4_0;
    k->mm_q8[ANC_DT_Q4_1] = mm_q4_1;
    k->mm_q8[ANC_DT_Q5_0] = mm_q5_0;
    k->mm_q8[ANC_DT_Q5_1] = mm_q5_1;
    k->mm_q8[ANC_DT_Q8_0] = mm_q8_0;
    k->mm_q8[ANC_DT_Q4_K] = mm_q4_k;
    k->mm_q8[ANC_DT_Q5_K] = mm_q5_k;
    k->mm_q8[ANC_DT_Q6_K] = mm_q6_k;
}

void cpu_kernels_add_avx512vnni(struct cpu_kernels *k)
{
    k->mm_q8[ANC_DT_Q4_0] = mm_q4_0_vnni;
    k->mm_q8[ANC_DT_Q4_1] = mm_q4_1_vnni;
    k->mm_q8[ANC_DT_Q5_0] = mm_q5_0_vnni;
    k->mm_q8[ANC_DT_Q5_1] = mm_q5_1_vnni;
    k->mm_q8[ANC_DT_Q8_0] = mm_q8_0_vnni;
    k->mm_q8[ANC_DT_Q4_K] = mm_q4_k_vnni;
    k->mm_q8[ANC_DT_Q5_K] = mm_q5_k_vnni;
    k->mm_q8[ANC_DT_Q6_K] = mm_q6_k_vnni;
}

#else
void cpu_kernels_add_avx2(struct cpu_kernels *k) { (void)k; }
void cpu_kernels_add_avx512vnni(struct cpu_kernels *k) { (void)k; }
#endif
