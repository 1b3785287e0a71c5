/* The SIMD seam: every hot loop of the engine is a function in this table. ref.c holds the
 * portable scalar definitions (the meaning of each kernel); x86_avx2.c, x86_avx512.c and
 * arm_neon.c provide faster versions, chosen once at start-up by CPU features. Every fast
 * kernel is tested against ref.c (tests/test_kernels.c). */
#ifndef HAI_KERNELS_H
#define HAI_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../quant.h"

/* Activations quantized for integer dot products, 32 elements per block, in two levels: a
 * coarse int8 and the int8 of its remainder, so that x ~ d*qh + (d/254)*ql to about 16 bits.
 * One level (8 bits) is what other engines use; with the outlier channels real models have, a
 * block's scale is set by one large value and the rest lose most of their bits, which costs
 * measurable accuracy (see tests/test_reference.c). The second level doubles the integer work
 * of a dot product but decode stays memory-bound and the logits stay near exact. Every
 * quantized weight type (32- and 256-element blocks alike) takes this format.
 *   d    f32 scale of qh (d = max|x| / 127); ql has scale d / 254
 *   sh   sums of qh over elements 0..15 and 16..31 (for weight formats with offsets or minima)
 *   sl   the same for ql
 *   qh, ql  int8 each                                                          76 bytes */
typedef struct hai_block_q8x {
    float d;
    int16_t sh[2], sl[2];
    int8_t qh[32];
    int8_t ql[32];
} hai_block_q8x;

#define HAI_Q8X_LO 254 /* the ratio of the two levels' scales */

/* Which activation format a weight type's dot product takes. */
typedef enum hai_act_type { HAI_ACT_F32, HAI_ACT_Q8X } hai_act_type;

hai_act_type hai_act_type_for(uint32_t weight_type);
/* Bytes of one activation row of n elements in that format. */
size_t hai_act_row_bytes(hai_act_type a, int64_t n);

/* dot of n weights (one row of `type`, n a multiple of its block size) with an activation row
 * in hai_act_type_for(type) format */
typedef float (*hai_vec_dot_fn)(int64_t n, const void *w, const void *act);

typedef struct hai_kernels {
    const char *name;
    hai_vec_dot_fn vec_dot[HAI_TYPE_COUNT];
    void (*quantize_q8x)(const float *x, void *y, int64_t n); /* n % 32 == 0 */
    float (*dot_f32)(int64_t n, const float *a, const float *b);
    /* y[i] += a * x[i] */
    void (*axpy_f32)(int64_t n, float a, const float *x, float *y);
    /* dot of an f16 row (keys) with f32 (a query) */
    float (*dot_f16_f32)(int64_t n, const uint16_t *a, const float *b);
    /* y[i] = y[i] * s + a * f16(x[i])   (online-softmax rescale + value accumulate) */
    void (*scale_axpy_f16)(int64_t n, float s, float a, const uint16_t *x, float *y);
    void (*f32_to_f16)(int64_t n, const float *x, uint16_t *y);
} hai_kernels;

/* The portable reference kernels. */
const hai_kernels *hai_kernels_ref(void);
/* The fastest kernels this CPU runs (HAI_KERNELS=ref|avx2|avx512 in the environment forces one). */
const hai_kernels *hai_kernels_best(void);

/* x86 features the kernels need, from CPUID and XGETBV (OS support of the register state). */
typedef struct hai_cpu_x86 {
    bool avx2, fma, f16c, avx512f, avx512vl, avx512bw, avx512dq, avx512vnni;
} hai_cpu_x86;
hai_cpu_x86 hai_cpu_x86_features(void);

/* Per-ISA tables; NULL when not compiled in or not supported by this CPU. */
const hai_kernels *hai_kernels_avx2(void);
const hai_kernels *hai_kernels_avx512(void);
const hai_kernels *hai_kernels_neon(void);

#endif
