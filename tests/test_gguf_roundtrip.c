/* GGUF writer -> reader round trips: every metadata value type (nested arrays included), tensors
 * of every type, alignments, both versions, streaming, and a failed write leaving no file. */
#include <unistd.h>

#include "check.h"
#include "quant/quant.h"
#include "base/rng.h"

static char tmpdir[256];

static void path_in_tmp(char *out, size_t cap, const char *name) { snprintf(out, cap, "%s/%s", tmpdir, name); }

static bool str_eq(hai_gguf_str s, const char *want, size_t n) { return s.size == n && memcmp(s.data, want, n) == 0; }

/* Writes one file with every value type, reads it back, checks each value. */
static void value_types(uint32_t version, uint32_t alignment) {
    hai_error err = {0};
    hai_gguf_writer *w;
    CHECK_EQ_INT(hai_gguf_writer_create(version, alignment, &w, &err), HAI_OK);
    hai_gguf_value v;
#define SET(k, T, field, val) do { v = (hai_gguf_value){.type = T, .field = val}; CHECK_EQ_INT(hai_gguf_writer_set(w, k, &v, &err), HAI_OK); } while (0)
    SET("t.u8", HAI_GGUF_UINT8, u64, 255);
    SET("t.i8", HAI_GGUF_INT8, i64, -128);
    SET("t.u16", HAI_GGUF_UINT16, u64, 65535);
    SET("t.i16", HAI_GGUF_INT16, i64, -32768);
    SET("t.u32", HAI_GGUF_UINT32, u64, 4000000000u);
    SET("t.i32", HAI_GGUF_INT32, i64, -2000000000);
    SET("t.f32", HAI_GGUF_FLOAT32, f64, 0.1f);
    SET("t.bool", HAI_GGUF_BOOL, b, true);
    SET("t.u64", HAI_GGUF_UINT64, u64, UINT64_MAX);
    SET("t.i64", HAI_GGUF_INT64, i64, INT64_MIN);
    SET("t.f64", HAI_GGUF_FLOAT64, f64, 0.1);
#undef SET
    /* range check of narrow types */
    v = (hai_gguf_value){.type = HAI_GGUF_UINT8, .u64 = 256};
    CHECK_EQ_INT(hai_gguf_writer_set(w, "bad.u8", &v, &err), HAI_ERR_INVALID);
    /* strings: with a NUL inside, UTF-8, empty */
    v = (hai_gguf_value){.type = HAI_GGUF_STRING, .str = {"a\0b", 3}};
    CHECK_EQ_INT(hai_gguf_writer_set(w, "t.str_nul", &v, &err), HAI_OK);
    CHECK_EQ_INT(hai_gguf_writer_set_str(w, "t.str_utf8", "h\xc3\xa9llo \xe4\xb8\xad", &err), HAI_OK);
    CHECK_EQ_INT(hai_gguf_writer_set_str(w, "t.str_empty", "", &err), HAI_OK);
    /* scalar arrays of each type */
    uint8_t au8[3] = {1, 2, 3};
    int16_t ai16[2] = {-5, 7};
    float af32[3] = {1.5f, -2.25f, 1e30f};
    double af64[2] = {1e300, -0.0};
    int64_t ai64[2] = {INT64_MAX, -1};
    uint8_t abool[2] = {1, 0};
    CHECK_EQ_INT(hai_gguf_writer_set_arr(w, "a.u8", HAI_GGUF_UINT8, au8, 3, &err), HAI_OK);
    CHECK_EQ_INT(hai_gguf_writer_set_arr(w, "a.i16", HAI_GGUF_INT16, ai16, 2, &err), HAI_OK);
    CHECK_EQ_INT(hai_gguf_writer_set_arr(w, "a.f32", HAI_GGUF_FLOAT32, af32, 3, &err), HAI_OK);
    CHECK_EQ_INT(hai_gguf_writer_set_arr(w, "a.f64", HAI_GGUF_FLOAT64, af64, 2, &err), HAI_OK);
    CHECK_EQ_INT(hai_gguf_writer_set_arr(w, "a.i64", HAI_GGUF_INT64, ai64, 2, &err), HAI_OK);
    CHECK_EQ_INT(hai_gguf_writer_set_arr(w, "a.bool", HAI_GGUF_BOOL, abool, 2, &err), HAI_OK);
    CHECK_EQ_INT(hai_gguf_writer_set_arr(w, "a.empty", HAI_GGUF_UINT32, NULL, 0, &err), HAI_OK);
    const char *strs[] = {"x", "", "\xe2\x96\x81the"};
    CHECK_EQ_INT(hai_gguf_writer_set_arr_str(w, "a.str", strs, 3, &err), HAI_OK);
    /* nested: [[1,2,3],[4]] of u32, and [[["x"]]] three levels deep */
    uint32_t r0[3] = {1, 2, 3}, r1[1] = {4};
    hai_gguf_value rows[2] = {
        {.type = HAI_GGUF_ARRAY, .arr = {.type = HAI_GGUF_UINT32, .n = 3, .data = r0}},
        {.type = HAI_GGUF_ARRAY, .arr = {.type = HAI_GGUF_UINT32, .n = 1, .data = r1}},
    };
    v = (hai_gguf_value){.type = HAI_GGUF_ARRAY, .arr = {.type = HAI_GGUF_ARRAY, .n = 2, .items = rows}};
    CHECK_EQ_INT(hai_gguf_writer_set(w, "a.nested", &v, &err), HAI_OK);
    hai_gguf_str xs = {"x", 1};
    hai_gguf_value lvl3 = {.type = HAI_GGUF_ARRAY, .arr = {.type = HAI_GGUF_STRING, .n = 1, .strs = &xs}};
    hai_gguf_value lvl2 = {.type = HAI_GGUF_ARRAY, .arr = {.type = HAI_GGUF_ARRAY, .n = 1, .items = &lvl3}};
    v = (hai_gguf_value){.type = HAI_GGUF_ARRAY, .arr = {.type = HAI_GGUF_ARRAY, .n = 1, .items = &lvl2}};
    CHECK_EQ_INT(hai_gguf_writer_set(w, "a.deep", &v, &err), HAI_OK);
    /* replacing a key keeps one copy */
    CHECK_EQ_INT(hai_gguf_writer_set_u32(w, "t.replaced", 1, &err), HAI_OK);
    CHECK_EQ_INT(hai_gguf_writer_set_u32(w, "t.replaced", 2, &err), HAI_OK);
    CHECK_EQ_INT(hai_gguf_writer_set_u32(w, "t.removed", 2, &err), HAI_OK);
    hai_gguf_writer_remove(w, "t.removed");

    char path[512];
    path_in_tmp(path, sizeof path, "values.gguf");
    CHECK_MSG(hai_gguf_writer_write(w, path, &err) == HAI_OK, "%s", err.msg);
    hai_gguf_writer_free(w);

    hai_gguf *g;
    CHECK_MSG(hai_gguf_open(path, &g, &err) == HAI_OK, "%s", err.msg);
    if (!g) return;
    CHECK_EQ_INT(hai_gguf_version(g), version ? version : 3);
    CHECK_EQ_INT(hai_gguf_alignment(g), alignment ? alignment : 32);
    const hai_gguf_value *r;
#define GET(k) (r = hai_gguf_get(g, k), CHECK_MSG(r != NULL, "missing %s", k), r)
    if (GET("t.u8")) CHECK(r->type == HAI_GGUF_UINT8 && r->u64 == 255);
    if (GET("t.i8")) CHECK(r->type == HAI_GGUF_INT8 && r->i64 == -128);
    if (GET("t.u16")) CHECK(r->type == HAI_GGUF_UINT16 && r->u64 == 65535);
    if (GET("t.i16")) CHECK(r->type == HAI_GGUF_INT16 && r->i64 == -32768);
    if (GET("t.u32")) CHECK(r->type == HAI_GGUF_UINT32 && r->u64 == 4000000000u);
    if (GET("t.i32")) CHECK(r->type == HAI_GGUF_INT32 && r->i64 == -2000000000);
    if (GET("t.f32")) CHECK(r->type == HAI_GGUF_FLOAT32 && r->f64 == (double)0.1f);
    if (GET("t.bool")) CHECK(r->type == HAI_GGUF_BOOL && r->b);
    if (GET("t.u64")) CHECK(r->type == HAI_GGUF_UINT64 && r->u64 == UINT64_MAX);
    if (GET("t.i64")) CHECK(r->type == HAI_GGUF_INT64 && r->i64 == INT64_MIN);
    if (GET("t.f64")) CHECK(r->type == HAI_GGUF_FLOAT64 && r->f64 == 0.1);
    if (GET("t.str_nul")) CHECK(r->type == HAI_GGUF_STRING && str_eq(r->str, "a\0b", 3));
    if (GET("t.str_utf8")) CHECK(str_eq(r->str, "h\xc3\xa9llo \xe4\xb8\xad", 10));
    if (GET("t.str_empty")) CHECK(r->type == HAI_GGUF_STRING && r->str.size == 0);
    if (GET("a.u8")) CHECK(r->arr.type == HAI_GGUF_UINT8 && r->arr.n == 3 && memcmp(r->arr.data, au8, 3) == 0);
    if (GET("a.i16")) CHECK(r->arr.type == HAI_GGUF_INT16 && r->arr.n == 2 && memcmp(r->arr.data, ai16, 4) == 0);
    if (GET("a.f32")) {
        CHECK(r->arr.type == HAI_GGUF_FLOAT32 && r->arr.n == 3);
        CHECK(hai_gguf_arr_f32(r, 1) == -2.25f && hai_gguf_arr_f32(r, 2) == 1e30f);
    }
    if (GET("a.f64")) {
        hai_gguf_value e;
        CHECK_EQ_INT(hai_gguf_arr_get(r, 0, &e, &err), HAI_OK);
        CHECK(e.type == HAI_GGUF_FLOAT64 && e.f64 == 1e300);
        CHECK_EQ_INT(hai_gguf_arr_get(r, 2, &e, &err), HAI_ERR_INVALID);
    }
    if (GET("a.i64")) CHECK(r->arr.n == 2 && memcmp(r->arr.data, ai64, 16) == 0);
    if (GET("a.bool")) CHECK(r->arr.type == HAI_GGUF_BOOL && memcmp(r->arr.data, abool, 2) == 0);
    if (GET("a.empty")) CHECK(r->arr.type == HAI_GGUF_UINT32 && r->arr.n == 0);
    if (GET("a.str")) {
        CHECK(r->arr.type == HAI_GGUF_STRING && r->arr.n == 3);
        CHECK(str_eq(r->arr.strs[0], "x", 1) && r->arr.strs[1].size == 0 && str_eq(r->arr.strs[2], "\xe2\x96\x81the", 6));
    }
    if (GET("a.nested")) {
        CHECK(r->arr.type == HAI_GGUF_ARRAY && r->arr.n == 2);
        const hai_gguf_value *a0 = &r->arr.items[0], *a1 = &r->arr.items[1];
        CHECK(a0->arr.type == HAI_GGUF_UINT32 && a0->arr.n == 3 && memcmp(a0->arr.data, r0, 12) == 0);
        CHECK(a1->arr.n == 1 && memcmp(a1->arr.data, r1, 4) == 0);
    }
    if (GET("a.deep")) {
        const hai_gguf_value *l2 = &r->arr.items[0], *l3 = &l2->arr.items[0];
        CHECK(l2->arr.type == HAI_GGUF_ARRAY && l3->arr.type == HAI_GGUF_STRING && str_eq(l3->arr.strs[0], "x", 1));
    }
    if (GET("t.replaced")) CHECK(r->u64 == 2);
    CHECK(hai_gguf_get(g, "t.removed") == NULL);
    CHECK(hai_gguf_get(g, "bad.u8") == NULL);
#undef GET
    /* typed getters: conversions within range, type errors, absence */
    uint32_t u32;
    int64_t i64;
    float f32;
    CHECK_EQ_INT(hai_gguf_get_u32(g, "t.u8", &u32, &err), HAI_OK);
    CHECK_EQ_INT(u32, 255);
    CHECK_EQ_INT(hai_gguf_get_u32(g, "t.u64", &u32, &err), HAI_ERR_FORMAT);
    CHECK_EQ_INT(hai_gguf_get_u32(g, "t.i8", &u32, &err), HAI_ERR_FORMAT);
    CHECK_EQ_INT(hai_gguf_get_i64(g, "t.i32", &i64, &err), HAI_OK);
    CHECK_EQ_INT(i64, -2000000000);
    CHECK_EQ_INT(hai_gguf_get_f32(g, "t.f64", &f32, &err), HAI_OK);
    CHECK_EQ_INT(hai_gguf_get_f32(g, "t.str_empty", &f32, &err), HAI_ERR_FORMAT);
    CHECK(strstr(err.msg, "t.str_empty") != NULL);
    CHECK_EQ_INT(hai_gguf_get_u32(g, "no.such.key", &u32, &err), HAI_ERR_NOT_FOUND);
    const hai_gguf_value *arr;
    CHECK_EQ_INT(hai_gguf_get_arr(g, "a.str", HAI_GGUF_STRING, &arr, &err), HAI_OK);
    CHECK_EQ_INT(hai_gguf_get_arr(g, "a.str", HAI_GGUF_INT32, &arr, &err), HAI_ERR_FORMAT);

    /* copying every value into a new file reproduces the same bytes of metadata */
    hai_gguf_writer *w2;
    CHECK_EQ_INT(hai_gguf_writer_create(version, alignment, &w2, &err), HAI_OK);
    for (int64_t i = 0; i < hai_gguf_n_kv(g); i++) {
        const hai_gguf_kv *kv = hai_gguf_kv_at(g, i);
        CHECK_EQ_INT(hai_gguf_writer_set(w2, kv->key, &kv->value, &err), HAI_OK);
    }
    char path2[512];
    path_in_tmp(path2, sizeof path2, "values-copy.gguf");
    CHECK_EQ_INT(hai_gguf_writer_write(w2, path2, &err), HAI_OK);
    hai_gguf_writer_free(w2);
    FILE *f1 = fopen(path, "rb"), *f2 = fopen(path2, "rb");
    CHECK(f1 && f2);
    if (f1 && f2) {
        int c1, c2, same = 1;
        do {
            c1 = fgetc(f1);
            c2 = fgetc(f2);
            if (c1 != c2) same = 0;
        } while (c1 != EOF && c2 != EOF);
        CHECK_MSG(same, "copied metadata differs from the original");
    }
    if (f1) fclose(f1);
    if (f2) fclose(f2);
    hai_gguf_free(g);
}

/* Tensors of every type the project supports, with random bytes, written and read back. */
static void tensor_types(uint32_t alignment, bool streaming) {
    const uint32_t types[] = {HAI_TYPE_F32, HAI_TYPE_F16,  HAI_TYPE_BF16, HAI_TYPE_Q8_0, HAI_TYPE_Q4_0,
                              HAI_TYPE_Q4_1, HAI_TYPE_Q5_0, HAI_TYPE_Q5_1, HAI_TYPE_Q2_K, HAI_TYPE_Q3_K,
                              HAI_TYPE_Q4_K, HAI_TYPE_Q5_K, HAI_TYPE_Q6_K, HAI_TYPE_IQ4_NL, HAI_TYPE_IQ4_XS};
    enum { NT = sizeof types / sizeof types[0] };
    hai_error err = {0};
    hai_gguf_writer *w;
    CHECK_EQ_INT(hai_gguf_writer_create(3, alignment, &w, &err), HAI_OK);
    uint8_t *data[NT];
    uint64_t sizes[NT];
    hai_rng rng;
    hai_rng_seed(&rng, 7);
    for (int i = 0; i < NT; i++) {
        int64_t ne[3] = {256 * (1 + i % 3), 3, 1 + i % 2};
        uint32_t nd = 2 + i % 2;
        sizes[i] = hai_tensor_bytes(types[i], nd, ne);
        CHECK(sizes[i] > 0);
        data[i] = malloc(sizes[i]);
        for (uint64_t j = 0; j < sizes[i]; j++) data[i][j] = (uint8_t)hai_rng_next(&rng);
        char name[32];
        snprintf(name, sizeof name, "t.%s", hai_type_name(types[i]));
        CHECK_MSG(hai_gguf_writer_add_tensor(w, name, types[i], nd, ne, streaming ? NULL : data[i], &err) == HAI_OK, "%s", err.msg);
    }
    /* invalid tensors are refused */
    int64_t bad_ne[2] = {100, 2};
    CHECK_EQ_INT(hai_gguf_writer_add_tensor(w, "bad", HAI_TYPE_Q4_0, 2, bad_ne, NULL, &err), HAI_ERR_INVALID);
    CHECK_EQ_INT(hai_gguf_writer_add_tensor(w, "t.F32", HAI_TYPE_F32, 1, bad_ne, NULL, &err), HAI_ERR_INVALID);
    char path[512];
    path_in_tmp(path, sizeof path, "tensors.gguf");
    if (streaming) {
        CHECK_EQ_INT(hai_gguf_writer_begin(w, path, &err), HAI_OK);
        CHECK_EQ_INT(hai_gguf_writer_write_data(w, data[0], sizes[0] - 1, &err), HAI_ERR_INVALID);
        for (int i = 0; i < NT; i++) CHECK_EQ_INT(hai_gguf_writer_write_data(w, data[i], sizes[i], &err), HAI_OK);
        CHECK_EQ_INT(hai_gguf_writer_finish(w, &err), HAI_OK);
    } else {
        CHECK_MSG(hai_gguf_writer_write(w, path, &err) == HAI_OK, "%s", err.msg);
    }
    hai_gguf_writer_free(w);
    hai_gguf *g;
    CHECK_MSG(hai_gguf_open(path, &g, &err) == HAI_OK, "%s", err.msg);
    if (g) {
        CHECK_EQ_INT(hai_gguf_n_tensors(g), NT);
        CHECK_EQ_INT(hai_gguf_data_offset(g) % (alignment ? alignment : 32), 0);
        for (int i = 0; i < NT; i++) {
            char name[32];
            snprintf(name, sizeof name, "t.%s", hai_type_name(types[i]));
            const hai_gguf_tensor *t = hai_gguf_find_tensor(g, name);
            CHECK_MSG(t != NULL, "missing %s", name);
            if (!t) continue;
            CHECK(t->type == types[i] && t->size == sizes[i]);
            CHECK(memcmp(t->data, data[i], sizes[i]) == 0);
            CHECK_EQ_INT(t->offset % (alignment ? alignment : 32), 0);
        }
        hai_gguf_free(g);
    }
    for (int i = 0; i < NT; i++) free(data[i]);
}

static void failed_write_leaves_nothing(void) {
    hai_error err = {0};
    hai_gguf_writer *w;
    CHECK_EQ_INT(hai_gguf_writer_create(0, 0, &w, &err), HAI_OK);
    float x[32] = {0};
    int64_t ne[1] = {32};
    CHECK_EQ_INT(hai_gguf_writer_add_tensor(w, "a", HAI_TYPE_F32, 1, ne, x, &err), HAI_OK);
    CHECK_EQ_INT(hai_gguf_writer_add_tensor(w, "b", HAI_TYPE_F32, 1, ne, NULL, &err), HAI_OK);
    char path[512];
    path_in_tmp(path, sizeof path, "partial.gguf");
    /* "b" has no data: write refuses before creating anything */
    CHECK_EQ_INT(hai_gguf_writer_write(w, path, &err), HAI_ERR_INVALID);
    CHECK(access(path, F_OK) != 0);
    /* an abandoned stream removes its temporary file and never creates PATH */
    CHECK_EQ_INT(hai_gguf_writer_begin(w, path, &err), HAI_OK);
    CHECK_EQ_INT(hai_gguf_writer_write_data(w, x, sizeof x, &err), HAI_OK);
    CHECK_EQ_INT(hai_gguf_writer_finish(w, &err), HAI_ERR_INVALID);
    hai_gguf_writer_free(w);
    CHECK(access(path, F_OK) != 0);
    char tmp[520];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CHECK(access(tmp, F_OK) != 0);
    /* a directory that does not exist is an IO error */
    CHECK_EQ_INT(hai_gguf_writer_create(0, 0, &w, &err), HAI_OK);
    CHECK_EQ_INT(hai_gguf_writer_write(w, "/nonexistent-dir/x.gguf", &err), HAI_ERR_IO);
    hai_gguf_writer_free(w);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/hai-test-rt-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    value_types(3, 0);
    value_types(2, 64);
    value_types(3, 1);
    tensor_types(0, false);
    tensor_types(128, true);
    tensor_types(1, false);
    failed_write_leaves_nothing();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", tmpdir);
    return check_done("test_gguf_roundtrip");
}
