/* The routing decision rule by rule, and the privacy detectors: what they must find, what they
 * must leave alone, checksums, redaction and restoration (including across stream pieces). */
#include <time.h>

#include "check.h"
#include "cloud/cloud.h"
#include "router/config.h"
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
    /* ... but not when the data is in a field a placeholder cannot stand in (a stop string) */
    f.pii_verbatim[PII_EMAIL] = 1;
    d = router_decide(&f, &p, &s);
    CHECK(d.route == ROUTE_LOCAL && HAS(d, R_PRIVACY_KEEP_LOCAL));
    /* allow: no redaction */
    p.privacy[PII_EMAIL] = PII_ALLOW;
    d = router_decide(&f, &p, &s);
    CHECK(d.route == ROUTE_CLOUD && !d.redact);
    f.pii_verbatim[PII_EMAIL] = 0;
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
    pii_scan_result r;
    pii_scan(sc, text, strlen(text), &r);
    bool found = false;
    for (size_t i = 0; i < r.n; i++)
        if ((r.spans[i].classes >> cls & 1u) && r.spans[i].end - r.spans[i].start == strlen(want) &&
            !memcmp(text + r.spans[i].start, want, strlen(want)))
            found = true;
    CHECK_MSG(found && !r.incomplete, "'%s': no %s span '%s' (%zu spans, first '%.*s')", text, pii_class_name(cls), want, r.n,
              r.n ? (int)(r.spans[0].end - r.spans[0].start) : 0, r.n ? text + r.spans[0].start : "");
    pii_scan_result_free(&r);
}

static void expect_none(const pii_scanner *sc, const char *text) {
    pii_scan_result r;
    pii_scan(sc, text, strlen(text), &r);
    CHECK_MSG(r.n == 0 && !r.incomplete, "'%s': %zu spans, first %s '%.*s'", text, r.n, r.n ? pii_class_name(r.spans[0].cls) : "",
              r.n ? (int)(r.spans[0].end - r.spans[0].start) : 0, r.n ? text + r.spans[0].start : "");
    pii_scan_result_free(&r);
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
    pii_scan_result sr;
    pii_scan(sc, t, strlen(t), &sr);
    pii_action act[PII_COUNT] = {PII_REDACT, PII_REDACT, PII_REDACT, PII_REDACT, PII_REDACT, PII_REDACT, PII_REDACT};
    pii_map map = {0};
    char *red = pii_redact(t, strlen(t), sr.spans, sr.n, act, &map);
    pii_scan_result_free(&sr);
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

/* The address and number syntaxes the standards allow (RFC 5322 / 6531 addresses, E.123 and
 * national phone formats, RFC 4291 IPv6), each found whole: a part left out goes out as text. */
static void syntaxes(void) {
    pii_scanner *sc;
    hai_error err = {0};
    CHECK_EQ_INT(pii_scanner_create(NULL, 0, NULL, 0, &sc, &err), HAI_OK);
    expect_class(sc, "write to O'Brien@example.org now", PII_EMAIL, "O'Brien@example.org");
    expect_class(sc, "x a.b-c_d+e=f{g}|h~i#j$k%l&m*n/o?p^q`r!s@sub.example.co.uk y", PII_EMAIL, "a.b-c_d+e=f{g}|h~i#j$k%l&m*n/o?p^q`r!s@sub.example.co.uk");
    expect_class(sc, "quoted \"john doe\"@example.org here", PII_EMAIL, "\"john doe\"@example.org");
    expect_class(sc, "literal user@[192.0.2.1] and", PII_EMAIL, "user@[192.0.2.1]");
    expect_class(sc, "v6 literal user@[IPv6:2001:db8::1].", PII_EMAIL, "user@[IPv6:2001:db8::1]");
    expect_class(sc, "utf8 josé.garcía@ejemplo.es ok", PII_EMAIL, "josé.garcía@ejemplo.es");
    expect_class(sc, "idn 用户@例子.中国 ok", PII_EMAIL,
                 "用户@例子.中国");
    expect_class(sc, "punycode ivan@example.xn--p1ai ok", PII_EMAIL, "ivan@example.xn--p1ai");
    /* "send mail to" in Chinese, straight before the address */
    expect_class(sc, "发邮件到john@example.com谢谢", PII_EMAIL, "john@example.com");
    expect_class(sc, "mail john@example.com.", PII_EMAIL, "john@example.com");
    expect_class(sc, "and then...bob@example.com", PII_EMAIL, "bob@example.com");
    /* '/', '?', '&' and '=' are atext: in a URL the local part runs back to the scheme's colon */
    expect_class(sc, "a long path https://example.com/some/long/path/to/the/page?with=query&email=jane.doe@example.com ok", PII_EMAIL,
                 "//example.com/some/long/path/to/the/page?with=query&email=jane.doe@example.com");
    expect_class(sc, "call 0049 30 12345678", PII_PHONE, "0049 30 12345678");
    expect_class(sc, "call +49 (0)30 12345678.", PII_PHONE, "+49 (0)30 12345678");
    expect_class(sc, "call 555 123 4567 today", PII_PHONE, "555 123 4567");
    expect_class(sc, "call 1-800-555-0199 today", PII_PHONE, "1-800-555-0199");
    expect_class(sc, "call +1-555-123-4567 today", PII_PHONE, "+1-555-123-4567");
    expect_class(sc, "London 020 7946 0958", PII_PHONE, "020 7946 0958");
    expect_class(sc, "Paris 06 12 34 56 78", PII_PHONE, "06 12 34 56 78");
    expect_class(sc, "mobile 07700 900123", PII_PHONE, "07700 900123");
    expect_class(sc, "tel 0086 138 1234 5678", PII_PHONE, "0086 138 1234 5678");
    expect_class(sc, "mapped ::ffff:192.0.2.128 here", PII_IP, "::ffff:192.0.2.128");
    expect_class(sc, "link fe80::1%eth0 up", PII_IP, "fe80::1");
    expect_class(sc, "at 2001:db8::1: no route", PII_IP, "2001:db8::1");
    expect_class(sc, "padded 192.168.001.020 here", PII_IP, "192.168.001.020");
    expect_class(sc, "amex 3782 822463 10005 ok", PII_BANK_CARD, "3782 822463 10005");
    expect_none(sc, "on 05-06-2024 10:30 we met");
    expect_none(sc, "std::vector and a::b, 12:30:45");
    expect_none(sc, "ratio 0.5 0.25 and 01.02.2024");
    /* overlapping detections become one span holding both classes, redacted if either is */
    const char *t = "password: bob@example.org";
    pii_scan_result r;
    pii_scan(sc, t, strlen(t), &r);
    CHECK(r.n == 1 && r.spans[0].start == 0 && r.spans[0].end == strlen(t) && (r.spans[0].classes >> PII_SECRET & 1u) &&
          (r.spans[0].classes >> PII_EMAIL & 1u) && r.count[PII_SECRET] == 1 && r.count[PII_EMAIL] == 1);
    pii_action act[PII_COUNT];
    for (int c = 0; c < PII_COUNT; c++) act[c] = PII_ALLOW;
    act[PII_EMAIL] = PII_REDACT;
    pii_map map = {0};
    char *red = pii_redact(t, strlen(t), r.spans, r.n, act, &map);
    CHECK_MSG(red && !strstr(red, "bob"), "%s", red ? red : "NULL");
    free(red);
    pii_map_free(&map);
    pii_scan_result_free(&r);
    pii_scanner_free(sc);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* text of n bytes: unit repeated, then tail */
static char *repeat(const char *unit, size_t n, const char *tail) {
    size_t ul = strlen(unit), tl = strlen(tail);
    char *t = malloc(n + tl + 1);
    for (size_t i = 0; i < n; i++) t[i] = unit[i % ul];
    memcpy(t + n, tail, tl + 1);
    return t;
}

/* The gate fails closed: hostile text in front of a real address does not hide it, and a detector
 * that cannot finish makes the scan incomplete, which the router reads as personal data. */
static void fail_closed(void) {
    pii_scanner *sc;
    hai_error err = {0};
    const char *bad[] = {"(a|aa)+b"}; /* backtracks exponentially on a run of a's */
    CHECK_EQ_INT(pii_scanner_create(bad, 1, NULL, 0, &sc, &err), HAI_OK);
    /* "x@" + "ab." * 1500 ran the e-mail pattern out of JIT stack, and the scan read that as "no more" */
    char *t = repeat("ab.", 4500, " then write to bob@example.org please");
    memcpy(t, "x@", 2);
    pii_scan_result r;
    pii_scan(sc, t, strlen(t), &r);
    bool found = false;
    for (size_t i = 0; i < r.n; i++) found |= r.spans[i].end - r.spans[i].start == 15 && !memcmp(t + r.spans[i].start, "bob@example.org", 15);
    CHECK_MSG(found && !r.incomplete, "the address after the hostile prefix: found %d, incomplete %d (%s)", found, r.incomplete, r.why);
    pii_scan_result_free(&r);
    free(t);
    /* a private key of 12 MB without its END line: the whole key is one secret */
    size_t big = 12u << 20;
    t = repeat("MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n", big, "");
    const char *hdr = "-----BEGIN RSA PRIVATE KEY-----\n";
    memcpy(t, hdr, strlen(hdr));
    pii_scan(sc, t, big, &r);
    CHECK_MSG(!r.incomplete && r.n == 1 && r.spans[0].start == 0 && r.spans[0].end == big && r.spans[0].cls == PII_SECRET,
              "12 MB key: %zu spans, incomplete %d (%s)", r.n, r.incomplete, r.why);
    pii_scan_result_free(&r);
    free(t);
    /* a custom pattern that hits the match limit: the scan says so, names the pattern, and the
     * built-in detectors still find the address after it */
    t = repeat("a", 40, " and bob@example.org");
    pii_scan(sc, t, strlen(t), &r);
    CHECK_MSG(r.incomplete && strstr(r.why, "(a|aa)+b") && r.count[PII_EMAIL] == 1, "incomplete %d, why '%s', emails %zu", r.incomplete,
              r.why, r.count[PII_EMAIL]);
    pii_scan_result_free(&r);
    free(t);
    pii_scanner_free(sc);
    /* the router: an incomplete scan keeps the request on the device with a reason of its own,
     * even for a cloud model asked by name; only a policy that allows every class lets it go */
    router_policy p = policy_cloud();
    router_state s = online();
    router_features f = {.n_prompt_tokens = 100, .max_tokens = 100, .model = "gpt-4o", .pii_incomplete = true};
    router_decision d = router_decide(&f, &p, &s);
    CHECK(d.route == ROUTE_LOCAL && HAS(d, R_PRIVACY_SCAN_INCOMPLETE) && !HAS(d, R_DEFAULT));
    f.n_prompt_tokens = 5000; /* too long for the device: still local, truncated */
    d = router_decide(&f, &p, &s);
    CHECK(d.route == ROUTE_LOCAL && HAS(d, R_PRIVACY_SCAN_INCOMPLETE) && d.truncate);
    for (int c = 0; c < PII_COUNT; c++) p.privacy[c] = PII_ALLOW;
    d = router_decide(&f, &p, &s);
    CHECK(d.route == ROUTE_CLOUD && !HAS(d, R_PRIVACY_SCAN_INCOMPLETE));
    char rs[128];
    route_reasons_str(1u << R_PRIVACY_SCAN_INCOMPLETE, rs, sizeof rs);
    CHECK(!strcmp(rs, "PRIVACY_SCAN_INCOMPLETE"));
}

/* The worst cases: texts made to make each detector work hardest. Every one must scan in time
 * linear in its length (4x the text, about 4x the time, never 16x) and finish (not incomplete).
 * The figures are printed: seconds per MB. */
static void worst_case(void) {
    pii_scanner *sc;
    hai_error err = {0};
    const char *pats[] = {"ACME-[0-9]{6}"}, *kws[] = {"Project Falcon"};
    CHECK_EQ_INT(pii_scanner_create(pats, 1, kws, 1, &sc, &err), HAI_OK);
    static const char *const units[] = {
        "ab.",              /* domain labels after one '@' */
        "x@",               /* an '@' every other byte */
        "a@b.",             /* domains that never reach a TLD */
        "aaaaaaaaaaaaaaa",  /* one long local part: '@' never comes */
        "a.b-c+d",          /* atext and dots */
        "1 ",               /* digits grouped by spaces: cards, phones */
        "+1 ",              /* international prefixes */
        "00 1",             /* 00 prefixes */
        "0 1 2 3 ",         /* national numbers */
        "1.",               /* IPv4 dots */
        "1:",               /* IPv6 colons */
        "::a",              /* compressed IPv6 */
        "-----BEGIN ",      /* key headers with no key */
        "password: ",       /* secret keywords */
        "sk-",              /* key prefixes */
        "中@",    /* ideographs and '@' */
        "\"@",               /* quotes and '@' */
        "Project Falco",    /* a keyword almost */
    };
    double worst = 0;
    const char *worst_unit = "";
    for (size_t u = 0; u < sizeof units / sizeof *units; u++) {
        double t_small = 0, t_big = 0;
        for (int pass = 0; pass < 2; pass++) {
            size_t n = pass ? 1u << 20 : 1u << 16;
            char *t = repeat(units[u], n, " bob@example.org");
            double dt = 1e9;
            for (int rep = 0; rep < 5; rep++) { /* the best of five: a run the scheduler interrupted says nothing */
                pii_scan_result r;
                double t0 = now_s();
                pii_scan(sc, t, strlen(t), &r);
                double d = now_s() - t0;
                dt = d < dt ? d : dt;
                CHECK_MSG(!r.incomplete, "unit '%s': incomplete (%s)", units[u], r.why);
                pii_scan_result_free(&r);
            }
            free(t);
            if (pass) t_big = dt;
            else t_small = dt;
        }
        /* a ratio, not a time: the machine's speed cancels. 16 times the text: linear is 16 times the
         * time, quadratic 256; 48 leaves room for a busy machine and caches (a 1 MB text does not
         * stay in L2), and 4 ms for timer noise */
        CHECK_MSG(t_big <= 48 * t_small + 0.004, "unit '%s': 64 KB in %.4f s, 1 MB in %.4f s (not linear)", units[u], t_small, t_big);
        if (t_big > worst) worst = t_big, worst_unit = units[u];
    }
    fprintf(stderr, "privacy scan, worst case: %.3f s per MB (text of '%s' repeated)\n", worst, worst_unit);
    pii_scanner_free(sc);
}

/* The policy file: a key given twice is refused, naming it (a second "patterns" overflowed the
 * first's array); an API key that could end its header line is refused at load. */
static void policy_file(void) {
    hybrid_config c;
    hai_error err = {0};
    const char *dup = "{\"privacy\": {\"patterns\": [\"a\"], \"patterns\": [\"b\", \"c\", \"d\", \"e\"]}}";
    CHECK_EQ_INT(hybrid_config_parse(dup, strlen(dup), &c, &err), HAI_ERR_INVALID);
    CHECK_MSG(strstr(err.msg, "duplicate key 'patterns' in privacy"), "%s", err.msg);
    const char *dup2 = "{\"privacy\": {\"email\": \"keep_local\", \"email\": \"allow\"}}";
    CHECK_EQ_INT(hybrid_config_parse(dup2, strlen(dup2), &c, &err), HAI_ERR_INVALID);
    CHECK_MSG(strstr(err.msg, "duplicate key 'email'"), "%s", err.msg);
    const char *dup3 = "{\"cloud\": {\"base_url\": \"http://x/v1\", \"model\": \"m\"}, \"cloud\": {}}";
    CHECK_EQ_INT(hybrid_config_parse(dup3, strlen(dup3), &c, &err), HAI_ERR_INVALID);
    CHECK_MSG(strstr(err.msg, "duplicate key 'cloud' in the file"), "%s", err.msg);
    const char *ok = "{\"privacy\": {\"patterns\": [\"a\", \"b\"], \"keywords\": [\"k\"]}}";
    CHECK_EQ_INT(hybrid_config_parse(ok, strlen(ok), &c, &err), HAI_OK);
    CHECK(c.n_patterns == 2 && c.n_keywords == 1 && !strcmp(c.patterns[1], "b"));
    hybrid_config_free(&c);
    const char *keyed = "{\"cloud\": {\"base_url\": \"http://127.0.0.1:9/v1\", \"model\": \"m\", \"api_key_env\": \"HAI_TEST_KEY\"}}";
    setenv("HAI_TEST_KEY", "sk-abc\r\nX-Injected: 1", 1);
    CHECK_EQ_INT(hybrid_config_parse(keyed, strlen(keyed), &c, &err), HAI_ERR_INVALID);
    CHECK_MSG(strstr(err.msg, "HAI_TEST_KEY") && !strstr(err.msg, "sk-abc"), "%s", err.msg); /* named, never shown */
    setenv("HAI_TEST_KEY", "sk-abc def", 1);
    CHECK_EQ_INT(hybrid_config_parse(keyed, strlen(keyed), &c, &err), HAI_ERR_INVALID);
    setenv("HAI_TEST_KEY", "sk-proj-abc_DEF-123", 1);
    CHECK_EQ_INT(hybrid_config_parse(keyed, strlen(keyed), &c, &err), HAI_OK);
    CHECK(!strcmp(c.cloud.api_key, "sk-proj-abc_DEF-123"));
    hybrid_config_free(&c);
    /* and the client refuses one however it was configured */
    cloud_config cc;
    cloud_config_defaults(&cc);
    snprintf(cc.base_url, sizeof cc.base_url, "http://127.0.0.1:9/v1");
    snprintf(cc.api_key, sizeof cc.api_key, "k\nHost: evil");
    cloud *cl = NULL;
    CHECK_EQ_INT(cloud_create(&cc, &cl, &err), HAI_ERR_INVALID);
    CHECK(cl == NULL);
    unsetenv("HAI_TEST_KEY");
}

/* Requests with tools: the device when its template shows tools (or the policy says so), the
 * cloud otherwise, unless privacy or the network keeps them here. */
static void tools_rule(void) {
    router_features f = {.n_prompt_tokens = 100, .max_tokens = 100, .tools = true, .tools_template = true};
    router_policy p = policy_cloud();
    router_state s = online();
    router_decision d = router_decide(&f, &p, &s);
    CHECK(d.route == ROUTE_LOCAL && HAS(d, R_DEFAULT));
    f.tools_template = false;
    d = router_decide(&f, &p, &s);
    CHECK(d.route == ROUTE_CLOUD && HAS(d, R_TOOLS_NOT_LOCAL) && !HAS(d, R_DEFAULT) && d.reserve_tokens > 0);
    p.tools_route = TOOLS_ROUTE_LOCAL;
    d = router_decide(&f, &p, &s);
    CHECK(d.route == ROUTE_LOCAL && !HAS(d, R_TOOLS_NOT_LOCAL));
    p.tools_route = TOOLS_ROUTE_CLOUD;
    f.tools_template = true;
    d = router_decide(&f, &p, &s);
    CHECK(d.route == ROUTE_CLOUD && HAS(d, R_TOOLS_NOT_LOCAL));
    f.pii[PII_PHONE] = 1; /* kept local: privacy first */
    d = router_decide(&f, &p, &s);
    CHECK(d.route == ROUTE_LOCAL && HAS(d, R_PRIVACY_KEEP_LOCAL) && HAS(d, R_TOOLS_NOT_LOCAL));
    f.pii[PII_PHONE] = 0;
    s.online = false;
    d = router_decide(&f, &p, &s);
    CHECK(d.route == ROUTE_LOCAL && HAS(d, R_OFFLINE));
    f.tools = false; /* no tools: the rule is silent */
    s.online = true;
    d = router_decide(&f, &p, &s);
    CHECK(d.route == ROUTE_LOCAL && !HAS(d, R_TOOLS_NOT_LOCAL));
    hybrid_config c;
    hai_error err = {0};
    const char *ok = "{\"tools\": \"cloud\"}", *bad = "{\"tools\": \"sometimes\"}";
    CHECK_EQ_INT(hybrid_config_parse(ok, strlen(ok), &c, &err), HAI_OK);
    CHECK(c.policy.tools_route == TOOLS_ROUTE_CLOUD);
    hybrid_config_free(&c);
    CHECK_EQ_INT(hybrid_config_parse(bad, strlen(bad), &c, &err), HAI_ERR_INVALID);
    CHECK(strstr(err.msg, "tools") != NULL);
}

typedef struct calls_seen {
    char text[512], calls[512];
} calls_seen;

static bool seen_text(void *u, const char *t, size_t n) {
    calls_seen *c = u;
    strncat(c->text, t, n < sizeof c->text - strlen(c->text) - 1 ? n : sizeof c->text - strlen(c->text) - 1);
    return true;
}

static bool seen_call(void *u, const char *name, const char *args, size_t n) {
    calls_seen *c = u;
    size_t l = strlen(c->calls);
    snprintf(c->calls + l, sizeof c->calls - l, "%s(%.*s);", name, (int)n, args);
    return true;
}

/* The cloud's calls, streamed in pieces (cut at every byte) or whole, come out whole and in order;
 * a call without a name, or with arguments that are not text, is a failure. */
static void cloud_calls(void) {
    const char *sse =
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Sure. \"}}]}\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"a\",\"type\":\"function\",\"function\":{\"name\":\"set_timer\",\"arguments\":\"\"}}]}}]}\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"minutes\\\": \"}}]}}]}\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"5}\"}}]}}]}\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"b\",\"function\":{\"name\":\"order\",\"arguments\":\"{}\"}}]}}]}\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n"
        "data: [DONE]\n\n";
    size_t len = strlen(sse);
    for (size_t cut = 1; cut <= len; cut += cut < 40 ? 1 : 37) {
        size_t cuts[1] = {cut};
        calls_seen c = {0};
        cloud_request r = {.on_text = seen_text, .on_call = seen_call, .user = &c};
        cloud_result res;
        CHECK_EQ_INT(cloud_judge_bytes(200, "text/event-stream", (const uint8_t *)sse, len, cuts, 1, &r, 1 << 16, &res), HAI_OK);
        CHECK(!strcmp(c.text, "Sure. ") && !strcmp(c.calls, "set_timer({\"minutes\": 5});order({});") && !strcmp(res.finish, "tool_calls"));
    }
    const char *json = "{\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"x\",\"type\":\"function\","
                       "\"function\":{\"name\":\"set_timer\",\"arguments\":\"{}\"}}]},\"finish_reason\":\"tool_calls\"}]}";
    calls_seen c = {0};
    cloud_request r = {.on_text = seen_text, .on_call = seen_call, .user = &c};
    cloud_result res;
    CHECK_EQ_INT(cloud_judge_bytes(200, "application/json", (const uint8_t *)json, strlen(json), NULL, 0, &r, 1 << 16, &res), HAI_OK);
    CHECK(!strcmp(c.calls, "set_timer({});") && !c.text[0]);
    const char *nameless = "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{}\"}}]},\"finish_reason\":\"tool_calls\"}]}\n\ndata: [DONE]\n\n";
    CHECK(cloud_judge_bytes(200, "text/event-stream", (const uint8_t *)nameless, strlen(nameless), NULL, 0, &r, 1 << 16, &res) != HAI_OK);
    const char *bad_json = "{\"choices\":[{\"index\":0,\"message\":{\"content\":null,\"tool_calls\":[{\"function\":{\"name\":\"f\",\"arguments\":7}}]},\"finish_reason\":\"tool_calls\"}]}";
    CHECK(cloud_judge_bytes(200, "application/json", (const uint8_t *)bad_json, strlen(bad_json), NULL, 0, &r, 1 << 16, &res) != HAI_OK);
}

int main(void) {
    policy_file();
    tools_rule();
    cloud_calls();
    rules();
    detectors();
    syntaxes();
    fail_closed();
    worst_case();
    return check_done("test_router");
}
