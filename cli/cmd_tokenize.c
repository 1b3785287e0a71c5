/* hai tokenize: text -> token ids (and pieces), with a GGUF model's or a tokenizer.json's tokenizer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "hai_hf.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: hai tokenize (-m MODEL.gguf | --tokenizer-json FILE) [options] [TEXT]\n"
            "  -m FILE                 tokenizer of a GGUF model or vocabulary file\n"
            "  --tokenizer-json FILE   a Hugging Face tokenizer.json (tokenizer_config.json beside it is read too)\n"
            "  -f FILE                 read the text from FILE (exact bytes)\n"
            "  --ids                   print only the ids, space separated, on one line\n"
            "  --add-special           add BOS/EOS as the vocabulary asks\n"
            "  --parse-special         treat special-token text such as <|im_start|> as the token\n");
}

/* Quoted, with control characters escaped and bytes that are not UTF-8 shown as \xNN. */
static void print_piece(const char *p, size_t n) {
    putchar('\'');
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)p[i];
        int l = 0;
        if (c >= 0x80) { /* a valid multi-byte character is printed as is */
            int need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
            l = need && i + (size_t)need <= n ? need : 0;
            for (int k = 1; k < l; k++)
                if (((unsigned char)p[i + (size_t)k] & 0xC0) != 0x80) l = 0;
        }
        if (l) {
            fwrite(p + i, 1, (size_t)l, stdout);
            i += (size_t)l;
            continue;
        }
        if (c == '\n') fputs("\\n", stdout);
        else if (c == '\t') fputs("\\t", stdout);
        else if (c == '\'' || c == '\\') printf("\\%c", c);
        else if (c < 0x20 || c >= 0x7f) printf("\\x%02x", c);
        else putchar(c);
        i++;
    }
    putchar('\'');
}

/* Loads a tokenizer from a GGUF file or a tokenizer.json; shared by the subcommands. */
hai_tokenizer *cli_load_tokenizer(const char *model, const char *tok_json, hai_error *err) {
    hai_tokenizer *t = NULL;
    if (tok_json) {
        char cfg[4096];
        const char *slash = strrchr(tok_json, '/');
        int dl = slash ? (int)(slash - tok_json + 1) : 0;
        snprintf(cfg, sizeof cfg, "%.*stokenizer_config.json", dl, tok_json);
        if (hai_tokenizer_from_hf(tok_json, access(cfg, R_OK) == 0 ? cfg : NULL, &t, err) != HAI_OK) return NULL;
        return t;
    }
    hai_gguf *g;
    if (hai_gguf_open(model, &g, err) != HAI_OK) return NULL;
    hai_tokenizer_from_gguf(g, &t, err);
    hai_gguf_free(g);
    return t;
}

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL, *tok_json = NULL, *file = NULL, *text = NULL;
    bool ids_only = false;
    uint32_t flags = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-m")) {
            if (!(model = cli_value(argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--tokenizer-json")) {
            if (!(tok_json = cli_value(argc, argv, &i))) return 2;
        } else if (!strcmp(a, "-f")) {
            if (!(file = cli_value(argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--ids")) {
            ids_only = true;
        } else if (!strcmp(a, "--add-special")) {
            flags |= HAI_TOKENIZE_ADD_SPECIAL;
        } else if (!strcmp(a, "--parse-special")) {
            flags |= HAI_TOKENIZE_PARSE_SPECIAL;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "hai tokenize: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        } else if (!text) {
            text = a;
        } else {
            fprintf(stderr, "hai tokenize: give the text as one argument (quote it) or with -f\n");
            return 2;
        }
    }
    if ((!model == !tok_json) || (!text == !file)) {
        usage(stderr);
        return 2;
    }
    hai_error err = {0};
    hai_tokenizer *t = cli_load_tokenizer(model, tok_json, &err);
    if (!t) {
        cli_error("tokenize", &err);
        return 1;
    }
    size_t len = text ? strlen(text) : 0;
    char *owned = NULL;
    if (file && !(owned = cli_read_file(file, &len))) {
        fprintf(stderr, "hai tokenize: cannot read %s\n", file);
        hai_tokenizer_free(t);
        return 1;
    }
    size_t n = 0;
    hai_token *ids = NULL;
    int rc = 0;
    if (hai_tokenize_alloc(t, owned ? owned : text, len, flags, &ids, &n, &err) != HAI_OK) {
        cli_error("tokenize", &err);
        rc = 1;
    } else if (ids_only) {
        for (size_t i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
        printf("\n");
    } else {
        char *buf = malloc(hai_tokenizer_max_piece(t));
        for (size_t i = 0; buf && i < n; i++) {
            size_t pl = 0;
            hai_token_to_piece(t, ids[i], HAI_DETOK_SPECIAL, buf, hai_tokenizer_max_piece(t), &pl, NULL);
            printf("%8d ", ids[i]);
            print_piece(buf, pl);
            printf("\n");
        }
        free(buf);
        fprintf(stderr, "%zu tokens\n", n);
    }
    free(ids);
    free(owned);
    hai_tokenizer_free(t);
    return rc;
}
