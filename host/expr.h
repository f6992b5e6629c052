/* expr.h — derived key values: `lr=2e-4*heads` in a configuration or a sweep. A value that is not
 * a literal of its (numeric) key is read as an arithmetic expression over numbers and the values of
 * other keys of the same configuration (the same sweep point), evaluated after every literal word is
 * applied (words.c: qf_config_from_words).
 *
 * Grammar (C precedence; ^ binds tighter than unary minus and associates to the right, so
 * -2^2 = -4 and 2^3^2 = 2^9, as in Python's **):
 *   expr    := term (('+' | '-') term)*
 *   term    := unary (('*' | '/') unary)*
 *   unary   := ('-' | '+') unary | power
 *   power   := primary ('^' unary)?
 *   primary := NUMBER | NAME | NAME '(' expr (',' expr)* ')' | '(' expr ')'
 *   NUMBER  := decimal, optional exponent (1, 0.5, .5, 2e-4);  NAME := [A-Za-z_][A-Za-z0-9_.]* (env.size)
 * Functions: sqrt, exp, log (natural), log2, log10, abs, floor, ceil, round (half away from zero),
 * min(a, b, ...), max(a, b, ...). Arithmetic is IEEE double; a domain error (x/0, sqrt(-1),
 * log(0)) or a non-finite result is an error, never a silent inf or NaN. Written here rather than
 * taken from a library: Debian's expression parser (muparser, libmuparser-dev) is C++ with its own
 * variable binding; a C++ link dependency for ~250 lines of recursive descent did not seem worth it. */
#ifndef QF_EXPR_H
#define QF_EXPR_H
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The value of key `name`: 0 with *value; 1 when the key is itself a derived key not yet evaluated
 * (the caller evaluates in dependency order); -1 with one line in why (unknown key, not a number). */
typedef int (*qf_expr_lookup)(void *ctx, const char *name, double *value, char *why, size_t why_len);

/* Evaluate text. Returns 0 with *value (finite); 1 when lookup answered 1 for a name (copied to
 * pending, at most pending_len - 1 characters); -1 with "position P: problem" in msg (P counts
 * characters of text from 1). lookup may be NULL: every name is then an error. */
int qf_expr_eval(const char *text, qf_expr_lookup lookup, void *ctx, double *value, char *pending, size_t pending_len,
                 char *msg, size_t msg_len);

/* Whether text reads as an expression rather than a literal number: it holds a name or an operator
 * after its first character ("2e-4*heads", "sqrt(heads)", "(1)"), and not only a signed number
 * ("1e-3", "-5"). A quick syntactic test; qf_expr_eval decides. */
int qf_expr_is_candidate(const char *text);

/* Whether a candidate that failed to evaluate was plausibly meant as an expression, so that its
 * error should say how it read as one: it holds an operator or a parenthesis after its first
 * character (not an exponent's sign: "2*1e-400", "(1"), a function call ("sqrt(x"), or a name that
 * known(ctx, name) accepts (a numeric key). A mistyped number or a word ("1o0", "1e-3x", "fast",
 * "yes") is not: its error is the key's own message alone. known may be NULL (no name is known). */
int qf_expr_is_plausible(const char *text, int (*known)(void *ctx, const char *name), void *ctx);

#ifdef __cplusplus
}
#endif
#endif
