/* Every GGUF file in ../shared opens and describes itself sensibly; every truncation of it is
 * refused with a clear error (never a crash: this test runs under ASan in CI). */
#include <dirent.h>

#include "check.h"

static int n_files;

static void check_file(const char *dir, const char *name, bool expect_tensors) {
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    hai_gguf *g = NULL;
    hai_error err = {0};
    CHECK_MSG(hai_gguf_open(path, &g, &err) == HAI_OK, "%s: %s", name, err.msg);
    if (!g) return;
    n_files++;
    CHECK(hai_gguf_version(g) == 3 || hai_gguf_version(g) == 2);
    hai_gguf_str arch;
    CHECK_MSG(hai_gguf_get_str(g, "general.architecture", &arch, &err) == HAI_OK, "%s: %s", name, err.msg);
    const hai_gguf_value *tokens;
    CHECK_MSG(hai_gguf_get_arr(g, "tokenizer.ggml.tokens", HAI_GGUF_STRING, &tokens, &err) == HAI_OK, "%s: %s", name, err.msg);
    if (expect_tensors) {
        CHECK(hai_gguf_n_tensors(g) > 0);
        const hai_gguf_tensor *emb = hai_gguf_find_tensor(g, "token_embd.weight");
        CHECK_MSG(emb != NULL, "%s: no token_embd.weight", name);
        if (emb) CHECK(emb->n_dims == 2 && (uint64_t)emb->ne[1] == tokens->arr.n);
        uint64_t end = 0;
        for (int64_t i = 0; i < hai_gguf_n_tensors(g); i++) {
            const hai_gguf_tensor *t = hai_gguf_tensor_at(g, i);
            CHECK(hai_gguf_find_tensor(g, t->name) == t);
            CHECK(hai_type_supported(t->type));
            uint64_t e = hai_gguf_data_offset(g) + t->offset + t->size;
            if (e > end) end = e;
        }
        CHECK(end <= hai_gguf_file_size(g));
    } else {
        CHECK_EQ_INT(hai_gguf_n_tensors(g), 0);
    }
    /* read the whole file into memory and try prefixes of it */
    uint64_t size = hai_gguf_file_size(g);
    hai_gguf_free(g);
    FILE *f = fopen(path, "rb");
    uint8_t *buf = malloc(size);
    CHECK(f && buf && fread(buf, 1, size, f) == size);
    if (f) fclose(f);
    int bad = 0;
    const int steps = 97;
    for (int s = 0; s < steps && buf; s++) {
        uint64_t n = size * (uint64_t)s / steps;
        hai_gguf *h = NULL;
        hai_status st = hai_gguf_open_buffer(buf, n, &h, &err);
        /* a vocab-only file's prefix can only be valid at its full length */
        if (st != HAI_ERR_FORMAT) {
            bad++;
            fprintf(stderr, "%s: prefix of %llu bytes: %s\n", name, (unsigned long long)n, hai_status_name(st));
        }
        hai_gguf_free(h);
    }
    CHECK_EQ_INT(bad, 0);
    /* flipping bytes of the header region gives either a valid file or a clean error */
    for (int i = 0; i < 200 && buf && size > 64; i++) {
        uint64_t pos = 4 + (uint64_t)i * 7919 % (size < 65536 ? size - 4 : 65532);
        uint8_t old = buf[pos];
        buf[pos] ^= (uint8_t)(0x5a + i);
        hai_gguf *h = NULL;
        (void)hai_gguf_open_buffer(buf, size, &h, &err);
        hai_gguf_free(h);
        buf[pos] = old;
    }
    free(buf);
}

static void check_dir(const char *shared, const char *sub, bool expect_tensors, int min_files) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", shared, sub);
    DIR *d = opendir(dir);
    CHECK_MSG(d != NULL, "cannot open %s", dir);
    if (!d) return;
    int before = n_files;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n > 5 && strcmp(e->d_name + n - 5, ".gguf") == 0) check_file(dir, e->d_name, expect_tensors);
    }
    closedir(d);
    CHECK_MSG(n_files - before >= min_files, "%s: only %d GGUF files", dir, n_files - before);
}

int main(int argc, char **argv) {
    const char *shared = check_shared_dir(argc, argv);
    check_dir(shared, "reference", true, 16);
    check_dir(shared, "vocab", false, 10);
    fprintf(stderr, "%d files\n", n_files);
    return check_done("test_gguf_shared");
}
