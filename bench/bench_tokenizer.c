/* Tokenizer speed: MB/s on 1 MB of mixed English / Chinese / code text, the same at 2 MB to show
 * linear time, and pathological inputs (100k repeated characters, one 1 MB word).
 * usage: bench_tokenizer SHARED_DIR [HF_TOKENIZERS_DIR] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hai.h"
#include "hai_hf.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static const char *const parts[] = {
    "The quick brown fox jumps over the lazy dog while the committee reviews its findings. ",
    "In 2024, about 3.7 million devices shipped with on-device models; latency fell by 41%. ",
    ("\xe6\x88\x91\xe4\xbb\xac\xe5\x9c\xa8\xe8\xae\xbe\xe5\xa4\x87\xe4\xb8\x8a\xe8\xbf\x90\xe8\xa1\x8c\xe5\xa4\xa7\xe8\xaf\xad"
    "\xe8\xa8\x80\xe6\xa8\xa1\xe5\x9e\x8b\xef\xbc\x8c\xe4\xbf\x9d\xe6\x8a\xa4\xe9\x9a\x90\xe7\xa7\x81\xe3\x80\x82"),
    "int main(void) {\n    for (int i = 0; i < n; i++) sum += x[i] * w[i];\n    return sum > 0 ? 1 : 0;\n}\n",
    "def tokenize(text: str) -> list[int]:\n    return [vocab.get(w, UNK) for w in text.split()]\n\n",
    "Caf\xc3\xa9 na\xc3\xafve r\xc3\xa9sum\xc3\xa9 \xe2\x80\x94 \xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 \xf0\x9f\x9a\x80\n",
};

static char *mixed_text(size_t size) {
    char *buf = malloc(size + 256);
    size_t n = 0;
    unsigned x = 12345;
    while (n < size) {
        x = x * 1103515245u + 12345u;
        const char *p = parts[(x >> 16) % (sizeof parts / sizeof parts[0])];
        size_t l = strlen(p);
        memcpy(buf + n, p, l);
        n += l;
    }
    return buf; /* size bytes used (cut may split a character: fine for a tokenizer) */
}

static double run(const hai_tokenizer *t, const char *text, size_t len, size_t *n_tokens) {
    size_t cap = len + 16;
    hai_token *ids = malloc(cap * sizeof *ids);
    double best = 1e9;
    for (int r = 0; r < 3; r++) {
        double t0 = now();
        hai_error err = {0};
        if (hai_tokenize(t, text, len, 0, ids, cap, n_tokens, &err) != HAI_OK) {
            fprintf(stderr, "tokenize: %s\n", err.msg);
            exit(1);
        }
        double dt = now() - t0;
        if (dt < best) best = dt;
    }
    free(ids);
    return best;
}

static void bench(const char *name, const hai_tokenizer *t) {
    const size_t mb = 1 << 20;
    char *text = mixed_text(2 * mb);
    size_t n1, n2;
    double t1 = run(t, text, mb, &n1), t2 = run(t, text, 2 * mb, &n2);
    printf("%-14s mixed 1 MB: %7.2f MB/s (%zu tokens)   2 MB: %7.2f MB/s   time 2MB/1MB: %.2f\n", name, 1 / t1, n1,
           2 / t2, t2 / t1);
    free(text);
    struct { const char *what; const char *unit; size_t reps; } path[] = {
        {"100k x 'a'", "a", 100000}, {"100k spaces", " ", 100000}, {"100k x U+1F999", "\xf0\x9f\xa6\x99", 100000},
        {"100k x '\\n'", "\n", 100000}};
    for (size_t i = 0; i < sizeof path / sizeof path[0]; i++) {
        size_t ul = strlen(path[i].unit), len = ul * path[i].reps;
        char *s = malloc(len);
        for (size_t k = 0; k < path[i].reps; k++) memcpy(s + k * ul, path[i].unit, ul);
        size_t n;
        double dt = run(t, s, len, &n);
        printf("%-14s   %-16s %8.1f ms (%zu tokens)\n", "", path[i].what, 1e3 * dt, n);
        free(s);
    }
    char *word = malloc(mb);
    unsigned x = 7;
    for (size_t k = 0; k < mb; k++) {
        x = x * 1103515245u + 12345u;
        word[k] = (char)('a' + (x >> 16) % 26);
    }
    size_t n;
    double dt = run(t, word, mb, &n);
    printf("%-14s   %-16s %8.1f ms (%zu tokens, %.2f MB/s)\n", "", "one 1 MB word", 1e3 * dt, n, 1 / dt);
    free(word);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s SHARED_DIR [HF_TOKENIZERS_DIR]\n", argv[0]);
        return 2;
    }
    const char *vocabs[] = {"llama-spm", "gpt-2", "deepseek-llm"};
    for (int i = 0; i < 3; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/vocab/ggml-vocab-%s.gguf", argv[1], vocabs[i]);
        hai_gguf *g;
        hai_tokenizer *t;
        hai_error err = {0};
        if (hai_gguf_open(path, &g, &err) || hai_tokenizer_from_gguf(g, &t, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        bench(vocabs[i], t);
        hai_tokenizer_free(t);
        hai_gguf_free(g);
    }
    for (int i = 0; argc > 2 && i < 2; i++) {
        const char *dirs[] = {"llama3", "qwen3"};
        char js[4096], cfg[4096];
        snprintf(js, sizeof js, "%s/%s/tokenizer.json", argv[2], dirs[i]);
        snprintf(cfg, sizeof cfg, "%s/%s/tokenizer_config.json", argv[2], dirs[i]);
        hai_tokenizer *t;
        hai_error err = {0};
        if (hai_tokenizer_from_hf(js, cfg, &t, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        bench(dirs[i], t);
        hai_tokenizer_free(t);
    }
    return 0;
}
