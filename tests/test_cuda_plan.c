/* test_cuda_plan.c — the host-side logic of the CUDA backend, on the CPU
 * (no GPU needed): launch planning, the pointer table behind the memory
 * accounting, the op list and its comparisons, the graph decisions over a
 * realistic sequence of steps, and the backend choice (auto / cpu / cuda). */
#include "test_util.h"

#include <stdint.h>

#include "ancora.h"
#include "cuda_plan.h"
#include "model.h"

static void test_attn_split(void)
{
    /* a decode step (1 query) on a 132-SM card with 8 kv heads: split so
       that about 2 blocks land on every SM, but never below 64 entries per
       chunk */
    CHECK_INT_EQ(cuda_plan_attn_split(1, 8, 4096, 132), 33);
    CHECK_INT_EQ(cuda_plan_attn_split(1, 8, 100, 132), 2);
    CHECK_INT_EQ(cuda_plan_attn_split(1, 8, 64, 132), 1);
    CHECK_INT_EQ(cuda_plan_attn_split(1, 1, 1 << 20, 132), CUDA_ATTN_MAX_SPLIT);
    /* a prompt batch already fills the card */
    CHECK_INT_EQ(cuda_plan_attn_split(128, 8, 4096, 132), 1);
    CHECK_INT_EQ(cuda_plan_attn_split(0, 8, 4096, 132), 1);
    CHECK_INT_EQ(cuda_plan_attn_split(1, 8, 4096, 0), 1);
    for (int32_t n_kv = 1; n_kv < 5000; n_kv += 37)
        for (int32_t q = 1; q <= 9; q += 4) {
            int32_t s = cuda_plan_attn_split(q, 4, n_kv, 108);
            CHECK(s >= 1 && s <= CUDA_ATTN_MAX_SPLIT);
            /* every chunk holds at least one entry */
            int32_t chunk = (n_kv + s - 1) / s;
            CHECK((int64_t)chunk * (s - 1) < n_kv);
        }
}

static void test_gemm_plan(void)
{
    CHECK(!cuda_plan_use_gemm(1));
    CHECK(!cuda_plan_use_gemm(ANC_CU_MATVEC_MAX_TOK));
    CHECK(cuda_plan_use_gemm(ANC_CU_MATVEC_MAX_TOK + 1));
    /* a 128256 x 4096 output head through 64 MiB of f16 scratch */
    int64_t r = cuda_plan_gemm_rows(128256, 4096, (size_t)64 << 20, 2);
    CHECK_INT_EQ(r, 8192);
    CHECK(r * 4096 * 2 <= (64 << 20));
    CHECK_INT_EQ(cuda_plan_gemm_rows(100, 4096, (size_t)64 << 20, 2), 100);
    CHECK_INT_EQ(cuda_plan_gemm_rows(100, 4096, 10, 2), 1);          /* at least one row */
    CHECK_INT_EQ(cuda_plan_gemm_rows(1000, 100, 100 * 2 * 70, 2), 64); /* multiple of 64 */
    CHECK_INT_EQ(cuda_plan_gemm_rows(1000, 100, 100 * 2 * 63, 2), 63);
    /* sum_sq's parts: fixed by n, each at least CUDA_SUM_MIN_PART, capped */
    CHECK_INT_EQ(cuda_plan_sum_parts(0), 1);
    CHECK_INT_EQ(cuda_plan_sum_parts(CUDA_SUM_MIN_PART), 1);
    CHECK_INT_EQ(cuda_plan_sum_parts(3 * CUDA_SUM_MIN_PART + 5), 3);
    CHECK_INT_EQ(cuda_plan_sum_parts((int64_t)1 << 40), CUDA_SUM_MAX_PARTS);
    /* the backward products (cuBLAS) are never graphed */
    struct cuda_step st;
    cuda_step_init(&st);
    struct cuda_op op;
    memset(&op, 0, sizeof op);
    op.kind = CUDA_OP_ADAMW;
    CHECK(cuda_step_push(&st, &op));
    CHECK(!st.no_graph);
    op.kind = CUDA_OP_MM_BWD_X;
    CHECK(cuda_step_push(&st, &op));
    CHECK(st.no_graph);
    cuda_step_clear(&st);
    op.kind = CUDA_OP_MM_BWD_W;
    CHECK(cuda_step_push(&st, &op));
    CHECK(st.no_graph);
    cuda_step_release(&st);
}

static void test_ptr_table(void)
{
    struct cuda_ptr_table t;
    cuda_ptr_table_init(&t);
    enum { N = 3000 };
    static char blocks[N];
    uint64_t want[CUDA_MEM_KINDS] = {0};
    for (int i = 0; i < N; i++) {
        CHECK(cuda_ptr_table_put(&t, blocks + i, NULL, (uint64_t)i + 1, i % CUDA_MEM_KINDS));
        want[i % CUDA_MEM_KINDS] += (uint64_t)i + 1;
    }
    CHECK(!cuda_ptr_table_put(&t, blocks + 5, NULL, 1, 0)); /* no duplicates */
    CHECK(!cuda_ptr_table_put(&t, NULL, NULL, 1, 0));
    CHECK_INT_EQ(t.n, N);
    for (int k = 0; k < CUDA_MEM_KINDS; k++) CHECK_INT_EQ(t.bytes[k], want[k]);
    /* delete every third, then every entry must still be found or absent */
    for (int i = 0; i < N; i += 3) {
        struct cuda_ptr_entry e;
        CHECK(cuda_ptr_table_del(&t, blocks + i, &e));
        CHECK_INT_EQ(e.bytes, (uint64_t)i + 1);
        want[i % CUDA_MEM_KINDS] -= (uint64_t)i + 1;
    }
    CHECK(!cuda_ptr_table_del(&t, blocks + 0, NULL));
    for (int i = 0; i < N; i++) {
        const struct cuda_ptr_entry *e = cuda_ptr_table_get(&t, blocks + i);
        if (i % 3 == 0)
            CHECK(e == NULL);
        else
            CHECK(e && e->bytes == (uint64_t)i + 1 && e->kind == i % CUDA_MEM_KINDS);
    }
    for (int k = 0; k < CUDA_MEM_KINDS; k++) CHECK_INT_EQ(t.bytes[k], want[k]);
    /* a weight's device copy found from its host pointer */
    static float host_w[4];
    int dev_dummy;
    CHECK(cuda_ptr_table_put(&t, host_w, &dev_dummy, 16, CUDA_MEM_WEIGHTS));
    const struct cuda_ptr_entry *w = cuda_ptr_table_get(&t, host_w);
    CHECK(w && w->value == &dev_dummy);
    cuda_ptr_table_release(&t);
}

/* The ops of a decode step of a 2-layer model with n_kv cache entries. */
static void decode_step(struct cuda_step *s, int32_t n_kv, int32_t pos, float *x)
{
    cuda_step_clear(s);
    int32_t tok = 7;
    struct cuda_op op;
    memset(&op, 0, sizeof op);
    op.kind = CUDA_OP_EMBED;
    op.u.embed.out = x;
    op.u.embed.tok_off = cuda_step_stage(s, &tok, sizeof tok);
    op.u.embed.n_tok = 1;
    CHECK(cuda_step_push(s, &op));
    for (int l = 0; l < 2; l++) {
        memset(&op, 0, sizeof op);
        op.kind = CUDA_OP_RMSNORM;
        op.u.norm.y = x;
        op.u.norm.n = 64;
        op.u.norm.n_tok = 1;
        CHECK(cuda_step_push(s, &op));
        memset(&op, 0, sizeof op);
        op.kind = CUDA_OP_MATVEC;
        op.u.mm.y = x + 64;
        op.u.mm.n_tok = 1;
        CHECK(cuda_step_push(s, &op));
        memset(&op, 0, sizeof op);
        op.kind = CUDA_OP_ROPE;
        op.u.rope.pos_off = cuda_step_stage(s, &pos, sizeof pos);
        CHECK(cuda_step_push(s, &op));
        int32_t slot[4096];
        for (int32_t j = 0; j < n_kv; j++) slot[j] = (j * 7 + pos) % n_kv; /* changes every step */
        memset(&op, 0, sizeof op);
        op.kind = CUDA_OP_ATTN;
        op.u.attn.a.n_kv = n_kv;
        op.u.attn.a.n_split = cuda_plan_attn_split(1, 4, n_kv, 132);
        op.u.attn.slot_off = cuda_step_stage(s, slot, (size_t)n_kv * sizeof *slot);
        CHECK(cuda_step_push(s, &op));
        memset(&op, 0, sizeof op);
        op.kind = CUDA_OP_ADD;
        op.u.ew.out = x;
        op.u.ew.n = 64;
        CHECK(cuda_step_push(s, &op));
    }
    memset(&op, 0, sizeof op);
    op.kind = CUDA_OP_MATVEC;
    op.u.mm.y = x + 128;
    op.u.mm.n_tok = 1;
    CHECK(cuda_step_push(s, &op));
}

static void test_step_and_graphs(void)
{
    static float x[256];
    struct cuda_step a, b;
    cuda_step_init(&a);
    cuda_step_init(&b);
    /* staging: aligned offsets, contents kept */
    int32_t v3[3] = {1, 2, 3};
    size_t o1 = cuda_step_stage(&a, v3, 3 * sizeof(int32_t));
    size_t o2 = cuda_step_stage(&a, v3, 1);
    CHECK_INT_EQ(o1, 0);
    CHECK_INT_EQ(o2 % 16, 0);
    CHECK(o2 >= 12);
    CHECK(memcmp(a.stage + o1, v3, sizeof v3) == 0);
    for (int i = 0; i < 1000; i++) cuda_step_stage(&a, x, sizeof x); /* grows */
    CHECK(a.stage_used >= 1000 * sizeof x);

    /* same shape and arguments: only the staged values differ */
    decode_step(&a, 200, 10, x);
    decode_step(&b, 200, 11, x);
    CHECK(cuda_step_same(&a, &b));
    CHECK(memcmp(a.stage, b.stage, a.stage_used) != 0);
    decode_step(&b, 201, 11, x);
    CHECK(!cuda_step_same(&a, &b));
    CHECK(cuda_step_same_shape(&a, &b));

    /* the graph policy over a conversation: the cache fills (n_kv grows),
       then the window is full (n_kv constant) */
    struct cuda_graph_state g;
    cuda_graph_state_init(&g, true);
    enum cuda_graph_action seq[8];
    for (int t = 0; t < 8; t++) {
        int32_t n_kv = t < 4 ? 100 + t : 104;
        decode_step(&a, n_kv, t, x);
        seq[t] = cuda_graph_decide(&g, &a);
        cuda_graph_note(&g, &a, seq[t], true);
    }
    CHECK_INT_EQ(seq[0], CUDA_RUN_DIRECT);   /* first of its shape */
    CHECK_INT_EQ(seq[1], CUDA_RUN_CAPTURE);  /* the shape repeats */
    CHECK_INT_EQ(seq[2], CUDA_RUN_UPDATE);   /* n_kv changed: same graph, new arguments */
    CHECK_INT_EQ(seq[3], CUDA_RUN_UPDATE);
    CHECK_INT_EQ(seq[4], CUDA_RUN_UPDATE);   /* 103 -> 104 */
    CHECK_INT_EQ(seq[5], CUDA_RUN_REPLAY);   /* steady state: replay as is */
    CHECK_INT_EQ(seq[7], CUDA_RUN_REPLAY);
    CHECK_INT_EQ(g.n_replay, 3);

    /* a prompt batch (cuBLAS inside) never goes into a graph, and leaves
       the decode graph alone */
    struct cuda_op gemm;
    memset(&gemm, 0, sizeof gemm);
    gemm.kind = CUDA_OP_GEMM;
    cuda_step_clear(&b);
    for (int i = 0; i < 20; i++) CHECK(cuda_step_push(&b, &gemm));
    CHECK(b.no_graph);
    CHECK_INT_EQ(cuda_graph_decide(&g, &b), CUDA_RUN_DIRECT);
    cuda_graph_note(&g, &b, CUDA_RUN_DIRECT, true);
    decode_step(&a, 104, 99, x);
    CHECK_INT_EQ(cuda_graph_decide(&g, &a), CUDA_RUN_REPLAY);

    /* a failed graph operation is forgotten: the next step runs directly
       (or captures again when its shape repeats) */
    cuda_graph_note(&g, &a, CUDA_RUN_REPLAY, false);
    CHECK(!g.have_exec);
    CHECK(cuda_graph_decide(&g, &a) != CUDA_RUN_REPLAY);
    cuda_graph_forget(&g);
    CHECK_INT_EQ(cuda_graph_decide(&g, &a), CUDA_RUN_DIRECT);

    /* tiny steps and ANCORA_CUDA_GRAPHS=0 run directly */
    cuda_step_clear(&b);
    struct cuda_op add;
    memset(&add, 0, sizeof add);
    add.kind = CUDA_OP_ADD;
    CHECK(cuda_step_push(&b, &add));
    CHECK_INT_EQ(cuda_graph_decide(&g, &b), CUDA_RUN_DIRECT);
    struct cuda_graph_state off;
    cuda_graph_state_init(&off, false);
    decode_step(&a, 104, 1, x);
    cuda_graph_note(&off, &a, CUDA_RUN_DIRECT, true);
    CHECK_INT_EQ(cuda_graph_decide(&off, &a), CUDA_RUN_DIRECT);
    cuda_graph_state_release(&off);
    cuda_graph_state_release(&g);
    cuda_step_release(&a);
    cuda_step_release(&b);
}

static void test_backend_choice(void)
{
    char err[ANC_ERR_LEN];
    /* auto: the GPU when built in and present, else the CPU, silently */
    CHECK_INT_EQ(model_backend_choose(ANC_BACKEND_AUTO, true, 1, err, sizeof err), ANC_BACKEND_CUDA);
    CHECK_INT_EQ(model_backend_choose(ANC_BACKEND_AUTO, true, 0, err, sizeof err), ANC_BACKEND_CPU);
    CHECK_INT_EQ(model_backend_choose(ANC_BACKEND_AUTO, false, 2, err, sizeof err), ANC_BACKEND_CPU);
    CHECK_INT_EQ(model_backend_choose(ANC_BACKEND_CPU, true, 1, err, sizeof err), ANC_BACKEND_CPU);
    /* cuda: a clear message when it cannot be had */
    err[0] = 0;
    CHECK_INT_EQ(model_backend_choose(ANC_BACKEND_CUDA, true, 0, err, sizeof err), -1);
    CHECK(strstr(err, "no usable NVIDIA GPU") != NULL);
    CHECK_INT_EQ(model_backend_choose(ANC_BACKEND_CUDA, false, 0, err, sizeof err), -1);
    CHECK(strstr(err, "no CUDA backend") != NULL);
    CHECK_INT_EQ(model_backend_choose(ANC_BACKEND_CUDA, true, 1, err, sizeof err), ANC_BACKEND_CUDA);
    CHECK_INT_EQ(anc_backend_kind_from_name("cuda"), ANC_BACKEND_CUDA);
    CHECK_INT_EQ(anc_backend_kind_from_name("auto"), ANC_BACKEND_AUTO);
    CHECK_INT_EQ(anc_backend_kind_from_name("gpu"), -1);
    /* the names in --version */
    CHECK(strncmp(anc_backends_compiled(), "cpu", 3) == 0);
    CHECK((strstr(anc_backends_compiled(), "cuda") != NULL) == anc_backend_cuda_compiled());
}

int main(void)
{
    test_attn_split();
    test_gemm_plan();
    test_ptr_table();
    test_step_and_graphs();
    test_backend_choice();
    TEST_EXIT();
}
