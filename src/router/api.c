/* include/hai_hybrid.h: the hybrid router for an app's own code, over hybrid.c with the device's
 * side a context of the app's. */
#include "hai_hybrid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/text.h"
#include "hybrid.h"

/* The public values are the internal ones: a change to either must be seen here. */
_Static_assert((int)HAI_ROUTE_LOCAL == ROUTE_LOCAL && (int)HAI_ROUTE_CLOUD == ROUTE_CLOUD && (int)HAI_ROUTE_CASCADE == ROUTE_CASCADE,
               "hai_route");
_Static_assert((int)HAI_REASON_PRIVACY_KEEP_LOCAL == R_PRIVACY_KEEP_LOCAL && (int)HAI_REASON_OFFLINE == R_OFFLINE &&
                   (int)HAI_REASON_BUDGET_SPENT == R_BUDGET_SPENT && (int)HAI_REASON_CLOUD_ERROR == R_CLOUD_ERROR &&
                   (int)HAI_REASON_TOOLS_NOT_LOCAL == R_TOOLS_NOT_LOCAL && (int)HAI_REASON_DEFAULT == R_DEFAULT && R_COUNT == 13,
               "hai_route_reason");

struct hai_router {
    hybrid *h;
    hai_context *c;
};

struct hai_route_plan {
    hai_router *r;
    hybrid_request q;
    hybrid_plan p;
};

const char *hai_route_name(hai_route r) { return route_name((route_kind)r); }
const char *hai_route_reason_name(hai_route_reason r) { return route_reason_name((route_reason)r); }
void hai_route_reasons_str(uint32_t reasons, char *buf, size_t cap) { route_reasons_str(reasons, buf, cap); }

static hai_status router_make(hybrid_config *hc, hai_context *ctx, hai_router **out, hai_error *err) {
    hai_router *r = calloc(1, sizeof *r);
    if (!r) {
        hybrid_config_free(hc);
        return hai_fail(err, HAI_ERR_NOMEM, "router: out of memory");
    }
    r->c = ctx;
    hai_status st = hybrid_create(hc, hai_context_model(ctx), hai_context_n_ctx(ctx), &r->h, err);
    hybrid_config_free(hc);
    if (st) {
        free(r);
        return st;
    }
    *out = r;
    return HAI_OK;
}

hai_status hai_router_create(const char *policy_json, size_t len, hai_context *ctx, hai_router **out, hai_error *err) {
    if (!out) return hai_fail(err, HAI_ERR_INVALID, "hai_router_create: out is NULL");
    *out = NULL;
    if (!ctx) return hai_fail(err, HAI_ERR_INVALID, "hai_router_create: no context");
    hybrid_config hc;
    hai_status st = policy_json ? hybrid_config_parse(policy_json, len, &hc, err) : hybrid_config_load(NULL, &hc, err);
    return st ? st : router_make(&hc, ctx, out, err);
}

hai_status hai_router_create_from_file(const char *path, hai_context *ctx, hai_router **out, hai_error *err) {
    if (!out) return hai_fail(err, HAI_ERR_INVALID, "hai_router_create_from_file: out is NULL");
    *out = NULL;
    if (!ctx) return hai_fail(err, HAI_ERR_INVALID, "hai_router_create_from_file: no context");
    hybrid_config hc;
    hai_status st = hybrid_config_load(path, &hc, err);
    return st ? st : router_make(&hc, ctx, out, err);
}

void hai_router_free(hai_router *r) {
    if (!r) return;
    hybrid_free(r->h);
    free(r);
}

/* The device's side: hai_generate on the app's context. */
static hai_status ctx_generate(void *user, const hybrid_gen *g, hai_generate_result *res, hai_error *err) {
    hai_router *r = user;
    hai_sampler *s = NULL;
    if (!g->greedy) {
        hai_status st = hai_sampler_create(g->sp, hai_model_n_vocab(hai_context_model(r->c)), &s, err);
        if (st) return st;
    }
    hai_generate_params gp = {.max_tokens = g->max_tokens, .stop = g->stop, .n_stop = g->n_stop, .sampler = s,
                              .on_text = g->on_text, .user = g->user, .on_token = g->on_token};
    hai_status st = hai_generate(r->c, g->prompt, g->n, &gp, res, err);
    hai_sampler_free(s);
    return st;
}

hai_status hai_router_decide(hai_router *r, const hai_route_request *q, hai_route_plan **out, hai_error *err) {
    if (!out) return hai_fail(err, HAI_ERR_INVALID, "hai_router_decide: out is NULL");
    *out = NULL;
    if (!r || !q) return hai_fail(err, HAI_ERR_INVALID, "hai_router_decide: no router or request");
    hai_route_request a = {0}; /* fields past the app's size stay zero: their defaults */
    memcpy(&a, q, q->size < sizeof a ? q->size : sizeof a);
    if (q->size < offsetof(hai_route_request, on_text) + sizeof a.on_text)
        return hai_fail(err, HAI_ERR_INVALID, "hai_router_decide: request size %zu is too small (set size = sizeof(hai_route_request))",
                        q->size);
    if (!a.msgs || !a.n_msgs) return hai_fail(err, HAI_ERR_INVALID, "hai_router_decide: no messages");
    if (!a.on_text) return hai_fail(err, HAI_ERR_INVALID, "hai_router_decide: no on_text callback");
    if (a.max_tokens < 0 || a.deadline_ms < 0) return hai_fail(err, HAI_ERR_INVALID, "hai_router_decide: negative max_tokens or deadline");
    hai_route_plan *p = calloc(1, sizeof *p);
    if (!p) return hai_fail(err, HAI_ERR_NOMEM, "router: out of memory");
    p->r = r;
    bool sampled = a.sampler && a.sampler->temperature > 0;
    p->q = (hybrid_request){.msgs = a.msgs, .n_msgs = a.n_msgs, .model = a.model, .max_tokens = a.max_tokens, .deadline_ms = a.deadline_ms,
                            .greedy = !sampled, .has_seed = a.sampler != NULL, .has_temperature = a.sampler != NULL,
                            .has_top_p = a.sampler != NULL, .stop = a.stop, .n_stop = a.n_stop, .on_text = a.on_text, .user = a.user,
                            .on_source = a.on_source};
    if (a.sampler) p->q.sp = *a.sampler;
    hai_status st = hybrid_plan_request(r->h, &p->q, &p->p, err);
    if (st) {
        free(p);
        return st;
    }
    *out = p;
    return HAI_OK;
}

hai_route hai_route_plan_route(const hai_route_plan *p) { return p ? (hai_route)p->p.d.route : HAI_ROUTE_LOCAL; }
uint32_t hai_route_plan_reasons(const hai_route_plan *p) { return p ? p->p.d.reasons : 0; }
bool hai_route_plan_redacts(const hai_route_plan *p) { return p && p->p.d.redact; }

void hai_route_plan_free(hai_route_plan *p) {
    if (!p) return;
    hybrid_plan_cancel(p->r->h, &p->p);
    free(p);
}

char *hai_route_plan_json(const hai_route_plan *p) {
    if (!p) return NULL;
    hybrid_result res = {.route = p->p.d.route, .reasons = p->p.d.reasons, .mean_entropy = -1};
    return hybrid_route_json(&p->p, &res);
}

char *hai_route_plan_explain(const hai_route_plan *pl) {
    if (!pl) return NULL;
    const hybrid_plan *plan = &pl->p;
    const router_policy *p = hybrid_policy(pl->r->h);
    hai_text t = {0};
    char rs[256];
    route_reasons_str(plan->d.reasons, rs, sizeof rs);
    text_printf(&t, "route:    %s\nreasons:  %s\n", route_name(plan->d.route), rs);
    text_printf(&t, "signals:\n  prompt tokens:      %d (local context %u; answer up to %d)\n", plan->f.n_prompt_tokens, p->local_ctx,
         pl->q.max_tokens > 0 ? (int)pl->q.max_tokens : p->default_max_tokens);
    text_printf(&t, "  personal data:      ");
    int any = 0;
    for (int c = 0; c < PII_COUNT; c++)
        if (plan->f.pii[c])
            text_printf(&t, "%s%s x%zu (%s)", any++ ? ", " : "", pii_class_name((pii_class)c), plan->f.pii[c], pii_action_name(p->privacy[c]));
    text_printf(&t, "%s\n", any ? "" : "none");
    if (plan->f.pii_incomplete) text_printf(&t, "  privacy scan:       incomplete (%s): treated as personal data\n", plan->scan_why);
    text_printf(&t, "  cloud:              %s\n", !p->cloud_enabled ? "not configured" : p->offline ? "offline (policy)" : "configured");
    text_printf(&t, "  predicted latency:  local %.0f ms, cloud %.0f ms%s\n", plan->d.pred_local_ms, plan->d.pred_cloud_ms,
         plan->s.local_decode_tps > 0 ? "" : " (local speed: defaults until measured by a generation)");
    if (p->daily_tokens > 0)
        text_printf(&t, "  cloud budget:       %lld of %lld tokens a day\n", (long long)plan->s.tokens_spent, (long long)p->daily_tokens);
    if (plan->d.route == ROUTE_CASCADE)
        text_printf(&t, "  cascade:            the first %d tokens are drafted locally; mean entropy above %.2f nats escalates\n",
             p->cascade_tokens, p->entropy_threshold);
    if (plan->d.redact) text_printf(&t, "  redaction:          personal data is replaced by placeholders before it is sent\n");
    if (plan->d.truncate) text_printf(&t, "  truncation:         the prompt keeps its most recent part to fit the local context\n");
    return text_take(&t);
}

hai_status hai_router_execute(hai_router *r, hai_route_plan *plan, hai_route_result *res, hai_error *err) {
    if (!plan) return hai_fail(err, HAI_ERR_INVALID, "hai_router_execute: no plan");
    if (!r || !res || plan->r != r || res->size < offsetof(hai_route_result, error) + sizeof res->error) {
        hai_route_plan_free(plan);
        return hai_fail(err, HAI_ERR_INVALID, "hai_router_execute: no router or result, a plan of another router, or a result size too "
                                              "small (set size = sizeof(hai_route_result))");
    }
    hybrid_result hr = {0};
    hai_status st = hybrid_execute(r->h, &plan->q, &plan->p, &(hybrid_local){ctx_generate, r}, &hr, err);
    free(plan);
    hai_route_result o = {.size = res->size, .route = (hai_route)hr.route, .reasons = hr.reasons, .escalated = hr.escalated,
                          .finish = hr.finish, .prompt_tokens = hr.prompt_tokens, .completion_tokens = hr.completion_tokens,
                          .cached_tokens = hr.cached_tokens, .cloud_tokens = hr.cloud_tokens, .mean_entropy = hr.mean_entropy,
                          .seconds = hr.seconds};
    snprintf(o.error, sizeof o.error, "%s", hr.error);
    memcpy(res, &o, res->size < sizeof o ? res->size : sizeof o);
    return st;
}

hai_status hai_router_chat(hai_router *r, const hai_route_request *q, hai_route_result *res, hai_error *err) {
    hai_route_plan *plan = NULL;
    hai_status st = hai_router_decide(r, q, &plan, err);
    return st ? st : hai_router_execute(r, plan, res, err);
}
