/* threadpool.c — see threadpool.h. Workers spin briefly on a generation
 * counter (a decode step issues hundreds of small jobs, and a condition
 * variable wake-up costs tens of microseconds), then sleep on a condvar. */
#include "threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

/* Spin this many rounds before sleeping; past YIELD_AFTER rounds each round
 * also yields the processor, so more threads than cores (or a loaded
 * machine) degrade gracefully instead of burning whole time slices. */
#define SPIN_ITERS 20000
#define YIELD_AFTER 256

struct threadpool {
    int n;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    _Atomic unsigned gen;   /* bumped for each job */
    _Atomic int pending;    /* workers still running the current job */
    _Atomic bool stop;
    threadpool_fn fn;
    void *ctx;
};

struct worker_arg {
    struct threadpool *tp;
    int ith;
};

static void *worker_main(void *p)
{
    struct worker_arg *wa = p;
    struct threadpool *tp = wa->tp;
    int ith = wa->ith;
    free(wa);
    unsigned seen = 0;
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load_explicit(&tp->gen, memory_order_acquire)) == seen &&
               !atomic_load(&tp->stop)) {
            if (++spins < SPIN_ITERS) {
                if (spins > YIELD_AFTER) sched_yield();
                else CPU_RELAX();
                continue;
            }
            pthread_mutex_lock(&tp->mu);
            while (atomic_load(&tp->gen) == seen && !atomic_load(&tp->stop))
                pthread_cond_wait(&tp->cv, &tp->mu);
            pthread_mutex_unlock(&tp->mu);
        }
        if (atomic_load(&tp->stop)) return NULL;
        seen = g;
        tp->fn(tp->ctx, ith, tp->n);
        atomic_fetch_sub_explicit(&tp->pending, 1, memory_order_release);
    }
}

struct threadpool *threadpool_new(int n_threads)
{
    if (n_threads < 1) n_threads = 1;
    struct threadpool *tp = calloc(1, sizeof *tp);
    if (!tp) return NULL;
    tp->n = n_threads;
    pthread_mutex_init(&tp->mu, NULL);
    pthread_cond_init(&tp->cv, NULL);
    if (n_threads > 1) {
        tp->threads = calloc((size_t)n_threads - 1, sizeof *tp->threads);
        if (!tp->threads) { free(tp); return NULL; }
        for (int i = 1; i < n_threads; i++) {
            struct worker_arg *wa = malloc(sizeof *wa);
            if (!wa || pthread_create(&tp->threads[i - 1], NULL, worker_main,
                                      (wa->tp = tp, wa->ith = i, wa)) != 0) {
                free(wa);
                tp->n = i; /* keep the ones that started */
                break;
            }
        }
    }
    return tp;
}

void threadpool_free(struct threadpool *tp)
{
    if (!tp) return;
    pthread_mutex_lock(&tp->mu);
    atomic_store(&tp->stop, true);
    pthread_cond_broadcast(&tp->cv);
    pthread_mutex_unlock(&tp->mu);
    for (int i = 1; i < tp->n; i++) pthread_join(tp->threads[i - 1], NULL);
    pthread_mutex_destroy(&tp->mu);
    pthread_cond_destroy(&tp->cv);
    free(tp->threads);
    free(tp);
}

int threadpool_size(const struct threadpool *tp) { return tp->n; }

void threadpool_run(struct threadpool *tp, threadpool_fn fn, void *ctx)
{
    if (tp->n == 1) {
        fn(ctx, 0, 1);
        return;
    }
    tp->fn = fn;
    tp->ctx = ctx;
    atomic_store_explicit(&tp->pending, tp->n - 1, memory_order_relaxed);
    pthread_mutex_lock(&tp->mu);
    atomic_fetch_add_explicit(&tp->gen, 1, memory_order_release);
    pthread_cond_broadcast(&tp->cv);
    pthread_mutex_unlock(&tp->mu);
    fn(ctx, 0, tp->n);
    for (int spins = 0; atomic_load_explicit(&tp->pending, memory_order_acquire) > 0; spins++) {
        if (spins > YIELD_AFTER) sched_yield();
        else CPU_RELAX();
    }
}
