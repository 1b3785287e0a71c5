/* Hostile and corrupt GGUF files: each case is built byte by byte, must be refused with
 * HAI_ERR_FORMAT (or UNSUPPORTED) and a message naming the problem, and never crash.
 * --save DIR also writes them there (seeds for the fuzzer); --regress DIR checks that every file
 * there (inputs the fuzzer once found) is refused too. */
#include <dirent.h>
#include <sys/stat.h>

#include "check.h"

typedef struct bb {
    uint8_t p[8192];
    size_t n;
} bb;

static void put(bb *b, const void *src, size_t n) {
    if (b->n + n > sizeof b->p) {
        fprintf(stderr, "builder overflow\n");
        exit(1);
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}
static void u8(bb *b, uint8_t v) { put(b, &v, 1); }
static void u32(bb *b, uint32_t v) { put(b, &v, 4); }
static void u64(bb *b, uint64_t v) { put(b, &v, 8); }
static void str(bb *b, const char *s) { u64(b, strlen(s)); put(b, s, strlen(s)); }
static void header(bb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    b->n = 0;
    put(b, "GGUF", 4);
    u32(b, version);
    u64(b, n_tensors);
    u64(b, n_kv);
}
static void kv_u32(bb *b, const char *k, uint32_t v) { str(b, k); u32(b, 4); u32(b, v); }
static void kv_str(bb *b, const char *k, const char *v) { str(b, k); u32(b, 8); str(b, v); }
static void tinfo(bb *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type, uint64_t off) {
    str(b, name);
    u32(b, n_dims);
    for (uint32_t i = 0; i < n_dims; i++) u64(b, ne[i]);
    u32(b, type);
    u64(b, off);
}
static void pad(bb *b, size_t align) { while (b->n % align) u8(b, 0); }
static void zeros(bb *b, size_t n) { for (size_t i = 0; i < n; i++) u8(b, 0); }

static const char *corpus_dir;
static int n_cases;

static void expect(const char *name, const bb *b, hai_status want, const char *substr) {
    hai_gguf *g = NULL;
    hai_error err = {0};
    hai_status st = hai_gguf_open_buffer(b->p, b->n, &g, &err);
    n_cases++;
    CHECK_MSG(st == want, "case '%s': status %s, want %s (%s)", name, hai_status_name(st), hai_status_name(want), err.msg);
    if (st != HAI_OK) CHECK_MSG(strstr(err.msg, substr) != NULL, "case '%s': message '%s' lacks '%s'", name, err.msg, substr);
    CHECK(st == HAI_OK || g == NULL);
    hai_gguf_free(g);
    if (corpus_dir) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.gguf", corpus_dir, name);
        FILE *f = fopen(path, "wb");
        if (f) {
            fwrite(b->p, 1, b->n, f);
            fclose(f);
        }
    }
}

/* A small valid file: two keys, one F32 tensor of 32 elements. */
static void valid(bb *b) {
    header(b, 3, 1, 2);
    kv_str(b, "general.architecture", "llama");
    kv_u32(b, "general.alignment", 32);
    uint64_t ne[1] = {32};
    tinfo(b, "w", 1, ne, 0, 0);
    pad(b, 32);
    zeros(b, 128);
}

/* A valid file whose single tensor is described by the arguments. */
static void one_tensor(bb *b, uint32_t n_dims, const uint64_t *ne, uint32_t type, uint64_t off, size_t data) {
    header(b, 3, 1, 0);
    tinfo(b, "w", n_dims, ne, type, off);
    pad(b, 32);
    zeros(b, data);
}

/* A vocabulary of three tokens plus one extra key (built by the caller). */
static void vocab(bb *b, uint64_t n_extra_kv) {
    header(b, 3, 0, 1 + n_extra_kv);
    str(b, "tokenizer.ggml.tokens");
    u32(b, 9);
    u32(b, 8);
    u64(b, 3);
    str(b, "<unk>");
    str(b, "<s>");
    str(b, "</s>");
}

/* Files found by fuzzing once: each must stay a clean FORMAT error. */
static void regressions(const char *dir) {
    DIR *d = opendir(dir);
    CHECK_MSG(d != NULL, "cannot open %s", dir);
    if (!d) return;
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        hai_gguf *g = NULL;
        hai_error err = {0};
        CHECK_MSG(hai_gguf_open(path, &g, &err) == HAI_ERR_FORMAT, "%s: %s", e->d_name, err.msg);
        hai_gguf_free(g);
        n++;
    }
    closedir(d);
    CHECK_MSG(n > 0, "no files in %s", dir);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i += 2) { /* strict: a mistyped flag must not quietly write or skip anything */
        if (strcmp(argv[i], "--save") && strcmp(argv[i], "--regress")) {
            fprintf(stderr, "test_gguf_bad: unknown argument '%s' (--save DIR, --regress DIR)\n", argv[i]);
            return 2;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "test_gguf_bad: %s needs a directory\n", argv[i]);
            return 2;
        }
        if (!strcmp(argv[i], "--save")) {
            corpus_dir = argv[i + 1];
            mkdir(corpus_dir, 0755);
        } else {
            regressions(argv[i + 1]);
        }
    }
    bb b;

    valid(&b);
    expect("valid", &b, HAI_OK, "");

    /* header */
    valid(&b);
    b.n = 10;
    expect("truncated-header", &b, HAI_ERR_FORMAT, "truncated header");
    valid(&b);
    memcpy(b.p, "GGML", 4);
    expect("bad-magic", &b, HAI_ERR_FORMAT, "bad magic");
    valid(&b);
    b.p[4] = 0, b.p[7] = 3;
    expect("big-endian", &b, HAI_ERR_FORMAT, "big-endian");
    valid(&b);
    b.p[4] = 1;
    expect("version-1", &b, HAI_ERR_UNSUPPORTED, "version 1");
    valid(&b);
    b.p[4] = 9;
    expect("version-unknown", &b, HAI_ERR_FORMAT, "unknown version 9");

    /* counts that would overflow n * size */
    valid(&b);
    { uint64_t n = 1ull << 62; memcpy(b.p + 8, &n, 8); }
    expect("tensor-count-huge", &b, HAI_ERR_FORMAT, "claims 4611686018427387904 tensors");
    valid(&b);
    { uint64_t n = UINT64_MAX; memcpy(b.p + 16, &n, 8); }
    expect("kv-count-huge", &b, HAI_ERR_FORMAT, "more than the");
    header(&b, 3, 0, 3); /* claims a third key that is not there */
    kv_str(&b, "general.architecture", "llama");
    kv_u32(&b, "general.alignment", 32);
    expect("kv-count-beyond-data", &b, HAI_ERR_FORMAT, "truncated file");

    /* strings and arrays larger than the file */
    header(&b, 3, 0, 1);
    u64(&b, 1ull << 40);
    put(&b, "general.name", 12);
    zeros(&b, 16);
    expect("key-length-huge", &b, HAI_ERR_FORMAT, "string length");
    header(&b, 3, 0, 1);
    str(&b, "general.name");
    u32(&b, 8);
    u64(&b, 1000);
    put(&b, "abc", 3);
    zeros(&b, 14);
    expect("string-length-huge", &b, HAI_ERR_FORMAT, "string length 1000");
    header(&b, 3, 0, 1);
    str(&b, "x.arr");
    u32(&b, 9);
    u32(&b, 4);
    u64(&b, 1ull << 62); /* 2^62 u32 elements: n * 4 overflows */
    zeros(&b, 16);
    expect("array-count-overflow", &b, HAI_ERR_FORMAT, "larger than the");
    header(&b, 3, 0, 1);
    str(&b, "x.arr");
    u32(&b, 9);
    u32(&b, 8);
    u64(&b, 100000);
    zeros(&b, 16);
    expect("string-array-count-huge", &b, HAI_ERR_FORMAT, "larger than the");

    /* nesting deeper than the cap */
    header(&b, 3, 0, 1);
    str(&b, "x.deep");
    u32(&b, 9);
    for (int d = 0; d < 6; d++) { u32(&b, 9); u64(&b, 1); }
    u32(&b, 4);
    u64(&b, 0);
    zeros(&b, 16);
    expect("nesting-too-deep", &b, HAI_ERR_FORMAT, "nested more than");

    /* unknown value types */
    header(&b, 3, 0, 1);
    str(&b, "x.t");
    u32(&b, 13);
    u32(&b, 0);
    zeros(&b, 16);
    expect("value-type-unknown", &b, HAI_ERR_FORMAT, "unknown value type 13");
    header(&b, 3, 0, 1);
    str(&b, "x.t");
    u32(&b, 9);
    u32(&b, 77);
    u64(&b, 1);
    zeros(&b, 16);
    expect("array-type-unknown", &b, HAI_ERR_FORMAT, "unknown array element type 77");

    /* keys */
    header(&b, 3, 0, 2);
    kv_u32(&b, "x.a", 1);
    kv_u32(&b, "x.a", 2);
    expect("duplicate-key", &b, HAI_ERR_FORMAT, "duplicate key 'x.a'");
    header(&b, 3, 0, 1);
    kv_u32(&b, "", 1);
    zeros(&b, 8);
    expect("empty-key", &b, HAI_ERR_FORMAT, "is empty");
    header(&b, 3, 0, 1);
    u64(&b, 3);
    put(&b, "a\0b", 3);
    u32(&b, 4);
    u32(&b, 1);
    zeros(&b, 8);
    expect("key-with-nul", &b, HAI_ERR_FORMAT, "NUL byte");

    /* tensor shapes */
    { uint64_t ne[5] = {32, 1, 1, 1, 1}; one_tensor(&b, 5, ne, 0, 0, 128); }
    expect("n-dims-5", &b, HAI_ERR_FORMAT, "n_dims 5");
    { uint64_t ne[1] = {32}; one_tensor(&b, 0, ne, 0, 0, 128); }
    expect("n-dims-0", &b, HAI_ERR_FORMAT, "n_dims 0");
    { uint64_t ne[2] = {32, 0}; one_tensor(&b, 2, ne, 0, 0, 128); }
    expect("dim-zero", &b, HAI_ERR_FORMAT, "dimension 1 is 0");
    { uint64_t ne[2] = {32, (uint64_t)-5}; one_tensor(&b, 2, ne, 0, 0, 128); }
    expect("dim-negative", &b, HAI_ERR_FORMAT, "is -5");
    { uint64_t ne[4] = {INT64_MAX, 2, 1, 1}; one_tensor(&b, 4, ne, 0, 0, 128); }
    expect("dims-product-overflow", &b, HAI_ERR_FORMAT, "product of its dimensions overflows");
    { uint64_t ne[2] = {1ull << 40, 1ull << 22}; one_tensor(&b, 2, ne, 0, 0, 128); } /* 2^62 F32: bytes overflow */
    expect("bytes-overflow", &b, HAI_ERR_FORMAT, "byte size overflows");
    { uint64_t ne[1] = {(1ull << 62) + 32}; one_tensor(&b, 1, ne, 0, 0, 128); } /* one F32 row of 2^64 + 128 bytes */
    expect("row-bytes-overflow", &b, HAI_ERR_FORMAT, "byte size overflows");
    { uint64_t ne[1] = {(1ull << 61) - 1}; one_tensor(&b, 1, ne, 28, 0, 128); } /* F64: 2^64 - 8 bytes */
    expect("padded-size-wraps", &b, HAI_ERR_FORMAT, "wraps when padded");
    { uint64_t ne[1] = {32}; one_tensor(&b, 1, ne, 99, 0, 128); }
    expect("type-unknown", &b, HAI_ERR_FORMAT, "unknown type id 99");
    { uint64_t ne[1] = {30}; one_tensor(&b, 1, ne, 2, 0, 128); }
    expect("row-not-whole-blocks", &b, HAI_ERR_FORMAT, "not a multiple of the Q4_0 block size");

    /* tensor data placement */
    { uint64_t ne[1] = {32}; one_tensor(&b, 1, ne, 0, 0, 100); }
    expect("data-truncated", &b, HAI_ERR_FORMAT, "lies outside");
    { uint64_t ne[1] = {32}; one_tensor(&b, 1, ne, 0, 1ull << 20, 128); }
    expect("data-outside-file", &b, HAI_ERR_FORMAT, "lies outside");
    { uint64_t ne[1] = {32}; one_tensor(&b, 1, ne, 0, UINT64_MAX - 31, 128); }
    expect("data-offset-wraps", &b, HAI_ERR_FORMAT, "lies outside");
    { uint64_t ne[1] = {32}; one_tensor(&b, 1, ne, 0, 8, 256); }
    expect("data-misaligned", &b, HAI_ERR_FORMAT, "not a multiple of the alignment");
    header(&b, 3, 2, 0);
    { uint64_t ne[1] = {32}; tinfo(&b, "a", 1, ne, 0, 0); tinfo(&b, "b", 1, ne, 0, 96); }
    pad(&b, 32);
    zeros(&b, 256);
    expect("data-overlap", &b, HAI_ERR_FORMAT, "overlap");
    header(&b, 3, 1, 0);
    { uint64_t ne[1] = {32}; tinfo(&b, "a", 1, ne, 0, 64); }
    expect("data-section-missing", &b, HAI_ERR_FORMAT, "truncated file");

    /* tensor names */
    header(&b, 3, 2, 0);
    { uint64_t ne[1] = {32}; tinfo(&b, "a", 1, ne, 0, 0); tinfo(&b, "a", 1, ne, 0, 128); }
    pad(&b, 32);
    zeros(&b, 256);
    expect("duplicate-tensor-name", &b, HAI_ERR_FORMAT, "duplicate tensor name 'a'");
    { uint64_t ne[1] = {32}; header(&b, 3, 1, 0); tinfo(&b, "", 1, ne, 0, 0); pad(&b, 32); zeros(&b, 128); }
    expect("empty-tensor-name", &b, HAI_ERR_FORMAT, "is empty");

    /* alignment */
    const struct { const char *name; uint32_t v; } aligns[] = {{"alignment-0", 0}, {"alignment-48", 48}, {"alignment-huge", 1u << 31}};
    for (int i = 0; i < 3; i++) {
        header(&b, 3, 0, 1);
        kv_u32(&b, "general.alignment", aligns[i].v);
        expect(aligns[i].name, &b, HAI_ERR_FORMAT, "general.alignment");
    }
    header(&b, 3, 0, 1);
    str(&b, "general.alignment");
    u32(&b, 10);
    u64(&b, 32);
    expect("alignment-u64", &b, HAI_ERR_FORMAT, "must be a u32");
    header(&b, 3, 0, 1);
    kv_str(&b, "general.alignment", "32");
    expect("alignment-string", &b, HAI_ERR_FORMAT, "must be a u32");

    /* typed arrays with the wrong element type, and well-known keys of the wrong type */
    header(&b, 3, 0, 1);
    str(&b, "tokenizer.ggml.tokens");
    u32(&b, 9);
    u32(&b, 4);
    u64(&b, 2);
    u32(&b, 1);
    u32(&b, 2);
    expect("tokens-not-strings", &b, HAI_ERR_FORMAT, "must be an array of string");
    vocab(&b, 1);
    str(&b, "tokenizer.ggml.scores");
    u32(&b, 9);
    u32(&b, 5);
    u64(&b, 3);
    u32(&b, 0); u32(&b, 0); u32(&b, 0);
    expect("scores-not-f32", &b, HAI_ERR_FORMAT, "must be an array of f32");
    vocab(&b, 1);
    str(&b, "tokenizer.ggml.scores");
    u32(&b, 9);
    u32(&b, 6);
    u64(&b, 2);
    u32(&b, 0); u32(&b, 0);
    expect("scores-length", &b, HAI_ERR_FORMAT, "has 2 entries but the vocabulary has 3");
    header(&b, 3, 0, 1);
    kv_u32(&b, "general.architecture", 7);
    expect("architecture-not-string", &b, HAI_ERR_FORMAT, "must be a string");

    /* token ids outside the vocabulary */
    vocab(&b, 1);
    kv_u32(&b, "tokenizer.ggml.bos_token_id", 3);
    expect("bos-outside-vocab", &b, HAI_ERR_FORMAT, "outside the vocabulary of 3 tokens");
    vocab(&b, 1);
    kv_u32(&b, "tokenizer.ggml.eos_token_id", 0xFFFFFFFF);
    expect("eos-outside-vocab", &b, HAI_ERR_FORMAT, "outside the vocabulary");
    vocab(&b, 1);
    str(&b, "tokenizer.ggml.padding_token_id");
    u32(&b, 5);
    u32(&b, (uint32_t)-1);
    expect("pad-negative", &b, HAI_ERR_FORMAT, "negative token id");
    vocab(&b, 1);
    kv_str(&b, "tokenizer.ggml.unknown_token_id", "0");
    expect("unk-not-int", &b, HAI_ERR_FORMAT, "must be an integer token id");
    vocab(&b, 1);
    kv_u32(&b, "tokenizer.ggml.eos_token_id", 2);
    expect("eos-inside-vocab", &b, HAI_OK, "");

    /* every prefix of the valid file is refused cleanly */
    valid(&b);
    bb cut = b;
    int prefix_ok = 1;
    for (size_t n = 0; n < b.n; n++) {
        hai_gguf *g = NULL;
        hai_error err = {0};
        hai_status st = hai_gguf_open_buffer(cut.p, n, &g, &err);
        if (st != HAI_ERR_FORMAT || (!strstr(err.msg, "truncated") && !strstr(err.msg, "lies outside") && !strstr(err.msg, "larger than"))) {
            prefix_ok = 0;
            fprintf(stderr, "prefix %zu: %s %s\n", n, hai_status_name(st), err.msg);
        }
        hai_gguf_free(g);
    }
    CHECK(prefix_ok);

    /* the same errors arrive through a file on disk, with the path in the message */
    char path[] = "/tmp/hai-bad-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd >= 0) {
        { uint64_t ne[5] = {32, 1, 1, 1, 1}; one_tensor(&b, 5, ne, 0, 0, 128); }
        FILE *f = fdopen(fd, "wb");
        fwrite(b.p, 1, b.n, f);
        fclose(f);
        hai_gguf *g = NULL;
        hai_error err = {0};
        CHECK_EQ_INT(hai_gguf_open(path, &g, &err), HAI_ERR_FORMAT);
        CHECK(strstr(err.msg, path) && strstr(err.msg, "n_dims 5"));
        remove(path);
        CHECK_EQ_INT(hai_gguf_open(path, &g, &err), HAI_ERR_IO);
        CHECK_EQ_INT(hai_gguf_open("/", &g, &err), HAI_ERR_IO);
    }
    fprintf(stderr, "%d bad-file cases\n", n_cases);
    return check_done("test_gguf_bad");
}
