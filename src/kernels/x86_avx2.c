/* AVX2 + FMA + F16C kernels (see x86_kern.inc), prefill on x86_avx2_gemm.inc. Compiled with -mavx2 -mfma -mf16c; used only
 * when the CPU reports all three. */
#include <pthread.h>

#define KERN_NAME "avx2"
#define KERN_AVX512 0
#include "x86_kern.inc"

void hai_avx2_add_gemm(hai_kernels *t);

static hai_kernels full;
static const hai_kernels *full_ok;
static pthread_once_t full_once = PTHREAD_ONCE_INIT;

static void full_build(void) {
    hai_cpu_x86 f = hai_cpu_x86_features();
    if (!(f.avx2 && f.fma && f.f16c)) return;
    full = table;
    hai_avx2_add_gemm(&full); /* prefill on vpmaddubsw (x86_avx2_gemm.inc) */
    full_ok = &full;
}

const hai_kernels *hai_kernels_avx2(void) {
    pthread_once(&full_once, full_build);
    return full_ok;
}

#if defined(HAI_HAVE_AVXVNNI)
void hai_avxvnni_add_gemm(hai_kernels *t);

float hai_avxvnni_decode_q4_0x2(int64_t n, const void *w, const void *ar);
float hai_avxvnni_decode_q4_K(int64_t n, const void *w, const void *ar);
float hai_avxvnni_decode_q6_K(int64_t n, const void *w, const void *ar);

static hai_kernels vnni;
static const hai_kernels *vnni_ok;
static pthread_once_t vnni_once = PTHREAD_ONCE_INIT;

static void vnni_build(void) {
    if (!hai_kernels_avx2() || !hai_cpu_x86_features().avx_vnni) return;
    vnni = *hai_kernels_avx2();
    vnni.name = "avx2-vnni";
    hai_avxvnni_add_gemm(&vnni); /* prefill on vpdpbusd */
    vnni.decode_dot[HAI_WTYPE_Q4_0X2] = hai_avxvnni_decode_q4_0x2;
    vnni.decode_dot[HAI_TYPE_Q4_K] = hai_avxvnni_decode_q4_K;
    vnni.decode_dot[HAI_TYPE_Q6_K] = hai_avxvnni_decode_q6_K;
    vnni_ok = &vnni;
}

/* The same table with the decode dots and prefill on AVX-VNNI (vpdpbusd: a vpmaddubsw + vpmaddwd pair in one). */
const hai_kernels *hai_kernels_avx2_vnni(void) {
    pthread_once(&vnni_once, vnni_build);
    return vnni_ok;
}
#endif
