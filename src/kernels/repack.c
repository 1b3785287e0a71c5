/* Weight layouts of hai's own (see kernels.h): the conversions done at load time, and the rows
 * of a converted matrix read back (lookups, the matrix path's unpacking). */
#include <string.h>

#include "kernels.h"

uint32_t hai_repack_from(uint32_t t) {
    switch (t) {
    case HAI_WTYPE_Q4_0X2: return HAI_TYPE_Q4_0;
    case HAI_WTYPE_Q8_0X16: return HAI_TYPE_Q8_0;
    case HAI_WTYPE_Q4_0X16: return HAI_TYPE_Q4_0;
    case HAI_WTYPE_Q4_KX16: return HAI_TYPE_Q4_K;
    case HAI_WTYPE_Q6_KX16: return HAI_TYPE_Q6_K;
    default: return t;
    }
}

size_t hai_repack_row_bytes(uint32_t to, int64_t n) {
    int64_t nb = n / 32, np = (nb + 1) / 2;
    switch (to) {
    case HAI_WTYPE_Q4_0X2: return (size_t)np * 32 + (size_t)np * 2 * sizeof(uint16_t);
    case HAI_WTYPE_Q8_0X16: return ((size_t)nb * sizeof(hai_block_q8_0) + 3) / 4 * 4; /* panels of 64-byte multiples */
    case HAI_WTYPE_Q4_0X16: return ((size_t)nb * sizeof(hai_block_q4_0) + 3) / 4 * 4;
    case HAI_WTYPE_Q4_KX16: return (size_t)(n / 256) * sizeof(hai_block_q4_K);
    case HAI_WTYPE_Q6_KX16: return (size_t)(n / 256) * 212;
    default: return 0;
    }
}

size_t hai_repack_bytes(uint32_t to, int64_t n, int64_t rows) {
    int64_t r = hai_wtype_panels(to) ? (rows + 15) / 16 * 16 : rows;
    return hai_repack_row_bytes(to, n) * (size_t)r;
}

static void q4_0x2_row(const void *src, void *dst, int64_t n) {
    const hai_block_q4_0 *x = src;
    int64_t nb = n / 32, np = (nb + 1) / 2;
    for (int64_t p = 0; p < np; p++) {
        const hai_block_q4_0 *a = &x[2 * p], *b = 2 * p + 1 < nb ? &x[2 * p + 1] : NULL;
        uint8_t *q = (uint8_t *)hai_q4x2_pair(dst, np, p);
        uint16_t *d = (uint16_t *)hai_q4x2_scales(dst, 2 * p);
        for (int k = 0; k < 32; k++) {
            int ea = k < 16 ? a->qs[k] & 0xF : a->qs[k - 16] >> 4; /* element k of each block */
            int eb = !b ? 8 : k < 16 ? b->qs[k] & 0xF : b->qs[k - 16] >> 4;
            q[k] = (uint8_t)(ea | eb << 4);
        }
        memcpy(d, &a->d, 2);
        uint16_t db = b ? b->d : 0;
        memcpy(d + 1, &db, 2);
    }
}

/* ---- the panel layouts: row r's lane in panel r / 16 --------------------------------------------- */

static uint8_t *panel_of(uint32_t t, const void *w, int64_t n, int64_t r) {
    return (uint8_t *)w + (size_t)(r / 16) * 16 * hai_repack_row_bytes(t, n);
}

/* The layouts whose super-blocks go in runs of one dword a lane: a block's bytes there (Q6_K's
 * 210 padded to a whole dword). */
#define DWORD_BLOCK_MAX 212
static size_t dword_block(uint32_t t) { return t == HAI_WTYPE_Q4_KX16 ? sizeof(hai_block_q4_K) : t == HAI_WTYPE_Q6_KX16 ? 212 : 0; }

/* Block b of lane l in its GGUF form to (to_panel) or from its place in the panel p (blk: room
 * for DWORD_BLOCK_MAX bytes). Q8_0X16: the 32 codes biased by 128 in runs of [16 lanes][4], the
 * scales after all blocks. Q4_0X16: the 16 bytes of nibbles likewise in 4 runs, as they are. Q4_KX16, Q6_KX16: the super-blocks of the 16 lanes as runs of
 * [16 lanes][one dword] (36 runs, 2304 bytes; 53 runs, 3392 bytes). */
static void panel_block(uint32_t t, uint8_t *p, int64_t n, int l, int64_t b, uint8_t *blk, bool to_panel) {
    if (t == HAI_WTYPE_Q8_0X16) {
        hai_block_q8_0 *x = (hai_block_q8_0 *)blk;
        uint8_t *q = p + 512 * b + 4 * l, *d = p + 512 * (n / 32) + 32 * b + 2 * l;
        for (int k = 0; k < 32; k++)
            if (to_panel) q[64 * (k / 4) + k % 4] = (uint8_t)(x->qs[k] + 128);
            else x->qs[k] = (int8_t)(q[64 * (k / 4) + k % 4] - 128);
        if (to_panel) memcpy(d, &x->d, 2);
        else memcpy(&x->d, d, 2);
    } else if (t == HAI_WTYPE_Q4_0X16) {
        hai_block_q4_0 *x = (hai_block_q4_0 *)blk;
        uint8_t *q = p + 256 * b + 4 * l, *d = p + 256 * (n / 32) + 32 * b + 2 * l;
        for (int g = 0; g < 4; g++)
            if (to_panel) memcpy(q + 64 * g, x->qs + 4 * g, 4);
            else memcpy(x->qs + 4 * g, q + 64 * g, 4);
        if (to_panel) memcpy(d, &x->d, 2);
        else memcpy(&x->d, d, 2);
    } else {
        size_t db = dword_block(t);
        uint8_t *g = p + 16 * db * (size_t)b + 4 * l;
        for (size_t i = 0; i < db / 4; i++)
            if (to_panel) memcpy(g + 64 * i, blk + 4 * i, 4);
            else memcpy(blk + 4 * i, g + 64 * i, 4);
    }
}

void hai_panel_block(uint32_t type, const void *w, int64_t n, int64_t r, int64_t b, void *blk) {
    uint8_t x[DWORD_BLOCK_MAX];
    panel_block(type, panel_of(type, w, n, r), n, (int)(r % 16), b, x, false);
    memcpy(blk, x, hai_type_block_bytes(hai_repack_from(type)));
}

/* Q4_0X16 and Q8_0X16 as panel_block lays them out, with the sizes known: a row's blocks straight
 * into its lane (the generic path calls through per block; placing weights streamed from the file
 * spent a fifth of a decode step there). */
static void panels_q(uint32_t to, const uint8_t *src, size_t stride, uint8_t *dst, int64_t n, int64_t rows, const uint8_t *zero) {
    int64_t nb = n / 32;
    size_t rb = hai_repack_row_bytes(to, n), bb = to == HAI_WTYPE_Q4_0X16 ? sizeof(hai_block_q4_0) : sizeof(hai_block_q8_0);
    size_t codes = to == HAI_WTYPE_Q4_0X16 ? 256 : 512; /* a block's bytes of codes in a panel */
    for (int64_t r = 0; r < (rows + 15) / 16 * 16; r++) {
        uint8_t *p = dst + (size_t)(r / 16) * 16 * rb, *d = p + codes * (size_t)nb + 2 * (r % 16);
        uint8_t *q = p + 4 * (r % 16);
        const uint8_t *x = r < rows ? src + (size_t)r * stride : NULL;
        for (int64_t b = 0; b < nb; b++, q += codes, d += 32) {
            const uint8_t *blk = x ? x + bb * (size_t)b : zero;
            memcpy(d, blk, 2); /* the scale: the block's first field in both */
            if (to == HAI_WTYPE_Q4_0X16) {
                for (int g = 0; g < 4; g++) memcpy(q + 64 * g, blk + 2 + 4 * g, 4);
            } else {
                for (int g = 0; g < 8; g++) { /* codes biased by 128 */
                    uint32_t v;
                    memcpy(&v, blk + 2 + 4 * g, 4);
                    v ^= 0x80808080u;
                    memcpy(q + 64 * g, &v, 4);
                }
            }
        }
    }
}

void hai_repack(uint32_t from, uint32_t to, const void *src, size_t src_stride, void *dst, int64_t n, int64_t rows) {
    if (hai_repack_from(to) != from || from == to) return;
    if (!hai_wtype_panels(to)) {
        for (int64_t r = 0; r < rows; r++) q4_0x2_row((const uint8_t *)src + (size_t)r * src_stride, (uint8_t *)dst + (size_t)r * hai_repack_row_bytes(to, n), n);
        return;
    }
    int64_t qb = hai_type_block_size(from), nb = n / qb;
    size_t bb = hai_type_block_bytes(from);
    uint8_t zero[DWORD_BLOCK_MAX] = {0}, blk[DWORD_BLOCK_MAX] = {0}; /* the last panel's missing rows: zero scales and codes */
    if (to == HAI_WTYPE_Q4_0X16 || to == HAI_WTYPE_Q8_0X16) { /* the common layouts unrolled: streamed experts are placed per token */
        panels_q(to, (const uint8_t *)src, src_stride, (uint8_t *)dst, n, rows, zero);
        return;
    }
    for (int64_t r = 0; r < (rows + 15) / 16 * 16; r++)
        for (int64_t b = 0; b < nb; b++) {
            memcpy(blk, r < rows ? (const uint8_t *)src + (size_t)r * src_stride + bb * (size_t)b : zero, bb);
            panel_block(to, panel_of(to, dst, n, r), n, (int)(r % 16), b, blk, true);
        }
}

void hai_repacked_row(uint32_t type, const void *w, int64_t n, int64_t r, float *out) {
    int64_t nb = n / 32, np = (nb + 1) / 2;
    if (type == HAI_WTYPE_Q4_0X2) {
        const uint8_t *row = (const uint8_t *)w + (size_t)r * hai_repack_row_bytes(type, n);
        for (int64_t b = 0; b < nb; b++) {
            hai_block_q4_0 x;
            const uint8_t *q = hai_q4x2_pair(row, np, b / 2);
            for (int k = 0; k < 16; k++) x.qs[k] = (uint8_t)(((q[k] >> (4 * (b % 2))) & 0xF) | ((q[k + 16] >> (4 * (b % 2))) & 0xF) << 4);
            x.d = *hai_q4x2_scales(row, b);
            hai_dequantize(HAI_TYPE_Q4_0, &x, out + 32 * b, 32, NULL);
        }
    } else if (hai_wtype_panels(type)) {
        uint32_t from = hai_repack_from(type);
        int64_t qb = hai_type_block_size(from);
        for (int64_t b = 0; b < n / qb; b++) {
            uint8_t blk[DWORD_BLOCK_MAX];
            hai_panel_block(type, w, n, r, b, blk);
            hai_dequantize(from, blk, out + qb * b, qb, NULL);
        }
    }
}
