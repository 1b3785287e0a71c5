/* Tool calls (function calling) and reasoning in a chat model's output: the syntax a model family
 * writes calls in, the grammar that makes a call valid against its tool's JSON Schema, the
 * prompt for templates that cannot show tools, and the parse of the output (whole, or a prefix
 * while it streams) into content, reasoning and calls in OpenAI's shape. */
#ifndef HAI_CHAT_TOOLS_H
#define HAI_CHAT_TOOLS_H

#include <stdbool.h>
#include <stddef.h>

#include "hai.h"

typedef enum tool_syntax {
    TOOLS_HERMES,   /* <tool_call>{"name": .., "arguments": ..}</tool_call>: Qwen2.5/Qwen3, Hermes 2 Pro/3 */
    TOOLS_LLAMA3,   /* {"name": .., "parameters": ..}, maybe after <|python_tag|>: Llama 3.1-3.3 */
    TOOLS_MISTRAL,  /* [TOOL_CALLS][{"name": .., "arguments": ..}, ..]: Mistral v0.3, Nemo */
    TOOLS_DEEPSEEK, /* <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>name ```json ..``` ..: DeepSeek R1/V3 */
    TOOLS_GENERIC,  /* a template that cannot show tools: hai describes them in a system message; Hermes tags */
} tool_syntax;

/* The syntax of the family a chat template belongs to, by the call markers it writes (GENERIC
 * when it has none). */
tool_syntax tools_syntax(const char *template_text);
const char *tools_syntax_name(tool_syntax s);

typedef struct tool_def {
    const char *name;   /* [A-Za-z0-9_-]{1,64}, as OpenAI requires */
    const char *params; /* its JSON Schema (text); NULL = an object with any members */
    bool strict;        /* a keyword the grammar cannot enforce is refused rather than ignored */
} tool_def;

typedef enum tool_choice { TOOL_CHOICE_AUTO, TOOL_CHOICE_NONE, TOOL_CHOICE_REQUIRED, TOOL_CHOICE_NAMED } tool_choice;

/* GBNF for the calls the model may write in this syntax (root "root"): each call names one of
 * the tools (only `named` with TOOL_CHOICE_NAMED) and its arguments follow that tool's schema;
 * several calls when parallel. *trigger: for AUTO, where in the output the grammar takes over
 * (the call's opening marker); NULL for REQUIRED/NAMED (it applies from the first token, after
 * free reasoning up to </think> when in_think: the prompt opened a <think> block). A schema the
 * grammar cannot enforce on a strict tool is HAI_ERR_UNSUPPORTED naming it. */
hai_status tools_grammar(tool_syntax syn, const tool_def *tools, size_t n, tool_choice choice, const char *named, bool parallel,
                         bool in_think, char **gbnf, hai_grammar_trigger *trigger, hai_error *err);

/* Whether a template shows the tools it is given (it uses `tools`). */
bool tools_shown(const char *template_text);

/* For a template that does not show tools: the messages with the tools described in a system
 * message (the first message's system text kept after it) and how to call them in the syntax;
 * for GENERIC (a template that knows nothing of tools) also earlier calls written as the model
 * writes them and tool results as user turns. *out and each new content are malloc'd in *owned
 * (free with tools_messages_free). tools_json: OpenAI's tools array; NULL: no tools to show, only
 * the history written for GENERIC. */
hai_status tools_prompt_messages(tool_syntax syn, const char *tools_json, const hai_chat_message *msgs, size_t n, hai_chat_message **out,
                                 size_t *n_out, char ***owned, size_t *n_owned, hai_error *err);
void tools_messages_free(hai_chat_message *m, char **owned, size_t n_owned);

typedef struct chat_call {
    char *name;
    char *args;     /* the arguments' JSON text as written (a prefix while args_done is false) */
    size_t args_len;
    bool args_done;
} chat_call;

typedef struct chat_out {
    char *content, *reasoning; /* NUL-terminated, never NULL after a successful parse */
    size_t content_len, reasoning_len;
    chat_call *calls;
    size_t n_calls;
} chat_out;

/* Splits generated text: reasoning (a <think> block at the start, or from the start when the
 * prompt opened one: in_think), then content and, with tools, the calls of the syntax. partial:
 * the text may go on, so what could still become a marker or a call is held back (not in
 * content), and a call appears once its name is whole, its arguments as far as written. What a
 * partial parse gives, a later parse of a longer text extends: streams send the differences. */
hai_status chat_parse(tool_syntax syn, bool tools, bool in_think, const char *text, size_t len, bool partial, chat_out *out,
                      hai_error *err);
void chat_out_free(chat_out *o);

/* Whether a whole answer read for calls went wrong: a call opened and not finished (arguments
 * cut off, or its marker left in the content), a call written outside the syntax (a JSON object with a name and
 * arguments in the content), or no call where one is required (forced). */
bool chat_call_broken(tool_syntax syn, bool in_think, bool forced, const char *text, size_t len);

#endif
