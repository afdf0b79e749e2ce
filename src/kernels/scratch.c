/* kernels/scratch.c — owns the kernels' per-thread scratch buffers: one grow-only, 64-byte aligned buffer per
 * slot (PK_SCR_* in internal.h) and calling thread, so hot products neither allocate per call nor share a
 * buffer between threads. A slot's buffer is reused by the next call that takes the same slot on the same
 * thread: two users that can be live at once need different slots. */
#include "internal.h"

#include <stdlib.h>

static _Thread_local void *tl_scr[PK_SCR_SLOTS];
static _Thread_local size_t tl_scr_cap[PK_SCR_SLOTS];

void *pk_scratch(int slot, size_t bytes) {
    if (bytes > tl_scr_cap[slot]) {
        free(tl_scr[slot]);
        tl_scr[slot] = aligned_alloc(64, (bytes + 63) / 64 * 64);
        tl_scr_cap[slot] = tl_scr[slot] ? bytes : 0;
    }
    return tl_scr[slot];
}
