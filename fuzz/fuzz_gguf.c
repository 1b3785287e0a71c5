/* libFuzzer target: arbitrary bytes -> GGUF reader. Whatever it accepts is then walked
 * completely (every value, every tensor, dequantization of its first blocks), so a view that
 * points outside the input is found by ASan; a tokenizer in it is imported and used (tokenize with
 * and without special tokens, detokenize), so hostile vocabularies are fuzzed too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hai.h"

static void walk(const hai_gguf_value *v, int depth) {
    if (v->type == HAI_GGUF_STRING) {
        volatile char c = v->str.size ? v->str.data[v->str.size - 1] : 0;
        (void)c;
        return;
    }
    if (v->type != HAI_GGUF_ARRAY || depth > 8) return;
    for (uint64_t i = 0; i < v->arr.n; i++) {
        hai_gguf_value e;
        if (hai_gguf_arr_get(v, i, &e, NULL) == HAI_OK) walk(&e, depth + 1);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    hai_gguf *g = NULL;
    hai_error err = {0};
    if (hai_gguf_open_buffer(data, size, &g, &err) != HAI_OK) return 0;
    for (int64_t i = 0; i < hai_gguf_n_kv(g); i++) walk(&hai_gguf_kv_at(g, i)->value, 0);
    hai_tokenizer *tok = NULL;
    if (hai_tokenizer_from_gguf(g, &tok, &err) == HAI_OK) {
        static const char text[] = "Hello world <s></s><|im_start|> caf\xc3\xa9 \xe4\xb8\xad 123\n\xff";
        hai_token ids[256];
        char out[8192];
        for (uint32_t flags = 0; flags < 4; flags++) {
            size_t n = 0, w = 0;
            if (hai_tokenize(tok, text, sizeof text - 1, flags, ids, 256, &n, &err) == HAI_OK)
                hai_detokenize(tok, ids, n, 0, out, sizeof out, &w, &err);
        }
        hai_token all[64];
        int32_t nv = hai_tokenizer_n_vocab(tok);
        for (int i = 0; i < 64; i++) all[i] = (hai_token)(i * 7919 % (nv > 0 ? nv : 1));
        size_t w = 0;
        hai_detokenize(tok, all, 64, HAI_DETOK_SPECIAL, out, sizeof out, &w, &err);
        hai_tokenizer_free(tok);
    } else if (tok) {
        abort(); /* a refusal hands nothing out */
    }
    hai_model_info mi;
    if (hai_model_info_read(g, &mi, &err) == HAI_OK) (void)hai_model_memory(&mi, 4096, 512);
    float out[512];
    for (int64_t i = 0; i < hai_gguf_n_tensors(g); i++) {
        const hai_gguf_tensor *t = hai_gguf_tensor_at(g, i);
        if (hai_gguf_find_tensor(g, t->name) != t) abort(); /* names are unique: lookup must agree */
        if (!hai_type_supported(t->type)) continue;
        int64_t bs = hai_type_block_size(t->type);
        int64_t n = t->n_elements < 512 ? t->n_elements : 512;
        n -= n % bs;
        if (n > 0) hai_dequantize(t->type, t->data, out, n, &err);
    }
    hai_gguf_free(g);
    return 0;
}
