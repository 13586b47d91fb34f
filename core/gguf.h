/* gguf.h — read-only, validating reader of GGUF v2/v3 files (memory-mapped).
 * Internal to core/: no curses, readline or sqlite; no knowledge of models.
 *
 * Everything the reader returns points into the mapping and stays valid
 * until gguf_close(). Every count, length, offset, type and shape is checked
 * against the file size when the file is opened, so callers may trust the
 * structures without re-checking bounds. */
#ifndef ANC_GGUF_H
#define ANC_GGUF_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define GGUF_MAX_DIMS 4
#define GGUF_DEFAULT_ALIGNMENT 32

enum gguf_vtype {
    GGUF_VT_UINT8 = 0,
    GGUF_VT_INT8 = 1,
    GGUF_VT_UINT16 = 2,
    GGUF_VT_INT16 = 3,
    GGUF_VT_UINT32 = 4,
    GGUF_VT_INT32 = 5,
    GGUF_VT_FLOAT32 = 6,
    GGUF_VT_BOOL = 7,
    GGUF_VT_STRING = 8,
    GGUF_VT_ARRAY = 9,
    GGUF_VT_UINT64 = 10,
    GGUF_VT_INT64 = 11,
    GGUF_VT_FLOAT64 = 12,
    GGUF_VT_COUNT_
};

/* A string inside the file: not NUL-terminated, may hold any bytes. */
struct gguf_str {
    const char *ptr;
    uint64_t len;
};

struct gguf_kv {
    struct gguf_str key;
    enum gguf_vtype type;      /* GGUF_VT_ARRAY for arrays */
    enum gguf_vtype arr_type;  /* element type when type == ARRAY */
    uint64_t arr_n;            /* element count when type == ARRAY */
    const uint8_t *data;       /* the value (scalar) or first element (array) */
    const uint64_t *str_offs;  /* ARRAY of STRING only: arr_n offsets from
                                  `data` to each element's length field */
};

struct gguf_tensor {
    struct gguf_str name;
    uint32_t n_dims;
    uint64_t ne[GGUF_MAX_DIMS]; /* ne[0] is the fastest-varying (row length);
                                   unused dims are 1 */
    uint32_t type;              /* enum anc_dtype id (kernels/dtype.h) */
    uint64_t offset;            /* relative to the data section */
    uint64_t nbytes;
    const void *data;           /* inside the mapping, aligned */
};

struct gguf_file {
    const char *path;           /* owned copy, for messages */
    const uint8_t *base;        /* mapping (or caller's buffer) */
    size_t size;
    bool mapped;                /* we own `base` as an mmap */
    uint32_t version;
    uint64_t n_kv;
    struct gguf_kv *kv;         /* owned array [n_kv] */
    uint64_t n_tensors;
    struct gguf_tensor *tensors;/* owned array [n_tensors] */
    uint64_t alignment;
    uint64_t data_offset;       /* start of the tensor data section */
};

/* Open and validate a file. On failure returns NULL and writes one
 * human-readable sentence naming what is wrong into err (errlen bytes). */
struct gguf_file *gguf_open(const char *path, char *err, size_t errlen);

/* Same over a caller-owned buffer (fuzzing, tests); the buffer must outlive
 * the returned object. `name` is used in messages. */
struct gguf_file *gguf_open_memory(const void *buf, size_t size, const char *name,
                                   char *err, size_t errlen);

void gguf_close(struct gguf_file *f);

/* Lookups: NULL / false when absent or of an incompatible type. */
const struct gguf_kv *gguf_find_kv(const struct gguf_file *f, const char *key);
const struct gguf_tensor *gguf_find_tensor(const struct gguf_file *f, const char *name);

/* Scalar getters accept any integer type whose value fits (u32/i32 getters)
 * and any float type (f32 getter converts f64). */
bool gguf_get_u32(const struct gguf_file *f, const char *key, uint32_t *out);
bool gguf_get_i32(const struct gguf_file *f, const char *key, int32_t *out);
bool gguf_get_u64(const struct gguf_file *f, const char *key, uint64_t *out);
bool gguf_get_f32(const struct gguf_file *f, const char *key, float *out);
bool gguf_get_bool(const struct gguf_file *f, const char *key, bool *out);
bool gguf_get_str(const struct gguf_file *f, const char *key, struct gguf_str *out);

/* Array access; `kv` must be an ARRAY of the right element type
 * (index < arr_n is the caller's duty; checked with assert). */
struct gguf_str gguf_arr_str(const struct gguf_kv *kv, uint64_t i);
float gguf_arr_f32(const struct gguf_kv *kv, uint64_t i);
int32_t gguf_arr_i32(const struct gguf_kv *kv, uint64_t i);

/* Size in bytes of one scalar of type t (0 for STRING/ARRAY/unknown). */
size_t gguf_vtype_size(enum gguf_vtype t);
const char *gguf_vtype_name(enum gguf_vtype t);

/* Compare a file string with a C string. */
bool gguf_str_eq(struct gguf_str s, const char *c);

#endif
