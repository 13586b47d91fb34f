/* gguf.c — the validating GGUF v2/v3 reader declared in gguf.h: maps the
 * file, checks every count, length, type, shape and offset against the file
 * size, and indexes keys and tensors. Knows nothing of models.
 * Depends on the C library, POSIX mmap, util.h and kernels/dtype.h only. */
#include "gguf.h"

#include "dtype.h"
#include "util.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define GGUF_MAGIC_LE 0x46554747u       /* "GGUF" read as a little-endian u32 */
#define GGUF_HEADER_BYTES 24u           /* magic, version, tensor and kv counts */
#define GGUF_MAX_NAME_BYTES (64u * 1024) /* keys and tensor names */

/* The fewest bytes a key/value pair can take on disk: key length (8) +
 * a 1-byte key + value type (4) + a 1-byte value. */
#define GGUF_MIN_KV_BYTES 14u
/* The fewest bytes a tensor info can take: name length (8) + a 1-byte name
 * + n_dims (4) + one dimension (8) + type (4) + offset (8). */
#define GGUF_MIN_TENSOR_INFO_BYTES 33u

/* ---- small helpers ---------------------------------------------------- */

static uint16_t rd_u16(const uint8_t *p) { uint16_t v; memcpy(&v, p, sizeof v); return v; }
static uint32_t rd_u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, sizeof v); return v; }
static uint64_t rd_u64(const uint8_t *p) { uint64_t v; memcpy(&v, p, sizeof v); return v; }

static char *str_dup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* A file string made printable for an error message: non-printable bytes as
 * \xNN, cut at about 60 characters. Writes into buf (always terminated). */
static const char *str_for_msg(struct gguf_str s, char *buf, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (uint64_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (o + 8 >= cap || o >= 60) {
            if (o + 4 < cap) { memcpy(buf + o, "...", 3); o += 3; }
            break;
        }
        if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') {
            buf[o++] = (char)c;
        } else {
            buf[o++] = '\\';
            buf[o++] = 'x';
            buf[o++] = hex[c >> 4];
            buf[o++] = hex[c & 15];
        }
    }
    buf[o] = '\0';
    return buf;
}

/* ---- the cursor over the file bytes ----------------------------------- */

struct gguf_reader {
    const uint8_t *base;
    uint64_t size;
    uint64_t pos;
    const char *name;   /* file name for messages */
    char *err;
    size_t errlen;
    char what[160];     /* what is being read, for truncation messages */
};

static uint64_t rd_left(const struct gguf_reader *r) { return r->size - r->pos; }

/* True when n more bytes are present; otherwise writes the truncation
 * message for whatever r->what names. */
static bool rd_need(struct gguf_reader *r, uint64_t n)
{
    if (n <= rd_left(r)) return true;
    uint64_t end = r->pos + n;
    if (end < r->pos) /* n so large it wraps: report it as a length */
        anc_set_err(r->err, r->errlen,
                    "%s: truncated: %s needs %llu bytes at offset %llu, past the end of the "
                    "file (size %llu)",
                    r->name, r->what, (unsigned long long)n, (unsigned long long)r->pos,
                    (unsigned long long)r->size);
    else
        anc_set_err(r->err, r->errlen,
                    "%s: truncated: %s runs past the end of the file (needs bytes up to "
                    "offset %llu, file size %llu)",
                    r->name, r->what, (unsigned long long)end, (unsigned long long)r->size);
    return false;
}

static bool rd_u32_at(struct gguf_reader *r, uint32_t *out)
{
    if (!rd_need(r, 4)) return false;
    *out = rd_u32(r->base + r->pos);
    r->pos += 4;
    return true;
}

static bool rd_u64_at(struct gguf_reader *r, uint64_t *out)
{
    if (!rd_need(r, 8)) return false;
    *out = rd_u64(r->base + r->pos);
    r->pos += 8;
    return true;
}

/* A gguf string: u64 length then bytes. max_len == 0 means no limit beyond
 * the file size; `label` names the string in messages ("key", "name"). */
static bool rd_str(struct gguf_reader *r, struct gguf_str *out, uint64_t max_len,
                   const char *label)
{
    uint64_t len;
    if (!rd_u64_at(r, &len)) return false;
    if (max_len && len > max_len) {
        anc_set_err(r->err, r->errlen,
                    "%s: corrupt file: %s has a %s of %llu bytes (at most %llu allowed)",
                    r->name, r->what, label, (unsigned long long)len,
                    (unsigned long long)max_len);
        return false;
    }
    if (!rd_need(r, len)) return false;
    out->ptr = (const char *)(r->base + r->pos);
    out->len = len;
    r->pos += len;
    return true;
}

/* ---- value types ------------------------------------------------------ */

size_t gguf_vtype_size(enum gguf_vtype t)
{
    switch (t) {
    case GGUF_VT_UINT8: case GGUF_VT_INT8: case GGUF_VT_BOOL: return 1;
    case GGUF_VT_UINT16: case GGUF_VT_INT16: return 2;
    case GGUF_VT_UINT32: case GGUF_VT_INT32: case GGUF_VT_FLOAT32: return 4;
    case GGUF_VT_UINT64: case GGUF_VT_INT64: case GGUF_VT_FLOAT64: return 8;
    default: return 0;
    }
}

const char *gguf_vtype_name(enum gguf_vtype t)
{
    static const char *const names[GGUF_VT_COUNT_] = {
        [GGUF_VT_UINT8] = "uint8",     [GGUF_VT_INT8] = "int8",
        [GGUF_VT_UINT16] = "uint16",   [GGUF_VT_INT16] = "int16",
        [GGUF_VT_UINT32] = "uint32",   [GGUF_VT_INT32] = "int32",
        [GGUF_VT_FLOAT32] = "float32", [GGUF_VT_BOOL] = "bool",
        [GGUF_VT_STRING] = "string",   [GGUF_VT_ARRAY] = "array",
        [GGUF_VT_UINT64] = "uint64",   [GGUF_VT_INT64] = "int64",
        [GGUF_VT_FLOAT64] = "float64",
    };
    if ((unsigned)t >= GGUF_VT_COUNT_) return "unknown";
    return names[t];
}

bool gguf_str_eq(struct gguf_str s, const char *c)
{
    size_t n = strlen(c);
    return s.len == n && (n == 0 || memcmp(s.ptr, c, n) == 0);
}

static bool kv_int(const struct gguf_kv *kv, uint64_t *mag, bool *neg);

/* ---- parsing ----------------------------------------------------------- */

/* The value of kv (its type already read): checks it lies inside the file
 * and, for arrays of strings, builds the element offset table. */
static bool gguf_read_value(struct gguf_reader *r, struct gguf_kv *kv, uint32_t raw_type)
{
    if (raw_type >= GGUF_VT_COUNT_) {
        anc_set_err(r->err, r->errlen, "%s: corrupt file: %s has unknown value type %u",
                    r->name, r->what, raw_type);
        return false;
    }
    kv->type = (enum gguf_vtype)raw_type;
    if (kv->type == GGUF_VT_STRING) {
        struct gguf_str s;
        kv->data = r->base + r->pos;
        return rd_str(r, &s, 0, "string value");
    }
    if (kv->type != GGUF_VT_ARRAY) {
        kv->data = r->base + r->pos;
        if (!rd_need(r, gguf_vtype_size(kv->type))) return false;
        r->pos += gguf_vtype_size(kv->type);
        return true;
    }

    uint32_t et;
    uint64_t n;
    if (!rd_u32_at(r, &et) || !rd_u64_at(r, &n)) return false;
    if (et == GGUF_VT_ARRAY) {
        anc_set_err(r->err, r->errlen,
                    "%s: unsupported file: %s is an array of arrays (nested arrays are not "
                    "supported)",
                    r->name, r->what);
        return false;
    }
    if (et >= GGUF_VT_COUNT_) {
        anc_set_err(r->err, r->errlen,
                    "%s: corrupt file: %s is an array of unknown element type %u", r->name,
                    r->what, et);
        return false;
    }
    kv->arr_type = (enum gguf_vtype)et;
    kv->arr_n = n;
    kv->data = r->base + r->pos;

    if (kv->arr_type != GGUF_VT_STRING) {
        size_t esize = gguf_vtype_size(kv->arr_type);
        if (n > rd_left(r) / esize) {
            anc_set_err(r->err, r->errlen,
                        "%s: truncated: %s claims %llu %s values, more than the %llu bytes "
                        "left in the file can hold",
                        r->name, r->what, (unsigned long long)n, gguf_vtype_name(kv->arr_type),
                        (unsigned long long)rd_left(r));
            return false;
        }
        r->pos += n * esize;
        return true;
    }

    /* Strings: each takes at least its 8-byte length, which bounds the
     * offset table by the file size before it is allocated. */
    if (n > rd_left(r) / 8) {
        anc_set_err(r->err, r->errlen,
                    "%s: truncated: %s claims %llu strings, more than the %llu bytes left in "
                    "the file can hold",
                    r->name, r->what, (unsigned long long)n, (unsigned long long)rd_left(r));
        return false;
    }
    if (n == 0) return true;
    uint64_t *offs = malloc((size_t)n * sizeof *offs);
    if (!offs) {
        anc_set_err(r->err, r->errlen, "%s: out of memory for %llu strings of %s", r->name,
                    (unsigned long long)n, r->what);
        return false;
    }
    kv->str_offs = offs;
    uint64_t start = r->pos;
    size_t wlen = strlen(r->what);
    for (uint64_t i = 0; i < n; i++) {
        offs[i] = r->pos - start;
        /* The fast path checks without formatting a context string. */
        if (rd_left(r) >= 8) {
            uint64_t len = rd_u64(r->base + r->pos);
            if (len <= rd_left(r) - 8) {
                r->pos += 8 + len;
                continue;
            }
        }
        snprintf(r->what + wlen, sizeof r->what - wlen, ", string %llu of %llu",
                 (unsigned long long)i + 1, (unsigned long long)n);
        struct gguf_str s;
        rd_str(r, &s, 0, "string"); /* fails, and writes the message */
        return false;
    }
    return true;
}

static bool gguf_read_kvs(struct gguf_reader *r, struct gguf_file *f)
{
    for (uint64_t i = 0; i < f->n_kv; i++) {
        struct gguf_kv *kv = &f->kv[i];
        snprintf(r->what, sizeof r->what, "key/value %llu of %llu", (unsigned long long)i + 1,
                 (unsigned long long)f->n_kv);
        if (!rd_str(r, &kv->key, GGUF_MAX_NAME_BYTES, "key")) return false;
        if (kv->key.len == 0) {
            anc_set_err(r->err, r->errlen, "%s: corrupt file: %s has an empty key", r->name,
                        r->what);
            return false;
        }
        char kb[96];
        snprintf(r->what, sizeof r->what, "key/value %llu of %llu ('%s')",
                 (unsigned long long)i + 1, (unsigned long long)f->n_kv,
                 str_for_msg(kv->key, kb, sizeof kb));
        uint32_t t;
        if (!rd_u32_at(r, &t)) return false;
        if (!gguf_read_value(r, kv, t)) return false;
    }
    return true;
}

static bool gguf_read_tensor_infos(struct gguf_reader *r, struct gguf_file *f)
{
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        struct gguf_tensor *t = &f->tensors[i];
        snprintf(r->what, sizeof r->what, "tensor info %llu of %llu",
                 (unsigned long long)i + 1, (unsigned long long)f->n_tensors);
        if (!rd_str(r, &t->name, GGUF_MAX_NAME_BYTES, "name")) return false;
        if (t->name.len == 0) {
            anc_set_err(r->err, r->errlen, "%s: corrupt file: %s has an empty name", r->name,
                        r->what);
            return false;
        }
        char nb[96];
        snprintf(r->what, sizeof r->what, "tensor info %llu of %llu ('%s')",
                 (unsigned long long)i + 1, (unsigned long long)f->n_tensors,
                 str_for_msg(t->name, nb, sizeof nb));
        if (!rd_u32_at(r, &t->n_dims)) return false;
        if (t->n_dims == 0 || t->n_dims > GGUF_MAX_DIMS) {
            anc_set_err(r->err, r->errlen,
                        "%s: corrupt file: %s has %u dimensions (1 to %d allowed)", r->name,
                        r->what, t->n_dims, GGUF_MAX_DIMS);
            return false;
        }
        for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = 1;
        for (uint32_t d = 0; d < t->n_dims; d++)
            if (!rd_u64_at(r, &t->ne[d])) return false;
        if (!rd_u32_at(r, &t->type) || !rd_u64_at(r, &t->offset)) return false;
    }
    return true;
}

/* Shape, type and size of one tensor (infos already read). */
static bool gguf_check_tensor_shape(struct gguf_reader *r, struct gguf_tensor *t)
{
    uint64_t elems = 1;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
        if (t->ne[d] == 0) {
            anc_set_err(r->err, r->errlen, "%s: corrupt file: %s has a dimension of 0 "
                        "(ne[%u])", r->name, r->what, d);
            return false;
        }
        /* Element counts must fit int64, as every consumer indexes with it. */
        if (t->ne[d] > (uint64_t)INT64_MAX || __builtin_mul_overflow(elems, t->ne[d], &elems) ||
            elems > (uint64_t)INT64_MAX) {
            anc_set_err(r->err, r->errlen,
                        "%s: corrupt file: %s has a shape whose element count overflows",
                        r->name, r->what);
            return false;
        }
    }
    const struct anc_dtype_info *dt = anc_dtype_get(t->type);
    if (!dt) {
        anc_set_err(r->err, r->errlen, "%s: unsupported file: %s has unknown tensor type %u",
                    r->name, r->what, t->type);
        return false;
    }
    if (t->ne[0] % dt->block_elems != 0) {
        anc_set_err(r->err, r->errlen,
                    "%s: corrupt file: %s has rows of %llu elements, not a multiple of the "
                    "%s block size %u",
                    r->name, r->what, (unsigned long long)t->ne[0], dt->name, dt->block_elems);
        return false;
    }
    uint64_t bytes = (t->ne[0] / dt->block_elems);
    bool ok = !__builtin_mul_overflow(bytes, (uint64_t)dt->block_bytes, &bytes);
    for (uint32_t d = 1; ok && d < GGUF_MAX_DIMS; d++)
        ok = !__builtin_mul_overflow(bytes, t->ne[d], &bytes);
    if (!ok) {
        anc_set_err(r->err, r->errlen, "%s: corrupt file: %s has a byte size that overflows",
                    r->name, r->what);
        return false;
    }
    t->nbytes = bytes;
    return true;
}

struct gguf_span {
    uint64_t offset, nbytes, index;
};

static int span_cmp(const void *a, const void *b)
{
    const struct gguf_span *x = a, *y = b;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

static int str_cmp(const void *a, const void *b)
{
    const struct gguf_str *x = a, *y = b;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    return x->len ? memcmp(x->ptr, y->ptr, (size_t)x->len) : 0;
}

/* True when some two of the n strings are equal; *dup gets one of them.
 * Sorting a copy keeps this O(n log n) even for huge counts. */
static int gguf_find_duplicate(struct gguf_str *tmp, size_t n, struct gguf_str *dup)
{
    if (n < 2) return 0;
    qsort(tmp, n, sizeof *tmp, str_cmp);
    for (size_t i = 1; i < n; i++)
        if (str_cmp(&tmp[i - 1], &tmp[i]) == 0) {
            *dup = tmp[i];
            return 1;
        }
    return 0;
}

static bool gguf_check_duplicates(struct gguf_reader *r, struct gguf_file *f)
{
    size_t n = (size_t)(f->n_kv > f->n_tensors ? f->n_kv : f->n_tensors);
    if (n < 2) return true;
    struct gguf_str *tmp = malloc(n * sizeof *tmp);
    if (!tmp) {
        anc_set_err(r->err, r->errlen, "%s: out of memory checking names", r->name);
        return false;
    }
    struct gguf_str dup;
    char buf[96];
    bool ok = true;
    for (uint64_t i = 0; i < f->n_kv; i++) tmp[i] = f->kv[i].key;
    if (gguf_find_duplicate(tmp, (size_t)f->n_kv, &dup)) {
        anc_set_err(r->err, r->errlen, "%s: corrupt file: key '%s' appears more than once",
                    r->name, str_for_msg(dup, buf, sizeof buf));
        ok = false;
    }
    if (ok) {
        for (uint64_t i = 0; i < f->n_tensors; i++) tmp[i] = f->tensors[i].name;
        if (gguf_find_duplicate(tmp, (size_t)f->n_tensors, &dup)) {
            anc_set_err(r->err, r->errlen,
                        "%s: corrupt file: tensor name '%s' appears more than once", r->name,
                        str_for_msg(dup, buf, sizeof buf));
            ok = false;
        }
    }
    free(tmp);
    return ok;
}

/* general.alignment: optional; an integer that is a non-zero power of two. */
static bool gguf_read_alignment(struct gguf_reader *r, struct gguf_file *f)
{
    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    const struct gguf_kv *kv = gguf_find_kv(f, "general.alignment");
    if (!kv) return true;
    uint64_t a;
    bool neg;
    if (!kv_int(kv, &a, &neg)) {
        anc_set_err(r->err, r->errlen,
                    "%s: corrupt file: general.alignment has type %s (expected uint32)",
                    r->name, gguf_vtype_name(kv->type));
        return false;
    }
    if (neg || a == 0 || (a & (a - 1)) != 0 || a > UINT32_MAX) {
        anc_set_err(r->err, r->errlen,
                    "%s: corrupt file: general.alignment is %s%llu, not a power of two "
                    "below 2^32",
                    r->name, neg ? "-" : "", (unsigned long long)a);
        return false;
    }
    f->alignment = a;
    return true;
}

static bool gguf_check_tensors(struct gguf_reader *r, struct gguf_file *f)
{
    uint64_t data_size = f->size - f->data_offset;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        struct gguf_tensor *t = &f->tensors[i];
        char nb[96];
        snprintf(r->what, sizeof r->what, "tensor '%s' (%llu of %llu)",
                 str_for_msg(t->name, nb, sizeof nb), (unsigned long long)i + 1,
                 (unsigned long long)f->n_tensors);
        if (!gguf_check_tensor_shape(r, t)) return false;
        if (t->offset % f->alignment != 0) {
            anc_set_err(r->err, r->errlen,
                        "%s: corrupt file: %s has offset %llu, not a multiple of the "
                        "alignment %llu",
                        r->name, r->what, (unsigned long long)t->offset,
                        (unsigned long long)f->alignment);
            return false;
        }
        if (t->offset > data_size || t->nbytes > data_size - t->offset) {
            anc_set_err(r->err, r->errlen,
                        "%s: truncated: %s data (%llu bytes at offset %llu of the data "
                        "section) runs past the end of the file (data section holds %llu "
                        "bytes)",
                        r->name, r->what, (unsigned long long)t->nbytes,
                        (unsigned long long)t->offset, (unsigned long long)data_size);
            return false;
        }
        t->data = f->base + f->data_offset + t->offset;
    }
    if (f->n_tensors < 2) return true;

    struct gguf_span *sp = malloc((size_t)f->n_tensors * sizeof *sp);
    if (!sp) {
        anc_set_err(r->err, r->errlen, "%s: out of memory checking tensor offsets", r->name);
        return false;
    }
    for (uint64_t i = 0; i < f->n_tensors; i++)
        sp[i] = (struct gguf_span){f->tensors[i].offset, f->tensors[i].nbytes, i};
    qsort(sp, (size_t)f->n_tensors, sizeof *sp, span_cmp);
    bool ok = true;
    for (uint64_t i = 1; i < f->n_tensors && ok; i++) {
        const struct gguf_span *a = &sp[i - 1], *b = &sp[i];
        if (b->offset < a->offset + a->nbytes) { /* no overflow: both checked above */
            char na[96], nb2[96];
            anc_set_err(r->err, r->errlen,
                        "%s: corrupt file: tensors '%s' (bytes %llu..%llu) and '%s' (from "
                        "%llu) overlap",
                        r->name, str_for_msg(f->tensors[a->index].name, na, sizeof na),
                        (unsigned long long)a->offset,
                        (unsigned long long)(a->offset + a->nbytes - 1),
                        str_for_msg(f->tensors[b->index].name, nb2, sizeof nb2),
                        (unsigned long long)b->offset);
            ok = false;
        }
    }
    free(sp);
    return ok;
}

static bool gguf_read_header(struct gguf_reader *r, struct gguf_file *f)
{
    if (r->size == 0) {
        anc_set_err(r->err, r->errlen, "%s: empty file (0 bytes), not a GGUF model", r->name);
        return false;
    }
    if (r->size < 4) {
        anc_set_err(r->err, r->errlen,
                    "%s: not a GGUF file (only %llu bytes, too short for the \"GGUF\" magic)",
                    r->name, (unsigned long long)r->size);
        return false;
    }
    uint32_t magic = rd_u32(r->base);
    if (magic != GGUF_MAGIC_LE) {
        const uint8_t *b = r->base;
        if (memcmp(b, "lmgg", 4) == 0 || memcmp(b, "fmgg", 4) == 0 ||
            memcmp(b, "tjgg", 4) == 0)
            anc_set_err(r->err, r->errlen,
                        "%s: old GGML/GGJT model format (before GGUF); convert it to GGUF "
                        "with a current llama.cpp converter",
                        r->name);
        else
            anc_set_err(r->err, r->errlen,
                        "%s: not a GGUF file (starts with bytes %02x %02x %02x %02x, "
                        "expected \"GGUF\")",
                        r->name, b[0], b[1], b[2], b[3]);
        return false;
    }
    r->pos = 4;
    snprintf(r->what, sizeof r->what, "the header");
    if (!rd_u32_at(r, &f->version)) return false;
    if (f->version == 1) {
        anc_set_err(r->err, r->errlen,
                    "%s: GGUF version 1 is not supported (only versions 2 and 3); "
                    "re-convert the model with a current converter",
                    r->name);
        return false;
    }
    if (f->version != 2 && f->version != 3) {
        uint32_t v = f->version;
        if (v == 0x02000000u || v == 0x03000000u)
            anc_set_err(r->err, r->errlen,
                        "%s: big-endian GGUF files are not supported", r->name);
        else
            anc_set_err(r->err, r->errlen,
                        "%s: unsupported GGUF version %u (only versions 2 and 3 are "
                        "supported)",
                        r->name, v);
        return false;
    }
    if (!rd_u64_at(r, &f->n_tensors) || !rd_u64_at(r, &f->n_kv)) return false;

    /* Counts are checked against what the rest of the file could hold
     * before anything is allocated from them. */
    uint64_t left = rd_left(r);
    if (f->n_kv > left / GGUF_MIN_KV_BYTES) {
        anc_set_err(r->err, r->errlen,
                    "%s: truncated or corrupt: the header claims %llu key/value pairs, "
                    "more than a file of %llu bytes can hold",
                    r->name, (unsigned long long)f->n_kv, (unsigned long long)r->size);
        return false;
    }
    if (f->n_tensors > left / GGUF_MIN_TENSOR_INFO_BYTES) {
        anc_set_err(r->err, r->errlen,
                    "%s: truncated or corrupt: the header claims %llu tensors, more than a "
                    "file of %llu bytes can hold",
                    r->name, (unsigned long long)f->n_tensors, (unsigned long long)r->size);
        return false;
    }
    return true;
}

static bool gguf_parse_checked(struct gguf_file *f, char *err, size_t errlen);

/* Parse and validate f->base[0..size); fills f. On failure there is always
 * a message, even should a check forget to write one. */
static bool gguf_parse(struct gguf_file *f, char *err, size_t errlen)
{
    if (err && errlen) err[0] = '\0';
    if (gguf_parse_checked(f, err, errlen)) return true;
    if (err && errlen && err[0] == '\0')
        anc_set_err(err, errlen, "%s: not a valid GGUF file", f->path);
    return false;
}

static bool gguf_parse_checked(struct gguf_file *f, char *err, size_t errlen)
{
    struct gguf_reader r = {
        .base = f->base, .size = f->size, .name = f->path, .err = err, .errlen = errlen,
    };
    if (!gguf_read_header(&r, f)) return false;

    if (f->n_kv) {
        f->kv = calloc((size_t)f->n_kv, sizeof *f->kv);
        if (!f->kv) {
            anc_set_err(err, errlen, "%s: out of memory for %llu key/value pairs", f->path,
                        (unsigned long long)f->n_kv);
            return false;
        }
    }
    if (!gguf_read_kvs(&r, f)) return false;

    if (f->n_tensors > rd_left(&r) / GGUF_MIN_TENSOR_INFO_BYTES) {
        anc_set_err(err, errlen,
                    "%s: truncated or corrupt: the header claims %llu tensors, more than "
                    "the %llu bytes after the metadata can hold",
                    f->path, (unsigned long long)f->n_tensors,
                    (unsigned long long)rd_left(&r));
        return false;
    }
    if (f->n_tensors) {
        f->tensors = calloc((size_t)f->n_tensors, sizeof *f->tensors);
        if (!f->tensors) {
            anc_set_err(err, errlen, "%s: out of memory for %llu tensors", f->path,
                        (unsigned long long)f->n_tensors);
            return false;
        }
    }
    if (!gguf_read_tensor_infos(&r, f)) return false;
    if (!gguf_check_duplicates(&r, f)) return false;
    if (!gguf_read_alignment(&r, f)) return false;

    uint64_t a = f->alignment, pad_end;
    if (__builtin_add_overflow(r.pos, a - 1, &pad_end)) pad_end = UINT64_MAX;
    pad_end -= pad_end % a;
    if (pad_end > f->size) {
        /* Files without tensors are often written without the final
         * padding: their (empty) data section starts at the end. */
        if (f->n_tensors) {
            anc_set_err(err, errlen,
                        "%s: truncated: the tensor data section would start at offset %llu, "
                        "past the end of the file (size %llu)",
                        f->path, (unsigned long long)pad_end, (unsigned long long)f->size);
            return false;
        }
        pad_end = f->size;
    }
    f->data_offset = pad_end;
    return gguf_check_tensors(&r, f);
}

/* ---- open / close -------------------------------------------------------- */

static struct gguf_file *gguf_new(const char *name, char *err, size_t errlen)
{
    struct gguf_file *f = calloc(1, sizeof *f);
    char *p = str_dup(name);
    if (!f || !p) {
        free(f);
        free(p);
        anc_set_err(err, errlen, "%s: out of memory", name);
        return NULL;
    }
    f->path = p;
    return f;
}

struct gguf_file *gguf_open_memory(const void *buf, size_t size, const char *name, char *err,
                                   size_t errlen)
{
    if (!name) name = "<memory>";
    if (!buf) size = 0;
    struct gguf_file *f = gguf_new(name, err, errlen);
    if (!f) return NULL;
    f->base = buf;
    f->size = size;
    if (!gguf_parse(f, err, errlen)) {
        gguf_close(f);
        return NULL;
    }
    return f;
}

struct gguf_file *gguf_open(const char *path, char *err, size_t errlen)
{
    /* O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused
     * below like any other file that is not a regular file. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        anc_set_err(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        anc_set_err(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    if (S_ISDIR(st.st_mode)) {
        anc_set_err(err, errlen, "%s: is a directory, not a GGUF file", path);
        close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        anc_set_err(err, errlen, "%s: not a regular file (a GGUF model must be a plain file)",
                    path);
        close(fd);
        return NULL;
    }
    if (st.st_size == 0) {
        close(fd);
        anc_set_err(err, errlen, "%s: empty file (0 bytes), not a GGUF model", path);
        return NULL;
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        close(fd);
        anc_set_err(err, errlen, "%s: too large to map on this system", path);
        return NULL;
    }
    size_t size = (size_t)st.st_size;
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int map_errno = errno;
    close(fd); /* the mapping keeps the file open */
    if (map == MAP_FAILED) {
        anc_set_err(err, errlen, "%s: cannot map %zu bytes: %s", path, size,
                    strerror(map_errno));
        return NULL;
    }
    struct gguf_file *f = gguf_new(path, err, errlen);
    if (!f) {
        munmap(map, size);
        return NULL;
    }
    f->base = map;
    f->size = size;
    f->mapped = true;
    if (!gguf_parse(f, err, errlen)) {
        gguf_close(f);
        return NULL;
    }
    return f;
}

void gguf_close(struct gguf_file *f)
{
    if (!f) return;
    if (f->kv)
        for (uint64_t i = 0; i < f->n_kv; i++) free((void *)f->kv[i].str_offs);
    free(f->kv);
    free(f->tensors);
    if (f->mapped && f->base) munmap((void *)f->base, f->size);
    free((void *)f->path);
    free(f);
}

/* ---- lookups ------------------------------------------------------------- */

const struct gguf_kv *gguf_find_kv(const struct gguf_file *f, const char *key)
{
    if (!f || !key) return NULL;
    for (uint64_t i = 0; i < f->n_kv; i++)
        if (gguf_str_eq(f->kv[i].key, key)) return &f->kv[i];
    return NULL;
}

const struct gguf_tensor *gguf_find_tensor(const struct gguf_file *f, const char *name)
{
    if (!f || !name) return NULL;
    for (uint64_t i = 0; i < f->n_tensors; i++)
        if (gguf_str_eq(f->tensors[i].name, name)) return &f->tensors[i];
    return NULL;
}

/* An integer scalar as a signed/unsigned pair: *neg set when negative. */
static bool kv_int(const struct gguf_kv *kv, uint64_t *mag, bool *neg)
{
    if (!kv) return false;
    const uint8_t *p = kv->data;
    int64_t s = 0;
    *neg = false;
    switch (kv->type) {
    case GGUF_VT_UINT8: *mag = p[0]; return true;
    case GGUF_VT_UINT16: *mag = rd_u16(p); return true;
    case GGUF_VT_UINT32: *mag = rd_u32(p); return true;
    case GGUF_VT_UINT64: *mag = rd_u64(p); return true;
    case GGUF_VT_INT8: s = (int8_t)p[0]; break;
    case GGUF_VT_INT16: s = (int16_t)rd_u16(p); break;
    case GGUF_VT_INT32: s = (int32_t)rd_u32(p); break;
    case GGUF_VT_INT64: s = (int64_t)rd_u64(p); break;
    default: return false;
    }
    *neg = s < 0;
    *mag = s < 0 ? (uint64_t)0 - (uint64_t)s : (uint64_t)s;
    return true;
}

bool gguf_get_u32(const struct gguf_file *f, const char *key, uint32_t *out)
{
    uint64_t m;
    bool neg;
    if (!kv_int(gguf_find_kv(f, key), &m, &neg) || neg || m > UINT32_MAX) return false;
    *out = (uint32_t)m;
    return true;
}

bool gguf_get_i32(const struct gguf_file *f, const char *key, int32_t *out)
{
    uint64_t m;
    bool neg;
    if (!kv_int(gguf_find_kv(f, key), &m, &neg)) return false;
    if (neg ? m > (uint64_t)INT32_MAX + 1 : m > INT32_MAX) return false;
    *out = neg ? (int32_t)(-(int64_t)m) : (int32_t)m;
    return true;
}

bool gguf_get_u64(const struct gguf_file *f, const char *key, uint64_t *out)
{
    uint64_t m;
    bool neg;
    if (!kv_int(gguf_find_kv(f, key), &m, &neg) || neg) return false;
    *out = m;
    return true;
}

bool gguf_get_f32(const struct gguf_file *f, const char *key, float *out)
{
    const struct gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv) return false;
    if (kv->type == GGUF_VT_FLOAT32) {
        memcpy(out, kv->data, sizeof *out);
        return true;
    }
    if (kv->type == GGUF_VT_FLOAT64) {
        double d;
        memcpy(&d, kv->data, sizeof d);
        *out = (float)d;
        return true;
    }
    return false;
}

bool gguf_get_bool(const struct gguf_file *f, const char *key, bool *out)
{
    const struct gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv || kv->type != GGUF_VT_BOOL) return false;
    *out = kv->data[0] != 0;
    return true;
}

bool gguf_get_str(const struct gguf_file *f, const char *key, struct gguf_str *out)
{
    const struct gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv || kv->type != GGUF_VT_STRING) return false;
    out->len = rd_u64(kv->data);
    out->ptr = (const char *)kv->data + 8;
    return true;
}

struct gguf_str gguf_arr_str(const struct gguf_kv *kv, uint64_t i)
{
    assert(kv->type == GGUF_VT_ARRAY && kv->arr_type == GGUF_VT_STRING && i < kv->arr_n);
    const uint8_t *p = kv->data + kv->str_offs[i];
    return (struct gguf_str){(const char *)p + 8, rd_u64(p)};
}

float gguf_arr_f32(const struct gguf_kv *kv, uint64_t i)
{
    assert(kv->type == GGUF_VT_ARRAY && kv->arr_type == GGUF_VT_FLOAT32 && i < kv->arr_n);
    float v;
    memcpy(&v, kv->data + i * 4, sizeof v);
    return v;
}

int32_t gguf_arr_i32(const struct gguf_kv *kv, uint64_t i)
{
    assert(kv->type == GGUF_VT_ARRAY && kv->arr_type == GGUF_VT_INT32 && i < kv->arr_n);
    return (int32_t)rd_u32(kv->data + i * 4);
}
