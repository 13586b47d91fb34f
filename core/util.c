/* util.c — see util.h. Depends on the C library and POSIX only. */
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <unistd.h>

void anc_set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

double anc_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

char *anc_read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *fp = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!fp) {
        anc_set_err(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    if (!buf) goto oom;
    for (;;) {
        if (n + 1 >= cap) {
            if (cap > SIZE_MAX / 2) goto oom;
            char *nb = realloc(buf, cap * 2);
            if (!nb) goto oom;
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - 1 - n, fp);
        n += got;
        if (got == 0) break;
    }
    if (ferror(fp)) {
        anc_set_err(err, errlen, "cannot read %s: %s", path, strerror(errno));
        free(buf);
        if (fp != stdin) fclose(fp);
        return NULL;
    }
    if (fp != stdin) fclose(fp);
    buf[n] = '\0';
    *len = n;
    return buf;
oom:
    free(buf);
    if (fp != stdin) fclose(fp);
    anc_set_err(err, errlen, "out of memory reading %s", path);
    return NULL;
}

void *anc_alloc_aligned(size_t bytes)
{
    void *p = NULL;
    if (bytes == 0) bytes = 1;
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded < bytes) return NULL;
    if (posix_memalign(&p, 64, rounded) != 0) return NULL;
    memset(p, 0, rounded);
    return p;
}

void anc_free_aligned(void *p) { free(p); }

uint64_t anc_mem_available_bytes(void)
{
    uint64_t avail = 0;
    FILE *fp = fopen("/proc/meminfo", "r");
    if (fp) {
        char line[128];
        unsigned long long kb;
        while (fgets(line, sizeof line, fp))
            if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
                avail = (uint64_t)kb * 1024;
                break;
            }
        fclose(fp);
    }
    /* an address-space limit (ulimit -v) bounds it too */
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        unsigned long long size = 0;
        long page = sysconf(_SC_PAGESIZE);
        fp = fopen("/proc/self/statm", "r");
        if (fp) {
            if (fscanf(fp, "%llu", &size) != 1) size = 0;
            fclose(fp);
        }
        uint64_t used = (uint64_t)size * (uint64_t)(page > 0 ? page : 4096);
        uint64_t left = rl.rlim_cur > used ? rl.rlim_cur - used : 1;
        if (avail == 0 || left < avail) avail = left;
    }
    return avail;
}

uint64_t anc_rss_bytes(void)
{
    FILE *fp = fopen("/proc/self/statm", "r");
    if (!fp) return 0;
    unsigned long long size = 0, resident = 0;
    int got = fscanf(fp, "%llu %llu", &size, &resident);
    fclose(fp);
    if (got != 2) return 0;
    long page = sysconf(_SC_PAGESIZE);
    return (uint64_t)resident * (uint64_t)(page > 0 ? page : 4096);
}

uint64_t anc_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
