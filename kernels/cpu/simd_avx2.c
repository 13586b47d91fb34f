/* simd_avx2.c — AVX2/FMA/F16C row dot products for the CPU backend, each
 * tested against the portable reference in quant.c (tests/test_simd.c).
 * Functions carry target attributes, so the file builds without -mavx2
 * and the binary still runs on any x86-64; cpu_ops.c calls
 * cpu_kernels_add_avx2 only when cpuid reports the features.
 * Depends on kernels/ headers only. */
#include "cpu_ops.h"
#include "quant.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma,f16c")))

AVX2 static inline float hsum256(__m256 v)
{
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}

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

AVX2 static float dot_f_f16(const void *wrow, const float *x, int64_t n)
{
    const uint16_t *w = wrow;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 w0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i)));
        __m256 w1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i + 8)));
        a0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + i + 8), a1);
    }
    float s = hsum256(_mm256_add_ps(a0, a1));
    for (; i < n; i++) s += anc_f16_to_f32(w[i]) * x[i];
    return s;
}

void cpu_kernels_add_avx2(struct cpu_kernels *k)
{
    k->dot_f[ANC_DT_F32] = dot_f_f32;
    k->dot_f[ANC_DT_F16] = dot_f_f16;
}

#else
void cpu_kernels_add_avx2(struct cpu_kernels *k) { (void)k; }
#endif
