/*
 * inbox — inbound events made durable before anyone acts on them.
 *
 * An event that arrives (a Slack envelope, an Events API POST, a webhook)
 * becomes one small row of the inbox table; the transport is acked as soon
 * as that row is committed, and the work (conversation, brain, agents) runs
 * from the row afterwards, one row per transaction that also deletes it.
 * So an ack never waits for a backlog of work, however far behind it is;
 * a crash before the commit loses nothing the sender was told it got (no
 * ack, so it redelivers); a crash after it replays the row on the next
 * start; and a row whose work committed is gone, so nothing is done twice.
 *
 * Group commit: inbox_put() only queues.  Everything queued during one loop
 * turn (all the frames of one socket read, say) is written by the next
 * turn in one transaction — one fsync for the lot — and each put's done()
 * then says whether its event is recorded.  HTTP handlers, which must
 * answer synchronously, call inbox_flush() themselves.
 *
 * A lone event (the only one of its flush) that finds no row waiting and
 * no batch being processed, of a kind that says its work is quick
 * (inbox_kind_inline: chat, in a conversation we know), is not written as
 * a row: its work runs in the transaction that records its keys, so one
 * commit (one fsync) serves the ack and the work, and its ack waits for
 * that work; what the work starts (commit hooks: a spawn, a post) runs
 * after the acks are written.  Should that commit fail, or the work find
 * it has to make an agent (inbox_work_later), the event is recorded alone
 * and worked on from its row.
 *
 * Rows are processed in id order, which keeps the order of every
 * conversation (and of everything else).  A row's kind names its handler
 * (inbox_kind()); chat.c registers "chat", webhook.c "webhook".
 */
#ifndef SB_INBOX_H
#define SB_INBOX_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Deduplication keys of an event: recorded with it, in the same commit. */
struct inbox_key {
	const char	*source;	/* e.g. "slack.event" */
	const char	*id;
	int64_t		 ttl_s;
};

/*
 * Runs a row's work inside its transaction.  0: done (the row is deleted
 * with the work's writes); -1: could not (rolled back, retried later).
 */
typedef int	(*inbox_process_fn)(json_t *payload, void *arg);
/*
 * Optional: runs inside the flush transaction right after the row is
 * inserted, with the number of rows ahead of it (the backlog).
 */
typedef void	(*inbox_insert_fn)(json_t *payload, size_t ahead, void *arg);
/*
 * After the commit: rc 1 recorded, 0 a duplicate (nothing recorded, but
 * the sender may be told it arrived), -1 not recorded (do not ack).
 */
typedef void	(*inbox_done_fn)(int rc, void *arg);

void	 inbox_kind(const char *kind, inbox_process_fn, inbox_insert_fn,
	    void *arg);
/*
 * Optional: whether a lone event of kind may be worked on in the
 * transaction that records it, before its ack (inbox_flush): work that is
 * quick and makes nothing an ack should not wait for.  Without it, never.
 */
typedef int	(*inbox_inline_fn)(json_t *payload, void *arg);
void	 inbox_kind_inline(const char *kind, inbox_inline_fn);
/*
 * For work an ack must not wait for (an agent's start): 1 if the work
 * running now is a lone event's, inline in the transaction its ack waits
 * for; that work is then undone and done again from the event's row after
 * the ack, so the caller may stop (what it does is rolled back).  0
 * otherwise: go on.
 */
int	 inbox_work_later(void);
/*
 * Optional: the payload members kind's process reads (keys must outlive
 * the kind, at most 16): only those are built from a row.
 */
void	 inbox_kind_reads(const char *kind, const char *const *keys,
	    size_t nkeys);

/*
 * Queues payload (stolen) as a row of kind for the next group commit.  It
 * is kept only if every key is new (all are recorded either way).  done may
 * be NULL.
 */
void	 inbox_put(const char *kind, json_t *payload,
	    const struct inbox_key *keys, size_t nkeys, inbox_done_fn done,
	    void *arg);
/*
 * Runs done(1, arg) after the next group commit (0 if it failed): for a
 * transport whose frame carried nothing worth a row but still wants its
 * ack in order with the rest.
 */
void	 inbox_after_commit(inbox_done_fn done, void *arg);
/* Commits what is queued now.  0 ok (or nothing queued), -1 failed. */
int	 inbox_flush(void);

/*
 * Inserts a row in the caller's transaction (an adapter that records its
 * own batch, e.g. Matrix with its sync token).  0 ok, -1 failed.
 */
int	 inbox_add(const char *kind, json_t *payload);

/* Schedules processing of committed rows (also after a restart). */
void	 inbox_kick(void);
/* Rows committed and not yet processed, plus those queued. */
size_t	 inbox_backlog(void);
/* 1 while the store refuses commits (health: 503). */
int	 inbox_store_failing(void);
/* Drops queued puts (done(-1)) and handlers: exit and tests. */
void	 inbox_reset(void);

#endif
