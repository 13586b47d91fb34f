/* test_util.h — the few helpers every C test uses: checks that report file
 * and line, a skip status, paths to the shared test models.
 * Exit status follows automake: 0 pass, 1 fail, 77 skip. */
#ifndef ANC_TEST_UTIL_H
#define ANC_TEST_UTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int test_failures;

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__,   \
                    #cond);                                                    \
            test_failures++;                                                   \
        }                                                                      \
    } while (0)

#define CHECK_MSG(cond, ...)                                                   \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__,   \
                    #cond);                                                    \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
            test_failures++;                                                   \
        }                                                                      \
    } while (0)

#define CHECK_INT_EQ(a, b)                                                     \
    do {                                                                       \
        long long a_ = (long long)(a), b_ = (long long)(b);                    \
        if (a_ != b_) {                                                        \
            fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n",           \
                    __FILE__, __LINE__, #a, #b, a_, b_);                       \
            test_failures++;                                                   \
        }                                                                      \
    } while (0)

/* |a - b| <= atol + rtol * |b| */
#define CHECK_CLOSE(a, b, atol, rtol)                                          \
    do {                                                                       \
        double a_ = (double)(a), b_ = (double)(b);                             \
        if (!(fabs(a_ - b_) <= (atol) + (rtol) * fabs(b_))) {                  \
            fprintf(stderr, "%s:%d: %s ~ %s failed: %.9g vs %.9g\n", __FILE__,  \
                    __LINE__, #a, #b, a_, b_);                                 \
            test_failures++;                                                   \
        }                                                                      \
    } while (0)

#define TEST_EXIT() return test_failures ? 1 : 0

#define TEST_SKIP(...)                                                         \
    do {                                                                       \
        fprintf(stderr, "SKIP: " __VA_ARGS__);                                 \
        fputc('\n', stderr);                                                   \
        exit(77);                                                              \
    } while (0)

/* Folder of the shared test models: $ANC_MODELS_DIR (set by make check),
 * else ../shared/models relative to the current directory. */
static inline const char *test_models_dir(void)
{
    const char *d = getenv("ANC_MODELS_DIR");
    return d && *d ? d : "../shared/models";
}

/* Full path of a shared model into buf; skips the test (77) when the
 * models folder itself is absent, fails when only the file is missing. */
static inline const char *test_model_path(char *buf, size_t cap, const char *file)
{
    const char *dir = test_models_dir();
    if (access(dir, R_OK) != 0) TEST_SKIP("test models folder %s is absent", dir);
    snprintf(buf, cap, "%s/%s", dir, file);
    if (access(buf, R_OK) != 0) {
        fprintf(stderr, "missing test model %s\n", buf);
        exit(1);
    }
    return buf;
}

#endif
