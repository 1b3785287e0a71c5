/* Parsed chat answers for the server (output.h). A stream re-parses the whole text when more has
 * come (chat_parse holds back what may still change) and sends what is new; text is whole UTF-8
 * characters and the held-back points are ASCII markers, so every delta is whole characters. */
#include "output.h"

#include <stdlib.h>
#include <string.h>

static bool grow(out_sent *s, size_t n) {
    if (n <= s->cap) return true;
    size_t cap = s->cap ? s->cap * 2 : 4;
    while (cap < n) cap *= 2;
    size_t *a = realloc(s->args, cap * sizeof *a);
    if (!a) return false;
    s->args = a;
    char(*ids)[40] = realloc(s->ids, cap * sizeof *ids);
    if (!ids) return false;
    s->ids = ids;
    s->cap = cap;
    return true;
}

bool out_next(const out_mode *m, out_sent *s, const char *text, size_t len, bool done, out_step *d) {
    memset(d, 0, sizeof *d);
    if (chat_parse(m->syn, m->tools, m->in_think, text, len, !done, &d->parsed, NULL)) return false;
    if (done) s->final = true;
    const chat_out *o = &d->parsed;
    if (!grow(s, o->n_calls) || (o->n_calls && !(d->calls = calloc(o->n_calls, sizeof *d->calls)))) {
        out_step_free(d);
        return false;
    }
    for (size_t i = 0; i < o->n_calls; i++) {
        const chat_call *c = &o->calls[i];
        if (i >= s->n_calls) { /* a new call: its id and name, arguments from the start */
            api_call_id(m->syn, s->ids[i]);
            s->n_calls = i + 1;
            d->calls[d->n_calls++] = (api_call_delta){(int)i, s->ids[i], c->name, c->args, c->args_len};
            s->args[i] = c->args_len;
        } else if (c->args_len > s->args[i]) {
            d->calls[d->n_calls++] = (api_call_delta){(int)i, NULL, NULL, c->args + s->args[i], c->args_len - s->args[i]};
            s->args[i] = c->args_len;
        }
    }
    if (o->reasoning_len > s->reasoning) d->reasoning = o->reasoning + s->reasoning, d->reasoning_len = o->reasoning_len - s->reasoning;
    if (o->content_len > s->content) d->content = o->content + s->content, d->content_len = o->content_len - s->content;
    s->reasoning += d->reasoning_len, s->content += d->content_len;
    return true;
}

void out_step_free(out_step *d) {
    chat_out_free(&d->parsed);
    free(d->calls);
    memset(d, 0, sizeof *d);
}

bool out_delta(const out_mode *m, out_sent *s, const api_result *r, const char *text, size_t len, bool done, char **ev) {
    *ev = NULL;
    out_step d;
    if (!out_next(m, s, text, len, done, &d)) return false;
    bool ok = true;
    if (d.reasoning_len || d.content_len || d.n_calls) {
        *ev = api_chunk_delta(r, d.reasoning, d.reasoning_len, d.content, d.content_len, d.calls, d.n_calls);
        ok = *ev != NULL;
    }
    out_step_free(&d);
    return ok;
}

void out_sent_free(out_sent *s) {
    free(s->args);
    free(s->ids);
    memset(s, 0, sizeof *s);
}

bool out_final(const out_mode *m, const char *text, size_t len, api_result *r, chat_out *o, char (**ids)[40]) {
    *ids = NULL;
    if (chat_parse(m->syn, m->tools, m->in_think, text, len, false, o, NULL)) return false;
    if (o->n_calls && !(*ids = calloc(o->n_calls, sizeof **ids))) {
        chat_out_free(o);
        return false;
    }
    for (size_t i = 0; i < o->n_calls; i++) api_call_id(m->syn, (*ids)[i]);
    r->text = o->content, r->text_len = o->content_len;
    r->reasoning = o->reasoning, r->reasoning_len = o->reasoning_len;
    r->calls = o->calls, r->n_calls = o->n_calls, r->call_ids = *ids;
    if (o->n_calls && r->finish && !strcmp(r->finish, "stop")) r->finish = "tool_calls";
    return true;
}
