/* tests/test_info_cli.c — the CLI contract of `pulse info` (the machine and the level each product family
 * runs at: JSON last line with cpu.model, cpu.flags, cpu_level, fp32.backend/core/level; fp32.level equals
 * cpu_level unless OPENBLAS_CORETYPE forces a core, which is then reported and left alone) and of the
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
