/* tokenizer_check.h — checks both tokenizer tests use: the concatenated
 * pieces of an id sequence, and "this text encodes to exactly these ids".
 * Test-only, header-only; depends on core/tokenizer.h and test_util.h. */
#ifndef ANC_TOKENIZER_CHECK_H
#define ANC_TOKENIZER_CHECK_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"
#include "tokenizer.h"

/* Concatenated pieces (exact length, NULs included); caller frees. */
static inline char *pieces(const struct tokenizer *t, const int32_t *ids, size_t n, size_t *len)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) total += tokenizer_piece(t, i ? ids[i - 1] : -1, ids[i], NULL, 0);
    char *s = malloc(total + 1);
    if (!s) exit(1);
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        w += tokenizer_piece(t, i ? ids[i - 1] : -1, ids[i], s + w, total + 1 - w);
    CHECK_INT_EQ(w, total);
    s[total] = '\0';
    *len = total;
    return s;
}

static inline void print_ids(const char *what, const int32_t *ids, size_t n)
{
    fprintf(stderr, "  %s:", what);
    for (size_t i = 0; i < n && i < 64; i++) fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, n > 64 ? " ...\n" : "\n");
}

/* Encode and compare with the expected ids (file/line of the caller). */
static inline bool encode_is(const struct tokenizer *t, const char *text, size_t len, bool bos,
                             const int32_t *want, size_t n_want, const char *file, int line)
{
    int32_t *ids = NULL;
    size_t n = 0;
    if (!tokenizer_encode(t, text, len, bos, &ids, &n)) {
        fprintf(stderr, "%s:%d: encode failed\n", file, line);
        test_failures++;
        return false;
    }
    bool same = n == n_want && (n == 0 || memcmp(ids, want, n * sizeof *ids) == 0);
    if (!same) {
        fprintf(stderr, "%s:%d: wrong ids for \"%.*s\"\n", file, line, (int)len, text);
        print_ids("got ", ids, n);
        print_ids("want", want, n_want);
        test_failures++;
    }
    free(ids);
    return same;
}
#define ENCODE_IS(t, text, bos, ...)                                                   \
    do {                                                                               \
        static const int32_t want_[] = {__VA_ARGS__};                                  \
        encode_is(t, text, sizeof(text) - 1, bos, want_, sizeof want_ / sizeof *want_,  \
                  __FILE__, __LINE__);                                                 \
    } while (0)
#define ENCODE_NONE(t, text, bos) \
    encode_is(t, text, sizeof(text) - 1, bos, NULL, 0, __FILE__, __LINE__)

#endif
