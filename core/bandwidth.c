/* bandwidth.c — a streaming read of a buffer much larger than the caches
 * by n threads, to measure the memory read bandwidth that bounds decode
 * speed (PERFORMANCE.md). Depends on pthreads and libc only. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ancora.h"
#include "util.h"

struct bw_arg {
    const uint64_t *p;
    size_t n;        /* 64-bit words */
    uint64_t sink;
};

static void *bw_read(void *a_)
{
    struct bw_arg *a = a_;
    /* four independent accumulators keep several loads in flight */
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = 0; i + 4 <= a->n; i += 4) {
        s0 ^= a->p[i];
        s1 ^= a->p[i + 1];
        s2 ^= a->p[i + 2];
        s3 ^= a->p[i + 3];
    }
    a->sink = s0 ^ s1 ^ s2 ^ s3;
    return NULL;
}

double anc_measure_read_bandwidth(int n_threads, size_t bytes, int reps)
{
    if (n_threads < 1) n_threads = 1;
    if (n_threads > 256) n_threads = 256;
    size_t words = bytes / 8;
    uint64_t *buf = anc_alloc_aligned(words * 8);
    if (!buf) return 0.0;
    for (size_t i = 0; i < words; i++) buf[i] = i * 0x9e3779b97f4a7c15ull; /* touch every page */
    pthread_t th[256];
    struct bw_arg args[256];
    double best = 0.0;
    for (int r = 0; r < reps; r++) {
        size_t per = words / (size_t)n_threads / 4 * 4;
        double t0 = anc_now();
        for (int i = 0; i < n_threads; i++) {
            args[i] = (struct bw_arg){buf + (size_t)i * per, per, 0};
            if (i > 0) pthread_create(&th[i], NULL, bw_read, &args[i]);
        }
        bw_read(&args[0]);
        for (int i = 1; i < n_threads; i++) pthread_join(th[i], NULL);
        double secs = anc_now() - t0;
        double gbs = (double)(per * (size_t)n_threads * 8) / secs / 1e9;
        if (gbs > best) best = gbs;
    }
    volatile uint64_t keep = args[0].sink;
    (void)keep;
    anc_free_aligned(buf);
    return best;
}
