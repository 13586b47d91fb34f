/* threadpool.h — a fixed pool of worker threads for the CPU backend.
 * One job at a time: run(fn, ctx) calls fn(ctx, i, n) for i in [0, n) on n
 * threads (the caller is thread 0) and returns when all are done.
 * Depends on pthreads and C11 atomics only. */
#ifndef ANC_THREADPOOL_H
#define ANC_THREADPOOL_H

struct threadpool;

typedef void (*threadpool_fn)(void *ctx, int ith, int nth);

/* n_threads >= 1 (1 = no workers, jobs run on the caller). */
struct threadpool *threadpool_new(int n_threads);
void threadpool_free(struct threadpool *tp);
int threadpool_size(const struct threadpool *tp);
void threadpool_run(struct threadpool *tp, threadpool_fn fn, void *ctx);

/* The slice [*lo, *hi) of n items that thread ith of nth handles;
 * `align` rounds slice boundaries to a multiple (rows of a block). */
static inline void threadpool_split(long n, int ith, int nth, long align, long *lo, long *hi)
{
    long units = (n + align - 1) / align;
    long per = units / nth, rem = units % nth;
    long ulo = ith * per + (ith < rem ? ith : rem);
    long uhi = ulo + per + (ith < rem ? 1 : 0);
    *lo = ulo * align < n ? ulo * align : n;
    *hi = uhi * align < n ? uhi * align : n;
}

#endif
