/* core/simd.h — not a public header: the one switch the hand-written AVX2 / FMA / F16C paths of this build
 * (x86-64-v3: src/kernels, src/lm) read before they run. 1 by default (a v3 build runs only on a CPU that has
 * them); pulse_cpu_limit (core/cpu.c) sets it to what the capped CPU has, so under PULSE_ISA_SCALAR every
 * such path takes its portable C twin. A plain load, cheap enough for per-row calls; written only at
 * start-up. */
#ifndef PULSE_CORE_SIMD_H
#define PULSE_CORE_SIMD_H

extern int pc_simd_v3;

#endif
