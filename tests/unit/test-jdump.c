/*
 * jdump against json_dumps(JSON_COMPACT): the same bytes for every value,
 * the same NULL where jansson refuses.
 */
#include "bot/jdump.h"
#include "bot/util.h"
#include "tests/unit/t.h"

#include <stdlib.h>
#include <string.h>

/* Both dumps of j agree (and j is freed). */
static int
same(json_t *j)
{
	char	*a = jdump(j), *b = json_dumps(j, JSON_COMPACT);
	int	 ok;

	ok = (a == NULL && b == NULL) ||
	    (a != NULL && b != NULL && strcmp(a, b) == 0);
	if (!ok)
		printf("  jdump %s\n  jansson %s\n", a ? a : "(null)",
		    b ? b : "(null)");
	free(a);
	free(b);
	json_decref(j);
	return ok;
}

TEST(jdump_writes_what_json_dumps_compact_writes)
{
	static const char	 nul[] = "a\0b";
	json_t			*o;

	/* Alone, a scalar is refused by both (no JSON_ENCODE_ANY). */
	CHECK(same(json_null()));
	CHECK(same(json_pack("[n, b, b, i, s]", 1, 0, 7, "x")));
	CHECK(same(json_true()));
	CHECK(same(json_false()));
	CHECK(same(json_integer(0)));
	CHECK(same(json_integer(-9223372036854775807LL - 1)));
	CHECK(same(json_real(0.1)));
	CHECK(same(json_string("")));
	CHECK(same(json_string("plain text, 👀 and é")));
	CHECK(same(json_string("\"quoted\" back\\slash /slash\b\f\n\r\t\x01"
	    "\x1f\x7f")));
	CHECK(same(json_stringn(nul, 3)));
	CHECK(same(json_object()));
	CHECK(same(json_array()));
	CHECK(same(json_pack("{s:s, s:o, s:s?, s:b, s:[s, i, {}], s:{s:I}}",
	    "text", "reply", "choices", json_null(), "question", NULL, "closed",
	    0, "list", "a", 1, "meta", "outbox_id", (json_int_t)42)));
	/* A real anywhere: jansson's own formatting. */
	CHECK(same(json_pack("{s:[f]}", "cost", 1.5)));
	/* Keys are escaped too, and keep their order. */
	o = json_object();
	json_object_set_new(o, "z\n", json_integer(1));
	json_object_set_new(o, "a\"", json_integer(2));
	CHECK(same(o));
	/* Not UTF-8: refused by both. */
	CHECK(same(json_stringn_nocheck("bad \xff byte", 10)));
	CHECK(same(json_stringn_nocheck("overlong \xc0\xaf", 11)));
	CHECK(same(json_stringn_nocheck("surrogate \xed\xa0\x80", 13)));
	CHECK(same(json_stringn_nocheck("cut \xe2\x82", 6)));
	CHECK(jdump(NULL) == NULL);
}

/* Random strings of every byte, in random nests: bytes agree. */
TEST(jdump_agrees_with_json_dumps_on_random_values)
{
	char	 s[24];
	json_t	*root, *cur;
	int	 i, k, n;

	srandom(7);
	for (i = 0; i < 2000; i++) {
		root = json_object();
		cur = root;
		for (k = 0; k < 6; k++) {
			n = (int)(random() % (int)sizeof s);
			for (int c = 0; c < n; c++)
				s[c] = (char)(random() % 4 == 0 ?
				    random() % 256 : ' ' + random() % 95);
			json_object_set_new(cur, "s", json_stringn_nocheck(s,
			    (size_t)n));
			json_object_set_new(cur, "i", json_integer(random()));
			if (random() % 2) {
				json_t *a = json_array();
				json_array_append_new(a, json_stringn_nocheck(s,
				    (size_t)n));
				json_object_set_new(cur, "a", a);
			}
			json_object_set_new(cur, "o", json_object());
			cur = json_object_get(cur, "o");
		}
		CHECK(same(root));
	}
}

int
main(void)
{
	RUN(jdump_writes_what_json_dumps_compact_writes);
	RUN(jdump_agrees_with_json_dumps_on_random_values);
	return t_done();
}
