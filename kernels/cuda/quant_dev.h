/* quant_dev.h — the per-block math of the CUDA weight kernels, shared by the
 * device code (kernels/cuda/kernels_quant.cu) and a CPU test that checks it
 * against the scalar reference of kernels/cpu/quant.c
 * (tests/test_cuda_dev_quant.c):
 *   - IEEE half / bfloat16 bits -> float by bit manipulation (exact for
 *     every bit pattern, no intrinsics, no dependence on denormal modes);
 *   - the byte layout of every weight block format the engine computes with
 *     (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K);
 *   - decoding of one "group" of ANC_QD_GROUP consecutive elements of a row,
 *     bit-identical to quant_dequant_row, and of single elements;
 *   - the share of one thread of the matrix-vector kernel (which groups of
 *     which rows it multiplies with which activations) and of the row
 *     decoding kernel (which group of which row it writes where).
 * Compiles as C99/C11 (gcc) and as CUDA C++ (nvcc). Depends only on
 * dtype.h (for the type ids) and the C library headers: never on quant.h
 * (whose C11 static assertions nvcc's C++ cannot read), the CUDA runtime,
 * backend.h or core/. No model facts: the constants below are facts of the
 * GGUF block formats or sizes of the kernels' work split.
 *
 * Rows: any length `cols` in 1..ANC_QD_MAX_COLS that is a whole number of
 * blocks (anc_qd_cols_ok), so any length for F32/F16/BF16. A row is cut
 * into groups of 8 elements; a float row whose length is not a multiple of
 * 8 ends in a partial group of cols % 8 elements (anc_qd_tail_elems),
 * decoded element by element. Quantised rows (whole blocks of 32 or 256)
 * never have one.
 *
 * Byte order and alignment: blocks are little-endian (as in GGUF files).
 * The host reads multi-byte fields byte by byte; the device (little-endian)
 * reads them with plain 16/32-bit loads, which need the row pointer aligned
 * to anc_qd_row_align(type): 4 bytes for F32, 2 for every other format
 * (their fields are read as 16-bit words or bytes at even offsets, and
 * their blocks have an even size). So the rows of an F16/BF16 matrix with
 * an odd row length, which start only 2-byte aligned, are fine. Float rows
 * are read with 16-byte vector loads wherever the group's address happens
 * to be 16-byte aligned (the common case), with plain loads otherwise.
 * A host build may define ANC_QD_LOAD_HOOK(p, bytes) before including this
 * header to see every plain multi-byte load the device would make (the test
 * checks their alignment with it). */
#ifndef ANC_QUANT_DEV_H
#define ANC_QUANT_DEV_H

#include <stdint.h>
#include <string.h>

#include "dtype.h"

#ifdef __CUDACC__
#define ANC_HD_QUANT __host__ __device__ __forceinline__
#else
#define ANC_HD_QUANT static inline
#endif
/* Loops over the 8 elements of a group, the rows and the tokens have
 * compile-time bounds: unrolled on the device, so their arrays live in
 * registers. (Only the device pass knows the pragma.) */
#ifdef __CUDA_ARCH__
#define ANC_QD_UNROLL _Pragma("unroll")
#define ANC_QD_UNROLL_2 _Pragma("unroll 2")
#else
#define ANC_QD_UNROLL
#define ANC_QD_UNROLL_2
#endif
/* Test hook (host only): sees the address and size of every plain 16/32-bit
 * load the device makes. */
#ifndef ANC_QD_LOAD_HOOK
#define ANC_QD_LOAD_HOOK(p, bytes) ((void)0)
#endif

/* ---- work split of the kernels (sizes, not formats) -------------------- */

#define ANC_QD_GROUP 8         /* elements decoded together by one thread */
#define ANC_QD_MV_THREADS 128  /* threads of one matrix-vector block */
#define ANC_QD_MV_ROWS 4       /* weight rows per matrix-vector block */
#define ANC_QD_MV_MAX_TOK 8    /* tokens per matrix-vector call, at most */
#define ANC_QD_MAX_COLS (1 << 26) /* row length limit (far above any
                                     model's): group indices and byte
                                     offsets within a row fit int32 */

/* ---- block formats: elements and bytes per block, field offsets -------- */
/* (The test checks every number here against quant.h and dtype.c.) */

#define ANC_QD_QK 32   /* elements per block of the legacy formats */
#define ANC_QD_QK_K 256 /* elements per super-block of the K-quants */

#define ANC_QD_Q4_0_BYTES 18 /* d f16 | qs[16] */
#define ANC_QD_Q4_0_QS 2
#define ANC_QD_Q4_1_BYTES 20 /* d f16 | m f16 | qs[16] */
#define ANC_QD_Q4_1_M 2
#define ANC_QD_Q4_1_QS 4
#define ANC_QD_Q5_0_BYTES 22 /* d f16 | qh[4] | qs[16] */
#define ANC_QD_Q5_0_QH 2
#define ANC_QD_Q5_0_QS 6
#define ANC_QD_Q5_1_BYTES 24 /* d f16 | m f16 | qh[4] | qs[16] */
#define ANC_QD_Q5_1_M 2
#define ANC_QD_Q5_1_QH 4
#define ANC_QD_Q5_1_QS 8
#define ANC_QD_Q8_0_BYTES 34 /* d f16 | qs[32] int8 */
#define ANC_QD_Q8_0_QS 2
#define ANC_QD_Q4_K_BYTES 144 /* d f16 | dmin f16 | scales[12] | qs[128] */
#define ANC_QD_Q4_K_DMIN 2
#define ANC_QD_Q4_K_SCALES 4
#define ANC_QD_Q4_K_QS 16
#define ANC_QD_Q5_K_BYTES 176 /* d | dmin | scales[12] | qh[32] | qs[128] */
#define ANC_QD_Q5_K_DMIN 2
#define ANC_QD_Q5_K_SCALES 4
#define ANC_QD_Q5_K_QH 16
#define ANC_QD_Q5_K_QS 48
#define ANC_QD_Q6_K_BYTES 210 /* ql[128] | qh[64] | scales[16] int8 | d f16 */
#define ANC_QD_Q6_K_QH 128
#define ANC_QD_Q6_K_SCALES 192
#define ANC_QD_Q6_K_D 208

/* Can this header decode rows of this type? */
ANC_HD_QUANT int anc_qd_supported(uint32_t type)
{
    switch (type) {
    case ANC_DT_F32: case ANC_DT_F16: case ANC_DT_BF16:
    case ANC_DT_Q4_0: case ANC_DT_Q4_1: case ANC_DT_Q5_0: case ANC_DT_Q5_1:
    case ANC_DT_Q8_0: case ANC_DT_Q4_K: case ANC_DT_Q5_K: case ANC_DT_Q6_K:
        return 1;
    default:
        return 0;
    }
}

/* Elements per block (1 for the float types); 0 for an unsupported type. */
ANC_HD_QUANT int32_t anc_qd_block_elems(uint32_t type)
{
    switch (type) {
    case ANC_DT_F32: case ANC_DT_F16: case ANC_DT_BF16: return 1;
    case ANC_DT_Q4_0: case ANC_DT_Q4_1: case ANC_DT_Q5_0: case ANC_DT_Q5_1:
    case ANC_DT_Q8_0: return ANC_QD_QK;
    case ANC_DT_Q4_K: case ANC_DT_Q5_K: case ANC_DT_Q6_K: return ANC_QD_QK_K;
    default: return 0;
    }
}

/* Bytes per block; 0 for an unsupported type. */
ANC_HD_QUANT int32_t anc_qd_block_bytes(uint32_t type)
{
    switch (type) {
    case ANC_DT_F32: return 4;
    case ANC_DT_F16: case ANC_DT_BF16: return 2;
    case ANC_DT_Q4_0: return ANC_QD_Q4_0_BYTES;
    case ANC_DT_Q4_1: return ANC_QD_Q4_1_BYTES;
    case ANC_DT_Q5_0: return ANC_QD_Q5_0_BYTES;
    case ANC_DT_Q5_1: return ANC_QD_Q5_1_BYTES;
    case ANC_DT_Q8_0: return ANC_QD_Q8_0_BYTES;
    case ANC_DT_Q4_K: return ANC_QD_Q4_K_BYTES;
    case ANC_DT_Q5_K: return ANC_QD_Q5_K_BYTES;
    case ANC_DT_Q6_K: return ANC_QD_Q6_K_BYTES;
    default: return 0;
    }
}

/* Can the kernels handle rows of `cols` elements of this type? A whole
 * number of blocks (any length for the float types), within
 * ANC_QD_MAX_COLS. */
ANC_HD_QUANT int anc_qd_cols_ok(uint32_t type, int64_t cols)
{
    int32_t be = anc_qd_block_elems(type);
    return be > 0 && cols > 0 && cols <= ANC_QD_MAX_COLS && cols % be == 0;
}

/* Elements of the partial last group of a row: cols % 8 for the float
 * types, 0 for the quantised ones (whole blocks of 32 or 256 elements;
 * saying so lets the compiler drop the tail code from their kernels). */
ANC_HD_QUANT int anc_qd_tail_elems(uint32_t type, int64_t cols)
{
    return anc_qd_block_elems(type) == 1 ? (int)(cols % ANC_QD_GROUP) : 0;
}

/* Groups of a row, the partial last one included. */
ANC_HD_QUANT int64_t anc_qd_row_groups(int64_t cols)
{
    return (cols + ANC_QD_GROUP - 1) / ANC_QD_GROUP;
}

/* Alignment in bytes the device needs of a row (and so of a matrix) of this
 * type: that of its widest plain load (see the top of this file). */
ANC_HD_QUANT int32_t anc_qd_row_align(uint32_t type)
{
    return type == ANC_DT_F32 ? 4 : 2;
}

/* Bytes of one row of `cols` elements (cols as checked by anc_qd_cols_ok). */
ANC_HD_QUANT int64_t anc_qd_row_bytes(uint32_t type, int64_t cols)
{
    return cols / anc_qd_block_elems(type) * anc_qd_block_bytes(type);
}

/* ---- bits and small integers to float, exactly ---------------------------- */

ANC_HD_QUANT float anc_qd_bits_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

ANC_HD_QUANT uint32_t anc_qd_float_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* (float)q for 0 <= q < 2^23, exactly: the float with bits 0x4B000000 | q is
 * 2^23 + q, and subtracting 2^23 is exact. (Two cheap operations instead of
 * an integer-to-float conversion, which is slow on the GPU.) */
ANC_HD_QUANT float anc_qd_small_float(uint32_t q)
{
    return anc_qd_bits_float(0x4B000000u | q) - 8388608.0f; /* 2^23 */
}

/* (float)q − off for integers 0 <= q, off < 2^23, exactly, in one
 * subtraction: (2^23 + q) − (2^23 + off), both exact floats. */
ANC_HD_QUANT float anc_qd_small_float_minus(uint32_t q, uint32_t off)
{
    return anc_qd_bits_float(0x4B000000u | q) - anc_qd_bits_float(0x4B000000u | off);
}

/* (float)(int8_t)b for a byte b, exactly: b ^ 0x80 = b + 128 as unsigned. */
ANC_HD_QUANT float anc_qd_i8_float(uint32_t b)
{
    return anc_qd_small_float_minus((b & 0xffu) ^ 0x80u, 128u);
}

/* IEEE half bits -> float, exact for all 65536 patterns (NaN payloads kept,
 * as dtype.h's anc_f16_to_f32). */
ANC_HD_QUANT float anc_qd_f16_to_f32(uint32_t h)
{
    uint32_t sign = (h & 0x8000u) << 16;
    uint32_t mag = h & 0x7fffu; /* 5 exponent bits, 10 mantissa bits */
    uint32_t bits;
    if (mag >= 0x7c00u)         /* inf, nan: exponent all ones, mantissa kept */
        bits = 0x7f800000u | (mag & 0x3ffu) << 13;
    else if (mag >= 0x0400u)    /* normal: exponent bias 15 -> 127 */
        bits = (mag << 13) + ((127u - 15u) << 23);
    else                        /* zero, subnormal: mag * 2^-24, both exact
                                   (the product is a normal float) */
        bits = anc_qd_float_bits(anc_qd_small_float(mag) * 0x1p-24f);
    return anc_qd_bits_float(sign | bits);
}

/* bfloat16 bits -> float: the top half of the float's bits. */
ANC_HD_QUANT float anc_qd_bf16_to_f32(uint32_t h)
{
    return anc_qd_bits_float((h & 0xffffu) << 16);
}

/* ---- loads ------------------------------------------------------------ */

/* Little-endian 16-bit word at p (p 2-byte aligned on the device). */
ANC_HD_QUANT uint32_t anc_qd_le16(const uint8_t *p)
{
#ifdef __CUDA_ARCH__
    return *(const uint16_t *)(const void *)p;
#else
    ANC_QD_LOAD_HOOK(p, 2);
    return (uint32_t)p[0] | (uint32_t)p[1] << 8;
#endif
}

/* Little-endian 32-bit word at p (p 4-byte aligned on the device). */
ANC_HD_QUANT uint32_t anc_qd_le32(const uint8_t *p)
{
#ifdef __CUDA_ARCH__
    return *(const uint32_t *)(const void *)p;
#else
    ANC_QD_LOAD_HOOK(p, 4);
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
#endif
}

/* u[0..4) = the little-endian 32-bit words at p[0..16). On the device one
 * 16-byte load when p is 16-byte aligned, else plain loads: 32-bit ones
 * when the caller guarantees `align` >= 4 (a constant), 16-bit ones when
 * only 2. */
ANC_HD_QUANT void anc_qd_load_words4(const uint8_t *p, int align, uint32_t u[4])
{
#ifdef __CUDA_ARCH__
    if (((uintptr_t)p & 15u) == 0) {
        uint4 v = *(const uint4 *)(const void *)p;
        u[0] = v.x, u[1] = v.y, u[2] = v.z, u[3] = v.w;
        return;
    }
#endif
    ANC_QD_UNROLL
    for (int k = 0; k < 4; k++)
        u[k] = align >= 4 ? anc_qd_le32(p + 4 * k)
                          : anc_qd_le16(p + 4 * k) | anc_qd_le16(p + 4 * k + 2) << 16;
}

/* b[0..8) = p[0..8) (p 2-byte aligned on the device: four 16-bit loads). */
ANC_HD_QUANT void anc_qd_load_bytes8(const uint8_t *p, uint32_t b[8])
{
    ANC_QD_UNROLL
    for (int k = 0; k < 4; k++) {
        uint32_t w = anc_qd_le16(p + 2 * k);
        b[2 * k] = w & 0xffu;
        b[2 * k + 1] = w >> 8;
    }
}

/* v[0..8) = p[0..8): two 16-byte loads on the device when p allows it. */
ANC_HD_QUANT void anc_qd_load_floats8(const float *p, float v[8])
{
#ifdef __CUDA_ARCH__
    if (((uintptr_t)p & 15u) == 0) {
        float4 a = ((const float4 *)p)[0], b = ((const float4 *)p)[1];
        v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w;
        v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
        return;
    }
#endif
    ANC_QD_UNROLL
    for (int i = 0; i < 8; i++) v[i] = p[i];
}

/* ---- decoding: elements 8s..8s+7 of one block into w[0..8) ----------------
 * Each follows the formula of quant.h in the order kernels/cpu/quant.c
 * evaluates it. The products of a scale and a quant are exact (few
 * significant bits), so the results are bit-identical to quant.c whether or
 * not the compiler fuses the multiply with the following add. */

/* Nibbles of the legacy formats: element i of a block is the low nibble of
 * qs[i % 16] for i < 16, the high nibble for i >= 16. Group s (elements
 * 8s..8s+7) reads qs[8(s%2) ..+8], nibble s/2. */
ANC_HD_QUANT void anc_qd_nibbles8(const uint8_t *qs, int s, uint32_t q[8])
{
    uint32_t b[8];
    anc_qd_load_bytes8(qs + 8 * (s & 1), b);
    int shift = 4 * (s >> 1);
    ANC_QD_UNROLL
    for (int i = 0; i < 8; i++) q[i] = (b[i] >> shift) & 15u;
}

/* Fifth bits of Q5_0/Q5_1: bit 4 of element i is bit i of the LE word qh,
 * i.e. bit i % 8 of qh[i / 8]; group s reads qh[s]. */
ANC_HD_QUANT void anc_qd_add_bit4(const uint8_t *qh, int s, uint32_t q[8])
{
    uint32_t h = qh[s];
    ANC_QD_UNROLL
    for (int i = 0; i < 8; i++) q[i] |= ((h >> i) & 1u) << 4;
}

/* Q4_0: x = (q - 8)·d */
ANC_HD_QUANT void anc_qd_decode8_q4_0(const uint8_t *blk, int s, float w[8])
{
    float d = anc_qd_f16_to_f32(anc_qd_le16(blk));
    uint32_t q[8];
    anc_qd_nibbles8(blk + ANC_QD_Q4_0_QS, s, q);
    ANC_QD_UNROLL
    for (int i = 0; i < 8; i++) w[i] = d * anc_qd_small_float_minus(q[i], 8u);
}

/* Q4_1: x = q·d + m */
ANC_HD_QUANT void anc_qd_decode8_q4_1(const uint8_t *blk, int s, float w[8])
{
    float d = anc_qd_f16_to_f32(anc_qd_le16(blk));
    float m = anc_qd_f16_to_f32(anc_qd_le16(blk + ANC_QD_Q4_1_M));
    uint32_t q[8];
    anc_qd_nibbles8(blk + ANC_QD_Q4_1_QS, s, q);
    ANC_QD_UNROLL
    for (int i = 0; i < 8; i++) w[i] = d * anc_qd_small_float(q[i]) + m;
}

/* Q5_0: x = (q - 16)·d */
ANC_HD_QUANT void anc_qd_decode8_q5_0(const uint8_t *blk, int s, float w[8])
{
    float d = anc_qd_f16_to_f32(anc_qd_le16(blk));
    uint32_t q[8];
    anc_qd_nibbles8(blk + ANC_QD_Q5_0_QS, s, q);
    anc_qd_add_bit4(blk + ANC_QD_Q5_0_QH, s, q);
    ANC_QD_UNROLL
    for (int i = 0; i < 8; i++) w[i] = d * anc_qd_small_float_minus(q[i], 16u);
}

/* Q5_1: x = q·d + m */
ANC_HD_QUANT void anc_qd_decode8_q5_1(const uint8_t *blk, int s, float w[8])
{
    float d = anc_qd_f16_to_f32(anc_qd_le16(blk));
    float m = anc_qd_f16_to_f32(anc_qd_le16(blk + ANC_QD_Q5_1_M));
    uint32_t q[8];
    anc_qd_nibbles8(blk + ANC_QD_Q5_1_QS, s, q);
    anc_qd_add_bit4(blk + ANC_QD_Q5_1_QH, s, q);
    ANC_QD_UNROLL
    for (int i = 0; i < 8; i++) w[i] = d * anc_qd_small_float(q[i]) + m;
}

/* Q8_0: x = q·d, q signed bytes qs[8s..8s+7] */
ANC_HD_QUANT void anc_qd_decode8_q8_0(const uint8_t *blk, int s, float w[8])
{
    float d = anc_qd_f16_to_f32(anc_qd_le16(blk));
    uint32_t b[8];
    anc_qd_load_bytes8(blk + ANC_QD_Q8_0_QS + 8 * s, b);
    ANC_QD_UNROLL
    for (int i = 0; i < 8; i++) w[i] = d * anc_qd_i8_float(b[i]);
}

/* The 6-bit scale and min of sub-block j (0..7) of Q4_K/Q5_K from their 12
 * packed bytes s (the rule stated in quant.h): for j < 4 the low six bits
 * of s[j] and s[j+4]; for j >= 4 the nibbles of s[j+4] with the top two
 * bits of s[j-4] (scale) and s[j] (min) above them. */
ANC_HD_QUANT void anc_qd_k_scale_min(const uint8_t *s, int j, uint32_t *sc, uint32_t *m)
{
    if (j < 4) {
        *sc = s[j] & 63u;
        *m = s[j + 4] & 63u;
    } else {
        *sc = (s[j + 4] & 15u) | (uint32_t)(s[j - 4] >> 6) << 4;
        *m = (uint32_t)(s[j + 4] >> 4) | (uint32_t)(s[j] >> 6) << 4;
    }
}

/* Q4_K/Q5_K low nibbles: element 64c + i is the low nibble of qs[32c + i],
 * element 64c + 32 + i its high nibble. Group g (0..31) is elements
 * 32j + 8(g%4) + i of sub-block j = g/4: bytes qs[32(j/2) + 8(g%4) ..+8],
 * nibble j%2. */
ANC_HD_QUANT void anc_qd_k_nibbles8(const uint8_t *qs, int g, uint32_t q[8])
{
    int j = g >> 2;
    uint32_t b[8];
    anc_qd_load_bytes8(qs + 32 * (j >> 1) + 8 * (g & 3), b);
    int shift = 4 * (j & 1);
    ANC_QD_UNROLL
    for (int i = 0; i < 8; i++) q[i] = (b[i] >> shift) & 15u;
}

/* x = (d·sc)·q − dmin·m with sc, m of sub-block g/4 (Q4_K and Q5_K). */
ANC_HD_QUANT void anc_qd_k_apply_scale_min(const uint8_t *blk, int g, const uint32_t q[8],
                                           float w[8])
{
    float d = anc_qd_f16_to_f32(anc_qd_le16(blk));
    float dmin = anc_qd_f16_to_f32(anc_qd_le16(blk + ANC_QD_Q4_K_DMIN));
    uint32_t sc, m;
    anc_qd_k_scale_min(blk + ANC_QD_Q4_K_SCALES, g >> 2, &sc, &m);
    float dl = d * anc_qd_small_float(sc), ml = dmin * anc_qd_small_float(m);
    ANC_QD_UNROLL
    for (int i = 0; i < 8; i++) w[i] = dl * anc_qd_small_float(q[i]) - ml;
}

/* Q4_K: group g (0..31) = elements 8g..8g+7 of the super-block. */
ANC_HD_QUANT void anc_qd_decode8_q4_k(const uint8_t *blk, int g, float w[8])
{
    uint32_t q[8];
    anc_qd_k_nibbles8(blk + ANC_QD_Q4_K_QS, g, q);
    anc_qd_k_apply_scale_min(blk, g, q, w);
}

/* Q5_K: as Q4_K plus the fifth bit: bit 4 of element 32j + i is bit j of
 * qh[i]; group g reads qh[8(g%4) ..+8], bit g/4. */
ANC_HD_QUANT void anc_qd_decode8_q5_k(const uint8_t *blk, int g, float w[8])
{
    uint32_t q[8], h[8];
    anc_qd_k_nibbles8(blk + ANC_QD_Q5_K_QS, g, q);
    anc_qd_load_bytes8(blk + ANC_QD_Q5_K_QH + 8 * (g & 3), h);
    int j = g >> 2;
    ANC_QD_UNROLL
    for (int i = 0; i < 8; i++) q[i] |= ((h[i] >> j) & 1u) << 4;
    anc_qd_k_apply_scale_min(blk, g, q, w);
}

/* Q6_K: element e = 128h + r takes its low four bits from nibble r/64 of
 * ql[64h + r%64] and its high two bits from bits 2(r/32)..+1 of
 * qh[32h + r%32]; x = (d·scales[e/16])·(q − 32). Group g (0..31) has
 * h = g/16 and r = 8(g%16) + i, so r/64 and r/32 are the same for its
 * eight elements, and its scale is scales[g/2]. */
ANC_HD_QUANT void anc_qd_decode8_q6_k(const uint8_t *blk, int g, float w[8])
{
    int h = g >> 4, r0 = 8 * (g & 15);
    uint32_t lo[8], hi[8];
    anc_qd_load_bytes8(blk + 64 * h + (r0 & 63), lo);
    anc_qd_load_bytes8(blk + ANC_QD_Q6_K_QH + 32 * h + (r0 & 31), hi);
    int lo_shift = 4 * (r0 >> 6), hi_shift = 2 * (r0 >> 5);
    float d = anc_qd_f16_to_f32(anc_qd_le16(blk + ANC_QD_Q6_K_D));
    float ds = d * anc_qd_i8_float(blk[ANC_QD_Q6_K_SCALES + (g >> 1)]);
    ANC_QD_UNROLL
    for (int i = 0; i < 8; i++) {
        uint32_t q = ((lo[i] >> lo_shift) & 15u) | ((hi[i] >> hi_shift) & 3u) << 4;
        w[i] = ds * anc_qd_small_float_minus(q, 32u);
    }
}

/* Float rows: elements 8g..8g+7 of the row at p = row + 8g·(element bytes),
 * read as 32-bit words (p 4-byte aligned for F32, 2 for F16/BF16, whose
 * word k holds elements 2k (low half) and 2k+1). */
ANC_HD_QUANT void anc_qd_decode8_f32(const uint8_t *p, float w[8])
{
    uint32_t u[8];
    anc_qd_load_words4(p, 4, u);
    anc_qd_load_words4(p + 16, 4, u + 4);
    ANC_QD_UNROLL
    for (int i = 0; i < 8; i++) w[i] = anc_qd_bits_float(u[i]);
}

ANC_HD_QUANT void anc_qd_decode8_f16(const uint8_t *p, float w[8])
{
    uint32_t u[4];
    anc_qd_load_words4(p, 2, u);
    ANC_QD_UNROLL
    for (int k = 0; k < 4; k++) {
        w[2 * k] = anc_qd_f16_to_f32(u[k] & 0xffffu);
        w[2 * k + 1] = anc_qd_f16_to_f32(u[k] >> 16);
    }
}

ANC_HD_QUANT void anc_qd_decode8_bf16(const uint8_t *p, float w[8])
{
    uint32_t u[4];
    anc_qd_load_words4(p, 2, u);
    ANC_QD_UNROLL
    for (int k = 0; k < 4; k++) {
        w[2 * k] = anc_qd_bf16_to_f32(u[k] & 0xffffu);
        w[2 * k + 1] = anc_qd_bf16_to_f32(u[k] >> 16);
    }
}

/* w[0..8) = elements 8g..8g+7 of a row of `type` starting at `row`
 * (0 <= g < cols / 8: a whole group). NaN for an unsupported type. With `type` a
 * compile-time constant (the kernels' template argument) the switch folds
 * away. */
ANC_HD_QUANT void anc_qd_decode8(uint32_t type, const uint8_t *row, int32_t g, float w[8])
{
    switch (type) {
    case ANC_DT_F32: anc_qd_decode8_f32(row + 32 * g, w); return;
    case ANC_DT_F16: anc_qd_decode8_f16(row + 16 * g, w); return;
    case ANC_DT_BF16: anc_qd_decode8_bf16(row + 16 * g, w); return;
    /* legacy formats: 4 groups per block */
    case ANC_DT_Q4_0: anc_qd_decode8_q4_0(row + (g >> 2) * ANC_QD_Q4_0_BYTES, g & 3, w); return;
    case ANC_DT_Q4_1: anc_qd_decode8_q4_1(row + (g >> 2) * ANC_QD_Q4_1_BYTES, g & 3, w); return;
    case ANC_DT_Q5_0: anc_qd_decode8_q5_0(row + (g >> 2) * ANC_QD_Q5_0_BYTES, g & 3, w); return;
    case ANC_DT_Q5_1: anc_qd_decode8_q5_1(row + (g >> 2) * ANC_QD_Q5_1_BYTES, g & 3, w); return;
    case ANC_DT_Q8_0: anc_qd_decode8_q8_0(row + (g >> 2) * ANC_QD_Q8_0_BYTES, g & 3, w); return;
    /* K-quants: 32 groups per super-block */
    case ANC_DT_Q4_K: anc_qd_decode8_q4_k(row + (g >> 5) * ANC_QD_Q4_K_BYTES, g & 31, w); return;
    case ANC_DT_Q5_K: anc_qd_decode8_q5_k(row + (g >> 5) * ANC_QD_Q5_K_BYTES, g & 31, w); return;
    case ANC_DT_Q6_K: anc_qd_decode8_q6_k(row + (g >> 5) * ANC_QD_Q6_K_BYTES, g & 31, w); return;
    default:
        ANC_QD_UNROLL
        for (int i = 0; i < 8; i++) w[i] = anc_qd_bits_float(0x7fc00000u); /* NaN */
        return;
    }
}

/* Element e of a row of `type`: one plain load for the float types (the
 * elements of a partial group, which only float rows have), via e's group
 * for the others. */
ANC_HD_QUANT float anc_qd_decode1(uint32_t type, const uint8_t *row, int64_t e)
{
    switch (type) {
    case ANC_DT_F32: return anc_qd_bits_float(anc_qd_le32(row + 4 * e));
    case ANC_DT_F16: return anc_qd_f16_to_f32(anc_qd_le16(row + 2 * e));
    case ANC_DT_BF16: return anc_qd_bf16_to_f32(anc_qd_le16(row + 2 * e));
    default: {
        float w[ANC_QD_GROUP];
        anc_qd_decode8(type, row, (int32_t)(e / ANC_QD_GROUP), w);
        return w[e % ANC_QD_GROUP];
    }
    }
}

/* Group g (0 <= g < anc_qd_row_groups(cols)) of a row of `cols` elements:
 * v[0..n) = its elements, returns n: 8, or anc_qd_tail_elems for the
 * partial last group, decoded element by element. (The loops over a group
 * have the constant bound 8, so v stays in registers on the device.) */
ANC_HD_QUANT int anc_qd_decode_group(uint32_t type, const uint8_t *row, int64_t cols, int32_t g,
                                     float v[8])
{
    const int tail = anc_qd_tail_elems(type, cols);
    if (tail > 0 && g == cols / ANC_QD_GROUP) {
        ANC_QD_UNROLL
        for (int i = 0; i < 8; i++)
            v[i] = i < tail ? anc_qd_decode1(type, row, (int64_t)ANC_QD_GROUP * g + i) : 0.0f;
        return tail;
    }
    anc_qd_decode8(type, row, g, v);
    return ANC_QD_GROUP;
}

/* ---- row decoding (dequantisation, embeddings) -----------------------------
 * Decoding n_rows rows into a [n_rows][cols] float or half result is cut
 * into work items, one per group: item k is group g = k % G of output row
 * i = k / G, G = anc_qd_row_groups(cols). Its source row is row_ids[i] when
 * row_ids is given (embeddings), else row0 + i (dequantisation).
 * anc_qd_decode_item: v[0..n) = the item's elements, returns n (see
 * anc_qd_decode_group); *at = i·cols + 8g, where they go in the result. */
ANC_HD_QUANT int anc_qd_decode_item(uint32_t type, const uint8_t *w, int64_t row_bytes,
                                    int64_t cols, int64_t row0, const int32_t *row_ids,
                                    int64_t k, float v[8], int64_t *at)
{
    const int64_t groups = anc_qd_row_groups(cols);
    const int64_t i = k / groups;
    const int32_t g = (int32_t)(k - i * groups);
    const int64_t src = row_ids ? (int64_t)row_ids[i] : row0 + i;
    *at = i * cols + (int64_t)ANC_QD_GROUP * g;
    return anc_qd_decode_group(type, w + src * row_bytes, cols, g, v);
}

/* ---- dot products -------------------------------------------------------- */

/* Σ w[i]·x[i] over one group, in element order. */
ANC_HD_QUANT float anc_qd_dot8(const float w[8], const float x[8])
{
    float s = 0.0f;
    ANC_QD_UNROLL
    for (int i = 0; i < 8; i++) s += w[i] * x[i];
    return s;
}

/* The matrix-vector product works on n_rows (<= ANC_QD_MV_ROWS) weight
 * rows starting at w (row_bytes apart) and n_tok (<= ANC_QD_MV_MAX_TOK)
 * activation rows x[t][0..cols). acc[r][t] accumulates Σ W[r][c]·x[t][c]
 * over the groups a thread takes. */

/* acc += group g (elements 8g..8g+7) of every row times every token: the
 * activations are loaded once and used for every row, each decoded weight
 * group once and used for every token. */
ANC_HD_QUANT void anc_qd_matvec_group(uint32_t type, const uint8_t *w, int64_t row_bytes,
                                      int n_rows, const float *x, int64_t cols, int n_tok,
                                      int32_t g, float acc[ANC_QD_MV_ROWS][ANC_QD_MV_MAX_TOK])
{
    float xg[ANC_QD_MV_MAX_TOK][8];
    ANC_QD_UNROLL
    for (int t = 0; t < ANC_QD_MV_MAX_TOK; t++)
        if (t < n_tok) anc_qd_load_floats8(x + t * cols + (int64_t)ANC_QD_GROUP * g, xg[t]);
    ANC_QD_UNROLL
    for (int r = 0; r < ANC_QD_MV_ROWS; r++) {
        if (r >= n_rows) break;
        float wg[8];
        anc_qd_decode8(type, w + r * row_bytes, g, wg);
        ANC_QD_UNROLL
        for (int t = 0; t < ANC_QD_MV_MAX_TOK; t++)
            if (t < n_tok) acc[r][t] += anc_qd_dot8(wg, xg[t]);
    }
}

/* acc += the partial last group of every row (elements c0..cols-1,
 * c0 = cols - tail, 0 < tail < 8; float rows only) times every token,
 * element by element with plain loads. */
ANC_HD_QUANT void anc_qd_matvec_tail(uint32_t type, const uint8_t *w, int64_t row_bytes,
                                     int n_rows, const float *x, int64_t cols, int n_tok,
                                     float acc[ANC_QD_MV_ROWS][ANC_QD_MV_MAX_TOK])
{
    const int tail = anc_qd_tail_elems(type, cols);
    const int64_t c0 = cols - tail;
    ANC_QD_UNROLL
    for (int r = 0; r < ANC_QD_MV_ROWS; r++) {
        if (r >= n_rows) break;
        float s[ANC_QD_MV_MAX_TOK];
        ANC_QD_UNROLL
        for (int t = 0; t < ANC_QD_MV_MAX_TOK; t++) s[t] = 0.0f;
        ANC_QD_UNROLL
        for (int i = 0; i < 8; i++) {
            if (i >= tail) break;
            float wc = anc_qd_decode1(type, w + r * row_bytes, c0 + i);
            ANC_QD_UNROLL
            for (int t = 0; t < ANC_QD_MV_MAX_TOK; t++)
                if (t < n_tok) s[t] += wc * x[t * cols + c0 + i];
        }
        ANC_QD_UNROLL
        for (int t = 0; t < ANC_QD_MV_MAX_TOK; t++)
            if (t < n_tok) acc[r][t] += s[t];
    }
}

/* Does the thread that takes groups first, first + step, ... take the
 * partial last group (index cols / 8) too? Of the threads first = 0 ..
 * step-1 exactly one does: the one whose turn comes next. */
ANC_HD_QUANT int anc_qd_takes_tail(uint32_t type, int64_t cols, int32_t first, int32_t step)
{
    const int32_t n_full = (int32_t)(cols / ANC_QD_GROUP);
    return anc_qd_tail_elems(type, cols) > 0 && first <= n_full && (n_full - first) % step == 0;
}

ANC_HD_QUANT void anc_qd_matvec_zero(float acc[ANC_QD_MV_ROWS][ANC_QD_MV_MAX_TOK])
{
    ANC_QD_UNROLL
    for (int r = 0; r < ANC_QD_MV_ROWS; r++) {
        ANC_QD_UNROLL
        for (int t = 0; t < ANC_QD_MV_MAX_TOK; t++) acc[r][t] = 0.0f;
    }
}

/* The share of one thread: acc = the sums over the whole groups g = first,
 * first + step, ... < cols / 8, then over the partial last group if it is
 * this thread's turn (anc_qd_takes_tail); entries beyond n_rows / n_tok
 * stay zero. In the kernel first = thread index and step =
 * ANC_QD_MV_THREADS, so consecutive threads read consecutive groups
 * (coalesced), and the block then sums acc over its threads. */
ANC_HD_QUANT void anc_qd_matvec_partial(uint32_t type, const uint8_t *w, int64_t row_bytes,
                                        int n_rows, const float *x, int64_t cols, int n_tok,
                                        int32_t first, int32_t step,
                                        float acc[ANC_QD_MV_ROWS][ANC_QD_MV_MAX_TOK])
{
    anc_qd_matvec_zero(acc);
    int32_t n_groups = (int32_t)(cols / ANC_QD_GROUP);
    for (int32_t g = first; g < n_groups; g += step)
        anc_qd_matvec_group(type, w, row_bytes, n_rows, x, cols, n_tok, g, acc);
    if (anc_qd_takes_tail(type, cols, first, step))
        anc_qd_matvec_tail(type, w, row_bytes, n_rows, x, cols, n_tok, acc);
}

/* The same for one token (the decode path), with the loop unrolled twice on
 * the device: the loads of two groups are issued before either's arithmetic,
 * which keeps more bytes in flight per thread. (Not done for several
 * tokens, whose activations would take too many registers.) */
ANC_HD_QUANT void anc_qd_matvec_partial_1tok(uint32_t type, const uint8_t *w, int64_t row_bytes,
                                             int n_rows, const float *x, int64_t cols,
                                             int32_t first, int32_t step,
                                             float acc[ANC_QD_MV_ROWS][ANC_QD_MV_MAX_TOK])
{
    anc_qd_matvec_zero(acc);
    int32_t n_groups = (int32_t)(cols / ANC_QD_GROUP);
    ANC_QD_UNROLL_2
    for (int32_t g = first; g < n_groups; g += step)
        anc_qd_matvec_group(type, w, row_bytes, n_rows, x, cols, 1, g, acc);
    if (anc_qd_takes_tail(type, cols, first, step))
        anc_qd_matvec_tail(type, w, row_bytes, n_rows, x, cols, 1, acc);
}

#endif
