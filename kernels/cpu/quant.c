/* quant.c — the scalar reference for the formats of quant.h: dequantisers,
 * float and integer dot products, quantisers. Written to be read and to be
 * the definition the SIMD paths are tested against. Depends on quant.h
 * (and so dtype.h) and the C library only. */
#include "quant.h"

#include <math.h>
#include <string.h>

/* The quantisers must round exactly like the reference rules they copy
 * (x·id + 8.5 rounded once per operation, no fused multiply-add). GCC gives
 * that with -std=c11 (which implies -ffp-contract=off); clang needs: */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

/* ---- small helpers ------------------------------------------------------ */

static inline float f16(uint16_t h) { return anc_f16_to_f32(h); }

/* Round half away from zero (C's roundf); v must fit an int. */
static inline int nearest(float v) { return (int)roundf(v); }

static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Half bits of v, false when v does not fit (|v| rounds to >= 65520). */
static inline bool to_f16(float v, uint16_t *out)
{
    *out = anc_f32_to_f16(v);
    return isfinite(f16(*out));
}

/* Element of largest magnitude (the first one on ties), with its sign. */
static float signed_absmax(const float *x, int n)
{
    float v = x[0], a = fabsf(x[0]);
    for (int i = 1; i < n; i++)
        if (fabsf(x[i]) > a) { a = fabsf(x[i]); v = x[i]; }
    return v;
}

static float absmax(const float *x, int n)
{
    float a = 0.0f;
    for (int i = 0; i < n; i++) a = fmaxf(a, fabsf(x[i]));
    return a;
}

/* ---- unpack / pack of the quant bits, shared by every path -------------- */

/* 32 nibbles: element i in the low nibble of qs[i], i + 16 in the high one. */
static void unpack_q4(const uint8_t qs[16], uint8_t q[32])
{
    for (int i = 0; i < 16; i++) {
        q[i] = qs[i] & 15;
        q[i + 16] = qs[i] >> 4;
    }
}

static void pack_q4(const uint8_t q[32], uint8_t qs[16])
{
    for (int i = 0; i < 16; i++) qs[i] = (uint8_t)((q[i] & 15) | (q[i + 16] & 15) << 4);
}

/* 5-bit values: nibbles as above, bit 4 of element i = bit i of qh (LE). */
static void unpack_q5(const uint8_t qh[4], const uint8_t qs[16], uint8_t q[32])
{
    unpack_q4(qs, q);
    for (int i = 0; i < 32; i++) q[i] |= (uint8_t)(((qh[i / 8] >> (i % 8)) & 1) << 4);
}

static void pack_q5(const uint8_t q[32], uint8_t qh[4], uint8_t qs[16])
{
    pack_q4(q, qs);
    memset(qh, 0, 4);
    for (int i = 0; i < 32; i++) qh[i / 8] |= (uint8_t)(((q[i] >> 4) & 1) << (i % 8));
}

/* Q4_K/Q5_K low nibbles: element 64c + i is the low nibble of qs[32c + i],
 * element 64c + 32 + i its high nibble. */
static void unpack_k4(const uint8_t qs[128], uint8_t q[QUANT_QK_K])
{
    for (int c = 0; c < 4; c++)
        for (int i = 0; i < 32; i++) {
            q[64 * c + i] = qs[32 * c + i] & 15;
            q[64 * c + 32 + i] = qs[32 * c + i] >> 4;
        }
}

static void pack_k4(const uint8_t q[QUANT_QK_K], uint8_t qs[128])
{
    for (int c = 0; c < 4; c++)
        for (int i = 0; i < 32; i++)
            qs[32 * c + i] = (uint8_t)((q[64 * c + i] & 15) | (q[64 * c + 32 + i] & 15) << 4);
}

/* Q5_K fifth bits: bit 4 of element 32j + i is bit j of qh[i]. */
static void unpack_k5(const uint8_t qh[32], const uint8_t qs[128], uint8_t q[QUANT_QK_K])
{
    unpack_k4(qs, q);
    for (int j = 0; j < 8; j++)
        for (int i = 0; i < 32; i++) q[32 * j + i] |= (uint8_t)(((qh[i] >> j) & 1) << 4);
}

static void pack_k5(const uint8_t q[QUANT_QK_K], uint8_t qh[32], uint8_t qs[128])
{
    pack_k4(q, qs);
    memset(qh, 0, 32);
    for (int j = 0; j < 8; j++)
        for (int i = 0; i < 32; i++) qh[i] |= (uint8_t)(((q[32 * j + i] >> 4) & 1) << j);
}

/* Inverse of quant_k_scale_min: eight 6-bit scales and mins into 12 bytes. */
static void pack_k_scales(const uint8_t sc[8], const uint8_t m[8], uint8_t s[12])
{
    for (int j = 0; j < 4; j++) {
        s[j] = (uint8_t)((sc[j] & 63) | (sc[j + 4] >> 4) << 6);
        s[j + 4] = (uint8_t)((m[j] & 63) | (m[j + 4] >> 4) << 6);
        s[j + 8] = (uint8_t)((sc[j + 4] & 15) | (m[j + 4] & 15) << 4);
    }
}

/* Q6_K: element e = 128h + r takes its low 4 bits from nibble r/64 of
 * ql[64h + r%64] and its high 2 bits from bits 2(r/32) of qh[32h + r%32]. */
static void unpack_k6(const uint8_t ql[128], const uint8_t qh[64], uint8_t q[QUANT_QK_K])
{
    for (int e = 0; e < QUANT_QK_K; e++) {
        int h = e / 128, r = e % 128;
        int lo = (ql[64 * h + r % 64] >> (4 * (r / 64))) & 15;
        int hi = (qh[32 * h + r % 32] >> (2 * (r / 32))) & 3;
        q[e] = (uint8_t)(lo | hi << 4);
    }
}

static void pack_k6(const uint8_t q[QUANT_QK_K], uint8_t ql[128], uint8_t qh[64])
{
    memset(ql, 0, 128);
    memset(qh, 0, 64);
    for (int e = 0; e < QUANT_QK_K; e++) {
        int h = e / 128, r = e % 128;
        ql[64 * h + r % 64] |= (uint8_t)((q[e] & 15) << (4 * (r / 64)));
        qh[32 * h + r % 32] |= (uint8_t)(((q[e] >> 4) & 3) << (2 * (r / 32)));
    }
}

/* ---- dequantisers: nb blocks from src into y ----------------------------- */
/* Each evaluates the format's formula in float in the order of quant.h; the
 * products involved are exact (few significant bits), so the only rounding
 * is the final addition of a minimum, and the result does not depend on
 * whether the compiler fuses it. */

static void dequant_f32(const void *src, float *y, int64_t nb)
{
    memcpy(y, src, (size_t)nb * sizeof(float));
}

static void dequant_f16(const void *src, float *y, int64_t nb)
{
    const uint16_t *h = src;
    for (int64_t i = 0; i < nb; i++) y[i] = f16(h[i]);
}

static void dequant_bf16(const void *src, float *y, int64_t nb)
{
    const uint16_t *h = src;
    for (int64_t i = 0; i < nb; i++) y[i] = anc_bf16_to_f32(h[i]);
}

static void dequant_q4_0(const void *src, float *y, int64_t nb)
{
    const struct block_q4_0 *b = src;
    for (int64_t k = 0; k < nb; k++, b++, y += QUANT_QK) {
        uint8_t q[32];
        unpack_q4(b->qs, q);
        float d = f16(b->d);
        for (int i = 0; i < 32; i++) y[i] = d * (float)(q[i] - 8);
    }
}

static void dequant_q4_1(const void *src, float *y, int64_t nb)
{
    const struct block_q4_1 *b = src;
    for (int64_t k = 0; k < nb; k++, b++, y += QUANT_QK) {
        uint8_t q[32];
        unpack_q4(b->qs, q);
        float d = f16(b->d), m = f16(b->m);
        for (int i = 0; i < 32; i++) y[i] = d * (float)q[i] + m;
    }
}

static void dequant_q5_0(const void *src, float *y, int64_t nb)
{
    const struct block_q5_0 *b = src;
    for (int64_t k = 0; k < nb; k++, b++, y += QUANT_QK) {
        uint8_t q[32];
        unpack_q5(b->qh, b->qs, q);
        float d = f16(b->d);
        for (int i = 0; i < 32; i++) y[i] = d * (float)(q[i] - 16);
    }
}

static void dequant_q5_1(const void *src, float *y, int64_t nb)
{
    const struct block_q5_1 *b = src;
    for (int64_t k = 0; k < nb; k++, b++, y += QUANT_QK) {
        uint8_t q[32];
        unpack_q5(b->qh, b->qs, q);
        float d = f16(b->d), m = f16(b->m);
        for (int i = 0; i < 32; i++) y[i] = d * (float)q[i] + m;
    }
}

static void dequant_q8_0(const void *src, float *y, int64_t nb)
{
    const struct block_q8_0 *b = src;
    for (int64_t k = 0; k < nb; k++, b++, y += QUANT_QK) {
        float d = f16(b->d);
        for (int i = 0; i < 32; i++) y[i] = d * (float)b->qs[i];
    }
}

static void dequant_q8_1(const void *src, float *y, int64_t nb)
{
    const struct block_q8_1 *b = src;
    for (int64_t k = 0; k < nb; k++, b++, y += QUANT_QK) {
        float d = f16(b->d);
        for (int i = 0; i < 32; i++) y[i] = d * (float)b->qs[i];
    }
}

static void dequant_q4_k(const void *src, float *y, int64_t nb)
{
    const struct block_q4_k *b = src;
    for (int64_t k = 0; k < nb; k++, b++, y += QUANT_QK_K) {
        uint8_t q[QUANT_QK_K];
        unpack_k4(b->qs, q);
        float d = f16(b->d), dmin = f16(b->dmin);
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            quant_k_scale_min(b->scales, j, &sc, &m);
            float dl = d * (float)sc, ml = dmin * (float)m;
            for (int i = 0; i < 32; i++) y[32 * j + i] = dl * (float)q[32 * j + i] - ml;
        }
    }
}

static void dequant_q5_k(const void *src, float *y, int64_t nb)
{
    const struct block_q5_k *b = src;
    for (int64_t k = 0; k < nb; k++, b++, y += QUANT_QK_K) {
        uint8_t q[QUANT_QK_K];
        unpack_k5(b->qh, b->qs, q);
        float d = f16(b->d), dmin = f16(b->dmin);
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            quant_k_scale_min(b->scales, j, &sc, &m);
            float dl = d * (float)sc, ml = dmin * (float)m;
            for (int i = 0; i < 32; i++) y[32 * j + i] = dl * (float)q[32 * j + i] - ml;
        }
    }
}

static void dequant_q6_k(const void *src, float *y, int64_t nb)
{
    const struct block_q6_k *b = src;
    for (int64_t k = 0; k < nb; k++, b++, y += QUANT_QK_K) {
        uint8_t q[QUANT_QK_K];
        unpack_k6(b->ql, b->qh, q);
        float d = f16(b->d);
        for (int e = 0; e < QUANT_QK_K; e++) y[e] = (d * (float)b->scales[e / 16]) * (float)(q[e] - 32);
    }
}

static void dequant_q8_k(const void *src, float *y, int64_t nb)
{
    const struct block_q8_k *b = src;
    for (int64_t k = 0; k < nb; k++, b++, y += QUANT_QK_K)
        for (int i = 0; i < QUANT_QK_K; i++) y[i] = b->d * (float)b->qs[i];
}

/* ---- quantisers: nb blocks from x into dst ------------------------------ */
/* Inputs are finite (checked by quant_quantize_row). */

static bool quantize_f32(const float *x, void *dst, int64_t nb)
{
    memcpy(dst, x, (size_t)nb * sizeof(float));
    return true;
}

static bool quantize_f16(const float *x, void *dst, int64_t nb)
{
    uint16_t *h = dst;
    for (int64_t i = 0; i < nb; i++) h[i] = anc_f32_to_f16(x[i]);
    return true;
}

static bool quantize_bf16(const float *x, void *dst, int64_t nb)
{
    uint16_t *h = dst;
    for (int64_t i = 0; i < nb; i++) h[i] = anc_f32_to_bf16(x[i]);
    return true;
}

/* Q4_0 and Q5_0: the element of largest magnitude maps to q = 0 (−8·d or
 * −16·d), which gains one level over a symmetric range. */
static bool quantize_q4_0(const float *x, void *dst, int64_t nb)
{
    struct block_q4_0 *b = dst;
    for (int64_t k = 0; k < nb; k++, b++, x += QUANT_QK) {
        float d = signed_absmax(x, QUANT_QK) / -8.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        if (!to_f16(d, &b->d)) return false;
        uint8_t q[32];
        for (int i = 0; i < 32; i++) q[i] = (uint8_t)clampi((int)(x[i] * id + 8.5f), 0, 15);
        pack_q4(q, b->qs);
    }
    return true;
}

static bool quantize_q5_0(const float *x, void *dst, int64_t nb)
{
    struct block_q5_0 *b = dst;
    for (int64_t k = 0; k < nb; k++, b++, x += QUANT_QK) {
        float d = signed_absmax(x, QUANT_QK) / -16.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        if (!to_f16(d, &b->d)) return false;
        uint8_t q[32];
        for (int i = 0; i < 32; i++) q[i] = (uint8_t)clampi((int)(x[i] * id + 16.5f), 0, 31);
        pack_q5(q, b->qh, b->qs);
    }
    return true;
}

/* Q4_1 and Q5_1: the block's [min, max] split into 15 (31) steps. */
static void minmax(const float *x, int n, float *lo, float *hi)
{
    *lo = *hi = x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < *lo) *lo = x[i];
        if (x[i] > *hi) *hi = x[i];
    }
}

static bool quantize_q4_1(const float *x, void *dst, int64_t nb)
{
    struct block_q4_1 *b = dst;
    for (int64_t k = 0; k < nb; k++, b++, x += QUANT_QK) {
        float lo, hi;
        minmax(x, QUANT_QK, &lo, &hi);
        float d = (hi - lo) / 15.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        if (!to_f16(d, &b->d) || !to_f16(lo, &b->m)) return false;
        uint8_t q[32];
        for (int i = 0; i < 32; i++) q[i] = (uint8_t)clampi((int)((x[i] - lo) * id + 0.5f), 0, 15);
        pack_q4(q, b->qs);
    }
    return true;
}

static bool quantize_q5_1(const float *x, void *dst, int64_t nb)
{
    struct block_q5_1 *b = dst;
    for (int64_t k = 0; k < nb; k++, b++, x += QUANT_QK) {
        float lo, hi;
        minmax(x, QUANT_QK, &lo, &hi);
        float d = (hi - lo) / 31.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        if (!to_f16(d, &b->d) || !to_f16(lo, &b->m)) return false;
        uint8_t q[32];
        for (int i = 0; i < 32; i++) q[i] = (uint8_t)clampi((int)((x[i] - lo) * id + 0.5f), 0, 31);
        pack_q5(q, b->qh, b->qs);
    }
    return true;
}

/* Q8_0 and Q8_1: symmetric, d = max|x| / 127, round half away from zero. */
static bool quantize_q8_0(const float *x, void *dst, int64_t nb)
{
    struct block_q8_0 *b = dst;
    for (int64_t k = 0; k < nb; k++, b++, x += QUANT_QK) {
        float d = absmax(x, QUANT_QK) / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        if (!to_f16(d, &b->d)) return false;
        for (int i = 0; i < 32; i++) b->qs[i] = (int8_t)clampi(nearest(x[i] * id), -127, 127);
    }
    return true;
}

static bool quantize_q8_1(const float *x, void *dst, int64_t nb)
{
    struct block_q8_1 *b = dst;
    for (int64_t k = 0; k < nb; k++, b++, x += QUANT_QK) {
        float d = absmax(x, QUANT_QK) / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        if (!to_f16(d, &b->d)) return false;
        int sum = 0;
        for (int i = 0; i < 32; i++) {
            b->qs[i] = (int8_t)clampi(nearest(x[i] * id), -127, 127);
            sum += b->qs[i];
        }
        if (!to_f16(f16(b->d) * (float)sum, &b->s)) return false;
    }
    return true;
}

/* Q4_K and Q5_K: each sub-block of 32 covers [lo, hi] with lo = min(0, min x)
 * (so the stored min m ≥ 0), scale (hi − lo)/nmax. Scales and mins are then
 * rounded to 6 bits against the f16-rounded super-block factors d and dmin
 * (max over sub-blocks / 63), and the quants to nearest against the final
 * d·sc and dmin·m, clamped to 0..nmax. */
static bool fit_k_minmax(const float *x, int nmax, uint16_t *d16, uint16_t *dmin16,
                         uint8_t scales[12], uint8_t q[QUANT_QK_K])
{
    float scale[8], offs[8], max_scale = 0.0f, max_offs = 0.0f;
    for (int j = 0; j < 8; j++) {
        float lo, hi;
        minmax(x + 32 * j, 32, &lo, &hi);
        if (lo > 0.0f) lo = 0.0f;
        scale[j] = (hi - lo) / (float)nmax;
        offs[j] = -lo;
        max_scale = fmaxf(max_scale, scale[j]);
        max_offs = fmaxf(max_offs, offs[j]);
    }
    if (!to_f16(max_scale / 63.0f, d16) || !to_f16(max_offs / 63.0f, dmin16)) return false;
    float d = f16(*d16), dmin = f16(*dmin16);
    uint8_t sc[8], m[8];
    for (int j = 0; j < 8; j++) {
        /* a sub-block with any spread keeps at least one step */
        sc[j] = d > 0.0f ? (uint8_t)clampi(nearest(scale[j] / d), scale[j] > 0.0f, 63) : 0;
        m[j] = dmin > 0.0f ? (uint8_t)clampi(nearest(offs[j] / dmin), 0, 63) : 0;
        float ds = d * (float)sc[j], dm = dmin * (float)m[j];
        for (int i = 0; i < 32; i++) {
            float v = x[32 * j + i];
            q[32 * j + i] = ds > 0.0f ? (uint8_t)clampi(nearest((v + dm) / ds), 0, nmax) : 0;
        }
    }
    pack_k_scales(sc, m, scales);
    return true;
}

static bool quantize_q4_k(const float *x, void *dst, int64_t nb)
{
    struct block_q4_k *b = dst;
    for (int64_t k = 0; k < nb; k++, b++, x += QUANT_QK_K) {
        uint8_t q[QUANT_QK_K];
        if (!fit_k_minmax(x, 15, &b->d, &b->dmin, b->scales, q)) return false;
        pack_k4(q, b->qs);
    }
    return true;
}

static bool quantize_q5_k(const float *x, void *dst, int64_t nb)
{
    struct block_q5_k *b = dst;
    for (int64_t k = 0; k < nb; k++, b++, x += QUANT_QK_K) {
        uint8_t q[QUANT_QK_K];
        if (!fit_k_minmax(x, 31, &b->d, &b->dmin, b->scales, q)) return false;
        pack_k5(q, b->qh, b->qs);
    }
    return true;
}

/* Q6_K: each sub-block of 16 maps its element of largest magnitude v to
 * q − 32 = −32 (signed scale v/−32, as Q4_0 does); the sixteen scales are
 * rounded to int8 against d = max|scale|/127 (f16), the quants to nearest
 * against d·sc, clamped to 0..63. */
static bool quantize_q6_k(const float *x, void *dst, int64_t nb)
{
    struct block_q6_k *b = dst;
    for (int64_t k = 0; k < nb; k++, b++, x += QUANT_QK_K) {
        float s[16], max_s = 0.0f;
        for (int j = 0; j < 16; j++) {
            s[j] = signed_absmax(x + 16 * j, 16) / -32.0f;
            max_s = fmaxf(max_s, fabsf(s[j]));
        }
        if (!to_f16(max_s / 127.0f, &b->d)) return false;
        float d = f16(b->d);
        uint8_t q[QUANT_QK_K];
        for (int j = 0; j < 16; j++) {
            int sc = d > 0.0f ? clampi(nearest(s[j] / d), -128, 127) : 0;
            b->scales[j] = (int8_t)sc;
            float ds = d * (float)sc;
            for (int i = 0; i < 16; i++) {
                float v = x[16 * j + i];
                q[16 * j + i] = ds != 0.0f ? (uint8_t)clampi(nearest(v / ds) + 32, 0, 63) : 32;
            }
        }
        pack_k6(q, b->ql, b->qh);
    }
    return true;
}

static bool quantize_q8_k(const float *x, void *dst, int64_t nb)
{
    struct block_q8_k *b = dst;
    for (int64_t k = 0; k < nb; k++, b++, x += QUANT_QK_K) {
        float d = absmax(x, QUANT_QK_K) / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        b->d = d;
        for (int i = 0; i < QUANT_QK_K; i++) b->qs[i] = (int8_t)clampi(nearest(x[i] * id), -127, 127);
        for (int g = 0; g < 16; g++) {
            int sum = 0;
            for (int i = 0; i < 16; i++) sum += b->qs[16 * g + i];
            b->bsums[g] = (int16_t)sum;
        }
    }
    return true;
}

/* ---- integer dot products: one weight block with one activation block ---- */
/* Integer sums are exact (int32: at most 8·63·32·31·127 for Q5_K); the
 * float scaling happens once per block (per sub-block sums for mins). */

static float dot_q4_0_q8_0(const void *wb, const void *xb)
{
    const struct block_q4_0 *w = wb;
    const struct block_q8_0 *x = xb;
    uint8_t q[32];
    unpack_q4(w->qs, q);
    int32_t sum = 0;
    for (int i = 0; i < 32; i++) sum += (q[i] - 8) * x->qs[i];
    return f16(w->d) * f16(x->d) * (float)sum;
}

static float dot_q5_0_q8_0(const void *wb, const void *xb)
{
    const struct block_q5_0 *w = wb;
    const struct block_q8_0 *x = xb;
    uint8_t q[32];
    unpack_q5(w->qh, w->qs, q);
    int32_t sum = 0;
    for (int i = 0; i < 32; i++) sum += (q[i] - 16) * x->qs[i];
    return f16(w->d) * f16(x->d) * (float)sum;
}

static float dot_q8_0_q8_0(const void *wb, const void *xb)
{
    const struct block_q8_0 *w = wb;
    const struct block_q8_0 *x = xb;
    int32_t sum = 0;
    for (int i = 0; i < 32; i++) sum += w->qs[i] * x->qs[i];
    return f16(w->d) * f16(x->d) * (float)sum;
}

/* Σ (d_w·q + m)·d_x·q_x = d_w·d_x·Σ q·q_x + m·s_x */
static float dot_q4_1_q8_1(const void *wb, const void *xb)
{
    const struct block_q4_1 *w = wb;
    const struct block_q8_1 *x = xb;
    uint8_t q[32];
    unpack_q4(w->qs, q);
    int32_t sum = 0;
    for (int i = 0; i < 32; i++) sum += q[i] * x->qs[i];
    return f16(w->d) * f16(x->d) * (float)sum + f16(w->m) * f16(x->s);
}

static float dot_q5_1_q8_1(const void *wb, const void *xb)
{
    const struct block_q5_1 *w = wb;
    const struct block_q8_1 *x = xb;
    uint8_t q[32];
    unpack_q5(w->qh, w->qs, q);
    int32_t sum = 0;
    for (int i = 0; i < 32; i++) sum += q[i] * x->qs[i];
    return f16(w->d) * f16(x->d) * (float)sum + f16(w->m) * f16(x->s);
}

/* Q4_K/Q5_K: d_x·(d·Σ_j sc_j·Σ_i q·q_x − dmin·Σ_j m_j·(bsum_2j + bsum_2j+1)) */
static float dot_k_min_q8_k(const uint8_t q[QUANT_QK_K], uint16_t d, uint16_t dmin,
                            const uint8_t scales[12], const struct block_q8_k *x)
{
    int32_t sumi = 0, summ = 0;
    for (int j = 0; j < 8; j++) {
        uint8_t sc, m;
        quant_k_scale_min(scales, j, &sc, &m);
        int32_t s = 0;
        for (int i = 0; i < 32; i++) s += q[32 * j + i] * x->qs[32 * j + i];
        sumi += sc * s;
        summ += m * (x->bsums[2 * j] + x->bsums[2 * j + 1]);
    }
    return x->d * (f16(d) * (float)sumi - f16(dmin) * (float)summ);
}

static float dot_q4_k_q8_k(const void *wb, const void *xb)
{
    const struct block_q4_k *w = wb;
    uint8_t q[QUANT_QK_K];
    unpack_k4(w->qs, q);
    return dot_k_min_q8_k(q, w->d, w->dmin, w->scales, xb);
}

static float dot_q5_k_q8_k(const void *wb, const void *xb)
{
    const struct block_q5_k *w = wb;
    uint8_t q[QUANT_QK_K];
    unpack_k5(w->qh, w->qs, q);
    return dot_k_min_q8_k(q, w->d, w->dmin, w->scales, xb);
}

static float dot_q6_k_q8_k(const void *wb, const void *xb)
{
    const struct block_q6_k *w = wb;
    const struct block_q8_k *x = xb;
    uint8_t q[QUANT_QK_K];
    unpack_k6(w->ql, w->qh, q);
    int32_t sumi = 0;
    for (int j = 0; j < 16; j++) {
        int32_t s = 0;
        for (int i = 0; i < 16; i++) s += (q[16 * j + i] - 32) * x->qs[16 * j + i];
        sumi += w->scales[j] * s;
    }
    return f16(w->d) * x->d * (float)sumi;
}

/* ---- the table of formats ----------------------------------------------- */

struct quant_format {
    uint32_t block_elems;
    uint32_t block_bytes;
    bool weight;            /* a weight type (quant_supported) */
    uint32_t vec_dot_type;  /* activation format of quant_dot_q8 */
    void (*dequant)(const void *src, float *y, int64_t nb);
    bool (*quantize)(const float *x, void *dst, int64_t nb);
    float (*dot_q8)(const void *wblock, const void *xblock); /* NULL: float */
};

#define FMT(T, blk, w, vdt, name, dot)                                         \
    [T] = {(blk), sizeof(struct block_##name), (w), (vdt), dequant_##name,     \
           quantize_##name, (dot)}

static const struct quant_format formats[ANC_DT_COUNT_] = {
    [ANC_DT_F32] = {1, 4, true, ANC_DT_F32, dequant_f32, quantize_f32, NULL},
    [ANC_DT_F16] = {1, 2, true, ANC_DT_F32, dequant_f16, quantize_f16, NULL},
    [ANC_DT_BF16] = {1, 2, true, ANC_DT_F32, dequant_bf16, quantize_bf16, NULL},
    FMT(ANC_DT_Q4_0, QUANT_QK, true, ANC_DT_Q8_0, q4_0, dot_q4_0_q8_0),
    FMT(ANC_DT_Q4_1, QUANT_QK, true, ANC_DT_Q8_1, q4_1, dot_q4_1_q8_1),
    FMT(ANC_DT_Q5_0, QUANT_QK, true, ANC_DT_Q8_0, q5_0, dot_q5_0_q8_0),
    FMT(ANC_DT_Q5_1, QUANT_QK, true, ANC_DT_Q8_1, q5_1, dot_q5_1_q8_1),
    FMT(ANC_DT_Q8_0, QUANT_QK, true, ANC_DT_Q8_0, q8_0, dot_q8_0_q8_0),
    FMT(ANC_DT_Q8_1, QUANT_QK, false, QUANT_NO_TYPE, q8_1, NULL),
    FMT(ANC_DT_Q4_K, QUANT_QK_K, true, ANC_DT_Q8_K, q4_k, dot_q4_k_q8_k),
    FMT(ANC_DT_Q5_K, QUANT_QK_K, true, ANC_DT_Q8_K, q5_k, dot_q5_k_q8_k),
    FMT(ANC_DT_Q6_K, QUANT_QK_K, true, ANC_DT_Q8_K, q6_k, dot_q6_k_q8_k),
    FMT(ANC_DT_Q8_K, QUANT_QK_K, false, QUANT_NO_TYPE, q8_k, NULL),
};

/* The format of type, or NULL when unknown or when n is not a whole number
 * of blocks (or negative). */
static const struct quant_format *format_for(uint32_t type, int64_t n)
{
    if (type >= ANC_DT_COUNT_ || !formats[type].dequant) return NULL;
    const struct quant_format *f = &formats[type];
    if (n < 0 || n % f->block_elems != 0) return NULL;
    return f;
}

/* ---- public functions --------------------------------------------------- */

bool quant_supported(uint32_t type)
{
    return type < ANC_DT_COUNT_ && formats[type].weight;
}

uint32_t quant_vec_dot_type(uint32_t wtype)
{
    return quant_supported(wtype) ? formats[wtype].vec_dot_type : QUANT_NO_TYPE;
}

void quant_dequant_row(uint32_t type, const void *src, float *dst, int64_t n)
{
    const struct quant_format *f = format_for(type, n);
    if (!f) {
        for (int64_t i = 0; i < n; i++) dst[i] = NAN;
        return;
    }
    f->dequant(src, dst, n / f->block_elems);
}

float quant_dot_row(uint32_t type, const void *row, const float *x, int64_t n)
{
    const struct quant_format *f = format_for(type, n);
    if (!f || !f->weight) return NAN;
    /* blocks of the format, or chunks of 32 for the float types */
    int64_t chunk = f->block_elems > 1 ? f->block_elems : QUANT_QK;
    const uint8_t *src = row;
    float w[QUANT_QK_K];
    float sum = 0.0f;
    for (int64_t i0 = 0; i0 < n; i0 += chunk) {
        int64_t len = n - i0 < chunk ? n - i0 : chunk;
        f->dequant(src + i0 / f->block_elems * f->block_bytes, w, len / f->block_elems);
        float acc = 0.0f;
        for (int64_t i = 0; i < len; i++) acc += w[i] * x[i0 + i];
        sum += acc;
    }
    return sum;
}

bool quant_quantize_row(uint32_t type, const float *src, void *dst, int64_t n)
{
    const struct quant_format *f = format_for(type, n);
    if (!f) return false;
    bool ok = true;
    if (f->block_elems > 1) /* float types carry inf/nan through; blocks cannot */
        for (int64_t i = 0; i < n && ok; i++) ok = isfinite(src[i]);
    if (ok) ok = f->quantize(src, dst, n / f->block_elems);
    /* All-ones bytes make every block's f16/f32 scale a NaN: a row that could
     * not be quantised poisons whatever reads it instead of passing as data. */
    if (!ok) memset(dst, 0xff, (size_t)(n / f->block_elems) * f->block_bytes);
    return ok;
}

float quant_dot_q8(uint32_t wtype, const void *wrow, const void *xq, int64_t n)
{
    const struct quant_format *f = format_for(wtype, n);
    if (!f || !f->weight) return NAN;
    if (!f->dot_q8) return quant_dot_row(wtype, wrow, xq, n); /* float weights */
    const struct quant_format *xf = &formats[f->vec_dot_type];
    const uint8_t *w = wrow, *x = xq;
    float sum = 0.0f;
    for (int64_t k = 0; k < n / f->block_elems; k++)
        sum += f->dot_q8(w + k * f->block_bytes, x + k * xf->block_bytes);
    return sum;
}
