/* libFuzzer target: arbitrary bytes as the body of /v1/chat/completions and /v1/completions.
 * The parser must refuse or accept without crashing; what it accepts must be well-formed (valid
 * UTF-8 strings, bounded counts, sampler settings the sampler takes), and building every
 * response from it must work. */
#include <stdlib.h>
#include <string.h>

#include "server/api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    for (int k = 0; k < 2; k++) {
        api_request r;
        api_error e;
        if (!api_parse(k ? API_COMPLETION : API_CHAT, (const char *)data, size, &r, &e)) {
            if (e.status != 400 && e.status != 500) abort();
            free(api_error_json(&e));
            continue;
        }
        if (k == 0 && (r.n_msgs == 0 || r.n_msgs > API_MAX_MESSAGES)) abort();
        for (size_t i = 0; i < r.n_msgs; i++)
            if (!api_valid_utf8(r.msgs[i].content, strlen(r.msgs[i].content))) abort();
        if (r.n_stop > API_MAX_STOP) abort();
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
    }
    return 0;
}
