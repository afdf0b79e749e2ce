/* bench/data.c — the dataset stage's speed: pulse_dataset_synthetic (the generator the tests and `pulse data
 * synth` use) at 5000 users x 2000 items, repeated, and the leave-one-out statistics over the result. This
 * was a wall-time assertion in tests/test_data_synth.c (< 2 s), which failed at 2.3 s under parallel CTest:
 * timings live here. Usage: build/bench_data [USERS ITEMS REPEATS]   (default 5000 2000 5); last line JSON.
 */
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"
#include "pulse/data.h"

int main(int argc, char **argv) {
    bench_init(&argc, argv);
    pulse_progress_set_quiet(1);
    pulse_synth_params sp = pulse_synth_default_params();
    sp.n_users = argc > 1 ? atoi(argv[1]) : 5000;
    sp.n_items = argc > 2 ? atoi(argv[2]) : 2000;
    const int reps = argc > 3 ? atoi(argv[3]) : 5;
    if (sp.n_users < 1 || sp.n_items < 2 || reps < 1) {
        fprintf(stderr, "usage: bench_data [USERS ITEMS REPEATS]\n");
        return 2;
    }
    double best = 1e30, total = 0;
    size_t inter = 0;
    for (int r = 0; r < reps; r++) {
        pulse_dataset *ds = NULL;
        sp.seed = (uint64_t)(r + 1);
        double t0 = pulse_now();
        if (pulse_dataset_synthetic(&sp, &ds) != PULSE_OK) {
            fprintf(stderr, "bench_data: %s\n", pulse_last_error());
            return 1;
        }
        double dt = pulse_now() - t0;
        pulse_data_stats st;
        pulse_dataset_stats(ds, &st);
        inter = st.interactions;
        pulse_dataset_free(ds);
        total += dt;
        if (dt < best) best = dt;
    }
    bench_emitf("{\"bench\":\"data_synth\",\"users\":%d,\"items\":%d,\"interactions\":%zu,\"repeats\":%d,"
                "\"best_seconds\":%.4f,\"mean_seconds\":%.4f,\"users_per_second\":%.0f}",
                sp.n_users, sp.n_items, inter, reps, best, total / reps, sp.n_users / best);
    return 0;
}
