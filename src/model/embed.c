/* Embeddings: a text's final hidden states pooled into one normalized vector (hai.h). The forward
 * pass does the pooling as it goes (context.h: embd_pool), each row into its sequence's vector,
 * so no pass keeps more than its rows and several texts share a pass, a sequence each. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "context.h"
#include "base/error.h"

hai_pooling hai_model_pooling(const hai_model *m) { return (hai_pooling)m->hp.pooling; }

uint32_t hai_model_n_embd(const hai_model *m) { return m->hp.n_embd; }

/* Sequence s's pooled rows, normalized, into out. */
static void finish(const hai_context *c, int32_t s, int pooling, float *out) {
    uint32_t E = c->m->hp.n_embd;
    const float *v = c->embd + (size_t)s * E;
    double norm = 0, scale = pooling == HAI_POOLING_MEAN ? 1.0 / (double)c->embd_rows[s] : 1.0;
    for (uint32_t k = 0; k < E; k++) norm += (double)v[k] * v[k] * scale * scale;
    norm = sqrt(norm);
    for (uint32_t k = 0; k < E; k++) out[k] = norm > 0 ? (float)(v[k] * scale / norm) : 0.0f;
}

hai_status hai_embed_batch(hai_context *c, const hai_token *const *tokens, const size_t *n, size_t n_inputs, int pooling, float *out,
                           hai_error *err) {
    if (!c || !out || (!tokens && n_inputs) || (!n && n_inputs)) return hai_fail(err, HAI_ERR_INVALID, "embed: NULL argument");
    if (!pooling) pooling = (int)c->m->hp.pooling;
    if (pooling != HAI_POOLING_MEAN && pooling != HAI_POOLING_CLS && pooling != HAI_POOLING_LAST)
        return hai_fail(err, HAI_ERR_INVALID, "embed: pooling %d is not mean (1), cls (2) or last (3)", pooling);
    for (size_t i = 0; i < n_inputs; i++) {
        if (!n[i] || !tokens[i]) return hai_fail(err, HAI_ERR_INVALID, "embed: input %zu has no tokens", i);
        if (n[i] > c->n_ctx) return hai_fail(err, HAI_ERR_LIMIT, "embed: input %zu has %zu tokens; the context holds %u", i, n[i], c->n_ctx);
    }
    uint32_t E = c->m->hp.n_embd, S = c->n_seq;
    /* the batch of a group of up to n_seq inputs: its tokens one after the other, with their
     * sequences; the largest group at most every token */
    size_t cap = 0;
    for (size_t g = 0; g < n_inputs; g += S) {
        size_t m = 0;
        for (size_t i = g; i < n_inputs && i < g + S; i++) m += n[i];
        if (m > cap) cap = m;
    }
    hai_token *bt = n_inputs > 1 ? malloc(cap * sizeof *bt) : NULL;
    int32_t *bs = n_inputs > 1 ? malloc(cap * sizeof *bs) : NULL;
    if (n_inputs > 1 && (!bt || !bs)) {
        free(bt), free(bs);
        return hai_fail(err, HAI_ERR_NOMEM, "embed: out of memory for a batch of %zu tokens", cap);
    }
    hai_status st = HAI_OK;
    for (size_t g = 0; g < n_inputs && !st; g += S) {
        size_t k = n_inputs - g < S ? n_inputs - g : S, m = 0;
        for (uint32_t s = 0; s < k && !st; s++) st = hai_seq_truncate(c, (int32_t)s, 0, err);
        if (st) break;
        memset(c->embd, 0, (size_t)k * E * sizeof *c->embd);
        memset(c->embd_rows, 0, (size_t)k * sizeof *c->embd_rows);
        hai_batch b;
        if (k == 1) {
            b = (hai_batch){.n = n[g], .tokens = tokens[g]};
        } else {
            for (size_t s = 0; s < k; s++)
                for (size_t j = 0; j < n[g + s]; j++, m++) bt[m] = tokens[g + s][j], bs[m] = (int32_t)s;
            b = (hai_batch){.n = m, .tokens = bt, .seq = bs};
        }
        c->embd_pool = pooling;
        st = hai_decode(c, &b, err);
        c->embd_pool = 0;
        for (uint32_t s = 0; s < k; s++) hai_seq_truncate(c, (int32_t)s, 0, NULL); /* no text a generation could take for its own */
        if (!st)
            for (uint32_t s = 0; s < k; s++) finish(c, (int32_t)s, pooling, out + (g + s) * E);
    }
    free(bt), free(bs);
    return st;
}

hai_status hai_embed(hai_context *c, const hai_token *tokens, size_t n, int pooling, float *out, hai_error *err) {
    if (!tokens && n) return hai_fail(err, HAI_ERR_INVALID, "embed: NULL argument");
    if (!n) return hai_fail(err, HAI_ERR_INVALID, "embed: no tokens");
    return hai_embed_batch(c, &tokens, &n, 1, pooling, out, err);
}
