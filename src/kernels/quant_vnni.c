/* kernels/quant_vnni.c — owns the AVX512-VNNI build of the integer dot-product kernels (quant_avx2_dot.h
 * compiled for avx512vnni+avx512vl: 256-bit vpdpbusd replaces maddubs+madd for u8 x i8 sums). pq_dot_vnni
 * is called only when the CPU reports those features at run time (see quant.c); the default x86-64-v3
 * build stays runnable on any AVX2 machine. */
#include "pulse/core.h"
#include "quant_internal.h"

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF /* llama.cpp's rounding, operation by operation */
#endif

#if defined(__AVX2__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#ifdef __clang__
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))),                \
                             apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni")
#endif

#define PQ_VNNI 1
#define PQ_ROWS_ENTRY pq_rows_vnni
#include "quant_avx2_dot.h"

#ifdef __clang__
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

int pq_vnni_supported(void) {
    const pulse_cpu *c = pulse_cpu_get(); /* the one place that knows the CPU (core/cpu.c) */
    /* dq: the batched kernels of quant_tile.c, which this flag also enables */
    return c->avx512vnni && c->avx512vl && c->avx512bw && c->avx512dq;
}
#endif
