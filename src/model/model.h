/* The loaded model: hyperparameters, weight views into the memory map, the tokenizer. One
 * forward pass serves every architecture; what differs between them is data here. */
#ifndef HAI_MODEL_H
#define HAI_MODEL_H

#include <pthread.h>

#include "hai.h"

typedef struct hai_stream hai_stream;

typedef enum rope_style {
    ROPE_NORMAL, /* rotate adjacent pairs (2i, 2i+1): llama */
    ROPE_NEOX,   /* rotate halves (i, i + n_rot/2): qwen2, qwen3 */
} rope_style;

/* Which layers attend to a sliding window only, as the file and the architecture say: window 0
 * none; else the file's per-layer flags (pattern), or by period (llama.cpp's convention: 0 every
 * layer slides (phi3), n all but each n-th (gemma)). One rule for the model and for `hai info`. */
typedef struct hai_swa_rule {
    uint32_t window, period;
    const void *pattern; /* n_layer bytes in the file's metadata, or NULL */
} hai_swa_rule;
int32_t hai_arch_swa_period(const char *arch); /* the architecture's period; -1: it has no sliding window */
hai_status hai_swa_read(const hai_gguf *g, const char *arch, uint32_t n_layer, hai_swa_rule *r, hai_error *err);
bool hai_swa_slides(const hai_swa_rule *r, uint32_t l);

/* A 2-D weight: n_out rows of n_in elements, each row row_bytes of `type` blocks. */
typedef struct hai_weight {
    uint32_t type;
    int64_t n_in, n_out;
    size_t row_bytes;
    const uint8_t *data;
} hai_weight;

typedef struct hai_layer {
    float *attn_norm, *ffn_norm; /* [n_embd] */
    float *bq, *bk, *bv;         /* optional biases [n_head*head_dim], [n_head_kv*head_dim], .. */
    float *q_norm, *k_norm;      /* optional per-head RMSNorm weights [head_dim] (qwen3) */
    float *post_attn_norm, *post_ffn_norm; /* optional RMSNorms of what attention and FFN add (gemma) */
    bool swa;                    /* attends to the last swa_window positions only (gemma, phi3) */
    /* the FFN (gate, up, down); in a mixture-of-experts layer the shared expert (qwen2moe), whose
     * output is scaled by sigmoid(shexp_gate . x), or no data */
    hai_weight wq, wk, wv, wo, gate, up, down;
    hai_weight router;           /* MoE: ffn_gate_inp, one row an expert */
    hai_weight *exps;            /* MoE: [3][n_expert] each expert's gate, up, down: views of the stacked tensors */
    float *shexp_gate;           /* [n_embd] or NULL */
    bool streamed;               /* its matrices are read from the file as needed: unit stream_unit (stream.h) */
    uint32_t stream_unit;
} hai_layer;

/* A layer's matrices in one order: q, k, v, o, gate, up, down (what a streamed dense layer reads),
 * then the router. */
#define HAI_LAYER_MATRICES 8
static inline hai_weight *hai_layer_matrix(hai_layer *L, uint32_t i) {
    hai_weight *ws[HAI_LAYER_MATRICES] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->gate, &L->up, &L->down, &L->router};
    return ws[i];
}

typedef struct hai_hparams {
    uint32_t n_vocab;     /* rows of the output matrix */
    uint32_t n_ctx_train, n_embd, n_layer, n_head, n_head_kv, n_ff;
    uint32_t head_dim;    /* of queries and keys */
    uint32_t head_dim_v;  /* of values */
    uint32_t n_rot;       /* dimensions rotated by RoPE (<= head_dim) */
    float rms_eps;
    float rope_base;
    float rope_pos_scale; /* positions are multiplied by this (linear scaling: 1/factor) */
    float rope_mscale;    /* cos and sin are multiplied by this (YaRN's attention factor), else 1 */
    /* granite's multipliers (1 and 1/sqrt(head_dim) elsewhere): on the embeddings, on what each
     * block adds to the residual stream, on the attention scores; the logits divided by logit_scale */
    float embd_scale, resid_scale, attn_scale, logit_scale;
    uint32_t nope_step;   /* every nope_step-th layer has no RoPE (smollm3: 4), 0: all have it */
    bool geglu;           /* gelu(gate) * up (gemma), else silu(gate) * up */
    float attn_softcap, final_softcap; /* scores, logits through cap * tanh(x / cap) (gemma2); 0: not */
    uint32_t swa_window;  /* of the layers marked swa */
    float rope_base_swa;  /* RoPE base of the swa layers, without scaling (gemma3); 0: as the others */
    rope_style rope;
    /* YaRN: frequencies between extrapolated and interpolated (/ yarn_factor) by a ramp over the
     * dimensions that turn between beta_fast and beta_slow times in the original context */
    bool yarn;
    float yarn_factor, yarn_beta_fast, yarn_beta_slow;
    uint32_t yarn_orig_ctx;
    uint32_t rope_orig_ctx; /* LongRoPE: the context the short factors serve */
    /* mixture of experts (qwen2moe, qwen3moe): n_expert experts of n_ff_exp, n_expert_used of them
     * a token, their softmax weights renormalised over the chosen ones when expert_norm; a shared
     * expert of n_ff_shexp (0: none). n_ff is then the widest of the two (scratch rows). */
    uint32_t n_expert, n_expert_used, n_ff_exp, n_ff_shexp;
    bool expert_norm;
    uint32_t pooling;     /* hai_pooling the file states for embeddings (<arch>.pooling_type), else mean */
} hai_hparams;

struct hai_model {
    hai_gguf *gguf;
    char arch[32];
    char desc[128];
    hai_hparams hp;
    hai_weight tok_embd, output; /* output may alias tok_embd (tied embeddings) */
    float *output_norm;
    float *rope_freq_factors;    /* [n_rot/2] divisors of each frequency (Llama 3.1), or NULL */
    hai_swa_rule swa;            /* which layers slide (gemma, phi3) */
    float *rope_long, *rope_short; /* LongRoPE (phi3): [n_rot/2] divisors for contexts longer than
                                    * rope_orig_ctx and the others, or NULL */
    hai_layer *layers;
    hai_tokenizer *tok;
    uint64_t weights_bytes;
    uint64_t expert_bytes;       /* of weights_bytes, the experts' (MoE): a token reads n_expert_used / n_expert of them */
    uint8_t *arena;              /* the matmul weights, copied or repacked at load (see model.c), or NULL */
    struct hai_budget *budget;   /* the memory budget (hai_model_params.mem_budget), or NULL */
    uint64_t budget_charge;      /* what this model's load counted against it (returned at free) */
    struct hai_stream *stream;   /* weights read from the file as needed (stream.h), or NULL */
};

/* A model's memory budget: its weights and its contexts' allocations count against limit. The
 * model is shared by threads that create contexts, so what is used is under a lock. */
typedef struct hai_budget {
    pthread_mutex_t mu;
    uint64_t limit, used;
    uint32_t n_contexts;
    uint32_t refs;               /* models counted against it (hai_model_params.budget_of) */
} hai_budget;

#endif
