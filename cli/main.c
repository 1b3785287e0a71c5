/* hai: one program, many subcommands. Each subcommand is a thin layer over libhai. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} commands[] = {
    {"run", cmd_run, "generate text from a prompt on the device, streamed to stdout"},
    {"chat", cmd_chat, "a conversation with a model at the terminal"},
    {"serve", cmd_serve, "an OpenAI-compatible server on this device (chat/completions, SSE streaming)"},
    {"pull", cmd_pull, "download a model (catalog name or URL) with progress and resume, size and SHA-256 checked"},
    {"quantize", cmd_quantize, "compress a model: Q8_0 .. Q2_K, K-quant mixes (Q4_K_M ...), IQ4_NL, with the error of each tensor"},
    {"route", cmd_route, "the hybrid router: explain a decision for a prompt (--explain)"},
    {"bench", cmd_bench, "prompt and generation speed (pp/tg, as llama-bench), peak memory"},
    {"info", cmd_info, "describe a GGUF model: architecture, sizes, types, memory needed"},
    {"tokenize", cmd_tokenize, "text -> token ids and pieces (GGUF or tokenizer.json tokenizer)"},
    {"chat-format", cmd_chat_format, "messages (JSON) -> the prompt text of the model's chat format"},
    {"logits", cmd_logits, "write the logits of every position of a token sequence (reference checks)"},
    {"embed", cmd_embed, "the embedding of a text: final hidden states pooled and normalized (JSON)"},
    {"synth", cmd_synth, "write a model with random weights (tests, benchmarks, demos)"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: hai <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\n'hai <command> --help' describes a command.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("hai %s (kernels: %s)\n", hai_version(), hai_kernels_name());
        return 0;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "hai: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
