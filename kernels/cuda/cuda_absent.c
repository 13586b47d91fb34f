/* cuda_absent.c — the CUDA entry points of backend.h in a build without
 * the CUDA toolkit (configure found no nvcc, or --without-cuda): they say
 * so, and the engine runs on the CPU. Depends on backend.h only. */
#include <stdio.h>

#include "backend.h"

bool anc_backend_cuda_compiled(void) { return false; }

int anc_backend_cuda_device_count(void) { return 0; }

struct anc_backend *anc_backend_cuda_new(char *err, size_t errlen)
{
    snprintf(err, errlen, "this build of ancora has no CUDA backend");
    return NULL;
}
