/* Shared by the x86 matrix kernels (x86_amx.c, x86_avx512_gemm.c); defined in x86_gemm_prep.c.
 *
 * Activations, per panel of 16 tokens (nc = n/16 chunks of 16 elements, nb = n/32 blocks):
 *   int8  qh[nc][4][64], ql[nc][4][64]   row k/4 of chunk c, byte 4t + k%4: element k of token t,
 *                                        q = 256 * qh + ql exactly (kernels.h)
 *   float d[nb][16]                      activation scale per block and token
 *   float s[nc][16]                      sum of q over each 16 elements, per token
 * Tokens past the end of a panel are zero. */
#ifndef HAI_X86_GEMM_H
#define HAI_X86_GEMM_H

#include "kernels.h"

size_t hai_x86_panel_bytes(int64_t n);
size_t hai_x86_gemm_prep_bytes(int64_t n, int64_t nt);
void hai_x86_gemm_prep(int64_t n, const void *act, size_t act_stride, int64_t t0, int64_t t1, void *out);

/* One row of n weights to int8 values q[n] with a scale s and a min m per sub-block of S
 * elements: weight = s * q + m (m only where has_min). */
typedef void (*hai_x86_unpack_fn)(const uint8_t *row, int64_t n, int8_t *q, float *s, float *m);
typedef struct hai_x86_unpack {
    hai_x86_unpack_fn un;
    int S;
    bool has_min;
    /* a panel layout's (hai_wtype_panels) whole panel of 16 rows instead: q[16][n], s and m [16][n / S] */
    void (*panel)(const uint8_t *panel, int64_t n, int8_t *q, float *s, float *m);
} hai_x86_unpack;
extern const hai_x86_unpack hai_x86_unpackers[HAI_WTYPE_COUNT];

/* Rows rp .. rp+15 of w (those at or past r1 as zeros) unpacked: q[16][n], s and m [16][n / S]
 * (m zero without has_min). */
void hai_x86_unpack_panel(const hai_x86_unpack *u, int64_t n, const void *w, size_t w_stride, int64_t rp, int64_t r1, int8_t *q,
                          float *s, float *m);

/* For the vector kernels, which feed the activation levels in biased by 128 (unsigned): per row
 * of an unpacked panel (q[16][n]) and sub-block of S, 32896 * the sum of its weights, what the
 * bias adds to 256 * (hi products) + (lo products). */
void hai_x86_panel_bias_sums(const int8_t *q, int64_t n, int S, int32_t *wsum);

/* Every type the matrix kernels take, as X(name, type): the per-type entry points. */
#define HAI_X86_GEMM_TYPES(X)                                                                                               \
    X(g_q4_0, HAI_TYPE_Q4_0) X(g_q4_0x2, HAI_WTYPE_Q4_0X2) X(g_q4_0x16, HAI_WTYPE_Q4_0X16) X(g_q4_1, HAI_TYPE_Q4_1) X(g_q5_0, HAI_TYPE_Q5_0)                 \
    X(g_q5_1, HAI_TYPE_Q5_1) X(g_q8_0, HAI_TYPE_Q8_0) X(g_q8_0x16, HAI_WTYPE_Q8_0X16) X(g_iq4_nl, HAI_TYPE_IQ4_NL) X(g_iq4_xs, HAI_TYPE_IQ4_XS)              \
    X(g_q4_K, HAI_TYPE_Q4_K) X(g_q4_Kx16, HAI_WTYPE_Q4_KX16) X(g_q5_K, HAI_TYPE_Q5_K) X(g_q6_K, HAI_TYPE_Q6_K) X(g_q6_Kx16, HAI_WTYPE_Q6_KX16) X(g_q3_K, HAI_TYPE_Q3_K) X(g_q2_K, HAI_TYPE_Q2_K)

#endif
