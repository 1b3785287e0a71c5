/* The hybrid router: a pure decision - (request features, policy, state) -> route + reasons.
 * No I/O and no clock: everything it needs is passed in, so every rule is unit-tested alone
 * (tests/test_router.c) and the same function serves hai serve, hai run, hai chat and the
 * evaluation over synthetic traces. */
#ifndef HAI_ROUTER_H
#define HAI_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "privacy.h"

typedef enum route_kind {
    ROUTE_LOCAL,   /* answer on the device */
    ROUTE_CLOUD,   /* send to the cloud model */
    ROUTE_CASCADE, /* generate locally; escalate to the cloud if the model is unsure */
} route_kind;

/* Reason codes, named the same in headers, JSON, metrics and logs. */
typedef enum route_reason {
    R_PRIVACY_KEEP_LOCAL, R_PRIVACY_REDACTED, R_PRIVACY_SCAN_INCOMPLETE, R_OFFLINE, R_CIRCUIT_OPEN, R_CONTEXT_TOO_LONG,
    R_CLOUD_MODEL_REQUESTED, R_BUDGET_SPENT, R_DEADLINE, R_LOW_CONFIDENCE, R_CLOUD_ERROR, R_TOOLS_NOT_LOCAL, R_DEFAULT,
    R_COUNT
} route_reason;

const char *route_name(route_kind r);        /* "local", "cloud", "local->cloud" */
const char *route_reason_name(route_reason r); /* "PRIVACY_KEEP_LOCAL", ... */

#define ROUTER_MAX_CLOUD_MODELS 16

typedef struct router_policy {
    bool cloud_enabled;                 /* a cloud backend is configured */
    pii_action privacy[PII_COUNT];      /* per class; keep-local by default */
    uint32_t local_ctx;                 /* context of the local model */
    int32_t default_max_tokens;         /* expected answer length when a request gives none */
    char cloud_models[ROUTER_MAX_CLOUD_MODELS][128]; /* names that mean "the cloud, please" */
    int n_cloud_models;
    int64_t daily_tokens;               /* cloud token budget per UTC day; 0 = none */
    double daily_cost;                  /* cloud cost budget per day; 0 = none */
    double cost_per_1k_tokens;
    double deadline_ms;                 /* default deadline; 0 = none */
    double cloud_rtt_ms, cloud_tokens_per_s; /* estimates of the cloud's round trip and speed */
    bool cascade;                       /* local first, escalate when unsure */
    int32_t cascade_tokens;             /* K: tokens whose mean entropy decides */
    float entropy_threshold;            /* nats; above it the local answer is dropped */
    bool prefer_cloud;                  /* route to the cloud when nothing says otherwise */
    bool offline;                       /* the device says: no network */
    int tools_route;                    /* requests with tools: TOOLS_ROUTE_* */
} router_policy;

/* Where requests with tools may be answered: the device when its chat template shows tools
 * (AUTO), the device always (LOCAL: hai describes the tools to a template that cannot), or the
 * cloud whenever the rules allow it (CLOUD). */
enum { TOOLS_ROUTE_AUTO, TOOLS_ROUTE_LOCAL, TOOLS_ROUTE_CLOUD };

/* Defaults: no cloud, every class of personal data kept local, cascade off. */
void router_policy_defaults(router_policy *p);

typedef struct router_features {
    int32_t n_prompt_tokens;     /* as the local tokenizer counts them */
    int32_t max_tokens;          /* 0 = not given */
    const char *model;           /* the model the request names; may be NULL */
    double deadline_ms;          /* per request; 0 = the policy's */
    size_t pii[PII_COUNT];       /* personal data found, by class */
    size_t pii_verbatim[PII_COUNT]; /* ... of it, in fields that cannot be redacted (stop strings) */
    bool pii_incomplete;         /* a detector could not finish: personal data of any class may be there */
    bool tools;                  /* the request offers tools to call */
    bool tools_template;         /* the local model's chat template shows tools */
} router_features;

typedef struct router_state {
    bool online;                 /* the network is reachable (as far as hai knows) */
    bool circuit_open;           /* the cloud failed repeatedly and is cooling down */
    int64_t tokens_spent;        /* cloud tokens spent today (reservations included) */
    double cost_spent;
    double local_prefill_tps, local_decode_tps; /* measured on this device */
} router_state;

typedef struct router_decision {
    route_kind route;
    uint32_t reasons;            /* bit (1 << route_reason) */
    bool redact;                 /* the request goes to the cloud with personal data replaced */
    bool truncate;               /* too long for the local model with no cloud: keep what fits */
    double pred_local_ms, pred_cloud_ms;
    int64_t reserve_tokens;      /* cloud tokens to set aside for this request */
} router_decision;

router_decision router_decide(const router_features *f, const router_policy *p, const router_state *s);

/* "PRIVACY_REDACTED,DEFAULT" into buf. */
void route_reasons_str(uint32_t reasons, char *buf, size_t cap);

#endif
