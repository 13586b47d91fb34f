/* test_dtype.c — the type table and the half-precision conversions,
 * checked exhaustively against the compiler's own _Float16 / bit-level
 * definitions (independent of our code). */
#include <stdint.h>
#include <string.h>

#include "dtype.h"
#include "test_util.h"

static float bits_to_f32(uint32_t b)
{
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

int main(void)
{
    /* every half value: to float and back is the identity (NaNs stay NaN) */
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = anc_f16_to_f32((uint16_t)h);
#if defined(__FLT16_MAX__)
        _Float16 ref;
        uint16_t hb = (uint16_t)h;
        memcpy(&ref, &hb, sizeof ref);
        if (!(f == (float)ref || (f != f && ref != ref))) {
            if (bad++ < 5) fprintf(stderr, "f16 %04x -> %g, compiler says %g\n", h, f, (float)ref);
        }
#endif
        uint16_t back = anc_f32_to_f16(f);
        bool nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
        if (nan ? !((back & 0x7c00) == 0x7c00 && (back & 0x3ff)) : back != h) {
            if (bad++ < 5) fprintf(stderr, "f16 %04x round trip gave %04x\n", h, back);
        }
    }
    CHECK_INT_EQ(bad, 0);

#if defined(__FLT16_MAX__)
    /* float -> half rounding: a sweep over float bit patterns, including
       ties, subnormals, overflow, against the compiler's conversion */
    bad = 0;
    for (uint64_t b = 0; b < 0x100000000ull; b += 4099) {
        float f = bits_to_f32((uint32_t)b);
        if (f != f) continue;
        _Float16 r = (_Float16)f;
        uint16_t want;
        memcpy(&want, &r, sizeof want);
        uint16_t got = anc_f32_to_f16(f);
        if (got != want && bad++ < 5)
            fprintf(stderr, "f32 %08llx (%g) -> %04x, compiler says %04x\n",
                    (unsigned long long)b, f, got, want);
    }
    /* exact ties around 1.0 and at the subnormal edge */
    float ties[] = {1.0f + 1.0f / 2048, 1.0f + 3.0f / 2048, 65504.0f, 65519.0f, 65520.0f,
                    5.9604645e-8f, 2.9802322e-8f, 8.940697e-8f, -0.0f, 6.1035156e-5f};
    for (size_t i = 0; i < sizeof ties / sizeof ties[0]; i++) {
        _Float16 r = (_Float16)ties[i];
        uint16_t want;
        memcpy(&want, &r, sizeof want);
        if (anc_f32_to_f16(ties[i]) != want && bad++ < 10)
            fprintf(stderr, "tie %g -> %04x, want %04x\n", ties[i], anc_f32_to_f16(ties[i]), want);
    }
    CHECK_INT_EQ(bad, 0);
#else
    (void)bits_to_f32;
    fprintf(stderr, "note: compiler lacks _Float16; rounding sweep skipped\n");
#endif

    /* bf16: truncation of the top half with round-to-nearest-even */
    CHECK(anc_bf16_to_f32(anc_f32_to_bf16(1.0f)) == 1.0f);
    CHECK(anc_f32_to_bf16(bits_to_f32(0x3f808000u)) == 0x3f80); /* tie to even: down */
    CHECK(anc_f32_to_bf16(bits_to_f32(0x3f818000u)) == 0x3f82); /* tie to even: up */
    CHECK(anc_f32_to_bf16(bits_to_f32(0x3f808001u)) == 0x3f81);

    /* block geometry of the common types (GGUF/ggml format facts) */
    CHECK_INT_EQ(anc_dtype_row_bytes(ANC_DT_F32, 64), 256);
    CHECK_INT_EQ(anc_dtype_row_bytes(ANC_DT_F16, 64), 128);
    CHECK_INT_EQ(anc_dtype_row_bytes(ANC_DT_Q4_0, 64), 36);
    CHECK_INT_EQ(anc_dtype_row_bytes(ANC_DT_Q8_0, 2048), 2048 / 32 * 34);
    CHECK_INT_EQ(anc_dtype_row_bytes(ANC_DT_Q4_K, 2048), 8 * 144);
    CHECK_INT_EQ(anc_dtype_row_bytes(ANC_DT_Q6_K, 256), 210);
    CHECK_INT_EQ(anc_dtype_row_bytes(ANC_DT_Q4_K, 100), 0); /* not whole blocks */
    CHECK(anc_dtype_get(4) == NULL);                          /* removed Q4_2 */
    CHECK(anc_dtype_get(1000) == NULL);
    CHECK_INT_EQ(anc_dtype_from_name("Q4_K"), ANC_DT_Q4_K);
    CHECK_INT_EQ(anc_dtype_from_name("nope"), -1);
    TEST_EXIT();
}
