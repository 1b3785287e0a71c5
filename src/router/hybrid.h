/* Carrying out a routing decision for one chat request: privacy scan, decision, then local
 * generation, the cloud (with redaction and restoration), or local-then-cloud; falling back to
 * the device when the cloud fails, without losing the request or repeating text already shown.
 * Used by hai serve (local = the engine's slots) and by hai run / chat (local = a context). */
#ifndef HAI_ROUTER_HYBRID_H
#define HAI_ROUTER_HYBRID_H

#include <stdatomic.h>

#include "../cloud/cloud.h"
#include "config.h"
#include "privacy.h"
#include "router.h"

typedef struct hybrid hybrid;

/* cfg is copied (its strings too). m is borrowed. */
hai_status hybrid_create(const hybrid_config *cfg, const hai_model *m, uint32_t local_ctx, hybrid **out, hai_error *err);
void hybrid_free(hybrid *h);
const router_policy *hybrid_policy(const hybrid *h);
/* The cloud model's name, or NULL without a cloud. */
const char *hybrid_cloud_model(const hybrid *h);

/* One local generation the router asks for. */
typedef struct hybrid_gen {
    const hai_token *prompt;
    size_t n;
    int32_t max_tokens;
    const hai_sampler_params *sp;
    bool greedy;
    const char *const *stop;
    size_t n_stop;
    bool (*on_text)(void *user, const char *text, size_t len);
    void (*on_token)(void *user, hai_token t); /* may be NULL */
    const char *grammar;                       /* GBNF the output must follow (tools, response_format); NULL = none */
    hai_grammar_trigger trigger;               /* lazy grammar: where it takes over */
    bool special_text;                         /* control tokens come out as text (call markers) */
    void *user;
    atomic_bool *cancel;                       /* may be NULL */
} hybrid_gen;

/* How to generate on the device (a context of one's own, or the server's slots). */
typedef struct hybrid_local {
    hai_status (*generate)(void *user, const hybrid_gen *g, hai_generate_result *res, hai_error *err);
    void *user;
} hybrid_local;

typedef struct hybrid_request {
    const hai_chat_message *msgs;
    size_t n_msgs;
    const char *model;            /* as the client named it */
    int32_t max_tokens;           /* 0 = not given */
    double deadline_ms;           /* 0 = the policy's */
    hai_sampler_params sp;
    bool greedy, has_seed, has_temperature, has_top_p;
    const char *const *stop;
    size_t n_stop;
    bool (*on_text)(void *user, const char *text, size_t len); /* what the user sees */
    void *user;
    atomic_bool *cancel;          /* may be NULL */
    /* the local prompt as the caller made it (tools shown the way this model's template, or hai
     * for it, shows them); NULL = the messages formatted with the model's template */
    const hai_token *prompt;
    size_t n_prompt;
    /* tools (NULL when the request has none): passed to the cloud as the client gave them (JSON
     * text); their personal data is scanned and redacted like the messages' */
    const char *tools, *tool_choice, *response_format;
    int parallel_tool_calls;      /* 0 = not given, > 0 true, < 0 false */
    bool tools_template;          /* the local template shows tools */
    const char *grammar;          /* local generation: tools' or response_format's grammar, or NULL */
    hai_grammar_trigger trigger;
    bool special_text;
    /* cascade with tools: whether a whole local answer is broken (a call that does not parse);
     * then the local answer is judged whole before anything is shown, and a broken one escalates */
    bool (*answer_broken)(void *user, const char *text, size_t len);
    /* called before the text shown comes from the cloud (cloud = true) or the device again; the
     * cloud's calls arrive written as "<tool_call>\n{"name": .., "arguments": ..}\n</tool_call>" */
    void (*on_source)(void *user, bool cloud);
} hybrid_request;

typedef struct hybrid_plan {      /* the decision and what it rests on */
    router_decision d;
    router_features f;
    router_state s;
    hai_token *prompt;            /* the local prompt tokens (owned) */
    size_t n_prompt;
    pii_scan_result *scans;       /* per message (owned): what redaction replaces, if it goes out */
    size_t n_scans;
    char scan_why[256];           /* why the privacy scan is incomplete, when it is */
} hybrid_plan;

typedef struct hybrid_result {
    route_kind route;             /* where the answer came from in the end */
    uint32_t reasons;
    bool escalated;               /* cascade: the local draft was dropped for the cloud */
    hai_finish_reason finish;
    int prompt_tokens, completion_tokens, cached_tokens, cloud_tokens;
    float mean_entropy;           /* of the local model's first tokens (cascade), or -1 */
    double seconds;
    char error[256];
} hybrid_result;

/* Scans, tokenizes and decides (and reserves cloud budget); fills plan. */
hai_status hybrid_plan_request(hybrid *h, const hybrid_request *r, hybrid_plan *plan, hai_error *err);
/* Carries the plan out, streaming through r->on_text. Frees the plan's memory. */
hai_status hybrid_execute(hybrid *h, const hybrid_request *r, hybrid_plan *plan, const hybrid_local *local,
                          hybrid_result *res, hai_error *err);
void hybrid_plan_free(hybrid_plan *plan);
/* A plan given up without executing it: its cloud reservation returned, its memory freed. */
void hybrid_plan_cancel(hybrid *h, hybrid_plan *plan);

/* {"route":..., "reasons":[...], "signals":{...}} for responses; malloc'd. */
char *hybrid_route_json(const hybrid_plan *plan, const hybrid_result *res);
/* "local; reasons=DEFAULT" for the x-hai-route header. */
void hybrid_route_header(route_kind route, uint32_t reasons, char *buf, size_t cap);

#endif
