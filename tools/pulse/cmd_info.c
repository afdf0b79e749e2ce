/* tools/pulse/cmd_info.c — `pulse info`: the machine and the level each product family runs at (the CPU's
 * features and fp32 level from CPUID, the BLAS's name, version, core and level, the bf16 and quantised
 * kernels). Human lines on stderr, the JSON object (pulse_runtime_json) as the last stdout line. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "pulse/core.h"
#include "pulse/kernels.h"

int cmd_info(int argc, char **argv) {
    const cli_opt opts[] = {{NULL, CLI_FLAG, NULL, NULL}};
    int r = cli_parse(argc, argv, opts, 0,
                      "usage: pulse [--isa LEVEL] info\nThe CPU (CPUID features the OS enables, fp32 SIMD "
                      "level; --isa caps "
                      "them) and the level "
                      "at which each product family runs: fp32 through the BLAS (name, version, kernels, "
                      "level; pulse moves OpenBLAS up to the CPU's level unless OPENBLAS_CORETYPE is set), "
                      "bf16, quantised. Human lines on stderr, one JSON line on stdout.",
                      NULL, 0, NULL);
    if (r) return r == 1 ? 0 : 2;
    const pulse_cpu *c = pulse_cpu_get();
    pulse_blas_info b;
    pulse_blas_probe(&b);
    const char *names[32];
    int nf = pulse_cpu_flag_names(c, names, 32);
    fprintf(stderr, "cpu        %s (%s, family %d model %d)\n", c->model, c->vendor, c->family, c->model_id);
    fprintf(stderr, "features  ");
    for (int i = 0; i < nf && i < 32; i++) fprintf(stderr, " %s", names[i]);
    fprintf(stderr, "%s\n",
            c->amx_tile ? (c->amx_permitted ? " (AMX permitted)" : " (AMX not permitted)") : "");
    if (pulse_cpu_limit_get() != PULSE_ISA_NATIVE)
        fprintf(stderr, "cpu level  %s (limited to isa %s; the CPU's own level is %s)\n",
                pulse_level_name(c->level), pulse_isa_name(pulse_cpu_limit_get()),
                pulse_level_name(pulse_cpu_native()->level));
    else
        fprintf(stderr, "cpu level  %s\n", pulse_level_name(c->level));
    fprintf(stderr, "fp32       %s, kernels %s: level %s (%s, %d thread(s) of its own)\n", b.backend, b.core,
            pulse_level_name(b.level), b.parallel, b.threads);
    if (b.explicit_core) fprintf(stderr, "           chosen by OPENBLAS_CORETYPE: left alone\n");
    if (b.corrected)
        fprintf(stderr, "           OpenBLAS had chosen %s itself; pulse moved it to the CPU's level\n",
                b.detected_core);
    fprintf(stderr, "           %s\n", b.version);
    char buf[2048];
    int n = pulse_runtime_json(buf, sizeof buf);
    cJSON *o = n > 0 && (size_t)n < sizeof buf ? cJSON_Parse(buf) : NULL;
    if (!o) {
        fprintf(stderr, "pulse info: could not build the JSON line\n");
        return 1;
    }
    /* the BLAS's own thread pool: pulse starts itself with OPENBLAS_NUM_THREADS=1 unless it is set (env.h) */
    const char *obt = getenv("OPENBLAS_NUM_THREADS");
    cJSON *fp = cJSON_GetObjectItem(o, "fp32");
    if (fp) cJSON_AddStringToObject(fp, "openblas_num_threads", obt ? obt : "unset");
    fprintf(stderr, "           OPENBLAS_NUM_THREADS=%s\n", obt ? obt : "(unset)");
    fprintf(stderr, "bf16       %s\nquantised  %s\n",
            cJSON_GetObjectItem(cJSON_GetObjectItem(o, "bf16"), "kernel")->valuestring,
            cJSON_GetObjectItem(cJSON_GetObjectItem(o, "quant"), "kernel")->valuestring);
    cli_print_json(o);
    return 0;
}
