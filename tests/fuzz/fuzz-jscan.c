/*
 * libFuzzer target: jscan against jansson on arbitrary input.  jscan must
 * never read out of bounds, must accept everything jansson accepts, and may
 * accept more only where jscan.h says so (numbers out of range; duplicate
 * members, which jansson keeps by default anyway).  Its spans must be
 * values jansson decodes.  Build: make fuzz.
 */
#include "orchestrator/jscan.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* jscan_sub_rows finds in its pass what jscan_next_pick finds after it. */
static void
sub_rows(const char *s, size_t size)
{
	struct jscan_field	 mf[1] = { { .key = "message" } };
	struct jscan_field	 sf[2] = { { .key = "id" }, { .key = "content" } };
	struct jscan_field	 rows[2 * 2], w[2] = { { .key = "type" },
	    { .key = "a" } };
	const char		*v;
	size_t			 pos = 0, vlen, i;
	int			 dup, nrows, r, k = 0;

	rows[0].key = "type";
	rows[1].key = "a";
	if (jscan_sub_rows(s, size, mf, 1, 0, sf, 2, &dup, 1, rows, 2, 2,
	    &nrows) != '{' || sf[1].val == NULL || *sf[1].val != '[')
		return;
	while ((r = jscan_next_pick(sf[1].val, sf[1].len, &pos, &v, &vlen, w,
	    2)) > 0) {
		if (r != 1)
			continue;
		if (k == 2) {
			k = -1;
			break;
		}
		for (i = 0; i < 2; i++)
			if (rows[k * 2 + i].val != w[i].val ||
			    rows[k * 2 + i].len != w[i].len)
				abort();
		k++;
	}
	if (r == -1 || nrows != k)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char		*s = (const char *)data, *v;
	struct jscan_field	 f[3] = { { .key = "type" }, { .key = "a" },
	    { .key = "message" } };
	json_error_t		 err;
	json_t			*j, *e;
	size_t			 i, pos = 0, vlen;
	int			 r;

	/* Hand jscan a copy of exactly size bytes: ASan sees any overread. */
	char *copy = malloc(size > 0 ? size : 1);
	memcpy(copy, s, size);
	r = jscan(copy, size, f, 3);
	j = json_loadb(copy, size, JSON_DECODE_ANY, &err);
	/*
	 * Only a wanted key twice may make jscan refuse what jansson takes;
	 * and jansson 2.14 takes a number followed by a NUL byte ("1\0") as
	 * if the NUL ended the input, which jscan does not copy.
	 */
	if (j != NULL && r == -1 && !json_is_object(j) &&
	    memchr(copy, '\0', size) == NULL)
		abort();
	if (j == NULL && r != -1 && strstr(err.text, "too big") == NULL &&
	    strstr(err.text, "overflow") == NULL)
		abort();
	for (i = 0; i < 3; i++) {
		if (f[i].val == NULL)
			continue;
		if (r != '{' || f[i].val < copy || f[i].val + f[i].len >
		    copy + size)
			abort();
		if ((e = json_loadb(f[i].val, f[i].len, JSON_DECODE_ANY,
		    &err)) == NULL && strstr(err.text, "too big") == NULL &&
		    strstr(err.text, "overflow") == NULL)
			abort();
		json_decref(e);
	}
	if (r == '[')
		while (jscan_next(copy, size, &pos, &v, &vlen) == 1)
			if (v < copy || v + vlen > copy + size)
				abort();
	json_decref(jscan_pick(copy, size, (const char *const[]){ "type",
	    "a" }, 2));
	json_decref(j);
	sub_rows(copy, size);
	free(copy);
	return 0;
}
