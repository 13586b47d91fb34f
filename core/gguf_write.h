/* gguf_write.h — a streaming GGUF v3 writer: metadata is buffered, tensor
 * data is produced row block by row block by a callback, so multi-GB files
 * are written with little memory. Internal to core/; no UI libraries. */
#ifndef ANC_GGUF_WRITE_H
#define ANC_GGUF_WRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gguf.h"

struct gguf_writer;

/* Fill rows [row0, row0 + n_rows) of tensor `index` into buf (n_rows whole
 * rows of the tensor's type). Return false to abort. */
typedef bool (*gguf_fill_fn)(void *ctx, size_t index, int64_t row0, int64_t n_rows, void *buf);

struct gguf_writer *gguf_writer_new(void);
void gguf_writer_free(struct gguf_writer *w);

bool gguf_writer_u32(struct gguf_writer *w, const char *key, uint32_t v);
bool gguf_writer_f32(struct gguf_writer *w, const char *key, float v);
bool gguf_writer_str(struct gguf_writer *w, const char *key, const char *v);
/* Copy a key/value pair from a file being read (any type, arrays too). */
bool gguf_writer_copy_kv(struct gguf_writer *w, const struct gguf_kv *kv);

/* Declare a 1-D (ne1 = 1) or 2-D tensor; returns its index or -1. */
long gguf_writer_tensor(struct gguf_writer *w, const char *name, uint32_t type, uint64_t ne0,
                        uint64_t ne1);

/* Write everything to path (via a temporary file renamed into place).
 * progress (optional) gets bytes written so far and the total. */
int gguf_writer_write(struct gguf_writer *w, const char *path, gguf_fill_fn fill, void *ctx,
                      void (*progress)(void *ctx, uint64_t done, uint64_t total),
                      char *err, size_t errlen);

#endif
