/* libFuzzer target: tokenizer import. Bytes as a tokenizer.json (and, after a NUL byte, a
 * tokenizer_config.json) through hai_tokenizer_from_hf_text; whatever is accepted then tokenizes
 * and detokenizes a few texts (special tokens parsed and not, BOS/EOS added) without failing or
 * crashing, and its streamed detokenization is valid UTF-8. */
#include <stdlib.h>
#include <string.h>

#include "hai.h"
#include "hai_hf.h"
#include "base/unicode.h"

static void use(const hai_tokenizer *t) {
    static const char *const texts[] = {"Hello world! 123 <|im_start|>user\nhi<|im_end|>", " \t\n  spaces ", "caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x99\x82",
                                        "\xff\xfe bytes", ""};
    for (size_t k = 0; k < sizeof texts / sizeof *texts; k++)
        for (uint32_t flags = 0; flags < 4; flags++) {
            const char *s = texts[k];
            size_t len = strlen(s), cap = 4 * len + 8, n = 0;
            hai_token *ids = malloc(cap * sizeof *ids);
            hai_error err = {0};
            /* a hostile pre-tokenizer regex may hit PCRE2's limits: an error, never a crash */
            if (hai_tokenize(t, s, len, flags, ids, cap, &n, &err) == HAI_OK) {
                char out[4096];
                size_t w = 0;
                hai_detokenize(t, ids, n, 0, out, sizeof out, &w, &err);
                hai_detok_stream ds;
                hai_detok_stream_init(&ds, 0);
                size_t pcap = hai_tokenizer_max_piece(t) + 16;
                char *piece = malloc(pcap);
                for (size_t i = 0; piece && i < n; i++) {
                    size_t pk = 0;
                    if (hai_detok_stream_push(t, &ds, ids[i], piece, pcap, &pk, &err) != HAI_OK) abort();
                    for (size_t j = 0; j < pk;) {
                        int l = hai_utf8_valid_len((const unsigned char *)piece + j, pk - j, NULL);
                        if (!l) abort(); /* streamed text is whole characters */
                        j += (size_t)l;
                    }
                }
                free(piece);
            } else if (!err.msg[0]) {
                abort(); /* a failure says why */
            }
            free(ids);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *json = (const char *)data, *cfg = NULL;
    size_t jl = size, cl = 0;
    const char *nul = memchr(data, 0, size);
    if (nul) {
        jl = (size_t)(nul - json);
        cfg = nul + 1;
        cl = size - jl - 1;
    }
    hai_tokenizer *t = NULL;
    hai_error err = {0};
    if (hai_tokenizer_from_hf_text(json, jl, cfg, cl, &t, &err) == HAI_OK) {
        use(t);
        hai_tokenizer_free(t);
    } else if (!err.msg[0] || t) {
        abort(); /* a refusal says why, and hands nothing out */
    }
    return 0;
}
