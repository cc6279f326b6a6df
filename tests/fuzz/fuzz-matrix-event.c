/*
 * fuzz-matrix-event — libFuzzer target for the Matrix event parser: any bytes
 * are loaded as JSON and, when they parse, classified as a timeline event
 * (and every element of an array as one, like a sync batch's timeline).
 *
 *   make fuzz && build/fuzz/fuzz-matrix-event -max_total_time=60
 */
#include "adapters/matrix.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

int	 LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct matrix_ev	 e;
	json_error_t		 err;
	json_t			*j, *v;
	size_t			 i;

	if ((j = json_loadb((const char *)data, size, 0, &err)) == NULL)
		return 0;
	matrix_ev_parse(j, "@bot:example.org", "Code Bot", &e);
	matrix_ev_clear(&e);
	json_array_foreach(j, i, v) {
		matrix_ev_parse(v, "@bot:example.org", NULL, &e);
		matrix_ev_clear(&e);
	}
	json_decref(j);
	return 0;
}
