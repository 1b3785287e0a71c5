/* Matmuls of one to HAI_FEW_TOKENS tokens on AVX-512 VNNI: decode (one sequence, or the step of
 * several: continuous batching, n > 1 choices) and short prompt chunks, below the matrix path.
 *
 * Each weight is read from memory once for all the tokens. Per-row dot products waste most of the
 * integer work there: each token's dot of a row widens the weights again and pays a conversion
 * and an FMA per 32-element block for the block's scales, then a horizontal sum per row. Here the
 * lanes are 16 weight ROWS instead: a vector holds 4 consecutive weights of each of 16 rows, and
 * one vpdpbusd with 4 activation bytes broadcast adds 4 products to each row's sum. A
 * sub-block's scales cost one conversion and two FMAs for 16 rows, and the 16 sums come out as
 * one vector (no horizontal sums).
 *
 * The types users pick most (Q4_0, Q8_0, Q4_K, Q6_K) are held in that order: repacked at load
 * into panels of 16 rows (Q4_0X16, Q8_0X16, Q4_KX16, Q6_KX16, kernels.h), so a unit of 32
 * weights of 16 rows is 8 vector loads (4 for the nibble formats, split in registers) and the
 * scales are loads too. Before, the rows were loaded as stored and transposed in registers, ~20
 * of the ~100 cycles a 4-token unit took, and the scales gathered. One token at a time the panels
 * stream faster than the per-row dots did (Q4_K 17 -> 27 GB/s a core), so decode takes this path
 * too. The other types go through the matrix path's row unpackers and a transpose (head_any).
 *
 * vpdpbusd multiplies unsigned by signed bytes: the weights go in as unsigned bytes u = w + B (B
 * per type: 128 for Q8_0, stored so; 8 for Q4_0, 32 for Q6_K, 0 for Q4_K's nibbles: their codes
 * as stored), the activations as their two exact int8 levels (q = 256 * hi + lo, the decode
 * layout, kernels.h). The bias adds B * sum(q) per sub-block, which the activation rows carry
 * (their block sums), so it is taken out in float with the minimum of the formats that have one:
 *   sum(w q) s d + m d sum(q) = s d (256 sum(u hi) + sum(u lo)) + (m - B s) d sum(q)
 * where s, m are the sub-block's weight scale and minimum and d the activation block's scale. */
#include <immintrin.h>
#include <stdbool.h>
#include <string.h>

#include "x86_gemm.h"

#define FEW_MAX 8    /* tokens per pass over a piece: their accumulators and a sub-block's weights fit the 32 registers */
#define PIECE 256    /* weights of each row a piece (a K-quant super-block) */

/* A piece as the kernels take it: wt [G/4][16 rows] unsigned bytes, and per sub-block of S the
 * rows' scales s (ws) and minima m (wc, for the types that have them) as vectors. */
typedef struct piece {
    int8_t wt[PIECE * 16] __attribute__((aligned(64)));
    float ws[PIECE / 16][16] __attribute__((aligned(64)));
    float wc[PIECE / 16][16] __attribute__((aligned(64)));
} piece;

/* Where the 16 rows of a panel are: row pointers (rows past the last repeat it: their lanes are
 * computed and never stored; the layouts in panels take only base). */
typedef struct panel {
    const uint8_t *row[16];
    const uint8_t *base;
    size_t stride;
    const char *end; /* the weight's last row's end (no prefetch past it) */
} panel;

/* ---- the transpose: 16 rows x 32 bytes to 8 vectors of [16 rows][4 bytes] ------------------------
 * x[k] holds rows k (low half) and k + 8 (high half): an 8x8 transpose of dwords in each 256-bit
 * half does it (unpack by dwords, by qwords, then 128-bit lanes across the pairs). */
static inline __attribute__((always_inline)) void transpose8(const __m512i x[8], __m512i out[8]) {
    __m512i t[8], u[8];
    for (int k = 0; k < 8; k += 2) {
        t[k] = _mm512_unpacklo_epi32(x[k], x[k + 1]);
        t[k + 1] = _mm512_unpackhi_epi32(x[k], x[k + 1]);
    }
    for (int k = 0; k < 8; k += 4) { /* u[k + i]: dwords i (lanes 0, 2 of each half) and i + 4 (lanes 1, 3) of 4 rows */
        u[k + 0] = _mm512_unpacklo_epi64(t[k], t[k + 2]);
        u[k + 1] = _mm512_unpackhi_epi64(t[k], t[k + 2]);
        u[k + 2] = _mm512_unpacklo_epi64(t[k + 1], t[k + 3]);
        u[k + 3] = _mm512_unpackhi_epi64(t[k + 1], t[k + 3]);
    }
    const __m512i lo = _mm512_setr_epi64(0, 1, 8, 9, 4, 5, 12, 13), hi = _mm512_setr_epi64(2, 3, 10, 11, 6, 7, 14, 15);
    for (int i = 0; i < 4; i++) {
        out[i] = _mm512_permutex2var_epi64(u[i], lo, u[4 + i]);
        out[i + 4] = _mm512_permutex2var_epi64(u[i], hi, u[4 + i]);
    }
}

static inline void transpose_store(const __m512i x[8], int8_t *wt) {
    __m512i o[8];
    transpose8(x, o);
    for (int i = 0; i < 8; i++) _mm512_store_si512(wt + 64 * i, o[i]);
}

/* f16 in the low (hi = 0) or high half of each dword, as floats */
static inline __m512 f16_half(__m512i v, int hi) {
    return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(hi ? _mm512_srli_epi32(v, 16) : v));
}

/* ---- loaders ----------------------------------------------------------------------------------
 * Each stores u = w + B, the smallest B that makes every code of its type non-negative (the
 * correction B sum(q) is exact in integers, but a larger B than needed would only cost range). */
static int few_bias(uint32_t type) {
    switch (type) {
    case HAI_TYPE_Q4_0: case HAI_WTYPE_Q4_0X16: return 8;
    case HAI_TYPE_Q5_0: return 16;
    case HAI_TYPE_Q3_K: return 4;
    case HAI_TYPE_Q6_K: case HAI_WTYPE_Q6_KX16: return 32;
    case HAI_TYPE_Q8_0: case HAI_WTYPE_Q8_0X16: case HAI_TYPE_IQ4_NL: case HAI_TYPE_IQ4_XS: return 128;
    default: return 0; /* the types with a minimum store their codes unsigned */
    }
}

/* A loader is two parts, so that the kernel can interleave loading the next piece with the
 * products of this one (measured: loading a piece and then multiplying it left a third of the
 * time in the loads, which hide behind the products when interleaved):
 *   head: what a piece needs first (the scales; for the other types, the whole piece);
 *   unit u: the 32 weights from 32u of the piece into wt (u < g / 32). */

/* the types whose units take everything they need (Q8_0X16, Q4_0X16) */
static inline void head_none(const panel *pn, int64_t n, int64_t e0, int64_t g, piece *p, uint32_t type) {
    (void)pn, (void)n, (void)e0, (void)g, (void)p, (void)type;
}

/* Q8_0 in panels (Q8_0X16, kernels.h): the 8 vectors of a unit as they are in memory, the
 * 16 rows' scales of its block one load */
static inline __attribute__((always_inline)) void unit_q8_0x16(const panel *pn, int64_t n, int64_t e0, int64_t u, piece *p, __m512i wv[8]) {
    size_t b = (size_t)(e0 / 32 + u);
    for (int k = 0; k < 8; k++) wv[k] = _mm512_load_si512(pn->base + 512 * b + 64 * k);
    _mm512_store_ps(p->ws[u], _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(pn->base + 512 * (size_t)(n / 32) + 32 * b))));
}

/* Q4_0 in panels (Q4_0X16, kernels.h): a block's 4 runs give its 8 vectors, low nibbles then high */
static inline __attribute__((always_inline)) void unit_q4_0x16(const panel *pn, int64_t n, int64_t e0, int64_t u, piece *p, __m512i wv[8]) {
    size_t b = (size_t)(e0 / 32 + u);
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    for (int g = 0; g < 4; g++) {
        __m512i v = _mm512_load_si512(pn->base + 256 * b + 64 * g);
        wv[g] = _mm512_and_si512(v, m4), wv[4 + g] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
    }
    _mm512_store_ps(p->ws[u], _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(pn->base + 256 * (size_t)(n / 32) + 32 * b))));
}

/* Q4_K: the nibbles as they are (B = 0); the 6-bit scales and mins of all 16 rows at once from
 * the blocks' first four dwords as vectors over the rows (d and dmin, then the scales' layout:
 * hai_q4k_scale_min). */
static inline void q4_K_scales(__m512i dd, __m512i s0, __m512i s1, __m512i s2, piece *p) {
    __m512 d = f16_half(dd, 0), dmin = _mm512_mul_ps(f16_half(dd, 1), _mm512_set1_ps(-1.0f));
    const __m512i m6 = _mm512_set1_epi32(63), m4 = _mm512_set1_epi32(15), m3 = _mm512_set1_epi32(3);
    for (int j = 0; j < 8; j++) {
        __m512i sc, mn;
        if (j < 4) {
            sc = _mm512_and_si512(_mm512_srli_epi32(s0, 8 * j), m6);
            mn = _mm512_and_si512(_mm512_srli_epi32(s1, 8 * j), m6);
        } else {
            int i = j - 4;
            __m512i c = _mm512_srli_epi32(s2, 8 * i);
            sc = _mm512_or_si512(_mm512_and_si512(c, m4), _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(s0, 8 * i + 6), m3), 4));
            mn = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(c, 4), m4), _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(s1, 8 * i + 6), m3), 4));
        }
        _mm512_store_ps(p->ws[j], _mm512_mul_ps(d, _mm512_cvtepi32_ps(sc)));
        _mm512_store_ps(p->wc[j], _mm512_mul_ps(dmin, _mm512_cvtepi32_ps(mn)));
    }
}

/* Q4_K in panels (Q4_KX16, kernels.h): those dwords are runs of the panel, and a unit's 8
 * vectors are loads (the low or high nibbles of 4 codes of each row) */
static inline const uint8_t *q4_Kx16_super(const panel *pn, int64_t e0) { return pn->base + 16 * sizeof(hai_block_q4_K) * (size_t)(e0 / 256); }

static inline void head_q4_Kx16(const panel *pn, int64_t n, int64_t e0, int64_t g, piece *p, uint32_t type) {
    (void)n, (void)g, (void)type;
    const uint8_t *sb = q4_Kx16_super(pn, e0);
    q4_K_scales(_mm512_load_si512(sb), _mm512_load_si512(sb + 64), _mm512_load_si512(sb + 128), _mm512_load_si512(sb + 192), p);
}

static inline __attribute__((always_inline)) void unit_q4_Kx16(const panel *pn, int64_t n, int64_t e0, int64_t u, piece *p, __m512i wv[8]) {
    (void)p, (void)n;
    const uint8_t *q = q4_Kx16_super(pn, e0) + 256 + 512 * (size_t)(u / 2);
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    for (int k = 0; k < 8; k++) {
        __m512i v = _mm512_load_si512(q + 64 * k);
        wv[k] = _mm512_and_si512(u % 2 ? _mm512_srli_epi16(v, 4) : v, m4);
    }
}

/* Q6_K: the 6-bit codes (B = 32); unit u is run u % 4 of half u / 4, from ql's nibbles and qh's
 * bit pairs (the layout: quant.h); 16 sub-blocks of 16 with int8 scales. q6_K_codes: run k4 of a
 * half's codes from its ql and qh bytes (in place in l). */
static inline __attribute__((always_inline)) void q6_K_codes(int k4, __m512i l[8], const __m512i qh[8]) {
    const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
    for (int k = 0; k < 8; k++) {
        __m512i lo = _mm512_and_si512(k4 < 2 ? l[k] : _mm512_srli_epi16(l[k], 4), m4);
        __m512i hb = k4 == 0 ? _mm512_slli_epi16(qh[k], 4) : k4 == 1 ? _mm512_slli_epi16(qh[k], 2) : k4 == 2 ? qh[k] : _mm512_srli_epi16(qh[k], 2);
        l[k] = _mm512_or_si512(lo, _mm512_and_si512(hb, m30));
    }
}

/* Q6_K in panels (Q6_KX16, kernels.h): run i of a super-block is dword i of each row's block, so
 * the scales are 4 loads and d one, and a unit's ql and qh bytes are 16 loads */
static inline const uint8_t *q6_Kx16_super(const panel *pn, int64_t e0) { return pn->base + 16 * 212 * (size_t)(e0 / 256); }

static inline void head_q6_Kx16(const panel *pn, int64_t n, int64_t e0, int64_t g, piece *p, uint32_t type) {
    (void)n, (void)g, (void)type;
    const uint8_t *sb = q6_Kx16_super(pn, e0);
    __m512 d = f16_half(_mm512_load_si512(sb + 64 * (offsetof(hai_block_q6_K, d) / 4)), 0);
    for (int q4 = 0; q4 < 4; q4++) {
        __m512i sv = _mm512_load_si512(sb + 64 * (offsetof(hai_block_q6_K, scales) / 4 + (size_t)q4));
        for (int i = 0; i < 4; i++)
            _mm512_store_ps(p->ws[4 * q4 + i], _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_srai_epi32(_mm512_slli_epi32(sv, 24 - 8 * i), 24))));
    }
}

static inline __attribute__((always_inline)) void unit_q6_Kx16(const panel *pn, int64_t n, int64_t e0, int64_t u, piece *p, __m512i wv[8]) {
    (void)p, (void)n;
    const uint8_t *sb = q6_Kx16_super(pn, e0);
    int h = (int)(u / 4), k4 = (int)(u % 4);
    const uint8_t *ql = sb + 64 * ((offsetof(hai_block_q6_K, ql) + 64 * (size_t)h + 32 * (size_t)(k4 & 1)) / 4);
    const uint8_t *qhp = sb + 64 * ((offsetof(hai_block_q6_K, qh) + 32 * (size_t)h) / 4);
    __m512i qh[8];
    for (int k = 0; k < 8; k++) wv[k] = _mm512_load_si512(ql + 64 * k), qh[k] = _mm512_load_si512(qhp + 64 * k);
    q6_K_codes(k4, wv, qh);
}

/* Any other type: each row's piece through the matrix path's unpacker (a row is a sequence of
 * blocks, so a piece of one is a row of g weights), then biased and transposed, all in the head. */
static void head_any(const panel *pn, int64_t n, int64_t e0, int64_t g, piece *p, uint32_t type) {
    (void)n;
    const hai_x86_unpack *u = &hai_x86_unpackers[type];
    int8_t q[16 * PIECE] __attribute__((aligned(64)));
    float s[16][PIECE / 16], m[16][PIECE / 16];
    int64_t ns = g / u->S;
    size_t off = hai_row_bytes(type, e0);
    for (int r = 0; r < 16; r++) {
        u->un(pn->row[r] + off, g, q + PIECE * r, s[r], m[r]);
        if (!u->has_min) memset(m[r], 0, sizeof m[r]);
    }
    const __m512i bias = _mm512_set1_epi8((char)few_bias(type));
    for (int64_t c = 0; c < g / 32; c++) {
        __m512i x[8];
        for (int k = 0; k < 8; k++)
            x[k] = _mm512_add_epi8(_mm512_inserti64x4(_mm512_castsi256_si512(_mm256_load_si256((const __m256i *)(q + PIECE * k + 32 * c))),
                                                      _mm256_load_si256((const __m256i *)(q + PIECE * (k + 8) + 32 * c)), 1),
                                   bias);
        transpose_store(x, p->wt + 512 * c);
    }
    for (int64_t j = 0; j < ns; j++)
        for (int r = 0; r < 16; r++) p->ws[j][r] = s[r][j], p->wc[j][r] = m[r][j];
}

static inline __attribute__((always_inline)) void unit_any(const panel *pn, int64_t n, int64_t e0, int64_t u, piece *p, __m512i wv[8]) {
    (void)pn, (void)n, (void)e0;
    for (int k = 0; k < 8; k++) wv[k] = _mm512_load_si512(p->wt + 512 * u + 64 * k);
}
/* ---- the products ----------------------------------------------------------------------------- */

/* A token's terms for one sub-block: its activation scale d, d sum(q) (for the minima) and
 * -B sum(q) (the bias's part of the integer sums, where the low level's sum starts). */
typedef struct tok_sub {
    float d, dsum;
    int32_t nbsum, pad;
} tok_sub;

/* acc += a (unsigned bytes) . the 4 signed bytes at p in every lane, the broadcast folded into the
 * instruction (GCC loads it with a vpbroadcastd of its own, an extra shuffle per product) */
static inline __m512i dpbusd_bcast(__m512i acc, __m512i a, const int8_t *p) {
    __asm__("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(a), "m"(*(const int32_t *)p));
    return acc;
}

/* One token's products with sub-block j of the piece (wv: its S/4 weight vectors) added to acc:
 * the integer sums of the 16 rows, exact with the bias taken out, then their scales (the rows' s
 * times this token's d) and, with minima, wc times d sum(q). */
#define FEW_TOKEN(k)                                                                                                        \
    if (T > k) {                                                                                                            \
        const int8_t *hi = a[k] + hoff, *lo = hi + lo_off;                                                                  \
        const tok_sub *tk = ts + (int64_t)k * nsub + js;                                                                    \
        __m512i h = _mm512_setzero_si512(), l = _mm512_set1_epi32(tk->nbsum);                                               \
        for (int v4 = 0; v4 < S / 4; v4++) {                                                                                \
            h = dpbusd_bcast(h, wv[v4], hi + 4 * v4);                                                                       \
            l = dpbusd_bcast(l, wv[v4], lo + 4 * v4);                                                                       \
        }                                                                                                                   \
        __m512i v = _mm512_add_epi32(_mm512_slli_epi32(h, 8), l);                                                           \
        acc##k = _mm512_fmadd_ps(_mm512_cvtepi32_ps(v), _mm512_mul_ps(wsj, _mm512_set1_ps(tk->d)), acc##k);                  \
        if (M) acc##k = _mm512_fmadd_ps(wcj, _mm512_set1_ps(tk->dsum), acc##k);                                             \
    }

#define FEW_STORE(k)                                                                                                        \
    if (T > k) _mm512_mask_storeu_ps(o[k], m, add ? _mm512_add_ps(acc##k, _mm512_maskz_loadu_ps(m, o[k])) : acc##k);

typedef void (*head_fn)(const panel *pn, int64_t n, int64_t e0, int64_t g, piece *p, uint32_t type);
typedef void (*unit_fn)(const panel *pn, int64_t n, int64_t e0, int64_t u, piece *p, __m512i wv[8]);

/* T tokens (their split rows a[t]) against one panel, a piece at a time: its head (scales) into
 * p, then each unit of 32 weights of the 16 rows loaded and transposed into registers and
 * multiplied at once (stored and reloaded, the loads were what held 2 tokens back); the sums of
 * its `rows` valid rows to o[t][0..rows). The accumulators are named variables: GCC kept an array
 * of them on the stack. The next panel streams into L2 meanwhile, a share a piece. */
static inline __attribute__((always_inline)) void few_tokens(const int T, const int S, const bool M, int64_t n, const panel *pn,
                                                             int64_t G, head_fn head, unit_fn unit, uint32_t type, piece *p,
                                                             const int8_t *const *a, const tok_sub *ts, float *const *o, int rows, bool add) {
    int64_t nb = n / 32, nsub = n / S;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0, acc4 = acc0, acc5 = acc0, acc6 = acc0, acc7 = acc0;
    size_t share = (16 * pn->stride * (size_t)G / (size_t)n + 63) / 64 * 64;
    const char *pf = (const char *)pn->base + 16 * pn->stride;
    for (int64_t e0 = 0; e0 < n; e0 += G) {
        int64_t g = n - e0 < G ? n - e0 : G;
        for (size_t l = 0; l < share; l += 64)
            if (pf + l < pn->end) _mm_prefetch(pf + l, _MM_HINT_T1);
        pf += share;
        head(pn, n, e0, g, p, type);
        for (int64_t u = 0; u < g / 32; u++) {
            __m512i w8[8];
            unit(pn, n, e0, u, p, w8);
            for (int64_t jp = u * 32 / S; jp < (u + 1) * 32 / S; jp++) {
                int64_t e = e0 + jp * S, b = e / 32, js = e / S;
                int lo_off;
                size_t hoff = hai_split_hi(b, nb, &lo_off) + (size_t)(e % 32);
                const __m512i *wv = w8 + (jp * S % 32) / 4;
                __m512 wsj = _mm512_load_ps(p->ws[jp]), wcj = M ? _mm512_load_ps(p->wc[jp]) : wsj;
                FEW_TOKEN(0) FEW_TOKEN(1) FEW_TOKEN(2) FEW_TOKEN(3) FEW_TOKEN(4) FEW_TOKEN(5) FEW_TOKEN(6) FEW_TOKEN(7)
            }
        }
    }
    __mmask16 m = (__mmask16)((1u << rows) - 1);
    FEW_STORE(0) FEW_STORE(1) FEW_STORE(2) FEW_STORE(3) FEW_STORE(4) FEW_STORE(5) FEW_STORE(6) FEW_STORE(7)
}

/* per thread: a piece, then each token's terms per sub-block (up to HAI_FEW_TOKENS tokens) */
static size_t scratch_bytes(int64_t n) { return sizeof(piece) + HAI_FEW_TOKENS * (size_t)(n / 16) * sizeof(tok_sub) + 128; }

static inline __attribute__((always_inline)) void few_s(const int S, const bool M, uint32_t type, head_fn head, unit_fn unit, int64_t G,
                                                        int64_t n, const void *w, size_t w_stride, int64_t r0, int64_t r1, const void *act,
                                                        size_t act_stride, int64_t nt, float *out, size_t ldo, bool add, void *scratch) {
    int64_t nsub = n / S;
    piece *p = (piece *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    tok_sub *ts = (tok_sub *)(p + 1);
    int32_t B = few_bias(type);
    for (int64_t t = 0; t < nt; t++) { /* the same for every panel */
        const uint8_t *row = (const uint8_t *)act + (size_t)t * act_stride;
        const float *d = hai_act_d(row, n);
        const int32_t *sq = hai_act_s(row, n);
        for (int64_t j = 0; j < nsub; j++) {
            int32_t sum = S == 32 ? sq[2 * j] + sq[2 * j + 1] : sq[j];
            ts[t * nsub + j] = (tok_sub){d[j * S / 32], d[j * S / 32] * (float)sum, -B * sum, 0};
        }
    }
    for (int64_t rp = r0; rp < r1; rp += 16) {
        int rows = r1 - rp < 16 ? (int)(r1 - rp) : 16;
        panel pn;
        pn.base = (const uint8_t *)w + (size_t)rp * w_stride;
        for (int r = 0; r < 16; r++) {
            int rr = r < rows ? r : rows - 1;
            pn.row[r] = pn.base + (size_t)rr * w_stride;
        }
        pn.stride = w_stride;
        pn.end = (const char *)w + (size_t)r1 * w_stride;
        for (int64_t t0 = 0; t0 < nt; t0 += FEW_MAX) {
            int T = nt - t0 < FEW_MAX ? (int)(nt - t0) : FEW_MAX;
            const int8_t *a[FEW_MAX];
            float *o[FEW_MAX];
            for (int t = 0; t < T; t++) {
                a[t] = (const int8_t *)act + (size_t)(t0 + t) * act_stride;
                o[t] = out + (size_t)(t0 + t) * ldo + rp;
            }
            const tok_sub *tsg = ts + t0 * nsub;
            switch (T) { /* each count its own code: the token loop unrolled, its accumulators in registers */
            case 1: few_tokens(1, S, M, n, &pn, G, head, unit, type, p, a, tsg, o, rows, add); break;
            case 2: few_tokens(2, S, M, n, &pn, G, head, unit, type, p, a, tsg, o, rows, add); break;
            case 3: few_tokens(3, S, M, n, &pn, G, head, unit, type, p, a, tsg, o, rows, add); break;
            case 4: few_tokens(4, S, M, n, &pn, G, head, unit, type, p, a, tsg, o, rows, add); break;
            case 5: few_tokens(5, S, M, n, &pn, G, head, unit, type, p, a, tsg, o, rows, add); break;
            case 6: few_tokens(6, S, M, n, &pn, G, head, unit, type, p, a, tsg, o, rows, add); break;
            case 7: few_tokens(7, S, M, n, &pn, G, head, unit, type, p, a, tsg, o, rows, add); break;
            default: few_tokens(8, S, M, n, &pn, G, head, unit, type, p, a, tsg, o, rows, add); break;
            }
        }
    }
}

/* The entry points: the types with loaders of their own, and the rest through the unpackers. */
#define FEW_ARGS n, w, w_stride, r0, r1, act, act_stride, nt, out, ldo, add, scratch
#define FEW_PARAMS                                                                                                              \
    int64_t n, const void *w, size_t w_stride, int64_t r0, int64_t r1, const void *act, size_t act_stride, int64_t nt, float *out, \
        size_t ldo, bool add, void *scratch

static void f_q8_0x16(FEW_PARAMS) { few_s(32, false, HAI_WTYPE_Q8_0X16, head_none, unit_q8_0x16, PIECE, FEW_ARGS); }
static void f_q4_Kx16(FEW_PARAMS) { few_s(32, true, HAI_WTYPE_Q4_KX16, head_q4_Kx16, unit_q4_Kx16, PIECE, FEW_ARGS); }
static void f_q4_0x16(FEW_PARAMS) { few_s(32, false, HAI_WTYPE_Q4_0X16, head_none, unit_q4_0x16, PIECE, FEW_ARGS); }
static void f_q6_Kx16(FEW_PARAMS) { few_s(16, false, HAI_WTYPE_Q6_KX16, head_q6_Kx16, unit_q6_Kx16, PIECE, FEW_ARGS); }

/* The other types share four instantiations by sub-block size and minima (the type is a run-time
 * argument of head_any: one copy each keeps the file's code, and its compile time, small). */
#define FEW_ANY(name, S, M) \
    static void name(uint32_t type, FEW_PARAMS) { few_s(S, M, type, head_any, unit_any, PIECE, FEW_ARGS); }
FEW_ANY(f_any32, 32, false)
FEW_ANY(f_any32m, 32, true)
FEW_ANY(f_any16, 16, false)
FEW_ANY(f_any16m, 16, true)

#define FEW(name, type)                                                                                                          \
    static void name(FEW_PARAMS) {                                                                                               \
        const hai_x86_unpack *u = &hai_x86_unpackers[type];                                                                      \
        if (u->S == 32) (u->has_min ? f_any32m : f_any32)(type, FEW_ARGS);                                                       \
        else (u->has_min ? f_any16m : f_any16)(type, FEW_ARGS);                                                                  \
    }
FEW(f_q4_1, HAI_TYPE_Q4_1)
FEW(f_q5_0, HAI_TYPE_Q5_0)
FEW(f_q5_1, HAI_TYPE_Q5_1)
FEW(f_iq4_nl, HAI_TYPE_IQ4_NL)
FEW(f_iq4_xs, HAI_TYPE_IQ4_XS)
FEW(f_q5_K, HAI_TYPE_Q5_K)
FEW(f_q3_K, HAI_TYPE_Q3_K)
FEW(f_q2_K, HAI_TYPE_Q2_K)

/* Puts the few-token path into an AVX-512 table (x86_avx512.c; the amx table copies it). */
void hai_avx512_add_few(hai_kernels *t) {
    t->few[HAI_WTYPE_Q8_0X16] = f_q8_0x16, t->few[HAI_WTYPE_Q4_KX16] = f_q4_Kx16, t->few[HAI_WTYPE_Q6_KX16] = f_q6_Kx16, t->few[HAI_WTYPE_Q4_0X16] = f_q4_0x16;
    t->few[HAI_TYPE_Q4_1] = f_q4_1, t->few[HAI_TYPE_Q5_0] = f_q5_0, t->few[HAI_TYPE_Q5_1] = f_q5_1;
    t->few[HAI_TYPE_IQ4_NL] = f_iq4_nl, t->few[HAI_TYPE_IQ4_XS] = f_iq4_xs, t->few[HAI_TYPE_Q5_K] = f_q5_K, t->few[HAI_TYPE_Q3_K] = f_q3_K;
    t->few[HAI_TYPE_Q2_K] = f_q2_K;
    t->few_scratch_bytes = scratch_bytes;
    /* Q8_0 decodes through these kernels too, from its panels: one token at a time they stream
     * as fast as the per-row dots did (the loads are whole vectors, no transposes) */
    t->repack[HAI_TYPE_Q8_0] = HAI_WTYPE_Q8_0X16, t->repack[HAI_TYPE_Q4_K] = HAI_WTYPE_Q4_KX16,
    t->repack[HAI_TYPE_Q6_K] = HAI_WTYPE_Q6_KX16, t->repack[HAI_TYPE_Q4_0] = HAI_WTYPE_Q4_0X16;
}
