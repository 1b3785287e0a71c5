/* hai bench: prompt processing (ppN: N tokens in one forward pass) and text generation (tgN: N
 * tokens one at a time) in tokens/s, mean and standard deviation over repetitions, as
 * llama-bench measures them; optionally after a prefilled context of --depth tokens. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t peak_rss(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (uint64_t)ru.ru_maxrss * 1024;
}

static void usage(FILE *f) {
    fprintf(f, "usage: hai bench -m MODEL.gguf [-p 512] [-n 128] [-t THREADS] [-r 3] [--depth D] [--ctx N] [--mmap] [--json]\n"
               "  -p N       prompt tokens per pp test (0 = skip)\n"
               "  -n N       generated tokens per tg test (0 = skip)\n"
               "  -r N       repetitions (mean +- sd)\n"
               "  --depth D  prefill D tokens first; tg then runs after them (decode with a long context)\n"
               "  --mmap     use the weights in place from the file's mapping (4 KiB pages) instead of copying them\n"
               "  --json     one JSON object per line per test\n");
}

typedef struct stats {
    double mean, sd;
} stats;

static stats summarize(const double *v, int n) {
    stats s = {0, 0};
    for (int i = 0; i < n; i++) s.mean += v[i];
    s.mean /= n;
    for (int i = 0; i < n; i++) s.sd += (v[i] - s.mean) * (v[i] - s.mean);
    s.sd = n > 1 ? sqrt(s.sd / (n - 1)) : 0;
    return s;
}

int cmd_bench(int argc, char **argv) {
    const char *model = NULL;
    int64_t n_prompt = 512, n_gen = 128, threads = 0, reps = 3, depth = 0, ctx = 0;
    bool json = false;
    hai_model_params mp = hai_model_default_params();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--json")) {
            json = true;
            continue;
        }
        if (!strcmp(a, "--mmap")) {
            mp.mmap_weights = true;
            continue;
        }
        if (!(v = cli_value(argc, argv, &i))) return 2;
        if (!strcmp(a, "-m")) model = v;
        else if (!strcmp(a, "-p")) { if (!cli_parse_i64(a, v, 0, 1 << 20, &n_prompt)) return 2; }
        else if (!strcmp(a, "-n")) { if (!cli_parse_i64(a, v, 0, 1 << 20, &n_gen)) return 2; }
        else if (!strcmp(a, "-t")) { if (!cli_parse_i64(a, v, 1, 256, &threads)) return 2; }
        else if (!strcmp(a, "-r")) { if (!cli_parse_i64(a, v, 1, 1000, &reps)) return 2; }
        else if (!strcmp(a, "--depth")) { if (!cli_parse_i64(a, v, 0, 1 << 22, &depth)) return 2; }
        else if (!strcmp(a, "--ctx")) { if (!cli_parse_i64(a, v, 16, 1 << 24, &ctx)) return 2; }
        else {
            fprintf(stderr, "hai bench: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!model) {
        usage(stderr);
        return 2;
    }
    hai_error err = {0};
    hai_model *m = NULL;
    hai_context *c = NULL;
    int rc = 1;
    if (hai_model_load(model, &mp, &m, &err) != HAI_OK) goto fail;
    hai_context_params cp = hai_context_default_params();
    int64_t need = (n_prompt > depth + n_gen ? n_prompt : depth + n_gen) + 8;
    cp.n_ctx = (uint32_t)(ctx ? ctx : need);
    cp.n_batch = (uint32_t)(n_prompt > 0 ? n_prompt : 512);
    cp.n_threads = (int)threads;
    if (cp.n_ctx < need) {
        fprintf(stderr, "hai bench: --ctx %u is smaller than the %lld positions the tests need\n", cp.n_ctx, (long long)need);
        goto out;
    }
    if (hai_context_create(m, &cp, &c, &err) != HAI_OK) goto fail;
    int nth = threads ? (int)threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    int32_t nv = hai_model_n_vocab(m);
    int64_t ntok = need + 1;
    hai_token *toks = malloc((size_t)ntok * sizeof *toks);
    unsigned x = 1;
    for (int64_t i = 0; i < ntok; i++) {
        x = x * 1103515245u + 12345u;
        toks[i] = (hai_token)((x >> 8) % (unsigned)(nv > 3 ? nv - 3 : nv)) + (nv > 3 ? 3 : 0); /* avoid specials */
    }
    /* the file type for the report */
    hai_gguf *g = NULL;
    const char *type = "?";
    uint32_t ft;
    if (hai_gguf_open(model, &g, NULL) == HAI_OK && hai_gguf_get_u32(g, "general.file_type", &ft, NULL) == HAI_OK && hai_ftype_name(ft))
        type = hai_ftype_name(ft);
    if (!strcmp(type, "MOSTLY_F16")) type = "F16";
    if (!strcmp(type, "ALL_F32")) type = "F32";
    /* warm up: touch the weights once */
    if (hai_eval(c, toks, 1, &err) != HAI_OK) goto fail_free;
    if (!json)
        printf("| model | type | size | threads | kernels | test | t/s |\n|---|---|---|---|---|---|---|\n");
    char sz[32];
    cli_bytes(hai_model_weights_bytes(m), sz, sizeof sz);
    double *v = malloc((size_t)reps * sizeof *v);
    for (int test = 0; test < 3; test++) {
        char name[64];
        if (test == 0 && (n_prompt == 0 || depth)) continue;
        if (test == 1 && depth == 0) continue;
        if (test == 2 && n_gen == 0) continue;
        if (test == 0) snprintf(name, sizeof name, "pp%lld", (long long)n_prompt);
        if (test == 1) snprintf(name, sizeof name, "pp%lld", (long long)depth);
        if (test == 2) snprintf(name, sizeof name, depth ? "tg%lld@d%lld" : "tg%lld", (long long)n_gen, (long long)depth);
        for (int r = 0; r < reps; r++) {
            double t0 = 0, dt = 0;
            if (test == 0 || test == 1) {
                int64_t k = test == 0 ? n_prompt : depth;
                hai_context_truncate(c, 0, NULL);
                t0 = now_s();
                if (hai_eval(c, toks, (size_t)k, &err) != HAI_OK) goto fail_free;
                dt = now_s() - t0;
                v[r] = (double)k / dt;
            } else {
                if (depth && hai_context_n_past(c) != (uint32_t)depth) { /* prefill the context once */
                    hai_context_truncate(c, 0, NULL);
                    if (hai_eval(c, toks, (size_t)depth, &err) != HAI_OK) goto fail_free;
                }
                hai_context_truncate(c, (uint32_t)depth, NULL);
                t0 = now_s();
                for (int64_t i = 0; i < n_gen; i++)
                    if (hai_eval(c, &toks[depth + i], 1, &err) != HAI_OK) goto fail_free;
                dt = now_s() - t0;
                v[r] = (double)n_gen / dt;
            }
        }
        stats s = summarize(v, (int)reps);
        if (json)
            printf("{\"test\":\"%s\",\"tokens_per_s\":%.3f,\"sd\":%.3f,\"peak_rss_bytes\":%llu,\"threads\":%d,\"type\":\"%s\","
                   "\"kernels\":\"%s\",\"weights\":\"%s\",\"model\":\"%s\",\"weights_bytes\":%llu,\"decode_bytes\":%llu}\n",
                   name, s.mean, s.sd, (unsigned long long)peak_rss(), nth, type, hai_kernels_name(), mp.mmap_weights ? "mapped" : "copied", hai_model_desc(m),
                   (unsigned long long)hai_model_weights_bytes(m), (unsigned long long)hai_model_decode_bytes(m));
        else
            printf("| %s | %s | %s | %d | %s | %s | %.2f +- %.2f |\n", hai_model_arch(m), type, sz, nth, hai_kernels_name(), name,
                   s.mean, s.sd);
        fflush(stdout);
    }
    if (!json) printf("peak RSS: %.1f MiB\n", (double)peak_rss() / (1 << 20));
    rc = 0;
    free(v);
    free(toks);
    hai_gguf_free(g);
    goto out;
fail_free:
    free(toks);
    hai_gguf_free(g);
fail:
    cli_error("bench", &err);
out:
    hai_context_free(c);
    hai_model_free(m);
    return rc;
}
