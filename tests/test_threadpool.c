/* test_threadpool.c — the CPU thread pool (kernels/cpu/threadpool.c) on its
 * own: every item of a job handled exactly once, for sizes that do not
 * divide into the chunks, jobs smaller than one chunk, more threads than
 * cores; a worker held back inside its first chunk (the job completes, the
 * others take over its share); and thousands of back-to-back jobs with
 * different functions and contexts (a descheduled worker must never run a
 * chunk of a later job with an earlier job's function).
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
    long n;
    int n_threads;
    _Atomic int bad_ith; /* calls with ith out of range */
    _Atomic int bad_range;
};

static void count_fn(void *ctx, long lo, long hi, int ith)
{
    struct count_job *j = ctx;
    if (ith < 0 || ith >= j->n_threads) atomic_fetch_add(&j->bad_ith, 1);
    if (lo < 0 || hi > j->n || lo >= hi) {
        atomic_fetch_add(&j->bad_range, 1);
        return;
    }
    for (long i = lo; i < hi; i++) atomic_fetch_add_explicit(&j->hits[i], 1, memory_order_relaxed);
}

/* every item of [0, n) exactly once, with the given grain */
static void check_cover(struct threadpool *tp, long n, long grain)
{
    struct count_job j = {.n = n, .n_threads = threadpool_size(tp)};
    j.hits = calloc((size_t)(n > 0 ? n : 1), sizeof *j.hits);
    threadpool_for(tp, n, grain, count_fn, &j);
    long wrong = 0;
    for (long i = 0; i < n; i++) wrong += atomic_load(&j.hits[i]) != 1;
    CHECK_MSG(wrong == 0, "threads=%d n=%ld grain=%ld: %ld items not handled exactly once",
              threadpool_size(tp), n, grain, wrong);
    CHECK_INT_EQ(atomic_load(&j.bad_ith), 0);
    CHECK_INT_EQ(atomic_load(&j.bad_range), 0);
    free(j.hits);
}

static void test_cover(void)
{
    const int threads[] = {1, 2, 3, 8};
    const long sizes[] = {0, 1, 2, 7, 64, 100, 1000, 4099};
    const long grains[] = {1, 3, 16, 5000};
    for (size_t t = 0; t < sizeof threads / sizeof *threads; t++) {
        struct threadpool *tp = threadpool_new(threads[t]);
        CHECK(tp != NULL);
        if (!tp) continue;
        CHECK_INT_EQ(threadpool_size(tp), threads[t]);
        for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
            for (size_t g = 0; g < sizeof grains / sizeof *grains; g++)
                check_cover(tp, sizes[s], grains[g]);
        /* more chunks than the job word can count: the pool widens the grain */
        check_cover(tp, 200003, 1);
        threadpool_free(tp);
    }
}

static void test_grain(void)
{
    struct threadpool *tp = threadpool_new(2);
    long g = threadpool_grain(tp, 576, 16, 16);
    CHECK(g % 16 == 0 && g >= 16);
    CHECK((576 + g - 1) / g >= THREADPOOL_CHUNKS_PER_THREAD); /* several chunks per thread */
    CHECK_INT_EQ(threadpool_grain(tp, 10, 16, 16), 16);       /* smaller than one chunk */
    CHECK_INT_EQ(threadpool_grain(tp, 1000, 1, 1), 125);
    CHECK_INT_EQ(threadpool_grain(tp, 0, 1, 1), 1);
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
    long n = 4000, grain = 10; /* 400 chunks */
    int held_runs = 0;
    for (int attempt = 0; attempt < 3 && !held_runs; attempt++) {
        struct held_job j = {.n = n};
        j.hits = calloc((size_t)n, sizeof *j.hits);
        threadpool_for(tp, n, grain, held_fn, &j);
        long wrong = 0;
        for (long i = 0; i < n; i++) wrong += atomic_load(&j.hits[i]) != 1;
        CHECK_MSG(wrong == 0, "held worker: %ld items not handled exactly once", wrong);
        if (atomic_load(&j.held)) {
            held_runs++;
            /* the worker slept 300 ms in one chunk; the caller took all the rest */
            CHECK_MSG(atomic_load(&j.caller_items) == n - grain,
                      "the caller ran %ld of %ld items while the worker was held",
                      atomic_load(&j.caller_items), n);
        }
        free(j.hits);
    }
    CHECK_MSG(held_runs > 0, "the worker never took a chunk in 3 jobs");
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
        threadpool_for(tp, N, 1 + k % 7, k % 3 ? tag_add : tag_sub, &j);
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
    test_grain();
    test_cover();
    test_held_worker();
    test_many_jobs(2);
    test_many_jobs(3);
    test_many_jobs(8);
    TEST_EXIT();
}
