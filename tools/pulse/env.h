/* tools/pulse/env.h — the environment variables of the pulse programs (the CLI and the bench programs), read
 * here because the library reads none: PULSE_QUIET=1 (no progress lines), PULSE_BF16=0 (fp32 instead of the
 * AVX512-BF16 products), PULSE_QTILE=0 (per-row quantised kernels only), PULSE_LM_PROFILE=1|N (LM forward
 * time per section). pulse_options_from_env() fills pulse_options from them and hands them to the library. */
#ifndef PULSE_TOOLS_ENV_H
#define PULSE_TOOLS_ENV_H

#include <stdlib.h>

#include "pulse/core.h"

static inline void pulse_options_from_env(void) {
    pulse_options o = pulse_default_options();
    const char *e;
    if ((e = getenv("PULSE_QUIET")) && *e && *e != '0') o.quiet = 1;
    if ((e = getenv("PULSE_BF16")) && e[0] == '0' && !e[1]) o.bf16 = 0;
    if ((e = getenv("PULSE_QTILE")) && e[0] == '0') o.qtile = 0;
    if ((e = getenv("PULSE_LM_PROFILE")) && *e) o.lm_profile = atoi(e);
    pulse_set_options(&o);
}

#endif
