/* hai info: what a GGUF file holds and what it needs to run. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: hai info MODEL.gguf [--ctx N] [--batch N] [--mem-budget SIZE] [-v]\n"
            "  --mem-budget SIZE  what fits in SIZE (512M, 2G): the largest context for 1, 2, 4, 8 sequences\n"
            "  --ctx N     context length for the memory estimate (default: 4096, or the\n"
            "              trained context when smaller)\n"
            "  --batch N   prefill batch for the scratch estimate (default 512)\n"
            "  -v          also list every metadata key and tensor\n");
}

static void print_str(const hai_gguf_str *s, size_t max) {
    putchar('"');
    for (uint64_t i = 0; i < s->size && i < max; i++) {
        unsigned char c = (unsigned char)s->data[i];
        if (c == '\n') fputs("\\n", stdout);
        else if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c < 0x20 || c == 0x7f) printf("\\x%02x", c);
        else putchar(c);
    }
    putchar('"');
    if (s->size > max) printf("... (%llu bytes)", (unsigned long long)s->size);
}

static void print_scalar(const hai_gguf_value *v) {
    switch (v->type) {
    case HAI_GGUF_UINT8: case HAI_GGUF_UINT16: case HAI_GGUF_UINT32: case HAI_GGUF_UINT64:
        printf("%llu", (unsigned long long)v->u64);
        break;
    case HAI_GGUF_INT8: case HAI_GGUF_INT16: case HAI_GGUF_INT32: case HAI_GGUF_INT64:
        printf("%lld", (long long)v->i64);
        break;
    case HAI_GGUF_FLOAT32: case HAI_GGUF_FLOAT64: printf("%g", v->f64); break;
    case HAI_GGUF_BOOL: printf("%s", v->b ? "true" : "false"); break;
    case HAI_GGUF_STRING: print_str(&v->str, 60); break;
    default: printf("?"); break;
    }
}

static void print_value(const hai_gguf_value *v) {
    if (v->type != HAI_GGUF_ARRAY) {
        print_scalar(v);
        return;
    }
    printf("[%llu x %s]", (unsigned long long)v->arr.n, hai_gguf_type_name(v->arr.type));
    uint64_t show = v->arr.n < 4 ? v->arr.n : 4;
    for (uint64_t i = 0; i < show; i++) {
        putchar(' ');
        hai_gguf_value e;
        hai_gguf_arr_get(v, i, &e, NULL);
        if (e.type == HAI_GGUF_STRING) print_str(&e.str, 24);
        else if (e.type == HAI_GGUF_ARRAY) printf("[%llu x %s]", (unsigned long long)e.arr.n, hai_gguf_type_name(e.arr.type));
        else print_scalar(&e);
    }
    if (v->arr.n > show) printf(" ...");
}

/* --mem-budget: what fits - the largest context for one sequence and for server slots - planned
 * by the library as hai_context_create would allocate (the model is mapped, not read). */
static int fits_budget(const char *path, uint64_t budget, uint32_t n_batch) {
    hai_model_params mp = hai_model_default_params();
    mp.mmap_weights = true;
    mp.mem_budget = budget;
    hai_model *m = NULL;
    hai_error err = {0};
    char b1[32], b2[32];
    if (hai_model_load(path, &mp, &m, &err) != HAI_OK) {
        printf("budget:        %s: does not fit (%s)\n", cli_bytes(budget, b1, sizeof b1), err.msg);
        return 1;
    }
    uint64_t left = hai_model_budget_left(m);
    printf("budget:        %s: weights %s, %s left for contexts (KV cache F16; --kv-type below)\n",
           cli_bytes(budget, b1, sizeof b1), cli_bytes(hai_model_weights_bytes(m), b2, sizeof b2), cli_bytes(left, b2 + 16, 16));
    static const uint32_t slots[] = {1, 2, 4, 8};
    for (size_t i = 0; i < sizeof slots / sizeof *slots; i++) {
        hai_context_params cp = hai_context_default_params();
        cp.n_seq = slots[i], cp.n_batch = n_batch, cp.n_ctx = hai_model_n_ctx_train(m) ? hai_model_n_ctx_train(m) : 4096;
        uint32_t n = hai_context_fit(m, &cp, left);
        cp.n_ctx = n;
        if (n)
            printf("  %u %-10s n_ctx %u%s (%s)\n", slots[i], slots[i] == 1 ? "sequence:" : "slots:", n,
                   n == hai_model_n_ctx_train(m) ? " (the trained context)" : "", cli_bytes(hai_context_plan_bytes(m, &cp), b1, sizeof b1));
        else
            printf("  %u %-10s no context fits\n", slots[i], slots[i] == 1 ? "sequence:" : "slots:");
    }
    static const uint32_t kv[] = {HAI_TYPE_Q8_0, HAI_TYPE_Q4_0};
    for (size_t i = 0; i < 2; i++) { /* one sequence with a quantized cache */
        hai_context_params cp = hai_context_default_params();
        cp.n_batch = n_batch, cp.kv_type = kv[i], cp.n_ctx = hai_model_n_ctx_train(m) ? hai_model_n_ctx_train(m) : 4096;
        uint32_t n = hai_context_plan_bytes(m, &cp) ? hai_context_fit(m, &cp, left) : 0;
        cp.n_ctx = n;
        if (n) printf("  1 sequence, KV %-5s n_ctx %u (%s)\n", hai_type_name(kv[i]), n, cli_bytes(hai_context_plan_bytes(m, &cp), b1, sizeof b1));
        else printf("  1 sequence, KV %-5s no context fits (or the model's head_dim is no multiple of 32)\n", hai_type_name(kv[i]));
    }
    hai_context_params cp = hai_context_default_params(); /* what hai run and one serve slot take by themselves */
    cp.n_batch = n_batch;
    if (hai_context_fit_kv(m, NULL, &cp, left, NULL))
        printf("  hai run (no --ctx, --kv-type): KV %s, n_ctx %u\n", hai_type_name(cp.kv_type), cp.n_ctx);
    hai_model_free(m);
    return 0;
}

int cmd_info(int argc, char **argv) {
    const char *path = NULL;
    int64_t n_ctx = 0, n_batch = 512;
    uint64_t budget = 0;
    bool verbose = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--ctx")) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_i64(a, v, 1, 1 << 24, &n_ctx)) return 2;
        } else if (!strcmp(a, "--batch")) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_i64(a, v, 1, 1 << 16, &n_batch)) return 2;
        } else if (!strcmp(a, "--mem-budget")) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_size(a, v, &budget)) return 2;
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            verbose = true;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "hai info: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        } else if (!path) {
            path = a;
        } else {
            fprintf(stderr, "hai info: one model file at a time\n");
            return 2;
        }
    }
    if (!path) {
        usage(stderr);
        return 2;
    }
    hai_error err = {0};
    hai_gguf *g;
    if (hai_gguf_open(path, &g, &err) != HAI_OK) {
        cli_error("info", &err);
        return 1;
    }
    hai_model_info mi;
    if (hai_model_info_read(g, &mi, &err) != HAI_OK) {
        cli_error("info", &err);
        hai_gguf_free(g);
        return 1;
    }
    char b1[32], b2[32], b3[32], b4[32];
    printf("file:          %s\n", path);
    printf("format:        GGUF v%u, %s, %lld tensors, %lld metadata keys, alignment %u\n", hai_gguf_version(g),
           cli_bytes(hai_gguf_file_size(g), b1, sizeof b1), (long long)mi.n_tensors, (long long)hai_gguf_n_kv(g),
           hai_gguf_alignment(g));
    printf("name:          %s\n", mi.name[0] ? mi.name : "(none)");
    printf("architecture:  %s\n", mi.arch[0] ? mi.arch : "(none)");
    printf("parameters:    %s (%lld)\n", cli_count(mi.n_params, b1, sizeof b1), (long long)mi.n_params);
    if (mi.has_file_type) {
        const char *fn = hai_ftype_name(mi.file_type);
        printf("file type:     %s (%u)\n", fn ? fn : "unknown", mi.file_type);
    }
    printf("tensor types: ");
    if (!mi.n_tensors) printf(" (no tensors: vocabulary only)");
    for (int t = 0; t < HAI_TYPE_COUNT; t++)
        if (mi.type_tensors[t])
            printf(" %s x%lld (%s)", hai_type_name((uint32_t)t), (long long)mi.type_tensors[t],
                   cli_count(mi.type_params[t], b1, sizeof b1));
    printf("\n");
    if (mi.n_params) printf("bits/weight:   %.2f\n", 8.0 * (double)mi.weights_bytes / (double)mi.n_params);
    if (mi.n_expert)
        printf("experts:       %u a layer, %u used a token: %s active parameters\n", mi.n_expert, mi.n_expert_used,
               cli_count(mi.n_params_active, b1, sizeof b1));
    printf("decode reads:  %s a token (the weights; an untied embedding table is looked up a row at a time)\n",
           cli_bytes(mi.decode_bytes, b1, sizeof b1));
    printf("context:       %u (trained)\n", mi.n_ctx_train);
    printf("layers:        %u, n_embd %u, n_ff %u\n", mi.n_layer, mi.n_embd, mi.n_ff);
    printf("attention:     %u heads, %u KV heads, head_dim %u/%u (K/V)\n", mi.n_head, mi.n_head_kv, mi.head_dim_k,
           mi.head_dim_v);
    printf("tokenizer:     %s%s%s%s, %u tokens\n", mi.tokenizer_model[0] ? mi.tokenizer_model : "(none)",
           mi.tokenizer_pre[0] ? " (pre: " : "", mi.tokenizer_pre, mi.tokenizer_pre[0] ? ")" : "", mi.n_vocab);
    printf("chat template: %s\n", mi.has_chat_template ? "yes" : "no");
    if (!n_ctx) n_ctx = mi.n_ctx_train && mi.n_ctx_train < 4096 ? mi.n_ctx_train : 4096;
    hai_memory_estimate m = hai_model_memory(&mi, (uint32_t)n_ctx, (uint32_t)n_batch);
    printf("memory:        at --ctx %lld: weights %s + KV cache %s (F16) + scratch %s = %s\n", (long long)n_ctx,
           cli_bytes(m.weights, b1, sizeof b1), cli_bytes(m.kv_cache, b2, sizeof b2),
           cli_bytes(m.scratch, b3, sizeof b3), cli_bytes(m.total, b4, sizeof b4));
    if (budget && fits_budget(path, budget, (uint32_t)n_batch)) {
        hai_gguf_free(g);
        return 1;
    }
    for (uint32_t t = 0; t < HAI_TYPE_COUNT; t++)
        if (mi.type_tensors[t] && !hai_type_supported(t))
            printf("warning:       hai cannot compute with %s tensors\n", hai_type_name(t));
    if (verbose) {
        printf("\nmetadata:\n");
        for (int64_t i = 0; i < hai_gguf_n_kv(g); i++) {
            const hai_gguf_kv *kv = hai_gguf_kv_at(g, i);
            printf("  %-44s ", kv->key);
            print_value(&kv->value);
            printf("\n");
        }
        printf("\ntensors:\n");
        for (int64_t i = 0; i < mi.n_tensors; i++) {
            const hai_gguf_tensor *t = hai_gguf_tensor_at(g, i);
            printf("  %-36s %-7s [", t->name, hai_type_name(t->type));
            for (uint32_t d = 0; d < t->n_dims; d++) printf("%s%lld", d ? ", " : "", (long long)t->ne[d]);
            printf("] %s at +%llu\n", cli_bytes(t->size, b1, sizeof b1), (unsigned long long)t->offset);
        }
    }
    hai_gguf_free(g);
    return 0;
}
