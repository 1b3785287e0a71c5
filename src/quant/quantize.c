/* Error-minimising quantizers for every block type hai writes (the formats are defined by their
 * dequantization in quant.c).
 *
 * Each block (or sub-block) is fitted by a search: candidate scales around the one that maps the
 * extreme weight to the extreme level, each scored by the squared error after the best
 * least-squares scale (and offset) for the levels it rounds to, then refined by alternating
 * rounding and least squares. The K-quants then quantize their sub-block scales (and mins) to 4
 * or 6 bits against a super-block scale, try the neighbouring integer scales of every sub-block,
 * and round the weights again with the scales as stored. Everything minimises the plain squared
 * error of the weights, the measure `hai quantize` reports. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "base/error.h"
#include "fp16.h"
#include "quant.h"

#define STEPS 16 /* candidate scales on each side of the extreme-to-extreme one */

static inline float f16r(float x) { return hai_f16_to_f32(hai_f32_to_f16(x)); } /* as stored */
static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }
static inline int roundi(float x) { return (int)lrintf(x); }

/* ---- symmetric fit: x ~ d * q, q in [nmin, nmax] ---------------------------------------------- */

/* Squared error of the best d for the levels q = round(x / d0); fills q, returns d. */
static float sym_try(const float *x, int n, int nmin, int nmax, float d0, int8_t *q, float *err, float sxx) {
    float id = 1.0f / d0, sxq = 0, sqq = 0;
    for (int i = 0; i < n; i++) {
        int v = clampi(roundi(x[i] * id), nmin, nmax);
        q[i] = (int8_t)v;
        sxq += x[i] * (float)v;
        sqq += (float)(v * v);
    }
    if (sqq <= 0) {
        *err = sxx;
        return 0;
    }
    *err = sxx - sxq * sxq / sqq; /* the error at the least-squares d = sxq / sqq */
    return sxq / sqq;
}

/* The best scale for a block; its levels go to q. 0 for a block of zeros. */
static float sym_fit(const float *x, int n, int nmin, int nmax, int8_t *q) {
    float amax = 0, vmax = 0, sxx = 0;
    for (int i = 0; i < n; i++) {
        sxx += x[i] * x[i];
        if (fabsf(x[i]) > amax) amax = fabsf(x[i]), vmax = x[i];
    }
    if (amax < 1e-30f) {
        memset(q, 0, (size_t)n);
        return 0;
    }
    int8_t tmp[256];
    float best = FLT_MAX, best_d = 0;
    for (int side = 0; side < 2; side++) { /* the extreme weight at the negative or the positive end */
        float level = side ? (float)nmax : (float)nmin, sign = side ? 1.0f : -1.0f;
        for (int k = -STEPS; k <= STEPS / 2; k++) {
            float l = level + sign * (float)k * (1.0f / STEPS);
            if (fabsf(l) < 0.5f) continue;
            float e, d = sym_try(x, n, nmin, nmax, vmax / l, tmp, &e, sxx);
            if (d != 0 && e < best) best = e, best_d = d, memcpy(q, tmp, (size_t)n);
        }
    }
    for (int it = 0; it < 4 && best_d != 0; it++) { /* round with the fitted scale, fit again */
        float e, d = sym_try(x, n, nmin, nmax, best_d, tmp, &e, sxx);
        if (d == 0 || e >= best) break;
        best = e, best_d = d;
        memcpy(q, tmp, (size_t)n);
    }
    return best_d;
}

/* Levels for a stored scale. */
static void sym_round(const float *x, int n, int nmin, int nmax, float d, int8_t *q) {
    float id = d != 0 ? 1.0f / d : 0;
    for (int i = 0; i < n; i++) q[i] = (int8_t)clampi(roundi(x[i] * id), nmin, nmax);
}

static float sym_err(const float *x, int n, int nmin, int nmax, float d, int8_t *q) {
    sym_round(x, n, nmin, nmax, d, q);
    float e = 0;
    for (int i = 0; i < n; i++) {
        float r = x[i] - d * (float)q[i];
        e += r * r;
    }
    return e;
}

/* ---- affine fit: x ~ s * q + o, q in [0, nmax] ---------------------------------------------------- */

typedef struct fit2 {
    float s, o, err;
} fit2;

/* The least-squares (s, o) for the levels of inverse scale is from xmin; o <= 0 when nonpos. */
static fit2 asym_try(const float *x, int n, int nmax, float is, float base, bool nonpos, uint8_t *q, float sxx, float sx) {
    float sq = 0, sqq = 0, sxq = 0;
    for (int i = 0; i < n; i++) {
        int v = clampi(roundi((x[i] - base) * is), 0, nmax);
        q[i] = (uint8_t)v;
        sq += (float)v;
        sqq += (float)(v * v);
        sxq += x[i] * (float)v;
    }
    fit2 f = {0, 0, FLT_MAX};
    float det = (float)n * sqq - sq * sq;
    if (det <= 0) return f;
    f.s = ((float)n * sxq - sq * sx) / det;
    f.o = (sx - f.s * sq) / (float)n;
    if (nonpos && f.o > 0) {
        f.o = 0;
        f.s = sxq / sqq;
    }
    if (f.s <= 0) return f;
    f.err = sxx - 2 * f.s * sxq - 2 * f.o * sx + f.s * f.s * sqq + 2 * f.s * f.o * sq + (float)n * f.o * f.o;
    if (f.err < 0) f.err = 0;
    return f;
}

static fit2 asym_fit(const float *x, int n, int nmax, bool nonpos, uint8_t *q) {
    float xmin = x[0], xmax = x[0], sxx = 0, sx = 0;
    for (int i = 0; i < n; i++) {
        xmin = fminf(xmin, x[i]), xmax = fmaxf(xmax, x[i]);
        sxx += x[i] * x[i], sx += x[i];
    }
    if (nonpos && xmin > 0) xmin = 0;
    if (xmax - xmin < 1e-30f) { /* constant: the offset says it all */
        memset(q, 0, (size_t)n);
        return (fit2){0, xmin, 0};
    }
    uint8_t tmp[256];
    fit2 best = {(xmax - xmin) / (float)nmax, xmin, FLT_MAX};
    for (int k = -STEPS; k <= STEPS; k++) {
        float is = ((float)nmax + (float)k * (1.0f / STEPS) * 1.5f) / (xmax - xmin);
        if (is <= 0) continue;
        fit2 f = asym_try(x, n, nmax, is, xmin, nonpos, tmp, sxx, sx);
        if (f.err < best.err) best = f, memcpy(q, tmp, (size_t)n);
    }
    for (int it = 0; it < 4 && best.err < FLT_MAX; it++) {
        fit2 f = asym_try(x, n, nmax, 1.0f / best.s, best.o, nonpos, tmp, sxx, sx);
        if (f.err >= best.err) break;
        best = f;
        memcpy(q, tmp, (size_t)n);
    }
    if (best.err == FLT_MAX) { /* degenerate: plain min-max */
        best.s = (xmax - xmin) / (float)nmax, best.o = xmin;
        for (int i = 0; i < n; i++) q[i] = (uint8_t)clampi(roundi((x[i] - xmin) / best.s), 0, nmax);
    }
    return best;
}

/* Squared error of x ~ s * q - m with q rounded in [0, nmax]; q filled. */
static float asym_err(const float *x, int n, int nmax, float s, float m, uint8_t *q) {
    float is = s > 0 ? 1.0f / s : 0, e = 0;
    for (int i = 0; i < n; i++) {
        int v = s > 0 ? clampi(roundi((x[i] + m) * is), 0, nmax) : 0;
        q[i] = (uint8_t)v;
        float r = x[i] - (s * (float)v - m);
        e += r * r;
    }
    return e;
}

/* ---- legacy 32-weight blocks ------------------------------------------------------------------ */

static void q4_0(const float *x, void *dst, int64_t nb) {
    hai_block_q4_0 *b = dst;
    int8_t q[HAI_QK];
    for (int64_t i = 0; i < nb; i++, b++, x += HAI_QK) {
        float d = f16r(sym_fit(x, HAI_QK, -8, 7, q));
        b->d = hai_f32_to_f16(d);
        sym_round(x, HAI_QK, -8, 7, d, q);
        for (int j = 0; j < HAI_QK / 2; j++) b->qs[j] = (uint8_t)((q[j] + 8) | ((q[j + 16] + 8) << 4));
    }
}

static void q5_0(const float *x, void *dst, int64_t nb) {
    hai_block_q5_0 *b = dst;
    int8_t q[HAI_QK];
    for (int64_t i = 0; i < nb; i++, b++, x += HAI_QK) {
        float d = f16r(sym_fit(x, HAI_QK, -16, 15, q));
        b->d = hai_f32_to_f16(d);
        sym_round(x, HAI_QK, -16, 15, d, q);
        uint32_t qh = 0;
        for (int j = 0; j < HAI_QK; j++) qh |= (uint32_t)(((q[j] + 16) >> 4) & 1) << j;
        for (int j = 0; j < HAI_QK / 2; j++) b->qs[j] = (uint8_t)(((q[j] + 16) & 0xF) | (((q[j + 16] + 16) & 0xF) << 4));
        for (int k = 0; k < 4; k++) b->qh[k] = (uint8_t)(qh >> (8 * k));
    }
}

static void q8_0(const float *x, void *dst, int64_t nb) {
    hai_block_q8_0 *b = dst;
    for (int64_t i = 0; i < nb; i++, b++, x += HAI_QK) {
        float d = f16r(sym_fit(x, HAI_QK, -127, 127, b->qs)); /* -128 is left out: kernels negate */
        b->d = hai_f32_to_f16(d);
        sym_round(x, HAI_QK, -127, 127, d, b->qs);
    }
}

/* Affine blocks store s and o as f16: fit, round them, then round the weights with them. */
static void q4_1(const float *x, void *dst, int64_t nb) {
    hai_block_q4_1 *b = dst;
    uint8_t q[HAI_QK];
    for (int64_t i = 0; i < nb; i++, b++, x += HAI_QK) {
        fit2 f = asym_fit(x, HAI_QK, 15, false, q);
        float s = f16r(f.s), o = f16r(f.o);
        b->d = hai_f32_to_f16(s), b->m = hai_f32_to_f16(o);
        asym_err(x, HAI_QK, 15, s, -o, q);
        for (int j = 0; j < HAI_QK / 2; j++) b->qs[j] = (uint8_t)(q[j] | (q[j + 16] << 4));
    }
}

static void q5_1(const float *x, void *dst, int64_t nb) {
    hai_block_q5_1 *b = dst;
    uint8_t q[HAI_QK];
    for (int64_t i = 0; i < nb; i++, b++, x += HAI_QK) {
        fit2 f = asym_fit(x, HAI_QK, 31, false, q);
        float s = f16r(f.s), o = f16r(f.o);
        b->d = hai_f32_to_f16(s), b->m = hai_f32_to_f16(o);
        asym_err(x, HAI_QK, 31, s, -o, q);
        uint32_t qh = 0;
        for (int j = 0; j < HAI_QK; j++) qh |= (uint32_t)(q[j] >> 4) << j;
        for (int j = 0; j < HAI_QK / 2; j++) b->qs[j] = (uint8_t)((q[j] & 0xF) | ((q[j + 16] & 0xF) << 4));
        for (int k = 0; k < 4; k++) b->qh[k] = (uint8_t)(qh >> (8 * k));
    }
}

/* ---- the non-linear grid (IQ4_NL, IQ4_XS) ------------------------------------------------------- */

static int grid_nearest(float v) { /* index of the grid value nearest to v */
    int lo = 0, hi = 15;
    while (hi - lo > 1) {
        int mid = (lo + hi) / 2;
        if (v < (float)hai_iq4nl_values[mid]) hi = mid;
        else lo = mid;
    }
    return v - (float)hai_iq4nl_values[lo] <= (float)hai_iq4nl_values[hi] - v ? lo : hi;
}

static float grid_try(const float *x, int n, float d0, uint8_t *q, float *err, float sxx) {
    float id = 1.0f / d0, sxv = 0, svv = 0;
    for (int i = 0; i < n; i++) {
        int k = grid_nearest(x[i] * id);
        q[i] = (uint8_t)k;
        float v = (float)hai_iq4nl_values[k];
        sxv += x[i] * v, svv += v * v;
    }
    *err = sxx - sxv * sxv / svv;
    return sxv / svv;
}

/* The best scale for x ~ d * grid[q]. */
static float grid_fit(const float *x, int n, uint8_t *q) {
    float amax = 0, vmax = 0, sxx = 0;
    for (int i = 0; i < n; i++) {
        sxx += x[i] * x[i];
        if (fabsf(x[i]) > amax) amax = fabsf(x[i]), vmax = x[i];
    }
    if (amax < 1e-30f) {
        memset(q, 8, (size_t)n); /* grid[8] = 1: the smallest magnitude; d = 0 makes it 0 */
        return 0;
    }
    uint8_t tmp[256];
    float best = FLT_MAX, best_d = 0;
    for (int side = 0; side < 2; side++) {
        float level = side ? 113.0f : -127.0f;
        for (int k = -STEPS; k <= STEPS; k++) {
            float l = level * (1.0f + (float)k * (0.15f / STEPS));
            float e, d = grid_try(x, n, vmax / l, tmp, &e, sxx);
            if (e < best) best = e, best_d = d, memcpy(q, tmp, (size_t)n);
        }
    }
    for (int it = 0; it < 4; it++) {
        float e, d = grid_try(x, n, best_d, tmp, &e, sxx);
        if (e >= best) break;
        best = e, best_d = d;
        memcpy(q, tmp, (size_t)n);
    }
    return best_d;
}

static void grid_round(const float *x, int n, float d, uint8_t *q) {
    float id = d != 0 ? 1.0f / d : 0;
    for (int i = 0; i < n; i++) q[i] = (uint8_t)(d != 0 ? grid_nearest(x[i] * id) : 8);
}

static void iq4_nl(const float *x, void *dst, int64_t nb) {
    hai_block_iq4_nl *b = dst;
    uint8_t q[HAI_QK];
    for (int64_t i = 0; i < nb; i++, b++, x += HAI_QK) {
        float d = f16r(grid_fit(x, HAI_QK, q));
        b->d = hai_f32_to_f16(d);
        grid_round(x, HAI_QK, d, q);
        for (int j = 0; j < HAI_QK / 2; j++) b->qs[j] = (uint8_t)(q[j] | (q[j + 16] << 4));
    }
}

static float grid_err(const float *x, int n, float d, uint8_t *q) {
    grid_round(x, n, d, q);
    float e = 0;
    for (int i = 0; i < n; i++) {
        float r = x[i] - d * (float)hai_iq4nl_values[q[i]];
        e += r * r;
    }
    return e;
}

/* ---- super-block scales ------------------------------------------------------------------------- */

/* Signed sub-block scales s[0..n) as integers in [lo, hi] of a super scale d (the largest in
 * magnitude at lo); returns d as stored. */
static float super_signed(const float *s, int n, int lo, int hi, int *is) {
    float amax = 0, vmax = 0;
    for (int j = 0; j < n; j++)
        if (fabsf(s[j]) > amax) amax = fabsf(s[j]), vmax = s[j];
    if (amax == 0) {
        for (int j = 0; j < n; j++) is[j] = 0;
        return 0;
    }
    float d = f16r(vmax / (float)lo);
    for (int j = 0; j < n; j++) is[j] = d != 0 ? clampi(roundi(s[j] / d), lo, hi) : 0;
    return d;
}

/* Unsigned scales in [0, top] of a super scale; returns d as stored. */
static float super_unsigned(const float *s, int n, int top, int *is) {
    float mx = 0;
    for (int j = 0; j < n; j++) mx = fmaxf(mx, s[j]);
    float d = f16r(mx / (float)top);
    for (int j = 0; j < n; j++) is[j] = d > 0 ? clampi(roundi(s[j] / d), 0, top) : 0;
    return d;
}

/* The integer (scale, min) of each affine sub-block searched around its current value for the
 * least error with super scales d, dm; levels to q; returns the total error. */
static float affine_search(const float *x, int nsub, int sub, int nmax, int top, float d, float dm, int *isc, int *imn, uint8_t *q) {
    uint8_t tmp[32];
    float total = 0;
    for (int j = 0; j < nsub; j++) {
        const float *xs = x + sub * j;
        int bs = isc[j], bm = imn[j];
        float best = FLT_MAX;
        for (int a = isc[j] - 1; a <= isc[j] + 1; a++) {
            if (a < 0 || a > top) continue;
            for (int m = imn[j] - 1; m <= imn[j] + 1; m++) {
                if (m < 0 || m > top) continue;
                float e = asym_err(xs, sub, nmax, d * (float)a, dm * (float)m, tmp);
                if (e < best) best = e, bs = a, bm = m, memcpy(q + sub * j, tmp, (size_t)sub);
            }
        }
        isc[j] = bs, imn[j] = bm;
        total += best;
    }
    return total;
}

/* Sub-blocks of an affine K-quant (value = d*sc*q - dm*m): each sub-block fitted alone, its
 * scale and min rounded to integers of two super scales, the integers searched, then the super
 * scales fitted by least squares to the integers and levels, and the search repeated while the
 * error falls. */
static void affine_subblocks(const float *x, int nsub, int sub, int nmax, int top, float *d_out, float *dm_out, int *isc, int *imn,
                             uint8_t *q) {
    float sc[16], mn[16];
    for (int j = 0; j < nsub; j++) {
        fit2 f = asym_fit(x + sub * j, sub, nmax, true, q + sub * j);
        sc[j] = f.s, mn[j] = -f.o;
    }
    float d = super_unsigned(sc, nsub, top, isc), dm = super_unsigned(mn, nsub, top, imn);
    float err = affine_search(x, nsub, sub, nmax, top, d, dm, isc, imn, q);
    uint8_t q2[HAI_QK_K];
    int isc2[16], imn2[16];
    for (int it = 0; it < 3; it++) {
        double saa = 0, sab = 0, sbb = 0, sxa = 0, sxb = 0; /* x ~ d*A - dm*B */
        for (int j = 0; j < nsub; j++)
            for (int l = 0; l < sub; l++) {
                double a = (double)isc[j] * q[sub * j + l], bb = imn[j], xv = x[sub * j + l];
                saa += a * a, sab += a * bb, sbb += bb * bb, sxa += xv * a, sxb += xv * bb;
            }
        double det = saa * sbb - sab * sab;
        if (det <= 0) break;
        float nd = f16r((float)((sxa * sbb - sab * sxb) / det)), ndm = f16r((float)((sab * sxa - saa * sxb) / det));
        if (!(nd > 0) || !(ndm >= 0)) break;
        memcpy(isc2, isc, sizeof(int) * (size_t)nsub), memcpy(imn2, imn, sizeof(int) * (size_t)nsub);
        float e2 = affine_search(x, nsub, sub, nmax, top, nd, ndm, isc2, imn2, q2);
        if (e2 >= err) break;
        err = e2, d = nd, dm = ndm;
        memcpy(isc, isc2, sizeof(int) * (size_t)nsub), memcpy(imn, imn2, sizeof(int) * (size_t)nsub);
        memcpy(q, q2, (size_t)(nsub * sub));
    }
    *d_out = d, *dm_out = dm;
}

static float signed_search(const float *x, int nsub, int sub, int qlo, int qhi, int lo, int hi, float d, int *is, int8_t *q) {
    int8_t tmp[32];
    float total = 0;
    for (int j = 0; j < nsub; j++) {
        const float *xs = x + sub * j;
        int bs = is[j];
        float best = FLT_MAX;
        for (int a = is[j] - 1; a <= is[j] + 1; a++) {
            if (a < lo || a > hi) continue;
            float e = sym_err(xs, sub, qlo, qhi, d * (float)a, tmp);
            if (e < best) best = e, bs = a, memcpy(q + sub * j, tmp, (size_t)sub);
        }
        is[j] = bs;
        total += best;
    }
    return total;
}

/* The same for symmetric K-quants: signed scale integers in [lo, hi]; levels in [qlo, qhi]. */
static float signed_subblocks(const float *x, int nsub, int sub, int qlo, int qhi, int lo, int hi, int *is, int8_t *q) {
    float s[16];
    for (int j = 0; j < nsub; j++) s[j] = sym_fit(x + sub * j, sub, qlo, qhi, q + sub * j);
    float d = super_signed(s, nsub, lo, hi, is);
    float err = signed_search(x, nsub, sub, qlo, qhi, lo, hi, d, is, q);
    int8_t q2[HAI_QK_K];
    int is2[16];
    for (int it = 0; it < 3 && d != 0; it++) {
        double saa = 0, sxa = 0;
        for (int j = 0; j < nsub; j++)
            for (int l = 0; l < sub; l++) {
                double a = (double)is[j] * q[sub * j + l];
                saa += a * a, sxa += (double)x[sub * j + l] * a;
            }
        if (saa <= 0) break;
        float nd = f16r((float)(sxa / saa));
        if (nd == 0) break;
        memcpy(is2, is, sizeof(int) * (size_t)nsub);
        float e2 = signed_search(x, nsub, sub, qlo, qhi, lo, hi, nd, is2, q2);
        if (e2 >= err) break;
        err = e2, d = nd;
        memcpy(is, is2, sizeof(int) * (size_t)nsub);
        memcpy(q, q2, (size_t)(nsub * sub));
    }
    return d;
}

/* ---- K-quants ---------------------------------------------------------------------------------- */

static void q2_K(const float *x, void *dst, int64_t nb) {
    hai_block_q2_K *b = dst;
    uint8_t q[HAI_QK_K];
    int isc[16], imn[16];
    for (int64_t i = 0; i < nb; i++, b++, x += HAI_QK_K) {
        float d, dm;
        affine_subblocks(x, 16, 16, 3, 15, &d, &dm, isc, imn, q);
        b->d = hai_f32_to_f16(d), b->dmin = hai_f32_to_f16(dm);
        for (int j = 0; j < 16; j++) b->scales[j] = (uint8_t)(isc[j] | (imn[j] << 4));
        memset(b->qs, 0, sizeof b->qs);
        for (int w = 0; w < HAI_QK_K; w++) b->qs[32 * (w / 128) + w % 32] |= (uint8_t)(q[w] << (2 * ((w / 32) % 4)));
    }
}

static void q3_K(const float *x, void *dst, int64_t nb) {
    hai_block_q3_K *b = dst;
    int8_t q[HAI_QK_K];
    int is[16];
    for (int64_t i = 0; i < nb; i++, b++, x += HAI_QK_K) {
        float d = signed_subblocks(x, 16, 16, -4, 3, -32, 31, is, q);
        b->d = hai_f32_to_f16(d);
        memset(b->scales, 0, sizeof b->scales);
        for (int j = 0; j < 16; j++) {
            int u = is[j] + 32;
            b->scales[j % 8] |= (uint8_t)((u & 0xF) << (j < 8 ? 0 : 4));
            b->scales[8 + j % 4] |= (uint8_t)((u >> 4) << (2 * (j / 4)));
        }
        memset(b->qs, 0, sizeof b->qs);
        memset(b->hmask, 0, sizeof b->hmask);
        for (int w = 0; w < HAI_QK_K; w++) {
            int u = q[w] + 4; /* [0, 7]: low 2 bits as Q2_K, the third in hmask */
            b->qs[32 * (w / 128) + w % 32] |= (uint8_t)((u & 3) << (2 * ((w / 32) % 4)));
            b->hmask[w % 32] |= (uint8_t)(((u >> 2) & 1) << (w / 32));
        }
    }
}

static void pack_k_scales(const int *isc, const int *imn, uint8_t *s) {
    for (int j = 0; j < 4; j++) {
        s[j] = (uint8_t)(isc[j] | ((isc[j + 4] >> 4) << 6));
        s[j + 4] = (uint8_t)(imn[j] | ((imn[j + 4] >> 4) << 6));
        s[j + 8] = (uint8_t)((isc[j + 4] & 0xF) | ((imn[j + 4] & 0xF) << 4));
    }
}

/* 256 values of up to 4 bits (higher bits dropped) into qs[128]: pair p of 32-blocks shares
 * qs[32p..32p+32), the first block in the low nibbles */
static void pack_k_nibbles(const uint8_t *q, uint8_t *qs) {
    for (int p = 0; p < 4; p++)
        for (int l = 0; l < 32; l++) qs[32 * p + l] = (uint8_t)((q[64 * p + l] & 0xF) | ((q[64 * p + 32 + l] & 0xF) << 4));
}

static void q4_K(const float *x, void *dst, int64_t nb) {
    hai_block_q4_K *b = dst;
    uint8_t q[HAI_QK_K];
    int isc[8], imn[8];
    for (int64_t i = 0; i < nb; i++, b++, x += HAI_QK_K) {
        float d, dm;
        affine_subblocks(x, 8, 32, 15, 63, &d, &dm, isc, imn, q);
        b->d = hai_f32_to_f16(d), b->dmin = hai_f32_to_f16(dm);
        pack_k_scales(isc, imn, b->scales);
        pack_k_nibbles(q, b->qs);
    }
}

static void q5_K(const float *x, void *dst, int64_t nb) {
    hai_block_q5_K *b = dst;
    uint8_t q[HAI_QK_K];
    int isc[8], imn[8];
    for (int64_t i = 0; i < nb; i++, b++, x += HAI_QK_K) {
        float d, dm;
        affine_subblocks(x, 8, 32, 31, 63, &d, &dm, isc, imn, q);
        b->d = hai_f32_to_f16(d), b->dmin = hai_f32_to_f16(dm);
        pack_k_scales(isc, imn, b->scales);
        memset(b->qh, 0, sizeof b->qh);
        pack_k_nibbles(q, b->qs);
        for (int w = 0; w < HAI_QK_K; w++) b->qh[w % 32] |= (uint8_t)((q[w] >> 4) << (w / 32));
    }
}

static void q6_K(const float *x, void *dst, int64_t nb) {
    hai_block_q6_K *b = dst;
    int8_t q[HAI_QK_K];
    int is[16];
    for (int64_t i = 0; i < nb; i++, b++, x += HAI_QK_K) {
        float d = signed_subblocks(x, 16, 16, -32, 31, -128, 127, is, q);
        b->d = hai_f32_to_f16(d);
        for (int j = 0; j < 16; j++) b->scales[j] = (int8_t)is[j];
        memset(b->ql, 0, sizeof b->ql);
        memset(b->qh, 0, sizeof b->qh);
        for (int w = 0; w < HAI_QK_K; w++) {
            int h = w / 128, k = (w / 32) % 4, l = w % 32, u = q[w] + 32;
            b->ql[64 * h + l + 32 * (k & 1)] |= (uint8_t)((u & 0xF) << (k < 2 ? 0 : 4));
            b->qh[32 * h + l] |= (uint8_t)((u >> 4) << (2 * k));
        }
    }
}

static void iq4_xs(const float *x, void *dst, int64_t nb) {
    hai_block_iq4_xs *b = dst;
    uint8_t q[HAI_QK_K], tmp[32];
    float s[8];
    int is[8];
    for (int64_t i = 0; i < nb; i++, b++, x += HAI_QK_K) {
        for (int j = 0; j < 8; j++) s[j] = grid_fit(x + 32 * j, 32, q + 32 * j);
        float d = super_signed(s, 8, -32, 31, is);
        for (int j = 0; j < 8; j++) { /* neighbouring scale integers, levels again */
            int bs = is[j];
            float best = FLT_MAX;
            for (int a = is[j] - 1; a <= is[j] + 1; a++) {
                if (a < -32 || a > 31) continue;
                float e = grid_err(x + 32 * j, 32, d * (float)a, tmp);
                if (e < best) best = e, bs = a, memcpy(q + 32 * j, tmp, 32);
            }
            is[j] = bs;
        }
        b->d = hai_f32_to_f16(d);
        b->scales_h = 0;
        memset(b->scales_l, 0, sizeof b->scales_l);
        for (int j = 0; j < 8; j++) {
            int u = is[j] + 32;
            b->scales_l[j / 2] |= (uint8_t)((u & 0xF) << (4 * (j % 2)));
            b->scales_h |= (uint16_t)((u >> 4) << (2 * j));
            for (int l = 0; l < 16; l++) b->qs[16 * j + l] = (uint8_t)(q[32 * j + l] | (q[32 * j + 16 + l] << 4));
        }
    }
}

/* ---- entry --------------------------------------------------------------------------------------- */

typedef void (*qfn)(const float *x, void *dst, int64_t nblocks);

static qfn quantizer(uint32_t type) {
    switch (type) {
    case HAI_TYPE_Q4_0: return q4_0;
    case HAI_TYPE_Q4_1: return q4_1;
    case HAI_TYPE_Q5_0: return q5_0;
    case HAI_TYPE_Q5_1: return q5_1;
    case HAI_TYPE_Q8_0: return q8_0;
    case HAI_TYPE_Q2_K: return q2_K;
    case HAI_TYPE_Q3_K: return q3_K;
    case HAI_TYPE_Q4_K: return q4_K;
    case HAI_TYPE_Q5_K: return q5_K;
    case HAI_TYPE_Q6_K: return q6_K;
    case HAI_TYPE_IQ4_NL: return iq4_nl;
    case HAI_TYPE_IQ4_XS: return iq4_xs;
    default: return NULL;
    }
}

bool hai_type_can_quantize(uint32_t type) {
    return quantizer(type) || type == HAI_TYPE_F32 || type == HAI_TYPE_F16 || type == HAI_TYPE_BF16;
}

hai_status hai_quantize(uint32_t type, const float *src, void *dst, int64_t n, hai_error *err) {
    const hai_type_traits *t = hai_type_traits_get(type);
    if (!t) return hai_fail(err, HAI_ERR_INVALID, "quantize: unknown type id %u", type);
    if (n < 0 || n % t->block_size)
        return hai_fail(err, HAI_ERR_INVALID, "quantize: %lld elements is not a multiple of the %s block size %lld", (long long)n,
                        t->name, (long long)t->block_size);
    qfn f = quantizer(type);
    if (!f) return hai_quantize_ref(type, src, dst, n, err); /* F32, F16, BF16: a conversion */
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(src[i])) return hai_fail(err, HAI_ERR_INVALID, "quantize: element %lld is not a finite number", (long long)i);
    f(src, dst, n / t->block_size);
    return HAI_OK;
}
