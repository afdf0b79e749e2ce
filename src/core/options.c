/* core/options.c — owns the process-wide runtime options (pulse_options): the switches the library would
 * otherwise read from the environment. The library never calls getenv(); the CLI (and the bench programs)
 * read PULSE_QUIET, PULSE_BF16, PULSE_QTILE, PULSE_QGEMV, PULSE_QFAST and PULSE_LM_PROFILE and pass them in
 * with pulse_set_options. */
#include "pulse/core.h"

static pulse_options g_opts = {0, 1, 1, 0, -1, 0};

pulse_options pulse_default_options(void) {
    pulse_options o = {0, 1, 1, 0, -1, 0};
    return o;
}

void pulse_set_options(const pulse_options *o) {
    g_opts = o ? *o : pulse_default_options();
}

const pulse_options *pulse_get_options(void) {
    return &g_opts;
}

void pulse_progress_set_quiet(int quiet) {
    g_opts.quiet = quiet != 0;
}
