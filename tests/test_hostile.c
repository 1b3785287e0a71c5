/* Hostile model files: implausible metadata (an epsilon of 1e-40, a RoPE base of inf, a scaling
 * factor whose inverse overflows, frequency factors of NaN) is refused at load with the key and
 * value named; weights of NaN and inf give logits that sampling survives (never a NaN token,
 * never a read outside the candidates), with an entropy that says "unsure"; a first generated
 * token with no text (a control token) passes through the stop-string buffer safely. */
#include <unistd.h>

#include "check.h"

static char base[] = "/tmp/hai-hostile-XXXXXX";
static char edited[64];

/* The edits: a metadata key set to a float, and a tensor whose values are rewritten. */
typedef struct edit {
    const char *key;      /* NULL: none */
    float value;
    const char *tensor;   /* NULL: none; F32 tensors only */
    void (*fill)(float *v, int64_t rows, int64_t cols);
    bool add_linear;      /* also set rope.scaling.type = "linear" */
    bool add_yarn;        /* also set rope.scaling.type = "yarn", with original_context_length unless no_orig */
    bool no_orig;
    bool add_freqs;       /* add rope_freqs.weight (NaN in the middle) */
    bool add_longrope;    /* add LongRoPE's factors (the short ones with a 0 in the middle), and with
                           * orig_ctx its original context length */
    uint32_t orig_ctx;
} edit;

static bool write_edited(const edit *e) {
    hai_error err = {0};
    hai_gguf *g = NULL;
    hai_gguf_writer *w = NULL;
    if (!CHECK_MSG(hai_gguf_open(base, &g, &err) == HAI_OK, "%s", err.msg)) return false;
    CHECK_EQ_INT(hai_gguf_writer_create(3, 32, &w, &err), HAI_OK);
    for (int64_t i = 0; i < hai_gguf_n_kv(g); i++) hai_gguf_writer_set(w, hai_gguf_kv_at(g, i)->key, &hai_gguf_kv_at(g, i)->value, &err);
    if (e->key) CHECK_EQ_INT(hai_gguf_writer_set_f32(w, e->key, e->value, &err), HAI_OK);
    if (e->add_linear) CHECK_EQ_INT(hai_gguf_writer_set_str(w, "llama.rope.scaling.type", "linear", &err), HAI_OK);
    if (e->add_yarn) CHECK_EQ_INT(hai_gguf_writer_set_str(w, "llama.rope.scaling.type", "yarn", &err), HAI_OK);
    if (e->add_yarn && !e->no_orig) CHECK_EQ_INT(hai_gguf_writer_set_u32(w, "llama.rope.scaling.original_context_length", 4096, &err), HAI_OK);
    float *owned[4] = {0};
    int n_owned = 0;
    for (int64_t i = 0; i < hai_gguf_n_tensors(g); i++) {
        const hai_gguf_tensor *t = hai_gguf_tensor_at(g, i);
        const void *data = t->data;
        if (e->tensor && !strcmp(t->name, e->tensor) && t->type == HAI_TYPE_F32 && n_owned < 4) {
            float *v = malloc((size_t)t->n_elements * sizeof *v);
            memcpy(v, t->data, (size_t)t->n_elements * sizeof *v);
            e->fill(v, t->n_dims > 1 ? t->ne[1] : 1, t->ne[0]);
            data = owned[n_owned++] = v;
        }
        CHECK_EQ_INT(hai_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, data, &err), HAI_OK);
    }
    static float freqs[32];
    if (e->add_freqs) {
        for (int i = 0; i < 32; i++) freqs[i] = i == 7 ? NAN : 1.0f;
        int64_t ne[1] = {32}; /* head_dim 64 / 2 */
        CHECK_EQ_INT(hai_gguf_writer_add_tensor(w, "rope_freqs.weight", HAI_TYPE_F32, 1, ne, freqs, &err), HAI_OK);
    }
    static float longf[32], shortf[32];
    if (e->add_longrope) {
        for (int i = 0; i < 32; i++) longf[i] = 1.0f + i, shortf[i] = i == 9 ? 0.0f : 1.0f;
        int64_t ne[1] = {32};
        CHECK_EQ_INT(hai_gguf_writer_add_tensor(w, "rope_factors_long.weight", HAI_TYPE_F32, 1, ne, longf, &err), HAI_OK);
        CHECK_EQ_INT(hai_gguf_writer_add_tensor(w, "rope_factors_short.weight", HAI_TYPE_F32, 1, ne, shortf, &err), HAI_OK);
        if (e->orig_ctx) CHECK_EQ_INT(hai_gguf_writer_set_u32(w, "llama.rope.scaling.original_context_length", e->orig_ctx, &err), HAI_OK);
    }
    bool ok = CHECK_MSG(hai_gguf_writer_write(w, edited, &err) == HAI_OK, "%s", err.msg);
    for (int i = 0; i < n_owned; i++) free(owned[i]);
    hai_gguf_writer_free(w);
    hai_gguf_free(g);
    return ok;
}

static void refused(const char *what, const edit *e, const char *want) {
    if (!write_edited(e)) return;
    hai_model *m = NULL;
    hai_error err = {0};
    hai_status st = hai_model_load(edited, NULL, &m, &err);
    CHECK_MSG((st == HAI_ERR_FORMAT || st == HAI_ERR_UNSUPPORTED) && strstr(err.msg, want), "%s: status %s, '%s' (want '%s')", what, hai_status_name(st), err.msg, want);
    hai_model_free(m);
}

static void all_nan(float *v, int64_t rows, int64_t cols) {
    for (int64_t i = 0; i < rows * cols; i++) v[i] = NAN;
}

/* output rows: a third NaN, a third huge (their logits overflow to +-inf), a third as they were */
static void thirds(float *v, int64_t rows, int64_t cols) {
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            if (r % 3 == 0) v[r * cols + c] = NAN;
            else if (r % 3 == 1) v[r * cols + c] = c % 2 ? 3e38f : -3e38f;
        }
}

/* Sampling on logits a hostile model gives: every draw an id in range, never a NaN logit's. */
static void sample_survives(const char *what, int32_t n_vocab, bool some_finite) {
    hai_model *m = NULL;
    hai_error err = {0};
    if (!CHECK_MSG(hai_model_load(edited, NULL, &m, &err) == HAI_OK, "%s: %s", what, err.msg)) return;
    hai_context_params cp = hai_context_default_params();
    cp.n_ctx = 64;
    cp.n_threads = 2;
    hai_context *c = NULL;
    CHECK_EQ_INT(hai_context_create(m, &cp, &c, &err), HAI_OK);
    hai_token prompt[4] = {1, 70, 80, 90};
    CHECK_EQ_INT(hai_eval(c, prompt, 4, &err), HAI_OK);
    const float *lg = hai_logits(c, -1);
    int nan = 0;
    for (int32_t i = 0; i < n_vocab; i++) nan += lg[i] != lg[i];
    CHECK_MSG(nan > 0, "%s: the edit made no NaN logits", what); /* the case is what it claims */
    /* the default settings (top-k 40), greedy, a plain temperature, and every cut at once */
    hai_sampler_params ps[4] = {hai_sampler_default_params(), {.temperature = 0, .top_p = 1, .repeat_penalty = 1},
                                {.temperature = 1, .top_p = 1, .repeat_penalty = 1},
                                {.temperature = 0.7f, .top_k = 5, .top_p = 0.5f, .min_p = 0.2f, .repeat_penalty = 1.3f, .repeat_last_n = 8}};
    for (int k = 0; k < 4; k++)
        for (uint64_t seed = 0; seed < 50; seed++) {
            ps[k].seed = seed;
            hai_sampler *s = NULL;
            if (!CHECK(hai_sampler_create(&ps[k], n_vocab, &s, &err) == HAI_OK)) continue;
            for (int i = 0; i < 4; i++) hai_sampler_accept(s, prompt[i]);
            hai_token t = hai_sampler_sample(s, lg);
            CHECK_MSG(t >= 0 && t < n_vocab, "%s: sampler %d seed %llu gave %d", what, k, (unsigned long long)seed, t);
            if (some_finite && t >= 0 && t < n_vocab)
                CHECK_MSG(lg[t] == lg[t], "%s: sampler %d seed %llu chose token %d whose logit is NaN", what, k, (unsigned long long)seed, t);
            hai_sampler_free(s);
        }
    float h = hai_logits_entropy(lg, n_vocab);
    CHECK_MSG(h == h && h > 0, "%s: entropy %g", what, h);
    /* and a whole generation, as the server runs it */
    hai_sampler_params dp = hai_sampler_default_params();
    hai_sampler *s = NULL;
    CHECK_EQ_INT(hai_sampler_create(&dp, n_vocab, &s, &err), HAI_OK);
    hai_generate_params gp = {.max_tokens = 8, .sampler = s};
    hai_generate_result r;
    CHECK_MSG(hai_generate(c, prompt, 4, &gp, &r, &err) == HAI_OK, "%s: %s", what, err.msg);
    hai_sampler_free(s);
    hai_context_free(c);
    hai_model_free(m);
}

typedef struct first {
    bool seen, empty;
} first;

static void on_first(void *user, hai_token t) {
    first *f = user;
    if (!f->seen) f->empty = t == 0 || t == 1; /* <unk>, <s>: no text */
    f->seen = true;
}

int main(void) {
    int fd = mkstemp(base);
    if (!CHECK(fd >= 0)) return check_done("test_hostile");
    close(fd);
    snprintf(edited, sizeof edited, "%s.edit", base);
    hai_synth_params sp = hai_synth_default_params(); /* llama, byte-level vocab of 259, head_dim 64 */
    sp.n_layer = 1;
    hai_error err = {0};
    if (!CHECK_MSG(hai_synth_write(base, &sp, &err) == HAI_OK, "%s", err.msg)) return check_done("test_hostile");

    refused("epsilon", &(edit){.key = "llama.attention.layer_norm_rms_epsilon", .value = 1e-40f}, "layer_norm_rms_epsilon 9.99995e-41");
    refused("epsilon inf", &(edit){.key = "llama.attention.layer_norm_rms_epsilon", .value = INFINITY}, "layer_norm_rms_epsilon inf");
    refused("base", &(edit){.key = "llama.rope.freq_base", .value = INFINITY}, "rope.freq_base inf");
    refused("base NaN", &(edit){.key = "llama.rope.freq_base", .value = NAN}, "rope.freq_base nan");
    refused("scaling", &(edit){.key = "llama.rope.scaling.factor", .value = 1e-40f, .add_linear = true}, "rope.scaling.factor 9.99995e-41"); /* the float nearest 1e-40 */
    refused("freqs", &(edit){.add_freqs = true}, "rope_freqs.weight[7] = nan");
    refused("longrope context", &(edit){.add_longrope = true}, "missing hyperparameter llama.rope.scaling.original_context_length");
    refused("longrope factor", &(edit){.add_longrope = true, .orig_ctx = 4096}, "rope_factors_short.weight[9] = 0");
    refused("logit scale", &(edit){.key = "llama.logit_scale", .value = 0}, "logit_scale 0 is not plausible");
    refused("residual scale", &(edit){.key = "llama.residual_scale", .value = NAN}, "residual_scale nan");
    refused("yarn factor", &(edit){.key = "llama.rope.scaling.factor", .value = NAN, .add_yarn = true}, "rope.scaling.factor nan");
    refused("yarn context", &(edit){.key = "llama.rope.scaling.factor", .value = 4, .add_yarn = true, .no_orig = true},
            "missing hyperparameter llama.rope.scaling.original_context_length");
    refused("yarn beta", &(edit){.key = "llama.rope.scaling.yarn_beta_fast", .value = INFINITY, .add_yarn = true}, "fast inf");
    refused("yarn betas", &(edit){.key = "llama.rope.scaling.yarn_beta_slow", .value = 64, .add_yarn = true}, "slow 64");
    refused("yarn attention", &(edit){.key = "llama.rope.scaling.attn_factor", .value = -1, .add_yarn = true}, "attn_factor -1");
    refused("yarn variant", &(edit){.key = "llama.rope.scaling.yarn_log_multiplier", .value = 0.1f, .add_yarn = true},
            "yarn_log_multiplier 0.1 is not supported");

    write_edited(&(edit){.tensor = "output_norm.weight", .fill = all_nan});
    sample_survives("every logit NaN", 259, false);
    write_edited(&(edit){.tensor = "output.weight", .fill = thirds});
    sample_survives("NaN and inf logits", 259, true);

    /* a first token with no text (<unk> or <s>): drawn at a high temperature until seen */
    hai_model *m = NULL;
    CHECK_EQ_INT(hai_model_load(base, NULL, &m, &err), HAI_OK);
    hai_context_params cp = hai_context_default_params();
    cp.n_ctx = 32;
    cp.n_threads = 2;
    hai_context *c = NULL;
    CHECK_EQ_INT(hai_context_create(m, &cp, &c, &err), HAI_OK);
    int hits = 0;
    for (uint64_t seed = 0; c && seed < 4000 && hits < 3; seed++) {
        hai_sampler_params p = {.temperature = 1000, .top_p = 1, .repeat_penalty = 1, .seed = seed};
        hai_sampler *s = NULL;
        CHECK_EQ_INT(hai_sampler_create(&p, 259, &s, &err), HAI_OK);
        first f = {0};
        hai_generate_params gp = {.max_tokens = 2, .sampler = s, .on_token = on_first, .user = &f, .stop = (const char *[]){"x"}, .n_stop = 1};
        hai_generate_result r;
        hai_token prompt[2] = {1, 80};
        CHECK_MSG(hai_generate(c, prompt, 2, &gp, &r, &err) == HAI_OK, "seed %llu: %s", (unsigned long long)seed, err.msg);
        hits += f.empty;
        hai_sampler_free(s);
    }
    CHECK_MSG(hits > 0, "no generation began with a token without text (the case was not reached)");
    hai_context_free(c);
    hai_model_free(m);
    remove(edited);
    remove(base);
    return check_done("test_hostile");
}
