/* hai run (one prompt) and hai chat (a conversation at the terminal): generate text on the
 * device and stream it to stdout; timings go to stderr. */
#include <cjson/cJSON.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "routed.h"

typedef struct run_opts {
    const char *model, *prompt, *prompt_file, *system, *prompts_jsonl, *route_config;
    const char *grammar_file, *schema_file; /* constrain the output (hai run) */
    bool json;
    const char *stop[16];
    const char *draft; /* a draft model's file */
    const char *draft_self; /* or a copy of the model in this type, made at start */
    const char *state;      /* hai run --state: the context's state, loaded if there, saved after */
    size_t n_stop;
    int64_t n_predict, threads, ctx, lookup;
    uint64_t mem_budget; /* bytes; 0 = none */
    hai_stream_mode stream;
    uint64_t stream_cache;
    uint32_t kv_type;    /* 0: F16, or with --mem-budget the type that holds the context (hai_context_fit_kv) */
    bool chat, parse_special, quiet, seed_set, mmap_weights;
    hai_sampler_params sp;
} run_opts;

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig) {
    (void)sig;
    interrupted = 1;
}

static void usage(FILE *f, const char *cmd) {
    fprintf(f,
            "usage: hai %s -m MODEL.gguf %s[options]\n"
            "  -n N                 most tokens to generate (default 256; 0 = until the context is full)\n"
            "  -t N                 threads (default: all CPUs)\n"
            "  --ctx N              context length (default: min(trained, 4096))\n"
            "  --mmap               use the weights in place from the file's mapping (faster load, slower decode)\n"
            "  --state FILE         run: the context's state (tokens and KV cache) read from FILE when it is\n"
            "                       there - the prompt's cached part is not read again - and saved to it after\n"
            "  --kv-type T          the KV cache: f16 (default), q8_0 (half the memory), q4_0 (a quarter); with\n"
            "                       --mem-budget and no --kv-type, the first of these that holds the context\n"
            "  --mem-budget SIZE    weights, KV cache and scratch within SIZE (512M, 2G): refused with the\n"
            "                       figures when they do not fit; without --ctx, the largest context that fits;\n"
            "                       weights over it stream from the file (a mixture's experts, else layers)\n"
            "  --stream auto|on|off weights read from the file as needed (auto: when --mem-budget needs it)\n"
            "  --stream-cache SIZE  RAM for the streamed weights (default: 3/4 of what the budget leaves)\n"
            "  --lookup N           prompt lookup: draft up to N tokens a pass from the text so far (same output, faster\n"
            "                       where the answer repeats its input: edits, summaries, code)\n"
            "  --draft FILE         a smaller or lower-bit model of the same vocabulary drafts (up to --lookup N, default 4)\n"
            "  --draft-self TYPE    a copy of the model quantized to TYPE (e.g. Q4_0) at start drafts (to reuse one,\n"
            "                       make it with hai quantize and pass --draft FILE)\n"
            "  --temp X             temperature (default 0.8; 0 = greedy)\n"
            "  --top-k N --top-p X --min-p X --repeat-penalty X --repeat-last-n N\n"
            "  --presence-penalty X --frequency-penalty X\n"
            "  --seed S             sampling seed (default: from the clock; printed)\n"
            "  --stop TEXT          stop when TEXT is generated (repeatable)\n"
            "  --system TEXT        system prompt (chat formats)\n"
            "%s"
            "  -q                   no timing summary\n"
            "  --route-config FILE  answer through the hybrid router (local / cloud policy, see README);\n"
            "                       the route taken and why are printed after the answer\n"
            "  --prompts FILE       many prompts, one JSON string per line (or {\"prompt\": ..., \"tools\": [...]}, tools\n"
            "                       as in OpenAI's API, with --chat); with --json,\n"
            "                       one JSON result per line: text, finish, tokens, mean entropy of the first 16\n"
            "  --json               machine-readable output (with --prompts)\n",
            cmd, strcmp(cmd, "run") ? "" : "(-p PROMPT | -f FILE) ",
            strcmp(cmd, "run") ? "" : "  --chat               apply the model's chat format to the prompt\n"
                                      "  --parse-special      treat special-token text in a raw prompt as tokens\n");
}

static int parse(int argc, char **argv, run_opts *o, const char *cmd) {
    o->sp = hai_sampler_default_params();
    o->n_predict = 256;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        double x;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout, cmd);
            return 0;
        }
        if (!strcmp(a, "--chat")) { o->chat = true; continue; }
        if (!strcmp(a, "--parse-special")) { o->parse_special = true; continue; }
        if (!strcmp(a, "-q")) { o->quiet = true; continue; }
        if (!strcmp(a, "--json")) { o->json = true; continue; }
        if (!strcmp(a, "--mmap")) { o->mmap_weights = true; continue; }
        if (!(v = cli_value(argc, argv, &i))) return 2;
        int64_t n;
        if (!strcmp(a, "-m")) o->model = v;
        else if (!strcmp(a, "-p")) o->prompt = v;
        else if (!strcmp(a, "-f")) o->prompt_file = v;
        else if (!strcmp(a, "--system")) o->system = v;
        else if (!strcmp(a, "--prompts")) o->prompts_jsonl = v;
        else if (!strcmp(a, "--route-config")) o->route_config = v;
        else if (!strcmp(a, "--grammar")) o->grammar_file = v;
        else if (!strcmp(a, "--json-schema")) o->schema_file = v;
        else if (!strcmp(a, "--stop")) {
            if (o->n_stop == 16) { fprintf(stderr, "hai: at most 16 --stop strings\n"); return 2; }
            o->stop[o->n_stop++] = v;
        } else if (!strcmp(a, "-n")) { if (!cli_parse_i64(a, v, 0, 1 << 24, &o->n_predict)) return 2; }
        else if (!strcmp(a, "-t")) { if (!cli_parse_i64(a, v, 1, 256, &o->threads)) return 2; }
        else if (!strcmp(a, "--ctx")) { if (!cli_parse_i64(a, v, 16, 1 << 24, &o->ctx)) return 2; }
        else if (!strcmp(a, "--mem-budget")) { if (!cli_parse_size(a, v, &o->mem_budget)) return 2; }
        else if (!strcmp(a, "--stream")) { if (!cli_parse_stream(a, v, &o->stream)) return 2; }
        else if (!strcmp(a, "--stream-cache")) { if (!cli_parse_size(a, v, &o->stream_cache)) return 2; }
        else if (!strcmp(a, "--kv-type")) { if (!cli_parse_kv_type(a, v, &o->kv_type)) return 2; }
        else if (!strcmp(a, "--top-k")) { if (!cli_parse_i64(a, v, 0, 1 << 24, &n)) return 2; o->sp.top_k = (int32_t)n; }
        else if (!strcmp(a, "--repeat-last-n")) { if (!cli_parse_i64(a, v, 0, 1 << 16, &n)) return 2; o->sp.repeat_last_n = (int32_t)n; }
        else if (!strcmp(a, "--lookup")) { if (!cli_parse_i64(a, v, 0, 64, &o->lookup)) return 2; }
        else if (!strcmp(a, "--draft")) o->draft = v;
        else if (!strcmp(a, "--draft-self")) o->draft_self = v;
        else if (!strcmp(a, "--state")) o->state = v;
        else if (!strcmp(a, "--seed")) { if (!cli_parse_i64(a, v, 0, INT64_MAX, &n)) return 2; o->sp.seed = (uint64_t)n; o->seed_set = true; }
        else {
            float *dst = !strcmp(a, "--temp") ? &o->sp.temperature : !strcmp(a, "--top-p") ? &o->sp.top_p
                       : !strcmp(a, "--min-p") ? &o->sp.min_p : !strcmp(a, "--repeat-penalty") ? &o->sp.repeat_penalty
                       : !strcmp(a, "--presence-penalty") ? &o->sp.presence_penalty
                       : !strcmp(a, "--frequency-penalty") ? &o->sp.frequency_penalty : NULL;
            if (!dst) {
                fprintf(stderr, "hai %s: unknown option '%s'\n", cmd, a);
                usage(stderr, cmd);
                return 2;
            }
            if (!cli_parse_f64(a, v, &x)) return 2;
            *dst = (float)x;
        }
    }
    if (!o->model) {
        usage(stderr, cmd);
        return 2;
    }
    if (!o->seed_set) o->sp.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
    return -1; /* go on */
}

static bool print_text(void *user, const char *text, size_t len) {
    (void)user;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return !interrupted;
}


static double rss_at_start; /* KiB, before the model: the process's own (code, libraries) */

static void report(const hai_model *m, const hai_generate_result *r, double load_s, int threads) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    const char *fin[] = {"stop", "length", "cancelled"};
    fprintf(stderr,
            "\n[load %.2f s | prompt %d tok (+%d cached) %.3f s, %.1f tok/s | first token %.3f s | generated %d tok, %.1f tok/s | "
            "finish %s | peak RSS %.1f MiB (%.1f MiB before the model) | %s kernels, %d threads]\n",
            load_s, r->n_prompt, r->n_cached, r->t_prompt_s, r->t_prompt_s > 0 ? r->n_prompt / r->t_prompt_s : 0, r->t_first_token_s,
            r->n_generated, r->t_generate_s > 0 && r->n_generated > 1 ? (r->n_generated - 1) / r->t_generate_s : 0, fin[r->finish],
            (double)ru.ru_maxrss / 1024, rss_at_start / 1024, hai_kernels_name(), threads);
    cli_stream_report(m, r->n_prompt - r->n_cached + r->n_generated, stderr);
    if (r->n_drafted)
        fprintf(stderr, "[drafts: %d tokens drafted, %d kept (%.0f%%)]\n", r->n_drafted, r->n_accepted, 100.0 * r->n_accepted / r->n_drafted);
}

typedef struct session {
    hai_model *m, *dm;   /* the model, and a draft model (--draft) */
    hai_context *c, *dc;
    hai_sampler *s;
    double load_s;
    int threads;
} session;

/* --draft-self TYPE: the model quantized to TYPE into a temporary file, loaded (its weights are
 * copied into memory at load) and the file removed. */
static hai_status load_self_draft(const run_opts *o, const hai_model_params *mp, session *ss, hai_error *err) {
    uint32_t ft, base;
    if (!hai_quantize_type_info(o->draft_self, &ft, &base))
        return cli_fail(err, HAI_ERR_INVALID, "--draft-self: unknown type '%s' (see hai quantize --help)", o->draft_self);
    const char *dir = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char path[4096];
    snprintf(path, sizeof path, "%s/hai-draft-XXXXXX", dir);
    int fd = mkstemp(path);
    if (fd < 0) return cli_fail(err, HAI_ERR_IO, "--draft-self: cannot create a temporary file in %s", dir);
    close(fd);
    double t0 = hai_time_s();
    hai_quantize_params qp = {.type = o->draft_self, .n_threads = (int)o->threads};
    hai_status st = hai_quantize_model(o->model, path, &qp, NULL, err);
    if (!st) {
        hai_model_params dp = *mp;
        dp.mmap_weights = false; /* the file goes away */
        st = hai_model_load(path, &dp, &ss->dm, err);
    }
    unlink(path);
    if (!st && !o->quiet) fprintf(stderr, "[draft: the model as %s, made in %.1f s]\n", o->draft_self, hai_time_s() - t0);
    return st;
}

static int open_session(const run_opts *o, session *ss) {
    hai_error err = {0};
    rss_at_start = (double)hai_rss_bytes() / 1024;
    double t0 = hai_time_s();
    memset(ss, 0, sizeof *ss);
    hai_model_params mp = hai_model_default_params();
    mp.mmap_weights = o->mmap_weights;
    mp.stream = o->stream, mp.stream_cache = o->stream_cache;
    if (o->mem_budget && o->mem_budget <= CLI_BUDGET_RESERVE) {
        fprintf(stderr, "hai run: --mem-budget must be more than the %llu MiB the run keeps for itself\n", CLI_BUDGET_RESERVE >> 20);
        return 1;
    }
    mp.mem_budget = o->mem_budget ? o->mem_budget - CLI_BUDGET_RESERVE : 0;
    bool drafter = o->draft || o->draft_self;
    if (o->mem_budget && o->draft_self) { /* quantizing takes memory no plan counts */
        fprintf(stderr, "hai run: --draft-self is not planned within --mem-budget: make the draft with hai quantize and give it as --draft FILE\n");
        return 1;
    }
    if (hai_model_load(o->model, &mp, &ss->m, &err) != HAI_OK) goto fail;
    if (o->draft_self && load_self_draft(o, &mp, ss, &err) != HAI_OK) goto fail;
    if (o->draft) { /* under a budget it counts there, in memory (a draft read from storage would gain nothing) */
        hai_model_params dp = mp;
        if (o->mem_budget) dp.budget_of = ss->m, dp.stream = HAI_STREAM_OFF;
        if (hai_model_load(o->draft, &dp, &ss->dm, &err) != HAI_OK || hai_draft_check(ss->m, ss->dm, &err) != HAI_OK) goto fail;
    }
    hai_context_params cp = hai_context_default_params();
    cp.n_ctx = (uint32_t)o->ctx;
    cp.n_threads = (int)o->threads;
    cp.kv_type = o->kv_type;
    cp.n_draft = (uint32_t)(drafter && !o->lookup ? 4 : o->lookup);
    char wb[160];
    if (o->mem_budget) { /* the largest context the budget leaves room for (up to --ctx; the draft's beside), and the KV type */
        uint64_t left = hai_model_budget_left(ss->m);
        uint32_t f16_ctx = 0, n = hai_context_fit_kv(ss->m, ss->dm, &cp, left, &f16_ctx);
        if (!n) {
            fprintf(stderr, "hai run: the memory budget leaves %.1f MiB after the %s%s: not enough for any context\n", left / 1048576.0,
                    hai_model_weights_text(ss->m, wb, sizeof wb), ss->dm ? " and the draft's" : "");
            return 1;
        }
        if (o->ctx && n < (uint32_t)o->ctx) /* the context asked for: hai_context_create says what fits */
            cp.n_ctx = (uint32_t)o->ctx, cp.kv_type = o->kv_type;
        else if (cp.kv_type != HAI_TYPE_F16 && !o->kv_type && !o->quiet)
            fprintf(stderr, "[KV cache %s: within the memory budget an F16 cache would hold %u tokens, this one %u]\n", hai_type_name(cp.kv_type),
                    f16_ctx, n);
    }
    if (hai_context_create(ss->m, &cp, &ss->c, &err) != HAI_OK) goto fail;
    if (drafter) {
        cp.n_ctx = hai_context_n_ctx(ss->c);
        if (hai_context_create(ss->dm, &cp, &ss->dc, &err) != HAI_OK) goto fail;
    }
    char db[80] = "";
    if (ss->dm)
        snprintf(db, sizeof db, " + draft %.1f MiB and its context %.1f MiB", hai_model_weights_bytes(ss->dm) / 1048576.0,
                 hai_context_memory_bytes(ss->dc) / 1048576.0);
    if (o->mem_budget && !o->quiet)
        fprintf(stderr, "[memory budget %.1f MiB: %s + context %.1f MiB (n_ctx %u)%s + the run's own %llu MiB; %.1f MiB left]\n",
                o->mem_budget / 1048576.0, hai_model_weights_text(ss->m, wb, sizeof wb), hai_context_memory_bytes(ss->c) / 1048576.0,
                hai_context_n_ctx(ss->c), db, CLI_BUDGET_RESERVE >> 20, hai_model_budget_left(ss->m) / 1048576.0);
    if (hai_sampler_create(&o->sp, hai_model_n_vocab(ss->m), &ss->s, &err) != HAI_OK) goto fail;
    ss->load_s = hai_time_s() - t0;
    ss->threads = o->threads ? (int)o->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (!o->quiet)
        fprintf(stderr, "[%s | n_ctx %u | seed %llu]\n", hai_model_desc(ss->m), hai_context_n_ctx(ss->c), (unsigned long long)o->sp.seed);
    return 0;
fail:
    cli_error("run", &err);
    return 1;
}

static void close_session(session *ss) {
    hai_sampler_free(ss->s);
    hai_context_free(ss->c);
    hai_context_free(ss->dc);
    hai_model_free(ss->m);
    hai_model_free(ss->dm);
}

/* ---- hai chat ------------------------------------------------------------------------------------- */

typedef struct reply {
    char *p;
    size_t n, cap;
} reply;

static bool collect(void *user, const char *text, size_t len) {
    reply *r = user;
    if (r->cap - r->n < len + 1) {
        size_t cap = r->cap ? r->cap * 2 : 1024;
        while (cap - r->n < len + 1) cap *= 2;
        char *p = realloc(r->p, cap);
        if (!p) return false;
        r->p = p;
        r->cap = cap;
    }
    memcpy(r->p + r->n, text, len);
    r->n += len;
    r->p[r->n] = '\0';
    return print_text(NULL, text, len);
}

static bool collect_quiet(void *user, const char *text, size_t len) {
    reply *r = user;
    if (r->cap - r->n < len + 1) {
        size_t cap = r->cap ? r->cap * 2 : 1024;
        while (cap - r->n < len + 1) cap *= 2;
        char *p = realloc(r->p, cap);
        if (!p) return false;
        r->p = p;
        r->cap = cap;
    }
    memcpy(r->p + r->n, text, len);
    r->n += len;
    r->p[r->n] = '\0';
    return true;
}

/* --prompts: each line a JSON string or object with "prompt"; each answered from a fresh start
 * (the shared chat-format prefix is reused from the cache). */
static int run_batch(const run_opts *o, session *ss) {
    FILE *f = fopen(o->prompts_jsonl, "r");
    if (!f) {
        fprintf(stderr, "hai run: cannot read %s\n", o->prompts_jsonl);
        return 1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = 0, lineno = 0;
    while ((len = getline(&line, &cap, f)) > 0) {
        lineno++;
        cJSON *j = cJSON_Parse(line);
        const cJSON *pj = cJSON_IsString(j) ? j : cJSON_GetObjectItemCaseSensitive(j, "prompt");
        if (!cJSON_IsString(pj)) {
            fprintf(stderr, "hai run: %s:%d: not a JSON string or {\"prompt\": ...}\n", o->prompts_jsonl, lineno);
            cJSON_Delete(j);
            rc = 1;
            continue;
        }
        hai_error err = {0};
        hai_token *ids = NULL;
        size_t n = 0;
        hai_status st = HAI_OK;
        /* {"prompt": ..., "tools": [...]}: OpenAI's tools array shown to the chat template; the
         * calls come out as the model writes them (the server parses them) */
        const cJSON *tj = cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, "tools") : NULL;
        char *tools = NULL;
        if (tj && (!cJSON_IsArray(tj) || !o->chat)) {
            st = cli_fail(&err, HAI_ERR_INVALID, "\"tools\" must be an array, and needs --chat");
        } else if (tj && !(tools = cJSON_PrintUnformatted(tj))) {
            st = cli_fail(&err, HAI_ERR_NOMEM, "out of memory");
        }
        if (!st && o->chat) {
            hai_chat_message msgs[2];
            size_t nm = 0;
            if (o->system) msgs[nm++] = (hai_chat_message){.role = "system", .content = o->system};
            msgs[nm++] = (hai_chat_message){.role = "user", .content = pj->valuestring};
            hai_chat_params cp = hai_chat_default_params();
            cp.tools = tools;
            st = hai_chat_tokenize(ss->m, &cp, msgs, nm, &ids, &n, &err);
        } else if (!st) {
            st = hai_tokenize_alloc(hai_model_tokenizer(ss->m), pj->valuestring, strlen(pj->valuestring), HAI_TOKENIZE_ADD_SPECIAL, &ids, &n, &err);
        }
        reply r = {0};
        hai_generate_result res = {0};
        if (!st) {
            hai_sampler_reset(ss->s);
            hai_generate_params gp = {.max_tokens = (int32_t)o->n_predict, .stop = o->stop, .n_stop = o->n_stop,
                                      .sampler = o->sp.temperature > 0 ? ss->s : NULL, .on_text = collect_quiet, .user = &r};
            st = hai_generate(ss->c, ids, n, &gp, &res, &err);
        }
        free(ids);
        free(tools);
        const char *fin[] = {"stop", "length", "cancelled"};
        if (o->json) {
            cJSON *out = cJSON_CreateObject();
            cJSON_AddStringToObject(out, "prompt", pj->valuestring);
            if (st) {
                cJSON_AddStringToObject(out, "error", err.msg);
            } else {
                cJSON_AddStringToObject(out, "text", r.p ? r.p : "");
                cJSON_AddStringToObject(out, "finish", fin[res.finish]);
                cJSON_AddNumberToObject(out, "prompt_tokens", res.n_prompt + res.n_cached);
                cJSON_AddNumberToObject(out, "completion_tokens", res.n_generated);
                cJSON_AddNumberToObject(out, "mean_entropy", res.mean_entropy);
            }
            char *txt = cJSON_PrintUnformatted(out);
            printf("%s\n", txt);
            free(txt);
            cJSON_Delete(out);
        } else {
            printf("%s\n", st ? err.msg : (r.p ? r.p : ""));
        }
        fflush(stdout);
        free(r.p);
        cJSON_Delete(j);
        if (st) rc = 1;
    }
    free(line);
    fclose(f);
    return rc;
}

/* hai run --route-config: one chat turn through the hybrid router. */
static int run_routed(const run_opts *o, session *ss, const char *prompt) {
    hai_error err = {0};
    hai_router *r = NULL;
    if (hai_router_create_from_file(o->route_config, ss->c, &r, &err) != HAI_OK) {
        cli_error("run", &err);
        return 1;
    }
    hai_chat_message msgs[2];
    size_t nm = 0;
    if (o->system) msgs[nm++] = (hai_chat_message){.role = "system", .content = o->system};
    msgs[nm++] = (hai_chat_message){.role = "user", .content = prompt};
    signal(SIGINT, on_sigint);
    hai_route_result res;
    hai_status st = cli_router_chat(r, msgs, nm, (int32_t)o->n_predict, &o->sp, o->stop, o->n_stop, print_text, NULL, &res, &err);
    printf("\n");
    if (st) cli_error("run", &err);
    else cli_router_report(&res); /* where the answer came from: shown even with -q */
    hai_router_free(r);
    return st ? 1 : 0;
}

/* The grammar of --grammar FILE, or of --json-schema FILE converted. */
static hai_status open_grammar(const run_opts *o, session *ss, hai_grammar **g, hai_error *err) {
    const char *path = o->grammar_file ? o->grammar_file : o->schema_file;
    char *text = cli_read_file(path, NULL), *gbnf = NULL;
    if (!text) {
        snprintf(err->msg, sizeof err->msg, "cannot read %s", path);
        return err->status = HAI_ERR_IO;
    }
    hai_status st = HAI_OK;
    if (o->schema_file) {
        st = hai_json_schema_to_gbnf(text, strlen(text), &gbnf, err);
        free(text);
        text = gbnf;
    }
    if (!st) st = hai_grammar_create(hai_model_tokenizer(ss->m), text, strlen(text), NULL, g, err);
    if (st) {
        char m[sizeof err->msg];
        snprintf(m, sizeof m, "%s", err->msg);
        cli_fail(err, st, "%s: %s", path, m);
    }
    hai_free(text);
    return st;
}

int cmd_run(int argc, char **argv) {
    run_opts o = {0};
    int rc = parse(argc, argv, &o, "run");
    if (rc >= 0) return rc;
    if (o.prompts_jsonl) {
        session bs;
        o.quiet = true;
        if (open_session(&o, &bs)) {
            close_session(&bs);
            return 1;
        }
        rc = run_batch(&o, &bs);
        close_session(&bs);
        return rc;
    }
    char *owned = NULL;
    if (o.prompt_file && !(owned = cli_read_file(o.prompt_file, NULL))) {
        fprintf(stderr, "hai run: cannot read %s\n", o.prompt_file);
        return 1;
    }
    const char *prompt = owned ? owned : o.prompt;
    if (!prompt) {
        usage(stderr, "run");
        return 2;
    }
    if ((o.grammar_file || o.schema_file) && (o.route_config || (o.grammar_file && o.schema_file))) {
        fprintf(stderr, "hai run: --grammar / --json-schema: one of them, and not with --route-config\n");
        free(owned);
        return 2;
    }
    session ss;
    if (open_session(&o, &ss)) {
        free(owned);
        close_session(&ss);
        return 1;
    }
    hai_error err = {0};
    hai_token *ids = NULL;
    size_t n = 0;
    hai_status st;
    if (o.route_config) { /* the router works on chat messages */
        rc = run_routed(&o, &ss, prompt);
        free(owned);
        close_session(&ss);
        return rc;
    }
    if (o.chat) {
        hai_chat_message msgs[2];
        size_t nm = 0;
        if (o.system) msgs[nm++] = (hai_chat_message){.role = "system", .content = o.system};
        msgs[nm++] = (hai_chat_message){.role = "user", .content = prompt};
        st = hai_chat_tokenize(ss.m, NULL, msgs, nm, &ids, &n, &err);
    } else {
        uint32_t flags = HAI_TOKENIZE_ADD_SPECIAL | (o.parse_special ? HAI_TOKENIZE_PARSE_SPECIAL : 0);
        st = hai_tokenize_alloc(hai_model_tokenizer(ss.m), prompt, strlen(prompt), flags, &ids, &n, &err);
    }
    hai_grammar *grammar = NULL;
    if (!st && (o.grammar_file || o.schema_file)) st = open_grammar(&o, &ss, &grammar, &err);
    if (!st && o.state && access(o.state, F_OK) == 0) { /* a state saved by an earlier run: its prefix need not be read again */
        st = hai_state_load(ss.c, 0, o.state, &err);
        if (!st && !o.quiet) fprintf(stderr, "[state: %u positions from %s]\n", hai_context_n_past(ss.c), o.state);
    }
    if (!st) {
        signal(SIGINT, on_sigint);
        hai_generate_params gp = {.max_tokens = (int32_t)o.n_predict, .stop = o.stop, .n_stop = o.n_stop,
                                  .sampler = o.sp.temperature > 0 ? ss.s : NULL, .on_text = print_text, .grammar = grammar,
                                  .draft_lookup = (int32_t)o.lookup, .draft_context = ss.dc,
                                  .draft_tokens = (int32_t)(o.lookup ? o.lookup : 4)};
        hai_generate_result r;
        st = hai_generate(ss.c, ids, n, &gp, &r, &err);
        if (!st) {
            printf("\n");
            if (!o.quiet) report(ss.m, &r, ss.load_s, ss.threads);
        }
        if (!st && o.state && !(st = hai_state_save(ss.c, 0, o.state, &err)) && !o.quiet)
            fprintf(stderr, "[state: %u positions saved to %s]\n", hai_context_n_past(ss.c), o.state);
    }
    if (st) cli_error("run", &err);
    hai_grammar_free(grammar);
    free(ids);
    free(owned);
    close_session(&ss);
    return st ? 1 : 0;
}

int cmd_chat(int argc, char **argv) {
    run_opts o = {0};
    int rc = parse(argc, argv, &o, "chat");
    if (rc >= 0) return rc;
    session ss;
    if (open_session(&o, &ss)) {
        close_session(&ss);
        return 1;
    }
    hai_router *router = NULL;
    if (o.route_config) {
        hai_error err = {0};
        if (hai_router_create_from_file(o.route_config, ss.c, &router, &err) != HAI_OK) {
            cli_error("chat", &err);
            close_session(&ss);
            return 1;
        }
    }
    /* a conversation that outgrows the context drops its oldest turns; the cache moves down over
     * them instead of the recent turns being read again (context shift) */
    hai_context_set_shift(ss.c, true);
    signal(SIGINT, on_sigint);
    bool tty = isatty(0);
    if (tty) fprintf(stderr, "[chat: type a message; /reset forgets the conversation, /exit or Ctrl-D ends]\n");
    hai_chat_message *msgs = NULL;
    size_t n_msgs = 0, cap_msgs = 0;
    char line[65536];
    rc = 0;
    if (o.system) {
        msgs = malloc(8 * sizeof *msgs);
        cap_msgs = 8;
        msgs[n_msgs++] = (hai_chat_message){.role = "system", .content = strdup(o.system)};
    }
    size_t keep = n_msgs; /* messages /reset keeps */
    for (;;) {
        if (tty) fprintf(stderr, "> ");
        interrupted = 0;
        if (!fgets(line, sizeof line, stdin)) break;
        size_t len = strlen(line);
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        if (!len) continue;
        if (!strcmp(line, "/exit") || !strcmp(line, "/quit")) break;
        if (!strcmp(line, "/reset")) {
            for (size_t i = keep; i < n_msgs; i++) free((char *)msgs[i].content);
            n_msgs = keep;
            fprintf(stderr, "[conversation cleared]\n");
            continue;
        }
        if (n_msgs + 2 > cap_msgs) {
            size_t cap = cap_msgs ? cap_msgs * 2 : 8;
            hai_chat_message *mm = realloc(msgs, cap * sizeof *msgs);
            if (!mm) {
                fprintf(stderr, "hai chat: out of memory\n");
                break;
            }
            msgs = mm, cap_msgs = cap;
        }
        msgs[n_msgs++] = (hai_chat_message){.role = "user", .content = strdup(line)};
        hai_error err = {0};
        hai_token *ids = NULL;
        size_t n = 0;
        hai_status st = hai_chat_tokenize(ss.m, NULL, msgs, n_msgs, &ids, &n, &err);
        /* a conversation longer than the context loses its oldest turns, leaving a quarter of the
         * context for the answer */
        uint32_t room = hai_context_n_ctx(ss.c) / 4 > 16 ? hai_context_n_ctx(ss.c) / 4 : 16;
        size_t dropped = 0;
        while (!st && n + room > hai_context_n_ctx(ss.c) && n_msgs - keep > 1) {
            free((char *)msgs[keep].content);
            memmove(&msgs[keep], &msgs[keep + 1], (n_msgs - keep - 1) * sizeof *msgs);
            n_msgs--, dropped++;
            free(ids);
            st = hai_chat_tokenize(ss.m, NULL, msgs, n_msgs, &ids, &n, &err);
        }
        if (dropped && !o.quiet) fprintf(stderr, "[the context is full: the %zu oldest messages dropped]\n", dropped);
        reply r = {0};
        hai_generate_result res;
        hai_route_result hres;
        if (!st && router) {
            st = cli_router_chat(router, msgs, n_msgs, (int32_t)o.n_predict, &o.sp, o.stop, o.n_stop, collect, &r, &hres, &err);
        } else if (!st) {
            hai_generate_params gp = {.max_tokens = (int32_t)o.n_predict, .stop = o.stop, .n_stop = o.n_stop,
                                      .sampler = o.sp.temperature > 0 ? ss.s : NULL, .on_text = collect, .user = &r,
                                      .draft_lookup = (int32_t)o.lookup, .draft_context = ss.dc,
                                      .draft_tokens = (int32_t)(o.lookup ? o.lookup : 4)};
            st = hai_generate(ss.c, ids, n, &gp, &res, &err);
        }
        free(ids);
        printf("\n");
        if (st) {
            cli_error("chat", &err);
            free((char *)msgs[--n_msgs].content);
            free(r.p);
            continue;
        }
        if (router) cli_router_report(&hres);
        else if (!o.quiet) report(ss.m, &res, ss.load_s, ss.threads);
        msgs[n_msgs++] = (hai_chat_message){.role = "assistant", .content = r.p ? r.p : strdup("")};
    }
    for (size_t i = 0; i < n_msgs; i++) free((char *)msgs[i].content);
    free(msgs);
    hai_router_free(router);
    close_session(&ss);
    return rc;
}
