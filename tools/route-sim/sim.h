/* Router evaluation over a seeded synthetic trace: many requests over several days, some carrying
 * personal data (real text run through the real scanner and redactor), varied lengths and answer
 * sizes, requests naming cloud models or carrying deadlines, network outages the device only
 * learns about when a call fails, random cloud failures, and a daily budget. Every request goes
 * through router_decide with the state the live router would have (connectivity as cloud.c
 * tracks it, the circuit breaker, budget reservations), and the outcome is measured: where it
 * was answered, personal data bytes that would have reached the cloud, requests answered while
 * offline, budget overrun, predicted latency per route. */
#ifndef HAI_ROUTER_SIM_H
#define HAI_ROUTER_SIM_H

#include <stdint.h>

#include "router/config.h"
#include "router/privacy.h"
#include "router/router.h"

typedef struct sim_params {
    int n_requests;          /* default 10000 */
    int days;                /* the trace's span; default 3 */
    uint64_t seed;
    double pii_share;        /* requests carrying personal data; default 0.2 */
    double outage_share;     /* time the network is down; default 0.08 */
    double cloud_fail_rate;  /* calls that fail while the network is up; default 0.02 */
    double hard_share;       /* requests the local model is unsure about; default 0.25 */
    double local_prefill_tps, local_decode_tps; /* the device's speed; default 100 / 20 */
} sim_params;

void sim_params_defaults(sim_params *p);

#define SIM_ROUTES 3 /* local, cloud, local->cloud (escalated) */

typedef struct sim_result {
    int n;
    int by_route[SIM_ROUTES];            /* final outcome: answered locally, by the cloud, escalated */
    int by_reason[R_COUNT];
    double p50_ms[SIM_ROUTES], p95_ms[SIM_ROUTES];
    int with_pii;                        /* requests that carried seeded personal data */
    int64_t pii_bytes_sent;              /* of classes kept local or redacted: must be 0 */
    int64_t pii_bytes_allowed;           /* of classes the policy allows to leave */
    int offline_requests, offline_answered;
    int cloud_failures, unanswered;
    int64_t budget_tokens;               /* daily; 0 = none */
    int64_t max_day_tokens;              /* most cloud tokens spent in one day */
    int64_t budget_overrun;              /* max over days of spent - budget, if positive */
    int64_t cloud_tokens;
} sim_result;

/* Runs the trace. The policy is used as given (cloud_enabled should be set). */
hai_status sim_run(const sim_params *p, const hybrid_config *cfg, sim_result *out, hai_error *err);

#endif
