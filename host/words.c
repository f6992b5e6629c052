/* words.c — configuration words from YAML files (libyaml) and the command line (see words.h). */
#include "words.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef QFLEET_HAVE_YAML
#include <yaml.h>
#endif

int qf_words_add(qf_words *ws, const char *text, const char *origin) {
    if (ws->n == ws->cap) {
        const int cap = ws->cap ? 2 * ws->cap : 32;
        qf_word *w = (qf_word *)realloc(ws->w, sizeof(qf_word) * (size_t)cap);
        if (!w) return -1;
        ws->w = w;
        ws->cap = cap;
    }
    if (strlen(text) >= sizeof ws->w[0].text) return -1;
    snprintf(ws->w[ws->n].text, sizeof ws->w[0].text, "%s", text);
    snprintf(ws->w[ws->n].origin, sizeof ws->w[0].origin, "%s", origin);
    ws->n++;
    return 0;
}

void qf_words_free(qf_words *ws) {
    free(ws->w);
    memset(ws, 0, sizeof *ws);
}

#ifdef QFLEET_HAVE_YAML
typedef struct yreader {
    yaml_parser_t p;
    const char *path;
    char *msg;
    size_t len;
} yreader;

/* Next event; on a parser error, "path:line: problem" in msg and -1. */
static int next(yreader *y, yaml_event_t *ev) {
    if (!yaml_parser_parse(&y->p, ev)) {
        snprintf(y->msg, y->len, "%s:%zu: %s%s%s", y->path, y->p.problem_mark.line + 1,
                 y->p.problem ? y->p.problem : "malformed YAML", y->p.context ? " " : "",
                 y->p.context ? y->p.context : "");
        return -1;
    }
    return 0;
}

static int fail_at(yreader *y, const yaml_event_t *ev, const char *what) {
    snprintf(y->msg, y->len, "%s:%zu: %s", y->path, ev->start_mark.line + 1, what);
    return -1;
}

/* Scalars of a sequence (the SEQUENCE_START was read) joined as "a,b,c" into out. */
static int read_seq(yreader *y, char *out, size_t cap) {
    out[0] = 0;
    size_t used = 0;
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
        const int w = snprintf(out + used, cap - used, "%s%s", first ? "" : ",", (const char *)ev.data.scalar.value);
        yaml_event_delete(&ev);
        if (w < 0 || (size_t)w >= cap - used) {
            snprintf(y->msg, y->len, "%s: a list is too long", y->path);
            return -1;
        }
        used += (size_t)w;
    }
}

static int add_word(yreader *y, qf_words *ws, const char *key, const char *val, size_t line) {
    char text[1024], origin[320];
    if (snprintf(text, sizeof text, "%s=%s", key, val) >= (int)sizeof text) {
        snprintf(y->msg, y->len, "%s:%zu: the value of %s is too long", y->path, line + 1, key);
        return -1;
    }
    snprintf(origin, sizeof origin, "%s:%zu", y->path, line + 1);
    for (int i = 0; i < ws->n; i++) /* one file names a key once */
        if (strcmp(ws->w[i].origin, origin) != 0 && strncmp(ws->w[i].origin, y->path, strlen(y->path)) == 0 &&
            ws->w[i].origin[strlen(y->path)] == ':') {
            const char *eq = strchr(ws->w[i].text, '=');
            if (eq && (size_t)(eq - ws->w[i].text) == strlen(key) && strncmp(ws->w[i].text, key, strlen(key)) == 0) {
                snprintf(y->msg, y->len, "%s:%zu: key %s given twice (first at line %s)", y->path, line + 1, key,
                         strrchr(ws->w[i].origin, ':') + 1);
                return -1;
            }
        }
    if (qf_words_add(ws, text, origin)) {
        snprintf(y->msg, y->len, "out of memory reading %s", y->path);
        return -1;
    }
    return 0;
}

/* The value of a nested mapping (MAPPING_START read) under `key`. */
static int read_map(yreader *y, qf_words *ws, const char *key, size_t line) {
    static const char *const sweeps[] = {"grid", "uniform", "loguniform", "choice"};
    for (;;) {
        yaml_event_t kev, vev;
        if (next(y, &kev)) return -1;
        if (kev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&kev);
            return 0;
        }
        if (kev.type != YAML_SCALAR_EVENT) {
            int rc = fail_at(y, &kev, "expected a key");
            yaml_event_delete(&kev);
            return rc;
        }
        char sub[128];
        snprintf(sub, sizeof sub, "%s", (const char *)kev.data.scalar.value);
        const size_t sline = kev.start_mark.line;
        yaml_event_delete(&kev);
        if (next(y, &vev)) return -1;
        char val[1000];
        int is_seq = vev.type == YAML_SEQUENCE_START_EVENT;
        if (vev.type == YAML_SCALAR_EVENT) {
            snprintf(val, sizeof val, "%s", (const char *)vev.data.scalar.value);
        } else if (!is_seq) {
            int rc = fail_at(y, &vev, "nesting deeper than key: {sub: value} is not supported");
            yaml_event_delete(&vev);
            return rc;
        }
        yaml_event_delete(&vev);
        char joined[1000] = "";
        if (is_seq && read_seq(y, joined, sizeof joined)) return -1;
        int sweep = -1;
        for (int i = 0; i < 4; i++)
            if (strcmp(sub, sweeps[i]) == 0) sweep = i;
        char text[1000], full[300];
        if (sweep >= 0) {
            if (!is_seq) {
                snprintf(y->msg, y->len, "%s:%zu: %s: {%s: ...} takes a list, e.g. {%s: [1, 2]}", y->path, sline + 1,
                         key, sub, sub);
                return -1;
            }
            if (sweep == 0)
                snprintf(text, sizeof text, "%s", joined);
            else
                snprintf(text, sizeof text, "%s(%s)", sub, joined);
            if (add_word(y, ws, key, text, sline)) return -1;
            continue;
        }
        if (strcmp(key, "env") == 0 && strcmp(sub, "name") == 0)
            snprintf(full, sizeof full, "env");
        else
            snprintf(full, sizeof full, "%s.%s", key, sub);
        if (is_seq)
            snprintf(text, sizeof text, "[%s]", joined);
        else
            snprintf(text, sizeof text, "%s", val);
        if (add_word(y, ws, full, text, sline)) return -1;
    }
    (void)line;
}

/* Read the events of an initialized parser into words. */
static int load_events(yreader *yp, qf_words *ws);

int qf_words_load_yaml(qf_words *ws, const char *path, char *msg, size_t msg_len) {
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
    const int rc = load_events(&y, ws);
    yaml_parser_delete(&y.p);
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
    const int rc = load_events(&y, ws);
    yaml_parser_delete(&y.p);
    return rc;
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
                char key[128];
                snprintf(key, sizeof key, "%s", (const char *)kev.data.scalar.value);
                const size_t line = kev.start_mark.line;
                yaml_event_delete(&kev);
                if (next(&y, &vev)) {
                    done = -1;
                    break;
                }
                int bad = 0;
                if (vev.type == YAML_SCALAR_EVENT) {
                    bad = add_word(&y, ws, key, (const char *)vev.data.scalar.value, line);
                    yaml_event_delete(&vev);
                } else if (vev.type == YAML_SEQUENCE_START_EVENT) {
                    yaml_event_delete(&vev);
                    char joined[1000], text[1004];
                    bad = read_seq(&y, joined, sizeof joined);
                    if (!bad) {
                        snprintf(text, sizeof text, "[%s]", joined);
                        bad = add_word(&y, ws, key, text, line);
                    }
                } else if (vev.type == YAML_MAPPING_START_EVENT) {
                    yaml_event_delete(&vev);
                    bad = read_map(&y, ws, key, line);
                } else {
                    bad = fail_at(&y, &vev, "expected a value");
                    yaml_event_delete(&vev);
                }
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
        if (strcmp(a, "--dry-run") == 0) {
            ws->dry_run = 1;
        } else if (strcmp(a, "--quiet") == 0) {
            ws->quiet = 1;
        } else if (strcmp(a, "--resume") == 0) {
            if (i + 1 >= argc) {
                snprintf(msg, msg_len, "--resume needs a results folder (--resume DIR)");
                return -1;
            }
            snprintf(ws->resume, sizeof ws->resume, "%s", argv[++i]);
        } else if (strncmp(a, "--", 2) == 0) {
            snprintf(msg, msg_len, "unknown option '%s' (allowed: --dry-run, --quiet, --resume DIR)", a);
            return -1;
        } else if (is_yaml(a) && !strchr(a, '=')) {
            if (qf_words_load_yaml(ws, a, msg, msg_len)) return -1;
        } else if (qf_words_add(ws, a, "command line")) {
            snprintf(msg, msg_len, "argument too long: '%.60s...'", a);
            return -1;
        }
    }
    return 0;
}

int qf_config_from_words(qf_config *cfg, const qf_words *ws, char *msg, size_t msg_len) {
    qf_config_default(cfg);
    /* env= first (it resets the env.* parameters), then everything in order */
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < ws->n; i++) {
            const int is_env = strncmp(ws->w[i].text, "env=", 4) == 0;
            if (is_env != (pass == 0)) continue;
            char *one[1] = {(char *)ws->w[i].text};
            char m[768];
            if (qf_config_parse(cfg, 1, one, m, sizeof m)) {
                snprintf(msg, msg_len, "%s: %s", ws->w[i].origin, m);
                return -1;
            }
        }
    /* checks across keys (e.g. env.arms against env.probs) need all words at once */
    char **all = (char **)malloc(sizeof(char *) * (size_t)(ws->n ? ws->n : 1));
    if (!all) {
        snprintf(msg, msg_len, "out of memory");
        return -1;
    }
    for (int i = 0; i < ws->n; i++) all[i] = (char *)ws->w[i].text;
    qf_config whole;
    qf_config_default(&whole);
    const int rc = qf_config_parse(&whole, ws->n, all, msg, msg_len);
    free(all);
    return rc;
}
