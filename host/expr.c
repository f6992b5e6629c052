/* expr.c — derived key values: a recursive-descent evaluator (grammar in expr.h). */
#define _POSIX_C_SOURCE 200809L
#include "expr.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64 /* nesting of parentheses and unary signs: a bound on the recursion */

typedef struct parser {
    const char *s, *p;
    qf_expr_lookup lookup;
    void *ctx;
    int status; /* 0 ok, 1 pending, -1 error */
    int depth;
    char *pending;
    size_t pending_len;
    char *msg;
    size_t msg_len;
} parser;

static void skip(parser *q) {
    while (*q->p == ' ' || *q->p == '\t') q->p++;
}

/* Record the first error at position `at` (a pointer into the text). Returns NAN. */
static double fail(parser *q, const char *at, const char *fmt, const char *arg) {
    if (q->status) return NAN;
    q->status = -1;
    char what[256];
    snprintf(what, sizeof what, fmt, arg);
    snprintf(q->msg, q->msg_len, "position %d: %s", (int)(at - q->s) + 1, what);
    return NAN;
}

static double expr(parser *q);
static double unary(parser *q);

static int is_name_start(char c) { return isalpha((unsigned char)c) || c == '_'; }
static int is_name_char(char c) { return isalnum((unsigned char)c) || c == '_' || c == '.'; }

/* A function applied to n arguments at `at`. */
static double apply(parser *q, const char *at, const char *name, const double *a, int n) {
    static const char *const one[] = {"sqrt", "exp", "log", "log2", "log10", "abs", "floor", "ceil", "round"};
    if (strcmp(name, "min") == 0 || strcmp(name, "max") == 0) {
        double v = a[0];
        for (int i = 1; i < n; i++) v = (name[1] == 'i') == (a[i] < v) ? a[i] : v;
        return v;
    }
    int f = -1;
    for (int i = 0; i < (int)(sizeof one / sizeof one[0]); i++)
        if (strcmp(name, one[i]) == 0) f = i;
    if (f < 0)
        return fail(q, at, "unknown function '%.60s' (functions: sqrt, exp, log, log2, log10, abs, floor, ceil, round, "
                           "min, max)", name);
    if (n != 1) return fail(q, at, "%.60s takes one argument", name);
    const double x = a[0];
    if (f == 0 && x < 0) return fail(q, at, "%s of a negative number", name);
    if (f >= 2 && f <= 4 && !(x > 0)) return fail(q, at, "%s of a number <= 0", name);
    switch (f) {
    case 0: return sqrt(x);
    case 1: return exp(x);
    case 2: return log(x);
    case 3: return log2(x);
    case 4: return log10(x);
    case 5: return fabs(x);
    case 6: return floor(x);
    case 7: return ceil(x);
    default: return round(x);
    }
}

static double primary(parser *q) {
    skip(q);
    const char *at = q->p;
    if (isdigit((unsigned char)*q->p) || (*q->p == '.' && isdigit((unsigned char)q->p[1]))) {
        /* a decimal number: digits, point, exponent (strtod would also take hex, inf and nan) */
        const char *e = q->p;
        while (isdigit((unsigned char)*e) || *e == '.') e++;
        if ((*e == 'e' || *e == 'E') &&
            (isdigit((unsigned char)e[1]) || ((e[1] == '+' || e[1] == '-') && isdigit((unsigned char)e[2])))) {
            e += 2;
            while (isdigit((unsigned char)*e)) e++;
        }
        char buf[64];
        const size_t len = (size_t)(e - q->p);
        if (len >= sizeof buf) return fail(q, at, "a number longer than 63 characters%s", "");
        memcpy(buf, q->p, len);
        buf[len] = 0;
        char *end;
        errno = 0;
        const double v = strtod(buf, &end);
        if (*end) return fail(q, at, "'%.60s' is not a number", buf);
        if (errno) /* ERANGE: 1e400 overflows, 1e-400 underflows */
            return fail(q, at, "'%.60s' is out of the floating-point range (nonzero magnitudes run from 2.2e-308 to "
                               "1.8e308)", buf);
        q->p = e;
        return v;
    }
    if (is_name_start(*q->p)) {
        char name[128];
        const char *e = q->p;
        while (is_name_char(*e)) e++;
        const size_t len = (size_t)(e - q->p);
        if (len >= sizeof name) return fail(q, at, "a name longer than 127 characters%s", "");
        memcpy(name, q->p, len);
        name[len] = 0;
        q->p = e;
        skip(q);
        if (*q->p == '(') { /* a function call */
            q->p++;
            double args[16];
            int n = 0;
            for (;;) {
                const double v = expr(q);
                if (q->status) return NAN;
                if (n == 16) return fail(q, at, "%.60s: more than 16 arguments", name);
                args[n++] = v;
                skip(q);
                if (*q->p == ',') {
                    q->p++;
                    continue;
                }
                if (*q->p == ')') {
                    q->p++;
                    break;
                }
                return fail(q, q->p, *q->p ? "expected ',' or ')' in the arguments of %.60s" : "missing ')' after the "
                                                                                                  "arguments of %.60s",
                            name);
            }
            return apply(q, at, name, args, n);
        }
        double v = NAN;
        char why[256] = "";
        const int r = q->lookup ? q->lookup(q->ctx, name, &v, why, sizeof why) : -1;
        if (r == 1) {
            if (!q->status) {
                q->status = 1;
                snprintf(q->pending, q->pending_len, "%s", name);
            }
            return NAN;
        }
        if (r != 0) return fail(q, at, "%s", why[0] ? why : "names are not allowed here");
        return v;
    }
    if (*q->p == '(') {
        q->p++;
        const double v = expr(q);
        if (q->status) return NAN;
        skip(q);
        if (*q->p != ')') return fail(q, q->p, *q->p ? "expected ')' here%s" : "missing ')'%s", "");
        q->p++;
        return v;
    }
    if (!*q->p) return fail(q, at, "the expression ends where a number or a key was expected%s", "");
    char c[2] = {*q->p, 0};
    return fail(q, at, "unexpected '%s' (expected a number, a key or '(')", c);
}

static double power(parser *q) {
    const double base = primary(q);
    if (q->status) return NAN;
    skip(q);
    if (*q->p != '^') return base;
    const char *at = q->p++;
    if (++q->depth > MAX_DEPTH) return fail(q, at, "more than 64 nested signs, powers or parentheses%s", "");
    const double e = unary(q);
    q->depth--;
    if (q->status) return NAN;
    const double v = pow(base, e);
    if (!isfinite(v)) return fail(q, at, "the power is not a finite number%s", "");
    return v;
}

static double unary(parser *q) {
    skip(q);
    if (*q->p == '-' || *q->p == '+') {
        const int neg = *q->p == '-';
        if (++q->depth > MAX_DEPTH) return fail(q, q->p, "more than 64 nested signs, powers or parentheses%s", "");
        q->p++;
        const double v = unary(q);
        q->depth--;
        return neg ? -v : v;
    }
    return power(q);
}

static double term(parser *q) {
    double v = unary(q);
    for (;;) {
        if (q->status) return NAN;
        skip(q);
        const char op = *q->p;
        if (op != '*' && op != '/') return v;
        const char *at = q->p++;
        const double r = unary(q);
        if (q->status) return NAN;
        if (op == '/' && r == 0.0) return fail(q, at, "division by zero%s", "");
        v = op == '*' ? v * r : v / r;
        if (!isfinite(v)) return fail(q, at, "the product is not a finite number%s", "");
    }
}

static double expr(parser *q) {
    if (++q->depth > MAX_DEPTH) return fail(q, q->p, "more than 64 nested signs, powers or parentheses%s", "");
    double v = term(q);
    for (;;) {
        if (q->status) break;
        skip(q);
        const char op = *q->p;
        if (op != '+' && op != '-') break;
        const char *at = q->p++;
        const double r = term(q);
        if (q->status) break;
        v = op == '+' ? v + r : v - r;
        if (!isfinite(v)) {
            fail(q, at, "the sum is not a finite number%s", "");
            break;
        }
    }
    q->depth--;
    return v;
}

int qf_expr_eval(const char *text, qf_expr_lookup lookup, void *ctx, double *value, char *pending, size_t pending_len,
                 char *msg, size_t msg_len) {
    parser q = {text, text, lookup, ctx, 0, 0, pending, pending_len, msg, msg_len};
    const double v = expr(&q);
    if (q.status == 0) {
        skip(&q);
        if (*q.p) {
            char c[2] = {*q.p, 0};
            fail(&q, q.p, *q.p == ')' ? "a ')' without its '('%s" : "unexpected '%s' (expected an operator + - * / ^)",
                 *q.p == ')' ? "" : c);
        }
    }
    if (q.status) return q.status;
    *value = v;
    return 0;
}

/* Whether s (inside the text starting at p) is the e or E of a number's exponent (1e-3, 2.E5). */
static int exponent_e(const char *p, const char *s) {
    return (*s == 'e' || *s == 'E') && s > p && (isdigit((unsigned char)s[-1]) || s[-1] == '.') &&
           (isdigit((unsigned char)s[1]) || s[1] == '+' || s[1] == '-');
}

int qf_expr_is_candidate(const char *text) {
    const char *p = text;
    while (*p == ' ') p++;
    if (*p == '+' || *p == '-') p++;
    for (const char *s = p; *s; s++) {
        if (is_name_start(*s)) {
            if (!exponent_e(p, s)) return 1; /* an exponent's e of a number (1e-3) is not a name */
            s++; /* its sign */
            continue;
        }
        if (strchr("+-*/^()", *s)) return 1;
    }
    return 0;
}

int qf_expr_is_plausible(const char *text, int (*known)(void *ctx, const char *name), void *ctx) {
    const char *p = text;
    while (*p == ' ') p++;
    if (*p == '+' || *p == '-') p++;
    for (const char *s = p; *s; s++) {
        if (is_name_start(*s)) {
            if (exponent_e(p, s)) {
                s++; /* the exponent's sign or first digit */
                continue;
            }
            const char *e = s;
            while (is_name_char(*e)) e++;
            char name[128];
            const size_t len = (size_t)(e - s) < sizeof name ? (size_t)(e - s) : sizeof name - 1;
            memcpy(name, s, len);
            name[len] = 0;
            const char *after = e;
            while (*after == ' ') after++;
            if (*after == '(' || (known && known(ctx, name))) return 1;
            s = e - 1;
            continue;
        }
        if (strchr("+-*/^()", *s)) return 1;
    }
    return 0;
}
