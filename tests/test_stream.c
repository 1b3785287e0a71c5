/* Weights streamed from the file (hai_model_params.stream):
 *   - the logits are the resident model's exactly (the same kernels on the same bytes, only read
 *     later): mixtures of experts (qwen3moe; qwen2moe with its shared expert) whose experts stream
 *     through caches from the smallest that works (the experts a token uses, per layer) to all of
 *     them, a prompt in one pass and then one token at a time; dense models whose layers stream
 *     (a synthetic llama, and a reference file of mixed types, qwen2-s-Q4_K_M), all layers or
 *     the last ones only;
 *   - a memory budget the weights do not fit streams them (auto) within it; with streaming off it
 *     is refused; a cache smaller than the least that works is refused naming the figures;
 *   - the file cut after loading: eval fails with an I/O error (no crash, no wrong logits); put
 *     back, the same model goes on and gives the resident logits again.
 * usage: test_stream SHARED_DIR */
#include <fcntl.h>
#include <unistd.h>

#include "check.h"

#define NPROMPT 12
#define NSTEPS 6

static hai_token tok_at(int i, int salt) { return (hai_token)((i * 37 + salt * 11 + 5) % 250 + 3); }

/* Last-position logits after a prompt of NPROMPT tokens (one pass) and after each of NSTEPS single
 * tokens: (1 + NSTEPS) rows. NULL when evaluation failed (err says why). */
static float *run(hai_model *m, int salt, hai_error *err) {
    int nv = hai_model_n_vocab(m);
    hai_context_params cp = hai_context_default_params();
    cp.n_ctx = 64, cp.n_batch = 32, cp.n_threads = 2;
    hai_context *c = NULL;
    float *out = malloc((size_t)(1 + NSTEPS) * nv * sizeof *out);
    if (!out || hai_context_create(m, &cp, &c, err) != HAI_OK) {
        free(out);
        return NULL;
    }
    hai_token p[NPROMPT];
    for (int i = 0; i < NPROMPT; i++) p[i] = tok_at(i, salt);
    bool ok = hai_eval(c, p, NPROMPT, err) == HAI_OK;
    if (ok) memcpy(out, hai_logits(c, -1), (size_t)nv * sizeof *out);
    for (int s = 0; ok && s < NSTEPS; s++) {
        hai_token t = tok_at(NPROMPT + s, salt);
        ok = hai_eval(c, &t, 1, err) == HAI_OK;
        if (ok) memcpy(out + (size_t)(1 + s) * nv, hai_logits(c, -1), (size_t)nv * sizeof *out);
    }
    hai_context_free(c);
    if (!ok) free(out), out = NULL;
    return out;
}

static hai_model *load(const char *path, hai_stream_mode mode, uint64_t cache, uint64_t budget, hai_error *err) {
    hai_model_params mp = hai_model_default_params();
    mp.stream = mode, mp.stream_cache = cache, mp.mem_budget = budget;
    hai_model *m = NULL;
    return hai_model_load(path, &mp, &m, err) == HAI_OK ? m : NULL;
}

/* The least stream cache the model loads with (found by trying, 16 KiB steps). */
static uint64_t least_cache(const char *path) {
    hai_error err = {0};
    for (uint64_t c = 16 << 10; c < (1ull << 32); c += c < (4 << 20) ? 16 << 10 : c / 16) {
        hai_model *m = load(path, HAI_STREAM_ON, c, 0, &err);
        if (m) {
            hai_model_free(m);
            return c;
        }
        if (err.status != HAI_ERR_LIMIT) break;
    }
    CHECK_MSG(false, "%s: no stream cache loads: %s", path, err.msg);
    return 0;
}

static bool same(const float *a, const float *b, int nv, const char *what) {
    size_t n = (size_t)(1 + NSTEPS) * nv, diff = 0;
    for (size_t i = 0; i < n; i++) diff += a[i] != b[i];
    return CHECK_MSG(diff == 0, "%s: %zu of %zu logits differ from the resident model's", what, diff, n);
}

/* The model streamed with caches from the least to all: the resident logits each time, and the
 * counts add up. Returns the least cache. */
static uint64_t check_streams(const char *path, uint32_t want_mode, const char *name) {
    hai_error err = {0};
    hai_model *m = load(path, HAI_STREAM_OFF, 0, 0, &err);
    if (!CHECK_MSG(m, "%s", err.msg)) return 0;
    int nv = hai_model_n_vocab(m);
    float *want = run(m, 1, &err);
    CHECK_MSG(want, "%s", err.msg);
    hai_stream_stats st;
    CHECK(!hai_model_stream_stats(m, &st) && st.mode == 0);
    hai_model_free(m);
    uint64_t least = least_cache(path);
    const uint64_t caches[] = {least, least * 2, least * 8, 1ull << 31};
    uint32_t prev_slots = 0;
    for (size_t i = 0; want && least && i < sizeof caches / sizeof *caches; i++) {
        if (!CHECK_MSG((m = load(path, HAI_STREAM_ON, caches[i], 0, &err)), "%s", err.msg)) continue;
        char what[96];
        snprintf(what, sizeof what, "%s streamed, cache %.2f MiB", name, caches[i] / 1048576.0);
        float *got = run(m, 1, &err);
        if (CHECK_MSG(got, "%s: %s", what, err.msg)) same(want, got, nv, what);
        free(got);
        if (CHECK(hai_model_stream_stats(m, &st))) {
            CHECK_MSG(st.mode == want_mode, "%s: mode %u", what, st.mode);
            CHECK_MSG(st.acquires == st.hits + st.late + st.misses && st.acquires > 0, "%s: %llu != %llu + %llu + %llu", what,
                      (unsigned long long)st.acquires, (unsigned long long)st.hits, (unsigned long long)st.late, (unsigned long long)st.misses);
            CHECK_MSG(st.bytes_read > 0 && st.prefetch_used <= st.prefetches, "%s: read %llu", what, (unsigned long long)st.bytes_read);
            CHECK_MSG((st.mode == 2 || st.slots >= prev_slots) && st.cache_bytes <= caches[i], "%s: %u slots, %llu bytes", what, st.slots,
                      (unsigned long long)st.cache_bytes);
            if (i == 0) CHECK_MSG(st.misses > 0, "%s: the least cache never missed", what);
            prev_slots = st.slots;
        }
        hai_model_free(m);
    }
    free(want);
    return least;
}

static bool synth(const char *path, const char *arch, uint32_t type, uint32_t n_expert, uint32_t n_ff_exp) {
    hai_synth_params sp = hai_synth_default_params();
    sp.arch = arch, sp.type = type;
    sp.n_embd = 128, sp.n_layer = 3, sp.n_head = 4, sp.n_head_kv = 2, sp.n_ff = 256, sp.n_ctx_train = 256;
    sp.n_expert = n_expert, sp.n_expert_used = 4, sp.n_ff_exp = n_ff_exp, sp.n_ff_shexp = 128;
    sp.std = 0.05f;
    hai_error err = {0};
    return CHECK_MSG(hai_synth_write(path, &sp, &err) == HAI_OK, "%s", err.msg);
}

static uint8_t *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    uint8_t *b = NULL;
    if (f && !fseek(f, 0, SEEK_END) && (*n = (size_t)ftell(f)) > 0 && !fseek(f, 0, SEEK_SET) && (b = malloc(*n)) && fread(b, 1, *n, f) != *n)
        free(b), b = NULL;
    if (f) fclose(f);
    return b;
}

/* The file cut below the experts after loading, then put back (the same file: the model keeps it open). */
static void check_cut(const char *path) {
    hai_error err = {0};
    hai_model *m = load(path, HAI_STREAM_OFF, 0, 0, &err);
    float *want = m ? run(m, 2, &err) : NULL;
    int nv = m ? hai_model_n_vocab(m) : 0;
    hai_model_free(m);
    size_t n = 0;
    uint8_t *bytes = slurp(path, &n);
    hai_gguf *g = NULL;
    if (!CHECK(want && bytes) || !CHECK_MSG(hai_gguf_open(path, &g, &err) == HAI_OK, "%s", err.msg)) goto out;
    const hai_gguf_tensor *t = hai_gguf_find_tensor(g, "blk.0.ffn_gate_exps.weight");
    uint64_t cut = t ? hai_gguf_data_offset(g) + t->offset + 1000 : 0; /* inside a block, inside the first expert */
    hai_gguf_free(g);
    if (!CHECK(cut > 0 && cut < n)) goto out;
    m = load(path, HAI_STREAM_ON, least_cache(path), 0, &err);
    if (!CHECK_MSG(m, "%s", err.msg)) goto out;
    CHECK(truncate(path, (off_t)cut) == 0);
    float *got = run(m, 2, &err);
    CHECK_MSG(!got && err.status == HAI_ERR_IO && strstr(err.msg, "ends at byte"), "cut file: %s", got ? "evaluated" : err.msg);
    free(got);
    int fd = open(path, O_WRONLY);
    CHECK(fd >= 0 && pwrite(fd, bytes + cut, n - cut, (off_t)cut) == (ssize_t)(n - cut));
    if (fd >= 0) close(fd);
    err = (hai_error){0};
    got = run(m, 2, &err);
    if (CHECK_MSG(got, "put back: %s", err.msg)) same(want, got, nv, "after the file was put back");
    free(got);
    hai_model_free(m);
out:
    free(want);
    free(bytes);
}

/* A budget the weights do not fit: auto streams them and stays within it; off refuses; too small
 * for the least cache is refused with the figures. */
static void check_budget(const char *path) {
    hai_error err = {0};
    hai_model *m = load(path, HAI_STREAM_OFF, 0, 0, &err);
    if (!CHECK_MSG(m, "%s", err.msg)) return;
    uint64_t w = hai_model_weights_bytes(m);
    hai_model_free(m);
    uint64_t budget = w * 3 / 4;
    CHECK(!load(path, HAI_STREAM_OFF, 0, budget, &err) && err.status == HAI_ERR_LIMIT && strstr(err.msg, "the weights take"));
    m = load(path, HAI_STREAM_AUTO, 0, budget, &err);
    if (CHECK_MSG(m, "auto within %.2f MiB: %s", budget / 1048576.0, err.msg)) {
        hai_stream_stats st;
        CHECK(hai_model_stream_stats(m, &st) && st.mode == 1 && st.slots > 0);
        uint64_t left = hai_model_budget_left(m);
        CHECK_MSG(left < budget && left > budget / 20, "left %llu of %llu", (unsigned long long)left, (unsigned long long)budget);
        float *got = run(m, 3, &err); /* a context within what is left */
        CHECK_MSG(got, "%s", err.msg);
        free(got);
        hai_model_free(m);
    }
    CHECK(!load(path, HAI_STREAM_ON, 4096, 0, &err) && err.status == HAI_ERR_LIMIT && strstr(err.msg, "streaming the experts needs") &&
          strstr(err.msg, "MiB"));
    CHECK(!load(path, HAI_STREAM_AUTO, 0, w / 10, &err) && err.status == HAI_ERR_LIMIT);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_stream SHARED_DIR\n");
        return 2;
    }
    char moe3[] = "/tmp/hai-stream-q3-XXXXXX", moe2[] = "/tmp/hai-stream-q2-XXXXXX", dense[] = "/tmp/hai-stream-l-XXXXXX",
         big[] = "/tmp/hai-stream-big-XXXXXX";
    int fds[4] = {mkstemp(moe3), mkstemp(moe2), mkstemp(dense), mkstemp(big)};
    for (int i = 0; i < 4; i++)
        if (fds[i] >= 0) close(fds[i]);
    if (synth(moe3, "qwen3moe", HAI_TYPE_Q4_0, 16, 64) && synth(moe2, "qwen2moe", HAI_TYPE_Q8_0, 16, 64) &&
        synth(dense, "llama", HAI_TYPE_Q4_0, 0, 0)) {
        check_streams(moe3, 1, "qwen3moe Q4_0");
        check_streams(moe2, 1, "qwen2moe Q8_0");
        check_streams(dense, 2, "llama Q4_0");
        check_cut(moe3);
    }
    /* experts of 24 MiB in all: a budget of 3/4 holds the rest (in a 2 MiB page), a cache and a context */
    if (synth(big, "qwen3moe", HAI_TYPE_Q8_0, 64, 384)) check_budget(big);
    char ref[1024];
    snprintf(ref, sizeof ref, "%s/reference/qwen2-s-Q4_K_M.gguf", argv[1]);
    if (CHECK_MSG(access(ref, R_OK) == 0, "%s is missing", ref)) check_streams(ref, 2, "qwen2-s-Q4_K_M");
    unlink(moe3), unlink(moe2), unlink(dense), unlink(big);
    return check_done("test_stream");
}
