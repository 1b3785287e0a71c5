/* The OpenAI-compatible API surface: parsing and validating request bodies (untrusted input,
 * every field checked, errors naming the field) and building response JSON. No I/O here, so
 * the whole layer is fuzzed on its own (fuzz/fuzz_api.c). */
#ifndef HAI_SERVER_API_H
#define HAI_SERVER_API_H

#include <stdbool.h>
#include <stddef.h>

#include "hai.h"
#include "base/error.h"
#include "chat/chat_tools.h"

#define API_MAX_LOGIT_BIAS 1024 /* entries of logit_bias */
#define API_MAX_N 8             /* choices per prompt */
#define API_MAX_PROMPTS 16      /* prompts in one completions request */
#define API_MAX_CHOICES (API_MAX_N * API_MAX_PROMPTS)
#define API_MAX_STOP 4
#define API_MAX_MESSAGES 1024
#define API_MAX_TOOLS 128

typedef enum api_kind { API_CHAT, API_COMPLETION } api_kind;

typedef struct api_request {
    api_kind kind;
    char *model;              /* as the client named it (may be NULL) */
    hai_chat_message *msgs;   /* chat: roles and contents (owned strings) */
    size_t n_msgs;
    char *prompt;             /* completion */
    bool stream, include_usage;
    int32_t max_tokens;       /* 0 = not given */
    bool has_temperature, has_top_p, has_seed;
    hai_sampler_params sp;
    char *stop[API_MAX_STOP];
    size_t n_stop;
    int top_logprobs;         /* -1: no logprobs; else alternatives per token (0-20) */
    int n;                    /* choices per prompt (1-8) */
    char **prompts;           /* completions: prompt as an array of strings (prompt is prompts[0]) */
    size_t n_prompts;
    hai_logit_bias *bias;     /* logit_bias (owned); token ids checked against the model by the caller */
    size_t n_bias;
    char *grammar;            /* GBNF the output must follow (owned; response_format's schema converted), or NULL;
                                 compiled against the model's vocabulary by the caller */
    char grammar_param[24];   /* the field it came from, for errors */
    char *response_format_json; /* response_format as given (json_object / json_schema), for a cloud; or NULL */
    char *tools_json;         /* chat: the tools the model may call (OpenAI's array, checked), or NULL */
    tool_def *tools;          /* [n_tools] their names and schemas (strings owned, see tools_own) */
    size_t n_tools;
    char **tools_own;         /* [n_tools_own] */
    size_t n_tools_own;
    tool_choice choice;       /* tool_choice (auto when tools are given and it is not) */
    char named[72];           /* the function tool_choice names */
    bool parallel;            /* parallel_tool_calls (default true) */
    bool raw_reasoning;       /* reasoning_format "none": <think> stays in content, calls are not read */
    bool no_thinking;         /* chat_template_kwargs.enable_thinking false (Qwen3: answer without thinking) */
} api_request;

typedef struct api_error {
    int status;          /* HTTP status */
    const char *type;    /* "invalid_request_error", ... */
    char param[64];      /* the offending field, or "" */
    char message[512];
    const char *code;    /* OpenAI's machine-readable code ("context_length_exceeded", ...), or NULL */
} api_error;

/* Fills e with a 400 naming param and returns false (for parsers' "return api_fail(...)"). */
bool api_fail(api_error *e, const char *param, const char *fmt, ...) HAI_PRINTF(3, 4);
/* The server's own failure, not the client's: a 500, "out of memory"; returns false. */
bool api_oom(api_error *e);

/* A message's content as one text (owned copy, valid UTF-8): a string, or an array of parts whose
 * type is one of types (NULL-terminated), their "text" joined; refused: what the error says parts
 * must be. NULL content is "". */
typedef struct cJSON cJSON;
bool api_content_text(const cJSON *c, const char *param, const char *const *types, const char *refused, char **out, api_error *e);

/* Parses a request body. On failure fills err (status 400 with the field named) and returns
 * false; on success the caller frees with api_request_free. */
bool api_parse(api_kind kind, const char *body, size_t len, api_request *out, api_error *err);
void api_request_free(api_request *r);
/* tool_choice as a client writes it ("auto", {"type": "function", ...}), for a cloud; malloc'd. */
char *api_tool_choice_json(const api_request *r);

/* {"error": {"message", "type", "param", "code"}}; malloc'd */
char *api_error_json(const api_error *e);

/* A token's piece (exact bytes, maybe part of a UTF-8 character) and log probability, with its
 * alternatives, for logprobs. */
typedef struct api_piece {
    const char *text;
    size_t len;
    float logprob;
} api_piece;

typedef struct api_logprob {
    api_piece tok;
    int n_top;
    api_piece top[20];
} api_logprob;

typedef struct api_result {
    const char *id, *model;
    long created;
    const char *text;
    size_t text_len;
    const char *finish;   /* "stop" | "length" */
    int prompt_tokens, completion_tokens;
    int cached_tokens;    /* prompt tokens reused from the slot's cache */
    const char *route_json; /* an extra "hai_route" object (raw JSON), or NULL */
    bool want_logprobs;     /* the request asked for logprobs: a "logprobs" object on the choice */
    const api_logprob *lp;  /* the tokens of this response or chunk */
    size_t n_lp;
    size_t text_offset;     /* completions: where this chunk's text starts in the whole text */
    int index;              /* the choice's index */
    const char *reasoning;  /* chat: the model's reasoning (a <think> block), or NULL */
    size_t reasoning_len;
    const chat_call *calls; /* chat: the tool calls it made, and their ids */
    size_t n_calls;
    char (*call_ids)[40];
    bool calls_only;        /* chat stream: the answer will be tool calls (content null in its role chunk) */
} api_result;

/* The non-streaming response body: id, model, usage and route from total, a choice from each of
 * ch[0..n) (its index, text, finish, logprobs); malloc'd. */
char *api_response_json(api_kind kind, const api_result *total, const api_result *ch, size_t n);

/* One SSE event "data: {...}\n\n" of a stream: the role chunk (first), a text delta, the final
 * chunk with finish_reason, or the usage chunk. malloc'd. */
char *api_chunk_role(api_kind kind, const api_result *r);
char *api_chunk_text(api_kind kind, const api_result *r, const char *text, size_t len);
char *api_chunk_finish(api_kind kind, const api_result *r);
/* A chat delta of parsed output: reasoning and content text (either may be empty), and tool-call
 * pieces (the first of a call with its id and name, then argument text); r's logprobs go with it. */
typedef struct api_call_delta {
    int index;
    const char *id, *name; /* the call's first delta; NULL after */
    const char *args;
    size_t args_len;
} api_call_delta;
char *api_chunk_delta(const api_result *r, const char *reasoning, size_t rlen, const char *content, size_t clen,
                      const api_call_delta *calls, size_t n_calls);
/* A tool call id: "call_" and 24 letters and digits, or 9 of them for Mistral (its template
 * refuses other ids when they come back). */
void api_call_id(tool_syntax syn, char out[40]);
char *api_chunk_usage(api_kind kind, const api_result *r);

/* True when s[0..n) is valid UTF-8. */
bool api_valid_utf8(const char *s, size_t n);

#endif
