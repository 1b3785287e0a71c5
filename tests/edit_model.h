/* A model file with one metadata key more (or changed): for the tests that check a hostile value
 * is refused at load with a message naming it. */
#ifndef HAI_TEST_EDIT_MODEL_H
#define HAI_TEST_EDIT_MODEL_H

#include <unistd.h>

#include "check.h"

/* base with `key` set to v (a float, or with is_u32 a u32) must fail to load with HAI_ERR_FORMAT
 * or HAI_ERR_UNSUPPORTED and a message containing `want`. */
static inline void refused_with_key(const char *base, const char *key, double v, bool is_u32, const char *want) {
    char path[] = "/tmp/hai-edit-XXXXXX";
    int fd = mkstemp(path);
    if (!CHECK(fd >= 0)) return;
    close(fd);
    hai_error err = {0};
    hai_gguf *g = NULL;
    hai_gguf_writer *w = NULL;
    if (CHECK_MSG(hai_gguf_open(base, &g, &err) == HAI_OK && hai_gguf_writer_create(3, 32, &w, &err) == HAI_OK, "%s", err.msg)) {
        for (int64_t i = 0; i < hai_gguf_n_kv(g); i++) hai_gguf_writer_set(w, hai_gguf_kv_at(g, i)->key, &hai_gguf_kv_at(g, i)->value, &err);
        CHECK_EQ_INT(is_u32 ? hai_gguf_writer_set_u32(w, key, (uint32_t)v, &err) : hai_gguf_writer_set_f32(w, key, (float)v, &err), HAI_OK);
        for (int64_t i = 0; i < hai_gguf_n_tensors(g); i++) {
            const hai_gguf_tensor *t = hai_gguf_tensor_at(g, i);
            CHECK_EQ_INT(hai_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data, &err), HAI_OK);
        }
        CHECK_MSG(hai_gguf_writer_write(w, path, &err) == HAI_OK, "%s", err.msg);
        hai_model *m = NULL;
        hai_status st = hai_model_load(path, NULL, &m, &err);
        CHECK_MSG((st == HAI_ERR_FORMAT || st == HAI_ERR_UNSUPPORTED) && strstr(err.msg, want), "%s: status %s, '%s' (want '%s')", key,
                  hai_status_name(st), err.msg, want);
        hai_model_free(m);
    }
    hai_gguf_writer_free(w);
    hai_gguf_free(g);
    unlink(path);
}

#endif
