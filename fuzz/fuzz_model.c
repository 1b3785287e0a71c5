/* libFuzzer target: hostile hyperparameters on a model of every architecture. Byte 0 picks the
 * architecture (a tiny synthetic model of it, written once by hai_synth_write); then records of 6
 * bytes each edit one metadata key the loader reads (which key: byte 0 modulo the list; how: byte
 * 1 - u32, i32, f32, bool, a RoPE scaling name, or removed; the value: bytes 2-5). The edited file
 * is loaded; a model that loads is run on a few tokens in one pass and then one more, and its
 * logits are read. Refusals are the expected outcome; a crash, a leak or a read out of bounds
 * (ASan) is a bug. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hai.h"

static const char *const archs[] = {"llama", "qwen2", "qwen3", "granite", "smollm3", "phi3", "gemma2", "gemma3", "qwen2moe", "qwen3moe"};
enum { N_ARCH = sizeof archs / sizeof *archs };

/* what the loader reads under "<arch>." */
static const char *const keys[] = {
    "context_length", "embedding_length", "block_count", "feed_forward_length", "attention.head_count",
    "attention.head_count_kv", "attention.key_length", "attention.value_length", "attention.layer_norm_rms_epsilon",
    "rope.freq_base", "rope.dimension_count", "rope.scaling.type", "rope.scaling.factor", "rope.scaling.original_context_length",
    "rope.scaling.attn_factor", "rope.scaling.yarn_beta_fast", "rope.scaling.yarn_beta_slow", "attention.sliding_window",
    "attention.sliding_window_pattern", "attn_logit_softcapping", "final_logit_softcapping", "rope.freq_base_swa",
    "embedding_scale", "residual_scale", "attention.scale", "logit_scale", "expert_count", "expert_used_count",
    "expert_feed_forward_length", "expert_shared_feed_forward_length", "expert_weights_norm", "vocab_size",
    "expert_gating_func"};
enum { N_KEY = sizeof keys / sizeof *keys };
static const char *const scalings[] = {"linear", "yarn", "llama3", "longrope", "none", "", "su"};

static char base_path[N_ARCH][64], edit_path[64];

static const char *base(int a) {
    if (base_path[a][0]) return base_path[a];
    snprintf(base_path[a], sizeof base_path[a], "/tmp/hai-fuzz-model-%s-%d.gguf", archs[a], (int)getpid());
    hai_synth_params p = hai_synth_default_params();
    p.arch = archs[a];
    p.n_embd = 64, p.n_layer = 2, p.n_head = 4, p.n_head_kv = 2, p.n_ff = 128, p.n_ctx_train = 64;
    p.n_expert = 4, p.n_expert_used = 2, p.n_ff_exp = 32, p.n_ff_shexp = 64;
    hai_error err = {0};
    if (hai_synth_write(base_path[a], &p, &err) != HAI_OK) {
        fprintf(stderr, "fuzz_model: cannot write the %s base: %s\n", archs[a], err.msg);
        abort(); /* the harness itself is broken, not the input */
    }
    return base_path[a];
}

typedef struct edit {
    char key[96];
    int kind; /* 0 u32, 1 i32, 2 f32, 3 bool, 4 scaling name, 5 removed */
    uint32_t v;
} edit;

static void run(const char *path) {
    hai_model *m = NULL;
    hai_error err = {0};
    if (hai_model_load(path, NULL, &m, &err) != HAI_OK) {
        if (m) abort(); /* a refusal hands nothing out */
        return;
    }
    hai_context_params cp = hai_context_default_params();
    cp.n_ctx = 16, cp.n_batch = 8, cp.n_threads = 1, cp.logits_all = true;
    hai_context *c = NULL;
    if (hai_context_create(m, &cp, &c, &err) == HAI_OK) {
        int32_t nv = hai_model_n_vocab(m);
        hai_token t[6];
        for (int i = 0; i < 6; i++) t[i] = (hai_token)((i * 97 + 5) % (nv > 0 ? nv : 1));
        if (hai_eval(c, t, 5, &err) == HAI_OK && hai_eval(c, t + 5, 1, &err) == HAI_OK) {
            const float *l = hai_logits(c, -1);
            float s = 0;
            for (int32_t i = 0; l && i < nv; i++) s += l[i];
            if (s == 1.2345e30f) fputc('\a', stderr); /* the sum is used: every logit read */
        }
        hai_context_free(c);
    }
    hai_model_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int a = data[0] % N_ARCH;
    const char *src = base(a);
    edit ed[8];
    int ne = 0;
    for (size_t off = 1; off + 6 <= size && ne < 8; off += 6, ne++) {
        snprintf(ed[ne].key, sizeof ed[ne].key, "%s.%s", archs[a], keys[data[off] % N_KEY]);
        ed[ne].kind = data[off + 1] % 6;
        memcpy(&ed[ne].v, data + off + 2, 4);
    }
    if (!edit_path[0]) snprintf(edit_path, sizeof edit_path, "/tmp/hai-fuzz-model-edit-%d.gguf", (int)getpid());
    hai_gguf *g = NULL;
    hai_gguf_writer *w = NULL;
    hai_error err = {0};
    if (hai_gguf_open(src, &g, &err) != HAI_OK || hai_gguf_writer_create(3, 32, &w, &err) != HAI_OK) abort();
    for (int64_t i = 0; i < hai_gguf_n_kv(g); i++) {
        const hai_gguf_kv *kv = hai_gguf_kv_at(g, i);
        bool edited = false;
        for (int e = 0; e < ne; e++) edited = edited || !strcmp(ed[e].key, kv->key);
        if (!edited) hai_gguf_writer_set(w, kv->key, &kv->value, &err);
    }
    for (int e = 0; e < ne; e++) {
        float f;
        memcpy(&f, &ed[e].v, 4);
        switch (ed[e].kind) {
        case 0: hai_gguf_writer_set_u32(w, ed[e].key, ed[e].v, &err); break;
        case 1: hai_gguf_writer_set_i32(w, ed[e].key, (int32_t)ed[e].v, &err); break;
        case 2: hai_gguf_writer_set_f32(w, ed[e].key, f, &err); break;
        case 3: hai_gguf_writer_set_bool(w, ed[e].key, ed[e].v & 1, &err); break;
        case 4: hai_gguf_writer_set_str(w, ed[e].key, scalings[ed[e].v % (sizeof scalings / sizeof *scalings)], &err); break;
        default: break; /* removed */
        }
    }
    for (int64_t i = 0; i < hai_gguf_n_tensors(g); i++) {
        const hai_gguf_tensor *t = hai_gguf_tensor_at(g, i);
        if (hai_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data, &err) != HAI_OK) abort();
    }
    if (hai_gguf_writer_write(w, edit_path, &err) != HAI_OK) abort();
    hai_gguf_writer_free(w);
    hai_gguf_free(g);
    run(edit_path);
    return 0;
}
