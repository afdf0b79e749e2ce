/* tests/test_cli_args.c — the CLI's house rules, each a regression of issue 9: out-of-range, NaN and
 * malformed numbers are usage errors (exit 2) that name the flag and its range; --threads above the cores is
 * clamped and said on stderr; --out that is a directory or cannot be written fails before any work; the
 * short flags mean one thing everywhere; usage errors go to stderr; `pulse --version`; progress lines end
 * with a newline when stderr is not a terminal; dataset errors escape control bytes and name directories.
 * Needs no model: everything here fails (or runs) before a model would be loaded. */
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

static char out_buf[1 << 16], err_buf[1 << 16];
static char tmp[] = "/tmp/pulse_cli_argsXXXXXX";

/* run a shell command with stderr captured to a file: stdout in out_buf, stderr in err_buf; exit status */
static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...) {
    char cmd[4096], full[4600], errp[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    snprintf(errp, sizeof errp, "%s/stderr.txt", tmp);
    snprintf(full, sizeof full, "( %s ) 2>'%s'", cmd, errp);
    out_buf[0] = err_buf[0] = 0;
    FILE *f = popen(full, "r");
    if (!f) return -1;
    size_t n = fread(out_buf, 1, sizeof out_buf - 1, f);
    out_buf[n] = 0;
    int st = pclose(f);
    FILE *e = fopen(errp, "rb");
    if (e) {
        n = fread(err_buf, 1, sizeof err_buf - 1, e);
        err_buf[n] = 0;
        fclose(e);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* a usage error: exit 2, nothing on stdout, stderr names every needle */
static void usage_error(const char *args, const char *n1, const char *n2) {
    int rc = run("'%s' %s", PULSE_CLI, args);
    CHECK_MSG(rc == 2, "pulse %s -> exit %d (want 2); stderr: %s", args, rc, err_buf);
    CHECK_MSG(out_buf[0] == 0, "pulse %s printed on stdout: %s", args, out_buf);
    CHECK_MSG(strstr(err_buf, n1) != NULL, "pulse %s: stderr lacks '%s': %s", args, n1, err_buf);
    if (n2) CHECK_MSG(strstr(err_buf, n2) != NULL, "pulse %s: stderr lacks '%s': %s", args, n2, err_buf);
    printf("pulse %s -> %d: %s", args, rc, err_buf);
}

int main(void) {
    CHECK(mkdtemp(tmp) != NULL);
    char args[2048];

    /* ---- numbers: range, NaN / inf, trailing garbage; the message names the flag and the range ---- */
    usage_error("sasrec train --data x --out y --dropout -0.5", "--dropout", "[0, 1)");
    usage_error("sasrec train --data x --out y --dropout 1", "--dropout", "[0, 1)");
    usage_error("lm generate -m x.gguf -p hi --top-p nan", "--top-p", "[0, 1]");
    usage_error("lm generate -m x.gguf -p hi --top-k -5", "--top-k", ">= 0");
    usage_error("lm generate -m x.gguf -p hi -c -5", "--ctx-size (-c)", ">= 0");
    usage_error("lm generate -m x.gguf -p hi --temp nan", "--temp", "nan");
    usage_error("lm generate -m x.gguf -p hi --temp inf", "--temp", "finite");
    usage_error("lm generate -m x.gguf -p hi --temp 1e999", "--temp", NULL);
    usage_error("lm generate -m x.gguf -p hi -n -1", "--n-predict (-n)", ">= 0");
    usage_error("lm generate -m x.gguf -p hi --top-k 5x", "--top-k", "'5x'");
    usage_error("lm generate -m x.gguf -p hi --top-k 1.5", "--top-k", "integer");
    usage_error("data stats --data x --max-users -1", "--max-users", ">= 0");
    usage_error("data stats --data x --kcore -1", "--kcore", ">= 1");
    usage_error("sasrec eval --data x --model y --max-users -1", "--max-users", ">= 0");
    usage_error("eval --data x --model pop --max-users -1", "--max-users", ">= 0");
    usage_error("thought train --pairs x --encoder y --out z --tau 0", "--tau", "(0, 1000]");
    usage_error("thought plot --pairs a --before b --after c --out d.svg --n 1", "--anchors", "[2,");
    usage_error("data synth --out x --attributes 40", "--attributes", "[2, 16]");
    usage_error("lm bench -m x.gguf --parallel 0", "--parallel", "[1, 4096]");
    usage_error("encode --encoder x --text a --batch 0", "--batch", NULL);
    {
        int rc = run("PULSE_THREADS=abc '%s' data stats --data x", PULSE_CLI);
        CHECK_MSG(rc == 2 && strstr(err_buf, "PULSE_THREADS"), "PULSE_THREADS=abc -> %d: %s", rc, err_buf);
    }

    /* ---- short flags: one meaning each (-t threads, -c ctx-size, -p prompt) ---- */
    usage_error("lm info -t x.gguf", "unknown option '-t'", NULL);            /* -t is not --tensors */
    usage_error("lm score -m x.gguf -p a -c b", "unknown option '-c'", NULL); /* -c is not --continuation */
    usage_error("lm bench -m x.gguf -p 16", "unknown option '-p'", NULL);     /* -p is not --prompt-tokens */
    usage_error("encode --encoder x -t abc", "--threads (-t)", "'abc'");      /* -t is not --text */
    usage_error("lm tokenize -m x.gguf -t abc", "unknown option '-t'", NULL); /* tokenize has no threads */

    /* ---- the command table, usage errors on stderr, --version ---- */
    CHECK(run("'%s'", PULSE_CLI) == 2 && out_buf[0] == 0 && strstr(err_buf, "commands:"));
    CHECK(run("'%s' lm", PULSE_CLI) == 2 && out_buf[0] == 0 && strstr(err_buf, "generate"));
    CHECK(run("'%s' nope", PULSE_CLI) == 2 && strstr(err_buf, "unknown command 'nope'"));
    CHECK(run("'%s' --help", PULSE_CLI) == 0 && strstr(out_buf, "thought") && strstr(out_buf, "sasrec"));
    CHECK(run("'%s' thought --help", PULSE_CLI) == 0 && strstr(out_buf, "plot"));
    CHECK(run("'%s' --version", PULSE_CLI) == 0 && strncmp(out_buf, "pulse ", 6) == 0);
    printf("pulse --version -> %s", out_buf);
    {
        /* lm info -m FILE and lm info FILE print the same */
        static char a[sizeof out_buf];
        CHECK(run("'%s' lm info '%s/fuzz/corpus/gguf/valid_vocab_v3.seed'", PULSE_CLI, PULSE_SOURCE_DIR) ==
              0);
        snprintf(a, sizeof a, "%s", out_buf);
        CHECK(run("'%s' lm info -m '%s/fuzz/corpus/gguf/valid_vocab_v3.seed'", PULSE_CLI, PULSE_SOURCE_DIR) ==
              0);
        CHECK(out_buf[0] && strcmp(a, out_buf) == 0);
        CHECK(run("'%s' lm info -m a.gguf b.gguf", PULSE_CLI) == 2);
    }

    /* ---- a synthetic dataset for the commands that run ---- */
    CHECK(run("PULSE_QUIET=1 '%s' data synth --out '%s/syn' --users 80 --items 40 -s 3", PULSE_CLI, tmp) ==
          0);

    /* ---- --threads above the cores: clamped, said on stderr, the run goes on ---- */
    {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        int rc = run("'%s' sasrec train --data '%s/syn' --out '%s/m.bin' --epochs 1 --dim 8 --threads 10000",
                     PULSE_CLI, tmp, tmp);
        char want[96];
        snprintf(want, sizeof want, "--threads 10000 is more than the %ld cores of this machine; using %ld",
                 cores, cores);
        CHECK_MSG(rc == 0 && strstr(err_buf, want), "--threads 10000 -> %d: %s", rc, err_buf);
        /* progress and report lines on a non-terminal stderr: whole lines, no carriage returns */
        CHECK_MSG(strchr(err_buf, '\r') == NULL, "carriage return in a redirected stderr");
        CHECK(strstr(err_buf, "epoch") != NULL);
        size_t el = strlen(err_buf);
        CHECK(el > 0 && err_buf[el - 1] == '\n');
        printf("--threads 10000 -> %d: %.*s\n", rc, (int)(strchr(err_buf, '\n') - err_buf), err_buf);
    }

    /* ---- --out checked before any work ---- */
    snprintf(args, sizeof args, "sasrec train --data '%s/syn' --out '%s' --epochs 1", tmp, tmp);
    usage_error(args, "is a directory", NULL);
    snprintf(args, sizeof args, "sasrec train --data '%s/syn' --out '%s/no/such/m.bin'", tmp, tmp);
    usage_error(args, "does not exist", NULL);
    snprintf(args, sizeof args, "sasrec similar --data '%s/syn' --model '%s/m.bin' --out '%s'", tmp, tmp,
             tmp);
    usage_error(args, "is a directory", NULL);
    snprintf(args, sizeof args, "thought pairs --data '%s/syn' --out '%s'", tmp, tmp);
    usage_error(args, "is a directory", NULL);
    snprintf(args, sizeof args, "thought train --pairs x --encoder y --out '%s/syn/sequences.txt'", tmp);
    usage_error(args, "is not a folder", NULL);
    snprintf(args, sizeof args, "data convert --data '%s/syn' --to recbole --out '%s/syn/sequences.txt/rb'",
             tmp, tmp);
    usage_error(args, "is not a folder", NULL);
    snprintf(args, sizeof args, "data synth --out '%s/syn/items.tsv'", tmp);
    usage_error(args, "is not a folder", NULL);
    snprintf(args, sizeof args, "thought plot --pairs a --before b --after c --out '%s'", tmp);
    usage_error(args, "is a directory", NULL);
    if (geteuid() != 0) { /* root writes anywhere */
        char ro[600];
        snprintf(ro, sizeof ro, "%s/ro", tmp);
        mkdir(ro, 0555);
        snprintf(args, sizeof args, "sasrec train --data '%s/syn' --out '%s/m.bin'", tmp, ro);
        usage_error(args, "cannot write", NULL);
    }

    /* ---- dataset errors: control bytes escaped, directories named ---- */
    {
        char p[600];
        snprintf(p, sizeof p, "%s/bad", tmp);
        mkdir(p, 0755);
        snprintf(p, sizeof p, "%s/bad/sequences.txt", tmp);
        FILE *f = fopen(p, "wb");
        CHECK(f != NULL);
        if (f) {
            fputs("\xEF\xBB\xBF"
                  "1 2 3\r\n2 x\r\x01 4\n",
                  f);
            fclose(f);
        }
        int rc = run("'%s' data stats --data '%s/bad'", PULSE_CLI, tmp);
        CHECK_MSG(rc == 1, "bad dataset -> %d", rc);
        CHECK_MSG(strchr(err_buf, '\r') == NULL && strchr(err_buf, '\x01') == NULL &&
                      strstr(err_buf, "\xEF\xBB\xBF") == NULL,
                  "raw control bytes in: %s", err_buf);
        CHECK_MSG(strstr(err_buf, "\\xEF\\xBB\\xBF") || strstr(err_buf, "\\r") || strstr(err_buf, "\\x01"),
                  "no escapes in: %s", err_buf);
        printf("BOM/CR dataset -> %d: %s", rc, err_buf);
        snprintf(p, sizeof p, "%s/dirds", tmp);
        mkdir(p, 0755);
        snprintf(p, sizeof p, "%s/dirds/sequences.txt", tmp);
        mkdir(p, 0755);
        rc = run("'%s' data stats --data '%s/dirds'", PULSE_CLI, tmp);
        CHECK_MSG(rc == 1 && strstr(err_buf, "is a directory"), "directory as sequences.txt -> %d: %s", rc,
                  err_buf);
        printf("sequences.txt a directory -> %d: %s", rc, err_buf);
    }

    char rm[600];
    snprintf(rm, sizeof rm, "chmod -R u+w '%s'; rm -rf '%s'", tmp, tmp);
    CHECK(system(rm) == 0);
    return test_summary();
}
