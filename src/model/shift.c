/* Context shift: positions [keep, keep + n) leave a sequence's cache and the ones after them move
 * down by n, their keys turned back by n positions (RoPE's angle is linear in the position, so a
 * key at p rotated back by n is the key at p - n; its YaRN scale is in its length and stays). A
 * conversation that outgrows its context keeps its start (the system prompt) and its recent turns
 * without reading them again. In a one-layer model the moved cache is what evaluating the kept
 * tokens afresh gives (up to F16 rounding); deeper layers keep what the dropped text left in the
 * kept tokens' states, as llama.cpp's shift does. */
#include <math.h>
#include <string.h>

#include "base/error.h"
#include "context.h"
#include "gen.h"
#include "kernels/kernels.h"
#include "quant/fp16.h"

/* A key turned back by the angles t (cos, sin a dimension pair), unless its layer has no RoPE. */
static void rotate_back(const hai_hparams *hp, bool roped, const double *t, float *x) {
    uint32_t half = hp->n_rot / 2;
    for (uint32_t i = 0; roped && i < half; i++) { /* rotate by minus the angle */
        uint32_t a = hp->rope == ROPE_NEOX ? i : 2 * i, b = hp->rope == ROPE_NEOX ? i + half : 2 * i + 1;
        double x0 = x[a], x1 = x[b], co = t[2 * i], si = t[2 * i + 1];
        x[a] = (float)(x0 * co + x1 * si);
        x[b] = (float)(x1 * co - x0 * si);
    }
}

hai_status hai_seq_shift(hai_context *c, int32_t seq, uint32_t keep, uint32_t n, hai_error *err) {
    if (!c || seq < 0 || (uint32_t)seq >= c->n_seq) return hai_fail(err, HAI_ERR_INVALID, "shift: no sequence %d", seq);
    uint32_t past = c->seq_past[seq];
    if (keep > past || n > past - keep)
        return hai_fail(err, HAI_ERR_INVALID, "shift: positions %u..%u are not in the %u the sequence holds", keep, keep + n, past);
    if (c->ring) return hai_fail(err, HAI_ERR_UNSUPPORTED, "shift: not with sliding-window rings (this context keeps %u positions of them)", c->ring);
    if (!n) return HAI_OK;
    const hai_hparams *hp = &c->m->hp;
    const hai_type_traits *kvt = c->kv_type != HAI_TYPE_F16 ? hai_type_traits_get(c->kv_type) : NULL;
    if (kvt && hp->head_dim > 1024) return hai_fail(err, HAI_ERR_UNSUPPORTED, "shift: head_dim %u", hp->head_dim);
    uint32_t hd = hp->head_dim, hdv = hp->head_dim_v, half = hp->n_rot / 2;
    double cs[2 * 512]; /* cos, sin of the turn back for each dimension pair (n_rot <= 1024) */
    double cs_swa[2 * 512];
    if (half > 512) return hai_fail(err, HAI_ERR_UNSUPPORTED, "shift: n_rot %u", hp->n_rot);
    for (uint32_t i = 0; i < half; i++) {
        double a = (double)n * hp->rope_pos_scale * c->inv_freq[i];
        cs[2 * i] = cos(a), cs[2 * i + 1] = sin(a);
        if (c->inv_freq_swa) { /* the sliding layers' own base, unscaled (rope_table) */
            a = (double)n * c->inv_freq_swa[i];
            cs_swa[2 * i] = cos(a), cs_swa[2 * i + 1] = sin(a);
        }
    }
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        const hai_layer *L = &c->m->layers[l];
        bool roped = !hp->nope_step || (l + 1) % hp->nope_step;
        const double *t = L->swa && c->inv_freq_swa ? cs_swa : cs;
        for (uint32_t g = 0; g < hp->n_head_kv; g++) {
            uint16_t *k = hai_kv_keys(c, (uint32_t)seq, l, g), *v = hai_kv_values(c, (uint32_t)seq, l, g);
            for (uint32_t p = keep + n; p < past; p++) {
                float x[1024];
                uint32_t from = hai_kv_slot(c, l, p), to = hai_kv_slot(c, l, p - n);
                if (kvt) { /* quantized rows: turned back as floats, quantized again (as llama.cpp's shift of such caches) */
                    uint8_t row[HAI_KVQ_MAX_ROW]; /* out of its block's lanes and into the new slot's */
                    hai_kvq_key_get(c->kv_type, hai_kvq_block(c, k, from), from % HAI_KT, row, (int)hd);
                    kvt->to_float(row, x, hd);
                    rotate_back(hp, roped, t, x);
                    kvt->from_float(x, row, hd);
                    hai_kvq_key_put(c->kv_type, hai_kvq_block(c, k, to), to % HAI_KT, row, (int)hd);
                    memmove(v + (size_t)to * c->v_rowu, v + (size_t)from * c->v_rowu, (size_t)c->v_rowu * sizeof *v);
                    continue;
                }
                for (uint32_t d = 0; d < hd && d < 1024; d++) x[d] = hai_f16_to_f32(k[hai_kt_index(from, d, hd)]);
                rotate_back(hp, roped, t, x);
                for (uint32_t d = 0; d < hd && d < 1024; d++) k[hai_kt_index(to, d, hd)] = hai_f32_to_f16(x[d]);
                memmove(v + (size_t)to * hdv, v + (size_t)from * hdv, (size_t)hdv * sizeof *v);
            }
        }
    }
    hai_token *tok = c->tokens + (size_t)seq * c->n_ctx;
    memmove(tok + keep, tok + keep + n, (size_t)(past - keep - n) * sizeof *tok);
    c->seq_past[seq] = past - n;
    return HAI_OK;
}

void hai_context_set_shift(hai_context *c, bool on) {
    if (c) c->shift = on;
}

#define SHIFT_MIN_MATCH 16 /* tokens the prompt must go on with from further in the cache for a shift */

uint32_t seq_shift_to_prompt(hai_context *c, int32_t seq, const hai_token *prompt, size_t n_prompt, uint32_t common) {
    uint32_t past = c->seq_past[seq];
    if (c->ring || common == 0 || common >= past || n_prompt - 1 - common < SHIFT_MIN_MATCH) return common;
    const hai_token *ct = c->tokens + (size_t)seq * c->n_ctx;
    for (uint32_t d = 1; common + d + SHIFT_MIN_MATCH <= past; d++) {
        if (memcmp(ct + common + d, prompt + common, SHIFT_MIN_MATCH * sizeof *ct)) continue;
        uint32_t len = SHIFT_MIN_MATCH;
        while (common + d + len < past && common + len < n_prompt - 1 && ct[common + d + len] == prompt[common + len]) len++;
        if (hai_seq_truncate(c, seq, common + d + len, NULL) || hai_seq_shift(c, seq, common, d, NULL)) break;
        return common + len;
    }
    return common < c->seq_past[seq] ? common : c->seq_past[seq];
}
