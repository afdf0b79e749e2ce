/* kernels/scratch.c — owns the kernels' per-thread scratch buffers: one grow-only, 64-byte aligned buffer per
 * slot (PK_SCR_* in internal.h) and calling thread, so hot products neither allocate per call nor share a
 * buffer between threads. A slot's buffer is reused by the next call that takes the same slot on the same
 * thread: two users that can be live at once need different slots. A thread's buffers are freed when it ends
 * (a pthread key's destructor: OpenMP retires workers when a team shrinks, e.g. after 3 threads then 1). */
#include "internal.h"

#include <pthread.h>
#include <stdlib.h>

typedef struct {
    void *buf[PK_SCR_SLOTS];
    size_t cap[PK_SCR_SLOTS];
} scr_table;

static _Thread_local scr_table *tl_tab;
static pthread_key_t g_key;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_key_ok;

static void scr_free(void *p) {
    scr_table *t = p;
    for (int i = 0; i < PK_SCR_SLOTS; i++) free(t->buf[i]);
    free(t);
}

static void key_init(void) {
    g_key_ok = pthread_key_create(&g_key, scr_free) == 0;
}

void *pk_scratch(int slot, size_t bytes) {
    scr_table *t = tl_tab;
    if (!t) {
        pthread_once(&g_once, key_init);
        if (!(t = calloc(1, sizeof *t))) return NULL;
        if (g_key_ok) pthread_setspecific(g_key, t);
        tl_tab = t;
    }
    if (bytes > t->cap[slot]) {
        free(t->buf[slot]);
        t->buf[slot] = aligned_alloc(64, (bytes + 63) / 64 * 64);
        t->cap[slot] = t->buf[slot] ? bytes : 0;
    }
    return t->buf[slot];
}
