/* Tool calls and reasoning in chat output (chat_tools.h). The parse is a hand-written scanner
 * rather than a JSON parser: it must say how far a call has got while the output is still
 * arriving (a name that is whole, arguments written so far), and it keeps the arguments' text as
 * the model wrote it, so what a stream sent is always a prefix of the final answer. */
#include "chat_tools.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/text.h"
#include "model/grammar/grammar.h"

/* ---- syntaxes -------------------------------------------------------------------------------- */

#define HERMES_OPEN "<tool_call>"
#define HERMES_CLOSE "</tool_call>"
#define LLAMA_TAG "<|python_tag|>"
#define MISTRAL_OPEN "[TOOL_CALLS]"
#define DS_CALLS_BEGIN "<｜tool▁calls▁begin｜>"
#define DS_CALLS_END "<｜tool▁calls▁end｜>"
#define DS_CALL_BEGIN "<｜tool▁call▁begin｜>"
#define DS_CALL_END "<｜tool▁call▁end｜>"
#define DS_SEP "<｜tool▁sep｜>"

tool_syntax tools_syntax(const char *tpl) {
    if (!tpl) return TOOLS_GENERIC;
    if (strstr(tpl, DS_CALLS_BEGIN) || strstr(tpl, DS_CALL_BEGIN)) return TOOLS_DEEPSEEK;
    if (strstr(tpl, MISTRAL_OPEN)) return TOOLS_MISTRAL;
    if (strstr(tpl, HERMES_OPEN)) return TOOLS_HERMES;
    if (strstr(tpl, LLAMA_TAG) || (strstr(tpl, "<|start_header_id|>") && strstr(tpl, "tools"))) return TOOLS_LLAMA3;
    return TOOLS_GENERIC;
}

bool tools_shown(const char *tpl) { return tpl && strstr(tpl, "tools"); }

const char *tools_syntax_name(tool_syntax s) {
    static const char *const names[] = {"hermes", "llama3", "mistral", "deepseek", "generic"};
    return (unsigned)s < sizeof names / sizeof *names ? names[s] : "?";
}

/* ---- the grammar ------------------------------------------------------------------------------ */


/* The call alternatives: for each tool, pre + the name + mid, its arguments' rule, post. Names
 * are [A-Za-z0-9_-] (checked by the API), so they go into GBNF and JSON literals unescaped. */
static void put_calls(hai_text *b, const tool_def *tools, size_t n, const bool *use, const char *pre, const char *mid, const char *post) {
    bool first = true;
    char rule[32];
    for (size_t i = 0; i < n; i++) {
        if (!use[i]) continue;
        snprintf(rule, sizeof rule, "targs_%zu", i);
        text_puts(b, first ? "" : " | ");
        text_puts(b, pre);
        text_puts(b, tools[i].name);
        text_puts(b, mid);
        text_puts(b, rule);
        text_puts(b, post);
        first = false;
    }
}

/* Text that does not contain </think>, then </think>: the matcher of the word as rules, state k
 * having matched its first k bytes (the word's only overlap with itself is its '<'). */
static const char think_rules[] =
    "think_0 ::= [^<] think_0 | \"<\" think_1 | \"\"\n"
    "think_1 ::= [^/<] think_0 | \"<\" think_1 | \"/\" think_2 | \"\"\n"
    "think_2 ::= [^t<] think_0 | \"<\" think_1 | \"t\" think_3 | \"\"\n"
    "think_3 ::= [^h<] think_0 | \"<\" think_1 | \"h\" think_4 | \"\"\n"
    "think_4 ::= [^i<] think_0 | \"<\" think_1 | \"i\" think_5 | \"\"\n"
    "think_5 ::= [^n<] think_0 | \"<\" think_1 | \"n\" think_6 | \"\"\n"
    "think_6 ::= [^k<] think_0 | \"<\" think_1 | \"k\" think_7 | \"\"\n"
    "think_7 ::= [^><] think_0 | \"<\" think_1 | \"\"\n";

hai_status tools_grammar(tool_syntax syn, const tool_def *tools, size_t n, tool_choice choice, const char *named, bool parallel,
                         bool in_think, char **gbnf, hai_grammar_trigger *trigger, hai_error *err) {
    *gbnf = NULL;
    *trigger = (hai_grammar_trigger){0};
    if (!n) return hai_fail(err, HAI_ERR_INVALID, "tools: no tools");
    const char **schemas = calloc(n, sizeof *schemas);
    size_t *lens = calloc(n, sizeof *lens);
    char **names = calloc(n, sizeof *names);
    bool *use = calloc(n, sizeof *use), *lenient = calloc(n, sizeof *lenient);
    hai_status st = schemas && lens && names && use && lenient ? HAI_OK : hai_fail(err, HAI_ERR_NOMEM, "tools: out of memory");
    bool any = false;
    for (size_t i = 0; !st && i < n; i++) {
        use[i] = choice != TOOL_CHOICE_NAMED || !strcmp(tools[i].name, named);
        any |= use[i];
        schemas[i] = tools[i].params ? tools[i].params : "{\"type\": \"object\"}";
        lens[i] = strlen(schemas[i]);
        lenient[i] = !tools[i].strict; /* tools that are not strict get what the grammar can enforce; a strict one is refused */
        if (!(names[i] = malloc(32))) st = hai_fail(err, HAI_ERR_NOMEM, "tools: out of memory");
        else snprintf(names[i], 32, "targs_%zu", i);
    }
    if (!st && !any) st = hai_fail(err, HAI_ERR_INVALID, "tools: no tool is named '%.64s'", named);
    char *rules = NULL;
    hai_error e = {0};
    if (!st && (st = schema_to_gbnf_rules(schemas, lens, (const char *const *)names, n, lenient, &rules, &e)))
        hai_fail(err, st, "%s", e.msg);
    hai_text b = {0};
    if (!st) {
        /* more calls: "(sep call)*" when parallel, else none */
        const char *more = parallel ? "*" : "{0}";
        switch (syn) {
        case TOOLS_HERMES:
        case TOOLS_GENERIC:
            text_puts(&b, "tcall_ ::= ");
            put_calls(&b, tools, n, use, "\"{\\\"name\\\": \\\"", "\\\", \\\"arguments\\\": \" ", " \"}\"");
            text_puts(&b, "\ncalls_ ::= \"" HERMES_OPEN "\\n\" tcall_ \"\\n" HERMES_CLOSE "\" (\"\\n" HERMES_OPEN "\\n\" tcall_ \"\\n" HERMES_CLOSE "\")");
            text_puts(&b, more);
            *trigger = (hai_grammar_trigger){HERMES_OPEN, false};
            break;
        case TOOLS_LLAMA3:
            text_puts(&b, "tcall_ ::= ");
            put_calls(&b, tools, n, use, "\"{\\\"name\\\": \\\"", "\\\", \\\"parameters\\\": \" ", " \"}\"");
            text_puts(&b, "\ncalls_ ::= tcall_"); /* Llama 3 calls one function at a time */
            *trigger = (hai_grammar_trigger){"{", true};
            break;
        case TOOLS_MISTRAL:
            text_puts(&b, "tcall_ ::= ");
            put_calls(&b, tools, n, use, "\"{\\\"name\\\": \\\"", "\\\", \\\"arguments\\\": \" ", " \"}\"");
            text_puts(&b, "\ncalls_ ::= \"" MISTRAL_OPEN "[\" tcall_ (\", \" tcall_)");
            text_puts(&b, more);
            text_puts(&b, " \"]\"");
            *trigger = (hai_grammar_trigger){MISTRAL_OPEN, false};
            break;
        case TOOLS_DEEPSEEK:
            text_puts(&b, "tcall_ ::= \"" DS_CALL_BEGIN "function" DS_SEP "\" (");
            put_calls(&b, tools, n, use, "\"", "\\n```json\\n\" ", "");
            text_puts(&b, ") \"\\n```" DS_CALL_END "\"\ncalls_ ::= \"" DS_CALLS_BEGIN "\" tcall_ (\"\\n\" tcall_)");
            text_puts(&b, more);
            text_puts(&b, " \"" DS_CALLS_END "\"");
            *trigger = (hai_grammar_trigger){DS_CALLS_BEGIN, false};
            break;
        }
        /* a forced call after the reasoning a prompt opened (R1 distills): think, close, call */
        bool think = in_think && choice != TOOL_CHOICE_AUTO;
        text_puts(&b, think ? "\nroot ::= think_0 \"</think>\" [ \\n]{0,3} calls_\n" : "\nroot ::= calls_\n");
        if (think) text_puts(&b, think_rules);
        text_puts(&b, rules);
        if (b.oom) st = hai_fail(err, HAI_ERR_NOMEM, "tools: out of memory");
    }
    if (choice != TOOL_CHOICE_AUTO) *trigger = (hai_grammar_trigger){0};
    for (size_t i = 0; names && i < n; i++) free(names[i]);
    free(schemas), free(lens), free(names), free(use), free(lenient), free(rules);
    if (st) {
        free(b.p);
        return st;
    }
    *gbnf = b.p;
    return HAI_OK;
}

/* ---- the generic prompt ------------------------------------------------------------------------ */

static const char generic_intro[] =
    "You can use tools: functions that the application runs for you. Each is described by a JSON "
    "object (its name, what it does, the JSON Schema of its arguments), one per line:\n<tools>\n";
static const char generic_how[] =
    "\n</tools>\n\nTo use one, write a JSON object with its name and its arguments between "
    "<tool_call> and </tool_call>, and nothing else:\n<tool_call>\n{\"name\": \"the function's name\", "
    "\"arguments\": {\"an argument\": \"its value\"}}\n</tool_call>\nYou may make several calls, one after "
    "the other. Their results come back as <tool_response> messages. When no tool is needed, answer in "
    "plain text.";
static const char deepseek_how[] =
    "\n</tools>\n\nTo use one, write its name and its arguments (a JSON object) like this, and nothing else:\n" DS_CALLS_BEGIN
    DS_CALL_BEGIN "function" DS_SEP "the function's name\n```json\n{\"an argument\": \"its value\"}\n```" DS_CALL_END DS_CALLS_END
    "\nWhen no tool is needed, answer in plain text.";

void tools_messages_free(hai_chat_message *m, char **owned, size_t n_owned) {
    for (size_t i = 0; i < n_owned; i++) free(owned[i]);
    free(owned);
    free(m);
}

/* "<tool_call>\n{"name": N, "arguments": A}\n</tool_call>" for each call of an OpenAI tool_calls array. */
static char *calls_text(const char *tool_calls, const char *content) {
    cJSON *calls = cJSON_Parse(tool_calls), *c;
    hai_text b = {0};
    text_puts(&b, content);
    cJSON_ArrayForEach(c, calls) {
        cJSON *f = cJSON_GetObjectItemCaseSensitive(c, "function");
        cJSON *name = cJSON_GetObjectItemCaseSensitive(f, "name"), *args = cJSON_GetObjectItemCaseSensitive(f, "arguments");
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "name", cJSON_Duplicate(name, false));
        cJSON *a = cJSON_IsString(args) ? cJSON_Parse(args->valuestring) : NULL;
        cJSON_AddItemToObject(o, "arguments", a ? a : cJSON_Duplicate(args, true));
        char *j = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (!j) b.oom = true;
        text_puts(&b, b.n ? "\n" HERMES_OPEN "\n" : HERMES_OPEN "\n");
        text_puts(&b, j ? j : "");
        text_puts(&b, "\n" HERMES_CLOSE);
        free(j);
    }
    cJSON_Delete(calls);
    return text_take(&b); /* NULL when memory ran out */
}

hai_status tools_prompt_messages(tool_syntax syn, const char *tools_json, const hai_chat_message *msgs, size_t n, hai_chat_message **out,
                                 size_t *n_out, char ***owned, size_t *n_owned, hai_error *err) {
    *out = NULL, *owned = NULL, *n_out = *n_owned = 0;
    hai_chat_message *m = calloc(n + 1, sizeof *m);
    char **own = calloc(n + 1, sizeof *own);
    size_t no = 0;
    if (!m || !own) goto nomem;
    size_t k = 0, i = 0;
    if (!tools_json) goto history;
    /* the system message: the tools, then the app's own system text */
    cJSON *tools = cJSON_Parse(tools_json), *t;
    hai_text b = {0};
    text_puts(&b, generic_intro);
    bool first = true;
    cJSON_ArrayForEach(t, tools) {
        cJSON *f = cJSON_GetObjectItemCaseSensitive(t, "function");
        char *j = cJSON_PrintUnformatted(f ? f : t);
        if (!j) b.oom = true;
        if (!first) text_puts(&b, "\n");
        text_puts(&b, j ? j : "");
        free(j);
        first = false;
    }
    cJSON_Delete(tools);
    text_puts(&b, syn == TOOLS_DEEPSEEK ? deepseek_how : generic_how);
    if (n && !strcmp(msgs[0].role, "system")) {
        text_puts(&b, "\n\n");
        text_puts(&b, msgs[0].content);
        i = 1;
    }
    if (b.oom) {
        free(b.p);
        goto nomem;
    }
    own[no++] = b.p;
    m[k++] = (hai_chat_message){.role = "system", .content = b.p};
history:
    for (; i < n; i++) {
        hai_chat_message x = msgs[i];
        /* other syntaxes' templates write calls and results themselves; they only cannot show the tools */
        if (syn == TOOLS_GENERIC && x.tool_calls) {
            char *txt = calls_text(x.tool_calls, x.content);
            if (!txt) goto nomem;
            own[no++] = txt;
            x = (hai_chat_message){.role = "assistant", .content = txt};
        } else if (syn == TOOLS_GENERIC && !strcmp(x.role, "tool")) {
            hai_text r = {0};
            text_puts(&r, "<tool_response>\n");
            text_puts(&r, x.content);
            text_puts(&r, "\n</tool_response>");
            char *txt = text_take(&r);
            if (!txt) goto nomem;
            own[no++] = txt;
            x = (hai_chat_message){.role = "user", .content = txt};
        }
        m[k++] = x;
    }
    *out = m, *n_out = k, *owned = own, *n_owned = no;
    return HAI_OK;
nomem:
    tools_messages_free(m, own, no);
    return hai_fail(err, HAI_ERR_NOMEM, "tools: out of memory");
}

/* ---- the parse --------------------------------------------------------------------------------- */

enum { SC_OK, SC_MORE, SC_BAD };

static bool is_ws(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

static size_t skip_ws(const char *s, size_t n, size_t i) {
    while (i < n && is_ws(s[i])) i++;
    return i;
}

/* s[i..n) is a proper prefix of lit (the text ends before lit could be ruled out). */
static bool prefix_of(const char *s, size_t n, size_t i, const char *lit) {
    size_t l = strlen(lit);
    return n - i < l && !memcmp(s + i, lit, n - i);
}

static bool at(const char *s, size_t n, size_t i, const char *lit) {
    size_t l = strlen(lit);
    return n - i >= l && !memcmp(s + i, lit, l);
}

/* The scanners below leave *i past what they matched (SC_OK), or at the byte that ruled it out
 * (SC_BAD); SC_MORE: the text ended first. */

/* A JSON string at s[*i] == '"'. */
static int scan_string(const char *s, size_t n, size_t *i) {
    size_t k = *i + 1;
    while (k < n) {
        if (s[k] == '\\') k += 2;
        else if (s[k] == '"') {
            *i = k + 1;
            return SC_OK;
        } else if ((unsigned char)s[k] < 0x20) {
            *i = k;
            return SC_BAD;
        } else k++;
    }
    return SC_MORE;
}

/* A JSON value at s[*i]. Objects and arrays are matched by their brackets (the arguments are
 * checked by a real JSON parser once whole); numbers and words end at a delimiter. */
static int scan_value(const char *s, size_t n, size_t *i) {
    size_t k = *i;
    if (k >= n) return SC_MORE;
    if (s[k] == '"') return scan_string(s, n, i);
    if (s[k] == '{' || s[k] == '[') {
        char stack[128];
        int depth = 0;
        while (k < n) {
            char c = s[k];
            if (c == '"') {
                size_t j = k;
                int r = scan_string(s, n, &j);
                if (r == SC_BAD) *i = j;
                if (r != SC_OK) return r;
                k = j;
                continue;
            }
            if (c == '{' || c == '[') {
                if (depth == (int)sizeof stack) return *i = k, SC_BAD;
                stack[depth++] = c == '{' ? '}' : ']';
            } else if (c == '}' || c == ']') {
                if (!depth || stack[depth - 1] != c) return *i = k, SC_BAD;
                if (--depth == 0) {
                    *i = k + 1;
                    return SC_OK;
                }
            }
            k++;
        }
        return SC_MORE;
    }
    size_t st = k;
    while (k < n && s[k] && (strchr("+-.eE", s[k]) || (s[k] >= '0' && s[k] <= '9') || (s[k] >= 'a' && s[k] <= 'z'))) k++;
    if (k == n) return SC_MORE;
    *i = k;
    return k == st ? SC_BAD : SC_OK;
}

typedef struct span {
    size_t a, b;
    bool set, done;
} span;

/* A call object {"name": "N", "arguments"|"parameters": V, ...} at s[*i] (members in any order):
 * the name's and the arguments' spans as far as written (arguments that went wrong: up to where). */
static int scan_call(const char *s, size_t n, size_t *i, span *name, span *args) {
    *name = *args = (span){0};
    size_t k = skip_ws(s, n, *i);
    if (k >= n) return SC_MORE;
    if (s[k] != '{') return *i = k, SC_BAD;
    k++;
    for (bool first = true;; first = false) {
        k = skip_ws(s, n, k);
        if (k >= n) return SC_MORE;
        if (s[k] != '"' || (s[k] == '}' && first)) return *i = k, SC_BAD; /* a call has members, each a key */
        size_t ks = k;
        int r = scan_string(s, n, &k);
        if (r != SC_OK) return *i = k, r;
        size_t kl = k - ks - 2;
        bool is_name = kl == 4 && !memcmp(s + ks + 1, "name", 4);
        bool is_args = (kl == 9 && !memcmp(s + ks + 1, "arguments", 9)) || (kl == 10 && !memcmp(s + ks + 1, "parameters", 10));
        /* a stream has sent the first name and arguments already: a key written again ends the call */
        if ((is_name && name->set) || (is_args && args->set)) return *i = ks, SC_BAD;
        k = skip_ws(s, n, k);
        if (k >= n) return SC_MORE;
        if (s[k] != ':') return *i = k, SC_BAD;
        k = skip_ws(s, n, k + 1);
        if (k >= n) return SC_MORE;
        size_t vs = k;
        if (is_name && s[k] != '"') return *i = k, SC_BAD;
        r = scan_value(s, n, &k);
        if (is_name && r == SC_OK) *name = (span){vs, k, true, true};
        if (is_args) *args = (span){vs, r == SC_MORE ? n : k, true, r == SC_OK};
        if (r != SC_OK) return *i = k, r;
        k = skip_ws(s, n, k);
        if (k >= n) return SC_MORE;
        if (s[k] == ',') {
            k++;
            continue;
        }
        if (s[k] != '}' || !name->set || !args->set) return *i = k, SC_BAD;
        *i = k + 1;
        return SC_OK;
    }
}

typedef struct pout {
    hai_text content, reasoning;
    chat_call *calls;
    size_t n_calls, cap_calls;
    bool failed;
} pout;

static void put_n(hai_text *b, const char *s, size_t n) { text_put(b, s, n); }

/* A call from the spans: the name decoded from its JSON string, the arguments as written. */
static void add_call(pout *o, const char *s, const char *name, size_t name_len, const span *args) {
    if (o->n_calls == o->cap_calls) {
        size_t cap = o->cap_calls ? o->cap_calls * 2 : 4;
        chat_call *c = realloc(o->calls, cap * sizeof *c);
        if (!c) {
            o->failed = true;
            return;
        }
        o->calls = c, o->cap_calls = cap;
    }
    chat_call *c = &o->calls[o->n_calls];
    *c = (chat_call){0};
    c->name = malloc(name_len + 1);
    size_t al = args->set ? args->b - args->a : 0;
    c->args = malloc(al + 1);
    if (!c->name || !c->args) {
        free(c->name), free(c->args);
        o->failed = true;
        return;
    }
    memcpy(c->name, name, name_len);
    c->name[name_len] = 0;
    if (al) memcpy(c->args, s + args->a, al);
    c->args[al] = 0;
    c->args_len = al;
    c->args_done = args->set && args->done;
    o->n_calls++;
}

static void add_json_call(pout *o, const char *s, const span *name, const span *args) {
    char *lit = malloc(name->b - name->a + 1);
    if (!lit) {
        o->failed = true;
        return;
    }
    memcpy(lit, s + name->a, name->b - name->a);
    lit[name->b - name->a] = 0;
    cJSON *v = cJSON_Parse(lit);
    if (cJSON_IsString(v)) add_call(o, s, v->valuestring, strlen(v->valuestring), args);
    else add_call(o, s, lit + 1, strlen(lit) - 2, args); /* an escape JSON does not know: the name as written */
    cJSON_Delete(v);
    free(lit);
}

/* Content up to the end, holding back (partial) a tail that could begin any of the markers. */
static void content_tail(pout *o, const char *s, size_t i, size_t n, bool partial, const char *const *markers) {
    size_t end = n;
    if (partial)
        for (size_t k = i; k < n; k++) {
            bool hold = false;
            for (const char *const *m = markers; *m && !hold; m++) hold = prefix_of(s, n, k, *m);
            if (hold) {
                end = k;
                break;
            }
        }
    put_n(&o->content, s + i, end - i);
}

/* Hermes / generic and Mistral: content, then calls after their marker. A marker the calls do
 * not follow is content. */
static void parse_marked(pout *o, const char *s, size_t n, bool partial, tool_syntax syn) {
    const char *open = syn == TOOLS_MISTRAL ? MISTRAL_OPEN : HERMES_OPEN;
    const char *const markers[] = {open, NULL};
    size_t i = 0;
    for (;;) {
        const char *hit = memmem(s + i, n - i, open, strlen(open));
        if (!hit) {
            content_tail(o, s, i, n, partial, markers);
            return;
        }
        size_t m = (size_t)(hit - s), k = m + strlen(open);
        size_t calls0 = o->n_calls;
        bool list = syn == TOOLS_MISTRAL, ok = true;
        if (list) {
            k = skip_ws(s, n, k);
            if (k >= n) ok = false;
            else if (s[k] != '[') ok = false, list = false;
            else k++;
        }
        int r = SC_MORE;
        for (; ok;) {
            span name, args;
            size_t j = k;
            r = scan_call(s, n, &j, &name, &args);
            /* a call whose name has been seen stays a call (a stream has sent it): what goes wrong
             * after that ends it, and the text from there is read on */
            if (name.set) add_json_call(o, s, &name, &args);
            if (r == SC_BAD && name.set) k = j;
            if (r != SC_OK) break;
            k = skip_ws(s, n, j);
            if (list) {
                if (k < n && s[k] == ',') {
                    k++;
                    continue;
                }
                if (k < n && s[k] == ']') k++;
                else if (k < n) r = SC_BAD;
                else r = SC_MORE;
                break;
            }
            if (at(s, n, k, HERMES_CLOSE)) k += strlen(HERMES_CLOSE);
            else if (prefix_of(s, n, k, HERMES_CLOSE) && partial) {
                r = SC_MORE;
                break;
            }
            size_t next = skip_ws(s, n, k);
            if (at(s, n, next, HERMES_OPEN)) { /* the next call */
                k = next + strlen(HERMES_OPEN);
                continue;
            }
            if (partial && next == n) r = SC_MORE; /* another call may follow */
            break;
        }
        if (!ok) r = k >= n ? SC_MORE : SC_BAD;
        if (r == SC_BAD && o->n_calls == calls0) { /* not a call after all: the marker is text */
            put_n(&o->content, s + i, m + strlen(open) - i);
            i = m + strlen(open);
            continue;
        }
        put_n(&o->content, s + i, m - i);
        if (r == SC_MORE) {
            if (!partial && o->n_calls == calls0) put_n(&o->content, s + m, n - m); /* cut before a name: text */
            return;
        }
        i = skip_ws(s, n, k); /* calls, then on: content or more calls */
    }
}

static bool ident_char(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'; }

/* A Python literal at s[*i] (a string in either quotes, a number, True/False/None) as JSON text
 * appended to b; false when it is none of those (or the text ends first: *more). */
static bool py_literal(hai_text *b, const char *s, size_t n, size_t *i, bool *more) {
    size_t k = *i;
    *more = false;
    if (k < n && (s[k] == '"' || s[k] == '\'')) {
        char q = s[k++];
        hai_text v = {0};
        while (k < n && s[k] != q) {
            char c[3] = {s[k], 0, 0};
            if (s[k] == '\\' && k + 1 < n) c[1] = s[++k];
            else if (s[k] == '\\') break;
            if (c[0] == '\\') { /* the escapes JSON shares; others as the character itself */
                char e = c[1];
                c[0] = e == 'n' ? '\n' : e == 't' ? '\t' : e;
                c[1] = 0;
            }
            text_puts(&v, c);
            k++;
        }
        if (k >= n) {
            free(v.p);
            *more = true;
            return false;
        }
        cJSON *str = cJSON_CreateString(v.p ? v.p : "");
        char *j = str ? cJSON_PrintUnformatted(str) : NULL;
        if (j) text_puts(b, j);
        else b->oom = true;
        free(j), free(v.p);
        cJSON_Delete(str);
        *i = k + 1;
        return true;
    }
    static const char *const words[][2] = {{"True", "true"}, {"False", "false"}, {"None", "null"}};
    for (int w = 0; w < 3; w++) {
        size_t wl = strlen(words[w][0]);
        if (prefix_of(s, n, k, words[w][0]) || (at(s, n, k, words[w][0]) && k + wl == n)) { /* the word may go on */
            *more = true;
            return false;
        }
        if (at(s, n, k, words[w][0]) && !ident_char(s[k + wl])) {
            text_puts(b, words[w][1]);
            *i = k + wl;
            return true;
        }
    }
    size_t st = k;
    if (k < n && (s[k] == '-' || s[k] == '+')) k++;
    while (k < n && ((s[k] >= '0' && s[k] <= '9') || s[k] == '.' || s[k] == 'e' || s[k] == 'E')) k++;
    if (k == n) *more = true;
    if (k == st || k == n) return false;
    char num[64];
    snprintf(num, sizeof num, "%.*s", (int)(k - st < 63 ? k - st : 63), s + st);
    char *end;
    double d = strtod(num, &end);
    if (*end || d != d) return false;
    text_puts(b, num[0] == '+' ? num + 1 : num);
    *i = k;
    return true;
}

/* Llama 3.1's built-in tool form after <|python_tag|>: NAME.call(key=value, ...) with Python
 * literals, as a call whose arguments are the JSON object of the keys. The arguments appear whole
 * when the call closes. SC_OK (with *end past it), SC_MORE, SC_BAD. */
static int parse_py_call(pout *o, const char *s, size_t n, size_t k, size_t *end) {
    size_t ns = k;
    while (k < n && ident_char(s[k])) k++;
    if (k == n) return SC_MORE;
    size_t ne = k;
    if (ne == ns || !at(s, n, k, ".call(")) return prefix_of(s, n, k, ".call(") ? SC_MORE : SC_BAD;
    k += 6;
    hai_text args = {0};
    text_puts(&args, "{");
    int r = SC_MORE;
    for (bool first = true; k < n; first = false) {
        k = skip_ws(s, n, k);
        if (k < n && s[k] == ')') {
            r = SC_OK;
            k++;
            break;
        }
        if (!first) {
            if (k >= n) break;
            if (s[k] != ',') {
                r = SC_BAD;
                break;
            }
            k = skip_ws(s, n, k + 1);
        }
        size_t ks = k;
        while (k < n && ident_char(s[k])) k++;
        size_t ke = k;
        k = skip_ws(s, n, k);
        if (k >= n) break;
        if (ke == ks || s[k] != '=') {
            r = SC_BAD;
            break;
        }
        k = skip_ws(s, n, k + 1);
        char key[80];
        snprintf(key, sizeof key, "%s\"%.*s\": ", first ? "" : ", ", (int)(ke - ks < 64 ? ke - ks : 64), s + ks);
        text_puts(&args, key);
        bool more;
        if (!py_literal(&args, s, n, &k, &more)) {
            r = more ? SC_MORE : SC_BAD;
            break;
        }
    }
    text_puts(&args, "}");
    if (args.oom) o->failed = true;
    /* the name and "(" are written: a call (a stream may have sent it); arguments that go wrong
     * leave it without them, and the text from there is content */
    span whole = {0, args.n, true, true}, none = {0};
    add_call(o, r == SC_OK ? args.p : "", s + ns, ne - ns, r == SC_OK ? &whole : &none);
    free(args.p);
    *end = k;
    return r == SC_BAD ? SC_OK : r;
}

/* Llama 3: a call is the whole output: {"name": .., "parameters": ..}, maybe after <|python_tag|>,
 * or a built-in tool's NAME.call(...) after <|python_tag|>. */
static void parse_llama(pout *o, const char *s, size_t n, bool partial) {
    size_t k = skip_ws(s, n, 0);
    if (partial && prefix_of(s, n, k, LLAMA_TAG)) return;
    if (at(s, n, k, LLAMA_TAG)) {
        k = skip_ws(s, n, k + strlen(LLAMA_TAG));
        if (k < n && s[k] != '{') {
            size_t end = k;
            int r = parse_py_call(o, s, n, k, &end);
            if (r == SC_OK) put_n(&o->content, s + skip_ws(s, n, end), n - skip_ws(s, n, end));
            if (r != SC_BAD) return;
        }
        if (partial && k == n) return;
    }
    if (k < n && s[k] == '{') {
        span name, args;
        size_t j = k;
        int r = scan_call(s, n, &j, &name, &args);
        if (name.set) { /* a call (a stream may have sent it); what follows it is content */
            add_json_call(o, s, &name, &args);
            if (r != SC_MORE) put_n(&o->content, s + skip_ws(s, n, j), n - skip_ws(s, n, j));
            return;
        }
        if (r == SC_MORE && partial) return; /* it may still become one */
    }
    if (partial && k == n) return;
    put_n(&o->content, s, n);
}

/* DeepSeek: <｜tool▁calls▁begin｜>(<｜tool▁call▁begin｜>TYPE<｜tool▁sep｜>NAME\n```json\nARGS\n```<｜tool▁call▁end｜>)+<｜tool▁calls▁end｜> */
static void parse_deepseek(pout *o, const char *s, size_t n, bool partial) {
    static const char *const markers[] = {DS_CALLS_BEGIN, DS_CALL_BEGIN, NULL};
    /* the first marker in the text: the calls' (R1 distills may skip the outer one); which one
     * must not depend on text further on, or a stream's prefix would read as another parse */
    const char *hit = memmem(s, n, DS_CALLS_BEGIN, strlen(DS_CALLS_BEGIN)), *one = memmem(s, n, DS_CALL_BEGIN, strlen(DS_CALL_BEGIN));
    size_t m = hit ? (size_t)(hit - s) : n, k = hit ? m + strlen(DS_CALLS_BEGIN) : n;
    if (one && (!hit || one < hit)) hit = one, m = k = (size_t)(one - s);
    if (!hit) {
        content_tail(o, s, 0, n, partial, markers);
        return;
    }
    put_n(&o->content, s, m);
    for (;;) {
        k = skip_ws(s, n, k);
        if (!at(s, n, k, DS_CALL_BEGIN)) break;
        const char *sep = memmem(s + k, n - k, DS_SEP, strlen(DS_SEP));
        if (!sep) break;
        size_t ns = (size_t)(sep - s) + strlen(DS_SEP), ne = ns;
        while (ne < n && s[ne] != '\n') ne++;
        if (ne >= n) break; /* the name is not whole yet */
        size_t a = ne + 1;
        if (prefix_of(s, n, a, "```json")) { /* the name is whole, the arguments not begun */
            span none = {0};
            add_call(o, s, s + ns, ne - ns, &none);
            return;
        }
        if (at(s, n, a, "```json")) a += 7;
        else if (at(s, n, a, "```")) a += 3;
        a = skip_ws(s, n, a);
        size_t j = a;
        int r = scan_value(s, n, &j);
        span args = {a, r == SC_MORE ? n : j, a < n, r == SC_OK}; /* wrong arguments end the call where they went wrong */
        add_call(o, s, s + ns, ne - ns, &args);
        if (r == SC_MORE) return;
        if (r == SC_BAD) {
            k = j;
            break;
        }
        k = skip_ws(s, n, j);
        if (at(s, n, k, "```")) k += 3;
        k = skip_ws(s, n, k);
        if (at(s, n, k, DS_CALL_END)) k += strlen(DS_CALL_END);
    }
    k = skip_ws(s, n, k);
    if (at(s, n, k, DS_CALLS_END)) k += strlen(DS_CALLS_END);
    if (k < n && !partial) put_n(&o->content, s + skip_ws(s, n, k), n - skip_ws(s, n, k));
}

void chat_out_free(chat_out *o) {
    if (!o) return;
    free(o->content), free(o->reasoning);
    for (size_t i = 0; i < o->n_calls; i++) free(o->calls[i].name), free(o->calls[i].args);
    free(o->calls);
    memset(o, 0, sizeof *o);
}

hai_status chat_parse(tool_syntax syn, bool tools, bool in_think, const char *s, size_t n, bool partial, chat_out *out,
                      hai_error *err) {
    memset(out, 0, sizeof *out);
    pout o = {0};
    size_t i = 0, k = skip_ws(s, n, 0);
    bool think = in_think || at(s, n, k, "<think>");
    if (!in_think && partial && k < n && prefix_of(s, n, k, "<think>")) think = true, n = k; /* may be opening one */
    if (think) {
        size_t r0 = in_think ? 0 : k + strlen("<think>");
        if (r0 > n) r0 = n;
        const char *close = memmem(s + r0, n - r0, "</think>", 8);
        size_t r1 = close ? (size_t)(close - s) : n;
        if (!close && partial) /* hold back what may begin the closing tag, and white space that may end the reasoning */
            for (size_t j = r0; j < n; j++)
                if (prefix_of(s, n, j, "</think>")) {
                    r1 = j;
                    break;
                }
        size_t a = skip_ws(s, r1, r0), b = r1;
        if (close || partial)
            while (b > a && is_ws(s[b - 1])) b--;
        put_n(&o.reasoning, s + a, b - a);
        i = close ? skip_ws(s, n, (size_t)(close - s) + 8) : n;
        if (!close && partial) i = n;
    }
    if (i < n || !partial) {
        if (!tools) put_n(&o.content, s + i, n - i);
        else if (syn == TOOLS_LLAMA3) parse_llama(&o, s + i, n - i, partial);
        else if (syn == TOOLS_DEEPSEEK) parse_deepseek(&o, s + i, n - i, partial);
        else parse_marked(&o, s + i, n - i, partial, syn);
    }
    o.failed |= o.content.oom || o.reasoning.oom;
    out->content = o.content.p ? o.content.p : strdup("");
    out->content_len = o.content.n;
    out->reasoning = o.reasoning.p ? o.reasoning.p : strdup("");
    out->reasoning_len = o.reasoning.n;
    out->calls = o.calls;
    out->n_calls = o.n_calls;
    if (o.failed || !out->content || !out->reasoning) {
        chat_out_free(out);
        return hai_fail(err, HAI_ERR_NOMEM, "chat: out of memory parsing the output");
    }
    return HAI_OK;
}

bool chat_call_broken(tool_syntax syn, bool in_think, bool forced, const char *text, size_t len) {
    chat_out o;
    if (chat_parse(syn, true, in_think, text, len, false, &o, NULL)) return true;
    bool broken = forced && !o.n_calls;
    for (size_t i = 0; i < o.n_calls; i++) broken |= !o.calls[i].args_done; /* cut off */
    static const char *const markers[] = {HERMES_OPEN, MISTRAL_OPEN, DS_CALLS_BEGIN, DS_CALL_BEGIN, LLAMA_TAG, NULL};
    for (int i = 0; markers[i]; i++) broken |= memmem(o.content, o.content_len, markers[i], strlen(markers[i])) != NULL;
    broken |= memmem(o.content, o.content_len, "\"name\"", 6) &&
              (memmem(o.content, o.content_len, "\"arguments\"", 11) || memmem(o.content, o.content_len, "\"parameters\"", 12));
    chat_out_free(&o);
    return broken;
}
