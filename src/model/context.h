/* The state of one or more sequences: KV cache (each sequence its own n_ctx positions), scratch
 * buffers, logits. All memory is allocated when the context is created; the forward pass
 * allocates nothing. */
#ifndef HAI_CONTEXT_H
#define HAI_CONTEXT_H

#include "kernels/kernels.h"
#include "model.h"
#include "base/threadpool.h"

#define HAI_KVQ_MAX_HD 1024 /* a quantized cache's head_dim at most */
#define HAI_KVQ_MAX_ROW (HAI_KVQ_MAX_HD / 32 * 34) /* bytes of such a key as a Q8_0 row */
#define KVQ_HEADS_AT_ONCE 16 /* query heads a quantized block of keys is scored for in one call */
#define HAI_ATT_TILE 64 /* keys per attention tile: forward.c works in tiles of this size, context.c sizes their scratch */

struct hai_context {
    const hai_model *m;
    const hai_kernels *k;
    hai_pool *pool;
    bool own_pool;
    uint32_t n_ctx, n_batch;
    bool logits_all;
    uint32_t n_seq;
    uint32_t *seq_past; /* [n_seq] positions each sequence holds */
    hai_token *tokens;  /* [n_seq][n_ctx] the tokens whose keys/values the cache holds */

    uint16_t *k_cache; /* [n_seq][n_layer][n_head_kv][kv_cap[l] / 16][head_dim][16] f16: keys transposed in blocks (hai_kt_index);
                        * a quantized cache (kv_type): [..][kv_cap[l]][a row of head_dim in kv_type] */
    uint16_t *v_cache; /* [n_seq][n_layer][n_head_kv][kv_cap[l]][head_dim_v] f16, or rows in kv_type */
    uint32_t kv_type;  /* HAI_TYPE_F16, or Q8_0 / Q4_0: K and V stored as quantized rows per position */
    uint32_t k_rowu, v_rowu; /* a position's key / value row, in 16-bit units */
    uint32_t n_ctx_kt; /* n_ctx rounded up to a whole block of keys */
    /* positions each layer's cache holds: n_ctx_kt, or for a sliding-window layer (gemma) `ring`:
     * its window and a pass of n_batch, position p in slot p % ring; 0 when that is no smaller */
    uint32_t *kv_cap, ring;
    size_t *k_off, *v_off; /* [n_layer] where a layer starts in a sequence's keys / values */
    size_t k_seq, v_seq;   /* a sequence's keys / values, elements */
    uint32_t *seq_lo;      /* [n_seq] the first position the rings still hold */

    /* one forward pass's tokens: their sequence, position, and which keep logits */
    int32_t *b_seq, *b_pos; /* [n_batch] */
    int32_t *b_rows;        /* [n_batch] the pass's tokens whose logits are kept, ascending */
    bool *all_logits;       /* [n_batch] all true (logits_all's flags for hai_eval) */

    /* scratch, [n_batch][...] rows */
    float *x;      /* [n_batch][n_embd] residual stream */
    float *xn;     /* [n_batch][max(n_embd, n_ff)] normed input of a matmul */
    float *q;      /* [n_batch][n_head * head_dim] */
    float *kv_k;   /* [n_batch][n_head_kv * head_dim] */
    float *kv_v;   /* [n_batch][n_head_kv * head_dim_v] */
    float *attn;   /* [n_batch][n_head * head_dim_v] */
    float *gate;   /* [n_batch][n_ff] */
    float *up;     /* [n_batch][n_ff] */
    /* mixture of experts: the router's logits, each token's experts and weights, the (token,
     * weight) pairs grouped by expert (expert e's at moe_off[e] ..), gathered inputs, results */
    float *moe_logits;   /* [n_batch][n_expert] */
    int32_t *moe_sel;    /* [n_batch][n_expert_used] */
    float *moe_selw;     /* [n_batch][n_expert_used] */
    int32_t *moe_tok;    /* [n_batch * n_expert_used] */
    float *moe_w;        /* [n_batch * n_expert_used] */
    uint32_t *moe_off, *moe_cur; /* [n_expert + 1], [n_expert] */
    float *moe_xg, *moe_tmp; /* [n_batch][n_embd] */
    void *act;     /* [n_batch] quantized activation rows (largest format) */
    size_t act_row_bytes;
    double *inv_freq; /* [n_rot/2] RoPE frequencies */
    float *rope_cs;   /* [n_batch][n_rot/2][2] cos, sin for the batch's positions */
    double *inv_freq_swa; /* the same for the sliding-window layers with a RoPE base of their own (gemma3), or NULL */
    float *rope_cs_swa;
    void *gemm_prep;          /* activations in the gemm kernels' layout (when the kernels have gemm) */
    uint8_t *gemm_scratch;    /* [n_threads][gemm_scratch_stride] */
    size_t gemm_scratch_stride;
    uint8_t *few_scratch;     /* [n_threads][few_scratch_stride]: the few-token kernels' panels */
    size_t few_scratch_stride;
    uint32_t gemm_min;        /* matmuls of at least this many tokens go to gemm */
    void *act_dec;            /* [act_dec_rows] activation rows in the kernels' decode layout */
    uint32_t act_dec_rows;
    float *att_tile;  /* [n_threads][tile of scores + head_dim_v accumulator] */
    size_t att_tile_stride;

    uint64_t bytes;   /* all it allocated (hai_context_memory_bytes) */
    bool shift;       /* hai_generate may shift the cache to a prompt (hai_context_set_shift) */
    float *logits;    /* [n_logit_rows][n_vocab] */
    float *embd;      /* [n_seq][n_embd] hai_embed's pooled hidden states, per sequence */
    int embd_pool;    /* during hai_embed: its pooling (the forward pools every row), else 0 */
    uint32_t *embd_rows; /* [n_seq] rows pooled so far */
    uint32_t n_logit_rows;
    size_t *kept;     /* [n_logit_rows] the tokens of the last decode whose logits rows are 0, 1, ... (ascending) */
    uint32_t n_kept;
    size_t n_last;    /* tokens in the last decode (or eval) */

    bool (*should_abort)(void *);
    void *abort_user;
};

/* The forward pass over n <= n_batch tokens, token i of sequence b_seq[i] at position b_pos[i]
 * (each sequence's tokens at its next positions, in order); the logits of tokens b_rows[0..n_rows)
 * into the logits rows row0... Returns HAI_ERR_CANCELLED when aborted. */
hai_status hai_forward(hai_context *c, const hai_token *tokens, uint32_t n, uint32_t n_rows, uint32_t row0, hai_error *err);

/* Where sequence s's keys / values of layer l, KV group g start. */
static inline uint16_t *hai_kv_keys(const hai_context *c, uint32_t s, uint32_t l, uint32_t g) {
    return c->k_cache + (size_t)s * c->k_seq + c->k_off[l] + (size_t)g * c->kv_cap[l] * c->k_rowu;
}
static inline uint16_t *hai_kv_values(const hai_context *c, uint32_t s, uint32_t l, uint32_t g) {
    return c->v_cache + (size_t)s * c->v_seq + c->v_off[l] + (size_t)g * c->kv_cap[l] * c->v_rowu;
}
/* A quantized cache's block of HAI_KT keys holding slot (kernels.h: transposed blocks). */
static inline uint8_t *hai_kvq_block(const hai_context *c, const uint16_t *keys, uint32_t slot) {
    return (uint8_t *)(keys + (size_t)(slot / HAI_KT) * HAI_KT * c->k_rowu);
}
/* The slot of position pos in layer l's cache. */
static inline uint32_t hai_kv_slot(const hai_context *c, uint32_t l, uint32_t pos) { return pos % c->kv_cap[l]; }

#endif
