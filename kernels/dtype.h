/* dtype.h — tensor element types (numbered as in GGUF/ggml) and their block
 * geometry, plus half-precision conversions.
 * Shared by core/ and kernels/; depends on nothing but the C library. */
#ifndef ANC_DTYPE_H
#define ANC_DTYPE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <string.h>

/* Values are the on-disk type ids of GGUF tensor infos. */
enum anc_dtype {
    ANC_DT_F32 = 0,
    ANC_DT_F16 = 1,
    ANC_DT_Q4_0 = 2,
    ANC_DT_Q4_1 = 3,
    ANC_DT_Q5_0 = 6,
    ANC_DT_Q5_1 = 7,
    ANC_DT_Q8_0 = 8,
    ANC_DT_Q8_1 = 9,
    ANC_DT_Q2_K = 10,
    ANC_DT_Q3_K = 11,
    ANC_DT_Q4_K = 12,
    ANC_DT_Q5_K = 13,
    ANC_DT_Q6_K = 14,
    ANC_DT_Q8_K = 15,
    ANC_DT_IQ2_XXS = 16,
    ANC_DT_IQ2_XS = 17,
    ANC_DT_IQ3_XXS = 18,
    ANC_DT_IQ1_S = 19,
    ANC_DT_IQ4_NL = 20,
    ANC_DT_IQ3_S = 21,
    ANC_DT_IQ2_S = 22,
    ANC_DT_IQ4_XS = 23,
    ANC_DT_I8 = 24,
    ANC_DT_I16 = 25,
    ANC_DT_I32 = 26,
    ANC_DT_I64 = 27,
    ANC_DT_F64 = 28,
    ANC_DT_IQ1_M = 29,
    ANC_DT_BF16 = 30,
    ANC_DT_TQ1_0 = 34,
    ANC_DT_TQ2_0 = 35,
    ANC_DT_MXFP4 = 39,
    ANC_DT_COUNT_ = 40 /* upper bound of the id space we know of */
};

/* Geometry of one type: `block_elems` elements are stored in `block_bytes`
 * bytes. Rows must hold a whole number of blocks. */
struct anc_dtype_info {
    const char *name;   /* "q4_K", as llama.cpp prints it; NULL = unknown id */
    uint32_t block_elems;
    uint32_t block_bytes;
    bool computable;    /* the engine can run matmuls on it today */
};

/* Info for a type id, or NULL when the id is unknown. */
const struct anc_dtype_info *anc_dtype_get(uint32_t type_id);

/* Bytes of a row of n elements; 0 if n is not a whole number of blocks or
 * the type is unknown. */
size_t anc_dtype_row_bytes(uint32_t type_id, uint64_t n);

/* Type id by (case-insensitive) name, -1 if unknown. */
int anc_dtype_from_name(const char *name);

/* IEEE half <-> float, exact for every half value, round-to-nearest-even
 * for float -> half. */
static inline float anc_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do { man <<= 1; e++; } while (!(man & 0x400u));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
        }
    } else if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static inline uint16_t anc_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t absx = x & 0x7fffffffu;
    if (absx >= 0x7f800000u) /* inf or nan */
        return (uint16_t)(sign | 0x7c00u | (absx > 0x7f800000u ? 0x200u : 0));
    if (absx >= 0x477ff000u) /* rounds to >= 65520: overflow to inf */
        return (uint16_t)(sign | 0x7c00u);
    if (absx < 0x38800000u) { /* below the smallest normal half: subnormal or zero */
        if (absx < 0x33000000u) return (uint16_t)sign; /* < half of min subnormal */
        uint32_t e = absx >> 23;
        uint32_t m = (absx & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - e; /* 14 + (112 - e) ... yields value in units of 2^-24 */
        uint32_t q = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1);
        uint32_t half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1))) q++;
        return (uint16_t)(sign | q);
    }
    uint32_t r = absx + 0xfffu + ((absx >> 13) & 1u) - (112u << 23);
    return (uint16_t)(sign | (r >> 13));
}

static inline float anc_bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static inline uint16_t anc_f32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u); /* quiet nan */
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

#endif
