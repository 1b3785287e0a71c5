/* Generation: prompt-cache reuse, prefill, the decode loop with sampling, streaming text that is
 * whole UTF-8 characters with stop strings held back, and the finish reason. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "context.h"
#include "base/error.h"
#include "gen.h"
#include "model/grammar/grammar.h"
#include "kernels/kernels.h"

/* A control token's piece is empty: nothing to add (and the buffer may not exist yet). */
static bool held_add(hai_text *h, const char *s, size_t n) { return !n || text_put(h, s, n); }

/* How much of held text can be released: all of it up to a stop string (*stopped set), or up to
 * the longest tail that is still the start of some stop string. */
static size_t releasable(const hai_text *h, const hai_generate_params *p, bool *stopped) {
    *stopped = false;
    if (!h->n) return 0; /* nothing held (h->p may be NULL: memmem takes none) */
    size_t first_stop = h->n;
    for (size_t s = 0; s < p->n_stop; s++) {
        size_t sl = strlen(p->stop[s]);
        if (!sl) continue;
        const char *hit = memmem(h->p, h->n, p->stop[s], sl);
        if (hit && (size_t)(hit - h->p) < first_stop) {
            first_stop = (size_t)(hit - h->p);
            *stopped = true;
        }
    }
    if (*stopped) return first_stop;
    size_t keep = 0;
    for (size_t s = 0; s < p->n_stop; s++) {
        size_t sl = strlen(p->stop[s]);
        for (size_t k = sl > 1 ? sl - 1 : 0; k > keep; k--) /* longest proper prefix at the end */
            if (k <= h->n && memcmp(h->p + h->n - k, p->stop[s], k) == 0) {
                keep = k;
                break;
            }
    }
    return h->n - keep;
}

static bool emit(const hai_generate_params *p, hai_text *h, size_t n) {
    bool go = true;
    if (n && p->on_text) go = p->on_text(p->user, h->p, n);
    if (n) memmove(h->p, h->p + n, h->n - n);
    h->n -= n;
    return go;
}

hai_status gen_begin(gen_state *g, const hai_tokenizer *tok, const hai_token *prompt, size_t n_prompt, const hai_generate_params *p,
                     hai_generate_result *res, hai_error *err) {
    memset(g, 0, sizeof *g);
    g->tok = tok;
    g->p = p;
    g->res = res;
    g->ent_n = p->entropy_tokens > 0 ? p->entropy_tokens : 16;
    g->cap = hai_tokenizer_max_piece(tok) + 16;
    g->t_begin = hai_time_s();
    g->gram_on = p->grammar && !p->n_grammar_triggers;
    if (!(g->piece = malloc(g->cap)) || (p->grammar && !g->gram_on && !(g->tpiece = malloc(g->cap)))) {
        free(g->piece);
        return hai_fail(err, HAI_ERR_NOMEM, "generate: out of memory");
    }
    /* the output continues the prompt: a SentencePiece space at its start is real text */
    hai_detok_stream_init(&g->ds, HAI_DETOK_KEEP_LEADING_SPACE | (p->special_text ? HAI_DETOK_SPECIAL : 0));
    if (p->sampler)
        for (size_t i = 0; i < n_prompt; i++) hai_sampler_accept(p->sampler, prompt[i]);
    res->finish = HAI_FINISH_LENGTH;
    return HAI_OK;
}

/* Logits of tokens the grammar does not allow become -inf (the vocabulary's padding past the
 * tokenizer's tokens too); false when none is left. */
static bool mask_logits(float *l, int32_t nv, const uint32_t *bits, int32_t n_tok) {
    const hai_kernels *k = hai_kernels_best();
    bool (*mask)(int64_t, float *, const uint32_t *) = k->logits_mask ? k->logits_mask : hai_kernels_ref()->logits_mask;
    int32_t n = nv < n_tok ? nv : n_tok;
    for (int32_t i = n; i < nv; i++) l[i] = -INFINITY;
    return mask(n, l, bits);
}

/* With a grammar, every token must leave an output the rest of the budget can finish: after it,
 * the fewest bytes that complete the grammar fit in the tokens left (at one byte a token, the
 * worst case; one more for the end). So a model that would nest or ramble forever is steered to
 * close in time, and far from the end of the budget nothing is refused. */
static bool fits(const gen_state *g, hai_token t, int64_t budget) {
    uint32_t d = grammar_dist_after(g->p->grammar, t);
    return d < GRAM_INF && (hai_tokenizer_is_eog(g->tok, t) || (int64_t)d <= budget - 2);
}

/* The grammar's choice: a plain draw first (see sampler_is_plain); on a miss the mask, and draws
 * from it until one fits the budget; if none of a few does, every allowed token is measured. */
static hai_token grammar_pick(gen_state *g, float *logits, int32_t nv, int64_t budget, hai_status *st, hai_error *err) {
    const hai_generate_params *p = g->p;
    hai_sampler *s = p->sampler;
    bool lazy = !s || sampler_is_plain(s);
    hai_token t = lazy ? (s ? hai_sampler_sample(s, logits) : hai_logits_argmax(logits, nv)) : -1;
    if (t >= 0 && hai_grammar_allows(p->grammar, t) && fits(g, t, budget)) return t;
    const uint32_t *bits;
    if ((*st = hai_grammar_allowed(p->grammar, &bits, err))) return -1;
    if (!mask_logits(logits, nv, bits, hai_tokenizer_n_vocab(g->tok))) {
        *st = hai_fail(err, HAI_ERR_FORMAT, "grammar: no token of the vocabulary can continue the output here");
        return -1;
    }
    hai_token first = -1;
    for (int tries = 0; tries < 8; tries++) {
        t = s ? hai_sampler_sample(s, logits) : hai_logits_argmax(logits, nv);
        if (first < 0) first = t;
        if (!(logits[t] > -INFINITY)) break; /* nothing left */
        if (fits(g, t, budget)) return t;
        logits[t] = -INFINITY;
    }
    bool any = false;
    for (int32_t i = 0; i < nv; i++) {
        if (!(logits[i] > -INFINITY)) continue;
        if (fits(g, i, budget)) any = true;
        else logits[i] = -INFINITY;
    }
    if (!any) return first; /* the budget was too small from the start: the output will be cut */
    return s ? hai_sampler_sample(s, logits) : hai_logits_argmax(logits, nv);
}

/* Where a trigger starts in text whose first `from` bytes were searched before (a match may end
 * in the new bytes only); -1 when none does. */
static ptrdiff_t find_trigger(const hai_generate_params *p, const char *text, size_t n, size_t from) {
    ptrdiff_t best = -1;
    for (size_t i = 0; i < p->n_grammar_triggers; i++) {
        const hai_grammar_trigger *tr = &p->grammar_triggers[i];
        size_t tl = strlen(tr->text);
        if (!tl || tl > n) continue;
        if (tr->at_start) {
            size_t k = 0;
            while (k < n && (text[k] == ' ' || text[k] == '\n' || text[k] == '\t' || text[k] == '\r')) k++;
            if (k + tl <= n && k + tl > from && !memcmp(text + k, tr->text, tl) && (best < 0 || (ptrdiff_t)k < best)) best = (ptrdiff_t)k;
            continue;
        }
        size_t s0 = from >= tl ? from - tl + 1 : 0;
        const char *hit = memmem(text + s0, n - s0, tr->text, tl);
        if (hit && (best < 0 || hit - text < best)) best = hit - text;
    }
    return best;
}

/* A lazy grammar's watch over a drawn token t: 0 no trigger in the output with it; 1 a trigger,
 * and the grammar took the text from it on (it constrains the output from now on); -1 a trigger
 * whose text the grammar refuses: t must not be taken. */
static int trigger_check(gen_state *g, hai_token t, hai_status *st, hai_error *err) {
    const hai_generate_params *p = g->p;
    size_t k = 0;
    if (t >= hai_tokenizer_n_vocab(g->tok)) return 0;
    if ((*st = hai_token_to_piece(g->tok, t, p->special_text ? HAI_DETOK_SPECIAL : 0, g->tpiece, g->cap, &k, err))) return 0;
    size_t from = g->said.n;
    if (!held_add(&g->said, g->tpiece, k)) {
        *st = hai_fail(err, HAI_ERR_NOMEM, "generate: out of memory");
        return 0;
    }
    ptrdiff_t at = find_trigger(p, g->said.p, g->said.n, from);
    if (at < 0) return 0;
    if (hai_grammar_accept_text(p->grammar, g->said.p + at, g->said.n - (size_t)at, NULL) != HAI_OK) {
        g->said.n = from; /* not taken */
        return -1;
    }
    g->gram_on = true;
    return 1;
}

bool gen_step(gen_state *g, float *logits, int32_t nv, int64_t room, hai_token *next, hai_status *st, hai_error *err) {
    const hai_generate_params *p = g->p;
    hai_generate_result *res = g->res;
    *st = HAI_OK;
    /* prompt + completion never exceed the context: no token is sampled past its end */
    if (room <= 0) return false; /* LENGTH */
    if (g->ent_k < g->ent_n) {
        g->ent_sum += hai_logits_entropy(logits, nv);
        g->ent_k++;
        res->mean_entropy = (float)(g->ent_sum / g->ent_k);
    }
    hai_token t;
    if (p->grammar && g->gram_on) {
        int64_t budget = room + 1; /* tokens still to come, the end included (it takes no position) */
        if (p->max_tokens > 0 && p->max_tokens - res->n_generated < budget) budget = p->max_tokens - res->n_generated;
        t = grammar_pick(g, logits, nv, budget, st, err);
        if (*st || (*st = hai_grammar_accept_token(p->grammar, t, err))) return false;
    } else {
        t = p->sampler ? hai_sampler_sample(p->sampler, logits) : hai_logits_argmax(logits, nv); /* NaN never wins */
        /* a grammar waiting for its trigger: a token that opens a call the grammar cannot follow
         * (text after the marker that no call starts with) is not taken; another is drawn */
        for (int tries = 0; p->grammar && !hai_tokenizer_is_eog(g->tok, t); tries++) {
            int r = trigger_check(g, t, st, err);
            if (*st) return false;
            if (r >= 0) break;
            logits[t] = -INFINITY;
            if (tries == 16) {
                *st = hai_fail(err, HAI_ERR_FORMAT, "grammar: no token continues the tool call the output opened");
                return false;
            }
            t = p->sampler ? hai_sampler_sample(p->sampler, logits) : hai_logits_argmax(logits, nv);
        }
    }
    if (res->n_generated == 0) g->t_first = hai_time_s();
    if (hai_tokenizer_is_eog(g->tok, t)) {
        res->finish = HAI_FINISH_STOP;
        return false;
    }
    if (p->sampler) hai_sampler_accept(p->sampler, t);
    if (p->on_token) p->on_token(p->user, t);
    res->n_generated++;
    size_t k = 0;
    if (t < hai_tokenizer_n_vocab(g->tok) && (*st = hai_detok_stream_push(g->tok, &g->ds, t, g->piece, g->cap, &k, err))) return false;
    if (!held_add(&g->h, g->piece, k)) {
        *st = hai_fail(err, HAI_ERR_NOMEM, "generate: out of memory");
        return false;
    }
    bool stopped;
    size_t out = releasable(&g->h, p, &stopped);
    if (!emit(p, &g->h, out)) {
        res->finish = HAI_FINISH_CANCELLED;
        return false;
    }
    if (stopped) {
        g->h.n = 0; /* the stop string and anything after it are dropped */
        res->finish = HAI_FINISH_STOP;
        return false;
    }
    if (p->max_tokens > 0 && res->n_generated >= p->max_tokens) return false; /* LENGTH */
    *next = t;
    return true;
}

void gen_end(gen_state *g, hai_status st) {
    if (!st && g->res->finish != HAI_FINISH_CANCELLED) { /* whatever is held is real text: let it out */
        char tail[16];
        size_t k = hai_detok_stream_flush(&g->ds, tail);
        if (held_add(&g->h, tail, k) && g->h.n) emit(g->p, &g->h, g->h.n);
    }
    double t2 = hai_time_s();
    g->res->t_first_token_s = (g->t_first ? g->t_first : t2) - g->t_begin;
    g->res->t_generate_s = g->t_first ? t2 - g->t_first : 0;
    free(g->piece);
    free(g->tpiece);
    text_free(&g->said);
    text_free(&g->h);
    g->piece = g->tpiece = NULL;
}

int gen_lookup(const hai_token *a, size_t na, hai_token next, int k, hai_token *d) {
    size_t n = na + 1; /* the text: a[0..na), then next - read in place, not copied */
#define AT(i) ((i) < na ? a[i] : next)
    for (size_t g = 3; g >= 1; g--) {
        if (n <= g) continue;
        for (size_t i = n - g; i-- > 0;) { /* the latest match first */
            size_t m = 0;
            while (m < g && AT(i + m) == AT(n - g + m)) m++;
            if (m < g) continue;
            int w = 0;
            for (size_t j = i + g; j < n && w < k; j++) d[w++] = AT(j);
            if (w) return w;
        }
    }
#undef AT
    return 0;
}

void gen_draft_begin(gen_draft *d, int kmax, bool model) {
    /* a draft model starts at 2 a pass: each costs one of its decode steps, kept or not */
    *d = (gen_draft){.kmax = kmax, .kcur = model && kmax > 2 ? 2 : kmax, .model = model};
}

int gen_draft_len(gen_draft *d) {
    if (d->model && d->misses >= GEN_DRAFT_MODEL_MISSES) return 0;
    if (d->pause > 0) {
        d->pause--;
        return 0;
    }
    return d->kcur;
}

void gen_draft_done(gen_draft *d, int nd, int taken, double seconds) {
    if (seconds >= 0) {
        if (nd) d->t_drafted += seconds, d->n_drafted += taken;
        else d->t_plain += seconds, d->n_plain += taken;
    }
    if (!nd) return;
    /* slower than plain passes so far (at least 4 of each measured): as if nothing was kept */
    bool slower = d->n_plain >= 4 && d->n_drafted >= 4 && (double)d->n_drafted * d->t_plain < (double)d->n_plain * d->t_drafted;
    bool kept = taken > 1 && !slower;
    d->kcur = taken == nd + 1 ? (d->kcur + 2 < d->kmax ? d->kcur + 2 : d->kmax) : taken;
    d->backoff = kept ? 0 : d->backoff ? (d->backoff < 64 ? 2 * d->backoff : 64) : 1;
    d->misses = kept ? 0 : d->misses + 1;
    d->pause = kept ? 0 : d->backoff;
}

hai_status hai_draft_check(const hai_model *target, const hai_model *draft, hai_error *err) {
    if (!target || !draft) return hai_fail(err, HAI_ERR_INVALID, "draft: NULL argument");
    const hai_tokenizer *tt = hai_model_tokenizer(target), *td = hai_model_tokenizer(draft);
    int32_t nt = hai_tokenizer_n_vocab(tt), nd = hai_tokenizer_n_vocab(td);
    if (nd > nt) return hai_fail(err, HAI_ERR_FORMAT, "draft: its vocabulary has %d tokens, the model's %d", nd, nt);
    for (int32_t i = 0; i < nd; i++) {
        size_t la, lb;
        const char *a = hai_tokenizer_text(tt, i, &la), *b = hai_tokenizer_text(td, i, &lb);
        if (la != lb || (la && memcmp(a, b, la)))
            return hai_fail(err, HAI_ERR_FORMAT, "draft: token %d is '%.*s' in the model and '%.*s' in the draft: not the same vocabulary", i,
                            (int)(la < 40 ? la : 40), a ? a : "", (int)(lb < 40 ? lb : 40), b ? b : "");
    }
    return HAI_OK;
}

/* A draft model's greedy picks after hist[0..n): its cache brought to hist (the common prefix
 * kept), then up to k tokens, each fed back but the last; stops at an id the model cannot take. */
static int model_draft(hai_context *dc, int32_t n_rows, const hai_token *hist, size_t n, int k, hai_token *d, hai_status *st, hai_error *err) {
    if (n + (size_t)k > dc->n_ctx) return 0; /* the draft's context is full: no draft */
    uint32_t np = 0;
    const hai_token *have = hai_context_tokens(dc, &np);
    uint32_t common = 0;
    while (common < np && common + 1 < n && have[common] == hist[common]) common++;
    if ((*st = hai_context_truncate(dc, common, err))) return 0;
    common = hai_context_n_past(dc);
    if ((*st = hai_eval(dc, hist + common, n - common, err))) return 0;
    int32_t dv = hai_model_n_vocab(dc->m);
    int m = 0;
    while (m < k) {
        hai_token t = hai_logits_argmax(hai_logits(dc, -1), dv);
        if (t < 0 || t >= n_rows) break;
        d[m++] = t;
        if (m < k && (*st = hai_eval(dc, &t, 1, err))) return 0;
    }
    return m;
}

/* Decoding with drafts (prompt lookup or a draft model): each pass feeds the next token and what
 * is drafted after it, with the logits of every row kept; the rows are stepped in order as decoding would step them,
 * so a drafted token is kept only where the pick on the row before it (greedy or sampled, the
 * sampler's draws in the same order) is that token; the cache is cut back to what was kept. */
static hai_status generate_drafted(hai_context *c, gen_state *g, hai_token t, const hai_generate_params *p, int32_t want, hai_error *err) {
    int32_t nv = hai_model_n_vocab(c->m);
    int kmax = want < (int32_t)c->n_logit_rows - 1 ? want : (int32_t)c->n_logit_rows - 1;
    hai_token *hist = malloc(((size_t)c->n_ctx + 1) * sizeof *hist), *in = malloc(((size_t)kmax + 1) * sizeof *in);
    bool *keep = malloc(((size_t)kmax + 1) * sizeof *keep);
    hai_status st = hist && in && keep ? HAI_OK : hai_fail(err, HAI_ERR_NOMEM, "generate: out of memory");
    gen_draft dr;
    gen_draft_begin(&dr, kmax, p->draft_context != NULL);
    for (bool more = !st; more;) {
        uint32_t past = c->seq_past[0];
        if (p->draft_context) { /* the draft model reads the text whole */
            memcpy(hist, c->tokens, past * sizeof *hist);
            hist[past] = t;
        }
        double t0 = hai_time_s();
        int k = gen_draft_len(&dr);
        if ((int64_t)k > (int64_t)c->n_ctx - past - 1) k = (int)((int64_t)c->n_ctx - past - 1);
        if (p->max_tokens > 0 && k > p->max_tokens - g->res->n_generated - 1) k = p->max_tokens - g->res->n_generated - 1;
        int nd = k <= 0 ? 0 : p->draft_context ? model_draft(p->draft_context, nv, hist, past + 1, k, in + 1, &st, err) : gen_lookup(c->tokens, past, t, k, in + 1);
        if (st) break;
        in[0] = t;
        for (int i = 0; i <= nd; i++) keep[i] = true;
        hai_batch b = {.n = (size_t)nd + 1, .tokens = in, .logits = keep};
        if ((st = hai_decode(c, &b, err))) break;
        g->res->n_drafted += nd;
        int taken = 0; /* rows whose token stays in the cache: the fed one, then the drafts kept */
        for (int i = 0; i <= nd; i++) {
            taken = i + 1;
            more = gen_step(g, (float *)hai_batch_logits(c, (size_t)i), nv, (int64_t)c->n_ctx - (past + i + 1), &t, &st, err);
            if (!more || i == nd || t != in[i + 1]) break;
            g->res->n_accepted++;
        }
        gen_draft_done(&dr, nd, taken, hai_time_s() - t0);
        if (taken < nd + 1 && !st) { /* the drafts past the first miss leave the cache */
            st = hai_context_truncate(c, past + (uint32_t)taken, err);
            uint32_t got = c->seq_past[0]; /* a sliding window no longer holding what came before: evaluated again */
            if (!st && got < past + (uint32_t)taken) {
                for (uint32_t i = got; i < past + (uint32_t)taken; i++) /* the cache's text, then the fed token and the drafts kept */
                    hist[i] = i < past ? c->tokens[i] : in[i - past];
                st = hai_eval(c, hist + got, past + (uint32_t)taken - got, err);
            }
        }
        if (st) break;
    }
    free(hist), free(in), free(keep);
    return st;
}

hai_status hai_generate(hai_context *c, const hai_token *prompt, size_t n_prompt, const hai_generate_params *p,
                        hai_generate_result *res, hai_error *err) {
    if (!c || !p || !res || (!prompt && n_prompt)) return hai_fail(err, HAI_ERR_INVALID, "generate: NULL argument");
    memset(res, 0, sizeof *res);
    if (n_prompt == 0) return hai_fail(err, HAI_ERR_INVALID, "generate: empty prompt");
    if (n_prompt >= c->n_ctx)
        return hai_fail(err, HAI_ERR_LIMIT, "generate: the prompt has %zu tokens; the context holds %u (and needs room for one more)",
                        n_prompt, c->n_ctx);
    double t0 = hai_time_s();
    /* reuse the cached prefix; the last prompt token is always evaluated for its logits */
    uint32_t common = 0;
    while (common < c->seq_past[0] && common < n_prompt - 1 && c->tokens[common] == prompt[common]) common++;
    if (c->shift) common = seq_shift_to_prompt(c, 0, prompt, n_prompt, common);
    hai_status st = hai_context_truncate(c, common, err);
    common = c->seq_past[0]; /* less when a sliding-window cache no longer holds the window before it */
    if (!st) st = hai_eval(c, prompt + common, n_prompt - common, err);
    int32_t want = p->draft_context ? p->draft_tokens : p->draft_lookup; /* drafts a pass, at most */
    /* with a grammar too: each row is stepped (masked, the grammar advanced) only after the rows
     * before it kept their drafts, so it sees the state plain decoding would */
    bool drafted = want > 0 && c->n_seq == 1 && c->n_logit_rows > 1;
    if (!st && drafted && p->draft_context) /* the draft model reads the prompt too: prompt time */
        model_draft(p->draft_context, 0, prompt, n_prompt, 0, NULL, &st, err);
    if (st) return st;
    res->n_cached = (int32_t)common;
    res->n_prompt = (int32_t)(n_prompt - common);
    res->t_prompt_s = hai_time_s() - t0;
    gen_state g;
    if ((st = gen_begin(&g, c->m->tok, prompt, n_prompt, p, res, err))) return st;
    g.t_begin = t0;
    int32_t nv = hai_model_n_vocab(c->m);
    hai_token t;
    /* the context's own logits: the step may mask them (they are not read again) */
    if (gen_step(&g, (float *)hai_logits(c, -1), nv, (int64_t)c->n_ctx - c->seq_past[0], &t, &st, err)) {
        if (drafted)
            st = generate_drafted(c, &g, t, p, want, err);
        else
            do
                if ((st = hai_eval(c, &t, 1, err))) break;
            while (gen_step(&g, (float *)hai_logits(c, -1), nv, (int64_t)c->n_ctx - c->seq_past[0], &t, &st, err));
    }
    gen_end(&g, st);
    return st;
}
