/* GGUF reader: maps a model file read-only and validates every structure in it before handing
 * out typed views. The file is untrusted: each size is checked against the bytes that exist. */
#include "gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "quant/quant.h"

/* GGUF layout (v2 and v3; all integers little-endian):
 *
 *   [0..4)    magic "GGUF"
 *   [4..8)    u32 version: 2 or 3 (v1 used 32-bit counts; not read)
 *   [8..16)   u64 n_tensors
 *   [16..24)  u64 n_kv
 *   n_kv      x { string key; u32 value_type; value }
 *   n_tensors x { string name; u32 n_dims; u64 ne[n_dims]; u32 type; u64 offset }
 *   zero padding up to a multiple of general.alignment (u32, default 32)
 *   tensor data: tensor i at data_start + offset_i; offsets are multiples of the alignment
 *
 *   string = u64 n + n bytes (no terminator)
 *   value  = u8/i8/u16/i16/u32/i32/f32/bool(1 byte)/u64/i64/f64, a string,
 *            or an array: u32 element type, u64 count, count elements (arrays may nest)
 */

#define GGUF_MAGIC "GGUF"
#define GGUF_HEADER_SIZE 24
#define GGUF_MAX_DEPTH 4            /* arrays nested deeper than this are rejected */
#define GGUF_MAX_ALIGNMENT (1u << 16)
#define GGUF_MAX_NAME 256           /* tensor names (ggml itself allows 63 bytes) */
#define GGUF_MAX_KEY 65536

/* ---- an arena for everything the hai_gguf owns besides the mapping --------------------- */

typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char mem[];
} chunk;

static void *arena_alloc(chunk **arena, size_t size) {
    size = (size + 15) & ~(size_t)15;
    chunk *c = *arena;
    if (!c || c->cap - c->used < size) {
        size_t cap = size > 65536 ? size : 65536;
        c = malloc(sizeof *c + cap);
        if (!c) return NULL;
        c->next = *arena;
        c->used = 0;
        c->cap = cap;
        *arena = c;
    }
    void *p = c->mem + c->used;
    c->used += size;
    return p;
}

static void arena_free(chunk *c) {
    while (c) {
        chunk *n = c->next;
        free(c);
        c = n;
    }
}

struct hai_gguf {
    const uint8_t *base;
    uint64_t size;
    bool mapped;
    uint32_t version;
    uint32_t alignment;
    uint64_t data_offset;
    hai_gguf_kv *kvs;
    int64_t n_kv;
    hai_gguf_tensor *tensors;
    int64_t n_tensors;
    const hai_gguf_kv **kv_by_key;         /* sorted by key, for lookup */
    const hai_gguf_tensor **tensor_by_name; /* sorted by name */
    chunk *arena;
};

/* ---- a bounds-checked cursor over the file ---------------------------------------------- */

typedef struct cursor {
    const uint8_t *base;
    uint64_t size, pos;
    hai_error *err;
    chunk **arena;
} cursor;

static uint64_t left(const cursor *c) { return c->size - c->pos; }

static hai_status need(cursor *c, uint64_t n, const char *what) {
    if (n > left(c))
        return hai_fail(c->err, HAI_ERR_FORMAT,
                        "gguf: truncated file: %s needs %llu bytes at offset %llu but only %llu remain",
                        what, (unsigned long long)n, (unsigned long long)c->pos,
                        (unsigned long long)left(c));
    return HAI_OK;
}

static hai_status rd(cursor *c, void *dst, uint64_t n, const char *what) {
    hai_status st = need(c, n, what);
    if (st) return st;
    memcpy(dst, c->base + c->pos, n);
    c->pos += n;
    return HAI_OK;
}

static hai_status rd_u32(cursor *c, uint32_t *v, const char *what) { return rd(c, v, 4, what); }
static hai_status rd_u64(cursor *c, uint64_t *v, const char *what) { return rd(c, v, 8, what); }

static hai_status rd_str(cursor *c, hai_gguf_str *s, const char *what) {
    uint64_t n;
    hai_status st = rd_u64(c, &n, what);
    if (st) return st;
    if (n > left(c))
        return hai_fail(c->err, HAI_ERR_FORMAT,
                        "gguf: %s: string length %llu at offset %llu is larger than the %llu bytes left in the file",
                        what, (unsigned long long)n, (unsigned long long)(c->pos - 8),
                        (unsigned long long)left(c));
    s->data = (const char *)c->base + c->pos;
    s->size = n;
    c->pos += n;
    return HAI_OK;
}

/* Copies a key or name into the arena as a C string; rejects empty names and embedded NULs. */
static hai_status dup_name(cursor *c, hai_gguf_str s, uint64_t max, const char *what,
                           const char **out) {
    if (s.size == 0) return hai_fail(c->err, HAI_ERR_FORMAT, "gguf: %s is empty", what);
    if (s.size > max)
        return hai_fail(c->err, HAI_ERR_FORMAT, "gguf: %s is %llu bytes long (limit %llu)", what,
                        (unsigned long long)s.size, (unsigned long long)max);
    if (memchr(s.data, 0, s.size))
        return hai_fail(c->err, HAI_ERR_FORMAT, "gguf: %s '%.*s' contains a NUL byte", what,
                        (int)strnlen(s.data, s.size), s.data);
    char *p = arena_alloc(c->arena, s.size + 1);
    if (!p) return hai_fail(c->err, HAI_ERR_NOMEM, "gguf: out of memory");
    memcpy(p, s.data, s.size);
    p[s.size] = '\0';
    *out = p;
    return HAI_OK;
}

/* Bytes of a scalar value type in the file; 0 for string/array/unknown. */
static uint64_t scalar_size(uint32_t t) {
    switch (t) {
    case HAI_GGUF_UINT8: case HAI_GGUF_INT8: case HAI_GGUF_BOOL: return 1;
    case HAI_GGUF_UINT16: case HAI_GGUF_INT16: return 2;
    case HAI_GGUF_UINT32: case HAI_GGUF_INT32: case HAI_GGUF_FLOAT32: return 4;
    case HAI_GGUF_UINT64: case HAI_GGUF_INT64: case HAI_GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

uint64_t hai_gguf_scalar_size(uint32_t type) { return scalar_size(type); }

const char *hai_gguf_type_name(uint32_t type) {
    static const char *names[HAI_GGUF_TYPE_COUNT] = {"u8",  "i8",     "u16",   "i16", "u32",
                                                     "i32", "f32",    "bool",  "string",
                                                     "array", "u64",  "i64",   "f64"};
    return type < HAI_GGUF_TYPE_COUNT ? names[type] : NULL;
}

/* Widens the scalar at p (of type t) into v. */
void hai_gguf_scalar_load(hai_gguf_value *v, uint32_t t, const void *p) {
    v->type = (hai_gguf_type)t;
    switch (t) {
    case HAI_GGUF_UINT8: { uint8_t x; memcpy(&x, p, 1); v->u64 = x; break; }
    case HAI_GGUF_INT8: { int8_t x; memcpy(&x, p, 1); v->i64 = x; break; }
    case HAI_GGUF_UINT16: { uint16_t x; memcpy(&x, p, 2); v->u64 = x; break; }
    case HAI_GGUF_INT16: { int16_t x; memcpy(&x, p, 2); v->i64 = x; break; }
    case HAI_GGUF_UINT32: { uint32_t x; memcpy(&x, p, 4); v->u64 = x; break; }
    case HAI_GGUF_INT32: { int32_t x; memcpy(&x, p, 4); v->i64 = x; break; }
    case HAI_GGUF_FLOAT32: { float x; memcpy(&x, p, 4); v->f64 = x; break; }
    case HAI_GGUF_BOOL: { uint8_t x; memcpy(&x, p, 1); v->b = x != 0; break; }
    case HAI_GGUF_UINT64: { uint64_t x; memcpy(&x, p, 8); v->u64 = x; break; }
    case HAI_GGUF_INT64: { int64_t x; memcpy(&x, p, 8); v->i64 = x; break; }
    case HAI_GGUF_FLOAT64: { double x; memcpy(&x, p, 8); v->f64 = x; break; }
    default: break;
    }
}

static hai_status rd_value(cursor *c, uint32_t type, hai_gguf_value *v, int depth, const char *key);

static hai_status rd_array(cursor *c, hai_gguf_value *v, int depth, const char *key) {
    uint32_t et;
    uint64_t n, bytes;
    hai_status st;
    if (depth >= GGUF_MAX_DEPTH)
        return hai_fail(c->err, HAI_ERR_FORMAT,
                        "gguf: key '%s': arrays nested more than %d deep", key, GGUF_MAX_DEPTH);
    if ((st = rd_u32(c, &et, "array element type")) || (st = rd_u64(c, &n, "array count")))
        return st;
    if (et >= HAI_GGUF_TYPE_COUNT)
        return hai_fail(c->err, HAI_ERR_FORMAT, "gguf: key '%s': unknown array element type %u",
                        key, et);
    v->type = HAI_GGUF_ARRAY;
    v->arr.type = (hai_gguf_type)et;
    v->arr.n = n;
    v->arr.data = NULL;
    v->arr.strs = NULL;
    v->arr.items = NULL;
    /* the smallest encoding of one element bounds how many can fit in what is left */
    uint64_t min_elem = scalar_size(et) ? scalar_size(et) : (et == HAI_GGUF_STRING ? 8 : 12);
    if (!hai_mul_u64(n, min_elem, &bytes) || bytes > left(c))
        return hai_fail(c->err, HAI_ERR_FORMAT,
                        "gguf: key '%s': array of %llu %s elements is larger than the %llu bytes left in the file",
                        key, (unsigned long long)n, hai_gguf_type_name(et),
                        (unsigned long long)left(c));
    if (scalar_size(et)) {
        v->arr.data = c->base + c->pos;
        c->pos += bytes;
        return HAI_OK;
    }
    if (n == 0) return HAI_OK;
    if (et == HAI_GGUF_STRING) {
        hai_gguf_str *strs = arena_alloc(c->arena, n * sizeof *strs); /* n*8 <= file size */
        if (!strs) return hai_fail(c->err, HAI_ERR_NOMEM, "gguf: out of memory for key '%s'", key);
        for (uint64_t i = 0; i < n; i++)
            if ((st = rd_str(c, &strs[i], key))) return st;
        v->arr.strs = strs;
        return HAI_OK;
    }
    hai_gguf_value *items = arena_alloc(c->arena, n * sizeof *items);
    if (!items) return hai_fail(c->err, HAI_ERR_NOMEM, "gguf: out of memory for key '%s'", key);
    for (uint64_t i = 0; i < n; i++)
        if ((st = rd_value(c, HAI_GGUF_ARRAY, &items[i], depth + 1, key))) return st;
    v->arr.items = items;
    return HAI_OK;
}

static hai_status rd_value(cursor *c, uint32_t type, hai_gguf_value *v, int depth, const char *key) {
    if (type == HAI_GGUF_STRING) {
        v->type = HAI_GGUF_STRING;
        return rd_str(c, &v->str, key);
    }
    if (type == HAI_GGUF_ARRAY) return rd_array(c, v, depth, key);
    uint64_t sz = scalar_size(type);
    if (!sz) return hai_fail(c->err, HAI_ERR_FORMAT, "gguf: key '%s' has unknown value type %u", key, type);
    hai_status st = need(c, sz, key);
    if (st) return st;
    hai_gguf_scalar_load(v, type, c->base + c->pos);
    c->pos += sz;
    return HAI_OK;
}

/* ---- validation of well-known keys -------------------------------------------------------- */

static bool is_int(hai_gguf_type t) {
    return t <= HAI_GGUF_INT32 || t == HAI_GGUF_UINT64 || t == HAI_GGUF_INT64;
}
static bool is_signed(hai_gguf_type t) {
    return t == HAI_GGUF_INT8 || t == HAI_GGUF_INT16 || t == HAI_GGUF_INT32 || t == HAI_GGUF_INT64;
}

/* What a reader of these keys relies on. 'I' = any integer type, 'S' = string, 'B' = bool,
 * 'F' = f32 or f64, 'A' + element type = array of exactly that element type. */
static const struct { const char *key; char kind; hai_gguf_type elem; } known_keys[] = {
    {"general.architecture", 'S', 0},
    {"general.name", 'S', 0},
    {"general.file_type", 'I', 0},
    {"general.quantization_version", 'I', 0},
    {"tokenizer.ggml.model", 'S', 0},
    {"tokenizer.ggml.pre", 'S', 0},
    {"tokenizer.ggml.tokens", 'A', HAI_GGUF_STRING},
    {"tokenizer.ggml.merges", 'A', HAI_GGUF_STRING},
    {"tokenizer.ggml.scores", 'A', HAI_GGUF_FLOAT32},
    {"tokenizer.ggml.token_type", 'A', HAI_GGUF_INT32},
    {"tokenizer.ggml.add_bos_token", 'B', 0},
    {"tokenizer.ggml.add_eos_token", 'B', 0},
    {"tokenizer.ggml.add_space_prefix", 'B', 0},
    {"tokenizer.chat_template", 'S', 0},
};

static hai_status describe_type(const hai_gguf_value *v, char *buf, size_t n) {
    if (v->type == HAI_GGUF_ARRAY)
        snprintf(buf, n, "array of %s", hai_gguf_type_name(v->arr.type) ? hai_gguf_type_name(v->arr.type) : "?");
    else
        snprintf(buf, n, "%s", hai_gguf_type_name(v->type) ? hai_gguf_type_name(v->type) : "?");
    return HAI_OK;
}

static hai_status check_known_keys(hai_gguf *g, hai_error *err) {
    char got[64];
    for (size_t i = 0; i < sizeof known_keys / sizeof known_keys[0]; i++) {
        const hai_gguf_value *v = hai_gguf_get(g, known_keys[i].key);
        if (!v) continue;
        bool ok;
        const char *want;
        switch (known_keys[i].kind) {
        case 'S': ok = v->type == HAI_GGUF_STRING; want = "a string"; break;
        case 'B': ok = v->type == HAI_GGUF_BOOL; want = "a bool"; break;
        case 'I': ok = is_int(v->type); want = "an integer"; break;
        default:
            ok = v->type == HAI_GGUF_ARRAY && v->arr.type == known_keys[i].elem;
            want = known_keys[i].elem == HAI_GGUF_STRING    ? "an array of string"
                   : known_keys[i].elem == HAI_GGUF_FLOAT32 ? "an array of f32"
                                                            : "an array of i32";
            break;
        }
        if (!ok) {
            describe_type(v, got, sizeof got);
            return hai_fail(err, HAI_ERR_FORMAT, "gguf: key '%s' must be %s, but is %s",
                            known_keys[i].key, want, got);
        }
    }
    /* per-token arrays must match the vocabulary, and token ids must lie inside it */
    const hai_gguf_value *tokens = hai_gguf_get(g, "tokenizer.ggml.tokens");
    const char *per_token[] = {"tokenizer.ggml.scores", "tokenizer.ggml.token_type"};
    for (int i = 0; i < 2 && tokens; i++) {
        const hai_gguf_value *v = hai_gguf_get(g, per_token[i]);
        if (v && v->arr.n != tokens->arr.n)
            return hai_fail(err, HAI_ERR_FORMAT, "gguf: key '%s' has %llu entries but the vocabulary has %llu tokens",
                            per_token[i], (unsigned long long)v->arr.n, (unsigned long long)tokens->arr.n);
    }
    static const char prefix[] = "tokenizer.ggml.", suffix[] = "_token_id";
    for (int64_t i = 0; i < g->n_kv; i++) {
        const hai_gguf_kv *kv = &g->kvs[i];
        size_t kl = strlen(kv->key);
        if (kl <= sizeof prefix + sizeof suffix - 2 || strncmp(kv->key, prefix, sizeof prefix - 1) ||
            strcmp(kv->key + kl - (sizeof suffix - 1), suffix))
            continue;
        const hai_gguf_value *v = &kv->value;
        if (!is_int(v->type)) {
            describe_type(v, got, sizeof got);
            return hai_fail(err, HAI_ERR_FORMAT, "gguf: key '%s' must be an integer token id, but is %s",
                            kv->key, got);
        }
        if (is_signed(v->type) && v->i64 < 0)
            return hai_fail(err, HAI_ERR_FORMAT, "gguf: key '%s' is a negative token id (%lld)",
                            kv->key, (long long)v->i64);
        if (tokens && v->u64 >= tokens->arr.n)
            return hai_fail(err, HAI_ERR_FORMAT,
                            "gguf: key '%s' = %llu is outside the vocabulary of %llu tokens", kv->key,
                            (unsigned long long)v->u64, (unsigned long long)tokens->arr.n);
    }
    return HAI_OK;
}

/* ---- the parse ------------------------------------------------------------------------------ */

static int cmp_kv(const void *a, const void *b) {
    return strcmp((*(const hai_gguf_kv *const *)a)->key, (*(const hai_gguf_kv *const *)b)->key);
}
static int cmp_tensor_name(const void *a, const void *b) {
    return strcmp((*(const hai_gguf_tensor *const *)a)->name, (*(const hai_gguf_tensor *const *)b)->name);
}
static int cmp_tensor_offset(const void *a, const void *b) {
    uint64_t x = (*(const hai_gguf_tensor *const *)a)->offset;
    uint64_t y = (*(const hai_gguf_tensor *const *)b)->offset;
    return x < y ? -1 : x > y;
}

static hai_status parse_header(cursor *c, hai_gguf *g, uint64_t *n_tensors, uint64_t *n_kv) {
    hai_error *err = c->err;
    if (c->size < 4 && memcmp(c->base, GGUF_MAGIC, c->size) == 0)
        return hai_fail(err, HAI_ERR_FORMAT, "gguf: truncated header: %llu bytes, need %d",
                        (unsigned long long)c->size, GGUF_HEADER_SIZE);
    if (c->size < 4 || memcmp(c->base, GGUF_MAGIC, 4) != 0) {
        if (c->size >= 4 && memcmp(c->base, "FUGG", 4) == 0)
            return hai_fail(err, HAI_ERR_FORMAT, "gguf: byte-swapped magic: a big-endian GGUF file, which hai does not read");
        return hai_fail(err, HAI_ERR_FORMAT, "gguf: not a GGUF file (bad magic)");
    }
    if (c->size < GGUF_HEADER_SIZE)
        return hai_fail(err, HAI_ERR_FORMAT, "gguf: truncated header: %llu bytes, need %d",
                        (unsigned long long)c->size, GGUF_HEADER_SIZE);
    c->pos = 4;
    uint32_t ver;
    rd_u32(c, &ver, "version");
    if ((ver & 0xFFFF) == 0 && ver != 0) {
        uint32_t sw = __builtin_bswap32(ver);
        if (sw >= 1 && sw <= 3)
            return hai_fail(err, HAI_ERR_FORMAT, "gguf: big-endian GGUF file (version %u byte-swapped); hai reads little-endian files only", sw);
    }
    if (ver == 1) return hai_fail(err, HAI_ERR_UNSUPPORTED, "gguf: version 1 files are not supported (convert to v3)");
    if (ver != 2 && ver != 3) return hai_fail(err, HAI_ERR_FORMAT, "gguf: unknown version %u", ver);
    g->version = ver;
    rd_u64(c, n_tensors, "tensor count");
    rd_u64(c, n_kv, "kv count");
    /* each kv needs at least 8+1+4+1 bytes and each tensor info at least 8+1+4+8+4+8 */
    uint64_t need_bytes, t;
    if (!hai_mul_u64(*n_kv, 14, &need_bytes) || !hai_mul_u64(*n_tensors, 33, &t) ||
        !hai_add_u64(need_bytes, t, &need_bytes) || need_bytes > left(c))
        return hai_fail(err, HAI_ERR_FORMAT,
                        "gguf: truncated or corrupt header: it claims %llu tensors and %llu keys, more than the %llu-byte file can hold",
                        (unsigned long long)*n_tensors, (unsigned long long)*n_kv,
                        (unsigned long long)c->size);
    return HAI_OK;
}

static hai_status parse_kvs(cursor *c, hai_gguf *g, uint64_t n_kv) {
    hai_status st;
    g->kvs = arena_alloc(c->arena, (n_kv ? n_kv : 1) * sizeof *g->kvs);
    g->kv_by_key = arena_alloc(c->arena, (n_kv ? n_kv : 1) * sizeof *g->kv_by_key);
    if (!g->kvs || !g->kv_by_key) return hai_fail(c->err, HAI_ERR_NOMEM, "gguf: out of memory");
    for (uint64_t i = 0; i < n_kv; i++) {
        hai_gguf_kv *kv = &g->kvs[i];
        hai_gguf_str key;
        uint32_t type;
        char what[48];
        snprintf(what, sizeof what, "key #%llu", (unsigned long long)i);
        if ((st = rd_str(c, &key, what)) || (st = dup_name(c, key, GGUF_MAX_KEY, what, &kv->key)) ||
            (st = rd_u32(c, &type, kv->key)))
            return st;
        if (type >= HAI_GGUF_TYPE_COUNT)
            return hai_fail(c->err, HAI_ERR_FORMAT, "gguf: key '%s' has unknown value type %u", kv->key, type);
        if ((st = rd_value(c, type, &kv->value, 0, kv->key))) return st;
        g->kv_by_key[i] = kv;
        g->n_kv = (int64_t)i + 1;
    }
    qsort(g->kv_by_key, n_kv, sizeof *g->kv_by_key, cmp_kv);
    for (uint64_t i = 1; i < n_kv; i++)
        if (strcmp(g->kv_by_key[i - 1]->key, g->kv_by_key[i]->key) == 0)
            return hai_fail(c->err, HAI_ERR_FORMAT, "gguf: duplicate key '%s'", g->kv_by_key[i]->key);
    return HAI_OK;
}

static hai_status parse_alignment(hai_gguf *g, hai_error *err) {
    g->alignment = 32;
    const hai_gguf_value *v = hai_gguf_get(g, "general.alignment");
    if (!v) return HAI_OK;
    if (v->type != HAI_GGUF_UINT32)
        return hai_fail(err, HAI_ERR_FORMAT, "gguf: general.alignment must be a u32, but is %s",
                        v->type == HAI_GGUF_ARRAY ? "an array" : hai_gguf_type_name(v->type));
    if (v->u64 == 0 || (v->u64 & (v->u64 - 1)) || v->u64 > GGUF_MAX_ALIGNMENT)
        return hai_fail(err, HAI_ERR_FORMAT,
                        "gguf: general.alignment %llu is invalid (must be a power of two from 1 to %u)",
                        (unsigned long long)v->u64, GGUF_MAX_ALIGNMENT);
    g->alignment = (uint32_t)v->u64;
    return HAI_OK;
}

static hai_status parse_tensor_infos(cursor *c, hai_gguf *g, uint64_t n) {
    hai_status st;
    g->tensors = arena_alloc(c->arena, (n ? n : 1) * sizeof *g->tensors);
    g->tensor_by_name = arena_alloc(c->arena, (n ? n : 1) * sizeof *g->tensor_by_name);
    if (!g->tensors || !g->tensor_by_name) return hai_fail(c->err, HAI_ERR_NOMEM, "gguf: out of memory");
    for (uint64_t i = 0; i < n; i++) {
        hai_gguf_tensor *t = &g->tensors[i];
        hai_gguf_str name;
        char what[48];
        snprintf(what, sizeof what, "tensor #%llu name", (unsigned long long)i);
        if ((st = rd_str(c, &name, what)) || (st = dup_name(c, name, GGUF_MAX_NAME, what, &t->name)) ||
            (st = rd_u32(c, &t->n_dims, t->name)))
            return st;
        if (t->n_dims < 1 || t->n_dims > 4)
            return hai_fail(c->err, HAI_ERR_FORMAT, "gguf: tensor '%s' has n_dims %u (must be 1..4)",
                            t->name, t->n_dims);
        uint64_t count = 1;
        for (int d = 0; d < 4; d++) t->ne[d] = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) {
            uint64_t ne;
            if ((st = rd_u64(c, &ne, t->name))) return st;
            if (ne == 0 || ne > (uint64_t)INT64_MAX)
                return hai_fail(c->err, HAI_ERR_FORMAT, "gguf: tensor '%s' dimension %u is %lld (must be positive)",
                                t->name, d, (long long)ne);
            if (!hai_mul_u64(count, ne, &count) || count > (uint64_t)INT64_MAX)
                return hai_fail(c->err, HAI_ERR_FORMAT, "gguf: tensor '%s': the product of its dimensions overflows",
                                t->name);
            t->ne[d] = (int64_t)ne;
        }
        t->n_elements = (int64_t)count;
        if ((st = rd_u32(c, &t->type, t->name)) || (st = rd_u64(c, &t->offset, t->name))) return st;
        const hai_type_traits *tr = hai_type_traits_get(t->type);
        if (!tr) return hai_fail(c->err, HAI_ERR_FORMAT, "gguf: tensor '%s' has unknown type id %u", t->name, t->type);
        if (t->ne[0] % tr->block_size)
            return hai_fail(c->err, HAI_ERR_FORMAT, "gguf: tensor '%s': row length %lld is not a multiple of the %s block size %lld",
                            t->name, (long long)t->ne[0], tr->name, (long long)tr->block_size);
        t->size = hai_tensor_bytes(t->type, t->n_dims, t->ne);
        if (t->size == 0)
            return hai_fail(c->err, HAI_ERR_FORMAT, "gguf: tensor '%s': its byte size overflows", t->name);
        uint64_t padded;
        if (!hai_align_up_u64(t->size, g->alignment, &padded))
            return hai_fail(c->err, HAI_ERR_FORMAT, "gguf: tensor '%s': byte size %llu wraps when padded to the alignment %u",
                            t->name, (unsigned long long)t->size, g->alignment);
        if (t->offset % g->alignment)
            return hai_fail(c->err, HAI_ERR_FORMAT, "gguf: tensor '%s': data offset %llu is not a multiple of the alignment %u",
                            t->name, (unsigned long long)t->offset, g->alignment);
        g->tensor_by_name[i] = t;
        g->n_tensors = (int64_t)i + 1;
    }
    qsort(g->tensor_by_name, n, sizeof *g->tensor_by_name, cmp_tensor_name);
    for (uint64_t i = 1; i < n; i++)
        if (strcmp(g->tensor_by_name[i - 1]->name, g->tensor_by_name[i]->name) == 0)
            return hai_fail(c->err, HAI_ERR_FORMAT, "gguf: duplicate tensor name '%s'", g->tensor_by_name[i]->name);
    return HAI_OK;
}

static hai_status place_tensor_data(cursor *c, hai_gguf *g) {
    uint64_t start;
    if (!hai_align_up_u64(c->pos, g->alignment, &start))
        return hai_fail(c->err, HAI_ERR_FORMAT, "gguf: data section offset overflows");
    if (g->n_tensors == 0) { /* vocab-only files may end right after the header */
        g->data_offset = start < c->size ? start : c->size;
        return HAI_OK;
    }
    if (start > c->size)
        return hai_fail(c->err, HAI_ERR_FORMAT, "gguf: truncated file: tensor data should start at offset %llu but the file has %llu bytes",
                        (unsigned long long)start, (unsigned long long)c->size);
    g->data_offset = start;
    uint64_t data_size = c->size - start;
    const hai_gguf_tensor **by_off = malloc((size_t)g->n_tensors * sizeof *by_off);
    if (!by_off) return hai_fail(c->err, HAI_ERR_NOMEM, "gguf: out of memory");
    for (int64_t i = 0; i < g->n_tensors; i++) by_off[i] = &g->tensors[i];
    qsort(by_off, (size_t)g->n_tensors, sizeof *by_off, cmp_tensor_offset);
    hai_status st = HAI_OK;
    for (int64_t i = 0; i < g->n_tensors && !st; i++) {
        const hai_gguf_tensor *t = by_off[i];
        uint64_t end;
        if (!hai_add_u64(t->offset, t->size, &end) || end > data_size)
            st = hai_fail(c->err, HAI_ERR_FORMAT,
                          "gguf: tensor '%s': data [%llu, +%llu) lies outside the %llu bytes of tensor data in the file",
                          t->name, (unsigned long long)t->offset, (unsigned long long)t->size,
                          (unsigned long long)data_size);
        else if (i + 1 < g->n_tensors && end > by_off[i + 1]->offset)
            st = hai_fail(c->err, HAI_ERR_FORMAT, "gguf: tensors '%s' and '%s' overlap in the file",
                          t->name, by_off[i + 1]->name);
    }
    free(by_off);
    if (st) return st;
    for (int64_t i = 0; i < g->n_tensors; i++)
        g->tensors[i].data = c->base + start + g->tensors[i].offset;
    return HAI_OK;
}

static hai_status parse(hai_gguf *g, hai_error *err) {
    cursor c = {g->base, g->size, 0, err, &g->arena};
    uint64_t n_tensors = 0, n_kv = 0;
    hai_status st;
    if ((st = parse_header(&c, g, &n_tensors, &n_kv)) || (st = parse_kvs(&c, g, n_kv)) ||
        (st = parse_alignment(g, err)) || (st = check_known_keys(g, err)) ||
        (st = parse_tensor_infos(&c, g, n_tensors)) || (st = place_tensor_data(&c, g)))
        return st;
    return HAI_OK;
}

hai_status hai_gguf_open_buffer(const void *data, size_t size, hai_gguf **out, hai_error *err) {
    if (!out || (!data && size)) return hai_fail(err, HAI_ERR_INVALID, "gguf: NULL argument");
    *out = NULL;
    hai_gguf *g = calloc(1, sizeof *g);
    if (!g) return hai_fail(err, HAI_ERR_NOMEM, "gguf: out of memory");
    g->base = data;
    g->size = size;
    hai_status st = parse(g, err);
    if (st) {
        hai_gguf_free(g);
        return st;
    }
    *out = g;
    return HAI_OK;
}

hai_status hai_gguf_open(const char *path, hai_gguf **out, hai_error *err) {
    if (!path || !out) return hai_fail(err, HAI_ERR_INVALID, "gguf: NULL argument");
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return hai_fail(err, HAI_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return hai_fail(err, HAI_ERR_IO, "%s: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return hai_fail(err, HAI_ERR_IO, "%s: not a regular file", path);
    }
    if (sb.st_size < GGUF_HEADER_SIZE) {
        close(fd);
        return hai_fail(err, HAI_ERR_FORMAT, "%s: gguf: truncated header: %lld bytes, need %d", path,
                        (long long)sb.st_size, GGUF_HEADER_SIZE);
    }
    void *m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (m == MAP_FAILED) return hai_fail(err, HAI_ERR_IO, "%s: mmap: %s", path, strerror(e));
    hai_gguf *g = calloc(1, sizeof *g);
    if (!g) {
        munmap(m, (size_t)sb.st_size);
        return hai_fail(err, HAI_ERR_NOMEM, "gguf: out of memory");
    }
    g->base = m;
    g->size = (uint64_t)sb.st_size;
    g->mapped = true;
    hai_status st = parse(g, err);
    if (st) {
        hai_error_prefix(err, "%s", path);
        hai_gguf_free(g);
        return st;
    }
    *out = g;
    return HAI_OK;
}

void hai_gguf_free(hai_gguf *g) {
    if (!g) return;
    if (g->mapped) munmap((void *)g->base, (size_t)g->size);
    arena_free(g->arena);
    free(g);
}

/* ---- accessors ---------------------------------------------------------------------------- */

uint32_t hai_gguf_version(const hai_gguf *g) { return g->version; }
uint64_t hai_gguf_file_size(const hai_gguf *g) { return g->size; }
uint32_t hai_gguf_alignment(const hai_gguf *g) { return g->alignment; }
uint64_t hai_gguf_data_offset(const hai_gguf *g) { return g->data_offset; }
int64_t hai_gguf_n_kv(const hai_gguf *g) { return g->n_kv; }
int64_t hai_gguf_n_tensors(const hai_gguf *g) { return g->n_tensors; }

const hai_gguf_kv *hai_gguf_kv_at(const hai_gguf *g, int64_t i) {
    return i >= 0 && i < g->n_kv ? &g->kvs[i] : NULL;
}

const hai_gguf_tensor *hai_gguf_tensor_at(const hai_gguf *g, int64_t i) {
    return i >= 0 && i < g->n_tensors ? &g->tensors[i] : NULL;
}

const hai_gguf_value *hai_gguf_get(const hai_gguf *g, const char *key) {
    if (!g || !key) return NULL;
    hai_gguf_kv probe = {.key = key};
    const hai_gguf_kv *pp = &probe;
    const hai_gguf_kv **hit = bsearch(&pp, g->kv_by_key, (size_t)g->n_kv, sizeof *g->kv_by_key, cmp_kv);
    return hit ? &(*hit)->value : NULL;
}

const hai_gguf_tensor *hai_gguf_find_tensor(const hai_gguf *g, const char *name) {
    if (!g || !name) return NULL;
    hai_gguf_tensor probe = {.name = name};
    const hai_gguf_tensor *pp = &probe;
    const hai_gguf_tensor **hit =
        bsearch(&pp, g->tensor_by_name, (size_t)g->n_tensors, sizeof *g->tensor_by_name, cmp_tensor_name);
    return hit ? *hit : NULL;
}

static hai_status lookup(const hai_gguf *g, const char *key, const hai_gguf_value **v, hai_error *err) {
    *v = hai_gguf_get(g, key);
    if (!*v) return hai_fail(err, HAI_ERR_NOT_FOUND, "gguf: key '%s' not found", key);
    return HAI_OK;
}

static hai_status wrong_type(const char *key, const hai_gguf_value *v, const char *want, hai_error *err) {
    char got[64];
    describe_type(v, got, sizeof got);
    return hai_fail(err, HAI_ERR_FORMAT, "gguf: key '%s' must be %s, but is %s", key, want, got);
}

hai_status hai_gguf_get_i64(const hai_gguf *g, const char *key, int64_t *out, hai_error *err) {
    const hai_gguf_value *v;
    hai_status st = lookup(g, key, &v, err);
    if (st) return st;
    if (!is_int(v->type)) return wrong_type(key, v, "an integer", err);
    if (!is_signed(v->type) && v->u64 > (uint64_t)INT64_MAX)
        return hai_fail(err, HAI_ERR_FORMAT, "gguf: key '%s' = %llu is out of range", key, (unsigned long long)v->u64);
    *out = v->i64;
    return HAI_OK;
}

hai_status hai_gguf_get_u64(const hai_gguf *g, const char *key, uint64_t *out, hai_error *err) {
    const hai_gguf_value *v;
    hai_status st = lookup(g, key, &v, err);
    if (st) return st;
    if (!is_int(v->type)) return wrong_type(key, v, "an integer", err);
    if (is_signed(v->type) && v->i64 < 0)
        return hai_fail(err, HAI_ERR_FORMAT, "gguf: key '%s' = %lld is negative", key, (long long)v->i64);
    *out = v->u64;
    return HAI_OK;
}

hai_status hai_gguf_get_u32(const hai_gguf *g, const char *key, uint32_t *out, hai_error *err) {
    uint64_t u = 0;
    hai_status st = hai_gguf_get_u64(g, key, &u, err);
    if (st) return st;
    if (u > UINT32_MAX)
        return hai_fail(err, HAI_ERR_FORMAT, "gguf: key '%s' = %llu does not fit in 32 bits", key, (unsigned long long)u);
    *out = (uint32_t)u;
    return HAI_OK;
}

hai_status hai_gguf_get_f32(const hai_gguf *g, const char *key, float *out, hai_error *err) {
    const hai_gguf_value *v;
    hai_status st = lookup(g, key, &v, err);
    if (st) return st;
    if (v->type != HAI_GGUF_FLOAT32 && v->type != HAI_GGUF_FLOAT64) return wrong_type(key, v, "a float", err);
    *out = (float)v->f64;
    return HAI_OK;
}

hai_status hai_gguf_get_bool(const hai_gguf *g, const char *key, bool *out, hai_error *err) {
    const hai_gguf_value *v;
    hai_status st = lookup(g, key, &v, err);
    if (st) return st;
    if (v->type != HAI_GGUF_BOOL) return wrong_type(key, v, "a bool", err);
    *out = v->b;
    return HAI_OK;
}

hai_status hai_gguf_get_str(const hai_gguf *g, const char *key, hai_gguf_str *out, hai_error *err) {
    const hai_gguf_value *v;
    hai_status st = lookup(g, key, &v, err);
    if (st) return st;
    if (v->type != HAI_GGUF_STRING) return wrong_type(key, v, "a string", err);
    *out = v->str;
    return HAI_OK;
}

hai_status hai_gguf_get_arr(const hai_gguf *g, const char *key, hai_gguf_type elem,
                            const hai_gguf_value **out, hai_error *err) {
    const hai_gguf_value *v;
    hai_status st = lookup(g, key, &v, err);
    if (st) return st;
    if (v->type != HAI_GGUF_ARRAY || v->arr.type != elem) {
        char want[64];
        snprintf(want, sizeof want, "an array of %s", hai_gguf_type_name(elem) ? hai_gguf_type_name(elem) : "?");
        return wrong_type(key, v, want, err);
    }
    *out = v;
    return HAI_OK;
}

float hai_gguf_arr_f32(const hai_gguf_value *arr, uint64_t i) {
    float x;
    memcpy(&x, (const uint8_t *)arr->arr.data + 4 * i, 4);
    return x;
}

int32_t hai_gguf_arr_i32(const hai_gguf_value *arr, uint64_t i) {
    int32_t x;
    memcpy(&x, (const uint8_t *)arr->arr.data + 4 * i, 4);
    return x;
}

hai_status hai_gguf_arr_get(const hai_gguf_value *arr, uint64_t i, hai_gguf_value *out, hai_error *err) {
    if (!arr || !out || arr->type != HAI_GGUF_ARRAY)
        return hai_fail(err, HAI_ERR_INVALID, "gguf: arr_get on a value that is not an array");
    if (i >= arr->arr.n)
        return hai_fail(err, HAI_ERR_INVALID, "gguf: array index %llu out of range (%llu elements)",
                        (unsigned long long)i, (unsigned long long)arr->arr.n);
    uint64_t sz = scalar_size(arr->arr.type);
    if (sz) {
        hai_gguf_scalar_load(out, arr->arr.type, (const uint8_t *)arr->arr.data + i * sz);
    } else if (arr->arr.type == HAI_GGUF_STRING) {
        out->type = HAI_GGUF_STRING;
        out->str = arr->arr.strs[i];
    } else {
        *out = arr->arr.items[i];
    }
    return HAI_OK;
}
