/* quant.h — block layouts of the quantised tensor formats (as stored in GGUF
 * files) and the scalar reference (de)quantisers and dot products over them.
 * Depends only on dtype.h; knows nothing of models, backends or threads. */
#ifndef ANC_QUANT_H
#define ANC_QUANT_H

#include "dtype.h"

#include <stdbool.h>
#include <stdint.h>

/* All multi-byte fields are little-endian in files; the structs below are
 * read in place, so a big-endian host would need byte swapping (none is
 * supported today). "f16" fields hold IEEE half bits (anc_f16_to_f32). */

#define QUANT_QK 32   /* elements per block of the "legacy" formats */
#define QUANT_QK_K 256 /* elements per super-block of the K-quants */

/* ---- legacy formats: 32 elements per block ----------------------------- */

/* Q4_0: 32 elements in 18 bytes. qs[i] holds element i in its low nibble
 * and element i + 16 in its high nibble; x = (q − 8)·d, q in 0..15. */
struct block_q4_0 {
    uint16_t d;      /* f16 scale */
    uint8_t qs[16];  /* 4-bit quants */
};
_Static_assert(sizeof(struct block_q4_0) == 18, "Q4_0 block is 18 bytes");

/* Q4_1: 32 elements in 20 bytes; nibbles as Q4_0; x = q·d + m. */
struct block_q4_1 {
    uint16_t d;      /* f16 scale */
    uint16_t m;      /* f16 minimum (the value of q = 0) */
    uint8_t qs[16];  /* 4-bit quants */
};
_Static_assert(sizeof(struct block_q4_1) == 20, "Q4_1 block is 20 bytes");

/* Q5_0: 32 elements in 22 bytes. The low four bits of element i are in qs
 * as for Q4_0; its fifth bit is bit i of the little-endian 32-bit word qh.
 * x = (q − 16)·d, q in 0..31. */
struct block_q5_0 {
    uint16_t d;      /* f16 scale */
    uint8_t qh[4];   /* bit i (of qh[i/8], bit i%8) = bit 4 of element i */
    uint8_t qs[16];  /* low 4 bits, nibbles as Q4_0 */
};
_Static_assert(sizeof(struct block_q5_0) == 22, "Q5_0 block is 22 bytes");

/* Q5_1: 32 elements in 24 bytes; bits as Q5_0; x = q·d + m. */
struct block_q5_1 {
    uint16_t d;      /* f16 scale */
    uint16_t m;      /* f16 minimum */
    uint8_t qh[4];   /* fifth bits */
    uint8_t qs[16];  /* low 4 bits */
};
_Static_assert(sizeof(struct block_q5_1) == 24, "Q5_1 block is 24 bytes");

/* Q8_0: 32 elements in 34 bytes; x = q·d. Weight format and the activation
 * format paired with Q4_0, Q5_0 and Q8_0 weights. */
struct block_q8_0 {
    uint16_t d;      /* f16 scale */
    int8_t qs[32];   /* quants, element i in qs[i] */
};
_Static_assert(sizeof(struct block_q8_0) == 34, "Q8_0 block is 34 bytes");

/* Q8_1: 32 elements in 36 bytes; x = q·d. Activation format paired with
 * Q4_1 and Q5_1 weights: s lets the weights' minimum m be applied once per
 * block (Σ (q_w·d_w + m)·x = d_w·d·Σ q_w·q + m·s). */
struct block_q8_1 {
    uint16_t d;      /* f16 scale */
    uint16_t s;      /* f16 of d·Σ qs[i] (d as stored, i.e. already rounded) */
    int8_t qs[32];   /* quants */
};
_Static_assert(sizeof(struct block_q8_1) == 36, "Q8_1 block is 36 bytes");

/* ---- K-quants: 256 elements per super-block ---------------------------- */

/* The 12 scale bytes of Q4_K/Q5_K pack eight 6-bit scales sc[j] and eight
 * 6-bit mins m[j] (sub-block j = elements 32j..32j+31). For j < 4:
 *   sc[j] = s[j] & 63,  m[j] = s[j+4] & 63;
 * for j >= 4 the low four bits sit in s[j+4] (scale low nibble, min high
 * nibble) and the top two bits in bits 6..7 of s[j−4] (scale) and s[j] (min):
 *   sc[j] = (s[j+4] & 15) | (s[j−4] >> 6) << 4,
 *   m[j]  = (s[j+4] >> 4) | (s[j]   >> 6) << 4. */
static inline void quant_k_scale_min(const uint8_t s[12], int j, uint8_t *sc, uint8_t *m)
{
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (uint8_t)((s[j + 4] & 15) | ((s[j - 4] >> 6) << 4));
        *m = (uint8_t)((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
    }
}

/* Q4_K: 256 elements in 144 bytes, eight sub-blocks of 32.
 * x = (d·sc[j])·q − dmin·m[j], q in 0..15 (scales: quant_k_scale_min).
 * qs holds four 32-byte chunks; chunk c has sub-block 2c in its low nibbles
 * and sub-block 2c+1 in its high nibbles: element 64c + i is the low nibble
 * of qs[32c + i], element 64c + 32 + i its high nibble (i < 32). */
struct block_q4_k {
    uint16_t d;          /* f16 super-block scale of the 6-bit scales */
    uint16_t dmin;       /* f16 super-block scale of the 6-bit mins */
    uint8_t scales[12];  /* packed 6-bit sc[8] and m[8] */
    uint8_t qs[128];     /* 4-bit quants */
};
_Static_assert(sizeof(struct block_q4_k) == 144, "Q4_K block is 144 bytes");

/* Q5_K: 256 elements in 176 bytes. As Q4_K with a fifth bit: bit 4 of
 * element 32j + i (sub-block j) is bit j of qh[i]. q in 0..31. */
struct block_q5_k {
    uint16_t d;          /* f16 scale of the scales */
    uint16_t dmin;       /* f16 scale of the mins */
    uint8_t scales[12];  /* packed 6-bit sc[8] and m[8], as Q4_K */
    uint8_t qh[32];      /* fifth bits */
    uint8_t qs[128];     /* low 4 bits, laid out as Q4_K */
};
_Static_assert(sizeof(struct block_q5_k) == 176, "Q5_K block is 176 bytes");

/* Q6_K: 256 elements in 210 bytes, sixteen sub-blocks of 16 with signed
 * 8-bit scales: x = (d·scales[e/16])·(q − 32), q in 0..63.
 * Element e = 128h + r (h = 0, 1; r < 128):
 *   low 4 bits:  nibble (r / 64) of ql[64h + r % 64] (0 = low nibble);
 *   high 2 bits: bits 2·(r / 32)..+1 of qh[32h + r % 32]. */
struct block_q6_k {
    uint8_t ql[128];     /* low 4 bits */
    uint8_t qh[64];      /* high 2 bits */
    int8_t scales[16];   /* signed sub-block scales */
    uint16_t d;          /* f16 super-block scale */
};
_Static_assert(sizeof(struct block_q6_k) == 210, "Q6_K block is 210 bytes");

/* Q8_K: 256 elements in 292 bytes; x = q·d. Activation format paired with
 * all K-quant weights; bsums (sums of 16 consecutive quants) let the mins of
 * Q4_K/Q5_K be applied per sub-block without touching the quants. */
struct block_q8_k {
    float d;             /* f32 scale */
    int8_t qs[256];      /* quants */
    int16_t bsums[16];   /* bsums[g] = Σ qs[16g .. 16g+15] */
};
_Static_assert(sizeof(struct block_q8_k) == 292, "Q8_K block is 292 bytes");

/* ---- functions ---------------------------------------------------------- */

/* Weight types with a reference dequantiser, dot product and quantiser:
 * F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K. The
 * activation formats Q8_1 and Q8_K are not weight types (false here) but
 * quant_quantize_row and quant_dequant_row accept them, as they accept Q8_0. */
bool quant_supported(uint32_t type);

/* The activation format an integer dot product pairs with weight type wtype:
 *   Q4_0, Q5_0, Q8_0  -> Q8_0
 *   Q4_1, Q5_1        -> Q8_1
 *   Q4_K, Q5_K, Q6_K  -> Q8_K
 *   F32, F16, BF16    -> F32 (activations stay float)
 * and QUANT_NO_TYPE for anything else. */
#define QUANT_NO_TYPE UINT32_MAX
uint32_t quant_vec_dot_type(uint32_t wtype);

/* dst[0..n) = the values of row src. n must be a whole number of blocks
 * (anc_dtype_row_bytes(type, n) != 0); for an unsupported type or a bad n,
 * dst is filled with NaN. Exact: every value is the format's formula
 * evaluated in float, in the order written in the layouts above. */
void quant_dequant_row(uint32_t type, const void *src, float *dst, int64_t n);

/* Σ w[i]·x[i] over a weight row of n elements, float activations.
 * Accumulation order (the definition the fast paths are tested against):
 * each block is dequantised exactly, a float accumulator sums w[i]·x[i] over
 * the block in element order, and a second float accumulator sums the block
 * results in block order. Float types use chunks of 32 elements as blocks
 * (the last chunk may be shorter). NaN for an unsupported type or bad n. */
float quant_dot_row(uint32_t type, const void *row, const float *x, int64_t n);

/* Quantise src[0..n) into dst (anc_dtype_row_bytes(type, n) bytes). Returns
 * false for a type it cannot produce or an n that is not a whole number of
 * blocks (dst untouched), and for a non-finite input or a scale that
 * overflows half precision: then every byte of dst is 0xff, which every
 * block format reads as a NaN scale, so the row dequantises to NaN and dot
 * products with it are NaN (a caller that ignores the result fails loudly).
 * Float types (F32/F16/BF16) convert inf and NaN like any value.
 * - F16/BF16: round to nearest even.
 * - Q4_0/Q5_0: d = v/−8 (−16) where v is the first element of largest |x|,
 *   q = min(15 (31), trunc(x/d + 8.5 (16.5))); Q4_1/Q5_1: d = (max−min)/15
 *   (31), m = min, q = min(15 (31), trunc((x−min)/d + 0.5)); Q8_0/Q8_1:
 *   d = max|x|/127, q = round-half-away(x/d). These are the rules of the
 *   ggml reference quantisers, and the output equals the gguf Python
 *   package's byte for byte (tests/test_quant.c checks it). "x/d" is
 *   computed as x·(1/d) in float.
 * - Q4_K/Q5_K/Q6_K: a simple min/max quantiser (per sub-block range, 6-bit or
 *   8-bit scales rounded to nearest against the rounded super-block scale,
 *   quants rounded to nearest against the final scales). Not llama.cpp's
 *   search; round-trip bounds are stated in tests/test_quant.c.
 * - Q8_K: d = max|x|/127 as f32, q = round-half-away(x/d), bsums filled. */
bool quant_quantize_row(uint32_t type, const float *src, void *dst, int64_t n);

/* Σ w[i]·x[i] where x is given quantised as xq, in the format
 * quant_vec_dot_type(wtype) (for float weights xq is a float row and this is
 * quant_dot_row). Integer products per block (int32), scaled in float per
 * block and summed in block order in float. NaN for an unsupported pairing. */
float quant_dot_q8(uint32_t wtype, const void *wrow, const void *xq, int64_t n);

#endif
