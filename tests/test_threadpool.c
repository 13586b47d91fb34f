/* test_threadpool.c — the CPU thread pool (kernels/cpu/threadpool.c) on its
 * own: every item of a job handled exactly once, for sizes that do not
 * divide into the chunks, jobs smaller than one chunk, more threads than
 * cores, chunks on the unit grid and as equal as whole units allow; a
 * worker held back inside its first chunk of the pool's first job (the job
 * completes, the caller takes over the rest of the worker's region); and
 * thousands of back-to-back jobs with different functions and contexts (a
 * descheduled worker must never run a chunk of a later job with an earlier
 * job's function).
 * Built also with ThreadSanitizer by scripts/test-all when it is there.
 * Depends on kernels/cpu/threadpool.h only. */
#include "threadpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "test_util.h"

struct count_job {
    _Atomic int *hits;   /* [n] times each item was handled */
    long n, align;
    int n_threads;
    _Atomic int bad_ith; /* calls with ith out of range */
    _Atomic int bad_range; /* empty, outside [0, n), or not on a multiple of align */
    _Atomic long n_calls, min_units, max_units; /* chunk sizes in units */
};

static void count_fn(void *ctx, long lo, long hi, int ith)
{
    struct count_job *j = ctx;
    if (ith < 0 || ith >= j->n_threads) atomic_fetch_add(&j->bad_ith, 1);
    if (lo < 0 || hi > j->n || lo >= hi || lo % j->align || (hi % j->align && hi != j->n)) {
        atomic_fetch_add(&j->bad_range, 1);
        return;
    }
    long units = (hi - lo + j->align - 1) / j->align;
    atomic_fetch_add(&j->n_calls, 1);
    for (long m = atomic_load(&j->min_units); units < m && !atomic_compare_exchange_weak(&j->min_units, &m, units);) {}
    for (long m = atomic_load(&j->max_units); units > m && !atomic_compare_exchange_weak(&j->max_units, &m, units);) {}
    for (long i = lo; i < hi; i++) atomic_fetch_add_explicit(&j->hits[i], 1, memory_order_relaxed);
}

/* Every item of [0, n) exactly once; chunk bounds on multiples of align;
 * the expected number of chunks; whole chunks (the last unit aside) within
 * one unit of each other. */
static void check_cover(struct threadpool *tp, long n, long align, long min_units, int per_thread)
{
    int nth = threadpool_size(tp);
    struct count_job j = {.n = n, .align = align, .n_threads = nth};
    atomic_init(&j.min_units, n + 1);
    j.hits = calloc((size_t)(n > 0 ? n : 1), sizeof *j.hits);
    threadpool_for(tp, n, align, min_units, per_thread, count_fn, &j);
    long wrong = 0;
    for (long i = 0; i < n; i++) wrong += atomic_load(&j.hits[i]) != 1;
    char what[96];
    snprintf(what, sizeof what, "threads=%d n=%ld align=%ld min=%ld per=%d", nth, n, align, min_units,
             per_thread);
    CHECK_MSG(wrong == 0, "%s: %ld items not handled exactly once", what, wrong);
    CHECK_MSG(atomic_load(&j.bad_ith) == 0, "%s: a thread index out of range", what);
    CHECK_MSG(atomic_load(&j.bad_range) == 0, "%s: a chunk off the unit grid", what);
    if (n <= 0) {
        free(j.hits);
        return;
    }
    long units = (n + align - 1) / align;
    long want = (long)(per_thread > 0 ? per_thread : THREADPOOL_CHUNKS_PER_THREAD) * nth;
    if (want > units / min_units) want = units / min_units;
    if (want < 1 || nth == 1) want = 1;
    CHECK_MSG(atomic_load(&j.n_calls) == want, "%s: %ld chunks, want %ld", what,
              atomic_load(&j.n_calls), want);
    CHECK_MSG(atomic_load(&j.max_units) - atomic_load(&j.min_units) <= 1 || want == 1,
              "%s: chunks of %ld to %ld units", what, atomic_load(&j.min_units),
              atomic_load(&j.max_units));
    free(j.hits);
}

static void test_cover(void)
{
    const int threads[] = {1, 2, 3, 8};
    const long sizes[] = {0, 1, 2, 7, 64, 100, 576, 1000, 4099};
    const long aligns[] = {1, 3, 16};
    const long mins[] = {1, 5, 5000};
    for (size_t t = 0; t < sizeof threads / sizeof *threads; t++) {
        struct threadpool *tp = threadpool_new(threads[t]);
        CHECK(tp != NULL);
        if (!tp) continue;
        CHECK_INT_EQ(threadpool_size(tp), threads[t]);
        for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
            for (size_t a = 0; a < sizeof aligns / sizeof *aligns; a++)
                for (size_t m = 0; m < sizeof mins / sizeof *mins; m++) {
                    check_cover(tp, sizes[s], aligns[a], mins[m], 0);
                    check_cover(tp, sizes[s], aligns[a], mins[m], 16);
                }
        threadpool_free(tp);
    }
    /* SmolLM2's 576-row matrices on 2 threads, in 16-row panels: 8 chunks
     * of 4 or 5 panels, 18 panels per thread's region */
    struct threadpool *tp = threadpool_new(2);
    check_cover(tp, 576, 16, 1, 0);
    threadpool_free(tp);
}

/* A worker that sleeps inside the first chunk it takes. */
struct held_job {
    _Atomic int *hits;
    long n;
    _Atomic int held;      /* a worker has taken its chunk and is asleep in it */
    _Atomic long caller_items;
    _Atomic int caller_started;
};

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {}
}

static void held_fn(void *ctx, long lo, long hi, int ith)
{
    struct held_job *j = ctx;
    if (ith != 0) {
        int expected = 0;
        if (atomic_compare_exchange_strong(&j->held, &expected, 1)) sleep_ms(300);
    } else {
        /* the caller's first chunk waits (up to 5 s) for a worker to be held,
         * so the test does not depend on how soon the worker is scheduled */
        int expected = 0;
        if (atomic_compare_exchange_strong(&j->caller_started, &expected, 1))
            for (int ms = 0; ms < 5000 && !atomic_load(&j->held); ms++) sleep_ms(1);
        atomic_fetch_add(&j->caller_items, hi - lo);
    }
    for (long i = lo; i < hi; i++) atomic_fetch_add(&j->hits[i], 1);
}

static void test_held_worker(void)
{
    struct threadpool *tp = threadpool_new(2);
    long n = 4000; /* 8 chunks of 500, 4 per thread */
    long chunk = n / (2 * THREADPOOL_CHUNKS_PER_THREAD);
    int held_runs = 0;
    /* one job, the pool's very first: a worker started after the job was
     * published must still take part (the caller waits up to 5 s for it) */
    for (int attempt = 0; attempt < 1; attempt++) {
        struct held_job j = {.n = n};
        j.hits = calloc((size_t)n, sizeof *j.hits);
        threadpool_for(tp, n, 1, 1, 0, held_fn, &j);
        long wrong = 0;
        for (long i = 0; i < n; i++) wrong += atomic_load(&j.hits[i]) != 1;
        CHECK_MSG(wrong == 0, "held worker: %ld items not handled exactly once", wrong);
        if (atomic_load(&j.held)) {
            held_runs++;
            /* the worker slept 300 ms in one chunk; the caller took all the rest */
            CHECK_MSG(atomic_load(&j.caller_items) == n - chunk,
                      "the caller ran %ld of %ld items while the worker was held",
                      atomic_load(&j.caller_items), n);
        }
        free(j.hits);
    }
    CHECK_MSG(held_runs > 0, "the worker never took a chunk of the pool's first job");
    struct threadpool_stats st;
    threadpool_get_stats(tp, &st);
    CHECK(st.chunks_caller <= st.chunks);
    CHECK(st.jobs > 0);
    threadpool_free(tp);
}

/* Back-to-back jobs alternating two functions whose results tell which
 * job (by its tag) each chunk ran under. */
struct tag_job {
    int32_t *out;   /* [n] */
    long n;
    int32_t tag;
};

static void tag_add(void *ctx, long lo, long hi, int ith)
{
    (void)ith;
    struct tag_job *j = ctx;
    for (long i = lo; i < hi; i++) j->out[i] += j->tag;
}

static void tag_sub(void *ctx, long lo, long hi, int ith)
{
    (void)ith;
    struct tag_job *j = ctx;
    for (long i = lo; i < hi; i++) j->out[i] -= 2 * j->tag;
}

static void test_many_jobs(int n_threads)
{
    struct threadpool *tp = threadpool_new(n_threads);
    enum { N = 96, JOBS = 20000 };
    int32_t *a = calloc(N, sizeof *a), *b = calloc(N, sizeof *b);
    int64_t expect = 0;
    for (int k = 0; k < JOBS; k++) {
        struct tag_job j = {k % 2 ? b : a, N, k + 1};
        threadpool_for(tp, N, 1 + k % 7, 1, k % 5, k % 3 ? tag_add : tag_sub, &j);
        if (k % 2 == 0) expect += k % 3 ? k + 1 : -2 * (k + 1);
    }
    int64_t expect_b = 0;
    for (int k = 1; k < JOBS; k += 2) expect_b += k % 3 ? k + 1 : -2 * (k + 1);
    long wrong = 0;
    for (int i = 0; i < N; i++) wrong += a[i] != expect || b[i] != expect_b;
    CHECK_MSG(wrong == 0, "threads=%d: %ld items wrong after %d jobs", n_threads, wrong, JOBS);
    free(a);
    free(b);
    threadpool_free(tp);
}

int main(void)
{
    test_cover();
    test_held_worker();
    test_many_jobs(2);
    test_many_jobs(3);
    test_many_jobs(8);
    TEST_EXIT();
}
