/* Embeddings: a text's final hidden states pooled into one normalized vector (hai.h). The forward
 * pass does the pooling as it goes (context.h: embd_pool), so no pass keeps more than its rows. */
#include <math.h>
#include <string.h>

#include "context.h"
#include "base/error.h"

hai_pooling hai_model_pooling(const hai_model *m) { return (hai_pooling)m->hp.pooling; }

uint32_t hai_model_n_embd(const hai_model *m) { return m->hp.n_embd; }

hai_status hai_embed(hai_context *c, const hai_token *tokens, size_t n, int pooling, float *out, hai_error *err) {
    if (!c || !out || (!tokens && n)) return hai_fail(err, HAI_ERR_INVALID, "embed: NULL argument");
    if (!n) return hai_fail(err, HAI_ERR_INVALID, "embed: no tokens");
    if (!pooling) pooling = (int)c->m->hp.pooling;
    if (pooling != HAI_POOLING_MEAN && pooling != HAI_POOLING_CLS && pooling != HAI_POOLING_LAST)
        return hai_fail(err, HAI_ERR_INVALID, "embed: pooling %d is not mean (1), cls (2) or last (3)", pooling);
    if (n > c->n_ctx) return hai_fail(err, HAI_ERR_LIMIT, "embed: %zu tokens; the context holds %u", n, c->n_ctx);
    uint32_t E = c->m->hp.n_embd;
    memset(c->embd, 0, (size_t)E * sizeof *c->embd);
    c->embd_rows = 0;
    hai_status st = hai_seq_truncate(c, 0, 0, err);
    c->embd_pool = pooling;
    if (!st) st = hai_eval(c, tokens, n, err);
    c->embd_pool = 0;
    hai_seq_truncate(c, 0, 0, NULL); /* the cache holds no text a generation could reuse as its own */
    if (st) return st;
    double norm = 0, scale = pooling == HAI_POOLING_MEAN ? 1.0 / (double)c->embd_rows : 1.0;
    for (uint32_t k = 0; k < E; k++) norm += (double)c->embd[k] * c->embd[k] * scale * scale;
    norm = sqrt(norm);
    for (uint32_t k = 0; k < E; k++) out[k] = norm > 0 ? (float)(c->embd[k] * scale / norm) : 0.0f;
    return HAI_OK;
}
