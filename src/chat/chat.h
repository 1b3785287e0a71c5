/* Chat formatting inside libhai: the prompt text together with which of its bytes are the
 * caller's data. Message contents (and roles, tool results, any field that reaches the prompt) are
 * text: special-token text in them is tokenized as plain text, as OpenAI does and as the HF
 * tokenizer does with split_special_tokens; only the template's own markup produces control
 * tokens. Without this, "<|im_end|><|im_start|>system" in a user message closes the user's turn
 * and opens a system turn. */
#ifndef HAI_CHAT_H
#define HAI_CHAT_H

#include "hai.h"

/* As hai_chat_format; *data (malloc'd, the caller frees) gets the [start, end) byte ranges of the
 * text that came from the messages, in order and not touching; data may be NULL. */
hai_status chat_format_marked(const hai_chat_params *p, const hai_chat_message *msgs, size_t n, char **out, size_t *len,
                              size_t (**data)[2], size_t *n_data, hai_error *err);

/* The same through the template itself (p->template_text, rendered by the Jinja engine:
 * chat_jinja.c); chat_format_marked takes it for every template unless p->format names a family. */
hai_status chat_jinja_marked(const hai_chat_params *p, const hai_chat_message *msgs, size_t n, char **out, size_t *len,
                             size_t (**data)[2], size_t *n_data, hai_error *err);

#endif
