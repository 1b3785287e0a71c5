/* hai serve: the OpenAI-compatible local server. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hai_server.h"
#include "cli.h"

static volatile sig_atomic_t stop_flag;
static void on_signal(int sig) {
    (void)sig;
    stop_flag = 1;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: hai serve -m MODEL.gguf [options]\n"
            "  --host ADDR          address to bind (default 127.0.0.1: this device only)\n"
            "  --port N             port (default 8080; 0 = any free port)\n"
            "  --parallel N         slots: requests generated at once, each with its own KV cache (default 2)\n"
            "  --queue N            requests that may wait beyond the slots (default 4 x slots); more get 429\n"
            "  --ctx N              context per slot (default min(trained, 4096))\n"
            "  --mmap               use the weights in place from the file's mapping (faster load, slower decode)\n"
            "  --mem-budget SIZE    weights, slots and embeddings within SIZE (512M, 2G); without --ctx, the\n"
            "                       largest context per slot that fits; weights over it stream from the file\n"
            "  --stream auto|on|off  weights read from the file as needed (auto: when --mem-budget needs it)\n"
            "  --stream-cache SIZE  RAM for the streamed weights (default: 3/4 of what the budget leaves)\n"
            "  --kv-type T          the slots' KV cache: f16 (default), q8_0 (half the memory), q4_0 (a quarter);\n"
            "                       with --mem-budget and no --kv-type, the first of these that holds the context\n"
            "  -t N                 compute threads shared by the slots (default: all CPUs)\n"
            "  --lookup N           prompt lookup: draft up to N tokens a step per slot from its text so far (same\n"
            "                       output, faster where answers repeat their input; 0 = off, the default)\n"
            "  --draft FILE         a smaller or lower-bit model of the same vocabulary drafts for every slot (up to\n"
            "                       --lookup N tokens a step, default 4), its passes batched over the slots\n"
            "  --api-key KEY        require Authorization: Bearer KEY (all routes but /health)\n"
            "  --cors-origin ORIGIN send CORS headers for this origin (default: none)\n"
            "  --max-body BYTES     largest request body (default 1048576)\n"
            "  --timeout SECONDS    longest a request may take (default 600)\n"
            "  --route-config FILE  hybrid routing policy (local / cloud), see README\n"
            "  --context-shift      a conversation that dropped older turns to fit finds the rest cached\n"
            "                       (the slot's cache moves down over them; approximate; off by default)\n"
            "  -m auto              the largest model of the catalog that fits --mem-budget (pulled if needed)\n"
            "  --catalog FILE       the catalog for -m auto (see hai pull --help)  --models-dir DIR  the model store\n"
            "  --max-connections N  sockets held at once (default 128); idle ones are closed to make room\n"
            "  --max-connections-per-addr N  of those, from one client address (default a quarter)\n"
            "  --idle-timeout S     a connection waiting for a request's headers is closed after S seconds (default 15)\n"
            "  --body-timeout S     a request body must arrive within S seconds (default 60)\n"
            "  --shutdown-grace S   at SIGTERM, requests in flight have S seconds to finish (default 10)\n");
}

/* -m auto: the largest model of the catalog that fits the memory budget, pulled into the model
 * store if it is not there; the choice and why, logged. */
static int auto_model(hai_serve_options *o, const char *catalog, const char *dir, char *path, size_t cap) {
    if (!o->mem_budget) {
        fprintf(stderr, "hai serve: -m auto chooses by the memory budget: give --mem-budget SIZE\n");
        return 1;
    }
    char cbuf[4096], dbuf[4096];
    hai_catalog_entry *e = NULL;
    size_t n = 0;
    hai_error err = {0};
    const char *cpath = cli_catalog_path(catalog, cbuf, sizeof cbuf);
    if (hai_catalog_load(cpath, &e, &n, &err)) {
        cli_error("serve", &err);
        return 1;
    }
    int k = hai_catalog_pick(e, n, o->mem_budget);
    if (k < 0) {
        fprintf(stderr, "hai serve: -m auto: no model of %s fits the %.1f MiB the budget leaves for a model\n", cpath, o->mem_budget / 1048576.0);
        hai_free(e);
        return 1;
    }
    fprintf(stderr, "hai serve: -m auto: %s, %.1f MiB needed of the %.1f MiB the budget leaves for a model: the largest of the catalog's %zu that fits",
            e[k].name, (e[k].memory ? e[k].memory : e[k].size) / 1048576.0, o->mem_budget / 1048576.0, n);
    for (size_t i = 0, w = 0; i < n; i++) {
        uint64_t need = e[i].memory ? e[i].memory : e[i].size;
        if (need > o->mem_budget) fprintf(stderr, "%s%s (%.1f MiB)", w++ ? ", " : "; too large: ", e[i].name, need / 1048576.0);
    }
    fprintf(stderr, "\n");
    int rc = cli_pull_model(&e[k], cli_model_dir(dir, dbuf, sizeof dbuf), path, cap);
    hai_free(e);
    if (!rc) o->model_path = path;
    return rc;
}

int cmd_serve(int argc, char **argv) {
    hai_serve_options o = {.port = 8080, .stop = &stop_flag};
    const char *catalog = NULL, *dir = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int64_t n;
        double x;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--mmap")) {
            o.mmap_weights = true;
            continue;
        }
        if (!strcmp(a, "--context-shift")) {
            o.context_shift = true;
            continue;
        }
        if (!(v = cli_value(argc, argv, &i))) return 2;
        if (!strcmp(a, "-m")) o.model_path = v;
        else if (!strcmp(a, "--host")) o.host = v;
        else if (!strcmp(a, "--api-key")) o.api_key = v;
        else if (!strcmp(a, "--cors-origin")) o.cors_origin = v;
        else if (!strcmp(a, "--route-config")) o.route_config = v;
        else if (!strcmp(a, "--catalog")) catalog = v;
        else if (!strcmp(a, "--models-dir")) dir = v;
        else if (!strcmp(a, "--port")) { if (!cli_parse_i64(a, v, 0, 65535, &n)) return 2; o.port = (uint16_t)n; }
        else if (!strcmp(a, "--parallel")) { if (!cli_parse_i64(a, v, 1, 64, &n)) return 2; o.n_slots = (int)n; }
        else if (!strcmp(a, "--queue")) { if (!cli_parse_i64(a, v, 0, 100000, &n)) return 2; o.max_queue = (int)n; }
        else if (!strcmp(a, "--kv-type")) { if (!cli_parse_kv_type(a, v, &o.kv_type)) return 2; }
        else if (!strcmp(a, "--ctx")) { if (!cli_parse_i64(a, v, 16, 1 << 24, &n)) return 2; o.n_ctx = (uint32_t)n; }
        else if (!strcmp(a, "--stream")) {
            if (!cli_parse_stream(a, v, &o.stream)) return 2;
        } else if (!strcmp(a, "--stream-cache")) {
            if (!cli_parse_size(a, v, &o.stream_cache)) return 2;
        } else if (!strcmp(a, "--mem-budget")) {
            if (!cli_parse_size(a, v, &o.mem_budget)) return 2;
            if (o.mem_budget <= 4 * CLI_BUDGET_RESERVE) {
                fprintf(stderr, "hai serve: --mem-budget must be more than the %llu MiB the server keeps for itself\n", (4 * CLI_BUDGET_RESERVE) >> 20);
                return 2;
            }
            o.mem_budget -= 4 * CLI_BUDGET_RESERVE; /* connections, request bodies, the slots' samplers, the threads */
        }
        else if (!strcmp(a, "-t")) { if (!cli_parse_i64(a, v, 1, 256, &n)) return 2; o.n_threads = (int)n; }
        else if (!strcmp(a, "--lookup")) { if (!cli_parse_i64(a, v, 0, 16, &n)) return 2; o.draft_lookup = (int)n; }
        else if (!strcmp(a, "--draft")) o.draft_path = v;
        else if (!strcmp(a, "--max-body")) { if (!cli_parse_i64(a, v, 1024, 1 << 30, &n)) return 2; o.max_body = (size_t)n; }
        else if (!strcmp(a, "--timeout")) { if (!cli_parse_f64(a, v, &x) || x <= 0) return 2; o.timeout_s = x; }
        else if (!strcmp(a, "--max-connections")) { if (!cli_parse_i64(a, v, 4, 100000, &n)) return 2; o.max_connections = (int)n; }
        else if (!strcmp(a, "--max-connections-per-addr")) { if (!cli_parse_i64(a, v, 1, 100000, &n)) return 2; o.max_connections_per_addr = (int)n; }
        else if (!strcmp(a, "--idle-timeout")) { if (!cli_parse_f64(a, v, &x) || x <= 0) return 2; o.idle_timeout_s = x; }
        else if (!strcmp(a, "--body-timeout")) { if (!cli_parse_f64(a, v, &x) || x <= 0) return 2; o.body_timeout_s = x; }
        else if (!strcmp(a, "--shutdown-grace")) { if (!cli_parse_f64(a, v, &x) || x < 0) return 2; o.shutdown_grace_s = x > 0 ? x : 1e-6; }
        else {
            fprintf(stderr, "hai serve: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!o.model_path) {
        usage(stderr);
        return 2;
    }
    char path[4096];
    if (!strcmp(o.model_path, "auto") && auto_model(&o, catalog, dir, path, sizeof path)) return 1;
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    return hai_serve(&o);
}
