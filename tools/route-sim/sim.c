/* Router evaluation over a synthetic trace (see sim.h). */
#include "sim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"

void sim_params_defaults(sim_params *p) {
    memset(p, 0, sizeof *p);
    p->n_requests = 10000;
    p->days = 3;
    p->seed = 1;
    p->pii_share = 0.2;
    p->outage_share = 0.08;
    p->cloud_fail_rate = 0.02;
    p->hard_share = 0.25;
    p->local_prefill_tps = 100;
    p->local_decode_tps = 20;
}

/* ---- a seeded generator (splitmix64) ------------------------------------------------------------ */

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t next(rng *r) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static double unif(rng *r) { return (double)(next(r) >> 11) * 0x1.0p-53; }
static int range(rng *r, int lo, int hi) { return lo + (int)(unif(r) * (hi - lo + 1)); } /* [lo, hi] */
static double normal(rng *r) { return sqrt(-2 * log(1 - unif(r))) * cos(6.283185307179586 * unif(r)); }
static double log_uniform(rng *r, double lo, double hi) { return exp(log(lo) + unif(r) * (log(hi) - log(lo))); }

/* ---- personal data, written as people write it ---------------------------------------------------- */

static void digits(rng *r, char *out, int n) {
    for (int i = 0; i < n; i++) out[i] = (char)('0' + range(r, 0, 9));
    out[n] = '\0';
}

static void make_cn_id(rng *r, char *out) {
    static const int w[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
    char seq[4];
    digits(r, seq, 3);
    unsigned area = (unsigned)range(r, 110000, 659000) % 1000000u, year = (unsigned)range(r, 1940, 2010) % 10000u;
    unsigned month = (unsigned)range(r, 1, 12) % 100u, day = (unsigned)range(r, 1, 28) % 100u;
    snprintf(out, 32, "%06u%04u%02u%02u%s", area, year, month, day, seq);
    int sum = 0;
    for (int i = 0; i < 17; i++) sum += (out[i] - '0') * w[i];
    out[17] = "10X98765432"[sum % 11];
    out[18] = '\0';
}

static void make_card(rng *r, char *out, bool spaced) {
    char d[17];
    d[0] = (char)('0' + (range(r, 0, 1) ? 4 : 5));
    for (int i = 1; i < 15; i++) d[i] = (char)('0' + range(r, 0, 9));
    int sum = 0; /* Luhn: double every second digit from the right, the check digit being first */
    for (int i = 0; i < 15; i++) {
        int v = d[14 - i] - '0';
        if (i % 2 == 0 && (v *= 2) > 9) v -= 9;
        sum += v;
    }
    d[15] = (char)('0' + (10 - sum % 10) % 10);
    d[16] = '\0';
    if (spaced) snprintf(out, 24, "%.4s %.4s %.4s %.4s", d, d + 4, d + 8, d + 12);
    else memcpy(out, d, 17);
}

static pii_class make_pii(rng *r, char *out, size_t cap) {
    char a[16], b[16];
    int kind = range(r, 0, 11);
    switch (kind) {
    case 0: case 1:
        snprintf(out, cap, "%s.%s%d@%s", range(r, 0, 1) ? "li.wei" : "anna", range(r, 0, 1) ? "k" : "m", range(r, 1, 999),
                 range(r, 0, 1) ? "example.com" : "mail.example.cn");
        return PII_EMAIL;
    case 2:
        digits(r, a, 4), digits(r, b, 4);
        snprintf(out, cap, "+86 13%d %s %s", range(r, 0, 9), a, b);
        return PII_PHONE;
    case 3:
        digits(r, a, 8);
        snprintf(out, cap, "1%d%d%s", range(r, 3, 9), range(r, 0, 9), a);
        return PII_PHONE;
    case 4:
        digits(r, a, 4);
        snprintf(out, cap, "+1 (415) %03d-%s", range(r, 200, 999), a);
        return PII_PHONE;
    case 5: make_cn_id(r, out); return PII_CN_ID;
    case 6: make_card(r, out, range(r, 0, 1)); return PII_BANK_CARD;
    case 7: snprintf(out, cap, "%d.%d.%d.%d", range(r, 1, 223), range(r, 0, 255), range(r, 0, 255), range(r, 1, 254)); return PII_IP;
    case 8: snprintf(out, cap, "2001:db8:%x::%x", range(r, 1, 0xffff), range(r, 1, 0xffff)); return PII_IP;
    case 9: {
        static const char al[] = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ0123456789";
        int n = snprintf(out, cap, "sk-");
        for (int i = 0; i < 40 && (size_t)n + 1 < cap; i++) out[n++] = al[range(r, 0, (int)sizeof al - 2)];
        out[n] = '\0';
        return PII_SECRET;
    }
    case 10: {
        static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        int n = snprintf(out, cap, "AKIA");
        for (int i = 0; i < 16; i++) out[n++] = al[range(r, 0, 31)];
        out[n] = '\0';
        return PII_SECRET;
    }
    default:
        digits(r, a, 6);
        snprintf(out, cap, "password: Tr0ub4dor%s", a);
        return PII_SECRET;
    }
}

static const char *const frames[] = {
    "Please draft a polite reply to %s about the delayed order.",
    "My contact is %s - can you format it for a business card?",
    "Summarise this note: the customer (%s) asked for a refund twice.",
    "请帮我写一封邮件，联系方式是 %s，谢谢。",
    "Is %s something I should keep private?",
    "Log line: user login from %s failed; what could be wrong?",
    "Remember %s and then tell me a joke about cats.",
};
static const char *const plain[] = {
    "What is the capital of Australia?", "Write a haiku about autumn rain.", "Explain recursion to a child.",
    "How many minutes are in a week?", "Translate 'good morning' into French.", "给我讲一个关于猫的笑话。",
    "Compare TCP and UDP in three bullet points.", "Suggest a name for a bakery.",
};

/* Whether secret (or its digits alone, for numbers) appears in text. */
static bool leaked(const char *text, const char *secret) {
    if (strstr(text, secret)) return true;
    char ds[64], dt[1024];
    size_t n = 0, m = 0;
    for (const char *p = secret; *p && n < sizeof ds - 1; p++)
        if (*p >= '0' && *p <= '9') ds[n++] = *p;
    ds[n] = '\0';
    if (n < 7) return false;
    for (const char *p = text; *p && m < sizeof dt - 1; p++)
        if (*p >= '0' && *p <= '9') dt[m++] = *p;
    dt[m] = '\0';
    return strstr(dt, ds) != NULL;
}

/* ---- the trace ---------------------------------------------------------------------------------- */

typedef struct cloud_sim { /* what cloud.c knows: its last connect failure, its failure count */
    double last_connect_fail, open_until;
    int fails;
} cloud_sim;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double percentile(double *v, int n, double q) {
    if (!n) return 0;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    int i = (int)ceil(q * n) - 1;
    return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

hai_status sim_run(const sim_params *p, const hybrid_config *cfg, sim_result *out, hai_error *err) {
    memset(out, 0, sizeof *out);
    if (p->n_requests <= 0 || p->days <= 0) return hai_fail(err, HAI_ERR_INVALID, "eval: requests and days must be positive");
    const router_policy *pol = &cfg->policy;
    pii_scanner *scan = NULL;
    hai_status st = pii_scanner_create((const char *const *)cfg->patterns, cfg->n_patterns, (const char *const *)cfg->keywords,
                                       cfg->n_keywords, &scan, err);
    if (st) return st;
    int n = p->n_requests, days = p->days;
    double span = 86400.0 * days, *lat[SIM_ROUTES];
    int nlat[SIM_ROUTES] = {0};
    int64_t *day_tokens = calloc((size_t)days, sizeof *day_tokens);
    /* outages: windows of exponential length until the wanted share of time is covered */
    int n_out = 0, cap_out = 64;
    double (*outage)[2] = malloc((size_t)cap_out * sizeof *outage);
    for (int i = 0; i < SIM_ROUTES; i++) lat[i] = malloc((size_t)n * sizeof(double));
    if (!day_tokens || !outage || !lat[0] || !lat[1] || !lat[2]) {
        st = hai_fail(err, HAI_ERR_NOMEM, "eval: out of memory");
        goto done;
    }
    rng r = {p->seed * 0x2545F4914F6CDD1Dull + 17};
    for (double down = 0; down < p->outage_share * span && n_out < 100000;) {
        if (n_out == cap_out) {
            void *q = realloc(outage, (size_t)(cap_out *= 2) * sizeof *outage);
            if (!q) {
                st = hai_fail(err, HAI_ERR_NOMEM, "eval: out of memory");
                goto done;
            }
            outage = q;
        }
        double len = -log(1 - unif(&r)) * 1800, start = unif(&r) * span;
        outage[n_out][0] = start, outage[n_out][1] = start + len;
        n_out++;
        down += len;
    }
    cloud_sim cs = {.last_connect_fail = -1e18, .open_until = -1e18};
    int64_t spent = 0;
    int day_now = 0;
    double cooldown = cfg->has_cloud ? cfg->cloud.circuit_cooldown_s : 30;
    int trip = cfg->has_cloud ? cfg->cloud.circuit_failures : 3;
    const char *cloud_model = pol->n_cloud_models ? pol->cloud_models[0] : "some-cloud-model";

    for (int i = 0; i < n; i++) {
        double t = span * (i + unif(&r)) / n;
        int day = (int)(t / 86400);
        if (day != day_now) day_now = day, spent = 0;
        bool down = false;
        for (int k = 0; k < n_out && !down; k++) down = t >= outage[k][0] && t < outage[k][1];

        /* the request */
        char text[512], secret[96] = "";
        pii_class cls = PII_COUNT;
        if (unif(&r) < p->pii_share) {
            cls = make_pii(&r, secret, sizeof secret);
            snprintf(text, sizeof text, frames[range(&r, 0, (int)(sizeof frames / sizeof *frames) - 1)], secret);
            out->with_pii++;
        } else {
            snprintf(text, sizeof text, "%s", plain[range(&r, 0, (int)(sizeof plain / sizeof *plain) - 1)]);
        }
        router_features f = {0};
        double u = unif(&r);
        f.n_prompt_tokens = u < 0.5 ? range(&r, 8, 64) : u < 0.8 ? range(&r, 64, 512) : u < 0.95 ? range(&r, 512, 3000) : range(&r, 3000, 12000);
        f.max_tokens = unif(&r) < 0.4 ? 0 : (int32_t)log_uniform(&r, 16, 1024);
        f.model = unif(&r) < 0.04 ? cloud_model : "hai";
        f.deadline_ms = unif(&r) < 0.1 ? log_uniform(&r, 200, 5000) : 0;
        pii_scan_result sr;
        pii_scan(scan, text, strlen(text), &sr);
        for (int k = 0; k < PII_COUNT; k++) f.pii[k] = sr.count[k];
        f.pii_incomplete = sr.incomplete;
        bool hard = unif(&r) < p->hard_share;
        double entropy = hard ? 2.2 + 0.5 * normal(&r) : 0.7 + 0.3 * normal(&r);
        int32_t answer_cap = f.max_tokens > 0 ? f.max_tokens : pol->default_max_tokens;
        int32_t answer = range(&r, 20, 600);
        if (answer > answer_cap) answer = answer_cap;

        /* the state, as the live router would see it */
        router_state s = {.online = t - cs.last_connect_fail > cooldown, .circuit_open = t < cs.open_until,
                          .tokens_spent = spent, .local_prefill_tps = p->local_prefill_tps, .local_decode_tps = p->local_decode_tps};
        router_decision d = router_decide(&f, pol, &s);
        spent += d.reserve_tokens;
        uint32_t reasons = d.reasons;
        int final = 0; /* 0 local, 1 cloud, 2 escalated */
        double ms = d.pred_local_ms;
        bool call = d.route == ROUTE_CLOUD;
        if (d.route == ROUTE_CASCADE) {
            double draft_ms = 1000.0 * (f.n_prompt_tokens / p->local_prefill_tps + pol->cascade_tokens / p->local_decode_tps);
            if (entropy > pol->entropy_threshold && s.online && !s.circuit_open) {
                call = true;
                reasons = (reasons | 1u << R_LOW_CONFIDENCE) & ~(1u << R_DEFAULT);
                ms = draft_ms + d.pred_cloud_ms;
            }
        } else if (call) {
            ms = d.pred_cloud_ms;
        }
        int64_t used = 0;
        if (!call) pii_scan_result_free(&sr);
        if (call) {
            /* what would leave the device */
            char *sent = text;
            if (d.redact) {
                pii_map map = {0};
                sent = pii_redact(text, strlen(text), sr.spans, sr.n, pol->privacy, &map);
                pii_map_free(&map);
                if (!sent) {
                    pii_scan_result_free(&sr);
                    st = hai_fail(err, HAI_ERR_NOMEM, "eval: out of memory");
                    goto done;
                }
            }
            if (cls != PII_COUNT && leaked(sent, secret)) {
                if (pol->privacy[cls] == PII_ALLOW) out->pii_bytes_allowed += (int64_t)strlen(secret);
                else out->pii_bytes_sent += (int64_t)strlen(secret);
            }
            if (sent != text) free(sent);
            pii_scan_result_free(&sr);
            /* the call: an outage is a connect failure; otherwise it fails now and then */
            bool ok = !down && unif(&r) >= p->cloud_fail_rate;
            int32_t cloud_prompt = (int32_t)(f.n_prompt_tokens * (0.85 + 0.25 * unif(&r))); /* its own tokenizer */
            if (ok) {
                cs.fails = 0;
                used = cloud_prompt + answer;
                final = d.route == ROUTE_CASCADE ? 2 : 1;
            } else {
                out->cloud_failures++;
                if (down) cs.last_connect_fail = t;
                else used = cloud_prompt; /* a failure upstream may still be billed for the prompt */
                if (++cs.fails >= trip) cs.open_until = t + cooldown;
                reasons = (reasons | 1u << R_CLOUD_ERROR) & ~(1u << R_DEFAULT);
                ms += d.pred_local_ms;
                final = 0;
            }
        }
        if (d.reserve_tokens) spent += used - d.reserve_tokens;
        day_tokens[day] += used;
        out->cloud_tokens += used;
        if (!call) reasons &= ~(1u << R_PRIVACY_REDACTED); /* nothing left the device */
        /* the device answers what fits its context, and what does not when the router asked to
         * truncate (decided so) or after a failed call (the fallback keeps what fits) */
        bool answered = final != 0 || f.n_prompt_tokens < (int32_t)pol->local_ctx || d.truncate || call;
        if (!answered) out->unanswered++;
        for (int k = 0; k < R_COUNT; k++)
            if (reasons & (1u << k)) out->by_reason[k]++;
        out->by_route[final]++;
        lat[final][nlat[final]++] = ms;
        if (down) {
            out->offline_requests++;
            out->offline_answered += answered;
        }
    }
    out->n = n;
    for (int k = 0; k < SIM_ROUTES; k++) {
        out->p50_ms[k] = percentile(lat[k], nlat[k], 0.5);
        out->p95_ms[k] = percentile(lat[k], nlat[k], 0.95);
    }
    out->budget_tokens = pol->daily_tokens;
    for (int k = 0; k < days; k++) {
        if (day_tokens[k] > out->max_day_tokens) out->max_day_tokens = day_tokens[k];
        if (pol->daily_tokens > 0 && day_tokens[k] - pol->daily_tokens > out->budget_overrun)
            out->budget_overrun = day_tokens[k] - pol->daily_tokens;
    }
done:
    pii_scanner_free(scan);
    free(day_tokens);
    free(outage);
    for (int i = 0; i < SIM_ROUTES; i++) free(lat[i]);
    return st;
}
