/* cuda_runtime.h (mock) — the part of the CUDA runtime API that
 * kernels/cuda/cuda_backend.cu uses, implemented on the CPU by
 * tests/cuda_mock/mock_cuda.c so the backend's host code (op recording,
 * staging, graphs, memory accounting) runs in tests without a GPU.
 * "Device" memory lives in an arena the host cannot touch outside mock
 * device work (PROT_NONE), so engine code that dereferences a device pointer
 * crashes here as it would on a GPU. Streams execute work at once, or record
 * it while capturing; graphs replay the records (reading pinned host memory
 * at replay time, as a real graph does). Only for tests/test_cuda_mock. */
#ifndef ANC_MOCK_CUDA_RUNTIME_H
#define ANC_MOCK_CUDA_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum cudaError {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorStreamCaptureUnsupported = 900,
    cudaErrorGraphExecUpdateFailure = 910,
    cudaErrorInsufficientDriver = 35,
    cudaErrorNoDevice = 100,
} cudaError_t;

typedef struct mock_stream *cudaStream_t;
typedef struct mock_graph *cudaGraph_t;
typedef struct mock_graph *cudaGraphExec_t;

enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
};
enum cudaStreamCaptureMode { cudaStreamCaptureModeGlobal = 0, cudaStreamCaptureModeThreadLocal = 1 };
enum cudaDeviceAttr { cudaDevAttrMemoryClockRate = 36, cudaDevAttrGlobalMemoryBusWidth = 37 };
#define cudaStreamNonBlocking 0x01
#define cudaHostAllocDefault 0x00

typedef struct cudaDeviceProp {
    char name[256];
    int multiProcessorCount;
    int major, minor;
} cudaDeviceProp;

typedef struct cudaGraphExecUpdateResultInfo {
    int result;
} cudaGraphExecUpdateResultInfo;

cudaError_t cudaGetDeviceCount(int *n);
cudaError_t cudaSetDevice(int dev);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int dev);
cudaError_t cudaDeviceGetAttribute(int *v, enum cudaDeviceAttr a, int dev);
cudaError_t cudaGetLastError(void);
const char *cudaGetErrorString(cudaError_t e);
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total);
cudaError_t cudaMalloc(void **p, size_t bytes);
cudaError_t cudaFree(void *p);
cudaError_t cudaHostAlloc(void **p, size_t bytes, unsigned flags);
cudaError_t cudaFreeHost(void *p);
cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, enum cudaMemcpyKind k);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, enum cudaMemcpyKind k,
                            cudaStream_t s);
cudaError_t cudaMemsetAsync(void *p, int v, size_t bytes, cudaStream_t s);
cudaError_t cudaDeviceSynchronize(void);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaStreamBeginCapture(cudaStream_t s, enum cudaStreamCaptureMode m);
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *g);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *e, cudaGraph_t g, unsigned long long flags);
cudaError_t cudaGraphExecUpdate(cudaGraphExec_t e, cudaGraph_t g, cudaGraphExecUpdateResultInfo *info);
cudaError_t cudaGraphLaunch(cudaGraphExec_t e, cudaStream_t s);
cudaError_t cudaGraphDestroy(cudaGraph_t g);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t e);

/* ---- mock-only ------------------------------------------------------------ */

/* Run fn(args) on the stream: now, or recorded when the stream captures.
 * args (size bytes) is copied. Device memory is accessible during fn. */
void mock_enqueue(cudaStream_t s, void (*fn)(const void *args), const void *args, size_t size);
/* Abort the test unless [p, p + bytes) lies inside one live device allocation. */
void mock_check_device(const void *p, size_t bytes, const char *what);
/* Counters for the test. */
struct mock_stats {
    long launches, graph_launches, graph_updates, graph_instantiates, captures;
    size_t device_bytes;
};
void mock_get_stats(struct mock_stats *out);

#ifdef __cplusplus
}
#endif

#endif
