/* Models from the network (include/hai_pull.h): a download that resumes, is checked whole, and
 * becomes the model file only by a rename. */
#include "hai_pull.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <stddef.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "base/text.h"

#define PULL_MAX_UNKNOWN (256ull << 30) /* what a download of unknown size may take */

typedef struct dl {
    const hai_pull_params *p;
    FILE *f;
    EVP_MD_CTX *sha;
    uint64_t have, resumed_from, limit;
    CURL *curl;
    bool restarted, over, write_failed;
} dl;

/* Hashes what is already in the file (a resumed download's first part). */
static bool hash_file(FILE *f, EVP_MD_CTX *sha, uint64_t n) {
    char buf[1 << 16];
    if (fseek(f, 0, SEEK_SET)) return false;
    while (n) {
        size_t k = fread(buf, 1, n < sizeof buf ? (size_t)n : sizeof buf, f);
        if (!k) return false;
        EVP_DigestUpdate(sha, buf, k);
        n -= k;
    }
    return fseek(f, 0, SEEK_END) == 0;
}

static size_t on_data(char *data, size_t one, size_t n, void *user) {
    dl *d = user;
    size_t len = one * n;
    if (d->resumed_from && !d->restarted && !d->have) { /* the first bytes: did the server take the range? */
        long code = 0;
        curl_easy_getinfo(d->curl, CURLINFO_RESPONSE_CODE, &code);
        d->restarted = true;
        if (code != 206) { /* the whole file again: start over */
            if (ftruncate(fileno(d->f), 0) || fseek(d->f, 0, SEEK_SET)) return d->write_failed = true, 0;
            EVP_DigestInit_ex(d->sha, EVP_sha256(), NULL);
            d->resumed_from = 0;
        } else {
            d->have = d->resumed_from;
        }
    }
    if (d->have + len > d->limit) return d->over = true, 0; /* more than it can be: stop before the disk fills */
    if (fwrite(data, 1, len, d->f) != len) return d->write_failed = true, 0;
    EVP_DigestUpdate(d->sha, data, len);
    d->have += len;
    return len;
}

static int on_progress(void *user, curl_off_t total, curl_off_t now, curl_off_t up_total, curl_off_t up_now) {
    (void)up_total, (void)up_now;
    dl *d = user;
    if (d->p->progress) {
        uint64_t base = d->resumed_from;
        d->p->progress(d->p->progress_user, (int64_t)(base + (uint64_t)now), d->p->expect_size ? (int64_t)d->p->expect_size : total ? (int64_t)(base + (uint64_t)total) : 0,
                       "download");
    }
    return 0;
}

static bool hex_ok(const char *s) {
    if (!s || strlen(s) != 64) return false;
    for (int i = 0; i < 64; i++)
        if (!strchr("0123456789abcdefABCDEF", s[i])) return false;
    return true;
}

hai_status hai_pull(const hai_pull_params *p, hai_error *err) {
    if (!p || p->size < offsetof(hai_pull_params, progress) || !p->url || !p->dest)
        return hai_fail(err, HAI_ERR_INVALID, "pull: no url or destination (set size = sizeof(hai_pull_params))");
    if (p->sha256 && !hex_ok(p->sha256)) return hai_fail(err, HAI_ERR_INVALID, "pull: sha256 must be 64 hex digits");
    if (strncmp(p->url, "http://", 7) && strncmp(p->url, "https://", 8) && strncmp(p->url, "file://", 7))
        return hai_fail(err, HAI_ERR_INVALID, "pull: %.200s: only http://, https:// and file:// URLs", p->url);
    hai_pull_params q = {0}; /* fields past the caller's size stay at their defaults */
    memcpy(&q, p, p->size < sizeof q ? p->size : sizeof q);
    hai_text part = {0};
    text_printf(&part, "%s.part", p->dest);
    char *part_path = text_take(&part);
    if (!part_path) return hai_fail(err, HAI_ERR_NOMEM, "pull: out of memory");
    FILE *f = fopen(part_path, "a+b");
    if (!f) {
        hai_status st = hai_fail(err, HAI_ERR_IO, "pull: cannot write %s (%s)", part_path, strerror(errno));
        free(part_path);
        return st;
    }
    struct stat sb;
    uint64_t have = fstat(fileno(f), &sb) == 0 ? (uint64_t)sb.st_size : 0;
    dl d = {.p = &q, .f = f, .sha = EVP_MD_CTX_new(), .limit = q.expect_size ? q.expect_size : PULL_MAX_UNKNOWN};
    hai_status st = HAI_OK;
    if (!d.sha || !EVP_DigestInit_ex(d.sha, EVP_sha256(), NULL)) st = hai_fail(err, HAI_ERR_NOMEM, "pull: out of memory");
    if (!st && q.expect_size && have > q.expect_size) { /* longer than the file can be: not a part of it */
        if (ftruncate(fileno(f), 0)) st = hai_fail(err, HAI_ERR_IO, "pull: cannot reset %s", part_path);
        have = 0;
    }
    if (!st && q.expect_size && have == q.expect_size) { /* complete already: only the checks remain */
        if (!hash_file(f, d.sha, have)) st = hai_fail(err, HAI_ERR_IO, "pull: cannot read %s", part_path);
        d.have = have;
    } else if (!st) {
        if (have && !hash_file(f, d.sha, have)) st = hai_fail(err, HAI_ERR_IO, "pull: cannot read %s", part_path);
        d.resumed_from = have;
        CURL *c = st ? NULL : curl_easy_init();
        if (!st && !c) st = hai_fail(err, HAI_ERR_NOMEM, "pull: cannot start the HTTP client");
        if (c) {
            char curl_err[CURL_ERROR_SIZE] = "";
            d.curl = c;
            curl_easy_setopt(c, CURLOPT_URL, q.url);
            curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https,file");
            curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
            curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
            curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
            curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
            curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
            curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)((q.connect_timeout_s > 0 ? q.connect_timeout_s : 30) * 1000));
            curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L); /* no byte for stall_timeout_s: the attempt ends */
            curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)(q.stall_timeout_s > 0 ? q.stall_timeout_s : 60));
            curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
            curl_easy_setopt(c, CURLOPT_WRITEDATA, &d);
            curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
            curl_easy_setopt(c, CURLOPT_XFERINFODATA, &d);
            curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
            curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
            curl_easy_setopt(c, CURLOPT_USERAGENT, "hai/" HAI_VERSION_STRING);
            if (have) curl_easy_setopt(c, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)have);
            CURLcode rc = curl_easy_perform(c);
            if (rc == CURLE_RANGE_ERROR && have) { /* the server cannot resume: the whole file, from the start */
                if (ftruncate(fileno(f), 0) || fseek(f, 0, SEEK_SET)) d.write_failed = true;
                EVP_DigestInit_ex(d.sha, EVP_sha256(), NULL);
                d.have = d.resumed_from = have = 0;
                d.restarted = false;
                curl_easy_setopt(c, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)0);
                if (!d.write_failed) rc = curl_easy_perform(c);
            }
            long code = 0;
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
            if (d.resumed_from && !d.restarted) d.have = d.resumed_from; /* nothing new came (a range past the end) */
            if (d.over)
                st = hai_fail(err, HAI_ERR_FORMAT, "pull: %.200s sent more than %llu bytes", q.url, (unsigned long long)d.limit);
            else if (d.write_failed)
                st = hai_fail(err, HAI_ERR_IO, "pull: cannot write %s", part_path);
            else if (rc == CURLE_HTTP_RETURNED_ERROR && code == 416 && have) /* a range past the end: the part may be whole */
                d.have = have;
            else if (rc == CURLE_HTTP_RETURNED_ERROR)
                st = hai_fail(err, code == 404 ? HAI_ERR_NOT_FOUND : HAI_ERR_IO, "pull: %.200s: HTTP %ld", q.url, code);
            else if (rc != CURLE_OK)
                st = hai_fail(err, HAI_ERR_IO, "pull: %.200s: %s after %llu bytes; run again to resume", q.url, curl_err[0] ? curl_err : curl_easy_strerror(rc),
                              (unsigned long long)d.have);
            curl_easy_cleanup(c);
        }
    }
    bool bad = false;
    if (!st && fflush(f)) st = hai_fail(err, HAI_ERR_IO, "pull: cannot write %s", part_path);
    if (!st && q.expect_size && d.have != q.expect_size) {
        bad = d.have > q.expect_size;
        st = hai_fail(err, bad ? HAI_ERR_FORMAT : HAI_ERR_IO, "pull: %llu bytes; the file has %llu%s", (unsigned long long)d.have,
                      (unsigned long long)q.expect_size, bad ? "" : " (run again to resume)");
    }
    if (!st && q.sha256) {
        unsigned char md[32];
        unsigned int mdn = 0;
        char hex[65];
        EVP_DigestFinal_ex(d.sha, md, &mdn);
        for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
        if (strncasecmp(hex, q.sha256, 64)) {
            bad = true;
            st = hai_fail(err, HAI_ERR_FORMAT, "pull: the download's SHA-256 is %s, not %.64s: it is not the file asked for", hex, q.sha256);
        }
    }
    if (!st && fsync(fileno(f))) st = hai_fail(err, HAI_ERR_IO, "pull: cannot write %s", part_path);
    fclose(f);
    EVP_MD_CTX_free(d.sha);
    if (bad) unlink(part_path); /* a download that is not the file: nothing to resume from */
    if (!st && rename(part_path, q.dest)) st = hai_fail(err, HAI_ERR_IO, "pull: cannot rename to %s (%s)", q.dest, strerror(errno));
    free(part_path);
    return st;
}

/* ---- the catalog ------------------------------------------------------------------------------ */

static bool str_field(const cJSON *o, const char *key, char *dst, size_t cap, bool required, size_t i, hai_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) return !required || (hai_fail(err, HAI_ERR_FORMAT, "catalog: entry %zu has no \"%s\"", i, key), false);
    if (!cJSON_IsString(v) || strlen(v->valuestring) >= cap)
        return hai_fail(err, HAI_ERR_FORMAT, "catalog: entry %zu: \"%s\" must be a string of fewer than %zu bytes", i, key, cap), false;
    if (required && !v->valuestring[0]) return hai_fail(err, HAI_ERR_FORMAT, "catalog: entry %zu: \"%s\" is empty", i, key), false;
    memcpy(dst, v->valuestring, strlen(v->valuestring) + 1);
    return true;
}

static bool num_field(const cJSON *o, const char *key, uint64_t *dst, size_t i, hai_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) return true;
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble <= 1.8e19) || v->valuedouble != (double)(uint64_t)v->valuedouble)
        return hai_fail(err, HAI_ERR_FORMAT, "catalog: entry %zu: \"%s\" must be a whole number of bytes", i, key), false;
    *dst = (uint64_t)v->valuedouble;
    return true;
}

bool hai_model_name_char(char c) {
    return c == '-' || c == '_' || c == '.' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

hai_status hai_catalog_load(const char *path, hai_catalog_entry **entries, size_t *n, hai_error *err) {
    if (!path || !entries || !n) return hai_fail(err, HAI_ERR_INVALID, "catalog: NULL argument");
    *entries = NULL, *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return hai_fail(err, HAI_ERR_IO, "catalog: cannot open %s", path);
    hai_text t = {0};
    char buf[4096];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, f)) > 0 && t.n < (4u << 20)) text_put(&t, buf, k);
    fclose(f);
    if (t.n >= (4u << 20)) {
        text_free(&t);
        return hai_fail(err, HAI_ERR_LIMIT, "catalog: %s is over 4 MiB", path);
    }
    hai_status st = hai_catalog_parse(t.p ? t.p : "", t.n, entries, n, err);
    text_free(&t);
    if (st) hai_error_prefix(err, "%s", path);
    return st;
}

hai_status hai_catalog_parse(const char *json, size_t len, hai_catalog_entry **entries, size_t *n, hai_error *err) {
    if (!json || !entries || !n) return hai_fail(err, HAI_ERR_INVALID, "catalog: NULL argument");
    *entries = NULL, *n = 0;
    cJSON *a = cJSON_ParseWithLength(json, len);
    if (!cJSON_IsArray(a)) {
        cJSON_Delete(a);
        return hai_fail(err, HAI_ERR_FORMAT, "catalog: not a JSON array of models");
    }
    size_t count = (size_t)cJSON_GetArraySize(a), i = 0;
    hai_catalog_entry *e = calloc(count ? count : 1, sizeof *e);
    hai_status st = e ? HAI_OK : hai_fail(err, HAI_ERR_NOMEM, "catalog: out of memory");
    static const char *const keys[] = {"name", "url", "size", "sha256", "memory", "description"};
    for (const cJSON *o = a->child; !st && o; o = o->next, i++) {
        if (!cJSON_IsObject(o)) {
            st = hai_fail(err, HAI_ERR_FORMAT, "catalog: entry %zu is not an object", i);
            break;
        }
        for (const cJSON *kv = o->child; kv && !st; kv = kv->next) {
            bool known = false;
            for (size_t j = 0; j < sizeof keys / sizeof *keys; j++) known |= !strcmp(kv->string, keys[j]);
            if (!known) st = hai_fail(err, HAI_ERR_FORMAT, "catalog: entry %zu: unknown key \"%s\"", i, kv->string);
        }
        if (st || !str_field(o, "name", e[i].name, sizeof e[i].name, true, i, err) || !str_field(o, "url", e[i].url, sizeof e[i].url, true, i, err) ||
            !str_field(o, "sha256", e[i].sha256, sizeof e[i].sha256, false, i, err) || !num_field(o, "size", &e[i].size, i, err) ||
            !num_field(o, "memory", &e[i].memory, i, err)) {
            if (!st) st = err ? err->status : HAI_ERR_FORMAT;
            break;
        }
        if (e[i].sha256[0] && !hex_ok(e[i].sha256)) st = hai_fail(err, HAI_ERR_FORMAT, "catalog: entry %zu: sha256 must be 64 hex digits", i);
        if (!st && strncasecmp(e[i].url, "http://", 7) && strncasecmp(e[i].url, "https://", 8) && strncasecmp(e[i].url, "file://", 7))
            st = hai_fail(err, HAI_ERR_FORMAT, "catalog: entry %zu: the url must be http://, https:// or file://", i); /* what the download takes */
        for (const char *c = e[i].name; !st && *c; c++)
            if (!hai_model_name_char(*c) || e[i].name[0] == '.')
                st = hai_fail(err, HAI_ERR_FORMAT, "catalog: entry %zu: a name is letters, digits, '-', '_' and '.' (it names a file)", i);
    }
    cJSON_Delete(a);
    if (st) {
        free(e);
        return st;
    }
    *entries = e, *n = count;
    return HAI_OK;
}

int hai_catalog_pick(const hai_catalog_entry *entries, size_t n, uint64_t budget) {
    int best = -1;
    for (size_t i = 0; i < n; i++) {
        uint64_t need = entries[i].memory ? entries[i].memory : entries[i].size;
        if (need <= budget && (best < 0 || need > (entries[best].memory ? entries[best].memory : entries[best].size))) best = (int)i;
    }
    return best;
}
