/* Prometheus exposition of the server's counters, gauges and histograms. */
#include "metrics.h"

#include "base/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double bounds[MET_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10};

void metrics_init(metrics *m, int slots_total) {
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
    m->slots_total = slots_total;
}

void metrics_destroy(metrics *m) { pthread_mutex_destroy(&m->mu); }

void metrics_request(metrics *m, const char *endpoint, int status) {
    pthread_mutex_lock(&m->mu);
    int i = 0;
    while (i < m->n_req && !(m->req[i].status == status && !strcmp(m->req[i].endpoint, endpoint))) i++;
    if (i == m->n_req && m->n_req < MET_MAX_SERIES) {
        snprintf(m->req[i].endpoint, sizeof m->req[i].endpoint, "%s", endpoint);
        m->req[i].status = status;
        m->n_req++;
    }
    if (i < MET_MAX_SERIES) m->req[i].n++;
    pthread_mutex_unlock(&m->mu);
}

void metrics_route(metrics *m, const char *route, const char *reason) {
    pthread_mutex_lock(&m->mu);
    int i = 0;
    while (i < m->n_routes && !(!strcmp(m->routes[i].route, route) && !strcmp(m->routes[i].reason, reason))) i++;
    if (i == m->n_routes && m->n_routes < MET_MAX_SERIES) {
        snprintf(m->routes[i].route, sizeof m->routes[i].route, "%s", route);
        snprintf(m->routes[i].reason, sizeof m->routes[i].reason, "%s", reason);
        m->n_routes++;
    }
    if (i < MET_MAX_SERIES) m->routes[i].n++;
    pthread_mutex_unlock(&m->mu);
}

static void observe(met_hist *h, double v) {
    int b = 0;
    while (b < MET_BUCKETS && v > bounds[b]) b++;
    h->counts[b]++;
    h->sum += v;
    h->n++;
}

void metrics_tokens(metrics *m, int prompt, int completion, double ttft_s, double per_token_s) {
    pthread_mutex_lock(&m->mu);
    m->prompt_tokens += (uint64_t)prompt;
    m->completion_tokens += (uint64_t)completion;
    if (ttft_s >= 0) observe(&m->ttft, ttft_s);
    if (per_token_s >= 0) observe(&m->token_latency, per_token_s);
    pthread_mutex_unlock(&m->mu);
}

void metrics_cloud_tokens(metrics *m, int n) {
    pthread_mutex_lock(&m->mu);
    m->cloud_tokens += (uint64_t)n;
    pthread_mutex_unlock(&m->mu);
}

void metrics_drafts(metrics *m, int drafted, int accepted) {
    pthread_mutex_lock(&m->mu);
    m->drafted_tokens += (uint64_t)drafted;
    m->accepted_tokens += (uint64_t)accepted;
    pthread_mutex_unlock(&m->mu);
}

void metrics_disconnect(metrics *m) {
    pthread_mutex_lock(&m->mu);
    m->disconnects++;
    pthread_mutex_unlock(&m->mu);
}

void metrics_gauges(metrics *m, int queue_depth, int slots_busy) {
    pthread_mutex_lock(&m->mu);
    m->queue_depth = queue_depth;
    m->slots_busy = slots_busy;
    pthread_mutex_unlock(&m->mu);
}

static void hist(hai_text *o, const char *name, const char *help, const met_hist *h) {
    text_printf(o, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t acc = 0;
    for (int b = 0; b < MET_BUCKETS; b++) {
        acc += h->counts[b];
        text_printf(o, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[b], (unsigned long long)acc);
    }
    acc += h->counts[MET_BUCKETS];
    text_printf(o, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name, (unsigned long long)acc, name, h->sum, name,
         (unsigned long long)h->n);
}

char *metrics_text(metrics *m) {
    hai_text o = {0};
    pthread_mutex_lock(&m->mu);
    text_printf(&o, "# HELP hai_requests_total HTTP requests by endpoint and status code\n# TYPE hai_requests_total counter\n");
    for (int i = 0; i < m->n_req; i++)
        text_printf(&o, "hai_requests_total{endpoint=\"%s\",status=\"%d\"} %llu\n", m->req[i].endpoint, m->req[i].status,
             (unsigned long long)m->req[i].n);
    text_printf(&o, "# HELP hai_prompt_tokens_total Prompt tokens evaluated locally\n# TYPE hai_prompt_tokens_total counter\n"
             "hai_prompt_tokens_total %llu\n", (unsigned long long)m->prompt_tokens);
    text_printf(&o, "# HELP hai_completion_tokens_total Tokens generated locally\n# TYPE hai_completion_tokens_total counter\n"
             "hai_completion_tokens_total %llu\n", (unsigned long long)m->completion_tokens);
    text_printf(&o, "# HELP hai_draft_tokens_total Tokens drafted by prompt lookup (speculative decoding)\n# TYPE hai_draft_tokens_total counter\n"
             "hai_draft_tokens_total %llu\n", (unsigned long long)m->drafted_tokens);
    text_printf(&o, "# HELP hai_draft_accepted_tokens_total Drafted tokens the model kept\n# TYPE hai_draft_accepted_tokens_total counter\n"
             "hai_draft_accepted_tokens_total %llu\n", (unsigned long long)m->accepted_tokens);
    text_printf(&o, "# HELP hai_cloud_tokens_total Tokens spent on cloud models\n# TYPE hai_cloud_tokens_total counter\n"
             "hai_cloud_tokens_total %llu\n", (unsigned long long)m->cloud_tokens);
    text_printf(&o, "# HELP hai_client_disconnects_total Requests whose client went away before the end\n"
             "# TYPE hai_client_disconnects_total counter\nhai_client_disconnects_total %llu\n", (unsigned long long)m->disconnects);
    text_printf(&o, "# HELP hai_routes_total Requests by route and reason\n# TYPE hai_routes_total counter\n");
    for (int i = 0; i < m->n_routes; i++)
        text_printf(&o, "hai_routes_total{route=\"%s\",reason=\"%s\"} %llu\n", m->routes[i].route, m->routes[i].reason,
             (unsigned long long)m->routes[i].n);
    hist(&o, "hai_time_to_first_token_seconds", "Time from request to the first generated token", &m->ttft);
    hist(&o, "hai_token_latency_seconds", "Mean time per generated token after the first, per request", &m->token_latency);
    text_printf(&o, "# HELP hai_queue_depth Requests waiting for a slot\n# TYPE hai_queue_depth gauge\nhai_queue_depth %d\n", m->queue_depth);
    text_printf(&o, "# HELP hai_slots_busy Slots generating\n# TYPE hai_slots_busy gauge\nhai_slots_busy %d\n", m->slots_busy);
    text_printf(&o, "# HELP hai_slots_total Slots\n# TYPE hai_slots_total gauge\nhai_slots_total %d\n", m->slots_total);
    pthread_mutex_unlock(&m->mu);
    return text_take(&o); /* NULL when memory ran out: no half a page */
}
