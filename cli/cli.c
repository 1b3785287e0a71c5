/* Helpers shared by the hai subcommands. */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

bool cli_parse_i64(const char *opt, const char *s, int64_t lo, int64_t hi, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "hai: %s takes a whole number from %lld to %lld, not '%s'\n", opt, (long long)lo,
                (long long)hi, s);
        return false;
    }
    *out = v;
    return true;
}

bool cli_parse_f64(const char *opt, const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end) {
        fprintf(stderr, "hai: %s takes a number, not '%s'\n", opt, s);
        return false;
    }
    *out = v;
    return true;
}

const char *cli_value(int argc, char **argv, int *i) {
    if (*i + 1 >= argc) {
        fprintf(stderr, "hai: %s needs a value\n", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

const char *cli_bytes(uint64_t n, char *buf, int cap) {
    const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    if (u == 0) snprintf(buf, (size_t)cap, "%llu B", (unsigned long long)n);
    else snprintf(buf, (size_t)cap, "%.2f %s", v, units[u]);
    return buf;
}

const char *cli_count(int64_t n, char *buf, int cap) {
    if (n >= 1000000000) snprintf(buf, (size_t)cap, "%.2f B", n / 1e9);
    else if (n >= 1000000) snprintf(buf, (size_t)cap, "%.2f M", n / 1e6);
    else if (n >= 1000) snprintf(buf, (size_t)cap, "%.2f K", n / 1e3);
    else snprintf(buf, (size_t)cap, "%lld", (long long)n);
    return buf;
}

void cli_error(const char *cmd, const hai_error *err) {
    fprintf(stderr, "hai %s: error: %s\n", cmd, err->msg[0] ? err->msg : hai_status_name(err->status));
}

char *cli_read_stream(FILE *f, size_t *len) {
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (size_t k; buf && (k = fread(buf + n, 1, cap - n - 1, f)) > 0;) {
        n += k;
        if (n + 1 == cap) {
            char *b = realloc(buf, cap *= 2);
            if (!b) free(buf);
            buf = b;
        }
    }
    if (buf) buf[n] = '\0';
    if (len) *len = n;
    return buf;
}

char *cli_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *s = cli_read_stream(f, len);
    fclose(f);
    return s;
}

hai_status cli_fail(hai_error *err, hai_status status, const char *fmt, ...) {
    if (err) {
        err->status = status;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return status;
}

bool cli_parse_ids(const char *cmd, const char *what, const char *text, int32_t n_vocab, hai_token **ids, size_t *n) {
    *ids = NULL;
    *n = 0;
    size_t cap = strlen(text) / 2 + 1; /* a number and a separator at least */
    hai_token *v = malloc(cap * sizeof *v);
    if (!v) {
        fprintf(stderr, "hai %s: out of memory\n", cmd);
        return false;
    }
    size_t k = 0;
    for (const char *p = text; *p;) {
        if (*p == ',' || isspace((unsigned char)*p)) {
            p++;
            continue;
        }
        char *end;
        errno = 0;
        long long x = isdigit((unsigned char)*p) || *p == '-' ? strtoll(p, &end, 10) : 0;
        if (!isdigit((unsigned char)*p) && *p != '-') end = (char *)p;
        if (end == p || (*end && *end != ',' && !isspace((unsigned char)*end))) {
            fprintf(stderr, "hai %s: %s: not a token id at '%.20s'\n", cmd, what, p);
            free(v);
            return false;
        }
        if (errno || x < 0 || x >= n_vocab) {
            fprintf(stderr, "hai %s: %s: %.*s is not a token of this model (0..%d)\n", cmd, what, (int)(end - p), p, n_vocab - 1);
            free(v);
            return false;
        }
        v[k++] = (hai_token)x;
        p = end;
    }
    if (!k) {
        fprintf(stderr, "hai %s: %s: no token ids\n", cmd, what);
        free(v);
        return false;
    }
    *ids = v;
    *n = k;
    return true;
}

bool cli_parse_size(const char *opt, const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    double scale = 1;
    if (end != s && *end) {
        const char *u = "KMGT", *k = strchr(u, toupper((unsigned char)*end));
        if (k && *k) {
            for (const char *q = u; q <= k; q++) scale *= 1024;
            end++;
            if (*end == 'i' || *end == 'I') end++;
            if (*end == 'B' || *end == 'b') end++;
        } else if (*end == 'B' || *end == 'b') {
            end++;
        }
    }
    if (end == s || *end || errno || !(v > 0) || v * scale > 1.8e19) {
        fprintf(stderr, "hai: %s takes a size such as 512M or 1.5G (got '%s')\n", opt, s);
        return false;
    }
    *out = (uint64_t)(v * scale);
    return true;
}

bool cli_parse_stream(const char *opt, const char *s, hai_stream_mode *out) {
    if (!strcasecmp(s, "auto")) *out = HAI_STREAM_AUTO;
    else if (!strcasecmp(s, "on")) *out = HAI_STREAM_ON;
    else if (!strcasecmp(s, "off")) *out = HAI_STREAM_OFF;
    else {
        fprintf(stderr, "hai: %s is auto, on or off (got '%s')\n", opt, s);
        return false;
    }
    return true;
}

void cli_stream_report(const hai_model *m, double tokens, FILE *f) {
    hai_stream_stats s;
    if (!hai_model_stream_stats(m, &s) || !s.acquires) return;
    double per = tokens > 0 ? s.bytes_read / tokens / 1048576.0 : 0;
    fprintf(f, "stream: %s, %u in %u slots (%.1f MiB); %.1f%% hit, %.1f%% late, %.1f%% miss of %llu (%.1f%% as the step before); read ahead %llu, used %llu; "
               "%.1f MiB read (%.1f MiB a token) at %.2f GB/s a reader; waited %.2f s\n",
            s.mode == 1 ? "experts" : "layers", s.units, s.slots, s.cache_bytes / 1048576.0, 100.0 * s.hits / s.acquires,
            100.0 * s.late / s.acquires, 100.0 * s.misses / s.acquires, (unsigned long long)s.acquires, 100.0 * s.repeats / s.acquires,
            (unsigned long long)s.prefetches,
            (unsigned long long)s.prefetch_used, s.bytes_read / 1048576.0, per, s.read_seconds > 0 ? s.bytes_read / s.read_seconds / 1e9 : 0,
            s.wait_seconds);
}

bool cli_parse_kv_type(const char *opt, const char *s, uint32_t *out) {
    if (!strcasecmp(s, "f16")) *out = HAI_TYPE_F16;
    else if (!strcasecmp(s, "q8_0")) *out = HAI_TYPE_Q8_0;
    else if (!strcasecmp(s, "q4_0")) *out = HAI_TYPE_Q4_0;
    else {
        fprintf(stderr, "hai: %s is f16, q8_0 or q4_0 (got '%s')\n", opt, s);
        return false;
    }
    return true;
}
