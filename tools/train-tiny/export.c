/* Writes hai-tiny as a standard GGUF (architecture llama, a gpt2 BPE tokenizer with merges,
 * ChatML template) with the project's own GGUF writer, from the files train.py leaves:
 *   hai-export-tiny DIR OUT.gguf [F16|Q8_0|F32]
 * DIR/manifest.json names and shapes the float32 tensors of DIR/weights.bin. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hai.h"

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b) b[n] = '\0';
    if (len) *len = (size_t)n;
    return b;
}

static int die(const char *msg, const hai_error *err) {
    fprintf(stderr, "hai-export-tiny: %s%s%s\n", msg, err ? ": " : "", err ? err->msg : "");
    return 1;
}

#define NUM(o, k) cJSON_GetObjectItem(o, k)->valuedouble

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: hai-export-tiny DIR OUT.gguf [F16|Q8_0|F32]\n");
        return 2;
    }
    int wtype = argc > 3 ? hai_type_from_name(argv[3]) : HAI_TYPE_F16;
    if (wtype != HAI_TYPE_F16 && wtype != HAI_TYPE_Q8_0 && wtype != HAI_TYPE_F32) return die("type must be F16, Q8_0 or F32", NULL);
    char path[4096];
    snprintf(path, sizeof path, "%s/manifest.json", argv[1]);
    char *js = slurp(path, NULL);
    cJSON *man = js ? cJSON_Parse(js) : NULL;
    free(js);
    if (!man) return die("cannot read manifest.json", NULL);
    snprintf(path, sizeof path, "%s/weights.bin", argv[1]);
    size_t wlen;
    float *w = (float *)slurp(path, &wlen);
    if (!w) return die("cannot read weights.bin", NULL);
    cJSON *hp = cJSON_GetObjectItem(man, "hparams"), *tk = cJSON_GetObjectItem(man, "tokenizer");
    hai_error err = {0};
    hai_gguf_writer *g;
    if (hai_gguf_writer_create(3, 32, &g, &err)) return die("writer", &err);
    uint32_t d = (uint32_t)NUM(hp, "n_embd"), nh = (uint32_t)NUM(hp, "n_head");
    hai_gguf_writer_set_str(g, "general.architecture", "llama", &err);
    hai_gguf_writer_set_str(g, "general.name", "hai-tiny", &err);
    hai_gguf_writer_set_u32(g, "general.file_type", wtype == HAI_TYPE_F32 ? 0 : wtype == HAI_TYPE_F16 ? 1 : 7, &err);
    hai_gguf_writer_set_u32(g, "general.quantization_version", 2, &err);
    hai_gguf_writer_set_u32(g, "llama.context_length", (uint32_t)NUM(hp, "n_ctx"), &err);
    hai_gguf_writer_set_u32(g, "llama.embedding_length", d, &err);
    hai_gguf_writer_set_u32(g, "llama.block_count", (uint32_t)NUM(hp, "n_layer"), &err);
    hai_gguf_writer_set_u32(g, "llama.feed_forward_length", (uint32_t)NUM(hp, "n_ff"), &err);
    hai_gguf_writer_set_u32(g, "llama.attention.head_count", nh, &err);
    hai_gguf_writer_set_u32(g, "llama.attention.head_count_kv", (uint32_t)NUM(hp, "n_head_kv"), &err);
    hai_gguf_writer_set_f32(g, "llama.attention.layer_norm_rms_epsilon", (float)NUM(hp, "rms_eps"), &err);
    hai_gguf_writer_set_f32(g, "llama.rope.freq_base", (float)NUM(hp, "rope_base"), &err);
    hai_gguf_writer_set_u32(g, "llama.rope.dimension_count", d / nh, &err);
    hai_gguf_writer_set_u32(g, "llama.vocab_size", (uint32_t)NUM(hp, "n_vocab"), &err);
    /* tokenizer */
    cJSON *toks = cJSON_GetObjectItem(tk, "tokens"), *merges = cJSON_GetObjectItem(tk, "merges");
    cJSON *specials = cJSON_GetObjectItem(tk, "specials");
    int nt = cJSON_GetArraySize(toks), nm = cJSON_GetArraySize(merges);
    const char **tv = malloc((size_t)nt * sizeof *tv), **mv = malloc((size_t)nm * sizeof *mv);
    int32_t *types = malloc((size_t)nt * sizeof *types);
    int32_t id_eot = -1, id_start = -1, id_end = -1;
    for (int i = 0; i < nt; i++) {
        tv[i] = cJSON_GetArrayItem(toks, i)->valuestring;
        types[i] = 1;
        cJSON *s;
        cJSON_ArrayForEach(s, specials) if (!strcmp(s->valuestring, tv[i])) types[i] = 3;
        if (!strcmp(tv[i], "<|endoftext|>")) id_eot = i;
        if (!strcmp(tv[i], "<|im_start|>")) id_start = i;
        if (!strcmp(tv[i], "<|im_end|>")) id_end = i;
    }
    for (int i = 0; i < nm; i++) mv[i] = cJSON_GetArrayItem(merges, i)->valuestring;
    if (id_eot < 0 || id_start < 0 || id_end < 0) return die("special tokens missing from the vocabulary", NULL);
    hai_gguf_writer_set_str(g, "tokenizer.ggml.model", "gpt2", &err);
    hai_gguf_writer_set_str(g, "tokenizer.ggml.pre", cJSON_GetObjectItem(tk, "pre")->valuestring, &err);
    hai_gguf_writer_set_arr_str(g, "tokenizer.ggml.tokens", tv, (uint64_t)nt, &err);
    hai_gguf_writer_set_arr(g, "tokenizer.ggml.token_type", HAI_GGUF_INT32, types, (uint64_t)nt, &err);
    hai_gguf_writer_set_arr_str(g, "tokenizer.ggml.merges", mv, (uint64_t)nm, &err);
    hai_gguf_writer_set_u32(g, "tokenizer.ggml.bos_token_id", (uint32_t)id_eot, &err);
    hai_gguf_writer_set_u32(g, "tokenizer.ggml.eos_token_id", (uint32_t)id_end, &err);
    hai_gguf_writer_set_u32(g, "tokenizer.ggml.padding_token_id", (uint32_t)id_eot, &err);
    hai_gguf_writer_set_bool(g, "tokenizer.ggml.add_bos_token", false, &err);
    hai_gguf_writer_set_bool(g, "tokenizer.ggml.add_eos_token", false, &err);
    hai_gguf_writer_set_str(g, "tokenizer.chat_template", cJSON_GetObjectItem(tk, "chat_template")->valuestring, &err);
    if (err.status) return die("metadata", &err);
    /* tensors: matrices in the chosen type, vectors in F32 */
    cJSON *ts = cJSON_GetObjectItem(man, "tensors"), *t;
    size_t off = 0;
    int n = 0;
    void **bufs = calloc((size_t)cJSON_GetArraySize(ts), sizeof *bufs);
    cJSON_ArrayForEach(t, ts) {
        cJSON *shape = cJSON_GetObjectItem(t, "shape");
        int nd = cJSON_GetArraySize(shape);
        int64_t ne[2] = {1, 1}, count = 1;
        for (int k = 0; k < nd; k++) count *= ne[k] = (int64_t)cJSON_GetArrayItem(shape, k)->valuedouble;
        if ((off + (size_t)count) * sizeof(float) > wlen) return die("weights.bin is shorter than the manifest", NULL);
        uint32_t ty = nd == 2 ? (uint32_t)wtype : HAI_TYPE_F32;
        bufs[n] = malloc(count * sizeof(float));
        if (hai_quantize(ty, w + off, bufs[n], count, &err)) return die("quantize", &err);
        if (hai_gguf_writer_add_tensor(g, cJSON_GetObjectItem(t, "name")->valuestring, ty, (uint32_t)nd, ne, bufs[n], &err))
            return die("tensor", &err);
        off += (size_t)count;
        n++;
    }
    if (hai_gguf_writer_write(g, argv[2], &err)) return die("write", &err);
    fprintf(stderr, "hai-export-tiny: wrote %s (%d tensors, %s)\n", argv[2], n, hai_type_name((uint32_t)wtype));
    for (int i = 0; i < n; i++) free(bufs[i]);
    hai_gguf_writer_free(g);
    cJSON_Delete(man);
    free(w), free(tv), free(mv), free(types), free(bufs);
    return 0;
}
