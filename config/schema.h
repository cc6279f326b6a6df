/*
 * schema — the table of every configuration key and the walk that checks a
 * parsed libconfig tree against it.
 *
 * One row per key: its path ("http.listen", or "repos.[].name" for a member of
 * every item of a list of groups), type, default, help text and constraints
 * (required, int range, enum values, a string check).  Defaults live only here:
 * config.c reads a missing key's default from the table, and the generated
 * documentation comes from the same rows, so the three cannot drift apart.
 * The walk only checks what one key can say about itself; relations between
 * keys (routes naming repos, adapter credentials) are config.c's business.
 */
#ifndef SB_SCHEMA_H
#define SB_SCHEMA_H

#include "bot/util.h"

#include <libconfig.h>

enum schema_type {
	SCHEMA_STRING,
	SCHEMA_INT,
	SCHEMA_FLOAT,		/* 1.5 (an integer is accepted too); min..max */
	SCHEMA_BOOL,
	SCHEMA_SECRET,		/* a string "env:NAME" or "file:/path" */
	SCHEMA_STRINGS,		/* [ "a", "b" ] or ( "a", "b" ) */
	SCHEMA_GROUP,		/* { ... } */
	SCHEMA_LIST,		/* ( { ... }, { ... } ) */
};

#define SCHEMA_REQUIRED	0x1	/* in its group, or in every item of its list */

struct schema_key {
	const char		 *path;
	enum schema_type	  type;
	int			  flags;
	const char		 *def;		/* as written in the file; NULL = unset */
	long long		  min, max;	/* SCHEMA_INT only */
	const char *const	 *values;	/* allowed strings, NULL-terminated */
	/* Extra check of a string value; 0 ok, -1 with *why (malloc'd). */
	int			(*check)(const char *, char **why);
	const char		 *help;
};

extern const struct schema_key	schema_keys[];
extern const size_t		schema_nkeys;

/* Errors gathered during one load, one "FILE:LINE: message" per line. */
struct schema_errors {
	const char	*file;		/* the top-level file, for errors without a line */
	struct buf	 text;
	int		 count;
};

#define SCHEMA_MAX_ERRORS	20

/* s may be NULL or the root (then only the file is named). */
void	 schema_error(struct schema_errors *, const config_setting_t *s,
	    const char *, ...) __attribute__((format(printf, 3, 4)));

/* NULL if path is not in the table. */
const struct schema_key	*schema_lookup(const char *path);
/* Closest known path to a misspelt one, or NULL if nothing is close. */
const char		*schema_suggest(const char *path);

/* Checks the whole tree; returns the number of errors added. */
int	 schema_validate(const config_t *, struct schema_errors *);

/* Reference text for every key, generated from the table. */
char	*schema_doc(void);

#endif
