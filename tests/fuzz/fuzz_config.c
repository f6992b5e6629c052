/* fuzz_config.c — libFuzzer target for the configuration parsers: the input is read both as
 * whitespace-separated key=value words (qf_config_parse, the sweep's word collection) and as a YAML
 * file (libyaml through qf_words_load_yaml_buffer, then qf_config_from_words). Any input must give
 * a configuration or an error message, never a crash, a hang or undefined behaviour (built with
 * ASan and UBSan); a configuration that parses also goes through the checks across keys and of keys
 * against every command. Run: scripts/fuzz.sh SECONDS. */
#define _POSIX_C_SOURCE 200809L
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../host/config.h"
#include "../../host/words.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 1 << 16) return 0;
    char *text = (char *)malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    /* 1. words */
    char *words[256];
    int n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(text, " \t\n\r", &save); tok && n < 256; tok = strtok_r(NULL, " \t\n\r", &save))
        words[n++] = tok;
    qf_config cfg;
    qf_config_default(&cfg);
    char msg[1024];
    msg[0] = 0;
    if (qf_config_parse(&cfg, n, words, msg, sizeof msg) != 0) {
        if (msg[0] == 0) abort(); /* an error says why */
    } else {
        /* the checks across keys and of keys against each command: an answer, and a reason when no */
        for (unsigned cmd = 1; cmd < QF_CMD_ALL; cmd <<= 1) {
            msg[0] = 0;
            if (qf_config_check(&cfg, cmd, msg, sizeof msg) != 0 && msg[0] == 0) abort();
            for (int i = 0; i < n; i++) {
                msg[0] = 0;
                if (qf_config_key_for_command(words[i], cmd, msg, sizeof msg) != 0 && msg[0] == 0) abort();
            }
        }
    }
    qf_words ws;
    memset(&ws, 0, sizeof ws);
    if (qf_words_collect(&ws, n, words, msg, sizeof msg) == 0) {
        qf_config c2;
        if (qf_config_from_words(&c2, &ws, msg, sizeof msg) != 0 && msg[0] == 0) abort();
    }
    qf_words_free(&ws);
    /* 2. YAML */
    memset(&ws, 0, sizeof ws);
    if (qf_words_load_yaml_buffer(&ws, "fuzz.yaml", data, size, msg, sizeof msg) == 0) {
        qf_config c3;
        if (qf_config_from_words(&c3, &ws, msg, sizeof msg) != 0 && msg[0] == 0) abort();
    } else if (msg[0] == 0) {
        abort();
    }
    qf_words_free(&ws);
    free(text);
    return 0;
}
