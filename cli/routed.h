/* The hybrid router for hai run and hai chat (see routed.c). */
#ifndef HAI_CLI_ROUTED_H
#define HAI_CLI_ROUTED_H

#include "hai.h"
#include "hai_hybrid.h"

/* One chat turn through the router; the answer streams through on_text. */
hai_status cli_router_chat(hai_router *r, const hai_chat_message *msgs, size_t n, int32_t max_tokens, const hai_sampler_params *sp,
                           const char *const *stop, size_t n_stop, bool (*on_text)(void *, const char *, size_t), void *user,
                           hai_route_result *res, hai_error *err);

/* "[route local; reasons=DEFAULT | ...]" to stderr. */
void cli_router_report(const hai_route_result *res);

#endif
