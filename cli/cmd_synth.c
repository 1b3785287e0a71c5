/* hai synth: write a model with random weights in a real architecture's layout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: hai synth -o OUT.gguf [options]\n"
            "  --preset NAME     tiny (default: 256 wide, 2 layers) or tinyllama (TinyLlama-1.1B geometry)\n"
            "  --arch A          llama, qwen2, qwen3, granite, smollm3, phi3, gemma2, gemma3, qwen2moe, qwen3moe\n"
            "  --type T          weight type of the matrices (F32, F16, BF16, Q8_0, Q4_0, ...)\n"
            "  --n-embd N --n-layer N --n-head N --n-head-kv N --n-ff N --head-dim N --ctx N\n"
            "  --n-expert N --n-expert-used N --n-ff-exp N --n-ff-shexp N   mixture of experts (defaults 8, 2, n_ff/4, n_ff)\n"
            "  --vocab FILE      copy the tokenizer from this GGUF (default: a byte-level vocabulary)\n"
            "  --n-vocab N       the byte-level vocabulary padded with plain tokens to N (Gemma: 262144)\n"
            "  --chat-template FILE  the model's chat template (Jinja), instead of the vocabulary's\n"
            "  --tied            reuse the token embedding as the output matrix\n"
            "  --std X           weight standard deviation (default 0.02)\n"
            "  --embd-std X      the token embedding's (default: --std); e.g. 1: routing that follows the token\n"
            "  --seed S          random seed (default 42)\n");
}

static void progress(void *user, int64_t done, int64_t total, const char *what) {
    (void)user;
    if (isatty(2)) fprintf(stderr, "\rsynth: %3lld%% %-32s", (long long)(100 * done / total), what);
    if (done == total && isatty(2)) fprintf(stderr, "\n");
}

int cmd_synth(int argc, char **argv) {
    hai_synth_params p = hai_synth_default_params();
    const char *out = NULL;
    char *tpl = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        int64_t n;
        double x;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--tied")) {
            p.tied_output = true;
            continue;
        }
        if (!(v = cli_value(argc, argv, &i))) return 2;
        if (!strcmp(a, "-o")) out = v;
        else if (!strcmp(a, "--arch")) p.arch = v;
        else if (!strcmp(a, "--vocab")) p.vocab_path = v;
        else if (!strcmp(a, "--n-vocab")) {
            if (!cli_parse_i64(a, v, 1, 1 << 24, &n)) return 2;
            p.n_vocab = (uint32_t)n;
        }
        else if (!strcmp(a, "--chat-template")) {
            if (!(tpl = cli_read_file(v, NULL))) {
                fprintf(stderr, "hai synth: cannot read '%s'\n", v);
                return 2;
            }
            p.chat_template = tpl;
        }
        else if (!strcmp(a, "--preset")) {
            if (!strcmp(v, "tinyllama")) {
                p.n_embd = 2048, p.n_layer = 22, p.n_head = 32, p.n_head_kv = 4, p.n_ff = 5632, p.n_ctx_train = 2048;
                p.name = "hai-synth-tinyllama";
            } else if (strcmp(v, "tiny")) {
                fprintf(stderr, "hai synth: unknown preset '%s'\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--type")) {
            int t = hai_type_from_name(v);
            if (t < 0) {
                fprintf(stderr, "hai synth: unknown type '%s'\n", v);
                return 2;
            }
            p.type = (uint32_t)t;
        } else if (!strcmp(a, "--std")) {
            if (!cli_parse_f64(a, v, &x)) return 2;
            p.std = (float)x;
        } else if (!strcmp(a, "--embd-std")) {
            if (!cli_parse_f64(a, v, &x)) return 2;
            p.embd_std = (float)x;
        } else if (!strcmp(a, "--seed")) {
            if (!cli_parse_i64(a, v, 0, INT64_MAX, &n)) return 2;
            p.seed = (uint64_t)n;
        } else {
            uint32_t *dst = !strcmp(a, "--n-embd")      ? &p.n_embd
                            : !strcmp(a, "--n-layer")   ? &p.n_layer
                            : !strcmp(a, "--n-head")    ? &p.n_head
                            : !strcmp(a, "--n-head-kv") ? &p.n_head_kv
                            : !strcmp(a, "--n-ff")      ? &p.n_ff
                            : !strcmp(a, "--head-dim")  ? &p.head_dim
                            : !strcmp(a, "--ctx")       ? &p.n_ctx_train
                            : !strcmp(a, "--n-expert")  ? &p.n_expert
                            : !strcmp(a, "--n-expert-used") ? &p.n_expert_used
                            : !strcmp(a, "--n-ff-exp")  ? &p.n_ff_exp
                            : !strcmp(a, "--n-ff-shexp") ? &p.n_ff_shexp
                                                        : NULL;
            if (!dst) {
                fprintf(stderr, "hai synth: unknown option '%s'\n", a);
                usage(stderr);
                return 2;
            }
            if (!cli_parse_i64(a, v, 0, 1 << 20, &n)) return 2;
            *dst = (uint32_t)n;
        }
    }
    if (!out) {
        usage(stderr);
        return 2;
    }
    p.progress = progress;
    hai_error err = {0};
    hai_status st = hai_synth_write(out, &p, &err);
    free(tpl);
    if (st != HAI_OK) {
        cli_error("synth", &err);
        return 1;
    }
    fprintf(stderr, "synth: wrote %s\n", out);
    return 0;
}
