/* kernels_quant.cu — CUDA kernels that read weights in their GGUF block
 * formats: the matrix-vector product of the decode path (weights decoded on
 * the fly), row dequantisation for the prompt path (to float or half, for a
 * cuBLAS GEMM), embedding lookup, and float -> half conversion. The launch
 * functions are declared in cuda_kernels.h.
 * The format math (block layouts, decoding of 8-element groups, each
 * thread's share of the matrix-vector product and of row decoding) lives in
 * quant_dev.h, where tests/test_cuda_dev_quant.c checks it on the CPU
 * against kernels/cpu/quant.c.
 * Weights accepted: every type anc_qd_supported, rows of any length that is
 * a whole number of the type's blocks (any length for F32/F16/BF16; a
 * partial last group of a float row is done element by element) up to
 * ANC_QD_MAX_COLS, a matrix pointer aligned to anc_qd_row_align (4 bytes
 * for F32, 2 for the rest, so F16/BF16 rows of odd length are fine).
 * Vector loads and stores are used only where an address is 16-byte
 * aligned, plain ones otherwise.
 * Depends on the CUDA runtime, cuda_kernels.h, dtype.h and quant_dev.h;
 * never on core/ or quant.h. Launches only enqueue work on the caller's
 * stream: no allocation, no synchronisation (graph-capturable). */
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <string.h>

#include <type_traits>

#include "cuda_kernels.h"
#include "cuda_launch.cuh"
#include "dtype.h"
#include "quant_dev.h"

/* Largest grid.x of a launch. */
#define MAX_GRID_X 2147483647LL


#define MV_THREADS ANC_QD_MV_THREADS
#define MV_WARPS (MV_THREADS / WARP)
#define MV_ROWS ANC_QD_MV_ROWS
#define MV_TOK ANC_QD_MV_MAX_TOK

static_assert(ANC_QD_MV_MAX_TOK == ANC_CU_MATVEC_MAX_TOK, "one token limit");
static_assert(MV_THREADS % WARP == 0, "whole warps");
static_assert(MV_ROWS * MV_TOK <= MV_THREADS, "one thread per output of a block");
static_assert(ANC_QD_GROUP == 8, "the decoders produce 8 elements");

static bool aligned(const void *p, uintptr_t a) { return ((uintptr_t)p & (a - 1)) == 0; }

/* ---- type dispatch -------------------------------------------------------- */

template <uint32_t T> using type_tag = std::integral_constant<uint32_t, T>;

/* f(type_tag<type>{}) for a type quant_dev.h decodes, else -1: the kernels
 * are templates on the type so that each decodes one format without a
 * switch in its inner loop. */
template <typename F> static int with_type(uint32_t type, F f)
{
    switch (type) {
    case ANC_DT_F32: return f(type_tag<ANC_DT_F32>{});
    case ANC_DT_F16: return f(type_tag<ANC_DT_F16>{});
    case ANC_DT_BF16: return f(type_tag<ANC_DT_BF16>{});
    case ANC_DT_Q4_0: return f(type_tag<ANC_DT_Q4_0>{});
    case ANC_DT_Q4_1: return f(type_tag<ANC_DT_Q4_1>{});
    case ANC_DT_Q5_0: return f(type_tag<ANC_DT_Q5_0>{});
    case ANC_DT_Q5_1: return f(type_tag<ANC_DT_Q5_1>{});
    case ANC_DT_Q8_0: return f(type_tag<ANC_DT_Q8_0>{});
    case ANC_DT_Q4_K: return f(type_tag<ANC_DT_Q4_K>{});
    case ANC_DT_Q5_K: return f(type_tag<ANC_DT_Q5_K>{});
    case ANC_DT_Q6_K: return f(type_tag<ANC_DT_Q6_K>{});
    default: return -1;
    }
}

extern "C" bool anc_cu_supports(uint32_t type) { return anc_qd_supported(type) != 0; }

/* ---- matrix-vector product (decode path) ------------------------------------
 * One block of MV_THREADS threads computes the MV_ROWS consecutive outputs
 * r0, r0 + 1, ... for every token. Its threads stride over the 8-element
 * groups of those rows (thread i takes groups i, i + MV_THREADS, ...:
 * consecutive threads read consecutive bytes of a row and consecutive
 * activations), so each activation group is read once for all MV_ROWS rows
 * and each decoded weight group is used for every token; the thread next in
 * turn also takes a float row's partial last group, if any
 * (anc_qd_matvec_partial, anc_qd_matvec_partial_1tok). Then each warp sums
 * its threads' partial sums with shuffles, and thread (r, t) of the block
 * adds the warps' sums in warp order and writes y[t][r0 + r]. */

/* ONE_TOKEN: n_tok is 1, a compile-time constant, so the token loops fold
 * away in the hot decode case (anc_qd_matvec_partial_1tok). */
template <uint32_t TYPE, bool ONE_TOKEN>
static __global__ void __launch_bounds__(MV_THREADS)
matvec_kernel(float *y, const uint8_t *w, int64_t row_bytes, int64_t rows, int64_t cols,
              const float *x, int n_tok_arg)
{
    const int n_tok = ONE_TOKEN ? 1 : n_tok_arg;
    const int64_t r0 = (int64_t)blockIdx.x * MV_ROWS;
    const int n_rows = rows - r0 < MV_ROWS ? (int)(rows - r0) : MV_ROWS;

    float acc[MV_ROWS][MV_TOK];
    if (ONE_TOKEN)
        anc_qd_matvec_partial_1tok(TYPE, w + r0 * row_bytes, row_bytes, n_rows, x, cols,
                                   (int32_t)threadIdx.x, MV_THREADS, acc);
    else
        anc_qd_matvec_partial(TYPE, w + r0 * row_bytes, row_bytes, n_rows, x, cols, n_tok,
                              (int32_t)threadIdx.x, MV_THREADS, acc);

    __shared__ float part[MV_WARPS][MV_ROWS][MV_TOK];
    const int lane = (int)threadIdx.x % WARP, warp = (int)threadIdx.x / WARP;
#pragma unroll
    for (int r = 0; r < MV_ROWS; r++) {
#pragma unroll
        for (int t = 0; t < MV_TOK; t++) {
            if (r >= n_rows || t >= n_tok) continue; /* uniform over the block */
            float s = warp_sum(acc[r][t]);
            if (lane == 0) part[warp][r][t] = s;
        }
    }
    __syncthreads();

    const int r = (int)threadIdx.x / MV_TOK, t = (int)threadIdx.x % MV_TOK;
    if (r < n_rows && t < n_tok) { /* r < n_rows <= MV_ROWS */
        float s = 0.0f;
        for (int k = 0; k < MV_WARPS; k++) s += part[k][r][t];
        y[t * rows + r0 + r] = s;
    }
}

extern "C" int anc_cu_matvec(void *stream, float *y, const void *w, uint32_t type, int64_t rows,
                             int64_t cols, const float *x, int32_t n_tok)
{
    if (!anc_qd_supported(type) || !anc_qd_cols_ok(type, cols)) return -1;
    if (n_tok < 1 || n_tok > ANC_CU_MATVEC_MAX_TOK || rows < 0) return -1;
    if (!y || !w || !x || !aligned(w, (uintptr_t)anc_qd_row_align(type))) return -1;
    if (rows == 0) return 0;
    const int64_t blocks = (rows + MV_ROWS - 1) / MV_ROWS;
    if (blocks > MAX_GRID_X) return -1;
    const int64_t row_bytes = anc_qd_row_bytes(type, cols);
    const uint8_t *wb = (const uint8_t *)w;
    return with_type(type, [&](auto tag) {
        constexpr uint32_t T = decltype(tag)::value;
        if (n_tok == 1)
            matvec_kernel<T, true><<<(unsigned)blocks, MV_THREADS, 0, as_stream(stream)>>>(
                y, wb, row_bytes, rows, cols, x, 1);
        else
            matvec_kernel<T, false><<<(unsigned)blocks, MV_THREADS, 0, as_stream(stream)>>>(
                y, wb, row_bytes, rows, cols, x, n_tok);
        return launch_status();
    });
}

/* ---- row decoding (prompt path, embeddings) ------------------------------------ */

/* dst[0..8) = v[0..8): two 16-byte stores when dst allows it. */
static __device__ __forceinline__ void store8(float *dst, const float v[8])
{
    if (((uintptr_t)dst & 15u) == 0) {
        ((float4 *)dst)[0] = make_float4(v[0], v[1], v[2], v[3]);
        ((float4 *)dst)[1] = make_float4(v[4], v[5], v[6], v[7]);
    } else {
        for (int i = 0; i < 8; i++) dst[i] = v[i];
    }
}

/* dst[0..8) = half(v[0..8)), round to nearest even: one 16-byte store when
 * dst allows it (else 2-byte stores: dst is 2-byte aligned). */
static __device__ __forceinline__ void store8(__half *dst, const float v[8])
{
    __half2 h[4];
    for (int k = 0; k < 4; k++) h[k] = __floats2half2_rn(v[2 * k], v[2 * k + 1]);
    if (((uintptr_t)dst & 15u) == 0) {
        uint4 u;
        memcpy(&u, h, sizeof u);
        *(uint4 *)dst = u;
    } else {
        for (int k = 0; k < 4; k++) {
            dst[2 * k] = __low2half(h[k]);
            dst[2 * k + 1] = __high2half(h[k]);
        }
    }
}

/* One element, for the partial last group of a float row. */
static __device__ __forceinline__ void store1(float *dst, float v) { *dst = v; }
static __device__ __forceinline__ void store1(__half *dst, float v) { *dst = __float2half_rn(v); }

/* dst[i][0..cols) = row src(i) of W for i < n_rows, where src(i) =
 * row_ids[i] when row_ids is given, else row0 + i. One thread per work item
 * (one group of one row, anc_qd_decode_item), grid-stride; a partial last
 * group is stored element by element (its loop has the constant bound 8, so
 * v stays in registers). */
template <uint32_t TYPE, typename OUT>
static __global__ void __launch_bounds__(ROW_THREADS)
decode_rows_kernel(OUT *dst, const uint8_t *w, int64_t row_bytes, int64_t cols, int64_t row0,
                   const int32_t *row_ids, int64_t n_rows)
{
    const int64_t n = n_rows * anc_qd_row_groups(cols);
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t k = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; k < n; k += stride) {
        float v[ANC_QD_GROUP];
        int64_t at;
        const int len = anc_qd_decode_item(TYPE, w, row_bytes, cols, row0, row_ids, k, v, &at);
        if (len == ANC_QD_GROUP) {
            store8(dst + at, v);
        } else {
#pragma unroll
            for (int e = 0; e < ANC_QD_GROUP; e++)
                if (e < len) store1(dst + at + e, v[e]);
        }
    }
}

/* Launch decode_rows_kernel for `type` with output element OUT. */
template <typename OUT>
static int launch_decode_rows(void *stream, OUT *dst, const void *w, uint32_t type, int64_t cols,
                              int64_t row0, const int32_t *row_ids, int64_t n_rows)
{
    const int64_t row_bytes = anc_qd_row_bytes(type, cols);
    const unsigned blocks = grid_for(n_rows * anc_qd_row_groups(cols), ROW_THREADS);
    const uint8_t *wb = (const uint8_t *)w;
    return with_type(type, [&](auto tag) {
        constexpr uint32_t T = decltype(tag)::value;
        decode_rows_kernel<T, OUT><<<blocks, ROW_THREADS, 0, as_stream(stream)>>>(
            dst, wb, row_bytes, cols, row0, row_ids, n_rows);
        return launch_status();
    });
}

extern "C" int anc_cu_dequant_rows(void *stream, void *dst, bool out_f16, const void *w,
                                   uint32_t type, int64_t cols, int64_t row0, int64_t n_rows)
{
    if (!anc_qd_supported(type) || !anc_qd_cols_ok(type, cols)) return -1;
    if (row0 < 0 || n_rows < 0 || !dst || !w) return -1;
    if (!aligned(w, (uintptr_t)anc_qd_row_align(type))) return -1;
    if (!aligned(dst, out_f16 ? 2 : 4)) return -1;
    if (n_rows == 0) return 0;
    if (out_f16)
        return launch_decode_rows(stream, (__half *)dst, w, type, cols, row0, nullptr, n_rows);
    return launch_decode_rows(stream, (float *)dst, w, type, cols, row0, nullptr, n_rows);
}

extern "C" int anc_cu_embed(void *stream, float *out, const void *table, uint32_t type,
                            int64_t cols, const int32_t *tokens, int32_t n_tok)
{
    if (!anc_qd_supported(type) || !anc_qd_cols_ok(type, cols)) return -1;
    if (n_tok < 0 || !out || !table || !tokens) return -1;
    if (!aligned(table, (uintptr_t)anc_qd_row_align(type))) return -1;
    if (n_tok == 0) return 0;
    return launch_decode_rows(stream, out, table, type, cols, 0, tokens, (int64_t)n_tok);
}

/* ---- float -> half ---------------------------------------------------------------- */

static __global__ void __launch_bounds__(ROW_THREADS)
f32_to_f16_kernel(__half *dst, const float *src, int64_t n)
{
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        dst[i] = __float2half_rn(src[i]);
}

extern "C" int anc_cu_f32_to_f16(void *stream, void *dst, const float *src, int64_t n)
{
    if (n < 0 || !dst || !src || !aligned(dst, 2)) return -1;
    if (n == 0) return 0;
    f32_to_f16_kernel<<<grid_for(n, ROW_THREADS), ROW_THREADS, 0, as_stream(stream)>>>(
        (__half *)dst, src, n);
    return launch_status();
}
