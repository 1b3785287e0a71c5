/* A failed allocation is an error, never a result with a part missing. Each function below that
 * takes outside input runs again and again, the k-th allocation failing on run k (malloc, calloc,
 * realloc and strdup are wrapped at link time, see CMakeLists.txt), until a run needs fewer than
 * k. Every run must either fail with a status and message, or give exactly the result of a run
 * without failures: a policy without its patterns, a request without its stop strings, a scan
 * with a detection missing (and not marked incomplete), a prompt with a part missing - each would
 * be a request silently run differently.
 * usage: test_oom HAI-TINY.gguf */
#include "check.h"
#include "chat/chat.h"
#include "router/config.h"
#include "router/hybrid.h"
#include "router/privacy.h"
#include "server/api.h"
#include "server/responses.h"

static long fail_at = 0, calls = 0; /* 0: never fail */

static bool fail_now(void) { return fail_at && ++calls == fail_at; }

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t k);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
void *__wrap_malloc(size_t n) { return fail_now() ? NULL : __real_malloc(n); }
void *__wrap_calloc(size_t n, size_t k) { return fail_now() ? NULL : __real_calloc(n, k); }
void *__wrap_realloc(void *p, size_t n) { return fail_now() ? NULL : __real_realloc(p, n); }
char *__wrap_strdup(const char *s) { return fail_now() ? NULL : __real_strdup(s); }

/* Runs f(k) for k = 1, 2, ... with the k-th allocation failing, until a run has no failure. f
 * returns 1 for a complete result (checked against the reference inside f), 0 for a clean error,
 * -1 for anything else. */
static void sweep(const char *what, int (*f)(void *), void *arg) {
    int errors = 0, bad = 0;
    long k;
    for (k = 1; k < 100000; k++) {
        fail_at = k;
        calls = 0;
        int r = f(arg);
        bool injected = calls >= k;
        fail_at = 0;
        if (r < 0) bad++;
        if (!injected) break; /* this run allocated less than k times: every point was tried */
        errors += r == 0;
    }
    CHECK_MSG(bad == 0, "%s: %d of %ld runs with a failed allocation gave an incomplete or wrong result", what, bad, k);
    CHECK_MSG(k > 1 && errors > 0, "%s: no allocation was failed (%ld runs)", what, k);
}

/* ---- the policy file ------------------------------------------------------------------------------ */

static const char policy[] = "{\"cloud\": {\"base_url\": \"http://127.0.0.1:9/v1\", \"model\": \"m\", \"models\": [\"a\", \"b\"]},"
                             " \"privacy\": {\"email\": \"redact\", \"patterns\": [\"EMP-[0-9]{6}\", \"X[0-9]+\"],"
                             " \"keywords\": [\"Project Falcon\", \"Nimbus\"]}}";

static int policy_run(void *arg) {
    (void)arg;
    hybrid_config c;
    hai_error err = {0};
    if (hybrid_config_parse(policy, sizeof policy - 1, &c, &err) != HAI_OK) return err.msg[0] ? 0 : -1;
    bool ok = c.n_patterns == 2 && c.n_keywords == 2 && c.patterns[0] && c.patterns[1] && !strcmp(c.patterns[1], "X[0-9]+") &&
              c.keywords[1] && !strcmp(c.keywords[1], "Nimbus") && c.policy.n_cloud_models == 3 && c.policy.privacy[PII_EMAIL] == PII_REDACT;
    hybrid_config_free(&c);
    return ok ? 1 : -1;
}

/* the router built from it: the scanner has every pattern and keyword, or there is no router */
static int hybrid_run(void *arg) {
    hybrid_config *c = arg;
    hybrid *h = NULL;
    hai_error err = {0};
    if (hybrid_create(c, NULL, 2048, &h, &err) != HAI_OK) return h == NULL && err.msg[0] ? 0 : -1;
    hybrid_free(h);
    return 1;
}

/* ---- the router with tools: personal data found in calls' arguments, tool results and tools,
 * redacted inside the arguments' JSON for a cloud that refuses the connection, then the device
 * answers; every run ends in the device's answer or a clean error ------------------------------- */

static const char routed_policy[] = "{\"cloud\": {\"base_url\": \"http://127.0.0.1:9/v1\", \"model\": \"m\", \"max_retries\": 0},"
                                    " \"privacy\": {\"email\": \"redact\"}, \"tools\": \"cloud\"}";
static const hai_chat_message routed_msgs[] = {
    {.role = "user", .content = "mail li.wei@example.com"},
    {.role = "assistant", .content = "", .tool_calls = "[{\"id\": \"c1\", \"type\": \"function\", \"function\": {\"name\": \"send_email\","
                                                      " \"arguments\": \"{\\\"to\\\": [\\\"li.wei\\\\u0040example.com\\\"]}\"}}]"},
    {.role = "tool", .content = "sent to li.wei@example.com", .tool_call_id = "c1"},
};
static const char routed_tools[] = "[{\"type\": \"function\", \"function\": {\"name\": \"send_email\", \"description\": \"Mail someone.\"}}]";

static hai_status fake_local(void *user, const hybrid_gen *g, hai_generate_result *res, hai_error *err) {
    (void)user, (void)err;
    memset(res, 0, sizeof *res);
    res->n_generated = 1;
    return g->on_text(g->user, "done", 4) ? HAI_OK : HAI_ERR_CANCELLED;
}

static bool routed_text(void *u, const char *t, size_t n) {
    char *out = u;
    size_t have = strlen(out);
    if (have + n >= 64) return false;
    memcpy(out + have, t, n);
    out[have + n] = '\0';
    return true;
}

static int routed_run(void *arg) {
    hybrid_config *c = arg;
    hybrid *h = NULL;
    hai_error err = {0};
    if (hybrid_create(c, NULL, 2048, &h, &err) != HAI_OK) return h == NULL && err.msg[0] ? 0 : -1;
    char out[64] = "";
    hai_token prompt[4] = {1, 2, 3, 4};
    hybrid_request r = {.msgs = routed_msgs, .n_msgs = 3, .on_text = routed_text, .user = out, .prompt = prompt, .n_prompt = 4,
                        .tools = routed_tools, .tool_choice = "\"auto\"", .parallel_tool_calls = 1, .sp = hai_sampler_default_params()};
    hybrid_plan plan;
    int ret;
    if (hybrid_plan_request(h, &r, &plan, &err) != HAI_OK) {
        ret = err.msg[0] ? 0 : -1;
    } else {
        hybrid_result res;
        hybrid_local local = {fake_local, NULL};
        hai_status st = hybrid_execute(h, &r, &plan, &local, &res, &err);
        ret = st ? (err.msg[0] ? 0 : -1) : !strcmp(out, "done") ? 1 : -1;
    }
    hybrid_free(h);
    return ret;
}

/* ---- the privacy scan ------------------------------------------------------------------------------ */

typedef struct scan_case {
    pii_scanner *sc;
    const char *text;
    pii_scan_result want;
} scan_case;

static int scan_run(void *arg) {
    scan_case *s = arg;
    pii_scan_result r;
    pii_scan(s->sc, s->text, strlen(s->text), &r);
    int out;
    if (r.incomplete) out = r.why[0] ? 0 : -1; /* fails closed, saying why */
    else out = r.n == s->want.n && !memcmp(r.spans, s->want.spans, r.n * sizeof *r.spans) ? 1 : -1;
    pii_scan_result_free(&r);
    return out;
}

static int scanner_run(void *arg) {
    (void)arg;
    const char *pats[] = {"EMP-[0-9]{6}"}, *kws[] = {"Nimbus"};
    pii_scanner *sc = NULL;
    hai_error err = {0};
    if (pii_scanner_create(pats, 1, kws, 1, &sc, &err) != HAI_OK) return sc == NULL && err.msg[0] ? 0 : -1;
    pii_scan_result r;
    pii_scan(sc, "EMP-123456 on Nimbus", 20, &r);
    int out = r.incomplete || (r.count[PII_CUSTOM] == 2 && r.n == 2) ? 1 : -1; /* both custom detectors are there */
    pii_scan_result_free(&r);
    pii_scanner_free(sc);
    return out;
}

/* ---- request parsing ------------------------------------------------------------------------------- */

static const char request[] = "{\"model\": \"m\", \"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"},"
                              " {\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"a\"}, {\"type\": \"text\", \"text\": \"b\"}]}],"
                              " \"stop\": [\"END\", \"STOP\", \"\\n\\n\"], \"max_tokens\": 5}";

static int api_run(void *arg) {
    (void)arg;
    api_request r;
    api_error e;
    if (!api_parse(API_CHAT, request, sizeof request - 1, &r, &e)) return e.status == 500 && e.message[0] ? 0 : -1;
    bool ok = r.n_msgs == 2 && !strcmp(r.msgs[1].content, "ab") && r.n_stop == 3 && r.stop[0] && r.stop[2] && !strcmp(r.stop[1], "STOP") &&
              r.model && !strcmp(r.model, "m");
    api_request_free(&r);
    return ok ? 1 : -1;
}

/* ---- structured outputs: a schema converted, a grammar compiled and its first mask ------------------- */

static const char schema_req[] = "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"response_format\": {\"type\": \"json_schema\","
                                 " \"json_schema\": {\"name\": \"o\", \"schema\": {\"type\": \"object\", \"properties\": {\"a\": {\"enum\": [\"x\", 2]},"
                                 " \"b\": {\"type\": \"array\", \"items\": {\"$ref\": \"#/$defs/n\"}, \"maxItems\": 3}}, \"required\": [\"a\"],"
                                 " \"$defs\": {\"n\": {\"type\": \"integer\", \"minimum\": -3, \"maximum\": 250}}}}}}";

typedef struct grammar_case {
    const hai_tokenizer *tok;
    char *want_gbnf;      /* the request's grammar, without failures */
    uint32_t *want_bits;  /* the mask after want_text */
    size_t words;
} grammar_case;

static const char want_text[] = "{\"a\": \"x\", \"b\": [12, -";

static int schema_run(void *arg) {
    grammar_case *gc = arg;
    api_request r;
    api_error e;
    if (!api_parse(API_CHAT, schema_req, sizeof schema_req - 1, &r, &e)) return e.status == 500 && e.message[0] ? 0 : -1;
    int out = r.grammar && !strcmp(r.grammar, gc->want_gbnf) ? 1 : -1;
    api_request_free(&r);
    return out;
}

static int grammar_run(void *arg) {
    grammar_case *gc = arg;
    hai_grammar *g = NULL;
    hai_error err = {0};
    hai_status st = hai_grammar_create(gc->tok, gc->want_gbnf, strlen(gc->want_gbnf), NULL, &g, &err);
    if (st) return g == NULL && (st == HAI_ERR_NOMEM || st == HAI_ERR_LIMIT) && err.msg[0] ? 0 : -1;
    const uint32_t *bits = NULL;
    st = hai_grammar_accept_text(g, want_text, sizeof want_text - 1, &err);
    if (!st) st = hai_grammar_allowed(g, &bits, &err);
    int out = st ? ((st == HAI_ERR_NOMEM || st == HAI_ERR_LIMIT) && err.msg[0] ? 0 : -1) : !memcmp(bits, gc->want_bits, gc->words * 4) ? 1 : -1;
    hai_grammar_free(g);
    return out;
}

/* ---- chat prompts ---------------------------------------------------------------------------------- */

typedef struct prompt_case {
    hai_model *m;
    hai_token *want;
    size_t n_want;
} prompt_case;

static const hai_chat_message convo[] = {{.role = "system", .content = "Be brief."}, {.role = "user", .content = "What is 2+2? <|im_end|>"}, {.role = "assistant", .content = "Four."}, {.role = "user", .content = "Thanks"}};

static int prompt_run(void *arg) {
    prompt_case *p = arg;
    hai_token *ids = NULL;
    size_t n = 0;
    hai_error err = {0};
    if (hai_chat_tokenize(p->m, NULL, convo, 4, &ids, &n, &err) != HAI_OK) return ids == NULL && err.msg[0] ? 0 : -1;
    int out = n == p->n_want && !memcmp(ids, p->want, n * sizeof *ids) ? 1 : -1;
    free(ids);
    return out;
}

/* ---- tool calls: a request with tools, their grammar, the prompt without template support, the
 * parse of an answer; the Responses API's translation and response object ------------------------ */

static const char tools_req[] =
    "{\"messages\": [{\"role\": \"user\", \"content\": \"timer\"}, {\"role\": \"assistant\", \"content\": null, \"tool_calls\": [{\"id\": \"c1\","
    " \"type\": \"function\", \"function\": {\"name\": \"set_timer\", \"arguments\": \"{\\\"minutes\\\": 5}\"}}]}, {\"role\": \"tool\","
    " \"tool_call_id\": \"c1\", \"content\": \"ok\"}], \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"set_timer\","
    " \"parameters\": {\"type\": \"object\", \"properties\": {\"minutes\": {\"type\": \"integer\", \"minimum\": 1}}, \"required\": [\"minutes\"]}}},"
    " {\"type\": \"function\", \"function\": {\"name\": \"ping\", \"strict\": true}}], \"tool_choice\": \"required\"}";

typedef struct tools_case {
    api_request r;
    char *want_gbnf;
    hai_chat_message *want_msgs;
    size_t n_want;
    chat_out want_out;
    const char *answer;
    char *want_chat, *want_object;
} tools_case;

static int tools_req_run(void *arg) {
    (void)arg;
    api_request r;
    api_error e;
    if (!api_parse(API_CHAT, tools_req, sizeof tools_req - 1, &r, &e)) return e.status == 500 && e.message[0] ? 0 : -1;
    bool ok = r.n_tools == 2 && r.tools_json && !strcmp(r.tools[1].name, "ping") && r.tools[0].params && strstr(r.tools[0].params, "minimum") &&
              r.tools[1].strict && r.choice == TOOL_CHOICE_REQUIRED && r.msgs[1].tool_calls && r.msgs[2].tool_call_id;
    api_request_free(&r);
    return ok ? 1 : -1;
}

static int tools_grammar_run(void *arg) {
    tools_case *t = arg;
    char *g = NULL;
    hai_grammar_trigger trig;
    hai_error err = {0};
    hai_status st = tools_grammar(TOOLS_HERMES, t->r.tools, t->r.n_tools, TOOL_CHOICE_AUTO, NULL, true, false, &g, &trig, &err);
    if (st) return st == HAI_ERR_NOMEM && err.msg[0] && !g ? 0 : -1;
    int out = !strcmp(g, t->want_gbnf) && trig.text ? 1 : -1;
    free(g);
    return out;
}

static int tools_prompt_run(void *arg) {
    tools_case *t = arg;
    hai_chat_message *m = NULL;
    char **own = NULL;
    size_t n = 0, no = 0;
    hai_error err = {0};
    if (tools_prompt_messages(TOOLS_GENERIC, t->r.tools_json, t->r.msgs, t->r.n_msgs, &m, &n, &own, &no, &err)) return err.msg[0] && !m ? 0 : -1;
    bool ok = n == t->n_want;
    for (size_t i = 0; ok && i < n; i++) ok = !strcmp(m[i].role, t->want_msgs[i].role) && !strcmp(m[i].content, t->want_msgs[i].content);
    tools_messages_free(m, own, no);
    return ok ? 1 : -1;
}

static int parse_run(void *arg) {
    tools_case *t = arg;
    chat_out o;
    hai_error err = {0};
    if (chat_parse(TOOLS_HERMES, true, false, t->answer, strlen(t->answer), false, &o, &err)) return err.msg[0] ? 0 : -1;
    bool ok = !strcmp(o.content, t->want_out.content) && !strcmp(o.reasoning, t->want_out.reasoning) && o.n_calls == t->want_out.n_calls;
    for (size_t i = 0; ok && i < o.n_calls; i++) ok = !strcmp(o.calls[i].name, t->want_out.calls[i].name) && !strcmp(o.calls[i].args, t->want_out.calls[i].args);
    chat_out_free(&o);
    return ok ? 1 : -1;
}

static const char resp_body[] = "{\"model\": \"m\", \"instructions\": \"Be brief.\", \"input\": [{\"role\": \"user\", \"content\": [{\"type\": "
                                "\"input_text\", \"text\": \"a\"}, {\"type\": \"input_text\", \"text\": \"b\"}]}, {\"type\": \"function_call\", \"call_id\": "
                                "\"c\", \"name\": \"f\", \"arguments\": \"{}\"}, {\"type\": \"function_call_output\", \"call_id\": \"c\", \"output\": \"done\"}],"
                                " \"tools\": [{\"type\": \"function\", \"name\": \"f\"}], \"tool_choice\": {\"type\": \"function\", \"name\": \"f\"},"
                                " \"text\": {\"format\": {\"type\": \"json_schema\", \"name\": \"x\", \"schema\": {\"type\": \"object\"}}}, \"max_output_tokens\": 9}";

static int resp_translate_run(void *arg) {
    tools_case *t = arg;
    char *chat = NULL;
    size_t n = 0;
    resp_req rr;
    api_error e;
    if (!resp_translate(NULL, resp_body, sizeof resp_body - 1, &chat, &n, &rr, &e)) return e.status == 500 && !chat ? 0 : -1;
    bool ok = !strcmp(chat, t->want_chat) && rr.items && rr.echo && strstr(rr.echo, "Be brief.");
    free(chat);
    resp_req_free(&rr);
    return ok ? 1 : -1;
}

static int resp_object_run(void *arg) {
    tools_case *t = arg;
    resp_req rr = {.echo = "{\"store\": false}", .items = "[]"};
    resp_item items[] = {{.kind = 'r', .id = "rs_1", .a = 0, .b = t->want_out.reasoning_len}, {.kind = 'm', .id = "msg_1", .a = 0, .b = t->want_out.content_len},
                         {.kind = 'f', .id = "fc_1", .call = 0}, {.kind = 'f', .id = "fc_2", .call = 1}};
    char ids[2][40] = {"call_1", "call_2"};
    resp_end end = {10, 5, 2, false};
    char *o = resp_object(NULL, &rr, "resp_1", "m", 1, &t->want_out, ids, items, 4, &end);
    if (!o) return 0;
    int out = !strcmp(o, t->want_object) ? 1 : -1;
    free(o);
    return out;
}

static void tools_sweeps(void) {
    sweep("tools request", tools_req_run, NULL);
    tools_case t = {.answer = "<think>\nplan\n</think>\n\nSure.\n<tool_call>\n{\"name\": \"set_timer\", \"arguments\": {\"minutes\": 5}}\n</tool_call>\n"
                              "<tool_call>\n{\"name\": \"ping\", \"arguments\": {}}\n</tool_call>"};
    api_error e;
    hai_error err = {0};
    hai_grammar_trigger trig;
    char **own = NULL;
    size_t no = 0, n = 0;
    resp_req rr;
    if (!CHECK(api_parse(API_CHAT, tools_req, sizeof tools_req - 1, &t.r, &e)) ||
        !CHECK(tools_grammar(TOOLS_HERMES, t.r.tools, t.r.n_tools, TOOL_CHOICE_AUTO, NULL, true, false, &t.want_gbnf, &trig, &err) == HAI_OK) ||
        !CHECK(tools_prompt_messages(TOOLS_GENERIC, t.r.tools_json, t.r.msgs, t.r.n_msgs, &t.want_msgs, &t.n_want, &own, &no, &err) == HAI_OK) ||
        !CHECK(chat_parse(TOOLS_HERMES, true, false, t.answer, strlen(t.answer), false, &t.want_out, &err) == HAI_OK) ||
        !CHECK(t.want_out.n_calls == 2 && t.n_want == 4) || !CHECK(resp_translate(NULL, resp_body, sizeof resp_body - 1, &t.want_chat, &n, &rr, &e))) {
        api_request_free(&t.r);
        return;
    }
    resp_req_free(&rr);
    sweep("tools grammar", tools_grammar_run, &t);
    sweep("tools prompt", tools_prompt_run, &t);
    sweep("output parse", parse_run, &t);
    sweep("responses request", resp_translate_run, &t);
    fail_at = 0;
    t.want_object = NULL;
    {
        resp_req r0 = {.echo = "{\"store\": false}", .items = "[]"};
        resp_item items[] = {{.kind = 'r', .id = "rs_1", .a = 0, .b = t.want_out.reasoning_len}, {.kind = 'm', .id = "msg_1", .a = 0, .b = t.want_out.content_len},
                             {.kind = 'f', .id = "fc_1", .call = 0}, {.kind = 'f', .id = "fc_2", .call = 1}};
        char ids[2][40] = {"call_1", "call_2"};
        resp_end end = {10, 5, 2, false};
        t.want_object = resp_object(NULL, &r0, "resp_1", "m", 1, &t.want_out, ids, items, 4, &end);
    }
    if (CHECK(t.want_object && strstr(t.want_object, "\"call_2\"") && strstr(t.want_object, "plan")))
        sweep("response object", resp_object_run, &t);
    free(t.want_object);
    free(t.want_chat);
    chat_out_free(&t.want_out);
    tools_messages_free(t.want_msgs, own, no);
    free(t.want_gbnf);
    api_request_free(&t.r);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_oom HAI-TINY.gguf\n");
        return 2;
    }
    sweep("policy file", policy_run, NULL);
    hybrid_config c;
    hai_error err = {0};
    CHECK_EQ_INT(hybrid_config_parse(policy, sizeof policy - 1, &c, &err), HAI_OK);
    sweep("router", hybrid_run, &c);
    hybrid_config_free(&c);
    CHECK_EQ_INT(hybrid_config_parse(routed_policy, sizeof routed_policy - 1, &c, &err), HAI_OK);
    sweep("router with tools", routed_run, &c);
    hybrid_config_free(&c);
    sweep("scanner", scanner_run, NULL);
    scan_case s = {.text = "mail O'Brien@example.org or +44 20 7946 0958, key sk-proj-abcdefghijklmnopqrstuvwx123, EMP-123456"};
    const char *pats[] = {"EMP-[0-9]{6}"};
    CHECK_EQ_INT(pii_scanner_create(pats, 1, NULL, 0, &s.sc, &err), HAI_OK);
    pii_scan(s.sc, s.text, strlen(s.text), &s.want);
    CHECK(!s.want.incomplete && s.want.n == 4);
    sweep("privacy scan", scan_run, &s);
    pii_scan_result_free(&s.want);
    pii_scanner_free(s.sc);
    sweep("request", api_run, NULL);
    tools_sweeps();
    prompt_case p = {0};
    if (CHECK_MSG(hai_model_load(argv[1], NULL, &p.m, &err) == HAI_OK, "%s", err.msg) &&
        CHECK(hai_chat_tokenize(p.m, NULL, convo, 4, &p.want, &p.n_want, &err) == HAI_OK))
        sweep("chat prompt", prompt_run, &p);
    if (p.m) {
        grammar_case gc = {.tok = hai_model_tokenizer(p.m)};
        api_request r;
        api_error e;
        hai_grammar *g = NULL;
        const uint32_t *bits;
        if (CHECK(api_parse(API_CHAT, schema_req, sizeof schema_req - 1, &r, &e) && r.grammar) &&
            CHECK_MSG(hai_grammar_create(gc.tok, r.grammar, strlen(r.grammar), NULL, &g, &err) == HAI_OK, "%s", err.msg) &&
            CHECK(hai_grammar_accept_text(g, want_text, sizeof want_text - 1, &err) == HAI_OK) && CHECK(hai_grammar_allowed(g, &bits, &err) == HAI_OK)) {
            gc.want_gbnf = strdup(r.grammar);
            gc.words = ((size_t)hai_tokenizer_n_vocab(gc.tok) + 31) / 32;
            gc.want_bits = malloc(gc.words * 4);
            memcpy(gc.want_bits, bits, gc.words * 4);
            bool digit = false; /* the mask is not trivial: a digit may follow "-" */
            for (int32_t t = 0; t < hai_tokenizer_n_vocab(gc.tok); t++) digit |= bits[t >> 5] >> (t & 31) & 1;
            CHECK(digit);
            sweep("json schema request", schema_run, &gc);
            sweep("grammar and mask", grammar_run, &gc);
        }
        hai_grammar_free(g);
        if (r.grammar || r.msgs) api_request_free(&r);
        free(gc.want_gbnf), free(gc.want_bits);
    }
    free(p.want);
    hai_model_free(p.m);
    return check_done("test_oom");
}
