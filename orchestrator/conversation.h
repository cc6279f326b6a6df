/*
 * conversation — one per chat thread (adapter, channel, thread root); durable.
 *
 * Rows live in SQLite; structs are loaded on first use and cached for the
 * life of the process (they are small: a conversation costs its strings).
 * A conversation carries the repo and default agent its route chose, so a
 * later config change to routes does not move a running conversation.
 */
#ifndef SB_CONVERSATION_H
#define SB_CONVERSATION_H

#include <stdint.h>

struct conversation {
	int64_t		 id;
	char		*adapter;
	char		*channel;
	char		*thread;	/* root message id */
	char		*starter;	/* "console:me" */
	char		*repo;		/* cfg repo name */
	char		*agent;		/* cfg agent name (default driver) */
	int		 refused;	/* started by a user who is not allowed */
	struct conversation *hnext;
};

/*
 * Cached or loaded; NULL if none.  A conversation we opened ourselves
 * (conversation_open) is found by its root's platform id too, once the root
 * is sent; the row then learns that id.
 */
struct conversation *conversation_find(const char *adapter, const char *channel,
		    const char *thread);
struct conversation *conversation_by_id(int64_t);
/* Creates and records one.  NULL on a store error. */
struct conversation *conversation_create(const char *adapter, const char *channel,
		    const char *thread, const char *starter, const char *repo,
		    const char *agent, int refused);
/*
 * Opens a new thread in adapter/channel with text as its root message (no
 * inbound event to root it at: webhooks).  The platform id of the root is
 * unknown until the outbox sends it, so the conversation's thread is the
 * root's outbox key "c<id>.root" meanwhile: posts into it are resolved by
 * the outbox at send time.  NULL on a store error.
 */
struct conversation *conversation_open(const char *adapter, const char *channel,
		    const char *text, const char *starter, const char *repo,
		    const char *agent);
/* Posts text as a reply in the conversation's thread (through the outbox). */
void		 conversation_say(struct conversation *, const char *fmt, ...)
		    __attribute__((format(printf, 2, 3)));
int64_t		 conversation_count(void);
void		 conversation_free_all(void);

#endif
