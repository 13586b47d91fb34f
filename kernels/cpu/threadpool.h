/* threadpool.h — a fixed pool of worker threads for the CPU backend.
 *
 * One job at a time: threadpool_for(tp, n, grain, fn, ctx) cuts the items
 * [0, n) into chunks of `grain` items (the last one shorter) and calls
 * fn(ctx, lo, hi, ith) once per chunk. Threads take chunks from a shared
 * counter, the caller (thread 0) among them, and the call returns when
 * every chunk is done. Nothing is assigned to a thread in advance, so a
 * worker the operating system has descheduled holds up at most the one
 * chunk it is running: the threads that are running take over the rest.
 * `ith` (0 .. size-1) is stable for the whole call and names the thread's
 * private scratch; which chunks a thread gets is not fixed.
 *
 * Depends on pthreads and C11 atomics only. */
#ifndef ANC_THREADPOOL_H
#define ANC_THREADPOOL_H

#include <stdint.h>

struct threadpool;

/* handle items [lo, hi) on thread ith */
typedef void (*threadpool_fn)(void *ctx, long lo, long hi, int ith);

/* n_threads >= 1 (1 = no workers, jobs run on the caller). */
struct threadpool *threadpool_new(int n_threads);
void threadpool_free(struct threadpool *tp);
int threadpool_size(const struct threadpool *tp);

/* Run fn over [0, n) in chunks of grain items (grain >= 1). Jobs of one
 * chunk, and every job of a one-thread pool, run on the caller alone. */
void threadpool_for(struct threadpool *tp, long n, long grain, threadpool_fn fn, void *ctx);

/* A grain for n items: about THREADPOOL_CHUNKS_PER_THREAD chunks per
 * thread (so running threads can absorb an absent one's share, while each
 * chunk stays large enough to amortise taking it), a multiple of align
 * (rows of a block), and at least min_items. */
#define THREADPOOL_CHUNKS_PER_THREAD 4
long threadpool_grain(const struct threadpool *tp, long n, long align, long min_items);

/* What the pool has done since it was made, for tests and tuning. */
struct threadpool_stats {
    uint64_t jobs;         /* jobs handed to the workers (not run inline) */
    uint64_t chunks;       /* chunks of those jobs */
    uint64_t chunks_caller; /* of which the caller ran */
    uint64_t late;         /* times a worker found a job's chunks all taken */
    uint64_t sleeps;       /* times a worker went to sleep */
    uint64_t caller_sleeps; /* times the caller slept waiting for a chunk */
    uint64_t caller_wait_ns; /* time the caller spent waiting for others' chunks */
};
void threadpool_get_stats(struct threadpool *tp, struct threadpool_stats *out);

#endif
