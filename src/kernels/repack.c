/* Weight layouts of hai's own (see kernels.h): the conversions done at load time. */
#include <string.h>

#include "kernels.h"

size_t hai_repack_row_bytes(uint32_t to, int64_t n) {
    int64_t nb = n / 32, np = (nb + 1) / 2;
    return to == HAI_WTYPE_Q4_0X2 ? (size_t)np * 32 + (size_t)np * 2 * sizeof(uint16_t) : 0;
}

void hai_repack_row(uint32_t from, uint32_t to, const void *src, void *dst, int64_t n) {
    if (from != HAI_TYPE_Q4_0 || to != HAI_WTYPE_Q4_0X2) return;
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
