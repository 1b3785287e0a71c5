/* The hybrid router for hai run and hai chat (see routed.c). */
#ifndef HAI_CLI_ROUTED_H
#define HAI_CLI_ROUTED_H

#include "../src/router/hybrid.h"
#include "hai.h"

typedef struct cli_router cli_router;

/* config NULL: the defaults (everything local). m and c are borrowed. */
hai_status cli_router_open(const char *config, hai_model *m, hai_context *c, cli_router **out, hai_error *err);
void cli_router_close(cli_router *r);

/* One chat turn through the router; the answer streams through on_text. */
hai_status cli_router_chat(cli_router *r, const hai_chat_message *msgs, size_t n, int32_t max_tokens, const hai_sampler_params *sp,
                           const char *const *stop, size_t n_stop, bool (*on_text)(void *, const char *, size_t), void *user,
                           hybrid_result *res, hai_error *err);

/* "[route local; reasons=DEFAULT | ...]" to stderr. */
void cli_router_report(const hybrid_result *res);

#endif
