/* Executing routing decisions (see hybrid.h). */
#include "hybrid.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/error.h"
#include "base/text.h"

struct hybrid {
    hybrid_config cfg;          /* owned copy */
    router_policy policy;
    pii_scanner *scan;
    cloud *cloud;
    const hai_model *m;
    pthread_mutex_t mu;         /* budget and speed estimates */
    long day;                   /* the UTC day the budget counts */
    int64_t tokens_spent;
    double cost_spent;
    double prefill_tps, decode_tps;
};

/* A copy of a list of n strings; NULL when out of memory (nothing half-copied is left). */
static char **dup_list(char **v, size_t n) {
    char **o = calloc(n + 1, sizeof *o);
    for (size_t i = 0; o && i < n; i++)
        if (!(o[i] = strdup(v[i]))) {
            while (i--) free(o[i]);
            free(o);
            return NULL;
        }
    return o;
}

hai_status hybrid_create(const hybrid_config *cfg, const hai_model *m, uint32_t local_ctx, hybrid **out, hai_error *err) {
    *out = NULL;
    hybrid *h = calloc(1, sizeof *h);
    if (!h) return hai_fail(err, HAI_ERR_NOMEM, "router: out of memory");
    h->cfg = *cfg;
    h->cfg.patterns = dup_list(cfg->patterns, cfg->n_patterns);
    h->cfg.keywords = dup_list(cfg->keywords, cfg->n_keywords);
    if (!h->cfg.patterns || !h->cfg.keywords) { /* a policy without its patterns would let their data go */
        if (!h->cfg.patterns) h->cfg.n_patterns = 0;
        if (!h->cfg.keywords) h->cfg.n_keywords = 0;
        h->scan = NULL;
        hybrid_config_free(&h->cfg);
        free(h);
        return hai_fail(err, HAI_ERR_NOMEM, "router: out of memory");
    }
    h->policy = cfg->policy;
    h->policy.local_ctx = local_ctx;
    h->m = m;
    pthread_mutex_init(&h->mu, NULL);
    h->day = (long)(time(NULL) / 86400);
    hai_status st = pii_scanner_create((const char *const *)h->cfg.patterns, h->cfg.n_patterns, (const char *const *)h->cfg.keywords,
                                       h->cfg.n_keywords, &h->scan, err);
    if (!st && cfg->has_cloud) st = cloud_create(&cfg->cloud, &h->cloud, err);
    if (st) {
        hybrid_free(h);
        return st;
    }
    *out = h;
    return HAI_OK;
}

void hybrid_free(hybrid *h) {
    if (!h) return;
    pii_scanner_free(h->scan);
    cloud_free(h->cloud);
    hybrid_config_free(&h->cfg);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

const router_policy *hybrid_policy(const hybrid *h) { return &h->policy; }
const char *hybrid_cloud_model(const hybrid *h) { return h->cfg.has_cloud ? h->cfg.cloud.model : NULL; }

/* ---- personal data inside JSON (tool calls' arguments, tools, response_format) -------------------- */

/* fn on every string of a JSON value, and on every object key (str NULL, key set: keys are read, never rewritten). */
typedef bool (*jstr_fn)(void *u, cJSON *str, const char *key);
static bool each_string(cJSON *v, jstr_fn fn, void *u) {
    if (cJSON_IsString(v)) return fn(u, v, NULL);
    cJSON *c;
    cJSON_ArrayForEach(c, v) {
        if (cJSON_IsObject(v) && c->string && !fn(u, NULL, c->string)) return false;
        if (!each_string(c, fn, u)) return false;
    }
    return true;
}

/* fn on every string of each call's arguments in an OpenAI tool_calls array (JSON text): the
 * arguments' JSON decoded (so an escaped address is found as the address), or, when they are not
 * JSON, the arguments text as one string. The array with the arguments written back (malloc'd),
 * or NULL (out of memory, or fn said stop). */
static char *each_call_string(const char *tool_calls, jstr_fn fn, void *u) {
    cJSON *calls = cJSON_Parse(tool_calls), *c;
    bool ok = calls != NULL;
    cJSON_ArrayForEach(c, calls) {
        cJSON *a = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(c, "function"), "arguments");
        if (!ok || !cJSON_IsString(a)) continue;
        cJSON *j = cJSON_Parse(a->valuestring);
        if (!j) { /* not JSON: the text itself */
            ok = fn(u, a, NULL);
            continue;
        }
        char *back = NULL;
        ok = each_string(j, fn, u) && (back = cJSON_PrintUnformatted(j)) && cJSON_SetValuestring(a, back);
        free(back);
        cJSON_Delete(j);
    }
    char *out = ok ? cJSON_PrintUnformatted(calls) : NULL;
    cJSON_Delete(calls);
    return out;
}

typedef struct jscan {     /* counting what a scan of JSON strings finds */
    const pii_scanner *scan;
    router_features *f;
    hybrid_plan *plan;
    const char *where;
    bool verbatim;         /* found here, it would leave as it is (no placeholder can stand in) */
} jscan;

static bool scan_one(void *u, cJSON *str, const char *key) {
    jscan *js = u;
    const char *t = str ? str->valuestring : key;
    pii_scan_result sr;
    pii_scan(js->scan, t, strlen(t), &sr);
    for (int c = 0; c < PII_COUNT; c++) {
        js->f->pii[c] += sr.count[c];
        if (js->verbatim || key) js->f->pii_verbatim[c] += sr.count[c]; /* keys are not rewritten */
    }
    if (sr.incomplete && !js->f->pii_incomplete) {
        js->f->pii_incomplete = true;
        snprintf(js->plan->scan_why, sizeof js->plan->scan_why, "%s: %s", js->where, sr.why);
    }
    pii_scan_result_free(&sr);
    return true;
}

/* The JSON text's strings scanned; text that is not JSON counts as a scan that could not finish. */
static void scan_json(jscan *js, const char *json) {
    cJSON *j = cJSON_Parse(json);
    if (!j) {
        js->f->pii_incomplete = true;
        snprintf(js->plan->scan_why, sizeof js->plan->scan_why, "%s: not JSON (or out of memory)", js->where);
        return;
    }
    each_string(j, scan_one, js);
    cJSON_Delete(j);
}

typedef struct jredact {   /* replacing personal data in JSON strings, with the request's map */
    const pii_scanner *scan;
    const pii_action *act;
    pii_map *map;
} jredact;

static bool redact_one(void *u, cJSON *str, const char *key) {
    jredact *jr = u;
    if (!str) return true; /* keys were judged verbatim at planning */
    pii_scan_result sr;
    pii_scan(jr->scan, str->valuestring, strlen(str->valuestring), &sr);
    char *t = sr.incomplete ? NULL : pii_redact(str->valuestring, strlen(str->valuestring), sr.spans, sr.n, jr->act, jr->map);
    bool ok = t && cJSON_SetValuestring(str, t);
    free(t);
    pii_scan_result_free(&sr);
    (void)key;
    return ok; /* a scan that cannot finish now sends nothing (it finished at planning: fail closed) */
}

static bool restore_one(void *u, cJSON *str, const char *key) {
    (void)key;
    if (!str) return true;
    size_t n;
    char *t = pii_restore(str->valuestring, strlen(str->valuestring), u, &n);
    bool ok = t && cJSON_SetValuestring(str, t);
    free(t);
    return ok;
}

/* ---- planning ----------------------------------------------------------------------------------- */

hai_status hybrid_plan_request(hybrid *h, const hybrid_request *r, hybrid_plan *plan, hai_error *err) {
    memset(plan, 0, sizeof *plan);
    router_features *f = &plan->f;
    if (r->n_msgs && !(plan->scans = calloc(r->n_msgs, sizeof *plan->scans))) return hai_fail(err, HAI_ERR_NOMEM, "router: out of memory");
    plan->n_scans = r->n_msgs;
    for (size_t i = 0; i < r->n_msgs; i++) { /* the role is the template's word, the content the user's */
        pii_scan_result *sr = &plan->scans[i];
        pii_scan(h->scan, r->msgs[i].content, strlen(r->msgs[i].content), sr);
        for (int c = 0; c < PII_COUNT; c++) f->pii[c] += sr->count[c];
        if (sr->incomplete && !f->pii_incomplete) {
            f->pii_incomplete = true;
            snprintf(plan->scan_why, sizeof plan->scan_why, "message %zu: %s", i, sr->why);
        }
    }
    for (size_t i = 0; i < r->n_stop; i++) { /* stop strings go to the cloud as they are: scanned too */
        pii_scan_result sr;
        pii_scan(h->scan, r->stop[i], strlen(r->stop[i]), &sr);
        for (int c = 0; c < PII_COUNT; c++) f->pii[c] += sr.count[c], f->pii_verbatim[c] += sr.count[c];
        if (sr.incomplete && !f->pii_incomplete) {
            f->pii_incomplete = true;
            snprintf(plan->scan_why, sizeof plan->scan_why, "stop[%zu]: %s", i, sr.why);
        }
        pii_scan_result_free(&sr);
    }
    /* tool calls' arguments go out redacted like messages; tools and response_format as they are */
    for (size_t i = 0; i < r->n_msgs; i++) {
        if (!r->msgs[i].tool_calls) continue;
        char where[64];
        snprintf(where, sizeof where, "message %zu's tool calls", i);
        jscan js = {h->scan, f, plan, where, false};
        char *back = each_call_string(r->msgs[i].tool_calls, scan_one, &js);
        if (!back && !f->pii_incomplete) {
            f->pii_incomplete = true;
            snprintf(plan->scan_why, sizeof plan->scan_why, "%s: not JSON (or out of memory)", where);
        }
        free(back);
    }
    if (r->tools) scan_json(&(jscan){h->scan, f, plan, "tools", true}, r->tools);
    if (r->response_format) scan_json(&(jscan){h->scan, f, plan, "response_format", true}, r->response_format);
    f->tools = r->tools != NULL;
    f->tools_template = r->tools_template;
    hai_status st = HAI_OK;
    if (r->prompt) {
        if (!(plan->prompt = malloc((r->n_prompt ? r->n_prompt : 1) * sizeof *plan->prompt))) st = hai_fail(err, HAI_ERR_NOMEM, "router: out of memory");
        else memcpy(plan->prompt, r->prompt, r->n_prompt * sizeof *plan->prompt), plan->n_prompt = r->n_prompt;
    } else {
        st = hai_chat_tokenize(h->m, NULL, r->msgs, r->n_msgs, &plan->prompt, &plan->n_prompt, err);
    }
    if (st) {
        hybrid_plan_free(plan);
        return st;
    }
    f->n_prompt_tokens = (int32_t)plan->n_prompt;
    f->max_tokens = r->max_tokens;
    f->model = r->model;
    f->deadline_ms = r->deadline_ms;
    router_state *s = &plan->s;
    s->online = h->cloud ? cloud_online(h->cloud) : false;
    s->circuit_open = h->cloud ? cloud_circuit_open(h->cloud) : false;
    pthread_mutex_lock(&h->mu);
    long day = (long)(time(NULL) / 86400);
    if (day != h->day) { /* a new day: a fresh budget */
        h->day = day;
        h->tokens_spent = 0;
        h->cost_spent = 0;
    }
    s->tokens_spent = h->tokens_spent;
    s->cost_spent = h->cost_spent;
    s->local_prefill_tps = h->prefill_tps;
    s->local_decode_tps = h->decode_tps;
    plan->d = router_decide(f, &h->policy, s);
    if (plan->d.reserve_tokens) { /* set aside the worst case now, settle the real count later */
        h->tokens_spent += plan->d.reserve_tokens;
        h->cost_spent += plan->d.reserve_tokens * h->policy.cost_per_1k_tokens / 1000.0;
    }
    pthread_mutex_unlock(&h->mu);
    return HAI_OK;
}

static void settle(hybrid *h, int64_t reserved, int64_t used) {
    pthread_mutex_lock(&h->mu);
    h->tokens_spent += used - reserved;
    h->cost_spent += (used - reserved) * h->policy.cost_per_1k_tokens / 1000.0;
    pthread_mutex_unlock(&h->mu);
}

void hybrid_plan_free(hybrid_plan *plan) {
    free(plan->prompt);
    plan->prompt = NULL;
    for (size_t i = 0; i < plan->n_scans; i++) pii_scan_result_free(&plan->scans[i]);
    free(plan->scans);
    plan->scans = NULL;
    plan->n_scans = 0;
}

void hybrid_plan_cancel(hybrid *h, hybrid_plan *plan) {
    if (plan->d.reserve_tokens) settle(h, plan->d.reserve_tokens, 0);
    plan->d.reserve_tokens = 0;
    hybrid_plan_free(plan);
}


static void learn_speed(hybrid *h, const hai_generate_result *g) {
    pthread_mutex_lock(&h->mu);
    if (g->n_prompt >= 8 && g->t_prompt_s > 0) {
        double v = g->n_prompt / g->t_prompt_s;
        h->prefill_tps = h->prefill_tps > 0 ? 0.8 * h->prefill_tps + 0.2 * v : v;
    }
    if (g->n_generated > 4 && g->t_generate_s > 0) {
        double v = (g->n_generated - 1) / g->t_generate_s;
        h->decode_tps = h->decode_tps > 0 ? 0.8 * h->decode_tps + 0.2 * v : v;
    }
    pthread_mutex_unlock(&h->mu);
}

/* ---- execution --------------------------------------------------------------------------------- */

/* Text held back from the user (cascade drafts, partial placeholders), plus the tokens behind it. */
typedef struct buf {
    hai_text s;    /* oom: something could not be held (text or token): what is here is incomplete */
    hai_token *t;
    size_t nt, tcap;
} buf;

static bool buf_add(buf *b, const char *s, size_t n) { return text_put(&b->s, s, n); }

static bool hold_text(void *u, const char *s, size_t n) { return buf_add(u, s, n); }
static void hold_token(void *u, hai_token t) {
    buf *b = u;
    if (b->nt == b->tcap) {
        size_t cap = b->tcap ? 2 * b->tcap : 64;
        hai_token *p = realloc(b->t, cap * sizeof *p);
        if (!p) {
            b->s.oom = true;
            return;
        }
        b->t = p;
        b->tcap = cap;
    }
    b->t[b->nt++] = t;
}

typedef struct fwd {           /* counts what reached the user */
    const hybrid_request *r;
    size_t shown;
    buf pend;                  /* cloud text waiting for placeholder restoration */
    const pii_map *map;
    buf all;                   /* everything the cloud said (restored), for continuing locally */
} fwd;

static bool show(fwd *w, const char *s, size_t n) {
    if (!n) return true;
    w->shown += n;
    return w->r->on_text(w->r->user, s, n);
}

static bool local_text(void *u, const char *s, size_t n) {
    fwd *w = u;
    bool go = show(w, s, n);
    return go && !(w->r->cancel && atomic_load(w->r->cancel));
}

/* Cloud text: placeholders restored as soon as they are whole. */
static bool cloud_text(void *u, const char *s, size_t n) {
    fwd *w = u;
    if (!buf_add(&w->pend, s, n)) return false;
    if (!w->map || !w->map->n) {
        buf_add(&w->all, w->pend.s.p, w->pend.s.n);
        bool go = show(w, w->pend.s.p, w->pend.s.n);
        w->pend.s.n = 0;
        return go;
    }
    size_t keep = pii_restore_holdback(w->pend.s.p, w->pend.s.n, w->map), out_len;
    char *restored = pii_restore(w->pend.s.p, w->pend.s.n - keep, w->map, &out_len);
    if (!restored) return false;
    memmove(w->pend.s.p, w->pend.s.p + w->pend.s.n - keep, keep);
    w->pend.s.n = keep;
    buf_add(&w->all, restored, out_len);
    bool go = show(w, restored, out_len);
    free(restored);
    return go;
}

static void cloud_flush(fwd *w) {
    if (!w->pend.s.n) return;
    size_t out_len;
    char *restored = w->map && w->map->n ? pii_restore(w->pend.s.p, w->pend.s.n, w->map, &out_len) : NULL;
    if (restored) {
        buf_add(&w->all, restored, out_len);
        show(w, restored, out_len);
        free(restored);
    } else {
        buf_add(&w->all, w->pend.s.p, w->pend.s.n);
        show(w, w->pend.s.p, w->pend.s.n);
    }
    w->pend.s.n = 0;
}

static hai_status run_local(hybrid *h, const hybrid_request *r, const hybrid_local *local, const hai_token *prompt, size_t n,
                            int32_t max_tokens, bool (*text)(void *, const char *, size_t), void (*tok)(void *, hai_token),
                            void *user, hai_generate_result *g, hai_error *err) {
    hybrid_gen gen = {.prompt = prompt, .n = n, .max_tokens = max_tokens, .sp = &r->sp, .greedy = r->greedy, .stop = r->stop,
                      .n_stop = r->n_stop, .on_text = text, .on_token = tok, .user = user, .cancel = r->cancel,
                      .grammar = r->grammar, .trigger = r->trigger, .special_text = r->special_text};
    memset(g, 0, sizeof *g);
    hai_status st = local->generate(local->user, &gen, g, err);
    if (!st) learn_speed(h, g);
    return st;
}

/* A prompt too long for the device keeps its start token (BOS) and its most recent tokens. */
static size_t truncate_prompt(hai_token *p, size_t n, uint32_t ctx, int32_t want_out) {
    size_t room = ctx > (uint32_t)(want_out > 0 ? want_out : 64) + 8 ? ctx - (uint32_t)(want_out > 0 ? want_out : 64) : ctx / 2;
    if (n <= room) return n;
    memmove(p + 1, p + n - (room - 1), (room - 1) * sizeof *p);
    return room;
}

/* Continues an answer on the device after the cloud stopped part-way: the prompt is the chat
 * so far with the partial answer already in the assistant's turn. */
static hai_status continue_locally(hybrid *h, const hybrid_request *r, const hybrid_local *local, hybrid_plan *plan, const char *partial,
                                   size_t plen, fwd *w, hai_generate_result *g, hai_error *err) {
    size_t n2 = 0;
    hai_token *more = NULL, *p = NULL;
    hai_status st = hai_tokenize_alloc(hai_model_tokenizer(h->m), partial, plen, 0, &more, &n2, err);
    if (!st && !(p = malloc((plan->n_prompt + n2 + 1) * sizeof *p))) st = hai_fail(err, HAI_ERR_NOMEM, "router: out of memory");
    if (!st) {
        memcpy(p, plan->prompt, plan->n_prompt * sizeof *p);
        if (n2) memcpy(p + plan->n_prompt, more, n2 * sizeof *p);
    }
    free(more);
    if (st) return st;
    size_t n = plan->n_prompt + n2;
    if (!st) n = truncate_prompt(p, n, h->policy.local_ctx, r->max_tokens);
    int32_t left = r->max_tokens > 0 ? r->max_tokens - (int32_t)n2 : 0;
    if (!st && r->max_tokens > 0 && left <= 0) { /* the cloud's part already used the whole answer */
        g->finish = HAI_FINISH_LENGTH;
        free(p);
        return HAI_OK;
    }
    hybrid_request free_form = *r; /* a grammar would expect the answer's start, which the cloud wrote */
    free_form.grammar = NULL;
    free_form.trigger = (hai_grammar_trigger){0};
    if (!st) st = run_local(h, &free_form, local, p, n, left, local_text, NULL, w, g, err);
    free(p);
    return st;
}

/* A call of the cloud's: shown whole, in the form the caller reads ("<tool_call>" JSON), after
 * the text before it, its arguments' placeholders put back inside the JSON (so a restored value
 * is escaped as JSON). */
static bool cloud_call(void *u, const char *name, const char *args, size_t len) {
    fwd *w = u;
    cloud_flush(w);
    cJSON *call = cJSON_CreateObject(), *a = NULL;
    char *text = malloc(len + 1);
    if (text) memcpy(text, args, len), text[len] = '\0';
    if (text && !(a = cJSON_Parse(text))) a = cJSON_CreateString(text); /* not JSON: kept as the text it is */
    bool ok = call && a && cJSON_AddStringToObject(call, "name", name);
    if (ok) ok = cJSON_AddItemToObject(call, "arguments", a), a = NULL;
    if (ok && w->map && w->map->n) {
        ok = each_string(cJSON_GetObjectItemCaseSensitive(call, "arguments"), restore_one, (void *)w->map);
        cJSON *nm = cJSON_GetObjectItemCaseSensitive(call, "name");
        ok = ok && restore_one((void *)w->map, nm, NULL);
    }
    char *j = ok ? cJSON_PrintUnformatted(call) : NULL;
    cJSON_Delete(call);
    cJSON_Delete(a);
    free(text);
    if (!j) return false;
    bool go = true;
    const char *parts[] = {w->all.s.n ? "\n<tool_call>\n" : "<tool_call>\n", j, "\n</tool_call>"};
    for (int i = 0; i < 3 && go; i++) {
        buf_add(&w->all, parts[i], strlen(parts[i]));
        go = show(w, parts[i], strlen(parts[i]));
    }
    free(j);
    return go && !(w->r->cancel && atomic_load(w->r->cancel));
}

static hai_status go_cloud(hybrid *h, const hybrid_request *r, hybrid_plan *plan, fwd *w, pii_map *map, cloud_result *cr) {
    memset(cr, 0, sizeof *cr); /* a request that cannot be prepared never reaches cloud_chat, which would clear it */
    hai_chat_message *msgs = calloc(r->n_msgs ? r->n_msgs : 1, sizeof *msgs);
    char **owned = calloc(r->n_msgs ? r->n_msgs : 1, sizeof *owned);
    hai_status st = HAI_OK;
    if (!msgs || !owned) st = HAI_ERR_NOMEM;
    pii_action act[PII_COUNT];
    for (int c = 0; c < PII_COUNT; c++) act[c] = h->policy.privacy[c];
    /* the plan's own scans say what to replace: the text that leaves is the text that was judged */
    if (!st && (plan->n_scans != r->n_msgs || plan->f.pii_incomplete)) st = HAI_ERR_INVALID;
    char **owned_calls = calloc(r->n_msgs ? r->n_msgs : 1, sizeof *owned_calls);
    if (!owned_calls) st = HAI_ERR_NOMEM;
    for (size_t i = 0; !st && i < r->n_msgs; i++) {
        msgs[i] = r->msgs[i];
        if (!plan->d.redact) continue;
        const pii_scan_result *sr = &plan->scans[i];
        if (!(owned[i] = pii_redact(r->msgs[i].content, strlen(r->msgs[i].content), sr->spans, sr->n, act, map))) st = HAI_ERR_NOMEM;
        else msgs[i].content = owned[i];
        /* the calls' arguments: each string value redacted, the JSON written again */
        jredact jr = {h->scan, act, map};
        if (!st && r->msgs[i].tool_calls && !(owned_calls[i] = each_call_string(r->msgs[i].tool_calls, redact_one, &jr))) st = HAI_ERR_INVALID;
        else if (!st && r->msgs[i].tool_calls) msgs[i].tool_calls = owned_calls[i];
    }
    if (!st) {
        w->map = map;
        /* with a budget, an answer is never longer than what was reserved for it */
        bool budget = h->policy.daily_tokens > 0 || h->policy.daily_cost > 0;
        cloud_request cq = {.msgs = msgs, .n_msgs = r->n_msgs,
                            .max_tokens = r->max_tokens > 0 ? r->max_tokens : budget ? h->policy.default_max_tokens : 0,
                            .temperature = r->has_temperature ? (r->greedy ? 0.0f : r->sp.temperature) : -1.0f,
                            .top_p = r->has_top_p ? r->sp.top_p : -1.0f, .has_seed = r->has_seed, .seed = (int64_t)r->sp.seed,
                            .stop = r->stop, .n_stop = r->n_stop, .on_text = cloud_text, .user = w, .cancel = r->cancel,
                            .tools = r->tools, .tool_choice = r->tool_choice, .response_format = r->response_format,
                            .parallel_tool_calls = r->parallel_tool_calls, .on_call = r->tools ? cloud_call : NULL};
        /* a request that named one of the cloud's models gets that model */
        for (int i = 0; r->model && i < h->policy.n_cloud_models; i++)
            if (!strcmp(r->model, h->policy.cloud_models[i])) cq.model = r->model;
        if (r->on_source) r->on_source(r->user, true);
        st = cloud_chat(h->cloud, &cq, cr);
        if (!st) cloud_flush(w);
    } else {
        snprintf(cr->error, sizeof cr->error, "router: cannot prepare the cloud request");
        cr->status = st;
    }
    for (size_t i = 0; owned && i < r->n_msgs; i++) free(owned[i]);
    for (size_t i = 0; owned_calls && i < r->n_msgs; i++) free(owned_calls[i]);
    free(owned);
    free(owned_calls);
    free(msgs);
    return st;
}

hai_status hybrid_execute(hybrid *h, const hybrid_request *r, hybrid_plan *plan, const hybrid_local *local, hybrid_result *res,
                          hai_error *err) {
    memset(res, 0, sizeof *res);
    double t0 = hai_time_s();
    res->route = plan->d.route;
    res->reasons = plan->d.reasons;
    res->mean_entropy = -1;
    fwd w = {.r = r};
    hai_generate_result g = {0};
    pii_map map = {0};
    hai_status st = HAI_OK;
    bool cloud_needed = plan->d.route == ROUTE_CLOUD;
    int64_t cloud_used = 0;

    if (plan->d.route == ROUTE_LOCAL) {
        size_t n = plan->d.truncate ? truncate_prompt(plan->prompt, plan->n_prompt, h->policy.local_ctx, r->max_tokens) : plan->n_prompt;
        st = run_local(h, r, local, plan->prompt, n, r->max_tokens, local_text, NULL, &w, &g, err);
    } else if (plan->d.route == ROUTE_CASCADE) {
        /* draft K tokens out of sight, then judge the model's confidence */
        buf draft = {0};
        int32_t k = h->policy.cascade_tokens;
        if (r->max_tokens > 0 && r->max_tokens < k) k = r->max_tokens;
        if (r->answer_broken) k = r->max_tokens; /* with tools: the whole answer, judged before it is shown */
        st = run_local(h, r, local, plan->prompt, plan->n_prompt, k, hold_text, hold_token, &draft, &g, err);
        if (!st && draft.s.oom) st = hai_fail(err, HAI_ERR_NOMEM, "router: out of memory holding the draft");
        if (!st) {
            res->mean_entropy = g.mean_entropy;
            bool cloud_ok = h->cloud && cloud_online(h->cloud) && !cloud_circuit_open(h->cloud);
            bool broken = r->answer_broken && r->answer_broken(r->user, draft.s.p ? draft.s.p : "", draft.s.n);
            if ((g.mean_entropy > h->policy.entropy_threshold || broken) && cloud_ok) {
                res->escalated = true;
                res->reasons |= 1u << R_LOW_CONFIDENCE;
                res->reasons &= ~(1u << R_DEFAULT);
                cloud_needed = true;
                res->route = ROUTE_CLOUD;
            } else {
                /* confident: show the draft and go on from where it stopped */
                res->route = ROUTE_LOCAL;
                if (show(&w, draft.s.p, draft.s.n) && g.finish == HAI_FINISH_LENGTH && g.n_generated == k &&
                    (r->max_tokens <= 0 || r->max_tokens > k)) {
                    size_t n = plan->n_prompt + draft.nt;
                    hai_token *p = malloc(n * sizeof *p);
                    if (!p) st = hai_fail(err, HAI_ERR_NOMEM, "router: out of memory");
                    else {
                        memcpy(p, plan->prompt, plan->n_prompt * sizeof *p);
                        memcpy(p + plan->n_prompt, draft.t, draft.nt * sizeof *p);
                        hai_generate_result g2;
                        st = run_local(h, r, local, p, n, r->max_tokens > 0 ? r->max_tokens - k : 0, local_text, NULL, &w, &g2, err);
                        if (!st) {
                            g.finish = g2.finish;
                            g.n_generated += g2.n_generated;
                        }
                        free(p);
                    }
                }
            }
        }
        text_free(&draft.s);
        free(draft.t);
    }
    if (!st && cloud_needed) {
        cloud_result cr;
        hai_status cst = go_cloud(h, r, plan, &w, &map, &cr);
        cloud_used = cr.prompt_tokens + cr.completion_tokens;
        if (!cloud_used && cr.delivered) cloud_used = plan->f.n_prompt_tokens + (int64_t)(w.all.s.n / 4 + 1); /* an estimate */
        res->cloud_tokens = (int)cloud_used;
        if (!cst) {
            g.finish = !strcmp(cr.finish, "length") ? HAI_FINISH_LENGTH : HAI_FINISH_STOP;
            g.n_prompt = cr.prompt_tokens;
            g.n_generated = cr.completion_tokens;
            res->route = ROUTE_CLOUD;
        } else if (cst == HAI_ERR_CANCELLED) {
            st = hai_fail(err, HAI_ERR_CANCELLED, "cancelled");
        } else {
            /* the cloud failed: the device answers, from the start or from where the cloud stopped */
            snprintf(res->error, sizeof res->error, "%s", cr.error);
            res->reasons |= 1u << R_CLOUD_ERROR;
            res->reasons &= ~(1u << R_DEFAULT);
            res->route = ROUTE_LOCAL;
            memset(&g, 0, sizeof g);
            if (!cr.delivered && r->on_source) r->on_source(r->user, false);
            if (cr.delivered) {
                cloud_flush(&w);
                if (w.all.s.oom) st = hai_fail(err, HAI_ERR_NOMEM, "router: out of memory holding the cloud's answer");
                else st = continue_locally(h, r, local, plan, w.all.s.p ? w.all.s.p : "", w.all.s.n, &w, &g, err);
            } else {
                /* a prompt sent to the cloud for its length keeps what fits here */
                size_t n = plan->n_prompt >= h->policy.local_ctx ? truncate_prompt(plan->prompt, plan->n_prompt, h->policy.local_ctx, r->max_tokens)
                                                                 : plan->n_prompt;
                st = run_local(h, r, local, plan->prompt, n, r->max_tokens, local_text, NULL, &w, &g, err);
            }
        }
    }
    if (plan->d.reserve_tokens) settle(h, plan->d.reserve_tokens, cloud_used);
    if (!cloud_needed) res->reasons &= ~(1u << R_PRIVACY_REDACTED); /* nothing was sent */
    res->finish = g.finish;
    res->prompt_tokens = res->route == ROUTE_CLOUD && g.n_prompt ? g.n_prompt : (int)plan->n_prompt;
    res->completion_tokens = g.n_generated;
    res->cached_tokens = res->route == ROUTE_CLOUD ? 0 : g.n_cached;
    res->seconds = hai_time_s() - t0;
    pii_map_free(&map);
    text_free(&w.pend.s);
    text_free(&w.all.s);
    hybrid_plan_free(plan);
    return st;
}

/* ---- reporting -------------------------------------------------------------------------------- */

void hybrid_route_header(route_kind route, uint32_t reasons, char *out, size_t cap) {
    char rs[256];
    route_reasons_str(reasons, rs, sizeof rs);
    snprintf(out, cap, "%s; reasons=%s", route_name(route), rs);
}

char *hybrid_route_json(const hybrid_plan *plan, const hybrid_result *res) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "route", route_name(res->route));
    cJSON_AddStringToObject(o, "decision", route_name(plan->d.route));
    cJSON *rs = cJSON_AddArrayToObject(o, "reasons");
    for (int i = 0; i < R_COUNT; i++)
        if (res->reasons & (1u << i)) cJSON_AddItemToArray(rs, cJSON_CreateString(route_reason_name((route_reason)i)));
    cJSON *sg = cJSON_AddObjectToObject(o, "signals");
    cJSON *pii = cJSON_AddObjectToObject(sg, "personal_data");
    for (int c = 0; c < PII_COUNT; c++)
        if (plan->f.pii[c]) cJSON_AddNumberToObject(pii, pii_class_name((pii_class)c), (double)plan->f.pii[c]);
    if (plan->f.pii_incomplete) cJSON_AddStringToObject(sg, "privacy_scan_incomplete", plan->scan_why);
    cJSON_AddNumberToObject(sg, "prompt_tokens", plan->f.n_prompt_tokens);
    cJSON_AddBoolToObject(sg, "online", plan->s.online);
    cJSON_AddBoolToObject(sg, "circuit_open", plan->s.circuit_open);
    cJSON_AddNumberToObject(sg, "predicted_local_ms", plan->d.pred_local_ms);
    cJSON_AddNumberToObject(sg, "predicted_cloud_ms", plan->d.pred_cloud_ms);
    cJSON_AddNumberToObject(sg, "cloud_tokens_spent_today", (double)plan->s.tokens_spent);
    if (res->mean_entropy >= 0) cJSON_AddNumberToObject(sg, "mean_entropy", res->mean_entropy);
    if (res->error[0]) cJSON_AddStringToObject(sg, "cloud_error", res->error);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}
