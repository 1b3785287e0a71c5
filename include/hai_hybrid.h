/* hai_hybrid: the hybrid router as a library - what `hai run --route-config` and `hai serve` do,
 * for an app's own code. A request (chat messages) is scanned for personal data, decided on
 * (device, cloud, or device first and the cloud when the local model is unsure) under a policy
 * (privacy per class of data, offline, budget, deadline, cloud models by name), then carried out:
 * the answer streams through a callback, from the device (a hai_context of the app's) or from any
 * OpenAI-compatible service (with personal data redacted on the way out and restored on the way
 * back when the policy says so), falling back to the device when the cloud fails.
 *
 * Link: libhai_hybrid and libhai (pkg-config hai-hybrid; CMake hai::hybrid). It adds libcurl
 * (the cloud client) to libhai's dependencies; hai.h alone never needs it.
 * Conventions are hai.h's: hai_status results, a hai_error filled on failure, free functions take
 * NULL. Structs an app fills or receives here start with `size` (set it to sizeof the struct):
 * fields are only ever added at their end, and the library reads and writes no further than the
 * size the app was compiled with. */
#ifndef HAI_HYBRID_H
#define HAI_HYBRID_H

#include "hai.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Where an answer comes from. */
typedef enum hai_route {
    HAI_ROUTE_LOCAL = 0,   /* the device */
    HAI_ROUTE_CLOUD = 1,   /* the cloud model */
    HAI_ROUTE_CASCADE = 2, /* the device first; the cloud when the local model is unsure */
} hai_route;

/* Why: a reasons mask has bit (1u << reason) set for each. The values are fixed; new reasons are
 * added at the end. Names (hai_route_reason_name) are those of hai serve's headers, JSON, metrics
 * and logs. */
typedef enum hai_route_reason {
    HAI_REASON_PRIVACY_KEEP_LOCAL = 0,   /* personal data the policy keeps on the device */
    HAI_REASON_PRIVACY_REDACTED = 1,     /* personal data replaced by placeholders before it left */
    HAI_REASON_PRIVACY_SCAN_INCOMPLETE = 2, /* the scan could not finish: treated as personal data */
    HAI_REASON_OFFLINE = 3,              /* no network (policy, or a failed call) */
    HAI_REASON_CIRCUIT_OPEN = 4,         /* the cloud failed repeatedly and is cooling down */
    HAI_REASON_CONTEXT_TOO_LONG = 5,     /* the prompt does not fit the local context */
    HAI_REASON_CLOUD_MODEL_REQUESTED = 6, /* the request named a cloud model */
    HAI_REASON_BUDGET_SPENT = 7,         /* the cloud budget of the day is spent */
    HAI_REASON_DEADLINE = 8,             /* only one side is predicted to meet the deadline */
    HAI_REASON_LOW_CONFIDENCE = 9,       /* the local model was unsure (cascade) */
    HAI_REASON_CLOUD_ERROR = 10,         /* the cloud failed; answered on the device */
    HAI_REASON_TOOLS_NOT_LOCAL = 11,     /* tools the local template cannot show */
    HAI_REASON_DEFAULT = 12,             /* nothing above applied */
} hai_route_reason;

const char *hai_route_name(hai_route r);                /* "local", "cloud", "local->cloud" */
const char *hai_route_reason_name(hai_route_reason r);  /* "PRIVACY_KEEP_LOCAL", ... ("?" if unknown) */
/* "PRIVACY_REDACTED,DEFAULT" into buf (cap bytes with the NUL, cut if short). */
void hai_route_reasons_str(uint32_t reasons, char *buf, size_t cap);

typedef struct hai_router hai_router;

/* A router over the app's context ctx (borrowed; the device's answers are generated on it, so one
 * request at a time). policy_json: the routing policy, the JSON of `hai run --route-config`
 * files (README: "The hybrid router"); NULL = everything on the device. The cloud's API key is
 * read from the environment variable the policy names, never from the policy. */
hai_status hai_router_create(const char *policy_json, size_t len, hai_context *ctx, hai_router **out, hai_error *err);
/* The same with the policy read from a file (NULL = everything on the device). */
hai_status hai_router_create_from_file(const char *path, hai_context *ctx, hai_router **out, hai_error *err);
void hai_router_free(hai_router *r);

typedef struct hai_route_request {
    size_t size;                   /* sizeof(hai_route_request) */
    const hai_chat_message *msgs;  /* the conversation (formatted with the model's chat template) */
    size_t n_msgs;
    const char *model;             /* the model the request names (a policy's cloud model name routes there); NULL */
    int32_t max_tokens;            /* 0 = not given (the policy's expected answer length is assumed) */
    double deadline_ms;            /* 0 = the policy's */
    const hai_sampler_params *sampler; /* NULL = greedy; its seed makes the device's answer repeatable */
    const char *const *stop;       /* stop strings (not part of the answer) */
    size_t n_stop;
    /* The answer as it streams; return false to stop. Text is never taken back: a cascade judges
     * the first tokens before any of them is passed on. */
    bool (*on_text)(void *user, const char *text, size_t len);
    /* Called before text from a new source: the cloud (cloud = true) or the device again. May be NULL. */
    void (*on_source)(void *user, bool cloud);
    void *user;
} hai_route_request;

/* A decision and what it rests on. */
typedef struct hai_route_plan hai_route_plan;

/* Scans, tokenizes and decides; reserves cloud budget for a cloud route. q (and what it points
 * to) must stay valid until the plan is executed or freed. */
hai_status hai_router_decide(hai_router *r, const hai_route_request *q, hai_route_plan **out, hai_error *err);
hai_route hai_route_plan_route(const hai_route_plan *p);
uint32_t hai_route_plan_reasons(const hai_route_plan *p);
bool hai_route_plan_redacts(const hai_route_plan *p); /* personal data is replaced before it goes out */
/* The decision as JSON: {"route", "decision", "reasons": [...], "signals": {...}} - the hai_route
 * object of hai serve's responses; freed with hai_free (NULL when out of memory). */
char *hai_route_plan_json(const hai_route_plan *p);
/* The decision for a person to read, one line per signal (what `hai route --explain` prints). */
char *hai_route_plan_explain(const hai_route_plan *p);
/* Frees a plan that is not executed (returns its cloud reservation). */
void hai_route_plan_free(hai_route_plan *p);

typedef struct hai_route_result {
    size_t size;                   /* sizeof(hai_route_result), set by the app */
    hai_route route;               /* where the answer came from in the end */
    uint32_t reasons;              /* why (bits of hai_route_reason) */
    bool escalated;                /* cascade: the local draft was dropped for the cloud */
    hai_finish_reason finish;
    int32_t prompt_tokens, completion_tokens, cached_tokens, cloud_tokens;
    float mean_entropy;            /* of the local model's first tokens (cascade), or -1 */
    double seconds;
    char error[256];               /* a cloud failure the answer survived (fallback), or "" */
} hai_route_result;

/* Carries the plan out for the request it was decided on, streaming through its on_text; frees
 * the plan in every case. res->size must be set. */
hai_status hai_router_execute(hai_router *r, hai_route_plan *plan, hai_route_result *res, hai_error *err);
/* Decide and execute in one call. */
hai_status hai_router_chat(hai_router *r, const hai_route_request *q, hai_route_result *res, hai_error *err);

#ifdef __cplusplus
}
#endif

#endif
