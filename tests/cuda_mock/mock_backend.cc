// mock_backend.cc — the real CUDA backend (kernels/cuda/cuda_backend.cu),
// compiled by the host C++ compiler against the mock CUDA runtime and cuBLAS
// of this folder, for tests/test_cuda_mock. Nothing of the backend is
// changed or copied: the file is included as it is.
#include "../../kernels/cuda/cuda_backend.cu"
