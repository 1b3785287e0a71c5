/* The memory budget (hai_model_params.mem_budget): weights that do not fit are refused before they
 * are read; contexts are planned before they are allocated and refused with the figures and the
 * n_ctx that would fit; the plan is exactly what a context allocates; what a freed context took
 * comes back. usage: test_budget MODEL.gguf */
#include "check.h"

#define MiB (1024.0 * 1024.0)

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_budget MODEL.gguf\n");
        return 2;
    }
    const char *path = argv[1];
    hai_error err = {0};
    hai_model *m = NULL;

    /* without a budget: the plan is what a context allocates, for several shapes */
    if (!CHECK_MSG(hai_model_load(path, NULL, &m, &err) == HAI_OK, "%s", err.msg)) return check_done("test_budget");
    uint64_t weights = hai_model_weights_bytes(m);
    CHECK(hai_model_budget_left(m) == UINT64_MAX);
    const uint32_t ctxs[] = {16, 100, 512, 2048};
    for (size_t i = 0; i < sizeof ctxs / sizeof *ctxs; i++)
        for (uint32_t seq = 1; seq <= 4; seq += 3) {
            hai_context_params cp = hai_context_default_params();
            cp.n_ctx = ctxs[i], cp.n_seq = seq, cp.n_threads = 1, cp.logits_all = seq == 1 && i == 1;
            uint64_t plan = hai_context_plan_bytes(m, &cp);
            hai_context *c = NULL;
            if (!CHECK_MSG(hai_context_create(m, &cp, &c, &err) == HAI_OK, "%s", err.msg)) continue;
            CHECK_MSG(plan > 0 && plan == hai_context_memory_bytes(c), "n_ctx %u x %u: plan %llu, allocated %llu", ctxs[i], seq,
                      (unsigned long long)plan, (unsigned long long)hai_context_memory_bytes(c));
            hai_context_free(c);
        }
    /* the KV cache comes in whole 2 MiB pages: contexts far enough apart to differ */
    hai_context_params big = hai_context_default_params();
    big.n_ctx = 16384, big.n_threads = 1;
    uint64_t big_plan = hai_context_plan_bytes(m, &big);
    big.n_ctx = 4096;
    uint64_t small_plan = hai_context_plan_bytes(m, &big);
    CHECK(small_plan < big_plan);

    /* the KV type by the memory there is (hai_context_fit_kv): the first of F16, Q8_0, Q4_0 whose
     * cache holds the wanted context, else the one holding the longest */
    const uint32_t kvt[3] = {HAI_TYPE_F16, HAI_TYPE_Q8_0, HAI_TYPE_Q4_0};
    uint64_t kv_plan[3];
    for (int i = 0; i < 3; i++) {
        big.n_ctx = 16384, big.kv_type = kvt[i];
        kv_plan[i] = hai_context_plan_bytes(m, &big);
    }
    CHECK_MSG(kv_plan[2] < kv_plan[1] && kv_plan[1] < kv_plan[0], "plans %llu %llu %llu", (unsigned long long)kv_plan[0],
              (unsigned long long)kv_plan[1], (unsigned long long)kv_plan[2]);
    struct { uint64_t bytes; uint32_t type; bool whole; } kc[] = {
        {kv_plan[0], HAI_TYPE_F16, true},      {kv_plan[0] - 1, HAI_TYPE_Q8_0, true}, {kv_plan[1], HAI_TYPE_Q8_0, true},
        {kv_plan[1] - 1, HAI_TYPE_Q4_0, true}, {kv_plan[2] - 1, HAI_TYPE_Q4_0, false},
    };
    for (size_t i = 0; i < sizeof kc / sizeof *kc; i++) {
        hai_context_params q = hai_context_default_params();
        q.n_ctx = 16384, q.n_threads = 1;
        uint32_t f16 = 99, n = hai_context_fit_kv(m, NULL, &q, kc[i].bytes, &f16);
        CHECK_MSG(q.kv_type == kc[i].type && n == q.n_ctx && (kc[i].whole ? n == 16384 : n > 0 && n < 16384 && n % 256 == 0),
                  "case %zu: %s n_ctx %u", i, hai_type_name(q.kv_type), n);
        CHECK_MSG(hai_context_plan_bytes(m, &q) <= kc[i].bytes, "case %zu: the chosen plan is over the bytes", i);
        CHECK_MSG(i == 0 ? f16 == 16384 : f16 < 16384, "case %zu: F16 would hold %u", i, f16);
    }
    hai_context_params q0 = hai_context_default_params();
    q0.n_threads = 1;
    CHECK(hai_context_fit_kv(m, NULL, &q0, 1024, NULL) == 0 && q0.n_ctx == 0);
    q0.n_ctx = 0; /* the default context (the trained 2048 here), in F16 when there is room */
    CHECK(hai_context_fit_kv(m, NULL, &q0, kv_plan[0], NULL) == hai_model_n_ctx_train(m) && q0.kv_type == HAI_TYPE_F16);
    hai_model_free(m);
    m = NULL;

    /* weights over the budget: refused, naming both figures, when they may not stream; else their
     * layers stream from the file (test_stream checks that further) */
    hai_model_params mp = hai_model_default_params();
    mp.mem_budget = weights / 2;
    mp.stream = HAI_STREAM_OFF;
    CHECK(hai_model_load(path, &mp, &m, &err) == HAI_ERR_LIMIT && !m);
    CHECK_MSG(strstr(err.msg, "the weights take") && strstr(err.msg, "memory budget"), "%s", err.msg);
    mp.mem_budget = weights / 4 * 3;
    CHECK(hai_model_load(path, &mp, &m, &err) == HAI_ERR_LIMIT && !m);
    mp.stream = HAI_STREAM_AUTO;
    if (CHECK_MSG(hai_model_load(path, &mp, &m, &err) == HAI_OK, "%s", err.msg)) {
        hai_stream_stats ss;
        CHECK(hai_model_stream_stats(m, &ss) && ss.mode == 2 && ss.streamed_bytes > 0 && ss.streamed_bytes < weights);
        CHECK(hai_model_budget_left(m) < mp.mem_budget);
        hai_model_free(m);
        m = NULL;
    }

    /* room for the weights (in 2 MiB pages), the tokenizer and a 4096-context, not a 16384 one */
    mp.mem_budget = weights + (3 << 20) + small_plan + (big_plan - small_plan) / 2;
    err = (hai_error){0};
    if (!CHECK_MSG(hai_model_load(path, &mp, &m, &err) == HAI_OK, "%s", err.msg)) return check_done("test_budget");
    uint64_t left0 = hai_model_budget_left(m); /* after the weights and the tokenizer's tables */
    CHECK_MSG(left0 < mp.mem_budget - weights && left0 > mp.mem_budget - weights - (3 << 20), "left %llu", (unsigned long long)left0);
    hai_context_params cp = hai_context_default_params();
    cp.n_ctx = 16384, cp.n_threads = 1;
    hai_context *c = NULL, *c2 = NULL;
    CHECK(hai_context_create(m, &cp, &c, &err) == HAI_ERR_LIMIT && !c);
    CHECK_MSG(strstr(err.msg, "memory budget") && strstr(err.msg, "a context of n_ctx "), "%s", err.msg);
    uint32_t fit = hai_context_fit(m, &cp, hai_model_budget_left(m));
    CHECK_MSG(fit >= 4096 && fit < 16384 && fit % 256 == 0, "fit %u", fit);
    char want[64];
    snprintf(want, sizeof want, "a context of n_ctx %u", fit);
    CHECK_MSG(strstr(err.msg, want), "'%s' not in: %s", want, err.msg);
    cp.n_ctx = fit;
    CHECK_MSG(hai_context_create(m, &cp, &c, &err) == HAI_OK, "%s", err.msg);
    CHECK(hai_context_plan_bytes(m, &cp) <= left0);
    /* the budget is shared: a second context does not fit beside the first ... */
    cp.n_ctx = 4096;
    CHECK(hai_context_create(m, &cp, &c2, &err) == HAI_ERR_LIMIT && !c2);
    CHECK_MSG(strstr(err.msg, "1 other context"), "%s", err.msg);
    /* ... and does once the first is freed; the context works */
    hai_context_free(c);
    c = NULL;
    CHECK(hai_model_budget_left(m) == left0);
    if (CHECK_MSG(hai_context_create(m, &cp, &c2, &err) == HAI_OK, "%s", err.msg)) {
        hai_token t[3] = {1, 2, 3};
        CHECK_MSG(hai_eval(c2, t, 3, &err) == HAI_OK, "%s", err.msg);
        CHECK(hai_model_budget_left(m) == left0 - hai_context_memory_bytes(c2));
    }
    hai_context_free(c2);
    /* nothing fits in a budget that leaves no room */
    CHECK(hai_context_fit(m, &cp, 1024) == 0);
    /* a 16384 context (F16 does not fit beside the weights) in the type the budget chooses: created
     * within the budget, and it evaluates */
    cp.n_ctx = 16384;
    uint32_t f16_fit = 0, kv_fit = hai_context_fit_kv(m, NULL, &cp, hai_model_budget_left(m), &f16_fit);
    CHECK_MSG(kv_fit == 16384 && cp.kv_type != HAI_TYPE_F16 && f16_fit < 16384, "%s n_ctx %u (F16 %u)", hai_type_name(cp.kv_type), kv_fit, f16_fit);
    c = NULL;
    if (CHECK_MSG(hai_context_create(m, &cp, &c, &err) == HAI_OK, "%s", err.msg)) {
        hai_token t[3] = {1, 2, 3};
        CHECK_MSG(hai_eval(c, t, 3, &err) == HAI_OK, "%s", err.msg);
        CHECK(hai_context_memory_bytes(c) <= left0);
        hai_context_free(c);
    }
    c = NULL;

    /* a draft model counted against this model's budget (budget_of): its load takes what the budget
     * has left, its contexts count there, all of it comes back when it is freed - in either order */
    uint64_t left1 = hai_model_budget_left(m);
    hai_model_params dp = hai_model_default_params();
    dp.budget_of = m, dp.stream = HAI_STREAM_OFF, dp.mem_budget = 1; /* ignored */
    hai_model *d = NULL;
    if (CHECK_MSG(hai_model_load(path, &dp, &d, &err) == HAI_OK, "%s", err.msg)) {
        uint64_t charge = left1 - hai_model_budget_left(m);
        CHECK_MSG(charge >= hai_model_weights_bytes(d) && charge < hai_model_weights_bytes(d) + (5 << 20), "the draft took %llu",
                  (unsigned long long)charge);
        CHECK(hai_model_budget_left(d) == hai_model_budget_left(m));
        hai_context_params dq = hai_context_default_params();
        dq.n_ctx = 16384, dq.n_threads = 1;
        uint32_t f16 = 0, pair = hai_context_fit_kv(m, d, &dq, hai_model_budget_left(m), &f16);
        hai_context_params alone = dq;
        alone.n_ctx = 16384;
        uint32_t single = hai_context_fit_kv(m, NULL, &alone, hai_model_budget_left(m), NULL);
        CHECK_MSG(pair > 0 && (pair < single || dq.kv_type != alone.kv_type), "with the draft %u (%s), alone %u (%s)", pair,
                  hai_type_name(dq.kv_type), single, hai_type_name(alone.kv_type));
        CHECK(hai_context_plan_bytes(m, &dq) + hai_context_plan_bytes(d, &dq) <= hai_model_budget_left(m));
        hai_context *dc = NULL;
        CHECK_MSG(hai_context_create(m, &dq, &c, &err) == HAI_OK, "%s", err.msg);
        CHECK_MSG(hai_context_create(d, &dq, &dc, &err) == HAI_OK, "%s", err.msg);
        CHECK(hai_model_budget_left(m) == left1 - charge - hai_context_memory_bytes(c) - hai_context_memory_bytes(dc));
        hai_context_free(c);
        c = NULL;
        /* the model first: the draft keeps the budget it shares */
        hai_model_free(m);
        m = NULL;
        uint64_t dleft = hai_model_budget_left(d), dbytes = hai_context_memory_bytes(dc);
        CHECK_MSG(hai_eval(dc, (hai_token[]){1, 2, 3}, 3, &err) == HAI_OK, "%s", err.msg);
        hai_context_free(dc);
        CHECK(hai_model_budget_left(d) == dleft + dbytes);
        hai_model_free(d);
    }
    /* a draft that does not fit what is left: refused, the budget as it was */
    mp.mem_budget = weights + (6 << 20);
    if (CHECK_MSG(hai_model_load(path, &mp, &m, &err) == HAI_OK, "%s", err.msg)) {
        uint64_t before = hai_model_budget_left(m);
        d = NULL;
        dp.budget_of = m;
        CHECK(hai_model_load(path, &dp, &d, &err) == HAI_ERR_LIMIT && !d);
        CHECK_MSG(strstr(err.msg, "memory budget has left") || strstr(err.msg, "the memory budget is"), "%s", err.msg);
        CHECK(hai_model_budget_left(m) == before);
        /* one that fits and is freed: everything back */
        hai_model_free(m);
        mp.mem_budget = 2 * weights + (12 << 20);
        CHECK_MSG(hai_model_load(path, &mp, &m, &err) == HAI_OK, "%s", err.msg);
        before = hai_model_budget_left(m);
        dp.budget_of = m;
        if (CHECK_MSG(hai_model_load(path, &dp, &d, &err) == HAI_OK, "%s", err.msg)) {
            CHECK(hai_model_budget_left(m) < before);
            hai_model_free(d);
            CHECK(hai_model_budget_left(m) == before);
        }
    }
    hai_model_free(m);
    fprintf(stderr, "budget: weights %.2f MiB, context 16384 %.2f MiB, 4096 %.2f MiB; fit %u\n", weights / MiB, big_plan / MiB,
            small_plan / MiB, fit);
    return check_done("test_budget");
}
