/* rationale/internal.h — what the Phase-1 job (phase1.c) and the ToT job (tot_job.c) share and nothing else
 * uses: handing rank 0's list of pending users to every MPI rank. */
#ifndef PULSE_RATIONALE_INTERNAL_H
#define PULSE_RATIONALE_INTERNAL_H

#include "pulse/core.h"

/* Collective (every rank): rank 0's *users / *n replace the other ranks' (their *users is freed and
 * malloc'd anew). One rank: nothing happens. */
pulse_status rat_share_users(int **users, int *n);

#endif
