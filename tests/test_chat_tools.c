/* Tool calls and reasoning in chat output (src/chat_tools.c), against hand-written answers:
 *   - the parse of each family's call syntax (Hermes/Qwen, Llama 3, Mistral, DeepSeek, generic),
 *     reasoning blocks, text that only looks like a call, arguments with brackets in strings;
 *   - streaming: the parse of every prefix of every output only extends what the parse of the
 *     prefix before it gave (content, reasoning, call names, argument text), and ends at the whole
 *     text's parse - so the deltas a stream sends add up to the whole answer;
 *   - the grammars: for each syntax, the calls written as that family writes them are whole
 *     sentences of its grammar and parse back to the same call; a wrong name, arguments against
 *     the schema, or (named choice) another tool are refused; auto mode's trigger opens the call;
 *   - template detection of each family's syntax from the real templates in ../shared/templates;
 *   - generation: a model with random weights and the Qwen vocabulary, forced through each
 *     syntax's grammar, writes calls that parse, name a tool, and carry arguments of the tool's
 *     shape (the full JSON Schema check is in tests/node/tools.test.mjs, by Ajv).
 * usage: test_chat_tools SHARED_DIR */
#include <cjson/cJSON.h>
#include <unistd.h>

#include "chat/chat_tools.h"
#include "check.h"
#include "random_model.h"

static const char *shared;

typedef struct want_call {
    const char *name, *args;
} want_call;

typedef struct pcase {
    tool_syntax syn;
    bool tools, in_think;
    const char *text;
    const char *content, *reasoning;
    want_call calls[3];
} pcase;

#define DSB "<｜tool▁calls▁begin｜>"
#define DSE "<｜tool▁calls▁end｜>"
#define DCB "<｜tool▁call▁begin｜>"
#define DCE "<｜tool▁call▁end｜>"
#define DSEP "<｜tool▁sep｜>"

static const pcase cases[] = {
    {TOOLS_HERMES, true, false, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>", "", "",
     {{"get_weather", "{\"city\": \"Paris\"}"}}},
    {TOOLS_HERMES, true, false,
     "Let me look.\n<tool_call>\n{\"name\": \"a\", \"arguments\": {\"q\": \"x } ] \\\" {\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"b-2\", "
     "\"arguments\": {}}\n</tool_call>",
     "Let me look.\n", "", {{"a", "{\"q\": \"x } ] \\\" {\"}"}, {"b-2", "{}"}}},
    {TOOLS_HERMES, true, false, "<think>\nThe user wants a timer.\n</think>\n\n<tool_call>\n{\"arguments\": {\"minutes\": 5}, \"name\": \"set_timer\"}\n</tool_call>",
     "", "The user wants a timer.", {{"set_timer", "{\"minutes\": 5}"}}},
    {TOOLS_HERMES, true, false, "Use <tool_call> tags like <b>this</b>.", "Use <tool_call> tags like <b>this</b>.", "", {{0}}},
    {TOOLS_HERMES, true, false, "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"n\": 1}}\n</tool_call>\nDone.", "Done.", "",
     {{"f", "{\"n\": 1}"}}},
    /* a call whose name was written stays a call (a stream has sent it); arguments that go wrong end it there */
    {TOOLS_HERMES, true, false, "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1]}\nthen text", "]}\nthen text", "", {{"f", "{\"a\": 1"}}},
    {TOOLS_DEEPSEEK, true, false, DSB DCB "function" DSEP "g\n```json\n{\"a\": [}\n```" DCE DSE, "}\n```" DCE DSE, "", {{"g", "{\"a\": ["}}},
    /* a key written twice: the first name and arguments were sent already, so the second ends the call */
    {TOOLS_HERMES, true, false, "<tool_call>\n{\"name\": \"a\", \"name\": \"b\", \"arguments\": {}}\n</tool_call>",
     "\"name\": \"b\", \"arguments\": {}}\n</tool_call>", "", {{"a", ""}}},
    {TOOLS_MISTRAL, true, false, "[TOOL_CALLS][{\"name\": \"f\", \"arguments\": {\"a\": 1}, \"arguments\": {\"b\": 2}}]",
     "\"arguments\": {\"b\": 2}}]", "", {{"f", "{\"a\": 1}"}}},
    {TOOLS_HERMES, false, false, "<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call>",
     "<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call>", "", {{0}}},
    {TOOLS_GENERIC, true, false, "Sure.\n<tool_call>\n{\"name\": \"convert\", \"arguments\": {\"value\": 2.5e3, \"to\": \"km\"}}\n</tool_call>",
     "Sure.\n", "", {{"convert", "{\"value\": 2.5e3, \"to\": \"km\"}"}}},
    {TOOLS_HERMES, false, false, "<think>\n\n</think>\n\nHello there", "Hello there", "", {{0}}},
    {TOOLS_HERMES, false, true, "Thinking first.\n\n</think>\n\nThe answer is 4.", "The answer is 4.", "Thinking first.", {{0}}},
    {TOOLS_HERMES, false, false, "<think>never closed", "", "never closed", {{0}}},
    {TOOLS_LLAMA3, true, false, "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Oslo\", \"days\": [1, 2]}}", "", "",
     {{"get_weather", "{\"city\": \"Oslo\", \"days\": [1, 2]}"}}},
    {TOOLS_LLAMA3, true, false, "<|python_tag|>{\"name\": \"search\", \"parameters\": {\"q\": \"hai\"}}", "", "", {{"search", "{\"q\": \"hai\"}"}}},
    {TOOLS_LLAMA3, true, false, "<|python_tag|>brave_search.call(query=\"weather in Paris\", n=3, fresh=True, tag='a\\'b')", "", "",
     {{"brave_search", "{\"query\": \"weather in Paris\", \"n\": 3, \"fresh\": true, \"tag\": \"a'b\"}"}}},
    {TOOLS_LLAMA3, true, false, "<|python_tag|>wolfram_alpha.call(query=\"2+2\") and then? ", "and then? ", "", {{"wolfram_alpha", "{\"query\": \"2+2\"}"}}},
    {TOOLS_LLAMA3, true, false, "<|python_tag|>calc.call(x=[1, 2])", "[1, 2])", "", {{"calc", ""}}},
    {TOOLS_LLAMA3, true, false, "The set {1, 2} has two members.", "The set {1, 2} has two members.", "", {{0}}},
    {TOOLS_LLAMA3, true, false, "{\"x\": 1}", "{\"x\": 1}", "", {{0}}},
    {TOOLS_MISTRAL, true, false, "[TOOL_CALLS][{\"name\": \"f\", \"arguments\": {\"a\": 1}}, {\"name\": \"g\", \"arguments\": {\"b\": [true, null]}}]", "",
     "", {{"f", "{\"a\": 1}"}, {"g", "{\"b\": [true, null]}"}}},
    {TOOLS_MISTRAL, true, false, "[TOOL_CALLS] [{\"name\": \"f\", \"arguments\": {}, \"id\": \"abcdefghi\"}]", "", "", {{"f", "{}"}}},
    {TOOLS_MISTRAL, true, false, "Plain [TOOL] text", "Plain [TOOL] text", "", {{0}}},
    {TOOLS_DEEPSEEK, true, false,
     "Checking." DSB DCB "function" DSEP "get_weather\n```json\n{\"city\": \"Rome\"}\n```" DCE "\n" DCB "function" DSEP "set_timer\n```json\n{\"minutes\": 3}\n```" DCE DSE,
     "Checking.", "", {{"get_weather", "{\"city\": \"Rome\"}"}, {"set_timer", "{\"minutes\": 3}"}}},
    {TOOLS_DEEPSEEK, true, true, "I should check the weather.\n</think>\n\n" DSB DCB "function" DSEP "w\n```json\n{}\n```" DCE DSE, "",
     "I should check the weather.", {{"w", "{}"}}},
    /* a call marker before the calls' marker: the first one read decides (a stream sees it first) */
    {TOOLS_DEEPSEEK, true, false, "x" DCB "function" DSEP "f\n```json\n{\"a\": 1}\n```" DCE " then " DSB "y", "xthen " DSB "y", "", {{"f", "{\"a\": 1}"}}},
};

static size_t n_want(const pcase *c) {
    size_t n = 0;
    while (n < 3 && c->calls[n].name) n++;
    return n;
}

static bool starts(const char *s, size_t n, const char *whole, size_t wn) { return n <= wn && !memcmp(s, whole, n); }

static void test_parse(void) {
    for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
        const pcase *c = &cases[ci];
        size_t len = strlen(c->text);
        chat_out fin;
        if (!CHECK(chat_parse(c->syn, c->tools, c->in_think, c->text, len, false, &fin, NULL) == HAI_OK)) continue;
        CHECK_MSG(!strcmp(fin.content, c->content), "case %zu: content '%s', want '%s'", ci, fin.content, c->content);
        CHECK_MSG(!strcmp(fin.reasoning, c->reasoning), "case %zu: reasoning '%s', want '%s'", ci, fin.reasoning, c->reasoning);
        size_t nw = n_want(c);
        if (CHECK_MSG(fin.n_calls == nw, "case %zu: %zu calls, want %zu", ci, fin.n_calls, nw))
            for (size_t k = 0; k < nw; k++) {
                CHECK_MSG(!strcmp(fin.calls[k].name, c->calls[k].name), "case %zu call %zu: name '%s'", ci, k, fin.calls[k].name);
                CHECK_MSG(!strcmp(fin.calls[k].args, c->calls[k].args), "case %zu call %zu: args '%s'", ci, k, fin.calls[k].args);
                cJSON *a = cJSON_Parse(fin.calls[k].args);
                CHECK_MSG((a != NULL) == fin.calls[k].args_done, "case %zu call %zu: arguments JSON %d, done %d", ci, k, a != NULL, fin.calls[k].args_done);
                if (a && !fin.calls[k].args_done) cJSON_Delete(a), a = NULL;
                cJSON_Delete(a);
            }
        /* every prefix (at character boundaries) extends the one before and leads to the whole */
        chat_out prev = {0};
        prev.content = prev.reasoning = "";
        bool ok = true;
        for (size_t n = 0; n <= len && ok; n++) {
            if (n < len && ((unsigned char)c->text[n] & 0xC0) == 0x80) continue;
            chat_out o;
            if (!CHECK(chat_parse(c->syn, c->tools, c->in_think, c->text, n, true, &o, NULL) == HAI_OK)) break;
            ok &= CHECK_MSG(starts(prev.content, prev.content_len, o.content, o.content_len) && starts(o.content, o.content_len, fin.content, fin.content_len),
                            "case %zu prefix %zu: content '%s' after '%s' (whole '%s')", ci, n, o.content, prev.content, fin.content);
            ok &= CHECK_MSG(starts(prev.reasoning, prev.reasoning_len, o.reasoning, o.reasoning_len) &&
                                starts(o.reasoning, o.reasoning_len, fin.reasoning, fin.reasoning_len),
                            "case %zu prefix %zu: reasoning '%s' after '%s'", ci, n, o.reasoning, prev.reasoning);
            ok &= CHECK_MSG(o.n_calls >= prev.n_calls && o.n_calls <= fin.n_calls, "case %zu prefix %zu: %zu calls after %zu", ci, n, o.n_calls, prev.n_calls);
            for (size_t k = 0; ok && k < o.n_calls; k++) {
                ok &= CHECK_MSG(!strcmp(o.calls[k].name, fin.calls[k].name), "case %zu prefix %zu: call %zu named '%s'", ci, n, k, o.calls[k].name);
                ok &= CHECK_MSG(starts(o.calls[k].args, o.calls[k].args_len, fin.calls[k].args, fin.calls[k].args_len) &&
                                    (k >= prev.n_calls || o.calls[k].args_len >= prev.calls[k].args_len),
                                "case %zu prefix %zu: call %zu arguments '%s'", ci, n, k, o.calls[k].args);
            }
            if (n) chat_out_free(&prev);
            prev = o;
        }
        if (ok) { /* the prefix that is the whole text, still partial, holds back nothing a stream would miss at the end */
            CHECK_MSG(prev.n_calls == fin.n_calls, "case %zu: the last partial parse has %zu calls", ci, prev.n_calls);
        }
        chat_out_free(&prev);
        chat_out_free(&fin);
    }
}

/* ---- grammars ---------------------------------------------------------------------------------- */

static const tool_def tools[] = {
    {"get_weather",
     "{\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\", \"maxLength\": 20}, \"unit\": {\"enum\": [\"c\", \"f\"]}}, "
     "\"required\": [\"city\"], \"additionalProperties\": false}",
     true},
    {"set_timer", "{\"type\": \"object\", \"properties\": {\"minutes\": {\"type\": \"integer\", \"minimum\": 1, \"maximum\": 600}}, \"required\": [\"minutes\"]}",
     false},
    {"ping", NULL, false},
};

typedef struct gcase {
    tool_syntax syn;
    const char *good[3];  /* whole sentences of the REQUIRED grammar (parallel) */
    const char *bad[4];   /* refused (as a prefix, or not whole) */
} gcase;

static const gcase gcases[] = {
    {TOOLS_HERMES,
     {"<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": \"c\"}}\n</tool_call>",
      "<tool_call>\n{\"name\": \"set_timer\", \"arguments\": {\"minutes\": 5}}\n</tool_call>\n<tool_call>\n{\"name\": \"ping\", \"arguments\": {}}\n</tool_call>"},
     {"<tool_call>\n{\"name\": \"get_wether\", \"arguments\": {}}\n</tool_call>", "<tool_call>\n{\"name\": \"set_timer\", \"arguments\": {\"minutes\": 0}}\n</tool_call>",
      "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"unit\": \"c\"}}\n</tool_call>", "Sure, <tool_call>"}},
    {TOOLS_GENERIC, {"<tool_call>\n{\"name\": \"ping\", \"arguments\": {\"any\": [1]}}\n</tool_call>"}, {"{\"name\": \"ping\"}"}},
    {TOOLS_LLAMA3,
     {"{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Oslo\"}}"},
     {"{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Oslo\", \"wind\": 1}}", "<|python_tag|>{\"name\": \"ping\"}"}},
    {TOOLS_MISTRAL,
     {"[TOOL_CALLS][{\"name\": \"set_timer\", \"arguments\": {\"minutes\": 600}}, {\"name\": \"ping\", \"arguments\": {}}]"},
     {"[TOOL_CALLS][{\"name\": \"set_timer\", \"arguments\": {\"minutes\": 601}}]", "[TOOL_CALLS][]"}},
    {TOOLS_DEEPSEEK, {DSB DCB "function" DSEP "get_weather\n```json\n{\"city\": \"Rome\"}\n```" DCE DSE}, {DSB DCB "function" DSEP "nope\n```json\n{}\n```" DCE DSE}},
};

static int classify(hai_grammar *g, const char *s) { /* 0 whole, 1 prefix, 2 refused */
    hai_grammar_reset(g);
    if (hai_grammar_accept_text(g, s, strlen(s), NULL)) return 2;
    return hai_grammar_complete(g) ? 0 : 1;
}

static void test_grammars(const hai_tokenizer *tok) {
    for (size_t gi = 0; gi < sizeof gcases / sizeof *gcases; gi++) {
        const gcase *c = &gcases[gi];
        for (int choice = 0; choice < 3; choice++) { /* required, named (set_timer), auto */
            tool_choice tc = choice == 0 ? TOOL_CHOICE_REQUIRED : choice == 1 ? TOOL_CHOICE_NAMED : TOOL_CHOICE_AUTO;
            char *gbnf = NULL;
            hai_grammar_trigger trig;
            hai_error err = {0};
            if (!CHECK_MSG(tools_grammar(c->syn, tools, 3, tc, "set_timer", true, false, &gbnf, &trig, &err) == HAI_OK, "%s: %s", tools_syntax_name(c->syn), err.msg))
                continue;
            hai_grammar *g = NULL;
            if (!CHECK_MSG(hai_grammar_create(tok, gbnf, strlen(gbnf), NULL, &g, &err) == HAI_OK, "%s: %s\n%s", tools_syntax_name(c->syn), err.msg, gbnf)) {
                free(gbnf);
                continue;
            }
            CHECK_MSG((trig.text != NULL) == (tc == TOOL_CHOICE_AUTO), "%s: trigger only for auto", tools_syntax_name(c->syn));
            for (size_t k = 0; k < 3 && c->good[k]; k++) {
                bool named_other = choice == 1 && !strstr(c->good[k], "set_timer");
                if (c->syn == TOOLS_LLAMA3 || c->syn == TOOLS_DEEPSEEK || !strstr(c->good[k], "ping") || choice != 1) {
                    int r = classify(g, c->good[k]);
                    CHECK_MSG(named_other ? r == 2 : r == 0, "%s choice %d: '%s' gives %d", tools_syntax_name(c->syn), choice, c->good[k], r);
                } else {
                    CHECK_MSG(classify(g, c->good[k]) == 2, "%s named: '%s' names another tool", tools_syntax_name(c->syn), c->good[k]);
                }
                if (trig.text) CHECK_MSG(strstr(c->good[k], trig.text) != NULL, "%s: the trigger '%s' does not open '%s'", tools_syntax_name(c->syn), trig.text, c->good[k]);
                /* what the grammar takes parses back into the calls */
                chat_out o;
                if (choice == 0 && CHECK(chat_parse(c->syn, true, false, c->good[k], strlen(c->good[k]), false, &o, NULL) == HAI_OK)) {
                    CHECK_MSG(o.n_calls >= 1 && !o.content_len, "%s: '%s' parses to %zu calls and content '%s'", tools_syntax_name(c->syn), c->good[k], o.n_calls, o.content);
                    chat_out_free(&o);
                }
            }
            for (size_t k = 0; k < 4 && c->bad[k]; k++)
                CHECK_MSG(classify(g, c->bad[k]) != 0, "%s choice %d: '%s' should be refused", tools_syntax_name(c->syn), choice, c->bad[k]);
            hai_grammar_free(g);
            free(gbnf);
        }
    }
    /* a forced call after reasoning the prompt opened: anything but </think>, then </think>, then the call */
    {
        char *gbnf = NULL;
        hai_grammar_trigger trig;
        hai_error err = {0};
        hai_grammar *g = NULL;
        if (CHECK(tools_grammar(TOOLS_DEEPSEEK, tools, 3, TOOL_CHOICE_REQUIRED, NULL, false, true, &gbnf, &trig, &err) == HAI_OK) &&
            CHECK_MSG(hai_grammar_create(tok, gbnf, strlen(gbnf), NULL, &g, &err) == HAI_OK, "%s", err.msg)) {
            const char *call = DSB DCB "function" DSEP "ping\n```json\n{}\n```" DCE DSE;
            char t[512];
            const char *think[] = {"", "Let me think.\n", "a < b and </thin k> <</think", "<<<"};
            for (size_t i = 0; i < 4; i++) {
                snprintf(t, sizeof t, "%s</think>\n\n%s", think[i], call);
                CHECK_MSG(classify(g, t) == 0, "think '%s' then the call: %d", think[i], classify(g, t));
            }
            snprintf(t, sizeof t, "x</think>y</think>%s", call);
            CHECK(classify(g, t) == 2);
            CHECK(classify(g, call) == 1); /* a call inside the reasoning is still reasoning */
        }
        hai_grammar_free(g);
        free(gbnf);
    }
    /* parallel_tool_calls false: one call, not two */
    for (size_t gi = 0; gi < sizeof gcases / sizeof *gcases; gi++) {
        const gcase *c = &gcases[gi];
        char *gbnf = NULL;
        hai_grammar_trigger trig;
        hai_error err = {0};
        hai_grammar *g = NULL;
        if (!CHECK(tools_grammar(c->syn, tools, 3, TOOL_CHOICE_REQUIRED, NULL, false, false, &gbnf, &trig, &err) == HAI_OK) ||
            !CHECK_MSG(hai_grammar_create(tok, gbnf, strlen(gbnf), NULL, &g, &err) == HAI_OK, "%s", err.msg)) {
            free(gbnf);
            continue;
        }
        for (size_t k = 0; k < 3 && c->good[k]; k++) {
            chat_out o;
            if (!CHECK(chat_parse(c->syn, true, false, c->good[k], strlen(c->good[k]), false, &o, NULL) == HAI_OK)) continue;
            int r = classify(g, c->good[k]);
            CHECK_MSG(o.n_calls == 1 ? r == 0 : r != 0, "%s, one call: '%s' (%zu calls) gives %d", tools_syntax_name(c->syn), c->good[k], o.n_calls, r);
            chat_out_free(&o);
        }
        hai_grammar_free(g);
        free(gbnf);
    }
    /* a strict tool whose schema has a keyword the grammar cannot enforce is refused by name; a
     * tool that is not strict gets the rest enforced */
    tool_def pat[] = {{"f", "{\"type\": \"object\", \"properties\": {\"email\": {\"type\": \"string\", \"pattern\": \"^.+@.+$\"}}}", true}};
    char *gbnf = NULL;
    hai_grammar_trigger trig;
    hai_error err = {0};
    CHECK(tools_grammar(TOOLS_HERMES, pat, 1, TOOL_CHOICE_REQUIRED, NULL, false, false, &gbnf, &trig, &err) == HAI_ERR_UNSUPPORTED && strstr(err.msg, "pattern"));
    free(gbnf);
    pat[0].strict = false;
    CHECK_MSG(tools_grammar(TOOLS_HERMES, pat, 1, TOOL_CHOICE_REQUIRED, NULL, false, false, &gbnf, &trig, &err) == HAI_OK, "%s", err.msg);
    free(gbnf);
}

/* ---- templates ------------------------------------------------------------------------------------ */

static void test_detect(void) {
    static const struct {
        const char *file;
        tool_syntax syn;
    } t[] = {
        {"Qwen-Qwen2.5-7B-Instruct.jinja", TOOLS_HERMES},
        {"NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja", TOOLS_HERMES},
        {"NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja", TOOLS_HERMES},
        {"meta-llama-Llama-3.1-8B-Instruct.jinja", TOOLS_LLAMA3},
        {"meta-llama-Llama-3.2-3B-Instruct.jinja", TOOLS_LLAMA3},
        {"meta-llama-Llama-3.3-70B-Instruct.jinja", TOOLS_LLAMA3},
        {"mistralai-Mistral-Nemo-Instruct-2407.jinja", TOOLS_MISTRAL},
        {"llama-cpp-deepseek-r1.jinja", TOOLS_DEEPSEEK},
        {"deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja", TOOLS_DEEPSEEK},
        {"deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja", TOOLS_DEEPSEEK},
        {"google-gemma-2-2b-it.jinja", TOOLS_GENERIC},
        {"microsoft-Phi-3.5-mini-instruct.jinja", TOOLS_GENERIC},
    };
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/templates/%s", shared, t[i].file);
        FILE *f = fopen(path, "rb");
        if (!CHECK_MSG(f != NULL, "missing %s", path)) continue;
        static char buf[1 << 17];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = 0;
        bool shown = !strstr(t[i].file, "Distill") && t[i].syn != TOOLS_GENERIC; /* R1 distills write calls but cannot show tools */
        CHECK_MSG(tools_shown(buf) == shown, "%s: tools shown %d", t[i].file, tools_shown(buf));
        CHECK_MSG(tools_syntax(buf) == t[i].syn, "%s: %s, want %s", t[i].file, tools_syntax_name(tools_syntax(buf)), tools_syntax_name(t[i].syn));
    }
    CHECK(tools_syntax(NULL) == TOOLS_GENERIC);
}

/* ---- generation ----------------------------------------------------------------------------------- */

typedef struct outbuf {
    char p[1 << 15];
    size_t n;
} outbuf;

static bool on_text(void *user, const char *s, size_t n) {
    outbuf *o = user;
    if (o->n + n < sizeof o->p) memcpy(o->p + o->n, s, n), o->n += n;
    return true;
}

static void test_generate(const char *vocab) {
    random_model rm;
    hai_error err = {0};
    if (!random_model_open(&rm, vocab)) goto out;
    hai_model *m = rm.m;
    hai_context *c = rm.c;
    const hai_tokenizer *tok = hai_model_tokenizer(m);
    hai_token prompt[8];
    size_t np = 0;
    CHECK(hai_tokenize(tok, "Call a tool.", 12, 0, prompt, 8, &np, &err) == HAI_OK);
    for (int syn = TOOLS_HERMES; syn <= TOOLS_GENERIC; syn++)
        for (int seed = 0; seed < 4; seed += 1 + (seed == 1)) { /* 0 greedy, 1 sampled, 3 sampled after reasoning */
            char *gbnf = NULL;
            hai_grammar_trigger trig;
            hai_grammar *g = NULL;
            if (!CHECK_MSG(tools_grammar((tool_syntax)syn, tools, 3, TOOL_CHOICE_REQUIRED, NULL, seed & 1, seed == 3, &gbnf, &trig, &err) == HAI_OK, "%s", err.msg)) continue;
            if (!CHECK_MSG(hai_grammar_create(tok, gbnf, strlen(gbnf), NULL, &g, &err) == HAI_OK, "%s", err.msg)) {
                free(gbnf);
                continue;
            }
            hai_sampler_params spp = hai_sampler_default_params();
            spp.temperature = 1.0f, spp.top_p = 1.0f, spp.top_k = 0, spp.min_p = 0, spp.seed = (uint64_t)seed;
            hai_sampler *s = NULL;
            CHECK(hai_sampler_create(&spp, hai_model_n_vocab(m), &s, &err) == HAI_OK);
            outbuf *o = calloc(1, sizeof *o);
            hai_generate_params gp = {.max_tokens = 400, .sampler = seed ? s : NULL, .grammar = g, .on_text = on_text, .user = o};
            hai_generate_result res;
            hai_status st = hai_generate(c, prompt, np, &gp, &res, &err);
            chat_out out;
            /* seed 3: the prompt opened <think> (R1 distills): reasoning, </think>, then the calls */
            if (CHECK_MSG(st == HAI_OK, "%s", err.msg) && CHECK_MSG(res.finish == HAI_FINISH_STOP, "%s seed %d: not finished: '%.*s'", tools_syntax_name((tool_syntax)syn), seed, (int)o->n, o->p) &&
                CHECK(chat_parse((tool_syntax)syn, true, seed == 3, o->p, o->n, false, &out, NULL) == HAI_OK)) {
                CHECK_MSG(out.n_calls >= 1 && !out.content_len, "%s seed %d: %zu calls, content '%s' from '%.*s'", tools_syntax_name((tool_syntax)syn), seed, out.n_calls, out.content, (int)o->n, o->p);
                for (size_t k = 0; k < out.n_calls; k++) {
                    cJSON *a = cJSON_Parse(out.calls[k].args);
                    bool known = !strcmp(out.calls[k].name, "get_weather") || !strcmp(out.calls[k].name, "set_timer") || !strcmp(out.calls[k].name, "ping");
                    CHECK_MSG(known && cJSON_IsObject(a) && out.calls[k].args_done, "%s seed %d: call '%s' with '%s'", tools_syntax_name((tool_syntax)syn), seed, out.calls[k].name, out.calls[k].args);
                    if (!strcmp(out.calls[k].name, "set_timer")) {
                        cJSON *mins = cJSON_GetObjectItemCaseSensitive(a, "minutes");
                        CHECK_MSG(cJSON_IsNumber(mins) && mins->valuedouble >= 1 && mins->valuedouble <= 600 && mins->valuedouble == (int)mins->valuedouble, "minutes in '%s'", out.calls[k].args);
                    }
                    if (!strcmp(out.calls[k].name, "get_weather")) CHECK_MSG(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(a, "city")), "city in '%s'", out.calls[k].args);
                    cJSON_Delete(a);
                }
                chat_out_free(&out);
            }
            free(o);
            hai_sampler_free(s);
            hai_grammar_free(g);
            free(gbnf);
        }
out:
    random_model_free(&rm);
}

/* What the router's cascade escalates: a whole answer whose call went wrong. */
static void test_broken(void) {
    static const struct {
        tool_syntax syn;
        bool forced;
        const char *text;
        bool broken;
    } answers[] = {
        {TOOLS_HERMES, false, "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1}}\n</tool_call>", false},
        {TOOLS_HERMES, true, "<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call>", false},
        {TOOLS_HERMES, false, "It is 5 o'clock.", false},
        {TOOLS_HERMES, true, "It is 5 o'clock.", true},                                  /* required, none made */
        {TOOLS_HERMES, false, "<tool_call>\n{\"name\": \"f\", \"argu", true},          /* cut off */
        {TOOLS_HERMES, false, "Sure: {\"name\": \"f\", \"arguments\": {}}", true},       /* outside the syntax */
        {TOOLS_MISTRAL, false, "[TOOL_CALLS][{\"name\": \"f\", \"arguments\": {}}]", false},
        {TOOLS_MISTRAL, false, "[TOOL_CALLS][{\"name\": \"f\", \"arguments\": {", true},
        {TOOLS_LLAMA3, false, "{\"name\": \"f\", \"parameters\": {}}", false},
        {TOOLS_LLAMA3, false, "Call: {\"name\": \"f\", \"parameters\": {}}", true},
    };
    for (size_t i = 0; i < sizeof answers / sizeof *answers; i++)
        CHECK_MSG(chat_call_broken(answers[i].syn, false, answers[i].forced, answers[i].text, strlen(answers[i].text)) == answers[i].broken,
                  "case %zu: %s", i, answers[i].text);
}

int main(int argc, char **argv) {
    test_broken();
    if (argc < 2) {
        fprintf(stderr, "usage: test_chat_tools SHARED_DIR\n");
        return 2;
    }
    shared = argv[1];
    test_parse();
    test_detect();
    char vocab[512];
    snprintf(vocab, sizeof vocab, "%s/vocab/ggml-vocab-qwen2.gguf", shared);
    hai_tokenizer *tok = NULL;
    hai_gguf *gg = NULL;
    hai_error err = {0};
    if (CHECK_MSG(hai_gguf_open(vocab, &gg, &err) == HAI_OK && hai_tokenizer_from_gguf(gg, &tok, &err) == HAI_OK, "%s: %s", vocab, err.msg))
        test_grammars(tok);
    hai_tokenizer_free(tok);
    hai_gguf_free(gg);
    test_generate(vocab);
    return check_done("test_chat_tools");
}
