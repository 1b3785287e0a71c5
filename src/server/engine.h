/* Inference for the server: N slots (each a context with its own KV cache) fed from a bounded
 * queue by worker threads. HTTP threads never run inference: they submit a job and read its
 * text as the worker produces it. A job whose client went away is cancelled and its slot freed
 * within one decode step. A new job goes to the idle slot whose cache shares the longest prefix
 * with its prompt (the next turn of a conversation reuses the cached turns). */
#ifndef HAI_SERVER_ENGINE_H
#define HAI_SERVER_ENGINE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "hai.h"
#include "base/text.h"
#include "metrics.h"

#define SRV_MAX_TOP_LOGPROBS 20

/* One generated token's log probability, and the most likely alternatives (logprobs). */
typedef struct srv_logprob {
    hai_token id;
    float logprob;
    int n_top;
    hai_token top[SRV_MAX_TOP_LOGPROBS];
    float top_logprob[SRV_MAX_TOP_LOGPROBS];
} srv_logprob;

/* A wake-up shared by the jobs of one request (its choices): whoever waits on several jobs waits
 * here. Counted: the request and each job hold a reference (a job may outlive a client that left). */
typedef struct srv_notify {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned long seq;  /* bumped at every change of any of the jobs */
    atomic_int refs;
} srv_notify;

srv_notify *srv_notify_new(void); /* one reference, the caller's */
void srv_notify_ref(srv_notify *n);
void srv_notify_release(srv_notify *n);

typedef struct srv_job {
    /* input (set before submission, read-only after) */
    hai_token *prompt;
    size_t n_prompt;
    hai_sampler_params sp;
    bool greedy;
    int32_t max_tokens;
    const char *const *stop;
    size_t n_stop;
    char **stop_owned;    /* freed with the job (NULL-terminated), if set */
    hai_logit_bias *bias_owned; /* sp.logit_bias's entries, when the job owns them */
    hai_grammar *grammar; /* constrains the output (owned; back to gpool when the job is freed), or NULL */
    char *grammar_text;   /* its GBNF (owned) */
    struct grammar_pool *gpool;
    hai_grammar_trigger trigger; /* the grammar waits for this text (a tool call's marker; static), or text NULL */
    bool special_text;    /* control tokens come out as their text (tool-call markers) */
    bool from_cloud;      /* a routed answer whose text is the cloud's (its calls in the Hermes form); under mu */
    int top_logprobs;     /* -1: no logprobs; else each token's and this many alternatives */
    const float *cur_logits; /* the worker's: the logits the token being emitted was picked from */
    int32_t n_vocab;
    bool lp_oom;          /* a record could not be kept: the request fails rather than answer without it */
    double deadline;      /* monotonic seconds; 0 = none */
    /* progress, under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    hai_text out;         /* the text produced so far (whole UTF-8 characters) */
    hai_token *tokens;    /* the generated token ids, when want_tokens */
    size_t n_tokens, cap_tokens;
    bool want_tokens;
    srv_logprob *lp;      /* [n_lp] per generated token, when top_logprobs >= 0 */
    size_t n_lp, cap_lp;
    char *route_json;     /* routed requests: the hai_route object (owned) */
    char route_header[160]; /* and the x-hai-route header of the final route */
    bool started, done;
    hai_status status;
    char error[HAI_ERROR_MSG_SIZE];
    hai_generate_result res;
    double t_submit, t_start;
    atomic_bool cancelled; /* set by the HTTP side (disconnect, timeout) or at shutdown */
    atomic_bool shutdown;  /* ... and this with it when the server is stopping: 503, not 500 */
    int refs;              /* the submitter and the engine each hold one */
    struct srv_job *next;
    srv_notify *notify;    /* also woken at every change (a reference of the job's own), or NULL */
    int index;             /* its choice's index in the response */
    struct srv_job *leader; /* a choice after the first of its prompt: it copies the leader's prompt cache
                               instead of reading the prompt again (a reference), or NULL */
} srv_job;

/* Wakes whoever waits on the job (its cv, and its notify); the caller holds j->mu. */
void srv_job_signal(srv_job *j);

typedef struct srv_engine srv_engine;

typedef struct srv_engine_params {
    int n_slots;       /* default 2 */
    int max_queue;     /* jobs waiting beyond the slots; default 4 * n_slots */
    uint32_t n_ctx;    /* per slot; 0 = min(trained, 4096) */
    int n_threads;     /* compute threads shared by the slots; 0 = all CPUs */
    int draft_lookup;  /* drafts a step per slot, at most (gen_draft; 0 = off): prompt lookup, or */
    const hai_model *draft_model; /* a draft model's greedy picks (same vocabulary: hai_draft_check) */
    bool context_shift; /* a prompt that drops a conversation's older turns finds the rest cached (gen.h) */
    uint32_t kv_type;  /* the slots' KV cache (hai_context_params); 0: F16, or under a memory budget the
                        * first of F16, Q8_0, Q4_0 that holds the context (hai_context_fit_kv) */
} srv_engine_params;

hai_status srv_engine_start(const hai_model *m, const srv_engine_params *p, metrics *met, srv_engine **out, hai_error *err);
void srv_engine_stop(srv_engine *e);
uint32_t srv_engine_n_ctx(const srv_engine *e);
/* The slots' KV type; *f16_n_ctx (may be NULL): when the budget chose it, the context an F16 cache
 * would have had (else 0). */
uint32_t srv_engine_kv_type(const srv_engine *e, uint32_t *f16_n_ctx);
/* The slots' KV caches and scratch (and the draft model's), allocated at the start. */
uint64_t srv_engine_memory_bytes(const srv_engine *e);

/* Appends text to a job's output (under its lock) and wakes its readers; false when out of memory. */
bool srv_job_add_text(srv_job *j, const char *text, size_t len);

/* A job with one reference for the caller (release with srv_job_release). */
srv_job *srv_job_new(void);
void srv_job_release(srv_job *j);

typedef enum srv_submit { SUBMIT_OK, SUBMIT_FULL, SUBMIT_STOPPING } srv_submit;

/* Queues a job (taking a reference). SUBMIT_FULL when the slots and queue are full (the caller
 * answers 429), SUBMIT_STOPPING once the engine drains (503). */
srv_submit srv_engine_submit(srv_engine *e, srv_job *j);
/* Shutdown, first step: no new jobs; those still queued end now as "shutting down" (their
 * clients get a 503 or a final error event); those handed to a slot run on. */
void srv_engine_drain(srv_engine *e);
/* Shutdown, after the grace period: the running jobs are cancelled as "shutting down". */
void srv_engine_cancel_running(srv_engine *e);
/* Queue length and busy slots now. */
void srv_engine_load(srv_engine *e, int *queued, int *busy);

#endif
