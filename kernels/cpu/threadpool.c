/* threadpool.c — see threadpool.h.
 *
 * Regions. A job's chunks are split into one contiguous region per thread,
 * and each thread first takes the chunks of its own region in order (so on
 * an idle machine every thread streams one contiguous stretch of the
 * weights, which the hardware prefetcher likes, as with a static split);
 * a thread whose region is empty then takes chunks from the others'
 * regions, so the running threads absorb the share of one that is not.
 *
 * Region words. Each region's 64-bit atomic holds the job's generation
 * (high 32 bits), the region's end (16 bits) and its next chunk (low 16).
 * A thread claims chunk c of generation g with a compare-and-swap from
 * (g, end, c) to (g, end, c + 1), c < end, so a worker that was
 * descheduled while it read generation g can never take a chunk of a later
 * job with g's function: its swap fails once the generation has moved on.
 * The job's other fields (function, context, sizes) are written only after
 * every chunk of the previous job is done, so a successful claim proves
 * that the fields its thread read before it belong to its job.
 *
 * Waiting. A decode step issues hundreds of small jobs; a condition
 * variable wake-up costs tens of microseconds, so idle workers first spin
 * on the job generation, then sleep. Each worker's spin budget adapts: when it
 * spun and still arrived after every chunk was taken (it was descheduled,
 * or the machine is busy), spinning bought nothing and cost a core other
 * programs (and our own caller) could use, so the budget halves; when it
 * slept and missed a job it could have helped with, the wake-up was too
 * slow and the budget doubles. The caller, once no chunk is left to take,
 * spins briefly for the chunks still running and then sleeps until the
 * last one ends. Nobody waits for a worker that has not started a chunk. */
#include "threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

#define SPIN_MAX_NS 2000000L    /* a worker's spin budget: at most 2 ms ... */
#define SPIN_MIN_NS 20000L      /* ... at least 20 µs */
#define SPIN_START_NS 500000L
#define PAUSE_NS 30000L         /* then spins yield the processor between polls */
#define CALLER_SPIN_NS 50000L   /* the caller's wait for running chunks before it sleeps */
#define POLL_EVERY 64           /* pauses between clock reads */

#define GEN_SHIFT 32
#define END_SHIFT 16
#define CHUNK_MASK 0xffffULL
#define MAX_CHUNKS ((long)CHUNK_MASK)

/* one thread's region of the current job, on a cache line of its own */
struct tp_region {
    _Alignas(64) _Atomic uint64_t word; /* generation << 32 | end << 16 | next */
};

/* one cache line per thread: counters only its thread writes */
struct tp_local {
    _Alignas(64) _Atomic uint64_t chunks;
    _Atomic uint64_t late, sleeps, caller_sleeps, jobs, wait_ns;
};

struct threadpool {
    int n;
    pthread_t *threads;
    struct tp_local *local;           /* [n] */
    struct tp_region *regions;        /* [n] */

    /* the current job: written by the caller before `gen` publishes it */
    _Atomic(threadpool_fn) fn;
    _Atomic(void *) ctx;
    _Atomic long n_items, align, n_units, n_chunks;

    _Alignas(64) _Atomic uint32_t gen; /* the current job's generation */
    _Alignas(64) _Atomic long done;     /* chunks of this job finished */
    _Atomic bool caller_asleep;
    _Alignas(64) _Atomic int sleepers;  /* workers asleep on cv */
    _Atomic bool stop;

    pthread_mutex_t mu;                 /* workers sleep on cv */
    pthread_cond_t cv;
    pthread_mutex_t done_mu;            /* the caller sleeps on done_cv */
    pthread_cond_t done_cv;
};

struct worker_arg {
    struct threadpool *tp;
    int ith;
};

static long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

static uint32_t gen_of(uint64_t w) { return (uint32_t)(w >> GEN_SHIFT); }
static long end_of(uint64_t w) { return (long)((w >> END_SHIFT) & CHUNK_MASK); }
static long next_of(uint64_t w) { return (long)(w & CHUNK_MASK); }

/* Claim the next chunk of region r for generation g: its index, or -1 when
 * the region is empty or the job is another one. */
static long claim(struct tp_region *r, uint32_t g)
{
    uint64_t w = atomic_load_explicit(&r->word, memory_order_acquire);
    while (gen_of(w) == g && next_of(w) < end_of(w))
        if (atomic_compare_exchange_weak_explicit(&r->word, &w, w + 1, memory_order_acq_rel,
                                                  memory_order_acquire))
            return next_of(w);
    return -1;
}

static void count(_Atomic uint64_t *c, uint64_t k)
{
    atomic_fetch_add_explicit(c, k, memory_order_relaxed);
}

/* Take and run chunks of generation g, from the thread's own region and
 * then the others', until none is left; the number run. */
static long run_chunks(struct threadpool *tp, uint32_t g, int ith)
{
    threadpool_fn fn = atomic_load_explicit(&tp->fn, memory_order_relaxed);
    void *ctx = atomic_load_explicit(&tp->ctx, memory_order_relaxed);
    long n = atomic_load_explicit(&tp->n_items, memory_order_relaxed);
    long align = atomic_load_explicit(&tp->align, memory_order_relaxed);
    long n_units = atomic_load_explicit(&tp->n_units, memory_order_relaxed);
    long n_chunks = atomic_load_explicit(&tp->n_chunks, memory_order_relaxed);
    long ran = 0;
    for (int k = 0; k < tp->n; k++) {
        struct tp_region *r = &tp->regions[(ith + k) % tp->n];
        for (long c; (c = claim(r, g)) >= 0;) {
            /* chunk c: units [c U / N, (c + 1) U / N) */
            long lo = c * n_units / n_chunks * align, hi = (c + 1) * n_units / n_chunks * align;
            if (hi > n) hi = n;
            fn(ctx, lo, hi, ith);
            ran++;
        }
    }
    /* One count per thread and job, not per chunk (both threads writing
     * that line for every chunk cost a few per cent of a decode step).
     * seq_cst, paired with caller_wait's store of caller_asleep; n_chunks
     * is this job's when ran > 0: a claim succeeded. */
    if (ran > 0 && atomic_fetch_add(&tp->done, ran) + ran == n_chunks &&
        atomic_load(&tp->caller_asleep)) {
        pthread_mutex_lock(&tp->done_mu);
        pthread_cond_signal(&tp->done_cv);
        pthread_mutex_unlock(&tp->done_mu);
    }
    return ran;
}

/* Wait for a generation other than `seen` (or stop). Spins up to *budget
 * ns, then sleeps; *slept says which. */
static uint32_t wait_job(struct threadpool *tp, uint32_t seen, long budget, bool *slept)
{
    *slept = false;
    long t0 = now_ns();
    for (unsigned i = 1;; i++) {
        uint32_t g = atomic_load_explicit(&tp->gen, memory_order_acquire);
        if (g != seen || atomic_load_explicit(&tp->stop, memory_order_relaxed)) return g;
        if (i % POLL_EVERY) {
            CPU_RELAX();
            continue;
        }
        long spent = now_ns() - t0;
        if (spent > budget) break;
        if (spent > PAUSE_NS) sched_yield();
    }
    *slept = true;
    atomic_fetch_add(&tp->sleepers, 1);
    pthread_mutex_lock(&tp->mu);
    while (atomic_load(&tp->gen) == seen && !atomic_load(&tp->stop))
        pthread_cond_wait(&tp->cv, &tp->mu);
    pthread_mutex_unlock(&tp->mu);
    atomic_fetch_sub(&tp->sleepers, 1);
    return atomic_load_explicit(&tp->gen, memory_order_acquire);
}

static void *worker_main(void *p)
{
    struct worker_arg *wa = p;
    struct threadpool *tp = wa->tp;
    int ith = wa->ith;
    free(wa);
    struct tp_local *me = &tp->local[ith];
    uint32_t seen = 0; /* the pool's first generation, not what gen holds by now:
                          a job may already be out before this thread runs */
    long budget = SPIN_START_NS;
    for (;;) {
        bool slept;
        uint32_t g = wait_job(tp, seen, budget, &slept);
        if (atomic_load(&tp->stop)) return NULL;
        seen = g;
        long n_chunks = atomic_load_explicit(&tp->n_chunks, memory_order_relaxed); /* a hint */
        long ran = run_chunks(tp, g, ith);
        count(&me->chunks, (uint64_t)ran);
        if (slept) count(&me->sleeps, 1);
        if (ran == 0 && n_chunks > 1) { /* arrived after every chunk was taken */
            count(&me->late, 1);
            if (slept) budget = budget * 2 < SPIN_MAX_NS ? budget * 2 : SPIN_MAX_NS;
            else budget = budget / 2 > SPIN_MIN_NS ? budget / 2 : SPIN_MIN_NS;
        }
    }
}

struct threadpool *threadpool_new(int n_threads)
{
    if (n_threads < 1) n_threads = 1;
    struct threadpool *tp = calloc(1, sizeof *tp);
    if (!tp) return NULL;
    tp->n = n_threads;
    tp->local = aligned_alloc(64, (size_t)n_threads * sizeof *tp->local);
    tp->regions = aligned_alloc(64, (size_t)n_threads * sizeof *tp->regions);
    if (!tp->local || !tp->regions) {
        free(tp->local);
        free(tp->regions);
        free(tp);
        return NULL;
    }
    for (int i = 0; i < n_threads; i++) atomic_init(&tp->regions[i].word, 0);
    for (int i = 0; i < n_threads; i++) {
        atomic_init(&tp->local[i].chunks, 0);
        atomic_init(&tp->local[i].late, 0);
        atomic_init(&tp->local[i].sleeps, 0);
        atomic_init(&tp->local[i].caller_sleeps, 0);
        atomic_init(&tp->local[i].jobs, 0);
        atomic_init(&tp->local[i].wait_ns, 0);
    }
    pthread_mutex_init(&tp->mu, NULL);
    pthread_cond_init(&tp->cv, NULL);
    pthread_mutex_init(&tp->done_mu, NULL);
    pthread_cond_init(&tp->done_cv, NULL);
    if (n_threads > 1) {
        tp->threads = calloc((size_t)n_threads - 1, sizeof *tp->threads);
        if (!tp->threads) {
            free(tp->local);
            free(tp->regions);
            free(tp);
            return NULL;
        }
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
    pthread_mutex_destroy(&tp->done_mu);
    pthread_cond_destroy(&tp->done_cv);
    free(tp->threads);
    free(tp->local);
    free(tp->regions);
    free(tp);
}

int threadpool_size(const struct threadpool *tp) { return tp->n; }

/* Sleep until every chunk of the job is done. */
static void caller_wait(struct threadpool *tp, long n_chunks)
{
    if (atomic_load_explicit(&tp->done, memory_order_acquire) >= n_chunks) return;
    long t0 = now_ns();
    for (unsigned i = 1; atomic_load_explicit(&tp->done, memory_order_acquire) < n_chunks; i++) {
        if (i % POLL_EVERY) {
            CPU_RELAX();
            continue;
        }
        if (now_ns() - t0 <= CALLER_SPIN_NS) continue;
        count(&tp->local[0].caller_sleeps, 1);
        atomic_store(&tp->caller_asleep, true);
        pthread_mutex_lock(&tp->done_mu);
        while (atomic_load(&tp->done) < n_chunks) pthread_cond_wait(&tp->done_cv, &tp->done_mu);
        pthread_mutex_unlock(&tp->done_mu);
        atomic_store(&tp->caller_asleep, false);
        break;
    }
    count(&tp->local[0].wait_ns, (uint64_t)(now_ns() - t0));
}

/* How many chunks a job of n_units units gets. */
static long chunk_count(const struct threadpool *tp, long n_units, long min_units, int per_thread)
{
    if (min_units < 1) min_units = 1;
    if (per_thread < 1) per_thread = THREADPOOL_CHUNKS_PER_THREAD;
    long want = (long)per_thread * tp->n, most = n_units / min_units;
    long n = want < most ? want : most;
    if (n > MAX_CHUNKS) n = MAX_CHUNKS; /* what a region word can count */
    return n > 1 ? n : 1;
}

void threadpool_for(struct threadpool *tp, long n, long align, long min_units, int per_thread,
                    threadpool_fn fn, void *ctx)
{
    if (n <= 0) return;
    if (align < 1) align = 1;
    long n_units = (n + align - 1) / align;
    long n_chunks = tp->n == 1 ? 1 : chunk_count(tp, n_units, min_units, per_thread);
    if (n_chunks == 1) {
        fn(ctx, 0, n, 0);
        return;
    }
    atomic_store_explicit(&tp->fn, fn, memory_order_relaxed);
    atomic_store_explicit(&tp->ctx, ctx, memory_order_relaxed);
    atomic_store_explicit(&tp->n_items, n, memory_order_relaxed);
    atomic_store_explicit(&tp->align, align, memory_order_relaxed);
    atomic_store_explicit(&tp->n_units, n_units, memory_order_relaxed);
    atomic_store_explicit(&tp->n_chunks, n_chunks, memory_order_relaxed);
    atomic_store_explicit(&tp->done, 0, memory_order_relaxed);
    uint32_t g = atomic_load_explicit(&tp->gen, memory_order_relaxed) + 1;
    for (int i = 0; i < tp->n; i++) { /* region i: chunks [i n / nth, (i + 1) n / nth) */
        uint64_t lo = (uint64_t)(n_chunks * i / tp->n), hi = (uint64_t)(n_chunks * (i + 1) / tp->n);
        atomic_store_explicit(&tp->regions[i].word, (uint64_t)g << GEN_SHIFT | hi << END_SHIFT | lo,
                              memory_order_relaxed);
    }
    atomic_store(&tp->gen, g); /* publishes everything above (seq_cst: see sleepers) */
    if (atomic_load(&tp->sleepers) > 0) {
        pthread_mutex_lock(&tp->mu);
        pthread_cond_broadcast(&tp->cv);
        pthread_mutex_unlock(&tp->mu);
    }
    struct tp_local *me = &tp->local[0];
    count(&me->jobs, 1);
    count(&me->chunks, (uint64_t)run_chunks(tp, g, 0));
    caller_wait(tp, n_chunks);
}

void threadpool_get_stats(struct threadpool *tp, struct threadpool_stats *out)
{
    *out = (struct threadpool_stats){0};
    for (int i = 0; i < tp->n; i++) {
        struct tp_local *l = &tp->local[i];
        out->chunks += atomic_load(&l->chunks);
        out->late += atomic_load(&l->late);
        out->sleeps += atomic_load(&l->sleeps);
    }
    out->jobs = atomic_load(&tp->local[0].jobs);
    out->chunks_caller = atomic_load(&tp->local[0].chunks);
    out->caller_sleeps = atomic_load(&tp->local[0].caller_sleeps);
    out->caller_wait_ns = atomic_load(&tp->local[0].wait_ns);
}
