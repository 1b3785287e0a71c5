/* libFuzzer target: the chat-template path. Bytes become a template text (family detection, the
 * literals read off it), a family, flags and a conversation; it is formatted with the messages'
 * bytes marked as data and tokenized on a real vocabulary with the template's special tokens
 * parsed. Invariants (abort = finding): the data ranges are in order and inside the text; every
 * control token of the prompt comes from the template's markup - the prompt has exactly as many
 * as the same conversation with each data range blanked out; the unmarked formatter gives the
 * same text. Vocabularies come from $HAI_SHARED_DIR/vocab.
 * Input: byte 0 = family (low 4 bits; 10+ = detect from the template) and flags; then fields
 * separated by 0x1e: the template text, then messages "R<content>" (R's low 2 bits: the role). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/chat.h"
#include "fuzz_vocab.h"
#include "tokenizer/tokenizer.h"

enum { N_TOK = 2 };
static hai_tokenizer *toks[N_TOK];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    static const char *const names[N_TOK] = {"qwen2", "llama-spm"};
    fuzz_load_vocabs("fuzz_chat", names, N_TOK, toks);
    return 0;
}

static size_t controls(const hai_tokenizer *t, const hai_token *ids, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += hai_tokenizer_attr(t, ids[i]) == HAI_TOKEN_CONTROL;
    return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || memchr(data + 1, 0, size - 1)) return 0; /* the API takes C strings */
    static const char *const formats[] = {"chatml", "qwen3", "llama3", "llama3.1", "llama2", "mistral", "mistral-tekken", "phi3",
                                          "gemma", "deepseek-r1"};
    static const char *const roles[] = {"system", "user", "assistant", "tool"};
    char *buf = malloc(size);
    memcpy(buf, data + 1, size - 1);
    buf[size - 1] = '\0';
    hai_chat_message msgs[16] = {0};
    size_t n = 0;
    char *tmpl = buf, *p = strchr(buf, 0x1e);
    if (p) *p++ = '\0';
    while (p && n < 16) {
        char *next = strchr(p, 0x1e);
        if (next) *next++ = '\0';
        msgs[n].role = roles[(unsigned char)p[0] & 3];
        msgs[n].content = p[0] ? p + 1 : p;
        n++;
        p = next;
    }
    hai_chat_params cp = hai_chat_default_params();
    cp.format = (data[0] & 15) < 10 ? formats[data[0] & 15] : NULL;
    cp.template_text = tmpl;
    cp.add_generation_prompt = data[0] & 16;
    cp.disable_thinking = data[0] & 32;
    cp.bos_token = "<s>";
    cp.eos_token = "</s>";
    const hai_tokenizer *t = toks[(data[0] >> 6) & 1];
    char *text = NULL, *plain = NULL;
    size_t len = 0, plen = 0, (*ranges)[2] = NULL, nr = 0;
    hai_error err = {0};
    hai_status st = chat_format_marked(&cp, msgs, n, &text, &len, &ranges, &nr, &err);
    hai_status st2 = hai_chat_format(&cp, msgs, n, &plain, &plen, &err);
    if (st != st2) abort();
    if (st == HAI_OK) {
        if (plen != len || memcmp(text, plain, len)) abort(); /* marking changes nothing in the text */
        for (size_t i = 0; i < nr; i++)
            if (ranges[i][0] >= ranges[i][1] || ranges[i][1] > len || (i && ranges[i - 1][1] >= ranges[i][0])) abort();
        size_t cap = len + 8, k1 = 0, k2 = 0;
        hai_token *a = malloc(cap * sizeof *a), *b = malloc(cap * sizeof *b);
        if (tok_tokenize_marked(t, text, len, HAI_TOKENIZE_PARSE_SPECIAL, (const size_t(*)[2])ranges, nr, a, cap, &k1, &err)) abort();
        /* the same prompt with every data byte blanked (0x01 starts no special token) */
        char *blank = malloc(len + 1);
        memcpy(blank, text, len + 1);
        for (size_t i = 0; i < nr; i++) memset(blank + ranges[i][0], 0x01, ranges[i][1] - ranges[i][0]);
        if (hai_tokenize(t, blank, len, HAI_TOKENIZE_PARSE_SPECIAL, b, cap, &k2, &err)) abort();
        if (controls(t, a, k1) != controls(t, b, k2)) abort(); /* a control token came from the data */
        free(blank);
        free(a);
        free(b);
    }
    hai_free(text);
    hai_free(plain);
    free(ranges);
    free(buf);
    return 0;
}
