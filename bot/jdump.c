#include "bot/jdump.h"
#include "bot/util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JDUMP_DEPTH	32	/* deeper: json_dumps, whatever it says */

/* One code point of s[0..n) is valid UTF-8 as jansson checks it: its length,
 * or 0. */
static size_t
utf8_one(const unsigned char *s, size_t n)
{
	uint32_t	 cp;
	size_t		 len, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] < 0xC2)
		return 0;		/* continuation byte, or overlong */
	if (s[0] < 0xE0) {
		len = 2;
		cp = s[0] & 0x1F;
	} else if (s[0] < 0xF0) {
		len = 3;
		cp = s[0] & 0x0F;
	} else if (s[0] < 0xF5) {
		len = 4;
		cp = s[0] & 0x07;
	} else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}

/* A JSON string as jansson writes it (no flags): -1 if not UTF-8. */
static int
dump_string(struct buf *b, const char *str, size_t len)
{
	const unsigned char	*s = (const unsigned char *)str;
	size_t			 i = 0, run = 0, n;
	char			 seq[8];
	const char		*esc;

	buf_add(b, "\"", 1);
	while (i < len) {
		if (s[i] >= 0x80) {
			if ((n = utf8_one(s + i, len - i)) == 0)
				return -1;
			i += n;
			continue;
		}
		if (s[i] >= 0x20 && s[i] != '"' && s[i] != '\\') {
			i++;
			continue;
		}
		buf_add(b, str + run, i - run);
		switch (s[i]) {
		case '\\':	esc = "\\\\"; break;
		case '"':	esc = "\\\""; break;
		case '\b':	esc = "\\b"; break;
		case '\f':	esc = "\\f"; break;
		case '\n':	esc = "\\n"; break;
		case '\r':	esc = "\\r"; break;
		case '\t':	esc = "\\t"; break;
		default:
			snprintf(seq, sizeof seq, "\\u%04X", s[i]);
			esc = seq;
			break;
		}
		buf_adds(b, esc);
		run = ++i;
	}
	buf_add(b, str + run, len - run);
	buf_add(b, "\"", 1);
	return 0;
}

/* -1: leave it to json_dumps (a real, bad UTF-8, too deep). */
static int
dump(struct buf *b, const json_t *j, int depth)
{
	char		 num[32];
	void		*it;
	size_t		 i, n;
	int		 first = 1;

	if (depth > JDUMP_DEPTH)
		return -1;
	switch (json_typeof(j)) {
	case JSON_NULL:
		buf_add(b, "null", 4);
		return 0;
	case JSON_TRUE:
		buf_add(b, "true", 4);
		return 0;
	case JSON_FALSE:
		buf_add(b, "false", 5);
		return 0;
	case JSON_INTEGER:
		n = (size_t)snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT,
		    json_integer_value(j));
		buf_add(b, num, n);
		return 0;
	case JSON_STRING:
		return dump_string(b, json_string_value(j),
		    json_string_length(j));
	case JSON_ARRAY:
		buf_add(b, "[", 1);
		n = json_array_size(j);
		for (i = 0; i < n; i++) {
			if (i > 0)
				buf_add(b, ",", 1);
			if (dump(b, json_array_get(j, i), depth + 1) == -1)
				return -1;
		}
		buf_add(b, "]", 1);
		return 0;
	case JSON_OBJECT:
		buf_add(b, "{", 1);
		for (it = json_object_iter((json_t *)j); it != NULL;
		    it = json_object_iter_next((json_t *)j, it)) {
			if (!first)
				buf_add(b, ",", 1);
			first = 0;
			if (dump_string(b, json_object_iter_key(it),
			    json_object_iter_key_len(it)) == -1)
				return -1;
			buf_add(b, ":", 1);
			if (dump(b, json_object_iter_value(it), depth + 1) == -1)
				return -1;
		}
		buf_add(b, "}", 1);
		return 0;
	default:
		return -1;	/* JSON_REAL: jansson's own formatting */
	}
}

char *
jdump(const json_t *j)
{
	struct buf	 b;

	/* Without JSON_ENCODE_ANY, jansson dumps only these. */
	if (!json_is_object(j) && !json_is_array(j))
		return json_dumps(j, JSON_COMPACT);
	memset(&b, 0, sizeof b);
	if (dump(&b, j, 0) == -1) {
		buf_free(&b);
		return json_dumps(j, JSON_COMPACT);
	}
	return buf_steal(&b);
}
