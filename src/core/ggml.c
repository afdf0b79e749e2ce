/* core/ggml.c — owns the ggml type table: every type a GGUF file may name, with its name, elements per block
 * and bytes per block (ggml's type traits, the data part; the kernels' part is src/kernels/quant_ref.c's
 * traits). */
#include "pulse/ggml.h"

typedef struct {
    const char *name;
    int64_t blck;
    size_t size;
} type_info;

static const type_info *info_of(int t) {
    static const type_info tab[] = {
        [PULSE_GGML_F32] = {"f32", 1, 4},
        [PULSE_GGML_F16] = {"f16", 1, 2},
        [PULSE_GGML_Q4_0] = {"q4_0", 32, 18},
        [PULSE_GGML_Q4_1] = {"q4_1", 32, 20},
        [PULSE_GGML_Q5_0] = {"q5_0", 32, 22},
        [PULSE_GGML_Q5_1] = {"q5_1", 32, 24},
        [PULSE_GGML_Q8_0] = {"q8_0", 32, 34},
        [PULSE_GGML_Q8_1] = {"q8_1", 32, 36},
        [PULSE_GGML_Q2_K] = {"q2_K", 256, 84},
        [PULSE_GGML_Q3_K] = {"q3_K", 256, 110},
        [PULSE_GGML_Q4_K] = {"q4_K", 256, 144},
        [PULSE_GGML_Q5_K] = {"q5_K", 256, 176},
        [PULSE_GGML_Q6_K] = {"q6_K", 256, 210},
        [PULSE_GGML_Q8_K] = {"q8_K", 256, 292},
        [16] = {"iq2_xxs", 256, 66},
        [17] = {"iq2_xs", 256, 74},
        [18] = {"iq3_xxs", 256, 98},
        [19] = {"iq1_s", 256, 50},
        [20] = {"iq4_nl", 32, 18},
        [21] = {"iq3_s", 256, 110},
        [22] = {"iq2_s", 256, 82},
        [23] = {"iq4_xs", 256, 136},
        [24] = {"i8", 1, 1},
        [25] = {"i16", 1, 2},
        [26] = {"i32", 1, 4},
        [27] = {"i64", 1, 8},
        [28] = {"f64", 1, 8},
        [29] = {"iq1_m", 256, 56},
        [PULSE_GGML_BF16] = {"bf16", 1, 2},
        [34] = {"tq1_0", 256, 54},
        [35] = {"tq2_0", 256, 66},
    };
    if (t < 0 || t >= (int)(sizeof tab / sizeof tab[0]) || !tab[t].name) return NULL;
    return &tab[t];
}

const char *pulse_ggml_type_name(int type) {
    const type_info *i = info_of(type);
    return i ? i->name : "unknown";
}
int64_t pulse_ggml_block_size(int type) {
    const type_info *i = info_of(type);
    return i ? i->blck : 0;
}
size_t pulse_ggml_type_size(int type) {
    const type_info *i = info_of(type);
    return i ? i->size : 0;
}
size_t pulse_ggml_row_size(int type, int64_t n) {
    const type_info *i = info_of(type);
    if (!i || n < 0 || n % i->blck) return 0;
    return (size_t)(n / i->blck) * i->size;
}
