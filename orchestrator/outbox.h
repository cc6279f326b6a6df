/*
 * outbox — every outgoing chat operation, durable before it is sent.
 *
 * A row is written (SQLite) before the adapter sees it; the row id is the
 * idempotency key (Matrix txnId); a crash at any point leaves the row pending
 * and it is sent on the next start.  Rows are dispatched in id order per lane
 * (adapter + channel), one op in flight per lane, paced by the adapter's
 * rate budgets (token buckets that learn, outbox-pace.h) or a fixed
 * min_interval_ms, retried after its Retry-After or our back-off.  Ordering
 * per channel is stronger than the per-thread order the design asks for; an
 * adapter whose platform paces itself (caps.order_per_thread: Matrix) gets a
 * lane per thread and per reaction instead, so unrelated ops go out at once.
 *
 * Our messages are named by keys ("a3.card", "q5") the core chooses; the
 * platform id a POST produces is recorded under the key (messages table), so
 * an EDIT queued before its POST was sent still finds its target.  A pending
 * EDIT of the same key is replaced, not appended: the latest state wins and
 * a slow or rate-limited platform sees one edit, not a backlog.
 */
#ifndef SB_OUTBOX_H
#define SB_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

struct adapter;

/* Loads pending rows and starts dispatching; call after adapters register. */
int		 outbox_init(void);
void		 outbox_shutdown(void);
void		 outbox_register(const char *name, struct adapter *);
void		 outbox_unregister(const char *name);
/*
 * Optional, per registered adapter: fn(arg, id) runs in the transaction
 * that inserts post row id when the row is to go out as soon as that
 * commits (its queue is idle), and only in one whose commit is synced.
 * An adapter that makes an attempt marker durable before each post
 * (Slack) writes it there: in that commit, not in one of its own with its
 * own fsync.  A row that then waits after all, or a restart, costs such an
 * adapter no more than a marker it cannot tell from an attempt.  NULL fn:
 * none.
 */
void		 outbox_on_post(const char *name, void (*fn)(void *, uint64_t),
		    void *arg);

/*
 * A thread root we post ourselves has a key ending in this ("c7.root"); a
 * thread given as such a key (instead of a platform id) is resolved to the
 * root's platform id at send time, like thread_key.  The lane sends in row
 * order, so the root is sent before anything queued after it in its channel.
 */
#define OUTBOX_ROOT_SUFFIX	".root"

/*
 * Enqueue a new message.  thread: root id (or a root key, see above), or
 * NULL with thread_key naming one of our messages whose platform id is the
 * root (resolved at send time), or both NULL to start a new thread.  key: our name for the message (may be
 * NULL).  choices: NULL-terminated, may be NULL.  Returns the row id, 0 on error.
 */
uint64_t	 outbox_post(const char *adapter, const char *channel,
		    const char *thread, const char *thread_key, const char *key,
		    const char *text, const char *const *choices,
		    const char *question);
/* Replace the text of our message key (coalesced with a pending edit). */
uint64_t	 outbox_edit(const char *adapter, const char *channel,
		    const char *thread, const char *key, const char *text,
		    const char *const *choices, const char *question,
		    int closed);
/* React to a platform message id. */
uint64_t	 outbox_react(const char *adapter, const char *channel,
		    const char *thread, const char *target, const char *emoji);

/*
 * Share a file (len bytes of data, copied) in a thread, with a title shown
 * next to it.  Kept in the row until sent, like every op.  A retry after a
 * crash mid-upload may share the file twice; files are never edited, so
 * a duplicate costs nothing but space.
 */
uint64_t	 outbox_upload(const char *adapter, const char *channel,
		    const char *thread, const char *filename, const char *title,
		    const void *data, size_t len);

/* Platform id of our message key once sent (malloc'd), or NULL. */
char		*outbox_ref_of(const char *key);
/* Our key for a platform message id in a channel (malloc'd), or NULL. */
char		*outbox_key_of(const char *adapter, const char *channel,
		    const char *ref);

/* A registered adapter's capabilities, or NULL. */
struct adapter_caps;
const struct adapter_caps *outbox_caps(const char *adapter);
/* The adapter registered under name, or NULL. */
struct adapter	*outbox_adapter(const char *name);

size_t		 outbox_pending(void);	/* rows not yet done */
size_t		 outbox_inflight(void);	/* ops handed to adapters */

/*
 * Times an inbound event's first reply: when outbox row id (the first its
 * work made) is delivered, arrival_ms (monotonic) to then goes into the
 * event → first reply histogram.  A bounded set; the oldest are forgotten.
 */
void		 outbox_time_reply(uint64_t id, uint64_t arrival_ms);

#endif
