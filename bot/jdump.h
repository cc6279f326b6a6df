/*
 * jdump — compact JSON text of a jansson value, byte for byte what
 * json_dumps(j, JSON_COMPACT) writes, without its cost: jansson 2.14 keeps
 * a hashtable of the values being dumped (a cycle check that formats each
 * container's address), and dumped the small bodies of a Slack command
 * event (its inbox row, two outbox rows, two Web API calls, the ack) for
 * ~70K instructions of the event's ~830K.  A real number, a string that is
 * not valid UTF-8, or nesting past a depth jansson itself would refuse are
 * left to json_dumps.
 */
#ifndef SB_JDUMP_H
#define SB_JDUMP_H

#include <jansson.h>

/* malloc'd text, or NULL where json_dumps fails (NULL j, say). */
char	*jdump(const json_t *);

#endif
