/* tests/test_info_cli.c — the CLI contract of `pulse info` (the machine and the level each product family
 * runs at: JSON last line with cpu.model, cpu.flags, cpu_level, fp32.backend/core/level; fp32.level equals
 * cpu_level unless OPENBLAS_CORETYPE forces a core, which is then reported and left alone; --isa / PULSE_ISA
 * cap every family at scalar, avx2 or avx512 without BF16, a level above the CPU refused; OpenBLAS started
 * without its own thread pool unless OPENBLAS_NUM_THREADS is set) and of the
 * evaluation's history modes on a repeat-consumption dataset (`pulse data synth --repeat`, `pulse data stats`
 * repeat counts, `pulse eval --history-mode mask|keep`, a bad --history-mode value). */
#include "test.h"

#include <cjson/cJSON.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *str(cJSON *o, const char *k) {
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
}

int main(void) {
    char cmd[2048], last[8192];
    const char *forced = getenv("OPENBLAS_CORETYPE");
    /* OpenBLAS's own thread pool: with OPENBLAS_NUM_THREADS unset pulse starts itself again with it at 1; a
     * value the user set is kept */
    for (int k = 0; k < 2; k++) {
        snprintf(cmd, sizeof cmd, "%s '%s' info 2>/dev/null",
                 k ? "OPENBLAS_NUM_THREADS=2" : "env -u OPENBLAS_NUM_THREADS", PULSE_CLI);
        CHECK(test_run_last(cmd, last, sizeof last) == 0);
        cJSON *e = cJSON_Parse(last);
        const char *v = e ? str(cJSON_GetObjectItem(e, "fp32"), "openblas_num_threads") : NULL;
        CHECK_MSG(v && strcmp(v, k ? "2" : "1") == 0, "OPENBLAS_NUM_THREADS seen as %s", v ? v : "(none)");
        cJSON_Delete(e);
    }
    snprintf(cmd, sizeof cmd, "'%s' info 2>/dev/null", PULSE_CLI);
    CHECK(test_run_last(cmd, last, sizeof last) == 0);
    cJSON *o = cJSON_Parse(last);
    CHECK(o != NULL);
    if (o) {
        cJSON *cpu = cJSON_GetObjectItem(o, "cpu"), *fp = cJSON_GetObjectItem(o, "fp32");
        CHECK(cpu && fp && str(cpu, "model") && cJSON_IsArray(cJSON_GetObjectItem(cpu, "flags")));
        CHECK(str(fp, "backend") && str(fp, "core") && str(fp, "level") && str(o, "cpu_level"));
        int can = str(fp, "core") && strcmp(str(fp, "backend"), "openblas") == 0;
        if (can && !(forced && *forced) && strcmp(str(o, "cpu_level"), "sse2") != 0)
            CHECK_MSG(strcmp(str(fp, "level"), str(o, "cpu_level")) == 0, "fp32.level %s, cpu_level %s",
                      str(fp, "level"), str(o, "cpu_level"));
        if (forced && *forced) CHECK(cJSON_IsTrue(cJSON_GetObjectItem(fp, "explicit")));
        cJSON_Delete(o);
    }
    /* an explicit core is reported and left alone */
    snprintf(cmd, sizeof cmd, "OPENBLAS_CORETYPE=Prescott '%s' info 2>/dev/null", PULSE_CLI);
    CHECK(test_run_last(cmd, last, sizeof last) == 0);
    o = cJSON_Parse(last);
    CHECK(o != NULL);
    if (o) {
        cJSON *fp = cJSON_GetObjectItem(o, "fp32");
        CHECK(cJSON_IsTrue(cJSON_GetObjectItem(fp, "explicit")) &&
              cJSON_IsFalse(cJSON_GetObjectItem(fp, "corrected")));
        CHECK(str(fp, "core") && strcasecmp(str(fp, "core"), "Prescott") == 0);
        CHECK(str(fp, "level") && strcmp(str(fp, "level"), "sse2") == 0);
        cJSON_Delete(o);
    }
    snprintf(cmd, sizeof cmd, "'%s' info --bogus 2>/dev/null", PULSE_CLI);
    CHECK(test_run_last(cmd, last, sizeof last) == 2);

    /* --isa (anywhere on the line; PULSE_ISA when absent): every product family at the level asked */
    const pulse_cpu *nat = pulse_cpu_native();
    const struct {
        const char *isa, *level, *fp32, *quant;
        int have;
    } lv[] = {
        {"scalar", "scalar", "sse2", "scalar", 1},
        {"avx2", "avx2", "avx2", "avx2", nat->avx2 && nat->fma && nat->f16c},
        {"avx512", "avx512", "avx512", "avx512_vnni", nat->level == PULSE_LEVEL_AVX512 && nat->avx512vnni},
    };
    for (int i = 0; i < 3; i++) {
        snprintf(cmd, sizeof cmd, "env -u OPENBLAS_CORETYPE PULSE_ISA=scalar '%s' %sinfo%s 2>/dev/null",
                 PULSE_CLI, i == 1 ? "--isa avx2 " : "",
                 i == 1   ? ""
                 : i == 0 ? " --isa scalar"
                          : " --isa=avx512");
        const int rc = test_run_last(cmd, last, sizeof last);
        if (!lv[i].have) { /* a level above the CPU: refused, named */
            CHECK_MSG(rc == 2, "--isa %s on a CPU without it: exit %d", lv[i].isa, rc);
            continue;
        }
        CHECK_MSG(rc == 0, "--isa %s: exit %d", lv[i].isa, rc);
        o = cJSON_Parse(last);
        CHECK(o != NULL);
        if (!o) continue;
        cJSON *fp = cJSON_GetObjectItem(o, "fp32");
        const char *bk = str(cJSON_GetObjectItem(o, "bf16"), "kernel"),
                   *qk = str(cJSON_GetObjectItem(o, "quant"), "kernel");
        CHECK_MSG(str(o, "isa") && !strcmp(str(o, "isa"), lv[i].isa) && str(o, "cpu_level") &&
                      !strcmp(str(o, "cpu_level"), lv[i].level),
                  "--isa %s: isa %s cpu_level %s", lv[i].isa, str(o, "isa"), str(o, "cpu_level"));
        CHECK_MSG(bk && strcmp(bk, "avx512_bf16") != 0, "--isa %s: bf16 kernel %s", lv[i].isa,
                  bk ? bk : "(none)");
        CHECK_MSG(qk && !strcmp(qk, lv[i].quant), "--isa %s: quant kernel %s", lv[i].isa, qk ? qk : "(none)");
        if (cJSON_IsTrue(cJSON_GetObjectItem(fp, "corrected"))) /* OpenBLAS can change its core here */
            CHECK_MSG(str(fp, "level") && !strcmp(str(fp, "level"), lv[i].fp32),
                      "--isa %s: fp32 core %s level %s", lv[i].isa, str(fp, "core"), str(fp, "level"));
        if (i == 1)
            CHECK(str(fp, "core") &&
                  (!strcmp(str(fp, "core"), "Haswell") || !strcmp(str(fp, "core"), "Zen")));
        cJSON_Delete(o);
    }
    snprintf(cmd, sizeof cmd, "PULSE_ISA=avx2 '%s' info 2>/dev/null", PULSE_CLI);
    CHECK(test_run_last(cmd, last, sizeof last) == (lv[1].have ? 0 : 2));
    o = cJSON_Parse(last);
    if (lv[1].have) CHECK(o && str(o, "cpu_level") && !strcmp(str(o, "cpu_level"), "avx2"));
    cJSON_Delete(o);
    snprintf(cmd, sizeof cmd, "'%s' info --isa sse9 2>&1", PULSE_CLI);
    CHECK(test_run_last(cmd, last, sizeof last) == 2 && strstr(last, "scalar, avx2, avx512 or native"));
    snprintf(cmd, sizeof cmd, "'%s' info --isa 2>/dev/null", PULSE_CLI);
    CHECK(test_run_last(cmd, last, sizeof last) == 2);

    /* repeat consumption end to end through the CLI */
    char dir[] = "/tmp/pulse_info_cli_XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0);
        return test_summary();
    }
    snprintf(cmd, sizeof cmd, "PULSE_QUIET=1 '%s' data synth --out '%s/rep' --repeat 0.1 --seed 2 >/dev/null",
             PULSE_CLI, dir);
    CHECK(test_run_last(cmd, last, sizeof last) == 0);
    snprintf(cmd, sizeof cmd, "PULSE_QUIET=1 '%s' data stats --data '%s/rep'", PULSE_CLI, dir);
    CHECK(test_run_last(cmd, last, sizeof last) == 0);
    o = cJSON_Parse(last);
    int rep_test = -1;
    if (o) {
        cJSON *r = cJSON_GetObjectItem(o, "repeat_targets");
        rep_test = cJSON_GetObjectItem(r, "test") ? cJSON_GetObjectItem(r, "test")->valueint : -1;
        CHECK(rep_test > 10 && rep_test < 200); /* ~10% of 500 users */
        cJSON_Delete(o);
    }
    double hr[2] = {-1, -1};
    const char *modes[2] = {"mask", "keep"};
    for (int m = 0; m < 2; m++) {
        snprintf(cmd, sizeof cmd, "PULSE_QUIET=1 '%s' eval --data '%s/rep' --model pop --history-mode %s",
                 PULSE_CLI, dir, modes[m]);
        CHECK(test_run_last(cmd, last, sizeof last) == 0);
        o = cJSON_Parse(last);
        CHECK(o != NULL);
        if (!o) continue;
        CHECK(str(o, "history") && strcmp(str(o, "history"), modes[m]) == 0);
        CHECK(cJSON_GetObjectItem(o, "repeat_targets") &&
              cJSON_GetObjectItem(o, "repeat_targets")->valueint == rep_test);
        CHECK(cJSON_GetObjectItem(o, "users_skipped") &&
              cJSON_GetObjectItem(o, "users_skipped")->valueint == 0);
        hr[m] = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "metrics"), "MRR")->valuedouble;
        cJSON_Delete(o);
    }
    CHECK(hr[0] >= 0 && hr[1] >= 0 && hr[0] != hr[1]); /* the repeated users count differently */
    snprintf(cmd, sizeof cmd,
             "PULSE_QUIET=1 '%s' eval --data '%s/rep' --model pop --history-mode all 2>/dev/null", PULSE_CLI,
             dir);
    CHECK(test_run_last(cmd, last, sizeof last) == 2);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    return test_summary();
}
