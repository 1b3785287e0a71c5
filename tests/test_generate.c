/* Generation and sampling on a reference model: greedy = argmax, seeded sampling reproducible,
 * prompt lookup giving what decoding without it gives (also with sliding-window rings),
 * stop strings across token boundaries, max_tokens and a full context end with LENGTH, a prompt
 * that does not fit is an error, cancellation, prompt-cache reuse giving identical output, and
 * clear errors for bad model files. */
#include <math.h>
#include <unistd.h>

#include "check.h"

typedef struct capture {
    char buf[8192];
    size_t n;
    int calls, cancel_after;
} capture;

static bool cap_text(void *user, const char *text, size_t len) {
    capture *c = user;
    if (c->n + len < sizeof c->buf) {
        memcpy(c->buf + c->n, text, len);
        c->n += len;
        c->buf[c->n] = '\0';
    }
    c->calls++;
    return !(c->cancel_after && c->calls >= c->cancel_after);
}

static hai_model *model;

static hai_context *ctx(uint32_t n_ctx) {
    hai_context_params cp = hai_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_threads = 2;
    hai_context *c = NULL;
    hai_error err = {0};
    CHECK_MSG(hai_context_create(model, &cp, &c, &err) == HAI_OK, "%s", err.msg);
    return c;
}

static hai_status gen(hai_context *c, const hai_token *p, size_t n, int max_tokens, const char *const *stop, size_t n_stop,
                      hai_sampler *s, capture *cap, hai_generate_result *r) {
    hai_generate_params gp = {.max_tokens = max_tokens, .stop = stop, .n_stop = n_stop, .sampler = s, .on_text = cap_text, .user = cap};
    hai_error err = {0};
    hai_status st = hai_generate(c, p, n, &gp, r, &err);
    if (st) fprintf(stderr, "generate: %s\n", err.msg);
    return st;
}

typedef struct toks {
    hai_token t[512];
    int n;
} toks;

static void cap_token(void *user, hai_token t) {
    toks *k = user;
    if (k->n < 512) k->t[k->n++] = t;
}

/* Prompt lookup gives what decoding without it gives - the same tokens, text and finish - greedy
 * and sampled with a seed (OpenAI's defaults, T 1 top_p 1, and a cut one), for several draft
 * lengths, with stop strings, max_tokens and a context that fills; and it does draft and keep
 * tokens on a prompt that repeats itself (else the check would compare plain decoding twice). */
static void check_lookup(hai_model *m, hai_model *draft, const char *what, uint32_t n_batch) {
    hai_token prompt[48];
    for (int i = 0; i < 48; i++) prompt[i] = (hai_token)(i == 0 ? 1 : 100 + (i * 7) % 13); /* a period of 13 */
    int drafted = 0, kept = 0, gram_drafted = 0;
    /* settings: greedy; T 1; T 1 with top_p 0.9; T 1 under a grammar (100 or more of the letters
     * a-m, as the prompt's byte tokens, and spaces): drafts are checked against it as picks are */
    static const char gbnf[] = "root ::= [a-m ]{100,}";
    hai_grammar *gram = NULL;
    hai_error gerr = {0};
    if (!CHECK_MSG(hai_grammar_create(hai_model_tokenizer(m), gbnf, strlen(gbnf), "root", &gram, &gerr) == HAI_OK, "%s", gerr.msg)) return;
    for (int setting = 0; setting < 4; setting++)
        for (int n_ctx = 96; n_ctx <= 256; n_ctx += 160) {
            static const char *const stop[] = {"zq\xc3"};
            hai_sampler *sm = NULL;
            hai_error err = {0};
            hai_generate_result r0, r1;
            capture c0 = {0}, c1;
            toks k0 = {0}, k1;
            for (int d = 0; d < 4; d++) {
                static const int drafts[] = {0, 1, 3, 6};
                hai_sampler_params sp = hai_sampler_default_params();
                sp.temperature = setting ? 1.0f : 0.0f, sp.top_p = setting == 2 ? 0.9f : 1.0f, sp.seed = 7;
                if (!CHECK_EQ_INT(hai_sampler_create(&sp, hai_model_n_vocab(m), &sm, &err), HAI_OK)) return;
                hai_context_params cp = hai_context_default_params();
                cp.n_ctx = (uint32_t)n_ctx, cp.n_threads = 1, cp.n_draft = 6, cp.n_batch = n_batch; /* tiny models: one thread, no pool rounds (ctest runs tests side by side) */
                hai_context *c = NULL, *dc = NULL;
                if (!CHECK_MSG(hai_context_create(m, &cp, &c, &err) == HAI_OK, "%s", err.msg)) return;
                if (draft && !CHECK_MSG(hai_context_create(draft, &cp, &dc, &err) == HAI_OK, "%s", err.msg)) return;
                capture *cc = d ? &c1 : &c0;
                toks *kk = d ? &k1 : &k0;
                memset(cc, 0, sizeof *cc), memset(kk, 0, sizeof *kk);
                /* the text in this run, the tokens in a second one (on_text and on_token share user) */
                hai_generate_params gp = {.max_tokens = n_ctx == 96 ? 0 : 150, .sampler = sm, .on_text = cap_text, .user = cc,
                                          .draft_lookup = drafts[d], .stop = stop, .n_stop = 1,
                                          .draft_context = dc, .draft_tokens = drafts[d], .grammar = setting == 3 ? gram : NULL};
                hai_grammar_reset(gram);
                hai_generate_result *r = d ? &r1 : &r0;
                CHECK_MSG(hai_generate(c, prompt, 48, &gp, r, &err) == HAI_OK, "%s: %s", what, err.msg);
                hai_context_free(c);
                hai_sampler_free(sm);
                CHECK_EQ_INT(hai_sampler_create(&sp, hai_model_n_vocab(m), &sm, &err), HAI_OK);
                CHECK_EQ_INT(hai_context_create(m, &cp, &c, &err), HAI_OK);
                hai_generate_params gt = gp;
                gt.on_text = NULL, gt.on_token = cap_token, gt.user = kk, gt.sampler = sm; /* the draft context as the last run left it */
                hai_generate_result rt;
                hai_grammar_reset(gram);
                CHECK_EQ_INT(hai_generate(c, prompt, 48, &gt, &rt, &err), HAI_OK);
                hai_context_free(c);
                hai_context_free(dc);
                hai_sampler_free(sm);
                if (!d) continue;
                drafted += r1.n_drafted, kept += r1.n_accepted;
                if (setting == 3) gram_drafted += r1.n_drafted;
                CHECK_MSG(k1.n == k0.n && !memcmp(k1.t, k0.t, (size_t)k0.n * sizeof *k0.t) && r1.finish == r0.finish &&
                              r1.n_generated == r0.n_generated && c1.n == c0.n && !memcmp(c1.buf, c0.buf, c0.n),
                          "%s: setting %d, n_ctx %d, drafts %d: %d tokens (finish %d) against %d without (finish %d)", what, setting, n_ctx,
                          drafts[d], k1.n, r1.finish, k0.n, r0.finish);
            }
        }
    hai_grammar_free(gram);
    CHECK_MSG(drafted > 0 && kept > 0, "%s: drafted %d tokens and kept %d", what, drafted, kept);
    CHECK_MSG(gram_drafted > 0, "%s: nothing drafted under the grammar", what);
    fprintf(stderr, "%s: drafted %d tokens, kept %d\n", what, drafted, kept);
}

/* Cancelled in the middle of drafted passes: the text until then is what decoding without drafts
 * gives, the finish is CANCELLED, and the cache left behind is sound - a full generation after it
 * in the same context (the cached prefix reused) gives what a fresh context gives. */
static void check_lookup_cancel(hai_model *m) {
    hai_token prompt[48];
    for (int i = 0; i < 48; i++) prompt[i] = (hai_token)(i == 0 ? 1 : 100 + (i * 7) % 13);
    capture cut[2], full[2];
    for (int d = 0; d < 2; d++) {
        hai_context_params cp = hai_context_default_params();
        cp.n_ctx = 256, cp.n_threads = 1, cp.n_draft = 6;
        hai_context *c = NULL;
        hai_error err = {0};
        if (!CHECK_EQ_INT(hai_context_create(m, &cp, &c, &err), HAI_OK)) return;
        memset(&cut[d], 0, sizeof cut[d]), memset(&full[d], 0, sizeof full[d]);
        cut[d].cancel_after = 40;
        hai_generate_params gp = {.max_tokens = 120, .on_text = cap_text, .user = &cut[d], .draft_lookup = d ? 6 : 0};
        hai_generate_result r;
        CHECK_EQ_INT(hai_generate(c, prompt, 48, &gp, &r, &err), HAI_OK);
        CHECK_EQ_INT(r.finish, HAI_FINISH_CANCELLED);
        if (d) CHECK_MSG(r.n_accepted > 0, "no draft kept before the cancel (%d drafted)", r.n_drafted);
        gp.user = &full[d];
        CHECK_EQ_INT(hai_generate(c, prompt, 48, &gp, &r, &err), HAI_OK);
        hai_context_free(c);
    }
    CHECK_MSG(cut[0].n == cut[1].n && !memcmp(cut[0].buf, cut[1].buf, cut[0].n), "cancelled: '%s' with drafts, '%s' without", cut[1].buf, cut[0].buf);
    CHECK_MSG(full[0].n == full[1].n && !memcmp(full[0].buf, full[1].buf, full[0].n), "after a cancel: '%s' with drafts, '%s' without",
              full[1].buf, full[0].buf);
}

/* Pearson's statistic of n draws (count[v]) against probabilities p[v]: bins of an expected count
 * of 5 or more, the rest pooled into one; *df = bins - 1. */
static double chi_square(const int *count, const double *p, int32_t nv, int n, int *df) {
    double chi = 0, rest_p = 0;
    int rest_n = 0, bins = 0;
    for (int32_t v = 0; v < nv; v++) {
        double e = p[v] * n;
        if (e < 5) {
            rest_p += p[v], rest_n += count[v];
            continue;
        }
        chi += (count[v] - e) * (count[v] - e) / e, bins++;
    }
    if (rest_p * n >= 5) chi += (rest_n - rest_p * n) * (rest_n - rest_p * n) / (rest_p * n), bins++;
    *df = bins - 1;
    return chi;
}

/* The statistic a chi-square variable with df degrees of freedom exceeds with probability 1e-4
 * (Wilson-Hilferty: (X/df)^(1/3) is close to normal with mean 1 - 2/(9 df), variance 2/(9 df)). */
static double chi_square_limit(int df) {
    double v = 2.0 / (9.0 * df), z = 3.719;
    return df * pow(1 - v + z * sqrt(v), 3);
}

/* The model's next-token probabilities after toks at temperature T (a plain context, no drafts). */
static void next_probs(hai_model *m, const hai_token *t, size_t n, float T, double *p) {
    hai_context_params cp = hai_context_default_params();
    cp.n_ctx = 128, cp.n_threads = 1;
    hai_context *c = NULL;
    hai_error err = {0};
    int32_t nv = hai_model_n_vocab(m);
    if (!CHECK_EQ_INT(hai_context_create(m, &cp, &c, &err), HAI_OK) || !CHECK_EQ_INT(hai_eval(c, t, n, &err), HAI_OK)) return;
    const float *lg = hai_logits(c, -1);
    double mx = -INFINITY, z = 0;
    for (int32_t v = 0; v < nv; v++) mx = fmax(mx, lg[v] / T);
    for (int32_t v = 0; v < nv; v++) z += p[v] = exp(lg[v] / T - mx);
    for (int32_t v = 0; v < nv; v++) p[v] /= z;
    hai_context_free(c);
}

/* Sampling with drafts draws from the model's own distribution: many seeded generations of three
 * tokens (T 0.7, no cut) with the model drafting for itself; the second token is drawn from the
 * row of the fed first token, the third - when the second is the draft - from a drafted row. Both
 * against the model's probabilities computed without drafts, by chi-square (the statistic must
 * stay under its 1e-4 quantile), and the same counts against the probabilities after another
 * token must fail it: the test can tell. */
static void check_sampled_distribution(hai_model *m) {
    enum { N = 1000 };
    const float T = 0.7f;
    int32_t nv = hai_model_n_vocab(m);
    hai_token prompt[24], path[26];
    for (int i = 0; i < 24; i++) prompt[i] = (hai_token)(i == 0 ? 1 : 100 + (i * 5) % 11);
    hai_context_params cp = hai_context_default_params();
    cp.n_ctx = 64, cp.n_threads = 1, cp.n_draft = 2; /* a tiny model: one thread, no pool rounds */
    hai_context *c = NULL, *dc = NULL;
    hai_error err = {0};
    if (!CHECK_EQ_INT(hai_context_create(m, &cp, &c, &err), HAI_OK) || !CHECK_EQ_INT(hai_context_create(m, &cp, &dc, &err), HAI_OK)) return;
    static hai_token got[N][3];
    int drafted = 0;
    for (int i = 0; i < N; i++) {
        hai_sampler_params sp = hai_sampler_default_params();
        sp.temperature = T, sp.top_k = 0, sp.top_p = 1, sp.min_p = 0, sp.repeat_penalty = 1, sp.seed = 1000 + (uint64_t)i;
        hai_sampler *sm = NULL;
        if (!CHECK_EQ_INT(hai_sampler_create(&sp, nv, &sm, &err), HAI_OK)) break;
        toks k = {0};
        hai_generate_params gp = {.max_tokens = 3, .sampler = sm, .on_token = cap_token, .user = &k, .draft_context = dc, .draft_tokens = 2};
        hai_generate_result r;
        CHECK_EQ_INT(hai_generate(c, prompt, 24, &gp, &r, &err), HAI_OK);
        hai_sampler_free(sm);
        drafted += r.n_drafted;
        for (int j = 0; j < 3; j++) got[i][j] = j < k.n ? k.t[j] : -1;
    }
    hai_context_free(c), hai_context_free(dc);
    CHECK_MSG(drafted > 0, "nothing drafted");
    /* the most frequent first token; the second given it; the third given both, the second being
     * the draft (the greedy pick after the first) */
    int *cnt = calloc((size_t)nv, sizeof *cnt);
    double *p = malloc((size_t)nv * sizeof *p), *q = malloc((size_t)nv * sizeof *q);
    for (int i = 0; i < N; i++)
        if (got[i][0] >= 0) cnt[got[i][0]]++;
    hai_token t1 = 0;
    for (int32_t v = 1; v < nv; v++)
        if (cnt[v] > cnt[t1]) t1 = v;
    memcpy(path, prompt, sizeof prompt);
    path[24] = t1;
    next_probs(m, path, 25, T, p);
    hai_token d1 = 0;
    for (int32_t v = 1; v < nv; v++)
        if (p[v] > p[d1]) d1 = v;
    for (int stage = 0; stage < 2; stage++) {
        memset(cnt, 0, (size_t)nv * sizeof *cnt);
        int n = 0;
        for (int i = 0; i < N; i++) {
            if (got[i][0] != t1 || (stage == 1 && got[i][1] != d1) || got[i][1 + stage] < 0) continue;
            cnt[got[i][1 + stage]]++, n++;
        }
        path[25] = d1;
        if (stage == 1) next_probs(m, path, 26, T, p);
        path[24 + stage] = (hai_token)(t1 == 200 ? 201 : 200); /* another token in the last place: the wrong distribution */
        next_probs(m, path, 25 + (size_t)stage, T, q);
        path[24] = t1;
        int df, dfq;
        double chi = chi_square(cnt, p, nv, n, &df), chq = chi_square(cnt, q, nv, n, &dfq);
        fprintf(stderr, "sampled %s row: %d draws, chi-square %.1f on %d df (limit %.1f); against another token's %.1f on %d df (limit %.1f)\n",
                stage ? "a drafted" : "the fed token's", n, chi, df, chi_square_limit(df), chq, dfq, chi_square_limit(dfq));
        CHECK_MSG(n >= 100 && df >= 3, "too few draws (%d) or bins (%d) to test", n, df + 1);
        CHECK_MSG(chi < chi_square_limit(df), "stage %d: chi-square %.1f on %d df: not the model's distribution", stage, chi, df);
        CHECK_MSG(chq > chi_square_limit(dfq), "stage %d: the test cannot tell another distribution (%.1f on %d df)", stage, chq, dfq);
    }
    free(cnt), free(p), free(q);
}

int main(int argc, char **argv) {
    const char *shared = check_shared_dir(argc, argv);
    char path[4096];
    snprintf(path, sizeof path, "%s/reference/llama-s-Q8_0.gguf", shared);
    hai_error err = {0};
    if (!CHECK_MSG(hai_model_load(path, NULL, &model, &err) == HAI_OK, "%s", err.msg)) return check_done("test_generate");
    check_lookup(model, NULL, "llama-s-Q8_0", 512);
    check_lookup(model, model, "llama-s-Q8_0 drafting for itself", 512);
    check_sampled_distribution(model);
    check_lookup_cancel(model);
    {
        /* a draft model: the Q4_0 file drafting for the Q8_0 one; another vocabulary refused */
        hai_model *q4 = NULL, *qw = NULL;
        char p2[4096];
        snprintf(p2, sizeof p2, "%s/reference/llama-s-Q4_0.gguf", shared);
        if (CHECK_MSG(hai_model_load(p2, NULL, &q4, &err) == HAI_OK, "%s", err.msg)) {
            CHECK_EQ_INT(hai_draft_check(model, q4, &err), HAI_OK);
            check_lookup(model, q4, "llama-s-Q4_0 drafting for llama-s-Q8_0", 512);
        }
        /* GPT-2's vocabulary on a small synthetic model: larger than llama-s's, and other texts */
        char gp2[] = "/tmp/hai-gen-gpt2-XXXXXX", vocab[4096];
        int fd = mkstemp(gp2);
        snprintf(vocab, sizeof vocab, "%s/vocab/ggml-vocab-gpt-2.gguf", shared);
        hai_synth_params sp = hai_synth_default_params();
        sp.n_embd = 64, sp.n_head = 4, sp.n_head_kv = 4, sp.n_ff = 128, sp.n_layer = 1, sp.type = HAI_TYPE_Q8_0, sp.vocab_path = vocab;
        if (CHECK(fd >= 0) && CHECK_MSG(hai_synth_write(gp2, &sp, &err) == HAI_OK && hai_model_load(gp2, NULL, &qw, &err) == HAI_OK, "%s", err.msg)) {
            CHECK_MSG(hai_draft_check(model, qw, &err) == HAI_ERR_FORMAT && strstr(err.msg, "its vocabulary has 50257 tokens"), "%s", err.msg);
            CHECK_MSG(hai_draft_check(qw, model, &err) == HAI_ERR_FORMAT && strstr(err.msg, "not the same vocabulary"), "%s", err.msg);
        }
        if (fd >= 0) close(fd), unlink(gp2);
        hai_model_free(q4), hai_model_free(qw);
    }
    {
        /* sliding-window rings (gemma2: a window of 16, passes of 8): drafts cut back inside the ring */
        char sw[] = "/tmp/hai-gen-swa-XXXXXX";
        int fd = mkstemp(sw);
        hai_synth_params sp = hai_synth_default_params();
        sp.arch = "gemma2", sp.n_layer = 2, sp.n_ctx_train = 128, sp.std = 0.05f, sp.type = HAI_TYPE_Q8_0;
        hai_model *gm = NULL;
        if (CHECK(fd >= 0) && CHECK_MSG(hai_synth_write(sw, &sp, &err) == HAI_OK && hai_model_load(sw, NULL, &gm, &err) == HAI_OK, "%s", err.msg))
            check_lookup(gm, NULL, "gemma2 synth", 8);
        hai_model_free(gm);
        if (fd >= 0) close(fd), unlink(sw);
    }
    const hai_token prompt[] = {1, 450, 996, 1354, 701, 916};
    const size_t np = sizeof prompt / sizeof prompt[0];
    hai_generate_result r;

    /* greedy: the first generated token is the argmax of the prompt's last logits */
    hai_context *c = ctx(256);
    CHECK_EQ_INT(hai_eval(c, prompt, np, &err), HAI_OK);
    const float *lg = hai_logits(c, -1);
    hai_token best = 0;
    for (int32_t i = 1; i < hai_model_n_vocab(model); i++)
        if (lg[i] > lg[best]) best = i;
    hai_sampler_params sp = hai_sampler_default_params();
    sp.temperature = 0;
    hai_sampler *greedy;
    CHECK_EQ_INT(hai_sampler_create(&sp, hai_model_n_vocab(model), &greedy, &err), HAI_OK);
    CHECK_EQ_INT(hai_sampler_sample(greedy, lg), best);
    sp = hai_sampler_default_params();
    sp.top_k = 1;
    hai_sampler *topk1;
    CHECK_EQ_INT(hai_sampler_create(&sp, hai_model_n_vocab(model), &topk1, &err), HAI_OK);
    CHECK_EQ_INT(hai_sampler_sample(topk1, lg), best); /* top-k 1 leaves only the argmax */
    float ent = hai_logits_entropy(lg, hai_model_n_vocab(model));
    CHECK(ent > 0 && ent < logf((float)hai_model_n_vocab(model)) + 1e-3f);
    float flat[4] = {0, 0, 0, 0};
    CHECK_NEAR(hai_logits_entropy(flat, 4), logf(4), 1e-5);
    hai_context_free(c);

    /* a greedy reference run of 40 tokens */
    capture base = {0};
    c = ctx(256);
    CHECK_EQ_INT(gen(c, prompt, np, 40, NULL, 0, NULL, &base, &r), HAI_OK);
    CHECK_EQ_INT(r.finish, HAI_FINISH_LENGTH);
    CHECK_EQ_INT(r.n_generated, 40);
    CHECK_EQ_INT(r.n_prompt, (int)np);
    CHECK(base.n > 10);
    fprintf(stderr, "greedy text: '%s' (mean entropy %.3f)\n", base.buf, r.mean_entropy);

    /* the same prompt again in the same context: the cache is reused, the text is the same */
    capture again = {0};
    CHECK_EQ_INT(gen(c, prompt, np, 40, NULL, 0, NULL, &again, &r), HAI_OK);
    CHECK_EQ_INT(r.n_cached, (int)np - 1);
    CHECK_EQ_INT(r.n_prompt, 1);
    CHECK(again.n == base.n && !memcmp(again.buf, base.buf, base.n));

    /* a stop string in the middle of the text (likely across tokens): output ends right before it */
    size_t cut = base.n / 2;
    char stop[8];
    memcpy(stop, base.buf + cut, 3);
    stop[3] = '\0';
    const char *stops[] = {"never-appears-xyz", stop};
    size_t first = (size_t)(strstr(base.buf, stop) - base.buf);
    capture st = {0};
    CHECK_EQ_INT(gen(c, prompt, np, 40, stops, 2, NULL, &st, &r), HAI_OK);
    CHECK_EQ_INT(r.finish, HAI_FINISH_STOP);
    CHECK_MSG(st.n == first && !memcmp(st.buf, base.buf, first), "stopped text '%s', want the first %zu bytes of '%s'", st.buf,
              first, base.buf);

    /* cancellation from the text callback */
    capture cc = {.cancel_after = 3};
    CHECK_EQ_INT(gen(c, prompt, np, 40, NULL, 0, NULL, &cc, &r), HAI_OK);
    CHECK_EQ_INT(r.finish, HAI_FINISH_CANCELLED);
    CHECK_EQ_INT(cc.calls, 3);
    hai_context_free(c);

    /* seeded sampling: same seed, same text; another seed, (almost surely) another */
    capture s1 = {0}, s2 = {0}, s3 = {0};
    sp = hai_sampler_default_params();
    sp.temperature = 1.5f;
    sp.top_k = 0;
    sp.top_p = 1.0f;
    sp.min_p = 0;
    sp.seed = 7;
    hai_sampler *a, *b;
    CHECK_EQ_INT(hai_sampler_create(&sp, hai_model_n_vocab(model), &a, &err), HAI_OK);
    sp.seed = 8;
    CHECK_EQ_INT(hai_sampler_create(&sp, hai_model_n_vocab(model), &b, &err), HAI_OK);
    c = ctx(256);
    CHECK_EQ_INT(gen(c, prompt, np, 30, NULL, 0, a, &s1, &r), HAI_OK);
    hai_sampler_reset(a);
    CHECK_EQ_INT(gen(c, prompt, np, 30, NULL, 0, a, &s2, &r), HAI_OK);
    CHECK_EQ_INT(gen(c, prompt, np, 30, NULL, 0, b, &s3, &r), HAI_OK);
    CHECK(s1.n == s2.n && !memcmp(s1.buf, s2.buf, s1.n));
    CHECK(s1.n != s3.n || memcmp(s1.buf, s3.buf, s1.n) != 0);
    hai_context_free(c);

    /* penalties change a repeated token's odds: with a strong repetition penalty the argmax,
     * once accepted, is no longer chosen */
    sp = hai_sampler_default_params();
    sp.temperature = 0;
    sp.repeat_penalty = 1e6f;
    hai_sampler *pen;
    CHECK_EQ_INT(hai_sampler_create(&sp, hai_model_n_vocab(model), &pen, &err), HAI_OK);
    float lg3[3] = {1.0f, 2.0f, 1.5f};
    (void)lg3;
    hai_sampler_free(pen);
    hai_sampler_params p3 = {.temperature = 0, .repeat_penalty = 10.0f, .repeat_last_n = 4, .top_p = 1};
    hai_sampler *s3x;
    CHECK_EQ_INT(hai_sampler_create(&p3, 3, &s3x, &err), HAI_OK);
    CHECK_EQ_INT(hai_sampler_sample(s3x, lg3), 1);
    hai_sampler_accept(s3x, 1);
    CHECK_EQ_INT(hai_sampler_sample(s3x, lg3), 2); /* 2/10 = 0.2 < 1.5 */
    hai_sampler_params p4 = {.temperature = 0, .repeat_penalty = 1, .presence_penalty = 0.6f, .repeat_last_n = 4, .top_p = 1};
    hai_sampler *s4;
    CHECK_EQ_INT(hai_sampler_create(&p4, 3, &s4, &err), HAI_OK);
    hai_sampler_accept(s4, 1);
    CHECK_EQ_INT(hai_sampler_sample(s4, lg3), 2); /* 2 - 0.6 = 1.4 < 1.5 */
    hai_sampler_free(s3x);
    hai_sampler_free(s4);
    hai_sampler_params bad = {.temperature = -1, .top_p = 1};
    hai_sampler *sb = NULL;
    CHECK_EQ_INT(hai_sampler_create(&bad, 3, &sb, &err), HAI_ERR_INVALID);

    /* the context's end: generation stops with LENGTH at exactly n_ctx positions */
    c = ctx(24);
    capture full = {0};
    CHECK_EQ_INT(gen(c, prompt, np, 0, NULL, 0, NULL, &full, &r), HAI_OK);
    CHECK_EQ_INT(r.finish, HAI_FINISH_LENGTH);
    CHECK_EQ_INT(hai_context_n_past(c), 24);
    CHECK_EQ_INT(r.n_generated, 24 - (int)np); /* prompt + completion = the context */
    /* a prompt that leaves no room is refused with the numbers */
    hai_token longp[24];
    for (int i = 0; i < 24; i++) longp[i] = 100 + i;
    CHECK_EQ_INT(gen(c, longp, 24, 10, NULL, 0, NULL, &full, &r), HAI_ERR_LIMIT);
    CHECK_EQ_INT(hai_eval(c, longp, 24, &err), HAI_ERR_LIMIT);
    CHECK(strstr(err.msg, "24") != NULL);
    hai_token badtok = 1 << 30;
    CHECK_EQ_INT(hai_context_truncate(c, 0, &err), HAI_OK);
    CHECK_EQ_INT(hai_eval(c, &badtok, 1, &err), HAI_ERR_INVALID);
    CHECK_EQ_INT(hai_context_truncate(c, 5, &err), HAI_ERR_INVALID); /* beyond what is held */
    hai_context_free(c);
    hai_sampler_free(greedy);
    hai_sampler_free(topk1);
    hai_sampler_free(a);
    hai_sampler_free(b);
    hai_model_free(model);

    /* bad model files: an unknown architecture, a type hai cannot compute with, a missing
     * tensor, a wrong shape - each a clear error at load */
    char tmp[] = "/tmp/hai-badmodel-XXXXXX";
    int fd = mkstemp(tmp);
    close(fd);
    struct { const char *what, *want; } cases[] = {
        {"arch", "architecture 'gpt-j' is not supported"},
        {"type", "IQ2_XXS, which hai cannot compute with"},
        {"missing", "tensor 'blk.1.ffn_up.weight' is missing"},
        {"shape", "has shape"},
    };
    for (size_t k = 0; k < 4; k++) {
        hai_synth_params p = hai_synth_default_params();
        p.n_layer = 2;
        CHECK_EQ_INT(hai_synth_write(tmp, &p, &err), HAI_OK);
        /* rewrite the file with one change */
        hai_gguf *g;
        CHECK_EQ_INT(hai_gguf_open(tmp, &g, &err), HAI_OK);
        hai_gguf_writer *w;
        CHECK_EQ_INT(hai_gguf_writer_create(3, 32, &w, &err), HAI_OK);
        for (int64_t i = 0; i < hai_gguf_n_kv(g); i++) {
            const hai_gguf_kv *kv = hai_gguf_kv_at(g, i);
            if (k == 0 && !strcmp(kv->key, "general.architecture")) hai_gguf_writer_set_str(w, kv->key, "gpt-j", &err);
            else hai_gguf_writer_set(w, kv->key, &kv->value, &err);
        }
        static uint8_t junk[1 << 20];
        for (int64_t i = 0; i < hai_gguf_n_tensors(g); i++) {
            const hai_gguf_tensor *t = hai_gguf_tensor_at(g, i);
            if (k == 2 && !strcmp(t->name, "blk.1.ffn_up.weight")) continue;
            if (k == 1 && !strcmp(t->name, "blk.0.attn_q.weight")) {
                hai_gguf_writer_add_tensor(w, t->name, HAI_TYPE_IQ2_XXS, t->n_dims, t->ne, junk, &err);
                continue;
            }
            if (k == 3 && !strcmp(t->name, "blk.0.ffn_down.weight")) {
                int64_t ne[2] = {t->ne[1], t->ne[0]};
                hai_gguf_writer_add_tensor(w, t->name, t->type, 2, ne, t->data, &err);
                continue;
            }
            hai_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data, &err);
        }
        char out[64];
        snprintf(out, sizeof out, "%s.mod", tmp);
        CHECK_MSG(hai_gguf_writer_write(w, out, &err) == HAI_OK, "%s", err.msg);
        hai_gguf_writer_free(w);
        hai_gguf_free(g);
        hai_model *bm = NULL;
        hai_status s = hai_model_load(out, NULL, &bm, &err);
        CHECK_MSG(s != HAI_OK && strstr(err.msg, cases[k].want), "%s: status %s, message '%s'", cases[k].what, hai_status_name(s), err.msg);
        hai_model_free(bm);
        remove(out);
    }
    /* Llama 3.1 frequency factors (rope_freqs.weight): all ones change nothing, twos do */
    float base_logit = 0, ones_logit = 0, twos_logit = 0;
    for (int variant = 0; variant < 3; variant++) {
        hai_synth_params p = hai_synth_default_params();
        CHECK_EQ_INT(hai_synth_write(tmp, &p, &err), HAI_OK);
        char out[64];
        snprintf(out, sizeof out, "%s.rope", tmp);
        const char *use = tmp;
        if (variant) {
            hai_gguf *g;
            hai_gguf_writer *w;
            CHECK_EQ_INT(hai_gguf_open(tmp, &g, &err), HAI_OK);
            CHECK_EQ_INT(hai_gguf_writer_create(3, 32, &w, &err), HAI_OK);
            for (int64_t i = 0; i < hai_gguf_n_kv(g); i++) hai_gguf_writer_set(w, hai_gguf_kv_at(g, i)->key, &hai_gguf_kv_at(g, i)->value, &err);
            for (int64_t i = 0; i < hai_gguf_n_tensors(g); i++) {
                const hai_gguf_tensor *t = hai_gguf_tensor_at(g, i);
                hai_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data, &err);
            }
            static float f[32];
            for (int i = 0; i < 32; i++) f[i] = variant == 1 ? 1.0f : 2.0f;
            int64_t ne[1] = {32}; /* head_dim 64 / 2 */
            CHECK_EQ_INT(hai_gguf_writer_add_tensor(w, "rope_freqs.weight", HAI_TYPE_F32, 1, ne, f, &err), HAI_OK);
            CHECK_MSG(hai_gguf_writer_write(w, out, &err) == HAI_OK, "%s", err.msg);
            hai_gguf_writer_free(w);
            hai_gguf_free(g);
            use = out;
        }
        hai_model *rm = NULL;
        CHECK_MSG(hai_model_load(use, NULL, &rm, &err) == HAI_OK, "%s", err.msg);
        if (rm) {
            model = rm;
            hai_context *rc = ctx(64);
            hai_token tk[8] = {1, 10, 20, 30, 40, 50, 60, 70};
            CHECK_EQ_INT(hai_eval(rc, tk, 8, &err), HAI_OK);
            float v = hai_logits(rc, -1)[5];
            if (variant == 0) base_logit = v;
            else if (variant == 1) ones_logit = v;
            else twos_logit = v;
            hai_context_free(rc);
            hai_model_free(rm);
        }
        remove(out);
    }
    CHECK(base_logit == ones_logit);
    CHECK(base_logit != twos_logit);
    remove(tmp);
    return check_done("test_generate");
}
