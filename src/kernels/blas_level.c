/* kernels/blas_level.c — owns the level at which the fp32 products (OpenBLAS sgemm / sgemv / sger) run, and
 * bringing it up to the CPU's level. A DYNAMIC_ARCH OpenBLAS picks its kernels ("core") from a table of CPU
 * models fixed when it was built; on a CPU newer than the build (Debian 12's 0.3.21 on Intel family 6 model
 * 207) it silently falls back to its Prescott (SSE3) kernels, 4-6x slower than its SkylakeX ones. Here:
 *  - pulse_blas_probe reads the BLAS's name, version, core, threads and threading model, and maps the core to
 * a level (pulse_level) comparable with pulse_cpu_get()->level;
 *  - pulse_blas_select re-runs OpenBLAS's own core initialisation (gotoblas_dynamic_quit / _init, found with
 *    dlsym) with the core of the CPU's level (as pulse_cpu_limit caps it: down to Haswell for avx2), unless
 * the user chose a core (OPENBLAS_CORETYPE, passed in by the caller: the library reads no environment) —
 * measured against the alternatives in docs/cpu-levels.md;
 *  - the first fp32 product of a process whose BLAS runs below the CPU's level and that never called
 *    pulse_blas_select prints one warning naming the remedy (embedders who link libpulse). */
#include <cblas.h>
#include <cjson/cJSON.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kernels/internal.h"
#include "pulse/kernels.h"
#include "pulse/kernels_bf16.h"
#include "pulse/quant.h"

/* OpenBLAS core names -> the SIMD level of their sgemm kernels (names as openblas_get_corename prints them)
 */
static const struct {
    const char *core;
    pulse_level level;
} CORES[] = {
    {"SapphireRapids", PULSE_LEVEL_AVX512},
    {"Cooperlake", PULSE_LEVEL_AVX512},
    {"SkylakeX", PULSE_LEVEL_AVX512},
    {"Haswell", PULSE_LEVEL_AVX2},
    {"Zen", PULSE_LEVEL_AVX2},
    {"Excavator", PULSE_LEVEL_AVX2},
    {"Sandybridge", PULSE_LEVEL_AVX},
    {"Bulldozer", PULSE_LEVEL_AVX},
    {"Piledriver", PULSE_LEVEL_AVX},
    {"Steamroller", PULSE_LEVEL_AVX},
};

static pulse_level core_level(const char *core) {
    for (size_t i = 0; i < sizeof CORES / sizeof CORES[0]; i++)
        if (!strcasecmp(core, CORES[i].core)) return CORES[i].level;
    return core[0] && strcasecmp(core, "unknown") ? PULSE_LEVEL_SSE2 : PULSE_LEVEL_SCALAR;
}

/* the OpenBLAS core whose fp32 kernels run at the CPU's level (NULL: none better than SSE; with a limit
 * (pulse_cpu_limit) below AVX, Prescott: OpenBLAS has no core without SSE on x86-64) */
static const char *core_for(const pulse_cpu *c) {
    switch (c->level) {
    case PULSE_LEVEL_AVX512:
        return "SkylakeX"; /* Cooperlake / SapphireRapids share its sgemm kernels */
    case PULSE_LEVEL_AVX2:
        return strcmp(c->vendor, "AuthenticAMD") == 0 || strcmp(c->vendor, "HygonGenuine") == 0 ? "Zen"
                                                                                                : "Haswell";
    case PULSE_LEVEL_AVX:
        return "Sandybridge";
    default:
        return pulse_cpu_limit_get() != PULSE_ISA_NATIVE ? "Prescott" : NULL;
    }
}

static struct {
    int selected;     /* pulse_blas_select ran (the embedder's warning is then moot) */
    int explicit_set; /* the caller told us the user forced a core */
    int corrected;
    int warned;
    char detected[32];
} g_state;

typedef void (*void_fn)(void);

pulse_status pulse_blas_probe(pulse_blas_info *o) {
    memset(o, 0, sizeof *o);
    const char *cfg = openblas_get_config();
    const char *core = openblas_get_corename();
    snprintf(o->backend, sizeof o->backend, "openblas");
    snprintf(o->version, sizeof o->version, "%s", cfg ? cfg : "");
    snprintf(o->core, sizeof o->core, "%s", core ? core : "unknown");
    o->threads = openblas_get_num_threads();
    int par = openblas_get_parallel();
    snprintf(o->parallel, sizeof o->parallel, "%s",
             par == 0   ? "sequential"
             : par == 1 ? "pthreads"
                        : "openmp");
    o->level = core_level(o->core);
    if (!g_state.detected[0])
        snprintf(g_state.detected, sizeof g_state.detected, "%s", o->core); /* first look */
    o->can_select =
        dlsym(RTLD_DEFAULT, "gotoblas_dynamic_init") && dlsym(RTLD_DEFAULT, "gotoblas_dynamic_quit");
    o->explicit_core = g_state.explicit_set;
    o->corrected = g_state.corrected;
    snprintf(o->detected_core, sizeof o->detected_core, "%s",
             g_state.detected[0] ? g_state.detected : o->core);
    return PULSE_OK;
}

pulse_status pulse_blas_force_core(const char *name) {
    if (!name || !*name) return pulse_set_error(PULSE_ERR_ARG, "blas: no core name");
    pulse_blas_info before;
    pulse_blas_probe(&before); /* remembers OpenBLAS's own choice */
    g_state.selected = 1;      /* the caller manages the core: no warning */
    g_state.corrected = 0;
    void_fn quit = (void_fn)(uintptr_t)dlsym(RTLD_DEFAULT, "gotoblas_dynamic_quit");
    void_fn init = (void_fn)(uintptr_t)dlsym(RTLD_DEFAULT, "gotoblas_dynamic_init");
    if (!quit || !init)
        return pulse_set_error(PULSE_ERR_UNSUPPORTED,
                               "blas: this BLAS (%s) cannot change its kernels at run time (not an OpenBLAS "
                               "DYNAMIC_ARCH build)",
                               openblas_get_config());
    /* OpenBLAS reads the core from OPENBLAS_CORETYPE in its init: set it for that call only, then put the
     * environment back as it was */
    const char *prev = getenv("OPENBLAS_CORETYPE");
    char *saved = prev ? strdup(prev) : NULL;
    if (prev && !saved) return pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
    if (setenv("OPENBLAS_CORETYPE", name, 1) != 0) {
        free(saved);
        return pulse_set_error(PULSE_ERR_NOMEM, "blas: could not set the core name");
    }
    quit();
    init();
    if (saved)
        setenv("OPENBLAS_CORETYPE", saved, 1);
    else
        unsetenv("OPENBLAS_CORETYPE");
    free(saved);
    const char *now = openblas_get_corename();
    if (!now || strcasecmp(now, name) != 0)
        return pulse_set_error(PULSE_ERR_UNSUPPORTED, "blas: asked OpenBLAS for core %s, it runs %s", name,
                               now ? now : "(none)");
    return PULSE_OK;
}

pulse_blas_params pulse_blas_default_params(void) {
    pulse_blas_params p = {NULL};
    return p;
}

pulse_status pulse_blas_select(const pulse_blas_params *pp, pulse_blas_info *out) {
    pulse_blas_params p = pp ? *pp : pulse_blas_default_params();
    const pulse_cpu *cpu = pulse_cpu_get();
    pulse_blas_info info;
    pulse_blas_probe(&info);
    g_state.selected = 1;
    g_state.explicit_set = p.explicit_core && *p.explicit_core;
    pulse_status st = PULSE_OK;
    const char *want = core_for(cpu);
    /* up to the CPU's level; with a limit (pulse_cpu_limit), down to it as well */
    const int limited = pulse_cpu_limit_get() != PULSE_ISA_NATIVE;
    if (!g_state.explicit_set && want && core_level(want) != info.level &&
        (info.level < cpu->level || (limited && info.level > cpu->level))) {
        st = pulse_blas_force_core(want);
        if (st == PULSE_OK) g_state.corrected = 1;
    }
    if (out) pulse_blas_probe(out);
    return st;
}

void pk_blas_check_level(void) {
    if (__atomic_load_n(&g_state.warned, __ATOMIC_RELAXED) || g_state.selected) return;
    if (__atomic_exchange_n(&g_state.warned, 1, __ATOMIC_ACQ_REL)) return;
    pulse_blas_info b;
    pulse_blas_probe(&b);
    const pulse_cpu *cpu = pulse_cpu_get();
    if (b.level >= cpu->level) return;
    const char *want = core_for(cpu);
    fprintf(
        stderr,
        "pulse: warning: fp32 products run on OpenBLAS's %s kernels (%s level), below this CPU's %s level; "
        "call pulse_blas_select(NULL, NULL) at start-up (the pulse tools do) or set OPENBLAS_CORETYPE=%s\n",
        b.core, pulse_level_name(b.level), pulse_level_name(cpu->level), want ? want : "?");
}

int pulse_runtime_json(char *buf, size_t n) {
    const pulse_cpu *c = pulse_cpu_get();
    pulse_blas_info b;
    pulse_blas_probe(&b);
    const char *names[32];
    int nf = pulse_cpu_flag_names(c, names, 32);
    cJSON *o = cJSON_CreateObject(), *cpu = cJSON_AddObjectToObject(o, "cpu");
    cJSON *fp = cJSON_AddObjectToObject(o, "fp32");
    cJSON_AddStringToObject(cpu, "vendor", c->vendor);
    cJSON_AddStringToObject(cpu, "model", c->model);
    cJSON_AddNumberToObject(cpu, "family", c->family);
    cJSON_AddNumberToObject(cpu, "model_id", c->model_id);
    cJSON_AddItemToObject(cpu, "flags", cJSON_CreateStringArray(names, nf < 32 ? nf : 32));
    cJSON_AddStringToObject(cpu, "native_level", pulse_level_name(pulse_cpu_native()->level));
    cJSON_AddStringToObject(o, "cpu_level", pulse_level_name(c->level));
    cJSON_AddStringToObject(o, "isa", pulse_isa_name(pulse_cpu_limit_get()));
    cJSON_AddStringToObject(fp, "backend", b.backend);
    cJSON_AddStringToObject(fp, "version", b.version);
    cJSON_AddStringToObject(fp, "core", b.core);
    cJSON_AddStringToObject(fp, "detected_core", b.detected_core);
    cJSON_AddStringToObject(fp, "level", pulse_level_name(b.level));
    cJSON_AddBoolToObject(fp, "explicit", b.explicit_core);
    cJSON_AddBoolToObject(fp, "corrected", b.corrected);
    cJSON_AddNumberToObject(fp, "threads", b.threads);
    cJSON_AddStringToObject(fp, "parallel", b.parallel);
    cJSON *bj = cJSON_AddObjectToObject(o, "bf16");
    cJSON_AddStringToObject(bj, "kernel", pulse_bf16_supported() ? "avx512_bf16" : "fp32 fallback");
    /* what the encoders' default precision (auto) runs: bf16 only where it is the faster */
    cJSON_AddBoolToObject(bj, "faster_than_fp32", pulse_cpu_bf16_fast(pulse_cpu_get()));
    cJSON_AddStringToObject(cJSON_AddObjectToObject(o, "quant"), "kernel",
                            pulse_quant_use_vnni(-1) ? "avx512_vnni"
                            : pulse_quant_has_avx2() ? "avx2"
                                                     : "scalar");
    char *txt = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    int len = txt ? snprintf(buf, n, "%s", txt) : -1;
    free(txt);
    return len;
}
