/* fuzz/fuzz_files.h — shared by the fuzz targets that read files or folders: a per-process scratch folder
 * under $TMPDIR (default /tmp; point it at a tmpfs such as /dev/shm: every execution writes its files there,
 * and on a busy disk the fuzzer otherwise waits on I/O), and the container that turns one fuzz input into
 * several files, records of: u8 file index (modulo the target's name table) | u32 little-endian length | that
 * many bytes (a length past the end takes the rest). Every file of the table is removed before an input is
 * written, so files an input does not name are absent. scripts/gen-fuzz-corpus.py writes the seeds in this
 * format. */
#ifndef PULSE_FUZZ_FILES_H
#define PULSE_FUZZ_FILES_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pulse/core.h"

/* The scratch folder $TMPDIR/pulse_fuzz_<tag>_<pid> ($TMPDIR unset or too long: /tmp), made on first use. */
static inline const char *fuzz_dir(const char *tag) {
    static char dir[128];
    if (!dir[0]) {
        const char *tmp = getenv("TMPDIR");
        if (!tmp || !tmp[0] || strlen(tmp) > 48) tmp = "/tmp";
        snprintf(dir, sizeof dir, "%s/pulse_fuzz_%s_%d", tmp, tag, (int)getpid());
        mkdir(dir, 0755);
        pulse_progress_set_quiet(1);
    }
    return dir;
}

static inline int fuzz_write(const char *path, const uint8_t *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = size ? fwrite(data, 1, size, f) : 0;
    return fclose(f) == 0 && w == size ? 0 : -1;
}

/* Writes the container's files under dir (names: relative paths); returns the
 * number of files written. */
static inline int fuzz_files(const char *dir, const char *const *names, int n_names, const uint8_t *data,
                             size_t size) {
    char path[512];
    for (int i = 0; i < n_names; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    int n = 0;
    while (size >= 5) {
        int k = data[0] % n_names;
        uint32_t len;
        memcpy(&len, data + 1, 4);
        data += 5, size -= 5;
        if (len > size) len = (uint32_t)size;
        snprintf(path, sizeof path, "%s/%s", dir, names[k]);
        for (char *q = path + strlen(dir) + 1; (q = strchr(q, '/')) != NULL; q++) { /* sub-folders */
            *q = 0;
            mkdir(path, 0755);
            *q = '/';
        }
        if (fuzz_write(path, data, len) == 0) n++;
        data += len, size -= len;
    }
    return n;
}

#endif
