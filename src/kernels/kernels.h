/* The SIMD seam: every hot loop of the engine is a function in this table. ref.c holds the
 * portable scalar definitions (the meaning of each kernel); x86_avx2.c, x86_avx512.c and
 * arm_neon.c provide faster versions, chosen once at start-up by CPU features. Every fast
 * kernel is tested against ref.c (tests/test_kernels.c). */
#ifndef HAI_KERNELS_H
#define HAI_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "quant/quant.h"

/* Activations for integer dot products: blocks of 32 elements, x ~ d * q with q an int16 in
 * [-HAI_Q16_MAX, HAI_Q16_MAX] (127 * 254 levels, about 16 bits) and d = max|x| / HAI_Q16_MAX.
 * Plain 8-bit activations (what other engines use) lose most of a block's bits to its largest
 * value; with the outlier channels real models have, that costs measurable accuracy (see
 * tests/test_reference.c). The int16 values feed vpdpwssd / vpmaddwd / smlal directly, and split
 * exactly into two int8 levels (q = 256 * qh + ql, qh = (q + 128) >> 8, both in [-128, 127]) for int8
 * engines (AMX tiles, vpdpbusd, sdot).
 * A row of n elements (nb = n / 32 blocks) is a structure of arrays:
 *   int16 q[nb][32]    at byte 0            the values
 *   float d[nb]        at byte 64 * nb      the scales
 *   int32 s[nb][2]     at byte 68 * nb      sums of q over elements 0..15 and 16..31 of each block
 *                                           (for weight formats with offsets or minima) */
#define HAI_Q16_MAX 32258

static inline const int16_t *hai_act_q(const void *row) { return (const int16_t *)row; }
static inline const float *hai_act_d(const void *row, int64_t n) { return (const float *)((const uint8_t *)row + 64 * (n / 32)); }
static inline const int32_t *hai_act_s(const void *row, int64_t n) { return (const int32_t *)((const uint8_t *)row + 68 * (n / 32)); }

/* Which activation format a weight type's dot product takes. */
typedef enum hai_act_type { HAI_ACT_F32, HAI_ACT_Q16 } hai_act_type;

hai_act_type hai_act_type_for(uint32_t weight_type);
/* Bytes of one activation row of n elements in that format. */
size_t hai_act_row_bytes(hai_act_type a, int64_t n);

/* Weight layouts of hai's own, made at load time when the kernels in use ask for them (ids after
 * the GGUF ones; they never appear in files).
 *   Q4_0X2: a Q4_0 row regrouped for wide SIMD: the blocks in pairs, each pair 32 bytes of
 *   nibbles where byte k holds element k of the first block (low nibble) and of the second (high
 *   nibble), so one 32-byte load widens to both blocks in element order. The pairs go in groups
 *   of 8 (16 blocks, 288 bytes; the last group may be shorter): first the group's f16 scales, two
 *   per pair, then its pairs, so a row is one stream (with the scales in a block of their own
 *   after the nibbles, decode streamed ~5% slower: two streams a row). A row with an odd number of
 *   blocks gets a zero block at the end. Values are (nibble - 8) * d, as Q4_0.
 *   Q8_0X16: Q8_0 in panels of 16 rows, for kernels whose vector lanes are 16 weight rows (the
 *   few-token kernels, x86_avx512_few.c): they took a Q8_0 row at a time and transposed 16 of
 *   them in registers, ~20 of the ~100 cycles a 4-token step spends on 32 weights of 16 rows. A
 *   panel (rows 16p..16p+15, at byte 16p * the row bytes: a panel takes the bytes of its 16
 *   Q8_0 rows, and 32 more where that is not a multiple of 64) holds per block b, at 512 b, 8 runs of 64 bytes: byte 4 l + k of run g is weight
 *   4 g + k of row l, stored unsigned (w + 128, what vpdpbusd takes); after the nb blocks the f16
 *   scales [nb][16 rows]. A last, partial panel is padded with zero rows. Q4_0X16 likewise: per
 *   block (at 256 b) 4 runs of 64 bytes, byte 4 l + k of run g = byte 4 g + k of row l's nibbles
 *   (weights 4g + k in the low nibbles, 16 + 4g + k in the high ones), then the scales. The kernels load whole
 *   aligned vectors: the matrix starts at a multiple of 64 bytes (as the model's weights do). No row can be read
 *   alone: only whole panels (hai_wtype_panels), through the few-token and matrix kernels and
 *   hai_repacked_row.
 *   Q4_KX16: Q4_K in panels of 16 rows likewise: per super-block (at 2304 s) the 16 rows' 144-byte
 *   blocks as 36 runs of 64 bytes, dword i of each row's block in run i (lane = row): d and dmin,
 *   the three dwords of 6-bit scales, then the nibbles, 4 bytes of each row a vector as the
 *   kernels multiply them.
 *   Q6_KX16: Q6_K the same way, its 210-byte blocks padded to 212 (53 runs: ql, qh, the int8
 *   scales, d; 1% more bytes than Q6_K). */
enum { HAI_WTYPE_Q4_0X2 = HAI_TYPE_COUNT, HAI_WTYPE_Q8_0X16, HAI_WTYPE_Q4_KX16, HAI_WTYPE_Q6_KX16, HAI_WTYPE_Q4_0X16, HAI_WTYPE_COUNT };

/* Layouts whose rows are interleaved in panels of 16 (their matrices are read 16 rows at a time,
 * from rows that are multiples of 16). */
static inline bool hai_wtype_panels(uint32_t t) {
    return t == HAI_WTYPE_Q8_0X16 || t == HAI_WTYPE_Q4_0X16 || t == HAI_WTYPE_Q4_KX16 || t == HAI_WTYPE_Q6_KX16;
}

#define HAI_Q4X2_GROUP_BYTES 288 /* a whole group: 16 scales, 8 pairs */
/* the pairs in group g of a row of np pairs */
static inline int64_t hai_q4x2_group_pairs(int64_t np, int64_t g) { return np - 8 * g < 8 ? np - 8 * g : 8; }
/* the 32 bytes of pair p (blocks 2p, 2p+1) */
static inline const uint8_t *hai_q4x2_pair(const void *row, int64_t np, int64_t p) {
    return (const uint8_t *)row + HAI_Q4X2_GROUP_BYTES * (p / 8) + 4 * hai_q4x2_group_pairs(np, p / 8) + 32 * (p % 8);
}
/* the f16 scale of block b, and where a group's scales start (blocks 16g on, contiguous) */
static inline const uint16_t *hai_q4x2_scales(const void *row, int64_t b) {
    return (const uint16_t *)((const uint8_t *)row + HAI_Q4X2_GROUP_BYTES * (b / 16)) + b % 16;
}

/* Keys (the KV cache's and an attention tile's) are stored transposed in blocks of 16 positions,
 * each [head_dim][16] f16: a dimension of 16 keys is one vector, so the scores of 16 keys come
 * out of plain vector FMAs, without a horizontal sum per key. Key t's dimension d, counting from
 * a block boundary: */
#define HAI_KT 16
static inline size_t hai_kt_index(int64_t t, int64_t d, int64_t hd) { return (size_t)(t / HAI_KT * hd * HAI_KT + d * HAI_KT + t % HAI_KT); }

/* The x86 decode kernels' split activation row (x86_avx512_decode.c, x86_avx2_decode.c): each int16
 * q = 256 * hi + lo as two int8 levels, per pair of blocks b, b+1 (b even) 128 bytes
 * hi(b) hi(b+1) lo(b) lo(b+1) (a last unpaired block: hi lo), then the scales and sums of the
 * plain row (where hai_act_d / hai_act_s find them), then per block d * (the block's sum of q),
 * the activation's part of the minimum term of Q4_K-like weights, once per row instead of once a
 * weight row (hai_dec_ds). hai_decode_row_bytes: the size of such a row. */
static inline size_t hai_decode_row_bytes(int64_t n) { return (size_t)80 * (size_t)(n / 32); }
static inline const float *hai_dec_ds(const void *row, int64_t n) { return (const float *)((const uint8_t *)row + 76 * (n / 32)); }
/* Where block b's hi bytes start, and how far after them its lo bytes are: */
static inline size_t hai_split_hi(int64_t b, int64_t nb, int *lo_off) {
    bool paired = (b | 1) < nb;
    *lo_off = paired ? 64 : 32;
    return (size_t)(64 * (b & ~(int64_t)1) + (paired ? 32 * (b & 1) : 0));
}

/* Decode's results, 16 rows (one cache line) at a time, written around the caches when the line
 * is whole. One token's matmul stores a float per weight row; a plain store pulls the line into
 * L1 for ownership, and that cost the weight stream 6-10% (`bench_decode_bw 2 --stores`, Q4_0:
 * no stores 32.8-33.6 GB/s, a store per row 30.0-30.9, whole lines streamed 31.9-32.8; a line
 * kept in L1 by prefetchw before its stores was as slow as plain stores; tg128 +3-5%). The lines
 * are re-read from memory by the next step: a few KB against the MBs of weights.
 * hai_store_fence() makes them visible to other threads (end of a task). */
#if defined(__SSE__)
#include <xmmintrin.h>
static inline void hai_store_line(float *dst, const float *src, int64_t n) {
    if (n == 16 && ((uintptr_t)dst & 63) == 0)
        for (int i = 0; i < 16; i += 4) _mm_stream_ps(dst + i, _mm_loadu_ps(src + i));
    else
        for (int64_t i = 0; i < n; i++) dst[i] = src[i];
}
static inline void hai_store_fence(void) { _mm_sfence(); }
#else
static inline void hai_store_line(float *dst, const float *src, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = src[i];
}
static inline void hai_store_fence(void) {}
#endif

/* Bytes of one row of n elements in a repacked layout (the distance between rows; in a panel
 * layout, a sixteenth of a panel's), and of a matrix of `rows` such rows (panels: rows rounded up
 * to 16). 0: not a layout. */
size_t hai_repack_row_bytes(uint32_t to, int64_t n);
size_t hai_repack_bytes(uint32_t to, int64_t n, int64_t rows);
/* The GGUF type a layout is made from (the type itself for a GGUF type). */
uint32_t hai_repack_from(uint32_t t);
/* A matrix of `rows` rows of n elements of type `from` (src, rows src_stride bytes apart) in the
 * layout `to` (dst: hai_repack_bytes of it). */
void hai_repack(uint32_t from, uint32_t to, const void *src, size_t src_stride, void *dst, int64_t n, int64_t rows);
/* Row r of a matrix in a repacked layout as floats (a lookup: the embedding table tied to the
 * output matrix). */
void hai_repacked_row(uint32_t type, const void *w, int64_t n, int64_t r, float *out);
/* Block b of row r of a matrix in a panel layout, as the GGUF block it was made from (blk:
 * hai_type_block_bytes(hai_repack_from(type)) bytes). */
void hai_panel_block(uint32_t type, const void *w, int64_t n, int64_t r, int64_t b, void *blk);

/* dot of n weights (one row of `type`, n a multiple of its block size) with an activation row
 * in hai_act_type_for(type) format */
typedef float (*hai_vec_dot_fn)(int64_t n, const void *w, const void *act);

/* Many tokens at once (prefill), for tables that have it. The activation rows are first put into
 * the table's own layout (gemm_prep, callable in parallel on disjoint token ranges starting at
 * multiples of HAI_GEMM_TOKENS), then each thread multiplies its own rows with scratch memory of
 * its own (gemm_scratch_bytes):
 *   out[t * ldo + r] = (add ? out[t * ldo + r] : 0) + dot(row r of w, token t), r0 <= r < r1, t < nt */
#define HAI_GEMM_TOKENS 16
#define HAI_FEW_TOKENS 32 /* the most tokens a few-token call takes (below, the decode layout's rows) */
typedef void (*hai_gemm_fn)(int64_t n, const void *w, size_t w_stride, int64_t r0, int64_t r1, const void *prep, int64_t nt,
                            float *out, size_t ldo, bool add, void *scratch);

/* A few tokens at once (nt <= HAI_FEW_TOKENS: the decode step of several sequences, short chunks;
 * also one token for the panel layouts, which no per-row dot reads), for tables that have it: the activation rows in the decode layout (decode_prep), each weight row read once
 * for all of them, with scratch memory of the calling thread's own (few_scratch_bytes):
 *   out[t * ldo + r] = (add ? out[t * ldo + r] : 0) + dot(row r of w, token t), r0 <= r < r1, t < nt */
typedef void (*hai_few_fn)(int64_t n, const void *w, size_t w_stride, int64_t r0, int64_t r1, const void *act, size_t act_stride,
                           int64_t nt, float *out, size_t ldo, bool add, void *scratch);

/* Several tokens on weights that take float activations (F16, BF16: no integer path): for each
 * weight row, every token's dot with it, the row converted once for a block of tokens - the
 * per-row dots would convert it again for each token (x: nt rows of n floats, x_stride apart):
 *   out[t * ldo + r] = (add ? out[t * ldo + r] : 0) + dot(row r of w, x row t), r0 <= r < r1, t < nt */
typedef void (*hai_rows_float_fn)(int64_t n, const void *w, size_t w_stride, int64_t r0, int64_t r1, const float *x, size_t x_stride,
                                  int64_t nt, float *out, size_t ldo, bool add);

typedef struct hai_kernels {
    const char *name;
    hai_gemm_fn gemm[HAI_WTYPE_COUNT];                     /* NULL: the driver loops vec_dot */
    size_t (*gemm_prep_bytes)(int64_t n, int64_t nt);
    void (*gemm_prep)(int64_t n, const void *act, size_t act_stride, int64_t t0, int64_t t1, void *prep);
    size_t (*gemm_scratch_bytes)(int64_t n);               /* per thread, for rows of n elements */
    int gemm_min_tokens; /* the fewest tokens worth the matrix path (0: HAI_GEMM_TOKENS, prefill only) */
    hai_few_fn few[HAI_WTYPE_COUNT];                        /* NULL: the per-row dots */
    size_t (*few_scratch_bytes)(int64_t n);                 /* per thread, for rows of n elements */
    hai_vec_dot_fn vec_dot[HAI_WTYPE_COUNT];
    hai_rows_float_fn rows_float[HAI_WTYPE_COUNT];          /* NULL: the per-row dots, token by token */
    /* Decode (matmuls on the per-row dots): a layout of its own for the activation rows
     * (decode_prep: one row to one of hai_decode_row_bytes) and dots that read it, for the types that
     * have one (the others take vec_dot on the plain rows). NULL: none. */
    void (*decode_prep)(int64_t n, const void *act, void *out);
    hai_vec_dot_fn decode_dot[HAI_WTYPE_COUNT];
    uint32_t repack[HAI_TYPE_COUNT]; /* the layout this table wants a GGUF type in at load (0: as it is) */
    void (*quantize_act)(const float *x, void *y, int64_t n); /* to HAI_ACT_Q16; n % 32 == 0 */
    float (*dot_f32)(int64_t n, const float *a, const float *b);
    /* y[i] += a * x[i] */
    void (*axpy_f32)(int64_t n, float a, const float *x, float *y);
    /* dot of an f16 row (keys) with f32 (a query) */
    float (*dot_f16_f32)(int64_t n, const uint16_t *a, const float *b);
    /* y[i] = y[i] * s + a * f16(x[i])   (online-softmax rescale + value accumulate) */
    void (*scale_axpy_f16)(int64_t n, float s, float a, const uint16_t *x, float *y);
    void (*f32_to_f16)(int64_t n, const float *x, uint16_t *y);
    /* g[i] = silu(g[i]) * u[i], silu(x) = x / (1 + exp(-x)) (the gated FFN). NULL: forward.c's loop. */
    void (*swiglu)(int64_t n, float *g, const float *u);
    /* g[i] = gelu(g[i]) * u[i], gelu's tanh form (Gemma's GeGLU). NULL: forward.c's loop. */
    void (*geglu)(int64_t n, float *g, const float *u);
    /* x[i] = cap * tanh(x[i] / cap), cap > 0 (Gemma 2's soft-capping of the logits). NULL: forward.c's loop. */
    void (*softcap)(int64_t n, float *x, float cap);
    /* The sampler's passes over a vocabulary of logits, each value taken "sane" (NaN as -inf, a
     * NaN is never chosen; +inf as FLT_MAX): at 152K-262K entries a pass must cost tens of
     * microseconds, not the milliseconds of a loop of expf in double.
     *   logits_max: the largest (-inf for none).
     *   logits_exp: sum of w_i = exp((x_i - m) * s) for m >= every x_i, s > 0, w_i = 0 where the
     *     argument is below -87.3 (so -inf gives exactly 0); w (may be NULL) gets the w_i; *wa
     *     (may be NULL) the sum of w_i * (x_i - m) * s (for the entropy). Sums in float lanes,
     *     returned in double: the same call on the same values gives the same sum.
     *   logits_collect: the indices i (ascending) with x_i >= t, at most cap of them stored;
     *     returns how many there are, but stops counting at cap + 1. */
    float (*logits_max)(int64_t n, const float *x);
    double (*logits_exp)(int64_t n, const float *x, float m, float s, float *w, double *wa);
    int64_t (*logits_collect)(int64_t n, const float *x, float t, int32_t *idx, int64_t cap);
    /* A grammar's mask: x_i = -inf where bit i of bits (word i >> 5, bit i & 31) is 0; returns
     * whether any of the n bits is 1. NULL: the reference loop. */
    bool (*logits_mask)(int64_t n, float *x, const uint32_t *bits);
    /* One tile of causal attention for the nh query heads of a KV group, as an online softmax:
     *   q [nh][hd]; keys t < nk in K transposed in blocks of 16 (hai_kt_index; the lanes of the last
     *   block past nk may hold anything), values at V + t * v_stride (f16 rows of hdv);
     *   m[nh], l[nh]: running maximum and sum of exp; acc [nh][hdv]: running weighted values;
     *   scores: scratch [nh][nk]. For each head: s_t = scale * q.K_t, soft-capped where cap > 0
     *   (s_t = cap * tanh(s_t / cap): Gemma 2); the maximum m' takes in the tile; l = l * exp(m - m') + sum exp(s_t - m'); acc = acc * exp(m - m') + sum exp(s_t - m') V_t.
     * NULL: forward.c does it with dot_f16_f32 and scale_axpy_f16. */
    void (*attn_tile)(int nh, int hd, int hdv, const float *q, const uint16_t *K, const uint16_t *V, size_t v_stride, int nk, float scale,
                      float cap, float *m, float *l, float *acc, float *scores);
    /* Attention on a quantized KV cache, read as it is (HAI_TYPE_Q8_0 or HAI_TYPE_Q4_0, n values a
     * row, n % 32 == 0):
     *   kvq_dots16: out[h * 16 + j] = q[h] . key j, for the 16 keys of a block in the transposed
     *   layout below (a lane past the keys written may hold anything), q [nh][n];
     *   kvq_axpys: acc[h] += a[h * a_stride] * row for acc [nh][n], a value row of blocks of the
     *   type, turned to floats once for the nh query heads of its KV group.
     * NULL: the reference (ref.c). */
    void (*kvq_dots16)(uint32_t type, const void *block, int n, int nh, const float *q, float *out);
    void (*kvq_axpys)(uint32_t type, const void *row, int n, int nh, const float *a, size_t a_stride, float *acc);
} hai_kernels;

/* The portable reference kernels. */
const hai_kernels *hai_kernels_ref(void);

/* Quantized keys in blocks of HAI_KT (16) positions, as the F16 cache's are transposed: each
 * 32-dimension group of a block is the 16 positions' scales (F16), then their values transposed -
 * Q8_0: int8 [32 dimensions][16 positions]; Q4_0: bytes [16][16 positions], dimension d in the low
 * nibble and d + 16 in the high one, offset by 8 (as a Q4_0 block pairs them). A block takes the
 * bytes of 16 rows of the type, and a kernel scores its 16 keys with one load a dimension. Rows go
 * in and out as ordinary rows of the type (n values), unchanged. */
/* Bytes of a 32-value block of a quantized cache's type (Q8_0: scale + 32 int8; Q4_0: scale + 16). */
static inline size_t hai_kvq_blk_bytes(uint32_t type) { return type == HAI_TYPE_Q8_0 ? 34 : 18; }
void hai_kvq_key_put(uint32_t type, void *block, uint32_t j, const void *row, int n);
void hai_kvq_key_get(uint32_t type, const void *block, uint32_t j, void *row, int n);
/* The fastest kernels this CPU runs, or the table $HAI_KERNELS names (amx, avx512, avx2-vnni,
 * avx2, neon-i8mm, neon-dotprod, neon, ref). */
const hai_kernels *hai_kernels_best(void);
/* HAI_OK, or why the table $HAI_KERNELS names cannot be used (unknown, or this CPU or build
 * cannot run it): an error, never a silent fallback to another table. Model loading checks it. */
hai_status hai_kernels_check(hai_error *err);
/* The table of that name if this CPU runs it, else NULL; *known says whether the name exists. */
const hai_kernels *hai_kernels_named(const char *name, bool *known);

/* x86 features the kernels need, from CPUID and XGETBV (OS support of the register state). */
typedef struct hai_cpu_x86 {
    bool avx2, fma, f16c, avx512f, avx512vl, avx512bw, avx512dq, avx512vnni, amx_int8, avx_vnni;
} hai_cpu_x86;
hai_cpu_x86 hai_cpu_x86_features(void);

/* Per-ISA tables; NULL when not compiled in or not supported by this CPU. */
const hai_kernels *hai_kernels_avx2(void);
const hai_kernels *hai_kernels_avx2_vnni(void); /* the avx2 table with decode through AVX-VNNI */
const hai_kernels *hai_kernels_avx512(void);
const hai_kernels *hai_kernels_neon(void);
const hai_kernels *hai_kernels_neon_dotprod(void);
const hai_kernels *hai_kernels_neon_i8mm(void); /* the dotprod table with smmla matrix kernels */
const hai_kernels *hai_kernels_amx(void);

#endif
