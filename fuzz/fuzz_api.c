/* libFuzzer target: arbitrary bytes as the body of /v1/chat/completions, /v1/completions and
 * /v1/responses. The parser must refuse or accept without crashing; what it accepts must be
 * well-formed (valid UTF-8 strings, bounded counts, sampler settings the sampler takes), and
 * building every response from it must work. Accepted tools must give a grammar that compiles in
 * every call syntax (or a refusal naming the schema), and the output parse must hold its
 * streaming promise on the request's own texts: a prefix's parse is extended by the whole's. */
#include <stdlib.h>
#include <string.h>

#include "chat/chat_tools.h"
#include "model/grammar/grammar.h"
#include "server/api.h"
#include "server/responses.h"

static resp_store *store;

/* The parse of a prefix only extends into the parse of the whole text. */
static void check_parse(tool_syntax syn, const char *s, size_t n) {
    chat_out whole, part;
    if (chat_parse(syn, true, n & 1, s, n, false, &whole, NULL)) return;
    if (!chat_parse(syn, true, n & 1, s, n / 2, true, &part, NULL)) {
        if (part.content_len > whole.content_len || memcmp(part.content, whole.content, part.content_len)) abort();
        if (part.reasoning_len > whole.reasoning_len || memcmp(part.reasoning, whole.reasoning, part.reasoning_len)) abort();
        if (part.n_calls > whole.n_calls) abort();
        for (size_t i = 0; i < part.n_calls; i++)
            if (strcmp(part.calls[i].name, whole.calls[i].name) || part.calls[i].args_len > whole.calls[i].args_len ||
                memcmp(part.calls[i].args, whole.calls[i].args, part.calls[i].args_len))
                abort();
        chat_out_free(&part);
    }
    /* the answer in the shapes the APIs send it */
    char ids[4][40] = {"call_a", "call_b", "call_c", "call_d"};
    resp_req rr = {.echo = "{}", .items = "[]"};
    resp_end end = {1, 2, 0, false};
    if (whole.n_calls <= 4) free(resp_object(store, &rr, "resp_x", "m", 1, &whole, ids, NULL, 0, &end));
    chat_out_free(&whole);
}

static void check_tools(const api_request *r) {
    for (int syn = TOOLS_HERMES; syn <= TOOLS_GENERIC; syn++)
        for (int choice = 0; choice < 2; choice++) {
            char *gbnf = NULL;
            hai_grammar_trigger trig;
            hai_error err = {0};
            hai_status st = tools_grammar((tool_syntax)syn, r->tools, r->n_tools, choice ? TOOL_CHOICE_REQUIRED : TOOL_CHOICE_AUTO, NULL,
                                          r->parallel, choice && syn == TOOLS_DEEPSEEK, &gbnf, &trig, &err);
            if (st) {
                if (st != HAI_ERR_UNSUPPORTED && st != HAI_ERR_FORMAT && st != HAI_ERR_LIMIT && st != HAI_ERR_NOMEM) abort();
                continue;
            }
            gram g;
            st = gram_compile(gbnf, strlen(gbnf), "root", &g, &err);
            if (st == HAI_ERR_FORMAT) abort(); /* the GBNF hai writes is always well-formed */
            if (!st) gram_free(&g);
            free(gbnf);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!store) store = resp_store_new(64, 1 << 20);
    for (int k = 0; k < 3; k++) {
        api_request r;
        api_error e;
        char *chat = NULL;
        size_t chat_len = 0;
        resp_req rr;
        if (k == 2) { /* a Responses request, translated into chat */
            if (!resp_translate(store, (const char *)data, size, &chat, &chat_len, &rr, &e)) {
                if (e.status != 400 && e.status != 500) abort();
                free(api_error_json(&e));
                continue;
            }
        }
        bool ok = api_parse(k == 1 ? API_COMPLETION : API_CHAT, k == 2 ? chat : (const char *)data, k == 2 ? chat_len : size, &r, &e);
        free(chat);
        if (!ok) {
            if (e.status != 400 && e.status != 500) abort();
            free(api_error_json(&e));
            if (k == 2) resp_req_free(&rr);
            continue;
        }
        if (k != 1 && (r.n_msgs == 0 || r.n_msgs > API_MAX_MESSAGES)) abort();
        for (size_t i = 0; i < r.n_msgs; i++) {
            if (!api_valid_utf8(r.msgs[i].content, strlen(r.msgs[i].content))) abort();
            if (i < 4) check_parse((tool_syntax)(i % 5), r.msgs[i].content, strlen(r.msgs[i].content));
        }
        if (r.n_stop > API_MAX_STOP) abort();
        if (r.n_tools > API_MAX_TOOLS || (r.n_tools && !r.tools_json)) abort();
        if (r.n_tools) check_tools(&r);
        /* every value a client can send is refused (400) or works: no sampler setting that the
         * parser lets through may be refused later (that was a 500) */
        hai_sampler *s = NULL;
        hai_sampler_params sp = r.sp;
        for (size_t i = 0; i < sp.n_logit_bias; i++)
            if (sp.logit_bias[i].token >= 1000) sp.n_logit_bias = 0; /* ids are checked against the model by the server */
        if (hai_sampler_create(&sp, 1000, &s, NULL) != HAI_OK) abort();
        hai_sampler_free(s);
        api_result res = {.id = "x", .model = r.model ? r.model : "m", .created = 1, .finish = "stop",
                          .text = r.n_msgs ? r.msgs[0].content : r.prompt};
        res.text_len = strlen(res.text);
        free(api_response_json(r.kind, &res, &res, 1));
        if (r.kind == API_COMPLETION && (r.n_prompts < 1 || r.n_prompts > API_MAX_PROMPTS || !r.prompt)) abort();
        if (r.n < 1 || r.n > API_MAX_N) abort();
        free(api_chunk_role(r.kind, &res));
        free(api_chunk_text(r.kind, &res, res.text, res.text_len));
        free(api_chunk_finish(r.kind, &res));
        free(api_chunk_usage(r.kind, &res));
        api_request_free(&r);
        if (k == 2) resp_req_free(&rr);
    }
    return 0;
}
