/* Chat formatting with the model's own template, rendered by hai's Jinja engine (src/template):
 * what every model with a chat template gets, unless a family is forced by name. The messages'
 * bytes come out marked as data, as the family formats mark them (chat.h). A template the engine
 * cannot render is an error naming the construct and its line, never a guess at its family.
 * Where a template refuses a system message (raise_exception: Gemma, Mistral v1), the system
 * text leads the first user message instead, as the family formats do. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "error.h"
#include "template/template.h"

static cJSON *make_vars(const hai_chat_params *p, const hai_chat_message *msgs, size_t n) {
    cJSON *v = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(v, "messages");
    bool ok = v && arr;
    for (size_t i = 0; ok && i < n; i++) {
        cJSON *m = cJSON_CreateObject();
        ok = m && cJSON_AddItemToArray(arr, m) && cJSON_AddStringToObject(m, "role", msgs[i].role) &&
             cJSON_AddStringToObject(m, "content", msgs[i].content);
    }
    ok = ok && cJSON_AddBoolToObject(v, "add_generation_prompt", p->add_generation_prompt) &&
         cJSON_AddStringToObject(v, "bos_token", p->bos_token ? p->bos_token : "") &&
         cJSON_AddStringToObject(v, "eos_token", p->eos_token ? p->eos_token : "");
    if (ok && p->date_string) ok = cJSON_AddStringToObject(v, "date_string", p->date_string) != NULL;
    if (ok && p->disable_thinking) ok = cJSON_AddBoolToObject(v, "enable_thinking", false) != NULL;
    if (!ok) {
        cJSON_Delete(v);
        return NULL;
    }
    return v;
}

static hai_status render(const hai_tpl *t, const hai_chat_params *p, const hai_chat_message *msgs, size_t n, char **out, size_t *len,
                         size_t (**data)[2], size_t *n_data, hai_error *err) {
    cJSON *vars = make_vars(p, msgs, n);
    if (!vars) return hai_fail(err, HAI_ERR_NOMEM, "chat: out of memory");
    static const char *const trusted[] = {"bos_token", "eos_token", NULL}; /* markup hai supplies */
    size_t (*d)[2] = NULL, nd = 0;
    hai_status st = hai_tpl_render_marked(t, vars, trusted, out, len, &d, &nd, err);
    cJSON_Delete(vars);
    if (data) *data = d, *n_data = nd;
    else free(d);
    return st;
}

hai_status chat_jinja_marked(const hai_chat_params *p, const hai_chat_message *msgs, size_t n, char **out, size_t *len,
                             size_t (**data)[2], size_t *n_data, hai_error *err) {
    hai_tpl *t = NULL;
    hai_error e = {0};
    hai_status st = hai_tpl_parse(p->template_text, strlen(p->template_text), &t, &e);
    if (st) return hai_fail(err, st, "chat template: %s", e.msg);
    st = render(t, p, msgs, n, out, len, data, n_data, &e);
    size_t first_user = 1;
    while (first_user < n && strcmp(msgs[first_user].role, "user")) first_user++;
    if (st == HAI_ERR_INVALID && strstr(e.msg, "the template refused") && n > 1 && !strcmp(msgs[0].role, "system") && first_user < n) {
        /* the system text leads the first user message */
        hai_chat_message *m = malloc((n - 1) * sizeof *m);
        size_t ls = strlen(msgs[0].content), lu = strlen(msgs[first_user].content);
        char *merged = malloc(ls + lu + 3);
        if (!m || !merged) {
            free(m), free(merged);
            hai_tpl_free(t);
            return hai_fail(err, HAI_ERR_NOMEM, "chat: out of memory");
        }
        memcpy(merged, msgs[0].content, ls);
        memcpy(merged + ls, "\n\n", 2);
        memcpy(merged + ls + 2, msgs[first_user].content, lu + 1);
        for (size_t i = 1; i < n; i++) m[i - 1] = msgs[i];
        m[first_user - 1].content = merged;
        hai_error e2 = {0};
        hai_status st2 = render(t, p, m, n - 1, out, len, data, n_data, &e2);
        if (st2 == HAI_OK) st = HAI_OK;
        free(m), free(merged);
    }
    hai_tpl_free(t);
    return st ? hai_fail(err, st, "chat template: %s", e.msg) : HAI_OK;
}
