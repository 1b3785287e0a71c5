/* A chat answer in its parsed shape (chat_tools.h): content, reasoning_content and tool_calls,
 * for a whole response and as the deltas of a stream. */
#ifndef HAI_SERVER_OUTPUT_H
#define HAI_SERVER_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>

#include "chat/chat_tools.h"
#include "api.h"

typedef struct out_mode {
    bool on;       /* the answer is parsed (tools given, or a model that reasons) */
    bool tools;    /* tool calls are looked for */
    bool in_think; /* the prompt opened a <think> block */
    bool forced;   /* tool_choice required or named: the answer is calls (its role chunk has content null) */
    tool_syntax syn;
} out_mode;

/* What a stream has sent of one choice. */
typedef struct out_sent {
    size_t content, reasoning, n_calls, cap;
    size_t *args;      /* [n_calls] argument bytes sent */
    char (*ids)[40];   /* [n_calls] */
    bool final;        /* the whole answer has been parsed and sent */
} out_sent;

/* What is new of a parsed answer since the last step: reasoning and content text, and call
 * pieces (a new call's first piece has its id and name). Points into d->parsed. */
typedef struct out_step {
    chat_out parsed;
    const char *reasoning, *content;
    size_t reasoning_len, content_len;
    api_call_delta *calls;
    size_t n_calls;
} out_step;

/* Parses text[0..len) (done: it is all there) and fills d with what s has not sent yet, then
 * counts it as sent. false: out of memory. Free d with out_step_free. */
bool out_next(const out_mode *m, out_sent *s, const char *text, size_t len, bool done, out_step *d);
void out_step_free(out_step *d);

/* The next chat delta chunk of a choice in *ev, or NULL when there is nothing new to send. */
bool out_delta(const out_mode *m, out_sent *s, const api_result *r, const char *text, size_t len, bool done, char **ev);
void out_sent_free(out_sent *s);

/* The whole answer parsed into r (content, reasoning, calls and new ids, owned by *o and *ids;
 * free with chat_out_free and free). false: out of memory. */
bool out_final(const out_mode *m, const char *text, size_t len, api_result *r, chat_out *o, char (**ids)[40]);

#endif
