/* Model loading: architecture table, hyperparameters, tensor-name mapping and shape checks.
 * The matmul weights are copied (or repacked) into memory of the process's own, in large pages;
 * the embedding table stays in the read-only mapping; 1-D tensors (norms, biases) become float. */
#include "model.h"
#include "model/stream.h"
#include "tokenizer/tokenizer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/error.h"
#include "kernels/kernels.h"
#include "base/memory.h"
#include "quant/quant.h"

/* What distinguishes the architectures hai runs. Biases and q/k norms are loaded wherever a file
 * has them, so variants of an architecture need no entry of their own. */
static const struct arch_def {
    const char *name;
    rope_style rope;
    uint32_t nope_step; /* layers (l + 1) % step == 0 without RoPE: no GGUF key says so (llama.cpp fixes it too) */
    int32_t swa_period; /* where the file gives a window: -1 no layer slides, 0 all (phi3), n of each n the last is global (gemma) */
    bool gemma;         /* embeddings scaled, GeGLU, soft-capping, the sliding layers' own RoPE base */
    int moe;             /* mixture of experts: 1 without, 2 with the chosen experts' weights renormalised */
} archs[] = {
    {"llama", ROPE_NORMAL, 0, -1, false, 0},
    {"qwen2", ROPE_NEOX, 0, -1, false, 0},
    {"qwen3", ROPE_NEOX, 0, -1, false, 0},
    {"granite", ROPE_NORMAL, 0, -1, false, 0}, /* llama with four multipliers */
    {"smollm3", ROPE_NORMAL, 4, -1, false, 0}, /* llama with every fourth layer without RoPE */
    {"phi3", ROPE_NEOX, 0, 0, false, 0},       /* fused QKV and gate/up, LongRoPE, every layer sliding (Phi-3-mini-4k: 2047) */
    {"gemma2", ROPE_NEOX, 0, 2, true, 0}, /* GeGLU, post norms, soft-capping, every other layer sliding */
    {"gemma3", ROPE_NEOX, 0, 6, true, 0}, /* GeGLU, post norms, q/k norms, five sliding layers to one global */
    {"qwen2moe", ROPE_NEOX, 0, -1, false, 1}, /* qwen2's attention, experts and a shared expert (Qwen1.5-MoE, Qwen2-57B-A14B) */
    {"qwen3moe", ROPE_NEOX, 0, -1, false, 2}, /* qwen3's attention, experts renormalised (Qwen3-30B-A3B) */
};

hai_model_params hai_model_default_params(void) { return (hai_model_params){0}; }

static hai_status arch_u32(const hai_gguf *g, const char *arch, const char *suffix, bool required, uint32_t def,
                           uint32_t *out, hai_error *err) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    hai_status st = hai_gguf_get_u32(g, key, out, err);
    if (st == HAI_ERR_NOT_FOUND && !required) {
        *out = def;
        return HAI_OK;
    }
    if (st == HAI_ERR_NOT_FOUND) return hai_fail(err, HAI_ERR_FORMAT, "model: missing hyperparameter %s", key);
    return st;
}

static hai_status arch_f32(const hai_gguf *g, const char *arch, const char *suffix, float def, float *out, hai_error *err) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    hai_status st = hai_gguf_get_f32(g, key, out, err);
    if (st == HAI_ERR_NOT_FOUND) {
        *out = def;
        return HAI_OK;
    }
    return st;
}

static hai_status read_rope_scaling(const hai_gguf *g, const char *an, hai_hparams *hp, hai_error *err);

int32_t hai_arch_swa_period(const char *arch) {
    for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++)
        if (!strcmp(archs[i].name, arch)) return archs[i].swa_period;
    return -1;
}

hai_status hai_swa_read(const hai_gguf *g, const char *arch, uint32_t n_layer, hai_swa_rule *r, hai_error *err) {
    *r = (hai_swa_rule){0};
    int32_t def = hai_arch_swa_period(arch);
    if (def < 0) return HAI_OK;
    char key[128];
    uint32_t period = (uint32_t)def;
    hai_status st = arch_u32(g, arch, "attention.sliding_window", false, 0, &r->window, err);
    if (st || !r->window) return st;
    snprintf(key, sizeof key, "%s.attention.sliding_window_pattern", arch);
    const hai_gguf_value *arr = NULL;
    if (hai_gguf_get_arr(g, key, HAI_GGUF_BOOL, &arr, NULL) == HAI_OK) {
        if (arr->arr.n != n_layer)
            return hai_fail(err, HAI_ERR_FORMAT, "model: %s has %llu entries for %u layers", key, (unsigned long long)arr->arr.n, n_layer);
        r->pattern = arr->arr.data;
        return HAI_OK;
    }
    if ((st = arch_u32(g, arch, "attention.sliding_window_pattern", false, period, &period, err))) return st;
    if (period > 65536) return hai_fail(err, HAI_ERR_FORMAT, "model: %s %u is not plausible (0 to 65536)", key, period);
    r->period = period;
    return HAI_OK;
}

/* llama.cpp's convention for the period: 0 every layer slides, 1 none, n all but each n-th */
bool hai_swa_slides(const hai_swa_rule *r, uint32_t l) {
    if (!r->window) return false;
    if (r->pattern) return ((const uint8_t *)r->pattern)[l] != 0;
    return r->period == 0 || l % r->period < r->period - 1;
}

/* Gemma 2/3: embeddings times sqrt(n_embd), GeGLU, soft-capping (gemma2), the sliding layers' own
 * RoPE base (gemma3), and the query scale of the 27B models (n_embd / n_head, their
 * query_pre_attn_scalar; llama.cpp decides it by size too) unless the file gives one. */
static hai_status read_gemma(hai_model *m, hai_error *err) {
    const hai_gguf *g = m->gguf;
    hai_hparams *hp = &m->hp;
    const char *an = m->arch;
    hai_status st;
    char key[128];
    float v;
    hp->geglu = true;
    snprintf(key, sizeof key, "%s.embedding_scale", an);
    if (hai_gguf_get_f32(g, key, &v, NULL) != HAI_OK) hp->embd_scale = sqrtf((float)hp->n_embd);
    snprintf(key, sizeof key, "%s.attention.scale", an);
    if (hai_gguf_get_f32(g, key, &v, NULL) != HAI_OK && (hp->n_layer == 46 || hp->n_layer == 62))
        hp->attn_scale = 1.0f / sqrtf((float)hp->n_embd / (float)hp->n_head);
    if ((st = arch_f32(g, an, "attn_logit_softcapping", 0.0f, &hp->attn_softcap, err)) ||
        (st = arch_f32(g, an, "final_logit_softcapping", 0.0f, &hp->final_softcap, err)) ||
        (st = arch_f32(g, an, "rope.freq_base_swa", strcmp(an, "gemma3") ? 0.0f : 10000.0f, &hp->rope_base_swa, err)))
        return st;
    if (!(hp->attn_softcap >= 0 && hp->attn_softcap <= 1e4f && hp->final_softcap >= 0 && hp->final_softcap <= 1e4f))
        return hai_fail(err, HAI_ERR_FORMAT, "model: soft-capping %g / %g is not plausible (0 to 10000)", hp->attn_softcap, hp->final_softcap);
    if (hp->rope_base_swa && !(hp->rope_base_swa >= 1.0f && hp->rope_base_swa <= 1e12f))
        return hai_fail(err, HAI_ERR_FORMAT, "model: %s.rope.freq_base_swa %g is not plausible (1 to 1e12)", an, hp->rope_base_swa);
    return HAI_OK;
}

/* granite's embedding, residual, attention and logit multipliers (llama.cpp's keys; the others'
 * values where a file leaves one out); every architecture may carry them */
static hai_status read_multipliers(const hai_gguf *g, const char *an, hai_hparams *hp, hai_error *err) {
    hai_status st;
    if ((st = arch_f32(g, an, "embedding_scale", 1.0f, &hp->embd_scale, err)) ||
        (st = arch_f32(g, an, "residual_scale", 1.0f, &hp->resid_scale, err)) ||
        (st = arch_f32(g, an, "attention.scale", 1.0f / sqrtf((float)hp->head_dim), &hp->attn_scale, err)) ||
        (st = arch_f32(g, an, "logit_scale", 1.0f, &hp->logit_scale, err)))
        return st;
    const float v[4] = {hp->embd_scale, hp->resid_scale, hp->attn_scale, hp->logit_scale};
    static const char *const names[4] = {"embedding_scale", "residual_scale", "attention.scale", "logit_scale"};
    for (int i = 0; i < 4; i++)
        if (!(v[i] >= 1e-6f && v[i] <= 1e6f)) /* 0 or inf: every activation or logit 0, inf or NaN */
            return hai_fail(err, HAI_ERR_FORMAT, "model: %s.%s %g is not plausible (1e-6 to 1e6)", an, names[i], v[i]);
    return HAI_OK;
}

/* Mixture of experts: how many, how many a token, their width; the chosen experts' weights
 * renormalised as the family does unless the file says (expert_weights_norm); a gating other
 * than softmax (DeepSeek's sigmoid) is refused, not run wrong. */
static hai_status read_moe(hai_model *m, const struct arch_def *a, hai_error *err) {
    const hai_gguf *g = m->gguf;
    hai_hparams *hp = &m->hp;
    const char *an = m->arch;
    hai_status st;
    uint32_t gating;
    char key[128];
    bool norm;
    if ((st = arch_u32(g, an, "expert_count", true, 0, &hp->n_expert, err)) ||
        (st = arch_u32(g, an, "expert_used_count", true, 0, &hp->n_expert_used, err)) ||
        (st = arch_u32(g, an, "expert_feed_forward_length", true, 0, &hp->n_ff_exp, err)) ||
        (st = arch_u32(g, an, "expert_shared_feed_forward_length", false, 0, &hp->n_ff_shexp, err)) ||
        (st = arch_u32(g, an, "expert_gating_func", false, 1, &gating, err)))
        return st;
    if (hp->n_expert < 1 || hp->n_expert > 1024 || hp->n_expert_used < 1 || hp->n_expert_used > hp->n_expert ||
        hp->n_expert_used > 64 || hp->n_ff_exp < 1 || hp->n_ff_exp > (1u << 20) || hp->n_ff_shexp > (1u << 20))
        return hai_fail(err, HAI_ERR_FORMAT, "model: experts %u, used %u, width %u, shared width %u are not usable", hp->n_expert,
                        hp->n_expert_used, hp->n_ff_exp, hp->n_ff_shexp);
    if (gating != 1) return hai_fail(err, HAI_ERR_UNSUPPORTED, "model: %s.expert_gating_func %u is not supported (1: softmax)", an, gating);
    snprintf(key, sizeof key, "%s.expert_weights_norm", an);
    hp->expert_norm = hai_gguf_get_bool(g, key, &norm, NULL) == HAI_OK ? norm : a->moe == 2;
    hp->n_ff = hp->n_ff_exp > hp->n_ff_shexp ? hp->n_ff_exp : hp->n_ff_shexp;
    return HAI_OK;
}

static hai_status read_hparams(hai_model *m, const struct arch_def *a, hai_error *err) {
    const hai_gguf *g = m->gguf;
    hai_hparams *hp = &m->hp;
    const char *an = m->arch;
    hai_status st;
    if ((st = arch_u32(g, an, "embedding_length", true, 0, &hp->n_embd, err)) ||
        (st = arch_u32(g, an, "block_count", true, 0, &hp->n_layer, err)) ||
        (st = arch_u32(g, an, "feed_forward_length", true, 0, &hp->n_ff, err)) ||
        (st = arch_u32(g, an, "attention.head_count", true, 0, &hp->n_head, err)) ||
        (st = arch_u32(g, an, "attention.head_count_kv", false, hp->n_head, &hp->n_head_kv, err)) ||
        (st = arch_u32(g, an, "context_length", false, 4096, &hp->n_ctx_train, err)) ||
        (st = arch_u32(g, an, "pooling_type", false, HAI_POOLING_MEAN, &hp->pooling, err)))
        return st;
    if (hp->pooling < HAI_POOLING_MEAN || hp->pooling > HAI_POOLING_LAST) hp->pooling = HAI_POOLING_MEAN; /* none, rank: not embeddings */
    if (hp->n_embd == 0 || hp->n_layer == 0 || hp->n_head == 0 || hp->n_head_kv == 0 || hp->n_ff == 0 ||
        hp->n_layer > 4096 || hp->n_head > 4096 || hp->n_head_kv > hp->n_head || hp->n_head % hp->n_head_kv)
        return hai_fail(err, HAI_ERR_FORMAT,
                        "model: inconsistent sizes: n_embd %u, n_layer %u, n_head %u, n_head_kv %u, n_ff %u",
                        hp->n_embd, hp->n_layer, hp->n_head, hp->n_head_kv, hp->n_ff);
    if ((st = arch_u32(g, an, "attention.key_length", false, hp->n_embd / hp->n_head, &hp->head_dim, err)) ||
        (st = arch_u32(g, an, "attention.value_length", false, hp->head_dim, &hp->head_dim_v, err)) ||
        (st = arch_u32(g, an, "rope.dimension_count", false, hp->head_dim, &hp->n_rot, err)) ||
        (st = arch_f32(g, an, "attention.layer_norm_rms_epsilon", 1e-5f, &hp->rms_eps, err)) ||
        (st = arch_f32(g, an, "rope.freq_base", 10000.0f, &hp->rope_base, err)))
        return st;
    if (hp->head_dim == 0 || hp->head_dim > 1024 || hp->head_dim_v == 0 || hp->head_dim_v > 1024 || hp->n_rot > hp->head_dim ||
        hp->n_rot % 2)
        return hai_fail(err, HAI_ERR_FORMAT, "model: head_dim %u / value_length %u / rope dims %u are not usable",
                        hp->head_dim, hp->head_dim_v, hp->n_rot);
    /* implausible values are refused, not computed with: an epsilon of 1e-40 or a base of inf
     * gives NaN or inf activations, and NaN logits downstream (the ranges hold every released
     * model by a wide margin) */
    if (!(hp->rms_eps >= 1e-12f && hp->rms_eps <= 0.1f))
        return hai_fail(err, HAI_ERR_FORMAT, "model: %s.attention.layer_norm_rms_epsilon %g is not plausible (1e-12 to 0.1)", an, hp->rms_eps);
    if (!(hp->rope_base >= 1.0f && hp->rope_base <= 1e12f))
        return hai_fail(err, HAI_ERR_FORMAT, "model: %s.rope.freq_base %g is not plausible (1 to 1e12)", an, hp->rope_base);
    hp->rope = a->rope;
    hp->nope_step = a->nope_step;
    if ((st = read_multipliers(g, an, hp, err))) return st;
    if (a->gemma && (st = read_gemma(m, err))) return st;
    if ((st = hai_swa_read(g, an, hp->n_layer, &m->swa, err))) return st;
    hp->swa_window = m->swa.window;
    if (a->moe && (st = read_moe(m, a, err))) return st;
    return read_rope_scaling(g, an, hp, err);
}

static bool is_str(hai_gguf_str s, const char *lit) { return s.size == strlen(lit) && !memcmp(s.data, lit, s.size); }

/* RoPE scaling as the converters write it: linear (positions / factor), llama3 (the rope_freqs
 * tensor, read with the weights) or YaRN (transformers' definition; llama.cpp's keys and
 * defaults: betas 32 and 1, cos and sin times attn_factor * (1 + 0.1 ln factor)). */
static hai_status read_rope_scaling(const hai_gguf *g, const char *an, hai_hparams *hp, hai_error *err) {
    hp->rope_pos_scale = 1.0f;
    hp->rope_mscale = 1.0f;
    char key[128];
    hai_gguf_str type;
    hai_status st;
    snprintf(key, sizeof key, "%s.rope.scaling.type", an);
    if (hai_gguf_get_str(g, key, &type, NULL) != HAI_OK || is_str(type, "none") || is_str(type, "llama3")) return HAI_OK;
    if (!is_str(type, "linear") && !is_str(type, "yarn"))
        return hai_fail(err, HAI_ERR_UNSUPPORTED, "model: rope scaling '%.*s' is not supported (linear, llama3, yarn are)",
                        (int)(type.size < 32 ? type.size : 32), type.data);
    float f;
    if ((st = arch_f32(g, an, "rope.scaling.factor", 1.0f, &f, err))) return st;
    if (!(f >= 1e-3f && f <= 1e4f)) /* 1e-40's inverse is inf: every position becomes inf */
        return hai_fail(err, HAI_ERR_FORMAT, "model: %s.rope.scaling.factor %g is not plausible (0.001 to 10000)", an, f);
    if (is_str(type, "linear")) {
        hp->rope_pos_scale = 1.0f / f;
        return HAI_OK;
    }
    float attn, ext, logmul;
    hp->yarn = true;
    hp->yarn_factor = f;
    if ((st = arch_u32(g, an, "rope.scaling.original_context_length", true, 0, &hp->yarn_orig_ctx, err)) ||
        (st = arch_f32(g, an, "rope.scaling.yarn_beta_fast", 32.0f, &hp->yarn_beta_fast, err)) ||
        (st = arch_f32(g, an, "rope.scaling.yarn_beta_slow", 1.0f, &hp->yarn_beta_slow, err)) ||
        (st = arch_f32(g, an, "rope.scaling.attn_factor", 1.0f, &attn, err)) ||
        (st = arch_f32(g, an, "rope.scaling.yarn_ext_factor", 1.0f, &ext, err)) ||
        (st = arch_f32(g, an, "rope.scaling.yarn_log_multiplier", 0.0f, &logmul, err)))
        return st;
    if (hp->yarn_orig_ctx < 1 || hp->yarn_orig_ctx > (1u << 24))
        return hai_fail(err, HAI_ERR_FORMAT, "model: %s.rope.scaling.original_context_length %u is not plausible", an, hp->yarn_orig_ctx);
    if (!(hp->yarn_beta_fast >= 1e-3f && hp->yarn_beta_fast <= 1e4f && hp->yarn_beta_slow >= 1e-3f && hp->yarn_beta_slow <= hp->yarn_beta_fast))
        return hai_fail(err, HAI_ERR_FORMAT, "model: YaRN betas fast %g, slow %g are not plausible (0.001 <= slow <= fast <= 10000)",
                        hp->yarn_beta_fast, hp->yarn_beta_slow);
    if (!(attn > 0.0f && attn <= 100.0f))
        return hai_fail(err, HAI_ERR_FORMAT, "model: %s.rope.scaling.attn_factor %g is not plausible (0 to 100)", an, attn);
    if (ext != 1.0f || logmul != 0.0f) /* DeepSeek-V2's variant and llama.cpp's runtime knob: not in the definition */
        return hai_fail(err, HAI_ERR_UNSUPPORTED, "model: YaRN with yarn_ext_factor %g / yarn_log_multiplier %g is not supported", ext,
                        logmul);
    hp->rope_mscale = (float)((f > 1.0f ? 0.1 * log(f) + 1.0 : 1.0) * attn);
    return HAI_OK;
}

static hai_status get_weight(hai_model *m, const char *name, int64_t n_in, int64_t n_out, bool required, hai_weight *w,
                             hai_error *err) {
    const hai_gguf_tensor *t = hai_gguf_find_tensor(m->gguf, name);
    memset(w, 0, sizeof *w);
    if (!t) return required ? hai_fail(err, HAI_ERR_FORMAT, "model: tensor '%s' is missing", name) : HAI_OK;
    if (t->n_dims > 2 || t->ne[0] != n_in || t->ne[1] != n_out)
        return hai_fail(err, HAI_ERR_FORMAT, "model: tensor '%s' has shape [%lld, %lld], expected [%lld, %lld]", name,
                        (long long)t->ne[0], (long long)t->ne[1], (long long)n_in, (long long)n_out);
    if (!hai_kernels_ref()->vec_dot[t->type] || !hai_type_supported(t->type))
        return hai_fail(err, HAI_ERR_UNSUPPORTED, "model: tensor '%s' has type %s, which hai cannot compute with", name,
                        hai_type_name(t->type) ? hai_type_name(t->type) : "?");
    *w = (hai_weight){t->type, n_in, n_out, hai_row_bytes(t->type, n_in), t->data};
    m->weights_bytes += t->size;
    return HAI_OK;
}

/* Rows [r0, r0 + n) of a weight: a weight of its own (fused tensors; each is placed and repacked
 * on its own). */
static hai_weight rows_of(const hai_weight *w, int64_t r0, int64_t n) {
    return (hai_weight){w->type, w->n_in, n, w->row_bytes, w->data + (size_t)r0 * w->row_bytes};
}

/* A stacked expert tensor [n_in, n_out, n_expert]: one view of n_out rows an expert. */
static hai_status get_experts(hai_model *m, const char *name, int64_t n_in, int64_t n_out, hai_weight *views, hai_error *err) {
    const hai_gguf_tensor *t = hai_gguf_find_tensor(m->gguf, name);
    uint32_t ne = m->hp.n_expert;
    if (!t) return hai_fail(err, HAI_ERR_FORMAT, "model: tensor '%s' is missing", name);
    if (t->n_dims != 3 || t->ne[0] != n_in || t->ne[1] != n_out || t->ne[2] != ne)
        return hai_fail(err, HAI_ERR_FORMAT, "model: tensor '%s' has shape [%lld, %lld, %lld], expected [%lld, %lld, %u]", name,
                        (long long)t->ne[0], (long long)t->ne[1], (long long)(t->n_dims > 2 ? t->ne[2] : 1), (long long)n_in,
                        (long long)n_out, ne);
    if (!hai_kernels_ref()->vec_dot[t->type] || !hai_type_supported(t->type))
        return hai_fail(err, HAI_ERR_UNSUPPORTED, "model: tensor '%s' has type %s, which hai cannot compute with", name,
                        hai_type_name(t->type) ? hai_type_name(t->type) : "?");
    hai_weight all = {t->type, n_in, n_out * ne, hai_row_bytes(t->type, n_in), t->data};
    for (uint32_t e = 0; e < ne; e++) views[e] = rows_of(&all, (int64_t)e * n_out, n_out);
    m->weights_bytes += t->size;
    m->expert_bytes += t->size;
    return HAI_OK;
}

static hai_status get_vec(hai_model *m, const char *name, int64_t n, bool required, float **out, hai_error *err) {
    const hai_gguf_tensor *t = hai_gguf_find_tensor(m->gguf, name);
    *out = NULL;
    if (!t) return required ? hai_fail(err, HAI_ERR_FORMAT, "model: tensor '%s' is missing", name) : HAI_OK;
    if (t->n_elements != n || t->ne[0] != n)
        return hai_fail(err, HAI_ERR_FORMAT, "model: tensor '%s' has %lld elements, expected %lld", name,
                        (long long)t->n_elements, (long long)n);
    if (!hai_type_supported(t->type))
        return hai_fail(err, HAI_ERR_UNSUPPORTED, "model: tensor '%s' has type %s, which hai cannot compute with", name,
                        hai_type_name(t->type) ? hai_type_name(t->type) : "?");
    if (!(*out = malloc((size_t)n * sizeof **out))) return hai_fail(err, HAI_ERR_NOMEM, "model: out of memory");
    m->weights_bytes += t->size;
    return hai_dequantize(t->type, t->data, *out, n, err);
}

/* LongRoPE (phi3): two sets of frequency divisors, the long ones for contexts longer than the
 * original one; cos and sin times the file's attn_factor, or sqrt(1 + ln s / ln original) with
 * s = context_length / original (transformers' default). */
static hai_status read_longrope(hai_model *m, hai_error *err) {
    hai_hparams *hp = &m->hp;
    const hai_gguf_tensor *lt = hai_gguf_find_tensor(m->gguf, "rope_factors_long.weight");
    hai_status st;
    if (!lt) return HAI_OK;
    if ((st = get_vec(m, "rope_factors_long.weight", hp->n_rot / 2, true, &m->rope_long, err)) ||
        (st = get_vec(m, "rope_factors_short.weight", hp->n_rot / 2, true, &m->rope_short, err)) ||
        (st = arch_u32(m->gguf, m->arch, "rope.scaling.original_context_length", true, 0, &hp->rope_orig_ctx, err)))
        return st;
    for (uint32_t i = 0; i < hp->n_rot; i++) {
        float f = i < hp->n_rot / 2 ? m->rope_long[i] : m->rope_short[i - hp->n_rot / 2];
        if (!(f >= 1e-3f && f <= 1e6f))
            return hai_fail(err, HAI_ERR_FORMAT, "model: rope_factors_%s.weight[%u] = %g is not plausible (0.001 to 1e6)",
                            i < hp->n_rot / 2 ? "long" : "short", i % (hp->n_rot / 2), f);
    }
    if (hp->rope_orig_ctx < 2 || hp->rope_orig_ctx > (1u << 24))
        return hai_fail(err, HAI_ERR_FORMAT, "model: %s.rope.scaling.original_context_length %u is not plausible", m->arch, hp->rope_orig_ctx);
    double s = (double)hp->n_ctx_train / hp->rope_orig_ctx;
    float attn;
    if ((st = arch_f32(m->gguf, m->arch, "rope.scaling.attn_factor", s > 1 ? (float)sqrt(1.0 + log(s) / log(hp->rope_orig_ctx)) : 1.0f,
                       &attn, err)))
        return st;
    if (!(attn > 0.0f && attn <= 100.0f))
        return hai_fail(err, HAI_ERR_FORMAT, "model: %s.rope.scaling.attn_factor %g is not plausible (0 to 100)", m->arch, attn);
    hp->rope_mscale *= attn;
    return HAI_OK;
}

/* A mixture-of-experts layer: the router, the stacked experts, the shared expert and its gate
 * when the family has one (qwen2moe). */
static hai_status load_experts(hai_model *m, uint32_t l, hai_error *err) {
    const hai_hparams *hp = &m->hp;
    hai_layer *L = &m->layers[l];
    int64_t E = hp->n_embd, X = hp->n_ff_exp, S = hp->n_ff_shexp;
    char n[96];
    hai_status st;
#define NAME(s) (snprintf(n, sizeof n, "blk.%u." s, l), n)
    if (!(L->exps = calloc(3 * (size_t)hp->n_expert, sizeof *L->exps))) return hai_fail(err, HAI_ERR_NOMEM, "model: out of memory");
    if ((st = get_weight(m, NAME("ffn_gate_inp.weight"), E, hp->n_expert, true, &L->router, err)) ||
        (st = get_experts(m, NAME("ffn_gate_exps.weight"), E, X, L->exps, err)) ||
        (st = get_experts(m, NAME("ffn_up_exps.weight"), E, X, L->exps + hp->n_expert, err)) ||
        (st = get_experts(m, NAME("ffn_down_exps.weight"), X, E, L->exps + 2 * hp->n_expert, err)))
        return st;
    if (!S) return HAI_OK;
    if ((st = get_weight(m, NAME("ffn_gate_shexp.weight"), E, S, true, &L->gate, err)) ||
        (st = get_weight(m, NAME("ffn_up_shexp.weight"), E, S, true, &L->up, err)) ||
        (st = get_weight(m, NAME("ffn_down_shexp.weight"), S, E, true, &L->down, err)) ||
        (st = get_vec(m, NAME("ffn_gate_inp_shexp.weight"), E, false, &L->shexp_gate, err)))
        return st;
#undef NAME
    return HAI_OK;
}

static hai_status load_tensors(hai_model *m, hai_error *err) {
    const hai_hparams *hp = &m->hp;
    int64_t E = hp->n_embd, Q = (int64_t)hp->n_head * hp->head_dim, K = (int64_t)hp->n_head_kv * hp->head_dim,
            V = (int64_t)hp->n_head_kv * hp->head_dim_v, O = (int64_t)hp->n_head * hp->head_dim_v, F = hp->n_ff;
    const hai_gguf_tensor *emb = hai_gguf_find_tensor(m->gguf, "token_embd.weight");
    if (!emb || emb->n_dims != 2) return hai_fail(err, HAI_ERR_FORMAT, "model: tensor 'token_embd.weight' is missing or not 2-D");
    if (emb->ne[1] > INT32_MAX) return hai_fail(err, HAI_ERR_FORMAT, "model: vocabulary of %lld rows", (long long)emb->ne[1]);
    m->hp.n_vocab = (uint32_t)emb->ne[1];
    hai_status st;
    if ((st = get_weight(m, "token_embd.weight", E, hp->n_vocab, true, &m->tok_embd, err)) ||
        (st = get_vec(m, "output_norm.weight", E, true, &m->output_norm, err)) ||
        (st = get_weight(m, "output.weight", E, hp->n_vocab, false, &m->output, err)))
        return st;
    if (!m->output.data) m->output = m->tok_embd; /* tied embeddings */
    const hai_gguf_tensor *rf = hai_gguf_find_tensor(m->gguf, "rope_freqs.weight");
    if (rf && (st = get_vec(m, "rope_freqs.weight", hp->n_rot / 2, true, &m->rope_freq_factors, err))) return st;
    for (uint32_t i = 0; rf && i < hp->n_rot / 2; i++) /* each divides a frequency: Llama 3.1's are 1 to 8 */
        if (!(m->rope_freq_factors[i] >= 1e-3f && m->rope_freq_factors[i] <= 1e6f))
            return hai_fail(err, HAI_ERR_FORMAT, "model: rope_freqs.weight[%u] = %g is not plausible (0.001 to 1e6)", i, m->rope_freq_factors[i]);
    if ((st = read_longrope(m, err))) return st;
    m->layers = calloc(hp->n_layer, sizeof *m->layers);
    if (!m->layers) return hai_fail(err, HAI_ERR_NOMEM, "model: out of memory");
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        hai_layer *L = &m->layers[l];
        char n[96];
#define NAME(s) (snprintf(n, sizeof n, "blk.%u." s, l), n)
        bool fused_qkv = hai_gguf_find_tensor(m->gguf, NAME("attn_qkv.weight")) != NULL;
        bool fused_up = !hai_gguf_find_tensor(m->gguf, NAME("ffn_gate.weight")) && !strcmp(m->arch, "phi3");
        if (fused_qkv) { /* one tensor, the rows of Q, then K, then V (phi3): three views of it */
            hai_weight all;
            if ((st = get_weight(m, NAME("attn_qkv.weight"), E, Q + K + V, true, &all, err))) return st;
            if (V * hp->head_dim != K * hp->head_dim_v || hp->head_dim != hp->head_dim_v)
                return hai_fail(err, HAI_ERR_FORMAT, "model: a fused attn_qkv needs value heads as wide as key heads");
            L->wq = rows_of(&all, 0, Q), L->wk = rows_of(&all, Q, K), L->wv = rows_of(&all, Q + K, V);
        }
        if (fused_up) { /* the gate's rows, then the up projection's (phi3) */
            hai_weight all;
            if ((st = get_weight(m, NAME("ffn_up.weight"), E, 2 * F, true, &all, err))) return st;
            L->gate = rows_of(&all, 0, F), L->up = rows_of(&all, F, F);
        }
        if ((st = get_vec(m, NAME("post_attention_norm.weight"), E, false, &L->post_attn_norm, err)) ||
            (st = get_vec(m, NAME("post_ffw_norm.weight"), E, false, &L->post_ffn_norm, err)))
            return st;
        L->swa = hai_swa_slides(&m->swa, l);
        if ((st = get_vec(m, NAME("attn_norm.weight"), E, true, &L->attn_norm, err)) ||
            (!fused_qkv && (st = get_weight(m, NAME("attn_q.weight"), E, Q, true, &L->wq, err))) ||
            (!fused_qkv && (st = get_weight(m, NAME("attn_k.weight"), E, K, true, &L->wk, err))) ||
            (!fused_qkv && (st = get_weight(m, NAME("attn_v.weight"), E, V, true, &L->wv, err))) ||
            (st = get_weight(m, NAME("attn_output.weight"), O, E, true, &L->wo, err)) ||
            (st = get_vec(m, NAME("attn_q.bias"), Q, false, &L->bq, err)) ||
            (st = get_vec(m, NAME("attn_k.bias"), K, false, &L->bk, err)) ||
            (st = get_vec(m, NAME("attn_v.bias"), V, false, &L->bv, err)) ||
            (st = get_vec(m, NAME("attn_q_norm.weight"), hp->head_dim, false, &L->q_norm, err)) ||
            (st = get_vec(m, NAME("attn_k_norm.weight"), hp->head_dim, false, &L->k_norm, err)) ||
            (st = get_vec(m, NAME("ffn_norm.weight"), E, true, &L->ffn_norm, err)))
            return st;
        if (hp->n_expert) {
            if ((st = load_experts(m, l, err))) return st;
        } else if ((!fused_up && (st = get_weight(m, NAME("ffn_gate.weight"), E, F, true, &L->gate, err))) ||
                   (!fused_up && (st = get_weight(m, NAME("ffn_up.weight"), E, F, true, &L->up, err))) ||
                   (st = get_weight(m, NAME("ffn_down.weight"), F, E, true, &L->down, err))) {
            return st;
        }
#undef NAME
        if (!strncmp(m->arch, "qwen3", 5) && (!L->q_norm || !L->k_norm))
            return hai_fail(err, HAI_ERR_FORMAT, "model: %s layer %u lacks attn_q_norm/attn_k_norm", m->arch, l);
    }
    return HAI_OK;
}

/* Where the matmul weights live. Decode reads every one of them once per token, so it runs as
 * fast as memory streams them, and that depends on the page size (memory.h): the file's mapping
 * comes in 4 KiB pages. On the benchmark machine the Q4_0 decode kernel streamed 20.7 GB/s from
 * them and 28.2 GB/s from 2 MiB pages. So by default the weights are copied at load into one
 * region in huge pages, in the kernels' own layout where they have one (repacked), and the file's
 * pages behind each tensor are given back as it is done (clean mapped pages: the process holds
 * the weights once, not twice). With mmap_weights, weights that need no repacking stay in the
 * mapping (faster loads, pages shared with the page cache). */
typedef struct placed {
    hai_weight *w;
    uint32_t to;      /* the layout to repack into, 0: as in the file */
    size_t row_bytes; /* in that layout */
    size_t bytes;     /* in the region (0: stays in the mapping) */
} placed;

#define PLACE_RUN (2u << 20) /* bytes of the file placed between drops of its pages */

static hai_status place_weights(hai_model *m, bool in_place, hai_error *err) {
    const hai_kernels *k = hai_kernels_best();
    size_t per_layer = HAI_LAYER_MATRICES + (m->hp.n_expert ? 3 * (size_t)m->hp.n_expert : 0), n = 0, total = 0;
    placed *pl = malloc(((size_t)m->hp.n_layer * per_layer + 1) * sizeof *pl);
    if (!pl) return hai_fail(err, HAI_ERR_NOMEM, "model: out of memory");
    for (uint32_t l = 0; l < m->hp.n_layer; l++) {
        hai_layer *L = &m->layers[l];
        for (uint32_t i = 0; i < HAI_LAYER_MATRICES; i++) pl[n++].w = hai_layer_matrix(L, i);
        for (size_t e = 0; L->exps && e < 3 * (size_t)m->hp.n_expert; e++) pl[n++].w = &L->exps[e];
    }
    /* the output matrix too. Tied to the embedding table (Qwen2 0.5-3B, Llama 3.2, Gemma) it is
     * the largest matrix a step reads (Qwen2-0.5B: 28% of the bytes), so it moves too (measured,
     * AMD EPYC Zen 4, 0.5B Q8_0 with 4 sequences: 24.4 GB/s from the mapping's 4 KiB pages, 28.6
     * for the other weights), in the kernels' layout: its rows are looked up through
     * hai_repacked_row */
    bool tied = m->output.data && m->output.data == m->tok_embd.data;
    if (m->output.data) pl[n++].w = &m->output;
    for (size_t i = 0; i < n; i++) {
        hai_weight *w = pl[i].w;
        pl[i].to = w->data && w->type < HAI_TYPE_COUNT ? k->repack[w->type] : 0;
        pl[i].row_bytes = pl[i].to ? hai_repack_row_bytes(pl[i].to, w->n_in) : w->row_bytes;
        size_t b = pl[i].to ? hai_repack_bytes(pl[i].to, w->n_in, w->n_out) : w->row_bytes * (size_t)w->n_out;
        pl[i].bytes = w->data && (pl[i].to || !in_place) ? (b + 63) / 64 * 64 : 0;
        total += pl[i].bytes;
    }
    hai_status st = HAI_OK;
    if (total && m->budget) { /* the arena takes whole huge pages: the rounding counts against the budget too */
        uint64_t slack = hai_huge_bytes(total) - total;
        if (m->budget->used + slack > m->budget->limit)
            st = hai_fail(err, HAI_ERR_LIMIT, "model: the weights take %.1f MiB in 2 MiB pages; the memory budget is %.1f MiB",
                          (m->budget->used + slack) / 1048576.0, m->budget->limit / 1048576.0);
        m->budget->used += slack;
    }
    if (!st && total && !(m->arena = hai_alloc_huge(total)))
        st = hai_fail(err, HAI_ERR_NOMEM, "model: cannot allocate %.1f MiB for the weights", (double)total / (1 << 20));
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    for (size_t i = 0, off = 0; !st && i < n; i++) {
        hai_weight *w = pl[i].w;
        if (!pl[i].bytes) continue;
        uint8_t *dst = m->arena + off;
        /* in runs of whole 16-row panels, the file's pages dropped after each: a large matrix (a
         * 262K-token output: 162 MiB) never has all its pages mapped beside the arena it fills */
        int64_t step = w->row_bytes * (uint64_t)w->n_out <= PLACE_RUN ? w->n_out : (int64_t)(PLACE_RUN / w->row_bytes) / 16 * 16;
        if (step < 16) step = 16;
        for (int64_t r0 = 0; r0 < w->n_out; r0 += step) {
            int64_t nr = w->n_out - r0 < step ? w->n_out - r0 : step;
            const uint8_t *src = w->data + (size_t)r0 * w->row_bytes;
            if (pl[i].to)
                hai_repack(w->type, pl[i].to, src, w->row_bytes, dst + (size_t)r0 * pl[i].row_bytes, w->n_in, nr);
            else
                memcpy(dst + (size_t)r0 * pl[i].row_bytes, src, w->row_bytes * (size_t)nr);
            /* whole pages up to the run's end (one shared with the next run is read again) */
            uintptr_t pa = (uintptr_t)src / page * page, pe = ((uintptr_t)src + w->row_bytes * (size_t)nr) / page * page;
            if (pe > pa) madvise((void *)pa, pe - pa, MADV_DONTNEED);
        }
        w->data = dst;
        w->type = pl[i].to ? pl[i].to : w->type;
        w->row_bytes = pl[i].row_bytes;
        if (tied && w == &m->output) m->tok_embd = *w;
        off += pl[i].bytes;
    }
    free(pl);
    return st;
}

uint64_t hai_model_decode_bytes(const hai_model *m) {
    uint64_t b = m->weights_bytes;
    const hai_gguf_tensor *e = hai_gguf_find_tensor(m->gguf, "token_embd.weight");
    if (e && m->output.data != m->tok_embd.data) b -= e->size; /* looked up a row at a time */
    if (m->hp.n_expert) /* only the chosen experts' weights are read */
        b -= m->expert_bytes / m->hp.n_expert * (m->hp.n_expert - m->hp.n_expert_used);
    return b;
}

static void describe(hai_model *m) {
    int64_t n = 0;
    for (int64_t i = 0; i < hai_gguf_n_tensors(m->gguf); i++) n += hai_gguf_tensor_at(m->gguf, i)->n_elements;
    uint32_t ft;
    const char *fname = hai_gguf_get_u32(m->gguf, "general.file_type", &ft, NULL) == HAI_OK ? hai_ftype_name(ft) : NULL;
    snprintf(m->desc, sizeof m->desc, "%s %.2f%s params %s", m->arch, n >= 1000000000 ? n / 1e9 : n / 1e6,
             n >= 1000000000 ? "B" : "M", fname ? fname : "");
}

hai_status hai_model_load(const char *path, const hai_model_params *p, hai_model **out, hai_error *err) {
    if (!path || !out) return hai_fail(err, HAI_ERR_INVALID, "model: NULL argument");
    *out = NULL;
    hai_status kst = hai_kernels_check(err); /* the weights are laid out for the table in use */
    if (kst) return kst;
    hai_model *m = calloc(1, sizeof *m);
    if (!m) return hai_fail(err, HAI_ERR_NOMEM, "model: out of memory");
    hai_status st = hai_gguf_open(path, &m->gguf, err);
    if (!st && p && p->progress) p->progress(p->progress_user, 1, 4, "metadata");
    hai_gguf_str arch;
    if (!st && (st = hai_gguf_get_str(m->gguf, "general.architecture", &arch, err)) == HAI_ERR_NOT_FOUND)
        st = hai_fail(err, HAI_ERR_FORMAT, "model: general.architecture is missing");
    const struct arch_def *a = NULL;
    if (!st) {
        snprintf(m->arch, sizeof m->arch, "%.*s", (int)(arch.size < 31 ? arch.size : 31), arch.data);
        for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++)
            if (!strcmp(archs[i].name, m->arch) && strlen(archs[i].name) == arch.size) a = &archs[i];
        if (!a) st = hai_fail(err, HAI_ERR_UNSUPPORTED, "model: architecture '%s' is not supported (supported: llama, qwen2, qwen3, granite, smollm3, phi3, gemma2, gemma3, qwen2moe, qwen3moe)", m->arch);
    }
    if (!st) st = read_hparams(m, a, err);
    if (!st && p && p->progress) p->progress(p->progress_user, 2, 4, "tensors");
    if (!st) st = load_tensors(m, err);
    if (!st && p && p->progress) p->progress(p->progress_user, 3, 4, "tokenizer");
    if (!st) st = hai_tokenizer_from_gguf(m->gguf, &m->tok, err);
    if (!st && hai_tokenizer_n_vocab(m->tok) > (int32_t)m->hp.n_vocab)
        st = hai_fail(err, HAI_ERR_FORMAT, "model: the tokenizer has %d tokens but the embedding only %u rows",
                      hai_tokenizer_n_vocab(m->tok), m->hp.n_vocab);
    /* a budget of its own, or (budget_of) one whose limit is what the other model's budget has
     * left: this load counts against it alone, then moves to the other at once */
    hai_budget *shared = p && p->budget_of ? p->budget_of->budget : NULL;
    if (!st && p && (p->mem_budget || shared)) { /* the header and metadata (read whole) and the tokenizer's tables first */
        if (!(m->budget = calloc(1, sizeof *m->budget))) {
            st = hai_fail(err, HAI_ERR_NOMEM, "model: out of memory");
        } else {
            pthread_mutex_init(&m->budget->mu, NULL);
            m->budget->refs = 1;
            m->budget->limit = shared ? hai_model_budget_left(p->budget_of) : p->mem_budget;
            m->budget->used = hai_gguf_data_offset(m->gguf) + tok_memory_bytes(m->tok);
            if (m->budget->used > m->budget->limit)
                st = hai_fail(err, HAI_ERR_LIMIT, "model: the file's metadata and the tokenizer take %.1f MiB; the memory budget %s %.1f MiB",
                              m->budget->used / 1048576.0, shared ? "has left" : "is", m->budget->limit / 1048576.0);
        }
    }
    /* then the weights: what stays in memory counts, what streams from the file does not (its
     * cache counts once it is made); a budget they do not fit is an error before any is read */
    if (!st) st = hai_stream_plan(m, p, err);
    if (!st) st = place_weights(m, p && p->mmap_weights, err);
    if (!st && m->stream) st = hai_stream_start(m, path, err);
    if (!st && m->budget) {
        m->budget_charge = m->budget->used;
        if (shared) { /* the load's count moves to the shared budget, if it still has the room */
            pthread_mutex_lock(&shared->mu);
            bool fits = shared->used + m->budget_charge <= shared->limit;
            if (fits) shared->used += m->budget_charge, shared->refs++;
            pthread_mutex_unlock(&shared->mu);
            pthread_mutex_destroy(&m->budget->mu);
            free(m->budget);
            m->budget = fits ? shared : NULL;
            if (!fits) st = hai_fail(err, HAI_ERR_LIMIT, "model: it takes %.1f MiB; the memory budget it shares has %.1f MiB left",
                                     m->budget_charge / 1048576.0, hai_model_budget_left(p->budget_of) / 1048576.0);
        }
    }
    if (st) {
        if (shared && st == HAI_ERR_LIMIT) /* "the memory budget" above: what the shared one has left */
            hai_error_prefix(err, "counted against another model's budget, %.1f MiB left", hai_model_budget_left(p->budget_of) / 1048576.0);
        hai_error_prefix(err, "%s", path);
        hai_model_free(m);
        return st;
    }
    describe(m);
    if (p && p->progress) p->progress(p->progress_user, 4, 4, "done");
    *out = m;
    return HAI_OK;
}

void hai_model_free(hai_model *m) {
    if (!m) return;
    hai_stream_free(m->stream); /* its readers stop before the memory they read into goes */
    if (m->budget) { /* its charge back; the last model counted against the budget frees it */
        hai_budget *b = m->budget;
        pthread_mutex_lock(&b->mu);
        b->used -= m->budget_charge < b->used ? m->budget_charge : b->used;
        bool last = !--b->refs;
        pthread_mutex_unlock(&b->mu);
        if (last) {
            pthread_mutex_destroy(&b->mu);
            free(b);
        }
    }
    if (m->layers) {
        for (uint32_t l = 0; l < m->hp.n_layer; l++) {
            hai_layer *L = &m->layers[l];
            free(L->attn_norm), free(L->ffn_norm), free(L->bq), free(L->bk), free(L->bv), free(L->q_norm), free(L->k_norm);
            free(L->post_attn_norm), free(L->post_ffn_norm), free(L->exps), free(L->shexp_gate);
        }
    }
    free(m->layers);
    free(m->arena);
    free(m->output_norm);
    free(m->rope_freq_factors);
    free(m->rope_long), free(m->rope_short);
    hai_tokenizer_free(m->tok);
    hai_gguf_free(m->gguf);
    free(m);
}

const hai_tokenizer *hai_model_tokenizer(const hai_model *m) { return m->tok; }
const char *hai_model_arch(const hai_model *m) { return m->arch; }
int32_t hai_model_n_vocab(const hai_model *m) { return (int32_t)m->hp.n_vocab; }
uint32_t hai_model_n_ctx_train(const hai_model *m) { return m->hp.n_ctx_train; }
uint64_t hai_model_weights_bytes(const hai_model *m) { return m->weights_bytes; }

uint64_t hai_model_budget_left(const hai_model *m) {
    if (!m->budget) return UINT64_MAX;
    pthread_mutex_lock(&m->budget->mu);
    uint64_t left = m->budget->limit - m->budget->used;
    pthread_mutex_unlock(&m->budget->mu);
    return left;
}
const char *hai_model_desc(const hai_model *m) { return m->desc; }
