/* hai_server: `hai serve`, the OpenAI-compatible HTTP server (libmicrohttpd) over the engine's
 * batched slots, with the hybrid router (hai_hybrid.h) in front. libhai_server is built with the
 * CLI and not installed yet: it steps generations with libhai's internals (the engine's batched
 * decoding), which libhai.so does not export. */
#ifndef HAI_SERVER_H
#define HAI_SERVER_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "hai.h"

typedef struct hai_serve_options {
    const char *model_path;
    const char *host;       /* default 127.0.0.1 */
    uint16_t port;          /* default 8080; 0 = any free port (printed) */
    int n_slots;            /* --parallel, default 2 */
    int max_queue;          /* default 4 x slots */
    uint32_t n_ctx;         /* per slot */
    bool mmap_weights;      /* --mmap: weights used in place from the file (see hai_model_params) */
    uint64_t mem_budget;    /* --mem-budget: bytes for the weights, the slots and the embedder (0 = none);
                             * without n_ctx the slots get the largest context that fits */
    int n_threads;
    int draft_lookup; /* drafts a step per slot, at most: prompt lookup (0: off), or the draft model's (default 4) */
    const char *draft_path; /* a draft model (same vocabulary), or NULL */
    bool context_shift;     /* --context-shift: a conversation that dropped older turns to fit finds the
                             * rest cached (the slot's cache moves down over them; approximate, as
                             * llama.cpp's shift); off: outputs depend on the prompt alone */
    const char *api_key;    /* NULL = no auth */
    const char *cors_origin;
    size_t max_body;        /* bytes; default 1 MiB */
    double timeout_s;       /* per request; default 600 */
    const char *route_config; /* the hybrid router's policy file (issue 7); NULL = local only */
    int max_connections;    /* sockets held at once (default 128) ... */
    int max_connections_per_addr; /* ... by one client address (default a quarter of them) */
    double idle_timeout_s;  /* a connection waiting for a request's headers; default 15 */
    double body_timeout_s;  /* receiving a request body; default 60 */
    double shutdown_grace_s; /* at SIGTERM, how long requests in flight may finish; default 10 */
    volatile sig_atomic_t *stop; /* the server returns when this becomes nonzero */
    hai_stream_mode stream; /* --stream: weights read from the file as needed (see hai_model_params) */
    uint64_t stream_cache;  /* --stream-cache: RAM for them (0: from the budget) */
    uint32_t kv_type;       /* --kv-type: the slots' KV cache, HAI_TYPE_F16 / Q8_0 / Q4_0; 0: F16, or with
                             * mem_budget the first of them that holds the context */
} hai_serve_options;

/* Loads the model, listens, serves until *stop; returns 0 or prints the error and returns 1. */
int hai_serve(const hai_serve_options *o);

#endif
