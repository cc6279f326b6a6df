/*
 * conversation — one per chat thread (adapter, channel, thread root); durable.
 *
 * Rows live in SQLite; structs are loaded on first use and cached.  What
 * holds a conversation across a loop turn holds a reference (an agent, and
 * through it its questions, jobs and card); everything else keeps the id
 * and looks it up again.  An unreferenced conversation stays cached until
 * more than limits.keep_conversations are, then the least recently used
 * leave memory on the next loop turn, so a pointer from a lookup is good
 * until the current callback returns, and memory follows what is live,
 * not history.
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

	/* The cache's (conversation.c). */
	int		 refs;		/* holders across loop turns */
	int		 orphan;	/* outlived the cache: last release frees */
	struct conversation *hnext;	/* by (adapter, channel, thread) */
	struct conversation *inext;	/* by id */
	struct conversation *lprev, *lnext; /* unreferenced, oldest use first */
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
/*
 * A reference keeps the struct in memory (and the pointer valid) until it
 * is released; agents take one for their life.
 */
void		 conversation_hold(struct conversation *);
void		 conversation_release(struct conversation *);
/* Unreferenced conversations kept cached (limits.keep_conversations). */
void		 conversation_set_keep(int);
/* Conversations in memory (held, plus up to the keep of unreferenced). */
int64_t		 conversation_count(void);
void		 conversation_free_all(void);

#endif
