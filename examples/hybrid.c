/* Hybrid routing from an app's own code, built against the installed package:
 *   cc hybrid.c $(pkg-config --cflags --libs hai-hybrid) -o hybrid
 *   ./hybrid MODEL.gguf POLICY.json "question" [max_tokens]
 * The question goes to the device or to the policy's cloud (any OpenAI-compatible service), as
 * the policy's rules decide: personal data kept on the device, offline fallback, budgets,
 * deadlines, the local model's confidence. The decision is shown before the answer streams, and
 * where the answer came from after it. POLICY.json "-" = everything on the device. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hai.h>
#include <hai_hybrid.h>

static bool print_text(void *user, const char *text, size_t len) {
    (void)user;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return true; /* false stops the answer, from the device or from the cloud */
}

static void print_source(void *user, bool cloud) {
    (void)user;
    fprintf(stderr, "[source: %s]\n", cloud ? "the cloud" : "the device");
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL.gguf POLICY.json|- QUESTION [MAX_TOKENS]\n", argv[0]);
        return 2;
    }
    hai_error err = {0};
    hai_model *m = NULL;
    hai_context *c = NULL;
    hai_router *r = NULL;
    hai_route_plan *plan = NULL;
    int rc = 1;
    if (hai_model_load(argv[1], NULL, &m, &err) != HAI_OK) goto out;
    hai_context_params cp = hai_context_default_params();
    cp.n_threads = 1;
    if (hai_context_create(m, &cp, &c, &err) != HAI_OK) goto out;
    if (hai_router_create_from_file(strcmp(argv[2], "-") ? argv[2] : NULL, c, &r, &err) != HAI_OK) goto out;

    hai_chat_message msgs[] = {{.role = "user", .content = argv[3]}};
    hai_route_request q = {.size = sizeof q, .msgs = msgs, .n_msgs = 1, .max_tokens = argc > 4 ? atoi(argv[4]) : 32,
                           .on_text = print_text, .on_source = print_source};
    if (hai_router_decide(r, &q, &plan, &err) != HAI_OK) goto out;
    char reasons[256];
    hai_route_reasons_str(hai_route_plan_reasons(plan), reasons, sizeof reasons);
    fprintf(stderr, "decision: %s (%s)%s\n", hai_route_name(hai_route_plan_route(plan)), reasons,
            hai_route_plan_redacts(plan) ? ", personal data redacted before it leaves" : "");

    hai_route_result res = {.size = sizeof res};
    hai_status st = hai_router_execute(r, plan, &res, &err); /* frees the plan */
    plan = NULL;
    printf("\n");
    if (st != HAI_OK) goto out;
    hai_route_reasons_str(res.reasons, reasons, sizeof reasons);
    fprintf(stderr, "answered by: %s (%s); %d tokens in %.2f s%s%s\n", hai_route_name(res.route), reasons, res.completion_tokens,
            res.seconds, res.error[0] ? "; cloud error: " : "", res.error);
    rc = 0;
out:
    if (rc) fprintf(stderr, "hybrid: %s\n", err.msg);
    hai_route_plan_free(plan);
    hai_router_free(r);
    hai_context_free(c);
    hai_model_free(m);
    return rc;
}
