/* words.c — configuration words from YAML files (libyaml) and the command line (see words.h).
 *
 * No value is cut: words, keys and YAML values are heap strings of any length. Every pass over the
 * words is linear: repeated keys are found through a hash of the keys (a YAML file with 100k keys
 * loads in well under a second; benchmarks/parse.sh measures it). */
#define _POSIX_C_SOURCE 200809L
#include "words.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#ifdef QFLEET_HAVE_YAML
#include <yaml.h>
#endif

#include "expr.h"

static char *dup_n(const char *s, size_t n) {
    char *p = (char *)malloc(n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

int qf_words_add(qf_words *ws, const char *text, const char *origin) {
    if (ws->n == ws->cap) {
        const int cap = ws->cap ? 2 * ws->cap : 32;
        qf_word *w = (qf_word *)realloc(ws->w, sizeof(qf_word) * (size_t)cap);
        if (!w) return -1;
        ws->w = w;
        ws->cap = cap;
    }
    char *t = dup_n(text, strlen(text)), *o = dup_n(origin, strlen(origin));
    if (!t || !o) {
        free(t);
        free(o);
        return -1;
    }
    ws->w[ws->n].text = t;
    ws->w[ws->n].origin = o;
    ws->n++;
    return 0;
}

void qf_words_free(qf_words *ws) {
    for (int i = 0; i < ws->n; i++) {
        free(ws->w[i].text);
        free(ws->w[i].origin);
    }
    free(ws->w);
    memset(ws, 0, sizeof *ws);
}

/* ---- a set of strings (open addressing, FNV-1a), for repeated keys --------------------------- */

typedef struct strset {
    char **key;   /* [cap], NULL = empty */
    size_t *line; /* [cap] a value kept with the key (a line number) */
    size_t n, cap;
} strset;

static uint64_t fnv(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return h;
}

static void set_free(strset *s) {
    for (size_t i = 0; i < s->cap; i++) free(s->key[i]);
    free(s->key);
    free(s->line);
    memset(s, 0, sizeof *s);
}

/* Insert key[0..n) with value v. Returns 1 when it was new, 0 when present (*old = its value), -1
 * when out of memory. */
static int set_add(strset *s, const char *key, size_t n, size_t v, size_t *old) {
    if (2 * (s->n + 1) > s->cap) { /* grow: load at most 1/2 */
        strset g = {0};
        g.cap = s->cap ? 2 * s->cap : 64;
        g.key = (char **)calloc(g.cap, sizeof(char *));
        g.line = (size_t *)calloc(g.cap, sizeof(size_t));
        if (!g.key || !g.line) {
            free(g.key);
            free(g.line);
            return -1;
        }
        for (size_t i = 0; i < s->cap; i++)
            if (s->key[i]) {
                size_t h = (size_t)(fnv(s->key[i], strlen(s->key[i])) % g.cap);
                while (g.key[h]) h = (h + 1) % g.cap;
                g.key[h] = s->key[i];
                g.line[h] = s->line[i];
            }
        g.n = s->n;
        free(s->key);
        free(s->line);
        *s = g;
    }
    size_t h = (size_t)(fnv(key, n) % s->cap);
    for (; s->key[h]; h = (h + 1) % s->cap)
        if (strlen(s->key[h]) == n && memcmp(s->key[h], key, n) == 0) {
            if (old) *old = s->line[h];
            return 0;
        }
    s->key[h] = dup_n(key, n);
    if (!s->key[h]) return -1;
    s->line[h] = v;
    s->n++;
    return 1;
}

static size_t key_len(const char *word) {
    const char *eq = strchr(word, '=');
    return eq ? (size_t)(eq - word) : strlen(word);
}

unsigned char *qf_words_last_of_key(const qf_words *ws) {
    unsigned char *last = (unsigned char *)malloc((size_t)(ws->n ? ws->n : 1));
    if (!last) return NULL;
    strset seen = {0};
    for (int i = ws->n - 1; i >= 0; i--) {
        const int r = set_add(&seen, ws->w[i].text, key_len(ws->w[i].text), 0, NULL);
        if (r < 0) {
            set_free(&seen);
            free(last);
            return NULL;
        }
        last[i] = (unsigned char)r;
    }
    set_free(&seen);
    return last;
}

/* ---- a growing string -------------------------------------------------------------------------- */

typedef struct dstr {
    char *p;
    size_t n, cap;
} dstr;

static int ds_add(dstr *d, const char *s, size_t n) {
    if (d->n + n + 1 > d->cap) {
        size_t cap = d->cap ? d->cap : 64;
        while (cap < d->n + n + 1) cap *= 2;
        char *p = (char *)realloc(d->p, cap);
        if (!p) return -1;
        d->p = p;
        d->cap = cap;
    }
    memcpy(d->p + d->n, s, n);
    d->n += n;
    d->p[d->n] = 0;
    return 0;
}

static int ds_str(dstr *d, const char *s) { return ds_add(d, s, strlen(s)); }

#ifdef QFLEET_HAVE_YAML
typedef struct yreader {
    yaml_parser_t p;
    const char *path;
    char *msg;
    size_t len;
    strset keys; /* the words' keys this file gave, with their lines: a key given twice is refused */
} yreader;

/* YAML features libyaml reads but qfleet's configuration does not use: an anchor (&a), an alias
 * (*a), a merge key (<<: *a) or a tag (!!binary, !!str, !custom) would otherwise be dropped or read
 * as plain text without a word. The event is refused with "path:line: ..." in msg (and deleted),
 * -1; 0 when it has none of them. */
static int unsupported(yreader *y, yaml_event_t *ev) {
    const char *what = NULL;
    const unsigned char *anchor = NULL, *tag = NULL;
    switch (ev->type) {
    case YAML_ALIAS_EVENT: what = "alias"; anchor = ev->data.alias.anchor; break;
    case YAML_SCALAR_EVENT:
        anchor = ev->data.scalar.anchor;
        tag = ev->data.scalar.tag;
        if (!anchor && !tag && ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && ev->data.scalar.length == 2 &&
            memcmp(ev->data.scalar.value, "<<", 2) == 0)
            what = "merge key";
        break;
    case YAML_SEQUENCE_START_EVENT: anchor = ev->data.sequence_start.anchor; tag = ev->data.sequence_start.tag; break;
    case YAML_MAPPING_START_EVENT: anchor = ev->data.mapping_start.anchor; tag = ev->data.mapping_start.tag; break;
    default: break;
    }
    if (!what && anchor) what = "anchor";
    if (!what && tag) what = "tag";
    if (!what) return 0;
    const size_t line = ev->start_mark.line + 1;
    if (strcmp(what, "merge key") == 0)
        snprintf(y->msg, y->len, "%s:%zu: YAML merge keys (<<) are not supported: write the keys out", y->path, line);
    else if (strcmp(what, "tag") == 0) { /* libyaml gives the resolved tag: !!binary as tag:yaml.org,2002:binary */
        const char *t = (const char *)tag, *core = "tag:yaml.org,2002:";
        const int is_core = strncmp(t, core, strlen(core)) == 0;
        snprintf(y->msg, y->len, "%s:%zu: YAML tags (%s%.60s) are not supported: write the plain value", y->path, line,
                 is_core ? "!!" : "", is_core ? t + strlen(core) : t);
    }
    else
        snprintf(y->msg, y->len, "%s:%zu: YAML %s (%c%.60s) are not supported: write the value out", y->path, line,
                 what[1] == 'l' ? "aliases" : "anchors", what[1] == 'l' ? '*' : '&', (const char *)anchor);
    yaml_event_delete(ev);
    return -1;
}

/* Next event; on a parser error or a YAML feature qfleet does not support (unsupported()),
 * "path:line: problem" in msg and -1. */
static int next(yreader *y, yaml_event_t *ev) {
    if (!yaml_parser_parse(&y->p, ev)) {
        if (y->p.error == YAML_READER_ERROR && !y->p.problem)
            snprintf(y->msg, y->len, "%s: cannot read it: %s", y->path, strerror(errno ? errno : EIO));
        else if (y->p.error == YAML_MEMORY_ERROR)
            snprintf(y->msg, y->len, "%s: out of memory reading it", y->path);
        else {
            /* libyaml's marks are 0-based; at the end of a file that ends in a newline the mark is on
             * the empty line after the last one, which a user's editor does not show: name the last
             * line then, say that the file ended, and name the line where the open construct began */
            const yaml_mark_t *m = &y->p.problem_mark;
            struct stat st;
            const int at_end = stat(y->path, &st) == 0 && (off_t)m->index >= st.st_size;
            const size_t line = at_end && m->column == 0 && m->line > 0 ? m->line : m->line + 1;
            char began[64] = "";
            if (y->p.context && y->p.context_mark.line + 1 != line)
                snprintf(began, sizeof began, " (begun on line %zu)", y->p.context_mark.line + 1);
            snprintf(y->msg, y->len, "%s:%zu: %s%s%s%s%s", y->path, line,
                     y->p.problem ? y->p.problem : "malformed YAML", y->p.context ? " " : "",
                     y->p.context ? y->p.context : "", began, at_end ? ", at the end of the file" : "");
        }
        return -1;
    }
    return unsupported(y, ev);
}

static int fail_at(yreader *y, const yaml_event_t *ev, const char *what) {
    snprintf(y->msg, y->len, "%s:%zu: %s", y->path, ev->start_mark.line + 1, what);
    return -1;
}

static int oom(yreader *y) {
    snprintf(y->msg, y->len, "out of memory reading %s", y->path);
    return -1;
}

/* Scalars of a sequence (the SEQUENCE_START was read) appended as "a,b,c" to out. An empty item
 * (`[64, "", 64]` or `[64, ~, 64]`) is refused here, with its line. */
static int read_seq(yreader *y, const char *key, dstr *out) {
    for (int first = 1;; first = 0) {
        yaml_event_t ev;
        if (next(y, &ev)) return -1;
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            return 0;
        }
        if (ev.type != YAML_SCALAR_EVENT) {
            int rc = fail_at(y, &ev, "a list may hold only plain values (e.g. [64, 64])");
            yaml_event_delete(&ev);
            return rc;
        }
        if (ev.data.scalar.length == 0) {
            snprintf(y->msg, y->len, "%s:%zu: %s: a list item is empty", y->path, ev.start_mark.line + 1, key);
            yaml_event_delete(&ev);
            return -1;
        }
        const int bad = (!first && ds_add(out, ",", 1)) ||
                        ds_add(out, (const char *)ev.data.scalar.value, ev.data.scalar.length);
        yaml_event_delete(&ev);
        if (bad) return oom(y);
    }
}

/* The word key=val from line (0-based) of this file; a key this file gave before is refused. */
static int add_word(yreader *y, qf_words *ws, const char *key, const char *val, size_t line) {
    size_t first = 0;
    const int r = set_add(&y->keys, key, strlen(key), line, &first);
    if (r < 0) return oom(y);
    if (r == 0) {
        snprintf(y->msg, y->len, "%s:%zu: key %s given twice (first at line %zu)", y->path, line + 1, key, first + 1);
        return -1;
    }
    dstr text = {0}, origin = {0};
    char ln[32];
    snprintf(ln, sizeof ln, ":%zu", line + 1);
    int bad = ds_str(&text, key) || ds_add(&text, "=", 1) || ds_str(&text, val) || ds_str(&origin, y->path) ||
              ds_str(&origin, ln) || qf_words_add(ws, text.p, origin.p);
    free(text.p);
    free(origin.p);
    return bad ? oom(y) : 0;
}

/* The value of a nested mapping (MAPPING_START read) under `key`: {grid|uniform|loguniform|choice:
 * [...]} gives a sweep axis of key, {sub: value} gives key.sub (env: {name: x} gives env). */
static int read_map(yreader *y, qf_words *ws, const char *key) {
    static const char *const sweeps[] = {"grid", "uniform", "loguniform", "choice"};
    strset subs = {0}; /* the sub-keys of this mapping: one may not repeat */
    int rc = -1;
    for (;;) {
        yaml_event_t kev, vev;
        if (next(y, &kev)) break;
        if (kev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&kev);
            rc = 0;
            break;
        }
        if (kev.type != YAML_SCALAR_EVENT) {
            fail_at(y, &kev, "expected a key");
            yaml_event_delete(&kev);
            break;
        }
        char *sub = dup_n((const char *)kev.data.scalar.value, kev.data.scalar.length);
        const size_t sline = kev.start_mark.line;
        yaml_event_delete(&kev);
        if (!sub) {
            oom(y);
            break;
        }
        size_t first = 0;
        const int r = set_add(&subs, sub, strlen(sub), sline, &first);
        if (r <= 0) {
            if (r < 0) oom(y);
            else
                snprintf(y->msg, y->len, "%s:%zu: %s: key %s given twice (first at line %zu)", y->path, sline + 1, key,
                         sub, first + 1);
            free(sub);
            break;
        }
        if (next(y, &vev)) {
            free(sub);
            break;
        }
        dstr val = {0}, text = {0}, full = {0};
        int bad = 0;
        const int is_seq = vev.type == YAML_SEQUENCE_START_EVENT;
        if (vev.type == YAML_SCALAR_EVENT) {
            bad = ds_add(&val, (const char *)vev.data.scalar.value, vev.data.scalar.length) ? oom(y) : 0;
        } else if (!is_seq) {
            bad = fail_at(y, &vev, "nesting deeper than key: {sub: value} is not supported");
        }
        yaml_event_delete(&vev);
        if (!bad && is_seq) bad = read_seq(y, key, &val);
        int sweep = -1;
        for (int i = 0; i < 4; i++)
            if (strcmp(sub, sweeps[i]) == 0) sweep = i;
        if (!bad && sweep >= 0) {
            if (!is_seq) {
                snprintf(y->msg, y->len, "%s:%zu: %s: {%s: ...} takes a list, e.g. {%s: [1, 2]}", y->path, sline + 1,
                         key, sub, sub);
                bad = -1;
            } else if (sweep == 0) {
                bad = ds_str(&text, val.p ? val.p : "") ? oom(y) : 0;
            } else {
                bad = ds_str(&text, sub) || ds_add(&text, "(", 1) || ds_str(&text, val.p ? val.p : "") ||
                              ds_add(&text, ")", 1)
                          ? oom(y)
                          : 0;
            }
            if (!bad) bad = add_word(y, ws, key, text.p, sline);
        } else if (!bad) {
            if (strcmp(key, "env") == 0 && strcmp(sub, "name") == 0)
                bad = ds_str(&full, "env");
            else
                bad = ds_str(&full, key) || ds_add(&full, ".", 1) || ds_str(&full, sub);
            if (is_seq)
                bad = bad || ds_add(&text, "[", 1) || ds_str(&text, val.p ? val.p : "") || ds_add(&text, "]", 1);
            else
                bad = bad || ds_str(&text, val.p ? val.p : "");
            bad = bad ? oom(y) : add_word(y, ws, full.p, text.p, sline);
        }
        free(val.p);
        free(text.p);
        free(full.p);
        free(sub);
        if (bad) break;
    }
    set_free(&subs);
    return rc;
}

/* Read the events of an initialized parser into words. */
static int load_events(yreader *yp, qf_words *ws);

static int load_with(yreader *y, qf_words *ws) {
    const int rc = load_events(y, ws);
    set_free(&y->keys);
    yaml_parser_delete(&y->p);
    return rc;
}

int qf_words_load_yaml(qf_words *ws, const char *path, char *msg, size_t msg_len) {
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(msg, msg_len, "%s is a directory, not a YAML file (give the file, e.g. %s/config.yaml)", path, path);
        return -1;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(msg, msg_len, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    yreader y;
    memset(&y, 0, sizeof y);
    y.path = path;
    y.msg = msg;
    y.len = msg_len;
    if (!yaml_parser_initialize(&y.p)) {
        fclose(f);
        snprintf(msg, msg_len, "cannot start the YAML parser");
        return -1;
    }
    yaml_parser_set_input_file(&y.p, f);
    errno = 0;
    const int rc = load_with(&y, ws);
    fclose(f);
    return rc;
}

int qf_words_load_yaml_buffer(qf_words *ws, const char *name, const unsigned char *data, size_t size, char *msg,
                              size_t msg_len) {
    yreader y;
    memset(&y, 0, sizeof y);
    y.path = name;
    y.msg = msg;
    y.len = msg_len;
    if (!yaml_parser_initialize(&y.p)) {
        snprintf(msg, msg_len, "cannot start the YAML parser");
        return -1;
    }
    yaml_parser_set_input_string(&y.p, data, size);
    return load_with(&y, ws);
}

static int load_events(yreader *yp, qf_words *ws) {
#define y (*yp) /* the body reads as if the reader were a local */
    int rc = -1, depth = 0, done = 0;
    while (!done) {
        yaml_event_t ev;
        if (next(&y, &ev)) break;
        switch (ev.type) {
        case YAML_STREAM_START_EVENT:
        case YAML_DOCUMENT_END_EVENT: break;
        case YAML_DOCUMENT_START_EVENT:
            if (depth++ > 0) {
                fail_at(&y, &ev, "one YAML document per file");
                done = -1;
            }
            break;
        case YAML_STREAM_END_EVENT: done = 1; break;
        case YAML_MAPPING_START_EVENT: {
            /* the top-level mapping: key: value pairs */
            for (;;) {
                yaml_event_t kev, vev;
                if (next(&y, &kev)) {
                    done = -1;
                    break;
                }
                if (kev.type == YAML_MAPPING_END_EVENT) {
                    yaml_event_delete(&kev);
                    break;
                }
                if (kev.type != YAML_SCALAR_EVENT) {
                    fail_at(&y, &kev, "expected a key (the file is a mapping of key: value)");
                    yaml_event_delete(&kev);
                    done = -1;
                    break;
                }
                char *key = dup_n((const char *)kev.data.scalar.value, kev.data.scalar.length);
                const size_t line = kev.start_mark.line;
                yaml_event_delete(&kev);
                if (!key) {
                    oom(&y);
                    done = -1;
                    break;
                }
                if (next(&y, &vev)) {
                    free(key);
                    done = -1;
                    break;
                }
                int bad = 0;
                if (vev.type == YAML_SCALAR_EVENT) {
                    bad = add_word(&y, ws, key, (const char *)vev.data.scalar.value, line);
                    yaml_event_delete(&vev);
                } else if (vev.type == YAML_SEQUENCE_START_EVENT) {
                    yaml_event_delete(&vev);
                    dstr joined = {0}, text = {0};
                    bad = ds_add(&joined, "", 0) ? oom(&y) : read_seq(&y, key, &joined);
                    if (!bad) {
                        bad = ds_add(&text, "[", 1) || ds_str(&text, joined.p) || ds_add(&text, "]", 1)
                                  ? oom(&y)
                                  : add_word(&y, ws, key, text.p, line);
                    }
                    free(joined.p);
                    free(text.p);
                } else if (vev.type == YAML_MAPPING_START_EVENT) {
                    yaml_event_delete(&vev);
                    bad = read_map(&y, ws, key);
                } else {
                    bad = fail_at(&y, &vev, "expected a value");
                    yaml_event_delete(&vev);
                }
                free(key);
                if (bad) {
                    done = -1;
                    break;
                }
            }
            break;
        }
        case YAML_SCALAR_EVENT:
        case YAML_SEQUENCE_START_EVENT:
            fail_at(&y, &ev, "the file must be a mapping of key: value (e.g. `lr: 0.001`)");
            done = -1;
            break;
        default: break;
        }
        yaml_event_delete(&ev);
    }
    if (done == 1) rc = 0;
    return rc;
#undef y
}

#else
int qf_words_load_yaml_buffer(qf_words *ws, const char *name, const unsigned char *data, size_t size, char *msg,
                              size_t msg_len) {
    (void)data;
    (void)size;
    return qf_words_load_yaml(ws, name, msg, msg_len);
}
int qf_words_load_yaml(qf_words *ws, const char *path, char *msg, size_t msg_len) {
    (void)ws;
    snprintf(msg, msg_len, "cannot read %s: this qfleet was built without libyaml (apt-get install libyaml-dev, "
                           "then rebuild); give the keys as key=value words instead", path);
    return -1;
}
#endif

static int is_yaml(const char *a) {
    const size_t n = strlen(a);
    return (n > 5 && strcmp(a + n - 5, ".yaml") == 0) || (n > 4 && strcmp(a + n - 4, ".yml") == 0);
}

int qf_words_collect(qf_words *ws, int argc, char **argv, char *msg, size_t msg_len) {
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        struct stat st;
        if (strcmp(a, "--dry-run") == 0) {
            ws->dry_run = 1;
        } else if (strcmp(a, "--quiet") == 0) {
            ws->quiet = 1;
        } else if (strcmp(a, "--overwrite") == 0) {
            ws->overwrite = 1;
        } else if (strcmp(a, "--resume") == 0) {
            if (i + 1 >= argc || !argv[i + 1][0]) {
                snprintf(msg, msg_len, "--resume needs a results folder (--resume DIR)");
                return -1;
            }
            if (strlen(argv[i + 1]) >= sizeof ws->resume) {
                snprintf(msg, msg_len, "--resume: the folder name is longer than any path the system accepts");
                return -1;
            }
            snprintf(ws->resume, sizeof ws->resume, "%s", argv[++i]);
        } else if (strcmp(a, "--load") == 0) {
            if (i + 1 >= argc || !argv[i + 1][0]) {
                snprintf(msg, msg_len, "--load needs a parameter file (--load DIR/params.npy)");
                return -1;
            }
            if (strlen(argv[i + 1]) >= sizeof ws->load) {
                snprintf(msg, msg_len, "--load: the file name is longer than any path the system accepts");
                return -1;
            }
            snprintf(ws->load, sizeof ws->load, "%s", argv[++i]);
        } else if (strncmp(a, "--", 2) == 0) {
            snprintf(msg, msg_len, "unknown option '%.100s' (allowed: --dry-run, --quiet, --overwrite, --resume DIR, "
                               "--load FILE)", a);
            return -1;
        } else if (!strchr(a, '=') && stat(a, &st) == 0 && S_ISDIR(st.st_mode)) {
            snprintf(msg, msg_len, "%.300s is a directory, not a YAML file or a key=value word", a);
            return -1;
        } else if (is_yaml(a) && !strchr(a, '=')) {
            if (qf_words_load_yaml(ws, a, msg, msg_len)) return -1;
        } else if (qf_words_add(ws, a, "command line")) {
            snprintf(msg, msg_len, "out of memory");
            return -1;
        }
    }
    return 0;
}

/* ---- derived keys (expr.h) ------------------------------------------------------------------------ */

typedef struct derived_ctx {
    const qf_config *cfg;
    const qf_words *ws;
    const int *pending;   /* [n_pending] word indices of derived keys not evaluated yet */
    int n_pending;
    int strict;           /* a complete configuration: a named key that does nothing is refused */
} derived_ctx;

static int key_is(const char *word, const char *name) {
    const size_t n = strlen(name);
    return strncmp(word, name, n) == 0 && word[n] == '=';
}

/* The value of a key for an expression: a derived key not yet evaluated is pending (1); a number of
 * the point's configuration; else an error naming what the key holds. */
static int derived_lookup(void *vctx, const char *name, double *value, char *why, size_t n) {
    const derived_ctx *c = (const derived_ctx *)vctx;
    for (int i = 0; i < c->n_pending; i++)
        if (key_is(c->ws->w[c->pending[i]].text, name)) return 1;
    char text[QF_PATH_CAP + 64];
    if (qf_config_get(c->cfg, name, text, sizeof text)) {
        snprintf(why, n, "unknown key '%.60s' (an expression names keys of the same configuration, e.g. heads, "
                         "env.size; qfleet help keys)", name);
        return -1;
    }
    char *end;
    errno = 0;
    const double v = strtod(text, &end);
    if (!qf_config_key_numeric(c->cfg, name) || errno || end == text || *end || !isfinite(v)) {
        snprintf(why, n, "key %.60s is not a number here (it is '%.60s')", name, text);
        return -1;
    }
    /* a key not given that does nothing in this configuration (heads of an explore=epsilon point)
     * would enter the expression with its default silently: refused, with the check's reason (a new
     * user's finding); given on purpose (heads=1 for an epsilon baseline's lr) it is used */
    for (int k = 0; c->strict && !qf_config_given(c->cfg, name) && k < qf_config_key_count(); k++) {
        if (strcmp(qf_config_key_name(k), name) != 0) continue;
        qf_config probe = *c->cfg;
        probe.given[k / 64] |= (uint64_t)1 << (k % 64);
        int unused = 0;
        char reason[384], explore[32] = "";
        if (qf_config_check_one(&probe, 0, k, &unused, reason, sizeof reason) && unused) {
            qf_config_get(c->cfg, "explore", explore, sizeof explore);
            snprintf(why, n, "it names %.60s, which does nothing in this configuration (explore=%s; in a sweep: "
                             "the points with explore=%s), so its default %.40s would be used silently: give "
                             "%.60s= for them, or put the derived key inside a conditional axis' braces where "
                             "%.60s applies (explore=%s,bootstrap{heads=1,2;lr=2e-4*heads})",
                     name, explore, explore, text, name, name, explore);
            return -1;
        }
        break;
    }
    *value = v;
    return 0;
}

/* qf_expr_is_plausible's test of a name: a numeric key of cfg */
static int numeric_key(void *cfg, const char *name) { return qf_config_key_numeric((const qf_config *)cfg, name) != 0; }

static int from_words(qf_config *cfg, const qf_words *ws, int strict, char *msg, size_t msg_len) {
    qf_config_default(cfg);
    unsigned char *last = qf_words_last_of_key(ws);
    char **all = (char **)malloc(sizeof(char *) * (size_t)(ws->n ? ws->n : 1));
    char **owned = (char **)calloc((size_t)(ws->n ? ws->n : 1), sizeof(char *)); /* evaluated derived words */
    int *pending = (int *)malloc(sizeof(int) * (size_t)(ws->n ? ws->n : 1));
    int n_all = 0, n_pending = 0, rc = -1;
    if (!last || !all || !owned || !pending) {
        snprintf(msg, msg_len, "out of memory");
        goto out;
    }
    /* env= first (it resets the env.* parameters), then everything in order; each word alone, so
     * that an error names the word's origin. A numeric key whose value is not a number but reads as
     * an expression is derived: evaluated after every literal word */
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < ws->n; i++) {
            if (!last[i]) continue;
            const int is_env = strncmp(ws->w[i].text, "env=", 4) == 0;
            if (is_env != (pass == 0)) continue;
            char *one[1] = {ws->w[i].text};
            char m[768];
            if (qf_config_parse(cfg, 1, one, m, sizeof m)) {
                const char *eq = strchr(ws->w[i].text, '=');
                char key[128] = "";
                if (eq && (size_t)(eq - ws->w[i].text) < sizeof key) {
                    memcpy(key, ws->w[i].text, (size_t)(eq - ws->w[i].text));
                    key[eq - ws->w[i].text] = 0;
                }
                if (key[0] && qf_config_key_numeric(cfg, key) && qf_expr_is_candidate(eq + 1)) {
                    pending[n_pending++] = i;
                    continue;
                }
                snprintf(msg, msg_len, "%s: %s", ws->w[i].origin, m);
                goto out;
            }
            all[n_all++] = ws->w[i].text;
        }
    /* derived keys, each once its keys are known (a cycle is an error) */
    while (n_pending > 0) {
        int progress = 0;
        for (int j = 0; j < n_pending; j++) {
            const qf_word *w = &ws->w[pending[j]];
            const char *eq = strchr(w->text, '=');
            const int klen = (int)(eq - w->text);
            derived_ctx dc = {cfg, ws, pending, n_pending, strict};
            char m[512], wait_for[128];
            double v;
            const int r = qf_expr_eval(eq + 1, derived_lookup, &dc, &v, wait_for, sizeof wait_for, m, sizeof m);
            if (r == 1) continue;
            if (r < 0) { /* what the key allows, then why the expression does not evaluate */
                qf_config scratch = *cfg;
                char plain[512] = "", *one[1] = {w->text};
                qf_config_parse(&scratch, 1, one, plain, sizeof plain);
                if (qf_expr_is_plausible(eq + 1, numeric_key, cfg))
                    snprintf(msg, msg_len, "%s: %s; read as an expression of other keys: %s", w->origin, plain, m);
                else /* a mistyped number or a word: how it read as an expression would only add noise */
                    snprintf(msg, msg_len, "%s: %s", w->origin, plain);
                goto out;
            }
            char key[128];
            snprintf(key, sizeof key, "%.*s", klen, w->text);
            if (qf_config_key_numeric(cfg, key) == 1 && v != nearbyint(v)) {
                snprintf(msg, msg_len, "%s: %.200s evaluates to %.17g, but %s takes an integer (round(...), floor(...) "
                                       "or ceil(...) make one)", w->origin, w->text, v, key);
                goto out;
            }
            char *text = (char *)malloc((size_t)klen + 32);
            if (!text) {
                snprintf(msg, msg_len, "out of memory");
                goto out;
            }
            snprintf(text, (size_t)klen + 32, "%s=%.17g", key, v);
            owned[pending[j]] = text;
            char *one[1] = {text};
            if (qf_config_parse(cfg, 1, one, m, sizeof m)) {
                snprintf(msg, msg_len, "%s: %.200s = %.17g: %s", w->origin, w->text, v, m);
                goto out;
            }
            all[n_all++] = text;
            pending[j--] = pending[--n_pending];
            progress = 1;
        }
        if (!progress) {
            char names[512];
            size_t used = 0;
            names[0] = 0;
            for (int j = 0; j < n_pending && used < sizeof names; j++)
                used += (size_t)snprintf(names + used, sizeof names - used, "%s%.100s", j ? ", " : "",
                                         ws->w[pending[j]].text);
            snprintf(msg, msg_len, "%s: derived keys that name each other in a cycle: %s", ws->w[pending[0]].origin,
                     names);
            goto out;
        }
    }
    /* checks across keys (e.g. env.arms against env.probs) need all words at once */
    qf_config whole;
    qf_config_default(&whole);
    rc = qf_config_parse(&whole, n_all, all, msg, msg_len);
out:
    for (int i = 0; owned && i < ws->n; i++) free(owned[i]);
    free(owned);
    free(pending);
    free(last);
    free(all);
    return rc;
}

int qf_config_from_words(qf_config *cfg, const qf_words *ws, char *msg, size_t msg_len) {
    return from_words(cfg, ws, 1, msg, msg_len);
}

int qf_config_from_words_partial(qf_config *cfg, const qf_words *ws, char *msg, size_t msg_len) {
    return from_words(cfg, ws, 0, msg, msg_len);
}
