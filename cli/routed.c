/* hai run / hai chat with --route-config: the same hybrid router as hai serve, with the device's
 * side a context of the command's own. */
#include "routed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/base/error.h"

struct cli_router {
    hybrid *h;
    hai_model *m;
    hai_context *c;
};

/* Local generation for the router: hai_generate on the command's context. */
static hai_status ctx_generate(void *user, const hybrid_gen *g, hai_generate_result *res, hai_error *err) {
    cli_router *r = user;
    hai_sampler *s = NULL;
    if (!g->greedy) {
        hai_status st = hai_sampler_create(g->sp, hai_model_n_vocab(r->m), &s, err);
        if (st) return st;
    }
    hai_generate_params gp = {.max_tokens = g->max_tokens, .stop = g->stop, .n_stop = g->n_stop, .sampler = s,
                              .on_text = g->on_text, .user = g->user, .on_token = g->on_token};
    hai_status st = hai_generate(r->c, g->prompt, g->n, &gp, res, err);
    hai_sampler_free(s);
    return st;
}

hai_status cli_router_open(const char *config, hai_model *m, hai_context *c, cli_router **out, hai_error *err) {
    *out = NULL;
    hybrid_config hc;
    hai_status st = hybrid_config_load(config, &hc, err);
    if (st) return st;
    cli_router *r = calloc(1, sizeof *r);
    if (!r) {
        hybrid_config_free(&hc);
        return hai_fail(err, HAI_ERR_NOMEM, "router: out of memory");
    }
    r->m = m;
    r->c = c;
    st = hybrid_create(&hc, m, hai_context_n_ctx(c), &r->h, err);
    hybrid_config_free(&hc);
    if (st) {
        free(r);
        return st;
    }
    *out = r;
    return HAI_OK;
}

void cli_router_close(cli_router *r) {
    if (!r) return;
    hybrid_free(r->h);
    free(r);
}

hai_status cli_router_chat(cli_router *r, const hai_chat_message *msgs, size_t n, int32_t max_tokens, const hai_sampler_params *sp,
                           const char *const *stop, size_t n_stop, bool (*on_text)(void *, const char *, size_t), void *user,
                           hybrid_result *res, hai_error *err) {
    hybrid_request q = {.msgs = msgs, .n_msgs = n, .max_tokens = max_tokens, .sp = *sp, .greedy = sp->temperature <= 0,
                        .has_seed = true, .has_temperature = true, .stop = stop, .n_stop = n_stop, .on_text = on_text, .user = user};
    hybrid_plan plan;
    hai_status st = hybrid_plan_request(r->h, &q, &plan, err);
    if (st) return st;
    return hybrid_execute(r->h, &q, &plan, &(hybrid_local){ctx_generate, r}, res, err);
}

void cli_router_report(const hybrid_result *res) {
    char h[256];
    hybrid_route_header(res->route, res->reasons, h, sizeof h);
    fprintf(stderr, "[route %s | prompt %d tok, generated %d tok in %.2f s (%.1f tok/s)", h, res->prompt_tokens, res->completion_tokens,
            res->seconds, res->seconds > 0 ? res->completion_tokens / res->seconds : 0.0);
    if (res->mean_entropy >= 0) fprintf(stderr, " | mean entropy %.2f", res->mean_entropy);
    if (res->cloud_tokens) fprintf(stderr, " | cloud tokens %d", res->cloud_tokens);
    if (res->error[0]) fprintf(stderr, " | %s", res->error);
    fprintf(stderr, "]\n");
}
