/*
 * adapter — the boundary between a chat platform and the core.
 *
 * Two directions, two shapes (bitlbee):
 *   core → adapter: struct adapter_ops, a const vtable per platform;
 *   adapter → core: plain functions prefixed chat_ (chat_on_event,
 *   chat_on_state, chat_op_done, chat_op_failed), so every call site says
 *   which way it goes.
 *
 * A place in chat is (adapter, channel, thread): Slack (channel id, thread_ts),
 * Matrix (room id, thread root event id), console ("console", thread number).
 * Message ids are the platform's (Slack ts, Matrix event id, console number).
 * The core never looks inside them; it only stores and hands them back.
 *
 * Outgoing operations arrive one at a time per channel (per thread with
 * caps.order_per_thread) from the outbox, which owns ordering, pacing (by
 * the budgets the adapter declares in its caps) and retries; an adapter
 * just performs one op and reports how it went, a 429 with its
 * Retry-After.  It must report every op it accepted exactly once,
 * possibly later from the loop (never from inside send()).
 */
#ifndef SB_ADAPTER_H
#define SB_ADAPTER_H

#include <stddef.h>
#include <stdint.h>

struct adapter;
struct adapter_budget;
struct config;

/* What the platform can do; the core renders for it without special cases. */
struct adapter_caps {
	unsigned	 threads:1;	/* replies can live in a thread */
	unsigned	 edits:1;	/* messages can be edited in place */
	unsigned	 reactions:1;	/* emoji reactions */
	unsigned	 buttons:1;	/* clickable choices (Slack Block Kit) */
	unsigned	 reaction_choices:1; /* choices answered by reacting (Matrix) */
	size_t		 max_text;	/* bytes of text per message */
	/*
	 * A fixed gap between two posts of a channel (a platform without
	 * documented budgets); 0 for none.  Slack declares budgets instead.
	 */
	unsigned	 min_interval_ms;
	/* The platform's documented rate budgets (see below); may be NULL. */
	const struct adapter_budget *budgets;
	size_t		 nbudgets;
	/*
	 * Rate limits are per API method (Slack), so reactions and edits may
	 * go while new messages wait out their pacing or a Retry-After.
	 * Left 0 (Matrix: one limit per user), a channel's ops go one at a
	 * time in order.
	 */
	unsigned	 per_method_limits:1;
	/*
	 * Only the ops of one thread need their order (and a reaction none):
	 * the outbox then keeps a lane per thread and per reaction, so
	 * several ops of a channel are in flight at once.  For platforms whose
	 * limits the adapter itself honours (Matrix: 429 per account).
	 */
	unsigned	 order_per_thread:1;
};

enum chat_op_kind {
	CHAT_OP_POST,		/* new message in a thread (or a new thread) */
	CHAT_OP_EDIT,		/* replace the text of one of our messages */
	CHAT_OP_REACT,		/* add a reaction to any message */
	CHAT_OP_UPLOAD,		/* a file (bytes + name + title) in a thread */
};

/*
 * A rate budget the platform documents for one kind of op (Slack: one API
 * method), which the outbox enforces as a token bucket: up to burst ops at
 * once, then per_minute, evenly refilled.  An op goes when every budget of
 * its kind has room: e.g. Slack's chat.postMessage, 1/s per channel and
 * several hundred a minute across the workspace.  The numbers are where
 * pacing starts, not a ceiling: room the platform grants beyond them is
 * learned, and a 429 takes it back (orchestrator/outbox-pace.c).
 */
enum adapter_budget_scope {
	BUDGET_CHANNEL,		/* per channel */
	BUDGET_WORKSPACE,	/* across every channel of the adapter */
};

struct adapter_budget {
	enum chat_op_kind		 kind;
	enum adapter_budget_scope	 scope;
	unsigned			 per_minute;
	unsigned			 burst;
	const char			*method;	/* for logs: "chat.postMessage" */
};

/* One outgoing operation.  Everything is borrowed until done/failed. */
struct chat_op {
	uint64_t		 id;		/* outbox row: the idempotency key */
	enum chat_op_kind	 kind;
	const char		*channel;
	const char		*thread;	/* root id; NULL = start a new thread */
	const char		*target;	/* EDIT/REACT: platform message id */
	const char		*text;		/* POST/EDIT: plain text, already within max_text */
	const char		*emoji;		/* REACT: unicode emoji, e.g. "👀" */
	/* POST/EDIT of a question: clickable choices (may be empty). */
	const char *const	*choices;	/* NULL-terminated or NULL */
	const char		*question;	/* question id ("q5") the choices answer */
	int			 closed;	/* EDIT: the question is settled; drop buttons */
	/*
	 * UPLOAD: a file shared in the thread (Slack files.*UploadExternal,
	 * Matrix media upload + m.file; the console prints it).  The bytes
	 * need not be text.  An adapter without files refuses it for good.
	 */
	const char		*filename;	/* "agent-5.diff" */
	const char		*title;		/* shown with the file; may be NULL */
	const char		*data;
	size_t			 data_len;
	void			*priv;		/* outbox's */
};

struct adapter_ops {
	const char	*name;		/* "console", "slack", "matrix" — mandatory */
	/* Create from config.  Mandatory.  NULL + *cause on bad config. */
	struct adapter	*(*create)(const struct config *, char **cause);
	/* Connect / start reading.  Mandatory.  -1 + *cause if it cannot. */
	int		 (*start)(struct adapter *, char **cause);
	/*
	 * Stop intake: no more chat_on_event after this.  Sending must keep
	 * working (the outbox flushes during shutdown) until destroy.
	 * Mandatory.
	 */
	void		 (*stop)(struct adapter *);
	/*
	 * Close everything and free (possibly later).  Ops still held are
	 * reported with chat_op_failed (retryable) or dropped silently if the
	 * outbox is already gone.  Mandatory.
	 */
	void		 (*destroy)(struct adapter *);
	/* Platform capabilities.  Mandatory; must not change after start. */
	const struct adapter_caps *(*caps)(struct adapter *);
	/*
	 * Perform one op.  Mandatory.  Returns 0 if accepted (the adapter then
	 * calls chat_op_done or chat_op_failed later), -1 if it cannot take it
	 * now (not connected): the outbox keeps the op and retries.
	 */
	int		 (*send)(struct adapter *, struct chat_op *);
	/* Our own user id on the platform, for logs/status.  Optional. */
	const char	*(*self_id)(struct adapter *);
	/*
	 * Optional.  Whether thread (a root id an inbound event named) is a
	 * thread people can see in channel: 1 yes, 0 no, -1 not known yet —
	 * the adapter then asks the platform and calls chat_thread_checked()
	 * once it knows.  Never blocks.  Without it every thread exists.
	 */
	int		 (*thread_exists)(struct adapter *, const char *channel,
			    const char *thread);
};

/* Every adapter begins with this header (first member). */
struct adapter {
	const struct adapter_ops	*ops;
	const char			*state;	/* "starting", "connected", ... */
	int				 refs;
};

/* Static registry (OpenSMTPD style): NULL if no such adapter. */
const struct adapter_ops *adapter_lookup(const char *name);

/* ---- adapter → core ---------------------------------------------------- */

enum chat_event_kind {
	CHAT_EV_MESSAGE,	/* a person wrote something */
	CHAT_EV_CLICK,		/* a person clicked a choice button */
	CHAT_EV_REACTION,	/* a person reacted to a message */
};

struct chat_event {
	enum chat_event_kind	 kind;
	const char		*channel;
	const char		*thread;	/* root id; NULL for a top-level message */
	const char		*msg_id;	/* this message (MESSAGE) */
	const char		*sender;	/* platform user id, without adapter prefix */
	const char		*sender_name;	/* display name for messages, or NULL */
	const char		*text;		/* MESSAGE: mention already stripped */
	const char		*reply_to;	/* MESSAGE: platform id it replies to, or NULL */
	int			 mentioned;	/* the bot was addressed (mention or DM) */
	const char		*question;	/* CLICK: question id ("q5") */
	const char		*choice;	/* CLICK: chosen value */
	const char		*target;	/* REACTION: message reacted to */
	const char		*emoji;		/* REACTION */
};

/*
 * An inbound event, already verified and deduplicated by the adapter and
 * recorded durably where the platform redelivers.  Borrowed for the call.
 */
void	 chat_on_event(struct adapter *, const struct chat_event *);
/* thread_exists() has its answer for (channel, thread) now. */
void	 chat_thread_checked(struct adapter *, const char *channel,
	    const char *thread);
/* Connection state changed ("connected", "reconnecting", "stopped"...). */
void	 chat_on_state(struct adapter *, const char *state);
/* An op finished.  ref: platform id of the message posted (POST), or NULL. */
void	 chat_op_done(struct chat_op *, const char *ref);
/*
 * An op failed.  retry_ms >= 0: try again no earlier than that (Retry-After);
 * -1: back off by the outbox's own schedule; permanent: never retry.
 */
void	 chat_op_failed(struct chat_op *, long long retry_ms, int permanent,
	    const char *error);
/*
 * 1 if the core has a conversation in that thread (from this run or from
 * before a restart).  For adapters whose users name threads by number (the
 * console's "t9"), so an unknown one is an error, not a new task.
 */
int	 chat_thread_known(struct adapter *, const char *channel,
	    const char *thread);
/*
 * Id of the newest outgoing op so far (0 if none).  Read before and after
 * chat_on_event(), it tells which ops answer that event (Matrix quotes it).
 */
uint64_t chat_op_last_id(void);

#endif
