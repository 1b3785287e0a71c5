/* Quantized keys in the transposed block layout (kernels.h): rows in and out. A key is stored
 * once a token and a layer and read back only by context shift and saved states, so these are
 * plain byte moves. */
#include <string.h>

#include "kernels.h"

void hai_kvq_key_put(uint32_t type, void *block, uint32_t j, const void *row, int n) {
    size_t bb = hai_kvq_blk_bytes(type), nv = bb - 2; /* a block's bytes, its values' */
    const uint8_t *r = row;
    for (int b = 0; b < n / 32; b++) {
        uint8_t *g = (uint8_t *)block + (size_t)b * HAI_KT * bb; /* the group: 16 scales, then the values */
        const uint8_t *rb = r + (size_t)b * bb;
        memcpy(g + 2 * j, rb, 2);
        for (size_t i = 0; i < nv; i++) g[2 * HAI_KT + i * HAI_KT + j] = rb[2 + i];
    }
}

void hai_kvq_key_get(uint32_t type, const void *block, uint32_t j, void *row, int n) {
    size_t bb = hai_kvq_blk_bytes(type), nv = bb - 2; /* a block's bytes, its values' */
    uint8_t *r = row;
    for (int b = 0; b < n / 32; b++) {
        const uint8_t *g = (const uint8_t *)block + (size_t)b * HAI_KT * bb;
        uint8_t *rb = r + (size_t)b * bb;
        memcpy(rb, g + 2 * j, 2);
        for (size_t i = 0; i < nv; i++) rb[2 + i] = g[2 * HAI_KT + i * HAI_KT + j];
    }
}
