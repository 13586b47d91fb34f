/* threadpool.h — a fixed pool of worker threads for the CPU backend.
 *
 * One job at a time: threadpool_for cuts the items [0, n) into chunks and
 * calls fn(ctx, lo, hi, ith) once per chunk. Each thread (the caller is
 * thread 0) first takes the chunks of its own contiguous region, then
 * those left in the others' regions, and the call returns when every
 * chunk is done. So a worker the operating system has descheduled holds up
 * at most the one chunk it is running: the threads that are running take
 * over the rest of its region. `ith` (0 .. size-1) is stable for the whole
 * call and names the thread's private scratch; which chunks a thread gets
 * is not fixed.
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

/* Run fn over [0, n). The items form units of `align` (rows of a block;
 * the last unit may be shorter) and the units chunks as equal as whole
 * units allow: per_thread chunks per thread (0: THREADPOOL_CHUNKS_PER_THREAD,
 * enough for running threads to absorb an absent one's share while each
 * chunk amortises taking it), fewer when a chunk would be under min_units
 * units. Chunk bounds are multiples of align (but hi may be n). Jobs of
 * one chunk, and every job of a one-thread pool, run on the caller alone. */
#define THREADPOOL_CHUNKS_PER_THREAD 4
void threadpool_for(struct threadpool *tp, long n, long align, long min_units, int per_thread,
                    threadpool_fn fn, void *ctx);

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
