/*
 * chat — where adapters' upcalls land (chat_on_event, chat_on_state): access
 * policy, routing to a conversation, and hand-off to the brain.
 *
 * A top-level message that addresses the bot in a routed channel starts a
 * conversation rooted at that message; a message in a known thread continues
 * it; anything else is not ours and is ignored without a word (a bot that
 * talks in channels nobody routed to it is a noisy bot).  Only
 * access.allowed_users start agents or answer questions; others get one
 * polite refusal per thread.
 */
#ifndef SB_CHAT_H
#define SB_CHAT_H

#include <jansson.h>
#include <stddef.h>

struct config;
struct adapter;
struct chat_event;
struct inbox_key;

void	 chat_configure(const struct config *);

/*
 * ---- chat-inbox.c: adapters' events through the inbox ----------------------
 *
 * An adapter hands an event to the core with chat_inbox_put() (queued for the
 * next group commit, with its dedup keys; acks go out through
 * inbox_after_commit()) or, when it records a batch in its own transaction,
 * with chat_inbox_add() inside that transaction.  Either way chat_on_event()
 * runs later, from the committed row.  The event's strings are copied.
 */
void	 chat_inbox_put(struct adapter *, const struct chat_event *,
	    const struct inbox_key *keys, size_t nkeys);
int	 chat_inbox_add(struct adapter *, const struct chat_event *);
/* The adapter is going away: rows for it wait for the next start. */
void	 chat_inbox_forget(struct adapter *);
/*
 * Installed by chat_configure: adapter by name, the insert hook, and
 * whether a lone event may be worked on before its ack (inbox.h).
 */
void	 chat_inbox_setup(struct adapter *(*lookup)(const char *),
	    void (*on_insert)(json_t *, size_t, void *),
	    int (*inline_ok)(json_t *, void *));
json_t	*chat_event_json(const char *adapter, const struct chat_event *);
/*
 * Events waiting for their thread to be checked (adapter thread_exists):
 * chat_park() keeps ev durably in the caller's transaction until the
 * adapter calls chat_thread_checked(), which puts it back into the inbox;
 * chat_thread_parked() says whether (adapter, channel, thread) has events
 * waiting, so later ones of that thread wait behind them.  At start
 * (chat_inbox_setup) everything parked goes back into the inbox.
 */
int	 chat_park(const char *adapter, const struct chat_event *);
int	 chat_thread_parked(const char *adapter, const char *channel,
	    const char *thread);
/* Borrows p's strings. */
void	 chat_event_of_json(json_t *p, struct chat_event *);

#endif
