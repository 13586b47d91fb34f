/* cuda_module.h — the contract between the program and the CUDA backend
 * module (ancora-cuda.so, built from cuda_backend.cu and the kernels): the
 * module exports one C function, anc_cuda_module_get, returning this table;
 * the loader (cuda_loader.c) opens the module with dlopen only when a
 * backend choice needs the GPU, so the program itself never links a CUDA
 * library. Plain C, no CUDA headers; depends on backend.h only. */
#ifndef ANC_CUDA_MODULE_H
#define ANC_CUDA_MODULE_H

#include <stddef.h>

#include "backend.h"

/* Raise when this table or struct anc_backend / anc_backend_ops change. */
#define ANC_CUDA_MODULE_ABI 1
#define ANC_CUDA_MODULE_ENTRY "anc_cuda_module_get"
#define ANC_CUDA_MODULE_FILE "ancora-cuda.so"

struct anc_cuda_module {
    int abi;                 /* ANC_CUDA_MODULE_ABI as the module was built */
    size_t ops_size;         /* sizeof(struct anc_backend_ops) in the module */
    /* Usable devices; 0 + a few words on why (no driver, no device). */
    int (*device_count)(char *why, size_t whylen);
    /* Device 0 as a backend; NULL + message. */
    struct anc_backend *(*create)(char *err, size_t errlen);
};

#ifdef __cplusplus
extern "C" {
#endif
typedef const struct anc_cuda_module *(*anc_cuda_module_get_fn)(void);
const struct anc_cuda_module *anc_cuda_module_get(void);
#ifdef __cplusplus
}
#endif

#endif
