/* Scalar reference kernels: the definition of what every SIMD kernel must compute.
 * Integer dot products per block (exact), scaled and summed in float. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "quant/fp16.h"
#include "kernels.h"

static inline float f16(uint16_t h) { return hai_f16_to_f32(h); }

hai_act_type hai_act_type_for(uint32_t type) {
    switch (type) {
    case HAI_TYPE_Q4_0: case HAI_TYPE_Q4_1: case HAI_TYPE_Q5_0: case HAI_TYPE_Q5_1: case HAI_TYPE_Q8_0:
    case HAI_TYPE_IQ4_NL: case HAI_TYPE_Q2_K: case HAI_TYPE_Q3_K: case HAI_TYPE_Q4_K: case HAI_TYPE_Q5_K:
    case HAI_TYPE_Q6_K: case HAI_TYPE_IQ4_XS: case HAI_WTYPE_Q4_0X2: case HAI_WTYPE_Q8_0X16: case HAI_WTYPE_Q4_KX16: case HAI_WTYPE_Q6_KX16: case HAI_WTYPE_Q4_0X16:
        return HAI_ACT_Q16;
    default:
        return HAI_ACT_F32;
    }
}

size_t hai_act_row_bytes(hai_act_type a, int64_t n) {
    return a == HAI_ACT_Q16 ? (size_t)(n / 32) * 76 : (size_t)n * sizeof(float);
}

/* ---- activation quantizer --------------------------------------------------------------------- */

static void quantize_act_ref(const float *x, void *y, int64_t n) {
    int64_t nb = n / 32;
    int16_t *q = y;
    float *d = (float *)(q + 32 * nb);
    int32_t *s = (int32_t *)(d + nb);
    for (int64_t b = 0; b < nb; b++, x += 32) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
        float id = amax > 0 ? (float)HAI_Q16_MAX / amax : 0.0f;
        d[b] = amax / (float)HAI_Q16_MAX;
        s[2 * b] = s[2 * b + 1] = 0;
        for (int j = 0; j < 32; j++) {
            int v = (int)rintf(x[j] * id);
            q[32 * b + j] = (int16_t)v;
            s[2 * b + j / 16] += v;
        }
    }
}

/* Integer dot of cnt weight integers with activation values q[0..cnt). */
static inline int32_t idot(const int8_t *w, const int16_t *q, int cnt) {
    int32_t s = 0;
    for (int k = 0; k < cnt; k++) s += w[k] * q[k];
    return s;
}

typedef struct act_row {
    const int16_t *q;
    const float *d;
    const int32_t *s;
} act_row;

static act_row act_of(const void *row, int64_t n) { return (act_row){hai_act_q(row), hai_act_d(row, n), hai_act_s(row, n)}; }

/* ---- 32-element weight blocks ----------------------------------------------------------------- */

static float dot_q4_0(int64_t n, const void *w, const void *ar) {
    const hai_block_q4_0 *x = w;
    act_row a = act_of(ar, n);
    float s = 0;
    int8_t q[32];
    for (int64_t i = 0; i < n / 32; i++) {
        for (int j = 0; j < 16; j++) q[j] = (int8_t)((x[i].qs[j] & 0xF) - 8), q[j + 16] = (int8_t)((x[i].qs[j] >> 4) - 8);
        s += f16(x[i].d) * a.d[i] * (float)idot(q, a.q + 32 * i, 32);
    }
    return s;
}

static float dot_q4_1(int64_t n, const void *w, const void *ar) {
    const hai_block_q4_1 *x = w;
    act_row a = act_of(ar, n);
    float s = 0;
    int8_t q[32];
    for (int64_t i = 0; i < n / 32; i++) {
        for (int j = 0; j < 16; j++) q[j] = (int8_t)(x[i].qs[j] & 0xF), q[j + 16] = (int8_t)(x[i].qs[j] >> 4);
        s += f16(x[i].d) * a.d[i] * (float)idot(q, a.q + 32 * i, 32) + f16(x[i].m) * a.d[i] * (float)(a.s[2 * i] + a.s[2 * i + 1]);
    }
    return s;
}

static inline uint32_t le32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static void unpack_q5(const uint8_t *qs, const uint8_t *qhb, int8_t *q, int offset) {
    uint32_t qh = le32(qhb);
    for (int j = 0; j < 16; j++) {
        q[j] = (int8_t)(((qs[j] & 0xF) | (int)(((qh >> j) & 1) << 4)) - offset);
        q[j + 16] = (int8_t)(((qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4)) - offset);
    }
}

static float dot_q5_0(int64_t n, const void *w, const void *ar) {
    const hai_block_q5_0 *x = w;
    act_row a = act_of(ar, n);
    float s = 0;
    int8_t q[32];
    for (int64_t i = 0; i < n / 32; i++) {
        unpack_q5(x[i].qs, x[i].qh, q, 16);
        s += f16(x[i].d) * a.d[i] * (float)idot(q, a.q + 32 * i, 32);
    }
    return s;
}

static float dot_q5_1(int64_t n, const void *w, const void *ar) {
    const hai_block_q5_1 *x = w;
    act_row a = act_of(ar, n);
    float s = 0;
    int8_t q[32];
    for (int64_t i = 0; i < n / 32; i++) {
        unpack_q5(x[i].qs, x[i].qh, q, 0);
        s += f16(x[i].d) * a.d[i] * (float)idot(q, a.q + 32 * i, 32) + f16(x[i].m) * a.d[i] * (float)(a.s[2 * i] + a.s[2 * i + 1]);
    }
    return s;
}

static float dot_q8_0(int64_t n, const void *w, const void *ar) {
    const hai_block_q8_0 *x = w;
    act_row a = act_of(ar, n);
    float s = 0;
    for (int64_t i = 0; i < n / 32; i++) s += f16(x[i].d) * a.d[i] * (float)idot(x[i].qs, a.q + 32 * i, 32);
    return s;
}

static float dot_iq4_nl(int64_t n, const void *w, const void *ar) {
    const hai_block_iq4_nl *x = w;
    act_row a = act_of(ar, n);
    float s = 0;
    int8_t q[32];
    for (int64_t i = 0; i < n / 32; i++) {
        for (int j = 0; j < 16; j++) q[j] = hai_iq4nl_values[x[i].qs[j] & 0xF], q[j + 16] = hai_iq4nl_values[x[i].qs[j] >> 4];
        s += f16(x[i].d) * a.d[i] * (float)idot(q, a.q + 32 * i, 32);
    }
    return s;
}

static float dot_q4_0x2(int64_t n, const void *w, const void *ar) {
    int64_t nb = n / 32, np = (nb + 1) / 2;
    act_row a = act_of(ar, n);
    float s = 0;
    int8_t v[32];
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *q = hai_q4x2_pair(w, np, b / 2);
        for (int k = 0; k < 32; k++) v[k] = (int8_t)(((q[k] >> (4 * (b % 2))) & 0xF) - 8);
        s += f16(*hai_q4x2_scales(w, b)) * a.d[b] * (float)idot(v, a.q + 32 * b, 32);
    }
    return s;
}

/* ---- 256-element super-blocks: 8 activation blocks each ------------------------------------------- */

static float dot_q2_K(int64_t n, const void *w, const void *ar) {
    const hai_block_q2_K *x = w;
    act_row a = act_of(ar, n);
    float s = 0;
    int8_t q[256];
    for (int64_t i = 0; i < n / 256; i++) {
        for (int wi = 0; wi < 256; wi++) {
            int h = wi / 128, sh = (wi / 32) % 4, l = wi % 32;
            q[wi] = (int8_t)((x[i].qs[32 * h + l] >> (2 * sh)) & 3);
        }
        float d = f16(x[i].d), dmin = f16(x[i].dmin);
        for (int sb = 0; sb < 16; sb++) { /* scale and min per 16 */
            int64_t blk = 8 * i + sb / 2;
            s += d * (float)(x[i].scales[sb] & 0xF) * a.d[blk] * (float)idot(q + 16 * sb, a.q + 256 * i + 16 * sb, 16) -
                 dmin * (float)(x[i].scales[sb] >> 4) * a.d[blk] * (float)a.s[2 * blk + sb % 2];
        }
    }
    return s;
}

static float dot_q3_K(int64_t n, const void *w, const void *ar) {
    const hai_block_q3_K *x = w;
    act_row a = act_of(ar, n);
    float s = 0;
    int8_t q[256];
    for (int64_t i = 0; i < n / 256; i++) {
        for (int wi = 0; wi < 256; wi++) {
            int h = wi / 128, sh = (wi / 32) % 4, l = wi % 32, kk = wi / 32;
            int v = (x[i].qs[32 * h + l] >> (2 * sh)) & 3;
            q[wi] = (int8_t)(v - (((x[i].hmask[l] >> kk) & 1) ? 0 : 4));
        }
        float d = f16(x[i].d);
        for (int sb = 0; sb < 16; sb++)
            s += d * (float)(hai_q3k_scale(sb, x[i].scales) - 32) * a.d[8 * i + sb / 2] * (float)idot(q + 16 * sb, a.q + 256 * i + 16 * sb, 16);
    }
    return s;
}

static float dot_q4_K(int64_t n, const void *w, const void *ar) {
    const hai_block_q4_K *x = w;
    act_row a = act_of(ar, n);
    float s = 0;
    int8_t q[32];
    for (int64_t i = 0; i < n / 256; i++) {
        float d = f16(x[i].d), dmin = f16(x[i].dmin);
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            hai_q4k_scale_min(j, x[i].scales, &sc, &m);
            const uint8_t *qs = x[i].qs + 32 * (j / 2);
            for (int l = 0; l < 32; l++) q[l] = (int8_t)((qs[l] >> (4 * (j % 2))) & 0xF);
            int64_t blk = 8 * i + j;
            s += d * (float)sc * a.d[blk] * (float)idot(q, a.q + 32 * blk, 32) - dmin * (float)m * a.d[blk] * (float)(a.s[2 * blk] + a.s[2 * blk + 1]);
        }
    }
    return s;
}

static float dot_q5_K(int64_t n, const void *w, const void *ar) {
    const hai_block_q5_K *x = w;
    act_row a = act_of(ar, n);
    float s = 0;
    int8_t q[32];
    for (int64_t i = 0; i < n / 256; i++) {
        float d = f16(x[i].d), dmin = f16(x[i].dmin);
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            hai_q4k_scale_min(j, x[i].scales, &sc, &m);
            const uint8_t *qs = x[i].qs + 32 * (j / 2);
            for (int l = 0; l < 32; l++) q[l] = (int8_t)(((qs[l] >> (4 * (j % 2))) & 0xF) | (((x[i].qh[l] >> j) & 1) << 4));
            int64_t blk = 8 * i + j;
            s += d * (float)sc * a.d[blk] * (float)idot(q, a.q + 32 * blk, 32) - dmin * (float)m * a.d[blk] * (float)(a.s[2 * blk] + a.s[2 * blk + 1]);
        }
    }
    return s;
}

static float dot_q6_K(int64_t n, const void *w, const void *ar) {
    const hai_block_q6_K *x = w;
    act_row a = act_of(ar, n);
    float s = 0;
    int8_t q[256];
    for (int64_t i = 0; i < n / 256; i++) {
        for (int wi = 0; wi < 256; wi++) {
            int h = wi / 128, kk = (wi / 32) % 4, l = wi % 32;
            uint8_t lo = x[i].ql[64 * h + l + 32 * (kk & 1)];
            q[wi] = (int8_t)(((kk < 2 ? lo & 0xF : lo >> 4) | (((x[i].qh[32 * h + l] >> (2 * kk)) & 3) << 4)) - 32);
        }
        float d = f16(x[i].d);
        for (int sb = 0; sb < 16; sb++)
            s += d * (float)x[i].scales[sb] * a.d[8 * i + sb / 2] * (float)idot(q + 16 * sb, a.q + 256 * i + 16 * sb, 16);
    }
    return s;
}

static float dot_iq4_xs(int64_t n, const void *w, const void *ar) {
    const hai_block_iq4_xs *x = w;
    act_row a = act_of(ar, n);
    float s = 0;
    int8_t q[32];
    for (int64_t i = 0; i < n / 256; i++) {
        float d = f16(x[i].d);
        for (int j = 0; j < 8; j++) {
            int ls = ((x[i].scales_l[j / 2] >> (4 * (j % 2))) & 0xF) | (((x[i].scales_h >> (2 * j)) & 3) << 4);
            const uint8_t *qs = x[i].qs + 16 * j;
            for (int l = 0; l < 16; l++) q[l] = hai_iq4nl_values[qs[l] & 0xF], q[l + 16] = hai_iq4nl_values[qs[l] >> 4];
            s += d * (float)(ls - 32) * a.d[8 * i + j] * (float)idot(q, a.q + 256 * i + 32 * j, 32);
        }
    }
    return s;
}

/* ---- float rows ----------------------------------------------------------------------------- */

static float dot_f32_w(int64_t n, const void *w, const void *act) {
    const float *x = w, *y = act;
    float s = 0;
    for (int64_t i = 0; i < n; i++) s += x[i] * y[i];
    return s;
}

static float dot_f16_w(int64_t n, const void *w, const void *act) {
    const uint8_t *x = w;
    const float *y = act;
    float s = 0;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, x + 2 * i, 2);
        s += f16(h) * y[i];
    }
    return s;
}

static float dot_bf16_w(int64_t n, const void *w, const void *act) {
    const uint8_t *x = w;
    const float *y = act;
    float s = 0;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, x + 2 * i, 2);
        s += hai_bf16_to_f32(h) * y[i];
    }
    return s;
}

static float dot_f32_ref(int64_t n, const float *a, const float *b) { return dot_f32_w(n, a, b); }

static void axpy_f32_ref(int64_t n, float a, const float *x, float *y) {
    for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

static float dot_f16_f32_ref(int64_t n, const uint16_t *a, const float *b) {
    float s = 0;
    for (int64_t i = 0; i < n; i++) s += f16(a[i]) * b[i];
    return s;
}

static void scale_axpy_f16_ref(int64_t n, float s, float a, const uint16_t *x, float *y) {
    for (int64_t i = 0; i < n; i++) y[i] = y[i] * s + a * f16(x[i]);
}

static void f32_to_f16_ref(int64_t n, const float *x, uint16_t *y) {
    for (int64_t i = 0; i < n; i++) y[i] = hai_f32_to_f16(x[i]);
}

/* ---- attention on quantized KV rows (kernels.h) --------------------------------------------------- */

/* Block b of a Q8_0 / Q4_0 row as 32 floats (value j of the block at j). */
static void kvq_block(uint32_t type, const uint8_t *row, int b, float *x) {
    uint16_t dh;
    if (type == HAI_TYPE_Q8_0) {
        const uint8_t *blk = row + hai_kvq_blk_bytes(type) * (size_t)b;
        memcpy(&dh, blk, 2);
        float d = f16(dh);
        for (int j = 0; j < 32; j++) x[j] = (float)(int8_t)blk[2 + j] * d;
    } else {
        const uint8_t *blk = row + hai_kvq_blk_bytes(type) * (size_t)b;
        memcpy(&dh, blk, 2);
        float d = f16(dh);
        for (int j = 0; j < 16; j++) x[j] = (float)((blk[2 + j] & 0xF) - 8) * d, x[j + 16] = (float)((blk[2 + j] >> 4) - 8) * d;
    }
}

static void kvq_dots16_ref(uint32_t type, const void *block, int n, int nh, const float *q, float *out) {
    size_t bb = hai_kvq_blk_bytes(type);
    for (int i = 0; i < nh * HAI_KT; i++) out[i] = 0;
    for (int b = 0; b < n / 32; b++) {
        const uint8_t *g = (const uint8_t *)block + (size_t)b * HAI_KT * bb, *v = g + 2 * HAI_KT;
        for (int j = 0; j < HAI_KT; j++) {
            uint16_t dh;
            memcpy(&dh, g + 2 * j, 2);
            float x[32], d = f16(dh);
            if (type == HAI_TYPE_Q8_0)
                for (int i = 0; i < 32; i++) x[i] = (float)(int8_t)v[i * HAI_KT + j] * d;
            else
                for (int i = 0; i < 16; i++) x[i] = (float)((v[i * HAI_KT + j] & 0xF) - 8) * d, x[i + 16] = (float)((v[i * HAI_KT + j] >> 4) - 8) * d;
            for (int h = 0; h < nh; h++) {
                float s = 0;
                for (int i = 0; i < 32; i++) s += q[(size_t)h * n + 32 * b + i] * x[i];
                out[h * HAI_KT + j] += s;
            }
        }
    }
}

static void kvq_axpys_ref(uint32_t type, const void *row, int n, int nh, const float *a, size_t a_stride, float *acc) {
    for (int b = 0; b < n / 32; b++) {
        float x[32];
        kvq_block(type, row, b, x);
        for (int h = 0; h < nh; h++)
            for (int j = 0; j < 32; j++) acc[(size_t)h * n + 32 * b + j] += a[(size_t)h * a_stride] * x[j];
    }
}

/* ---- the sampler's passes (kernels.h) ----------------------------------------------------------- */

static inline float sane(float v) { return v != v ? -INFINITY : v > FLT_MAX ? FLT_MAX : v; }

static float logits_max_ref(int64_t n, const float *x) {
    float m = -INFINITY;
    for (int64_t i = 0; i < n; i++)
        if (sane(x[i]) > m) m = sane(x[i]);
    return m;
}

static double logits_exp_ref(int64_t n, const float *x, float m, float s, float *w, double *wa) {
    double sum = 0, sa = 0;
    for (int64_t i = 0; i < n; i++) {
        float a = (sane(x[i]) - m) * s, e = a >= -87.3f ? expf(a) : 0.0f;
        if (w) w[i] = e;
        sum += e;
        if (e > 0) sa += (double)e * a;
    }
    if (wa) *wa = sa;
    return sum;
}

static int64_t logits_collect_ref(int64_t n, const float *x, float t, int32_t *idx, int64_t cap) {
    int64_t c = 0;
    for (int64_t i = 0; i < n; i++)
        if (sane(x[i]) >= t) {
            if (c < cap) idx[c] = (int32_t)i;
            if (++c > cap) break;
        }
    return c;
}

static bool logits_mask_ref(int64_t n, float *x, const uint32_t *bits) {
    bool any = false;
    for (int64_t i = 0; i < n; i++) {
        bool on = bits[i >> 5] >> (i & 31) & 1;
        any |= on;
        if (!on) x[i] = -INFINITY;
    }
    return any;
}

static const hai_kernels ref = {
    .name = "scalar",
    .vec_dot = {
        [HAI_TYPE_F32] = dot_f32_w,   [HAI_TYPE_F16] = dot_f16_w,   [HAI_TYPE_BF16] = dot_bf16_w,
        [HAI_TYPE_Q4_0] = dot_q4_0,   [HAI_TYPE_Q4_1] = dot_q4_1,   [HAI_TYPE_Q5_0] = dot_q5_0,
        [HAI_TYPE_Q5_1] = dot_q5_1,   [HAI_TYPE_Q8_0] = dot_q8_0,   [HAI_TYPE_IQ4_NL] = dot_iq4_nl,
        [HAI_TYPE_Q2_K] = dot_q2_K,   [HAI_TYPE_Q3_K] = dot_q3_K,   [HAI_TYPE_Q4_K] = dot_q4_K,
        [HAI_TYPE_Q5_K] = dot_q5_K,   [HAI_TYPE_Q6_K] = dot_q6_K,   [HAI_TYPE_IQ4_XS] = dot_iq4_xs,
        [HAI_WTYPE_Q4_0X2] = dot_q4_0x2,
    },
    .quantize_act = quantize_act_ref,
    .dot_f32 = dot_f32_ref,
    .axpy_f32 = axpy_f32_ref,
    .dot_f16_f32 = dot_f16_f32_ref,
    .scale_axpy_f16 = scale_axpy_f16_ref,
    .f32_to_f16 = f32_to_f16_ref,
    .kvq_dots16 = kvq_dots16_ref,
    .kvq_axpys = kvq_axpys_ref,
    .logits_max = logits_max_ref,
    .logits_exp = logits_exp_ref,
    .logits_collect = logits_collect_ref,
    .logits_mask = logits_mask_ref,
};

const hai_kernels *hai_kernels_ref(void) { return &ref; }
