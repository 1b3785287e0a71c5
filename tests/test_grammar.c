/* Constrained decoding against its definitions:
 *   - GBNF: texts each grammar must take whole, take as a prefix, or refuse (escapes, classes over
 *     UTF-8, repetitions, groups, comments); bad grammars refused with the line and the cause;
 *     hostile ones (deep brackets, huge counts, left recursion) refused, never a crash;
 *   - integer bounds: for ranges of every shape, exactly the integers inside are taken (all of
 *     -1200..1200 tried, and the edges of wide ranges);
 *   - the token mask on the 151,936-token Qwen vocabulary equals a direct check of every token
 *     (stepping the full parser through the token's bytes), at each step of walks through
 *     schemas;
 *   - JSON Schema: outputs of random walks that only the mask steers parse as JSON and are valid
 *     against their schema (checked here by an independent validator of the keywords used);
 *     unsupported keywords are refused by name;
 *   - generation: a model with random weights and the Qwen vocabulary, greedy and sampled,
 *     writes JSON valid against each schema.
 * usage: test_grammar SHARED_DIR */
#include <cjson/cJSON.h>
#include <limits.h>
#include <unistd.h>

#include "check.h"
#include "random_model.h"
#include "base/rng.h"

static hai_tokenizer *tok;
static const char *vocab_path;

/* ---- GBNF ------------------------------------------------------------------------------------- */

enum { WHOLE, PREFIX, NO };

static int classify(hai_grammar *g, const char *s) {
    hai_grammar_reset(g);
    if (hai_grammar_accept_text(g, s, strlen(s), NULL)) return NO;
    return hai_grammar_complete(g) ? WHOLE : PREFIX;
}

static void texts(const char *gbnf, const char *const *whole, const char *const *prefix, const char *const *no) {
    hai_grammar *g;
    hai_error err = {0};
    if (!CHECK_MSG(hai_grammar_create(tok, gbnf, strlen(gbnf), NULL, &g, &err) == HAI_OK, "%s: %s", gbnf, err.msg)) return;
    for (; whole && *whole; whole++) CHECK_MSG(classify(g, *whole) == WHOLE, "grammar %s: '%s' should be whole", gbnf, *whole);
    for (; prefix && *prefix; prefix++) CHECK_MSG(classify(g, *prefix) == PREFIX, "grammar %s: '%s' should be a prefix", gbnf, *prefix);
    for (; no && *no; no++) CHECK_MSG(classify(g, *no) == NO, "grammar %s: '%s' should be refused", gbnf, *no);
    hai_grammar_free(g);
}

#define L(...) (const char *const[]){__VA_ARGS__, NULL}

static void gbnf_texts(void) {
    texts("root ::= \"ab\" | \"c\"", L("ab", "c"), L("", "a"), L("b", "abc", "ac"));
    texts("root ::= [a-c]+ \"!\"", L("a!", "abcabc!"), L("", "ab"), L("!", "ad!", "a!!"));
    texts("root ::= x{2,3}\nx ::= \"ab\"", L("abab", "ababab"), L("", "ab", "aba"), L("abababab", "b"));
    texts("root ::= \"a\"{3}", L("aaa"), L("aa"), L("aaaa"));
    texts("root ::= \"a\"{2,}", L("aa", "aaaaaaa"), L("a"), L("b"));
    texts("root ::= (\"x\" | \"y\")? \"z\"  # a comment\n", L("z", "xz", "yz"), L("", "x"), L("xyz", "zz"));
    texts("root ::= [^\"\\\\]*", L("", "abc", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"), L("\xe2\x82"), L("\"", "a\\", "\xff", "\xc0\xaf", "\xed\xa0\x80"));
    texts("root ::= \"\\x41\\u00e9\\U0001F600\\n\\t\\\\\\\"\"", L("A\xc3\xa9\xf0\x9f\x98\x80\n\t\\\""), L("A"), L("B"));
    texts("root ::= [\\u0400-\\u04FF]+", L("\xd0\x96", "\xd0\x96\xd3\xbf"), NULL, L("a", "\xd4\x80"));
    texts("root ::= [\\U00010000-\\U0010FFFF]", L("\xf0\x90\x80\x80", "\xf4\x8f\xbf\xbf"), NULL, L("\xef\xbf\xbf", "\xf4\x90\x80\x80"));
    texts("root ::= .+", L("a", "\xe4\xb8\xad\xe6\x96\x87"), NULL, L("\x80"));
    texts("root ::=\n  item (\",\" item)*\nitem ::= [0-9]+", L("1", "1,22,333"), L("1,"), L(",", "1,,2"));
    texts("root ::= ws \"x\" ws\nws ::= [ \\t\\n]*", L("x", "  x\n"), L(" "), L("xx"));
}

static void gbnf_errors(void) {
    static const char *const bad[][2] = {
        {"root ::= undefined-rule", "'undefined-rule' is used but not defined"},
        {"root ::= \"a\"\nroot ::= \"b\"", "defined twice"},
        {"root ::= root \"a\" | \"b\"", "left-recursive"},
        {"root ::= x* \"a\"\nx ::= \"b\"?", "left-recursive"},
        {"root ::= a\na ::= b \"x\"\nb ::= a | \"y\"", "left-recursive"},
        {"root ::= \"abc", "not closed"},
        {"root ::= [abc", "not closed"},
        {"root ::= (\"a\"", "not closed"},
        {"root ::= [z-a]", "backwards"},
        {"root ::= \"a\"{3,2}", "backwards"},
        {"root ::= \"a\"{99999}", "over 10000"},
        {"root ::= *", "nothing before it"},
        {"root \"a\"", "expected '::='"},
        {"root ::= \"\\q\\xZZ\"", "hex digits"},
        {"other ::= \"a\"", "no 'root' rule"},
        {"root ::= <[1234]>", "token references"},
        {"root ::= \"\xff\"", "not valid UTF-8"},
        {"root ::= \"a\" @", "unexpected '@'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        hai_grammar *g = NULL;
        hai_error err = {0};
        hai_status st = hai_grammar_create(tok, bad[i][0], strlen(bad[i][0]), NULL, &g, &err);
        CHECK_MSG(st != HAI_OK && g == NULL && strstr(err.msg, bad[i][1]), "'%s': got status %d '%s', expected '%s'", bad[i][0], st,
                  err.msg, bad[i][1]);
        hai_grammar_free(g);
    }
    /* deep brackets: refused by the limit, not by the C stack */
    size_t depth = 100000;
    char *deep = malloc(2 * depth + 32);
    size_t n = (size_t)sprintf(deep, "root ::= ");
    for (size_t i = 0; i < depth; i++) deep[n++] = '(';
    deep[n++] = '"', deep[n++] = 'a', deep[n++] = '"';
    for (size_t i = 0; i < depth; i++) deep[n++] = ')';
    hai_grammar *g = NULL;
    hai_error err = {0};
    CHECK_MSG(hai_grammar_create(tok, deep, n, NULL, &g, &err) == HAI_ERR_LIMIT && strstr(err.msg, "nest"), "deep brackets: %s", err.msg);
    free(deep);
    /* counts that would build millions of rules */
    char big[8192];
    n = (size_t)sprintf(big, "root ::= ");
    for (int i = 0; i < 200; i++) n += (size_t)sprintf(big + n, "[a-z]{0,10000} ");
    CHECK_MSG(hai_grammar_create(tok, big, n, NULL, &g, &err) == HAI_ERR_LIMIT && strstr(err.msg, "too large"), "big: %s", err.msg);
    /* a NUL inside the text */
    CHECK(hai_grammar_create(tok, "root ::= \"a\"\0x", 14, NULL, &g, &err) == HAI_ERR_FORMAT);
    /* an ambiguous grammar whose parses multiply: a limit, not unbounded memory */
    const char *amb = "root ::= (a | b)*\na ::= \"x\" | \"x\" \"x\"\nb ::= \"x\"+";
    CHECK_EQ_INT(hai_grammar_create(tok, amb, strlen(amb), NULL, &g, &err), HAI_OK);
    char xs[5001];
    memset(xs, 'x', 5000), xs[5000] = 0;
    hai_status st = hai_grammar_accept_text(g, xs, 5000, &err);
    CHECK_MSG(st == HAI_OK || st == HAI_ERR_LIMIT, "ambiguous grammar: %d %s", st, err.msg);
    hai_grammar_free(g);
}

/* ---- integer ranges --------------------------------------------------------------------------- */

static void int_ranges(void) {
    static const struct {
        const char *schema;
        long long lo, hi; /* LLONG_MIN / LLONG_MAX: none */
    } r[] = {
        {"{\"type\":\"integer\",\"minimum\":0,\"maximum\":0}", 0, 0},
        {"{\"type\":\"integer\",\"minimum\":5,\"maximum\":5}", 5, 5},
        {"{\"type\":\"integer\",\"minimum\":-7,\"maximum\":-3}", -7, -3},
        {"{\"type\":\"integer\",\"minimum\":-15,\"maximum\":22}", -15, 22},
        {"{\"type\":\"integer\",\"minimum\":99,\"maximum\":1000}", 99, 1000},
        {"{\"type\":\"integer\",\"minimum\":123,\"maximum\":987}", 123, 987},
        {"{\"type\":\"integer\",\"minimum\":-1001,\"maximum\":-999}", -1001, -999},
        {"{\"type\":\"integer\",\"minimum\":1,\"maximum\":130}", 1, 130},
        {"{\"type\":\"integer\",\"minimum\":10}", 10, LLONG_MAX},
        {"{\"type\":\"integer\",\"minimum\":-10}", -10, LLONG_MAX},
        {"{\"type\":\"integer\",\"maximum\":-10}", LLONG_MIN, -10},
        {"{\"type\":\"integer\",\"maximum\":317}", LLONG_MIN, 317},
        {"{\"type\":\"integer\",\"exclusiveMinimum\":-3,\"exclusiveMaximum\":40}", -2, 39},
        {"{\"type\":\"integer\",\"minimum\":0.5,\"maximum\":9.5}", 1, 9},
        {"{\"type\":\"integer\",\"minimum\":-9007199254740991,\"maximum\":9007199254740991}", -9007199254740991LL, 9007199254740991LL},
    };
    for (size_t i = 0; i < sizeof r / sizeof *r; i++) {
        char *gbnf = NULL;
        hai_error err = {0};
        hai_grammar *g;
        if (!CHECK_MSG(hai_json_schema_to_gbnf(r[i].schema, strlen(r[i].schema), &gbnf, &err) == HAI_OK, "%s: %s", r[i].schema, err.msg)) continue;
        if (!CHECK_MSG(hai_grammar_create(tok, gbnf, strlen(gbnf), NULL, &g, &err) == HAI_OK, "%s: %s\n%s", r[i].schema, err.msg, gbnf)) {
            hai_free(gbnf);
            continue;
        }
        long long probes[2600];
        int np = 0;
        for (long long v = -1200; v <= 1200; v++) probes[np++] = v;
        const long long edge[] = {r[i].lo, r[i].hi};
        for (int e = 0; e < 2; e++)
            if (edge[e] != LLONG_MIN && edge[e] != LLONG_MAX)
                for (long long d = -2; d <= 2; d++) probes[np++] = edge[e] + d;
        probes[np++] = 123456789012345LL, probes[np++] = -123456789012345LL;
        int bad = 0;
        for (int k = 0; k < np; k++) {
            char s[32];
            snprintf(s, sizeof s, "%lld", probes[k]);
            bool in = probes[k] >= r[i].lo && probes[k] <= r[i].hi;
            if ((classify(g, s) == WHOLE) != in && bad++ < 3) CHECK_MSG(false, "%s: %s should be %s", r[i].schema, s, in ? "taken" : "refused");
        }
        CHECK_MSG(!bad, "%s: %d integers misjudged", r[i].schema, bad);
        CHECK(classify(g, "01") == NO && classify(g, "-0") == NO && classify(g, "+1") == NO);
        hai_grammar_free(g);
        hai_free(gbnf);
    }
}

/* ---- a validator for the keywords the schemas below use (independent of the grammar) --------- */

static size_t utf8_chars(const char *s) {
    size_t n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static bool valid(const cJSON *v, const cJSON *s, const cJSON *root);

static bool valid_type(const cJSON *v, const char *t) {
    if (!strcmp(t, "string")) return cJSON_IsString(v);
    if (!strcmp(t, "number")) return cJSON_IsNumber(v);
    if (!strcmp(t, "integer")) return cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble);
    if (!strcmp(t, "boolean")) return cJSON_IsBool(v);
    if (!strcmp(t, "null")) return cJSON_IsNull(v);
    if (!strcmp(t, "object")) return cJSON_IsObject(v);
    if (!strcmp(t, "array")) return cJSON_IsArray(v);
    return false;
}

static bool valid_format(const char *s, const char *f) {
    int a, b, c, d, e, g;
    char z;
    if (!strcmp(f, "date")) return strlen(s) == 10 && sscanf(s, "%4d-%2d-%2d", &a, &b, &c) == 3 && b >= 1 && b <= 12 && c >= 1 && c <= 31;
    if (!strcmp(f, "uuid")) {
        if (strlen(s) != 36) return false;
        for (int i = 0; i < 36; i++)
            if ((i == 8 || i == 13 || i == 18 || i == 23) ? s[i] != '-' : !strchr("0123456789abcdef", s[i])) return false;
        return true;
    }
    if (!strcmp(f, "date-time")) return sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%c", &a, &b, &c, &d, &e, &g, &z) == 7 && d < 24 && e < 60 && g < 60;
    return false;
}

static bool valid(const cJSON *v, const cJSON *s, const cJSON *root) {
    if (cJSON_IsTrue(s) || (cJSON_IsObject(s) && !s->child)) return true;
    const cJSON *k;
    if ((k = cJSON_GetObjectItemCaseSensitive(s, "$ref"))) {
        const cJSON *t = root;
        char buf[256];
        snprintf(buf, sizeof buf, "%s", k->valuestring + 1);
        for (char *p = strtok(buf, "/"); p; p = strtok(NULL, "/")) t = cJSON_GetObjectItemCaseSensitive(t, p);
        return t && valid(v, t, root);
    }
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, "nullable")) && cJSON_IsNull(v)) return true;
    if ((k = cJSON_GetObjectItemCaseSensitive(s, "anyOf")) || (k = cJSON_GetObjectItemCaseSensitive(s, "oneOf"))) {
        const cJSON *a;
        cJSON_ArrayForEach(a, k) if (valid(v, a, root)) return true;
        return false;
    }
    if ((k = cJSON_GetObjectItemCaseSensitive(s, "const"))) return cJSON_Compare(v, k, true);
    if ((k = cJSON_GetObjectItemCaseSensitive(s, "enum"))) {
        const cJSON *a;
        cJSON_ArrayForEach(a, k) if (cJSON_Compare(v, a, true)) return true;
        return false;
    }
    if ((k = cJSON_GetObjectItemCaseSensitive(s, "type"))) {
        bool ok = false;
        if (cJSON_IsString(k)) ok = valid_type(v, k->valuestring);
        const cJSON *a;
        if (cJSON_IsArray(k)) cJSON_ArrayForEach(a, k) ok |= valid_type(v, a->valuestring);
        if (!ok) return false;
    }
    if (cJSON_IsString(v)) {
        size_t n = utf8_chars(v->valuestring);
        if ((k = cJSON_GetObjectItemCaseSensitive(s, "minLength")) && n < (size_t)k->valuedouble) return false;
        if ((k = cJSON_GetObjectItemCaseSensitive(s, "maxLength")) && n > (size_t)k->valuedouble) return false;
        if ((k = cJSON_GetObjectItemCaseSensitive(s, "format")) && !valid_format(v->valuestring, k->valuestring)) return false;
    }
    if (cJSON_IsNumber(v)) {
        double x = v->valuedouble;
        if ((k = cJSON_GetObjectItemCaseSensitive(s, "minimum")) && x < k->valuedouble) return false;
        if ((k = cJSON_GetObjectItemCaseSensitive(s, "maximum")) && x > k->valuedouble) return false;
        if ((k = cJSON_GetObjectItemCaseSensitive(s, "exclusiveMinimum")) && x <= k->valuedouble) return false;
        if ((k = cJSON_GetObjectItemCaseSensitive(s, "exclusiveMaximum")) && x >= k->valuedouble) return false;
    }
    if (cJSON_IsArray(v)) {
        int n = cJSON_GetArraySize(v);
        if ((k = cJSON_GetObjectItemCaseSensitive(s, "minItems")) && n < k->valuedouble) return false;
        if ((k = cJSON_GetObjectItemCaseSensitive(s, "maxItems")) && n > k->valuedouble) return false;
        const cJSON *pre = cJSON_GetObjectItemCaseSensitive(s, "prefixItems"), *items = cJSON_GetObjectItemCaseSensitive(s, "items");
        int np = pre ? cJSON_GetArraySize(pre) : 0, i = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, v) {
            const cJSON *sub = i < np ? cJSON_GetArrayItem(pre, i) : items;
            if (sub && cJSON_IsFalse(sub)) return false;
            if (sub && !valid(e, sub, root)) return false;
            i++;
        }
    }
    if (cJSON_IsObject(v)) {
        const cJSON *props = cJSON_GetObjectItemCaseSensitive(s, "properties"), *addl = cJSON_GetObjectItemCaseSensitive(s, "additionalProperties");
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(s, "required")) if (!cJSON_GetObjectItemCaseSensitive(v, e->valuestring)) return false;
        cJSON_ArrayForEach(e, v) {
            const cJSON *ps = props ? cJSON_GetObjectItemCaseSensitive(props, e->string) : NULL;
            if (ps) {
                if (!valid(e, ps, root)) return false;
            } else if (addl && (cJSON_IsFalse(addl) || !valid(e, addl, root))) {
                return false;
            }
        }
    }
    return true;
}

/* ---- walks steered only by the mask ----------------------------------------------------------- */

static const char *const schemas[] = {
    ("{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"minLength\":2,\"maxLength\":12},\"email\":{\"type\":\"string\"},"
    "\"age\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":130},\"newsletter\":{\"type\":\"boolean\"}},"
    "\"required\":[\"name\",\"age\"],\"additionalProperties\":false}"),
    ("{\"type\":\"object\",\"properties\":{\"drink\":{\"enum\":[\"espresso\",\"latte\",\"flat white\",3,null,{\"x\":[1]}]},"
    "\"milk\":{\"type\":[\"string\",\"null\"]},\"extras\":{\"type\":\"array\",\"items\":{\"type\":\"string\",\"maxLength\":6},\"minItems\":1,\"maxItems\":3},"
    "\"qty\":{\"type\":\"integer\",\"minimum\":-5,\"maximum\":10}},\"required\":[\"drink\",\"extras\",\"qty\"],\"additionalProperties\":false}"),
    ("{\"type\":\"object\",\"properties\":{\"when\":{\"type\":\"string\",\"format\":\"date-time\"},\"day\":{\"type\":\"string\",\"format\":\"date\"},"
    "\"id\":{\"type\":\"string\",\"format\":\"uuid\"},\"k\\\"ey \\u00e9\":{\"const\":\"fixed\"},\"score\":{\"type\":\"number\",\"minimum\":0}},"
    "\"required\":[\"when\",\"day\",\"id\",\"k\\\"ey \\u00e9\",\"score\"]}"),
    "{\"type\":\"array\",\"prefixItems\":[{\"type\":\"integer\"},{\"type\":\"boolean\"}],\"items\":{\"anyOf\":[{\"type\":\"null\"},{\"type\":\"string\",\"maxLength\":3}]},\"maxItems\":4}",
    ("{\"$defs\":{\"node\":{\"type\":\"object\",\"properties\":{\"v\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":9},\"kids\":{\"type\":\"array\","
    "\"items\":{\"$ref\":\"#/$defs/node\"},\"maxItems\":2}},\"required\":[\"v\"],\"additionalProperties\":false}},\"$ref\":\"#/$defs/node\"}"),
    "{\"type\":\"object\",\"additionalProperties\":{\"type\":\"integer\"}}",
    "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\",\"nullable\":true},\"b\":{\"oneOf\":[{\"type\":\"integer\"},{\"type\":\"array\",\"items\":{\"type\":\"boolean\"}}]}},\"required\":[\"a\",\"b\"]}",
    "{\"type\":\"object\"}",
    "{}",
};

static bool has_closer(const char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i] == '"' || p[i] == '}' || p[i] == ']' || p[i] == ',') return true;
    return false;
}

/* One output: random allowed tokens, biased to tokens that close something (so walks end); every
 * `check_every` steps the mask is compared with a direct check of each token. */
static void walk(const char *schema_text, const char *gbnf, uint64_t seed, int check_every) {
    hai_error err = {0};
    hai_grammar *g;
    if (!CHECK_MSG(hai_grammar_create(tok, gbnf, strlen(gbnf), NULL, &g, &err) == HAI_OK, "%s", err.msg)) return;
    int32_t nv = hai_tokenizer_n_vocab(tok);
    int32_t *ok = malloc((size_t)nv * sizeof *ok), *closers = malloc((size_t)nv * sizeof *closers);
    uint32_t *copy = malloc(((size_t)nv + 31) / 32 * sizeof *copy);
    char *text = calloc(1 << 16, 1), piece[512];
    size_t tl = 0;
    hai_rng rng;
    hai_rng_seed(&rng, seed);
    bool done = false;
    int mism = 0;
    for (int step = 0; step < 4000 && !done; step++) {
        const uint32_t *bits;
        if (!CHECK_MSG(hai_grammar_allowed(g, &bits, &err) == HAI_OK, "%s", err.msg)) break;
        memcpy(copy, bits, ((size_t)nv + 31) / 32 * sizeof *copy);
        int n_ok = 0, n_cl = 0;
        hai_token eog = -1;
        for (int32_t t = 0; t < nv; t++) {
            bool on = copy[t >> 5] >> (t & 31) & 1;
            if (check_every && step % check_every == 0 && on != hai_grammar_allows(g, t) && mism++ < 3)
                CHECK_MSG(false, "mask and direct check differ on token %d after '%.200s'", t, text);
            if (!on) continue;
            if (hai_tokenizer_is_eog(tok, t)) {
                eog = t;
                continue;
            }
            size_t k = 0;
            hai_token_to_piece(tok, t, HAI_DETOK_KEEP_LEADING_SPACE, piece, sizeof piece, &k, NULL);
            ok[n_ok++] = t;
            if (has_closer(piece, k)) closers[n_cl++] = t;
        }
        if (eog >= 0 && (n_ok == 0 || hai_rng_uniform(&rng) < 0.5)) {
            done = true;
            break;
        }
        if (!CHECK_MSG(n_ok > 0, "no token allowed and the grammar is not complete after '%.200s'", text)) break;
        double u = hai_rng_uniform(&rng);
        hai_token t = n_cl && u < 0.6 ? closers[(int)(hai_rng_uniform(&rng) * n_cl)] : ok[(int)(hai_rng_uniform(&rng) * n_ok)];
        if (!CHECK_MSG(hai_grammar_accept_token(g, t, &err) == HAI_OK, "%s", err.msg)) break;
        size_t k = 0;
        hai_token_to_piece(tok, t, HAI_DETOK_KEEP_LEADING_SPACE, piece, sizeof piece, &k, NULL);
        if (tl + k < (1 << 16) - 1) memcpy(text + tl, piece, k), tl += k;
    }
    CHECK_MSG(done, "the walk did not end: '%.300s'", text);
    cJSON *v = cJSON_Parse(text), *s = cJSON_Parse(schema_text);
    CHECK_MSG(v != NULL, "not JSON: '%.300s'", text);
    if (v && s) CHECK_MSG(valid(v, s, s), "not valid against %s: '%.400s'", schema_text, text);
    cJSON_Delete(v);
    cJSON_Delete(s);
    free(ok), free(closers), free(copy), free(text);
    hai_grammar_free(g);
}

static void schema_walks(void) {
    for (size_t i = 0; i < sizeof schemas / sizeof *schemas; i++) {
        char *gbnf = NULL;
        hai_error err = {0};
        if (!CHECK_MSG(hai_json_schema_to_gbnf(schemas[i], strlen(schemas[i]), &gbnf, &err) == HAI_OK, "%s: %s", schemas[i], err.msg)) continue;
        for (int r = 0; r < 6; r++) walk(schemas[i], gbnf, 1000 * i + (uint64_t)r, r == 0 ? 7 : 0);
        hai_free(gbnf);
    }
}

static void schema_errors(void) {
    static const char *const bad[][2] = {
        {"{\"type\":\"string\",\"pattern\":\"^a+$\"}", "'pattern'"},
        {"{\"type\":\"object\",\"properties\":{\"x\":{\"type\":\"number\",\"multipleOf\":3}}}", "'multipleOf' (at #/properties/x)"},
        {"{\"type\":\"object\",\"minProperties\":2}", "'minProperties'"},
        {"{\"type\":\"array\",\"uniqueItems\":true}", "'uniqueItems'"},
        {"{\"not\":{\"type\":\"string\"}}", "'not'"},
        {"{\"type\":\"string\",\"format\":\"hostname\"}", "'format': 'hostname'"},
        {"{\"type\":\"number\",\"maximum\":3.5}", "'maximum' on a number"},
        {"{\"allOf\":[{\"type\":\"string\"},{\"maxLength\":3}]}", "'allOf'"},
        {"{\"$ref\":\"#/$defs/missing\"}", "points at nothing"},
        {"{\"$ref\":\"http://example.com/s.json\"}", "only references inside"},
        {"{\"type\":\"strin\"}", "not a JSON Schema type"},
        {"{\"type\":\"object\",\"required\":[\"a\"]}", "not in 'properties'"},
        {"{\"type\":\"integer\",\"minimum\":5,\"maximum\":4}", "no integer"},
        {"{\"type\":\"array\",\"maxItems\":1000000}", "'maxItems' (at #) above"},
        {"false", "allows no value"},
        {"{\"type\":", "not valid JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char *gbnf = NULL;
        hai_error err = {0};
        hai_status st = hai_json_schema_to_gbnf(bad[i][0], strlen(bad[i][0]), &gbnf, &err);
        CHECK_MSG(st != HAI_OK && !gbnf && strstr(err.msg, bad[i][1]), "%s: status %d '%s', expected '%s'", bad[i][0], st, err.msg, bad[i][1]);
        hai_free(gbnf);
    }
    /* annotations are not constraints: accepted */
    const char *ann = "{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\",\"title\":\"t\",\"description\":\"d\",\"type\":\"object\","
                      "\"properties\":{\"x\":{\"type\":\"string\",\"default\":\"a\",\"examples\":[\"b\"]}},\"required\":[\"x\"],\"additionalProperties\":false}";
    char *gbnf = NULL;
    hai_error err = {0};
    CHECK_MSG(hai_json_schema_to_gbnf(ann, strlen(ann), &gbnf, &err) == HAI_OK, "%s", err.msg);
    hai_free(gbnf);
    /* a schema nested past the limit */
    char deep[40000];
    size_t n = 0;
    for (int i = 0; i < 2000; i++) n += (size_t)sprintf(deep + n, "{\"items\":");
    n += (size_t)sprintf(deep + n, "{}");
    for (int i = 0; i < 2000; i++) deep[n++] = '}';
    CHECK(hai_json_schema_to_gbnf(deep, n, &gbnf, &err) != HAI_OK);
}

/* ---- generation on a random model ------------------------------------------------------------- */

typedef struct idcap { /* the generated ids (the output's exact bytes come from them) */
    hai_token ids[1500];
    size_t n;
} idcap;

static void on_tok(void *u, hai_token t) {
    idcap *c = u;
    if (c->n < 1500) c->ids[c->n++] = t;
}

static void random_model_outputs(void) {
    random_model rm;
    hai_error err = {0};
    if (!random_model_open(&rm, vocab_path)) goto out;
    hai_model *m = rm.m;
    hai_context *c = rm.c;
    hai_token prompt[4];
    size_t np = 0;
    hai_tokenize(hai_model_tokenizer(m), "Data:", 5, 0, prompt, 4, &np, &err);
    for (size_t i = 0; i < sizeof schemas / sizeof *schemas; i++) {
        char *gbnf = NULL;
        if (!CHECK_MSG(hai_json_schema_to_gbnf(schemas[i], strlen(schemas[i]), &gbnf, &err) == HAI_OK, "%s", err.msg)) continue;
        hai_grammar *g = NULL;
        if (CHECK_MSG(hai_grammar_create(hai_model_tokenizer(m), gbnf, strlen(gbnf), NULL, &g, &err) == HAI_OK, "%s", err.msg)) {
            for (int mode = 0; mode < 3; mode++) { /* greedy; OpenAI's sampling (no cut: the mask only on a miss); top-k (always masked) */
                hai_sampler_params p = hai_sampler_default_params();
                p.temperature = mode ? 1.0f : 0, p.top_p = 1, p.min_p = 0, p.top_k = mode == 2 ? 40 : 0, p.seed = 7 + i;
                hai_sampler *s = NULL;
                hai_sampler_create(&p, hai_model_n_vocab(m), &s, &err);
                hai_grammar_reset(g);
                char *text = calloc(1 << 16, 1);
                idcap cap = {{0}, 0};
                hai_generate_params gp = {.max_tokens = 1500, .sampler = s, .grammar = g, .user = &cap, .on_token = on_tok};
                hai_generate_result res;
                hai_status st = hai_generate(c, prompt, np, &gp, &res, &err);
                size_t tl = 0;
                hai_detokenize(hai_model_tokenizer(m), cap.ids, cap.n, HAI_DETOK_KEEP_LEADING_SPACE, text, (1 << 16) - 1, &tl, NULL);
                text[tl] = 0;
                if (CHECK_MSG(st == HAI_OK, "%s", err.msg) && CHECK_MSG(res.finish == HAI_FINISH_STOP, "schema %zu mode %d: finish %d after %d tokens: '%.200s'", i, mode, res.finish, res.n_generated, text)) {
                    cJSON *v = cJSON_Parse(text), *sc = cJSON_Parse(schemas[i]);
                    CHECK_MSG(v && valid(v, sc, sc), "schema %zu mode %d: not valid: '%.300s'", i, mode, text);
                    cJSON_Delete(v);
                    cJSON_Delete(sc);
                }
                free(text);
                hai_sampler_free(s);
            }
            hai_grammar_free(g);
        }
        hai_free(gbnf);
    }
out:
    random_model_free(&rm);
}

int main(int argc, char **argv) {
    const char *shared = check_shared_dir(argc, argv);
    static char vp[4096];
    snprintf(vp, sizeof vp, "%s/vocab/ggml-vocab-qwen2.gguf", shared);
    vocab_path = vp;
    hai_error err = {0};
    hai_gguf *gg = NULL;
    if (!CHECK_MSG(hai_gguf_open(vp, &gg, &err) == HAI_OK && hai_tokenizer_from_gguf(gg, &tok, &err) == HAI_OK, "%s: %s", vp, err.msg))
        return check_done("test_grammar");
    gbnf_texts();
    gbnf_errors();
    int_ranges();
    schema_errors();
    schema_walks();
    random_model_outputs();
    hai_tokenizer_free(tok);
    hai_gguf_free(gg);
    return check_done("test_grammar");
}
