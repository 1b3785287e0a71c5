/* libFuzzer target: hai_state_load_buffer on a synthetic gemma2 model (sliding-window rings).
 * Byte 0: bit 1 starts from a real state (byte 1 picks how many tokens it holds) edited by the
 * records after it (3 bytes: a place, as a fraction of the file, and a byte to XOR there); else
 * the bytes after byte 0 are the file. Bit 0 seals the result with a correct checksum, so edits
 * reach the field checks behind it. A load that succeeds is decoded from. Refusals are expected;
 * a crash, a leak, a read out of bounds or a NaN that gets in is a bug. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hai.h"

static hai_model *m;
static hai_context *src, *dst;

static void setup(void) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/hai-fuzz-state-%d.gguf", (int)getpid());
    hai_synth_params p = hai_synth_default_params();
    p.arch = "gemma2", p.n_embd = 32, p.n_layer = 2, p.n_head = 2, p.n_head_kv = 1, p.n_ff = 64, p.n_ctx_train = 64; /* window 8 */
    hai_error err = {0};
    hai_context_params cp = hai_context_default_params();
    cp.n_ctx = 48, cp.n_threads = 1, cp.n_batch = 4;
    if (hai_synth_write(path, &p, &err) || hai_model_load(path, NULL, &m, &err) || hai_context_create(m, &cp, &src, &err)) {
        fprintf(stderr, "fuzz_state: %s\n", err.msg);
        abort(); /* the harness, not the input */
    }
    cp.n_batch = 1; /* a smaller ring than the saving context's */
    if (hai_context_create(m, &cp, &dst, &err)) abort();
    unlink(path);
}

static void seal(uint8_t *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i + 8 < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    memcpy(p + n - 8, &h, 8);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!m) setup();
    if (size < 1) return 0;
    hai_error err = {0};
    uint8_t *buf = NULL;
    size_t n = 0;
    if ((data[0] & 2) && size >= 2) {
        hai_token t[40];
        size_t k = data[1] % 40 + 1;
        for (size_t i = 0; i < k; i++) t[i] = (hai_token)((i * 37 + data[1]) % 200 + 3);
        void *s = NULL;
        if (hai_context_truncate(src, 0, &err) || hai_eval(src, t, k, &err) || hai_state_save_buffer(src, 0, &s, &n, &err)) abort();
        buf = s;
        for (size_t i = 2; i + 3 <= size; i += 3) buf[(((size_t)data[i] << 8 | data[i + 1]) * n) >> 16] ^= data[i + 2];
    } else {
        n = size - 1;
        buf = malloc(n ? n : 1);
        if (n) memcpy(buf, data + 1, n);
    }
    if ((data[0] & 1) && n >= 28) seal(buf, n);
    if (hai_state_load_buffer(dst, 0, buf, n, &err) == HAI_OK) {
        hai_token next = 5;
        if (hai_eval(dst, &next, 1, &err) == HAI_OK) {
            const float *l = hai_logits(dst, -1);
            for (int32_t i = 0; i < hai_model_n_vocab(m); i++)
                if (isnan(l[i])) abort(); /* a state that was let in must not poison the model */
        }
    } else if (hai_context_n_past(dst) != 0) {
        abort(); /* a refusal leaves the sequence empty */
    }
    hai_context_truncate(dst, 0, NULL);
    free(buf);
    return 0;
}
