/* Bit helpers of the AArch64 kernels (arm_dots.inc, arm_i8mm.c). */
#ifndef HAI_ARM_BITS_H
#define HAI_ARM_BITS_H

#include <arm_neon.h>
#include <stdint.h>
#include <string.h>

/* 32 one-bit flags (bit j of bits = element j) -> bytes of `val` where set */
static inline void bits_to_bytes(uint32_t bits, uint8_t val, uint8x16_t *lo, uint8x16_t *hi) {
    const uint8x16_t sel = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    uint8x16_t b01 = vcombine_u8(vdup_n_u8((uint8_t)bits), vdup_n_u8((uint8_t)(bits >> 8)));
    uint8x16_t b23 = vcombine_u8(vdup_n_u8((uint8_t)(bits >> 16)), vdup_n_u8((uint8_t)(bits >> 24)));
    *lo = vandq_u8(vtstq_u8(b01, sel), vdupq_n_u8(val));
    *hi = vandq_u8(vtstq_u8(b23, sel), vdupq_n_u8(val));
}

static inline uint32_t le32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Q5_0 / Q5_1 block: nibbles (qs) with their 5th bits (qh), minus off */
static inline void q5_unpack(const uint8_t *qs, const uint8_t *qh, int8x16_t *w0, int8x16_t *w1, int off) {
    uint8x16_t b = vld1q_u8(qs), h0, h1;
    bits_to_bytes(le32(qh), 0x10, &h0, &h1);
    *w0 = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vandq_u8(b, vdupq_n_u8(0x0F)), h0)), vdupq_n_s8((int8_t)off));
    *w1 = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(b, 4), h1)), vdupq_n_s8((int8_t)off));
}

#endif
