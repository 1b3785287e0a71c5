/* The HTTP side of `hai serve`: routes, authentication, limits, request bodies, streaming
 * (Server-Sent Events) and the OpenAI error shape. One thread per connection (libmicrohttpd);
 * those threads never compute: they submit jobs to the engine and wait for text, watching
 * their socket so that a client that leaves cancels its job. */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/error.h"
#include "base/text.h"
#include "../router/hybrid.h"
#include "api.h"
#include "conns.h"
#include "embeddings.h"
#include "engine.h"
#include "grammars.h"
#include "metrics.h"
#include "output.h"
#include "page.h"
#include "responses.h"
#include "hai_server.h"

#ifndef MHD_HTTP_CONTENT_TOO_LARGE
#define MHD_HTTP_CONTENT_TOO_LARGE 413
#endif

/* A thread carrying out one routed request (--route-config). Joined, never detached: it holds
 * the router, the engine and the model, which are freed only after every runner is joined. */
typedef struct runner {
    pthread_t th;
    atomic_bool done;     /* the thread has finished with everything but returning */
    srv_job *job;         /* a reference of the runner list's own, for cancelling at shutdown */
    struct runner *next;
} runner;

typedef struct server {
    hai_serve_options o;
    hai_model *m, *dm; /* the model, and a draft model (--draft) */
    srv_embedder *emb; /* /v1/embeddings */
    srv_engine *eng;
    metrics met;
    char model_id[128];
    long created;
    atomic_ulong next_id;
    hybrid *hyb;              /* the router, with --route-config */
    grammar_pool *gpool;      /* compiled grammars between requests (grammars.h) */
    resp_store *rstore;       /* recent responses of /v1/responses (previous_response_id, item_reference) */
    conns *cs;                /* who holds the sockets (conns.h) */
    atomic_bool draining;     /* shutting down: new requests get 503 */
    atomic_int in_flight;     /* completion requests between their headers and their last byte */
    pthread_mutex_t runners_mu;
    runner *runners;
} server;

typedef struct request {
    char endpoint[48];
    hai_text body;            /* NUL-terminated */
    bool too_large;
    bool headers_done;
    bool counted;             /* in s->in_flight */
} request;

/* ---- responses -------------------------------------------------------------------------------- */

static void common_headers(server *s, struct MHD_Response *r) {
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    if (s->o.cors_origin) {
        MHD_add_response_header(r, "Access-Control-Allow-Origin", s->o.cors_origin);
        MHD_add_response_header(r, "Vary", "Origin");
    }
}

static enum MHD_Result send_body(server *s, struct MHD_Connection *c, const char *endpoint, int status, const char *type,
                                 char *body) {
    if (!body) body = strdup("{}");
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, "Content-Type", type);
    common_headers(s, r);
    if (status == 429 || status == 503) MHD_add_response_header(r, "Retry-After", "1");
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    metrics_request(&s->met, endpoint, status);
    return ret;
}

static enum MHD_Result send_error(server *s, struct MHD_Connection *c, const char *endpoint, int status, const char *type,
                                  const char *param, const char *fmt, ...) __attribute__((format(printf, 7, 8)));
static enum MHD_Result send_error(server *s, struct MHD_Connection *c, const char *endpoint, int status, const char *type,
                                  const char *param, const char *fmt, ...) {
    api_error e = {.status = status, .type = type};
    snprintf(e.param, sizeof e.param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.message, sizeof e.message, fmt, ap);
    va_end(ap);
    return send_body(s, c, endpoint, status, "application/json", api_error_json(&e));
}

/* A request whose framing hai cannot trust: answered, and the connection closed after it (what
 * follows on it cannot be told apart from a next request). */
static enum MHD_Result send_framing_error(server *s, struct MHD_Connection *c, request *rq, int status, const char *msg) {
    api_error e = {.status = status, .type = "invalid_request_error"};
    snprintf(e.message, sizeof e.message, "%s", msg);
    char *body = api_error_json(&e);
    if (!body) return MHD_NO;
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, "Content-Type", "application/json");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    common_headers(s, r);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    metrics_request(&s->met, rq->endpoint, status);
    rq->headers_done = true;
    return ret;
}

/* Transfer-Encoding and Content-Length as they came, every occurrence. */
typedef struct framing {
    int n_te, n_cl;
    bool te_chunked_only, cl_differ;
    char cl[32];
} framing;

static bool token_is(const char *v, const char *word) { /* v without surrounding white space is word, any case */
    while (*v == ' ' || *v == '\t') v++;
    size_t n = strlen(word);
    if (strncasecmp(v, word, n)) return false;
    for (v += n; *v; v++)
        if (*v != ' ' && *v != '\t') return false;
    return true;
}

static enum MHD_Result on_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
    (void)kind;
    framing *f = cls;
    if (!strcasecmp(key, "Transfer-Encoding")) {
        f->te_chunked_only = f->n_te == 0 && token_is(value ? value : "", "chunked");
        f->n_te++;
    } else if (!strcasecmp(key, "Content-Length")) {
        if (f->n_cl && strcmp(f->cl, value ? value : "")) f->cl_differ = true;
        snprintf(f->cl, sizeof f->cl, "%s", value ? value : "");
        f->n_cl++;
    }
    return MHD_YES;
}

/* RFC 9112 6.1 and 6.3: chunked is the only transfer coding hai reads (anything else is 501 at
 * once, not a wait for a body it cannot frame); Transfer-Encoding together with Content-Length,
 * or two different lengths, may be a request smuggled past a proxy in front: 400, and the
 * connection closed. NULL when the framing is sound. */
static enum MHD_Result check_framing(server *s, struct MHD_Connection *c, request *rq, bool *refused) {
    framing f = {0};
    MHD_get_connection_values(c, MHD_HEADER_KIND, on_header, &f);
    *refused = true;
    if (f.n_te && f.n_cl)
        return send_framing_error(s, c, rq, 400, "a request with both Transfer-Encoding and Content-Length is refused (RFC 9112 6.3)");
    if (f.cl_differ) return send_framing_error(s, c, rq, 400, "the request has Content-Length headers that disagree");
    if (f.n_te && (f.n_te > 1 || !f.te_chunked_only))
        return send_framing_error(s, c, rq, 501, "Transfer-Encoding other than chunked is not supported");
    *refused = false;
    return MHD_YES;
}

/* A comma-separated list of header names (RFC 9110 tokens), nothing else: what may be echoed back
 * in Access-Control-Allow-Headers. */
static bool header_list_ok(const char *v) {
    size_t n = 0;
    for (; *v; v++, n++) {
        unsigned char ch = (unsigned char)*v;
        if (!(ch == ',' || ch == ' ' || ch == '\t' || (ch > 0x20 && ch < 0x7F && !strchr("\"(),/:;<=>?@[\\]{}", ch)))) return false;
    }
    return n > 0 && n < 2048;
}

/* RFC 9110 11.1: the scheme is case-insensitive ("bearer", "BEARER"), then one or more spaces. */
static const char *bearer_token(const char *auth) {
    if (!auth || strncasecmp(auth, "Bearer", 6) || (auth[6] != ' ' && auth[6] != '\t')) return NULL;
    auth += 6;
    while (*auth == ' ' || *auth == '\t') auth++;
    return auth;
}

/* Whether the client is still there. End of file is not enough to tell: a client that sent its
 * request and shut down its sending side (shutdown(SHUT_WR), HTTP/1.0 tools) still reads the
 * answer, and one that closed its socket sends the same FIN. Only a reset (or an error) says it
 * is gone: that is what a closed socket answers the next bytes sent to it with, so a stream
 * probes a half-closed client with an SSE comment (stream_reader). */
typedef enum peer { PEER_HERE, PEER_HALF_CLOSED, PEER_GONE } peer;

static peer peer_state(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return PEER_GONE;
    char b;
    ssize_t k = recv(ci->connect_fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (k > 0 || (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))) return PEER_HERE;
    if (k < 0) return PEER_GONE; /* ECONNRESET and the like */
    struct tcp_info ti;
    socklen_t tl = sizeof ti;
    /* a reset already reported (recv gives its error once, then end of file) leaves the socket closed */
    if (getsockopt(ci->connect_fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) == 0 && ti.tcpi_state == TCP_CLOSE) return PEER_GONE;
    return PEER_HALF_CLOSED;
}

static conn *conn_of(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* Constant-time comparison of the presented key with the configured one. */
static bool key_ok(const char *given, const char *want) {
    size_t gl = given ? strlen(given) : 0, wl = strlen(want);
    unsigned char diff = gl != wl;
    for (size_t i = 0; i < wl; i++) diff |= (unsigned char)(i < gl ? given[i] : 0) ^ (unsigned char)want[i];
    return diff == 0 && given != NULL;
}

/* ---- logprobs ------------------------------------------------------------------------------------- */

/* A job's logprob records as the API's pieces (token texts from the vocabulary); the pieces' bytes
 * live in one arena. */
typedef struct lp_set {
    api_logprob *v;
    char *arena;
    size_t n;
} lp_set;

static void lp_free(lp_set *l) {
    free(l->v);
    free(l->arena);
    memset(l, 0, sizeof *l);
}

static bool lp_render(const server *s, const srv_logprob *r, size_t n, lp_set *out) {
    const hai_tokenizer *t = hai_model_tokenizer(s->m);
    size_t mp = hai_tokenizer_max_piece(t) + 8, per = (size_t)(1 + SRV_MAX_TOP_LOGPROBS) * mp, w = 0;
    memset(out, 0, sizeof *out);
    if (!n) return true;
    out->v = calloc(n, sizeof *out->v);
    out->arena = malloc(n * per);
    if (!out->v || !out->arena) {
        lp_free(out);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        api_logprob *a = &out->v[i];
        for (int k = -1; k < r[i].n_top && k < 20; k++) {
            hai_token id = k < 0 ? r[i].id : r[i].top[k];
            size_t len = 0;
            hai_detokenize(t, &id, 1, HAI_DETOK_SPECIAL, out->arena + w, mp, &len, NULL);
            api_piece p = {out->arena + w, len, k < 0 ? r[i].logprob : r[i].top_logprob[k]};
            if (k < 0) a->tok = p;
            else a->top[a->n_top++] = p;
            w += len;
        }
    }
    out->n = n;
    return true;
}

/* ---- streaming ---------------------------------------------------------------------------------- */

/* One choice of a response: its job and how much of it the client has. */
typedef struct choice {
    srv_job *job;
    size_t sent_text, sent_lp, text_off; /* text_off: the completions API's text_offset */
    int state;                           /* 0 role chunk due, 1 text, 2 finished */
    out_sent sent;                       /* parsed answers: what the client has of them */
} choice;

typedef struct stream {
    server *s;
    struct MHD_Connection *conn;
    api_kind kind;
    api_result res;
    char id[48];
    bool include_usage;
    out_mode om;        /* chat answers parsed into content, reasoning, tool calls */
    resp_req *rr;       /* a /v1/responses stream (owned): its events instead of chat chunks; else NULL */
    resp_stream rs;
    choice *ch;         /* [n_ch] (owned; each job a reference) */
    int n_ch;
    srv_notify *note;   /* every choice's job wakes it (a reference) */
    unsigned long seen;
    char *pending;      /* an event not yet fully written */
    size_t pend_len, pend_off;
    int phase;          /* 0 the choices' events, 3 usage, 4 [DONE], 5 end */
    char *route_json;
    bool left;          /* the client's leaving was seen (and counted) while waiting for text */
    double next_probe;  /* a half-closed client gets an SSE comment this often, to learn if it left */
} stream;

static void cancel_all(choice *ch, int n) {
    for (int i = 0; i < n; i++) atomic_store(&ch[i].job->cancelled, true);
}

/* The final event of a stream that ends in an error. */
static char *error_event(const srv_job *j, hai_status status, const char *msg, int *http_status) {
    bool down = atomic_load(&j->shutdown);
    api_error e = {.status = down ? 503 : 500, .type = down ? "server_error" : status == HAI_ERR_CANCELLED ? "timeout" : "server_error"};
    snprintf(e.message, sizeof e.message, "%s", msg);
    *http_status = e.status;
    char *ej = api_error_json(&e), *out = ej ? malloc(strlen(ej) + 9) : NULL;
    if (out) sprintf(out, "data: %s\n\n", ej);
    free(ej);
    return out;
}

/* How a job's text is read: a routed answer from the cloud has its calls in the Hermes form, and
 * no reasoning opened by the local prompt, whatever the local model writes. Under j->mu. */
static out_mode job_mode(const out_mode *om, const srv_job *j) {
    out_mode m = *om;
    if (j->from_cloud) m.syn = TOOLS_HERMES, m.in_think = false;
    return m;
}

/* A /v1/responses stream's events for what is new of its one answer; at its end, the items
 * closed and response.completed (the answer counted in the usage). The caller holds j->mu. */
static bool resp_events(stream *st, choice *c, srv_job *j, char **ev) {
    out_step d;
    *ev = NULL;
    out_mode om = job_mode(&st->om, j);
    if (!out_next(&om, &c->sent, j->out.p ? j->out.p : "", j->out.n, j->done, &d)) return false;
    bool ok = resp_stream_step(&st->rs, &d, c->sent.ids, ev);
    if (ok && j->done) {
        resp_end end = {.input_tokens = j->res.n_prompt + j->res.n_cached, .output_tokens = j->res.n_generated, .cached_tokens = j->res.n_cached,
                        .incomplete = j->res.finish == HAI_FINISH_LENGTH};
        ok = resp_stream_end(&st->rs, st->s->rstore, st->rr, &d.parsed, c->sent.ids, &end, ev);
        c->state = 2; /* nothing follows the completed event */
    }
    out_step_free(&d);
    if (!ok) free(*ev), *ev = NULL;
    return ok;
}

/* The next event of the choices: a role chunk due, new text, a finish, an error; NULL with *more
 * false when every choice is finished, with *more true when there is nothing yet. */
static char *next_choice_event(stream *st, bool *more, bool *failed) {
    *more = false;
    *failed = false;
    for (int i = 0; i < st->n_ch; i++) {
        choice *c = &st->ch[i];
        if (c->state == 0) {
            c->state = 1;
            st->res.index = c->job->index;
            if (st->rr) {
                char *buf = NULL;
                if (!resp_stream_begin(&st->rs, st->rr, st->id, st->res.model, st->res.created, &buf)) free(buf), buf = NULL;
                return buf;
            }
            return api_chunk_role(st->kind, &st->res);
        }
    }
    for (int i = 0; i < st->n_ch; i++) {
        choice *c = &st->ch[i];
        srv_job *j = c->job;
        if (c->state != 1) continue;
        pthread_mutex_lock(&j->mu);
        lp_set lp = {0};
        if (st->om.on && !j->status && (j->out.n > c->sent_text || (j->done && !c->sent.final))) {
            /* a parsed answer: what is new of its reasoning, content and calls */
            bool lp_ok = j->top_logprobs < 0 || lp_render(st->s, j->lp + c->sent_lp, j->n_lp - c->sent_lp, &lp);
            api_result r = st->res;
            r.index = j->index;
            r.lp = lp.v, r.n_lp = lp.n;
            char *ev = NULL;
            out_mode om = job_mode(&st->om, j);
            bool ok = lp_ok && (st->rr ? resp_events(st, c, j, &ev) : out_delta(&om, &c->sent, &r, j->out.p ? j->out.p : "", j->out.n, j->done, &ev));
            c->sent_text = j->out.n;
            if (ev) c->sent_lp = j->n_lp; /* logprobs go with the text they came with */
            pthread_mutex_unlock(&j->mu);
            lp_free(&lp);
            if (!ok) {
                *failed = true;
                return NULL;
            }
            if (ev) return ev;
            if (!j->done || c->state == 2) { /* held back for now (or, a response, finished) */
                if (!j->done) *more = true;
                continue;
            }
            pthread_mutex_lock(&j->mu); /* all of it sent: the finish */
        }
        if (j->out.n > c->sent_text || j->done) {
            bool lp_ok = j->top_logprobs < 0 || lp_render(st->s, j->lp + c->sent_lp, j->n_lp - c->sent_lp, &lp);
            api_result r = st->res;
            r.index = j->index;
            r.lp = lp.v, r.n_lp = lp.n, r.text_offset = c->text_off;
            char *ev = NULL;
            if (j->out.n > c->sent_text && !st->om.on) {
                ev = lp_ok ? api_chunk_text(st->kind, &r, j->out.p + c->sent_text, j->out.n - c->sent_text) : NULL;
                c->text_off += j->out.n - c->sent_text;
                c->sent_text = j->out.n;
                c->sent_lp = j->n_lp;
            } else if (j->status) { /* the stream ends with the error as its last event */
                char msg[HAI_ERROR_MSG_SIZE];
                snprintf(msg, sizeof msg, "%s", j->error);
                int hs;
                ev = error_event(j, j->status, msg, &hs);
                if (ev && st->rr) { /* a response's stream ends in its own error event */
                    free(ev), ev = NULL;
                    const char *code = hs == 503 ? "server_shutting_down" : j->status == HAI_ERR_CANCELLED ? "timeout" : "server_error";
                    if (!resp_stream_error(&st->rs, code, msg, &ev)) free(ev), ev = NULL;
                }
                metrics_request(&st->s->met, "stream_error", hs);
                *failed = true;
            } else {
                r.finish = j->res.finish == HAI_FINISH_LENGTH ? "length" : c->sent.n_calls ? "tool_calls" : "stop";
                if (j->route_json && !st->route_json) st->route_json = strdup(j->route_json);
                r.route_json = st->route_json;
                ev = lp_ok ? api_chunk_finish(st->kind, &r) : NULL;
                c->sent_lp = j->n_lp;
                c->state = 2;
                /* usage: the prompt counted once per prompt (its first choice), the answers all */
                st->res.completion_tokens += j->res.n_generated;
                if (!j->leader) st->res.prompt_tokens += j->res.n_prompt + j->res.n_cached, st->res.cached_tokens += j->res.n_cached;
            }
            pthread_mutex_unlock(&j->mu);
            lp_free(&lp);
            if (!ev) *failed = true; /* out of memory: the stream ends in an error */
            return ev;
        }
        pthread_mutex_unlock(&j->mu);
        *more = true;
    }
    return NULL;
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    stream *st = cls;
    for (;;) {
        if (st->pending) { /* finish writing the current event */
            size_t k = st->pend_len - st->pend_off < max ? st->pend_len - st->pend_off : max;
            memcpy(buf, st->pending + st->pend_off, k);
            st->pend_off += k;
            if (st->pend_off == st->pend_len) {
                free(st->pending);
                st->pending = NULL;
            }
            return (ssize_t)k;
        }
        if (st->phase == 0) {
            bool more, failed;
            pthread_mutex_lock(&st->note->mu);
            unsigned long seq = st->note->seq; /* read before looking: a change after it wakes the wait below */
            pthread_mutex_unlock(&st->note->mu);
            st->pending = next_choice_event(st, &more, &failed);
            if (failed) {
                cancel_all(st->ch, st->n_ch);
                st->phase = 5;
                if (st->pending) goto have_event;
                return MHD_CONTENT_READER_END_WITH_ERROR;
            }
            if (st->pending) goto have_event;
            if (!more) { /* every choice finished (a response's stream has no usage chunk or [DONE]) */
                st->phase = st->rr ? 5 : st->include_usage ? 3 : 4;
                continue;
            }
            /* nothing new: wait for a change, watching the client */
            pthread_mutex_lock(&st->note->mu);
            if (st->note->seq == seq) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_nsec += 100 * 1000 * 1000;
                if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
                pthread_cond_timedwait(&st->note->cv, &st->note->mu, &ts);
            }
            bool changed = st->note->seq != seq;
            pthread_mutex_unlock(&st->note->mu);
            if (changed) continue;
            peer ps = peer_state(st->conn);
            if (ps == PEER_GONE) {
                cancel_all(st->ch, st->n_ch); /* the client left: stop the jobs */
                st->left = true;
                metrics_disconnect(&st->s->met);
                return MHD_CONTENT_READER_END_WITH_ERROR;
            }
            if (ps == PEER_HALF_CLOSED && hai_time_s() >= st->next_probe) { /* a comment: SSE clients ignore it; a closed socket resets */
                st->next_probe = hai_time_s() + 1.0;
                st->pending = strdup(": keep-alive\n\n");
                if (!st->pending) return MHD_CONTENT_READER_END_WITH_ERROR;
                goto have_event;
            }
            continue;
        } else if (st->phase == 3) {
            st->pending = api_chunk_usage(st->kind, &st->res);
            st->phase = 4;
        } else if (st->phase == 4) {
            st->pending = strdup("data: [DONE]\n\n");
            st->phase = 5;
        } else {
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        if (!st->pending) return MHD_CONTENT_READER_END_WITH_ERROR;
    have_event:
        st->pend_len = strlen(st->pending);
        st->pend_off = 0;
    }
}

static void stream_free(void *cls) {
    stream *st = cls;
    if (st->phase < 5) { /* the connection ended early: most often a write to a client that left */
        cancel_all(st->ch, st->n_ch);
        if (!st->left) metrics_disconnect(&st->s->met);
    }
    for (int i = 0; i < st->n_ch; i++) srv_job_release(st->ch[i].job), out_sent_free(&st->ch[i].sent);
    free(st->ch);
    srv_notify_release(st->note);
    free(st->pending);
    free(st->route_json);
    if (st->rr) resp_req_free(st->rr), free(st->rr);
    resp_stream_free(&st->rs);
    free(st);
}

/* Starts the SSE response over the jobs (their references go to the stream; freed on failure). */
static enum MHD_Result start_stream(server *s, struct MHD_Connection *c, request *rq, api_kind kind, const api_result *res, bool usage,
                                    const out_mode *om, resp_req *rr, srv_job **jobs, int n, srv_notify *note, const char *route_header) {
    stream *st = calloc(1, sizeof *st);
    choice *ch = calloc((size_t)n, sizeof *ch);
    resp_req *rr_own = rr ? malloc(sizeof *rr_own) : NULL;
    if (rr_own) *rr_own = *rr, memset(rr, 0, sizeof *rr); /* the stream's now */
    if (!st || !ch || (rr && !rr_own)) {
        free(st);
        free(ch);
        if (rr_own) resp_req_free(rr_own), free(rr_own);
        for (int i = 0; i < n; i++) atomic_store(&jobs[i]->cancelled, true), srv_job_release(jobs[i]);
        srv_notify_release(note);
        return send_error(s, c, rq->endpoint, 500, "server_error", NULL, "out of memory");
    }
    for (int i = 0; i < n; i++) ch[i].job = jobs[i];
    st->s = s;
    st->conn = c;
    st->kind = kind;
    snprintf(st->id, sizeof st->id, "%s", res->id);
    st->res = *res;
    st->res.id = st->id;
    st->res.prompt_tokens = st->res.completion_tokens = st->res.cached_tokens = 0;
    st->include_usage = usage;
    if (om) st->om = *om;
    st->rr = rr_own;
    st->res.calls_only = om && om->forced;
    st->ch = ch;
    st->n_ch = n;
    st->note = note;
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_reader, st, stream_free);
    MHD_add_response_header(r, "Content-Type", "text/event-stream");
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    MHD_add_response_header(r, "X-Accel-Buffering", "no");
    if (route_header) MHD_add_response_header(r, "x-hai-route", route_header); /* the decision; the final route is in the last chunk */
    common_headers(s, r);
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    metrics_request(&s->met, rq->endpoint, 200);
    return ret;
}

/* Waits until every job is done, watching the client (non-streaming); false if it left (the
 * jobs are cancelled). */
static bool wait_all(struct MHD_Connection *c, srv_job **jobs, int n, srv_notify *note) {
    bool gone = false;
    for (;;) {
        pthread_mutex_lock(&note->mu);
        unsigned long seq = note->seq;
        pthread_mutex_unlock(&note->mu);
        bool all = true;
        for (int i = 0; i < n; i++) {
            pthread_mutex_lock(&jobs[i]->mu);
            all &= jobs[i]->done;
            pthread_mutex_unlock(&jobs[i]->mu);
        }
        if (all) return !gone;
        pthread_mutex_lock(&note->mu);
        if (note->seq == seq) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 100 * 1000 * 1000;
            if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
            pthread_cond_timedwait(&note->cv, &note->mu, &ts);
        }
        pthread_mutex_unlock(&note->mu);
        if (!gone && peer_state(c) == PEER_GONE) {
            gone = true;
            for (int i = 0; i < n; i++) atomic_store(&jobs[i]->cancelled, true);
        }
    }
}

/* ---- routed chat completions (--route-config) ------------------------------------------------ */

typedef struct routed {
    server *s;
    runner *me;
    srv_job *out;
    api_request ar;     /* owns the messages and stop strings the request points into */
    hybrid_request hr;
    hybrid_plan plan;
    out_mode om;        /* how the local model's answer is read */
    char *tool_choice;  /* for the cloud (JSON text), or NULL */
} routed;

/* The text channel of a routed request is a job that no engine runs: the router thread fills it. */
static bool channel_text(void *user, const char *text, size_t len) {
    srv_job *j = ((routed *)user)->out;
    return srv_job_add_text(j, text, len) && !atomic_load(&j->cancelled);
}

/* Local generation for the router: a job on the engine's slots, its text forwarded as it comes. */
static hai_status engine_generate(void *user, const hybrid_gen *g, hai_generate_result *res, hai_error *err) {
    server *s = user;
    srv_job *j = srv_job_new();
    if (!j || !(j->prompt = malloc(g->n * sizeof *j->prompt))) {
        srv_job_release(j);
        return hai_fail(err, HAI_ERR_NOMEM, "out of memory");
    }
    memcpy(j->prompt, g->prompt, g->n * sizeof *j->prompt);
    j->n_prompt = g->n;
    j->sp = *g->sp;
    j->greedy = g->greedy;
    j->max_tokens = g->max_tokens;
    j->stop = g->stop;
    j->n_stop = g->n_stop;
    j->want_tokens = g->on_token != NULL;
    j->deadline = s->o.timeout_s > 0 ? hai_time_s() + s->o.timeout_s : 0;
    j->trigger = g->trigger; /* static text */
    j->special_text = g->special_text;
    if (g->grammar) { /* compiled and checked when the request came in: only out of memory fails here */
        if (!(j->grammar_text = strdup(g->grammar)) || gpool_take(s->gpool, g->grammar, &j->grammar, NULL) != HAI_OK) {
            srv_job_release(j);
            return hai_fail(err, HAI_ERR_NOMEM, "out of memory");
        }
        j->gpool = s->gpool;
    }
    srv_submit sub = srv_engine_submit(s->eng, j);
    if (sub != SUBMIT_OK) {
        srv_job_release(j);
        if (sub == SUBMIT_STOPPING) return hai_fail(err, HAI_ERR_CANCELLED, "the server is shutting down");
        return hai_fail(err, HAI_ERR_LIMIT, "all %d slots are busy and the queue is full", s->o.n_slots);
    }
    size_t sent = 0;
    pthread_mutex_lock(&j->mu);
    for (;;) {
        while (j->out.n > sent) {
            size_t n = j->out.n - sent;
            char *chunk = malloc(n);
            if (chunk) memcpy(chunk, j->out.p + sent, n);
            sent = j->out.n;
            pthread_mutex_unlock(&j->mu);
            bool go = chunk && g->on_text(g->user, chunk, n);
            free(chunk);
            if (!go) atomic_store(&j->cancelled, true);
            pthread_mutex_lock(&j->mu);
        }
        if (j->done) break;
        if (g->cancel && atomic_load(g->cancel)) atomic_store(&j->cancelled, true);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
        pthread_cond_timedwait(&j->cv, &j->mu, &ts);
    }
    *res = j->res;
    hai_status st = j->status;
    if (st) hai_fail(err, st, "%s", j->error);
    for (size_t i = 0; !st && g->on_token && i < j->n_tokens; i++) g->on_token(g->user, j->tokens[i]);
    pthread_mutex_unlock(&j->mu);
    srv_job_release(j);
    return st;
}

static void routed_free(routed *rt) {
    api_request_free(&rt->ar);
    free(rt->tool_choice);
    free(rt);
}

/* Where the text shown comes from, set before the first of it. */
static void channel_source(void *user, bool from_cloud) {
    srv_job *j = ((routed *)user)->out;
    pthread_mutex_lock(&j->mu);
    j->from_cloud = from_cloud;
    pthread_mutex_unlock(&j->mu);
}

/* Cascade with tools: a local answer that opens a call it does not finish, writes a call outside
 * the syntax, or makes no call where one is required, is escalated like an unsure one. */
static bool channel_broken(void *user, const char *text, size_t len) {
    const routed *rt = user;
    return chat_call_broken(rt->om.syn, rt->om.in_think, rt->om.forced, text, len);
}

static void *route_runner(void *arg) {
    routed *rt = arg;
    server *s = rt->s;
    runner *me = rt->me;
    hybrid_plan snapshot = rt->plan; /* what the JSON reports; execute frees the prompt */
    snapshot.prompt = NULL;
    snapshot.scans = NULL;
    snapshot.n_scans = 0;
    hybrid_result res;
    hai_error err = {0};
    hybrid_local local = {engine_generate, s};
    hai_status st = hybrid_execute(s->hyb, &rt->hr, &rt->plan, &local, &res, &err);
    char *json = hybrid_route_json(&snapshot, &res);
    for (int r = 0; r < R_COUNT; r++)
        if (res.reasons & (1u << r)) metrics_route(&s->met, route_name(res.route), route_reason_name((route_reason)r));
    if (res.cloud_tokens) metrics_cloud_tokens(&s->met, res.cloud_tokens);
    srv_job *j = rt->out;
    pthread_mutex_lock(&j->mu);
    j->res.finish = res.finish;
    j->res.n_prompt = res.prompt_tokens - res.cached_tokens;
    j->res.n_cached = res.cached_tokens;
    j->res.n_generated = res.completion_tokens;
    j->route_json = json;
    hybrid_route_header(res.route, res.reasons, j->route_header, sizeof j->route_header);
    j->status = st;
    if (st) snprintf(j->error, sizeof j->error, "%s", err.msg);
    j->done = true;
    srv_job_signal(j);
    pthread_mutex_unlock(&j->mu);
    srv_job_release(j);
    routed_free(rt);
    atomic_store(&me->done, true); /* from here on it touches nothing of the server's */
    return NULL;
}

/* Joins and frees the runners that have finished. */
static void reap_runners(server *s, bool all) {
    pthread_mutex_lock(&s->runners_mu);
    runner **pp = &s->runners;
    while (*pp) {
        runner *r = *pp;
        if (all || atomic_load(&r->done)) {
            *pp = r->next;
            pthread_mutex_unlock(&s->runners_mu); /* a join may wait for the runner's last steps */
            pthread_join(r->th, NULL);
            srv_job_release(r->job);
            free(r);
            pthread_mutex_lock(&s->runners_mu);
            pp = &s->runners; /* the list may have changed meanwhile */
        } else {
            pp = &r->next;
        }
    }
    pthread_mutex_unlock(&s->runners_mu);
}

/* At shutdown, after the grace period: every routed request still running is cancelled. */
static void cancel_runners(server *s) {
    pthread_mutex_lock(&s->runners_mu);
    for (runner *r = s->runners; r; r = r->next) {
        atomic_store(&r->job->shutdown, true);
        atomic_store(&r->job->cancelled, true);
    }
    pthread_mutex_unlock(&s->runners_mu);
}

/* A chat completion (or a response) through the router: the local prompt, the tools' grammar and
 * how answers are read are the caller's (as without the router); the prompt tokens are taken. */
static enum MHD_Result routed_completion(server *s, struct MHD_Connection *c, request *rq, api_request *ar, const out_mode *om,
                                         hai_grammar_trigger trig, hai_token *ids, size_t n_ids, resp_req *rrp) {
    routed *rt = calloc(1, sizeof *rt);
    srv_job *j = srv_job_new();
    if (!rt || !j || (ar->tools_json && !(rt->tool_choice = api_tool_choice_json(ar)))) {
        if (rt) free(rt->tool_choice);
        free(rt);
        free(ids);
        srv_job_release(j);
        api_request_free(ar);
        return send_error(s, c, rq->endpoint, 500, "server_error", NULL, "out of memory");
    }
    rt->s = s;
    rt->ar = *ar; /* take ownership */
    rt->out = j;
    rt->om = *om;
    hybrid_request *hr = &rt->hr;
    hr->msgs = rt->ar.msgs;
    hr->n_msgs = rt->ar.n_msgs;
    hr->model = rt->ar.model;
    hr->max_tokens = rt->ar.max_tokens;
    hr->sp = rt->ar.sp;
    hr->greedy = rt->ar.sp.temperature <= 0;
    hr->has_seed = rt->ar.has_seed;
    hr->has_temperature = rt->ar.has_temperature;
    hr->has_top_p = rt->ar.has_top_p;
    if (!hr->has_seed) hr->sp.seed = (uint64_t)time(NULL) ^ (uint64_t)atomic_fetch_add(&s->next_id, 1) * 0x9E3779B97F4A7C15ull;
    hr->stop = (const char *const *)rt->ar.stop;
    hr->n_stop = rt->ar.n_stop;
    hr->on_text = channel_text;
    hr->on_source = channel_source;
    hr->user = rt;
    hr->cancel = &j->cancelled;
    hr->prompt = ids;
    hr->n_prompt = n_ids;
    hr->tools = rt->ar.tools_json;
    hr->tool_choice = rt->tool_choice;
    hr->parallel_tool_calls = rt->ar.tools_json ? (rt->ar.parallel ? 1 : -1) : 0;
    hr->tools_template = tools_shown(hai_tokenizer_chat_template(hai_model_tokenizer(s->m)));
    hr->response_format = rt->ar.response_format_json;
    hr->grammar = rt->ar.grammar;
    hr->trigger = trig;
    hr->special_text = om->tools && om->syn != TOOLS_HERMES && om->syn != TOOLS_GENERIC;
    if (om->tools) hr->answer_broken = channel_broken;
    const char *dl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Hai-Deadline-Ms");
    if (dl) hr->deadline_ms = atof(dl);
    hai_error err = {0};
    hai_status pst = hybrid_plan_request(s->hyb, hr, &rt->plan, &err);
    free(ids); /* the plan has its copy */
    hr->prompt = NULL;
    if (pst != HAI_OK) {
        routed_free(rt);
        srv_job_release(j);
        return send_error(s, c, rq->endpoint, pst == HAI_ERR_NOMEM ? 500 : 400, pst == HAI_ERR_NOMEM ? "server_error" : "invalid_request_error",
                          "messages", "%s", err.msg);
    }
    char header[160];
    hybrid_route_header(rt->plan.d.route, rt->plan.d.reasons, header, sizeof header);
    bool stream_req = rt->ar.stream, usage = rt->ar.include_usage;
    char id[48];
    snprintf(id, sizeof id, "%s%lx%06lx", rrp ? "resp_" : "chatcmpl-", (unsigned long)time(NULL), (unsigned long)atomic_fetch_add(&s->next_id, 1));
    reap_runners(s, false);
    runner *me = calloc(1, sizeof *me);
    if (!me) {
        hybrid_plan_cancel(s->hyb, &rt->plan);
        routed_free(rt);
        srv_job_release(j);
        return send_error(s, c, rq->endpoint, 500, "server_error", NULL, "out of memory");
    }
    rt->me = me;
    me->job = j;
    j->refs += 2; /* the runner's and the runner list's */
    atomic_init(&me->done, false);
    pthread_mutex_lock(&s->runners_mu);
    if (pthread_create(&me->th, NULL, route_runner, rt) != 0) {
        pthread_mutex_unlock(&s->runners_mu);
        j->refs -= 2;
        free(me);
        hybrid_plan_cancel(s->hyb, &rt->plan);
        routed_free(rt);
        srv_job_release(j);
        return send_error(s, c, rq->endpoint, 503, "server_error", NULL, "cannot start a request thread");
    }
    me->next = s->runners;
    s->runners = me;
    pthread_mutex_unlock(&s->runners_mu);
    api_result res = {.id = id, .model = s->model_id, .created = (long)time(NULL)};
    srv_notify *note = srv_notify_new();
    if (!note) {
        atomic_store(&j->cancelled, true);
        srv_job_release(j);
        return send_error(s, c, rq->endpoint, 500, "server_error", NULL, "out of memory");
    }
    pthread_mutex_lock(&j->mu);
    srv_notify_ref(note);
    j->notify = note; /* the runner signals through the job from here on */
    srv_job_signal(j);
    pthread_mutex_unlock(&j->mu);
    if (stream_req) return start_stream(s, c, rq, API_CHAT, &res, usage, om, rrp, &j, 1, note, header);
    bool here = wait_all(c, &j, 1, note);
    srv_notify_release(note);
    pthread_mutex_lock(&j->mu);
    res.text = j->out.p ? j->out.p : "";
    res.text_len = j->out.n;
    res.finish = j->res.finish == HAI_FINISH_LENGTH ? "length" : "stop";
    res.prompt_tokens = j->res.n_prompt + j->res.n_cached;
    res.completion_tokens = j->res.n_generated;
    res.cached_tokens = j->res.n_cached;
    res.route_json = j->route_json;
    hai_status status = j->status;
    char msg[HAI_ERROR_MSG_SIZE], final_header[160];
    snprintf(msg, sizeof msg, "%s", j->error);
    snprintf(final_header, sizeof final_header, "%s", j->route_header);
    out_mode jm = job_mode(om, j);
    chat_out parsed = {0};
    char(*call_ids)[40] = NULL;
    if (!status && here && jm.on && !out_final(&jm, res.text, res.text_len, &res, &parsed, &call_ids)) status = HAI_ERR_NOMEM, snprintf(msg, sizeof msg, "out of memory");
    char *body = NULL;
    if (!status && here && rrp) {
        resp_end end = {.input_tokens = res.prompt_tokens, .output_tokens = res.completion_tokens, .cached_tokens = res.cached_tokens,
                        .incomplete = !strcmp(res.finish, "length")};
        body = resp_object(s->rstore, rrp, id, s->model_id, res.created, &parsed, call_ids, NULL, 0, &end);
    } else if (!status && here) {
        body = api_response_json(API_CHAT, &res, &res, 1);
    }
    chat_out_free(&parsed);
    free(call_ids);
    bool down = atomic_load(&j->shutdown);
    pthread_mutex_unlock(&j->mu);
    srv_job_release(j);
    if (!here) {
        metrics_disconnect(&s->met);
        return MHD_NO;
    }
    if (status) return send_error(s, c, rq->endpoint, down ? 503 : status == HAI_ERR_LIMIT ? 429 : 500, "server_error", NULL, "%s", msg);
    if (!body) return send_error(s, c, rq->endpoint, 500, "server_error", NULL, "out of memory building the response");
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, "Content-Type", "application/json");
    MHD_add_response_header(r, "x-hai-route", final_header);
    common_headers(s, r);
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    metrics_request(&s->met, rq->endpoint, 200);
    return ret;
}

/* ---- completions ----------------------------------------------------------------------------------- */

/* A prompt's tokens: the chat format's, or a completions prompt (its special tokens parsed: the
 * raw prompt is the app's own template). */
static hai_status prompt_tokens(server *s, api_kind kind, const api_request *ar, const out_mode *om, size_t i, hai_token **ids, size_t *n,
                                hai_error *err) {
    bool turns = false; /* calls and results in the history */
    for (size_t k = 0; kind == API_CHAT && k < ar->n_msgs; k++) turns |= ar->msgs[k].tool_calls || !strcmp(ar->msgs[k].role, "tool");
    /* tools are shown with tool_choice none too (the model knows them, as OpenAI's do, and a tool
     * loop's prompts keep the same start, so the cache serves them): only calls are not read */
    bool show = kind == API_CHAT && ar->tools_json;
    if (kind == API_CHAT && !tools_shown(hai_tokenizer_chat_template(hai_model_tokenizer(s->m))) && (show || (turns && om->syn == TOOLS_GENERIC))) {
        /* a template that cannot show tools: hai's system message describes them (and, for one
         * that knows nothing of tools, the history's calls and results are written as text) */
        hai_chat_message *m = NULL;
        char **own = NULL;
        size_t nm = 0, no = 0;
        hai_status st = tools_prompt_messages(om->syn, show ? ar->tools_json : NULL, ar->msgs, ar->n_msgs, &m, &nm, &own, &no, err);
        hai_chat_params cp = hai_chat_default_params();
        cp.disable_thinking = ar->no_thinking;
        if (!st) st = hai_chat_tokenize(s->m, &cp, m, nm, ids, n, err);
        tools_messages_free(m, own, no);
        return st;
    }
    if (kind == API_CHAT) {
        hai_chat_params cp = hai_chat_default_params();
        cp.disable_thinking = ar->no_thinking;
        if (show) cp.tools = ar->tools_json;
        return hai_chat_tokenize(s->m, &cp, ar->msgs, ar->n_msgs, ids, n, err);
    }
    return hai_tokenize_alloc(hai_model_tokenizer(s->m), ar->prompts[i], strlen(ar->prompts[i]), HAI_TOKENIZE_ADD_SPECIAL | HAI_TOKENIZE_PARSE_SPECIAL, ids, n,
                              err);
}

/* One choice's job: its own copy of everything it reads (it may outlive the request). */
static srv_job *choice_job(server *s, const api_request *ar, const hai_token *ids, size_t n, int index, uint64_t seed, srv_job *leader,
                           srv_notify *note) {
    srv_job *j = srv_job_new();
    if (!j) return NULL;
    j->prompt = malloc(n * sizeof *ids);
    char **stops = calloc(API_MAX_STOP + 1, sizeof *stops);
    bool ok = j->prompt && stops;
    for (size_t i = 0; ok && i < ar->n_stop; i++) ok = (stops[i] = strdup(ar->stop[i])) != NULL; /* never a job without its stop strings */
    j->stop = (const char *const *)stops;
    j->stop_owned = stops;
    j->n_stop = ar->n_stop;
    if (ok && ar->n_bias && (ok = (j->bias_owned = malloc(ar->n_bias * sizeof *j->bias_owned)) != NULL))
        memcpy(j->bias_owned, ar->bias, ar->n_bias * sizeof *j->bias_owned);
    if (ok && ar->grammar) { /* compiled (and checked) by the caller: only out of memory fails here */
        ok = (j->grammar_text = strdup(ar->grammar)) != NULL && gpool_take(s->gpool, ar->grammar, &j->grammar, NULL) == HAI_OK;
        if (ok) j->gpool = s->gpool;
    }
    if (!ok) {
        srv_job_release(j);
        return NULL;
    }
    memcpy(j->prompt, ids, n * sizeof *ids);
    j->n_prompt = n;
    j->sp = ar->sp;
    j->sp.seed = seed;
    j->sp.logit_bias = j->bias_owned;
    j->greedy = ar->sp.temperature <= 0;
    j->top_logprobs = ar->top_logprobs;
    j->max_tokens = ar->max_tokens;
    j->deadline = s->o.timeout_s > 0 ? hai_time_s() + s->o.timeout_s : 0;
    j->index = index;
    if (leader) {
        pthread_mutex_lock(&leader->mu);
        leader->refs++;
        pthread_mutex_unlock(&leader->mu);
        j->leader = leader;
    }
    srv_notify_ref(note);
    j->notify = note;
    return j;
}

/* Chat and text completions, and the Responses API (responses: the request translated into a
 * chat request first, the answer written as a response object or its stream of events). */
static enum MHD_Result run_completion(server *s, struct MHD_Connection *c, request *rq, api_kind kind, api_request ar, resp_req *rrp);

static enum MHD_Result completion(server *s, struct MHD_Connection *c, request *rq, api_kind kind, bool responses) {
    api_request ar;
    api_error ae;
    resp_req rr = {0};
    char *chat_body = NULL;
    size_t chat_len = 0;
    if (responses && !resp_translate(s->rstore, rq->body.p, rq->body.n, &chat_body, &chat_len, &rr, &ae))
        return send_body(s, c, rq->endpoint, ae.status, "application/json", api_error_json(&ae));
    bool parsed_ok = api_parse(kind, responses ? chat_body : rq->body.p, responses ? chat_len : rq->body.n, &ar, &ae);
    free(chat_body);
    enum MHD_Result ret;
    if (!parsed_ok) {
        ret = send_body(s, c, rq->endpoint, ae.status, "application/json", api_error_json(&ae));
    } else {
        ret = run_completion(s, c, rq, kind, ar, responses ? &rr : NULL); /* it frees ar; a stream takes rr */
    }
    resp_req_free(&rr);
    return ret;
}

static enum MHD_Result run_completion(server *s, struct MHD_Connection *c, request *rq, api_kind kind, api_request ar, resp_req *rrp) {
    bool responses = rrp != NULL;
    for (size_t i = 0; i < ar.n_bias; i++) /* ids of this model's vocabulary */
        if (ar.bias[i].token >= hai_model_n_vocab(s->m)) {
            enum MHD_Result r = send_error(s, c, rq->endpoint, 400, "invalid_request_error", "logit_bias",
                                           "'logit_bias' names token %d; the vocabulary has %d tokens", ar.bias[i].token, hai_model_n_vocab(s->m));
            api_request_free(&ar);
            return r;
        }
    /* tools: how the answer is read, and the grammar that keeps its calls valid */
    out_mode om = {.tools = kind == API_CHAT && ar.tools_json && ar.choice != TOOL_CHOICE_NONE};
    om.forced = om.tools && (ar.choice == TOOL_CHOICE_REQUIRED || ar.choice == TOOL_CHOICE_NAMED);
    const char *tpl = hai_tokenizer_chat_template(hai_model_tokenizer(s->m));
    hai_grammar_trigger trig = {0};
    om.syn = tools_syntax(tpl);
    om.on = kind == API_CHAT && (responses || (!ar.raw_reasoning && (om.tools || (tpl && strstr(tpl, "<think>")))));
    /* a chat's prompt first: whether it opens <think> (R1 distills) shapes the answer's parse and the calls' grammar */
    hai_token *chat_ids = NULL;
    size_t chat_n = 0;
    hai_error chat_err = {0};
    hai_status chat_st = kind == API_CHAT ? prompt_tokens(s, kind, &ar, &om, 0, &chat_ids, &chat_n, &chat_err) : HAI_OK;
    if (!chat_st && om.on && chat_n) {
        char tail[64];
        size_t tl = 0, k = chat_n < 3 ? chat_n : 3;
        if (!hai_detokenize(hai_model_tokenizer(s->m), chat_ids + chat_n - k, k, HAI_DETOK_SPECIAL, tail, sizeof tail, &tl, NULL)) {
            while (tl && (tail[tl - 1] == '\n' || tail[tl - 1] == ' ')) tl--;
            om.in_think = tl >= 7 && !memcmp(tail + tl - 7, "<think>", 7);
        }
    }
    if (om.tools) {
        hai_error te = {0};
        hai_status ts = tools_grammar(om.syn, ar.tools, ar.n_tools, ar.choice, ar.named, ar.parallel, om.in_think, &ar.grammar, &trig, &te);
        if (ts) {
            enum MHD_Result r = send_error(s, c, rq->endpoint, ts == HAI_ERR_NOMEM ? 500 : 400, ts == HAI_ERR_NOMEM ? "server_error" : "invalid_request_error",
                                           "tools", "'tools': %s", te.msg);
            api_request_free(&ar);
            free(chat_ids);
            return r;
        }
        snprintf(ar.grammar_param, sizeof ar.grammar_param, "tools");
    }
    if (ar.grammar) { /* compiled against this model's vocabulary now, so a bad grammar is a 400 (kept for the jobs) */
        hai_error gerr = {0};
        hai_grammar *g = NULL;
        hai_status gst = gpool_take(s->gpool, ar.grammar, &g, &gerr);
        if (gst) {
            enum MHD_Result r = send_error(s, c, rq->endpoint, gst == HAI_ERR_NOMEM ? 500 : 400, gst == HAI_ERR_NOMEM ? "server_error" : "invalid_request_error",
                                           ar.grammar_param, "'%s': %s", ar.grammar_param, gerr.msg);
            api_request_free(&ar);
            free(chat_ids);
            return r;
        }
        gpool_give(s->gpool, ar.grammar, g);
    }
    /* the router's answers may come from a cloud: what a cloud cannot be asked for is refused
     * (several choices, logprobs, llama.cpp's own grammar fields); tools and response_format go
     * to either */
    bool own_grammar = ar.grammar && strcmp(ar.grammar_param, "tools") && strcmp(ar.grammar_param, "response_format");
    if (kind == API_CHAT && s->hyb && (ar.top_logprobs >= 0 || ar.n > 1 || own_grammar)) {
        const char *f = ar.n > 1 ? "n" : own_grammar ? ar.grammar_param : "logprobs";
        api_request_free(&ar);
        free(chat_ids);
        return send_error(s, c, rq->endpoint, 400, "invalid_request_error", f, "'%s' is not supported with --route-config yet", f);
    }
    if (kind == API_CHAT && s->hyb && chat_st) {
        enum MHD_Result r = send_error(s, c, rq->endpoint, chat_st == HAI_ERR_NOMEM ? 500 : 400, chat_st == HAI_ERR_NOMEM ? "server_error" : "invalid_request_error",
                                       "messages", "%s", chat_err.msg);
        api_request_free(&ar);
        free(chat_ids);
        return r;
    }
    if (kind == API_CHAT && s->hyb) return routed_completion(s, c, rq, &ar, &om, trig, chat_ids, chat_n, rrp);
    /* a choice per prompt and per n: choice p * n + k; the later choices of a prompt copy its cache */
    size_t n_prompts = kind == API_CHAT ? 1 : ar.n_prompts;
    int n_jobs = (int)n_prompts * ar.n;
    srv_job *jobs[API_MAX_CHOICES] = {0};
    srv_notify *note = srv_notify_new();
    uint64_t seed0 = ar.has_seed ? ar.sp.seed : (uint64_t)time(NULL) ^ (uint64_t)atomic_fetch_add(&s->next_id, 1) * 0x9E3779B97F4A7C15ull;
    uint32_t n_ctx = srv_engine_n_ctx(s->eng);
    enum MHD_Result ret = MHD_NO;
    bool replied = false;
    if (!note) {
        ret = send_error(s, c, rq->endpoint, 500, "server_error", NULL, "out of memory");
        replied = true;
    }
    for (size_t p = 0; !replied && p < n_prompts; p++) {
        hai_error err = {0};
        hai_token *ids = NULL;
        size_t n = 0;
        hai_status st = kind == API_CHAT ? chat_st : prompt_tokens(s, kind, &ar, &om, p, &ids, &n, &err);
        if (kind == API_CHAT) ids = chat_ids, n = chat_n, err = chat_err, chat_ids = NULL;
        const char *field = kind == API_CHAT ? "messages" : "prompt";
        if (st) {
            ret = send_error(s, c, rq->endpoint, st == HAI_ERR_NOMEM ? 500 : 400, st == HAI_ERR_NOMEM ? "server_error" : "invalid_request_error", field, "%s", err.msg);
            replied = true;
        } else if (n == 0 || n >= n_ctx) { /* OpenAI's code and wording: client libraries trim the history on exactly this */
            api_error e = {.status = 400, .type = "invalid_request_error", .code = "context_length_exceeded"};
            snprintf(e.param, sizeof e.param, "%s", field);
            snprintf(e.message, sizeof e.message,
                     "This model's maximum context length is %u tokens. However, your %s resulted in %zu tokens (and at least one "
                     "more is needed for the answer). Please reduce the length of the %s.",
                     n_ctx, field, n, field);
            ret = send_body(s, c, rq->endpoint, 400, "application/json", api_error_json(&e));
            replied = true;
        }
        for (int k = 0; !replied && k < ar.n; k++) {
            int idx = (int)p * ar.n + k;
            /* each choice a seed of its own: reproducible with the request's seed, different from the others */
            jobs[idx] = choice_job(s, &ar, ids, n, idx, seed0 + (uint64_t)idx * 0x9E3779B97F4A7C15ull, k ? jobs[p * (size_t)ar.n] : NULL, note);
            if (jobs[idx] && om.tools) {
                jobs[idx]->trigger = trig; /* static text */
                jobs[idx]->special_text = om.syn != TOOLS_HERMES && om.syn != TOOLS_GENERIC; /* markers that are control tokens */
            }
            if (!jobs[idx]) {
                ret = send_error(s, c, rq->endpoint, 500, "server_error", NULL, "out of memory");
                replied = true;
            }
        }
        free(ids);
    }
    free(chat_ids); /* not taken by the loop when it ended early */
    /* all or none: a choice that finds no room cancels the others */
    for (int i = 0; !replied && i < n_jobs; i++) {
        srv_submit sub = srv_engine_submit(s->eng, jobs[i]);
        if (sub == SUBMIT_OK) continue;
        for (int k = 0; k < i; k++) atomic_store(&jobs[k]->cancelled, true);
        if (sub == SUBMIT_STOPPING) ret = send_error(s, c, rq->endpoint, 503, "server_error", NULL, "the server is shutting down");
        else ret = send_error(s, c, rq->endpoint, 429, "rate_limit_exceeded", NULL,
                              "all %d slots are busy and the queue is full (%d choices asked); retry shortly", s->o.n_slots, n_jobs);
        replied = true;
    }
    bool stream_req = ar.stream, usage = ar.include_usage, want_lp = ar.top_logprobs >= 0;
    api_request_free(&ar);
    if (replied) {
        for (int i = 0; i < n_jobs; i++) srv_job_release(jobs[i]);
        srv_notify_release(note);
        return ret;
    }
    char id[48];
    snprintf(id, sizeof id, "%s%lx%06lx", responses ? "resp_" : kind == API_CHAT ? "chatcmpl-" : "cmpl-", (unsigned long)time(NULL),
             (unsigned long)atomic_fetch_add(&s->next_id, 1));
    api_result total = {.id = id, .model = s->model_id, .created = (long)time(NULL), .want_logprobs = want_lp};
    if (stream_req) return start_stream(s, c, rq, kind, &total, usage, &om, rrp, jobs, n_jobs, note, NULL);
    /* non-streaming: wait here, watching the socket */
    bool here = wait_all(c, jobs, n_jobs, note);
    srv_notify_release(note);
    api_result ch[API_MAX_CHOICES];
    lp_set lp[API_MAX_CHOICES] = {{0}};
    chat_out parsed[API_MAX_CHOICES] = {{0}};
    char(*ids[API_MAX_CHOICES])[40] = {0};
    hai_status status = HAI_OK;
    char msg[HAI_ERROR_MSG_SIZE] = "";
    bool down = false;
    for (int i = 0; i < n_jobs; i++) { /* done: the jobs are the worker's no more */
        srv_job *j = jobs[i];
        ch[i] = total;
        ch[i].index = j->index;
        ch[i].text = j->out.p ? j->out.p : "";
        ch[i].text_len = j->out.n;
        ch[i].finish = j->res.finish == HAI_FINISH_LENGTH ? "length" : "stop";
        total.completion_tokens += j->res.n_generated;
        if (!j->leader) total.prompt_tokens += j->res.n_prompt + j->res.n_cached, total.cached_tokens += j->res.n_cached;
        if (j->status && !status) {
            status = j->status;
            snprintf(msg, sizeof msg, "%s", j->error);
            down = atomic_load(&j->shutdown);
        }
        if (!status && j->top_logprobs >= 0 && !lp_render(s, j->lp, j->n_lp, &lp[i])) status = HAI_ERR_NOMEM, snprintf(msg, sizeof msg, "out of memory");
        ch[i].lp = lp[i].v, ch[i].n_lp = lp[i].n;
        if (!status && om.on && !out_final(&om, ch[i].text, ch[i].text_len, &ch[i], &parsed[i], &ids[i]))
            status = HAI_ERR_NOMEM, snprintf(msg, sizeof msg, "out of memory");
    }
    char *body = NULL;
    if (!status && here && responses) { /* one answer, as a response object */
        resp_end end = {.input_tokens = total.prompt_tokens, .output_tokens = total.completion_tokens, .cached_tokens = total.cached_tokens,
                        .incomplete = !strcmp(ch[0].finish, "length")};
        body = resp_object(s->rstore, rrp, id, s->model_id, total.created, &parsed[0], ids[0], NULL, 0, &end);
    } else if (!status && here) {
        body = api_response_json(kind, &total, ch, (size_t)n_jobs);
    }
    for (int i = 0; i < n_jobs; i++) {
        lp_free(&lp[i]);
        chat_out_free(&parsed[i]);
        free(ids[i]);
        srv_job_release(jobs[i]);
    }
    if (!here) {
        free(body);
        metrics_disconnect(&s->met);
        metrics_request(&s->met, rq->endpoint, 499);
        return MHD_NO; /* nobody to answer */
    }
    if (status == HAI_ERR_CANCELLED && down) return send_error(s, c, rq->endpoint, 503, "server_error", NULL, "%s", msg);
    if (status == HAI_ERR_CANCELLED) return send_error(s, c, rq->endpoint, 504, "timeout", NULL, "%s", msg);
    if (status) return send_error(s, c, rq->endpoint, 500, "server_error", NULL, "%s", msg);
    if (!body) return send_error(s, c, rq->endpoint, 500, "server_error", NULL, "out of memory building the response");
    return send_body(s, c, rq->endpoint, 200, "application/json", body);
}

/* ---- the chat page ------------------------------------------------------------------------------- */

/* A file of the page: no API key needed (it holds no data; its requests to the API carry the
 * key), no CORS, and headers that keep it to its own files. */
static enum MHD_Result send_page(server *s, struct MHD_Connection *c, const page_asset *a) {
    struct MHD_Response *r = MHD_create_response_from_buffer(a->len, (void *)a->data, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, "Content-Type", a->type);
    MHD_add_response_header(r, "Content-Security-Policy", PAGE_CSP);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    enum MHD_Result ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    metrics_request(&s->met, "page", 200);
    return ret;
}


/* GET /hai/status: what the chat page shows about this server - the model, its memory, the
 * router's shape. */
static char *status_json(server *s) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", s->model_id);
    cJSON_AddStringToObject(o, "version", hai_version());
    cJSON_AddNumberToObject(o, "slots", s->o.n_slots);
    cJSON_AddNumberToObject(o, "n_ctx", srv_engine_n_ctx(s->eng));
    cJSON *m = cJSON_AddObjectToObject(o, "memory");
    cJSON_AddNumberToObject(m, "weights_bytes", (double)(hai_model_weights_bytes(s->m) + (s->dm ? hai_model_weights_bytes(s->dm) : 0)));
    cJSON_AddNumberToObject(m, "context_bytes", (double)srv_engine_memory_bytes(s->eng));
    cJSON_AddNumberToObject(m, "rss_bytes", (double)hai_rss_bytes());
    cJSON *rt = cJSON_AddObjectToObject(o, "router");
    cJSON_AddBoolToObject(rt, "enabled", s->hyb != NULL);
    const char *cm = s->hyb ? hybrid_cloud_model(s->hyb) : NULL;
    cJSON_AddBoolToObject(rt, "cloud", cm != NULL);
    if (cm) cJSON_AddStringToObject(rt, "cloud_model", cm);
    cJSON_AddBoolToObject(rt, "offline", s->hyb && hybrid_policy(s->hyb)->offline);
    char *j = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return j;
}

/* ---- routing --------------------------------------------------------------------------------------- */

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *upload_data, size_t *upload_size, void **req_cls) {
    (void)version;
    server *s = cls;
    request *rq = *req_cls;
    if (!rq) { /* headers are in: decide what we can before any body arrives */
        rq = calloc(1, sizeof *rq);
        if (!rq) return MHD_NO;
        *req_cls = rq;
        snprintf(rq->endpoint, sizeof rq->endpoint, "%s", url);
        bool refused;
        enum MHD_Result fr = check_framing(s, c, rq, &refused);
        if (refused) return fr;
        const char *has_body = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (!has_body) has_body = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Transfer-Encoding");
        conns_set_state(s->cs, conn_of(c), has_body && strcmp(has_body, "0") ? CONN_BODY : CONN_BUSY, hai_time_s());
        page_asset pa;
        if (page_find(url, &pa)) {
            rq->headers_done = true;
            snprintf(rq->endpoint, sizeof rq->endpoint, "page");
            if (strcmp(method, "GET") && strcmp(method, "HEAD")) return send_error(s, c, "page", 405, "invalid_request_error", NULL, "%s needs GET", url);
            return send_page(s, c, &pa);
        }
        bool known = !strcmp(url, "/hai/status") || !strcmp(url, "/v1/chat/completions") || !strcmp(url, "/v1/completions") || !strcmp(url, "/v1/responses") || !strcmp(url, "/v1/models") ||
                     !strcmp(url, "/v1/embeddings") ||
                     !strncmp(url, "/v1/models/", 11) || !strncmp(url, "/v1/responses/", 14) || !strcmp(url, "/health") || !strcmp(url, "/metrics");
        if (!strncmp(url, "/v1/models/", 11)) snprintf(rq->endpoint, sizeof rq->endpoint, "/v1/models/{id}");
        if (!strncmp(url, "/v1/responses/", 14)) snprintf(rq->endpoint, sizeof rq->endpoint, "/v1/responses/{id}");
        if (!known) {
            snprintf(rq->endpoint, sizeof rq->endpoint, "other");
            rq->headers_done = true;
            return send_error(s, c, "other", 404, "invalid_request_error", NULL, "no such endpoint: %.64s", url);
        }
        if (!strcmp(method, "OPTIONS") && s->o.cors_origin) { /* CORS preflight */
            struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
            common_headers(s, r);
            MHD_add_response_header(r, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
            /* the headers the browser asks to send, when they are header names: the SDKs send
             * their own (openai-node: X-Stainless-*, OpenAI-Organization, ...), and a fixed list
             * falls behind them; "*" does not cover Authorization */
            const char *want = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Access-Control-Request-Headers");
            MHD_add_response_header(r, "Access-Control-Allow-Headers", want && header_list_ok(want) ? want : "Authorization, Content-Type");
            MHD_add_response_header(r, "Access-Control-Expose-Headers", "x-hai-route, Retry-After");
            MHD_add_response_header(r, "Access-Control-Max-Age", "600");
            enum MHD_Result ret = MHD_queue_response(c, 204, r);
            MHD_destroy_response(r);
            rq->headers_done = true;
            return ret;
        }
        if (s->o.api_key && strcmp(url, "/health")) {
            const char *tok = bearer_token(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization"));
            if (!key_ok(tok, s->o.api_key)) {
                rq->headers_done = true;
                return send_error(s, c, rq->endpoint, 401, "invalid_request_error", NULL,
                                  "missing or wrong API key (send Authorization: Bearer <key>)");
            }
        }
        bool post = !strncmp(url, "/v1/c", 5) || !strcmp(url, "/v1/responses") || !strcmp(url, "/v1/embeddings");
        bool one_response = !strncmp(url, "/v1/responses/", 14); /* GET or DELETE */
        if (strcmp(method, post ? "POST" : "GET") && !(one_response && !strcmp(method, "DELETE"))) {
            rq->headers_done = true;
            return send_error(s, c, rq->endpoint, 405, "invalid_request_error", NULL, "%s needs %s", url,
                              post ? "POST" : one_response ? "GET or DELETE" : "GET");
        }
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > s->o.max_body) {
            rq->headers_done = true;
            return send_error(s, c, rq->endpoint, 413, "invalid_request_error", NULL, "the body of %s bytes is over the limit of %zu",
                              cl, s->o.max_body);
        }
        return MHD_YES;
    }
    if (rq->headers_done) { /* a response was already queued at the headers */
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size) { /* a piece of the body */
        if (!rq->too_large) {
            if (rq->body.n + *upload_size > s->o.max_body) {
                rq->too_large = true;
                text_free(&rq->body);
            } else if (!text_put(&rq->body, upload_data, *upload_size)) {
                return MHD_NO;
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }
    /* the whole request is in */
    rq->headers_done = true;
    conns_set_state(s->cs, conn_of(c), CONN_BUSY, hai_time_s());
    if (rq->too_large)
        return send_error(s, c, rq->endpoint, 413, "invalid_request_error", NULL, "the body is over the limit of %zu bytes", s->o.max_body);
    if (!strcmp(url, "/health")) return send_body(s, c, "/health", 200, "application/json", strdup("{\"status\":\"ok\"}"));
    if (!strcmp(url, "/hai/status")) {
        char *j = status_json(s);
        return j ? send_body(s, c, "/hai/status", 200, "application/json", j) : send_error(s, c, "/hai/status", 500, "server_error", NULL, "out of memory");
    }
    if (!strcmp(url, "/metrics")) {
        int q, busy;
        srv_engine_load(s->eng, &q, &busy);
        metrics_gauges(&s->met, q, busy);
        char *text = metrics_text(&s->met);
        return text ? send_body(s, c, "/metrics", 200, "text/plain; version=0.0.4", text)
                    : send_error(s, c, "/metrics", 500, "server_error", NULL, "out of memory");
    }
    if (!strncmp(url, "/v1/responses/", 14)) { /* a stored response: retrieved or deleted */
        const char *id = url + 14;
        bool del = !strcmp(method, "DELETE");
        char *body = del ? resp_store_delete(s->rstore, id) : resp_store_object(s->rstore, id);
        if (!body) {
            api_error e = {.status = 404, .type = "invalid_request_error"};
            snprintf(e.message, sizeof e.message, "Response with id '%.64s' not found.", id);
            return send_body(s, c, rq->endpoint, 404, "application/json", api_error_json(&e));
        }
        return send_body(s, c, rq->endpoint, 200, "application/json", body);
    }
    if (!strncmp(url, "/v1/models/", 11)) { /* one model: this one, or 404 as OpenAI words it */
        const char *id = url + 11;
        if (strcmp(id, s->model_id)) {
            api_error e = {.status = 404, .type = "invalid_request_error", .code = "model_not_found"};
            snprintf(e.param, sizeof e.param, "model");
            snprintf(e.message, sizeof e.message, "The model '%.128s' does not exist (this server has '%s')", id, s->model_id);
            return send_body(s, c, rq->endpoint, 404, "application/json", api_error_json(&e));
        }
        char buf[512];
        snprintf(buf, sizeof buf, "{\"id\":\"%s\",\"object\":\"model\",\"created\":%ld,\"owned_by\":\"hai\"}", s->model_id, s->created);
        return send_body(s, c, rq->endpoint, 200, "application/json", strdup(buf));
    }
    if (!strcmp(url, "/v1/models")) {
        char buf[512];
        snprintf(buf, sizeof buf, "{\"object\":\"list\",\"data\":[{\"id\":\"%s\",\"object\":\"model\",\"created\":%ld,\"owned_by\":\"hai\"}]}",
                 s->model_id, s->created);
        return send_body(s, c, "/v1/models", 200, "application/json", strdup(buf));
    }
    if (atomic_load(&s->draining)) return send_error(s, c, rq->endpoint, 503, "server_error", NULL, "the server is shutting down");
    rq->counted = true;
    atomic_fetch_add(&s->in_flight, 1);
    if (!strcmp(url, "/v1/responses")) return completion(s, c, rq, API_CHAT, true);
    if (!strcmp(url, "/v1/embeddings")) {
        int status = 500;
        char *body = srv_embeddings(s->emb, s->model_id, rq->body.p ? rq->body.p : "", rq->body.n, &status);
        return body ? send_body(s, c, "/v1/embeddings", status, "application/json", body)
                    : send_error(s, c, "/v1/embeddings", 500, "server_error", NULL, "out of memory");
    }
    return completion(s, c, rq, !strcmp(url, "/v1/chat/completions") ? API_CHAT : API_COMPLETION, false);
}

static void completed(void *cls, struct MHD_Connection *c, void **req_cls, enum MHD_RequestTerminationCode code) {
    (void)code;
    server *s = cls;
    conns_set_state(s->cs, conn_of(c), CONN_WAITING, hai_time_s()); /* for the next request on it */
    request *rq = *req_cls;
    if (!rq) return;
    if (rq->counted) atomic_fetch_sub(&s->in_flight, 1);
    text_free(&rq->body);
    free(rq);
    *req_cls = NULL;
}

/* libmicrohttpd's connection notices: the bookkeeping of conns.h */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context, enum MHD_ConnectionNotificationCode code) {
    server *s = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *fd = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        const union MHD_ConnectionInfo *ad = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        *socket_context = fd && ad ? conns_opened(s->cs, fd->connect_fd, ad->client_addr, sizeof(struct sockaddr_in6), hai_time_s()) : NULL;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        conns_closed(s->cs, *socket_context);
        *socket_context = NULL;
    }
}

static enum MHD_Result accept_policy(void *cls, const struct sockaddr *addr, socklen_t len) {
    server *s = cls;
    if (atomic_load(&s->draining)) return MHD_NO;
    return conns_admit(s->cs, addr, len, hai_time_s()) ? MHD_YES : MHD_NO;
}

/* ---- the server ---------------------------------------------------------------------------------------- */

static void model_id_from_path(const char *path, char *out, size_t cap) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    size_t n = strlen(b);
    if (n > 5 && !strcmp(b + n - 5, ".gguf")) n -= 5;
    if (n >= cap) n = cap - 1;
    memcpy(out, b, n);
    out[n] = '\0';
}

/* Waits until no completion request is in flight, or until the time runs out; true if none is. */
static bool wait_idle(server *s, double seconds) {
    for (double end = hai_time_s() + seconds; atomic_load(&s->in_flight) > 0; usleep(20 * 1000))
        if (hai_time_s() >= end) return false;
    return true;
}

/* Stopping (SIGTERM, SIGINT): stop accepting; queued requests get a 503 (or a final error event)
 * at once; requests already on a slot or with the router have the grace period to finish, then
 * are cancelled with a final error event; then every thread that holds the engine, the router or
 * the model is joined before any of them is freed. */
static void shut_down(server *s, struct MHD_Daemon *d) {
    fprintf(stderr, "hai serve: stopping (%d requests in flight, %.0f s to finish)\n", atomic_load(&s->in_flight), s->o.shutdown_grace_s);
    fflush(stderr);
    atomic_store(&s->draining, true);
    MHD_socket listen_fd = MHD_quiesce_daemon(d); /* no new connections; closed after MHD_stop_daemon */
    srv_engine_drain(s->eng);
    conns_close_waiting(s->cs);
    if (!wait_idle(s, s->o.shutdown_grace_s)) {
        fprintf(stderr, "hai serve: cancelling %d requests\n", atomic_load(&s->in_flight));
        srv_engine_cancel_running(s->eng);
        cancel_runners(s);
        wait_idle(s, 30); /* a cancelled request ends within a decode step; a client may still be reading */
    }
    MHD_stop_daemon(d); /* joins the connection threads */
    if (listen_fd != MHD_INVALID_SOCKET) close(listen_fd);
    reap_runners(s, true);
}

int hai_serve(const hai_serve_options *opt) {
    server *s = calloc(1, sizeof *s);
    if (!s) return 1;
    s->o = *opt;
    if (!s->o.host) s->o.host = "127.0.0.1";
    if (!s->o.n_slots) s->o.n_slots = 2;
    if (!s->o.max_body) s->o.max_body = 1 << 20;
    if (s->o.timeout_s == 0) s->o.timeout_s = 600;
    if (s->o.shutdown_grace_s <= 0) s->o.shutdown_grace_s = 10;
    s->created = (long)time(NULL);
    metrics_init(&s->met, s->o.n_slots);
    pthread_mutex_init(&s->runners_mu, NULL);
    hai_error err = {0};
    int rc = 1;
    struct MHD_Daemon *d = NULL;
    conn_limits cl = {.max_total = s->o.max_connections, .max_per_addr = s->o.max_connections_per_addr,
                      .idle_timeout_s = s->o.idle_timeout_s, .body_timeout_s = s->o.body_timeout_s};
    if (!(s->cs = conns_create(&cl))) {
        hai_fail(&err, HAI_ERR_NOMEM, "out of memory");
        goto fail;
    }
    hai_model_params mp = hai_model_default_params();
    mp.mmap_weights = s->o.mmap_weights;
    mp.mem_budget = s->o.mem_budget;
    mp.stream = s->o.stream, mp.stream_cache = s->o.stream_cache;
    if (hai_model_load(s->o.model_path, &mp, &s->m, &err) != HAI_OK) goto fail;
    model_id_from_path(s->o.model_path, s->model_id, sizeof s->model_id);
    /* the last 1024 responses' conversations and items, up to 64 MiB */
    if (!(s->gpool = gpool_new(hai_model_tokenizer(s->m), 16)) || !(s->rstore = resp_store_new(1024, 64u << 20))) {
        hai_fail(&err, HAI_ERR_NOMEM, "out of memory");
        goto fail;
    }
    hai_model_params dp = mp; /* under a budget the draft counts there, in memory (a draft read from storage would gain nothing) */
    if (s->o.mem_budget) dp.budget_of = s->m, dp.stream = HAI_STREAM_OFF;
    if (s->o.draft_path && (hai_model_load(s->o.draft_path, &dp, &s->dm, &err) != HAI_OK || hai_draft_check(s->m, s->dm, &err) != HAI_OK))
        goto fail;
    srv_engine_params ep = {.context_shift = s->o.context_shift, .n_slots = s->o.n_slots, .max_queue = s->o.max_queue, .n_ctx = s->o.n_ctx, .kv_type = s->o.kv_type, .n_threads = s->o.n_threads,
                            .draft_lookup = s->o.draft_lookup ? s->o.draft_lookup : s->dm ? 4 : 0, .draft_model = s->dm};
    if (srv_engine_start(s->m, &ep, &s->met, &s->eng, &err) != HAI_OK) goto fail;
    if (!(s->emb = srv_embedder_new(s->m, srv_engine_n_ctx(s->eng), s->o.n_threads))) {
        hai_fail(&err, HAI_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (s->o.route_config) {
        hybrid_config hc;
        if (hybrid_config_load(s->o.route_config, &hc, &err) != HAI_OK) goto fail;
        hai_status hst = hybrid_create(&hc, s->m, srv_engine_n_ctx(s->eng), &s->hyb, &err);
        hybrid_config_free(&hc);
        if (hst) goto fail;
    }
    struct sockaddr_storage sa;
    memset(&sa, 0, sizeof sa);
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | MHD_USE_ITC;
    struct sockaddr_in *s4 = (struct sockaddr_in *)&sa;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&sa;
    if (inet_pton(AF_INET, s->o.host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons(s->o.port);
    } else if (inet_pton(AF_INET6, s->o.host, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(s->o.port);
        flags |= MHD_USE_IPv6;
    } else {
        fprintf(stderr, "hai serve: --host must be an IPv4 or IPv6 address, not '%s'\n", s->o.host);
        goto out;
    }
    /* libmicrohttpd's own limits sit above conns.h's: connections being closed for room still
     * count for it until their threads have ended; its idle timeout is the backstop for a
     * client that stops reading an answer */
    unsigned mhd_limit = (unsigned)(s->o.max_connections > 0 ? s->o.max_connections : 128) + 64;
    d = MHD_start_daemon(flags, s->o.port, accept_policy, s, handler, s, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_NOTIFY_COMPLETED,
                         completed, s, MHD_OPTION_NOTIFY_CONNECTION, on_connection, s, MHD_OPTION_CONNECTION_LIMIT, mhd_limit,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
                         MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "hai serve: cannot listen on %s:%u (%s)\n", s->o.host, s->o.port, strerror(errno));
        goto out;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    fprintf(stderr, "hai serve: %s on http://%s:%u  (%d slots x %u context, %s kernels%s%s)\n", s->model_id, s->o.host,
            di ? di->port : s->o.port, s->o.n_slots, srv_engine_n_ctx(s->eng), hai_kernels_name(), s->o.api_key ? ", API key required" : "",
            s->hyb ? (hybrid_policy(s->hyb)->cloud_enabled ? ", routing local/cloud" : ", routing (no cloud configured)") : "");
    char wb[160];
    uint32_t f16_ctx, kv = srv_engine_kv_type(s->eng, &f16_ctx);
    if (kv != HAI_TYPE_F16 && !s->o.kv_type)
        fprintf(stderr, "hai serve: KV cache %s, chosen by the memory budget: an F16 cache would hold %u tokens a slot\n", hai_type_name(kv), f16_ctx);
    else if (s->o.kv_type)
        fprintf(stderr, "hai serve: KV cache %s\n", hai_type_name(kv));
    char db[64] = "";
    if (s->dm) snprintf(db, sizeof db, " + draft weights %.1f MiB", hai_model_weights_bytes(s->dm) / 1048576.0);
    if (s->o.mem_budget)
        fprintf(stderr, "hai serve: memory budget %.1f MiB: %s%s + slots %.1f MiB; %.1f MiB left (embeddings take theirs at the first request)\n",
                s->o.mem_budget / 1048576.0, hai_model_weights_text(s->m, wb, sizeof wb), db, srv_engine_memory_bytes(s->eng) / 1048576.0,
                hai_model_budget_left(s->m) / 1048576.0);
    else if (hai_model_stream_stats(s->m, &(hai_stream_stats){0}))
        fprintf(stderr, "hai serve: %s\n", hai_model_weights_text(s->m, wb, sizeof wb));
    fflush(stderr);
    while (!s->o.stop || !*s->o.stop) {
        usleep(100 * 1000);
        conns_sweep(s->cs, hai_time_s()); /* idle and slow connections */
    }
    shut_down(s, d);
    d = NULL;
    fprintf(stderr, "hai serve: stopped\n");
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "hai serve: error: %s\n", err.msg);
out:
    if (d) MHD_stop_daemon(d);
    reap_runners(s, true);
    srv_engine_stop(s->eng);
    gpool_free(s->gpool); /* after the engine: its jobs give their grammars back */
    resp_store_free(s->rstore);
    hybrid_free(s->hyb);
    srv_embedder_free(s->emb);
    hai_model_free(s->m);
    hai_model_free(s->dm);
    conns_free(s->cs);
    metrics_destroy(&s->met);
    pthread_mutex_destroy(&s->runners_mu);
    free(s);
    return rc;
}
