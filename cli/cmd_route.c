/* hai route: the hybrid router from the command line.
 *   hai route --explain -m MODEL "prompt"   the decision for one prompt, without generating
 *   hai route --eval                         the router over a seeded synthetic trace */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/router/hybrid.h"
#include "../src/router/sim.h"
#include "cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: hai route --explain -m MODEL.gguf [options] PROMPT\n"
            "       hai route --eval [options]\n"
            "  --route-config FILE  the routing policy (JSON, see README); default: everything local\n"
            "explain:\n"
            "  --system TEXT        a system message before the prompt\n"
            "  -n N                 max_tokens of the request (default: not given)\n"
            "  --model-name NAME    the model the request names (a cloud model's name routes to it)\n"
            "  --deadline-ms MS     the request's deadline\n"
            "  --ctx N              the local context (default: min(trained, 4096))\n"
            "  --json               the decision as JSON (the hai_route object of hai serve)\n"
            "eval:\n"
            "  --requests N         trace length (default 10000)   --days N (default 3)   --seed S (default 1)\n"
            "  --pii-share X --outage-share X --cloud-fail-rate X --hard-share X\n"
            "  --local-tps PREFILL,DECODE   the device's speed in tokens/s (default 100,20)\n"
            "  --json               results as JSON\n"
            "  --check              exit 1 unless no personal data was sent against the policy, every\n"
            "                       request during an outage was answered and the budget held\n"
            "With --eval and no --route-config, the policy is: a cloud, personal data kept local,\n"
            "a budget of 200000 tokens a day, the cascade on.\n");
}

static int explain(const char *model, const char *config, const char *system, const char *prompt, int64_t max_tokens,
                   const char *model_name, double deadline_ms, int64_t ctx, bool json) {
    hai_error err = {0};
    hai_model *m = NULL;
    hybrid *h = NULL;
    hybrid_config hc;
    int rc = 1;
    if (hybrid_config_load(config, &hc, &err) != HAI_OK) goto out;
    if (hai_model_load(model, NULL, &m, &err) != HAI_OK) {
        hybrid_config_free(&hc);
        goto out;
    }
    uint32_t train = hai_model_n_ctx_train(m);
    uint32_t n_ctx = ctx ? (uint32_t)ctx : train && train < 4096 ? train : 4096;
    hai_status st = hybrid_create(&hc, m, n_ctx, &h, &err);
    hybrid_config_free(&hc);
    if (st) goto out;
    hai_chat_message msgs[2];
    size_t n = 0;
    if (system) msgs[n++] = (hai_chat_message){.role = "system", .content = system};
    msgs[n++] = (hai_chat_message){.role = "user", .content = prompt};
    hybrid_request r = {.msgs = msgs, .n_msgs = n, .model = model_name, .max_tokens = (int32_t)max_tokens, .deadline_ms = deadline_ms};
    hybrid_plan plan;
    if (hybrid_plan_request(h, &r, &plan, &err) != HAI_OK) goto out;
    hybrid_result res = {.route = plan.d.route, .reasons = plan.d.reasons, .mean_entropy = -1};
    if (json) {
        char *s = hybrid_route_json(&plan, &res);
        printf("%s\n", s ? s : "{}");
        free(s);
    } else {
        char rs[256];
        route_reasons_str(plan.d.reasons, rs, sizeof rs);
        const router_policy *p = hybrid_policy(h);
        printf("route:    %s\nreasons:  %s\n", route_name(plan.d.route), rs);
        printf("signals:\n  prompt tokens:      %d (local context %u; answer up to %d)\n", plan.f.n_prompt_tokens, p->local_ctx,
               max_tokens > 0 ? (int)max_tokens : p->default_max_tokens);
        printf("  personal data:      ");
        int any = 0;
        for (int c = 0; c < PII_COUNT; c++)
            if (plan.f.pii[c]) printf("%s%s x%zu (%s)", any++ ? ", " : "", pii_class_name((pii_class)c), plan.f.pii[c], pii_action_name(p->privacy[c]));
        printf("%s\n", any ? "" : "none");
        if (plan.f.pii_incomplete) printf("  privacy scan:       incomplete (%s): treated as personal data\n", plan.scan_why);
        printf("  cloud:              %s\n", !p->cloud_enabled ? "not configured" : p->offline ? "offline (policy)" : "configured");
        printf("  predicted latency:  local %.0f ms, cloud %.0f ms%s\n", plan.d.pred_local_ms, plan.d.pred_cloud_ms,
               " (local speed: defaults until measured by a generation)");
        if (p->daily_tokens > 0) printf("  cloud budget:       %lld of %lld tokens a day\n", (long long)plan.s.tokens_spent, (long long)p->daily_tokens);
        if (plan.d.route == ROUTE_CASCADE)
            printf("  cascade:            the first %d tokens are drafted locally; mean entropy above %.2f nats escalates\n",
                   p->cascade_tokens, p->entropy_threshold);
        if (plan.d.redact) printf("  redaction:          personal data is replaced by placeholders before it is sent\n");
        if (plan.d.truncate) printf("  truncation:         the prompt keeps its most recent part to fit the local context\n");
    }
    hybrid_plan_free(&plan);
    rc = 0;
out:
    if (rc) cli_error("route", &err);
    hybrid_free(h);
    hai_model_free(m);
    return rc;
}

static const char *const route_label[SIM_ROUTES] = {"local", "cloud", "local->cloud"};

static int eval(const char *config, const sim_params *sp, bool json, bool check) {
    hai_error err = {0};
    hybrid_config hc;
    if (hybrid_config_load(config, &hc, &err) != HAI_OK) {
        cli_error("route", &err);
        return 1;
    }
    if (!config) { /* the evaluation's own policy: a cloud that is worth deciding about */
        hc.policy.cloud_enabled = hc.has_cloud = true;
        snprintf(hc.cloud.base_url, sizeof hc.cloud.base_url, "http://cloud.invalid/v1");
        hc.policy.daily_tokens = 200000;
        hc.policy.cascade = true;
    }
    sim_result r;
    hai_status st = sim_run(sp, &hc, &r, &err);
    hybrid_config_free(&hc);
    if (st) {
        cli_error("route", &err);
        return 1;
    }
    double offline_pct = r.offline_requests ? 100.0 * r.offline_answered / r.offline_requests : 100.0;
    if (json) {
        printf("{\"requests\":%d,\"routes\":{", r.n);
        for (int k = 0; k < SIM_ROUTES; k++)
            printf("%s\"%s\":{\"count\":%d,\"share\":%.4f,\"p50_ms\":%.1f,\"p95_ms\":%.1f}", k ? "," : "", route_label[k], r.by_route[k],
                   (double)r.by_route[k] / r.n, r.p50_ms[k], r.p95_ms[k]);
        printf("},\"reasons\":{");
        for (int k = 0, w = 0; k < R_COUNT; k++)
            if (r.by_reason[k]) printf("%s\"%s\":%d", w++ ? "," : "", route_reason_name((route_reason)k), r.by_reason[k]);
        printf("},\"cloud_share\":%.4f,\"with_personal_data\":%d,\"personal_data_bytes_sent\":%lld,\"personal_data_bytes_allowed\":%lld,"
               "\"offline_requests\":%d,\"offline_answered\":%d,\"offline_answered_share\":%.4f,\"unanswered\":%d,\"cloud_failures\":%d,"
               "\"cloud_tokens\":%lld,\"budget_daily_tokens\":%lld,\"max_day_tokens\":%lld,\"budget_overrun\":%lld}\n",
               (double)(r.by_route[1] + r.by_route[2]) / r.n, r.with_pii, (long long)r.pii_bytes_sent, (long long)r.pii_bytes_allowed,
               r.offline_requests, r.offline_answered, offline_pct / 100, r.unanswered, r.cloud_failures, (long long)r.cloud_tokens,
               (long long)r.budget_tokens, (long long)r.max_day_tokens, (long long)r.budget_overrun);
    } else {
        printf("router evaluation: %d requests over %d days (seed %llu)\n\n", r.n, sp->days, (unsigned long long)sp->seed);
        printf("  %-14s %7s %7s %12s %12s\n", "answered by", "count", "share", "p50 (pred.)", "p95 (pred.)");
        for (int k = 0; k < SIM_ROUTES; k++)
            printf("  %-14s %7d %6.1f%% %9.0f ms %9.0f ms\n", route_label[k], r.by_route[k], 100.0 * r.by_route[k] / r.n, r.p50_ms[k], r.p95_ms[k]);
        printf("\n  cloud share:                     %.1f%%\n", 100.0 * (r.by_route[1] + r.by_route[2]) / r.n);
        printf("  reasons:                        ");
        for (int k = 0, w = 0; k < R_COUNT; k++)
            if (r.by_reason[k]) printf("%s%s %d", w++ ? ", " : "", route_reason_name((route_reason)k), r.by_reason[k]);
        printf("\n  personal data:                   %d requests carried it; bytes sent against the policy: %lld (allowed by it: %lld)\n",
               r.with_pii, (long long)r.pii_bytes_sent, (long long)r.pii_bytes_allowed);
        printf("  during outages:                  %d requests, %d answered (%.1f%%); cloud calls failed: %d\n", r.offline_requests,
               r.offline_answered, offline_pct, r.cloud_failures);
        if (r.budget_tokens > 0)
            printf("  budget:                          %lld tokens a day; most spent in a day %lld; overrun %lld\n", (long long)r.budget_tokens,
                   (long long)r.max_day_tokens, (long long)r.budget_overrun);
        else
            printf("  budget:                          none; cloud tokens %lld\n", (long long)r.cloud_tokens);
        if (r.unanswered) printf("  unanswered:                      %d\n", r.unanswered);
    }
    if (check && (r.pii_bytes_sent || r.offline_answered < r.offline_requests || r.budget_overrun || r.unanswered)) {
        fprintf(stderr, "hai route --eval --check: FAILED (personal data bytes sent %lld, offline answered %d/%d, budget overrun %lld, unanswered %d)\n",
                (long long)r.pii_bytes_sent, r.offline_answered, r.offline_requests, (long long)r.budget_overrun, r.unanswered);
        return 1;
    }
    return 0;
}

int cmd_route(int argc, char **argv) {
    const char *model = NULL, *config = NULL, *system = NULL, *prompt = NULL, *model_name = NULL;
    bool do_explain = false, do_eval = false, json = false, check = false;
    int64_t max_tokens = 0, ctx = 0, v;
    double deadline = 0, x;
    sim_params sp;
    sim_params_defaults(&sp);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--explain")) { do_explain = true; continue; }
        if (!strcmp(a, "--eval")) { do_eval = true; continue; }
        if (!strcmp(a, "--json")) { json = true; continue; }
        if (!strcmp(a, "--check")) { check = true; continue; }
        if (a[0] != '-' || !a[1]) {
            if (prompt) {
                fprintf(stderr, "hai route: one prompt only (quote it)\n");
                return 2;
            }
            prompt = a;
            continue;
        }
        if (!(val = cli_value(argc, argv, &i))) return 2;
        if (!strcmp(a, "-m")) model = val;
        else if (!strcmp(a, "--route-config")) config = val;
        else if (!strcmp(a, "--system")) system = val;
        else if (!strcmp(a, "--model-name")) model_name = val;
        else if (!strcmp(a, "-n")) { if (!cli_parse_i64(a, val, 1, 1 << 24, &max_tokens)) return 2; }
        else if (!strcmp(a, "--ctx")) { if (!cli_parse_i64(a, val, 16, 1 << 24, &ctx)) return 2; }
        else if (!strcmp(a, "--deadline-ms")) { if (!cli_parse_f64(a, val, &deadline) || deadline < 0) return 2; }
        else if (!strcmp(a, "--requests")) { if (!cli_parse_i64(a, val, 1, 10000000, &v)) return 2; sp.n_requests = (int)v; }
        else if (!strcmp(a, "--days")) { if (!cli_parse_i64(a, val, 1, 3650, &v)) return 2; sp.days = (int)v; }
        else if (!strcmp(a, "--seed")) { if (!cli_parse_i64(a, val, 0, INT64_MAX, &v)) return 2; sp.seed = (uint64_t)v; }
        else if (!strcmp(a, "--local-tps")) {
            if (sscanf(val, "%lf,%lf", &sp.local_prefill_tps, &sp.local_decode_tps) != 2 || sp.local_prefill_tps <= 0 || sp.local_decode_tps <= 0) {
                fprintf(stderr, "hai route: --local-tps takes PREFILL,DECODE (tokens/s, both > 0)\n");
                return 2;
            }
        } else {
            double *dst = !strcmp(a, "--pii-share") ? &sp.pii_share : !strcmp(a, "--outage-share") ? &sp.outage_share
                        : !strcmp(a, "--cloud-fail-rate") ? &sp.cloud_fail_rate : !strcmp(a, "--hard-share") ? &sp.hard_share : NULL;
            if (!dst) {
                fprintf(stderr, "hai route: unknown option '%s'\n", a);
                usage(stderr);
                return 2;
            }
            if (!cli_parse_f64(a, val, &x) || x < 0 || x > 1) {
                fprintf(stderr, "hai route: %s takes a share from 0 to 1\n", a);
                return 2;
            }
            *dst = x;
        }
    }
    if (do_explain == do_eval) {
        usage(stderr);
        return 2;
    }
    if (do_eval) return eval(config, &sp, json, check);
    if (!model || !prompt) {
        usage(stderr);
        return 2;
    }
    return explain(model, config, system, prompt, max_tokens, model_name, deadline, ctx, json);
}
