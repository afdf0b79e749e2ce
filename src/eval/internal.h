/* eval/internal.h — what eval.c shares with candset.c (not public): gathering per-user ranks over MPI ranks.
 */
#ifndef PULSE_EVAL_INTERNAL_H
#define PULSE_EVAL_INTERNAL_H

#include "pulse/core.h"

/* On several MPI ranks (collective): agree on st (every rank's outcome), then ranks[0..n) = the sum over
 * the ranks (each entry was filled by one rank, 0 elsewhere). One rank: returns st. */
pulse_status pulse_eval_gather_ranks(pulse_status st, int *ranks, int n);

#endif
