/* Server metrics in the Prometheus text format: request counts by endpoint and status, tokens in
 * and out, time-to-first-token and per-token latency histograms, queue depth, busy slots, and the
 * router's decisions. Thread-safe (one mutex: updates are rare next to inference). */
#ifndef HAI_SERVER_METRICS_H
#define HAI_SERVER_METRICS_H

#include <pthread.h>
#include <stdint.h>

#define MET_BUCKETS 12
#define MET_MAX_SERIES 64

typedef struct met_hist {
    uint64_t counts[MET_BUCKETS + 1]; /* the last is +Inf */
    double sum;
    uint64_t n;
} met_hist;

typedef struct metrics {
    pthread_mutex_t mu;
    struct {
        char endpoint[48];
        int status;
        uint64_t n;
    } req[MET_MAX_SERIES];
    int n_req;
    struct {
        char route[16], reason[32];
        uint64_t n;
    } routes[MET_MAX_SERIES];
    int n_routes;
    uint64_t prompt_tokens, completion_tokens, cloud_tokens, disconnects, drafted_tokens, accepted_tokens;
    met_hist ttft, token_latency;
    int queue_depth, slots_busy, slots_total;
} metrics;

void metrics_init(metrics *m, int slots_total);
void metrics_destroy(metrics *m);
void metrics_request(metrics *m, const char *endpoint, int status);
void metrics_route(metrics *m, const char *route, const char *reason);
void metrics_tokens(metrics *m, int prompt, int completion, double ttft_s, double per_token_s);
void metrics_cloud_tokens(metrics *m, int n);
void metrics_drafts(metrics *m, int drafted, int accepted); /* speculative decoding: tokens drafted, and of them kept */
void metrics_disconnect(metrics *m);
void metrics_gauges(metrics *m, int queue_depth, int slots_busy);
/* The exposition text; malloc'd. */
char *metrics_text(metrics *m);

#endif
