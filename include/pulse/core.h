/* pulse/core.h — status codes and error messages, RNG, timing, progress, memory and file helpers.
 * Every library function that can fail returns pulse_status; the message (file:line or field, expected vs
 * found) is kept in a thread-local buffer read with pulse_last_error(). The library never calls exit(). */
#ifndef PULSE_CORE_H
#define PULSE_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    PULSE_OK = 0,
    PULSE_ERR_IO = 1,          /* a file could not be opened, read or written */
    PULSE_ERR_PARSE = 2,       /* malformed text input (file:line: expected ...) */
    PULSE_ERR_FORMAT = 3,      /* malformed binary input (GGUF, safetensors, checkpoint) */
    PULSE_ERR_ARG = 4,         /* bad argument or option */
    PULSE_ERR_NOMEM = 5,       /* allocation failed or a size would overflow */
    PULSE_ERR_UNSUPPORTED = 6, /* valid input this build cannot handle (architecture, tensor type) */
    PULSE_ERR_STATE = 7,       /* call made in the wrong state (e.g. model not loaded) */
    PULSE_ERR_RANGE = 8,       /* a value outside its allowed range (an id, a length, a count) */
} pulse_status;

/* Human-readable name of a status ("io error", ...). */
const char *pulse_status_str(pulse_status st);
/* The message of the last error set on this thread ("" when none). */
const char *pulse_last_error(void);
/* Set the thread's error message (printf format) and return st, so callers write
 *   return pulse_set_error(PULSE_ERR_PARSE, "%s:%d: expected an item id, found '%s'", path, line, tok); */
pulse_status pulse_set_error(pulse_status st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefix the current message with more context ("while loading X: <old message>"); returns st. */
pulse_status pulse_wrap_error(pulse_status st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pulse_clear_error(void);

/* Carrying an error out of a parallel region (the message lives in the failing worker's thread): a worker
 * whose call failed runs pulse_error_box_keep(&box, st) (thread-safe; the first failure and its message are
 * kept), and after the region the caller returns pulse_error_box_raise(&box), which sets that message on the
 * caller's thread and returns the status (PULSE_OK when no worker failed). Zero-initialise the box. */
typedef struct {
    int claimed;
    pulse_status st;
    char msg[2048];
} pulse_error_box;
void pulse_error_box_keep(pulse_error_box *b, pulse_status st);
pulse_status pulse_error_box_raise(const pulse_error_box *b);

/* ---- deterministic random numbers (xoshiro256**, seeded by splitmix64) ---- */
typedef struct {
    uint64_t s[4];
} pulse_rng;
void pulse_rng_seed(pulse_rng *r, uint64_t seed);
uint64_t pulse_rng_u64(pulse_rng *r);
uint32_t pulse_rng_below(pulse_rng *r, uint32_t n); /* uniform in [0, n), unbiased; n > 0 */
float pulse_rng_float(pulse_rng *r);                /* uniform in [0, 1) */
float pulse_rng_normal(pulse_rng *r);               /* standard normal (Box-Muller) */
void pulse_rng_shuffle_int(pulse_rng *r, int *a, size_t n);

/* ---- time and memory ---- */
double pulse_now(void);            /* monotonic seconds */
size_t pulse_peak_rss_bytes(void); /* peak resident set size of this process */
size_t pulse_current_rss_bytes(void);

/* ---- checked allocation: on failure set PULSE_ERR_NOMEM and return NULL ---- */
void *pulse_malloc(size_t n);
void *pulse_calloc(size_t count, size_t size);
void *pulse_realloc(void *p, size_t n);
/* a*b with overflow check; returns 0 and sets error on overflow */
int pulse_mul_overflows(size_t a, size_t b, size_t *out);

/* ---- files ---- */
/* Read a whole file into a NUL-terminated buffer (caller frees). */
pulse_status pulse_read_file(const char *path, char **data, size_t *len);
/* Read-only memory map of a whole file. */
typedef struct {
    const uint8_t *data;
    size_t size;
} pulse_mmap;
pulse_status pulse_mmap_open(const char *path, pulse_mmap *m);
void pulse_mmap_close(pulse_mmap *m);
/* Write a file atomically: data goes to PATH.tmp, fsync, rename over PATH (saved work is never half-written).
 */
pulse_status pulse_write_file_atomic(const char *path, const void *data, size_t len);
int pulse_file_exists(const char *path);
/* Join dir and name into out (size n); returns out. */
char *pulse_path_join(char *out, size_t n, const char *dir, const char *name);
/* The last component of path (after the last '/'; the whole string when there is none); points into path. */
const char *pulse_path_base(const char *path);
/* Create the folder dir and any missing parents (mode 0755; an existing folder is fine). PULSE_ERR_IO names
 * the component that could not be created and why. */
pulse_status pulse_mkdirs(const char *dir);

/* ---- progress on stderr: "label done/total  rate/s  ETA", throttled to ~4 updates/s on a terminal (one line
 * redrawn with \r); when stderr is not a terminal (a log file, a pipe) every update is a whole line ending in
 * \n, at most one every 10 s ---- */
typedef struct {
    const char *label;
    const char *unit; /* e.g. "batch", "tok" */
    size_t total;
    size_t start; /* done when this run began (a resumed job: its rate and ETA count only this run's work) */
    double t_start, t_last;
    int quiet;
    int tty; /* stderr is a terminal */
} pulse_progress;
void pulse_progress_begin(pulse_progress *p, const char *label, const char *unit, size_t total);
/* the same for a job resumed with start of total already done (done keeps counting from 0, not from start) */
void pulse_progress_begin_at(pulse_progress *p, const char *label, const char *unit, size_t total,
                             size_t start);
void pulse_progress_update(pulse_progress *p, size_t done, const char *extra /* may be NULL */);
void pulse_progress_end(pulse_progress *p, size_t done, const char *extra);
/* When set (pulse_options.quiet: the CLI sets it from PULSE_QUIET=1; tests), progress prints nothing. */
void pulse_progress_set_quiet(int quiet);

/* ---- runtime options ----
 * The library reads no environment variables: these process-wide switches are set by the program (the CLI
 * fills them from PULSE_QUIET, PULSE_BF16, PULSE_QTILE and PULSE_LM_PROFILE). Set them before the first model
 * is loaded or kernel runs: the kernel choices are made once, at their first use. */
typedef struct {
    int quiet; /* 1: no progress or log lines on stderr (default 0) */
    int bf16;  /* 0: the bf16 products always take the fp32 fallback; 1 (default): AVX512-BF16 */
    int qtile; /* 0: the per-row quantised kernels only (comparisons); 1 (default): the batched (tiled) ones,
                  VNNI or AVX2 */
    int lm_profile; /* LM forward time per section at context free: 0 off, 1 every chunk, N > 1 N-token chunks
                     */
    int qgemv; /* one activation row (decode) through the 4-weight-rows VNNI kernels: -1 (default) where they
                  are the faster (not on AMD CPUs: src/kernels/quant.c), 0 never, 1 always (tests); same bits
                */
    int qfast; /* 1: batched products of the 32-element types (q4_0 / q5_0 / q8_0 / q4_1 / q5_1) in training's
                  order for inference too (pulse_qmatmul_fast: within rounding of llama.cpp's, not bit-equal;
                  about 2x the tile throughput on AVX512-VNNI); 0 (default): llama.cpp's order */
} pulse_options;
pulse_options pulse_default_options(void);
void pulse_set_options(const pulse_options *o /* NULL = defaults */);
const pulse_options *pulse_get_options(void);

/* ---- the CPU: CPUID features that the OS has enabled, detected once ---- */
/* fp32 SIMD levels, in order: AVX512 needs AVX-512 F+BW+DQ+VL (and FMA) with the OS's ZMM state, AVX2 needs
 * AVX2 and FMA with the YMM state. */
typedef enum {
    PULSE_LEVEL_SCALAR = 0,
    PULSE_LEVEL_SSE2 = 1,
    PULSE_LEVEL_AVX = 2,
    PULSE_LEVEL_AVX2 = 3,
    PULSE_LEVEL_AVX512 = 4,
} pulse_level;
const char *pulse_level_name(pulse_level l); /* "scalar" "sse2" "avx" "avx2" "avx512" */
typedef struct {
    char vendor[13];                /* "GenuineIntel", "AuthenticAMD", ... */
    char model[49];                 /* the brand string */
    int family, model_id, stepping; /* display family / model (extended fields folded in) */
    int sse2, avx, avx2, fma, f16c; /* 1 when the CPU has it and the OS saves its registers */
    int avx512f, avx512bw, avx512dq, avx512vl, avx512vnni, avx512bf16, avx512fp16, avxvnni;
    int amx_tile, amx_bf16, amx_int8; /* the CPU has it and the OS enables the tile state */
    int amx_permitted;                /* the kernel granted this process the tile data state */
    pulse_level level;                /* the fp32 SIMD level of this CPU */
} pulse_cpu;
/* 1 when c's bf16 dot products (vdpbf16ps) retire more flops per cycle than its fp32 FMAs, so compute-bound
 * products gain from bf16: AMD with AVX512-BF16 (Zen 4: 467 vs 235 GFLOP/s on 2 cores, bench_peak). Intel's
 * runs at half its fp32 FMA rate (Xeon family 6 model 207: 168 vs 342 GFLOP/s; MiniLM inference 104-112
 * texts/s in bf16 vs 176-180 in fp32), so 0 there and on every CPU not measured. The encoders' default
 * precision (PULSE_PREC_AUTO) follows it. */
int pulse_cpu_bf16_fast(const pulse_cpu *c);
/* The CPU as the kernels may use it: the detected features less those removed by pulse_cpu_limit. Every
 * kernel choice reads it (quantised, bf16, attention, the BLAS core of pulse_blas_select). */
const pulse_cpu *pulse_cpu_get(void);
/* The CPU as detected, whatever the limit. */
const pulse_cpu *pulse_cpu_native(void);

/* The instruction level the kernels may use, to run (and measure, and test) a lower level's paths on any
 * machine: scalar (no SIMD kernel: the portable C paths, OpenBLAS's Prescott core), avx2 (AVX2 + FMA + F16C:
 * no AVX-512, no VNNI, no BF16; OpenBLAS's Haswell core, Zen on AMD), avx512 (AVX-512 F/BW/DQ/VL + VNNI, no
 * BF16 or FP16: the Cascade Lake / Ice Lake class), native (all the CPU has). */
typedef enum {
    PULSE_ISA_NATIVE = 0,
    PULSE_ISA_SCALAR = 1,
    PULSE_ISA_AVX2 = 2,
    PULSE_ISA_AVX512 = 3,
} pulse_isa;
const char *pulse_isa_name(pulse_isa isa); /* "native" "scalar" "avx2" "avx512" */
/* name -> isa; PULSE_ERR_ARG (message naming the choices) when it is none of them */
pulse_status pulse_isa_parse(const char *name, pulse_isa *out);
/* Caps what pulse_cpu_get() reports at isa (the CLI's --isa, the benches' --isa; the library reads no
 * environment). Call at start-up from one thread, before any kernel runs and before pulse_blas_select (which
 * then puts OpenBLAS on the level's core, down as well as up): the kernels make their choice at first use.
 * A CPU below the level keeps its own (the cap only removes features) and the call returns
 * PULSE_ERR_UNSUPPORTED naming what is missing. */
pulse_status pulse_cpu_limit(pulse_isa isa);
pulse_isa pulse_cpu_limit_get(void);
/* The names of the features present ("avx2", "avx512_bf16", ...), at most max into names; returns the count.
 */
int pulse_cpu_flag_names(const pulse_cpu *c, const char **names, int max);

#ifdef __cplusplus
}
#endif
#endif
