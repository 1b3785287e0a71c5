/* Slots, queue and workers of the server (see engine.h). */
#include "engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/error.h"
#include "model/gen.h"
#include "grammars.h"

#define SRV_MAX_DRAFT 16

/* A slot: one sequence of the shared context, and the job using it. */
typedef struct slot {
    int32_t seq;
    srv_job *handed;     /* given by submit (the idle slot whose cache matches best), taken by the worker */
    srv_job *job;        /* running (the worker's alone from here) */
    bool generating;     /* the prompt is read; a token a step */
    bool in_pass, gen_live;
    size_t n_fed;        /* prompt tokens in the cache */
    size_t pass_at, pass_len; /* its tokens in this step's batch */
    hai_token next;      /* the token to feed */
    int n_drafts;        /* drafted tokens after it in this step's batch */
    gen_draft draft;
    int draft_want;      /* a draft model's tokens to make this step */
    hai_token drafts[SRV_MAX_DRAFT];
    hai_sampler *sampler;
    hai_generate_params gp;
    hai_generate_result res;
    gen_state gen;
    hai_status status;
    hai_error err;
} slot;

struct srv_engine {
    const hai_model *m;
    hai_threadpool *pool;
    metrics *met;
    hai_context *ctx;    /* n_seq = n_slots */
    int n_slots, max_queue;
    uint32_t n_batch;
    int draft_lookup;    /* drafts a step per slot, at most (0: off) */
    bool shift;          /* --context-shift */
    uint32_t kv_type, f16_n_ctx; /* the slots' KV cache; chosen by the budget: what F16 would have held */
    hai_context *dctx;   /* a draft model's context (a sequence per slot), or NULL */
    int32_t d_vocab;     /* its vocabulary */
    hai_token *d_tok;    /* [n_slots * (n_ctx + 1)] the draft model's batch: every slot's catch-up at most */
    int32_t *d_seq;
    bool *d_logit;
    slot *slots;
    hai_token *b_tok;    /* [n_batch + n_slots] this step's batch */
    int32_t *b_seq;
    bool *b_logit;
    pthread_t th;
    bool th_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;   /* the worker waits here for work */
    srv_job *head, *tail;
    int queued;
    bool draining;       /* no new jobs (shutdown) */
    bool stopping;       /* the worker exits */
};

srv_job *srv_job_new(void) {
    srv_job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    atomic_init(&j->cancelled, false);
    atomic_init(&j->shutdown, false);
    j->top_logprobs = -1;
    j->refs = 1;
    return j;
}

srv_notify *srv_notify_new(void) {
    srv_notify *n = calloc(1, sizeof *n);
    if (!n) return NULL;
    pthread_mutex_init(&n->mu, NULL);
    pthread_cond_init(&n->cv, NULL);
    atomic_init(&n->refs, 1);
    return n;
}

void srv_notify_ref(srv_notify *n) { atomic_fetch_add(&n->refs, 1); }

void srv_notify_release(srv_notify *n) {
    if (!n || atomic_fetch_sub(&n->refs, 1) != 1) return;
    pthread_mutex_destroy(&n->mu);
    pthread_cond_destroy(&n->cv);
    free(n);
}

void srv_job_signal(srv_job *j) {
    pthread_cond_broadcast(&j->cv);
    if (j->notify) {
        pthread_mutex_lock(&j->notify->mu);
        j->notify->seq++;
        pthread_cond_broadcast(&j->notify->cv);
        pthread_mutex_unlock(&j->notify->mu);
    }
}

void srv_job_release(srv_job *j) {
    if (!j) return;
    pthread_mutex_lock(&j->mu);
    int left = --j->refs;
    pthread_mutex_unlock(&j->mu);
    if (left) return;
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j->prompt);
    text_free(&j->out);
    free(j->tokens);
    free(j->route_json);
    for (size_t i = 0; j->stop_owned && j->stop_owned[i]; i++) free(j->stop_owned[i]);
    free(j->stop_owned);
    free(j->bias_owned);
    if (j->grammar && j->gpool) gpool_give(j->gpool, j->grammar_text, j->grammar);
    else hai_grammar_free(j->grammar);
    free(j->grammar_text);
    free(j->lp);
    srv_notify_release(j->notify);
    srv_job_release(j->leader);
    free(j);
}

/* ---- the batch loop ---------------------------------------------------------------------------
 * One worker runs every slot: each step is one forward pass with the next token of every slot that
 * is generating and a chunk of the prompt of those still reading theirs, so each weight is read
 * once per step for all of them (continuous batching: a request joins at the next step). */

/* Tokens in a step while some slots decode (their next tokens and a chunk of prompt): few enough
 * that their next token does not stall for a long prompt, and within the few-token kernels' reach
 * (HAI_FEW_TOKENS on x86: a 32-token step of the 0.5B Q8_0 model ~100 ms, a 4-token step ~23 ms,
 * AMD Zen 4); the chunk is at least PREFILL_CHUNK_MIN, so a prompt moves on beside many decoders. */
#define PREFILL_STEP_BUSY 32
#define PREFILL_CHUNK_MIN 8

bool srv_job_add_text(srv_job *j, const char *text, size_t len) {
    pthread_mutex_lock(&j->mu);
    bool ok = text_put(&j->out, text, len);
    if (ok) srv_job_signal(j);
    pthread_mutex_unlock(&j->mu);
    return ok;
}

static bool on_text(void *user, const char *text, size_t len) {
    srv_job *j = user;
    if (!srv_job_add_text(j, text, len)) return false;
    bool late = j->deadline > 0 && hai_time_s() > j->deadline;
    return !atomic_load(&j->cancelled) && !late;
}

static void on_token(void *user, hai_token t) {
    srv_job *j = user;
    if (j->top_logprobs >= 0 && j->cur_logits) { /* before its text: a chunk's logprobs never lag its text */
        srv_logprob r = {.id = t};
        r.n_top = hai_logits_logprobs(j->cur_logits, j->n_vocab, t, &r.logprob, j->top_logprobs, r.top, r.top_logprob);
        pthread_mutex_lock(&j->mu);
        if (j->n_lp == j->cap_lp) {
            size_t cap = j->cap_lp ? 2 * j->cap_lp : 64;
            srv_logprob *p = realloc(j->lp, cap * sizeof *p);
            if (p) j->lp = p, j->cap_lp = cap;
        }
        if (j->n_lp < j->cap_lp) j->lp[j->n_lp++] = r;
        else j->lp_oom = true;
        pthread_mutex_unlock(&j->mu);
    }
    if (!j->want_tokens) return;
    pthread_mutex_lock(&j->mu);
    if (j->n_tokens == j->cap_tokens) {
        size_t cap = j->cap_tokens ? 2 * j->cap_tokens : 64;
        hai_token *p = realloc(j->tokens, cap * sizeof *p);
        if (p) {
            j->tokens = p;
            j->cap_tokens = cap;
        }
    }
    if (j->n_tokens < j->cap_tokens) j->tokens[j->n_tokens++] = t;
    pthread_mutex_unlock(&j->mu);
}

static bool job_stopped(srv_job *j) { return atomic_load(&j->cancelled) || (j->deadline > 0 && hai_time_s() > j->deadline); }

static void update_gauges(srv_engine *e) {
    int busy = 0;
    for (int i = 0; i < e->n_slots; i++) busy += e->slots[i].job != NULL || e->slots[i].handed != NULL;
    metrics_gauges(e->met, e->queued, busy);
}

static size_t common_prefix(const hai_context *c, int32_t seq, const hai_token *p, size_t n) {
    uint32_t held;
    const hai_token *t = hai_seq_tokens(c, seq, &held);
    size_t k = 0;
    while (k < held && k < n && t[k] == p[k]) k++;
    return k;
}

/* A job takes its slot: the cached prefix of its prompt is kept (the last prompt token is always
 * read again, for its logits), its sampler made, its generation begun. */
static void slot_begin(srv_engine *e, slot *s, srv_job *j) {
    s->job = j;
    s->status = HAI_OK;
    s->err = (hai_error){0};
    memset(&s->res, 0, sizeof s->res);
    pthread_mutex_lock(&j->mu);
    j->started = true;
    j->t_start = hai_time_s();
    srv_job_signal(j);
    pthread_mutex_unlock(&j->mu);
    size_t keep = common_prefix(e->ctx, s->seq, j->prompt, j->n_prompt);
    if (keep >= j->n_prompt) keep = j->n_prompt - 1;
    if (e->shift) /* a conversation that dropped older turns: the slot's cache moves down over them */
        keep = seq_shift_to_prompt(e->ctx, s->seq, j->prompt, j->n_prompt, (uint32_t)keep);
    /* another slot may hold more of the prompt (the first choice of the same request, or the same
     * conversation on another slot): its prefix is copied rather than read again */
    slot *from = NULL;
    size_t best = keep;
    for (int i = 0; i < e->n_slots; i++) {
        size_t k = &e->slots[i] == s ? 0 : common_prefix(e->ctx, e->slots[i].seq, j->prompt, j->n_prompt);
        if (k > j->n_prompt - 1) k = j->n_prompt - 1;
        if (k > best + 8) from = &e->slots[i], best = k; /* a few tokens are not worth the copy */
    }
    if (from && hai_seq_copy(e->ctx, from->seq, s->seq, (uint32_t)best, NULL) == HAI_OK) keep = best;
    hai_seq_truncate(e->ctx, s->seq, (uint32_t)keep, NULL);
    keep = hai_seq_n_past(e->ctx, s->seq); /* less when a sliding-window cache no longer holds the window before it */
    s->n_fed = keep;
    s->res.n_cached = (int32_t)keep;
    s->res.n_prompt = (int32_t)(j->n_prompt - keep);
    s->sampler = NULL;
    s->generating = false;
    s->gp = (hai_generate_params){.max_tokens = j->max_tokens, .stop = j->stop, .n_stop = j->n_stop, .on_text = on_text,
                                  .on_token = on_token, .user = j, .grammar = j->grammar,
                                  .grammar_triggers = j->trigger.text ? &j->trigger : NULL, .n_grammar_triggers = j->trigger.text ? 1 : 0,
                                  .special_text = j->special_text};
    if (atomic_load(&j->cancelled)) s->status = hai_fail(&s->err, HAI_ERR_CANCELLED, "cancelled before it started");
    else if (!j->greedy || j->sp.n_logit_bias) /* greedy with a bias: the sampler's greedy path applies it */
        s->status = hai_sampler_create(&j->sp, hai_model_n_vocab(e->m), &s->sampler, &s->err);
    s->gp.sampler = s->sampler;
    if (!s->status) s->status = gen_begin(&s->gen, hai_model_tokenizer(e->m), j->prompt, j->n_prompt, &s->gp, &s->res, &s->err);
    s->gen_live = !s->status;
    if (s->gen_live) s->gen.t_begin = j->t_start;
    gen_draft_begin(&s->draft, e->draft_lookup, e->dctx != NULL);
    s->n_drafts = 0;
}

/* A job leaves its slot: its result handed to the HTTP side. The slot (and its cache) is free
 * before the client hears: the next turn of the conversation must find it idle. */
static void slot_end(srv_engine *e, slot *s) {
    srv_job *j = s->job;
    if (s->gen_live) gen_end(&s->gen, s->status);
    s->gen_live = false;
    hai_sampler_free(s->sampler);
    s->sampler = NULL;
    if (!s->status && j->lp_oom) s->status = hai_fail(&s->err, HAI_ERR_NOMEM, "out of memory keeping the logprobs");
    if (s->status == HAI_ERR_CANCELLED || (!s->status && job_stopped(j))) {
        bool late = j->deadline > 0 && hai_time_s() > j->deadline;
        /* (a pass that was cancelled advanced no sequence: the cache holds what the slot fed) */
        s->status = hai_fail(&s->err, HAI_ERR_CANCELLED, atomic_load(&j->shutdown) ? "the server is shutting down" : late ? "request timed out" : "cancelled");
    }
    pthread_mutex_lock(&e->mu);
    s->job = NULL;
    update_gauges(e);
    pthread_mutex_unlock(&e->mu);
    if (!s->status) {
        double per_tok = s->res.n_generated > 1 ? s->res.t_generate_s / (s->res.n_generated - 1) : -1;
        metrics_tokens(e->met, s->res.n_prompt, s->res.n_generated, j->t_start - j->t_submit + s->res.t_first_token_s, per_tok);
        metrics_drafts(e->met, s->res.n_drafted, s->res.n_accepted);
    }
    pthread_mutex_lock(&j->mu);
    j->res = s->res;
    j->status = s->status;
    if (s->status) snprintf(j->error, sizeof j->error, "%s", s->err.msg);
    j->done = true;
    srv_job_signal(j);
    pthread_mutex_unlock(&j->mu);
    srv_job_release(j);
}

/* A pass is aborted only when every job in it has stopped (one client leaving must not cost the
 * others their step). */
static bool pass_abort(void *user) {
    srv_engine *e = user;
    for (int i = 0; i < e->n_slots; i++)
        if (e->slots[i].in_pass && !job_stopped(e->slots[i].job)) return false;
    return true;
}

/* A slot's drafts this step, at most: its draft length (gen_draft), within the room left in its
 * context and its max_tokens. */
static int slot_draft_len(srv_engine *e, slot *s) {
    uint32_t past = hai_seq_n_past(e->ctx, s->seq);
    int k = gen_draft_len(&s->draft);
    int64_t room = (int64_t)hai_context_n_ctx(e->ctx) - past - 1, left = s->gp.max_tokens > 0 ? s->gp.max_tokens - s->res.n_generated - 1 : k;
    if (k > room) k = (int)room;
    if (k > left) k = (int)left;
    return k > 0 ? k : 0;
}

/* Prompt lookup for a slot: the tokens that followed an earlier place where its text (cache and
 * next token) ends the same way, into d; how many. */
static int slot_drafts(srv_engine *e, slot *s, hai_token *d) {
    uint32_t past;
    const hai_token *t = hai_seq_tokens(e->ctx, s->seq, &past);
    int k = slot_draft_len(e, s);
    if (k <= 0) return 0;
    return gen_lookup(t, past, s->next, k, d);
}

/* A draft model's tokens for the slots that draft this step (draft_want set): each slot's draft
 * sequence brought to its text (cache and next token; the common prefix kept), all slots in one
 * pass, then one token a pass for all of them, greedy; into s->drafts, s->n_drafts. */
static void draft_model_step(srv_engine *e) {
    int32_t nv = hai_model_n_vocab(e->m);
    size_t n = 0;
    int active = 0;
    for (int i = 0; i < e->n_slots; i++) {
        slot *s = &e->slots[i];
        s->n_drafts = 0;
        if (!s->job || !s->generating || s->draft_want <= 0) continue;
        uint32_t past, dpast;
        const hai_token *t = hai_seq_tokens(e->ctx, s->seq, &past), *dt = hai_seq_tokens(e->dctx, s->seq, &dpast);
        uint32_t common = 0;
        while (common < dpast && common < past && dt[common] == t[common]) common++;
        if (hai_seq_truncate(e->dctx, s->seq, common, NULL) != HAI_OK) { /* no drafts for it this step */
            s->draft_want = 0;
            continue;
        }
        common = hai_seq_n_past(e->dctx, s->seq);
        for (uint32_t k = common; k < past; k++) e->d_tok[n] = t[k], e->d_seq[n] = s->seq, e->d_logit[n++] = false;
        e->d_tok[n] = s->next, e->d_seq[n] = s->seq, e->d_logit[n++] = true;
        s->pass_at = n - 1; /* the row of its logits */
        active++;
    }
    while (active) {
        hai_batch b = {.n = n, .tokens = e->d_tok, .seq = e->d_seq, .logits = e->d_logit};
        if (hai_decode(e->dctx, &b, NULL) != HAI_OK) { /* no drafts this step: decoding goes on without them */
            for (int i = 0; i < e->n_slots; i++) e->slots[i].n_drafts = 0;
            return;
        }
        size_t m = 0;
        active = 0;
        for (int i = 0; i < e->n_slots; i++) {
            slot *s = &e->slots[i];
            if (!s->job || !s->generating || s->draft_want <= s->n_drafts) continue;
            hai_token d = hai_logits_argmax(hai_batch_logits(e->dctx, s->pass_at), e->d_vocab);
            if (d < 0 || d >= nv) { s->draft_want = s->n_drafts; continue; } /* a token the model does not have */
            s->drafts[s->n_drafts++] = d;
            if (s->n_drafts == s->draft_want) continue;
            e->d_tok[m] = d, e->d_seq[m] = s->seq, e->d_logit[m] = true;
            s->pass_at = m++;
            active++;
        }
        n = m;
    }
}

/* A slot's rows after a pass with drafts: stepped in order as decoding would step them, a draft
 * kept only where the pick on the row before it is that draft; the cache cut back to what was
 * kept. */
static void slot_step_drafted(srv_engine *e, slot *s) {
    int32_t nv = hai_model_n_vocab(e->m);
    uint32_t n_ctx = hai_context_n_ctx(e->ctx), past = hai_seq_n_past(e->ctx, s->seq) - (uint32_t)s->pass_len;
    int nd = s->n_drafts, taken = 0;
    hai_status gst = HAI_OK;
    bool more = true;
    for (int i = 0; i <= nd; i++) {
        taken = i + 1;
        float *lg = (float *)hai_batch_logits(e->ctx, s->pass_at + (size_t)i);
        s->job->cur_logits = lg;
        s->job->n_vocab = nv;
        more = gen_step(&s->gen, lg, nv, (int64_t)n_ctx - (past + (uint32_t)i + 1), &s->next, &gst, &s->err);
        if (!more || i == nd || s->next != e->b_tok[s->pass_at + (size_t)i + 1]) break;
        s->res.n_accepted++;
    }
    s->res.n_drafted += nd;
    gen_draft_done(&s->draft, nd, taken, -1.0);
    s->n_fed += (size_t)taken;
    if (more && taken < nd + 1) {
        /* a sliding-window ring holds n_batch (512) positions past the window, so cutting back a
         * few drafts never leaves it without the window before the cut */
        hai_error err = {0};
        uint32_t want = past + (uint32_t)taken;
        hai_status st = hai_seq_truncate(e->ctx, s->seq, want, &err);
        if (!st && hai_seq_n_past(e->ctx, s->seq) < want)
            st = hai_fail(&err, HAI_ERR_INTERNAL, "server: the cache lost the window before a cut-back draft");
        if (st) gst = st, s->err = err, more = false;
    }
    if (!more) {
        s->status = gst;
        slot_end(e, s);
    }
}

/* One step: the batch built, one forward pass, then each slot's next token. */
static void step(srv_engine *e) {
    int32_t nv = hai_model_n_vocab(e->m);
    uint32_t n_ctx = hai_context_n_ctx(e->ctx);
    size_t n = 0;
    size_t decoding = 0;
    for (int i = 0; i < e->n_slots; i++) {
        slot *s = &e->slots[i];
        s->in_pass = false;
        if (!s->job) continue;
        if (s->status || job_stopped(s->job)) { /* stopped between steps */
            slot_end(e, s);
            continue;
        }
        if (s->generating) decoding++;
    }
    size_t budget = !decoding ? e->n_batch : decoding + PREFILL_CHUNK_MIN < PREFILL_STEP_BUSY ? PREFILL_STEP_BUSY - decoding : PREFILL_CHUNK_MIN;
    if (e->dctx) { /* a draft model's tokens for every slot that drafts, its passes batched over the slots */
        for (int i = 0; i < e->n_slots; i++) {
            slot *s = &e->slots[i];
            s->draft_want = s->job && s->generating ? slot_draft_len(e, s) : 0;
        }
        draft_model_step(e);
    }
    for (int i = 0; i < e->n_slots; i++) { /* the decode tokens first: the next of each generating slot, and its drafts */
        slot *s = &e->slots[i];
        if (!s->job || !s->generating) continue;
        s->pass_at = n;
        e->b_tok[n] = s->next, e->b_seq[n] = s->seq, e->b_logit[n] = true;
        if (e->dctx) memcpy(e->b_tok + n + 1, s->drafts, (size_t)s->n_drafts * sizeof *s->drafts);
        else s->n_drafts = e->draft_lookup ? slot_drafts(e, s, e->b_tok + n + 1) : 0;
        for (int d = 1; d <= s->n_drafts; d++) e->b_seq[n + (size_t)d] = s->seq, e->b_logit[n + (size_t)d] = true;
        s->pass_len = 1 + (size_t)s->n_drafts;
        n += s->pass_len;
        s->in_pass = true;
    }
    budget = budget > n - decoding ? budget - (n - decoding) : 0; /* drafts take from the prompt chunks' share */
    if (decoding && !budget) budget = PREFILL_CHUNK_MIN;
    for (int i = 0; i < e->n_slots && budget; i++) { /* then prompt chunks, slot by slot */
        slot *s = &e->slots[i];
        if (!s->job || s->generating) continue;
        size_t left = s->job->n_prompt - s->n_fed, k = left < budget ? left : budget;
        s->pass_at = n;
        s->pass_len = k;
        for (size_t t = 0; t < k; t++) e->b_tok[n + t] = s->job->prompt[s->n_fed + t], e->b_seq[n + t] = s->seq, e->b_logit[n + t] = false;
        e->b_logit[n + k - 1] = k == left; /* the prompt's last token gives the first token's logits */
        n += k;
        budget -= k;
        s->in_pass = true;
    }
    if (!n) return;
    hai_batch b = {.n = n, .tokens = e->b_tok, .seq = e->b_seq, .logits = e->b_logit};
    hai_error err = {0};
    double t0 = hai_time_s();
    hai_context_set_abort(e->ctx, pass_abort, e);
    hai_status st = hai_decode(e->ctx, &b, &err);
    hai_context_set_abort(e->ctx, NULL, NULL);
    for (int i = 0; i < e->n_slots; i++) {
        slot *s = &e->slots[i];
        if (!s->in_pass) continue;
        if (st) { /* the pass failed (cancelled: every job in it stopped): each of them ends */
            s->status = st;
            s->err = err;
            slot_end(e, s);
            continue;
        }
        if (!s->generating) {
            s->n_fed += s->pass_len;
            if (s->n_fed < s->job->n_prompt) continue; /* more of the prompt next step */
            s->res.t_prompt_s = hai_time_s() - s->job->t_start;
            s->generating = true;
        } else if (s->n_drafts) {
            slot_step_drafted(e, s);
            continue;
        } else {
            s->n_fed++;
        }
        /* the context's own row: the step may mask it for a grammar (logprobs then see the mask) */
        float *lg = (float *)hai_batch_logits(e->ctx, s->pass_at + s->pass_len - 1);
        s->job->cur_logits = lg;
        s->job->n_vocab = nv;
        hai_status gst = HAI_OK;
        if (!gen_step(&s->gen, lg, nv, (int64_t)n_ctx - hai_seq_n_past(e->ctx, s->seq), &s->next, &gst, &s->err)) {
            s->status = gst;
            slot_end(e, s);
        }
    }
    (void)t0;
}

/* A later choice of a request begins once the first one has read the prompt (less its last
 * token, which each choice reads for its own logits), so it copies it instead of reading it again;
 * at once if the first is not running (done, or cancelled). The first was submitted before it: it
 * is never behind it in the queue. */
static bool leader_ready(const srv_engine *e, const srv_job *j) {
    if (!j->leader) return true;
    for (int i = 0; i < e->n_slots; i++) {
        const slot *s = &e->slots[i];
        if (s->job == j->leader) return s->generating || s->n_fed + 1 >= j->leader->n_prompt;
        if (s->handed == j->leader) return false;
    }
    return true;
}

static void *worker(void *arg) {
    srv_engine *e = arg;
    pthread_mutex_lock(&e->mu);
    for (;;) {
        if (e->stopping) break;
        /* jobs to free slots: those handed over by submit, then the queue's oldest */
        bool active = false;
        for (int i = 0; i < e->n_slots; i++) {
            slot *s = &e->slots[i];
            if (!s->job && !s->handed && e->head) { /* a free slot takes the oldest waiting job */
                s->handed = e->head;
                e->head = s->handed->next;
                if (!e->head) e->tail = NULL;
                e->queued--;
            }
            if (!s->job && s->handed && !leader_ready(e, s->handed)) continue; /* its prompt comes from the first choice */
            if (!s->job && s->handed) {
                srv_job *j = s->handed;
                s->handed = NULL;
                s->job = j; /* counted busy from here */
                update_gauges(e);
                pthread_mutex_unlock(&e->mu);
                slot_begin(e, s, j);
                pthread_mutex_lock(&e->mu);
            }
            active |= s->job != NULL;
        }
        if (!active) {
            pthread_cond_wait(&e->cv, &e->mu);
            continue;
        }
        pthread_mutex_unlock(&e->mu);
        step(e);
        pthread_mutex_lock(&e->mu);
    }
    pthread_mutex_unlock(&e->mu);
    return NULL;
}

/* ---- submission ------------------------------------------------------------------------------- */

srv_submit srv_engine_submit(srv_engine *e, srv_job *j) {
    pthread_mutex_lock(&e->mu);
    if (e->stopping || e->draining) {
        pthread_mutex_unlock(&e->mu);
        return SUBMIT_STOPPING;
    }
    j->t_submit = hai_time_s();
    /* an idle slot, the one whose cache shares most of the prompt (the worker does not touch an
     * idle slot's sequence, so it is read here safely) */
    slot *best = NULL;
    size_t best_k = 0;
    for (int i = 0; i < e->n_slots; i++) {
        slot *s = &e->slots[i];
        if (s->job || s->handed) continue;
        size_t k = common_prefix(e->ctx, s->seq, j->prompt, j->n_prompt);
        if (!best || k > best_k) best = s, best_k = k;
    }
    pthread_mutex_lock(&j->mu);
    j->refs++;
    pthread_mutex_unlock(&j->mu);
    if (best) {
        best->handed = j;
    } else if (e->queued < e->max_queue) {
        j->next = NULL;
        if (e->tail) e->tail->next = j;
        else e->head = j;
        e->tail = j;
        e->queued++;
    } else {
        pthread_mutex_lock(&j->mu);
        j->refs--; /* not taken */
        pthread_mutex_unlock(&j->mu);
        pthread_mutex_unlock(&e->mu);
        return SUBMIT_FULL;
    }
    update_gauges(e);
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
    return SUBMIT_OK;
}

/* A job that will not run: done as "shutting down", its waiter woken. */
static void end_unrun(srv_job *j) {
    atomic_store(&j->shutdown, true);
    atomic_store(&j->cancelled, true);
    pthread_mutex_lock(&j->mu);
    j->done = true;
    j->status = HAI_ERR_CANCELLED;
    snprintf(j->error, sizeof j->error, "the server is shutting down");
    srv_job_signal(j);
    pthread_mutex_unlock(&j->mu);
    srv_job_release(j);
}

void srv_engine_drain(srv_engine *e) {
    pthread_mutex_lock(&e->mu);
    e->draining = true;
    srv_job *q = e->head;
    e->head = e->tail = NULL;
    e->queued = 0;
    update_gauges(e);
    pthread_mutex_unlock(&e->mu);
    for (srv_job *j = q, *nx; j; j = nx) {
        nx = j->next;
        end_unrun(j);
    }
}

void srv_engine_cancel_running(srv_engine *e) {
    pthread_mutex_lock(&e->mu);
    for (int i = 0; i < e->n_slots; i++) {
        srv_job *js[2] = {e->slots[i].job, e->slots[i].handed};
        for (int k = 0; k < 2; k++)
            if (js[k]) {
                atomic_store(&js[k]->shutdown, true);
                atomic_store(&js[k]->cancelled, true);
            }
    }
    pthread_mutex_unlock(&e->mu);
}

void srv_engine_load(srv_engine *e, int *queued, int *busy) {
    pthread_mutex_lock(&e->mu);
    *queued = e->queued;
    *busy = 0;
    for (int i = 0; i < e->n_slots; i++) *busy += e->slots[i].job || e->slots[i].handed;
    pthread_mutex_unlock(&e->mu);
}

uint32_t srv_engine_n_ctx(const srv_engine *e) { return hai_context_n_ctx(e->ctx); }
uint32_t srv_engine_kv_type(const srv_engine *e, uint32_t *f16_n_ctx) {
    if (f16_n_ctx) *f16_n_ctx = e->f16_n_ctx;
    return e->kv_type;
}
uint64_t srv_engine_memory_bytes(const srv_engine *e) { return hai_context_memory_bytes(e->ctx) + (e->dctx ? hai_context_memory_bytes(e->dctx) : 0); }

hai_status srv_engine_start(const hai_model *m, const srv_engine_params *p, metrics *met, srv_engine **out, hai_error *err) {
    *out = NULL;
    srv_engine *e = calloc(1, sizeof *e);
    if (!e) return hai_fail(err, HAI_ERR_NOMEM, "server: out of memory");
    e->m = m;
    e->met = met;
    e->n_slots = p->n_slots > 0 ? p->n_slots : 2;
    e->shift = p->context_shift;
    e->max_queue = p->max_queue > 0 ? p->max_queue : 4 * e->n_slots;
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv, NULL);
    hai_status st = hai_threadpool_create(p->n_threads, &e->pool, err);
    hai_context_params cp = hai_context_default_params();
    cp.n_ctx = p->n_ctx;
    cp.n_seq = (uint32_t)e->n_slots;
    cp.pool = e->pool;
    cp.n_draft = (uint32_t)(p->draft_lookup < SRV_MAX_DRAFT ? p->draft_lookup : SRV_MAX_DRAFT);
    if (cp.n_draft && (uint32_t)e->n_slots * (cp.n_draft + 1) > 512) cp.n_batch = (uint32_t)e->n_slots * (cp.n_draft + 1); /* a step's rows */
    cp.kv_type = p->kv_type;
    uint64_t left = hai_model_budget_left(m);
    if (!st && left != UINT64_MAX) { /* a memory budget: the largest slots it leaves room for (up to n_ctx), and the KV type */
        /* the draft model's slots beside (planned with the drafts' rows their context does without) */
        uint32_t n = hai_context_fit_kv(m, p->draft_model, &cp, left, &e->f16_n_ctx);
        if (!n)
            st = hai_fail(err, HAI_ERR_LIMIT, "server: the memory budget leaves %.1f MiB after the weights%s: not enough for %d slots of any context",
                          left / 1048576.0, p->draft_model ? " and the draft's" : "", e->n_slots);
        else if (p->n_ctx && n < p->n_ctx) /* the context asked for: hai_context_create says what fits */
            cp.n_ctx = p->n_ctx, cp.kv_type = p->kv_type;
    }
    e->kv_type = cp.kv_type ? cp.kv_type : HAI_TYPE_F16;
    if (!st) st = hai_context_create(m, &cp, &e->ctx, err);
    e->n_batch = 512;
    e->draft_lookup = p->draft_lookup < SRV_MAX_DRAFT ? p->draft_lookup : SRV_MAX_DRAFT;
    size_t nb = e->n_batch + (size_t)e->n_slots * (1 + (size_t)e->draft_lookup);
    if (!st && p->draft_model) { /* a sequence per slot, on the same threads */
        hai_context_params dp = cp;
        dp.n_ctx = hai_context_n_ctx(e->ctx);
        dp.n_draft = 0;
        st = hai_context_create(p->draft_model, &dp, &e->dctx, err);
        size_t dn = (size_t)e->n_slots * ((size_t)dp.n_ctx + 1);
        e->d_vocab = hai_model_n_vocab(p->draft_model);
        e->d_tok = malloc(dn * sizeof *e->d_tok);
        e->d_seq = malloc(dn * sizeof *e->d_seq);
        e->d_logit = malloc(dn * sizeof *e->d_logit);
        if (!st && (!e->d_tok || !e->d_seq || !e->d_logit)) st = hai_fail(err, HAI_ERR_NOMEM, "server: out of memory");
    }
    e->slots = calloc((size_t)e->n_slots, sizeof *e->slots);
    e->b_tok = malloc(nb * sizeof *e->b_tok);
    e->b_seq = malloc(nb * sizeof *e->b_seq);
    e->b_logit = malloc(nb * sizeof *e->b_logit);
    if (!st && (!e->slots || !e->b_tok || !e->b_seq || !e->b_logit)) st = hai_fail(err, HAI_ERR_NOMEM, "server: out of memory");
    for (int i = 0; !st && i < e->n_slots; i++) e->slots[i].seq = i;
    if (!st && pthread_create(&e->th, NULL, worker, e) != 0) st = hai_fail(err, HAI_ERR_NOMEM, "server: cannot start the worker thread");
    if (!st) e->th_started = true;
    if (st) {
        srv_engine_stop(e);
        return st;
    }
    *out = e;
    return HAI_OK;
}

void srv_engine_stop(srv_engine *e) {
    if (!e) return;
    pthread_mutex_lock(&e->mu);
    e->stopping = true;
    for (int i = 0; e->slots && i < e->n_slots; i++) {
        srv_job *js[2] = {e->slots[i].job, e->slots[i].handed};
        for (int k = 0; k < 2; k++)
            if (js[k]) atomic_store(&js[k]->cancelled, true);
    }
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
    if (e->th_started) pthread_join(e->th, NULL);
    /* what the worker left: running jobs end as cancelled, waiting ones as never run */
    for (int i = 0; e->slots && i < e->n_slots; i++) {
        slot *s = &e->slots[i];
        if (s->job) {
            if (!s->status) s->status = HAI_ERR_CANCELLED;
            slot_end(e, s);
        }
        if (s->handed) end_unrun(s->handed);
    }
    for (srv_job *j = e->head, *nx; j; j = nx) {
        nx = j->next;
        end_unrun(j);
    }
    hai_context_free(e->ctx);
    free(e->slots);
    free(e->b_tok);
    free(e->b_seq);
    free(e->b_logit);
    hai_context_free(e->dctx);
    free(e->d_tok), free(e->d_seq), free(e->d_logit);
    hai_threadpool_free(e->pool);
    pthread_cond_destroy(&e->cv);
    pthread_mutex_destroy(&e->mu);
    free(e);
}
