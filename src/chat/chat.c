/* Chat formatting: each family's rendering, written out by hand from its Jinja template, with the
 * template-dependent details (default system prompt, date header, spacing) read off the
 * template text. Template text is only searched, never executed. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chat.h"
#include "base/error.h"
#include "base/text.h"
#include "base/unicode.h"

typedef enum family {
    F_CHATML, F_QWEN3, F_LLAMA3, F_LLAMA31, F_LLAMA2, F_MISTRAL, F_MISTRAL_TEKKEN, F_PHI3, F_GEMMA, F_DEEPSEEK_R1,
    F_COUNT
} family;

static const char *const family_names[F_COUNT] = {"chatml", "qwen3",          "llama3", "llama3.1", "llama2",
                                                  "mistral", "mistral-tekken", "phi3",   "gemma",    "deepseek-r1"};

/* What a template decides beyond its family. */
typedef struct style {
    family f;
    char *default_system;   /* chatml: system prompt used when the conversation has none */
    bool date_today;        /* llama3.1: the template takes today's date (strftime_now) */
    bool always_gen_prompt; /* llama3: the template appends the assistant header unconditionally */
    bool r1_user_eos;       /* deepseek-r1 (llama.cpp's variant): user turns end with EOS */
} style;

/* ---- a string builder ---------------------------------------------------------------------- */

/* The text, and which of its bytes came from the caller's data (message contents, roles) rather
 * than from the template: those are tokenized as plain text, so "<|im_end|>" typed by a user
 * cannot close their turn (chat.h). */
typedef struct sb {
    hai_text t;
    size_t (*data)[2]; /* [start, end) ranges, in order, not touching */
    size_t n_data, cap_data;
} sb;

static void put(sb *b, const char *s, size_t n) { text_put(&b->t, s, n); }

static void puts_(sb *b, const char *s) { put(b, s, strlen(s)); }

static void mark_data(sb *b, size_t start, size_t end) {
    if (b->t.oom || start >= end) return;
    if (b->n_data && b->data[b->n_data - 1][1] == start) { /* continues the last range */
        b->data[b->n_data - 1][1] = end;
        return;
    }
    if (b->n_data == b->cap_data) {
        size_t cap = b->cap_data ? 2 * b->cap_data : 16;
        void *d = realloc(b->data, cap * sizeof *b->data);
        if (!d) {
            b->t.oom = true;
            return;
        }
        b->data = d;
        b->cap_data = cap;
    }
    b->data[b->n_data][0] = start;
    b->data[b->n_data][1] = end;
    b->n_data++;
}

/* The caller's text: written, and marked as data. */
static void put_data(sb *b, const char *s, size_t n) {
    size_t at = b->t.n;
    put(b, s, n);
    mark_data(b, at, b->t.n);
}

static void puts_data(sb *b, const char *s) { put_data(b, s, strlen(s)); }

static void sb_free(sb *b) {
    text_free(&b->t);
    free(b->data);
}

/* ---- Python string semantics the templates rely on ------------------------------------------- */

/* Python's str.isspace() for one code point. */
static bool py_space(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* The Jinja `trim` filter / str.strip(): the bounds of s[0, n) without whitespace at either end. */
static void trim_bounds(const char *s, size_t n, size_t *start_, size_t *end_) {
    size_t start = 0, end = n;
    while (start < n) {
        uint32_t cp;
        int l = hai_utf8_valid_len((const unsigned char *)s + start, n - start, &cp);
        if (!l || !py_space(cp)) break;
        start += (size_t)l;
    }
    /* from the right: step back over whole characters */
    while (end > start) {
        size_t k = end - 1;
        while (k > start && ((unsigned char)s[k] & 0xC0) == 0x80) k--;
        uint32_t cp;
        int l = hai_utf8_valid_len((const unsigned char *)s + k, end - k, &cp);
        if (!l || (size_t)l != end - k || !py_space(cp)) break;
        end = k;
    }
    *start_ = start;
    *end_ = end;
}

/* The caller's text, trimmed. */
static void put_trimmed(sb *b, const char *s) {
    size_t start, end;
    trim_bounds(s, strlen(s), &start, &end);
    put_data(b, s + start, end - start);
}

/* A part built of template text and data (Llama 2's system block with the first message),
 * trimmed as one string: its data ranges come along, clipped to what is kept. */
static void put_trimmed_sb(sb *b, const sb *c) {
    if (c->t.oom) {
        b->t.oom = true;
        return;
    }
    if (!c->t.p) return;
    size_t start, end, at = b->t.n;
    trim_bounds(c->t.p, c->t.n, &start, &end);
    put(b, c->t.p + start, end - start);
    for (size_t i = 0; i < c->n_data; i++) {
        size_t a = c->data[i][0] > start ? c->data[i][0] : start, e = c->data[i][1] < end ? c->data[i][1] : end;
        if (a < e) mark_data(b, at + a - start, at + e - start);
    }
}

/* s with the newlines at its left (lstrip('\n')) / right (rstrip('\n')) removed: [*a, *e). */
static void strip_nl(const char **a, const char **e, bool left, bool right) {
    while (left && *a < *e && **a == '\n') (*a)++;
    while (right && *e > *a && (*e)[-1] == '\n') (*e)--;
}

/* Last occurrence of needle in [s, e), or NULL. */
static const char *rfind(const char *s, const char *e, const char *needle) {
    size_t nl = strlen(needle);
    for (const char *p = e - nl; e - s >= (ptrdiff_t)nl && p >= s; p--)
        if (!memcmp(p, needle, nl)) return p;
    return NULL;
}

/* ---- detection -------------------------------------------------------------------------------- */

static bool has(const char *t, const char *s) { return t && strstr(t, s) != NULL; }

#define R1_USER "<\xef\xbd\x9cUser\xef\xbd\x9c>"
#define R1_ASSISTANT "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>"
#define R1_EOS "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"

static family detect(const char *t, bool *known) {
    *known = true;
    if (has(t, R1_USER)) return F_DEEPSEEK_R1;
    if (has(t, "<|start_header_id|>")) return has(t, "Cutting Knowledge Date") ? F_LLAMA31 : F_LLAMA3;
    if (has(t, "<|im_start|>")) return has(t, "<think>") ? F_QWEN3 : F_CHATML;
    if (has(t, "<start_of_turn>")) return F_GEMMA;
    if (has(t, "<|user|>") && has(t, "<|end|>")) return F_PHI3;
    if (has(t, "[INST]")) {
        if (has(t, "<<SYS>>")) return F_LLAMA2;
        return has(t, "[INST] ") ? F_MISTRAL : F_MISTRAL_TEKKEN;
    }
    *known = false;
    return F_CHATML;
}

const char *hai_chat_detect(const char *template_text, bool *known) {
    bool k;
    family f = detect(template_text, &k);
    if (known) *known = k;
    return family_names[f];
}

/* ChatML templates that put a fixed system prompt in front of conversations without one write
 * it as a literal: '<|im_start|>system\nYou are ...<|im_end|>\n'. Finds that literal. */
static char *chatml_default_system(const char *t) {
    static const char open[] = "<|im_start|>system\\n";
    for (const char *p = t ? strstr(t, open) : NULL; p; p = strstr(p + 1, open)) {
        const char *s = p + sizeof open - 1, *e = strstr(s, "<|im_end|>");
        if (!e || e <= s) continue;
        size_t span = (size_t)(e - s);
        bool literal = true;
        for (const char *q = s; q < e; q++)
            if (*q == '\'' || *q == '"' || *q == '{' || *q == '}' || *q == '+') literal = false;
        if (!literal) continue;
        /* unescape the template's string escapes (\n, \', \\) */
        char *out = span < (1u << 20) ? malloc(span + 1) : NULL, *w = out;
        if (!out) return NULL;
        for (const char *q = s; q < e; q++) {
            if (*q == '\\' && q + 1 < e) {
                q++;
                *w++ = *q == 'n' ? '\n' : *q == 't' ? '\t' : *q;
            } else {
                *w++ = *q;
            }
        }
        *w = '\0';
        return out;
    }
    return NULL;
}

static hai_status resolve_style(const hai_chat_params *p, style *st, hai_error *err) {
    memset(st, 0, sizeof *st);
    bool known;
    if (p->format) {
        int f = -1;
        for (int i = 0; i < F_COUNT; i++)
            if (!strcmp(p->format, family_names[i])) f = i;
        if (f < 0)
            return hai_fail(err, HAI_ERR_UNSUPPORTED,
                            "chat: unknown format '%s' (known: chatml, qwen3, llama3, llama3.1, llama2, mistral, "
                            "mistral-tekken, phi3, gemma, deepseek-r1)",
                            p->format);
        st->f = (family)f;
    } else {
        st->f = detect(p->template_text, &known);
    }
    const char *t = p->template_text;
    if (st->f == F_CHATML && t) st->default_system = chatml_default_system(t);
    st->date_today = has(t, "strftime_now");
    st->always_gen_prompt = st->f == F_LLAMA3 && t && !has(t, "add_generation_prompt");
    st->r1_user_eos = has(t, "'" R1_USER "' + message['content'] + '" R1_EOS "'");
    return HAI_OK;
}

/* ---- the families ----------------------------------------------------------------------------- */

static bool is(const hai_chat_message *m, const char *role) { return strcmp(m->role, role) == 0; }

/* content_is_data: false only for the template's own default system prompt */
static void chatml_turn(sb *b, const char *role, const char *content, bool content_is_data) {
    puts_(b, "<|im_start|>");
    puts_data(b, role);
    puts_(b, "\n");
    if (content_is_data) puts_data(b, content);
    else puts_(b, content);
    puts_(b, "<|im_end|>\n");
}

static void fmt_chatml(sb *b, const style *st, const hai_chat_message *m, size_t n, bool agp) {
    if (n && is(&m[0], "system")) chatml_turn(b, "system", m[0].content, true);
    else if (st->default_system) chatml_turn(b, "system", st->default_system, false);
    for (size_t i = 0; i < n; i++)
        if (!(i == 0 && is(&m[0], "system"))) chatml_turn(b, m[i].role, m[i].content, true);
    if (agp) puts_(b, "<|im_start|>assistant\n");
}

static void fmt_qwen3(sb *b, const hai_chat_message *m, size_t n, bool agp, bool no_think) {
    if (n && is(&m[0], "system")) chatml_turn(b, "system", m[0].content, true);
    size_t last_query = n ? n - 1 : 0;
    for (size_t k = n; k-- > 0;) { /* the last user turn that is not a tool response */
        size_t cl = strlen(m[k].content);
        bool tool_resp = cl >= 33 && !strncmp(m[k].content, "<tool_response>", 15) &&
                         !strcmp(m[k].content + cl - 16, "</tool_response>");
        if (is(&m[k], "user") && !tool_resp) {
            last_query = k;
            break;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (is(&m[i], "user") || (is(&m[i], "system") && i > 0)) {
            chatml_turn(b, m[i].role, m[i].content, true);
        } else if (is(&m[i], "assistant")) {
            const char *c = m[i].content, *ce = c + strlen(c);
            const char *content = c, *content_end = ce, *reason = "", *reason_end = reason;
            const char *close = strstr(c, "</think>");
            if (close) {
                content = rfind(c, ce, "</think>") + 8; /* split('</think>')[-1].lstrip('\n') */
                strip_nl(&content, &content_end, true, false);
                reason = c; /* split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') */
                reason_end = close;
                strip_nl(&reason, &reason_end, false, true);
                const char *open = rfind(reason, reason_end, "<think>");
                if (open) reason = open + 7;
                strip_nl(&reason, &reason_end, true, false);
            }
            puts_(b, "<|im_start|>assistant\n");
            if (i > last_query && (i + 1 == n || reason_end > reason)) {
                strip_nl(&reason, &reason_end, true, true);
                puts_(b, "<think>\n");
                put_data(b, reason, (size_t)(reason_end - reason));
                puts_(b, "\n</think>\n\n");
                strip_nl(&content, &content_end, true, false);
            }
            put_data(b, content, (size_t)(content_end - content));
            puts_(b, "<|im_end|>\n");
        }
    }
    if (agp) {
        puts_(b, "<|im_start|>assistant\n");
        if (no_think) puts_(b, "<think>\n\n</think>\n\n");
    }
}

static void llama3_turn(sb *b, const char *role, const char *content) {
    puts_(b, "<|start_header_id|>");
    puts_data(b, role);
    puts_(b, "<|end_header_id|>\n\n");
    put_trimmed(b, content);
    puts_(b, "<|eot_id|>");
}

static void fmt_llama3(sb *b, const style *st, const hai_chat_message *m, size_t n, bool agp, const char *bos) {
    for (size_t i = 0; i < n; i++) {
        if (i == 0) puts_(b, bos);
        llama3_turn(b, m[i].role, m[i].content);
    }
    if (agp || st->always_gen_prompt) puts_(b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

static void fmt_llama31(sb *b, const style *st, const hai_chat_message *m, size_t n, bool agp, const char *bos,
                        const char *date) {
    char today[32];
    if (!date && st->date_today) {
        time_t now = time(NULL);
        struct tm tm;
        static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
        localtime_r(&now, &tm);
        snprintf(today, sizeof today, "%02d %s %d", tm.tm_mday, mon[tm.tm_mon], 1900 + tm.tm_year);
        date = today;
    }
    puts_(b, bos);
    puts_(b, "<|start_header_id|>system<|end_header_id|>\n\n");
    puts_(b, "Cutting Knowledge Date: December 2023\nToday Date: ");
    if (date) puts_data(b, date);
    else puts_(b, "26 Jul 2024");
    puts_(b, "\n\n");
    size_t i = 0;
    if (n && is(&m[0], "system")) {
        put_trimmed(b, m[0].content);
        i = 1;
    }
    puts_(b, "<|eot_id|>");
    for (; i < n; i++) llama3_turn(b, m[i].role, m[i].content);
    if (agp) puts_(b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

static void fmt_llama2(sb *b, const hai_chat_message *m, size_t n, const char *bos, const char *eos) {
    size_t i = 0;
    const char *sys = NULL;
    if (n && is(&m[0], "system")) {
        sys = m[0].content;
        i = 1;
    }
    for (size_t k = i; k < n; k++) {
        sb c = {0};
        if (k == i && sys) {
            puts_(&c, "<<SYS>>\n");
            puts_data(&c, sys);
            puts_(&c, "\n<</SYS>>\n\n");
        }
        puts_data(&c, m[k].content);
        if (is(&m[k], "user")) {
            puts_(b, bos);
            puts_(b, "[INST] ");
            put_trimmed_sb(b, &c);
            puts_(b, " [/INST]");
        } else if (is(&m[k], "assistant")) {
            puts_(b, " ");
            put_trimmed_sb(b, &c);
            puts_(b, " ");
            puts_(b, eos);
        }
        sb_free(&c);
    }
}

static void fmt_mistral(sb *b, const hai_chat_message *m, size_t n, const char *bos, const char *eos, bool tekken) {
    size_t i = 0;
    const char *sys = NULL;
    if (n && is(&m[0], "system")) {
        sys = m[0].content;
        i = 1;
    }
    puts_(b, bos);
    for (size_t k = i; k < n; k++) {
        if (is(&m[k], "user")) {
            puts_(b, tekken ? "[INST]" : "[INST] ");
            /* Nemo's template gives the system prompt to the last message if it is the user's; the
             * v1 template has no system role: hai puts it before the first user message */
            if (sys && (tekken ? k + 1 == n : k == i)) {
                puts_data(b, sys);
                puts_(b, "\n\n");
            }
            puts_data(b, m[k].content);
            puts_(b, tekken ? "[/INST]" : " [/INST]");
        } else if (is(&m[k], "assistant")) {
            puts_data(b, m[k].content);
            puts_(b, eos);
        }
    }
}

static void fmt_phi3(sb *b, const hai_chat_message *m, size_t n, bool agp, const char *eos) {
    for (size_t i = 0; i < n; i++) {
        const char *tag = is(&m[i], "system") ? (*m[i].content ? "<|system|>\n" : NULL)
                          : is(&m[i], "user")      ? "<|user|>\n"
                          : is(&m[i], "assistant") ? "<|assistant|>\n"
                                                   : NULL;
        if (!tag) continue;
        puts_(b, tag);
        puts_data(b, m[i].content);
        puts_(b, "<|end|>\n");
    }
    puts_(b, agp ? "<|assistant|>\n" : eos);
}

static void fmt_gemma(sb *b, const hai_chat_message *m, size_t n, bool agp, const char *bos) {
    puts_(b, bos);
    size_t i = 0;
    const char *sys = NULL;
    if (n && is(&m[0], "system")) { /* Gemma has no system turn: it leads the first user turn */
        sys = m[0].content;
        i = 1;
    }
    for (size_t k = i; k < n; k++) {
        puts_(b, "<start_of_turn>");
        if (is(&m[k], "assistant")) puts_(b, "model");
        else puts_data(b, m[k].role);
        puts_(b, "\n");
        if (sys && k == i) {
            sb c = {0};
            puts_data(&c, sys);
            puts_(&c, "\n\n");
            puts_data(&c, m[k].content);
            put_trimmed_sb(b, &c);
            sb_free(&c);
        } else {
            put_trimmed(b, m[k].content);
        }
        puts_(b, "<end_of_turn>\n");
    }
    if (agp) puts_(b, "<start_of_turn>model\n");
}

static void fmt_deepseek_r1(sb *b, const style *st, const hai_chat_message *m, size_t n, bool agp, const char *bos) {
    const char *sys = "";
    for (size_t i = 0; i < n; i++)
        if (is(&m[i], "system")) sys = m[i].content; /* the last system message wins */
    puts_(b, bos);
    puts_data(b, sys);
    for (size_t i = 0; i < n; i++) {
        if (is(&m[i], "user")) {
            puts_(b, R1_USER);
            puts_data(b, m[i].content);
            if (st->r1_user_eos) puts_(b, R1_EOS);
        } else if (is(&m[i], "assistant")) {
            const char *c = m[i].content, *e = c + strlen(c), *after = rfind(c, e, "</think>");
            puts_(b, R1_ASSISTANT);
            puts_data(b, after ? after + 8 : c);
            puts_(b, R1_EOS);
        }
    }
    if (agp) puts_(b, R1_ASSISTANT "<think>\n");
}

/* ---- entry points ------------------------------------------------------------------------------ */

hai_chat_params hai_chat_default_params(void) { return (hai_chat_params){.add_generation_prompt = true}; }

void hai_free(void *p) { free(p); }

hai_status hai_chat_format(const hai_chat_params *p, const hai_chat_message *msgs, size_t n, char **out, size_t *len,
                           hai_error *err) {
    return chat_format_marked(p, msgs, n, out, len, NULL, NULL, err);
}

hai_status chat_format_marked(const hai_chat_params *p, const hai_chat_message *msgs, size_t n, char **out, size_t *len,
                              size_t (**data)[2], size_t *n_data, hai_error *err) {
    if (!p || !out || (!msgs && n)) return hai_fail(err, HAI_ERR_INVALID, "chat: NULL argument");
    *out = NULL;
    if (data) *data = NULL;
    if (n_data) *n_data = 0;
    bool calls = false;
    for (size_t i = 0; i < n; i++) {
        if (!msgs[i].role || !msgs[i].content) return hai_fail(err, HAI_ERR_INVALID, "chat: message %zu has no role or content", i);
        if (!msgs[i].tool_calls) continue;
        calls = true;
        cJSON *c = cJSON_Parse(msgs[i].tool_calls);
        bool array = cJSON_IsArray(c);
        cJSON_Delete(c);
        if (!array) return hai_fail(err, HAI_ERR_INVALID, "chat: message %zu: tool_calls is not a JSON array", i);
    }
    if (p->tools) {
        cJSON *t = cJSON_Parse(p->tools);
        bool array = cJSON_IsArray(t);
        cJSON_Delete(t);
        if (!array) return hai_fail(err, HAI_ERR_INVALID, "chat: tools is not a JSON array");
    }
    /* a model's template is rendered as it is; the families below are for a forced format and
     * for models without a template */
    if (p->template_text && !p->format) return chat_jinja_marked(p, msgs, n, out, len, data, n_data, err);
    if (p->tools) return hai_fail(err, HAI_ERR_UNSUPPORTED, "chat: tools need the model's chat template (a family format cannot show them)");
    if (calls) return hai_fail(err, HAI_ERR_UNSUPPORTED, "chat: tool calls in the history need the model's chat template (a family format cannot write them)");
    style st;
    hai_status s = resolve_style(p, &st, err);
    if (s) return s;
    /* families whose templates know only system/user/assistant refuse other roles */
    if (st.f != F_CHATML && st.f != F_QWEN3 && st.f != F_LLAMA3 && st.f != F_LLAMA31) {
        for (size_t i = 0; i < n; i++)
            if (!is(&msgs[i], "system") && !is(&msgs[i], "user") && !is(&msgs[i], "assistant")) {
                free(st.default_system);
                return hai_fail(err, HAI_ERR_INVALID, "chat: role '%.32s' is not supported by the %s format", msgs[i].role,
                                family_names[st.f]);
            }
    }
    const char *bos = p->bos_token ? p->bos_token : "", *eos = p->eos_token ? p->eos_token : "";
    bool agp = p->add_generation_prompt;
    sb b = {0};
    puts_(&b, ""); /* an empty conversation still yields a (possibly empty) string */
    switch (st.f) {
    case F_CHATML: fmt_chatml(&b, &st, msgs, n, agp); break;
    case F_QWEN3: fmt_qwen3(&b, msgs, n, agp, p->disable_thinking); break;
    case F_LLAMA3: fmt_llama3(&b, &st, msgs, n, agp, bos); break;
    case F_LLAMA31: fmt_llama31(&b, &st, msgs, n, agp, bos, p->date_string); break;
    case F_LLAMA2: fmt_llama2(&b, msgs, n, bos, eos); break;
    case F_MISTRAL: fmt_mistral(&b, msgs, n, bos, eos, false); break;
    case F_MISTRAL_TEKKEN: fmt_mistral(&b, msgs, n, bos, eos, true); break;
    case F_PHI3: fmt_phi3(&b, msgs, n, agp, eos); break;
    case F_GEMMA: fmt_gemma(&b, msgs, n, agp, bos); break;
    case F_DEEPSEEK_R1: fmt_deepseek_r1(&b, &st, msgs, n, agp, bos); break;
    case F_COUNT: break;
    }
    free(st.default_system);
    if (b.t.oom) {
        sb_free(&b);
        return hai_fail(err, HAI_ERR_NOMEM, "chat: out of memory");
    }
    *out = b.t.p;
    if (len) *len = b.t.n;
    if (data) *data = b.data;
    else free(b.data);
    if (n_data) *n_data = b.n_data;
    return HAI_OK;
}
