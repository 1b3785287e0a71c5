/* Slots, queue and workers of the server (see engine.h). */
#include "engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../error.h"

typedef struct slot {
    srv_engine *e;
    hai_context *c;
    pthread_t th;
    pthread_cond_t cv;
    srv_job *job;     /* handed over by submit while idle */
    srv_job *running; /* the job run_job is on (under e->mu), for cancellation at shutdown */
    bool busy;
} slot;

struct srv_engine {
    const hai_model *m;
    hai_threadpool *pool;
    metrics *met;
    int n_slots, max_queue;
    slot *slots;
    pthread_mutex_t mu;
    srv_job *head, *tail;
    int queued;
    bool draining; /* no new jobs (shutdown) */
    bool stopping; /* workers exit */
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

srv_job *srv_job_new(void) {
    srv_job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    atomic_init(&j->cancelled, false);
    atomic_init(&j->shutdown, false);
    j->refs = 1;
    return j;
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
    free(j->text);
    free(j->tokens);
    free(j->route_json);
    for (size_t i = 0; j->stop_owned && j->stop_owned[i]; i++) free(j->stop_owned[i]);
    free(j->stop_owned);
    free(j);
}

/* ---- running a job -------------------------------------------------------------------------- */

static bool on_text(void *user, const char *text, size_t len) {
    srv_job *j = user;
    pthread_mutex_lock(&j->mu);
    if (j->text_cap - j->text_len < len + 1) {
        size_t cap = j->text_cap ? j->text_cap * 2 : 1024;
        while (cap - j->text_len < len + 1) cap *= 2;
        char *p = realloc(j->text, cap);
        if (!p) {
            pthread_mutex_unlock(&j->mu);
            return false;
        }
        j->text = p;
        j->text_cap = cap;
    }
    memcpy(j->text + j->text_len, text, len);
    j->text_len += len;
    j->text[j->text_len] = '\0';
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    bool late = j->deadline > 0 && now_s() > j->deadline;
    return !atomic_load(&j->cancelled) && !late;
}

static void on_token(void *user, hai_token t) {
    srv_job *j = user;
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

static bool should_abort(void *user) {
    srv_job *j = user;
    return atomic_load(&j->cancelled) || (j->deadline > 0 && now_s() > j->deadline);
}

static void update_gauges(srv_engine *e) {
    int busy = 0;
    for (int i = 0; i < e->n_slots; i++) busy += e->slots[i].busy;
    metrics_gauges(e->met, e->queued, busy);
}

static void run_job(slot *s, srv_job *j) {
    srv_engine *e = s->e;
    hai_error err = {0};
    hai_status st = HAI_OK;
    pthread_mutex_lock(&j->mu);
    j->started = true;
    j->t_start = now_s();
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    hai_sampler *sm = NULL;
    if (atomic_load(&j->cancelled)) {
        st = hai_fail(&err, HAI_ERR_CANCELLED, "cancelled before it started");
    } else if (!j->greedy) {
        st = hai_sampler_create(&j->sp, hai_model_n_vocab(e->m), &sm, &err);
    }
    hai_generate_result res = {0};
    if (!st) {
        hai_context_set_abort(s->c, should_abort, j);
        hai_generate_params gp = {.max_tokens = j->max_tokens, .stop = j->stop, .n_stop = j->n_stop, .sampler = sm,
                                  .on_text = on_text, .on_token = on_token, .user = j};
        st = hai_generate(s->c, j->prompt, j->n_prompt, &gp, &res, &err);
        hai_context_set_abort(s->c, NULL, NULL);
        if (st == HAI_ERR_CANCELLED) {
            /* a cancelled prefill leaves positions the cache cannot vouch for: start clean */
            hai_context_truncate(s->c, 0, NULL);
        }
        if (!st && (atomic_load(&j->cancelled) || (j->deadline > 0 && now_s() > j->deadline)))
            st = hai_fail(&err, HAI_ERR_CANCELLED, j->deadline > 0 && now_s() > j->deadline ? "request timed out" : "cancelled");
        if (st == HAI_ERR_CANCELLED && atomic_load(&j->shutdown)) hai_fail(&err, HAI_ERR_CANCELLED, "the server is shutting down");
    }
    hai_sampler_free(sm);
    /* the slot is free before the client hears the job is done: its next request (the next turn
       of the conversation) must find this slot's cache idle, not race the worker for it */
    pthread_mutex_lock(&e->mu);
    s->busy = false;
    update_gauges(e);
    pthread_mutex_unlock(&e->mu);
    if (!st) {
        double per_tok = res.n_generated > 1 ? res.t_generate_s / (res.n_generated - 1) : -1;
        metrics_tokens(e->met, res.n_prompt, res.n_generated, j->t_start - j->t_submit + res.t_first_token_s, per_tok);
    }
    pthread_mutex_lock(&j->mu);
    j->res = res;
    j->status = st;
    if (st) snprintf(j->error, sizeof j->error, "%s", err.msg);
    j->done = true;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

static void *worker(void *arg) {
    slot *s = arg;
    srv_engine *e = s->e;
    pthread_mutex_lock(&e->mu);
    for (;;) {
        while (!s->job && !e->head && !e->stopping) pthread_cond_wait(&s->cv, &e->mu);
        if (e->stopping) break;
        srv_job *j = s->job;
        if (!j) { /* take the oldest waiting job */
            j = e->head;
            e->head = j->next;
            if (!e->head) e->tail = NULL;
            e->queued--;
        }
        s->job = NULL;
        s->busy = true;
        s->running = j;
        update_gauges(e);
        pthread_mutex_unlock(&e->mu);
        run_job(s, j);
        pthread_mutex_lock(&e->mu);
        s->running = NULL;
        pthread_mutex_unlock(&e->mu);
        srv_job_release(j);
        pthread_mutex_lock(&e->mu);
    }
    pthread_mutex_unlock(&e->mu);
    return NULL;
}

/* ---- submission ------------------------------------------------------------------------------- */

static size_t common_prefix(const hai_context *c, const hai_token *p, size_t n) {
    uint32_t held;
    const hai_token *t = hai_context_tokens(c, &held);
    size_t k = 0;
    while (k < held && k < n && t[k] == p[k]) k++;
    return k;
}

srv_submit srv_engine_submit(srv_engine *e, srv_job *j) {
    pthread_mutex_lock(&e->mu);
    if (e->stopping || e->draining) {
        pthread_mutex_unlock(&e->mu);
        return SUBMIT_STOPPING;
    }
    j->t_submit = now_s();
    /* an idle slot, the one whose cache shares most of the prompt */
    slot *best = NULL;
    size_t best_k = 0;
    for (int i = 0; i < e->n_slots; i++) {
        slot *s = &e->slots[i];
        if (s->busy || s->job) continue;
        size_t k = common_prefix(s->c, j->prompt, j->n_prompt);
        if (!best || k > best_k) best = s, best_k = k;
    }
    pthread_mutex_lock(&j->mu);
    j->refs++;
    pthread_mutex_unlock(&j->mu);
    if (best) {
        best->job = j;
        pthread_cond_signal(&best->cv);
    } else if (e->queued < e->max_queue) {
        j->next = NULL;
        if (e->tail) e->tail->next = j;
        else e->head = j;
        e->tail = j;
        e->queued++;
        update_gauges(e);
    } else {
        pthread_mutex_lock(&j->mu);
        j->refs--; /* not taken */
        pthread_mutex_unlock(&j->mu);
        pthread_mutex_unlock(&e->mu);
        return SUBMIT_FULL;
    }
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
    pthread_cond_broadcast(&j->cv);
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
        srv_job *j = e->slots[i].running ? e->slots[i].running : e->slots[i].job;
        if (!j) continue;
        atomic_store(&j->shutdown, true);
        atomic_store(&j->cancelled, true);
    }
    pthread_mutex_unlock(&e->mu);
}

void srv_engine_load(srv_engine *e, int *queued, int *busy) {
    pthread_mutex_lock(&e->mu);
    *queued = e->queued;
    *busy = 0;
    for (int i = 0; i < e->n_slots; i++) *busy += e->slots[i].busy || e->slots[i].job;
    pthread_mutex_unlock(&e->mu);
}

uint32_t srv_engine_n_ctx(const srv_engine *e) { return hai_context_n_ctx(e->slots[0].c); }

hai_status srv_engine_start(const hai_model *m, const srv_engine_params *p, metrics *met, srv_engine **out, hai_error *err) {
    *out = NULL;
    srv_engine *e = calloc(1, sizeof *e);
    if (!e) return hai_fail(err, HAI_ERR_NOMEM, "server: out of memory");
    e->m = m;
    e->met = met;
    e->n_slots = p->n_slots > 0 ? p->n_slots : 2;
    e->max_queue = p->max_queue > 0 ? p->max_queue : 4 * e->n_slots;
    pthread_mutex_init(&e->mu, NULL);
    hai_status st = hai_threadpool_create(p->n_threads, &e->pool, err);
    e->slots = calloc((size_t)e->n_slots, sizeof *e->slots);
    if (!st && !e->slots) st = hai_fail(err, HAI_ERR_NOMEM, "server: out of memory");
    for (int i = 0; !st && i < e->n_slots; i++) {
        slot *s = &e->slots[i];
        s->e = e;
        pthread_cond_init(&s->cv, NULL);
        hai_context_params cp = hai_context_default_params();
        cp.n_ctx = p->n_ctx;
        cp.pool = e->pool;
        st = hai_context_create(m, &cp, &s->c, err);
        if (!st && pthread_create(&s->th, NULL, worker, s) != 0) {
            st = hai_fail(err, HAI_ERR_NOMEM, "server: cannot start a worker thread");
            hai_context_free(s->c);
            s->c = NULL;
        }
    }
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
    for (srv_job *j = e->head; j; j = j->next) atomic_store(&j->cancelled, true);
    for (int i = 0; e->slots && i < e->n_slots; i++) pthread_cond_signal(&e->slots[i].cv);
    pthread_mutex_unlock(&e->mu);
    for (int i = 0; e->slots && i < e->n_slots; i++) {
        slot *s = &e->slots[i];
        if (s->c) {
            pthread_join(s->th, NULL);
            hai_context_free(s->c);
        }
        pthread_cond_destroy(&s->cv);
    }
    /* jobs still queued or handed over and never started: finish them so their waiters wake */
    for (srv_job *j = e->head, *nx; j; j = nx) {
        nx = j->next;
        end_unrun(j);
    }
    for (int i = 0; e->slots && i < e->n_slots; i++)
        if (e->slots[i].job) end_unrun(e->slots[i].job);
    free(e->slots);
    hai_threadpool_free(e->pool);
    pthread_mutex_destroy(&e->mu);
    free(e);
}
