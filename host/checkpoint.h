/* checkpoint.h — the experiment runner's binary files (docs/results-format.md): the plan
 * (plan.bin), fleet checkpoints (fleet_K.ckpt) and finished fleets' rows (fleet_K.rows).
 *
 * Every file is one header and a payload written atomically (temporary file, fsync, rename). The
 * header names the file's kind, the format version, the fleet, the experiment's hash (so that a
 * file of another experiment is refused) and the sizes of the payload's parts; a 64-bit FNV-1a
 * checksum covers the header's fields and the payload, so a truncated or damaged file is refused.
 * A checksum does not stop a forged file (one recomputes it): the readers of each kind validate
 * every count and field they read back before anything is allocated or indexed (experiment.c for
 * the plan and rows, qf_fleet_check_snapshot for the fleet's state). */
#ifndef QF_CHECKPOINT_H
#define QF_CHECKPOINT_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define QF_FILE_VERSION 4u /* 3: the one runner's files (plan, checkpoint with curve length, rows); 4: 64-bit
                              bootstrap masks in the fleet snapshot (heads up to 64) */

typedef enum { QF_FILE_PLAN = 1, QF_FILE_CKPT = 2, QF_FILE_ROWS = 3 } qf_file_kind;

typedef struct qf_file_header {
    char magic[8];        /* "QFLEETF\0" */
    uint32_t version;     /* QF_FILE_VERSION */
    uint32_t kind;        /* qf_file_kind */
    uint32_t fleet;       /* fleet number (0-based; the plan: 0) */
    uint32_t n_parts;     /* payload parts (at most 4) */
    uint64_t hash;        /* the experiment's hash (qf_words_hash of its command and words) */
    uint64_t part[4];     /* bytes of each payload part, in order */
    uint64_t meta[4];     /* kind-specific counts (checkpoint: log points, runs, curve-part bytes) */
    uint64_t checksum;    /* FNV-1a of every field above and the payload */
} qf_file_header;

/* FNV-1a, 64 bits (Fowler, Noll, Vo), continued from h (start with QF_FNV_INIT). */
#define QF_FNV_INIT 0xcbf29ce484222325ull
uint64_t qf_fnv1a(uint64_t h, const void *data, size_t n);

/* Write dir/name atomically: header h (magic, version, checksum and part sizes filled here) and the
 * n parts (ptr[i], bytes[i]). Returns 0, or -1 with one line printed to stderr (the previous file of
 * that name, if any, is kept). */
int qf_file_write(const char *dir, const char *name, qf_file_header *h, int n, const void *const *ptr,
                  const size_t *bytes);

/* Read dir/name, a file of the given kind, experiment hash and fleet: returns 1 when it does not
 * exist, 0 when it was read and its checksum holds (*payload malloc'd, *n its bytes; the header's
 * part sizes add up to *n), -1 when it is not a valid file of that kind (one line in err: not a
 * qfleet file, another version, another experiment or fleet, truncated, checksum mismatch). */
int qf_file_read(const char *dir, const char *name, uint32_t kind, uint64_t hash, uint32_t fleet,
                 qf_file_header *h, char **payload, size_t *n, char *err, size_t err_len);

#ifdef __cplusplus
}
#endif
#endif
