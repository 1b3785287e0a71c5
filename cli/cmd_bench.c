/* hai bench: prompt processing (ppN: N tokens in one forward pass) and text generation (tgN: N
 * tokens one at a time) in tokens/s, mean and standard deviation over repetitions, as
 * llama-bench measures them; optionally after a prefilled context of --depth tokens, and with
 * --seqs S, S sequences decoded together (tgN xS: one pass a step with each sequence's next token
 * and its logits, as hai serve batches S clients; tokens/s of all of them). Then the sampler's
 * time per token at 32K, 152K and 262K entries, as a share of this model's decode step. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench_draft.h"
#include "bench_storage.h"
#include "cli.h"

static uint64_t peak_rss(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (uint64_t)ru.ru_maxrss * 1024;
}

static void usage(FILE *f) {
    fprintf(f, "usage: hai bench -m MODEL.gguf [-p 512] [-n 128] [-t THREADS] [-r 3] [--depth D] [--seqs S] [--ctx N] [--mmap] [--json]\n"
               "  -p N       prompt tokens per pp test (0 = skip)\n"
               "  -n N       generated tokens per tg test (0 = skip)\n"
               "  -r N       repetitions (mean +- sd)\n"
               "  --depth D  prefill D tokens first; tg then runs after them (decode with a long context)\n"
               "  --kv-type T  the KV cache: f16 (default), q8_0, q4_0\n"
               "  --mem-budget SIZE  the model within SIZE (512M, 2G): weights it cannot hold stream from the file\n"
               "  --stream auto|on|off  weights read from the file as needed (auto: when the budget needs it)\n"
               "  --stream-cache SIZE   RAM for streamed weights (default: from the budget)\n"
               "  --seqs S   also decode S sequences together (tgN xS: tokens/s of all of them, each with its logits)\n"
               "  --mmap     use the weights in place from the file's mapping (4 KiB pages) instead of copying them\n"
               "             (those the kernels take as stored; the others are converted, as without it)\n"
               "  --json     one JSON object per line per test\n"
               "speculative decoding:\n"
               "  --verify K         the cost of checking 1..K drafted tokens (one pass of k+1 tokens), in decode steps\n"
               "  --lookup N         generate -n tokens (greedy) with prompt lookup of up to N drafts, and without, in turns\n"
               "  --draft FILE       ... with this draft model instead (up to --lookup N drafts, default 4)\n"
               "  --prompt-file F    the prompt for those (text, special tokens such as <|im_start|> parsed); default: random tokens\n");
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

/* Sampling time per token, as apps sample (OpenAI's defaults: temperature 1, top_p 1), with
 * hai's own defaults and greedy beside: on the model's own logits, and on logits shaped like a
 * model's (a few likely tokens over a sloped, noisy tail) for the vocabularies of Llama 2 (32K),
 * Qwen (152K) and Gemma (262K). step_s: one decode step of this model, for the share. */
static void bench_sampling(const float *model_logits, int32_t model_nv, double step_s, bool json) {
    static const struct {
        const char *name;
        hai_sampler_params p;
    } settings[] = {
        {"openai (T 1, top_p 1)", {.temperature = 1, .top_p = 1, .repeat_penalty = 1}},
        {"hai (T 0.8, top_k 40, top_p 0.95, min_p 0.05)", {.temperature = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f, .repeat_penalty = 1}},
        {"greedy", {.temperature = 0, .top_p = 1, .repeat_penalty = 1}},
    };
    const int32_t sizes[] = {32000, 151936, 262144, model_nv};
    if (!json) printf("\n| sampling | vocab | logits | us/token | share of a decode step |\n|---|---|---|---|---|\n");
    for (int v = 0; v < 4; v++) {
        int32_t n = sizes[v];
        float *lg = v == 3 ? (float *)model_logits : malloc((size_t)n * sizeof *lg);
        if (!lg) return;
        unsigned x = 12345;
        for (int32_t i = 0; v < 3 && i < n; i++) {
            x = x * 1103515245u + 12345u;
            lg[i] = (float)((x >> 8) % 4096) / 1024.0f - 10.0f + 2.0f * sinf((float)i * 0.001f);
        }
        for (int32_t i = 0; v < 3 && i < 40; i++) lg[(int64_t)i * 7919 % n] = 4.0f - 0.15f * (float)i;
        for (size_t k = 0; k < sizeof settings / sizeof *settings; k++) {
            hai_sampler *sm = NULL;
            if (hai_sampler_create(&settings[k].p, n, &sm, NULL) != HAI_OK) continue;
            int reps = 0;
            double t0 = hai_time_s(), dt = 0;
            volatile hai_token sink = 0;
            while (reps < 50 || (dt < 0.2 && reps < 5000)) {
                sink = hai_sampler_sample(sm, lg);
                reps++;
                dt = hai_time_s() - t0;
            }
            (void)sink;
            double us = dt / reps * 1e6;
            const char *kind = v == 3 ? "this model's" : "synthetic";
            if (json)
                printf("{\"test\":\"sampling\",\"vocab\":%d,\"logits\":\"%s\",\"settings\":\"%s\",\"us_per_token\":%.2f,\"share_of_decode_step\":%.5f}\n",
                       n, kind, settings[k].name, us, step_s > 0 ? us * 1e-6 / step_s : 0);
            else if (step_s > 0)
                printf("| %s | %d | %s | %.1f | %.2f%% |\n", settings[k].name, n, kind, us, 100 * us * 1e-6 / step_s);
            else
                printf("| %s | %d | %s | %.1f | - |\n", settings[k].name, n, kind, us);
            hai_sampler_free(sm);
        }
        if (v < 3) free(lg);
    }
}

int cmd_bench(int argc, char **argv) {
    const char *model = NULL;
    int64_t n_prompt = 512, n_gen = 128, threads = 0, reps = 3, depth = 0, ctx = 0, seqs = 1, verify = 0, lookup = 0;
    uint32_t kv_type = 0; /* F16 */
    const char *draft = NULL, *prompt_file = NULL;
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
        else if (!strcmp(a, "--kv-type")) { if (!cli_parse_kv_type(a, v, &kv_type)) return 2; }
        else if (!strcmp(a, "--mem-budget")) { if (!cli_parse_size(a, v, &mp.mem_budget)) return 2; }
        else if (!strcmp(a, "--stream")) { if (!cli_parse_stream(a, v, &mp.stream)) return 2; }
        else if (!strcmp(a, "--stream-cache")) { if (!cli_parse_size(a, v, &mp.stream_cache)) return 2; }
        else if (!strcmp(a, "--seqs")) { if (!cli_parse_i64(a, v, 1, 64, &seqs)) return 2; }
        else if (!strcmp(a, "--ctx")) { if (!cli_parse_i64(a, v, 16, 1 << 24, &ctx)) return 2; }
        else if (!strcmp(a, "--verify")) { if (!cli_parse_i64(a, v, 1, 16, &verify)) return 2; }
        else if (!strcmp(a, "--lookup")) { if (!cli_parse_i64(a, v, 1, 16, &lookup)) return 2; }
        else if (!strcmp(a, "--draft")) draft = v;
        else if (!strcmp(a, "--prompt-file")) prompt_file = v;
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
    hai_model *m = NULL, *dm = NULL;
    hai_context *c = NULL, *dc = NULL;
    hai_token *bt = NULL, *sp = NULL; /* sp: the speculative tests' prompt */
    size_t n_sp = 0;
    char *sp_text = NULL;
    int64_t draft_n = lookup ? lookup : draft ? 4 : 0;
    int32_t *bs = NULL;
    double *v = NULL;
    int rc = 1;
    if (hai_model_load(model, &mp, &m, &err) != HAI_OK) goto fail;
    if (prompt_file) {
        if (!(sp_text = cli_read_file(prompt_file, NULL))) {
            fprintf(stderr, "hai bench: cannot read %s\n", prompt_file);
            goto out;
        }
        if (hai_tokenize_alloc(hai_model_tokenizer(m), sp_text, strlen(sp_text), HAI_TOKENIZE_ADD_SPECIAL | HAI_TOKENIZE_PARSE_SPECIAL, &sp,
                               &n_sp, &err) != HAI_OK)
            goto fail;
    }
    hai_context_params cp = hai_context_default_params();
    int64_t need = (n_prompt > depth + n_gen ? n_prompt : depth + n_gen) + 8;
    int64_t n_spec = sp ? (int64_t)n_sp : 64; /* the speculative tests' prompt: the file's, or 64 random tokens */
    if (draft_n && n_spec + n_gen + 8 > need) need = n_spec + n_gen + 8;
    if (verify && depth + verify + 8 > need) need = depth + verify + 8;
    cp.n_draft = (uint32_t)(verify > draft_n ? verify : draft_n);
    cp.n_ctx = (uint32_t)(ctx ? ctx : need);
    cp.n_batch = (uint32_t)(n_prompt > 0 ? n_prompt : 512);
    cp.n_threads = (int)threads;
    cp.n_seq = (uint32_t)seqs;
    cp.kv_type = kv_type;
    if (cp.n_ctx < need) {
        fprintf(stderr, "hai bench: --ctx %u is smaller than the %lld positions the tests need\n", cp.n_ctx, (long long)need);
        goto out;
    }
    if (hai_context_create(m, &cp, &c, &err) != HAI_OK) goto fail;
    if (draft) {
        hai_context_params dp = cp;
        dp.n_draft = 0;
        if (hai_model_load(draft, &mp, &dm, &err) != HAI_OK || hai_draft_check(m, dm, &err) != HAI_OK ||
            hai_context_create(dm, &dp, &dc, &err) != HAI_OK)
            goto fail;
    }
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
    double tg_tps = 0;
    hai_stream_stats tg_stream = {0};
    v = malloc((size_t)reps * sizeof *v);
    bt = malloc((size_t)seqs * sizeof *bt);
    bs = malloc((size_t)seqs * sizeof *bs);
    if (!v || !bt || !bs) {
        fprintf(stderr, "hai bench: out of memory\n");
        goto fail_free_quiet;
    }
    for (int test = 0; test < 4; test++) {
        char name[64];
        if (test == 0 && (n_prompt == 0 || depth)) continue;
        if (test == 1 && depth == 0) continue;
        if (test == 2 && n_gen == 0) continue;
        if (test == 3 && (n_gen == 0 || seqs < 2)) continue;
        if (test == 3 && depth) snprintf(name, sizeof name, "tg%lld@d%lld x%lld", (long long)n_gen, (long long)depth, (long long)seqs);
        if (test == 3 && !depth) snprintf(name, sizeof name, "tg%lld x%lld", (long long)n_gen, (long long)seqs);
        if (test == 0) snprintf(name, sizeof name, "pp%lld", (long long)n_prompt);
        if (test == 1) snprintf(name, sizeof name, "pp%lld", (long long)depth);
        if (test == 2) snprintf(name, sizeof name, depth ? "tg%lld@d%lld" : "tg%lld", (long long)n_gen, (long long)depth);
        hai_model_stream_reset(m);
        for (int r = 0; r < reps; r++) {
            double t0 = 0, dt = 0;
            if (test == 0 || test == 1) {
                int64_t k = test == 0 ? n_prompt : depth;
                hai_context_truncate(c, 0, NULL);
                t0 = hai_time_s();
                if (hai_eval(c, toks, (size_t)k, &err) != HAI_OK) goto fail_free;
                dt = hai_time_s() - t0;
                v[r] = (double)k / dt;
            } else if (test == 3) { /* every sequence from the same prefilled context (copied), then decoded together */
                if (depth && hai_context_n_past(c) != (uint32_t)depth) {
                    hai_context_truncate(c, 0, NULL);
                    if (hai_eval(c, toks, (size_t)depth, &err) != HAI_OK) goto fail_free;
                }
                hai_context_truncate(c, (uint32_t)depth, NULL);
                for (int32_t sq = 1; sq < (int32_t)seqs; sq++)
                    if (hai_seq_copy(c, 0, sq, (uint32_t)depth, &err) != HAI_OK) goto fail_free;
                hai_batch b = {.n = (size_t)seqs, .tokens = bt, .seq = bs, .logits = NULL};
                t0 = hai_time_s();
                for (int64_t i = 0; i < n_gen; i++) {
                    for (int32_t sq = 0; sq < (int32_t)seqs; sq++) bt[sq] = toks[(depth + i + 7 * sq) % ntok], bs[sq] = sq;
                    if (hai_decode(c, &b, &err) != HAI_OK) goto fail_free;
                }
                dt = hai_time_s() - t0;
                v[r] = (double)(n_gen * seqs) / dt;
            } else {
                if (depth && hai_context_n_past(c) != (uint32_t)depth) { /* prefill the context once */
                    hai_context_truncate(c, 0, NULL);
                    if (hai_eval(c, toks, (size_t)depth, &err) != HAI_OK) goto fail_free;
                }
                hai_context_truncate(c, (uint32_t)depth, NULL);
                t0 = hai_time_s();
                for (int64_t i = 0; i < n_gen; i++)
                    if (hai_eval(c, &toks[depth + i], 1, &err) != HAI_OK) goto fail_free;
                dt = hai_time_s() - t0;
                v[r] = (double)n_gen / dt;
            }
        }
        stats s = summarize(v, (int)reps);
        if (test == 2) tg_tps = s.mean;
        if (json)
            printf("{\"test\":\"%s\",\"tokens_per_s\":%.3f,\"sd\":%.3f,\"peak_rss_bytes\":%llu,\"threads\":%d,\"type\":\"%s\","
                   "\"kernels\":\"%s\",\"weights\":\"%s\",\"model\":\"%s\",\"weights_bytes\":%llu,\"decode_bytes\":%llu}\n",
                   name, s.mean, s.sd, (unsigned long long)peak_rss(), nth, type, hai_kernels_name(), mp.mmap_weights ? "mapped" : "copied", hai_model_desc(m),
                   (unsigned long long)hai_model_weights_bytes(m), (unsigned long long)hai_model_decode_bytes(m));
        else
            printf("| %s | %s | %s | %d | %s | %s | %.2f +- %.2f |\n", hai_model_arch(m), type, sz, nth, hai_kernels_name(), name,
                   s.mean, s.sd);
        if (!json) cli_stream_report(m, (double)reps * (test == 0 ? n_prompt : test == 1 ? depth : test == 2 ? n_gen : n_gen * seqs), stdout);
        if (test == 2) hai_model_stream_stats(m, &tg_stream);
        fflush(stdout);
    }
    if (verify && bench_verify(c, toks, (uint32_t)depth, (int)verify, (int)reps, tg_tps > 0 ? 1.0 / tg_tps : 0, json, &err) != HAI_OK)
        goto fail_free;
    if (draft_n && n_gen > 0) {
        const hai_token *pr = sp ? sp : toks;
        size_t npr = (size_t)n_spec;
        if (bench_drafted(c, dc, pr, npr, (int)n_gen, (int)draft_n, (int)reps, draft ? "draft model" : "prompt lookup", json, &err) != HAI_OK)
            goto fail_free;
    }
    if (tg_stream.acquires && !json) { /* the storage, measured now (not while the tests ran), against the tg test's reads */
        /* reads the size of the streamer's: a matrix of a set (an expert's), at most a 4 MiB run */
        uint64_t rb = tg_stream.unit_bytes / (tg_stream.mode == 1 ? 3 : 7);
        rb = rb > (4u << 20) ? (4u << 20) : rb < (64u << 10) ? (64u << 10) : rb;
        double gb = 0, per = tg_stream.bytes_read / ((double)reps * n_gen);
        for (int r = 0; r < 3; r++) gb += bench_storage_gbps(model, rb, r) / 3;
        if (gb > 0 && per > 0)
            printf("storage: %.2f GB/s (%.0f KiB O_DIRECT reads of this file, 4 in flight, mean of 3); tg read %.1f MiB a token: bound %.2f "
                   "tok/s, measured %.2f (%.0f%%)\n", gb, rb / 1024.0, per / 1048576.0, gb * 1e9 / per, tg_tps, 100.0 * tg_tps / (gb * 1e9 / per));
    }
    bench_sampling(hai_logits(c, -1), nv, tg_tps > 0 ? 1.0 / tg_tps : 0, json);
    if (!json) {
        char rd[32];
        printf("peak RSS: %.1f MiB; a decode step reads %s of the weights\n", (double)peak_rss() / (1 << 20),
               cli_bytes(hai_model_decode_bytes(m), rd, sizeof rd));
    }
    rc = 0;
    free(v);
    free(bt), free(bs);
    free(toks);
    hai_gguf_free(g);
    goto out;
fail_free:
    cli_error("bench", &err);
fail_free_quiet:
    free(v);
    free(toks);
    free(bt), free(bs);
    hai_gguf_free(g);
    goto out;
fail:
    cli_error("bench", &err);
out:
    hai_context_free(dc);
    hai_model_free(dm);
    hai_context_free(c);
    hai_model_free(m);
    hai_free(sp);
    free(sp_text);
    return rc;
}
