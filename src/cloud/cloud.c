/* OpenAI-compatible chat client (see cloud.h). */
#include "cloud.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "base/error.h"
#include "base/unicode.h"

struct cloud {
    cloud_config cfg;
    pthread_mutex_t mu;
    int fails;
    double open_until, last_connect_fail;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

void cloud_config_defaults(cloud_config *c) {
    memset(c, 0, sizeof *c);
    c->connect_timeout_ms = 3000;
    c->first_byte_timeout_ms = 15000;
    c->idle_timeout_ms = 15000;
    c->total_timeout_ms = 120000;
    c->max_retries = 2;
    c->max_response_bytes = 8u << 20;
    c->circuit_failures = 3;
    c->circuit_cooldown_s = 30;
}

bool cloud_token_ok(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7F) return false;
    return true;
}

hai_status cloud_create(const cloud_config *cfg, cloud **out, hai_error *err) {
    *out = NULL;
    if (strncmp(cfg->base_url, "http://", 7) && strncmp(cfg->base_url, "https://", 8))
        return hai_fail(err, HAI_ERR_INVALID, "cloud: base_url must start with http:// or https://, not '%.80s'", cfg->base_url);
    if (!cloud_token_ok(cfg->base_url)) return hai_fail(err, HAI_ERR_INVALID, "cloud: base_url has a control character, space or non-ASCII byte");
    if (!cloud_token_ok(cfg->api_key)) return hai_fail(err, HAI_ERR_INVALID, "cloud: the API key has a control character, space or non-ASCII byte");
    pthread_once(&curl_once, curl_init);
    cloud *c = calloc(1, sizeof *c);
    if (!c) return hai_fail(err, HAI_ERR_NOMEM, "cloud: out of memory");
    c->cfg = *cfg;
    pthread_mutex_init(&c->mu, NULL);
    c->last_connect_fail = -1e9;
    *out = c;
    return HAI_OK;
}

void cloud_free(cloud *c) {
    if (!c) return;
    pthread_mutex_destroy(&c->mu);
    free(c);
}

bool cloud_circuit_open(cloud *c) {
    pthread_mutex_lock(&c->mu);
    bool open = hai_time_s() < c->open_until;
    pthread_mutex_unlock(&c->mu);
    return open;
}

bool cloud_online(cloud *c) {
    pthread_mutex_lock(&c->mu);
    bool on = hai_time_s() - c->last_connect_fail > c->cfg.circuit_cooldown_s;
    pthread_mutex_unlock(&c->mu);
    return on;
}

/* ---- one transfer -------------------------------------------------------------------------- */

typedef struct xfer {
    cloud *c;
    const cloud_request *r;
    cloud_result *res;
    double t_start, t_last, deadline;
    size_t total;          /* body bytes after decompression */
    bool any_body, sse, got_done, got_finish, stopped;
    int status;
    double retry_after;
    char *line;            /* the SSE line being assembled */
    size_t line_len, line_cap;
    char *body;            /* non-SSE body (JSON or an error), capped */
    size_t body_len, body_cap;
    int call_index;        /* the streamed tool call being assembled (-1: none) */
    char *call_name, *call_args;
    size_t name_len, name_cap, args_len, args_cap;
    char why[160];         /* why a callback aborted the transfer */
} xfer;

static size_t on_header(char *p, size_t size, size_t n, void *u) {
    xfer *x = u;
    size_t len = size * n;
    if (len > 5 && !strncmp(p, "HTTP/", 5)) { /* a new status line (after a 100 Continue, too) */
        const char *sp = memchr(p, ' ', len);
        x->status = sp ? atoi(sp + 1) : 0;
        x->sse = false;
        x->retry_after = -1;
    } else if (len > 12 && !strncasecmp(p, "Retry-After:", 12)) {
        /* seconds, or an HTTP date */
        char v[64];
        size_t vl = len - 12 < sizeof v - 1 ? len - 12 : sizeof v - 1;
        memcpy(v, p + 12, vl);
        v[vl] = '\0';
        char *end;
        double secs = strtod(v, &end);
        if (end != v) {
            x->retry_after = secs < 0 ? 0 : secs;
        } else {
            time_t t = curl_getdate(v, NULL);
            if (t > 0) x->retry_after = difftime(t, time(NULL)) > 0 ? difftime(t, time(NULL)) : 0;
        }
    } else if (len > 13 && !strncasecmp(p, "Content-Type:", 13)) {
        x->sse = memmem(p, len, "text/event-stream", 17) != NULL;
    }
    return len;
}

static void fail_x(xfer *x, const char *fmt, const char *detail) {
    if (!x->why[0]) snprintf(x->why, sizeof x->why, fmt, detail ? detail : "");
}

/* Valid UTF-8 text of the upstream's is handed on; anything else fails the transfer. */
static bool utf8_ok(xfer *x, const char *s, size_t l) {
    for (size_t i = 0; i < l;) {
        int k = hai_utf8_valid_len((const unsigned char *)s + i, l - i, NULL);
        if (!k) {
            fail_x(x, "upstream text is not valid UTF-8%s", NULL);
            return false;
        }
        i += (size_t)k;
    }
    return true;
}

/* The streamed call assembled so far goes out whole. */
static bool call_flush(xfer *x) {
    if (x->call_index < 0) return true;
    x->call_index = -1;
    if (!x->name_len) {
        fail_x(x, "a streamed tool call without a name%s", NULL);
        return false;
    }
    x->res->delivered = true;
    bool go = !x->r->on_call || x->r->on_call(x->r->user, x->call_name, x->call_args ? x->call_args : "", x->args_len);
    x->name_len = x->args_len = 0;
    if (x->call_name) x->call_name[0] = '\0';
    if (x->call_args) x->call_args[0] = '\0';
    if (!go) x->stopped = true;
    return go;
}

static bool append(char **buf, size_t *len, size_t *cap, const char *p, size_t n, size_t limit);

/* delta.tool_calls: pieces of calls by index (id, name and type first, then argument text). */
static bool call_pieces(xfer *x, const cJSON *tcs) {
    const cJSON *tc;
    cJSON_ArrayForEach(tc, tcs) {
        const cJSON *ix = cJSON_GetObjectItemCaseSensitive(tc, "index"), *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
        int index = cJSON_IsNumber(ix) ? ix->valueint : 0;
        if (index != x->call_index && !call_flush(x)) return false;
        x->call_index = index;
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(fn, "name"), *ar = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
        size_t limit = x->c->cfg.max_response_bytes + 1;
        if (cJSON_IsString(nm) && (!utf8_ok(x, nm->valuestring, strlen(nm->valuestring)) ||
                                   !append(&x->call_name, &x->name_len, &x->name_cap, nm->valuestring, strlen(nm->valuestring), 1024)))
            return fail_x(x, "a tool call's name is not valid%s", NULL), false;
        if (cJSON_IsString(ar) && (!utf8_ok(x, ar->valuestring, strlen(ar->valuestring)) ||
                                   !append(&x->call_args, &x->args_len, &x->args_cap, ar->valuestring, strlen(ar->valuestring), limit)))
            return fail_x(x, "a tool call's arguments are not valid%s", NULL), false;
    }
    return true;
}

/* One "data:" payload of the stream. false = stop the transfer. */
static bool sse_data(xfer *x, const char *d, size_t n) {
    if (n == 6 && !memcmp(d, "[DONE]", 6)) {
        x->got_done = true;
        return true;
    }
    cJSON *j = cJSON_ParseWithLength(d, n);
    if (!j) {
        fail_x(x, "malformed stream chunk%s", NULL);
        return false;
    }
    bool ok = true;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    if (e) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
        fail_x(x, "upstream error: %s", cJSON_IsString(m) ? m->valuestring : "(no message)");
        ok = false;
        goto out;
    }
    const cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "choices"), 0);
    const cJSON *delta = cJSON_GetObjectItemCaseSensitive(ch, "delta");
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(delta, "content");
    if (cJSON_IsString(content) && content->valuestring[0]) {
        size_t l = strlen(content->valuestring);
        if (!utf8_ok(x, content->valuestring, l) || !call_flush(x)) { /* text after a call: the call is whole */
            ok = false;
            goto out;
        }
        x->res->delivered = true;
        if (!x->r->on_text(x->r->user, content->valuestring, l)) {
            x->stopped = true;
            ok = false;
            goto out;
        }
    }
    const cJSON *tcs = cJSON_GetObjectItemCaseSensitive(delta, "tool_calls");
    if (cJSON_IsArray(tcs) && !call_pieces(x, tcs)) {
        ok = false;
        goto out;
    }
    const cJSON *fr = cJSON_GetObjectItemCaseSensitive(ch, "finish_reason");
    if (cJSON_IsString(fr) && fr->valuestring[0]) { /* an empty reason is no reason */
        if (!call_flush(x)) {
            ok = false;
            goto out;
        }
        x->got_finish = true;
        snprintf(x->res->finish, sizeof x->res->finish, "%s", fr->valuestring);
    }
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(j, "usage");
    if (cJSON_IsObject(u)) {
        const cJSON *pt = cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens"), *ct = cJSON_GetObjectItemCaseSensitive(u, "completion_tokens");
        if (cJSON_IsNumber(pt)) x->res->prompt_tokens = pt->valueint;
        if (cJSON_IsNumber(ct)) x->res->completion_tokens = ct->valueint;
    }
out:
    cJSON_Delete(j);
    return ok;
}

static bool append(char **buf, size_t *len, size_t *cap, const char *p, size_t n, size_t limit) {
    if (*len + n + 1 > limit) return false;
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap : 1024;
        while (c < *len + n + 1) c *= 2;
        char *b = realloc(*buf, c);
        if (!b) return false;
        *buf = b;
        *cap = c;
    }
    memcpy(*buf + *len, p, n);
    *len += n;
    (*buf)[*len] = '\0';
    return true;
}

static size_t on_body(char *p, size_t size, size_t n, void *u) {
    xfer *x = u;
    size_t len = size * n;
    x->total += len;
    x->t_last = hai_time_s();
    x->any_body = true;
    if (x->total > x->c->cfg.max_response_bytes) {
        fail_x(x, "response larger than the limit%s", NULL);
        return 0;
    }
    if (x->status != 200 || !x->sse) { /* a JSON answer or an error body */
        if (!append(&x->body, &x->body_len, &x->body_cap, p, len, x->c->cfg.max_response_bytes + 1)) {
            fail_x(x, "response larger than the limit%s", NULL);
            return 0;
        }
        return len;
    }
    for (size_t i = 0; i < len; i++) {
        if (p[i] != '\n') {
            if (!append(&x->line, &x->line_len, &x->line_cap, p + i, 1, 1 << 20)) {
                fail_x(x, "stream line over 1 MiB%s", NULL);
                return 0;
            }
            continue;
        }
        size_t l = x->line_len;
        if (l && x->line[l - 1] == '\r') l--;
        if (l >= 5 && !memcmp(x->line, "data:", 5)) {
            const char *d = x->line + 5;
            size_t dl = l - 5;
            if (dl && *d == ' ') d++, dl--;
            if (!sse_data(x, d, dl)) {
                x->line_len = 0;
                return 0;
            }
        }
        x->line_len = 0; /* comments, event names and blank lines need nothing */
    }
    return len;
}

static int on_progress(void *u, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un) {
    (void)dt, (void)dn, (void)ut, (void)un;
    xfer *x = u;
    double now = hai_time_s();
    if (x->r->cancel && atomic_load(x->r->cancel)) {
        x->stopped = true;
        return 1;
    }
    if (!x->any_body && now - x->t_start > x->c->cfg.first_byte_timeout_ms / 1000.0) {
        fail_x(x, "no response within the first-byte timeout%s", NULL);
        return 1;
    }
    if (x->any_body && now - x->t_last > x->c->cfg.idle_timeout_ms / 1000.0) {
        fail_x(x, "the response stalled (idle timeout)%s", NULL);
        return 1;
    }
    if (now > x->deadline) {
        fail_x(x, "the total timeout passed%s", NULL);
        return 1;
    }
    return 0;
}

/* A field whose value is JSON text the caller checked (the client's own tools, ...): parsed
 * again here, so what goes out is well-formed whatever was passed. */
static bool add_raw(cJSON *o, const char *name, const char *json) {
    cJSON *v = cJSON_Parse(json);
    if (v && cJSON_AddItemToObject(o, name, v)) return true;
    cJSON_Delete(v);
    return false;
}

/* The request's JSON; NULL when out of memory. Every field is checked: a request that went out
 * without a message's content, its max_tokens or its stop strings would be a different request. */
static char *request_body(const cloud *c, const cloud_request *r) {
    cJSON *o = cJSON_CreateObject();
    bool ok = o && cJSON_AddStringToObject(o, "model", r->model ? r->model : c->cfg.model);
    cJSON *msgs = ok ? cJSON_AddArrayToObject(o, "messages") : NULL;
    ok = ok && msgs;
    for (size_t i = 0; ok && i < r->n_msgs; i++) {
        const hai_chat_message *hm = &r->msgs[i];
        cJSON *m = cJSON_CreateObject();
        ok = m && cJSON_AddStringToObject(m, "role", hm->role);
        /* an assistant turn of calls only has content null, as OpenAI writes it */
        if (ok) ok = hm->tool_calls && !hm->content[0] ? cJSON_AddNullToObject(m, "content") != NULL
                                                         : cJSON_AddStringToObject(m, "content", hm->content) != NULL;
        if (ok && hm->tool_calls) ok = add_raw(m, "tool_calls", hm->tool_calls);
        if (ok && hm->tool_call_id) ok = cJSON_AddStringToObject(m, "tool_call_id", hm->tool_call_id) != NULL;
        if (!(ok = ok && cJSON_AddItemToArray(msgs, m))) cJSON_Delete(m);
    }
    if (ok && r->tools) ok = add_raw(o, "tools", r->tools);
    if (ok && r->tool_choice) ok = add_raw(o, "tool_choice", r->tool_choice);
    if (ok && r->response_format) ok = add_raw(o, "response_format", r->response_format);
    if (ok && r->parallel_tool_calls) ok = cJSON_AddBoolToObject(o, "parallel_tool_calls", r->parallel_tool_calls > 0) != NULL;
    cJSON *so = ok ? cJSON_AddObjectToObject(o, "stream_options") : NULL;
    ok = ok && cJSON_AddBoolToObject(o, "stream", true) && so && cJSON_AddBoolToObject(so, "include_usage", true);
    if (ok && r->max_tokens > 0) ok = cJSON_AddNumberToObject(o, "max_tokens", r->max_tokens);
    if (ok && r->temperature >= 0) ok = cJSON_AddNumberToObject(o, "temperature", r->temperature);
    if (ok && r->top_p > 0) ok = cJSON_AddNumberToObject(o, "top_p", r->top_p);
    if (ok && r->has_seed) ok = cJSON_AddNumberToObject(o, "seed", (double)r->seed);
    if (ok && r->n_stop) {
        cJSON *s = cJSON_AddArrayToObject(o, "stop");
        ok = s != NULL;
        for (size_t i = 0; ok && i < r->n_stop; i++) {
            cJSON *v = cJSON_CreateString(r->stop[i]);
            if (!(ok = v && cJSON_AddItemToArray(s, v))) cJSON_Delete(v);
        }
    }
    char *body = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return body;
}

typedef enum outcome { OK_DONE, FAIL_RETRY, FAIL_FINAL, STOPPED } outcome;

static bool valid_utf8(const char *s) {
    size_t l = strlen(s);
    for (size_t i = 0; i < l;) {
        int k = hai_utf8_valid_len((const unsigned char *)s + i, l - i, NULL);
        if (!k) return false;
        i += (size_t)k;
    }
    return true;
}

/* What a finished transfer amounts to: success only for a whole answer (a stream with its
 * finish_reason and [DONE], or a complete JSON completion). */
static outcome judge(xfer *x, CURLcode cc, const cloud_request *r, cloud_result *res, double *retry_after) {
    res->http_status = x->status;
    outcome o;
    if (x->stopped) {
        snprintf(res->error, sizeof res->error, "cancelled");
        o = STOPPED;
    } else if (cc != CURLE_OK && !x->why[0]) {
        res->connect_failure = cc == CURLE_COULDNT_RESOLVE_HOST || cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_PROXY;
        snprintf(res->error, sizeof res->error, "cloud: %s", curl_easy_strerror(cc));
        o = FAIL_RETRY;
    } else if (x->why[0]) {
        snprintf(res->error, sizeof res->error, "cloud: %s", x->why);
        o = strstr(x->why, "larger than") || strstr(x->why, "upstream error") || strstr(x->why, "malformed") ? FAIL_FINAL : FAIL_RETRY;
        if (strstr(x->why, "malformed") || strstr(x->why, "UTF-8")) o = FAIL_RETRY; /* a broken stream: try again if nothing was shown */
    } else if (x->status >= 300 && x->status < 400) {
        snprintf(res->error, sizeof res->error, "cloud: HTTP %d redirect, not followed", x->status);
        o = FAIL_FINAL;
    } else if (x->status == 429 || x->status >= 500) {
        snprintf(res->error, sizeof res->error, "cloud: HTTP %d", x->status);
        *retry_after = x->retry_after;
        o = FAIL_RETRY;
    } else if (x->status != 200) {
        cJSON *j = x->body ? cJSON_Parse(x->body) : NULL;
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "error"), "message");
        snprintf(res->error, sizeof res->error, "cloud: HTTP %d: %.160s", x->status, cJSON_IsString(m) ? m->valuestring : "(no message)");
        cJSON_Delete(j);
        o = FAIL_FINAL;
    } else if (x->sse) {
        if (x->got_done && x->got_finish) {
            o = OK_DONE;
        } else {
            snprintf(res->error, sizeof res->error, "cloud: the stream ended without %s", x->got_finish ? "[DONE]" : "a finish_reason");
            o = FAIL_RETRY;
        }
    } else { /* a plain JSON answer */
        cJSON *j = x->body ? cJSON_Parse(x->body) : NULL;
        const cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "choices"), 0);
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(ch, "message");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(msg, "content"), *tcs = cJSON_GetObjectItemCaseSensitive(msg, "tool_calls");
        const cJSON *fr = cJSON_GetObjectItemCaseSensitive(ch, "finish_reason");
        bool calls_ok = !tcs || cJSON_IsNull(tcs) || cJSON_IsArray(tcs);
        if ((cJSON_IsString(content) || (cJSON_IsNull(content) && cJSON_IsArray(tcs))) && calls_ok && cJSON_IsString(fr) && fr->valuestring[0] &&
            (!cJSON_IsString(content) || valid_utf8(content->valuestring))) {
            snprintf(res->finish, sizeof res->finish, "%s", fr->valuestring);
            res->delivered = true;
            o = OK_DONE;
            if (cJSON_IsString(content) && *content->valuestring && !r->on_text(r->user, content->valuestring, strlen(content->valuestring))) o = STOPPED;
            const cJSON *tc, *list = cJSON_IsArray(tcs) ? tcs : NULL;
            cJSON_ArrayForEach(tc, list) {
                const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
                const cJSON *nm = cJSON_GetObjectItemCaseSensitive(fn, "name"), *ar = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
                if (o != OK_DONE) break;
                if (!cJSON_IsString(nm) || !nm->valuestring[0] || !valid_utf8(nm->valuestring) || (ar && !cJSON_IsString(ar)) ||
                    (cJSON_IsString(ar) && !valid_utf8(ar->valuestring))) {
                    snprintf(res->error, sizeof res->error, "cloud: a tool call of the answer is malformed");
                    o = FAIL_FINAL;
                } else if (r->on_call && !r->on_call(r->user, nm->valuestring, ar ? ar->valuestring : "", ar ? strlen(ar->valuestring) : 0)) {
                    o = STOPPED;
                }
            }
        } else {
            snprintf(res->error, sizeof res->error, "cloud: the answer is not a chat completion");
            o = FAIL_RETRY;
        }
        cJSON_Delete(j);
    }
    return o;
}

static outcome attempt(cloud *c, const cloud_request *r, const char *body, cloud_result *res, double deadline, double *retry_after) {
    xfer x = {.c = c, .r = r, .res = res, .t_start = hai_time_s(), .deadline = deadline, .retry_after = -1, .call_index = -1};
    x.t_last = x.t_start;
    CURL *h = curl_easy_init();
    if (!h) {
        snprintf(res->error, sizeof res->error, "cloud: cannot start a transfer");
        return FAIL_FINAL;
    }
    char url[640], auth[600];
    size_t bl = strlen(c->cfg.base_url);
    snprintf(url, sizeof url, "%.*s/chat/completions", (int)(bl && c->cfg.base_url[bl - 1] == '/' ? bl - 1 : bl), c->cfg.base_url);
    struct curl_slist *hd = curl_slist_append(NULL, "Content-Type: application/json");
    hd = curl_slist_append(hd, "Accept: text/event-stream");
    if (c->cfg.api_key[0]) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", c->cfg.api_key);
        hd = curl_slist_append(hd, auth);
    }
    long left_ms = (long)((deadline - x.t_start) * 1000);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L); /* a redirect is an error: credentials stay with their origin */
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->cfg.connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, left_ms > 1 ? left_ms : 1L);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, ""); /* decoded sizes are what on_body counts */
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &x);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    CURLcode cc = curl_easy_perform(h);
    outcome o = judge(&x, cc, r, res, retry_after);
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
    free(x.line);
    free(x.body);
    free(x.call_name);
    free(x.call_args);
    return o;
}

hai_status cloud_chat(cloud *c, const cloud_request *r, cloud_result *res) {
    memset(res, 0, sizeof *res);
    double t0 = hai_time_s(), deadline = t0 + c->cfg.total_timeout_ms / 1000.0;
    char *body = request_body(c, r);
    if (!body) {
        snprintf(res->error, sizeof res->error, "cloud: out of memory");
        return res->status = HAI_ERR_NOMEM;
    }
    outcome o = FAIL_FINAL;
    for (int a = 0; a <= c->cfg.max_retries; a++) {
        double retry_after = -1;
        res->attempts = a + 1;
        o = attempt(c, r, body, res, deadline, &retry_after);
        if (o != FAIL_RETRY || res->delivered) break; /* nothing is retried once the user has seen text */
        if (a == c->cfg.max_retries) break;
        if (retry_after > 10) { /* the upstream asks for a long pause: honour it, answer locally meanwhile */
            pthread_mutex_lock(&c->mu);
            if (c->open_until < hai_time_s() + retry_after) c->open_until = hai_time_s() + retry_after;
            pthread_mutex_unlock(&c->mu);
            break;
        }
        double wait = retry_after >= 0 ? retry_after : 0.25 * pow(2, a);
        if (hai_time_s() + wait >= deadline) break;
        for (double end = hai_time_s() + wait; hai_time_s() < end;) { /* a cancellable sleep */
            if (r->cancel && atomic_load(r->cancel)) break;
            usleep(20000);
        }
        if (r->cancel && atomic_load(r->cancel)) { /* stopped (a client that left, a shutdown): not a failure */
            snprintf(res->error, sizeof res->error, "cancelled");
            o = STOPPED;
            break;
        }
        res->finish[0] = '\0';
        res->connect_failure = false;
    }
    free(body);
    res->seconds = hai_time_s() - t0;
    pthread_mutex_lock(&c->mu);
    if (o == OK_DONE) {
        c->fails = 0;
    } else if (o != STOPPED) {
        if (res->connect_failure) c->last_connect_fail = hai_time_s();
        if (++c->fails >= c->cfg.circuit_failures) c->open_until = hai_time_s() + c->cfg.circuit_cooldown_s;
    }
    pthread_mutex_unlock(&c->mu);
    res->status = o == OK_DONE ? HAI_OK : o == STOPPED ? HAI_ERR_CANCELLED : HAI_ERR_IO;
    return res->status;
}

hai_status cloud_judge_bytes(int http_status, const char *content_type, const uint8_t *body, size_t len, const size_t *cuts, size_t n_cuts,
                             const cloud_request *r, size_t max_response_bytes, cloud_result *res) {
    memset(res, 0, sizeof *res);
    cloud c = {0};
    cloud_config_defaults(&c.cfg);
    c.cfg.max_response_bytes = max_response_bytes;
    xfer x = {.c = &c, .r = r, .res = res, .retry_after = -1, .call_index = -1};
    char line[160];
    snprintf(line, sizeof line, "HTTP/1.1 %d X\r\n", http_status);
    on_header(line, 1, strlen(line), &x);
    if (content_type) {
        snprintf(line, sizeof line, "Content-Type: %.100s\r\n", content_type);
        on_header(line, 1, strlen(line), &x);
    }
    CURLcode cc = CURLE_OK;
    size_t at = 0;
    for (size_t i = 0; i <= n_cuts && at < len; i++) { /* the body in the pieces the network might deliver */
        size_t piece = i < n_cuts && cuts[i] < len - at ? cuts[i] : len - at;
        if (on_body((char *)body + at, 1, piece, &x) != piece) {
            cc = CURLE_WRITE_ERROR;
            break;
        }
        at += piece;
    }
    double ra = -1;
    outcome o = judge(&x, cc, r, res, &ra);
    free(x.line);
    free(x.body);
    free(x.call_name);
    free(x.call_args);
    res->status = o == OK_DONE ? HAI_OK : o == STOPPED ? HAI_ERR_CANCELLED : HAI_ERR_IO;
    return res->status;
}
