/* hai quantize IN.gguf OUT.gguf TYPE: compress a model; progress while it runs, then the error of
 * every tensor and a summary (sizes, bits per weight, RMSE). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: hai quantize IN.gguf OUT.gguf TYPE [-t N] [--pure] [-q]\n"
            "  TYPE   Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 IQ4_NL IQ4_XS   every matrix in the type\n"
            "         Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M Q5_K_S Q5_K_M Q6_K   K-quant mixes\n"
            "         (Q3_K, Q4_K, Q5_K = the _M mixes)   F16 BF16 F32\n"
            "  Mixes keep more bits where error hurts most: output (and a tied embedding) in Q6_K,\n"
            "  attn_v / ffn_down of some layers one or two types up. 1-D tensors stay F32; rows\n"
            "  that do not divide into a type's blocks use a fallback type.\n"
            "  -t N     threads (default: all CPUs)\n"
            "  --pure   no mix: every matrix in the base type\n"
            "  -q       no per-tensor table\n");
}

typedef struct progress {
    bool tty;
    double t0, last;
    char current[96];
} progress;

static void on_progress(void *user, int64_t done, int64_t total, const char *what) {
    progress *p = user;
    double t = hai_time_s(), rate = (double)done / (t - p->t0 + 1e-9) / 1e6;
    double pct = total ? 100.0 * (double)done / (double)total : 100.0;
    if (p->tty) {
        if (t - p->last < 0.1 && done < total) return;
        p->last = t;
        int bar = (int)(pct / 5);
        fprintf(stderr, "\r[%.*s%*s] %5.1f%%  %-40.40s  %6.1f M weights/s ", bar, "####################", 20 - bar, "", pct, what, rate);
        if (done == total) fputc('\n', stderr);
    } else if (strcmp(p->current, what)) { /* a plain line per tensor when not on a terminal */
        snprintf(p->current, sizeof p->current, "%s", what);
        fprintf(stderr, "[%5.1f%%] %s (%.1f M weights/s)\n", pct, what, rate);
    }
}

int cmd_quantize(int argc, char **argv) {
    const char *pos[3] = {0};
    int npos = 0;
    hai_quantize_params p = {0};
    bool quiet = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--pure")) { p.pure = true; continue; }
        if (!strcmp(a, "-q")) { quiet = true; continue; }
        if (!strcmp(a, "-t")) {
            const char *v = cli_value(argc, argv, &i);
            int64_t n;
            if (!v || !cli_parse_i64(a, v, 1, 256, &n)) return 2;
            p.n_threads = (int)n;
            continue;
        }
        if (a[0] == '-' && a[1]) {
            fprintf(stderr, "hai quantize: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
        if (npos == 3) {
            usage(stderr);
            return 2;
        }
        pos[npos++] = a;
    }
    if (npos != 3) {
        usage(stderr);
        return 2;
    }
    p.type = pos[2];
    uint32_t ftype, base;
    if (!hai_quantize_type_info(p.type, &ftype, &base)) {
        fprintf(stderr, "hai quantize: unknown type '%s'\n", p.type);
        usage(stderr);
        return 2;
    }
    if (!strcmp(pos[0], pos[1])) {
        fprintf(stderr, "hai quantize: the output must not be the input\n");
        return 2;
    }
    /* already quantized weights lose more when quantized again: say so first */
    hai_error err = {0};
    hai_gguf *g;
    if (hai_gguf_open(pos[0], &g, &err) != HAI_OK) {
        cli_error("quantize", &err);
        return 1;
    }
    int requant = 0;
    const char *from = NULL;
    for (int64_t i = 0; i < hai_gguf_n_tensors(g); i++) {
        const hai_gguf_tensor *t = hai_gguf_tensor_at(g, i);
        if (t->n_dims >= 2 && t->type != HAI_TYPE_F32 && t->type != HAI_TYPE_F16 && t->type != HAI_TYPE_BF16) requant++, from = hai_type_name(t->type);
    }
    hai_gguf_free(g);
    if (requant)
        fprintf(stderr, "hai quantize: warning: %d tensors are already quantized (%s...): quantizing them again adds error; "
                        "start from the F16/F32 model when you have it\n", requant, from);

    progress pr = {.tty = isatty(2), .t0 = hai_time_s()};
    p.progress = on_progress;
    p.progress_user = &pr;
    hai_quantize_report rep;
    if (hai_quantize_model(pos[0], pos[1], &p, &rep, &err) != HAI_OK) {
        if (pr.tty) fputc('\n', stderr);
        cli_error("quantize", &err);
        return 1;
    }
    if (!quiet) {
        printf("%-36s %-6s    %-6s %12s %11s %8s\n", "tensor", "from", "to", "elements", "rmse", "rel");
        for (size_t i = 0; i < rep.n_tensors; i++) {
            const hai_quantize_tensor *t = &rep.tensors[i];
            printf("%-36s %-6s -> %-6s %12lld %11.3e %7.3f%%%s\n", t->name, hai_type_name(t->from), hai_type_name(t->to), (long long)t->n, t->rmse,
                   100 * t->rel_rmse, t->fallback ? "  (fallback: rows do not fit the type's blocks)" : "");
        }
    }
    char a[32], b[32];
    int64_t all = 0;
    for (size_t i = 0; i < rep.n_tensors; i++) all += rep.tensors[i].n;
    printf("%s: %s -> %s (%s, file type %s), %.2fx smaller, %.3f bits per weight\n", pos[1], cli_bytes(rep.bytes_in, a, sizeof a),
           cli_bytes(rep.bytes_out, b, sizeof b), p.type, hai_ftype_name(rep.ftype) ? hai_ftype_name(rep.ftype) : "?",
           rep.bytes_out ? (double)rep.bytes_in / (double)rep.bytes_out : 0.0,
           8.0 * (double)rep.bytes_out / (double)(all ? all : 1));
    printf("error over %lld weights: rmse %.4e, relative %.3f%%; %.1f s\n", (long long)rep.n_elements, rep.rmse, 100 * rep.rel_rmse,
           rep.seconds);
    hai_quantize_report_free(&rep);
    return 0;
}
