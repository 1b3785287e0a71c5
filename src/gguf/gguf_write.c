/* GGUF writer: metadata and tensor infos are collected in memory, tensor data is written from
 * the caller's buffers (or streamed tensor by tensor) into PATH.tmp, renamed over PATH at the end. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/error.h"
#include "gguf.h"
#include "base/text.h"
#include "quant/quant.h"

#define WRITER_MAX_DEPTH 4
#define WRITER_MAX_NAME 63 /* ggml's limit (64 with the terminator): keeps files loadable everywhere */

typedef hai_text buf; /* bytes: the header and encoded values */

static bool buf_put(buf *b, const void *src, size_t n) { return !n || text_put(b, src, n); }

static bool put_u32(buf *b, uint32_t v) { return buf_put(b, &v, 4); }
static bool put_u64(buf *b, uint64_t v) { return buf_put(b, &v, 8); }
static bool put_str(buf *b, const char *s, uint64_t n) { return put_u64(b, n) && buf_put(b, s, n); }

typedef struct wkv {
    char *key;
    buf enc; /* u32 type + encoded value */
} wkv;

typedef struct wtensor {
    char *name;
    uint32_t type, n_dims;
    int64_t ne[4];
    uint64_t size, offset;
    const void *data;
} wtensor;

struct hai_gguf_writer {
    uint32_t version, alignment;
    wkv *kvs;
    size_t n_kv, cap_kv;
    wtensor *tensors;
    size_t n_tensors, cap_tensors;
    uint64_t data_size; /* padded bytes of all tensor data */
    /* streaming state */
    FILE *f;
    char *path, *tmp_path;
    size_t next; /* index of the next tensor whose data is expected */
    uint64_t part; /* bytes of it written so far (write_part) */
};

hai_status hai_gguf_writer_create(uint32_t version, uint32_t alignment, hai_gguf_writer **out,
                                  hai_error *err) {
    if (!out) return hai_fail(err, HAI_ERR_INVALID, "gguf writer: NULL argument");
    *out = NULL;
    if (version == 0) version = 3;
    if (alignment == 0) alignment = 32;
    if (version != 2 && version != 3)
        return hai_fail(err, HAI_ERR_INVALID, "gguf writer: version %u (must be 2 or 3)", version);
    if (alignment & (alignment - 1) || alignment > (1u << 16))
        return hai_fail(err, HAI_ERR_INVALID, "gguf writer: alignment %u (must be a power of two <= 65536)", alignment);
    hai_gguf_writer *w = calloc(1, sizeof *w);
    if (!w) return hai_fail(err, HAI_ERR_NOMEM, "gguf writer: out of memory");
    w->version = version;
    w->alignment = alignment;
    *out = w;
    if (alignment != 32) return hai_gguf_writer_set_u32(w, "general.alignment", alignment, err);
    return HAI_OK;
}

void hai_gguf_writer_free(hai_gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kvs[i].key);
        text_free(&w->kvs[i].enc);
    }
    for (size_t i = 0; i < w->n_tensors; i++) free(w->tensors[i].name);
    free(w->kvs);
    free(w->tensors);
    if (w->f) { /* an unfinished stream: drop the temporary file, leave PATH untouched */
        fclose(w->f);
        unlink(w->tmp_path);
    }
    free(w->path);
    free(w->tmp_path);
    free(w);
}

/* ---- metadata ----------------------------------------------------------------------------- */

/* Values are widened in hai_gguf_value; a narrow type must hold what it is given. */
static bool scalar_in_range(const hai_gguf_value *v) {
    switch (v->type) {
    case HAI_GGUF_UINT8: return v->u64 <= UINT8_MAX;
    case HAI_GGUF_UINT16: return v->u64 <= UINT16_MAX;
    case HAI_GGUF_UINT32: return v->u64 <= UINT32_MAX;
    case HAI_GGUF_INT8: return v->i64 >= INT8_MIN && v->i64 <= INT8_MAX;
    case HAI_GGUF_INT16: return v->i64 >= INT16_MIN && v->i64 <= INT16_MAX;
    case HAI_GGUF_INT32: return v->i64 >= INT32_MIN && v->i64 <= INT32_MAX;
    default: return true;
    }
}

static hai_status encode(buf *b, const hai_gguf_value *v, int depth, const char *key, hai_error *err) {
    uint64_t sz = hai_gguf_scalar_size(v->type);
    bool ok = true;
    if (sz && !scalar_in_range(v))
        return hai_fail(err, HAI_ERR_INVALID, "gguf writer: key '%s': value out of range for type %s", key,
                        hai_gguf_type_name(v->type));
    if (sz) {
        union { uint8_t u8; uint16_t u16; uint32_t u32; uint64_t u64; float f; double d; } x;
        switch (v->type) {
        case HAI_GGUF_UINT8: case HAI_GGUF_INT8: x.u8 = (uint8_t)v->u64; break;
        case HAI_GGUF_BOOL: x.u8 = v->b ? 1 : 0; break;
        case HAI_GGUF_UINT16: case HAI_GGUF_INT16: x.u16 = (uint16_t)v->u64; break;
        case HAI_GGUF_UINT32: case HAI_GGUF_INT32: x.u32 = (uint32_t)v->u64; break;
        case HAI_GGUF_FLOAT32: x.f = (float)v->f64; break;
        case HAI_GGUF_FLOAT64: x.d = v->f64; break;
        default: x.u64 = v->u64; break;
        }
        ok = buf_put(b, &x, sz);
    } else if (v->type == HAI_GGUF_STRING) {
        if (!v->str.data && v->str.size) return hai_fail(err, HAI_ERR_INVALID, "gguf writer: key '%s': NULL string", key);
        ok = put_str(b, v->str.data, v->str.size);
    } else if (v->type == HAI_GGUF_ARRAY) {
        if (depth >= WRITER_MAX_DEPTH)
            return hai_fail(err, HAI_ERR_INVALID, "gguf writer: key '%s': arrays nested more than %d deep", key, WRITER_MAX_DEPTH);
        hai_gguf_type et = v->arr.type;
        uint64_t esz = hai_gguf_scalar_size(et), bytes;
        if (!put_u32(b, et) || !put_u64(b, v->arr.n)) goto nomem;
        if (esz) {
            if (!hai_mul_u64(esz, v->arr.n, &bytes) || bytes > SIZE_MAX || (!v->arr.data && bytes))
                return hai_fail(err, HAI_ERR_INVALID, "gguf writer: key '%s': bad array data", key);
            ok = buf_put(b, v->arr.data, (size_t)bytes);
        } else if (et == HAI_GGUF_STRING) {
            if (!v->arr.strs && v->arr.n) return hai_fail(err, HAI_ERR_INVALID, "gguf writer: key '%s': NULL string array", key);
            for (uint64_t i = 0; i < v->arr.n && ok; i++) {
                if (!v->arr.strs[i].data && v->arr.strs[i].size)
                    return hai_fail(err, HAI_ERR_INVALID, "gguf writer: key '%s': NULL string in array", key);
                ok = put_str(b, v->arr.strs[i].data, v->arr.strs[i].size);
            }
        } else if (et == HAI_GGUF_ARRAY) {
            if (!v->arr.items && v->arr.n) return hai_fail(err, HAI_ERR_INVALID, "gguf writer: key '%s': NULL nested array", key);
            for (uint64_t i = 0; i < v->arr.n; i++) {
                if (v->arr.items[i].type != HAI_GGUF_ARRAY)
                    return hai_fail(err, HAI_ERR_INVALID, "gguf writer: key '%s': element %llu of an array of arrays is not an array",
                                    key, (unsigned long long)i);
                hai_status st = encode(b, &v->arr.items[i], depth + 1, key, err);
                if (st) return st;
            }
        } else {
            return hai_fail(err, HAI_ERR_INVALID, "gguf writer: key '%s': unknown array element type %u", key, et);
        }
    } else {
        return hai_fail(err, HAI_ERR_INVALID, "gguf writer: key '%s': unknown value type %u", key, v->type);
    }
    if (ok) return HAI_OK;
nomem:
    return hai_fail(err, HAI_ERR_NOMEM, "gguf writer: out of memory");
}

hai_status hai_gguf_writer_set(hai_gguf_writer *w, const char *key, const hai_gguf_value *v, hai_error *err) {
    if (!w || !key || !v) return hai_fail(err, HAI_ERR_INVALID, "gguf writer: NULL argument");
    if (!*key) return hai_fail(err, HAI_ERR_INVALID, "gguf writer: empty key");
    if (w->f) return hai_fail(err, HAI_ERR_INVALID, "gguf writer: metadata is fixed once writing has begun");
    if (strcmp(key, "general.alignment") == 0) {
        if (v->type != HAI_GGUF_UINT32 || v->u64 == 0 || (v->u64 & (v->u64 - 1)) || v->u64 > (1u << 16))
            return hai_fail(err, HAI_ERR_INVALID, "gguf writer: general.alignment must be a u32 power of two <= 65536");
        w->alignment = (uint32_t)v->u64;
    }
    buf enc = {0};
    hai_status st = HAI_OK;
    if (!put_u32(&enc, v->type)) st = hai_fail(err, HAI_ERR_NOMEM, "gguf writer: out of memory");
    if (!st) st = encode(&enc, v, 0, key, err);
    if (st) {
        text_free(&enc);
        return st;
    }
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kvs[i].key, key) == 0) {
            text_free(&w->kvs[i].enc);
            w->kvs[i].enc = enc;
            return HAI_OK;
        }
    }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? 2 * w->cap_kv : 32;
        wkv *p = realloc(w->kvs, cap * sizeof *p);
        if (!p) goto nomem;
        w->kvs = p;
        w->cap_kv = cap;
    }
    char *k = strdup(key);
    if (!k) goto nomem;
    w->kvs[w->n_kv++] = (wkv){k, enc};
    return HAI_OK;
nomem:
    text_free(&enc);
    return hai_fail(err, HAI_ERR_NOMEM, "gguf writer: out of memory");
}

void hai_gguf_writer_remove(hai_gguf_writer *w, const char *key) {
    if (!w || !key || w->f) return;
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kvs[i].key, key) == 0) {
            free(w->kvs[i].key);
            text_free(&w->kvs[i].enc);
            memmove(&w->kvs[i], &w->kvs[i + 1], (w->n_kv - i - 1) * sizeof *w->kvs);
            w->n_kv--;
            if (strcmp(key, "general.alignment") == 0) w->alignment = 32;
            return;
        }
    }
}

hai_status hai_gguf_writer_set_u32(hai_gguf_writer *w, const char *key, uint32_t v, hai_error *err) {
    hai_gguf_value x = {.type = HAI_GGUF_UINT32, .u64 = v};
    return hai_gguf_writer_set(w, key, &x, err);
}
hai_status hai_gguf_writer_set_i32(hai_gguf_writer *w, const char *key, int32_t v, hai_error *err) {
    hai_gguf_value x = {.type = HAI_GGUF_INT32, .i64 = v};
    return hai_gguf_writer_set(w, key, &x, err);
}
hai_status hai_gguf_writer_set_f32(hai_gguf_writer *w, const char *key, float v, hai_error *err) {
    hai_gguf_value x = {.type = HAI_GGUF_FLOAT32, .f64 = v};
    return hai_gguf_writer_set(w, key, &x, err);
}
hai_status hai_gguf_writer_set_bool(hai_gguf_writer *w, const char *key, bool v, hai_error *err) {
    hai_gguf_value x = {.type = HAI_GGUF_BOOL, .b = v};
    return hai_gguf_writer_set(w, key, &x, err);
}
hai_status hai_gguf_writer_set_str(hai_gguf_writer *w, const char *key, const char *v, hai_error *err) {
    if (!v) return hai_fail(err, HAI_ERR_INVALID, "gguf writer: key '%s': NULL string", key ? key : "?");
    hai_gguf_value x = {.type = HAI_GGUF_STRING, .str = {v, strlen(v)}};
    return hai_gguf_writer_set(w, key, &x, err);
}
hai_status hai_gguf_writer_set_arr(hai_gguf_writer *w, const char *key, hai_gguf_type elem,
                                   const void *data, uint64_t n, hai_error *err) {
    if (!hai_gguf_scalar_size(elem))
        return hai_fail(err, HAI_ERR_INVALID, "gguf writer: key '%s': set_arr takes scalar element types", key ? key : "?");
    hai_gguf_value x = {.type = HAI_GGUF_ARRAY, .arr = {.type = elem, .n = n, .data = data}};
    return hai_gguf_writer_set(w, key, &x, err);
}
hai_status hai_gguf_writer_set_arr_str(hai_gguf_writer *w, const char *key, const char *const *strs,
                                       uint64_t n, hai_error *err) {
    if (n && !strs) return hai_fail(err, HAI_ERR_INVALID, "gguf writer: key '%s': NULL strings", key ? key : "?");
    if (n > SIZE_MAX / sizeof(hai_gguf_str)) return hai_fail(err, HAI_ERR_NOMEM, "gguf writer: out of memory");
    hai_gguf_str *s = malloc((n ? n : 1) * sizeof *s);
    if (!s) return hai_fail(err, HAI_ERR_NOMEM, "gguf writer: out of memory");
    for (uint64_t i = 0; i < n; i++) {
        s[i].data = strs[i];
        s[i].size = strs[i] ? strlen(strs[i]) : 0;
    }
    hai_gguf_value x = {.type = HAI_GGUF_ARRAY, .arr = {.type = HAI_GGUF_STRING, .n = n, .strs = s}};
    hai_status st = hai_gguf_writer_set(w, key, &x, err);
    free(s);
    return st;
}

/* ---- tensors ------------------------------------------------------------------------------ */

hai_status hai_gguf_writer_add_tensor(hai_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                                      const int64_t *ne, const void *data, hai_error *err) {
    if (!w || !name || !ne) return hai_fail(err, HAI_ERR_INVALID, "gguf writer: NULL argument");
    if (w->f) return hai_fail(err, HAI_ERR_INVALID, "gguf writer: tensors are fixed once writing has begun");
    size_t nl = strlen(name);
    if (nl == 0 || nl > WRITER_MAX_NAME)
        return hai_fail(err, HAI_ERR_INVALID, "gguf writer: tensor name '%s' must be 1..%d bytes", name, WRITER_MAX_NAME);
    if (!hai_type_traits_get(type)) return hai_fail(err, HAI_ERR_INVALID, "gguf writer: tensor '%s': unknown type id %u", name, type);
    if (n_dims < 1 || n_dims > 4) return hai_fail(err, HAI_ERR_INVALID, "gguf writer: tensor '%s': n_dims %u (must be 1..4)", name, n_dims);
    uint64_t size = hai_tensor_bytes(type, n_dims, ne);
    if (size == 0)
        return hai_fail(err, HAI_ERR_INVALID, "gguf writer: tensor '%s': bad shape for type %s (dims must be positive, ne[0] a multiple of %lld)",
                        name, hai_type_name(type), (long long)hai_type_block_size(type));
    for (size_t i = 0; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i].name, name) == 0)
            return hai_fail(err, HAI_ERR_INVALID, "gguf writer: duplicate tensor name '%s'", name);
    uint64_t padded, total;
    if (!hai_align_up_u64(size, w->alignment, &padded) || !hai_add_u64(w->data_size, padded, &total))
        return hai_fail(err, HAI_ERR_INVALID, "gguf writer: tensor '%s': size overflows", name);
    if (w->n_tensors == w->cap_tensors) {
        size_t cap = w->cap_tensors ? 2 * w->cap_tensors : 64;
        wtensor *p = realloc(w->tensors, cap * sizeof *p);
        if (!p) return hai_fail(err, HAI_ERR_NOMEM, "gguf writer: out of memory");
        w->tensors = p;
        w->cap_tensors = cap;
    }
    char *nm = strdup(name);
    if (!nm) return hai_fail(err, HAI_ERR_NOMEM, "gguf writer: out of memory");
    wtensor *t = &w->tensors[w->n_tensors++];
    *t = (wtensor){.name = nm, .type = type, .n_dims = n_dims, .size = size, .offset = w->data_size, .data = data};
    for (int d = 0; d < 4; d++) t->ne[d] = d < (int)n_dims ? ne[d] : 1;
    w->data_size = total;
    return HAI_OK;
}

/* ---- output ------------------------------------------------------------------------------- */

static hai_status io_fail(hai_gguf_writer *w, hai_error *err) {
    return hai_fail(err, HAI_ERR_IO, "gguf writer: %s: %s", w->tmp_path ? w->tmp_path : "?", strerror(errno));
}

static bool write_zeros(FILE *f, uint64_t n) {
    static const uint8_t zeros[256];
    while (n) {
        size_t k = n < sizeof zeros ? (size_t)n : sizeof zeros;
        if (fwrite(zeros, 1, k, f) != k) return false;
        n -= k;
    }
    return true;
}

hai_status hai_gguf_writer_begin(hai_gguf_writer *w, const char *path, hai_error *err) {
    if (!w || !path) return hai_fail(err, HAI_ERR_INVALID, "gguf writer: NULL argument");
    if (w->f) return hai_fail(err, HAI_ERR_INVALID, "gguf writer: already writing");
    size_t pl = strlen(path);
    free(w->path);
    free(w->tmp_path);
    w->path = strdup(path);
    w->tmp_path = malloc(pl + 5);
    if (!w->path || !w->tmp_path) return hai_fail(err, HAI_ERR_NOMEM, "gguf writer: out of memory");
    memcpy(w->tmp_path, path, pl);
    memcpy(w->tmp_path + pl, ".tmp", 5);

    buf h = {0};
    bool ok = buf_put(&h, "GGUF", 4) && put_u32(&h, w->version) && put_u64(&h, w->n_tensors) &&
              put_u64(&h, w->n_kv);
    for (size_t i = 0; ok && i < w->n_kv; i++)
        ok = put_str(&h, w->kvs[i].key, strlen(w->kvs[i].key)) && buf_put(&h, w->kvs[i].enc.p, w->kvs[i].enc.n);
    for (size_t i = 0; ok && i < w->n_tensors; i++) {
        const wtensor *t = &w->tensors[i];
        ok = put_str(&h, t->name, strlen(t->name)) && put_u32(&h, t->n_dims);
        for (uint32_t d = 0; ok && d < t->n_dims; d++) ok = put_u64(&h, (uint64_t)t->ne[d]);
        ok = ok && put_u32(&h, t->type) && put_u64(&h, t->offset);
    }
    if (!ok) {
        text_free(&h);
        return hai_fail(err, HAI_ERR_NOMEM, "gguf writer: out of memory");
    }
    uint64_t pad = (w->alignment - h.n % w->alignment) % w->alignment;
    w->f = fopen(w->tmp_path, "wb");
    if (!w->f) {
        text_free(&h);
        return io_fail(w, err);
    }
    ok = fwrite(h.p, 1, h.n, w->f) == h.n && write_zeros(w->f, pad);
    text_free(&h);
    w->next = 0;
    if (!ok) return io_fail(w, err);
    return HAI_OK;
}

hai_status hai_gguf_writer_write_data(hai_gguf_writer *w, const void *data, uint64_t size, hai_error *err) {
    if (!w || !w->f) return hai_fail(err, HAI_ERR_INVALID, "gguf writer: write_data before begin");
    if (w->next >= w->n_tensors) return hai_fail(err, HAI_ERR_INVALID, "gguf writer: more tensor data than tensors");
    const wtensor *t = &w->tensors[w->next];
    if (size != t->size || !data || w->part)
        return hai_fail(err, HAI_ERR_INVALID, "gguf writer: tensor '%s' needs %llu bytes, got %llu", t->name,
                        (unsigned long long)(t->size - w->part), (unsigned long long)size);
    return hai_gguf_writer_write_part(w, data, size, err);
}

hai_status hai_gguf_writer_write_part(hai_gguf_writer *w, const void *data, uint64_t size, hai_error *err) {
    if (!w || !w->f) return hai_fail(err, HAI_ERR_INVALID, "gguf writer: write_part before begin");
    if (w->next >= w->n_tensors) return hai_fail(err, HAI_ERR_INVALID, "gguf writer: more tensor data than tensors");
    const wtensor *t = &w->tensors[w->next];
    if (!data || size > t->size - w->part)
        return hai_fail(err, HAI_ERR_INVALID, "gguf writer: tensor '%s' has %llu bytes left, got %llu", t->name,
                        (unsigned long long)(t->size - w->part), (unsigned long long)size);
    if (fwrite(data, 1, (size_t)size, w->f) != size) return io_fail(w, err);
    w->part += size;
    if (w->part == t->size) { /* complete: pad to the alignment, on to the next tensor */
        uint64_t pad = (w->alignment - t->size % w->alignment) % w->alignment;
        if (!write_zeros(w->f, pad)) return io_fail(w, err);
        w->part = 0;
        w->next++;
    }
    return HAI_OK;
}

hai_status hai_gguf_writer_finish(hai_gguf_writer *w, hai_error *err) {
    if (!w || !w->f) return hai_fail(err, HAI_ERR_INVALID, "gguf writer: finish before begin");
    if (w->next != w->n_tensors)
        return hai_fail(err, HAI_ERR_INVALID, "gguf writer: %zu of %zu tensors written", w->next, w->n_tensors);
    FILE *f = w->f;
    w->f = NULL;
    bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(w->tmp_path, w->path) != 0) {
        hai_status st = io_fail(w, err);
        unlink(w->tmp_path);
        return st;
    }
    return HAI_OK;
}

hai_status hai_gguf_writer_write(hai_gguf_writer *w, const char *path, hai_error *err) {
    if (!w) return hai_fail(err, HAI_ERR_INVALID, "gguf writer: NULL argument");
    for (size_t i = 0; i < w->n_tensors; i++)
        if (!w->tensors[i].data)
            return hai_fail(err, HAI_ERR_INVALID, "gguf writer: tensor '%s' has no data (stream it with begin/write_data)",
                            w->tensors[i].name);
    hai_status st = hai_gguf_writer_begin(w, path, err);
    for (size_t i = 0; !st && i < w->n_tensors; i++)
        st = hai_gguf_writer_write_data(w, w->tensors[i].data, w->tensors[i].size, err);
    if (!st) st = hai_gguf_writer_finish(w, err);
    if (st && w->f) {
        fclose(w->f);
        w->f = NULL;
        unlink(w->tmp_path);
    }
    return st;
}
