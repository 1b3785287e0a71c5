/* Chat templates as the models ship them: a Jinja engine of hai's own, rendering what
 * @huggingface/jinja (the renderer of transformers.js) renders, byte for byte.
 *
 * A template is parsed once (hai_tpl_parse) and rendered with variables given as a JSON object
 * (messages, tools, add_generation_prompt, bos_token, ... : hai_tpl_render). Templates are outside
 * input (a GGUF file carries one): every error is a message naming the line and the construct,
 * and rendering is bounded (output size, work, nesting), never a crash or a hang. */
#ifndef HAI_TEMPLATE_H
#define HAI_TEMPLATE_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "hai.h"

typedef struct hai_tpl hai_tpl;

/* Parses src (len bytes). HAI_ERR_FORMAT with "line N: ..." for a template that is not valid
 * Jinja, HAI_ERR_UNSUPPORTED for a construct the engine does not have (named). */
hai_status hai_tpl_parse(const char *src, size_t len, hai_tpl **out, hai_error *err);

/* Renders t with the members of vars (a JSON object) as its variables; *out (malloc'ed, NUL
 * terminated) and *out_len. raise_exception() in the template is HAI_ERR_INVALID with its
 * message; limits (HAI_TPL_MAX_OUTPUT bytes, HAI_TPL_MAX_STEPS steps) are HAI_ERR_LIMIT. */
hai_status hai_tpl_render(const hai_tpl *t, const cJSON *vars, char **out, size_t *out_len, hai_error *err);

/* As hai_tpl_render, and which bytes of the output came from the variables: the [start, end)
 * ranges (in order, not touching; *data malloc'ed) of text printed from the variables' strings,
 * object keys and what filters made of them. The variables named in trusted (a NULL-terminated
 * list, e.g. bos_token: markup hai itself supplies) are not data. The prompt's tokenizer makes
 * no control token of data (chat.h). */
hai_status hai_tpl_render_marked(const hai_tpl *t, const cJSON *vars, const char *const *trusted, char **out, size_t *out_len,
                                 size_t (**data)[2], size_t *n_data, hai_error *err);

void hai_tpl_free(hai_tpl *t);

#define HAI_TPL_MAX_OUTPUT (16u << 20)
#define HAI_TPL_MAX_STEPS 20000000u

#endif
