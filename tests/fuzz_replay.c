/* tests/fuzz_replay.c — a main() for the fuzz targets outside libFuzzer: every file of the folders given on
 * the command line is passed once to the target's LLVMFuzzerTestOneInput (linked beside this file). CTest
 * runs each fuzz/<name>.c this way on its committed seeds fuzz/corpus/<name>/ (test_fuzz_seeds_<name>), so
 * the crashing inputs found so far stay regression tests in every build, ASan + UBSan included. A target that
 * finds a bad result calls abort(); an empty folder fails. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int replay_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap);
    size_t r;
    while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            uint8_t *nb = realloc(buf, cap * 2);
            if (!nb) break;
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (!buf) return -1;
    /* a copy of exactly n bytes, so that a read past the input is caught by ASan as under libFuzzer */
    uint8_t *exact = malloc(n ? n : 1);
    if (!exact) {
        free(buf);
        return -1;
    }
    memcpy(exact, buf, n);
    free(buf);
    LLVMFuzzerTestOneInput(exact, n);
    free(exact);
    return 0;
}

/* every file under dir (sub-folders too, as libFuzzer reads a corpus), in name order; returns the count or -1
 */
static int replay_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "fuzz_replay: cannot open folder %s\n", dir);
        return -1;
    }
    char **names = NULL;
    int n = 0, cap = 0, total = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **nn = realloc(names, sizeof *names * (size_t)cap);
            if (!nn) break;
            names = nn;
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    if (n) qsort(names, (size_t)n, sizeof *names, cmp_str);
    for (int i = 0; i < n && total >= 0; i++) {
        char path[4096];
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            int k = replay_dir(path);
            total = k < 0 ? -1 : total + k;
        } else {
            printf("%s\n", path);
            fflush(stdout);
            if (replay_file(path) != 0) {
                fprintf(stderr, "fuzz_replay: cannot read %s\n", path);
                total = -1;
            } else {
                total++;
            }
        }
    }
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    return total;
}

int main(int argc, char **argv) {
    int total = 0;
    for (int a = 1; a < argc; a++) {
        int k = replay_dir(argv[a]);
        if (k < 0) return 1;
        total += k;
    }
    printf("%d inputs replayed\n", total);
    return total > 0 ? 0 : 1;
}
