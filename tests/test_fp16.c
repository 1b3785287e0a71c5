/* Half and bfloat16 conversions: exhaustive round trips and agreement with the compiler's
 * own _Float16 rounding where it exists. */
#include "check.h"
#include "quant/fp16.h"
#include "base/rng.h"

int main(void) {
    /* every non-NaN half survives half -> float -> half */
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        bool nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
        float f = hai_f16_to_f32((uint16_t)h);
        if (nan) {
            if (!isnan(f)) bad++;
            continue;
        }
        if (hai_f32_to_f16(f) != h) bad++;
    }
    CHECK_EQ_INT(bad, 0);

    /* known values */
    CHECK(hai_f16_to_f32(0x3c00) == 1.0f);
    CHECK(hai_f16_to_f32(0xc000) == -2.0f);
    CHECK(hai_f16_to_f32(0x7bff) == 65504.0f);
    CHECK(hai_f16_to_f32(0x0001) == 5.9604644775390625e-8f);
    CHECK(hai_f32_to_f16(65520.0f) == 0x7c00);          /* rounds up to inf */
    CHECK(hai_f32_to_f16(65519.0f) == 0x7bff);
    CHECK(hai_f32_to_f16(1.0f + 0x1p-11f) == 0x3c00);  /* tie: to even */
    CHECK(hai_f32_to_f16(1.0f + 3 * 0x1p-11f) == 0x3c02);
    CHECK(hai_f32_to_f16(0x1p-25f) == 0x0000);          /* tie at the smallest subnormal: to even */
    CHECK(hai_f32_to_f16(0x1.8p-25f) == 0x0001);

#ifdef __FLT16_MAX__
    /* random floats over the whole range against the compiler's conversion */
    hai_rng r;
    hai_rng_seed(&r, 1);
    int mism = 0;
    for (int i = 0; i < 2000000; i++) {
        uint32_t bits = (uint32_t)hai_rng_next(&r);
        float f = hai_bits_to_f32(bits);
        if (isnan(f)) continue;
        _Float16 h = (_Float16)f;
        uint16_t hb;
        memcpy(&hb, &h, 2);
        if (hai_f32_to_f16(f) != hb) mism++;
    }
    CHECK_EQ_INT(mism, 0);
#endif

    /* bfloat16: the high half of a float, rounded to nearest even */
    CHECK(hai_bf16_to_f32(0x3f80) == 1.0f);
    CHECK(hai_f32_to_bf16(1.0f) == 0x3f80);
    CHECK(hai_f32_to_bf16(hai_bits_to_f32(0x3f808000)) == 0x3f80); /* tie -> even */
    CHECK(hai_f32_to_bf16(hai_bits_to_f32(0x3f818000)) == 0x3f82);
    CHECK(hai_f32_to_bf16(hai_bits_to_f32(0x3f808001)) == 0x3f81);
    CHECK(isnan(hai_bf16_to_f32(hai_f32_to_bf16(NAN))));
    return check_done("test_fp16");
}
