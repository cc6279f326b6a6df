/*
 * matrix-int — what adapters/matrix.c (auth, lifecycle, requests),
 * matrix-sync.c (the /sync loop, inbound events, invites) and matrix-send.c
 * (outbound ops) share.  Not for anyone else.
 *
 * Every HTTP request goes through matrix_call(), which keeps it on a list so
 * destroy() can cancel what is in flight (http_cancel never calls back) and
 * free the adapter at once; callbacks run with m->busy raised so a destroy
 * from inside an upcall is deferred to the end of the callback.
 */
#ifndef SB_MATRIX_INT_H
#define SB_MATRIX_INT_H

#include "adapters/matrix.h"
#include "bot/http.h"
#include "bot/loop.h"

#include <jansson.h>
#include <stdint.h>

#define MATRIX_KV_TOKEN		"matrix.access_token"
#define MATRIX_KV_DEVICE	"matrix.device_id"
#define MATRIX_KV_SINCE		"matrix.next_batch"
#define MATRIX_KV_TXN_PREFIX	"matrix.txn_prefix"
#define MATRIX_SEEN_TTL		(7LL * 24 * 3600)
#define MATRIX_BACKOFF_MIN_MS	1000
#define MATRIX_BACKOFF_MAX_MS	60000

struct matrix;
struct matrix_call;

/*
 * status 0 with error set: no response (network).  body: the parsed JSON
 * object, or NULL.  errcode: body's errcode or NULL.  Borrowed.
 */
struct matrix_reply {
	long			 status;
	const char		*error;
	json_t			*body;
	const char		*errcode;
	long long		 retry_ms;	/* 429: retry_after_ms/Retry-After, else -1 */
};
typedef void (*matrix_cb)(struct matrix *, const struct matrix_reply *,
    void *arg);

struct matrix_thread {
	char			*room;
	char			*root;
	char			*latest;
	struct matrix_thread	*next;
};

struct matrix {
	struct adapter		 hdr;		/* first: the core casts */
	const struct config	*cfg;		/* borrowed; outlives us */

	char			*hs;		/* base URL, no trailing '/' */
	char			*user_id;
	char			*token;		/* in use; never logged */
	char			*device_id;
	int			 token_from_login; /* token came from /login */
	char			*txn_prefix;	/* per state dir, see matrix.h */
	char			*display_name;	/* from our profile, or NULL */

	int			 started;
	int			 stopping;
	int			 destroyed;
	int			 connected;
	unsigned		 busy;		/* inside one of our callbacks */
	struct matrix_call	*calls;		/* in flight */

	/* sync */
	char			*since;
	unsigned		 backoff_ms;
	struct loop_timer	*sync_timer;
	int			 sync_on;
	int			 syncing;	/* a /sync in flight */
	uintptr_t		 sync_gen;	/* bumped by matrix_sync_stop */
	int			 logging_in;
	int			 auth_step;	/* to retry after sync_timer */

	/* joins in progress (room ids), to not join twice */
	struct matrix_join	*joins;
	/* ops accepted and not yet reported */
	struct matrix_out	*outs;

	/*
	 * Send pacing, learnt from the homeserver (matrix-send.c): every PUT
	 * waits until send_not_before (a 429's retry time) and, after a 429,
	 * send_gap_ms since the previous one; at most MATRIX_MAX_INFLIGHT at
	 * once; the rest wait in waitq, oldest first.
	 */
	uint64_t		 send_not_before;	/* monotonic ms */
	uint64_t		 send_last_ms;
	unsigned		 send_gap_ms;
	unsigned		 send_inflight;
	struct matrix_out	*waitq;
	struct matrix_out	**waitq_tail;
	struct loop_timer	*send_timer;

	struct matrix_name	*names;		/* newest first, bounded */
	size_t			 nnames;
	struct matrix_quote	*quotes;	/* newest first, bounded */
	size_t			 nquotes;

	/* latest event per thread we know of, newest first, bounded */
	struct matrix_thread	*threads;
	size_t			 nthreads;
};

/* matrix.c */
void	 matrix_call(struct matrix *, const char *method, const char *path,
	    json_t *body /* taken, may be NULL */, long timeout_ms,
	    matrix_cb, void (*drop)(void *arg) /* on cancel; may be NULL */,
	    void *arg);
void	 matrix_call_raw(struct matrix *, const char *method,
	    const char *path, const char *content_type, const void *data,
	    size_t len, long timeout_ms, matrix_cb, void (*drop)(void *arg),
	    void *arg);
/* Drops everything we hold of the access token and logs in again (or stops). */
void	 matrix_auth_lost(struct matrix *, const char *why);
void	 matrix_set_state(struct matrix *, const char *state);
long long matrix_backoff_next(struct matrix *);
void	 matrix_thread_note(struct matrix *, const char *room,
	    const char *root, const char *latest);
const char *matrix_thread_latest(struct matrix *, const char *room,
	    const char *root);
/* Display names seen in member events, bounded; NULL if unknown. */
void	 matrix_name_note(struct matrix *, const char *user, const char *name);
const char *matrix_name_get(struct matrix *, const char *user);
/*
 * The rows the core wrote while it handled a person's message in a thread
 * (lo < row id <= hi) answer that message; matrix_quote_for gives the event
 * a POST of row id should quote, or NULL.  In memory, bounded.
 */
struct matrix_quote {
	char			*room;
	char			*thread;
	char			*event_id;
	uint64_t		 lo, hi;
	struct matrix_quote	*next;
};
/* Returns the entry, valid until the next note (hi may be set later). */
struct matrix_quote *matrix_quote_note(struct matrix *, const char *room,
	    const char *thread, const char *event_id, uint64_t lo, uint64_t hi);
const char *matrix_quote_for(struct matrix *, const char *room,
	    const char *thread, uint64_t id);
/* Durable map: our message's event id → its thread root (itself if none). */
void	 matrix_root_set(const char *event_id, const char *root);
char	*matrix_root_of(struct matrix *, const char *room,
	    const char *event_id);	/* malloc'd or NULL */

/* matrix-sync.c */
void	 matrix_sync_start(struct matrix *);
void	 matrix_sync_stop(struct matrix *);
void	 matrix_sync_free(struct matrix *);

/* matrix-send.c */
int	 matrix_send(struct adapter *, struct chat_op *);
/* A one-off m.notice in room (encrypted-room warning); txn unique per room. */
void	 matrix_send_notice(struct matrix *, const char *room, const char *txn,
	    const char *text);
/* Fails every op still waiting for its turn (destroy). */
void	 matrix_send_free(struct matrix *);

#endif
