/* Synthetic models: random weights laid out exactly as a converted llama/qwen2/qwen3 checkpoint,
 * written tensor by tensor so that even a 1B-parameter file needs one tensor of memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "quant/quant.h"
#include "base/rng.h"

hai_synth_params hai_synth_default_params(void) {
    return (hai_synth_params){
        .arch = "llama",
        .n_embd = 256, .n_layer = 2, .n_head = 4, .n_head_kv = 2, .n_ff = 768,
        .n_ctx_train = 4096,
        .type = HAI_TYPE_F32,
        .std = 0.02f,
        .seed = 42,
    };
}

typedef enum { FILL_NORMAL, FILL_ONES, FILL_RAMP } fill_kind;

typedef struct planned {
    char name[64];
    uint32_t type, n_dims;
    int64_t ne[3];
    fill_kind fill;
} planned;

typedef struct plan {
    planned *t;
    int n, cap;
} plan;

static bool add3(plan *p, const char *name, uint32_t type, uint32_t n_dims, int64_t ne0, int64_t ne1, int64_t ne2, fill_kind fill) {
    if (p->n == p->cap) {
        int cap = p->cap ? 2 * p->cap : 64;
        planned *t = realloc(p->t, (size_t)cap * sizeof *t);
        if (!t) return false;
        p->t = t;
        p->cap = cap;
    }
    planned *t = &p->t[p->n++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->type = type;
    t->n_dims = n_dims;
    t->ne[0] = ne0;
    t->ne[1] = ne1;
    t->ne[2] = ne2;
    t->fill = fill;
    return true;
}

static bool add(plan *p, const char *name, uint32_t type, uint32_t n_dims, int64_t ne0, int64_t ne1, fill_kind fill) {
    return add3(p, name, type, n_dims, ne0, ne1, 1, fill);
}

/* The byte-level SentencePiece vocabulary used when no vocab file is given: <unk>, <s>, </s>,
 * then the 256 byte tokens <0x00>..<0xFF>, then (n > 259) plain pieces "\u2581w<i>" up to n
 * tokens, scored low so that text still tokenizes to bytes. */
static hai_status write_byte_vocab(hai_gguf_writer *w, uint32_t n, uint32_t *n_vocab, hai_error *err) {
    enum { BYTES = 259, W = 16 };
    if (n < BYTES) n = BYTES;
    if (n > (1u << 24)) return hai_fail(err, HAI_ERR_LIMIT, "synth: a vocabulary of %u tokens is above the limit of %u", n, 1u << 24);
    char *names = malloc((size_t)n * W);
    const char **ptrs = malloc((size_t)n * sizeof *ptrs);
    float *scores = malloc((size_t)n * sizeof *scores);
    int32_t *types = malloc((size_t)n * sizeof *types);
    hai_status st = HAI_OK;
    if (!names || !ptrs || !scores || !types) st = hai_fail(err, HAI_ERR_NOMEM, "synth: out of memory for %u tokens", n);
    for (uint32_t i = 0; !st && i < n; i++) {
        char *nm = names + (size_t)i * W;
        if (i < 3) snprintf(nm, W, "%s", i == 0 ? "<unk>" : i == 1 ? "<s>" : "</s>");
        else if (i < BYTES) snprintf(nm, W, "<0x%02X>", i - 3);
        else snprintf(nm, W, "\xe2\x96\x81w%u", i - BYTES);
        ptrs[i] = nm;
        scores[i] = i < BYTES ? 0.0f : -1e6f;
        types[i] = i == 0 ? 2 : i < 3 ? 3 : i < BYTES ? 6 : 1; /* unknown, control, byte, normal */
    }
    if (!st && !((st = hai_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama", err)) ||
                (st = hai_gguf_writer_set_str(w, "tokenizer.ggml.pre", "default", err)) ||
                (st = hai_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", ptrs, n, err)) ||
                (st = hai_gguf_writer_set_arr(w, "tokenizer.ggml.scores", HAI_GGUF_FLOAT32, scores, n, err)) ||
                (st = hai_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", HAI_GGUF_INT32, types, n, err)) ||
                (st = hai_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1, err)) ||
                (st = hai_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2, err)) ||
                (st = hai_gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 0, err)) ||
                (st = hai_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true, err)) ||
                (st = hai_gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", false, err))))
        *n_vocab = n;
    free(names), free(ptrs), free(scores), free(types);
    return st;
}

static hai_status copy_vocab(hai_gguf_writer *w, const char *path, bool own_template, uint32_t *n_vocab, hai_error *err) {
    hai_gguf *v;
    hai_status st = hai_gguf_open(path, &v, err);
    if (st) return st;
    const hai_gguf_value *tokens;
    st = hai_gguf_get_arr(v, "tokenizer.ggml.tokens", HAI_GGUF_STRING, &tokens, err);
    if (!st && (tokens->arr.n == 0 || tokens->arr.n > INT32_MAX))
        st = hai_fail(err, HAI_ERR_FORMAT, "%s: vocabulary of %llu tokens", path, (unsigned long long)tokens->arr.n);
    for (int64_t i = 0; !st && i < hai_gguf_n_kv(v); i++) {
        const hai_gguf_kv *kv = hai_gguf_kv_at(v, i);
        if (own_template && !strcmp(kv->key, "tokenizer.chat_template")) continue;
        if (strncmp(kv->key, "tokenizer.", 10) == 0) st = hai_gguf_writer_set(w, kv->key, &kv->value, err);
    }
    if (!st) *n_vocab = (uint32_t)tokens->arr.n;
    hai_gguf_free(v);
    return st;
}

static hai_status set_hparams(hai_gguf_writer *w, const hai_synth_params *p, uint32_t hd, hai_error *err) {
    const char *a = p->arch;
    char key[128];
    hai_status st = HAI_OK;
#define U32(suffix, val) \
    if (!st) { snprintf(key, sizeof key, "%s." suffix, a); st = hai_gguf_writer_set_u32(w, key, val, err); }
#define F32(suffix, val) \
    if (!st) { snprintf(key, sizeof key, "%s." suffix, a); st = hai_gguf_writer_set_f32(w, key, val, err); }
    U32("context_length", p->n_ctx_train);
    U32("embedding_length", p->n_embd);
    U32("block_count", p->n_layer);
    U32("feed_forward_length", p->n_ff);
    U32("attention.head_count", p->n_head);
    U32("attention.head_count_kv", p->n_head_kv);
    F32("attention.layer_norm_rms_epsilon", 1e-6f);
    F32("rope.freq_base", strncmp(a, "qwen", 4) ? 10000.0f : 1000000.0f);
    U32("rope.dimension_count", hd);
    if (strcmp(a, "granite") == 0) { /* Granite 3's multipliers */
        F32("embedding_scale", 12.0f);
        F32("residual_scale", 0.22f);
        F32("attention.scale", 1.0f / (float)hd);
        F32("logit_scale", 8.0f);
    }
    if (strcmp(a, "gemma2") == 0) { /* Gemma 2's caps */
        F32("attn_logit_softcapping", 50.0f);
        F32("final_logit_softcapping", 30.0f);
    }
    if (strncmp(a, "gemma", 5) == 0 || strcmp(a, "phi3") == 0) /* phi3: every layer slides (as Phi-3-mini-4k) */
        U32("attention.sliding_window", p->n_ctx_train / 8 ? p->n_ctx_train / 8 : 1);
    if (strcmp(a, "phi3") == 0) /* LongRoPE: the long factors serve contexts past 1/32 of the trained one */
        U32("rope.scaling.original_context_length", p->n_ctx_train / 32 ? p->n_ctx_train / 32 : 1);
    if (strstr(a, "moe")) {
        U32("expert_count", p->n_expert);
        U32("expert_used_count", p->n_expert_used);
        U32("expert_feed_forward_length", p->n_ff_exp);
        if (!strcmp(a, "qwen2moe")) U32("expert_shared_feed_forward_length", p->n_ff_shexp);
    }
    if (hd * p->n_head != p->n_embd || strncmp(a, "qwen3", 5) == 0 || strcmp(a, "gemma3") == 0) {
        U32("attention.key_length", hd);
        U32("attention.value_length", hd);
    }
#undef U32
#undef F32
    return st;
}

static uint32_t ftype_of(uint32_t type) {
    switch (type) {
    case HAI_TYPE_F32: return 0;
    case HAI_TYPE_F16: return 1;
    case HAI_TYPE_Q4_0: return 2;
    case HAI_TYPE_Q4_1: return 3;
    case HAI_TYPE_Q8_0: return 7;
    case HAI_TYPE_Q5_0: return 8;
    case HAI_TYPE_Q5_1: return 9;
    case HAI_TYPE_Q2_K: return 10;
    case HAI_TYPE_Q3_K: return 12;
    case HAI_TYPE_Q4_K: return 15;
    case HAI_TYPE_Q5_K: return 17;
    case HAI_TYPE_Q6_K: return 18;
    case HAI_TYPE_IQ4_NL: return 25;
    case HAI_TYPE_IQ4_XS: return 30;
    case HAI_TYPE_BF16: return 32;
    default: return 0;
    }
}

static hai_status build_plan(const hai_synth_params *p, uint32_t hd, uint32_t n_vocab, plan *pl, hai_error *err) {
    bool q2 = strncmp(p->arch, "qwen2", 5) == 0, q3 = strncmp(p->arch, "qwen3", 5) == 0 || strcmp(p->arch, "gemma3") == 0,
         phi3 = strcmp(p->arch, "phi3") == 0, gemma = strncmp(p->arch, "gemma", 5) == 0, moe = strstr(p->arch, "moe") != NULL;
    uint32_t wt = p->type, F = HAI_TYPE_F32;
    int64_t qd = (int64_t)p->n_head * hd, kvd = (int64_t)p->n_head_kv * hd;
    bool ok = add(pl, "token_embd.weight", wt, 2, p->n_embd, n_vocab, FILL_NORMAL) &&
              add(pl, "output_norm.weight", F, 1, p->n_embd, 1, FILL_ONES);
    if (!p->tied_output) ok = ok && add(pl, "output.weight", wt, 2, p->n_embd, n_vocab, FILL_NORMAL);
    if (phi3) /* LongRoPE's factors: 1 (short) and between 1 and 4 (long) */
        ok = ok && add(pl, "rope_factors_long.weight", F, 1, hd / 2, 1, FILL_RAMP) && add(pl, "rope_factors_short.weight", F, 1, hd / 2, 1, FILL_ONES);
    for (uint32_t l = 0; ok && l < p->n_layer; l++) {
        char n[64];
#define ADD(suffix, type, nd, a, b, fill) (snprintf(n, sizeof n, "blk.%u." suffix, l), add(pl, n, type, nd, a, b, fill))
        ok = ADD("attn_norm.weight", F, 1, p->n_embd, 1, FILL_ONES) &&
             (phi3 ? ADD("attn_qkv.weight", wt, 2, p->n_embd, qd + 2 * kvd, FILL_NORMAL) /* fused, as the converter writes phi3 */
                   : ADD("attn_q.weight", wt, 2, p->n_embd, qd, FILL_NORMAL) && ADD("attn_k.weight", wt, 2, p->n_embd, kvd, FILL_NORMAL) &&
                         ADD("attn_v.weight", wt, 2, p->n_embd, kvd, FILL_NORMAL)) &&
             ADD("attn_output.weight", wt, 2, qd, p->n_embd, FILL_NORMAL) &&
             ADD("ffn_norm.weight", F, 1, p->n_embd, 1, FILL_ONES);
        if (ok && moe) /* the router stays F32, as llama.cpp's quantizer leaves it */
            ok = ADD("ffn_gate_inp.weight", F, 2, p->n_embd, p->n_expert, FILL_NORMAL) &&
                 (snprintf(n, sizeof n, "blk.%u.ffn_gate_exps.weight", l), add3(pl, n, wt, 3, p->n_embd, p->n_ff_exp, p->n_expert, FILL_NORMAL)) &&
                 (snprintf(n, sizeof n, "blk.%u.ffn_up_exps.weight", l), add3(pl, n, wt, 3, p->n_embd, p->n_ff_exp, p->n_expert, FILL_NORMAL)) &&
                 (snprintf(n, sizeof n, "blk.%u.ffn_down_exps.weight", l), add3(pl, n, wt, 3, p->n_ff_exp, p->n_embd, p->n_expert, FILL_NORMAL));
        if (ok && moe && p->n_ff_shexp)
            ok = ADD("ffn_gate_inp_shexp.weight", F, 1, p->n_embd, 1, FILL_NORMAL) &&
                 ADD("ffn_gate_shexp.weight", wt, 2, p->n_embd, p->n_ff_shexp, FILL_NORMAL) &&
                 ADD("ffn_up_shexp.weight", wt, 2, p->n_embd, p->n_ff_shexp, FILL_NORMAL) &&
                 ADD("ffn_down_shexp.weight", wt, 2, p->n_ff_shexp, p->n_embd, FILL_NORMAL);
        if (ok && !moe)
            ok = (phi3 ? ADD("ffn_up.weight", wt, 2, p->n_embd, 2 * (int64_t)p->n_ff, FILL_NORMAL)
                       : ADD("ffn_gate.weight", wt, 2, p->n_embd, p->n_ff, FILL_NORMAL) && ADD("ffn_up.weight", wt, 2, p->n_embd, p->n_ff, FILL_NORMAL)) &&
                 ADD("ffn_down.weight", wt, 2, p->n_ff, p->n_embd, FILL_NORMAL);
        if (ok && q2)
            ok = ADD("attn_q.bias", F, 1, qd, 1, FILL_NORMAL) && ADD("attn_k.bias", F, 1, kvd, 1, FILL_NORMAL) &&
                 ADD("attn_v.bias", F, 1, kvd, 1, FILL_NORMAL);
        if (ok && q3)
            ok = ADD("attn_q_norm.weight", F, 1, hd, 1, FILL_ONES) && ADD("attn_k_norm.weight", F, 1, hd, 1, FILL_ONES);
        if (ok && gemma)
            ok = ADD("post_attention_norm.weight", F, 1, p->n_embd, 1, FILL_ONES) && ADD("post_ffw_norm.weight", F, 1, p->n_embd, 1, FILL_ONES);
#undef ADD
    }
    if (!ok) return hai_fail(err, HAI_ERR_NOMEM, "synth: out of memory");
    return HAI_OK;
}

hai_status hai_synth_write(const char *path, const hai_synth_params *params, hai_error *err) {
    if (!path || !params || !params->arch) return hai_fail(err, HAI_ERR_INVALID, "synth: NULL argument");
    hai_synth_params moe = *params, *p = &moe; /* the experts' defaults filled in */
    if (strstr(p->arch, "moe")) {
        moe.n_expert = moe.n_expert ? moe.n_expert : 8;
        moe.n_expert_used = moe.n_expert_used ? moe.n_expert_used : 2;
        moe.n_ff_exp = moe.n_ff_exp ? moe.n_ff_exp : (moe.n_ff / 4 ? moe.n_ff / 4 : 1);
        moe.n_ff_shexp = strcmp(p->arch, "qwen2moe") ? 0 : moe.n_ff_shexp ? moe.n_ff_shexp : moe.n_ff;
        if (moe.n_expert_used > moe.n_expert)
            return hai_fail(err, HAI_ERR_INVALID, "synth: %u experts used of %u", moe.n_expert_used, moe.n_expert);
    }
    static const char *const known[] = {"llama", "qwen2", "qwen3", "granite", "smollm3", "phi3", "gemma2", "gemma3", "qwen2moe", "qwen3moe"};
    bool is_known = false;
    for (size_t i = 0; i < sizeof known / sizeof *known; i++) is_known |= strcmp(p->arch, known[i]) == 0;
    if (!is_known)
        return hai_fail(err, HAI_ERR_UNSUPPORTED, "synth: architecture '%s' (known: llama, qwen2, qwen3, granite, smollm3, phi3, gemma2, gemma3, qwen2moe, qwen3moe)", p->arch);
    if (!p->n_embd || !p->n_layer || !p->n_head || !p->n_head_kv || !p->n_ff || p->n_head % p->n_head_kv)
        return hai_fail(err, HAI_ERR_INVALID, "synth: sizes must be positive and n_head a multiple of n_head_kv");
    uint32_t hd = p->head_dim ? p->head_dim : p->n_embd / p->n_head;
    if (!hd || hd % 2) return hai_fail(err, HAI_ERR_INVALID, "synth: head_dim %u must be even and positive", hd);
    const hai_type_traits *tr = hai_type_traits_get(p->type);
    if (!tr || !tr->from_float)
        return hai_fail(err, HAI_ERR_UNSUPPORTED, "synth: no quantizer for type %s", tr ? tr->name : "?");

    hai_gguf_writer *w;
    hai_status st = hai_gguf_writer_create(3, 32, &w, err);
    if (st) return st;
    uint32_t n_vocab = 0;
    plan pl = {0};
    float *buf = NULL;
    void *qbuf = NULL;
    st = hai_gguf_writer_set_str(w, "general.architecture", p->arch, err);
    if (!st) st = hai_gguf_writer_set_str(w, "general.name", p->name ? p->name : "hai-synth", err);
    if (!st) st = set_hparams(w, p, hd, err);
    if (!st) st = hai_gguf_writer_set_u32(w, "general.file_type", ftype_of(p->type), err);
    if (!st) st = hai_gguf_writer_set_u32(w, "general.quantization_version", 2, err);
    if (!st && p->vocab_path && p->n_vocab)
        st = hai_fail(err, HAI_ERR_INVALID, "synth: n_vocab is for the byte-level vocabulary, not with a vocabulary file");
    if (!st) st = p->vocab_path ? copy_vocab(w, p->vocab_path, p->chat_template != NULL, &n_vocab, err) : write_byte_vocab(w, p->n_vocab, &n_vocab, err);
    if (!st && p->chat_template) st = hai_gguf_writer_set_str(w, "tokenizer.chat_template", p->chat_template, err);
    if (!st) st = build_plan(p, hd, n_vocab, &pl, err);
    int64_t max_n = 0;
    for (int i = 0; !st && i < pl.n; i++) {
        planned *t = &pl.t[i];
        /* rows that do not fill whole blocks fall back to F32, as converters do */
        if (t->ne[0] % hai_type_block_size(t->type)) t->type = HAI_TYPE_F32;
        if (t->ne[0] * t->ne[1] * t->ne[2] > max_n) max_n = t->ne[0] * t->ne[1] * t->ne[2];
        st = hai_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, NULL, err);
    }
    if (!st) {
        buf = malloc((size_t)max_n * sizeof *buf);
        qbuf = malloc((size_t)max_n * sizeof *buf);
        if (!buf || !qbuf) st = hai_fail(err, HAI_ERR_NOMEM, "synth: out of memory for a %lld-element tensor", (long long)max_n);
    }
    if (!st) st = hai_gguf_writer_begin(w, path, err);
    for (int i = 0; !st && i < pl.n; i++) {
        planned *t = &pl.t[i];
        int64_t n = t->ne[0] * t->ne[1] * t->ne[2];
        hai_rng rng;
        hai_rng_seed(&rng, p->seed * 1000003u + (uint64_t)i);
        if (t->fill == FILL_ONES) {
            for (int64_t j = 0; j < n; j++) buf[j] = 1.0f;
        } else if (t->fill == FILL_RAMP) {
            for (int64_t j = 0; j < n; j++) buf[j] = 1.0f + 3.0f * (float)j / (float)(n > 1 ? n - 1 : 1);
        } else {
            float sd = p->embd_std > 0 && !strcmp(t->name, "token_embd.weight") ? p->embd_std : p->std;
            for (int64_t j = 0; j < n; j += 2) {
                float a, b;
                hai_rng_normal2(&rng, &a, &b);
                buf[j] = a * sd;
                if (j + 1 < n) buf[j + 1] = b * sd;
            }
        }
        st = hai_quantize_ref(t->type, buf, qbuf, n, err);
        if (!st) st = hai_gguf_writer_write_data(w, qbuf, hai_row_bytes(t->type, t->ne[0]) * (uint64_t)(t->ne[1] * t->ne[2]), err);
        if (!st && p->progress) p->progress(p->progress_user, i + 1, pl.n, t->name);
    }
    if (!st) st = hai_gguf_writer_finish(w, err);
    free(buf);
    free(qbuf);
    free(pl.t);
    hai_gguf_writer_free(w);
    return st;
}
