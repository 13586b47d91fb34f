/* fuzz_model.c — libFuzzer harness for model loading and the forward pass
 * of every architecture family: each input is a GGUF file, loaded with
 * anc_model_load (CPU backend, one thread) from a memory file; when it
 * loads, a session with a small window takes a few tokens and samples one,
 * so the family's hyper-parameters, tensor shapes, sliding windows and
 * soft-caps reach the forward pass. A bad file must give an error message,
 * never a crash, a sanitizer report or an allocation sized by a bad field.
 * Seeds: tests/fuzz/make_model_corpus.py (tiny files of each family and
 * broken variants). Depends on the engine library's core and CPU kernels. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ancora.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Feed a few tokens through a small streaming window (so eviction and a
 * local window both happen) and sample one. */
static void exercise(struct anc_model *m)
{
    struct anc_session_params sp;
    anc_session_params_default(&sp);
    sp.window = 6;
    sp.n_sink = 1;
    sp.sampling.temp = 0;
    char err[ANC_ERR_LEN];
    struct anc_session *s = anc_session_new(m, &sp, err, sizeof err);
    if (!s) return;
    int32_t n_vocab = anc_n_vocab(m);
    int32_t toks[9];
    for (int i = 0; i < 9; i++) toks[i] = (int32_t)((i * 7 + 1) % n_vocab);
    if (anc_session_feed(s, toks, 9, err, sizeof err) == 0) {
        int32_t t = anc_session_sample(s);
        if (t >= 0 && t < n_vocab) anc_session_feed(s, &t, 1, err, sizeof err);
    }
    anc_session_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz_model", 0);
    if (fd < 0) return 0;
    size_t done = 0;
    while (done < size) {
        ssize_t w = write(fd, data + done, size - done);
        if (w <= 0) {
            close(fd);
            return 0;
        }
        done += (size_t)w;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    struct anc_model_params mp;
    anc_model_params_default(&mp);
    mp.n_threads = 1;
    mp.backend = ANC_BACKEND_CPU;
    char err[ANC_ERR_LEN];
    struct anc_model *m = anc_model_load(path, &mp, err, sizeof err);
    if (m) {
        exercise(m);
        anc_model_free(m);
    } else if (!err[0]) {
        __builtin_trap(); /* a refusal must say why */
    }
    close(fd);
    return 0;
}
