/* tests/test_exports.c — libpulse.so exports the public API and nothing else: every dynamic symbol it defines
 * is pulse_* (no internal pk_ / pq_ / pd_ / lm_ name leaks into an embedder's namespace), the API an embedder
 * calls resolves and runs through dlopen. */
#include "test.h"

#include <dlfcn.h>

#include "pulse/core.h"

int main(void) {
#ifndef PULSE_SHARED_LIB
    test_skip("libpulse.so not built (-DPULSE_SHARED=OFF)");
#else
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "nm -D --defined-only '%s' 2>/dev/null", PULSE_SHARED_LIB);
    FILE *p = popen(cmd, "r");
    CHECK(p != NULL);
    int n = 0, bad = 0;
    char line[1024];
    while (p && fgets(line, sizeof line, p)) {
        char addr[64], type[8], name[512];
        if (sscanf(line, "%63s %7s %511s", addr, type, name) != 3) continue;
        if (type[0] == 'A') continue; /* the version node itself */
        n++;
        if (strncmp(name, "pulse_", 6) != 0) {
            if (bad++ < 10) fprintf(stderr, "exported but not public: %s\n", name);
        }
    }
    if (p) CHECK(pclose(p) == 0);
    printf("libpulse.so exports %d symbols, %d outside pulse_*\n", n, bad);
    CHECK(n > 100);
    CHECK(bad == 0);
    void *h = dlopen(PULSE_SHARED_LIB, RTLD_NOW | RTLD_LOCAL);
    CHECK_MSG(h != NULL, "dlopen: %s", dlerror());
    if (h) {
        const pulse_cpu *(*cpu_get)(void) = (const pulse_cpu *(*)(void))dlsym(h, "pulse_cpu_get");
        const char *(*status_str)(pulse_status) = (const char *(*)(pulse_status))dlsym(h, "pulse_status_str");
        CHECK(cpu_get && status_str);
        if (cpu_get) CHECK(cpu_get()->level == pulse_cpu_get()->level);
        if (status_str) CHECK(strcmp(status_str(PULSE_ERR_IO), "io error") == 0);
        CHECK(dlsym(h, "pk_sgemm") == NULL); /* internal kernels stay inside */
        dlclose(h);
    }
#endif
    return test_summary();
}
