/*
 * matrix — the Matrix adapter: Client-Server API over the async HTTP client,
 * a /sync long-poll for input and PUT /send for output.
 *
 * The decision worth knowing: every event we send carries a txnId made from
 * a random prefix kept in the state DB and the outbox row id ("sb-<p>-<id>",
 * "sb-<p>-<id>-k<n>" for the pre-reactions of a question), and a password
 * login reuses the device id kept in the store, so a retry or a restart after
 * kill -9 re-sends the same txnId from the same device and the homeserver
 * answers with the event it already has instead of posting twice.  The prefix
 * is what keeps a *new* state dir (row ids from 1 again) with the same access
 * token, hence the same device, from being answered with the old run's
 * events: the spec scopes a txnId to the device and endpoint, not to us.  Inbound, the sync token is stored in the same transaction
 * as the event ids of its batch (at-least-once, deduplicated by event id).
 *
 * The functions below the ops are pure helpers, exposed for the unit tests.
 */
#ifndef SB_MATRIX_H
#define SB_MATRIX_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "adapters/adapter.h"

extern const struct adapter_ops matrix_ops;

/* Ceiling for one event's text: body plus HTML must fit in 64 KiB. */
#define MATRIX_MAX_TEXT		30000

/*
 * txnId of outbox row id, part n (0 = the message itself, n>0 = n-th extra),
 * under the state dir's prefix ("" only for a state dir older than prefixes).
 */
char	*matrix_txn_id(const char *prefix, uint64_t id, int part);

/* One URL path segment, percent-encoded (room and event ids: ! $ : #). */
char	*matrix_path_escape(const char *);

/* A person's display name (user: a Matrix id), or NULL for the localpart. */
typedef const char *(*matrix_name_fn)(void *arg, const char *user);

/*
 * org.matrix.custom.html for our plain text: & < > " escaped, `code` spans
 * as <code>, *bold* as <strong>, newlines as <br>, and a person the core
 * names as "matrix:@alice:example.org" as a pill with their display name.
 */
char	*matrix_html(const char *text, matrix_name_fn, void *arg);
/* The plain body: the same text with people shown by display name. */
char	*matrix_body(const char *text, matrix_name_fn, void *arg);

/* "1️⃣ GitHub  2️⃣ Google" for choices (NULL-terminated); NULL if none. */
char	*matrix_choice_line(const char *const *choices);
/* Reaction key of choice i (0-based), or NULL past the tenth. */
const char *matrix_choice_key(size_t i);

/*
 * Removes a leading mention of the bot (full user id, one of names — display
 * names, NULL-terminated, may be NULL — or its localpart with an optional
 * '@', then a ':' or ','), returning a malloc'd copy, and sets *found.  A
 * mention elsewhere in the text is detected but left alone.
 */
char	*matrix_strip_mention(const char *body, const char *user_id,
	    const char *const *names, int *found);
/*
 * The text of a pill for user_id in formatted_body html
 * (<a href="https://matrix.to/#/@bot:server">Code Bot</a>), malloc'd, or NULL.
 */
char	*matrix_pill_name(const char *html, const char *user_id);

/* What one timeline event means to us. */
enum matrix_ev_kind {
	MATRIX_EV_IGNORE,	/* not ours to act on (see why) */
	MATRIX_EV_MESSAGE,
	MATRIX_EV_REACTION,
	MATRIX_EV_ENCRYPTION,	/* m.room.encryption / m.room.encrypted */
};

struct matrix_ev {
	enum matrix_ev_kind	 kind;
	const char		*why;		/* IGNORE: for the debug log */
	const char		*event_id;	/* borrowed from the JSON */
	const char		*sender;
	const char		*thread;	/* MESSAGE: thread root or NULL */
	const char		*reply_to;	/* MESSAGE: real reply, or NULL */
	char			*text;		/* MESSAGE: malloc'd, mention stripped */
	int			 mentioned;	/* MESSAGE: the bot was addressed */
	const char		*target;	/* REACTION */
	char			*key;		/* REACTION: malloc'd, normalised */
};

/*
 * Classifies one timeline event of a joined room.  Never fails: anything
 * malformed is MATRIX_EV_IGNORE with a reason.  Free with matrix_ev_clear.
 */
void	 matrix_ev_parse(json_t *event, const char *self_id,
	    const char *self_name /* display name, may be NULL */,
	    struct matrix_ev *out);
void	 matrix_ev_clear(struct matrix_ev *);

#endif
