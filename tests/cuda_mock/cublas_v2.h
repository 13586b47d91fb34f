/* cublas_v2.h (mock) — the cuBLAS calls kernels/cuda/cuda_backend.cu makes,
 * computed on the CPU by tests/cuda_mock/mock_cuda.c (column-major GEMM
 * with float accumulation). Only for tests/test_cuda_mock. */
#ifndef ANC_MOCK_CUBLAS_V2_H
#define ANC_MOCK_CUBLAS_V2_H

#include "cuda_runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum cublasStatus { CUBLAS_STATUS_SUCCESS = 0, CUBLAS_STATUS_INVALID_VALUE = 7 } cublasStatus_t;
typedef enum cublasOperation { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 } cublasOperation_t;
typedef enum cudaDataType { CUDA_R_32F = 0, CUDA_R_16F = 2 } cudaDataType_t;
typedef enum cublasComputeType { CUBLAS_COMPUTE_32F = 68 } cublasComputeType_t;
typedef enum cublasGemmAlgo { CUBLAS_GEMM_DEFAULT = -1 } cublasGemmAlgo_t;
typedef struct mock_blas *cublasHandle_t;

cublasStatus_t cublasCreate(cublasHandle_t *h);
cublasStatus_t cublasDestroy(cublasHandle_t h);
cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s);
cublasStatus_t cublasSetWorkspace(cublasHandle_t h, void *ws, size_t bytes);
cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                           int k, const float *alpha, const float *a, int lda, const float *b, int ldb,
                           const float *beta, float *c, int ldc);
cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                            int k, const void *alpha, const void *a, cudaDataType_t at, int lda,
                            const void *b, cudaDataType_t bt, int ldb, const void *beta, void *c,
                            cudaDataType_t ct, int ldc, cublasComputeType_t comp, cublasGemmAlgo_t algo);

#ifdef __cplusplus
}
#endif

#endif
