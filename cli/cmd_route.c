/* hai route --explain: the hybrid router's decision for one prompt, without generating, through
 * the public API (hai_hybrid.h). The router over synthetic traces is tools/route-sim. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "hai_hybrid.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: hai route --explain -m MODEL.gguf [options] PROMPT\n"
            "  --route-config FILE  the routing policy (JSON, see README); default: everything local\n"
            "  --system TEXT        a system message before the prompt\n"
            "  -n N                 max_tokens of the request (default: not given)\n"
            "  --model-name NAME    the model the request names (a cloud model's name routes to it)\n"
            "  --deadline-ms MS     the request's deadline\n"
            "  --ctx N              the local context (default: min(trained, 4096))\n"
            "  --json               the decision as JSON (the hai_route object of hai serve)\n"
            "The router over a synthetic trace of many requests: build/hai-route-sim (tools/route-sim).\n");
}

static bool discard(void *user, const char *text, size_t len) {
    (void)user, (void)text, (void)len;
    return true;
}

static int explain(const char *model, const char *config, const char *system, const char *prompt, int64_t max_tokens,
                   const char *model_name, double deadline_ms, int64_t ctx, bool json) {
    hai_error err = {0};
    hai_model *m = NULL;
    hai_context *c = NULL;
    hai_router *r = NULL;
    hai_route_plan *plan = NULL;
    int rc = 1;
    hai_context_params cp = hai_context_default_params();
    cp.n_ctx = (uint32_t)ctx;
    cp.n_threads = 1;
    if (hai_model_load(model, NULL, &m, &err) || hai_context_create(m, &cp, &c, &err) ||
        hai_router_create_from_file(config, c, &r, &err))
        goto out;
    hai_chat_message msgs[2];
    size_t n = 0;
    if (system) msgs[n++] = (hai_chat_message){.role = "system", .content = system};
    msgs[n++] = (hai_chat_message){.role = "user", .content = prompt};
    hai_route_request q = {.size = sizeof q, .msgs = msgs, .n_msgs = n, .model = model_name, .max_tokens = (int32_t)max_tokens,
                           .deadline_ms = deadline_ms, .on_text = discard};
    if (hai_router_decide(r, &q, &plan, &err)) goto out;
    char *s = json ? hai_route_plan_json(plan) : hai_route_plan_explain(plan);
    if (!s) {
        fprintf(stderr, "hai route: out of memory\n");
        goto out;
    }
    printf(json ? "%s\n" : "%s", s);
    hai_free(s);
    rc = 0;
out:
    if (rc && err.status) cli_error("route", &err);
    hai_route_plan_free(plan);
    hai_router_free(r);
    hai_context_free(c);
    hai_model_free(m);
    return rc;
}

int cmd_route(int argc, char **argv) {
    const char *model = NULL, *config = NULL, *system = NULL, *prompt = NULL, *model_name = NULL;
    bool do_explain = false, json = false;
    int64_t max_tokens = 0, ctx = 0;
    double deadline = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--explain")) { do_explain = true; continue; }
        if (!strcmp(a, "--json")) { json = true; continue; }
        if (!strcmp(a, "--eval")) {
            fprintf(stderr, "hai route: the router over synthetic traces is its own tool now: build/hai-route-sim\n");
            return 2;
        }
        if (a[0] != '-' || !a[1]) {
            if (prompt) {
                fprintf(stderr, "hai route: one prompt only (quote it)\n");
                return 2;
            }
            prompt = a;
            continue;
        }
        if (!(val = cli_value(argc, argv, &i))) return 2;
        if (!strcmp(a, "-m")) model = val;
        else if (!strcmp(a, "--route-config")) config = val;
        else if (!strcmp(a, "--system")) system = val;
        else if (!strcmp(a, "--model-name")) model_name = val;
        else if (!strcmp(a, "-n")) { if (!cli_parse_i64(a, val, 1, 1 << 24, &max_tokens)) return 2; }
        else if (!strcmp(a, "--ctx")) { if (!cli_parse_i64(a, val, 16, 1 << 24, &ctx)) return 2; }
        else if (!strcmp(a, "--deadline-ms")) { if (!cli_parse_f64(a, val, &deadline) || deadline < 0) return 2; }
        else {
            fprintf(stderr, "hai route: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!do_explain || !model || !prompt) {
        usage(stderr);
        return 2;
    }
    return explain(model, config, system, prompt, max_tokens, model_name, deadline, ctx, json);
}
