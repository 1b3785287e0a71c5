/* Tensor type table, exact dequantization of every supported block format, and simple
 * round-to-nearest reference quantizers (the error-minimising ones live in quantize.c). */
#include "quant.h"

#include <ctype.h>
#include <math.h>
#include <string.h>

#include "base/error.h"
#include "fp16.h"

const int8_t hai_iq4nl_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                     1,    13,   25,  38,  53,  69,  89,  113};

static inline float f16(uint16_t h) { return hai_f16_to_f32(h); }

/* ---- dequantization (the definition of each format) ---------------------------------- */

static void f32_to_float(const void *src, float *dst, int64_t n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
}

static void f16_to_float(const void *src, float *dst, int64_t n) {
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        dst[i] = hai_f16_to_f32(h);
    }
}

static void bf16_to_float(const void *src, float *dst, int64_t n) {
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        dst[i] = hai_bf16_to_f32(h);
    }
}

static void q4_0_to_float(const void *src, float *dst, int64_t n) {
    const hai_block_q4_0 *b = src;
    for (int64_t i = 0; i < n / HAI_QK; i++, b++, dst += HAI_QK) {
        float d = f16(b->d);
        for (int j = 0; j < HAI_QK / 2; j++) {
            dst[j] = (float)((b->qs[j] & 0xF) - 8) * d;
            dst[j + HAI_QK / 2] = (float)((b->qs[j] >> 4) - 8) * d;
        }
    }
}

static void q4_1_to_float(const void *src, float *dst, int64_t n) {
    const hai_block_q4_1 *b = src;
    for (int64_t i = 0; i < n / HAI_QK; i++, b++, dst += HAI_QK) {
        float d = f16(b->d), m = f16(b->m);
        for (int j = 0; j < HAI_QK / 2; j++) {
            dst[j] = (float)(b->qs[j] & 0xF) * d + m;
            dst[j + HAI_QK / 2] = (float)(b->qs[j] >> 4) * d + m;
        }
    }
}

static uint32_t load_u32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static void q5_0_to_float(const void *src, float *dst, int64_t n) {
    const hai_block_q5_0 *b = src;
    for (int64_t i = 0; i < n / HAI_QK; i++, b++, dst += HAI_QK) {
        float d = f16(b->d);
        uint32_t qh = load_u32(b->qh);
        for (int j = 0; j < HAI_QK / 2; j++) {
            int h0 = (qh >> j) & 1, h1 = (qh >> (j + 16)) & 1;
            dst[j] = (float)(((b->qs[j] & 0xF) | (h0 << 4)) - 16) * d;
            dst[j + HAI_QK / 2] = (float)(((b->qs[j] >> 4) | (h1 << 4)) - 16) * d;
        }
    }
}

static void q5_1_to_float(const void *src, float *dst, int64_t n) {
    const hai_block_q5_1 *b = src;
    for (int64_t i = 0; i < n / HAI_QK; i++, b++, dst += HAI_QK) {
        float d = f16(b->d), m = f16(b->m);
        uint32_t qh = load_u32(b->qh);
        for (int j = 0; j < HAI_QK / 2; j++) {
            int h0 = (qh >> j) & 1, h1 = (qh >> (j + 16)) & 1;
            dst[j] = (float)((b->qs[j] & 0xF) | (h0 << 4)) * d + m;
            dst[j + HAI_QK / 2] = (float)((b->qs[j] >> 4) | (h1 << 4)) * d + m;
        }
    }
}

static void q8_0_to_float(const void *src, float *dst, int64_t n) {
    const hai_block_q8_0 *b = src;
    for (int64_t i = 0; i < n / HAI_QK; i++, b++, dst += HAI_QK) {
        float d = f16(b->d);
        for (int j = 0; j < HAI_QK; j++) dst[j] = (float)b->qs[j] * d;
    }
}

static void q8_1_to_float(const void *src, float *dst, int64_t n) {
    const hai_block_q8_1 *b = src;
    for (int64_t i = 0; i < n / HAI_QK; i++, b++, dst += HAI_QK) {
        float d = f16(b->d);
        for (int j = 0; j < HAI_QK; j++) dst[j] = (float)b->qs[j] * d;
    }
}

static void q2_K_to_float(const void *src, float *dst, int64_t n) {
    const hai_block_q2_K *b = src;
    for (int64_t i = 0; i < n / HAI_QK_K; i++, b++, dst += HAI_QK_K) {
        float d = f16(b->d), dmin = f16(b->dmin);
        for (int w = 0; w < HAI_QK_K; w++) {
            int h = w / 128, s = (w / 32) % 4, l = w % 32;
            int q = (b->qs[32 * h + l] >> (2 * s)) & 3;
            uint8_t sc = b->scales[w / 16];
            dst[w] = d * (float)(sc & 0xF) * (float)q - dmin * (float)(sc >> 4);
        }
    }
}

static void q3_K_to_float(const void *src, float *dst, int64_t n) {
    const hai_block_q3_K *b = src;
    for (int64_t i = 0; i < n / HAI_QK_K; i++, b++, dst += HAI_QK_K) {
        float d = f16(b->d);
        for (int w = 0; w < HAI_QK_K; w++) {
            int h = w / 128, s = (w / 32) % 4, l = w % 32, k = w / 32;
            int q = (b->qs[32 * h + l] >> (2 * s)) & 3;
            int hi = (b->hmask[l] >> k) & 1;
            int sc = hai_q3k_scale(w / 16, b->scales) - 32;
            dst[w] = d * (float)sc * (float)(q - (hi ? 0 : 4));
        }
    }
}

static void q4_K_to_float(const void *src, float *dst, int64_t n) {
    const hai_block_q4_K *b = src;
    for (int64_t i = 0; i < n / HAI_QK_K; i++, b++, dst += HAI_QK_K) {
        float d = f16(b->d), dmin = f16(b->dmin);
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            hai_q4k_scale_min(j, b->scales, &sc, &m);
            float dl = d * sc, ml = dmin * m;
            const uint8_t *q = b->qs + 32 * (j / 2);
            int shift = 4 * (j % 2);
            for (int l = 0; l < 32; l++) dst[32 * j + l] = dl * (float)((q[l] >> shift) & 0xF) - ml;
        }
    }
}

static void q5_K_to_float(const void *src, float *dst, int64_t n) {
    const hai_block_q5_K *b = src;
    for (int64_t i = 0; i < n / HAI_QK_K; i++, b++, dst += HAI_QK_K) {
        float d = f16(b->d), dmin = f16(b->dmin);
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            hai_q4k_scale_min(j, b->scales, &sc, &m);
            float dl = d * sc, ml = dmin * m;
            const uint8_t *q = b->qs + 32 * (j / 2);
            int shift = 4 * (j % 2);
            for (int l = 0; l < 32; l++) {
                int v = ((q[l] >> shift) & 0xF) | (((b->qh[l] >> j) & 1) << 4);
                dst[32 * j + l] = dl * (float)v - ml;
            }
        }
    }
}

static void q6_K_to_float(const void *src, float *dst, int64_t n) {
    const hai_block_q6_K *b = src;
    for (int64_t i = 0; i < n / HAI_QK_K; i++, b++, dst += HAI_QK_K) {
        float d = f16(b->d);
        for (int w = 0; w < HAI_QK_K; w++) {
            int h = w / 128, k = (w / 32) % 4, l = w % 32;
            uint8_t lo = b->ql[64 * h + l + 32 * (k & 1)];
            int q = (k < 2 ? lo & 0xF : lo >> 4) | (((b->qh[32 * h + l] >> (2 * k)) & 3) << 4);
            dst[w] = d * (float)b->scales[8 * h + 2 * k + l / 16] * (float)(q - 32);
        }
    }
}

static void q8_K_to_float(const void *src, float *dst, int64_t n) {
    const hai_block_q8_K *b = src;
    for (int64_t i = 0; i < n / HAI_QK_K; i++, b++, dst += HAI_QK_K) {
        for (int j = 0; j < HAI_QK_K; j++) dst[j] = b->d * (float)b->qs[j];
    }
}

static void iq4_nl_to_float(const void *src, float *dst, int64_t n) {
    const hai_block_iq4_nl *b = src;
    for (int64_t i = 0; i < n / HAI_QK; i++, b++, dst += HAI_QK) {
        float d = f16(b->d);
        for (int j = 0; j < HAI_QK / 2; j++) {
            dst[j] = d * (float)hai_iq4nl_values[b->qs[j] & 0xF];
            dst[j + HAI_QK / 2] = d * (float)hai_iq4nl_values[b->qs[j] >> 4];
        }
    }
}

static void iq4_xs_to_float(const void *src, float *dst, int64_t n) {
    const hai_block_iq4_xs *b = src;
    for (int64_t i = 0; i < n / HAI_QK_K; i++, b++, dst += HAI_QK_K) {
        float d = f16(b->d);
        for (int j = 0; j < 8; j++) {
            int ls = ((b->scales_l[j / 2] >> (4 * (j % 2))) & 0xF) | (((b->scales_h >> (2 * j)) & 3) << 4);
            float dl = d * (float)(ls - 32);
            const uint8_t *q = b->qs + 16 * j;
            for (int l = 0; l < 16; l++) {
                dst[32 * j + l] = dl * (float)hai_iq4nl_values[q[l] & 0xF];
                dst[32 * j + l + 16] = dl * (float)hai_iq4nl_values[q[l] >> 4];
            }
        }
    }
}

/* ---- reference quantizers: round to nearest, scale from the absolute maximum ---------- */

static void f32_from_float(const float *src, void *dst, int64_t n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
}

static void f16_from_float(const float *src, void *dst, int64_t n) {
    uint8_t *p = dst;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h = hai_f32_to_f16(src[i]);
        memcpy(p + 2 * i, &h, 2);
    }
}

static void bf16_from_float(const float *src, void *dst, int64_t n) {
    uint8_t *p = dst;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h = hai_f32_to_bf16(src[i]);
        memcpy(p + 2 * i, &h, 2);
    }
}

static void q8_0_from_float(const float *src, void *dst, int64_t n) {
    hai_block_q8_0 *b = dst;
    for (int64_t i = 0; i < n / HAI_QK; i++, b++, src += HAI_QK) {
        float amax = 0;
        for (int j = 0; j < HAI_QK; j++) amax = fmaxf(amax, fabsf(src[j]));
        float d = amax / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
        b->d = hai_f32_to_f16(d);
        for (int j = 0; j < HAI_QK; j++) b->qs[j] = (int8_t)lrintf(src[j] * id);
    }
}

static void q4_0_from_float(const float *src, void *dst, int64_t n) {
    hai_block_q4_0 *b = dst;
    for (int64_t i = 0; i < n / HAI_QK; i++, b++, src += HAI_QK) {
        /* the value of largest magnitude maps to -8, so the full range [-8, 7] is used */
        float amax = 0, vmax = 0;
        for (int j = 0; j < HAI_QK; j++) {
            if (fabsf(src[j]) > amax) {
                amax = fabsf(src[j]);
                vmax = src[j];
            }
        }
        float d = vmax / -8.0f, id = d != 0 ? 1.0f / d : 0.0f;
        b->d = hai_f32_to_f16(d);
        for (int j = 0; j < HAI_QK / 2; j++) {
            int q0 = (int)fminf(15.0f, floorf(src[j] * id + 8.5f));
            int q1 = (int)fminf(15.0f, floorf(src[j + HAI_QK / 2] * id + 8.5f));
            b->qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

/* ---- the table ------------------------------------------------------------------------ */

#define T(id, nm, bs, bb, to, from) [id] = {nm, bs, bb, to, from}
static const hai_type_traits traits[HAI_TYPE_COUNT] = {
    T(HAI_TYPE_F32, "F32", 1, 4, f32_to_float, f32_from_float),
    T(HAI_TYPE_F16, "F16", 1, 2, f16_to_float, f16_from_float),
    T(HAI_TYPE_Q4_0, "Q4_0", HAI_QK, sizeof(hai_block_q4_0), q4_0_to_float, q4_0_from_float),
    T(HAI_TYPE_Q4_1, "Q4_1", HAI_QK, sizeof(hai_block_q4_1), q4_1_to_float, NULL),
    T(HAI_TYPE_Q5_0, "Q5_0", HAI_QK, sizeof(hai_block_q5_0), q5_0_to_float, NULL),
    T(HAI_TYPE_Q5_1, "Q5_1", HAI_QK, sizeof(hai_block_q5_1), q5_1_to_float, NULL),
    T(HAI_TYPE_Q8_0, "Q8_0", HAI_QK, sizeof(hai_block_q8_0), q8_0_to_float, q8_0_from_float),
    T(HAI_TYPE_Q8_1, "Q8_1", HAI_QK, sizeof(hai_block_q8_1), q8_1_to_float, NULL),
    T(HAI_TYPE_Q2_K, "Q2_K", HAI_QK_K, sizeof(hai_block_q2_K), q2_K_to_float, NULL),
    T(HAI_TYPE_Q3_K, "Q3_K", HAI_QK_K, sizeof(hai_block_q3_K), q3_K_to_float, NULL),
    T(HAI_TYPE_Q4_K, "Q4_K", HAI_QK_K, sizeof(hai_block_q4_K), q4_K_to_float, NULL),
    T(HAI_TYPE_Q5_K, "Q5_K", HAI_QK_K, sizeof(hai_block_q5_K), q5_K_to_float, NULL),
    T(HAI_TYPE_Q6_K, "Q6_K", HAI_QK_K, sizeof(hai_block_q6_K), q6_K_to_float, NULL),
    T(HAI_TYPE_Q8_K, "Q8_K", HAI_QK_K, sizeof(hai_block_q8_K), q8_K_to_float, NULL),
    /* The i-quants below are known by name and size so files holding them can be inspected;
     * hai does not compute with them (their grids are not implemented). */
    T(HAI_TYPE_IQ2_XXS, "IQ2_XXS", HAI_QK_K, 66, NULL, NULL),
    T(HAI_TYPE_IQ2_XS, "IQ2_XS", HAI_QK_K, 74, NULL, NULL),
    T(HAI_TYPE_IQ3_XXS, "IQ3_XXS", HAI_QK_K, 98, NULL, NULL),
    T(HAI_TYPE_IQ1_S, "IQ1_S", HAI_QK_K, 50, NULL, NULL),
    T(HAI_TYPE_IQ4_NL, "IQ4_NL", HAI_QK, sizeof(hai_block_iq4_nl), iq4_nl_to_float, NULL),
    T(HAI_TYPE_IQ3_S, "IQ3_S", HAI_QK_K, 110, NULL, NULL),
    T(HAI_TYPE_IQ2_S, "IQ2_S", HAI_QK_K, 82, NULL, NULL),
    T(HAI_TYPE_IQ4_XS, "IQ4_XS", HAI_QK_K, sizeof(hai_block_iq4_xs), iq4_xs_to_float, NULL),
    T(HAI_TYPE_I8, "I8", 1, 1, NULL, NULL),
    T(HAI_TYPE_I16, "I16", 1, 2, NULL, NULL),
    T(HAI_TYPE_I32, "I32", 1, 4, NULL, NULL),
    T(HAI_TYPE_I64, "I64", 1, 8, NULL, NULL),
    T(HAI_TYPE_F64, "F64", 1, 8, NULL, NULL),
    T(HAI_TYPE_IQ1_M, "IQ1_M", HAI_QK_K, 56, NULL, NULL),
    T(HAI_TYPE_BF16, "BF16", 1, 2, bf16_to_float, bf16_from_float),
};
#undef T

_Static_assert(sizeof(hai_block_q4_0) == 18, "q4_0 layout");
_Static_assert(sizeof(hai_block_q4_1) == 20, "q4_1 layout");
_Static_assert(sizeof(hai_block_q5_0) == 22, "q5_0 layout");
_Static_assert(sizeof(hai_block_q5_1) == 24, "q5_1 layout");
_Static_assert(sizeof(hai_block_q8_0) == 34, "q8_0 layout");
_Static_assert(sizeof(hai_block_q8_1) == 36, "q8_1 layout");
_Static_assert(sizeof(hai_block_q2_K) == 84, "q2_K layout");
_Static_assert(sizeof(hai_block_q3_K) == 110, "q3_K layout");
_Static_assert(sizeof(hai_block_q4_K) == 144, "q4_K layout");
_Static_assert(sizeof(hai_block_q5_K) == 176, "q5_K layout");
_Static_assert(sizeof(hai_block_q6_K) == 210, "q6_K layout");
_Static_assert(sizeof(hai_block_q8_K) == 292, "q8_K layout");
_Static_assert(sizeof(hai_block_iq4_nl) == 18, "iq4_nl layout");
_Static_assert(sizeof(hai_block_iq4_xs) == 136, "iq4_xs layout");

const hai_type_traits *hai_type_traits_get(uint32_t type) {
    if (type >= HAI_TYPE_COUNT || !traits[type].name) return NULL;
    return &traits[type];
}

const char *hai_type_name(uint32_t type) {
    const hai_type_traits *t = hai_type_traits_get(type);
    return t ? t->name : NULL;
}

int64_t hai_type_block_size(uint32_t type) {
    const hai_type_traits *t = hai_type_traits_get(type);
    return t ? t->block_size : 0;
}

size_t hai_type_block_bytes(uint32_t type) {
    const hai_type_traits *t = hai_type_traits_get(type);
    return t ? t->block_bytes : 0;
}

bool hai_type_supported(uint32_t type) {
    const hai_type_traits *t = hai_type_traits_get(type);
    return t && t->to_float && type != HAI_TYPE_Q8_K && type != HAI_TYPE_Q8_1;
}

int hai_type_from_name(const char *name) {
    if (!name) return -1;
    for (uint32_t i = 0; i < HAI_TYPE_COUNT; i++) {
        const char *tn = traits[i].name;
        if (!tn) continue;
        size_t k = 0;
        while (tn[k] && name[k] && toupper((unsigned char)name[k]) == tn[k]) k++;
        if (!tn[k] && !name[k]) return (int)i;
    }
    return -1;
}

size_t hai_row_bytes(uint32_t type, int64_t n) {
    const hai_type_traits *t = hai_type_traits_get(type);
    uint64_t bytes;
    if (!t || n <= 0 || n % t->block_size || !hai_mul_u64((uint64_t)(n / t->block_size), t->block_bytes, &bytes) ||
        bytes > SIZE_MAX)
        return 0;
    return (size_t)bytes;
}

uint64_t hai_tensor_bytes(uint32_t type, uint32_t n_dims, const int64_t *ne) {
    const hai_type_traits *t = hai_type_traits_get(type);
    if (!t || n_dims < 1 || n_dims > 4 || ne[0] <= 0 || ne[0] % t->block_size) return 0;
    uint64_t rows = 1, size;
    for (uint32_t i = 1; i < n_dims; i++) {
        if (ne[i] <= 0 || !hai_mul_u64(rows, (uint64_t)ne[i], &rows)) return 0;
    }
    uint64_t row;
    if (!hai_mul_u64((uint64_t)(ne[0] / t->block_size), t->block_bytes, &row) || !hai_mul_u64(rows, row, &size))
        return 0;
    return size;
}

hai_status hai_dequantize(uint32_t type, const void *src, float *dst, int64_t n, hai_error *err) {
    const hai_type_traits *t = hai_type_traits_get(type);
    if (!t) return hai_fail(err, HAI_ERR_INVALID, "dequantize: unknown type id %u", type);
    if (!t->to_float)
        return hai_fail(err, HAI_ERR_UNSUPPORTED, "dequantize: type %s is not supported", t->name);
    if (n < 0 || n % t->block_size)
        return hai_fail(err, HAI_ERR_INVALID, "dequantize: %lld elements is not a multiple of the %s block size %lld",
                        (long long)n, t->name, (long long)t->block_size);
    t->to_float(src, dst, n);
    return HAI_OK;
}

hai_status hai_quantize_ref(uint32_t type, const float *src, void *dst, int64_t n, hai_error *err) {
    const hai_type_traits *t = hai_type_traits_get(type);
    if (!t) return hai_fail(err, HAI_ERR_INVALID, "quantize: unknown type id %u", type);
    if (!t->from_float)
        return hai_fail(err, HAI_ERR_UNSUPPORTED, "quantize: no quantizer for type %s", t->name);
    if (n < 0 || n % t->block_size)
        return hai_fail(err, HAI_ERR_INVALID, "quantize: %lld elements is not a multiple of the %s block size %lld",
                        (long long)n, t->name, (long long)t->block_size);
    t->from_float(src, dst, n);
    return HAI_OK;
}

