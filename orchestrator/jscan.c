/*
 * jscan — a validating JSON scanner that builds nothing (see jscan.h).
 *
 * Iterative, so a deeply nested line costs a bit per level, not a stack
 * frame: the open containers are a bit stack (1 = object), bounded like
 * jansson's parser.  Strings are checked sixteen bytes a step (SSE2, else
 * eight) up to a byte that needs a look of its own (a quote, an escape, a
 * control byte, UTF-8); UTF-8 follows jansson's utf8_check_full (no
 * overlongs, no encoded surrogates, nothing above U+10FFFF).
 */
#include "orchestrator/jscan.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* The bytes a backslash may escape with one byte ("\\u" has four more). */
static const unsigned char esc_one[256] = {
	['"'] = 1, ['\\'] = 1, ['/'] = 1, ['b'] = 1, ['f'] = 1, ['n'] = 1,
	['r'] = 1, ['t'] = 1,
};

static int
hex4(const char *p, const char *end, unsigned *v)
{
	int	 i, c;

	if (end - p < 4)
		return -1;
	*v = 0;
	for (i = 0; i < 4; i++) {
		c = (unsigned char)p[i];
		if (c >= '0' && c <= '9')
			c -= '0';
		else if (c >= 'a' && c <= 'f')
			c -= 'a' - 10;
		else if (c >= 'A' && c <= 'F')
			c -= 'A' - 10;
		else
			return -1;
		*v = *v << 4 | (unsigned)c;
	}
	return 0;
}

/* One UTF-8 sequence at p (p[0] >= 0x80): its end, or NULL. */
static const char *
utf8_seq(const char *p, const char *end)
{
	const unsigned char	*u = (const unsigned char *)p;
	unsigned char		 lo = 0x80, hi = 0xbf;
	int			 n, i;

	if (u[0] >= 0xc2 && u[0] <= 0xdf)
		n = 1;
	else if (u[0] >= 0xe0 && u[0] <= 0xef) {
		n = 2;
		if (u[0] == 0xe0)
			lo = 0xa0;		/* overlong */
		else if (u[0] == 0xed)
			hi = 0x9f;		/* surrogates */
	} else if (u[0] >= 0xf0 && u[0] <= 0xf4) {
		n = 3;
		if (u[0] == 0xf0)
			lo = 0x90;		/* overlong */
		else if (u[0] == 0xf4)
			hi = 0x8f;		/* > U+10FFFF */
	} else
		return NULL;
	if (end - p <= n)
		return NULL;
	if (u[1] < lo || u[1] > hi)
		return NULL;
	for (i = 2; i <= n; i++)
		if (u[i] < 0x80 || u[i] > 0xbf)
			return NULL;
	return p + n + 1;
}

#define ONES	0x0101010101010101ULL
#define HIGHS	0x8080808080808080ULL

/*
 * The first byte from p that is not plain inside a string (a control byte,
 * '"', '\\' or non-ASCII), or the last few bytes before end, which the
 * caller takes one by one.  Most of a line is plain text: sixteen bytes a
 * step with SSE2 (every x86-64), eight without.  A signed compare below
 * ' ' flags both the control bytes and those >= 0x80.
 */
static inline const char *
plain_run(const char *p, const char *end)
{
	uint64_t	 x, q, b, m;

#ifdef __SSE2__
	const __m128i	 quote = _mm_set1_epi8('"'), bsl = _mm_set1_epi8('\\');
	const __m128i	 space = _mm_set1_epi8(' ');
	__m128i		 v;
	unsigned	 k;

	while (end - p >= 16) {
		v = _mm_loadu_si128((const __m128i *)(const void *)p);
		k = (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(
		    _mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bsl)),
		    _mm_cmplt_epi8(v, space)));
		if (k != 0)
			return p + __builtin_ctz(k);
		p += 16;
	}
#endif
	while (end - p >= 8) {
		memcpy(&x, p, 8);
		q = x ^ ONES * '"';
		b = x ^ ONES * '\\';
		/*
		 * A control byte, '"', '\\' or a non-ASCII byte: the lowest
		 * flag is exact (a borrow only runs upwards), so go straight
		 * to that byte.
		 */
		m = (((x - ONES * 0x20) & ~x) | ((q - ONES) & ~q) |
		    ((b - ONES) & ~b) | x) & HIGHS;
		if (m != 0) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
			p += __builtin_ctzll(m) / 8;
#endif
			break;
		}
		p += 8;
	}
	return p;
}

/*
 * The rest of a string from p, a byte plain_run stopped at: the byte after
 * its closing quote, or NULL.
 */
static const char *
string_rest(const char *p, const char *end, int *escaped)
{
	unsigned	 v, w;

	while (p < end) {
		if ((p = plain_run(p, end)) == end)
			break;
		/* Where plain_run stops: most often an escape ("\\n"). */
		if (*p == '\\') {
			*escaped = 1;
			if (++p == end)
				return NULL;
			if (esc_one[(unsigned char)*p]) {
				p++;
				continue;
			}
			if (*p != 'u')
				return NULL;
		} else if (*p == '"')
			return p + 1;
		else if ((unsigned char)*p < 0x20)
			return NULL;
		else if ((unsigned char)*p >= 0x80) {
			if ((p = utf8_seq(p, end)) == NULL)
				return NULL;
			continue;
		} else {
			p++;	/* plain: only the last few bytes come one by one */
			continue;
		}
		if (hex4(p + 1, end, &v) == -1 || v == 0)
			return NULL;	/* jansson refuses \u0000 */
		p += 5;
		if (v >= 0xdc00 && v <= 0xdfff)
			return NULL;	/* a lone low surrogate */
		if (v >= 0xd800 && v <= 0xdbff) {
			if (end - p < 6 || p[0] != '\\' || p[1] != 'u' ||
			    hex4(p + 2, end, &w) == -1 || w < 0xdc00 ||
			    w > 0xdfff)
				return NULL;
			p += 6;
		}
	}
	return NULL;
}

/*
 * A string at p (*p == '"'): the byte after its closing quote, or NULL.
 * Most strings (every key) are short and plain: their closing quote is the
 * first byte plain_run stops at, found without a call.
 */
static inline const char *
skip_string(const char *p, const char *end, int *escaped)
{
	if ((p = plain_run(p + 1, end)) < end && *p == '"')
		return p + 1;
	return string_rest(p, end, escaped);
}

static const char *
skip_number(const char *p, const char *end)
{
	if (p < end && *p == '-')
		p++;
	if (p == end)
		return NULL;
	if (*p == '0')
		p++;
	else if (*p >= '1' && *p <= '9')
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	else
		return NULL;
	if (p < end && *p == '.') {
		if (++p == end || *p < '0' || *p > '9')
			return NULL;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		if (++p < end && (*p == '+' || *p == '-'))
			p++;
		if (p == end || *p < '0' || *p > '9')
			return NULL;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	}
	return p;
}

static const char *
skip_ws(const char *p, const char *end)
{
	/* Most calls meet a token at once: one compare for those. */
	while (p < end && (unsigned char)*p <= ' ' && (*p == ' ' ||
	    *p == '\n' || *p == '\t' || *p == '\r'))
		p++;
	return p;
}

/* Does the escaped key span (quotes included) name key?  Via jansson. */
static int
escaped_key_is(const char *k, size_t klen, const char *key)
{
	json_t	*j;
	int	 r;

	if ((j = json_loadb(k, klen, JSON_DECODE_ANY, NULL)) == NULL)
		return 0;
	r = strcmp(json_string_value(j), key) == 0;
	json_decref(j);
	return r;
}

/*
 * The field of f whose name the key span k (quotes included) is, or NULL.
 * A plain key is compared in place: most differ from a name at the first
 * byte (one compare, no call); the rest a byte at a time, up to the name's
 * NUL (a key of a text not checked, jscan_pick's, may hold one).  (An empty
 * key's first byte is its closing quote: like key_is before, it matches no
 * name.)
 */
static inline struct jscan_field *
find_key(const char *k, size_t klen, int escaped, struct jscan_field *f,
    size_t nf)
{
	const char	*key;
	size_t		 i, j, n = klen - 2;

	if (escaped) {
		for (i = 0; i < nf; i++)
			if (escaped_key_is(k, klen, f[i].key))
				return &f[i];
		return NULL;
	}
	for (i = 0; i < nf; i++) {
		key = f[i].key;
		if (k[1] != key[0])
			continue;
		for (j = 1; j < n && key[j] != '\0' && k[1 + j] == key[j]; j++)
			;
		if (j == n && key[n] == '\0')
			return &f[i];
	}
	return NULL;
}

/* The first '"' or '\\' from p, or end: plain_run for a checked text. */
static inline const char *
quote_run(const char *p, const char *end)
{
	uint64_t	 x, q, b, m;

#ifdef __SSE2__
	const __m128i	 quote = _mm_set1_epi8('"'), bsl = _mm_set1_epi8('\\');
	__m128i		 v;
	unsigned	 k;

	while (end - p >= 16) {
		v = _mm_loadu_si128((const __m128i *)(const void *)p);
		k = (unsigned)_mm_movemask_epi8(_mm_or_si128(
		    _mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bsl)));
		if (k != 0)
			return p + __builtin_ctz(k);
		p += 16;
	}
#endif
	while (end - p >= 8) {
		memcpy(&x, p, 8);
		q = x ^ ONES * '"';
		b = x ^ ONES * '\\';
		m = (((q - ONES) & ~q) | ((b - ONES) & ~b)) & HIGHS;
		if (m != 0) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
			return p + __builtin_ctzll(m) / 8;
#else
			break;
#endif
		}
		p += 8;
	}
	while (p < end && *p != '"' && *p != '\\')
		p++;
	return p;
}

/*
 * A string of a text already checked: only its end is wanted, so each
 * backslash just hides the byte after it.
 */
static const char *
skip_known_string(const char *p, const char *end, int *escaped)
{
	for (p++; (p = quote_run(p, end)) < end; ) {
		if (*p == '"')
			return p + 1;
		*escaped = 1;
		if (end - p < 2)
			return NULL;
		p += 2;
	}
	return NULL;
}

/*
 * The members of the object that is the value of top-level member f[which]
 * (its keys are at depth 2) are looked for in sub; a key there twice sets
 * *subdup instead of refusing the text.
 */
struct sub {
	size_t			 which;
	struct jscan_field	*f;
	size_t			 nf;
	int			*dup;
	/*
	 * The object elements of the array that is f[arr]'s value, each
	 * into a row of nrow fields (rows[r * nrow ...], the names of the
	 * first row copied), at most maxrow of them; *nrows counts them, -1
	 * past maxrow.  rows NULL: none wanted.
	 */
	size_t			 arr;
	struct jscan_field	*rows;
	size_t			 nrow;
	size_t			 maxrow;
	int			*nrows;
};

/* After a container closes: is the one around it (depth levels) an object? */
static inline int
pop(const unsigned char *objs, int depth)
{
	return depth > 0 && (objs[(depth - 1) / 8] >> (depth - 1) % 8 & 1);
}

/*
 * One value at p (no leading whitespace): the byte after it, or NULL.  When
 * it is an object, its top-level members named in f get their spans.  obj
 * says whether the innermost open container is an object.
 */
static const char *
skip_value(const char *p, const char *end, struct jscan_field *f, size_t nf,
    int known, const struct sub *sub)
{
	unsigned char		 objs[JSCAN_MAX_DEPTH / 8];
	struct jscan_field	*cur = NULL, *subcur = NULL, *row = NULL;
	struct jscan_field	*ecur = NULL;
	const char		*k;
	size_t			 i;
	int			 depth = 0, esc, obj = 0, in_sub = 0, in_arr = 0;
	int			 edup = 0;

value:
	if (p == end)
		return NULL;
	switch (*p) {
	case '{':
	case '[':
		if (depth == JSCAN_MAX_DEPTH)
			return NULL;
		obj = *p == '{';
		if (obj && depth == 1 && sub != NULL && cur == &f[sub->which])
			in_sub = 1;	/* the object whose members sub wants */
		else if (depth == 2 && !obj && in_sub && sub->rows != NULL &&
		    subcur == &sub->f[sub->arr])
			in_arr = 1;	/* the array whose elements sub wants */
		else if (depth == 3 && obj && in_arr) {
			if (*sub->nrows < 0 || (size_t)*sub->nrows ==
			    sub->maxrow)
				*sub->nrows = -1;	/* more than room */
			else {
				row = &sub->rows[(size_t)*sub->nrows *
				    sub->nrow];
				for (i = 0; i < sub->nrow; i++) {
					row[i].key = sub->rows[i].key;
					row[i].val = NULL;
					row[i].len = 0;
				}
				edup = 0;
			}
		}
		if (obj)
			objs[depth / 8] |= (unsigned char)(1u << depth % 8);
		else
			objs[depth / 8] &= (unsigned char)~(1u << depth % 8);
		depth++;
		p = skip_ws(p + 1, end);
		if (p < end && *p == (obj ? '}' : ']')) {
			p++;
			obj = pop(objs, --depth);
			goto after;
		}
		if (obj)
			goto key;
		goto value;
	case '"':
		esc = 0;
		if ((p = known ? skip_known_string(p, end, &esc) :
		    skip_string(p, end, &esc)) == NULL)
			return NULL;
		break;
	case 't':
		if (end - p < 4 || memcmp(p, "true", 4) != 0)
			return NULL;
		p += 4;
		break;
	case 'f':
		if (end - p < 5 || memcmp(p, "false", 5) != 0)
			return NULL;
		p += 5;
		break;
	case 'n':
		if (end - p < 4 || memcmp(p, "null", 4) != 0)
			return NULL;
		p += 4;
		break;
	default:
		if ((p = skip_number(p, end)) == NULL)
			return NULL;
		break;
	}
after:
	if (depth <= 2) {
		if (depth == 0)
			return p;
		if (depth == 2) {
			in_arr = 0;
			if (subcur != NULL) {
				subcur->len = (size_t)(p - subcur->val);
				subcur = NULL;
			}
		}
		if (depth == 1) {
			in_sub = 0;
			if (cur != NULL) {
				cur->len = (size_t)(p - cur->val);
				cur = NULL;
			}
		}
	} else if (row != NULL) {
		if (depth == 4 && ecur != NULL) {
			ecur->len = (size_t)(p - ecur->val);
			ecur = NULL;
		} else if (depth == 3) {
			/* An element done: kept unless it named a key twice. */
			if (!edup)
				(*sub->nrows)++;
			row = NULL;
		}
	}
	p = skip_ws(p, end);
	if (p == end)
		return NULL;
	if (obj) {
		if (*p == '}') {
			p++;
			obj = pop(objs, --depth);
			goto after;
		}
		if (*p != ',')
			return NULL;
		p = skip_ws(p + 1, end);
		goto key;
	}
	if (*p == ']') {
		p++;
		obj = pop(objs, --depth);
		goto after;
	}
	if (*p != ',')
		return NULL;
	p = skip_ws(p + 1, end);
	goto value;
key:
	if (p == end || *p != '"')
		return NULL;
	k = p;
	esc = 0;
	if ((p = known ? skip_known_string(p, end, &esc) :
	    skip_string(p, end, &esc)) == NULL)
		return NULL;
	if (depth == 1 && nf > 0) {
		cur = find_key(k, (size_t)(p - k), esc, f, nf);
		if (cur != NULL && cur->val != NULL)
			return NULL;	/* duplicate */
	} else if (depth == 2 && in_sub) {
		subcur = find_key(k, (size_t)(p - k), esc, sub->f, sub->nf);
		if (subcur != NULL && subcur->val != NULL) {
			*sub->dup = 1;
			subcur = NULL;
		}
	} else if (depth == 4 && row != NULL) {
		ecur = find_key(k, (size_t)(p - k), esc, row, sub->nrow);
		if (ecur != NULL && ecur->val != NULL) {
			edup = 1;
			ecur = NULL;
		}
	}
	/* The colon comes straight after the key in every writer's style. */
	if (p == end || *p != ':') {
		p = skip_ws(p, end);
		if (p == end || *p != ':')
			return NULL;
	}
	p = skip_ws(p + 1, end);
	if (depth == 1 && cur != NULL)
		cur->val = p;
	else if (depth == 2 && subcur != NULL)
		subcur->val = p;
	else if (depth == 4 && ecur != NULL)
		ecur->val = p;
	goto value;
}

static void
fields_clear(struct jscan_field *f, size_t nf)
{
	size_t	 i;

	for (i = 0; i < nf; i++) {
		f[i].val = NULL;
		f[i].len = 0;
	}
}

static int
scan(const char *s, size_t len, struct jscan_field *f, size_t nf, int known,
    const struct sub *sub)
{
	const char	*end = s + len, *p, *v;

	fields_clear(f, nf);
	if (sub != NULL) {
		fields_clear(sub->f, sub->nf);
		*sub->dup = 0;
		if (sub->rows != NULL)
			*sub->nrows = 0;
	}
	v = skip_ws(s, end);
	if ((p = skip_value(v, end, f, nf, known, sub)) == NULL ||
	    skip_ws(p, end) != end) {
		fields_clear(f, nf);
		if (sub != NULL)
			fields_clear(sub->f, sub->nf);
		return -1;
	}
	if (sub != NULL && (f[sub->which].val == NULL || *sub->dup))
		fields_clear(sub->f, sub->nf);
	return (unsigned char)*v;
}

int
jscan(const char *s, size_t len, struct jscan_field *f, size_t nf)
{
	return scan(s, len, f, nf, 0, NULL);
}

int
jscan_sub(const char *s, size_t len, struct jscan_field *f, size_t nf,
    size_t which, struct jscan_field *sf, size_t nsf, int *dup)
{
	struct sub	 sub = { .which = which, .f = sf, .nf = nsf, .dup = dup };

	if (which >= nf)
		return -1;
	return scan(s, len, f, nf, 0, &sub);
}

int
jscan_sub_rows(const char *s, size_t len, struct jscan_field *f, size_t nf,
    size_t which, struct jscan_field *sf, size_t nsf, int *dup, size_t arr,
    struct jscan_field *rows, size_t nrow, size_t maxrow, int *nrows)
{
	struct sub	 sub = { .which = which, .f = sf, .nf = nsf, .dup = dup,
	    .arr = arr, .rows = rows, .nrow = nrow, .maxrow = maxrow,
	    .nrows = nrows };

	*nrows = 0;
	if (which >= nf || arr >= nsf)
		return -1;
	return scan(s, len, f, nf, 0, &sub);
}

int
jscan_known(const char *s, size_t len, struct jscan_field *f, size_t nf)
{
	return scan(s, len, f, nf, 1, NULL);
}

static int
next(const char *s, size_t len, size_t *pos, const char **val, size_t *vlen,
    struct jscan_field *f, size_t nf, int *dup)
{
	const char	*end = s + len, *p, *q;
	size_t		 i;

	if (*pos == 0) {
		p = skip_ws(s, end);
		if (p == end || *p != '[')
			return -1;
		p = skip_ws(p + 1, end);
		if (p < end && *p == ']')
			goto last;
	} else {
		p = skip_ws(s + *pos, end);
		if (p == end)
			return -1;
		if (*p == ']')
			goto last;
		if (*p != ',')
			return -1;
		p = skip_ws(p + 1, end);
	}
	for (i = 0; i < nf; i++) {
		f[i].val = NULL;
		f[i].len = 0;
	}
	if ((q = skip_value(p, end, f, nf, 1, NULL)) == NULL) {
		/* A wanted key twice: the element, none of its members. */
		for (i = 0; i < nf; i++)
			f[i].val = NULL;
		if (nf == 0 || (q = skip_value(p, end, NULL, 0, 1, NULL)) ==
		    NULL)
			return -1;
		*dup = 1;
	}
	*val = p;
	*vlen = (size_t)(q - p);
	*pos = (size_t)(q - s);
	return 1;
last:
	if (skip_ws(p + 1, end) != end)
		return -1;
	*pos = len;
	return 0;
}

int
jscan_next(const char *s, size_t len, size_t *pos, const char **val,
    size_t *vlen)
{
	int	 dup = 0;

	return next(s, len, pos, val, vlen, NULL, 0, &dup);
}

int
jscan_next_pick(const char *s, size_t len, size_t *pos, const char **val,
    size_t *vlen, struct jscan_field *f, size_t nf)
{
	int	 dup = 0, r;

	r = next(s, len, pos, val, vlen, f, nf, &dup);
	return r == 1 && (dup || **val != '{') ? 2 : r;
}

static json_t *
pick(const char *s, size_t len, const char *const *keys, size_t nkeys,
    int known)
{
	struct jscan_field	 fs[16], *f = fs;
	json_t			*o = NULL, *v;
	size_t			 i;

	if (nkeys > 16 && (f = calloc(nkeys, sizeof *f)) == NULL)
		return NULL;
	for (i = 0; i < nkeys; i++)
		f[i].key = keys[i];
	if ((known ? jscan_known(s, len, f, nkeys) : jscan(s, len, f, nkeys)) !=
	    '{')
		goto out;
	o = json_object();
	for (i = 0; i < nkeys; i++) {
		if (f[i].val == NULL)
			continue;
		if ((v = jscan_value(f[i].val, f[i].len)) == NULL) {
			json_decref(o);
			o = NULL;
			goto out;
		}
		json_object_set_new(o, keys[i], v);
	}
out:
	if (f != fs)
		free(f);
	return o;
}

json_t *
jscan_pick(const char *s, size_t len, const char *const *keys, size_t nkeys)
{
	return pick(s, len, keys, nkeys, 1);
}

json_t *
jscan_object(const char *s, size_t len, const char *const *keys,
    size_t nkeys)
{
	return pick(s, len, keys, nkeys, 0);
}

json_t *
jscan_value(const char *val, size_t len)
{
	/*
	 * A string without escapes is its own text: json_stringn builds it
	 * without jansson's decoder, whose setup costs more than a short
	 * string (half of what was left of the claude parser, callgrind).
	 * Unchecked: the span is of a text jscan accepted, UTF-8 checked
	 * already (checking it again was 6 % of the stream path).
	 */
	if (len >= 2 && val[0] == '"' && memchr(val, '\\', len) == NULL)
		return json_stringn_nocheck(val + 1, len - 2);
	return json_loadb(val, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES,
	    NULL);
}

const char *
jscan_str(const char *val, size_t len, char *buf, size_t size, json_t **hold)
{
	*hold = NULL;
	if (len < 2 || val[0] != '"')
		return NULL;
	if (len - 2 < size && memchr(val + 1, '\\', len - 2) == NULL) {
		memcpy(buf, val + 1, len - 2);
		buf[len - 2] = '\0';
		return buf;
	}
	*hold = jscan_value(val, len);
	return json_string_value(*hold);
}
