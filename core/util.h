/* util.h — small helpers shared inside core/ and kernels/: error messages,
 * overflow-checked sizes, clocks, whole-file reads.
 * Depends on the C library only. */
#ifndef ANC_UTIL_H
#define ANC_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define ANC_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define ANC_PRINTF(a, b)
#endif

/* Write a formatted message into err (if err && errlen). */
void anc_set_err(char *err, size_t errlen, const char *fmt, ...) ANC_PRINTF(3, 4);

/* *out = a * b; false on overflow. */
static inline bool anc_mul_ok(size_t a, size_t b, size_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool anc_add_ok(size_t a, size_t b, size_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}

/* Monotonic clock in seconds. */
double anc_now(void);

/* Read a whole file into a malloc'ed buffer (NUL-terminated, *len excludes
 * the NUL). NULL + message on failure. path "-" reads stdin. */
char *anc_read_file(const char *path, size_t *len, char *err, size_t errlen);

/* Aligned allocation (64 bytes), zeroed; free with anc_free_aligned. */
void *anc_alloc_aligned(size_t bytes);
void anc_free_aligned(void *p);

/* Resident set size of this process in bytes (0 if unknown). */
uint64_t anc_rss_bytes(void);
/* The next value of a splitmix64 generator (Steele, Lea & Flood 2014), the
 * engine's seeded source of randomness (sampling, training). */
uint64_t anc_splitmix64(uint64_t *state);
/* Memory the system can give without swapping (MemAvailable), bytes; 0
 * when unknown. */
uint64_t anc_mem_available_bytes(void);

#endif
