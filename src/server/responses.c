/* The Responses API (responses.h). */
#include "responses.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the store ------------------------------------------------------------------------------- */

typedef struct entry {
    char key[64];
    char *json;
    size_t size;
} entry;

struct resp_store {
    pthread_mutex_t mu;
    entry *e; /* a ring, oldest first from `first` */
    size_t cap, n, first, bytes, max_bytes;
};

resp_store *resp_store_new(size_t max_entries, size_t max_bytes) {
    resp_store *st = calloc(1, sizeof *st);
    if (!st || !(st->e = calloc(max_entries, sizeof *st->e))) {
        free(st);
        return NULL;
    }
    pthread_mutex_init(&st->mu, NULL);
    st->cap = max_entries, st->max_bytes = max_bytes;
    return st;
}

void resp_store_free(resp_store *st) {
    if (!st) return;
    for (size_t i = 0; i < st->n; i++) free(st->e[(st->first + i) % st->cap].json);
    pthread_mutex_destroy(&st->mu);
    free(st->e);
    free(st);
}

static void store_drop_oldest(resp_store *st) {
    entry *o = &st->e[st->first];
    st->bytes -= o->size;
    free(o->json);
    o->json = NULL;
    st->first = (st->first + 1) % st->cap;
    st->n--;
}

/* Keeps a copy of json under key (a store out of memory only forgets). */
static void store_put(resp_store *st, const char *key, const char *json) {
    size_t size = strlen(json) + 1;
    char *copy = size <= st->max_bytes ? malloc(size) : NULL;
    if (!copy) return;
    memcpy(copy, json, size);
    pthread_mutex_lock(&st->mu);
    while (st->n && (st->n == st->cap || st->bytes + size > st->max_bytes)) store_drop_oldest(st);
    entry *e = &st->e[(st->first + st->n) % st->cap];
    snprintf(e->key, sizeof e->key, "%s", key);
    e->json = copy, e->size = size;
    st->bytes += size;
    st->n++;
    pthread_mutex_unlock(&st->mu);
}

/* The stored JSON under key, parsed (the newest, should a key repeat); NULL when gone. */
static cJSON *store_get(resp_store *st, const char *key) {
    cJSON *v = NULL;
    pthread_mutex_lock(&st->mu);
    for (size_t i = st->n; i-- > 0;) {
        entry *e = &st->e[(st->first + i) % st->cap];
        if (e->json && !strcmp(e->key, key)) {
            v = cJSON_Parse(e->json);
            break;
        }
    }
    pthread_mutex_unlock(&st->mu);
    return v;
}

/* Forgets every entry under key; whether there was one. */
static bool store_drop(resp_store *st, const char *key) {
    bool found = false;
    pthread_mutex_lock(&st->mu);
    for (size_t i = 0; i < st->n; i++) {
        entry *e = &st->e[(st->first + i) % st->cap];
        if (e->json && !strcmp(e->key, key)) { /* emptied in place; its slot goes with the oldest */
            st->bytes -= e->size;
            free(e->json);
            e->json = NULL, e->size = 0, e->key[0] = 0;
            found = true;
        }
    }
    pthread_mutex_unlock(&st->mu);
    return found;
}

char *resp_store_object(resp_store *st, const char *id) {
    char key[80];
    snprintf(key, sizeof key, "object:%.64s", id);
    cJSON *o = strlen(id) < 64 ? store_get(st, key) : NULL;
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return s;
}

char *resp_store_delete(resp_store *st, const char *id) {
    char key[80];
    snprintf(key, sizeof key, "object:%.64s", id);
    if (strlen(id) >= 64 || !store_drop(st, key)) return NULL;
    store_drop(st, id);
    cJSON *o = cJSON_CreateObject();
    char *s = o && cJSON_AddStringToObject(o, "id", id) && cJSON_AddStringToObject(o, "object", "response") && cJSON_AddBoolToObject(o, "deleted", true)
                  ? cJSON_PrintUnformatted(o)
                  : NULL;
    cJSON_Delete(o);
    return s;
}

/* ---- requests -------------------------------------------------------------------------------- */

static const cJSON *get(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

/* A message's content as text: a string, or parts of type input_text / output_text / text. */
static bool content_text(const cJSON *c, const char *param, char **out, api_error *e) {
    static const char *const types[] = {"input_text", "output_text", "text", NULL};
    return api_content_text(c, param, types, "input_text or output_text (images, audio and files are not supported)", out, e);
}

/* Appends an item as chat messages: messages as they are, function calls to the assistant turn
 * before them (or a new one), their outputs as tool messages; reasoning items are skipped. */
static bool item_to_chat(const cJSON *it, int i, cJSON *msgs, api_error *e) {
    char param[48];
    snprintf(param, sizeof param, "input[%d]", i);
    if (!cJSON_IsObject(it)) return api_fail(e, param, "'%s' must be an object", param);
    const cJSON *type = get(it, "type"), *role = get(it, "role");
    const char *t = cJSON_IsString(type) ? type->valuestring : role ? "message" : "";
    if (!strcmp(t, "message")) {
        if (!cJSON_IsString(role) || (strcmp(role->valuestring, "system") && strcmp(role->valuestring, "developer") &&
                                      strcmp(role->valuestring, "user") && strcmp(role->valuestring, "assistant")))
            return api_fail(e, param, "'%s.role' must be system, developer, user or assistant", param);
        char cp[64], *text = NULL;
        snprintf(cp, sizeof cp, "%s.content", param);
        if (!content_text(get(it, "content"), cp, &text, e)) return false;
        cJSON *m = cJSON_CreateObject();
        bool ok = m && cJSON_AddItemToArray(msgs, m) && cJSON_AddStringToObject(m, "role", role->valuestring) &&
                  cJSON_AddStringToObject(m, "content", text);
        free(text);
        return ok ? true : api_oom(e);
    }
    if (!strcmp(t, "function_call")) {
        const cJSON *id = get(it, "call_id"), *name = get(it, "name"), *args = get(it, "arguments");
        if (!cJSON_IsString(id) || !cJSON_IsString(name) || !cJSON_IsString(args))
            return api_fail(e, param, "'%s' (a function_call) needs string call_id, name and arguments", param);
        cJSON *last = cJSON_GetArrayItem(msgs, cJSON_GetArraySize(msgs) - 1), *calls = NULL;
        const cJSON *lr = last ? get(last, "role") : NULL;
        if (lr && !strcmp(lr->valuestring, "assistant")) calls = cJSON_GetObjectItemCaseSensitive(last, "tool_calls");
        else {
            last = cJSON_CreateObject();
            if (!last || !cJSON_AddItemToArray(msgs, last) || !cJSON_AddStringToObject(last, "role", "assistant") || !cJSON_AddNullToObject(last, "content"))
                return api_oom(e);
        }
        if (!calls && !(calls = cJSON_AddArrayToObject(last, "tool_calls"))) return api_oom(e);
        cJSON *c = cJSON_CreateObject(), *f = cJSON_AddObjectToObject(c, "function");
        bool ok = f && cJSON_AddStringToObject(c, "id", id->valuestring) && cJSON_AddStringToObject(c, "type", "function") &&
                  cJSON_AddStringToObject(f, "name", name->valuestring) && cJSON_AddStringToObject(f, "arguments", args->valuestring) &&
                  cJSON_AddItemToArray(calls, c);
        if (!ok) cJSON_Delete(c);
        return ok ? true : api_oom(e);
    }
    if (!strcmp(t, "function_call_output")) {
        const cJSON *id = get(it, "call_id");
        if (!cJSON_IsString(id)) return api_fail(e, param, "'%s' (a function_call_output) needs a string call_id", param);
        char op[64], *text = NULL;
        snprintf(op, sizeof op, "%s.output", param);
        if (!content_text(get(it, "output"), op, &text, e)) return false;
        cJSON *m = cJSON_CreateObject();
        bool ok = m && cJSON_AddItemToArray(msgs, m) && cJSON_AddStringToObject(m, "role", "tool") &&
                  cJSON_AddStringToObject(m, "tool_call_id", id->valuestring) && cJSON_AddStringToObject(m, "content", text);
        free(text);
        return ok ? true : api_oom(e);
    }
    if (!strcmp(t, "reasoning")) return true; /* the model's earlier thoughts: not fed back, as templates drop them */
    return api_fail(e, param, "'%s': input items of type '%.40s' are not supported (message, function_call, function_call_output, "
                          "item_reference and reasoning are)", param, t);
}

/* Copies a field, if given, under the same or another name. */
static bool copy(cJSON *to, const char *to_key, const cJSON *from, const char *from_key) {
    const cJSON *v = get(from, from_key);
    if (!v) return true;
    cJSON *d = cJSON_Duplicate(v, true);
    return d && cJSON_AddItemToObject(to, to_key, d);
}

bool resp_translate(resp_store *st, const char *body, size_t len, char **chat, size_t *chat_len, resp_req *rr, api_error *e) {
    memset(rr, 0, sizeof *rr);
    memset(e, 0, sizeof *e);
    *chat = NULL;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, false), *out = NULL, *items = NULL, *echo = NULL;
    bool ok = false;
    if (!cJSON_IsObject(root)) {
        api_fail(e, NULL, "the request body must be a JSON object");
        goto done;
    }
    out = cJSON_CreateObject(), items = cJSON_CreateArray(), echo = cJSON_CreateObject();
    cJSON *msgs = out ? cJSON_AddArrayToObject(out, "messages") : NULL;
    if (!msgs || !items || !echo) {
        api_oom(e);
        goto done;
    }
    const cJSON *ins = get(root, "instructions"), *prev = get(root, "previous_response_id"), *input = get(root, "input");
    if (ins && !cJSON_IsString(ins)) {
        api_fail(e, "instructions", "'instructions' must be a string");
        goto done;
    }
    if (ins) {
        cJSON *m = cJSON_CreateObject();
        if (!m || !cJSON_AddItemToArray(msgs, m) || !cJSON_AddStringToObject(m, "role", "system") || !cJSON_AddStringToObject(m, "content", ins->valuestring)) {
            api_oom(e);
            goto done;
        }
    }
    /* the conversation: the previous response's, then this input */
    if (prev) {
        cJSON *old = cJSON_IsString(prev) ? store_get(st, prev->valuestring) : NULL;
        if (!old) {
            api_fail(e, "previous_response_id", "Previous response with id '%.64s' not found.", cJSON_IsString(prev) ? prev->valuestring : "?");
            goto done;
        }
        cJSON *it;
        while ((it = cJSON_DetachItemFromArray(old, 0))) cJSON_AddItemToArray(items, it);
        cJSON_Delete(old);
    }
    if (!input) {
        api_fail(e, "input", "'input' is required");
        goto done;
    }
    if (cJSON_IsString(input)) {
        cJSON *m = cJSON_CreateObject();
        if (!m || !cJSON_AddItemToArray(items, m) || !cJSON_AddStringToObject(m, "role", "user") || !cJSON_AddStringToObject(m, "content", input->valuestring)) {
            api_oom(e);
            goto done;
        }
    } else if (cJSON_IsArray(input)) {
        const cJSON *it;
        int i = 0;
        cJSON_ArrayForEach(it, input) {
            const cJSON *type = get(it, "type");
            cJSON *copy_it;
            if (cJSON_IsString(type) && !strcmp(type->valuestring, "item_reference")) {
                const cJSON *id = get(it, "id");
                if (!cJSON_IsString(id) || !(copy_it = store_get(st, id->valuestring))) {
                    char param[32];
                    snprintf(param, sizeof param, "input[%d]", i);
                    api_fail(e, param, "Item with id '%.64s' not found.", cJSON_IsString(id) ? id->valuestring : "?");
                    goto done;
                }
            } else if (!(copy_it = cJSON_Duplicate(it, true))) {
                api_oom(e);
                goto done;
            }
            cJSON_AddItemToArray(items, copy_it);
            i++;
        }
    } else {
        api_fail(e, "input", "'input' must be a string or an array of items");
        goto done;
    }
    if (cJSON_GetArraySize(items) == 0) {
        api_fail(e, "input", "'input' must not be empty");
        goto done;
    }
    int n_items = cJSON_GetArraySize(items);
    for (int i = 0; i < n_items; i++)
        if (!item_to_chat(cJSON_GetArrayItem(items, i), i, msgs, e)) goto done;
    /* settings: the chat names of the same things */
    bool cp = copy(out, "model", root, "model") && copy(out, "max_tokens", root, "max_output_tokens") && copy(out, "temperature", root, "temperature") &&
              copy(out, "top_p", root, "top_p") && copy(out, "stream", root, "stream") && copy(out, "parallel_tool_calls", root, "parallel_tool_calls") &&
              copy(out, "seed", root, "seed") && copy(out, "top_k", root, "top_k") && copy(out, "min_p", root, "min_p") &&
              copy(out, "logit_bias", root, "logit_bias") && copy(out, "stop", root, "stop");
    if (!cp) {
        api_oom(e);
        goto done;
    }
    const cJSON *tools = get(root, "tools");
    if (tools) {
        if (!cJSON_IsArray(tools)) {
            api_fail(e, "tools", "'tools' must be an array");
            goto done;
        }
        cJSON *ct = cJSON_AddArrayToObject(out, "tools");
        const cJSON *t;
        int i = 0;
        cJSON_ArrayForEach(t, tools) {
            char param[32];
            snprintf(param, sizeof param, "tools[%d]", i++);
            const cJSON *type = get(t, "type");
            if (!cJSON_IsString(type) || strcmp(type->valuestring, "function")) {
                api_fail(e, param, "'%s' is of type '%.40s': only function tools run here (web search, file search and the like "
                               "are OpenAI's hosted tools)", param, cJSON_IsString(type) ? type->valuestring : "?");
                goto done;
            }
            cJSON *w = cJSON_CreateObject(), *f = cJSON_AddObjectToObject(w, "function");
            bool ok2 = f && cJSON_AddStringToObject(w, "type", "function") && copy(f, "name", t, "name") && copy(f, "description", t, "description") &&
                       copy(f, "parameters", t, "parameters") && copy(f, "strict", t, "strict") && cJSON_AddItemToArray(ct, w);
            if (!ok2) {
                cJSON_Delete(w);
                api_oom(e);
                goto done;
            }
        }
    }
    const cJSON *tc = get(root, "tool_choice");
    if (tc && cJSON_IsObject(tc)) { /* {"type": "function", "name"} -> chat's {"type": "function", "function": {"name"}} */
        const cJSON *type = get(tc, "type"), *name = get(tc, "name");
        if (!cJSON_IsString(type) || strcmp(type->valuestring, "function") || !cJSON_IsString(name)) {
            api_fail(e, "tool_choice", "'tool_choice' must be none, auto, required or {\"type\": \"function\", \"name\": ...}");
            goto done;
        }
        cJSON *w = cJSON_AddObjectToObject(out, "tool_choice");
        if (!w || !cJSON_AddStringToObject(w, "type", "function") || !cJSON_AddStringToObject(cJSON_AddObjectToObject(w, "function"), "name", name->valuestring)) {
            api_oom(e);
            goto done;
        }
    } else if (tc && !copy(out, "tool_choice", root, "tool_choice")) {
        api_oom(e);
        goto done;
    }
    const cJSON *text = get(root, "text"), *fmt = text ? get(text, "format") : NULL;
    if (text && !cJSON_IsObject(text)) {
        api_fail(e, "text", "'text' must be an object");
        goto done;
    }
    if (fmt) { /* {"type": "json_schema", "name", "schema", "strict"} -> response_format */
        const cJSON *type = get(fmt, "type");
        if (!cJSON_IsString(type)) {
            api_fail(e, "text.format", "'text.format' needs a 'type'");
            goto done;
        }
        cJSON *rf = cJSON_AddObjectToObject(out, "response_format");
        bool ok2 = rf && cJSON_AddStringToObject(rf, "type", type->valuestring);
        if (ok2 && !strcmp(type->valuestring, "json_schema")) {
            cJSON *js = cJSON_AddObjectToObject(rf, "json_schema");
            ok2 = js && copy(js, "name", fmt, "name") && copy(js, "schema", fmt, "schema") && copy(js, "strict", fmt, "strict");
        }
        if (!ok2) {
            api_oom(e);
            goto done;
        }
    }
    if (get(root, "background") && cJSON_IsTrue(get(root, "background"))) {
        api_fail(e, "background", "'background' responses are not supported: ask with stream instead");
        goto done;
    }
    const cJSON *store = get(root, "store");
    rr->store = !store || cJSON_IsTrue(store); /* OpenAI's default: stored */
    rr->stream = cJSON_IsTrue(get(root, "stream"));
    /* what the response object repeats */
    cp = cJSON_AddItemToObject(echo, "instructions", ins ? cJSON_Duplicate(ins, false) : cJSON_CreateNull()) &&
         cJSON_AddItemToObject(echo, "max_output_tokens", get(root, "max_output_tokens") ? cJSON_Duplicate(get(root, "max_output_tokens"), false) : cJSON_CreateNull()) &&
         cJSON_AddBoolToObject(echo, "parallel_tool_calls", !get(root, "parallel_tool_calls") || cJSON_IsTrue(get(root, "parallel_tool_calls"))) &&
         cJSON_AddItemToObject(echo, "previous_response_id", prev ? cJSON_Duplicate(prev, false) : cJSON_CreateNull()) &&
         cJSON_AddBoolToObject(echo, "store", rr->store) &&
         cJSON_AddNumberToObject(echo, "temperature", cJSON_IsNumber(get(root, "temperature")) ? get(root, "temperature")->valuedouble : 1.0) &&
         cJSON_AddNumberToObject(echo, "top_p", cJSON_IsNumber(get(root, "top_p")) ? get(root, "top_p")->valuedouble : 1.0) &&
         cJSON_AddItemToObject(echo, "tool_choice", tc ? cJSON_Duplicate(tc, true) : cJSON_CreateString("auto")) &&
         cJSON_AddItemToObject(echo, "tools", tools ? cJSON_Duplicate(tools, true) : cJSON_CreateArray()) &&
         cJSON_AddStringToObject(echo, "truncation", "disabled") &&
         cJSON_AddItemToObject(echo, "metadata", get(root, "metadata") ? cJSON_Duplicate(get(root, "metadata"), true) : cJSON_CreateObject());
    cJSON *te = cp ? cJSON_AddObjectToObject(echo, "text") : NULL;
    cp = te && cJSON_AddItemToObject(te, "format", fmt ? cJSON_Duplicate(fmt, true) : cJSON_CreateObject());
    if (cp && !fmt) cp = cJSON_AddStringToObject(cJSON_GetObjectItemCaseSensitive(te, "format"), "type", "text") != NULL;
    if (!cp || !(rr->items = cJSON_PrintUnformatted(items)) || !(rr->echo = cJSON_PrintUnformatted(echo)) || !(*chat = cJSON_PrintUnformatted(out))) {
        api_oom(e);
        goto done;
    }
    *chat_len = strlen(*chat);
    ok = true;
done:
    cJSON_Delete(root);
    cJSON_Delete(out);
    cJSON_Delete(items);
    cJSON_Delete(echo);
    if (!ok) {
        free(*chat);
        *chat = NULL;
        resp_req_free(rr);
    }
    return ok;
}

void resp_req_free(resp_req *rr) {
    free(rr->items);
    free(rr->echo);
    memset(rr, 0, sizeof *rr);
}

/* ---- answers --------------------------------------------------------------------------------- */

static void new_id(char out[40], const char *prefix) {
    char raw[40];
    api_call_id(TOOLS_HERMES, raw); /* call_ + 24 letters and digits */
    snprintf(out, 40, "%s_%s", prefix, raw + 5);
}

static cJSON *text_value(const char *s, size_t n) {
    char *t = malloc(n + 1);
    if (!t) return NULL;
    memcpy(t, s, n);
    t[n] = 0;
    cJSON *v = cJSON_CreateString(t);
    free(t);
    return v;
}

/* An item as the response lists it (done: its final state). */
static cJSON *item_json(const resp_item *it, const chat_out *o, char (*call_ids)[40], bool done) {
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    bool ok = cJSON_AddStringToObject(j, "id", it->id) != NULL;
    if (it->kind == 'r') {
        cJSON *sum = cJSON_AddArrayToObject(j, "summary"), *p = cJSON_CreateObject();
        ok = ok && cJSON_AddStringToObject(j, "type", "reasoning") && sum;
        if (done && ok) ok = p && cJSON_AddItemToArray(sum, p) && cJSON_AddStringToObject(p, "type", "summary_text") &&
                             cJSON_AddItemToObject(p, "text", text_value(o->reasoning + it->a, it->b - it->a));
        else cJSON_Delete(p);
    } else if (it->kind == 'm') {
        cJSON *content = NULL, *p = NULL;
        ok = ok && cJSON_AddStringToObject(j, "type", "message") && cJSON_AddStringToObject(j, "status", done ? "completed" : "in_progress") &&
             cJSON_AddStringToObject(j, "role", "assistant") && (content = cJSON_AddArrayToObject(j, "content"));
        if (done && ok) ok = (p = cJSON_CreateObject()) && cJSON_AddItemToArray(content, p) && cJSON_AddStringToObject(p, "type", "output_text") &&
                             cJSON_AddItemToObject(p, "text", text_value(o->content + it->a, it->b - it->a)) && cJSON_AddArrayToObject(p, "annotations");
    } else {
        const chat_call *c = &o->calls[it->call];
        ok = ok && cJSON_AddStringToObject(j, "type", "function_call") && cJSON_AddStringToObject(j, "status", done ? "completed" : "in_progress") &&
             cJSON_AddStringToObject(j, "call_id", call_ids[it->call]) && cJSON_AddItemToObject(j, "name", text_value(c->name, strlen(c->name))) &&
             cJSON_AddItemToObject(j, "arguments", done ? text_value(c->args, c->args_len) : cJSON_CreateString(""));
    }
    if (!ok) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

/* The response object; output items only when o is given (in_progress otherwise). */
static cJSON *object(const resp_req *rr, const char *id, const char *model, long created, const char *status, const chat_out *o,
                     char (*call_ids)[40], const resp_item *items, size_t n, const resp_end *end) {
    cJSON *r = cJSON_Parse(rr->echo);
    if (!r) return NULL;
    cJSON *output = cJSON_CreateArray();
    bool ok = output && cJSON_AddStringToObject(r, "id", id) && cJSON_AddStringToObject(r, "object", "response") &&
              cJSON_AddNumberToObject(r, "created_at", (double)created) && cJSON_AddStringToObject(r, "status", status) &&
              cJSON_AddNullToObject(r, "error") && cJSON_AddStringToObject(r, "model", model);
    if (ok && end && end->incomplete) {
        cJSON *inc = cJSON_AddObjectToObject(r, "incomplete_details");
        ok = inc && cJSON_AddStringToObject(inc, "reason", "max_output_tokens");
    } else if (ok) {
        ok = cJSON_AddNullToObject(r, "incomplete_details") != NULL;
    }
    for (size_t i = 0; ok && o && i < n; i++) {
        cJSON *it = item_json(&items[i], o, call_ids, true);
        ok = it && cJSON_AddItemToArray(output, it);
        if (!ok) cJSON_Delete(it);
    }
    ok = ok && cJSON_AddItemToObject(r, "output", output);
    if (!ok) cJSON_Delete(output);
    if (ok && end) {
        cJSON *u = cJSON_AddObjectToObject(r, "usage");
        ok = u && cJSON_AddNumberToObject(u, "input_tokens", end->input_tokens) &&
             cJSON_AddNumberToObject(cJSON_AddObjectToObject(u, "input_tokens_details"), "cached_tokens", end->cached_tokens) &&
             cJSON_AddNumberToObject(u, "output_tokens", end->output_tokens) &&
             cJSON_AddNumberToObject(cJSON_AddObjectToObject(u, "output_tokens_details"), "reasoning_tokens", 0) &&
             cJSON_AddNumberToObject(u, "total_tokens", end->input_tokens + end->output_tokens);
    } else if (ok) {
        ok = cJSON_AddNullToObject(r, "usage") != NULL;
    }
    if (!ok) {
        cJSON_Delete(r);
        return NULL;
    }
    return r;
}

/* The items of a whole answer: reasoning, the message (also when there is nothing else), calls. */
static resp_item *whole_items(const chat_out *o, size_t *n) {
    resp_item *it = calloc(o->n_calls + 2, sizeof *it);
    *n = 0;
    if (!it) return NULL;
    if (o->reasoning_len) it[*n] = (resp_item){.kind = 'r', .a = 0, .b = o->reasoning_len}, new_id(it[(*n)++].id, "rs");
    if (o->content_len || !o->n_calls) it[*n] = (resp_item){.kind = 'm', .a = 0, .b = o->content_len}, new_id(it[(*n)++].id, "msg");
    for (size_t i = 0; i < o->n_calls; i++) it[*n] = (resp_item){.kind = 'f', .call = (int)i}, new_id(it[(*n)++].id, "fc");
    return it;
}

/* Stores the response: its conversation (for previous_response_id) and each output item. */
static void store_response(resp_store *st, const char *id, const char *items_json, const cJSON *output, const char *object_json) {
    char key[80];
    snprintf(key, sizeof key, "object:%.64s", id);
    if (object_json) store_put(st, key, object_json);
    cJSON *conv = cJSON_Parse(items_json);
    const cJSON *it;
    cJSON_ArrayForEach(it, output) {
        cJSON *d = cJSON_Duplicate(it, true);
        if (d) cJSON_AddItemToArray(conv, d);
        const cJSON *iid = get(it, "id");
        char *one = cJSON_PrintUnformatted(it);
        if (one && cJSON_IsString(iid)) store_put(st, iid->valuestring, one);
        free(one);
    }
    char *txt = conv ? cJSON_PrintUnformatted(conv) : NULL;
    if (txt) store_put(st, id, txt);
    free(txt);
    cJSON_Delete(conv);
}

char *resp_object(resp_store *st, const resp_req *rr, const char *id, const char *model, long created, const chat_out *o,
                  char (*call_ids)[40], const resp_item *items, size_t n_items, const resp_end *end) {
    resp_item *own = NULL;
    if (!items && !(items = own = whole_items(o, &n_items))) return NULL;
    cJSON *r = object(rr, id, model, created, end->incomplete ? "incomplete" : "completed", o, call_ids, items, n_items, end);
    free(own);
    if (!r) return NULL;
    char *s = cJSON_PrintUnformatted(r);
    if (rr->store) store_response(st, id, rr->items, cJSON_GetObjectItemCaseSensitive(r, "output"), s);
    cJSON_Delete(r);
    return s;
}

/* ---- the stream ------------------------------------------------------------------------------ */

/* Appends "event: TYPE\ndata: {...}\n\n" with type and sequence_number set on o (consumed). */
static bool emit(resp_stream *rs, char **buf, const char *type, cJSON *o) {
    bool ok = o && cJSON_AddStringToObject(o, "type", type) && cJSON_AddNumberToObject(o, "sequence_number", rs->seq++);
    char *j = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!j) return false;
    size_t have = *buf ? strlen(*buf) : 0, add = strlen(type) + strlen(j) + 20;
    char *b = realloc(*buf, have + add);
    if (!b) {
        free(j);
        return false;
    }
    snprintf(b + have, add, "event: %s\ndata: %s\n\n", type, j);
    *buf = b;
    free(j);
    return true;
}

static cJSON *with_item(const resp_stream *rs, const resp_item *it) {
    cJSON *o = cJSON_CreateObject();
    if (o && (!cJSON_AddStringToObject(o, "item_id", it->id) || !cJSON_AddNumberToObject(o, "output_index", (double)(it - rs->items)))) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

bool resp_stream_begin(resp_stream *rs, const resp_req *rr, const char *id, const char *model, long created, char **buf) {
    memset(rs, 0, sizeof *rs);
    rs->open = -1, rs->id = id, rs->model = model, rs->created = created;
    for (int k = 0; k < 2; k++) {
        cJSON *r = object(rr, id, model, created, "in_progress", NULL, NULL, NULL, 0, NULL), *o = cJSON_CreateObject();
        if (!r || !o || !cJSON_AddItemToObject(o, "response", r)) {
            cJSON_Delete(r), cJSON_Delete(o);
            return false;
        }
        if (!emit(rs, buf, k ? "response.in_progress" : "response.created", o)) return false;
    }
    return true;
}

/* A reasoning summary part or a message's text part. */
static cJSON *part_json(int kind, const char *s, size_t n) {
    cJSON *p = cJSON_CreateObject();
    bool ok = p && cJSON_AddStringToObject(p, "type", kind == 'r' ? "summary_text" : "output_text") && cJSON_AddItemToObject(p, "text", text_value(s, n)) &&
              (kind == 'r' || cJSON_AddArrayToObject(p, "annotations"));
    if (!ok) cJSON_Delete(p);
    return ok ? p : NULL;
}

/* An event about the open item's part: its index, and a field (consumed) under key. */
static bool part_event(resp_stream *rs, const resp_item *it, const char *type, const char *key, cJSON *v, char **buf) {
    cJSON *e = with_item(rs, it);
    if (!e || !v || !cJSON_AddItemToObject(e, key, v)) {
        cJSON_Delete(v);
        cJSON_Delete(e);
        return false;
    }
    bool ok = cJSON_AddNumberToObject(e, it->kind == 'r' ? "summary_index" : "content_index", 0) &&
              (it->kind != 'm' || strcmp(key, "text") || cJSON_AddArrayToObject(e, "logprobs"));
    if (!ok) {
        cJSON_Delete(e);
        return false;
    }
    return emit(rs, buf, type, e);
}

/* Closes the open item with its done events (its text from o as far as it goes). */
static bool close_open(resp_stream *rs, const chat_out *o, char (*call_ids)[40], char **buf) {
    if (rs->open < 0) return true;
    resp_item *it = &rs->items[rs->open];
    rs->open = -1;
    if (it->kind == 'r' || it->kind == 'm') {
        const char *txt = (it->kind == 'r' ? o->reasoning : o->content) + it->a;
        bool r = it->kind == 'r';
        if (!part_event(rs, it, r ? "response.reasoning_summary_text.done" : "response.output_text.done", "text", text_value(txt, it->b - it->a), buf) ||
            !part_event(rs, it, r ? "response.reasoning_summary_part.done" : "response.content_part.done", "part", part_json(it->kind, txt, it->b - it->a), buf))
            return false;
    } else {
        const chat_call *c = &o->calls[it->call];
        cJSON *e = with_item(rs, it);
        if (!e || !cJSON_AddItemToObject(e, "arguments", text_value(c->args, c->args_len))) {
            cJSON_Delete(e);
            return false;
        }
        if (!emit(rs, buf, "response.function_call_arguments.done", e)) return false;
    }
    cJSON *d = cJSON_CreateObject(), *ij = item_json(it, o, call_ids, true);
    if (!d || !ij || !cJSON_AddNumberToObject(d, "output_index", (double)(it - rs->items)) || !cJSON_AddItemToObject(d, "item", ij)) {
        if (!d || !cJSON_GetObjectItemCaseSensitive(d, "item")) cJSON_Delete(ij);
        cJSON_Delete(d);
        return false;
    }
    return emit(rs, buf, "response.output_item.done", d);
}

/* Opens an item of kind (closing the one open): output_item.added and its part's added event. */
static bool open_item(resp_stream *rs, int kind, size_t a, int call, const chat_out *o, char (*call_ids)[40], char **buf) {
    if (!close_open(rs, o, call_ids, buf)) return false;
    if (rs->n == rs->cap) {
        size_t cap = rs->cap ? rs->cap * 2 : 4;
        resp_item *p = realloc(rs->items, cap * sizeof *p);
        if (!p) return false;
        rs->items = p, rs->cap = cap;
    }
    resp_item *it = &rs->items[rs->n];
    *it = (resp_item){.kind = kind, .a = a, .b = a, .call = call};
    new_id(it->id, kind == 'r' ? "rs" : kind == 'm' ? "msg" : "fc");
    rs->open = (int)rs->n++;
    cJSON *e = cJSON_CreateObject(), *ij = item_json(it, o, call_ids, false);
    if (!e || !ij || !cJSON_AddNumberToObject(e, "output_index", (double)rs->open) || !cJSON_AddItemToObject(e, "item", ij)) {
        if (!e || !cJSON_GetObjectItemCaseSensitive(e, "item")) cJSON_Delete(ij);
        cJSON_Delete(e);
        return false;
    }
    if (!emit(rs, buf, "response.output_item.added", e)) return false;
    if (kind == 'f') return true;
    return part_event(rs, it, kind == 'r' ? "response.reasoning_summary_part.added" : "response.content_part.added", "part", part_json(kind, "", 0), buf);
}

static bool text_delta(resp_stream *rs, const char *type, const char *s, size_t n, char **buf) {
    resp_item *it = &rs->items[rs->open];
    it->b += n;
    if (it->kind == 'm') { /* output_text.delta carries logprobs (none here) */
        cJSON *e = with_item(rs, it);
        if (!e || !cJSON_AddNumberToObject(e, "content_index", 0) || !cJSON_AddItemToObject(e, "delta", text_value(s, n)) || !cJSON_AddArrayToObject(e, "logprobs")) {
            cJSON_Delete(e);
            return false;
        }
        return emit(rs, buf, type, e);
    }
    return part_event(rs, it, type, "delta", text_value(s, n), buf);
}

bool resp_stream_step(resp_stream *rs, const out_step *d, char (*call_ids)[40], char **buf) {
    const chat_out *o = &d->parsed;
    if (d->reasoning_len) {
        if ((rs->open < 0 || rs->items[rs->open].kind != 'r') && !open_item(rs, 'r', (size_t)(d->reasoning - o->reasoning), 0, o, call_ids, buf))
            return false;
        if (!text_delta(rs, "response.reasoning_summary_text.delta", d->reasoning, d->reasoning_len, buf)) return false;
    }
    if (d->content_len) {
        if ((rs->open < 0 || rs->items[rs->open].kind != 'm') && !open_item(rs, 'm', (size_t)(d->content - o->content), 0, o, call_ids, buf))
            return false;
        if (!text_delta(rs, "response.output_text.delta", d->content, d->content_len, buf)) return false;
    }
    for (size_t i = 0; i < d->n_calls; i++) {
        const api_call_delta *c = &d->calls[i];
        if (c->id && !open_item(rs, 'f', 0, c->index, o, call_ids, buf)) return false; /* a new call: its item */
        if (c->args_len) {
            cJSON *e = with_item(rs, &rs->items[rs->open]);
            if (!e || !cJSON_AddItemToObject(e, "delta", text_value(c->args, c->args_len)) || !emit(rs, buf, "response.function_call_arguments.delta", e))
                return false;
        }
    }
    return true;
}

bool resp_stream_end(resp_stream *rs, resp_store *st, const resp_req *rr, const chat_out *o, char (*call_ids)[40], const resp_end *end,
                     char **buf) {
    if (!close_open(rs, o, call_ids, buf)) return false;
    cJSON *r = object(rr, rs->id, rs->model, rs->created, end->incomplete ? "incomplete" : "completed", o, call_ids, rs->items, rs->n, end);
    cJSON *e = cJSON_CreateObject();
    if (!r || !e || !cJSON_AddItemToObject(e, "response", r)) {
        cJSON_Delete(r), cJSON_Delete(e);
        return false;
    }
    if (rr->store) {
        char *whole = cJSON_PrintUnformatted(r);
        store_response(st, rs->id, rr->items, cJSON_GetObjectItemCaseSensitive(r, "output"), whole);
        free(whole);
    }
    return emit(rs, buf, end->incomplete ? "response.incomplete" : "response.completed", e);
}

bool resp_stream_error(resp_stream *rs, const char *code, const char *message, char **buf) {
    cJSON *e = cJSON_CreateObject();
    if (!e || !cJSON_AddStringToObject(e, "code", code) || !cJSON_AddStringToObject(e, "message", message) || !cJSON_AddNullToObject(e, "param")) {
        cJSON_Delete(e);
        return false;
    }
    return emit(rs, buf, "error", e);
}

void resp_stream_free(resp_stream *rs) {
    free(rs->items);
    memset(rs, 0, sizeof *rs);
}
