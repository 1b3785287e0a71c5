/* POST /v1/embeddings in OpenAI's shape (see embeddings.h). */
#include "embeddings.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

#define MAX_INPUTS 2048
#define EMBED_SEQS 4 /* inputs a forward pass: the context holds this many sequences of n_ctx */

struct srv_embedder {
    const hai_model *m;
    uint32_t n_ctx;
    int n_threads;
    pthread_mutex_t mu; /* one embedding at a time on the context */
    hai_context *c;     /* made at the first request */
};

srv_embedder *srv_embedder_new(const hai_model *m, uint32_t n_ctx, int n_threads) {
    srv_embedder *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    e->m = m, e->n_ctx = n_ctx, e->n_threads = n_threads;
    pthread_mutex_init(&e->mu, NULL);
    return e;
}

void srv_embedder_free(srv_embedder *e) {
    if (!e) return;
    hai_context_free(e->c);
    pthread_mutex_destroy(&e->mu);
    free(e);
}

static char *fail(int *status, int code, const char *param, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static char *fail(int *status, int code, const char *param, const char *fmt, ...) {
    api_error e = {.status = code, .type = code >= 500 ? "server_error" : "invalid_request_error"};
    snprintf(e.param, sizeof e.param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.message, sizeof e.message, fmt, ap);
    va_end(ap);
    *status = code;
    return api_error_json(&e);
}

/* base64 of n floats' bytes (little-endian, as OpenAI's encoding_format "base64" gives them) */
static char *base64_floats(const float *v, size_t n) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *b = (const unsigned char *)v;
    size_t len = n * sizeof *v, o = 0;
    char *out = malloc((len + 2) / 3 * 4 + 1);
    if (!out) return NULL;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t x = (uint32_t)b[i] << 16 | (i + 1 < len ? (uint32_t)b[i + 1] << 8 : 0) | (i + 2 < len ? b[i + 2] : 0);
        out[o++] = tab[x >> 18 & 63], out[o++] = tab[x >> 12 & 63];
        out[o++] = i + 1 < len ? tab[x >> 6 & 63] : '=';
        out[o++] = i + 2 < len ? tab[x & 63] : '=';
    }
    out[o] = '\0';
    return out;
}

/* The token ids of one input: a string (tokenized), or an array of ids (free with hai_free); an
 * error's JSON (and *status) when it is neither. */
static char *input_tokens(srv_embedder *e, const cJSON *in, size_t index, hai_token **ids, size_t *n, int *status) {
    *ids = NULL, *n = 0;
    if (cJSON_IsString(in)) {
        if (!*in->valuestring) return fail(status, 400, "input", "input %zu is an empty string", index);
        hai_error err = {0};
        if (hai_tokenize_alloc(hai_model_tokenizer(e->m), in->valuestring, strlen(in->valuestring), HAI_TOKENIZE_ADD_SPECIAL, ids, n, &err))
            return fail(status, 400, "input", "input %zu: %s", index, err.msg);
        return NULL;
    }
    int k = cJSON_GetArraySize(in);
    if (!cJSON_IsArray(in) || k == 0) return fail(status, 400, "input", "input %zu is neither a string nor an array of token ids", index);
    if (!(*ids = malloc((size_t)k * sizeof **ids))) return fail(status, 500, NULL, "out of memory"); /* freed by hai_free: free */
    const cJSON *t;
    int32_t nv = hai_model_n_vocab(e->m);
    cJSON_ArrayForEach(t, in) {
        if (!cJSON_IsNumber(t) || !(t->valuedouble >= 0 && t->valuedouble < nv) || t->valuedouble != (double)(int64_t)t->valuedouble) { /* range first: inf and NaN do not convert */
            free(*ids), *ids = NULL;
            return fail(status, 400, "input", "input %zu: token ids are whole numbers from 0 to %d", index, nv - 1);
        }
        (*ids)[(*n)++] = (hai_token)t->valuedouble;
    }
    return NULL;
}

char *srv_embeddings(srv_embedder *e, const char *model_id, const char *body, size_t len, int *status) {
    cJSON *root = cJSON_ParseWithLength(body, len);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return fail(status, 400, NULL, "the body is not a JSON object");
    }
    char *ret = NULL;
    cJSON *out = NULL;
    const cJSON *input = cJSON_GetObjectItemCaseSensitive(root, "input"), *fmt = cJSON_GetObjectItemCaseSensitive(root, "encoding_format"),
                *dims = cJSON_GetObjectItemCaseSensitive(root, "dimensions");
    uint32_t E = hai_model_n_embd(e->m);
    bool b64 = false;
    if (fmt && !cJSON_IsNull(fmt)) {
        if (!cJSON_IsString(fmt) || (strcmp(fmt->valuestring, "float") && strcmp(fmt->valuestring, "base64"))) {
            ret = fail(status, 400, "encoding_format", "encoding_format is \"float\" or \"base64\"");
            goto done;
        }
        b64 = !strcmp(fmt->valuestring, "base64");
    }
    if (dims && !cJSON_IsNull(dims) && (!cJSON_IsNumber(dims) || dims->valuedouble != (double)E)) {
        ret = fail(status, 400, "dimensions", "this model's embeddings have %u dimensions (it was not trained to be cut shorter)", E);
        goto done;
    }
    /* one input (a string, or an array of token ids) or an array of them */
    bool many = cJSON_IsArray(input) && cJSON_GetArraySize(input) > 0 && !cJSON_IsNumber(cJSON_GetArrayItem(input, 0));
    int count = many ? cJSON_GetArraySize(input) : 1;
    if (!input || (!cJSON_IsString(input) && !cJSON_IsArray(input))) {
        ret = fail(status, 400, "input", "input is a string, an array of strings, or token ids");
        goto done;
    }
    if (count > MAX_INPUTS) {
        ret = fail(status, 400, "input", "%d inputs; at most %d a request", count, MAX_INPUTS);
        goto done;
    }
    /* the inputs' tokens, outside the lock: only the context is shared */
    hai_token **ids = calloc((size_t)count, sizeof *ids);
    size_t *lens = calloc((size_t)count, sizeof *lens);
    float *vecs = NULL;
    long long used = 0;
    if (!ids || !lens) {
        ret = fail(status, 500, NULL, "out of memory");
        goto inputs_done;
    }
    for (int i = 0; i < count && !ret; i++) {
        const cJSON *in = many ? cJSON_GetArrayItem(input, i) : input;
        if ((ret = input_tokens(e, in, (size_t)i, &ids[i], &lens[i], status))) break;
        if (lens[i] > e->n_ctx) {
            api_error ae = {.status = 400, .type = "invalid_request_error", .code = "context_length_exceeded"};
            snprintf(ae.param, sizeof ae.param, "input");
            snprintf(ae.message, sizeof ae.message, "input %d has %zu tokens; the context holds %u", i, lens[i], e->n_ctx);
            *status = 400;
            ret = api_error_json(&ae);
        }
        used += (long long)lens[i];
    }
    if (!ret && !(vecs = malloc((size_t)count * E * sizeof *vecs))) ret = fail(status, 500, NULL, "out of memory");
    if (!ret) {
        hai_error err = {0};
        pthread_mutex_lock(&e->mu);
        if (!e->c) {
            hai_context_params cp = hai_context_default_params();
            cp.n_ctx = e->n_ctx, cp.n_threads = e->n_threads, cp.n_seq = EMBED_SEQS;
            if (hai_context_create(e->m, &cp, &e->c, &err)) ret = fail(status, 500, NULL, "cannot make the embedding context: %s", err.msg);
        }
        /* up to EMBED_SEQS inputs a forward pass, a sequence each */
        if (!ret && hai_embed_batch(e->c, (const hai_token *const *)ids, lens, (size_t)count, 0, vecs, &err))
            ret = fail(status, 500, NULL, "embedding: %s", err.msg);
        pthread_mutex_unlock(&e->mu);
    }
    if (!ret) {
        out = cJSON_CreateObject();
        cJSON *data = cJSON_AddArrayToObject(out, "data");
        cJSON_AddStringToObject(out, "object", "list");
        cJSON_AddStringToObject(out, "model", model_id);
        for (int i = 0; i < count; i++) {
            const float *v = vecs + (size_t)i * E;
            cJSON *item = cJSON_CreateObject();
            cJSON_AddStringToObject(item, "object", "embedding");
            cJSON_AddNumberToObject(item, "index", i);
            if (b64) {
                char *s = base64_floats(v, E);
                cJSON_AddStringToObject(item, "embedding", s ? s : "");
                free(s);
            } else {
                cJSON *arr = cJSON_AddArrayToObject(item, "embedding");
                for (uint32_t k = 0; k < E; k++) cJSON_AddItemToArray(arr, cJSON_CreateNumber(v[k]));
            }
            cJSON_AddItemToArray(data, item);
        }
    }
inputs_done:
    for (int i = 0; ids && i < count; i++) hai_free(ids[i]);
    free(ids), free(lens), free(vecs);
    if (!ret) {
        cJSON *usage = cJSON_AddObjectToObject(out, "usage");
        cJSON_AddNumberToObject(usage, "prompt_tokens", (double)used);
        cJSON_AddNumberToObject(usage, "total_tokens", (double)used);
        if (!(ret = cJSON_PrintUnformatted(out))) ret = fail(status, 500, NULL, "out of memory");
        else *status = 200;
    }
done:
    cJSON_Delete(out);
    cJSON_Delete(root);
    return ret;
}
