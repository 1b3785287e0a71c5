/* Chat formatting with the model's own template, rendered by hai's Jinja engine (src/chat/template):
 * what every model with a chat template gets, unless a family is forced by name. The messages'
 * bytes come out marked as data, as the family formats mark them (chat.h). A template the engine
 * cannot render is an error naming the construct and its line, never a guess at its family.
 * Where a template refuses a system message (raise_exception: Gemma, Mistral v1), the system
 * text leads the first user message instead, as the family formats do. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "base/error.h"
#include "chat/template/template.h"

/* OpenAI's tool_calls as templates expect them: arguments a JSON object (OpenAI sends it as text
 * holding one; text that is not an object stays text). NULL: not a JSON array. */
static cJSON *template_calls(const char *json, bool string_args) {
    cJSON *calls = cJSON_Parse(json);
    if (!cJSON_IsArray(calls)) {
        cJSON_Delete(calls);
        return NULL;
    }
    cJSON *c;
    if (string_args) return calls;
    cJSON_ArrayForEach(c, calls) {
        cJSON *f = cJSON_GetObjectItemCaseSensitive(c, "function"), *a = f ? cJSON_GetObjectItemCaseSensitive(f, "arguments") : NULL;
        if (!cJSON_IsString(a)) continue;
        cJSON *obj = cJSON_Parse(a->valuestring);
        if (cJSON_IsObject(obj)) cJSON_ReplaceItemInObjectCaseSensitive(f, "arguments", obj);
        else cJSON_Delete(obj);
    }
    return calls;
}

static cJSON *make_vars(const hai_chat_params *p, const hai_chat_message *msgs, size_t n, bool null_content, bool string_args) {
    cJSON *v = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(v, "messages");
    bool ok = v && arr;
    for (size_t i = 0; ok && i < n; i++) {
        cJSON *m = cJSON_CreateObject();
        ok = m && cJSON_AddItemToArray(arr, m) && cJSON_AddStringToObject(m, "role", msgs[i].role);
        /* a turn that only calls tools has no content: null, as OpenAI sends it (or "" for templates
         * that cannot take null, see render) */
        if (ok) ok = null_content && msgs[i].tool_calls && !*msgs[i].content ? cJSON_AddNullToObject(m, "content") != NULL
                                                              : cJSON_AddStringToObject(m, "content", msgs[i].content) != NULL;
        if (ok && msgs[i].tool_calls) {
            cJSON *calls = template_calls(msgs[i].tool_calls, string_args);
            ok = calls && cJSON_AddItemToObject(m, "tool_calls", calls);
        }
        if (ok && msgs[i].tool_call_id) ok = cJSON_AddStringToObject(m, "tool_call_id", msgs[i].tool_call_id) != NULL;
    }
    ok = ok && cJSON_AddBoolToObject(v, "add_generation_prompt", p->add_generation_prompt) &&
         cJSON_AddStringToObject(v, "bos_token", p->bos_token ? p->bos_token : "") &&
         cJSON_AddStringToObject(v, "eos_token", p->eos_token ? p->eos_token : "");
    if (ok && p->date_string) ok = cJSON_AddStringToObject(v, "date_string", p->date_string) != NULL;
    if (ok && p->tools) {
        cJSON *tools = cJSON_Parse(p->tools);
        ok = cJSON_IsArray(tools) && cJSON_AddItemToObject(v, "tools", tools);
        if (!ok) cJSON_Delete(tools);
    }
    if (ok && p->disable_thinking) ok = cJSON_AddBoolToObject(v, "enable_thinking", false) != NULL;
    if (!ok) {
        cJSON_Delete(v);
        return NULL;
    }
    return v;
}

/* Renders the messages; a tool-calling turn's content is null, as in OpenAI's and Hugging Face's
 * conversations, unless the template fails on that (Qwen3's looks for '</think>' in it): then it
 * is rendered again with "" there, as other servers do. Arguments go as objects (what most
 * templates write with tojson); a template that joins them to text instead (DeepSeek R1's) would
 * write a map's name for them, so it gets them as OpenAI's text. */
static hai_status render(const hai_tpl *t, const hai_chat_params *p, const hai_chat_message *msgs, size_t n, char **out, size_t *len,
                         size_t (**data)[2], size_t *n_data, hai_error *err) {
    static const char *const trusted[] = {"bos_token", "eos_token", NULL}; /* markup hai supplies */
    size_t (*d)[2] = NULL, nd = 0;
    bool empty_calls = false, calls = false;
    for (size_t i = 0; i < n; i++) empty_calls |= msgs[i].tool_calls && !*msgs[i].content, calls |= msgs[i].tool_calls != NULL;
    hai_status st = HAI_OK;
    for (int as_text = 0; as_text < (calls ? 2 : 1); as_text++) {
        for (int pass = 0; pass < (empty_calls ? 2 : 1); pass++) {
            cJSON *vars = make_vars(p, msgs, n, pass == 0, as_text);
            if (!vars) return hai_fail(err, HAI_ERR_NOMEM, "chat: out of memory");
            free(d), d = NULL;
            st = hai_tpl_render_marked(t, vars, trusted, out, len, &d, &nd, err);
            cJSON_Delete(vars);
            if (st != HAI_ERR_INVALID) break; /* rendered, or a limit / out of memory (not the null) */
        }
        if (st || as_text || !calls || !memmem(*out, *len, "[object Map]", 12)) break;
        free(*out), *out = NULL; /* arguments joined as text: again, with them as text */
    }
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

hai_status hai_template_render(const char *tmpl, size_t tmpl_len, const char *vars_json, size_t vars_len, char **out, size_t *len,
                               hai_error *err) {
    if (!out || !len || !tmpl || !vars_json) return hai_fail(err, HAI_ERR_INVALID, "hai_template_render: NULL argument");
    *out = NULL;
    *len = 0;
    cJSON *vars = cJSON_ParseWithLength(vars_json, vars_len);
    if (!cJSON_IsObject(vars)) {
        cJSON_Delete(vars);
        return hai_fail(err, HAI_ERR_FORMAT, "template variables: not a JSON object");
    }
    hai_tpl *t = NULL;
    hai_status st = hai_tpl_parse(tmpl, tmpl_len, &t, err);
    if (!st) st = hai_tpl_render(t, vars, out, len, err);
    hai_tpl_free(t);
    cJSON_Delete(vars);
    return st;
}
