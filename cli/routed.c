/* hai run / hai chat with --route-config: the hybrid router of hai_hybrid.h, the device's side
 * the command's own context - what an app embedding libhai_hybrid does. */
#include "routed.h"

#include <stdio.h>

hai_status cli_router_chat(hai_router *r, const hai_chat_message *msgs, size_t n, int32_t max_tokens, const hai_sampler_params *sp,
                           const char *const *stop, size_t n_stop, bool (*on_text)(void *, const char *, size_t), void *user,
                           hai_route_result *res, hai_error *err) {
    hai_route_request q = {.size = sizeof q, .msgs = msgs, .n_msgs = n, .max_tokens = max_tokens, .sampler = sp, .stop = stop,
                           .n_stop = n_stop, .on_text = on_text, .user = user};
    *res = (hai_route_result){.size = sizeof *res};
    return hai_router_chat(r, &q, res, err);
}

void cli_router_report(const hai_route_result *res) {
    char rs[256];
    hai_route_reasons_str(res->reasons, rs, sizeof rs);
    fprintf(stderr, "[route %s; reasons=%s | prompt %d tok, generated %d tok in %.2f s (%.1f tok/s)", hai_route_name(res->route), rs,
            res->prompt_tokens, res->completion_tokens, res->seconds, res->seconds > 0 ? res->completion_tokens / res->seconds : 0.0);
    if (res->mean_entropy >= 0) fprintf(stderr, " | mean entropy %.2f", res->mean_entropy);
    if (res->cloud_tokens) fprintf(stderr, " | cloud tokens %d", res->cloud_tokens);
    if (res->error[0]) fprintf(stderr, " | %s", res->error);
    fprintf(stderr, "]\n");
}
