/* The only code that talks to remote services: an OpenAI-compatible chat client over libcurl
 * (a hosted API, a vLLM cluster, another hai serve). Streams SSE and parses it incrementally;
 * connect, first-byte, idle and total timeouts; retries with backoff (honouring Retry-After) only
 * while nothing has reached the user; a circuit breaker; no redirects (credentials never go to
 * another origin); responses capped in size after decompression. A stream that ends without
 * finish_reason and [DONE] is an error, never a success. */
#ifndef HAI_CLOUD_H
#define HAI_CLOUD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "hai.h"

typedef struct cloud_config {
    char base_url[512];          /* e.g. https://api.openai.com/v1 (".../chat/completions" is added) */
    char model[128];
    char api_key[512];           /* read from the environment variable the policy names */
    long connect_timeout_ms;     /* default 3000 */
    long first_byte_timeout_ms;  /* until the first byte of the response body; default 15000 */
    long idle_timeout_ms;        /* longest silence inside a response; default 15000 */
    long total_timeout_ms;       /* the whole call, retries included; default 120000 */
    int max_retries;             /* default 2 */
    size_t max_response_bytes;   /* after decompression; default 8 MiB */
    int circuit_failures;        /* consecutive failures that open the circuit; default 3 */
    double circuit_cooldown_s;   /* default 30 */
} cloud_config;

void cloud_config_defaults(cloud_config *c);

/* A credential or URL that may go into a request line or header: visible ASCII only (no CR, LF,
 * other controls, spaces or bytes >= 0x7F, with which it could end its line and add another). */
bool cloud_token_ok(const char *s);

typedef struct cloud cloud;

hai_status cloud_create(const cloud_config *cfg, cloud **out, hai_error *err);
void cloud_free(cloud *c);

typedef struct cloud_request {
    const hai_chat_message *msgs;
    size_t n_msgs;
    const char *model;           /* NULL = the configured model */
    int32_t max_tokens;          /* 0 = omit */
    float temperature;           /* < 0 = omit */
    float top_p;                 /* <= 0 = omit */
    bool has_seed;
    int64_t seed;
    const char *const *stop;
    size_t n_stop;
    /* tools, passed through as the client gave them (JSON text; NULL = omit): the tools array,
     * tool_choice, response_format; parallel_tool_calls 0 = omit, > 0 true, < 0 false */
    const char *tools, *tool_choice, *response_format;
    int parallel_tool_calls;
    /* receives the answer's text as it streams; return false to stop */
    bool (*on_text)(void *user, const char *text, size_t len);
    /* receives each tool call whole (its name and its arguments' JSON text, as the upstream wrote
     * them), in order, interleaved with on_text as they come; NULL = calls are dropped */
    bool (*on_call)(void *user, const char *name, const char *args, size_t args_len);
    void *user;
    atomic_bool *cancel;         /* may be NULL */
} cloud_request;

typedef struct cloud_result {
    hai_status status;
    char error[256];
    int http_status;
    char finish[32];
    int prompt_tokens, completion_tokens; /* as the upstream reports them (0 if it does not) */
    bool delivered;              /* some text reached on_text (no retry or restart after that) */
    int attempts;
    double seconds;
    bool connect_failure;        /* the network or the host could not be reached */
} cloud_result;

hai_status cloud_chat(cloud *c, const cloud_request *r, cloud_result *res);

/* Circuit breaker and connectivity, as the router's state sees them. */
bool cloud_circuit_open(cloud *c);
bool cloud_online(cloud *c);

/* For tests and the fuzz target: a response (status, content type, body delivered in pieces of
 * the given sizes) judged exactly as one from the network would be; text goes to r->on_text. */
hai_status cloud_judge_bytes(int http_status, const char *content_type, const uint8_t *body, size_t len, const size_t *cuts, size_t n_cuts,
                             const cloud_request *r, size_t max_response_bytes, cloud_result *res);

#endif
