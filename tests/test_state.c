/* A sequence's state saved and restored (hai_state_save / hai_state_load): a context that loads it
 * continues exactly as the one that saved it (the next logits equal, bit for bit, and generation
 * reuses the whole prompt); on llama (every layer global) and gemma2 / phi3 synthetic models
 * (sliding-window rings, into a context whose ring is smaller or which has none). And the file is
 * outside input: another model's state, a damaged or cut file, one too long for the context, a
 * forged header, a NaN in the cache - each refused with a message, the sequence left empty.
 * usage: test_state MODEL.gguf */
#include <unistd.h>

#include "check.h"

#define N 100

static hai_token toks[N + 1];

static uint32_t kv_type = HAI_TYPE_F16; /* of the contexts made */

static hai_context *ctx(const hai_model *m, uint32_t n_ctx, uint32_t n_batch) {
    hai_context_params cp = hai_context_default_params();
    cp.n_ctx = n_ctx, cp.n_batch = n_batch, cp.n_threads = 1, cp.kv_type = kv_type;
    hai_context *c = NULL;
    hai_error err = {0};
    CHECK_MSG(hai_context_create(m, &cp, &c, &err) == HAI_OK, "%s", err.msg);
    return c;
}

/* Saves after N tokens, loads into fresh contexts of other shapes, and compares the next token's
 * logits with the original's. */
static void roundtrip(const char *what, const hai_model *m, uint32_t n_batch_save, const uint32_t *batches, int n_batches) {
    hai_error err = {0};
    int nv = hai_model_n_vocab(m);
    for (int i = 0; i <= N; i++) toks[i] = (hai_token)((7 + 31 * i) % (nv - 2) + 1);
    hai_context *a = ctx(m, 256, n_batch_save);
    if (!a) return;
    char path[] = "/tmp/hai-state-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    if (!CHECK_MSG(hai_eval(a, toks, N, &err) == HAI_OK && hai_state_save(a, 0, path, &err) == HAI_OK, "%s: %s", what, err.msg)) goto out;
    float *want = malloc((size_t)nv * sizeof *want);
    CHECK(hai_eval(a, toks + N, 1, &err) == HAI_OK);
    memcpy(want, hai_logits(a, -1), (size_t)nv * sizeof *want);
    for (int k = 0; k < n_batches; k++) {
        hai_context *b = ctx(m, 256, batches[k]);
        if (!b) continue;
        if (CHECK_MSG(hai_state_load(b, 0, path, &err) == HAI_OK, "%s (n_batch %u): %s", what, batches[k], err.msg)) {
            CHECK_EQ_INT(hai_context_n_past(b), N);
            CHECK(hai_eval(b, toks + N, 1, &err) == HAI_OK);
            const float *got = hai_logits(b, -1);
            double d = 0;
            for (int j = 0; j < nv; j++) d = fmax(d, fabs((double)got[j] - want[j]));
            /* the rows come back exactly; a quantized cache's attention is tiled by ring slots, so a
             * sliding-window model restored into rings of another size sums in another order */
            double tol = kv_type != HAI_TYPE_F16 && strstr(what, "gemma2") ? 1e-3 : 0;
            CHECK_MSG(d <= tol, "%s (n_batch %u): the restored state's logits differ by %g", what, batches[k], d);
        }
        hai_context_free(b);
    }
    free(want);
out:
    unlink(path);
    hai_context_free(a);
}

static hai_model *synth(const char *arch, char *path) {
    hai_synth_params sp = hai_synth_default_params();
    sp.arch = arch, sp.n_layer = 4, sp.n_ctx_train = 128, sp.type = HAI_TYPE_Q8_0, sp.std = 0.05f; /* window 16 */
    hai_error err = {0};
    hai_model *m = NULL;
    int fd = mkstemp(path);
    close(fd);
    CHECK_MSG(hai_synth_write(path, &sp, &err) == HAI_OK && hai_model_load(path, NULL, &m, &err) == HAI_OK, "%s: %s", arch, err.msg);
    return m;
}

static hai_status load_bytes(hai_context *c, const void *p, size_t n, hai_error *err) {
    *err = (hai_error){0};
    return hai_state_load_buffer(c, 0, p, n, err);
}

/* Rewrites the checksum after an edit, so the edit reaches the field checks behind it. */
static void reseal(uint8_t *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n - 8; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    memcpy(p + n - 8, &h, 8);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_state MODEL.gguf\n");
        return 2;
    }
    hai_error err = {0};
    hai_model *m = NULL;
    if (!CHECK_MSG(hai_model_load(argv[1], NULL, &m, &err) == HAI_OK, "%s", err.msg)) return check_done("test_state");
    const uint32_t batches[] = {1, 7, 512};
    roundtrip("llama", m, 512, batches, 3);

    /* sliding windows: saved from a context with rings of 16 + 8, loaded into rings of 16 + 1
     * (smaller) and 16 + 512 (none: larger than the context) */
    char gp[] = "/tmp/hai-state-g-XXXXXX", pp[] = "/tmp/hai-state-p-XXXXXX";
    hai_model *g = synth("gemma2", gp), *p3 = synth("phi3", pp);
    if (g) roundtrip("gemma2", g, 8, batches, 3);
    if (p3) roundtrip("phi3", p3, 8, batches, 3);

    /* quantized caches: their rows saved as they are (the restore is exact), into rings too */
    for (int q = 0; q < 2; q++) {
        kv_type = q ? HAI_TYPE_Q4_0 : HAI_TYPE_Q8_0;
        roundtrip(q ? "llama, Q4_0 KV" : "llama, Q8_0 KV", m, 512, batches, 3);
        if (g) roundtrip(q ? "gemma2, Q4_0 KV" : "gemma2, Q8_0 KV", g, 8, batches, 3);
    }
    kv_type = HAI_TYPE_Q8_0;
    hai_context *qa = ctx(m, 256, 64);
    kv_type = HAI_TYPE_F16;
    hai_context *fb = ctx(m, 256, 64);
    void *qbuf = NULL;
    size_t qn = 0;
    if (qa && fb && CHECK(hai_eval(qa, toks, 20, &err) == HAI_OK) && CHECK(hai_state_save_buffer(qa, 0, &qbuf, &qn, &err) == HAI_OK)) {
        /* into a cache of another type: refused, naming both */
        CHECK(load_bytes(fb, qbuf, qn, &err) == HAI_ERR_INVALID && strstr(err.msg, "Q8_0") && strstr(err.msg, "F16"));
        /* a block whose scale is not a number (sealed, so the value check must catch it) */
        uint8_t *e = malloc(qn);
        memcpy(e, qbuf, qn);
        size_t row0 = 4 + 4 + 4 + 8 + 4 + 20 * 4 + 4; /* magic, version, type, fingerprint, n_past, tokens, layer 0's start */
        e[row0] = 0x00, e[row0 + 1] = 0x7e;           /* F16 NaN */
        reseal(e, qn);
        CHECK(load_bytes(qa, e, qn, &err) == HAI_ERR_FORMAT && hai_context_n_past(qa) == 0);
        memcpy(e, qbuf, qn);
        CHECK(load_bytes(qa, e, qn, &err) == HAI_OK && hai_context_n_past(qa) == 20);
        free(e);
    }
    free(qbuf);
    hai_context_free(qa), hai_context_free(fb);

    /* hostile files */
    hai_context *a = ctx(m, 256, 64), *b = ctx(m, 256, 64), *small = ctx(m, 32, 16);
    void *buf = NULL;
    size_t n = 0;
    if (a && b && small && CHECK(hai_eval(a, toks, 40, &err) == HAI_OK) && CHECK(hai_state_save_buffer(a, 0, &buf, &n, &err) == HAI_OK)) {
        uint8_t *e = malloc(n);
        CHECK(load_bytes(b, buf, n, &err) == HAI_OK && hai_context_n_past(b) == 40);
        /* damaged: a flipped byte anywhere is caught by the checksum */
        for (size_t at = 0; at < n; at += n / 7 + 1) {
            memcpy(e, buf, n);
            e[at] ^= 0x40;
            CHECK_MSG(load_bytes(b, e, n, &err) != HAI_OK && hai_context_n_past(b) == 0, "a flip at %zu was taken", at);
        }
        CHECK(load_bytes(b, buf, n, &err) == HAI_OK);
        CHECK_MSG(load_bytes(b, buf, n - 9, &err) == HAI_ERR_FORMAT && hai_context_n_past(b) == 0, "%s", err.msg); /* cut */
        CHECK(load_bytes(b, buf, 3, &err) == HAI_ERR_FORMAT);
        CHECK(load_bytes(b, NULL, 0, &err) == HAI_ERR_FORMAT);
        /* too long for the context */
        CHECK_MSG(load_bytes(small, buf, n, &err) == HAI_ERR_LIMIT && strstr(err.msg, "the context holds 32"), "%s", err.msg);
        /* a forged header, sealed again: more positions than the file holds */
        memcpy(e, buf, n);
        uint32_t big = 41;
        memcpy(e + 16, &big, 4);
        reseal(e, n);
        CHECK_MSG(load_bytes(b, e, n, &err) == HAI_ERR_FORMAT && hai_context_n_past(b) == 0, "%s", err.msg);
        /* a token outside the vocabulary */
        memcpy(e, buf, n);
        int32_t bad = 1 << 30;
        memcpy(e + 20 + 4 * 5, &bad, 4);
        reseal(e, n);
        CHECK_MSG(load_bytes(b, e, n, &err) == HAI_ERR_FORMAT && strstr(err.msg, "outside the vocabulary"), "%s", err.msg);
        /* a NaN in the cache: the last value before the checksum */
        memcpy(e, buf, n);
        uint16_t nan = 0x7e00;
        memcpy(e + n - 10, &nan, 2);
        reseal(e, n);
        CHECK_MSG(load_bytes(b, e, n, &err) == HAI_ERR_FORMAT && strstr(err.msg, "not a finite number") && hai_context_n_past(b) == 0, "%s",
                  err.msg);
        /* a layer that claims to start past position 0 in a model without sliding windows */
        memcpy(e, buf, n);
        uint32_t lo = 3;
        memcpy(e + 20 + 4 * 40, &lo, 4);
        reseal(e, n);
        CHECK_MSG(load_bytes(b, e, n, &err) == HAI_ERR_FORMAT, "%s", err.msg);
        /* another model's state */
        if (g) {
            hai_context *gc = ctx(g, 256, 64);
            CHECK_MSG(gc && load_bytes(gc, buf, n, &err) == HAI_ERR_INVALID && strstr(err.msg, "another model"), "%s", err.msg);
            hai_context_free(gc);
        }
        /* a file that is not there, and one that is not a state */
        CHECK(hai_state_load(b, 0, "/nonexistent/state", &err) == HAI_ERR_IO);
        CHECK(hai_state_load(b, 0, argv[1], &err) != HAI_OK && hai_context_n_past(b) == 0);
        free(e);
    }
    free(buf);
    hai_context_free(a), hai_context_free(b), hai_context_free(small);
    hai_model_free(g), hai_model_free(p3), hai_model_free(m);
    unlink(gp), unlink(pp);
    return check_done("test_state");
}
