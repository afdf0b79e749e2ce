/* tests/test_cpu_level.c — the level the fp32 products run at equals the CPU's. The CPU's level from CPUID
 * agrees with the kernel's view (/proc/cpuinfo flags); after pulse_blas_select (what the pulse tools run at
 * start-up) OpenBLAS's kernels are at that level, or, where the environment forces a core (OPENBLAS_CORETYPE,
 * set on purpose on some machines), pulse reports that choice and leaves it; a BLAS that mis-detects the CPU
 * (simulated by putting OpenBLAS on its Prescott kernels) is corrected; products agree across the cores.
 * Deterministic, no timing. */
#include "test.h"

#include <cjson/cJSON.h>

#include "pulse/core.h"
#include "pulse/kernels.h"
#include "pulse/quant.h"

/* the fp32 level the Linux kernel's flags imply (an independent reading of the same CPUID bits + XCR0) */
static int proc_level(void) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return -1;
    char line[8192];
    int lvl = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "flags", 5) != 0) continue;
        char *p = strchr(line, ':');
        if (!p) break;
        int f512 = 0, bw = 0, dq = 0, vl = 0, avx2 = 0, fma = 0, avx = 0, sse2 = 0;
        for (char *t = strtok(p + 1, " \n"); t; t = strtok(NULL, " \n")) {
            f512 |= !strcmp(t, "avx512f"), bw |= !strcmp(t, "avx512bw"), dq |= !strcmp(t, "avx512dq");
            vl |= !strcmp(t, "avx512vl"), avx2 |= !strcmp(t, "avx2"), fma |= !strcmp(t, "fma");
            avx |= !strcmp(t, "avx"), sse2 |= !strcmp(t, "sse2");
        }
        lvl = f512 && bw && dq && vl && fma ? PULSE_LEVEL_AVX512
              : avx2 && fma                 ? PULSE_LEVEL_AVX2
              : avx                         ? PULSE_LEVEL_AVX
              : sse2                        ? PULSE_LEVEL_SSE2
                                            : PULSE_LEVEL_SCALAR;
        break;
    }
    fclose(f);
    return lvl;
}

/* C (M, N) = A (M, K) @ B (K, N) through the library's fp32 path, compared with a double reference */
static double product_error(void) {
    enum { M = 67, N = 45, K = 129 };
    static float A[M * K], B[N * K], C[M * N];
    for (int i = 0; i < M * K; i++) A[i] = (float)((i * 37 % 101) - 50) / 50.0f;
    for (int i = 0; i < N * K; i++) B[i] = (float)((i * 53 % 97) - 48) / 48.0f;
    pulse_matmul_forward(C, A, B, NULL, M, K, N); /* C = A @ B^T, B as (N, K) */
    double worst = 0;
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double s = 0;
            for (int k = 0; k < K; k++) s += (double)A[m * K + k] * B[n * K + k];
            double e = fabs(s - C[m * N + n]);
            if (e > worst) worst = e;
        }
    return worst;
}

/* pulse_cpu_limit: what each level leaves of the CPU; the native view is kept; back to native restores it */
static void test_limit(void) {
    const pulse_cpu *nat = pulse_cpu_native(), *c = pulse_cpu_get();
    pulse_isa isa = PULSE_ISA_NATIVE;
    static const char *const names[] = {"native", "scalar", "avx2", "avx512"};
    for (int i = 0; i < 4; i++) {
        CHECK(pulse_isa_parse(names[i], &isa) == PULSE_OK && (int)isa == i);
        CHECK(!strcmp(pulse_isa_name(isa), names[i]));
    }
    CHECK(pulse_isa_parse("avx512bf16", &isa) == PULSE_ERR_ARG && strstr(pulse_last_error(), "avx512bf16"));
    CHECK(pulse_cpu_limit((pulse_isa)9) == PULSE_ERR_ARG);
    const pulse_cpu before = *nat;
    const int has2 = nat->avx2 && nat->fma && nat->f16c;
    CHECK(pulse_cpu_limit(PULSE_ISA_AVX2) == (has2 ? PULSE_OK : PULSE_ERR_UNSUPPORTED));
    CHECK(pulse_cpu_limit_get() == PULSE_ISA_AVX2);
    CHECK(!c->avx512f && !c->avx512vnni && !c->avx512bf16 && !c->avxvnni && !c->amx_tile);
    CHECK(c->avx2 == nat->avx2 && c->fma == nat->fma && c->level == (has2 ? PULSE_LEVEL_AVX2 : nat->level));
    const int has512 = nat->level == PULSE_LEVEL_AVX512 && nat->avx512vnni;
    CHECK(pulse_cpu_limit(PULSE_ISA_AVX512) == (has512 ? PULSE_OK : PULSE_ERR_UNSUPPORTED));
    CHECK(!c->avx512bf16 && !c->avx512fp16 && !c->amx_tile && c->avx512vnni == nat->avx512vnni);
    CHECK(c->level == nat->level);
    CHECK(!pulse_cpu_bf16_fast(c)); /* no bf16 below native: the encoders' auto precision is fp32 there */
    CHECK(pulse_cpu_limit(PULSE_ISA_SCALAR) == PULSE_OK);
    CHECK(c->level == PULSE_LEVEL_SCALAR && !c->avx2 && !c->sse2 && !pulse_quant_has_avx2());
    CHECK(pulse_cpu_limit(PULSE_ISA_NATIVE) == PULSE_OK && pulse_cpu_limit_get() == PULSE_ISA_NATIVE);
    /* bf16 counts as the faster only on AMD with AVX512-BF16 (Intel's vdpbf16ps: half its fp32 FMA rate) */
    CHECK(pulse_cpu_bf16_fast(c) == (nat->avx512bf16 && !strcmp(nat->vendor, "AuthenticAMD")));
    CHECK(!pulse_cpu_bf16_fast(NULL));
    const char *fc[32], *fn[32], *fb[32];
    const int nc = pulse_cpu_flag_names(c, fc, 32), nn = pulse_cpu_flag_names(nat, fn, 32),
              nb = pulse_cpu_flag_names(&before, fb, 32);
    int same = nc == nn && nn == nb && c->level == nat->level && nat->level == before.level;
    for (int i = 0; same && i < nc && i < 32; i++) same = !strcmp(fc[i], fn[i]) && !strcmp(fn[i], fb[i]);
    CHECK_MSG(same, "back to native: %d flags, level %s (native %d, %s)", nc, pulse_level_name(c->level), nn,
              pulse_level_name(nat->level));
}

int main(void) {
    if (pulse_cpu_limit_get() == PULSE_ISA_NATIVE) test_limit(); /* (PULSE_ISA unset) */
    const pulse_cpu *cpu = pulse_cpu_get();
    int pl = proc_level();
    printf("cpu: %s %s family %d model %d, level %s (/proc/cpuinfo: %s)\n", cpu->vendor, cpu->model,
           cpu->family, cpu->model_id, pulse_level_name(cpu->level),
           pl >= 0 ? pulse_level_name((pulse_level)pl) : "unreadable");
    if (pl >= 0)
        CHECK_MSG((int)cpu->level == pl, "CPUID says %s, the kernel's flags %s", pulse_level_name(cpu->level),
                  pulse_level_name((pulse_level)pl));
    CHECK(cpu->level >= PULSE_LEVEL_SSE2); /* x86-64 */
    CHECK(cpu->level < PULSE_LEVEL_AVX2 || (cpu->avx2 && cpu->fma));

    /* what the tools do at start-up */
    pulse_blas_info b;
    pulse_blas_params bp = pulse_blas_default_params();
    const char *forced = getenv("OPENBLAS_CORETYPE");
    bp.explicit_core = forced;
    CHECK_OK(pulse_blas_select(&bp, &b));
    printf("blas: %s, core %s (OpenBLAS chose %s), level %s%s\n", b.version, b.core, b.detected_core,
           pulse_level_name(b.level), b.explicit_core ? ", forced by OPENBLAS_CORETYPE" : "");
    if (forced && *forced) {
        CHECK(b.explicit_core && !b.corrected);
        CHECK_MSG(strcasecmp(b.core, forced) == 0 || !b.can_select, "forced %s, runs %s", forced, b.core);
    } else if (b.can_select && cpu->level >= PULSE_LEVEL_AVX) {
        CHECK_MSG(b.level == cpu->level, "fp32 runs at %s, the CPU is %s", pulse_level_name(b.level),
                  pulse_level_name(cpu->level));
    }
    double e0 = product_error();
    CHECK_MSG(e0 < 1e-4, "product error %g", e0);

    /* a BLAS that mis-detects the CPU: OpenBLAS on its SSE3 kernels, then what an embedder's start-up does */
    if (!b.can_select) {
        test_skip_part("mis-detection: this OpenBLAS cannot change its kernels at run time");
    } else {
        CHECK_OK(pulse_blas_force_core("Prescott"));
        pulse_blas_probe(&b);
        CHECK(strcasecmp(b.core, "Prescott") == 0 && b.level == PULSE_LEVEL_SSE2);
        double e1 = product_error();
        CHECK_MSG(e1 < 1e-4, "product error on Prescott %g", e1);
        CHECK_OK(pulse_blas_select(NULL, &b));
        printf("after mis-detection: core %s, level %s\n", b.core, pulse_level_name(b.level));
        if (cpu->level >= PULSE_LEVEL_AVX) {
            CHECK(b.corrected && !b.explicit_core);
            CHECK_MSG(b.level == cpu->level, "corrected to %s, the CPU is %s", pulse_level_name(b.level),
                      pulse_level_name(cpu->level));
        }
        CHECK(product_error() < 1e-4);
        /* the user's own core choice is left alone */
        CHECK_OK(pulse_blas_force_core("Prescott"));
        pulse_blas_params keep = {"Prescott"};
        CHECK_OK(pulse_blas_select(&keep, &b));
        CHECK(strcasecmp(b.core, "Prescott") == 0 && b.explicit_core);
        CHECK(pulse_blas_force_core("NoSuchCore") != PULSE_OK);
        CHECK_OK(pulse_blas_select(NULL, &b)); /* back up for whatever runs next */
    }

    /* the JSON every bench line and pulse info carry */
    char buf[4096];
    int n = pulse_runtime_json(buf, sizeof buf);
    CHECK(n > 0 && (size_t)n < sizeof buf);
    cJSON *o = cJSON_Parse(buf);
    CHECK(o != NULL);
    if (o) {
        cJSON *fp = cJSON_GetObjectItem(o, "fp32"), *c = cJSON_GetObjectItem(o, "cpu");
        CHECK(fp && c && cJSON_IsArray(cJSON_GetObjectItem(c, "flags")));
        CHECK(cJSON_IsString(cJSON_GetObjectItem(c, "model")));
        CHECK(cJSON_IsString(cJSON_GetObjectItem(fp, "backend")) &&
              cJSON_IsString(cJSON_GetObjectItem(fp, "core")));
        const char *lv = cJSON_GetStringValue(cJSON_GetObjectItem(o, "cpu_level"));
        CHECK(lv && strcmp(lv, pulse_level_name(cpu->level)) == 0);
        const char *fl = cJSON_GetStringValue(cJSON_GetObjectItem(fp, "level"));
        if (!(forced && *forced) && b.can_select && cpu->level >= PULSE_LEVEL_AVX)
            CHECK_MSG(fl && lv && strcmp(fl, lv) == 0, "fp32.level %s, cpu_level %s", fl ? fl : "?",
                      lv ? lv : "?");
        cJSON_Delete(o);
    }
    return test_summary();
}
