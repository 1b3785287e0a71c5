/* Tokenizers against the reference vectors of ../shared/vocab, id for id; round trips of every
 * vector string and of every token of each vocabulary. */
#include <unistd.h>

#include "check.h"
#include "hai_hf.h"
#include "vocab_io.h"

static char tok_json[4096], tok_cfg[4096];

static void dump_ids(const char *what, const int32_t *ids, size_t n) {
    fprintf(stderr, "    %s:", what);
    for (size_t i = 0; i < n && i < 40; i++) fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, "%s\n", n > 40 ? " ..." : "");
}

/* normalizes: a token's text may not be normalized (NFC), so the round trip is checked from the
 * text one round gives: a second round must keep it. */
static void check_roundtrip_ids(const hai_tokenizer *t, const char *name, bool normalizes) {
    int32_t n_vocab = hai_tokenizer_n_vocab(t);
    int bad = 0;
    char *buf = malloc(1 << 16), *buf2 = malloc(1 << 16);
    int32_t ids[4096];
    for (int32_t id = 0; id < n_vocab; id++) {
        size_t len, n, len2;
        hai_error err = {0};
        if (hai_detokenize(t, &id, 1, 0, buf, 1 << 16, &len, &err) != HAI_OK) { bad++; continue; }
        if (normalizes) { /* one round first: the text as normalized */
            if (hai_tokenize(t, buf, len, 0, ids, 4096, &n, &err) != HAI_OK || hai_detokenize(t, ids, n, 0, buf, 1 << 16, &len, &err) != HAI_OK) {
                bad++;
                continue;
            }
        }
        if (hai_tokenize(t, buf, len, 0, ids, 4096, &n, &err) != HAI_OK) { bad++; continue; }
        if (hai_detokenize(t, ids, n, 0, buf2, 1 << 16, &len2, &err) != HAI_OK || len2 != len || memcmp(buf, buf2, len)) {
            if (bad++ < 5) fprintf(stderr, "  %s: token %d does not survive detokenize->tokenize->detokenize\n", name, id);
        }
    }
    CHECK_MSG(bad == 0, "%s: %d tokens fail the round trip", name, bad);
    free(buf);
    free(buf2);
}

static bool valid_utf8(const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t l = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
        if (!l || i + l > n) return false;
        for (size_t k = 1; k < l; k++)
            if (((unsigned char)s[i + k] & 0xC0) != 0x80) return false;
        i += l;
    }
    return true;
}

/* Streams ids one at a time; every chunk must be valid UTF-8; returns the concatenation. */
static size_t stream_all(const hai_tokenizer *t, const int32_t *ids, size_t n, char *out) {
    hai_detok_stream s;
    hai_detok_stream_init(&s, 0);
    size_t cap = hai_tokenizer_max_piece(t) + 16, total = 0, k;
    char *chunk = malloc(cap);
    for (size_t i = 0; i < n; i++) {
        hai_error err = {0};
        CHECK_EQ_INT(hai_detok_stream_push(t, &s, ids[i], chunk, cap, &k, &err), HAI_OK);
        CHECK_MSG(valid_utf8(chunk, k), "stream chunk %zu is not valid UTF-8", i);
        memcpy(out + total, chunk, k);
        total += k;
    }
    k = hai_detok_stream_flush(&s, chunk);
    memcpy(out + total, chunk, k);
    free(chunk);
    return total + k;
}

/* normalizes: the tokenizer changes some texts (NFC, NFKC), so detokenize(tokenize(s)) is checked
 * as a fixed point (its tokens are the same tokens) instead of as s itself. */
static void run_vectors_n(const char *vdir, const char *name, const hai_tokenizer *t, bool normalizes) {
    vcase *cases;
    int n = load_vectors(vdir, name, &cases);
    CHECK_MSG(n > 0, "%s: no test vectors found in %s", name, vdir);
    if (n <= 0) return;
    int fails = 0;
    for (int i = 0; i < n; i++) {
        int32_t ids[8192];
        size_t n_ids = 0;
        hai_error err = {0};
        hai_status st = hai_tokenize(t, cases[i].text, cases[i].len, 0, ids, 8192, &n_ids, &err);
        bool same = st == HAI_OK && n_ids == cases[i].n_ids && (n_ids == 0 || memcmp(ids, cases[i].ids, n_ids * sizeof *ids) == 0);
        if (!same) {
            fails++;
            fprintf(stderr, "  %s case %d: '%.60s'\n", name, i, cases[i].text);
            dump_ids("want", cases[i].ids, cases[i].n_ids);
            dump_ids("got ", ids, n_ids);
        }
        /* detokenize(tokenize(s)) == s */
        char buf[65536];
        size_t len;
        const char *want = cases[i].text;
        size_t want_len = cases[i].len;
        if (st == HAI_OK && hai_detokenize(t, ids, n_ids, 0, buf, sizeof buf, &len, &err) == HAI_OK) {
            if (normalizes) { /* the text as normalized: tokenized again, the same tokens */
                int32_t again[8192];
                size_t n2 = 0;
                CHECK_MSG(hai_tokenize(t, buf, len, 0, again, 8192, &n2, &err) == HAI_OK && n2 == n_ids &&
                              (n2 == 0 || memcmp(again, ids, n2 * sizeof *ids) == 0),
                          "%s case %d: '%.*s' does not tokenize to the tokens it came from", name, i, (int)len, buf);
                static char normed[65536];
                memcpy(normed, buf, len);
                want = normed, want_len = len;
            }
            CHECK_MSG(len == want_len && memcmp(buf, want, len) == 0, "%s case %d: round trip gives '%.*s'", name, i, (int)len, buf);
        } else {
            CHECK_MSG(false, "%s case %d: detokenize failed", name, i);
        }
        /* streaming gives the same text, in valid UTF-8 chunks */
        size_t slen = stream_all(t, ids, n_ids, buf);
        CHECK_MSG(slen == want_len && memcmp(buf, want, slen) == 0, "%s case %d: streamed text differs", name, i);
    }
    CHECK_MSG(fails == 0, "%s: %d of %d vector cases differ", name, fails, n);
    fprintf(stderr, "%-16s %d/%d cases identical\n", name, n - fails, n);
    free_vectors(cases, n);
}

static void run_vectors(const char *vdir, const char *name, const hai_tokenizer *t) { run_vectors_n(vdir, name, t, false); }

/* Streaming holds back an incomplete character and replaces what can never be one. */
static void stream_cases(const hai_tokenizer *spm) {
    hai_token b[6] = {hai_tokenizer_find(spm, "<0xF0>", 6), hai_tokenizer_find(spm, "<0x9F>", 6),
                      hai_tokenizer_find(spm, "<0xA6>", 6), hai_tokenizer_find(spm, "<0x99>", 6),
                      hai_tokenizer_find(spm, "<0xFF>", 6), hai_tokenizer_find(spm, "a", 1)};
    for (int i = 0; i < 6; i++) CHECK(b[i] >= 0);
    hai_detok_stream s;
    hai_detok_stream_init(&s, 0);
    char out[256];
    size_t k;
    for (int i = 0; i < 3; i++) { /* F0 9F A6: held */
        CHECK_EQ_INT(hai_detok_stream_push(spm, &s, b[i], out, sizeof out, &k, NULL), HAI_OK);
        CHECK_EQ_INT(k, 0);
    }
    CHECK_EQ_INT(hai_detok_stream_push(spm, &s, b[3], out, sizeof out, &k, NULL), HAI_OK); /* 99 completes U+1F999 */
    CHECK(k == 4 && memcmp(out, "\xf0\x9f\xa6\x99", 4) == 0);
    CHECK_EQ_INT(hai_detok_stream_push(spm, &s, b[4], out, sizeof out, &k, NULL), HAI_OK); /* FF: never valid */
    CHECK(k == 3 && memcmp(out, "\xef\xbf\xbd", 3) == 0);
    CHECK_EQ_INT(hai_detok_stream_push(spm, &s, b[0], out, sizeof out, &k, NULL), HAI_OK); /* F0 ... */
    CHECK_EQ_INT(k, 0);
    CHECK_EQ_INT(hai_detok_stream_push(spm, &s, b[5], out, sizeof out, &k, NULL), HAI_OK); /* ... then 'a' */
    CHECK(k == 4 && memcmp(out, "\xef\xbf\xbd" "a", 4) == 0);
    CHECK_EQ_INT(hai_detok_stream_push(spm, &s, b[1], out, sizeof out, &k, NULL), HAI_OK); /* lone 9F */
    CHECK(k == 3 && memcmp(out, "\xef\xbf\xbd", 3) == 0);
    CHECK_EQ_INT(hai_detok_stream_push(spm, &s, b[0], out, sizeof out, &k, NULL), HAI_OK);
    CHECK_EQ_INT(hai_detok_stream_flush(&s, out), 3); /* an unfinished character at the end */
    CHECK_EQ_INT(hai_detok_stream_push(spm, &s, 1 << 30, out, sizeof out, &k, NULL), HAI_ERR_INVALID);
    /* buffer rules of the whole-text calls */
    hai_token ids[4];
    size_t n;
    CHECK_EQ_INT(hai_tokenize(spm, "hello world", 11, 0, ids, 1, &n, NULL), HAI_ERR_LIMIT);
    CHECK(n >= 2);
    CHECK_EQ_INT(hai_tokenize(spm, "hello world", 11, HAI_TOKENIZE_ADD_SPECIAL, ids, 4, &n, NULL), HAI_OK);
    CHECK_EQ_INT(ids[0], hai_tokenizer_special(spm, HAI_SPECIAL_BOS));
    CHECK_EQ_INT(hai_detokenize(spm, ids, n, 0, out, 3, &k, NULL), HAI_ERR_LIMIT);
    CHECK_EQ_INT(k, 11);
}

/* Vocabularies a hostile file can hold: every token's text empty, or a single token. Loading,
 * tokenizing and detokenizing give results or errors, never undefined behaviour (an empty text
 * pool was a NULL that memcmp got, fatal in the sanitizer build). */
static void degenerate_vocabs(void) {
    static const char *const models[] = {"gpt2", "llama"};
    static const char *const empty[] = {"", "", ""}, *one[] = {"a"};
    for (size_t mi = 0; mi < 2; mi++)
        for (int v = 0; v < 2; v++) {
            char path[] = "/tmp/hai-test-vocab-XXXXXX";
            int fd = mkstemp(path);
            if (!CHECK(fd >= 0)) return;
            close(fd);
            hai_gguf_writer *w = NULL;
            hai_error err = {0};
            CHECK(hai_gguf_writer_create(3, 32, &w, &err) == HAI_OK);
            CHECK(hai_gguf_writer_set_str(w, "tokenizer.ggml.model", models[mi], &err) == HAI_OK);
            CHECK(hai_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", v ? one : empty, v ? 1 : 3, &err) == HAI_OK);
            CHECK_MSG(hai_gguf_writer_write(w, path, &err) == HAI_OK, "%s", err.msg);
            hai_gguf_writer_free(w);
            hai_gguf *g = NULL;
            hai_tokenizer *t = NULL;
            if (CHECK_MSG(hai_gguf_open(path, &g, &err) == HAI_OK, "%s", err.msg) && hai_tokenizer_from_gguf(g, &t, &err) == HAI_OK) {
                hai_token ids[64] = {0, 1, 2};
                size_t n = 0;
                hai_tokenize(t, "hi <s> there", 12, HAI_TOKENIZE_ADD_SPECIAL | HAI_TOKENIZE_PARSE_SPECIAL, ids, 64, &n, &err);
                char out[256];
                size_t k = 0;
                hai_detokenize(t, (const hai_token[]){0, 0, v ? 0 : 2}, 3, 0, out, sizeof out, &k, &err);
                CHECK(k < sizeof out);
            }
            hai_tokenizer_free(t);
            hai_gguf_free(g);
            unlink(path);
        }
}

/* The pieces a tokenizer.json pre-tokenizer cuts text into, seen through a character BPE whose
 * vocabulary holds every expected piece and which keeps a piece whole when it is a token
 * (ignore_merges, no merges): the ids are the pieces. `pre` is the pre_tokenizer's JSON. */
static void check_pieces(const char *pre, const char *text, const char *const *want, int n_want) {
    static const char *const extra[] = {"the", "final", "countdown", "the-", "final-", "-final", "-countdown", "--", "\u2581hello",
                                        "\u2581world", "\u2581"};
    char json[8192];
    int w = snprintf(json, sizeof json, "{\"model\": {\"type\": \"BPE\", \"ignore_merges\": true, \"merges\": [], \"vocab\": {");
    int id = 0;
    for (const char *c = "abcdefghijklmnopqrstuvwxyz-"; *c; c++) w += snprintf(json + w, sizeof json - (size_t)w, "\"%c\": %d, ", *c, id++);
    for (size_t i = 0; i < sizeof extra / sizeof *extra; i++)
        w += snprintf(json + w, sizeof json - (size_t)w, "\"%s\": %d%s", extra[i], id++, i + 1 < sizeof extra / sizeof *extra ? ", " : "");
    snprintf(json + w, sizeof json - (size_t)w, "}}, \"pre_tokenizer\": %s}", pre);
    hai_tokenizer *t = NULL;
    hai_error err = {0};
    if (!CHECK_MSG(hai_tokenizer_from_hf_text(json, strlen(json), NULL, 0, &t, &err) == HAI_OK, "%s: %s", pre, err.msg)) return;
    hai_token ids[64];
    size_t n = 0;
    CHECK_EQ_INT(hai_tokenize(t, text, strlen(text), 0, ids, 64, &n, &err), HAI_OK);
    bool same = (int)n == n_want;
    for (int i = 0; same && i < n_want; i++) {
        size_t len;
        const char *s = hai_tokenizer_text(t, ids[i], &len);
        same = len == strlen(want[i]) && !memcmp(s, want[i], len);
    }
    CHECK_MSG(same, "%s on '%s': %zu pieces, not the %d expected", pre, text, n, n_want);
    hai_tokenizer_free(t);
}

/* Split's behaviors as the tokenizers library documents them (splitting "the-final--countdown"
 * on '-'), one inverted, and Metaspace (the replacement for spaces, a prefix, a cut before each). */
static void split_behaviors(void) {
    const char *text = "the-final--countdown";
#define SPLIT(b, inv) "{\"type\": \"Split\", \"pattern\": {\"String\": \"-\"}, \"behavior\": \"" b "\", \"invert\": " inv "}"
    check_pieces(SPLIT("Removed", "false"), text, (const char *[]){"the", "final", "countdown"}, 3);
    check_pieces(SPLIT("Isolated", "false"), text, (const char *[]){"the", "-", "final", "-", "-", "countdown"}, 6);
    check_pieces(SPLIT("MergedWithPrevious", "false"), text, (const char *[]){"the-", "final-", "-", "countdown"}, 4);
    check_pieces(SPLIT("MergedWithNext", "false"), text, (const char *[]){"the", "-final", "-", "-countdown"}, 4);
    check_pieces(SPLIT("Contiguous", "false"), text, (const char *[]){"the", "-", "final", "--", "countdown"}, 5);
#undef SPLIT
    /* inverted: the letters are what is kept, the gaps the delimiters (cl100k's Removed) */
    check_pieces("{\"type\": \"Split\", \"pattern\": {\"Regex\": \"[a-z]+\"}, \"behavior\": \"Removed\", \"invert\": true}", text,
                 (const char *[]){"the", "final", "countdown"}, 3);
    check_pieces("{\"type\": \"Metaspace\", \"replacement\": \"\u2581\", \"prepend_scheme\": \"always\", \"split\": true}", "hello  world",
                 (const char *[]){"\xe2\x96\x81hello", "\xe2\x96\x81", "\xe2\x96\x81world"}, 3);
}

/* Text can give more tokens than it has bytes (here NFKC: U+FDFA, 3 bytes, is 18 letters of
 * Arabic): hai_tokenize with a buffer sized by the bytes says HAI_ERR_LIMIT and how many it needs,
 * hai_tokenize_alloc gives them all, the same ids as a buffer that is large enough. */
static void more_tokens_than_bytes(const hai_tokenizer *t) {
    char text[50 * 3 + 1] = "";
    for (int i = 0; i < 50; i++) strcat(text, "\xef\xb7\xba");
    size_t len = strlen(text), n = 0, n2 = 0;
    hai_error err = {0};
    hai_token small[50 * 3 + 8], *big = malloc(8192 * sizeof *big), *got = NULL;
    if (!CHECK(big)) return;
    CHECK_EQ_INT(hai_tokenize(t, text, len, 0, small, len + 8, &n, &err), HAI_ERR_LIMIT);
    CHECK_MSG(n > len + 8, "NFKC U+FDFA x50: %zu tokens for %zu bytes", n, len);
    CHECK_EQ_INT(hai_tokenize(t, text, len, 0, big, 8192, &n, &err), HAI_OK);
    if (CHECK_MSG(hai_tokenize_alloc(t, text, len, 0, &got, &n2, &err) == HAI_OK, "%s", err.msg))
        CHECK_MSG(n2 == n && got && !memcmp(got, big, n * sizeof *got), "hai_tokenize_alloc: %zu ids, hai_tokenize %zu", n2, n);
    free(got);
    got = NULL;
    CHECK_MSG(hai_tokenize_alloc(t, "", 0, 0, &got, &n2, &err) == HAI_OK && n2 == 0 && !got, "empty text: %zu ids", n2);
    free(big);
}

int main(int argc, char **argv) {
    const char *shared = check_shared_dir(argc, argv);
    degenerate_vocabs();
    split_behaviors();
    char vdir[4096];
    snprintf(vdir, sizeof vdir, "%s/vocab", shared);
    /* every vocabulary with a GGUF file and vectors, and which hai supports */
    const char *gguf_vocabs[] = {"llama-spm", "phi-3", "gpt-2", "deepseek-llm", "deepseek-coder",
                                 "falcon", "mpt", "starcoder", "refact"};
    for (size_t i = 0; i < sizeof gguf_vocabs / sizeof gguf_vocabs[0]; i++) {
        char path[8192];
        snprintf(path, sizeof path, "%s/ggml-vocab-%s.gguf", vdir, gguf_vocabs[i]);
        hai_gguf *g = NULL;
        hai_tokenizer *t = NULL;
        hai_error err = {0};
        CHECK_MSG(hai_gguf_open(path, &g, &err) == HAI_OK, "%s", err.msg);
        if (g) CHECK_MSG(hai_tokenizer_from_gguf(g, &t, &err) == HAI_OK, "%s: %s", gguf_vocabs[i], err.msg);
        if (t && i == 0) stream_cases(t);
        if (t) {
            run_vectors(vdir, gguf_vocabs[i], t);
            check_roundtrip_ids(t, gguf_vocabs[i], false);
        }
        hai_tokenizer_free(t);
        hai_gguf_free(g);
    }
    /* Llama 3 and Qwen: from their tokenizer.json (see scripts/fetch-hf-tokenizers.sh) */
    CHECK_MSG(argc > 2, "usage: test_tokenizer SHARED_DIR HF_TOKENIZERS_DIR");
    const struct { const char *vectors, *dir; } hf[] = {
        {"llama-bpe", "llama3"}, {"qwen2", "qwen3"}, {"deepseek-r1-qwen", "qwen3"}};
    for (size_t i = 0; argc > 2 && i < sizeof hf / sizeof hf[0]; i++) {
        snprintf(tok_json, sizeof tok_json, "%s/%s/tokenizer.json", argv[2], hf[i].dir);
        snprintf(tok_cfg, sizeof tok_cfg, "%s/%s/tokenizer_config.json", argv[2], hf[i].dir);
        hai_tokenizer *t = NULL;
        hai_error err = {0};
        CHECK_MSG(hai_tokenizer_from_hf(tok_json, tok_cfg, &t, &err) == HAI_OK, "%s: %s", hf[i].vectors, err.msg);
        if (t) {
            run_vectors(vdir, hf[i].vectors, t);
            if (i < 2) check_roundtrip_ids(t, hf[i].vectors, i == 1); /* qwen: NFC */
        }
        hai_tokenizer_free(t);
    }
    /* tokenizer.json files of other kinds against @lenml/tokenizers (tests/node/tokenizer_vectors.mjs) */
    CHECK_MSG(argc > 3, "usage: test_tokenizer SHARED_DIR HF_TOKENIZERS_DIR HF_VECTORS_DIR");
    static const char *const hf_vec[] = {"gemma3", "llama2", "deepseek_v3", "gpt4o", "gpt4", "claude", "mistral_nemo", "llama3", "qwen3"};
    for (size_t i = 0; argc > 3 && i < sizeof hf_vec / sizeof *hf_vec; i++) {
        snprintf(tok_json, sizeof tok_json, "%s/%s/tokenizer.json", argv[2], hf_vec[i]);
        snprintf(tok_cfg, sizeof tok_cfg, "%s/%s/tokenizer_config.json", argv[2], hf_vec[i]);
        hai_tokenizer *t = NULL;
        hai_error err = {0};
        CHECK_MSG(hai_tokenizer_from_hf(tok_json, tok_cfg, &t, &err) == HAI_OK, "%s: %s", hf_vec[i], err.msg);
        bool normalizes = !strcmp(hf_vec[i], "claude") || !strcmp(hf_vec[i], "qwen3");
        if (t) run_vectors_n(argv[3], hf_vec[i], t, normalizes);
        if (t && (i < 2 || !strcmp(hf_vec[i], "claude"))) check_roundtrip_ids(t, hf_vec[i], normalizes); /* Gemma's 262K, Llama 2's, NFKC */
        if (t && !strcmp(hf_vec[i], "claude")) more_tokens_than_bytes(t);
        hai_tokenizer_free(t);
    }
    return check_done("test_tokenizer");
}
