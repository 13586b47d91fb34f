/* cuda_launch.cuh — launch helpers shared by the kernel files of
 * kernels/cuda/ (CUDA C++ only): the stream cast, the launch status, grid
 * sizes for grid-stride loops, warp constants and reductions. Depends on the CUDA runtime
 * only. */
#ifndef ANC_CUDA_LAUNCH_CUH
#define ANC_CUDA_LAUNCH_CUH

#include <cuda_runtime.h>
#include <stdint.h>

/* Threads per block of the row and element-wise kernels. */
#define ROW_THREADS 256
/* Grid cap of grid-stride kernels (enough blocks to fill any current GPU). */
#define MAX_GRID_BLOCKS 65536
/* Every warp-level kernel uses shuffles over full 32-lane warps. */
#define WARP 32
#define FULL_MASK 0xffffffffu

static inline cudaStream_t as_stream(void *stream) { return (cudaStream_t)stream; }

/* Butterfly reductions over a full warp: every lane gets the result. */
static __device__ __forceinline__ float warp_max(float v)
{
    for (int o = WARP / 2; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(FULL_MASK, v, o));
    return v;
}

static __device__ __forceinline__ float warp_sum(float v)
{
    for (int o = WARP / 2; o > 0; o >>= 1) v += __shfl_xor_sync(FULL_MASK, v, o);
    return v;
}

static __device__ __forceinline__ double warp_sum_double(double v)
{
    for (int o = WARP / 2; o > 0; o >>= 1) v += __shfl_xor_sync(FULL_MASK, v, o);
    return v;
}

/* 0 when the launch just enqueued was accepted, else -1. */
static inline int launch_status(void) { return cudaGetLastError() == cudaSuccess ? 0 : -1; }

/* Blocks for a grid-stride loop over n items. */
static inline unsigned grid_for(int64_t n, int threads)
{
    int64_t b = (n + threads - 1) / threads;
    if (b < 1) b = 1;
    return (unsigned)(b < MAX_GRID_BLOCKS ? b : MAX_GRID_BLOCKS);
}

#endif
