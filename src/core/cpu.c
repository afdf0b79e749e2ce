/* core/cpu.c — owns what the library knows of the CPU: vendor, model, CPUID features with the OS's register
 * state (XGETBV: YMM for AVX/AVX2, ZMM + opmask for AVX-512, tile state and the kernel's permission for AMX),
 * and the fp32 SIMD level they add up to. Detected once; every kernel choice and every reported figure reads
 * it from here (pulse_cpu_get), so no figure is printed without the level it ran at. pulse_cpu_limit caps
 * what it reports at a lower instruction level (scalar, avx2, avx512 without BF16), so that level's kernels
 * run, are measured and are tested on any machine; pulse_cpu_native keeps the CPU as detected. */
#include <stdio.h>
#include <string.h>

#include "core/simd.h"
#include "pulse/core.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#define PULSE_X86 1
#endif

const char *pulse_level_name(pulse_level l) {
    switch (l) {
    case PULSE_LEVEL_SCALAR:
        return "scalar";
    case PULSE_LEVEL_SSE2:
        return "sse2";
    case PULSE_LEVEL_AVX:
        return "avx";
    case PULSE_LEVEL_AVX2:
        return "avx2";
    case PULSE_LEVEL_AVX512:
        return "avx512";
    }
    return "unknown";
}

#ifdef PULSE_X86
static unsigned long long xgetbv0(void) {
    unsigned int lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}

/* AMX needs the kernel's per-process permission for the tile data state (Linux 5.16+): ask once. */
static int amx_permitted(void) {
#if defined(__linux__) && defined(SYS_arch_prctl)
    enum { ARCH_GET_XCOMP_PERM = 0x1022, ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };
    unsigned long bits = 0;
    if (syscall(SYS_arch_prctl, ARCH_GET_XCOMP_PERM, &bits) == 0 && (bits & (1UL << XFEATURE_XTILEDATA)))
        return 1;
    if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0) return 0;
    bits = 0;
    return syscall(SYS_arch_prctl, ARCH_GET_XCOMP_PERM, &bits) == 0 && (bits & (1UL << XFEATURE_XTILEDATA));
#else
    return 0;
#endif
}
#endif

static void detect(pulse_cpu *c) {
    memset(c, 0, sizeof *c);
    snprintf(c->vendor, sizeof c->vendor, "unknown");
    snprintf(c->model, sizeof c->model, "unknown");
#ifdef PULSE_X86
    unsigned a, b, cx, d;
    if (!__get_cpuid(0, &a, &b, &cx, &d)) return;
    unsigned max_leaf = a;
    memcpy(c->vendor, &b, 4);
    memcpy(c->vendor + 4, &d, 4);
    memcpy(c->vendor + 8, &cx, 4);
    c->vendor[12] = 0;
    __get_cpuid(1, &a, &b, &cx, &d);
    int fam = (int)((a >> 8) & 0xf), mod = (int)((a >> 4) & 0xf);
    if (fam == 0xf) fam += (int)((a >> 20) & 0xff);
    if (fam == 0x6 || fam >= 0xf) mod += (int)((a >> 16) & 0xf) << 4;
    c->family = fam;
    c->model_id = mod;
    c->stepping = (int)(a & 0xf);
    c->sse2 = (d >> 26) & 1;
    c->fma = (cx >> 12) & 1;
    c->f16c = (cx >> 29) & 1;
    int osxsave = (cx >> 27) & 1, avx_bit = (cx >> 28) & 1;
    unsigned long long xcr0 = osxsave ? xgetbv0() : 0;
    int ymm_os = (xcr0 & 0x6) == 0x6;             /* SSE + AVX state */
    int zmm_os = ymm_os && (xcr0 & 0xe0) == 0xe0; /* opmask + ZMM_Hi256 + Hi16_ZMM */
    int tile_os = (xcr0 & 0x60000) == 0x60000;    /* XTILECFG + XTILEDATA */
    c->avx = avx_bit && ymm_os;
    if (max_leaf >= 7) {
        __cpuid_count(7, 0, a, b, cx, d);
        c->avx2 = ((b >> 5) & 1) && ymm_os;
        c->avx512f = ((b >> 16) & 1) && zmm_os;
        c->avx512dq = ((b >> 17) & 1) && zmm_os;
        c->avx512bw = ((b >> 30) & 1) && zmm_os;
        c->avx512vl = ((b >> 31) & 1) && zmm_os;
        c->avx512vnni = ((cx >> 11) & 1) && zmm_os;
        c->avx512fp16 = ((d >> 23) & 1) && zmm_os;
        c->amx_bf16 = (d >> 22) & 1;
        c->amx_tile = (d >> 24) & 1;
        c->amx_int8 = (d >> 25) & 1;
        unsigned a1 = 0, b1, c1, d1;
        __cpuid_count(7, 1, a1, b1, c1, d1);
        (void)b1, (void)c1, (void)d1;
        c->avx512bf16 = ((a1 >> 5) & 1) && zmm_os;
        c->avxvnni = ((a1 >> 4) & 1) && ymm_os;
        c->amx_bf16 = c->amx_bf16 && tile_os;
        c->amx_int8 = c->amx_int8 && tile_os;
        c->amx_tile = c->amx_tile && tile_os;
        if (c->amx_tile) c->amx_permitted = amx_permitted();
    }
    unsigned ext = __get_cpuid_max(0x80000000, NULL);
    if (ext >= 0x80000004) {
        unsigned r[12];
        for (unsigned i = 0; i < 3; i++)
            __get_cpuid(0x80000002 + i, &r[4 * i], &r[4 * i + 1], &r[4 * i + 2], &r[4 * i + 3]);
        char m[49];
        memcpy(m, r, 48);
        m[48] = 0;
        const char *s = m;
        while (*s == ' ') s++;
        snprintf(c->model, sizeof c->model, "%s", s);
        size_t l = strlen(c->model);
        while (l && c->model[l - 1] == ' ') c->model[--l] = 0;
    }
#endif
}

int pulse_cpu_bf16_fast(const pulse_cpu *c) {
    return c && c->avx512bf16 && strcmp(c->vendor, "AuthenticAMD") == 0;
}

static pulse_level level_of(const pulse_cpu *c) {
    if (c->avx512f && c->avx512bw && c->avx512dq && c->avx512vl && c->fma) return PULSE_LEVEL_AVX512;
    if (c->avx2 && c->fma) return PULSE_LEVEL_AVX2;
    if (c->avx) return PULSE_LEVEL_AVX;
    if (c->sse2) return PULSE_LEVEL_SSE2;
    return PULSE_LEVEL_SCALAR;
}

/* the features of the level isa at most: c (the native CPU) less what the level does not have */
static void cap(pulse_cpu *c, pulse_isa isa) {
    if (isa == PULSE_ISA_NATIVE) return;
    /* no level below native has AMX, AVX-512 BF16 / FP16, or the VEX-coded AVX-VNNI */
    c->amx_tile = c->amx_bf16 = c->amx_int8 = c->amx_permitted = 0;
    c->avx512bf16 = c->avx512fp16 = c->avxvnni = 0;
    if (isa == PULSE_ISA_AVX512) {
        c->level = level_of(c);
        return;
    }
    c->avx512f = c->avx512bw = c->avx512dq = c->avx512vl = c->avx512vnni = 0;
    if (isa == PULSE_ISA_SCALAR) c->sse2 = c->avx = c->avx2 = c->fma = c->f16c = 0;
    c->level = level_of(c);
}

/* core/simd.h: the hand-written AVX2 / FMA / F16C paths may run (a v3 build runs only where they exist) */
int pc_simd_v3 = 1;

static pulse_cpu g_native, g_cpu;
static pulse_isa g_isa = PULSE_ISA_NATIVE;
static int g_done; /* benign: detection is idempotent; the flag is written after the structs */

static void detect_once(void) {
    if (!__atomic_load_n(&g_done, __ATOMIC_ACQUIRE)) {
        pulse_cpu c;
        detect(&c);
        c.level = level_of(&c);
        g_native = c;
        cap(&c, g_isa);
        g_cpu = c;
        __atomic_store_n(&g_done, 1, __ATOMIC_RELEASE);
    }
}

const pulse_cpu *pulse_cpu_get(void) {
    detect_once();
    return &g_cpu;
}

const pulse_cpu *pulse_cpu_native(void) {
    detect_once();
    return &g_native;
}

static const char *const ISA_NAMES[] = {"native", "scalar", "avx2", "avx512"};

const char *pulse_isa_name(pulse_isa isa) {
    return (unsigned)isa < sizeof ISA_NAMES / sizeof ISA_NAMES[0] ? ISA_NAMES[isa] : "unknown";
}

pulse_status pulse_isa_parse(const char *name, pulse_isa *out) {
    for (size_t i = 0; name && i < sizeof ISA_NAMES / sizeof ISA_NAMES[0]; i++)
        if (strcmp(name, ISA_NAMES[i]) == 0) {
            if (out) *out = (pulse_isa)i;
            return PULSE_OK;
        }
    return pulse_set_error(PULSE_ERR_ARG,
                           "expected an instruction level: scalar, avx2, avx512 or native, found '%s'",
                           name ? name : "(null)");
}

pulse_status pulse_cpu_limit(pulse_isa isa) {
    if ((unsigned)isa >= sizeof ISA_NAMES / sizeof ISA_NAMES[0])
        return pulse_set_error(PULSE_ERR_ARG, "isa: no level %d", (int)isa);
    detect_once();
    pulse_cpu c = g_native;
    cap(&c, isa);
    g_isa = isa;
    g_cpu = c;
    pc_simd_v3 = isa == PULSE_ISA_NATIVE || (c.avx2 && c.fma && c.f16c);
    const pulse_cpu *n = &g_native;
    const char *missing = NULL;
    if (isa == PULSE_ISA_AVX2 && !(n->avx2 && n->fma && n->f16c))
        missing = !n->avx2 ? "AVX2" : !n->fma ? "FMA" : "F16C";
    else if (isa == PULSE_ISA_AVX512 && !(n->level == PULSE_LEVEL_AVX512 && n->avx512vnni))
        missing = n->level < PULSE_LEVEL_AVX512 ? "AVX-512 F/BW/DQ/VL" : "AVX-512 VNNI";
    if (missing)
        return pulse_set_error(PULSE_ERR_UNSUPPORTED,
                               "isa %s: this CPU (%s) has no %s; it runs at its own level %s",
                               pulse_isa_name(isa), n->model, missing, pulse_level_name(n->level));
    return PULSE_OK;
}

pulse_isa pulse_cpu_limit_get(void) {
    return g_isa;
}

int pulse_cpu_flag_names(const pulse_cpu *c, const char **names, int max) {
    const struct {
        const char *name;
        int on;
    } f[] = {
        {"sse2", c->sse2},
        {"avx", c->avx},
        {"avx2", c->avx2},
        {"fma", c->fma},
        {"f16c", c->f16c},
        {"avx512f", c->avx512f},
        {"avx512bw", c->avx512bw},
        {"avx512dq", c->avx512dq},
        {"avx512vl", c->avx512vl},
        {"avx512_vnni", c->avx512vnni},
        {"avx512_bf16", c->avx512bf16},
        {"avx512_fp16", c->avx512fp16},
        {"avx_vnni", c->avxvnni},
        {"amx_tile", c->amx_tile},
        {"amx_bf16", c->amx_bf16},
        {"amx_int8", c->amx_int8},
    };
    int n = 0;
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (f[i].on) {
            if (n < max && names) names[n] = f[i].name;
            n++;
        }
    return n;
}
