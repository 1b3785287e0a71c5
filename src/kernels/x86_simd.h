/* Small x86 vector helpers shared by the kernel files (each compiled for its own instruction set,
 * all of which include AVX2). */
#ifndef HAI_X86_SIMD_H
#define HAI_X86_SIMD_H
#include <immintrin.h>

/* the sum of a ymm's 8 floats */
static inline float hai_hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

#endif
