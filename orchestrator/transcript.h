/*
 * transcript — the LLM brain's durable memory of a conversation (SQLite):
 * the transcript itself, the inbox of what arrived while a turn ran, the
 * turns with their accounting, and which brain a conversation talks to.
 *
 * Entries are neutral llm messages (llm.h) tagged with a kind:
 *	person		a person's message ("console:me: build a login page")
 *	note		an agent event or a command the rules code handled
 *	assistant	the model's reply (text and tool calls)
 *	tool		the results of those tool calls
 * An *exchange* starts at a person or note entry that follows anything
 * else.  A request is bounded by dropping whole exchanges, oldest first, so
 * a tool call is never separated from its result and the kept transcript
 * always starts with the user's side.
 *
 * Messages and events that arrive during a turn wait in the inbox (durable
 * too) and enter the transcript when the next turn starts, so a turn's
 * tool calls and results stay adjacent.
 */
#ifndef SB_TRANSCRIPT_H
#define SB_TRANSCRIPT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* The brain name recorded for a conversation (malloc'd), or NULL. */
char		*transcript_brain(int64_t conv);
void		 transcript_set_brain(int64_t conv, const char *brain);

/* Appends an entry (msg is neutral; borrowed).  Row id, 0 on error. */
int64_t		 transcript_add(int64_t conv, const char *kind, const json_t *msg);
/*
 * The neutral messages that fit in budget tokens (estimated), oldest first,
 * never fewer than the last exchange.  *dropped (may be NULL) counts the
 * entries left out.  New reference.
 */
json_t		*transcript_load(int64_t conv, size_t budget, size_t *dropped);
size_t		 transcript_count(int64_t conv);
/* Kind of the last entry (malloc'd), or NULL if empty. */
char		*transcript_last_kind(int64_t conv, json_t **msg);

/*
 * The first entry kept: entries [cut, n) fit in budget and cut starts an
 * exchange; the latest exchange start if even that does not fit.  Pure,
 * for the tests.
 */
size_t		 transcript_cut(const char *const *kinds, const size_t *tokens,
		    size_t n, size_t budget);

/*
 * Inbox.  wakes: this item starts a turn by itself (a message, an event).
 * by: the person the turn acts for (a person's message); NULL for notes.
 */
void		 transcript_inbox_add(int64_t conv, const char *kind,
		    const char *text, const char *by, int wakes);
/*
 * Moves the inbox into the transcript (one transaction).  Returns the
 * number moved; *by gets the first item's person (malloc'd, NULL if none:
 * an event-only turn); *wakes whether any item wakes.
 */
int		 transcript_inbox_take(int64_t conv, char **by, int *wakes);
/* Conversations with waiting items that wake (restart), up to n. */
int		 transcript_inbox_pending(int64_t *out, int n);

/* Turns. */
int64_t		 transcript_turn_begin(int64_t conv, const char *brain,
		    const char *by, int acts);
void		 transcript_turn_end(int64_t turn, const char *status,
		    int rounds, long tokens_in, long tokens_out, double cost,
		    double model_ms, double own_ms, const char *error);
/* Turns left 'running' by a crash: fills conv ids and acting persons. */
int		 transcript_turns_cut(int64_t *turns, int64_t *convs,
		    char **bys, int n);
/* US dollars spent by brain since unix time since_s. */
double		 transcript_cost_since(const char *brain, int64_t since_s);

#endif
