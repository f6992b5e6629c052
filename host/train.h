/* train.h — `qfleet train`: one fleet, live progress, a final table per run, results on disk. */
#ifndef QF_TRAIN_H
#define QF_TRAIN_H
#include "../kernels/backend.h"
#include "config.h"
#include "words.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Run the command; returns the exit code (0; 1 runtime failure; 2 bad input), messages printed.
 * ws->load: a params.npy (qf_fleet_export_params) whose networks the fleets start from ("": none);
 * with steps=0 they are only evaluated greedily (eval_episodes episodes per run), nothing written. */
int qf_cmd_train(const qf_config *cfg, const qf_words *ws, qf_backend *b);

#ifdef __cplusplus
}
#endif
#endif
