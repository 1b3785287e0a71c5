/* Loading the routing policy (see config.h). */
#include "config.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"

static bool only_keys(const cJSON *o, const char *const *allowed, const char *where, hai_error *err) {
    const cJSON *k;
    cJSON_ArrayForEach(k, o) {
        bool ok = false;
        for (int i = 0; allowed[i]; i++) ok |= !strcmp(k->string, allowed[i]);
        if (!ok) {
            hai_fail(err, HAI_ERR_INVALID, "route config: unknown key '%s' in %s", k->string, where);
            return false;
        }
    }
    return true;
}

static bool num(const cJSON *o, const char *k, double lo, double hi, double *out, const char *where, hai_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v) return true;
    if (!cJSON_IsNumber(v) || v->valuedouble < lo || v->valuedouble > hi) {
        hai_fail(err, HAI_ERR_INVALID, "route config: %s.%s must be a number from %g to %g", where, k, lo, hi);
        return false;
    }
    *out = v->valuedouble;
    return true;
}

static bool boolean(const cJSON *o, const char *k, bool *out, const char *where, hai_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v) return true;
    if (!cJSON_IsBool(v)) {
        hai_fail(err, HAI_ERR_INVALID, "route config: %s.%s must be true or false", where, k);
        return false;
    }
    *out = cJSON_IsTrue(v);
    return true;
}

static bool str(const cJSON *o, const char *k, char *out, size_t cap, const char *where, hai_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v) return true;
    if (!cJSON_IsString(v) || strlen(v->valuestring) >= cap) {
        hai_fail(err, HAI_ERR_INVALID, "route config: %s.%s must be a string (under %zu bytes)", where, k, cap);
        return false;
    }
    snprintf(out, cap, "%s", v->valuestring);
    return true;
}

/* A list of strings into *out (NULL-terminated, *n entries); the caller frees it, also on failure. */
static bool strings(const cJSON *o, const char *k, char ***out, size_t *n, const char *where, hai_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k), *e;
    if (!v) return true;
    if (*out) return hai_fail(err, HAI_ERR_INVALID, "route config: %s.%s is given twice", where, k) == HAI_OK;
    if (!cJSON_IsArray(v)) goto bad;
    *out = calloc((size_t)cJSON_GetArraySize(v) + 1, sizeof **out);
    if (!*out) return hai_fail(err, HAI_ERR_NOMEM, "route config: out of memory") == HAI_OK;
    cJSON_ArrayForEach(e, v) {
        if (!cJSON_IsString(e)) goto bad;
        if (!((*out)[*n] = strdup(e->valuestring))) return hai_fail(err, HAI_ERR_NOMEM, "route config: out of memory") == HAI_OK;
        (*n)++;
    }
    return true;
bad:
    hai_fail(err, HAI_ERR_INVALID, "route config: %s.%s must be an array of strings", where, k);
    return false;
}

/* JSON allows a key twice in an object and cJSON keeps both; which one a reader takes is then a
 * guess (a privacy class set to "allow" after "keep_local"), so a policy with a duplicate is
 * refused, naming the key and where it is. */
static bool no_duplicates(const cJSON *o, const char *where, int depth, hai_error *err) {
    if (depth > 16) return hai_fail(err, HAI_ERR_INVALID, "route config: nested deeper than 16 levels") == HAI_OK;
    const cJSON *k, *q;
    cJSON_ArrayForEach(k, o) {
        if (cJSON_IsObject(o))
            for (q = o->child; q != k; q = q->next)
                if (!strcmp(q->string, k->string)) {
                    hai_fail(err, HAI_ERR_INVALID, "route config: duplicate key '%.64s' in %s", k->string, where);
                    return false;
                }
        if ((cJSON_IsObject(k) || cJSON_IsArray(k)) && !no_duplicates(k, cJSON_IsObject(o) ? k->string : where, depth + 1, err)) return false;
    }
    return true;
}

hai_status hybrid_config_load(const char *path, hybrid_config *c, hai_error *err) {
    memset(c, 0, sizeof *c);
    router_policy_defaults(&c->policy);
    cloud_config_defaults(&c->cloud);
    if (!path) return HAI_OK;
    FILE *f = fopen(path, "rb");
    if (!f) return hai_fail(err, HAI_ERR_IO, "route config: cannot read %s", path);
    char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, f);
    bool more = fgetc(f) != EOF;
    fclose(f);
    if (more) return hai_fail(err, HAI_ERR_LIMIT, "route config: %s is over 64 KiB", path);
    hai_status st = hybrid_config_parse(buf, n, c, err);
    if (st) hai_error_prefix(err, "%s", path);
    return st;
}

hai_status hybrid_config_parse(const char *json, size_t len, hybrid_config *c, hai_error *err) {
    memset(c, 0, sizeof *c);
    router_policy_defaults(&c->policy);
    cloud_config_defaults(&c->cloud);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, false);
    if (root && end) /* only white space may follow the object */
        for (const char *q = end; q < json + len; q++)
            if (*q != ' ' && *q != '\n' && *q != '\r' && *q != '\t') {
                cJSON_Delete(root);
                root = NULL;
                break;
            }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return hai_fail(err, HAI_ERR_FORMAT, "route config: not a JSON object");
    }
    router_policy *p = &c->policy;
    double v;
    bool ok = no_duplicates(root, "the file", 0, err);
    static const char *const top[] = {"cloud", "privacy", "budget", "latency", "cascade", "prefer", "offline", "default_max_tokens", "tools", NULL};
    ok = ok && only_keys(root, top, "the file", err);
    const cJSON *cl = cJSON_GetObjectItemCaseSensitive(root, "cloud");
    if (ok && cl) {
        static const char *const keys[] = {"base_url", "model", "api_key_env", "models", "connect_timeout_ms", "first_byte_timeout_ms",
                                           "idle_timeout_ms", "total_timeout_ms", "max_retries", "max_response_bytes",
                                           "circuit_failures", "circuit_cooldown_s", "rtt_ms", "tokens_per_s",
                                           "cost_per_1k_tokens", NULL};
        char env[128] = "";
        char **models = NULL;
        size_t nm = 0;
        ok = cJSON_IsObject(cl) && only_keys(cl, keys, "cloud", err) && str(cl, "base_url", c->cloud.base_url, sizeof c->cloud.base_url, "cloud", err) &&
             str(cl, "model", c->cloud.model, sizeof c->cloud.model, "cloud", err) && str(cl, "api_key_env", env, sizeof env, "cloud", err) &&
             strings(cl, "models", &models, &nm, "cloud", err);
        if (ok && !c->cloud.base_url[0]) ok = hai_fail(err, HAI_ERR_INVALID, "route config: cloud.base_url is required") == HAI_OK;
        if (ok && !c->cloud.model[0]) ok = hai_fail(err, HAI_ERR_INVALID, "route config: cloud.model is required") == HAI_OK;
        if (ok && env[0]) {
            const char *key = getenv(env);
            if (!key || !*key) ok = hai_fail(err, HAI_ERR_INVALID, "route config: the environment variable %s (cloud.api_key_env) is not set", env) == HAI_OK;
            else if (!cloud_token_ok(key)) /* the key goes into a header line: CR/LF would add headers of its own */
                ok = hai_fail(err, HAI_ERR_INVALID, "route config: the API key in %s has a control character, space or non-ASCII byte", env) == HAI_OK;
            else if (strlen(key) >= sizeof c->cloud.api_key)
                ok = hai_fail(err, HAI_ERR_INVALID, "route config: the API key in %s is %zu bytes, over the limit of %zu", env, strlen(key),
                              sizeof c->cloud.api_key - 1) == HAI_OK;
            else snprintf(c->cloud.api_key, sizeof c->cloud.api_key, "%s", key);
        }
        for (size_t i = 0; ok && i < nm && p->n_cloud_models < ROUTER_MAX_CLOUD_MODELS; i++)
            snprintf(p->cloud_models[p->n_cloud_models++], sizeof p->cloud_models[0], "%s", models[i]);
        if (ok && p->n_cloud_models < ROUTER_MAX_CLOUD_MODELS) /* the configured model's own name counts too */
            snprintf(p->cloud_models[p->n_cloud_models++], sizeof p->cloud_models[0], "%s", c->cloud.model);
        for (size_t i = 0; i < nm; i++) free(models[i]);
        free(models);
#define CNUM(k, lo, hi, dst) if (ok && (ok = num(cl, k, lo, hi, &v, "cloud", err)) && cJSON_GetObjectItemCaseSensitive(cl, k)) dst = v
        CNUM("connect_timeout_ms", 1, 600000, c->cloud.connect_timeout_ms);
        CNUM("first_byte_timeout_ms", 1, 600000, c->cloud.first_byte_timeout_ms);
        CNUM("idle_timeout_ms", 1, 600000, c->cloud.idle_timeout_ms);
        CNUM("total_timeout_ms", 1, 3600000, c->cloud.total_timeout_ms);
        CNUM("max_retries", 0, 10, c->cloud.max_retries);
        CNUM("max_response_bytes", 1024, 1 << 30, c->cloud.max_response_bytes);
        CNUM("circuit_failures", 1, 1000, c->cloud.circuit_failures);
        CNUM("circuit_cooldown_s", 0, 86400, c->cloud.circuit_cooldown_s);
        CNUM("rtt_ms", 0, 600000, p->cloud_rtt_ms);
        CNUM("tokens_per_s", 0.001, 1e6, p->cloud_tokens_per_s);
        CNUM("cost_per_1k_tokens", 0, 1e6, p->cost_per_1k_tokens);
#undef CNUM
        c->has_cloud = p->cloud_enabled = ok;
    }
    const cJSON *pr = cJSON_GetObjectItemCaseSensitive(root, "privacy");
    if (ok && pr) {
        if (!cJSON_IsObject(pr)) ok = hai_fail(err, HAI_ERR_INVALID, "route config: privacy must be an object") == HAI_OK;
        const cJSON *k;
        cJSON_ArrayForEach(k, pr) {
            if (!ok) break;
            if (!strcmp(k->string, "patterns")) ok = strings(pr, "patterns", &c->patterns, &c->n_patterns, "privacy", err);
            else if (!strcmp(k->string, "keywords")) ok = strings(pr, "keywords", &c->keywords, &c->n_keywords, "privacy", err);
            else {
                int cls = pii_class_from_name(k->string), act = cJSON_IsString(k) ? pii_action_from_name(k->valuestring) : -1;
                if (cls < 0) ok = hai_fail(err, HAI_ERR_INVALID, "route config: unknown privacy class '%s' (email, phone, cn_id, bank_card, ip, secret, custom)", k->string) == HAI_OK;
                else if (act < 0) ok = hai_fail(err, HAI_ERR_INVALID, "route config: privacy.%s must be \"keep_local\", \"redact\" or \"allow\"", k->string) == HAI_OK;
                else p->privacy[cls] = (pii_action)act;
            }
        }
    }
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(root, "budget");
    if (ok && b) {
        static const char *const keys[] = {"daily_tokens", "daily_cost", NULL};
        ok = cJSON_IsObject(b) && only_keys(b, keys, "budget", err);
        if (ok && (ok = num(b, "daily_tokens", 0, 1e15, &v, "budget", err)) && cJSON_GetObjectItemCaseSensitive(b, "daily_tokens")) p->daily_tokens = (int64_t)v;
        if (ok && (ok = num(b, "daily_cost", 0, 1e12, &v, "budget", err)) && cJSON_GetObjectItemCaseSensitive(b, "daily_cost")) p->daily_cost = v;
    }
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(root, "latency");
    if (ok && l) {
        static const char *const keys[] = {"deadline_ms", NULL};
        ok = cJSON_IsObject(l) && only_keys(l, keys, "latency", err) && num(l, "deadline_ms", 0, 3.6e6, &p->deadline_ms, "latency", err);
    }
    const cJSON *cs = cJSON_GetObjectItemCaseSensitive(root, "cascade");
    if (ok && cs) {
        static const char *const keys[] = {"enabled", "tokens", "entropy_threshold", NULL};
        ok = cJSON_IsObject(cs) && only_keys(cs, keys, "cascade", err) && boolean(cs, "enabled", &p->cascade, "cascade", err);
        if (ok && (ok = num(cs, "tokens", 1, 256, &v, "cascade", err)) && cJSON_GetObjectItemCaseSensitive(cs, "tokens")) p->cascade_tokens = (int32_t)v;
        if (ok && (ok = num(cs, "entropy_threshold", 0, 100, &v, "cascade", err)) && cJSON_GetObjectItemCaseSensitive(cs, "entropy_threshold"))
            p->entropy_threshold = (float)v;
    }
    const cJSON *pf = cJSON_GetObjectItemCaseSensitive(root, "prefer");
    if (ok && pf) {
        if (!cJSON_IsString(pf) || (strcmp(pf->valuestring, "local") && strcmp(pf->valuestring, "cloud")))
            ok = hai_fail(err, HAI_ERR_INVALID, "route config: prefer must be \"local\" or \"cloud\"") == HAI_OK;
        else p->prefer_cloud = !strcmp(pf->valuestring, "cloud");
    }
    const cJSON *tr = cJSON_GetObjectItemCaseSensitive(root, "tools");
    if (ok && tr) {
        static const char *const names[] = {"auto", "local", "cloud"};
        int k = -1;
        for (int i = 0; i < 3 && cJSON_IsString(tr); i++)
            if (!strcmp(tr->valuestring, names[i])) k = i;
        if (k < 0) ok = hai_fail(err, HAI_ERR_INVALID, "route config: tools must be \"auto\", \"local\" or \"cloud\"") == HAI_OK;
        else p->tools_route = k;
    }
    if (ok) ok = boolean(root, "offline", &p->offline, "the file", err);
    if (ok && (ok = num(root, "default_max_tokens", 1, 1 << 20, &v, "the file", err)) && cJSON_GetObjectItemCaseSensitive(root, "default_max_tokens"))
        p->default_max_tokens = (int32_t)v;
    cJSON_Delete(root);
    if (!ok) {
        if (err && err->status == HAI_OK) hai_fail(err, HAI_ERR_INVALID, "route config: malformed section");
        hybrid_config_free(c);
        return err ? err->status : HAI_ERR_INVALID;
    }
    return HAI_OK;
}

void hybrid_config_free(hybrid_config *c) {
    for (size_t i = 0; i < c->n_patterns; i++) free(c->patterns[i]);
    for (size_t i = 0; i < c->n_keywords; i++) free(c->keywords[i]);
    free(c->patterns);
    free(c->keywords);
    memset(c, 0, sizeof *c);
}
