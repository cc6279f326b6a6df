/*
 * jscan — a validating JSON scanner that builds nothing.
 *
 * The agents' stream-json lines are parsed many times a second, and most of
 * their bytes (a tool_result's file contents, a command's output, a Write's
 * new file) are never shown.  jansson has no selective parser, so this one
 * scanner checks a JSON text the way jansson's decoder does and reports
 * where the top-level members the caller names are; the caller then hands
 * those few (small) spans to jansson.  Every value is still only ever built
 * by jansson: this is the house rule's one accepted exception, for speed.
 * (A plain string, one without escapes, is its own text: jscan_str hands
 * those bytes over as they are; anything with an escape goes to jansson.)
 *
 * What it accepts is what json_loadb accepts (RFC 8259, UTF-8 checked,
 * surrogate pairs checked, "\u0000" refused, nesting at most
 * JSCAN_MAX_DEPTH), except that it does not check that numbers fit a
 * double or a long long and that it finds duplicate keys only among the
 * names asked for.
 */
#ifndef SB_JSCAN_H
#define SB_JSCAN_H

#include <stddef.h>

struct json_t;

#define JSCAN_MAX_DEPTH	2048	/* jansson's JSON_PARSER_MAX_DEPTH */

struct jscan_field {
	const char	*key;	/* in: a member name, plain (no escapes) */
	const char	*val;	/* out: the value's first byte, or NULL */
	size_t		 len;	/* out: the value's length in bytes */
};

/*
 * Checks that s[0..len) is one JSON value with optional whitespace around
 * it.  When it is an object, each field whose key is one of its top-level
 * member names gets that member's value span; fields not present get NULL.
 * Returns the value's first byte ('{', '[', '"', 't', 'f', 'n', '-' or a
 * digit), or -1 when the text is not valid JSON or a wanted key appears
 * twice.
 */
int		 jscan(const char *s, size_t len, struct jscan_field *f, size_t nf);
/*
 * jscan, and in the same pass the members named in sf of the object that is
 * f[which]'s value (an assistant line's message: its id and content).  A
 * name of sf there twice sets *dup (the text is not refused for it; sf is
 * then all NULL, as it is when f[which] is absent or not an object).
 */
int		 jscan_sub(const char *s, size_t len, struct jscan_field *f,
		    size_t nf, size_t which, struct jscan_field *sf, size_t nsf,
		    int *dup);
/*
 * jscan_sub, and in the same pass the object elements of the array that is
 * sf[arr]'s value (an assistant message's content blocks): the members of
 * the r-th such element named in a row of nrow fields go to rows[r * nrow
 * ...] (the names are those of the first row, set by the caller), as
 * jscan_next_pick would find them; an element naming a wanted key twice is
 * left out, as
 * jscan_next_pick's 2 says.  *nrows is how many rows were filled, or -1
 * when there were more than maxrow elements (walk the array with
 * jscan_next_pick then).  Rows are meaningful only when the text is
 * accepted and sf[arr] is an array (not refused for *dup).
 */
int		 jscan_sub_rows(const char *s, size_t len,
		    struct jscan_field *f, size_t nf, size_t which,
		    struct jscan_field *sf, size_t nsf, int *dup, size_t arr,
		    struct jscan_field *rows, size_t nrow, size_t maxrow,
		    int *nrows);
/*
 * The same for a span of a text jscan accepted (a member's value, an
 * element), without checking it again: an assistant line's message is
 * looked into three levels deep, and checking it at each level cost more
 * than the first check.  On other input the result is unspecified, but it
 * never reads outside s[0..len).
 */
int		 jscan_known(const char *s, size_t len, struct jscan_field *f,
		    size_t nf);
/*
 * An array's elements, one by one: *pos is 0 at first; each call stores the
 * next element's span and returns 1, then 0 after the last; -1 when s is not
 * an array.  Like jscan_known, for spans of a text jscan accepted.
 */
int		 jscan_next(const char *s, size_t len, size_t *pos,
		    const char **val, size_t *vlen);
/*
 * The same, and an object element's top-level members named in f, in the
 * one pass (as jscan_known on the element would find them): 1 with f
 * filled, 2 for an element that is not an object or names a wanted key
 * twice (f all NULL; jscan_known would refuse it), 0 after the last, -1
 * when s is not an array.
 */
int		 jscan_next_pick(const char *s, size_t len, size_t *pos,
		    const char **val, size_t *vlen, struct jscan_field *f,
		    size_t nf);
/*
 * A jansson object holding only the named top-level members of the object
 * s[0..len) (each decoded by jansson, duplicates refused), or NULL when s is
 * not an object (or jansson refuses a picked member).  Like jscan_known, for
 * spans of a text jscan accepted.
 */
struct json_t	*jscan_pick(const char *s, size_t len, const char *const *keys,
		    size_t nkeys);
/*
 * jscan_pick for a whole text, checked as jscan checks it: NULL also when
 * jscan refuses the text (a wanted name twice among them).
 */
struct json_t	*jscan_object(const char *s, size_t len,
		    const char *const *keys, size_t nkeys);
/*
 * A member's value span, built by jansson (a string without escapes
 * straight from its text, its UTF-8 not checked again), or NULL when
 * jansson refuses it.  Like jscan_known, for spans of a text jscan accepted.
 */
struct json_t	*jscan_value(const char *val, size_t len);
/*
 * A string member's value to read at once, without a jansson string per
 * value: a plain one (no escapes: its text is its value) copied into buf
 * when it fits, else built by jansson and kept in *hold (json_decref it
 * after; NULL when nothing was built).  NULL when the span is not a
 * string.  Like jscan_known, for spans of a text jscan accepted.
 */
const char	*jscan_str(const char *val, size_t len, char *buf, size_t size,
		    struct json_t **hold);

#endif
