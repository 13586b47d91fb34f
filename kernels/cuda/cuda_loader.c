/* cuda_loader.c — the CUDA entry points of backend.h. In a build with the
 * CUDA backend, the backend itself lives in a module (ancora-cuda.so, see
 * cuda_module.h) opened with dlopen only when a backend choice needs the
 * GPU, so the program never links a CUDA library and a CPU run maps none.
 * In a build without it (no ANC_HAVE_CUDA), nothing is ever opened and
 * every answer is "this build has no CUDA backend".
 *
 * Where the module is looked for, first found wins:
 *   1. $ANCORA_CUDA_MODULE, when set (then nowhere else);
 *   2. next to the program (the build tree);
 *   3. PREFIX/pkglibdir when the program runs from PREFIX/bindir (an
 *      installed tree, also one staged with DESTDIR or moved elsewhere);
 *   4. pkglibdir as configured.
 * The driver probe for --backend auto is cheap on purpose: the device
 * files /dev/nvidiactl or /dev/nvidia0, /proc/driver/nvidia/version, or
 * WSL's /dev/dxg; nothing is loaded when none exists. A program linked
 * with the backend itself (the mock-runtime tests, in every build) uses
 * that copy.
 * Depends on backend.h and cuda_module.h only (and libdl); no CUDA headers. */
#ifdef HAVE_CONFIG_H
#include "config.h" /* ANC_HAVE_CUDA */
#endif
#include <dlfcn.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "cuda_module.h"

#ifndef ANC_PKGLIBDIR
#define ANC_PKGLIBDIR "/usr/local/lib/ancora"
#endif
#ifndef ANC_BINDIR
#define ANC_BINDIR "/usr/local/bin"
#endif

/* Defined only when the backend is linked into the program (tests). */
#pragma weak anc_cuda_module_get

#define MAX_CANDIDATES 4

static struct {
    bool tried;
    const struct anc_cuda_module *mod;
    char path[PATH_MAX];     /* the module opened, or "" */
    char why[512];           /* why it could not be, when mod is NULL */
} loader;

/* snprintf that may cut long paths short (messages and paths only). */
static void say(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *buf, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, n, fmt, ap);
    va_end(ap);
}

bool anc_backend_cuda_compiled(void)
{
#ifdef ANC_HAVE_CUDA
    return true;
#else
    return anc_cuda_module_get != NULL;
#endif
}

bool anc_cuda_driver_present(void)
{
    static const char *const probes[] = {"/dev/nvidiactl", "/dev/nvidia0",
                                         "/proc/driver/nvidia/version", "/dev/dxg"};
    for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++)
        if (access(probes[i], F_OK) == 0) return true;
    return false;
}

/* The folder of the running program ("" when unknown). */
static void exe_dir(char *dir, size_t n)
{
    char buf[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", buf, sizeof buf - 1);
    dir[0] = '\0';
    if (len <= 0) return;
    buf[len] = '\0';
    char *slash = strrchr(buf, '/');
    if (!slash) return;
    *slash = '\0';
    say(dir, n, "%s", buf);
}

/* The places to look, in order (see the top of the file). */
static int candidates(char out[][PATH_MAX])
{
    int n = 0;
    char dir[PATH_MAX];
    exe_dir(dir, sizeof dir);
    if (dir[0]) {
        say(out[n++], PATH_MAX, "%s/%s", dir, ANC_CUDA_MODULE_FILE);
        size_t dl = strlen(dir), bl = strlen(ANC_BINDIR);
        if (dl > bl && strcmp(dir + dl - bl, ANC_BINDIR) == 0)
            say(out[n++], PATH_MAX, "%.*s%s/%s", (int)(dl - bl), dir, ANC_PKGLIBDIR,
                     ANC_CUDA_MODULE_FILE);
    }
    say(out[n++], PATH_MAX, "%s/%s", ANC_PKGLIBDIR, ANC_CUDA_MODULE_FILE);
    return n;
}

/* Where the module is: true + path, or false + why (looked where). */
static bool find_module(char *path, size_t n, char *why, size_t whylen)
{
    const char *env = getenv("ANCORA_CUDA_MODULE");
    if (env && *env) {
        say(path, n, "%s", env);
        if (access(path, R_OK) == 0) return true;
        say(why, whylen, "the CUDA module is missing (ANCORA_CUDA_MODULE=%s cannot be read)", env);
        return false;
    }
    char c[MAX_CANDIDATES][PATH_MAX];
    int k = candidates(c);
    for (int i = 0; i < k; i++)
        if (access(c[i], R_OK) == 0) {
            say(path, n, "%s", c[i]);
            return true;
        }
    say(why, whylen, "the CUDA module is missing (no %s next to the program or in %s; "
             "ANCORA_CUDA_MODULE=PATH names one)", ANC_CUDA_MODULE_FILE, ANC_PKGLIBDIR);
    return false;
}

/* dlopen's message in words: a library the module needs is missing, the
 * file is no module, or something else the loader said. */
static void explain_dlerror(const char *path, const char *msg, char *why, size_t whylen)
{
    size_t pl = strlen(path);
    const char *cannot = strstr(msg, ": cannot open shared object file");
    if (cannot && strncmp(msg, path, pl) != 0)
        say(why, whylen, "the CUDA module %s cannot load its libraries: %.*s is missing "
                 "(install the CUDA runtime and cuBLAS, or add their folder to LD_LIBRARY_PATH)",
                 path, (int)(cannot - msg), msg);
    else if (strncmp(msg, path, pl) == 0 && msg[pl] == ':')
        say(why, whylen, "%s is not a loadable CUDA module (%s)", path, msg + pl + 2);
    else
        say(why, whylen, "the CUDA module %s cannot be loaded (%s)", path, msg);
}

/* Open the module at path and check that it is one of ours. */
static const struct anc_cuda_module *open_module(const char *path, char *why, size_t whylen)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *msg = dlerror();
        explain_dlerror(path, msg ? msg : "unknown error", why, whylen);
        return NULL;
    }
    anc_cuda_module_get_fn get;
    *(void **)&get = dlsym(h, ANC_CUDA_MODULE_ENTRY);
    const struct anc_cuda_module *m = get ? get() : NULL;
    if (!m) {
        say(why, whylen, "%s is not a CUDA module of ancora (no %s)", path, ANC_CUDA_MODULE_ENTRY);
    } else if (m->abi != ANC_CUDA_MODULE_ABI || m->ops_size != sizeof(struct anc_backend_ops)) {
        say(why, whylen, "the CUDA module %s belongs to another version of ancora "
                 "(interface %d, this program has %d)", path, m->abi, ANC_CUDA_MODULE_ABI);
        m = NULL;
    }
    if (!m) dlclose(h);
    return m; /* kept open for the life of the process when used */
}

/* The module, loaded once; NULL + why. */
static const struct anc_cuda_module *module(char *why, size_t whylen)
{
    if (!loader.tried) {
        loader.tried = true;
        if (anc_cuda_module_get) {
            loader.mod = anc_cuda_module_get();
            say(loader.path, sizeof loader.path, "built into the program");
        } else if (!anc_backend_cuda_compiled()) {
            say(loader.why, sizeof loader.why, "this build of ancora has no CUDA backend");
        } else if (find_module(loader.path, sizeof loader.path, loader.why, sizeof loader.why)) {
            loader.mod = open_module(loader.path, loader.why, sizeof loader.why);
            if (!loader.mod) loader.path[0] = '\0';
        } else {
            loader.path[0] = '\0';
        }
    }
    if (!loader.mod) say(why, whylen, "%s", loader.why);
    return loader.mod;
}

const char *anc_backend_cuda_module_path(void) { return loader.mod ? loader.path : ""; }

int anc_backend_cuda_devices(bool if_driver, char *why, size_t whylen)
{
    const char *env = getenv("ANCORA_CUDA_MODULE");
    if (if_driver && !(env && *env) && !anc_cuda_module_get && !anc_cuda_driver_present()) {
        say(why, whylen, "no NVIDIA driver (none of /dev/nvidiactl, /dev/nvidia0, "
                 "/proc/driver/nvidia, /dev/dxg exists)");
        return 0;
    }
    const struct anc_cuda_module *m = module(why, whylen);
    return m ? m->device_count(why, whylen) : 0;
}

int anc_backend_cuda_device_count(void)
{
    char why[512];
    return anc_backend_cuda_devices(false, why, sizeof why);
}

struct anc_backend *anc_backend_cuda_new(char *err, size_t errlen)
{
    const struct anc_cuda_module *m = module(err, errlen);
    return m ? m->create(err, errlen) : NULL;
}
