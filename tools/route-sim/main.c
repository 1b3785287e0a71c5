/* hai-route-sim: the hybrid router's rules over a seeded synthetic trace of requests (not
 * shipped: an evaluation tool). It drives router_decide() and the privacy scanner directly, with
 * simulated outages, cloud failures and a budget, and reports what a policy would have done. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: hai-route-sim [options]\n"
            "  --route-config FILE  the routing policy (JSON, see README); default: the evaluation's own\n"
            "  --requests N         trace length (default 10000)   --days N (default 3)   --seed S (default 1)\n"
            "  --pii-share X --outage-share X --cloud-fail-rate X --hard-share X\n"
            "  --local-tps PREFILL,DECODE   the device's speed in tokens/s (default 100,20)\n"
            "  --json               results as JSON\n"
            "  --check              exit 1 unless no personal data was sent against the policy, every\n"
            "                       request during an outage was answered and the budget held\n"
            "With no --route-config, the policy is: a cloud, personal data kept local, a budget of\n"
            "200000 tokens a day, the cascade on.\n");
}

static bool parse_i64(const char *opt, const char *s, long long lo, long long hi, long long *out) {
    char *end;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || v < lo || v > hi) {
        fprintf(stderr, "hai-route-sim: %s takes a whole number from %lld to %lld\n", opt, lo, hi);
        return false;
    }
    *out = v;
    return true;
}

static const char *const route_label[SIM_ROUTES] = {"local", "cloud", "local->cloud"};

static int eval(const char *config, const sim_params *sp, bool json, bool check) {
    hai_error err = {0};
    hybrid_config hc;
    if (hybrid_config_load(config, &hc, &err) != HAI_OK) {
        fprintf(stderr, "hai-route-sim: %s\n", err.msg);
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
        fprintf(stderr, "hai-route-sim: %s\n", err.msg);
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
        fprintf(stderr, "hai-route-sim --check: FAILED (personal data bytes sent %lld, offline answered %d/%d, budget overrun %lld, unanswered %d)\n",
                (long long)r.pii_bytes_sent, r.offline_answered, r.offline_requests, (long long)r.budget_overrun, r.unanswered);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    const char *config = NULL;
    bool json = false, check = false;
    long long v;
    sim_params sp;
    sim_params_defaults(&sp);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--json")) { json = true; continue; }
        if (!strcmp(a, "--check")) { check = true; continue; }
        if (i + 1 >= argc) {
            fprintf(stderr, "hai-route-sim: unknown option or missing value: '%s'\n", a);
            usage(stderr);
            return 2;
        }
        const char *val = argv[++i];
        if (!strcmp(a, "--route-config")) config = val;
        else if (!strcmp(a, "--requests")) { if (!parse_i64(a, val, 1, 10000000, &v)) return 2; sp.n_requests = (int)v; }
        else if (!strcmp(a, "--days")) { if (!parse_i64(a, val, 1, 3650, &v)) return 2; sp.days = (int)v; }
        else if (!strcmp(a, "--seed")) { if (!parse_i64(a, val, 0, INT64_MAX, &v)) return 2; sp.seed = (uint64_t)v; }
        else if (!strcmp(a, "--local-tps")) {
            if (sscanf(val, "%lf,%lf", &sp.local_prefill_tps, &sp.local_decode_tps) != 2 || sp.local_prefill_tps <= 0 || sp.local_decode_tps <= 0) {
                fprintf(stderr, "hai-route-sim: --local-tps takes PREFILL,DECODE (tokens/s, both > 0)\n");
                return 2;
            }
        } else {
            double *dst = !strcmp(a, "--pii-share") ? &sp.pii_share : !strcmp(a, "--outage-share") ? &sp.outage_share
                        : !strcmp(a, "--cloud-fail-rate") ? &sp.cloud_fail_rate : !strcmp(a, "--hard-share") ? &sp.hard_share : NULL;
            char *end;
            double x = dst ? strtod(val, &end) : 0;
            if (!dst) {
                fprintf(stderr, "hai-route-sim: unknown option '%s'\n", a);
                usage(stderr);
                return 2;
            }
            if (!*val || *end || !(x >= 0 && x <= 1)) {
                fprintf(stderr, "hai-route-sim: %s takes a share from 0 to 1\n", a);
                return 2;
            }
            *dst = x;
        }
    }
    return eval(config, &sp, json, check);
}
