/* Weight layouts of hai's own (see kernels.h): the conversions done at load time, and the rows
 * of a converted matrix read back (lookups). */
#include <string.h>

#include "../fp16.h"
#include "kernels.h"

size_t hai_repack_row_bytes(uint32_t to, int64_t n) {
    int64_t nb = n / 32, np = (nb + 1) / 2;
    switch (to) {
    case HAI_WTYPE_Q4_0X2: return (size_t)np * 32 + (size_t)np * 2 * sizeof(uint16_t);
    case HAI_WTYPE_Q8_0X16: return ((size_t)nb * sizeof(hai_block_q8_0) + 3) / 4 * 4; /* panels of 64-byte multiples */
    default: return 0;
    }
}

size_t hai_repack_bytes(uint32_t to, int64_t n, int64_t rows) {
    int64_t r = hai_wtype_panels(to) ? (rows + 15) / 16 * 16 : rows;
    return hai_repack_row_bytes(to, n) * (size_t)r;
}

uint32_t hai_repack_from(uint32_t t) {
    switch (t) {
    case HAI_WTYPE_Q4_0X2: return HAI_TYPE_Q4_0;
    case HAI_WTYPE_Q8_0X16: return HAI_TYPE_Q8_0;
    default: return t;
    }
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

/* Q8_0X16: row r's place in its panel */
static uint8_t *q8x16_panel(const void *w, int64_t n, int64_t r) {
    return (uint8_t *)w + (size_t)(r / 16) * 16 * hai_repack_row_bytes(HAI_WTYPE_Q8_0X16, n);
}

static void q8_0x16_row(const void *src, void *w, int64_t n, int64_t r) {
    const hai_block_q8_0 *x = src;
    int64_t nb = n / 32;
    uint8_t *p = q8x16_panel(w, n, r);
    int l = (int)(r % 16);
    for (int64_t b = 0; b < nb; b++) {
        for (int k = 0; k < 32; k++) p[512 * b + 64 * (k / 4) + 4 * l + k % 4] = (uint8_t)(x[b].qs[k] + 128);
        memcpy(p + 512 * nb + 32 * b + 2 * l, &x[b].d, 2);
    }
}

void hai_repack(uint32_t from, uint32_t to, const void *src, size_t src_stride, void *dst, int64_t n, int64_t rows) {
    if (hai_repack_from(to) != from || from == to) return;
    size_t rb = hai_repack_row_bytes(to, n);
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *s = (const uint8_t *)src + (size_t)r * src_stride;
        if (to == HAI_WTYPE_Q4_0X2) q4_0x2_row(s, (uint8_t *)dst + (size_t)r * rb, n);
        else q8_0x16_row(s, dst, n, r);
    }
    if (hai_wtype_panels(to) && rows % 16) { /* the last panel's missing rows: zero weights (code 128) and scales */
        uint8_t *p = q8x16_panel(dst, n, rows - 1);
        int64_t nb = n / 32;
        for (int64_t b = 0; b < nb; b++)
            for (int l = (int)(rows % 16); l < 16; l++) {
                for (int g = 0; g < 8; g++) memset(p + 512 * b + 64 * g + 4 * l, 128, 4);
                memset(p + 512 * nb + 32 * b + 2 * l, 0, 2);
            }
    }
}

void hai_repacked_row(uint32_t type, const void *w, int64_t n, int64_t r, float *out) {
    int64_t nb = n / 32, np = (nb + 1) / 2;
    if (type == HAI_WTYPE_Q4_0X2) {
        const uint8_t *row = (const uint8_t *)w + (size_t)r * hai_repack_row_bytes(type, n);
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *q = hai_q4x2_pair(row, np, b / 2);
            float d = hai_f16_to_f32(*hai_q4x2_scales(row, b));
            for (int k = 0; k < 32; k++) out[32 * b + k] = d * (float)(((q[k] >> (4 * (b % 2))) & 0xF) - 8);
        }
    } else if (type == HAI_WTYPE_Q8_0X16) {
        const uint8_t *p = q8x16_panel(w, n, r);
        int l = (int)(r % 16);
        for (int64_t b = 0; b < nb; b++) {
            uint16_t h;
            memcpy(&h, p + 512 * nb + 32 * b + 2 * l, 2);
            float d = hai_f16_to_f32(h);
            for (int k = 0; k < 32; k++) out[32 * b + k] = d * (float)((int)p[512 * b + 64 * (k / 4) + 4 * l + k % 4] - 128);
        }
    }
}
