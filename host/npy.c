/* npy.c — the .npy writer and validating reader (see npy.h). */
#define _POSIX_C_SOURCE 200809L
#include "npy.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char npy_magic[6] = {(char)0x93, 'N', 'U', 'M', 'P', 'Y'};

/* little-endian bytes of a float (the file's order whatever the host's) */
static void put_f32_le(unsigned char *o, float v) {
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    o[0] = (unsigned char)(u & 255u);
    o[1] = (unsigned char)((u >> 8) & 255u);
    o[2] = (unsigned char)((u >> 16) & 255u);
    o[3] = (unsigned char)(u >> 24);
}

static float get_f32_le(const unsigned char *i) {
    const uint32_t u = (uint32_t)i[0] | (uint32_t)i[1] << 8 | (uint32_t)i[2] << 16 | (uint32_t)i[3] << 24;
    float v;
    memcpy(&v, &u, sizeof v);
    return v;
}

int qf_npy_write_f32(FILE *f, int64_t rows, int64_t cols, const float *data) {
    char dict[160];
    const int n = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%lld, %lld), }",
                           (long long)rows, (long long)cols);
    /* magic (6) + version (2) + length (2) + dict + spaces + '\n': a multiple of 64 */
    const size_t total = ((size_t)10 + (size_t)n + 1 + 63) / 64 * 64;
    const size_t hlen = total - 10;
    unsigned char pre[10];
    memcpy(pre, npy_magic, 6);
    pre[6] = 1;
    pre[7] = 0;
    pre[8] = (unsigned char)(hlen & 255u);
    pre[9] = (unsigned char)(hlen >> 8);
    if (fwrite(pre, 1, 10, f) != 10 || fwrite(dict, 1, (size_t)n, f) != (size_t)n) return -1;
    for (size_t i = (size_t)n; i + 1 < hlen; i++)
        if (fputc(' ', f) == EOF) return -1;
    if (fputc('\n', f) == EOF) return -1;
    unsigned char buf[4096];
    const int64_t count = rows * cols;
    for (int64_t i = 0; i < count;) {
        size_t k = 0;
        for (; k < sizeof buf / 4 && i < count; k++, i++) put_f32_le(buf + 4 * k, data[i]);
        if (fwrite(buf, 4, k, f) != k) return -1;
    }
    return ferror(f) ? -1 : 0;
}

/* ---- the header dict: a Python literal, parsed strictly ---------------------------------------- */

typedef struct hdr {
    const char *s, *end;
} hdr;

static void skip_ws(hdr *h) {
    while (h->s < h->end && (*h->s == ' ' || *h->s == '\t')) h->s++;
}

static int eat(hdr *h, char c) {
    skip_ws(h);
    if (h->s < h->end && *h->s == c) {
        h->s++;
        return 1;
    }
    return 0;
}

/* a quoted string ('...' or "..."), no escapes (none of the expected values has one) */
static int read_str(hdr *h, char *out, size_t cap) {
    skip_ws(h);
    if (h->s >= h->end || (*h->s != '\'' && *h->s != '"')) return -1;
    const char q = *h->s++;
    size_t n = 0;
    while (h->s < h->end && *h->s != q) {
        if (*h->s == '\\' || n + 1 >= cap) return -1;
        out[n++] = *h->s++;
    }
    if (h->s >= h->end) return -1;
    h->s++;
    out[n] = 0;
    return 0;
}

static int read_word(hdr *h, char *out, size_t cap) {
    skip_ws(h);
    size_t n = 0;
    while (h->s < h->end && isalpha((unsigned char)*h->s) && n + 1 < cap) out[n++] = *h->s++;
    out[n] = 0;
    return n ? 0 : -1;
}

/* a tuple of non-negative integers: (), (a,), (a, b), (a, b,) ... at most 8 */
static int read_shape(hdr *h, int64_t *dims, int *nd) {
    *nd = 0;
    if (!eat(h, '(')) return -1;
    for (;;) {
        if (eat(h, ')')) return 0;
        skip_ws(h);
        if (h->s >= h->end || !isdigit((unsigned char)*h->s) || *nd == 8) return -1;
        int64_t v = 0;
        while (h->s < h->end && isdigit((unsigned char)*h->s)) {
            if (v > (INT64_MAX - 9) / 10) return -1;
            v = v * 10 + (*h->s++ - '0');
        }
        if (h->s < h->end && (*h->s == 'L' || *h->s == 'l')) h->s++; /* Python 2's long suffix */
        dims[(*nd)++] = v;
        if (eat(h, ')')) return *nd == 1 ? -1 : 0; /* (a) is no tuple: numpy writes (a,) */
        if (!eat(h, ',')) return -1;
    }
}

#define NPY_FAIL(...)                                                                              \
    do {                                                                                           \
        int k_ = snprintf(err, err_len, "%s: ", path);                                             \
        if (k_ < 0 || (size_t)k_ >= err_len) k_ = 0;                                               \
        snprintf(err + k_, err_len - (size_t)k_, __VA_ARGS__);                                     \
        goto fail;                                                                                 \
    } while (0)

int qf_npy_read_f32(const char *path, int64_t rows, int64_t cols, float *data, char *err, size_t err_len) {
    unsigned char *buf = NULL;
    char *text = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, err_len, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    {
        struct stat st;
        if (fstat(fileno(f), &st) != 0) NPY_FAIL("cannot stat: %s", strerror(errno));
        if (!S_ISREG(st.st_mode)) NPY_FAIL("not a regular file (a .npy file is expected)");
        const int64_t size = (int64_t)st.st_size;
        unsigned char pre[12];
        if (size < 10 || fread(pre, 1, 10, f) != 10) NPY_FAIL("too short for a .npy file (%lld bytes)", (long long)size);
        if (memcmp(pre, npy_magic, 6) != 0) NPY_FAIL("not a numpy .npy file (its first bytes are not \\x93NUMPY)");
        const int major = pre[6], minor = pre[7];
        if (minor != 0 || major < 1 || major > 3)
            NPY_FAIL(".npy format version %d.%d (allowed: 1.0, 2.0, 3.0)", major, minor);
        int64_t hlen, start;
        if (major == 1) {
            hlen = (int64_t)pre[8] | (int64_t)pre[9] << 8;
            start = 10;
        } else {
            if (fread(pre + 10, 1, 2, f) != 2) NPY_FAIL("truncated header");
            hlen = (int64_t)pre[8] | (int64_t)pre[9] << 8 | (int64_t)pre[10] << 16 | (int64_t)pre[11] << 24;
            start = 12;
        }
        if (hlen < 1 || hlen > (1 << 20) || start + hlen > size)
            NPY_FAIL("header length %lld does not fit the file (%lld bytes)", (long long)hlen, (long long)size);
        text = (char *)malloc((size_t)hlen + 1);
        if (!text) NPY_FAIL("out of memory");
        if (fread(text, 1, (size_t)hlen, f) != (size_t)hlen) NPY_FAIL("truncated header");
        text[hlen] = 0;
        if (text[hlen - 1] != '\n') NPY_FAIL("header does not end with a newline");
        for (int64_t i = 0; i < hlen; i++)
            if ((unsigned char)text[i] > 126 || (text[i] < 32 && text[i] != '\n'))
                NPY_FAIL("header holds a byte 0x%02x that is not printable ASCII", (unsigned char)text[i]);

        /* {'descr': ..., 'fortran_order': ..., 'shape': (...), } with the keys in any order */
        hdr h = {text, text + hlen - 1};
        char key[32], descr[32] = "", word[16];
        int seen_descr = 0, seen_fortran = 0, seen_shape = 0, fortran = -1, nd = 0;
        int64_t dims[8];
        if (!eat(&h, '{')) NPY_FAIL("header is not a dict literal: %.60s", text);
        for (;;) {
            if (eat(&h, '}')) break;
            if (read_str(&h, key, sizeof key) || !eat(&h, ':')) NPY_FAIL("header dict is malformed: %.80s", text);
            if (strcmp(key, "descr") == 0) {
                if (seen_descr++ || read_str(&h, descr, sizeof descr)) NPY_FAIL("header: bad or repeated 'descr'");
            } else if (strcmp(key, "fortran_order") == 0) {
                if (seen_fortran++ || read_word(&h, word, sizeof word)) NPY_FAIL("header: bad or repeated 'fortran_order'");
                if (strcmp(word, "True") == 0) fortran = 1;
                else if (strcmp(word, "False") == 0) fortran = 0;
                else NPY_FAIL("header: fortran_order is '%s' (allowed: True, False)", word);
            } else if (strcmp(key, "shape") == 0) {
                if (seen_shape++ || read_shape(&h, dims, &nd)) NPY_FAIL("header: bad or repeated 'shape'");
            } else {
                NPY_FAIL("header: unexpected key '%s' (a .npy header holds descr, fortran_order and shape)", key);
            }
            if (eat(&h, '}')) break;
            if (!eat(&h, ',')) NPY_FAIL("header dict is malformed: %.80s", text);
        }
        skip_ws(&h);
        if (h.s != h.end) NPY_FAIL("header: text after the dict");
        if (!seen_descr || !seen_fortran || !seen_shape)
            NPY_FAIL("header lacks '%s'", !seen_descr ? "descr" : !seen_fortran ? "fortran_order" : "shape");
        if (strcmp(descr, "<f4") != 0)
            NPY_FAIL("dtype '%s' (allowed: '<f4', little-endian float32; in numpy: a.astype('<f4'))", descr);
        if (fortran) NPY_FAIL("fortran_order True (allowed: C order; in numpy: np.ascontiguousarray(a))");
        if (nd != 2 || dims[0] != rows || dims[1] != cols) {
            char got[160];
            size_t u = (size_t)snprintf(got, sizeof got, "(");
            for (int i = 0; i < nd && u < sizeof got; i++)
                u += (size_t)snprintf(got + u, sizeof got - u, "%s%lld", i ? ", " : "", (long long)dims[i]);
            if (u < sizeof got) snprintf(got + u, sizeof got - u, "%s)", nd == 1 ? "," : "");
            NPY_FAIL("shape %s, but this fleet needs (%lld, %lld): runs x floats per run (the same env, "
                     "hidden widths, heads, prior and runs as the fleet that wrote it)",
                     got, (long long)rows, (long long)cols);
        }
        const int64_t want = start + hlen + rows * cols * 4;
        if (size != want)
            NPY_FAIL("%lld bytes, but its header announces %lld (%s)", (long long)size, (long long)want,
                     size < want ? "truncated" : "trailing bytes");
        const size_t chunk = 1 << 16;
        buf = (unsigned char *)malloc(4 * chunk);
        if (!buf) NPY_FAIL("out of memory");
        const int64_t count = rows * cols;
        for (int64_t i = 0; i < count;) {
            const size_t k = (size_t)(count - i < (int64_t)chunk ? count - i : (int64_t)chunk);
            if (fread(buf, 4, k, f) != k) NPY_FAIL("read error or truncated data");
            for (size_t j = 0; j < k; j++) data[i + (int64_t)j] = get_f32_le(buf + 4 * j);
            i += (int64_t)k;
        }
    }
    free(buf);
    free(text);
    fclose(f);
    return 0;
fail:
    free(buf);
    free(text);
    fclose(f);
    return -1;
}
