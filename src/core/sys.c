/* core/sys.c — owns timing, RSS, checked allocation, file reading/mmap/atomic writes. */
#include "pulse/core.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

double pulse_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

size_t pulse_peak_rss_bytes(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (size_t)ru.ru_maxrss * 1024u;
}

size_t pulse_current_rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    unsigned long pages = 0, rss = 0;
    int n = fscanf(f, "%lu %lu", &pages, &rss);
    fclose(f);
    return n == 2 ? (size_t)rss * (size_t)sysconf(_SC_PAGESIZE) : 0;
}

void *pulse_malloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) pulse_set_error(PULSE_ERR_NOMEM, "out of memory allocating %zu bytes", n);
    return p;
}

void *pulse_calloc(size_t count, size_t size) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) pulse_set_error(PULSE_ERR_NOMEM, "out of memory allocating %zu x %zu bytes", count, size);
    return p;
}

void *pulse_realloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) pulse_set_error(PULSE_ERR_NOMEM, "out of memory reallocating %zu bytes", n);
    return q;
}

int pulse_mul_overflows(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) {
        pulse_set_error(PULSE_ERR_NOMEM, "size overflow: %zu x %zu", a, b);
        return 1;
    }
    *out = a * b;
    return 0;
}

pulse_status pulse_read_file(const char *path, char **data, size_t *len) {
    *data = NULL;
    if (len) *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return pulse_set_error(PULSE_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    if (!buf) {
        fclose(f);
        return pulse_set_error(PULSE_ERR_NOMEM, "%s: out of memory", path);
    }
    for (;;) {
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                fclose(f);
                return pulse_set_error(PULSE_ERR_NOMEM, "%s: out of memory at %zu bytes", path, n);
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - 1 - n, f);
        n += got;
        if (got == 0) break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        return pulse_set_error(PULSE_ERR_IO, "%s: read error", path);
    }
    buf[n] = 0;
    *data = buf;
    if (len) *len = n;
    return PULSE_OK;
}

pulse_status pulse_mmap_open(const char *path, pulse_mmap *m) {
    m->data = NULL;
    m->size = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return pulse_set_error(PULSE_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return pulse_set_error(PULSE_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return pulse_set_error(PULSE_ERR_IO, "%s: not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        m->data = (const uint8_t *)"";
        return PULSE_OK;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return pulse_set_error(PULSE_ERR_IO, "%s: mmap failed: %s", path, strerror(errno));
    m->data = p;
    m->size = (size_t)st.st_size;
    return PULSE_OK;
}

void pulse_mmap_close(pulse_mmap *m) {
    if (m->data && m->size) munmap((void *)m->data, m->size);
    m->data = NULL;
    m->size = 0;
}

pulse_status pulse_write_file_atomic(const char *path, const void *data, size_t len) {
    size_t pl = strlen(path);
    char *tmp = malloc(pl + 8);
    if (!tmp) return pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
    memcpy(tmp, path, pl);
    memcpy(tmp + pl, ".tmp", 5);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        pulse_status st = pulse_set_error(PULSE_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
        free(tmp);
        return st;
    }
    size_t w = len ? fwrite(data, 1, len, f) : 0;
    int ok = (w == len) && fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        pulse_status st = pulse_set_error(PULSE_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return st;
    }
    free(tmp);
    return PULSE_OK;
}

int pulse_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

const char *pulse_path_base(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

pulse_status pulse_mkdirs(const char *dir) {
    char tmp[4096];
    if (!dir || !*dir) return pulse_set_error(PULSE_ERR_ARG, "cannot create a folder with an empty name");
    if (strlen(dir) >= sizeof tmp)
        return pulse_set_error(PULSE_ERR_ARG, "folder name longer than %zu bytes: %.64s...", sizeof tmp - 1,
                               dir);
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (char *p = tmp + 1;; p++)
        if (*p == '/' || *p == 0) {
            const char c = *p;
            *p = 0;
            struct stat st;
            if (mkdir(tmp, 0755) != 0 && (errno != EEXIST || stat(tmp, &st) != 0 || !S_ISDIR(st.st_mode)))
                return pulse_set_error(PULSE_ERR_IO, "%s: cannot create folder: %s", tmp,
                                       errno == EEXIST ? "a file of that name exists" : strerror(errno));
            if (!(*p = c)) break;
        }
    return PULSE_OK;
}

char *pulse_path_join(char *out, size_t n, const char *dir, const char *name) {
    size_t dl = strlen(dir);
    if (dl && dir[dl - 1] == '/')
        snprintf(out, n, "%s%s", dir, name);
    else
        snprintf(out, n, "%s/%s", dir, name);
    return out;
}
