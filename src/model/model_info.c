/* A model's description from its GGUF metadata (architecture, sizes, tokenizer) and an estimate
 * of the memory a context needs, without touching the weights. */
#include <stdio.h>
#include <string.h>

#include "base/error.h"
#include "model.h"
#include "quant/quant.h"

static const char *ftype_names[] = {
    [0] = "ALL_F32",   [1] = "MOSTLY_F16", [2] = "Q4_0",    [3] = "Q4_1",    [7] = "Q8_0",
    [8] = "Q5_0",      [9] = "Q5_1",       [10] = "Q2_K",   [11] = "Q3_K_S", [12] = "Q3_K_M",
    [13] = "Q3_K_L",   [14] = "Q4_K_S",    [15] = "Q4_K_M", [16] = "Q5_K_S", [17] = "Q5_K_M",
    [18] = "Q6_K",     [19] = "IQ2_XXS",   [20] = "IQ2_XS", [21] = "Q2_K_S", [22] = "IQ3_XS",
    [23] = "IQ3_XXS",  [24] = "IQ1_S",     [25] = "IQ4_NL", [26] = "IQ3_S",  [27] = "IQ3_M",
    [28] = "IQ2_S",    [29] = "IQ2_M",     [30] = "IQ4_XS", [31] = "IQ1_M",  [32] = "BF16",
};

const char *hai_ftype_name(uint32_t ftype) {
    return ftype < sizeof ftype_names / sizeof ftype_names[0] ? ftype_names[ftype] : NULL;
}

static void copy_str(const hai_gguf *g, const char *key, char *dst, size_t cap) {
    hai_gguf_str s;
    dst[0] = '\0';
    if (hai_gguf_get_str(g, key, &s, NULL) != HAI_OK) return;
    size_t n = s.size < cap - 1 ? (size_t)s.size : cap - 1;
    memcpy(dst, s.data, n);
    dst[n] = '\0';
}

/* "<arch>.<suffix>" as a u32, or 0 when absent or not a fitting integer. */
static uint32_t arch_u32(const hai_gguf *g, const char *arch, const char *suffix) {
    char key[160];
    uint32_t v = 0;
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    if (hai_gguf_get_u32(g, key, &v, NULL) != HAI_OK) return 0;
    return v;
}

/* The sliding-window layers, by the model's own rule (an unreadable rule: none) */
static void count_swa(const hai_gguf *g, hai_model_info *mi) {
    hai_swa_rule r;
    if (hai_swa_read(g, mi->arch, mi->n_layer, &r, NULL)) return;
    mi->swa_window = r.window;
    for (uint32_t l = 0; l < mi->n_layer; l++) mi->n_swa_layers += hai_swa_slides(&r, l);
}

hai_status hai_model_info_read(const hai_gguf *g, hai_model_info *mi, hai_error *err) {
    if (!g || !mi) return hai_fail(err, HAI_ERR_INVALID, "model info: NULL argument");
    memset(mi, 0, sizeof *mi);
    copy_str(g, "general.architecture", mi->arch, sizeof mi->arch);
    copy_str(g, "general.name", mi->name, sizeof mi->name);
    mi->has_file_type = hai_gguf_get_u32(g, "general.file_type", &mi->file_type, NULL) == HAI_OK;
    mi->n_tensors = hai_gguf_n_tensors(g);
    int64_t exp_params = 0;
    uint64_t exp_bytes = 0;
    bool tied = !hai_gguf_find_tensor(g, "output.weight");
    for (int64_t i = 0; i < mi->n_tensors; i++) {
        const hai_gguf_tensor *t = hai_gguf_tensor_at(g, i);
        mi->n_params += t->n_elements;
        mi->weights_bytes += t->size;
        _Static_assert(HAI_TYPE_COUNT <= HAI_INFO_TYPES, "hai_model_info has no room for every type");
        mi->type_tensors[t->type]++; /* the reader takes only types below HAI_TYPE_COUNT */
        mi->type_params[t->type] += t->n_elements;
        if (strstr(t->name, "_exps.weight")) exp_params += t->n_elements, exp_bytes += t->size;
        if (tied || strcmp(t->name, "token_embd.weight")) mi->decode_bytes += t->size;
    }
    mi->n_params_active = mi->n_params;
    if (mi->arch[0]) {
        mi->n_ctx_train = arch_u32(g, mi->arch, "context_length");
        mi->n_embd = arch_u32(g, mi->arch, "embedding_length");
        mi->n_layer = arch_u32(g, mi->arch, "block_count");
        mi->n_ff = arch_u32(g, mi->arch, "feed_forward_length");
        mi->n_head = arch_u32(g, mi->arch, "attention.head_count");
        mi->n_head_kv = arch_u32(g, mi->arch, "attention.head_count_kv");
        if (!mi->n_head_kv) mi->n_head_kv = mi->n_head;
        mi->head_dim_k = arch_u32(g, mi->arch, "attention.key_length");
        mi->head_dim_v = arch_u32(g, mi->arch, "attention.value_length");
        if (!mi->head_dim_k && mi->n_head) mi->head_dim_k = mi->n_embd / mi->n_head;
        if (!mi->head_dim_v) mi->head_dim_v = mi->head_dim_k;
        mi->n_vocab = arch_u32(g, mi->arch, "vocab_size");
        count_swa(g, mi);
        mi->n_expert = arch_u32(g, mi->arch, "expert_count");
        mi->n_expert_used = arch_u32(g, mi->arch, "expert_used_count");
        if (mi->n_expert && mi->n_expert_used <= mi->n_expert) { /* a token reads n_expert_used of the experts */
            mi->n_params_active -= exp_params / mi->n_expert * (mi->n_expert - mi->n_expert_used);
            mi->decode_bytes -= exp_bytes / mi->n_expert * (mi->n_expert - mi->n_expert_used);
        }
    }
    const hai_gguf_value *tokens = hai_gguf_get(g, "tokenizer.ggml.tokens");
    if (tokens && tokens->arr.n <= UINT32_MAX) mi->n_vocab = (uint32_t)tokens->arr.n;
    const hai_gguf_tensor *emb = hai_gguf_find_tensor(g, "token_embd.weight");
    if (!mi->n_vocab && emb && emb->n_dims == 2 && emb->ne[1] <= UINT32_MAX) mi->n_vocab = (uint32_t)emb->ne[1];
    copy_str(g, "tokenizer.ggml.model", mi->tokenizer_model, sizeof mi->tokenizer_model);
    copy_str(g, "tokenizer.ggml.pre", mi->tokenizer_pre, sizeof mi->tokenizer_pre);
    mi->has_chat_template = hai_gguf_get(g, "tokenizer.chat_template") != NULL;
    return HAI_OK;
}

hai_memory_estimate hai_model_memory(const hai_model_info *mi, uint32_t n_ctx, uint32_t n_batch) {
    hai_memory_estimate m = {0};
    uint64_t kv_dim = (uint64_t)mi->n_head_kv * (mi->head_dim_k + mi->head_dim_v);
    uint64_t q_dim = (uint64_t)mi->n_head * mi->head_dim_k;
    if (n_batch > n_ctx) n_batch = n_ctx;
    m.weights = mi->weights_bytes;
    /* F16; a sliding-window layer keeps its window and a batch (context.c's ring) */
    uint64_t ctx_kt = (n_ctx + 15) / 16 * 16, ring = mi->swa_window ? ((uint64_t)mi->swa_window - 1 + n_batch + 15) / 16 * 16 : ctx_kt;
    if (ring > ctx_kt) ring = ctx_kt;
    m.kv_cache = ((uint64_t)(mi->n_layer - mi->n_swa_layers) * ctx_kt + (uint64_t)mi->n_swa_layers * ring) * kv_dim * 2;
    /* per batch row: residual + normed input + attention output + q + k,v + gate + up (floats),
     * plus the row quantized for integer dot products; logits for one row at a time */
    uint64_t per_row = 4 * (3ull * mi->n_embd + q_dim + kv_dim + 2ull * mi->n_ff) + (uint64_t)mi->n_embd + mi->n_ff;
    if (mi->n_expert) per_row += 4 * (2ull * mi->n_embd + mi->n_expert + 4ull * mi->n_expert_used); /* gathered rows, results, routing */
    m.scratch = (uint64_t)n_batch * per_row + 4ull * mi->n_vocab;
    m.total = m.weights + m.kv_cache + m.scratch;
    return m;
}
