/* cuda_absent.c — the CUDA entry points of backend.h for programs built
 * without the loader (cuda_loader.c), such as the fuzz harness: they say
 * there is no CUDA backend, and the engine runs on the CPU. Depends on
 * backend.h only. */
#include <stdio.h>

#include "backend.h"

bool anc_backend_cuda_compiled(void) { return false; }

int anc_backend_cuda_device_count(void) { return 0; }

int anc_backend_cuda_devices(bool if_driver, char *why, size_t whylen)
{
    snprintf(why, whylen, "this build of ancora has no CUDA backend");
    return 0;
}

bool anc_cuda_driver_present(void) { return false; }

const char *anc_backend_cuda_module_path(void) { return ""; }

struct anc_backend *anc_backend_cuda_new(char *err, size_t errlen)
{
    snprintf(err, errlen, "this build of ancora has no CUDA backend");
    return NULL;
}
