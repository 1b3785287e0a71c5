/* hai: on-device LLM inference with a hybrid cloud router.
 * The one public header of libhai. Everything here is prefixed hai_; everything else is
 * internal. Conventions: functions return hai_status (0 = OK, negative = error class) and,
 * when given a hai_error, fill it with a message a person can read. Free functions accept NULL.
 * Nothing that comes from outside (a file, a request, a peer) can make the library exit. */
#ifndef HAI_H
#define HAI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this header (CMake's project version must match it: the build checks). */
#define HAI_VERSION_MAJOR 0
#define HAI_VERSION_MINOR 1
#define HAI_VERSION_PATCH 0
#define HAI_VERSION_STRING "0.1.0"
/* The version of the library linked in (an app built against one header may run with another
 * build of libhai). */
const char *hai_version(void);

/* Seconds on a monotonic clock (not wall time): what hai's own timings (prefill, first token,
 * tokens/s, deadlines) are measured with. */
double hai_time_s(void);

/* The process's resident memory now, in bytes (0 where the system does not say: /proc). */
uint64_t hai_rss_bytes(void);

/* ---------------------------------------------------------------------------------------
 * Status and errors
 * ------------------------------------------------------------------------------------- */

typedef enum hai_status {
    HAI_OK = 0,
    HAI_ERR_INVALID = -1,     /* a bad argument from the calling program */
    HAI_ERR_IO = -2,          /* open/read/write/mmap failed */
    HAI_ERR_FORMAT = -3,      /* input data is malformed, truncated or hostile */
    HAI_ERR_UNSUPPORTED = -4, /* well-formed, but hai does not support it (a type, an arch) */
    HAI_ERR_NOMEM = -5,       /* an allocation failed */
    HAI_ERR_NOT_FOUND = -6,   /* a key, tensor or file that was asked for does not exist */
    HAI_ERR_LIMIT = -7,       /* a configured limit was exceeded (sizes given in the message) */
    HAI_ERR_CANCELLED = -8,   /* the caller cancelled the operation */
    HAI_ERR_INTERNAL = -9,    /* a bug in hai; please report it */
} hai_status;

#define HAI_ERROR_MSG_SIZE 512

/* Filled by a failing call. Zero-initialise it; a successful call leaves it untouched. */
typedef struct hai_error {
    hai_status status;
    char msg[HAI_ERROR_MSG_SIZE];
} hai_error;

/* "OK", "INVALID", "IO", "FORMAT", ... (static string). */
const char *hai_status_name(hai_status status);

/* Progress of long operations (loading, quantizing, writing): done of total units, and what. */
typedef void (*hai_progress_fn)(void *user, int64_t done, int64_t total, const char *what);

/* ---------------------------------------------------------------------------------------
 * Tensor types (the ggml type ids used by GGUF files)
 * ------------------------------------------------------------------------------------- */

typedef enum hai_type {
    HAI_TYPE_F32 = 0,
    HAI_TYPE_F16 = 1,
    HAI_TYPE_Q4_0 = 2,
    HAI_TYPE_Q4_1 = 3,
    HAI_TYPE_Q5_0 = 6,
    HAI_TYPE_Q5_1 = 7,
    HAI_TYPE_Q8_0 = 8,
    HAI_TYPE_Q8_1 = 9,
    HAI_TYPE_Q2_K = 10,
    HAI_TYPE_Q3_K = 11,
    HAI_TYPE_Q4_K = 12,
    HAI_TYPE_Q5_K = 13,
    HAI_TYPE_Q6_K = 14,
    HAI_TYPE_Q8_K = 15,
    HAI_TYPE_IQ2_XXS = 16,
    HAI_TYPE_IQ2_XS = 17,
    HAI_TYPE_IQ3_XXS = 18,
    HAI_TYPE_IQ1_S = 19,
    HAI_TYPE_IQ4_NL = 20,
    HAI_TYPE_IQ3_S = 21,
    HAI_TYPE_IQ2_S = 22,
    HAI_TYPE_IQ4_XS = 23,
    HAI_TYPE_I8 = 24,
    HAI_TYPE_I16 = 25,
    HAI_TYPE_I32 = 26,
    HAI_TYPE_I64 = 27,
    HAI_TYPE_F64 = 28,
    HAI_TYPE_IQ1_M = 29,
    HAI_TYPE_BF16 = 30,
    HAI_TYPE_COUNT = 31, /* one past the largest id hai knows */
} hai_type;

/* Name of a type id ("Q4_K"), or NULL for an id hai does not know. */
const char *hai_type_name(uint32_t type);
/* Elements per block (1 for plain types), or 0 for an unknown id. */
int64_t hai_type_block_size(uint32_t type);
/* Bytes per block, or 0 for an unknown id. */
size_t hai_type_block_bytes(uint32_t type);
/* True when hai can dequantize (and so compute with) this type. */
bool hai_type_supported(uint32_t type);
/* Type id for a name such as "q4_k" or "Q4_K" (case-insensitive); -1 when unknown. */
int hai_type_from_name(const char *name);

/* Dequantize n elements (a multiple of the block size) stored as `type` at `src` into `dst`.
 * Exact: every value is what the block format defines, computed in float. */
hai_status hai_dequantize(uint32_t type, const void *src, float *dst, int64_t n, hai_error *err);

/* ---------------------------------------------------------------------------------------
 * GGUF files: reading
 * A hai_gguf is an immutable view of one GGUF file (v2 or v3, little-endian), memory-mapped
 * read-only. Every string and array it hands out points into the mapping or into memory it
 * owns, and lives as long as the hai_gguf.
 * ------------------------------------------------------------------------------------- */

typedef enum hai_gguf_type {
    HAI_GGUF_UINT8 = 0,
    HAI_GGUF_INT8 = 1,
    HAI_GGUF_UINT16 = 2,
    HAI_GGUF_INT16 = 3,
    HAI_GGUF_UINT32 = 4,
    HAI_GGUF_INT32 = 5,
    HAI_GGUF_FLOAT32 = 6,
    HAI_GGUF_BOOL = 7,
    HAI_GGUF_STRING = 8,
    HAI_GGUF_ARRAY = 9,
    HAI_GGUF_UINT64 = 10,
    HAI_GGUF_INT64 = 11,
    HAI_GGUF_FLOAT64 = 12,
    HAI_GGUF_TYPE_COUNT = 13,
} hai_gguf_type;

/* A string as stored in GGUF: `size` bytes, not NUL-terminated, may contain any byte. */
typedef struct hai_gguf_str {
    const char *data;
    uint64_t size;
} hai_gguf_str;

/* One metadata value. Scalars are widened: unsigned ints in u64, signed ints in i64,
 * FLOAT32/FLOAT64 in f64 (exactly), BOOL in b. For arrays:
 *   - scalar elements: `data` points at n packed little-endian elements (maybe unaligned;
 *     read them with hai_gguf_arr_* helpers or memcpy);
 *   - STRING elements: `strs` holds n strings;
 *   - ARRAY elements: `items` holds n values, each itself of type ARRAY.
 * The writer accepts values of the same shape, so metadata can be copied file to file. */
typedef struct hai_gguf_value {
    hai_gguf_type type;
    union {
        uint64_t u64;
        int64_t i64;
        double f64;
        bool b;
        hai_gguf_str str;
        struct {
            hai_gguf_type type; /* element type */
            uint64_t n;
            const void *data;
            const hai_gguf_str *strs;
            const struct hai_gguf_value *items;
        } arr;
    };
} hai_gguf_value;

typedef struct hai_gguf_kv {
    const char *key; /* NUL-terminated, non-empty, unique within the file */
    hai_gguf_value value;
} hai_gguf_kv;

typedef struct hai_gguf_tensor {
    const char *name; /* NUL-terminated, non-empty, unique within the file */
    uint32_t type;    /* hai_type id */
    uint32_t n_dims;  /* 1..4 */
    int64_t ne[4];    /* elements per dimension, ne[0] fastest; unused dims are 1 */
    int64_t n_elements;
    uint64_t offset;  /* from the start of the data section */
    uint64_t size;    /* bytes */
    const void *data; /* into the mapping */
} hai_gguf_tensor;

typedef struct hai_gguf hai_gguf;

/* Open and validate a GGUF file. On success *out owns the mapping; free with hai_gguf_free.
 * Every structural problem (truncation, overflow, bad alignment, overlapping or out-of-file
 * tensor data, unknown types, duplicate names, bad token ids, ...) is HAI_ERR_FORMAT with a
 * message naming it; an unreadable file is HAI_ERR_IO. */
hai_status hai_gguf_open(const char *path, hai_gguf **out, hai_error *err);
/* Same, over bytes the caller owns; they must outlive the hai_gguf. */
hai_status hai_gguf_open_buffer(const void *data, size_t size, hai_gguf **out, hai_error *err);
void hai_gguf_free(hai_gguf *g);

uint32_t hai_gguf_version(const hai_gguf *g);
uint64_t hai_gguf_file_size(const hai_gguf *g);
uint32_t hai_gguf_alignment(const hai_gguf *g);
uint64_t hai_gguf_data_offset(const hai_gguf *g); /* file offset of the tensor data section */

int64_t hai_gguf_n_kv(const hai_gguf *g);
const hai_gguf_kv *hai_gguf_kv_at(const hai_gguf *g, int64_t i);
/* The value of `key`, or NULL when absent. */
const hai_gguf_value *hai_gguf_get(const hai_gguf *g, const char *key);

/* Typed getters: HAI_ERR_NOT_FOUND when the key is absent, HAI_ERR_FORMAT when its type does
 * not fit (integers are accepted from any integer type when the value is in range). */
hai_status hai_gguf_get_u32(const hai_gguf *g, const char *key, uint32_t *out, hai_error *err);
hai_status hai_gguf_get_u64(const hai_gguf *g, const char *key, uint64_t *out, hai_error *err);
hai_status hai_gguf_get_i64(const hai_gguf *g, const char *key, int64_t *out, hai_error *err);
hai_status hai_gguf_get_f32(const hai_gguf *g, const char *key, float *out, hai_error *err);
hai_status hai_gguf_get_bool(const hai_gguf *g, const char *key, bool *out, hai_error *err);
hai_status hai_gguf_get_str(const hai_gguf *g, const char *key, hai_gguf_str *out, hai_error *err);
/* An array whose elements have type `elem`. */
hai_status hai_gguf_get_arr(const hai_gguf *g, const char *key, hai_gguf_type elem,
                            const hai_gguf_value **out, hai_error *err);

/* Element i (< arr.n) of any array as a value of its own (scalars widened). */
hai_status hai_gguf_arr_get(const hai_gguf_value *arr, uint64_t i, hai_gguf_value *out, hai_error *err);

/* Element i of an f32 / i32 array; the caller guarantees the type and i < arr.n. */
float hai_gguf_arr_f32(const hai_gguf_value *arr, uint64_t i);
int32_t hai_gguf_arr_i32(const hai_gguf_value *arr, uint64_t i);

int64_t hai_gguf_n_tensors(const hai_gguf *g);
const hai_gguf_tensor *hai_gguf_tensor_at(const hai_gguf *g, int64_t i);
/* The tensor called `name`, or NULL. */
const hai_gguf_tensor *hai_gguf_find_tensor(const hai_gguf *g, const char *name);

/* Names of a GGUF value type ("u32", "string", "array", ...), NULL when unknown. */
const char *hai_gguf_type_name(uint32_t type);

/* Quantize n floats (a multiple of the block size) into `type` blocks at dst, each block's scales
 * chosen by a search that minimises the squared error. Non-finite input is an error. */
hai_status hai_quantize(uint32_t type, const float *src, void *dst, int64_t n, hai_error *err);
/* True when hai_quantize can write this type. */
bool hai_type_can_quantize(uint32_t type);

/* ---------------------------------------------------------------------------------------
 * Quantizing models (hai quantize): a GGUF file in, a smaller one out, tensor by tensor in
 * row chunks (the model is never held in memory, let alone twice), on a pool of threads.
 * ------------------------------------------------------------------------------------- */

typedef struct hai_quantize_params {
    const char *type;        /* "Q4_K_M", "Q8_0", "IQ4_NL", "F16", ... (see hai quantize --help) */
    int n_threads;           /* 0 = all CPUs */
    bool pure;               /* every matrix in the base type: no mix, output and embeddings too */
    size_t chunk_bytes;      /* output bytes per chunk of rows held at once; 0 = 8 MiB */
    hai_progress_fn progress; /* elements done of all, and the tensor's name; may be NULL */
    void *progress_user;
} hai_quantize_params;

typedef struct hai_quantize_tensor {
    char name[96];
    uint32_t from, to;       /* types */
    int64_t n;               /* elements */
    uint64_t bytes_in, bytes_out;
    double rmse;             /* of the dequantized output against the input (as F32) */
    double rel_rmse;         /* rmse / rms of the input */
    bool fallback;           /* the rows do not fit the wanted type's blocks: a fallback type */
} hai_quantize_tensor;

typedef struct hai_quantize_report {
    hai_quantize_tensor *tensors; /* one per tensor of the file, in order */
    size_t n_tensors;
    uint32_t ftype;               /* general.file_type written */
    uint64_t bytes_in, bytes_out; /* tensor data */
    int64_t n_elements;
    double rmse, rel_rmse;        /* over every quantized weight */
    int n_requantized;            /* tensors that were already quantized in the input */
    double seconds;
} hai_quantize_report;

/* Writes `out` (atomically: a temporary file renamed when complete). rep may be NULL; free it
 * with hai_quantize_report_free. */
hai_status hai_quantize_model(const char *in, const char *out, const hai_quantize_params *p, hai_quantize_report *rep,
                              hai_error *err);
void hai_quantize_report_free(hai_quantize_report *rep);
/* The ftype and base type of a quantization name; false when unknown. */
bool hai_quantize_type_info(const char *name, uint32_t *ftype, uint32_t *base);

/* Name of a general.file_type value ("Q4_K_M", "MOSTLY_F16", ...), NULL when unknown. */
const char *hai_ftype_name(uint32_t ftype);

/* ---------------------------------------------------------------------------------------
 * Model description read from GGUF metadata without loading weights (for `hai info`).
 * Lenient: fields a file does not state are 0 / empty, so vocab-only files describe too.
 * ------------------------------------------------------------------------------------- */

/* Room for tensor types in hai_model_info: a fixed size, part of the ABI, larger than the types
 * that exist (HAI_TYPE_COUNT), so that new types do not change the struct's layout. */
#define HAI_INFO_TYPES 64

typedef struct hai_model_info {
    char arch[64];
    char name[128];
    bool has_file_type;
    uint32_t file_type;
    int64_t n_tensors;
    int64_t n_params;                       /* elements of all tensors */
    uint64_t weights_bytes;                 /* bytes of all tensor data */
    int64_t type_tensors[HAI_INFO_TYPES];   /* tensors per type (ids past HAI_TYPE_COUNT: 0) */
    int64_t type_params[HAI_INFO_TYPES];    /* elements per type */
    uint32_t n_ctx_train, n_embd, n_layer, n_head, n_head_kv, n_ff;
    uint32_t head_dim_k, head_dim_v;        /* per-head sizes of K and V */
    uint32_t n_vocab;
    uint32_t swa_window, n_swa_layers;      /* sliding-window layers (gemma) and their window */
    uint32_t n_expert, n_expert_used;       /* mixture of experts: experts a layer, used a token (0: dense) */
    int64_t n_params_active;                /* elements a token uses: all but the unchosen experts' */
    uint64_t decode_bytes;                  /* tensor data a decode step reads: all but an untied embedding
                                             * table (a row is looked up) and the unchosen experts' */
    char tokenizer_model[32];
    char tokenizer_pre[64];
    bool has_chat_template;
} hai_model_info;

hai_status hai_model_info_read(const hai_gguf *g, hai_model_info *out, hai_error *err);

typedef struct hai_memory_estimate {
    uint64_t weights;  /* mapped tensor data */
    uint64_t kv_cache; /* F16 K and V for n_ctx positions (a sliding-window layer: its window and a batch) */
    uint64_t scratch;  /* activations, logits and attention tiles for a batch of n_batch */
    uint64_t total;
} hai_memory_estimate;

/* Memory a context of n_ctx positions needs with prefill batches of n_batch tokens. */
hai_memory_estimate hai_model_memory(const hai_model_info *mi, uint32_t n_ctx, uint32_t n_batch);

/* ---------------------------------------------------------------------------------------
 * GGUF files: writing
 * Collect metadata and tensor infos, then write. Tensor data either comes with the tensor
 * (borrowed until the write ends) or is streamed afterwards in the order tensors were added,
 * so a converter never holds a whole model twice. The file is written to "PATH.tmp" and
 * renamed over PATH only when complete: a failed write never leaves a half file at PATH.
 * ------------------------------------------------------------------------------------- */

typedef struct hai_gguf_writer hai_gguf_writer;

/* version 3 is the default (0 = default); alignment 0 = 32. */
hai_status hai_gguf_writer_create(uint32_t version, uint32_t alignment, hai_gguf_writer **out,
                                  hai_error *err);
void hai_gguf_writer_free(hai_gguf_writer *w);

/* Set (or replace) a key. The value is copied. */
hai_status hai_gguf_writer_set(hai_gguf_writer *w, const char *key, const hai_gguf_value *v,
                               hai_error *err);
hai_status hai_gguf_writer_set_u32(hai_gguf_writer *w, const char *key, uint32_t v, hai_error *err);
hai_status hai_gguf_writer_set_i32(hai_gguf_writer *w, const char *key, int32_t v, hai_error *err);
hai_status hai_gguf_writer_set_f32(hai_gguf_writer *w, const char *key, float v, hai_error *err);
hai_status hai_gguf_writer_set_bool(hai_gguf_writer *w, const char *key, bool v, hai_error *err);
hai_status hai_gguf_writer_set_str(hai_gguf_writer *w, const char *key, const char *v,
                                   hai_error *err);
/* An array of n scalars of type elem, packed little-endian at data. */
hai_status hai_gguf_writer_set_arr(hai_gguf_writer *w, const char *key, hai_gguf_type elem,
                                   const void *data, uint64_t n, hai_error *err);
hai_status hai_gguf_writer_set_arr_str(hai_gguf_writer *w, const char *key,
                                       const char *const *strs, uint64_t n, hai_error *err);
/* Remove a key if present. */
void hai_gguf_writer_remove(hai_gguf_writer *w, const char *key);

/* Add a tensor. ne[0..n_dims) are its dimensions; ne[0] must be a multiple of the type's block
 * size. `data` (may be NULL to stream it later) must hold exactly the tensor's bytes. */
hai_status hai_gguf_writer_add_tensor(hai_gguf_writer *w, const char *name, uint32_t type,
                                      uint32_t n_dims, const int64_t *ne, const void *data,
                                      hai_error *err);

/* Write everything at once (all tensors must have data). */
hai_status hai_gguf_writer_write(hai_gguf_writer *w, const char *path, hai_error *err);

/* Streaming: begin writes the header and tensor infos; then call write_data once per tensor
 * in the order they were added with exactly its bytes; finish pads, syncs and renames. */
hai_status hai_gguf_writer_begin(hai_gguf_writer *w, const char *path, hai_error *err);
hai_status hai_gguf_writer_write_data(hai_gguf_writer *w, const void *data, uint64_t size,
                                      hai_error *err);
/* The same in pieces: the bytes of the current tensor in any number of calls (for tensors larger
 * than one wants in memory at once); a tensor is complete when its size has been written. */
hai_status hai_gguf_writer_write_part(hai_gguf_writer *w, const void *data, uint64_t size,
                                      hai_error *err);
hai_status hai_gguf_writer_finish(hai_gguf_writer *w, hai_error *err);

/* Bytes a tensor of this type and shape occupies, or 0 when ne[0] is not a multiple of the block
 * size, a dimension is not positive, or the size overflows. */
uint64_t hai_tensor_bytes(uint32_t type, uint32_t n_dims, const int64_t *ne);

/* ---------------------------------------------------------------------------------------
 * Tokenizers
 * SentencePiece-style ("llama") and byte-level BPE ("gpt2") vocabularies, from GGUF metadata or
 * a Hugging Face tokenizer.json. A hai_tokenizer is immutable once built and may be used from
 * several threads at once.
 * ------------------------------------------------------------------------------------- */

typedef int32_t hai_token;
typedef struct hai_tokenizer hai_tokenizer;

/* Token attributes (the GGUF token_type values). */
typedef enum hai_token_attr {
    HAI_TOKEN_NORMAL = 1,
    HAI_TOKEN_UNKNOWN = 2,
    HAI_TOKEN_CONTROL = 3,      /* special: <s>, <|im_start|>, ... */
    HAI_TOKEN_USER_DEFINED = 4, /* added text tokens: always matched whole in input text */
    HAI_TOKEN_UNUSED = 5,
    HAI_TOKEN_BYTE = 6,         /* <0xXX> byte fallback */
} hai_token_attr;

typedef enum hai_special_token {
    HAI_SPECIAL_BOS, HAI_SPECIAL_EOS, HAI_SPECIAL_EOT, HAI_SPECIAL_UNK, HAI_SPECIAL_PAD,
    HAI_SPECIAL_COUNT
} hai_special_token;

/* hai_tokenize flags */
#define HAI_TOKENIZE_ADD_SPECIAL 1u   /* add BOS/EOS as the vocabulary asks (add_bos/add_eos) */
#define HAI_TOKENIZE_PARSE_SPECIAL 2u /* text like "<|im_start|>" becomes its control token */

/* hai_detokenize / hai_token_to_piece flags */
#define HAI_DETOK_SPECIAL 1u          /* render control tokens as their text (default: nothing) */
#define HAI_DETOK_KEEP_LEADING_SPACE 2u /* do not drop the space SentencePiece put in front */

/* From the tokenizer.* keys of a GGUF file. The tokenizer copies what it needs. */
hai_status hai_tokenizer_from_gguf(const hai_gguf *g, hai_tokenizer **out, hai_error *err);
/* (From a Hugging Face tokenizer.json: hai_hf.h, libhai_hf.) */
void hai_tokenizer_free(hai_tokenizer *t);

int32_t hai_tokenizer_n_vocab(const hai_tokenizer *t);
/* "llama" (SentencePiece) or "gpt2" (byte-level BPE), and the pre-tokenizer name. */
const char *hai_tokenizer_model(const hai_tokenizer *t);
const char *hai_tokenizer_pre(const hai_tokenizer *t);
/* A special token id, or -1 when the vocabulary has none. */
hai_token hai_tokenizer_special(const hai_tokenizer *t, hai_special_token which);
/* Whether the vocabulary asks for BOS in front of a prompt. */
bool hai_tokenizer_add_bos(const hai_tokenizer *t);
/* True for tokens that end a generation (EOS, EOT and their kin such as <|im_end|>). */
bool hai_tokenizer_is_eog(const hai_tokenizer *t, hai_token id);
hai_token_attr hai_tokenizer_attr(const hai_tokenizer *t, hai_token id);
/* The token's vocabulary text (not NUL-terminated; *len set), or NULL for a bad id. */
const char *hai_tokenizer_text(const hai_tokenizer *t, hai_token id, size_t *len);
/* Id of a token whose vocabulary text is exactly `text`, or -1. */
hai_token hai_tokenizer_find(const hai_tokenizer *t, const char *text, size_t len);
/* The chat template the vocabulary came with (NUL-terminated), or NULL. */
const char *hai_tokenizer_chat_template(const hai_tokenizer *t);
/* Longest piece a single token can produce, in bytes. */
size_t hai_tokenizer_max_piece(const hai_tokenizer *t);

/* Text (len bytes, any bytes) -> token ids. Writes at most cap ids; *n_ids receives the number
 * produced. When cap is too small the call returns HAI_ERR_LIMIT and *n_ids the number needed.
 * Bytes that are not valid UTF-8 become byte tokens (or <unk> where a vocabulary has none). */
hai_status hai_tokenize(const hai_tokenizer *t, const char *text, size_t len, uint32_t flags, hai_token *ids,
                        size_t cap, size_t *n_ids, hai_error *err);
/* The same into an array it allocates (*ids, freed with free(); NULL when there are none): no
 * guess of the size needed (text can give more tokens than bytes: a space SentencePiece puts
 * before each stretch, a normalizer that expands). */
hai_status hai_tokenize_alloc(const hai_tokenizer *t, const char *text, size_t len, uint32_t flags, hai_token **ids, size_t *n_ids,
                              hai_error *err);

/* Token ids -> text bytes (the exact inverse of hai_tokenize for text that went through it).
 * Writes at most cap bytes (no terminator); *len receives the length; HAI_ERR_LIMIT with the
 * length needed when cap is too small. May end inside a UTF-8 character if the ids do. */
hai_status hai_detokenize(const hai_tokenizer *t, const hai_token *ids, size_t n, uint32_t flags, char *buf,
                          size_t cap, size_t *len, hai_error *err);

/* The bytes one token stands for (no leading-space removal). Same buffer rules. */
hai_status hai_token_to_piece(const hai_tokenizer *t, hai_token id, uint32_t flags, char *buf, size_t cap,
                              size_t *len, hai_error *err);

/* Streaming detokenization for output shown while it is generated: pushes one token at a time
 * and emits only complete UTF-8 characters, holding an incomplete tail until the next token.
 * A byte sequence that can never become valid UTF-8 is emitted as U+FFFD (one per maximal
 * invalid subpart), so the output is always valid UTF-8. */
typedef struct hai_detok_stream {
    uint32_t flags;
    bool started;
    unsigned char pending[4];
    int n_pending;
} hai_detok_stream;

void hai_detok_stream_init(hai_detok_stream *s, uint32_t flags);
/* out must hold hai_tokenizer_max_piece(t) + 16 bytes; *len receives the bytes written. */
hai_status hai_detok_stream_push(const hai_tokenizer *t, hai_detok_stream *s, hai_token id, char *out, size_t cap,
                                 size_t *len, hai_error *err);
/* Emits what is held (an incomplete character becomes U+FFFD); out needs 16 bytes. */
size_t hai_detok_stream_flush(hai_detok_stream *s, char *out);

/* ---------------------------------------------------------------------------------------
 * Chat formatting: messages -> the prompt text, byte for byte what the model's Jinja chat
 * template renders: the template itself is rendered by hai's Jinja engine (as @huggingface/jinja
 * renders it; a template it cannot render is an error naming the construct and line). Without a
 * template, or with a family forced by name, hai's own formats of the families: chatml
 * (Qwen2/2.5, SmolLM, Hermes), qwen3, llama3, llama3.1 (3.1/3.2/3.3), llama2, mistral (v1),
 * mistral-tekken (Nemo), phi3, gemma, deepseek-r1 (R1 distills).
 * ------------------------------------------------------------------------------------- */

typedef struct hai_chat_message {
    const char *role;    /* "system", "user", "assistant", "tool" (chatml/llama3 pass other roles through) */
    const char *content; /* UTF-8 text */
    /* assistant: the calls it made, as OpenAI's tool_calls (a JSON array, as text); NULL = none.
     * Templates get them as Hugging Face's do: arguments that are a JSON object in a string are
     * given as that object. Only templates can write them (a family format refuses). */
    const char *tool_calls;
    const char *tool_call_id; /* tool: the call this result answers; NULL = none */
} hai_chat_message;

typedef struct hai_chat_params {
    const char *template_text; /* the model's chat template; may be NULL */
    const char *format;        /* force a family by name (see above); NULL = render template_text (or chatml without one) */
    const char *bos_token;     /* the texts templates write for BOS/EOS; NULL = "" */
    const char *eos_token;
    bool add_generation_prompt;
    const char *date_string;   /* Llama 3.1+ "Today Date"; NULL = the template's own default */
    bool disable_thinking;     /* Qwen3: render as with enable_thinking=false */
    /* The tools the model may call: OpenAI's tools array (JSON text), given to the template as
     * `tools` (Hugging Face's shape is the same); NULL = none. Family formats refuse tools. */
    const char *tools;
} hai_chat_params;

/* add_generation_prompt on, everything else unset. */
hai_chat_params hai_chat_default_params(void);

/* The family a template belongs to ("chatml", "llama3.1", ...). *known is false when nothing
 * matched and "chatml" is a guess. */
const char *hai_chat_detect(const char *template_text, bool *known);

/* Formats n messages. On success *out is a NUL-terminated string the caller frees with hai_free,
 * *len its length. Unsupported roles or formats are HAI_ERR_INVALID / HAI_ERR_UNSUPPORTED. */
hai_status hai_chat_format(const hai_chat_params *p, const hai_chat_message *msgs, size_t n, char **out, size_t *len,
                           hai_error *err);

/* Frees memory libhai handed to the caller (hai_chat_format's text, ...). */
void hai_free(void *p);

/* Renders a Jinja chat template (as models ship them) with variables given as a JSON object
 * (messages, tools, add_generation_prompt, bos_token, ...). *out is NUL-terminated, freed with
 * hai_free; *len its length. A template or variables that do not parse are HAI_ERR_FORMAT. */
hai_status hai_template_render(const char *tmpl, size_t tmpl_len, const char *vars_json, size_t vars_len, char **out, size_t *len,
                               hai_error *err);

/* ---------------------------------------------------------------------------------------
 * Models and contexts
 * A hai_model is immutable after loading (weights used in place from the memory map) and may
 * be shared by any number of contexts on any threads. A hai_context is one sequence: its KV
 * cache (allocated once for n_ctx positions), scratch buffers and logits; one owner at a time.
 * Architectures: llama (Llama 2/3.x, TinyLlama, Mistral, SmolLM2, DeepSeek-R1-Distill-Llama),
 * qwen2 (Qwen2/2.5, DeepSeek-R1-Distill-Qwen), qwen3.
 * ------------------------------------------------------------------------------------- */

typedef struct hai_model hai_model;
typedef struct hai_context hai_context;

typedef enum hai_stream_mode {
    HAI_STREAM_AUTO = 0,
    HAI_STREAM_OFF = 1,
    HAI_STREAM_ON = 2,
} hai_stream_mode;

typedef struct hai_model_params {
    hai_progress_fn progress; /* called while loading; may be NULL */
    void *progress_user;
    /* false (default): the matmul weights are copied at load into memory of the process's own, in
     * 2 MiB pages where the OS gives them (decode streams them ~35% faster than from the file's
     * 4 KiB pages). true: weights that need no conversion are used in place from the file's
     * read-only mapping (faster load, pages shared with the page cache and other processes). */
    bool mmap_weights;
    /* A memory budget in bytes (0 = none): the weights and every context of the model count
     * against it, each planned before it is allocated; what does not fit is HAI_ERR_LIMIT with the
     * figures (and, for a context, the largest n_ctx that would fit), never an allocation the
     * system kills the process for. The tokenizer's tables count; the process's own code and
     * libraries do not. */
    uint64_t mem_budget;
    /* Weights larger than the memory, read from the file as they are needed (the page cache
     * bypassed with O_DIRECT, so what is resident is what the budget counts). In a mixture of
     * experts the experts are streamed: an LRU cache of each layer's experts, the next layer's
     * likely experts read while this one computes. In a dense model whole layers are: the first
     * ones stay resident, the others pass through a ring of layer buffers read ahead.
     * HAI_STREAM_AUTO (0): only when mem_budget cannot hold the weights; OFF: never (a budget
     * too small is an error); ON: always (for measuring). */
    hai_stream_mode stream;
    /* RAM for streamed weights in bytes; 0: 3/4 of what the budget leaves after the resident
     * weights (the rest for contexts), or a quarter of the streamable weights without a budget. */
    uint64_t stream_cache;
    /* Counts this model against that model's memory budget instead of a budget of its own (a
     * draft model beside the model it drafts for): its weights are refused when they do not fit
     * in what that budget has left; its contexts count there too; mem_budget is ignored. The
     * charge goes back when this model is freed (in either order). NULL: none. */
    const struct hai_model *budget_of;
} hai_model_params;

/* What streaming did (counts since load or the last reset): an acquire is a weight set the
 * forward pass needed (an expert of a layer, or a layer); a hit found it in memory, a late one
 * found it still being read (prefetched, not yet done), a miss read it then. */
typedef struct hai_stream_stats {
    uint32_t mode;            /* 0: nothing streamed, 1: experts, 2: layers */
    uint32_t units, slots;    /* weight sets that stream and the cache's places for them */
    uint64_t unit_bytes;      /* bytes of a cache slot: the largest set as placed (in the kernels' layout) */
    uint64_t cache_bytes;     /* RAM the cache and its read buffers take */
    uint64_t streamed_bytes;  /* of the weights (hai_model_weights_bytes), those read as needed */
    uint64_t acquires, hits, late, misses;
    uint64_t repeats;         /* of the acquires, sets the layer's previous pass used too (a token's
                               * experts that the token before chose as well) */
    uint64_t prefetches, prefetch_used; /* sets read ahead, and of them used before evicted */
    uint64_t bytes_read;
    double read_seconds;      /* the reading threads' time in read calls */
    double wait_seconds;      /* the forward pass's time waiting for weights */
} hai_stream_stats;
/* false when the model streams nothing (stats zeroed). */
bool hai_model_stream_stats(const hai_model *m, hai_stream_stats *out);
void hai_model_stream_reset(hai_model *m);
/* What the weights take, for logs: "weights 1.0 MiB", or what is held, what streams and the
 * cache it streams through. Returns buf. */
const char *hai_model_weights_text(const hai_model *m, char *buf, size_t n);

hai_model_params hai_model_default_params(void);

/* Loads a model. Unknown architectures, unsupported tensor types, missing or misshapen tensors
 * are errors naming what is wrong. Free with hai_model_free. */
hai_status hai_model_load(const char *path, const hai_model_params *p, hai_model **out, hai_error *err);
void hai_model_free(hai_model *m);

const hai_tokenizer *hai_model_tokenizer(const hai_model *m); /* owned by the model */
const char *hai_model_arch(const hai_model *m);
int32_t hai_model_n_vocab(const hai_model *m);   /* rows of the output (logits per position) */
uint32_t hai_model_n_ctx_train(const hai_model *m);
uint64_t hai_model_weights_bytes(const hai_model *m);
/* What the model's memory budget has left after its weights, its tokenizer's tables and its live
 * contexts (UINT64_MAX without a budget). */
uint64_t hai_model_budget_left(const hai_model *m);
/* Bytes of weights one decode step reads: every matrix and the output (the embedding table only
 * when it is the output too): what memory bandwidth divides to bound tokens/s. */
uint64_t hai_model_decode_bytes(const hai_model *m);
/* e.g. "llama 2.6M Q4_K_M" */
const char *hai_model_desc(const hai_model *m);

/* A pool of compute threads. Contexts given the same pool take turns op by op (the pool runs
 * one job at a time), so several sequences can be served without oversubscribing the CPUs. */
typedef struct hai_threadpool hai_threadpool;

hai_status hai_threadpool_create(int n_threads, hai_threadpool **out, hai_error *err); /* 0 = all CPUs */
void hai_threadpool_free(hai_threadpool *p);

typedef struct hai_context_params {
    uint32_t n_ctx;     /* positions the KV cache holds; 0 = min(trained context, 4096) */
    uint32_t n_batch;   /* tokens per forward pass (longer inputs are split); 0 = 512 */
    int n_threads;      /* 0 = the number of CPUs */
    bool logits_all;    /* keep the logits of every evaluated position, not only the last */
    hai_threadpool *pool; /* share this pool (borrowed; outlives the context); NULL = a pool of its own */
    uint32_t n_seq;     /* sequences, each with its own n_ctx positions of KV cache; 0 = 1 */
    uint32_t n_draft;   /* logits kept for this many drafted tokens and the one before them a pass,
                         * per sequence (speculative decoding: hai_generate_params.draft_lookup);
                         * then n_seq * (n_draft + 1) <= n_batch; 0 = none */
    uint32_t kv_type;   /* the KV cache: 0 or HAI_TYPE_F16; HAI_TYPE_Q8_0 (about half the memory) or
                         * HAI_TYPE_Q4_0 (about a quarter), rows of head_dim in blocks of 32 (head_dim
                         * a multiple of 32); hai_context_fit_kv chooses by the memory there is. */
} hai_context_params;

hai_context_params hai_context_default_params(void);

hai_status hai_context_create(const hai_model *m, const hai_context_params *p, hai_context **out, hai_error *err);
void hai_context_free(hai_context *c);

uint32_t hai_context_n_ctx(const hai_context *c);
const hai_model *hai_context_model(const hai_context *c); /* the model it was created for */
uint32_t hai_context_n_past(const hai_context *c); /* positions held in the KV cache */
uint64_t hai_context_memory_bytes(const hai_context *c); /* KV cache + scratch: all it allocated at creation */
/* What hai_context_create(m, p) would allocate, computed the same way without allocating (0 when
 * the parameters overflow). */
uint64_t hai_context_plan_bytes(const hai_model *m, const hai_context_params *p);
/* The largest n_ctx, up to p's (or the default), whose context fits in bytes (pass
 * hai_model_budget_left(m) for the model's budget); a multiple of 256 from 512 on; 0 = none fits. */
uint32_t hai_context_fit(const hai_model *m, const hai_context_params *p, uint64_t bytes);
/* The context and KV type for the memory there is: with p->kv_type 0, the first of F16, Q8_0, Q4_0
 * whose cache holds the wanted context (p->n_ctx, or the default) in bytes, or when none does, the
 * one holding the longest (hai_context_fit's rounding); with a type, that type. A draft model (may
 * be NULL) gets a context of the same parameters beside m's, and both must fit. Sets p->kv_type and
 * p->n_ctx and returns that n_ctx (0: no context fits; p->n_ctx 0 then). *f16_n_ctx (may be NULL):
 * what an F16 cache would have held, for saying why. */
uint32_t hai_context_fit_kv(const hai_model *m, const hai_model *draft, hai_context_params *p, uint64_t bytes, uint32_t *f16_n_ctx);
/* The tokens whose keys and values the cache holds (n_past of them); borrowed. */
const hai_token *hai_context_tokens(const hai_context *c, uint32_t *n);

/* Evaluates n tokens at positions n_past .. n_past+n-1 (one sequence). HAI_ERR_LIMIT when they do
 * not fit in the context; HAI_ERR_CANCELLED if the abort callback said so (the KV cache then
 * holds the positions evaluated before it). */
hai_status hai_eval(hai_context *c, const hai_token *tokens, size_t n, hai_error *err);

/* Logits (n_vocab floats) of the i-th token of the last hai_eval (i = -1: its last token). With
 * logits_all off only the last is kept. NULL if i is out of range. Valid until the next eval. */
const float *hai_logits(const hai_context *c, int32_t i);

/* Forgets positions n_past.. (to reuse a shared prefix of the cache). A model with sliding-window
 * layers (Gemma) keeps only their window and a pass in the cache: when that no longer holds the
 * window before n_past, the whole sequence is forgotten (n_past 0; hai_context_n_past says). */
hai_status hai_context_truncate(hai_context *c, uint32_t n_past, hai_error *err);

/* ---- several sequences in one context (n_seq > 1): one forward pass serves them all ----------
 * Every weight is read once per pass for all the tokens in it, so decoding k sequences together
 * costs far less than k passes (the server's continuous batching; n > 1 choices; drafts). A
 * sequence's tokens go at its next positions; attention stays within the sequence. The single-
 * sequence calls above (hai_eval, hai_logits, hai_context_n_past, hai_context_tokens,
 * hai_context_truncate) act on sequence 0. */
typedef struct hai_batch {
    size_t n;
    const hai_token *tokens;
    const int32_t *seq;   /* each token's sequence (0 .. n_seq-1), NULL = all sequence 0 */
    const bool *logits;   /* whose logits to keep; NULL = the last token of each sequence in the batch */
} hai_batch;

/* Evaluates a batch (split into passes of n_batch tokens). HAI_ERR_LIMIT when a sequence's
 * tokens do not fit in its context, or more logits are asked for than the context keeps
 * (max(n_seq, n_batch with logits_all, 1)); HAI_ERR_CANCELLED as hai_eval. */
hai_status hai_decode(hai_context *c, const hai_batch *b, hai_error *err);
/* Logits of token i of the last hai_decode (or hai_eval), NULL when not kept; valid until the
 * next hai_decode or hai_eval. */
const float *hai_batch_logits(const hai_context *c, size_t i);
uint32_t hai_context_n_seq(const hai_context *c);
uint32_t hai_seq_n_past(const hai_context *c, int32_t seq);
/* The tokens sequence seq holds (borrowed, valid until it changes). */
const hai_token *hai_seq_tokens(const hai_context *c, int32_t seq, uint32_t *n);
/* Keeps the first n_past positions of seq (cache removal); as hai_context_truncate, it may keep
 * none where sliding-window layers no longer hold the window before n_past. */
hai_status hai_seq_truncate(hai_context *c, int32_t seq, uint32_t n_past, hai_error *err);
/* Context shift: positions [keep, keep + n) leave seq's cache and those after move down by n, their
 * keys turned back by n positions (no token is evaluated again). The kept tokens' states still
 * carry what they saw of the dropped ones: an approximation, as llama.cpp's shift is.
 * HAI_ERR_UNSUPPORTED with sliding-window rings. */
hai_status hai_seq_shift(hai_context *c, int32_t seq, uint32_t keep, uint32_t n, hai_error *err);
/* With shift on (default off), hai_generate shifts by itself when a prompt shares a prefix with the
 * cache and goes on (16 tokens or more) with what the cache holds further on: a conversation whose
 * older turns were dropped to fit the context keeps its system prompt and recent turns cached
 * (hai chat turns it on). */
void hai_context_set_shift(hai_context *c, bool on);
/* dst becomes a copy of the first n positions of src (a shared prompt for several choices);
 * HAI_ERR_INVALID where src's sliding-window layers no longer hold the window before n. */
hai_status hai_seq_copy(hai_context *c, int32_t src, int32_t dst, uint32_t n, hai_error *err);

/* Called between layers during hai_eval; returning true cancels the evaluation. */
void hai_context_set_abort(hai_context *c, bool (*should_abort)(void *user), void *user);

/* Which kernel set the engine uses on this CPU ("avx512", "avx2", "neon", "scalar"). */
const char *hai_kernels_name(void);

/* ---------------------------------------------------------------------------------------
 * Sampling and generation
 * ------------------------------------------------------------------------------------- */

/* A bias added to one token's logit before the cuts (OpenAI's logit_bias: -100 all but bans a
 * token, +100 all but forces it). */
typedef struct hai_logit_bias {
    hai_token token;
    float bias;
} hai_logit_bias;

typedef struct hai_sampler_params {
    float temperature;       /* 0 = greedy (argmax) */
    int32_t top_k;           /* 0 = off */
    float top_p;             /* 1 = off */
    float min_p;             /* 0 = off */
    float repeat_penalty;    /* 1 = off (applied to the last repeat_last_n tokens) */
    int32_t repeat_last_n;
    float presence_penalty;  /* 0 = off (OpenAI semantics) */
    float frequency_penalty; /* 0 = off */
    uint64_t seed;           /* same seed + prompt + settings = same tokens */
    const hai_logit_bias *logit_bias; /* copied by hai_sampler_create; NULL = none */
    size_t n_logit_bias;
} hai_sampler_params;

typedef struct hai_sampler hai_sampler;

hai_sampler_params hai_sampler_default_params(void); /* temperature 0.8, top_k 40, top_p 0.95, min_p 0.05 */
hai_status hai_sampler_create(const hai_sampler_params *p, int32_t n_vocab, hai_sampler **out, hai_error *err);
void hai_sampler_free(hai_sampler *s);
/* Picks a token from logits (n_vocab floats; not modified). */
hai_token hai_sampler_sample(hai_sampler *s, const float *logits);
/* Records a token of the context (prompt or generated) for the penalties. */
void hai_sampler_accept(hai_sampler *s, hai_token t);
void hai_sampler_reset(hai_sampler *s);

/* Entropy (nats) of softmax(logits): the model's uncertainty about the next token. */
float hai_logits_entropy(const float *logits, int32_t n_vocab);
/* The first token of the largest logit (NaN never; the greedy choice). */
hai_token hai_logits_argmax(const float *logits, int32_t n_vocab);
/* log softmax of logits at token t (the model's own distribution, before any sampling setting),
 * and the k most likely tokens with theirs, most likely first (k <= 64; ties: the lower id).
 * Returns the number of top entries written. */
int hai_logits_logprobs(const float *logits, int32_t n_vocab, hai_token t, float *logprob, int k, hai_token *top, float *top_logprob);

/* ---------------------------------------------------------------------------------------
 * Constrained decoding: output valid by construction. A grammar (GBNF, the syntax llama.cpp's
 * `grammar` field takes) is compiled for a vocabulary; at each step it says which tokens may
 * come next (end-of-generation only once the grammar is complete). One hai_grammar follows one
 * output: create one per sequence. Not thread-safe; the vocabulary's trie behind it is shared.
 * ------------------------------------------------------------------------------------- */

typedef struct hai_grammar hai_grammar;

/* Compiles gbnf (len bytes) starting at rule root (NULL = "root"). Errors name the line:
 * HAI_ERR_FORMAT for bad syntax, undefined rules or left recursion; HAI_ERR_LIMIT for sizes. */
hai_status hai_grammar_create(const hai_tokenizer *t, const char *gbnf, size_t len, const char *root, hai_grammar **out,
                              hai_error *err);
void hai_grammar_free(hai_grammar *g);
/* Back to the start (nothing generated). */
void hai_grammar_reset(hai_grammar *g);
/* The tokens allowed next: a bitmap of n_vocab bits (token t is bit t & 31 of word t >> 5), valid
 * until the next call on g. HAI_ERR_LIMIT when the grammar needs more parser states than allowed. */
hai_status hai_grammar_allowed(hai_grammar *g, const uint32_t **bits, hai_error *err);
/* Whether token t may come next (a few parser steps: cheaper than the whole set when a sampler
 * draws first and checks after). */
bool hai_grammar_allows(hai_grammar *g, hai_token t);
/* Advances past a chosen token (HAI_ERR_INVALID when it was not allowed; g is then unchanged). */
hai_status hai_grammar_accept_token(hai_grammar *g, hai_token t, hai_error *err);
/* Advances past text (for a forced prefix, or tests); HAI_ERR_INVALID when it does not fit. */
hai_status hai_grammar_accept_text(hai_grammar *g, const char *s, size_t n, hai_error *err);
/* Whether the output so far is a whole sentence of the grammar. */
bool hai_grammar_complete(const hai_grammar *g);

typedef struct hai_grammar_stats {
    uint64_t masks;  /* hai_grammar_allowed calls */
    uint64_t walks;  /* trie walks (cache misses of the cut state) */
    uint64_t steps;  /* parser steps taken by walks */
    double walk_s;   /* time in walks */
    uint32_t states, stacks; /* interned so far */
} hai_grammar_stats;
hai_grammar_stats hai_grammar_get_stats(const hai_grammar *g);

/* GBNF for the JSON values a JSON Schema allows (root rule "root"; *gbnf malloc'd, free with
 * hai_free). Types, enum, const, properties / required / additionalProperties, items /
 * prefixItems, min/maxItems, min/maxLength, integer minimum/maximum, anyOf / oneOf, $ref to
 * $defs / definitions, nullable, and the formats date, time, date-time, uuid. Anything else that
 * would constrain the value is HAI_ERR_UNSUPPORTED naming the keyword. */
hai_status hai_json_schema_to_gbnf(const char *schema, size_t len, char **gbnf, hai_error *err);

typedef struct hai_grammar_trigger {
    const char *text;
    bool at_start; /* only as the first text of the output (after white space) */
} hai_grammar_trigger;

typedef enum hai_finish_reason {
    HAI_FINISH_STOP = 0,  /* end-of-generation token or stop string */
    HAI_FINISH_LENGTH,    /* max_tokens reached or the context is full */
    HAI_FINISH_CANCELLED, /* the text callback asked to stop */
} hai_finish_reason;

typedef struct hai_generate_params {
    int32_t max_tokens;          /* 0 = until the context is full */
    const char *const *stop;     /* stop strings (not included in the output) */
    size_t n_stop;
    hai_sampler *sampler;        /* NULL = greedy */
    int32_t entropy_tokens;      /* tokens over which the mean entropy signal is taken (0 = 16) */
    /* Receives the text as it is produced (whole UTF-8 characters, stop strings held back until
     * they are ruled out). Return false to cancel. */
    bool (*on_text)(void *user, const char *text, size_t len);
    void *user;
    /* Receives each generated token id (before its text); may be NULL. */
    void (*on_token)(void *user, hai_token t);
    /* Constrains the output to a grammar (advanced as tokens are chosen; reset it for a new
     * output). NULL = none. */
    hai_grammar *grammar;
    /* With a grammar: it takes over only where one of these texts appears in the output (the
     * text from there on follows it, the trigger included), a tool call's opening marker; before
     * that the output is free. None = it applies from the first token. */
    const hai_grammar_trigger *grammar_triggers;
    size_t n_grammar_triggers;
    /* Control tokens come out as their text (tool-call markers such as [TOOL_CALLS] or
     * <|python_tag|>), not as nothing. */
    bool special_text;
    /* Prompt lookup (speculative decoding without a second model): up to this many tokens drafted
     * a pass from an earlier place where the text so far ends the same way (its last 3, 2 or 1
     * tokens), checked in one pass with the token before them; the output is what decoding
     * without it gives, greedy or sampled (a draft is kept only where the model's own pick equals
     * it; with a grammar, drafts are checked against it as picks are). Needs a context with
     * n_draft >= it. 0 = off. */
    int32_t draft_lookup;
    /* A draft model (speculative decoding): a context of a smaller or lower-bit model with the
     * same vocabulary (hai_draft_check), whose greedy picks are drafted, up to draft_tokens a
     * pass, and checked as above; it takes the place of prompt lookup. The draft context's cache
     * follows the text (it reads the prompt with the model; the caller keeps the context for the
     * next call). Drafting adapts: the length follows what was kept, a pass that keeps nothing
     * pauses it, and after 3 such passes in a row the draft model is not used for the rest of the
     * call. NULL = none. */
    hai_context *draft_context;
    int32_t draft_tokens;
} hai_generate_params;

/* ---- embeddings ---------------------------------------------------------------------------------
 * The model's final hidden states (after its output norm) over a text, pooled into one vector and
 * L2-normalized: what a retrieval (RAG) app compares by cosine. */
typedef enum hai_pooling { /* GGUF's pooling_type values */
    HAI_POOLING_MEAN = 1,  /* the mean over every token */
    HAI_POOLING_CLS = 2,   /* the first token's */
    HAI_POOLING_LAST = 3,  /* the last token's (decoder embedding models: Qwen3-Embedding, e5-mistral) */
} hai_pooling;

/* The pooling the model's file states (<arch>.pooling_type), mean when it states none or a kind
 * that is not an embedding (none, rank). */
hai_pooling hai_model_pooling(const hai_model *m);
uint32_t hai_model_n_embd(const hai_model *m);

/* A sequence's state - its tokens and KV cache - saved, and restored into a context of the same
 * model (another n_ctx or n_batch is fine where it holds the positions), so an app that is
 * closed and opened again continues without reading its prompt again: hai_generate then finds
 * the whole prompt cached. The file is written beside and renamed over path. Loading checks the
 * file as outside input (size, checksum, the model's fingerprint, every field; a damaged file is
 * HAI_ERR_FORMAT, another model's HAI_ERR_INVALID, more positions than the context holds
 * HAI_ERR_LIMIT) and leaves the sequence empty when it fails. The sampler is not part of it. */
hai_status hai_state_save(const hai_context *c, int32_t seq, const char *path, hai_error *err);
hai_status hai_state_load(hai_context *c, int32_t seq, const char *path, hai_error *err);
/* The same in memory: *out malloc'd (free with hai_free). */
hai_status hai_state_save_buffer(const hai_context *c, int32_t seq, void **out, size_t *len, hai_error *err);
hai_status hai_state_load_buffer(hai_context *c, int32_t seq, const void *data, size_t len, hai_error *err);

/* The embedding of tokens[0..n) into out[hai_model_n_embd] with the given pooling (0: the
 * model's): evaluated from position 0 of sequence 0 (its cache cleared), in passes of n_batch.
 * HAI_ERR_LIMIT when n exceeds the context. */
hai_status hai_embed(hai_context *c, const hai_token *tokens, size_t n, int pooling, float *out, hai_error *err);
/* The embeddings of n_inputs texts (tokens[i][0..n[i])) into out[n_inputs][hai_model_n_embd],
 * up to hai_context_n_seq of them in one forward pass (a sequence each, caches cleared): what
 * hai_embed gives each, for a fraction of the passes. HAI_ERR_LIMIT when an input exceeds the
 * context. */
hai_status hai_embed_batch(hai_context *c, const hai_token *const *tokens, const size_t *n, size_t n_inputs, int pooling, float *out,
                           hai_error *err);

/* Whether draft can draft for target: every token the draft's vocabulary has is the same text
 * with the same id in the target's (HAI_ERR_FORMAT naming the first that differs otherwise). */
hai_status hai_draft_check(const hai_model *target, const hai_model *draft, hai_error *err);

typedef struct hai_generate_result {
    hai_finish_reason finish;
    int32_t n_prompt;          /* prompt tokens evaluated (those already in the cache not counted) */
    int32_t n_cached;          /* prompt tokens reused from the cache */
    int32_t n_generated;
    int32_t n_drafted, n_accepted; /* prompt lookup: tokens drafted, and of them kept */
    double t_prompt_s;         /* prefill time */
    double t_first_token_s;    /* from the call to the first token of text */
    double t_generate_s;       /* decode time after the first token */
    float mean_entropy;        /* over the first entropy_tokens generated tokens */
} hai_generate_result;

/* Generates after a prompt: tokens already in the context's cache that match the prompt's start
 * are reused; the rest of the prompt is evaluated, then tokens are sampled until EOS/EOT, a stop
 * string, max_tokens, or the end of the context (finish LENGTH). A prompt that does not fit
 * leaves room for no token and is HAI_ERR_LIMIT with the numbers. */
hai_status hai_generate(hai_context *c, const hai_token *prompt, size_t n_prompt, const hai_generate_params *p,
                        hai_generate_result *res, hai_error *err);

/* Formats messages with the model's chat template (or p->format) and tokenizes the text with
 * special tokens parsed. BOS follows the template when it writes one, else the vocabulary's
 * add_bos. *ids is allocated (free with hai_free). p may be NULL (defaults, generation prompt on). */
hai_status hai_chat_tokenize(const hai_model *m, const hai_chat_params *p, const hai_chat_message *msgs, size_t n,
                             hai_token **ids, size_t *n_ids, hai_error *err);

/* ---------------------------------------------------------------------------------------
 * Synthetic models: random weights in a real architecture's layout, for tests, benchmarks and
 * demos that must not depend on downloads. Deterministic for a given seed.
 * ------------------------------------------------------------------------------------- */

typedef struct hai_synth_params {
    const char *arch;         /* "llama" (default), "qwen2", "qwen3", "granite", "smollm3", "phi3", "gemma2", "gemma3",
                               * "qwen2moe", "qwen3moe" */
    const char *name;         /* general.name; NULL = "hai-synth" */
    uint32_t n_embd, n_layer, n_head, n_head_kv, n_ff;
    uint32_t head_dim;        /* 0 = n_embd / n_head */
    uint32_t n_ctx_train;
    uint32_t type;            /* type of the 2-D weight matrices */
    float std;                /* standard deviation of the weights */
    uint64_t seed;
    bool tied_output;         /* no output.weight: the token embedding is reused */
    const char *vocab_path;   /* copy the tokenizer from this GGUF; NULL = byte-level SPM vocab */
    const char *chat_template; /* tokenizer.chat_template (Jinja text); NULL = the vocabulary's, if any */
    hai_progress_fn progress; /* called after each tensor; may be NULL */
    void *progress_user;
    /* qwen2moe / qwen3moe: experts (0 = 8), used a token (0 = 2), their width (0 = n_ff / 4), the
     * shared expert's width (qwen2moe; 0 = n_ff) */
    uint32_t n_expert, n_expert_used, n_ff_exp, n_ff_shexp;
    /* without vocab_path: the byte-level vocabulary padded with plain tokens to this many rows of
     * embeddings and logits (Gemma's 262144: what a real vocabulary costs); 0 = 259 */
    uint32_t n_vocab;
    /* the token embedding's standard deviation (0 = std): larger, each token's own direction
     * dominates the residual stream, as in trained models, and a mixture's routing follows the
     * token (with std alone, attention's near-uniform average dominates and consecutive tokens
     * choose mostly the same experts) */
    float embd_std;
} hai_synth_params;

/* A small llama (n_embd 256, 2 layers, F32). */
hai_synth_params hai_synth_default_params(void);

/* Write a synthetic model to path (streamed: memory stays at one tensor). */
hai_status hai_synth_write(const char *path, const hai_synth_params *p, hai_error *err);

#ifdef __cplusplus
}
#endif

#endif /* HAI_H */
