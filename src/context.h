/* One sequence's state: KV cache, scratch buffers, logits. All memory is allocated when the
 * context is created; the forward pass allocates nothing. */
#ifndef HAI_CONTEXT_H
#define HAI_CONTEXT_H

#include "kernels/kernels.h"
#include "model.h"
#include "threadpool.h"

#define HAI_ATT_TILE 64 /* keys per attention tile: forward.c works in tiles of this size, context.c sizes their scratch */

struct hai_context {
    const hai_model *m;
    const hai_kernels *k;
    hai_pool *pool;
    bool own_pool;
    uint32_t n_ctx, n_batch;
    bool logits_all;
    uint32_t n_past;
    hai_token *tokens; /* [n_ctx] the tokens whose keys/values the cache holds */

    uint16_t *k_cache; /* [n_layer][n_head_kv][n_ctx_kt / 16][head_dim][16] f16: keys transposed in blocks (hai_kt_index) */
    uint16_t *v_cache; /* [n_layer][n_head_kv][n_ctx][head_dim_v] f16 */
    uint32_t n_ctx_kt; /* n_ctx rounded up to a whole block of keys */

    /* scratch, [n_batch][...] rows */
    float *x;      /* [n_batch][n_embd] residual stream */
    float *xn;     /* [n_batch][max(n_embd, n_ff)] normed input of a matmul */
    float *q;      /* [n_batch][n_head * head_dim] */
    float *kv_k;   /* [n_batch][n_head_kv * head_dim] */
    float *kv_v;   /* [n_batch][n_head_kv * head_dim_v] */
    float *attn;   /* [n_batch][n_head * head_dim_v] */
    float *gate;   /* [n_batch][n_ff] */
    float *up;     /* [n_batch][n_ff] */
    void *act;     /* [n_batch] quantized activation rows (largest format) */
    size_t act_row_bytes;
    double *inv_freq; /* [n_rot/2] RoPE frequencies */
    float *rope_cs;   /* [n_batch][n_rot/2][2] cos, sin for the batch's positions */
    void *gemm_prep;          /* activations in the gemm kernels' layout (when the kernels have gemm) */
    uint8_t *gemm_scratch;    /* [n_threads][gemm_scratch_stride] */
    size_t gemm_scratch_stride;
    uint32_t gemm_min;        /* matmuls of at least this many tokens go to gemm */
    void *act_dec;            /* [act_dec_rows] activation rows in the kernels' decode layout */
    uint32_t act_dec_rows;
    float *att_tile;  /* [n_threads][tile of scores + head_dim_v accumulator] */
    size_t att_tile_stride;

    float *logits;    /* [n_logit_rows][n_vocab] */
    uint32_t n_logit_rows;
    int32_t n_out;    /* rows of logits of the last eval */
    int32_t n_last;   /* tokens in the last eval */

    bool (*should_abort)(void *);
    void *abort_user;
};

/* The forward pass over n <= n_batch tokens at positions n_past..; logits for the last token, or
 * all when logits_all. Returns HAI_ERR_CANCELLED when aborted. */
hai_status hai_forward(hai_context *c, const hai_token *tokens, uint32_t n, hai_error *err);

#endif
