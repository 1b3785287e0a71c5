/* The routing decision (see router.h). The rules, in order: privacy, connectivity, capability,
 * budget, latency, confidence. */
#include "router.h"

#include <stdio.h>
#include <string.h>

static const char *const reason_names[R_COUNT] = {
    "PRIVACY_KEEP_LOCAL", "PRIVACY_REDACTED", "PRIVACY_SCAN_INCOMPLETE", "OFFLINE", "CIRCUIT_OPEN", "CONTEXT_TOO_LONG",
    "CLOUD_MODEL_REQUESTED", "BUDGET_SPENT", "DEADLINE", "LOW_CONFIDENCE", "CLOUD_ERROR", "TOOLS_NOT_LOCAL", "DEFAULT",
};

const char *route_reason_name(route_reason r) { return (unsigned)r < R_COUNT ? reason_names[r] : "?"; }

const char *route_name(route_kind r) {
    return r == ROUTE_CLOUD ? "cloud" : r == ROUTE_CASCADE ? "local->cloud" : "local";
}

void route_reasons_str(uint32_t reasons, char *buf, size_t cap) {
    size_t w = 0;
    buf[0] = '\0';
    for (int i = 0; i < R_COUNT; i++)
        if (reasons & (1u << i)) {
            int k = snprintf(buf + w, cap - w, "%s%s", w ? "," : "", reason_names[i]);
            if (k < 0 || (size_t)k >= cap - w) break;
            w += (size_t)k;
        }
}

void router_policy_defaults(router_policy *p) {
    memset(p, 0, sizeof *p);
    for (int i = 0; i < PII_COUNT; i++) p->privacy[i] = PII_KEEP_LOCAL;
    p->local_ctx = 4096;
    p->default_max_tokens = 256;
    p->cloud_rtt_ms = 500;
    p->cloud_tokens_per_s = 60;
    p->cascade_tokens = 16;
    p->entropy_threshold = 1.5f;
}

#define BIT(r) (1u << (r))

router_decision router_decide(const router_features *f, const router_policy *p, const router_state *s) {
    router_decision d = {.route = ROUTE_LOCAL};
    int32_t out = f->max_tokens > 0 ? f->max_tokens : p->default_max_tokens;
    int64_t need = (int64_t)f->n_prompt_tokens + out;
    /* what the cloud may bill: its tokenizer can count the prompt differently from ours, so the
     * reservation carries a margin (a quarter, plus a little for its chat format) */
    int64_t cloud_need = need + f->n_prompt_tokens / 4 + 16;

    /* predictions, whatever the route: they are signals */
    double prefill = s->local_prefill_tps > 0 ? s->local_prefill_tps : 100, decode = s->local_decode_tps > 0 ? s->local_decode_tps : 20;
    d.pred_local_ms = 1000.0 * (f->n_prompt_tokens / prefill + out / decode);
    d.pred_cloud_ms = p->cloud_rtt_ms + 1000.0 * out / (p->cloud_tokens_per_s > 0 ? p->cloud_tokens_per_s : 60);

    /* 1. privacy: a class kept local closes the cloud; a class redacted goes with placeholders; a
     * scan that could not finish is a detection of every class (fail closed) unless the policy
     * lets every class go */
    bool cloud = p->cloud_enabled, redact = false, all_allowed = true;
    for (int c = 0; c < PII_COUNT; c++) all_allowed &= p->privacy[c] == PII_ALLOW;
    if (f->pii_incomplete && !all_allowed) {
        if (cloud || !p->cloud_enabled) d.reasons |= BIT(R_PRIVACY_SCAN_INCOMPLETE);
        cloud = false;
    }
    for (int c = 0; c < PII_COUNT; c++) {
        if (!f->pii[c]) continue;
        /* a class to redact, found where a placeholder cannot stand (a stop string), stays here */
        if (p->privacy[c] == PII_KEEP_LOCAL || (p->privacy[c] == PII_REDACT && f->pii_verbatim[c])) {
            if (cloud || !p->cloud_enabled) d.reasons |= BIT(R_PRIVACY_KEEP_LOCAL);
            cloud = false;
        } else if (p->privacy[c] == PII_REDACT) {
            redact = true;
        }
    }
    /* 2. connectivity */
    if (cloud && (p->offline || !s->online)) {
        d.reasons |= BIT(R_OFFLINE);
        cloud = false;
    } else if (cloud && s->circuit_open) {
        d.reasons |= BIT(R_CIRCUIT_OPEN);
        cloud = false;
    }
    /* the budget as it would stand with this request (the worst case: every token it may use) */
    bool budget_ok = (p->daily_tokens <= 0 || s->tokens_spent + cloud_need <= p->daily_tokens) &&
                     (p->daily_cost <= 0 || s->cost_spent + cloud_need * p->cost_per_1k_tokens / 1000.0 <= p->daily_cost);
    bool named_cloud = false;
    for (int i = 0; f->model && i < p->n_cloud_models; i++)
        if (!strcmp(f->model, p->cloud_models[i])) named_cloud = true;

    /* 3. capability: what the local model cannot hold, a cloud model asked for by name, or tools
     * the local model is not to answer */
    bool too_long = need > (int64_t)p->local_ctx;
    bool tools_away = f->tools && (p->tools_route == TOOLS_ROUTE_CLOUD || (p->tools_route == TOOLS_ROUTE_AUTO && !f->tools_template));
    if (too_long || named_cloud || tools_away) {
        d.reasons |= BIT(too_long ? R_CONTEXT_TOO_LONG : named_cloud ? R_CLOUD_MODEL_REQUESTED : R_TOOLS_NOT_LOCAL);
        if (cloud && budget_ok) {
            d.route = ROUTE_CLOUD;
        } else {
            /* answered here all the same: a local answer beats none (offline must always work);
             * a prompt that does not fit keeps its most recent part */
            if (cloud && !budget_ok) d.reasons |= BIT(R_BUDGET_SPENT);
            d.route = ROUTE_LOCAL;
            d.truncate = f->n_prompt_tokens >= (int64_t)p->local_ctx;
        }
        goto out;
    }
    /* 4. budget */
    if (cloud && !budget_ok) {
        d.reasons |= BIT(R_BUDGET_SPENT);
        cloud = false;
    }
    /* 5. latency: a deadline the device cannot meet but the cloud can */
    double deadline = f->deadline_ms > 0 ? f->deadline_ms : p->deadline_ms;
    if (cloud && deadline > 0 && d.pred_local_ms > deadline && d.pred_cloud_ms < d.pred_local_ms) {
        d.reasons |= BIT(R_DEADLINE);
        d.route = ROUTE_CLOUD;
        goto out;
    }
    /* 6. the default: local, local with escalation, or cloud, as the policy prefers */
    if (cloud && p->prefer_cloud) d.route = ROUTE_CLOUD;
    else if (cloud && p->cascade) d.route = ROUTE_CASCADE;
    else d.route = ROUTE_LOCAL;
out:
    if (d.route != ROUTE_LOCAL) {
        d.redact = redact;
        if (redact) d.reasons |= BIT(R_PRIVACY_REDACTED);
        d.reserve_tokens = cloud_need;
    }
    if (!(d.reasons & ~BIT(R_PRIVACY_REDACTED))) d.reasons |= BIT(R_DEFAULT);
    return d;
}
