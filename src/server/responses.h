/* OpenAI's Responses API (POST /v1/responses) on top of the chat path: a request is translated
 * into the equivalent chat completions request (instructions, input text or items, function
 * tools, text.format, previous_response_id and item references resolved from a store of recent
 * responses), generated as chat is, and answered as a response object or as the Responses
 * stream's typed events. No I/O here: fuzzed with the chat API (fuzz/fuzz_api.c). */
#ifndef HAI_SERVER_RESPONSES_H
#define HAI_SERVER_RESPONSES_H

#include <stdbool.h>
#include <stddef.h>

#include "api.h"
#include "output.h"

/* Recent responses (their conversation and output items) and their items, by id, in memory:
 * what previous_response_id and item_reference name. Bounded: the oldest go first. */
typedef struct resp_store resp_store;
resp_store *resp_store_new(size_t max_entries, size_t max_bytes);
void resp_store_free(resp_store *st);
/* A stored response object by its id (malloc'd), or NULL. */
char *resp_store_object(resp_store *st, const char *id);
/* Forgets a response (its object and conversation); OpenAI's deletion object (malloc'd), or NULL
 * when there was none. */
char *resp_store_delete(resp_store *st, const char *id);

typedef struct resp_req {
    bool stream, store;
    char *items; /* the conversation's items, references resolved (a JSON array), kept with the response */
    char *echo;  /* the request's settings the response object repeats (a JSON object) */
} resp_req;

/* The chat completions body (*chat, malloc'd) a Responses request stands for. false: a 400 (or
 * 500 out of memory) in e, naming the Responses field. */
bool resp_translate(resp_store *st, const char *body, size_t len, char **chat, size_t *chat_len, resp_req *rr, api_error *e);
void resp_req_free(resp_req *rr);

/* An output item: reasoning, a message (content bytes [a, b) of the parsed answer) or a call. */
typedef struct resp_item {
    int kind; /* 'r', 'm', 'f' */
    char id[40];
    size_t a, b;
    int call;
} resp_item;

/* The answer's usage and how it ended. */
typedef struct resp_end {
    int input_tokens, output_tokens, cached_tokens;
    bool incomplete; /* max_output_tokens or the context ran out */
} resp_end;

/* The response object (malloc'd): the items over the parsed answer o (calls' ids call_ids);
 * stored with the conversation when rr->store. items NULL: the items of the whole answer. */
char *resp_object(resp_store *st, const resp_req *rr, const char *id, const char *model, long created, const chat_out *o,
                  char (*call_ids)[40], const resp_item *items, size_t n_items, const resp_end *end);

/* A stream's events: begin (response.created and response.in_progress), a step's deltas (items
 * opened and closed as the answer moves from reasoning to text to calls), the end (open items
 * closed, then response.completed or response.incomplete). Each appends SSE text to *buf
 * (malloc'd, grown); false: out of memory. */
typedef struct resp_stream {
    int seq;
    resp_item *items;
    size_t n, cap;
    int open; /* the open item's index, or -1 */
    const char *id, *model;
    long created;
} resp_stream;

bool resp_stream_begin(resp_stream *rs, const resp_req *rr, const char *id, const char *model, long created, char **buf);
bool resp_stream_step(resp_stream *rs, const out_step *d, char (*call_ids)[40], char **buf);
bool resp_stream_end(resp_stream *rs, resp_store *st, const resp_req *rr, const chat_out *o, char (*call_ids)[40], const resp_end *end,
                     char **buf);
/* The stream's end when the answer fails: an error event (code: server_error, timeout, ...). */
bool resp_stream_error(resp_stream *rs, const char *code, const char *message, char **buf);
void resp_stream_free(resp_stream *rs);

#endif
