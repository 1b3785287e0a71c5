/* Request validation and response JSON of the OpenAI-compatible endpoints. */
#include "api.h"

#include <cjson/cJSON.h>
#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "base/unicode.h"

bool api_valid_utf8(const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        int l = hai_utf8_valid_len((const unsigned char *)s + i, n - i, NULL);
        if (!l) return false;
        i += (size_t)l;
    }
    return true;
}

bool api_fail(api_error *e, const char *param, const char *fmt, ...) {
    e->status = 400;
    e->type = "invalid_request_error";
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return false;
}

bool api_oom(api_error *e) {
    e->status = 500;
    e->type = "server_error";
    e->param[0] = '\0';
    snprintf(e->message, sizeof e->message, "out of memory");
    return false;
}

static const cJSON *field(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return v && !cJSON_IsNull(v) ? v : NULL; /* null means "not given", as the API treats it */
}

static bool get_number(const cJSON *o, const char *k, double lo, double hi, double *out, bool *given, api_error *e) {
    const cJSON *v = field(o, k);
    if (given) *given = v != NULL;
    if (!v) return true;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < lo || v->valuedouble > hi)
        return api_fail(e, k, "'%s' must be a number from %g to %g", k, lo, hi);
    *out = v->valuedouble;
    return true;
}

static bool get_int(const cJSON *o, const char *k, double lo, double hi, double *out, bool *given, api_error *e) {
    const cJSON *v = field(o, k);
    if (given) *given = v != NULL;
    if (!v) return true;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < lo || v->valuedouble > hi)
        return api_fail(e, k, "'%s' must be an integer from %.0f to %.0f", k, lo, hi);
    *out = v->valuedouble;
    return true;
}

static bool get_bool(const cJSON *o, const char *k, bool *out, api_error *e) {
    const cJSON *v = field(o, k);
    if (!v) return true;
    if (!cJSON_IsBool(v)) return api_fail(e, k, "'%s' must be a boolean", k);
    *out = cJSON_IsTrue(v);
    return true;
}

/* A text string: valid UTF-8, owned copy. */
static bool dup_text(const cJSON *v, const char *param, char **out, api_error *e) {
    size_t n = strlen(v->valuestring);
    if (!api_valid_utf8(v->valuestring, n)) return api_fail(e, param, "'%s' is not valid UTF-8", param);
    *out = strdup(v->valuestring);
    return *out ? true : api_oom(e);
}

bool api_content_text(const cJSON *c, const char *param, const char *const *types, const char *refused, char **out, api_error *e) {
    if (!c) {
        *out = strdup("");
        return *out ? true : api_oom(e);
    }
    if (cJSON_IsString(c)) return dup_text(c, param, out, e);
    if (!cJSON_IsArray(c)) return api_fail(e, param, "'%s' must be a string or an array of text parts", param);
    size_t total = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, c) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(p, "type"), *x = cJSON_GetObjectItemCaseSensitive(p, "text");
        bool known = false;
        for (const char *const *k = types; cJSON_IsString(t) && *k && !known; k++) known = !strcmp(t->valuestring, *k);
        if (!known) return api_fail(e, param, "'%s' parts must be %s", param, refused);
        if (!cJSON_IsString(x)) return api_fail(e, param, "'%s' text parts need a string \"text\"", param);
        total += strlen(x->valuestring);
    }
    char *buf = malloc(total + 1), *w = buf;
    if (!buf) return api_oom(e);
    cJSON_ArrayForEach(p, c) {
        const char *x = cJSON_GetObjectItemCaseSensitive(p, "text")->valuestring;
        size_t l = strlen(x);
        memcpy(w, x, l);
        w += l;
    }
    *w = '\0';
    if (!api_valid_utf8(buf, total)) {
        free(buf);
        return api_fail(e, param, "'%s' is not valid UTF-8", param);
    }
    *out = buf;
    return true;
}

/* Message content: a string, or an array of {"type": "text", "text": ...} parts (joined). */
static bool content_text(const cJSON *c, const char *param, char **out, api_error *e) {
    static const char *const text[] = {"text", NULL};
    return api_content_text(c, param, text, "of type \"text\" (images and audio are not supported)", out, e);
}

/* An assistant turn's tool_calls (OpenAI's shape: id, type "function", function {name,
 * arguments as text}), kept as JSON text; a tool result's tool_call_id. */
static bool message_tools(const cJSON *m, char role, int i, hai_chat_message *out, api_error *e) {
    char param[48];
    const cJSON *calls = cJSON_GetObjectItemCaseSensitive(m, "tool_calls"), *id = cJSON_GetObjectItemCaseSensitive(m, "tool_call_id");
    if (calls && !cJSON_IsNull(calls)) {
        snprintf(param, sizeof param, "messages[%d].tool_calls", i);
        if (role != 'a') return api_fail(e, param, "'%s' is only for assistant messages", param);
        if (!cJSON_IsArray(calls)) return api_fail(e, param, "'%s' must be an array", param);
        const cJSON *c;
        int k = 0;
        cJSON_ArrayForEach(c, calls) {
            const cJSON *f = cJSON_IsObject(c) ? cJSON_GetObjectItemCaseSensitive(c, "function") : NULL;
            const cJSON *name = f ? cJSON_GetObjectItemCaseSensitive(f, "name") : NULL, *args = f ? cJSON_GetObjectItemCaseSensitive(f, "arguments") : NULL;
            const cJSON *cid = cJSON_IsObject(c) ? cJSON_GetObjectItemCaseSensitive(c, "id") : NULL;
            const cJSON *type = cJSON_IsObject(c) ? cJSON_GetObjectItemCaseSensitive(c, "type") : NULL;
            if (!cJSON_IsObject(f) || !cJSON_IsString(name) || !cJSON_IsString(args))
                return api_fail(e, param, "'%s[%d]' must have a function with a string name and string arguments", param, k);
            if ((cid && !cJSON_IsString(cid)) || (type && (!cJSON_IsString(type) || strcmp(type->valuestring, "function"))))
                return api_fail(e, param, "'%s[%d]' must have a string id and type \"function\"", param, k);
            if (!api_valid_utf8(name->valuestring, strlen(name->valuestring)) || !api_valid_utf8(args->valuestring, strlen(args->valuestring)) ||
                (cid && !api_valid_utf8(cid->valuestring, strlen(cid->valuestring))))
                return api_fail(e, param, "'%s[%d]' is not valid UTF-8", param, k);
            k++;
        }
        if (!(out->tool_calls = cJSON_PrintUnformatted(calls))) return api_oom(e);
    }
    if (id && !cJSON_IsNull(id)) {
        snprintf(param, sizeof param, "messages[%d].tool_call_id", i);
        if (!cJSON_IsString(id)) return api_fail(e, param, "'%s' must be a string", param);
        char *dup = NULL;
        if (!dup_text(id, param, &dup, e)) return false;
        out->tool_call_id = dup;
    }
    return true;
}

static bool parse_messages(const cJSON *root, api_request *r, api_error *e) {
    const cJSON *msgs = field(root, "messages");
    if (!msgs) return api_fail(e, "messages", "'messages' is required");
    if (!cJSON_IsArray(msgs)) return api_fail(e, "messages", "'messages' must be an array");
    int n = cJSON_GetArraySize(msgs);
    if (n == 0) return api_fail(e, "messages", "'messages' must not be empty");
    if (n > API_MAX_MESSAGES) return api_fail(e, "messages", "'messages' has %d entries (at most %d)", n, API_MAX_MESSAGES);
    r->msgs = calloc((size_t)n, sizeof *r->msgs);
    if (!r->msgs) return api_oom(e);
    int i = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, msgs) {
        char param[48];
        snprintf(param, sizeof param, "messages[%d].role", i);
        if (!cJSON_IsObject(m)) return api_fail(e, "messages", "'messages[%d]' must be an object", i);
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        if (!cJSON_IsString(role)) return api_fail(e, param, "'%s' must be a string", param);
        const char *rs = role->valuestring;
        if (!strcmp(rs, "developer")) rs = "system"; /* the newer name of the same thing */
        if (strcmp(rs, "system") && strcmp(rs, "user") && strcmp(rs, "assistant") && strcmp(rs, "tool"))
            return api_fail(e, param, "'%s' must be one of system, developer, user, assistant, tool", param);
        snprintf(param, sizeof param, "messages[%d].content", i);
        char *content = NULL;
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (cJSON_IsNull(c) && rs[0] == 'a') c = NULL; /* an assistant turn that only called tools */
        if (!content_text(c, param, &content, e)) return false;
        r->msgs[i].role = rs[0] == 's' ? "system" : rs[0] == 'u' ? "user" : rs[0] == 'a' ? "assistant" : "tool";
        r->msgs[i].content = content;
        r->n_msgs = (size_t)++i;
        if (!message_tools(m, rs[0], i - 1, &r->msgs[i - 1], e)) return false;
    }
    return true;
}

/* A JSON Schema (a cJSON subtree) as GBNF in r->grammar; errors name param. */
static bool schema_grammar(const cJSON *schema, const char *param, api_request *r, api_error *e) {
    char *txt = cJSON_PrintUnformatted(schema);
    if (!txt) return api_oom(e);
    hai_error err = {0};
    hai_status st = hai_json_schema_to_gbnf(txt, strlen(txt), &r->grammar, &err);
    free(txt);
    if (st == HAI_ERR_NOMEM) return api_oom(e);
    if (st) return api_fail(e, param, "'%s': %s", param, err.msg);
    snprintf(r->grammar_param, sizeof r->grammar_param, "%s", param);
    return true;
}

/* What constrains the output: response_format (text, json_object, json_schema), or llama.cpp's
 * grammar (GBNF) or json_schema fields; one of them. */
static bool parse_constraint(const cJSON *root, api_request *r, api_error *e) {
    const cJSON *rf = field(root, "response_format"), *gr = field(root, "grammar"), *js = field(root, "json_schema");
    const char *rtype = NULL;
    if (rf && !cJSON_IsNull(rf)) {
        const cJSON *t = cJSON_IsObject(rf) ? cJSON_GetObjectItemCaseSensitive(rf, "type") : NULL;
        if (!cJSON_IsString(t)) return api_fail(e, "response_format", "'response_format' must be an object with a 'type'");
        rtype = t->valuestring;
        if (strcmp(rtype, "text") && strcmp(rtype, "json_object") && strcmp(rtype, "json_schema"))
            return api_fail(e, "response_format", "'response_format' type '%.40s' is not supported (text, json_object, json_schema are)", rtype);
        if (!strcmp(rtype, "text")) rtype = NULL;
    }
    int given = (rtype != NULL) + (gr && !cJSON_IsNull(gr)) + (js && !cJSON_IsNull(js));
    if (given > 1) return api_fail(e, rtype ? "response_format" : "grammar", "give one of 'response_format', 'grammar' and 'json_schema'");
    if (rtype && !(r->response_format_json = cJSON_PrintUnformatted(rf))) return api_oom(e); /* for a cloud, as given */
    if (rtype && !strcmp(rtype, "json_object")) {
        cJSON *obj = cJSON_CreateObject();
        if (!obj || !cJSON_AddStringToObject(obj, "type", "object")) {
            cJSON_Delete(obj);
            return api_oom(e);
        }
        bool ok = schema_grammar(obj, "response_format", r, e);
        cJSON_Delete(obj);
        return ok;
    }
    if (rtype) { /* json_schema: {"name", "schema", "strict", "description"} */
        const cJSON *j = cJSON_GetObjectItemCaseSensitive(rf, "json_schema");
        if (!cJSON_IsObject(j)) return api_fail(e, "response_format", "'response_format' of type json_schema needs a 'json_schema' object");
        const cJSON *schema = cJSON_GetObjectItemCaseSensitive(j, "schema");
        if (!schema) {
            cJSON *any = cJSON_CreateObject();
            if (!any) return api_oom(e);
            bool ok = schema_grammar(any, "response_format", r, e);
            cJSON_Delete(any);
            return ok;
        }
        if (!cJSON_IsObject(schema) && !cJSON_IsBool(schema)) return api_fail(e, "response_format", "'response_format.json_schema.schema' must be an object");
        return schema_grammar(schema, "response_format", r, e);
    }
    if (js && !cJSON_IsNull(js)) {
        if (!cJSON_IsObject(js) && !cJSON_IsBool(js)) return api_fail(e, "json_schema", "'json_schema' must be an object");
        return schema_grammar(js, "json_schema", r, e);
    }
    if (gr && !cJSON_IsNull(gr)) {
        if (!cJSON_IsString(gr)) return api_fail(e, "grammar", "'grammar' must be a string (GBNF)");
        if (!*gr->valuestring) return true; /* llama.cpp's servers take "" as none */
        if (!(r->grammar = strdup(gr->valuestring))) return api_oom(e);
        snprintf(r->grammar_param, sizeof r->grammar_param, "grammar");
    }
    return true;
}

static bool tool_name_ok(const char *s) {
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= '0' && s[n] <= '9') || s[n] == '_' || s[n] == '-'))
            return false;
    return n >= 1 && n <= 64;
}

/* tools (function tools: name, description, parameters, strict), tool_choice, parallel_tool_calls. */
static bool parse_tools(const cJSON *root, api_kind kind, api_request *r, api_error *e) {
    const cJSON *tools = field(root, "tools"), *tc = field(root, "tool_choice"), *par = field(root, "parallel_tool_calls");
    r->parallel = true;
    if (!get_bool(root, "parallel_tool_calls", &r->parallel, e)) return false;
    if (tc && !tools) /* OpenAI's answer, word for word */
        return api_fail(e, "tool_choice", "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.");
    if (par && !tools)
        return api_fail(e, "parallel_tool_calls", "Invalid value for 'parallel_tool_calls': only allowed when 'tools' are specified.");
    if (!tools) return true;
    if (kind != API_CHAT) return api_fail(e, "tools", "'tools' belongs to chat completions");
    if (!cJSON_IsArray(tools)) return api_fail(e, "tools", "'tools' must be an array");
    int n = cJSON_GetArraySize(tools);
    if (n == 0) { /* as OpenAI: an empty list is no tools, but not with a tool_choice */
        if (tc) return api_fail(e, "tool_choice", "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.");
        return true;
    }
    if (n > API_MAX_TOOLS) return api_fail(e, "tools", "'tools' has %d entries (at most %d)", n, API_MAX_TOOLS);
    r->tools = calloc((size_t)n, sizeof *r->tools);
    r->tools_own = calloc((size_t)n * 2, sizeof *r->tools_own);
    if (!r->tools || !r->tools_own) return api_oom(e);
    r->n_tools_own = (size_t)n * 2;
    const cJSON *t;
    int i = 0;
    cJSON_ArrayForEach(t, tools) {
        char param[64];
        snprintf(param, sizeof param, "tools[%d]", i);
        const cJSON *type = cJSON_IsObject(t) ? cJSON_GetObjectItemCaseSensitive(t, "type") : NULL;
        if (!cJSON_IsString(type) || strcmp(type->valuestring, "function"))
            return api_fail(e, param, "'%s' must be an object of type \"function\" (the only tools chat completions run)", param);
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(t, "function");
        snprintf(param, sizeof param, "tools[%d].function", i);
        if (!cJSON_IsObject(f)) return api_fail(e, param, "Missing required parameter: '%s' (an object)", param);
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(f, "name"), *desc = field(f, "description"), *params = field(f, "parameters");
        snprintf(param, sizeof param, "tools[%d].function.name", i);
        if (!cJSON_IsString(name) || !tool_name_ok(name->valuestring))
            return api_fail(e, param, "'%s' must be 1 to 64 letters, digits, '_' or '-'", param);
        for (size_t k = 0; k < r->n_tools; k++)
            if (!strcmp(r->tools[k].name, name->valuestring)) return api_fail(e, param, "'%s': the tool name '%s' is given twice", param, name->valuestring);
        snprintf(param, sizeof param, "tools[%d].function.description", i);
        if (desc && (!cJSON_IsString(desc) || !api_valid_utf8(desc->valuestring, strlen(desc->valuestring))))
            return api_fail(e, param, "'%s' must be a string of UTF-8 text", param);
        snprintf(param, sizeof param, "tools[%d].function.parameters", i);
        if (params && !cJSON_IsObject(params)) return api_fail(e, param, "'%s' must be a JSON Schema object", param);
        const cJSON *strict = field(f, "strict");
        snprintf(param, sizeof param, "tools[%d].function.strict", i);
        if (strict && !cJSON_IsBool(strict)) return api_fail(e, param, "'%s' must be a boolean", param);
        char *nm = strdup(name->valuestring), *ps = params ? cJSON_PrintUnformatted(params) : NULL;
        r->tools_own[2 * i] = nm, r->tools_own[2 * i + 1] = ps;
        if (!nm || (params && !ps)) return api_oom(e);
        r->tools[i] = (tool_def){.name = nm, .params = ps, .strict = cJSON_IsTrue(strict)};
        r->n_tools = (size_t)++i;
    }
    if (!(r->tools_json = cJSON_PrintUnformatted(tools))) return api_oom(e);
    r->choice = TOOL_CHOICE_AUTO;
    if (cJSON_IsString(tc)) {
        const char *v = tc->valuestring;
        if (!strcmp(v, "none")) r->choice = TOOL_CHOICE_NONE;
        else if (!strcmp(v, "required")) r->choice = TOOL_CHOICE_REQUIRED;
        else if (strcmp(v, "auto")) return api_fail(e, "tool_choice", "'tool_choice' must be none, auto, required or a function to call");
    } else if (tc) {
        const cJSON *type = cJSON_IsObject(tc) ? cJSON_GetObjectItemCaseSensitive(tc, "type") : NULL;
        const cJSON *f = cJSON_IsObject(tc) ? cJSON_GetObjectItemCaseSensitive(tc, "function") : NULL;
        const cJSON *name = f ? cJSON_GetObjectItemCaseSensitive(f, "name") : NULL;
        if (!cJSON_IsString(type) || strcmp(type->valuestring, "function") || !cJSON_IsString(name))
            return api_fail(e, "tool_choice", "'tool_choice' must be none, auto, required or {\"type\": \"function\", \"function\": {\"name\": ...}}");
        bool found = false;
        for (size_t k = 0; k < r->n_tools && !found; k++) found = !strcmp(r->tools[k].name, name->valuestring);
        if (!found) return api_fail(e, "tool_choice", "'tool_choice' names the function '%.64s', which is not among 'tools'", name->valuestring);
        r->choice = TOOL_CHOICE_NAMED;
        snprintf(r->named, sizeof r->named, "%s", name->valuestring);
    }
    return true;
}

bool api_parse(api_kind kind, const char *body, size_t len, api_request *r, api_error *e) {
    memset(r, 0, sizeof *r);
    memset(e, 0, sizeof *e);
    r->kind = kind;
    r->sp = hai_sampler_default_params();
    r->sp.temperature = 1.0f; /* the OpenAI defaults: temperature 1, top_p 1, no top-k / min-p */
    r->sp.top_p = 1.0f;
    r->sp.top_k = 0;
    r->sp.min_p = 0;
    if (len == 0) return api_fail(e, NULL, "the request body is empty; send a JSON object");
    /* cJSON would end a string at an escaped NUL without saying so */
    for (const char *p = body; (p = memmem(p, len - (size_t)(p - body), "\\u0000", 6)); p += 6) {
        size_t bs = 0; /* an odd run of backslashes makes this an escape; an even one is text */
        while (p - (ptrdiff_t)bs > body && p[-1 - (ptrdiff_t)bs] == '\\') bs++;
        if (bs % 2 == 0) return api_fail(e, NULL, "NUL characters (\\u0000) are not allowed in requests");
    }
    if (memchr(body, 0, len)) return api_fail(e, NULL, "the request body contains a NUL byte");
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, false); /* cJSON caps nesting (CJSON_NESTING_LIMIT) */
    if (!root) return api_fail(e, NULL, "the request body is not valid JSON");
    while (end && end < body + len && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')) end++;
    if (end && end < body + len) {
        cJSON_Delete(root);
        return api_fail(e, NULL, "the request body has data after its JSON value");
    }
    bool ok = false;
    if (!cJSON_IsObject(root)) {
        api_fail(e, NULL, "the request body must be a JSON object");
        goto out;
    }
    const cJSON *model = field(root, "model");
    if (model && !cJSON_IsString(model)) {
        api_fail(e, "model", "'model' must be a string");
        goto out;
    }
    if (model && !dup_text(model, "model", &r->model, e)) goto out;
    if (kind == API_CHAT) {
        if (!parse_messages(root, r, e)) goto out;
    } else {
        const cJSON *p = field(root, "prompt");
        if (!p) {
            api_fail(e, "prompt", "'prompt' is required");
            goto out;
        }
        /* a string, or an array of strings: a choice (or n) per prompt */
        int np = cJSON_IsArray(p) ? cJSON_GetArraySize(p) : 1;
        if (!cJSON_IsString(p) && !cJSON_IsArray(p)) {
            api_fail(e, "prompt", "'prompt' must be a string or an array of strings");
            goto out;
        }
        if (np < 1 || np > API_MAX_PROMPTS) {
            api_fail(e, "prompt", "'prompt' has %d strings (1 to %d)", np, API_MAX_PROMPTS);
            goto out;
        }
        if (!(r->prompts = calloc((size_t)np, sizeof *r->prompts))) {
            api_oom(e);
            goto out;
        }
        for (int i = 0; i < np; i++) {
            const cJSON *pi = cJSON_IsArray(p) ? cJSON_GetArrayItem(p, i) : p;
            if (!cJSON_IsString(pi)) {
                api_fail(e, "prompt", "'prompt' must be a string or an array of strings (token arrays are not supported)");
                goto out;
            }
            if (!dup_text(pi, "prompt", &r->prompts[i], e)) goto out;
            r->n_prompts = (size_t)i + 1;
        }
        r->prompt = r->prompts[0];
    }
    double v = 0;
    bool given;
    if (!get_bool(root, "stream", &r->stream, e)) goto out;
    const cJSON *so = field(root, "stream_options");
    if (so && !cJSON_IsObject(so)) {
        api_fail(e, "stream_options", "'stream_options' must be an object");
        goto out;
    }
    if (so && !get_bool(so, "include_usage", &r->include_usage, e)) goto out;
    const char *mt_name = field(root, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
    if (!get_int(root, mt_name, 1, 1 << 24, &v, &given, e)) goto out;
    if (given) r->max_tokens = (int32_t)v;
    if (!get_number(root, "temperature", 0, 2, &v, &r->has_temperature, e)) goto out;
    if (r->has_temperature) r->sp.temperature = (float)v;
    if (!get_number(root, "top_p", 0, 1, &v, &r->has_top_p, e)) goto out;
    if (r->has_top_p) {
        if (v == 0) {
            api_fail(e, "top_p", "'top_p' must be above 0");
            goto out;
        }
        /* a top_p below float's range (1e-300) means what the smallest float means: the most
         * likely token only; it must not round to 0, which the sampler refuses (a 500) */
        r->sp.top_p = v < FLT_MIN ? FLT_MIN : (float)v;
    }
    if (!get_int(root, "seed", -9.2e18, 9.2e18, &v, &r->has_seed, e)) goto out;
    if (r->has_seed) r->sp.seed = (uint64_t)(int64_t)v;
    if (!get_number(root, "presence_penalty", -2, 2, &v, &given, e)) goto out;
    if (given) r->sp.presence_penalty = (float)v;
    if (!get_number(root, "frequency_penalty", -2, 2, &v, &given, e)) goto out;
    if (given) r->sp.frequency_penalty = (float)v;
    if (!get_int(root, "top_k", 0, 1 << 20, &v, &given, e)) goto out; /* llama.cpp-style extras */
    if (given) r->sp.top_k = (int32_t)v;
    if (!get_number(root, "min_p", 0, 1, &v, &given, e)) goto out;
    if (given) r->sp.min_p = (float)v;
    if (!get_number(root, "repeat_penalty", 0.01, 100, &v, &given, e)) goto out;
    if (given) r->sp.repeat_penalty = (float)v;
    if (!get_int(root, "n", 1, API_MAX_N, &v, &given, e)) goto out;
    r->n = given ? (int)v : 1;
    /* logprobs: chat takes logprobs: true and top_logprobs 0-20; completions an integer 0-20 */
    r->top_logprobs = -1;
    const cJSON *lp = field(root, "logprobs");
    if (kind == API_CHAT) {
        if (!get_bool(root, "logprobs", &(bool){false}, e)) goto out;
        bool want = lp && cJSON_IsTrue(lp);
        if (!get_int(root, "top_logprobs", 0, 20, &v, &given, e)) goto out;
        if (given && !want) {
            api_fail(e, "top_logprobs", "'top_logprobs' needs 'logprobs': true");
            goto out;
        }
        if (want) r->top_logprobs = given ? (int)v : 0;
    } else if (lp) {
        if (!get_int(root, "logprobs", 0, 20, &v, &given, e)) goto out;
        r->top_logprobs = (int)v;
    }
    if (!parse_tools(root, kind, r, e)) goto out;
    /* llama.cpp's server fields for reasoning models */
    const cJSON *rf = field(root, "reasoning_format"), *kw = field(root, "chat_template_kwargs");
    if (rf && (!cJSON_IsString(rf) || (strcmp(rf->valuestring, "none") && strcmp(rf->valuestring, "auto") && strcmp(rf->valuestring, "deepseek")))) {
        api_fail(e, "reasoning_format", "'reasoning_format' must be none, auto or deepseek");
        goto out;
    }
    r->raw_reasoning = rf && !strcmp(rf->valuestring, "none");
    if (r->raw_reasoning && r->tools_json && r->choice != TOOL_CHOICE_NONE) {
        api_fail(e, "reasoning_format", "'reasoning_format' none leaves the output unread: it cannot go with tools");
        goto out;
    }
    if (kw && !cJSON_IsObject(kw)) {
        api_fail(e, "chat_template_kwargs", "'chat_template_kwargs' must be an object");
        goto out;
    }
    const cJSON *think = kw ? field(kw, "enable_thinking") : NULL;
    if (think && !cJSON_IsBool(think)) {
        api_fail(e, "chat_template_kwargs", "'chat_template_kwargs.enable_thinking' must be a boolean");
        goto out;
    }
    r->no_thinking = think && cJSON_IsFalse(think);
    if (!parse_constraint(root, r, e)) goto out;
    if (r->grammar && r->tools_json && r->choice != TOOL_CHOICE_NONE) {
        api_fail(e, r->grammar_param, "'%s' together with 'tools' is not supported yet", r->grammar_param);
        goto out;
    }
    const cJSON *lb = field(root, "logit_bias");
    if (lb) { /* {"token id": bias in [-100, 100]} */
        if (!cJSON_IsObject(lb)) {
            api_fail(e, "logit_bias", "'logit_bias' must be an object mapping token ids to numbers");
            goto out;
        }
        int nb = cJSON_GetArraySize(lb);
        if (nb > API_MAX_LOGIT_BIAS) {
            api_fail(e, "logit_bias", "'logit_bias' has %d entries (at most %d)", nb, API_MAX_LOGIT_BIAS);
            goto out;
        }
        if (nb && !(r->bias = calloc((size_t)nb, sizeof *r->bias))) {
            api_oom(e);
            goto out;
        }
        const cJSON *it;
        cJSON_ArrayForEach(it, lb) {
            char *rest = NULL;
            long id = strtol(it->string, &rest, 10);
            if (!*it->string || *rest || id < 0 || id > INT32_MAX || it->string[0] == '+' || it->string[0] == ' ') {
                api_fail(e, "logit_bias", "'logit_bias' keys must be token ids (non-negative integers), not '%.32s'", it->string);
                goto out;
            }
            if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble) || it->valuedouble < -100 || it->valuedouble > 100) {
                api_fail(e, "logit_bias", "'logit_bias' values must be numbers from -100 to 100 (token %ld)", id);
                goto out;
            }
            r->bias[r->n_bias++] = (hai_logit_bias){(hai_token)id, (float)it->valuedouble};
        }
        r->sp.logit_bias = r->bias;
        r->sp.n_logit_bias = r->n_bias;
    }
    const cJSON *stop = field(root, "stop");
    if (stop) {
        if (cJSON_IsString(stop)) {
            if (*stop->valuestring && !dup_text(stop, "stop", &r->stop[r->n_stop++], e)) goto out;
        } else if (cJSON_IsArray(stop)) {
            if (cJSON_GetArraySize(stop) > API_MAX_STOP) {
                api_fail(e, "stop", "'stop' has more than %d strings", API_MAX_STOP);
                goto out;
            }
            const cJSON *s;
            cJSON_ArrayForEach(s, stop) {
                if (!cJSON_IsString(s) || !*s->valuestring) {
                    api_fail(e, "stop", "'stop' must hold non-empty strings");
                    goto out;
                }
                if (!dup_text(s, "stop", &r->stop[r->n_stop++], e)) goto out;
            }
        } else {
            api_fail(e, "stop", "'stop' must be a string or an array of strings");
            goto out;
        }
        for (size_t i = 0; i < r->n_stop; i++)
            if (strlen(r->stop[i]) > 256) {
                api_fail(e, "stop", "'stop' strings are limited to 256 bytes");
                goto out;
            }
    }
    ok = true;
out:
    cJSON_Delete(root);
    if (!ok) api_request_free(r);
    return ok;
}

void api_request_free(api_request *r) {
    if (!r) return;
    free(r->model);
    for (size_t i = 0; i < r->n_msgs; i++) {
        free((char *)r->msgs[i].content);
        free((char *)r->msgs[i].tool_calls);
        free((char *)r->msgs[i].tool_call_id);
    }
    free(r->msgs);
    for (size_t i = 0; i < r->n_prompts; i++) free(r->prompts[i]);
    free(r->prompts);
    for (size_t i = 0; i < r->n_stop; i++) free(r->stop[i]);
    free(r->bias);
    free(r->grammar);
    for (size_t i = 0; i < r->n_tools_own; i++) free(r->tools_own[i]);
    free(r->tools_own);
    free(r->tools);
    free(r->tools_json);
    free(r->response_format_json);
    memset(r, 0, sizeof *r);
}

/* ---- responses ------------------------------------------------------------------------------- */

char *api_error_json(const api_error *e) {
    cJSON *root = cJSON_CreateObject(), *o = cJSON_AddObjectToObject(root, "error");
    cJSON_AddStringToObject(o, "message", e->message);
    cJSON_AddStringToObject(o, "type", e->type ? e->type : "invalid_request_error");
    if (e->param[0]) cJSON_AddStringToObject(o, "param", e->param);
    else cJSON_AddNullToObject(o, "param");
    if (e->code) cJSON_AddStringToObject(o, "code", e->code);
    else cJSON_AddNullToObject(o, "code");
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

/* A piece as JSON text: the bytes where they are whole UTF-8, U+FFFD for the rest (the exact
 * bytes go in "bytes"). */
static cJSON *piece_string(const api_piece *p) {
    char buf[256 * 3 + 1];
    size_t w = 0, n = p->len < 256 ? p->len : 256;
    for (size_t i = 0; i < n;) {
        int l = hai_utf8_valid_len((const unsigned char *)p->text + i, n - i, NULL);
        if (l) memcpy(buf + w, p->text + i, (size_t)l), w += (size_t)l, i += (size_t)l;
        else memcpy(buf + w, "\xef\xbf\xbd", 3), w += 3, i++;
    }
    buf[w] = '\0';
    return cJSON_CreateString(buf);
}

static cJSON *piece_bytes(const api_piece *p) {
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < p->len; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber((unsigned char)p->text[i]));
    return a;
}

/* -inf (a token with no chance) as the most negative double: JSON has no infinity */
static double finite_lp(float v) { return isfinite(v) ? v : -1e300; }

/* The choice's "logprobs": chat's {"content": [...], "refusal": null}, or the completions API's
 * {"tokens", "token_logprobs", "top_logprobs", "text_offset"}. */
static cJSON *logprobs_json(api_kind kind, const api_result *r) {
    cJSON *o = cJSON_CreateObject();
    if (kind == API_CHAT) {
        cJSON *content = cJSON_AddArrayToObject(o, "content");
        for (size_t i = 0; i < r->n_lp; i++) {
            const api_logprob *l = &r->lp[i];
            cJSON *e = cJSON_CreateObject(), *top;
            cJSON_AddItemToObject(e, "token", piece_string(&l->tok));
            cJSON_AddNumberToObject(e, "logprob", finite_lp(l->tok.logprob));
            cJSON_AddItemToObject(e, "bytes", piece_bytes(&l->tok));
            top = cJSON_AddArrayToObject(e, "top_logprobs");
            for (int k = 0; k < l->n_top; k++) {
                cJSON *t = cJSON_CreateObject();
                cJSON_AddItemToObject(t, "token", piece_string(&l->top[k]));
                cJSON_AddNumberToObject(t, "logprob", finite_lp(l->top[k].logprob));
                cJSON_AddItemToObject(t, "bytes", piece_bytes(&l->top[k]));
                cJSON_AddItemToArray(top, t);
            }
            cJSON_AddItemToArray(content, e);
        }
        cJSON_AddNullToObject(o, "refusal");
        return o;
    }
    cJSON *toks = cJSON_AddArrayToObject(o, "tokens"), *lps = cJSON_AddArrayToObject(o, "token_logprobs"),
          *tops = cJSON_AddArrayToObject(o, "top_logprobs"), *offs = cJSON_AddArrayToObject(o, "text_offset");
    size_t off = r->text_offset;
    for (size_t i = 0; i < r->n_lp; i++) {
        const api_logprob *l = &r->lp[i];
        cJSON_AddItemToArray(toks, piece_string(&l->tok));
        cJSON_AddItemToArray(lps, cJSON_CreateNumber(finite_lp(l->tok.logprob)));
        cJSON *t = cJSON_CreateObject();
        for (int k = 0; k < l->n_top; k++) {
            cJSON *name = piece_string(&l->top[k]);
            if (name && !cJSON_GetObjectItemCaseSensitive(t, name->valuestring)) cJSON_AddNumberToObject(t, name->valuestring, finite_lp(l->top[k].logprob));
            cJSON_Delete(name);
        }
        cJSON_AddItemToArray(tops, t);
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
        off += l->tok.len;
    }
    return o;
}

static cJSON *base(api_kind kind, const api_result *r, bool chunk) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", r->id);
    cJSON_AddStringToObject(o, "object", kind == API_CHAT ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion");
    cJSON_AddNumberToObject(o, "created", (double)r->created);
    cJSON_AddStringToObject(o, "model", r->model);
    cJSON_AddStringToObject(o, "system_fingerprint", "hai");
    return o;
}

static void add_usage(cJSON *o, const api_result *r) {
    cJSON *u = cJSON_AddObjectToObject(o, "usage");
    cJSON_AddNumberToObject(u, "prompt_tokens", r->prompt_tokens);
    cJSON_AddNumberToObject(u, "completion_tokens", r->completion_tokens);
    cJSON_AddNumberToObject(u, "total_tokens", r->prompt_tokens + r->completion_tokens);
    cJSON_AddNumberToObject(cJSON_AddObjectToObject(u, "prompt_tokens_details"), "cached_tokens", r->cached_tokens);
}

static void add_route(cJSON *o, const api_result *r) {
    if (!r->route_json) return;
    cJSON *route = cJSON_Parse(r->route_json);
    if (route) cJSON_AddItemToObject(o, "hai_route", route);
}

/* A JSON string of generated text. The engine emits whole UTF-8 characters; should a piece ever
 * end inside one, the valid prefix is kept rather than writing invalid JSON. NULL when out of
 * memory: the caller fails the response rather than send it without its text. */
static cJSON *text_string(const char *text, size_t len) {
    while (len && !api_valid_utf8(text, len)) len--;
    char *s = malloc(len + 1);
    if (!s) return NULL;
    memcpy(s, text, len);
    s[len] = '\0';
    cJSON *v = cJSON_CreateString(s);
    free(s);
    return v;
}

/* A message's tool_calls: [{"id", "type": "function", "function": {"name", "arguments"}}]. */
static cJSON *calls_json(const api_result *r) {
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < r->n_calls; i++) {
        cJSON *c = cJSON_CreateObject(), *f = cJSON_AddObjectToObject(c, "function"); /* c owns f */
        bool ok = f && cJSON_AddStringToObject(c, "id", r->call_ids[i]) && cJSON_AddStringToObject(c, "type", "function") &&
                  cJSON_AddItemToObject(f, "name", text_string(r->calls[i].name, strlen(r->calls[i].name))) &&
                  cJSON_AddItemToObject(f, "arguments", text_string(r->calls[i].args, r->calls[i].args_len)) && cJSON_AddItemToArray(a, c);
        if (!ok) {
            cJSON_Delete(c);
            cJSON_Delete(a);
            return NULL;
        }
    }
    return a;
}

char *api_response_json(api_kind kind, const api_result *total, const api_result *ch, size_t n) {
    cJSON *o = base(kind, total, false), *choices = cJSON_AddArrayToObject(o, "choices");
    bool ok = o && choices; /* every answer's text is in the response, or there is no response */
    for (size_t i = 0; ok && i < n; i++) {
        const api_result *r = &ch[i];
        cJSON *c = cJSON_CreateObject();
        cJSON_AddNumberToObject(c, "index", r->index);
        if (kind == API_CHAT) {
            cJSON *m = cJSON_AddObjectToObject(c, "message");
            cJSON_AddStringToObject(m, "role", "assistant");
            if (r->n_calls && !r->text_len) ok = cJSON_AddNullToObject(m, "content") != NULL; /* as OpenAI answers a call */
            else ok = cJSON_AddItemToObject(m, "content", text_string(r->text, r->text_len));
            if (ok && r->reasoning_len) ok = cJSON_AddItemToObject(m, "reasoning_content", text_string(r->reasoning, r->reasoning_len));
            if (ok && r->n_calls) ok = cJSON_AddItemToObject(m, "tool_calls", calls_json(r));
            cJSON_AddNullToObject(m, "refusal");
        } else {
            ok = cJSON_AddItemToObject(c, "text", text_string(r->text, r->text_len));
        }
        if (r->want_logprobs) cJSON_AddItemToObject(c, "logprobs", logprobs_json(kind, r));
        else cJSON_AddNullToObject(c, "logprobs");
        cJSON_AddStringToObject(c, "finish_reason", r->finish);
        ok = ok && cJSON_AddItemToArray(choices, c);
        if (!ok) cJSON_Delete(c);
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    add_usage(o, total);
    add_route(o, total);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static char *sse(cJSON *o) {
    char *j = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!j) return NULL;
    size_t n = strlen(j);
    char *s = malloc(n + 9);
    if (s) {
        memcpy(s, "data: ", 6);
        memcpy(s + 6, j, n);
        memcpy(s + 6 + n, "\n\n", 3);
    }
    free(j);
    return s;
}

static cJSON *chunk_choice(cJSON *o, int index) {
    cJSON *choices = cJSON_AddArrayToObject(o, "choices"), *c = cJSON_CreateObject();
    cJSON_AddNumberToObject(c, "index", index);
    cJSON_AddItemToArray(choices, c);
    return c;
}

char *api_chunk_role(api_kind kind, const api_result *r) {
    cJSON *o = base(kind, r, true), *c = chunk_choice(o, r->index);
    if (kind == API_CHAT) {
        cJSON *d = cJSON_AddObjectToObject(c, "delta");
        cJSON_AddStringToObject(d, "role", "assistant");
        if (r->calls_only) cJSON_AddNullToObject(d, "content");
        else cJSON_AddStringToObject(d, "content", "");
    } else {
        cJSON_AddStringToObject(c, "text", "");
    }
    cJSON_AddNullToObject(c, "logprobs");
    cJSON_AddNullToObject(c, "finish_reason");
    return sse(o);
}

char *api_chunk_text(api_kind kind, const api_result *r, const char *text, size_t len) {
    cJSON *o = base(kind, r, true), *c = chunk_choice(o, r->index);
    cJSON *t = text_string(text, len);
    bool ok = kind == API_CHAT ? cJSON_AddItemToObject(cJSON_AddObjectToObject(c, "delta"), "content", t) : cJSON_AddItemToObject(c, "text", t);
    if (!ok) { /* a chunk without its text is no chunk: the stream ends in an error instead */
        cJSON_Delete(t);
        cJSON_Delete(o);
        return NULL;
    }
    if (r->want_logprobs) cJSON_AddItemToObject(c, "logprobs", logprobs_json(kind, r));
    else cJSON_AddNullToObject(c, "logprobs");
    cJSON_AddNullToObject(c, "finish_reason");
    return sse(o);
}

char *api_chunk_finish(api_kind kind, const api_result *r) {
    cJSON *o = base(kind, r, true), *c = chunk_choice(o, r->index);
    if (kind == API_CHAT) cJSON_AddObjectToObject(c, "delta");
    else cJSON_AddStringToObject(c, "text", "");
    if (r->want_logprobs && r->n_lp) cJSON_AddItemToObject(c, "logprobs", logprobs_json(kind, r)); /* tokens of a dropped stop string */
    else cJSON_AddNullToObject(c, "logprobs");
    cJSON_AddStringToObject(c, "finish_reason", r->finish);
    add_route(o, r);
    return sse(o);
}

char *api_chunk_delta(const api_result *r, const char *reasoning, size_t rlen, const char *content, size_t clen,
                      const api_call_delta *calls, size_t n_calls) {
    cJSON *o = base(API_CHAT, r, true), *c = chunk_choice(o, r->index), *d = cJSON_AddObjectToObject(c, "delta");
    bool ok = o && d;
    if (ok && rlen) ok = cJSON_AddItemToObject(d, "reasoning_content", text_string(reasoning, rlen));
    if (ok && clen) ok = cJSON_AddItemToObject(d, "content", text_string(content, clen));
    cJSON *tc = ok && n_calls ? cJSON_AddArrayToObject(d, "tool_calls") : NULL;
    if (n_calls && !tc) ok = false;
    for (size_t i = 0; ok && i < n_calls; i++) {
        const api_call_delta *x = &calls[i];
        cJSON *e = cJSON_CreateObject();
        ok = e && cJSON_AddItemToArray(tc, e); /* tc owns e from here */
        if (!ok) cJSON_Delete(e);
        ok = ok && cJSON_AddNumberToObject(e, "index", x->index);
        if (ok && x->id) ok = cJSON_AddStringToObject(e, "id", x->id) && cJSON_AddStringToObject(e, "type", "function");
        cJSON *f = ok ? cJSON_AddObjectToObject(e, "function") : NULL;
        ok = f != NULL;
        if (ok && x->name) ok = cJSON_AddItemToObject(f, "name", text_string(x->name, strlen(x->name)));
        if (ok) ok = cJSON_AddItemToObject(f, "arguments", text_string(x->args ? x->args : "", x->args_len));
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    if (r->want_logprobs) cJSON_AddItemToObject(c, "logprobs", logprobs_json(API_CHAT, r));
    else cJSON_AddNullToObject(c, "logprobs");
    cJSON_AddNullToObject(c, "finish_reason");
    return sse(o);
}

void api_call_id(tool_syntax syn, char out[40]) {
    static const char an[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    static atomic_uint_fast64_t ctr;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull ^ (uint64_t)ts.tv_sec ^ (uint64_t)atomic_fetch_add(&ctr, 0x632BE59BD9B4E019ull);
    int n = syn == TOOLS_MISTRAL ? 9 : 24, w = 0;
    if (syn != TOOLS_MISTRAL) w = snprintf(out, 40, "call_");
    for (int i = 0; i < n; i++) {
        x ^= x >> 12, x ^= x << 25, x ^= x >> 27; /* xorshift64*: ids need to be distinct, not secret */
        out[w++] = an[(x * 0x2545F4914F6CDD1Dull >> 58) % 62];
    }
    out[w] = 0;
}

char *api_chunk_usage(api_kind kind, const api_result *r) {
    cJSON *o = base(kind, r, true);
    cJSON_AddArrayToObject(o, "choices");
    add_usage(o, r);
    return sse(o);
}

char *api_tool_choice_json(const api_request *r) {
    if (r->choice != TOOL_CHOICE_NAMED)
        return strdup(r->choice == TOOL_CHOICE_NONE ? "\"none\"" : r->choice == TOOL_CHOICE_REQUIRED ? "\"required\"" : "\"auto\"");
    cJSON *o = cJSON_CreateObject(), *f = cJSON_AddObjectToObject(o, "function");
    char *t = f && cJSON_AddStringToObject(o, "type", "function") && cJSON_AddStringToObject(f, "name", r->named) ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return t;
}
