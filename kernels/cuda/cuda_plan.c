/* cuda_plan.c — host-side logic of the CUDA backend (see cuda_plan.h):
 * launch planning, the pointer table, the op list of a step and the graph
 * decision. Plain C, no CUDA headers: built and tested on every machine. */
#include "cuda_plan.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- launch planning ------------------------------------------------------ */

int32_t cuda_plan_attn_split(int32_t n_q, int32_t n_kv_head, int32_t n_kv, int32_t n_sm)
{
    if (n_q < 1 || n_kv_head < 1 || n_kv < 1) return 1;
    if (n_sm < 1) n_sm = 1;
    int64_t blocks = (int64_t)n_q * n_kv_head;
    int64_t want = (2 * (int64_t)n_sm + blocks - 1) / blocks;     /* chunks for ~2 blocks/SM */
    int64_t most = (n_kv + CUDA_ATTN_MIN_CHUNK - 1) / CUDA_ATTN_MIN_CHUNK;
    if (most > CUDA_ATTN_MAX_SPLIT) most = CUDA_ATTN_MAX_SPLIT;
    if (want > most) want = most;
    return want < 1 ? 1 : (int32_t)want;
}

bool cuda_plan_use_gemm(int32_t n_tok) { return n_tok > ANC_CU_MATVEC_MAX_TOK; }

int64_t cuda_plan_gemm_rows(int64_t rows, int64_t cols, size_t scratch_bytes, size_t elem_bytes)
{
    if (rows < 1) return 1;
    if (cols < 1 || elem_bytes < 1) return rows;
    uint64_t per_row = (uint64_t)cols * elem_bytes;
    uint64_t fit = scratch_bytes / per_row;
    if (fit > 64) fit -= fit % 64;
    if (fit < 1) fit = 1;
    return (int64_t)fit < rows ? (int64_t)fit : rows;
}

int32_t cuda_plan_sum_parts(int64_t n)
{
    if (n <= CUDA_SUM_MIN_PART) return 1;
    int64_t parts = n / CUDA_SUM_MIN_PART;
    return parts < CUDA_SUM_MAX_PARTS ? (int32_t)parts : CUDA_SUM_MAX_PARTS;
}

/* ---- pointer table ----------------------------------------------------------- */

void cuda_ptr_table_init(struct cuda_ptr_table *t) { memset(t, 0, sizeof *t); }

void cuda_ptr_table_release(struct cuda_ptr_table *t)
{
    free(t->e);
    memset(t, 0, sizeof *t);
}

static size_t ptr_hash(const void *key, size_t cap)
{
    uint64_t x = (uint64_t)(uintptr_t)key;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL; /* a 64-bit mixing step (splitmix-style finaliser) */
    x ^= x >> 33;
    return (size_t)x & (cap - 1);
}

static bool ptr_table_grow(struct cuda_ptr_table *t)
{
    size_t cap = t->cap ? t->cap * 2 : 64;
    struct cuda_ptr_entry *e = calloc(cap, sizeof *e);
    if (!e) return false;
    for (size_t i = 0; i < t->cap; i++) {
        if (!t->e[i].key) continue;
        size_t h = ptr_hash(t->e[i].key, cap);
        while (e[h].key) h = (h + 1) & (cap - 1);
        e[h] = t->e[i];
    }
    free(t->e);
    t->e = e;
    t->cap = cap;
    return true;
}

bool cuda_ptr_table_put(struct cuda_ptr_table *t, const void *key, void *value, uint64_t bytes,
                        int kind)
{
    if (!key || kind < 0 || kind >= CUDA_MEM_KINDS) return false;
    if ((t->n + 1) * 4 > t->cap * 3 && !ptr_table_grow(t)) return false; /* load <= 3/4 */
    size_t h = ptr_hash(key, t->cap);
    while (t->e[h].key) {
        if (t->e[h].key == key) return false;
        h = (h + 1) & (t->cap - 1);
    }
    t->e[h] = (struct cuda_ptr_entry){key, value, bytes, kind};
    t->n++;
    t->bytes[kind] += bytes;
    return true;
}

static size_t ptr_find(const struct cuda_ptr_table *t, const void *key)
{
    if (!key || t->cap == 0) return SIZE_MAX;
    size_t h = ptr_hash(key, t->cap);
    while (t->e[h].key) {
        if (t->e[h].key == key) return h;
        h = (h + 1) & (t->cap - 1);
    }
    return SIZE_MAX;
}

const struct cuda_ptr_entry *cuda_ptr_table_get(const struct cuda_ptr_table *t, const void *key)
{
    size_t h = ptr_find(t, key);
    return h == SIZE_MAX ? NULL : &t->e[h];
}

bool cuda_ptr_table_del(struct cuda_ptr_table *t, const void *key, struct cuda_ptr_entry *out)
{
    size_t h = ptr_find(t, key);
    if (h == SIZE_MAX) return false;
    if (out) *out = t->e[h];
    t->bytes[t->e[h].kind] -= t->e[h].bytes;
    t->e[h].key = NULL;
    t->n--;
    /* re-insert the rest of the cluster so lookups never stop early */
    for (size_t i = (h + 1) & (t->cap - 1); t->e[i].key; i = (i + 1) & (t->cap - 1)) {
        struct cuda_ptr_entry e = t->e[i];
        t->e[i].key = NULL;
        size_t j = ptr_hash(e.key, t->cap);
        while (t->e[j].key) j = (j + 1) & (t->cap - 1);
        t->e[j] = e;
    }
    return true;
}

/* ---- the op list ----------------------------------------------------------------- */

void cuda_step_init(struct cuda_step *s) { memset(s, 0, sizeof *s); }

void cuda_step_release(struct cuda_step *s)
{
    free(s->ops);
    free(s->stage);
    memset(s, 0, sizeof *s);
}

void cuda_step_clear(struct cuda_step *s)
{
    s->n_ops = 0;
    s->stage_used = 0;
    s->no_graph = false;
    s->rope_version = 0;
}

bool cuda_step_push(struct cuda_step *s, const struct cuda_op *op)
{
    if (s->n_ops == s->cap_ops) {
        int32_t cap = s->cap_ops ? s->cap_ops * 2 : 256;
        struct cuda_op *p = realloc(s->ops, (size_t)cap * sizeof *p);
        if (!p) return false;
        s->ops = p;
        s->cap_ops = cap;
    }
    s->ops[s->n_ops++] = *op;
    if (op->kind == CUDA_OP_GEMM || op->kind == CUDA_OP_COPY_ROWS || op->kind == CUDA_OP_MM_BWD_X ||
        op->kind == CUDA_OP_MM_BWD_W)
        s->no_graph = true;
    return true;
}

#define STAGE_ALIGN 16

size_t cuda_step_stage(struct cuda_step *s, const void *data, size_t bytes)
{
    size_t off = (s->stage_used + STAGE_ALIGN - 1) & ~(size_t)(STAGE_ALIGN - 1);
    if (off + bytes < off) return (size_t)-1;
    if (off + bytes > s->stage_cap) {
        size_t cap = s->stage_cap ? s->stage_cap : 4096;
        while (cap < off + bytes) cap *= 2;
        uint8_t *p = realloc(s->stage, cap);
        if (!p) return (size_t)-1;
        s->stage = p;
        s->stage_cap = cap;
    }
    if (bytes) memcpy(s->stage + off, data, bytes);
    s->stage_used = off + bytes;
    return off;
}

bool cuda_step_same(const struct cuda_step *a, const struct cuda_step *b)
{
    return a->n_ops == b->n_ops && a->stage_used == b->stage_used &&
           (a->n_ops == 0 || memcmp(a->ops, b->ops, (size_t)a->n_ops * sizeof *a->ops) == 0);
}

bool cuda_step_same_shape(const struct cuda_step *a, const struct cuda_step *b)
{
    if (a->n_ops != b->n_ops) return false;
    for (int32_t i = 0; i < a->n_ops; i++)
        if (a->ops[i].kind != b->ops[i].kind) return false;
    return true;
}

bool cuda_step_copy_ops(struct cuda_step *dst, const struct cuda_step *src)
{
    cuda_step_clear(dst);
    for (int32_t i = 0; i < src->n_ops; i++)
        if (!cuda_step_push(dst, &src->ops[i])) return false;
    dst->stage_used = src->stage_used; /* the size only: contents stay with src */
    dst->no_graph = src->no_graph;
    return true;
}

/* ---- graphs ------------------------------------------------------------------------ */

void cuda_graph_state_init(struct cuda_graph_state *g, bool enabled)
{
    memset(g, 0, sizeof *g);
    g->enabled = enabled;
    cuda_step_init(&g->graph);
    cuda_step_init(&g->pending);
}

void cuda_graph_state_release(struct cuda_graph_state *g)
{
    cuda_step_release(&g->graph);
    cuda_step_release(&g->pending);
}

void cuda_graph_forget(struct cuda_graph_state *g)
{
    g->have_exec = false;
    g->pending_valid = false;
    cuda_step_clear(&g->graph);
    cuda_step_clear(&g->pending);
}

enum cuda_graph_action cuda_graph_decide(const struct cuda_graph_state *g,
                                         const struct cuda_step *s)
{
    if (!g->enabled || s->no_graph || s->n_ops < CUDA_GRAPH_MIN_OPS) return CUDA_RUN_DIRECT;
    if (g->have_exec && cuda_step_same(&g->graph, s)) return CUDA_RUN_REPLAY;
    if (g->have_exec && cuda_step_same_shape(&g->graph, s)) return CUDA_RUN_UPDATE;
    if (g->pending_valid && cuda_step_same_shape(&g->pending, s)) return CUDA_RUN_CAPTURE;
    return CUDA_RUN_DIRECT;
}

void cuda_graph_note(struct cuda_graph_state *g, const struct cuda_step *s,
                     enum cuda_graph_action a, bool ok)
{
    switch (a) {
    case CUDA_RUN_DIRECT:
        g->n_direct++;
        g->pending_valid = cuda_step_copy_ops(&g->pending, s);
        return;
    case CUDA_RUN_REPLAY:
        g->n_replay++;
        break;
    case CUDA_RUN_UPDATE:
    case CUDA_RUN_CAPTURE:
        if (a == CUDA_RUN_UPDATE) g->n_update++; else g->n_capture++;
        g->have_exec = ok && cuda_step_copy_ops(&g->graph, s);
        g->pending_valid = false;
        break;
    }
    if (!ok) g->have_exec = false;
}
