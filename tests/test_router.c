/* The routing decision rule by rule, and the privacy detectors: what they must find, what they
 * must leave alone, checksums, redaction and restoration (including across stream pieces). */
#include "check.h"
#include "router/privacy.h"
#include "router/router.h"

static router_policy policy_cloud(void) {
    router_policy p;
    router_policy_defaults(&p);
    p.cloud_enabled = true;
    p.local_ctx = 2048;
    snprintf(p.cloud_models[0], sizeof p.cloud_models[0], "gpt-4o");
    p.n_cloud_models = 1;
    return p;
}

static router_state online(void) {
    router_state s = {.online = true, .local_prefill_tps = 200, .local_decode_tps = 20};
    return s;
}

#define HAS(d, r) (((d).reasons >> (r)) & 1u)

static void rules(void) {
    router_features f = {.n_prompt_tokens = 100, .max_tokens = 100};
    router_policy p = policy_cloud();
    router_state s = online();
    /* nothing special: local, DEFAULT */
    router_decision d = router_decide(&f, &p, &s);
    CHECK(d.route == ROUTE_LOCAL && HAS(d, R_DEFAULT) && d.reserve_tokens == 0);
    /* no cloud at all: local whatever else */
    router_policy none;
    router_policy_defaults(&none);
    f.n_prompt_tokens = 10000;
    d = router_decide(&f, &none, &s);
    CHECK(d.route == ROUTE_LOCAL && HAS(d, R_CONTEXT_TOO_LONG) && d.truncate);
    f.n_prompt_tokens = 100;
    /* 1. privacy: keep-local closes the cloud even for a cloud model by name */
    f.pii[PII_EMAIL] = 1;
    f.model = "gpt-4o";
    d = router_decide(&f, &p, &s);
    CHECK(d.route == ROUTE_LOCAL && HAS(d, R_PRIVACY_KEEP_LOCAL) && HAS(d, R_CLOUD_MODEL_REQUESTED) && !HAS(d, R_DEFAULT));
    /* redact: the cloud may go, with placeholders */
    p.privacy[PII_EMAIL] = PII_REDACT;
    d = router_decide(&f, &p, &s);
    CHECK(d.route == ROUTE_CLOUD && d.redact && HAS(d, R_PRIVACY_REDACTED) && HAS(d, R_CLOUD_MODEL_REQUESTED));
    /* allow: no redaction */
    p.privacy[PII_EMAIL] = PII_ALLOW;
    d = router_decide(&f, &p, &s);
    CHECK(d.route == ROUTE_CLOUD && !d.redact && !HAS(d, R_PRIVACY_REDACTED));
    f.pii[PII_EMAIL] = 0;
    /* 2. connectivity */
    s.online = false;
    d = router_decide(&f, &p, &s);
    CHECK(d.route == ROUTE_LOCAL && HAS(d, R_OFFLINE) && HAS(d, R_CLOUD_MODEL_REQUESTED));
    s = online();
    s.circuit_open = true;
    d = router_decide(&f, &p, &s);
    CHECK(d.route == ROUTE_LOCAL && HAS(d, R_CIRCUIT_OPEN));
    s = online();
    p.offline = true;
    d = router_decide(&f, &p, &s);
    CHECK(d.route == ROUTE_LOCAL && HAS(d, R_OFFLINE));
    p.offline = false;
    f.model = NULL;
    /* 3. capability: prompt + max_tokens beyond the local context */
    f.n_prompt_tokens = 2000;
    d = router_decide(&f, &p, &s);
    CHECK(d.route == ROUTE_CLOUD && HAS(d, R_CONTEXT_TOO_LONG) && d.reserve_tokens == 2100 + 2000 / 4 + 16); /* the cloud's tokenizer margin */
    s.online = false; /* ...offline: still answered here, the prompt fits, so no truncation */
    d = router_decide(&f, &p, &s);
    CHECK(d.route == ROUTE_LOCAL && HAS(d, R_CONTEXT_TOO_LONG) && HAS(d, R_OFFLINE) && !d.truncate);
    f.n_prompt_tokens = 5000; /* ...and a prompt that does not fit keeps its end */
    d = router_decide(&f, &p, &s);
    CHECK(d.route == ROUTE_LOCAL && d.truncate);
    s = online();
    f.n_prompt_tokens = 100;
    /* 4. budget: the worst case of this request must fit */
    p.daily_tokens = 1000;
    s.tokens_spent = 850;
    f.model = "gpt-4o";
    d = router_decide(&f, &p, &s);
    CHECK(d.route == ROUTE_LOCAL && HAS(d, R_BUDGET_SPENT));
    s.tokens_spent = 759; /* 759 + 200 + 25 + 16 = 1000 */
    d = router_decide(&f, &p, &s);
    CHECK(d.route == ROUTE_CLOUD && d.reserve_tokens == 241);
    s.tokens_spent = 760;
    d = router_decide(&f, &p, &s);
    CHECK(d.route == ROUTE_LOCAL && HAS(d, R_BUDGET_SPENT));
    p.daily_tokens = 0;
    p.daily_cost = 0.01;
    p.cost_per_1k_tokens = 0.06; /* 241 tokens = 0.0145 */
    s.tokens_spent = 0;
    d = router_decide(&f, &p, &s);
    CHECK(d.route == ROUTE_LOCAL && HAS(d, R_BUDGET_SPENT));
    p.daily_cost = 0;
    f.model = NULL;
    /* 5. latency: local predicted 100/200 + 500/20 = 25.5 s; cloud 0.5 + 500/60 = 8.8 s */
    f.max_tokens = 500;
    f.deadline_ms = 10000;
    d = router_decide(&f, &p, &s);
    CHECK(d.route == ROUTE_CLOUD && HAS(d, R_DEADLINE));
    CHECK_NEAR(d.pred_local_ms, 25500, 1);
    CHECK_NEAR(d.pred_cloud_ms, 500 + 500000.0 / 60, 1);
    f.deadline_ms = 30000; /* the device meets it */
    d = router_decide(&f, &p, &s);
    CHECK(d.route == ROUTE_LOCAL && HAS(d, R_DEFAULT));
    f.deadline_ms = 0;
    f.max_tokens = 100;
    /* 6. cascade and preference */
    p.cascade = true;
    d = router_decide(&f, &p, &s);
    CHECK(d.route == ROUTE_CASCADE && HAS(d, R_DEFAULT) && d.reserve_tokens == 241);
    p.prefer_cloud = true;
    d = router_decide(&f, &p, &s);
    CHECK(d.route == ROUTE_CLOUD && HAS(d, R_DEFAULT));
    char rs[128];
    route_reasons_str((1u << R_PRIVACY_REDACTED) | (1u << R_DEFAULT), rs, sizeof rs);
    CHECK(!strcmp(rs, "PRIVACY_REDACTED,DEFAULT"));
    CHECK(!strcmp(route_name(ROUTE_CASCADE), "local->cloud"));
}

static void expect_class(const pii_scanner *sc, const char *text, pii_class cls, const char *want) {
    pii_span sp[8];
    size_t n;
    pii_scan(sc, text, strlen(text), sp, 8, &n);
    bool found = false;
    for (size_t i = 0; i < n && i < 8; i++)
        if (sp[i].cls == cls && sp[i].end - sp[i].start == strlen(want) && !memcmp(text + sp[i].start, want, strlen(want))) found = true;
    CHECK_MSG(found, "'%s': no %s span '%s' (%zu spans)", text, pii_class_name(cls), want, n);
}

static void expect_none(const pii_scanner *sc, const char *text) {
    pii_span sp[8];
    size_t n;
    pii_scan(sc, text, strlen(text), sp, 8, &n);
    CHECK_MSG(n == 0, "'%s': %zu spans, first %s '%.*s'", text, n, n ? pii_class_name(sp[0].cls) : "",
              n ? (int)(sp[0].end - sp[0].start) : 0, n ? text + sp[0].start : "");
}

static void detectors(void) {
    const char *pats[] = {"ACME-[0-9]{6}"}, *kws[] = {"Project Falcon"};
    pii_scanner *sc;
    hai_error err = {0};
    CHECK_EQ_INT(pii_scanner_create(pats, 1, kws, 1, &sc, &err), HAI_OK);
    expect_class(sc, "write to jane.doe+tag@example.co.uk today", PII_EMAIL, "jane.doe+tag@example.co.uk");
    expect_class(sc, "call +1 415 555 2671 now", PII_PHONE, "+1 415 555 2671");
    expect_class(sc, "call +44 20 7946 0958", PII_PHONE, "+44 20 7946 0958");
    expect_class(sc, "my number is (415) 555-2671.", PII_PHONE, "(415) 555-2671");
    expect_class(sc, "手机号13812345678请回电", PII_PHONE, "13812345678");
    expect_class(sc, "tel +86 138 1234 5678", PII_PHONE, "+86 138 1234 5678");
    expect_class(sc, "ID 11010519491231002X ok", PII_CN_ID, "11010519491231002X");
    expect_class(sc, "card 4111 1111 1111 1111 exp", PII_BANK_CARD, "4111 1111 1111 1111");
    expect_class(sc, "card 5500-0000-0000-0004", PII_BANK_CARD, "5500-0000-0000-0004");
    expect_class(sc, "server at 192.168.1.20 down", PII_IP, "192.168.1.20");
    expect_class(sc, "v6 2001:db8::8a2e:370:7334 up", PII_IP, "2001:db8::8a2e:370:7334");
    expect_class(sc, "key sk-proj-abcdefghijklmnopqrstuvwx123 leaked", PII_SECRET, "sk-proj-abcdefghijklmnopqrstuvwx123");
    expect_class(sc, "aws AKIAIOSFODNN7EXAMPLE", PII_SECRET, "AKIAIOSFODNN7EXAMPLE");
    expect_class(sc, "password: hunter2hunter2", PII_SECRET, "password: hunter2hunter2");
    expect_class(sc, "ticket ACME-123456 open", PII_CUSTOM, "ACME-123456");
    expect_class(sc, "about project falcon plans", PII_CUSTOM, "project falcon");
    /* not personal data: arithmetic, times, dates, version numbers, wrong checksums */
    expect_none(sc, "What is 12 + 7? It is 19.");
    expect_none(sc, "Meet at 12:30:45 on 2024-05-01.");
    expect_none(sc, "version 1.2.3 and 3.14159");
    expect_none(sc, "4111 1111 1111 1112"); /* fails Luhn */
    expect_none(sc, "110105194912310021");  /* wrong ID check digit, fails Luhn too */
    expect_none(sc, "The year 2023 had 365 days and 8760 hours.");
    CHECK(pii_luhn_ok("79927398713", 11) && !pii_luhn_ok("79927398710", 11));
    CHECK(pii_cn_id_ok("11010519491231002X") && !pii_cn_id_ok("110105194912310021"));
    /* redaction and restoration; the same value, the same placeholder */
    const char *t = "Mail a@b.com or a@b.com, call +1 415 555 2671";
    pii_span sp[8];
    size_t n;
    pii_scan(sc, t, strlen(t), sp, 8, &n);
    pii_action act[PII_COUNT] = {PII_REDACT, PII_REDACT, PII_REDACT, PII_REDACT, PII_REDACT, PII_REDACT, PII_REDACT};
    pii_map map = {0};
    char *red = pii_redact(t, strlen(t), sp, n, act, &map);
    CHECK(red && !strcmp(red, "Mail [EMAIL_1] or [EMAIL_1], call [PHONE_1]"));
    size_t rl;
    char *back = pii_restore(red, strlen(red), &map, &rl);
    CHECK(back && !strcmp(back, t));
    /* a reply streamed in pieces: the tail that may start a placeholder is held back */
    const char *reply = "I wrote to [EMAIL_1] and [PHO";
    CHECK_EQ_INT(pii_restore_holdback(reply, strlen(reply), &map), 4);
    CHECK_EQ_INT(pii_restore_holdback("done.", 5, &map), 0);
    free(red);
    free(back);
    pii_map_free(&map);
    /* bad user patterns are refused with the pattern named */
    pii_scanner *bad;
    const char *badp[] = {"([unclosed"};
    CHECK_EQ_INT(pii_scanner_create(badp, 1, NULL, 0, &bad, &err), HAI_ERR_INVALID);
    CHECK(strstr(err.msg, "[unclosed") != NULL);
    pii_scanner_free(sc);
}

int main(void) {
    rules();
    detectors();
    return check_done("test_router");
}
