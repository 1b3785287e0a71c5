/* Block formats: spot values of hand-built blocks for every supported type, and dequantized
 * reference models against their F32/F16 originals within each type's expected error. */
#include "check.h"
#include "quant/fp16.h"
#include "quant/quant.h"

typedef struct { int idx; float want; } spot;

static void check_spots(uint32_t type, const void *block, int n, const spot *s, int ns) {
    float out[256];
    hai_error err = {0};
    CHECK_EQ_INT(hai_dequantize(type, block, out, n, &err), HAI_OK);
    for (int i = 0; i < ns; i++)
        CHECK_MSG(out[s[i].idx] == s[i].want, "%s element %d = %g, want %g", hai_type_name(type), s[i].idx,
                  out[s[i].idx], s[i].want);
}

static void hand_blocks(void) {
    { /* Q4_0: (nibble - 8) * d */
        hai_block_q4_0 b = {.d = 0x4000};
        for (int j = 0; j < 16; j++) b.qs[j] = (uint8_t)(j | ((15 - j) << 4));
        spot s[] = {{0, -16}, {15, 14}, {16, 14}, {31, -16}, {5, -6}};
        check_spots(HAI_TYPE_Q4_0, &b, 32, s, 5);
    }
    { /* Q4_1: nibble * d + m */
        hai_block_q4_1 b = {.d = 0x3800, .m = 0xBC00};
        for (int j = 0; j < 16; j++) b.qs[j] = (uint8_t)(j | ((15 - j) << 4));
        spot s[] = {{0, -1}, {15, 6.5f}, {16, 6.5f}, {31, -1}};
        check_spots(HAI_TYPE_Q4_1, &b, 32, s, 4);
    }
    { /* Q5_0 / Q5_1: bit j of qh is the 5th bit of weight j */
        uint32_t qh = (1u << 3) | (1u << 19) | 1u;
        hai_block_q5_0 b = {.d = 0x3C00};
        memcpy(b.qh, &qh, 4);
        b.qs[3] = 0x21;
        spot s[] = {{0, 0}, {1, -16}, {3, 1}, {19, 2}, {16, -16}};
        check_spots(HAI_TYPE_Q5_0, &b, 32, s, 5);
        hai_block_q5_1 c = {.d = 0x3C00, .m = 0x3800};
        memcpy(c.qh, &qh, 4);
        c.qs[3] = 0x21;
        spot t[] = {{0, 16.5f}, {1, 0.5f}, {3, 17.5f}, {19, 18.5f}};
        check_spots(HAI_TYPE_Q5_1, &c, 32, t, 4);
    }
    { /* Q8_0 */
        hai_block_q8_0 b = {.d = 0x3400};
        for (int j = 0; j < 32; j++) b.qs[j] = (int8_t)(j - 16);
        spot s[] = {{0, -4}, {16, 0}, {31, 3.75f}};
        check_spots(HAI_TYPE_Q8_0, &b, 32, s, 3);
    }
    { /* Q2_K: scale low nibble, min high nibble; 2-bit fields of qs by (half, shift, lane) */
        hai_block_q2_K b = {.d = 0x3C00, .dmin = 0x3800};
        for (int k = 0; k < 16; k++) b.scales[k] = (uint8_t)((k % 15 + 1) | ((k % 3) << 4));
        for (int i = 0; i < 64; i++) b.qs[i] = (i % 2) ? 0x1B : 0xE4;
        spot s[] = {{0, 0}, {40, 2}, {41, 5}, {200, 26}, {223, 13.5f}};
        check_spots(HAI_TYPE_Q2_K, &b, 256, s, 5);
    }
    { /* Q3_K: 6-bit scales (offset 32) split over 12 bytes; high bit in hmask */
        hai_block_q3_K b = {.d = 0x3C00};
        for (int j = 0; j < 16; j++) {
            int sc = 32 + j - 8;
            if (j < 8) b.scales[j] |= (uint8_t)(sc & 0xF);
            else b.scales[j - 8] |= (uint8_t)((sc & 0xF) << 4);
            b.scales[8 + j % 4] |= (uint8_t)(((sc >> 4) & 3) << (2 * (j / 4)));
        }
        for (int i = 0; i < 64; i++) b.qs[i] = (i % 2) ? 0x1B : 0xE4;
        for (int l = 0; l < 32; l++) b.hmask[l] = (l % 2) ? 0x00 : 0xFF;
        spot s[] = {{0, 0}, {40, -6}, {41, 12}, {223, -15}, {190, 3}};
        check_spots(HAI_TYPE_Q3_K, &b, 256, s, 5);
    }
    /* Q4_K / Q5_K scales: sc = {1,2,3,4,37,38,39,40}, m = {0,1,2,3,20,21,22,23} */
    const uint8_t k4_scales[12] = {0x81, 0x82, 0x83, 0x84, 0x40, 0x41, 0x42, 0x43, 0x45, 0x56, 0x67, 0x78};
    {
        hai_block_q4_K b = {.d = 0x3C00, .dmin = 0x3800};
        memcpy(b.scales, k4_scales, 12);
        for (int i = 0; i < 128; i++) b.qs[i] = (uint8_t)((i & 15) | ((15 - (i & 15)) << 4));
        spot s[] = {{0, 0}, {33, 27.5f}, {200, 301}, {255, -11.5f}};
        check_spots(HAI_TYPE_Q4_K, &b, 256, s, 4);
    }
    {
        hai_block_q5_K b = {.d = 0x3C00, .dmin = 0x3800};
        memcpy(b.scales, k4_scales, 12);
        for (int i = 0; i < 128; i++) b.qs[i] = (uint8_t)((i & 15) | ((15 - (i & 15)) << 4));
        b.qh[1] = 0xFF;
        b.qh[31] = 0x80;
        spot s[] = {{33, 59.5f}, {255, 628.5f}, {200, 301}, {1, 17}};
        check_spots(HAI_TYPE_Q5_K, &b, 256, s, 4);
    }
    { /* Q6_K */
        hai_block_q6_K b = {.d = 0x3800};
        for (int i = 0; i < 16; i++) b.scales[i] = (int8_t)(i - 8);
        for (int i = 0; i < 128; i++) b.ql[i] = (uint8_t)i;
        for (int i = 0; i < 64; i++) b.qh[i] = (uint8_t)(i * 3);
        spot s[] = {{0, 128}, {37, -63}, {90, 46.5f}, {255, 24.5f}};
        check_spots(HAI_TYPE_Q6_K, &b, 256, s, 4);
    }
    { /* IQ4_NL */
        hai_block_iq4_nl b = {.d = 0x4000};
        for (int j = 0; j < 16; j++) b.qs[j] = (uint8_t)(j | ((15 - j) << 4));
        spot s[] = {{0, -254}, {16, 226}, {8, 2}, {31, -254}};
        check_spots(HAI_TYPE_IQ4_NL, &b, 32, s, 4);
    }
    { /* IQ4_XS: scales 29..36 (offset 32) */
        hai_block_iq4_xs b = {.d = 0x3C00, .scales_h = 0xAA95, .scales_l = {0xED, 0x0F, 0x21, 0x43}};
        for (int i = 0; i < 128; i++) b.qs[i] = (uint8_t)((i & 15) | ((15 - (i & 15)) << 4));
        spot s[] = {{0, 381}, {20, -114}, {140, 53}, {255, -508}};
        check_spots(HAI_TYPE_IQ4_XS, &b, 256, s, 4);
    }
    { /* BF16, F16 */
        uint16_t h[2] = {0x3fc0, 0xc000};
        spot s[] = {{0, 1.5f}, {1, -2}};
        check_spots(HAI_TYPE_BF16, h, 2, s, 2);
        uint16_t f[2] = {0x3e00, 0xc000};
        check_spots(HAI_TYPE_F16, f, 2, s, 2);
    }
    /* argument errors */
    float out[32];
    hai_error err = {0};
    CHECK_EQ_INT(hai_dequantize(HAI_TYPE_Q4_0, out, out, 31, &err), HAI_ERR_INVALID);
    CHECK_EQ_INT(hai_dequantize(99, out, out, 32, &err), HAI_ERR_INVALID);
    CHECK_EQ_INT(hai_dequantize(HAI_TYPE_IQ2_XXS, out, out, 256, &err), HAI_ERR_UNSUPPORTED);
    CHECK(hai_type_from_name("q4_k") == HAI_TYPE_Q4_K);
    CHECK(hai_type_from_name("Q4_K_X") == -1);
    CHECK(hai_row_bytes(HAI_TYPE_Q6_K, 512) == 420);
}

/* Dequantizes a whole tensor into a new buffer. */
static float *dequant_tensor(const hai_gguf_tensor *t) {
    float *x = malloc((size_t)t->n_elements * sizeof *x);
    hai_error err = {0};
    if (!x || hai_dequantize(t->type, t->data, x, t->n_elements, &err) != HAI_OK) {
        fprintf(stderr, "dequantize %s: %s\n", t->name, err.msg);
        free(x);
        return NULL;
    }
    return x;
}

/* Largest relative RMSE allowed per type on these normally distributed weights (theory: step/sqrt(12)
 * relative to the block's spread, with margin). */
static double bound_for(uint32_t type) {
    switch (type) {
    case HAI_TYPE_F16: return 1e-3;
    case HAI_TYPE_Q8_0: return 0.01;
    case HAI_TYPE_Q6_K: return 0.03;
    case HAI_TYPE_Q4_K: return 0.09;
    case HAI_TYPE_Q4_0: return 0.15;
    default: return 0;
    }
}

static void compare_files(const char *dir, const char *truth_name, const char *quant_name) {
    char p1[4096], p2[4096];
    snprintf(p1, sizeof p1, "%s/reference/%s", dir, truth_name);
    snprintf(p2, sizeof p2, "%s/reference/%s", dir, quant_name);
    hai_gguf *a = NULL, *b = NULL;
    hai_error err = {0};
    CHECK_MSG(hai_gguf_open(p1, &a, &err) == HAI_OK, "%s", err.msg);
    CHECK_MSG(hai_gguf_open(p2, &b, &err) == HAI_OK, "%s", err.msg);
    if (!a || !b) goto out;
    int compared = 0;
    double worst = 0;
    for (int64_t i = 0; i < hai_gguf_n_tensors(b); i++) {
        const hai_gguf_tensor *tq = hai_gguf_tensor_at(b, i);
        const hai_gguf_tensor *tt = hai_gguf_find_tensor(a, tq->name);
        CHECK_MSG(tt != NULL, "%s: tensor %s missing from %s", quant_name, tq->name, truth_name);
        if (!tt) continue;
        CHECK(tt->n_elements == tq->n_elements);
        if (tq->type == tt->type) continue; /* kept as-is (norms) */
        float *x = dequant_tensor(tt), *y = dequant_tensor(tq);
        CHECK(x && y);
        if (x && y) {
            double se = 0, ss = 0;
            for (int64_t j = 0; j < tq->n_elements; j++) {
                double d = (double)y[j] - x[j];
                se += d * d;
                ss += (double)x[j] * x[j];
            }
            double rel = sqrt(se / ss);
            double bound = bound_for(tq->type);
            CHECK_MSG(bound > 0 && rel <= bound, "%s %s (%s): relative RMSE %.5f > %.5f", quant_name, tq->name,
                      hai_type_name(tq->type), rel, bound);
            /* it must really be the quantized tensor: some error, but far from noise */
            if (rel > worst) worst = rel;
            CHECK_MSG(rel > 0, "%s %s: identical to the original", quant_name, tq->name);
            compared++;
        }
        free(x);
        free(y);
    }
    CHECK_MSG(compared > 0, "%s: nothing compared", quant_name);
    fprintf(stderr, "%-22s vs %-18s: %d tensors, worst relative RMSE %.5f\n", quant_name, truth_name, compared, worst);
out:
    hai_gguf_free(a);
    hai_gguf_free(b);
}

int main(int argc, char **argv) {
    const char *dir = check_shared_dir(argc, argv);
    hand_blocks();
    const char *llama[] = {"F16", "Q8_0", "Q4_0", "Q6_K", "Q4_K_M"};
    for (int i = 0; i < 5; i++) {
        char q[64];
        snprintf(q, sizeof q, "llama-s-%s.gguf", llama[i]);
        compare_files(dir, "llama-s-F32.gguf", q);
    }
    const char *models[] = {"qwen2-s", "qwen3-s"};
    const char *types[] = {"Q8_0", "Q4_0", "Q6_K", "Q4_K_M"};
    for (int m = 0; m < 2; m++)
        for (int i = 0; i < 4; i++) {
            char t[64], q[64];
            snprintf(t, sizeof t, "%s-F16.gguf", models[m]);
            snprintf(q, sizeof q, "%s-%s.gguf", models[m], types[i]);
            compare_files(dir, t, q);
        }
    return check_done("test_quant");
}
