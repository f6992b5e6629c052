/* words.h — where configuration comes from: `key=value` words from YAML files and the command
 * line, each remembering its origin (file:line, or "command line"), so every error names the file,
 * the line, the key, the bad value and what is allowed. A YAML file is a mapping of the same keys as
 * the words (`lr: 0.001`, `env.size: 10`, `hidden: [64, 64]`, or nested `env: {size: 10}` next to
 * `env: deep_sea` written as `env: {name: deep_sea, size: 10}`); sweep values are
 * `lr: {grid: [0.001, 0.01]}`, `lr: {loguniform: [1e-4, 1e-2]}`, `lr: {uniform: [a, b]}` and
 * `explore: {choice: [epsilon, bootstrap]}` (or the command-line forms `lr=0.001,0.01`,
 * `lr=loguniform(1e-4,1e-2)`), conditional axes as one grid item
 * (`explore: {grid: [epsilon, "bootstrap{heads=1,2;prior_scale=0,3}"]}`, sweep.h) and derived keys as
 * their expression (`lr: 2e-4*heads`, expr.h: a number key whose value is not a number is evaluated
 * after the literal words, in qf_config_from_words). Later words win over earlier ones: the command
 * line over files. */
#ifndef QF_WORDS_H
#define QF_WORDS_H
#include <stddef.h>

#include "config.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct qf_word {
    char *text;   /* key=value, any length (owned) */
    char *origin; /* "file.yaml:12" or "command line" (owned) */
} qf_word;

typedef struct qf_words {
    qf_word *w;
    int n, cap;
    int dry_run, quiet;         /* --dry-run, --quiet seen */
    int overwrite;              /* --overwrite seen */
    char resume[QF_PATH_CAP];   /* --resume DIR ("" = none) */
    char load[QF_PATH_CAP];     /* --load FILE: train from the parameters of a params.npy ("" = none) */
} qf_words;

/* Collect words from args: *.yaml / *.yml files are read in place, --dry-run / --quiet /
 * --overwrite / --resume DIR / --load FILE are flags, everything else is a command-line word. 0, or -1
 * with one line in msg. */
int qf_words_collect(qf_words *ws, int argc, char **argv, char *msg, size_t msg_len);
/* Append the words of a YAML file. 0, or -1 with "file:line: problem" in msg. */
int qf_words_load_yaml(qf_words *ws, const char *path, char *msg, size_t msg_len);
/* The same from memory (name stands for the file in messages). */
int qf_words_load_yaml_buffer(qf_words *ws, const char *name, const unsigned char *data, size_t size, char *msg,
                              size_t msg_len);
/* Append a copy of text and origin; 0, or -1 when out of memory. */
int qf_words_add(qf_words *ws, const char *text, const char *origin);
void qf_words_free(qf_words *ws);

/* last[i] = 1 when word i is the last word of its key (a later word of the same key overrides it;
 * a word without '=' is its own key). malloc'd array of ws->n bytes (NULL when out of memory);
 * linear time (a hash of the keys). */
unsigned char *qf_words_last_of_key(const qf_words *ws);

/* cfg = defaults, then the last word of each key (a later word overrides an earlier one, which is
 * not read at all: `train file.yaml alpha=1` replaces the file's alpha axis), env= first, stopping
 * at the first bad one with "origin: message" in msg. 0 or -1. Linear in the number of words. */
int qf_config_from_words(qf_config *cfg, const qf_words *ws, char *msg, size_t msg_len);

/* The same for words that are only part of a configuration (a sweep's base before its axes, or the
 * base with one axis value): a derived key may then name a key that does nothing yet (heads before
 * the explore axis is applied); qf_config_from_words refuses that in a complete configuration. */
int qf_config_from_words_partial(qf_config *cfg, const qf_words *ws, char *msg, size_t msg_len);

#ifdef __cplusplus
}
#endif
#endif
