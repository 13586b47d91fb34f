/* dtype.c — the table of tensor element types (block geometry as defined by
 * the GGUF/ggml formats) and lookups by id or name. No dependencies. */
#include "dtype.h"

#include <strings.h>

/* Sizes follow the ggml block layouts (e.g. Q4_K: 256 elements in
 * 2+2 bytes of scales' scales, 12 bytes of 6-bit scales, 128 bytes of nibbles). */
static const struct anc_dtype_info dtype_table[ANC_DT_COUNT_] = {
    [ANC_DT_F32] = {"f32", 1, 4, true},
    [ANC_DT_F16] = {"f16", 1, 2, true},
    [ANC_DT_Q4_0] = {"q4_0", 32, 18, true},
    [ANC_DT_Q4_1] = {"q4_1", 32, 20, true},
    [ANC_DT_Q5_0] = {"q5_0", 32, 22, true},
    [ANC_DT_Q5_1] = {"q5_1", 32, 24, true},
    [ANC_DT_Q8_0] = {"q8_0", 32, 34, true},
    [ANC_DT_Q8_1] = {"q8_1", 32, 36, false},
    [ANC_DT_Q2_K] = {"q2_K", 256, 84, false},
    [ANC_DT_Q3_K] = {"q3_K", 256, 110, false},
    [ANC_DT_Q4_K] = {"q4_K", 256, 144, true},
    [ANC_DT_Q5_K] = {"q5_K", 256, 176, true},
    [ANC_DT_Q6_K] = {"q6_K", 256, 210, true},
    [ANC_DT_Q8_K] = {"q8_K", 256, 292, false},
    [ANC_DT_IQ2_XXS] = {"iq2_xxs", 256, 66, false},
    [ANC_DT_IQ2_XS] = {"iq2_xs", 256, 74, false},
    [ANC_DT_IQ3_XXS] = {"iq3_xxs", 256, 98, false},
    [ANC_DT_IQ1_S] = {"iq1_s", 256, 50, false},
    [ANC_DT_IQ4_NL] = {"iq4_nl", 32, 18, false},
    [ANC_DT_IQ3_S] = {"iq3_s", 256, 110, false},
    [ANC_DT_IQ2_S] = {"iq2_s", 256, 82, false},
    [ANC_DT_IQ4_XS] = {"iq4_xs", 256, 136, false},
    [ANC_DT_I8] = {"i8", 1, 1, false},
    [ANC_DT_I16] = {"i16", 1, 2, false},
    [ANC_DT_I32] = {"i32", 1, 4, false},
    [ANC_DT_I64] = {"i64", 1, 8, false},
    [ANC_DT_F64] = {"f64", 1, 8, false},
    [ANC_DT_IQ1_M] = {"iq1_m", 256, 56, false},
    [ANC_DT_BF16] = {"bf16", 1, 2, true},
    [ANC_DT_TQ1_0] = {"tq1_0", 256, 54, false},
    [ANC_DT_TQ2_0] = {"tq2_0", 256, 66, false},
    [ANC_DT_MXFP4] = {"mxfp4", 32, 17, false},
};

const struct anc_dtype_info *anc_dtype_get(uint32_t type_id)
{
    if (type_id >= ANC_DT_COUNT_ || !dtype_table[type_id].name) return NULL;
    return &dtype_table[type_id];
}

size_t anc_dtype_row_bytes(uint32_t type_id, uint64_t n)
{
    const struct anc_dtype_info *d = anc_dtype_get(type_id);
    if (!d || n % d->block_elems != 0) return 0;
    uint64_t blocks = n / d->block_elems;
    if (blocks > SIZE_MAX / d->block_bytes) return 0;
    return (size_t)(blocks * d->block_bytes);
}

int anc_dtype_from_name(const char *name)
{
    for (int i = 0; i < ANC_DT_COUNT_; i++)
        if (dtype_table[i].name && strcasecmp(dtype_table[i].name, name) == 0) return i;
    return -1;
}
